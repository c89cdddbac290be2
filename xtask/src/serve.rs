//! A small static file server for the demo page and the browser smoke test: GET only,
//! `/pkg/...` from `pkg/`, everything else from `www/`, nothing outside those two folders.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Longest request head we read; the rest of an oversized request is ignored.
const MAX_REQUEST_HEAD: u64 = 64 * 1024;

pub struct Site {
    www: PathBuf,
    pkg: PathBuf,
}

impl Site {
    pub fn new(root: &Path) -> Site {
        Site { www: root.join("www"), pkg: root.join("pkg") }
    }

    /// The file a request target names, or `None` when it names nothing we serve.
    pub fn resolve(&self, target: &str) -> Option<PathBuf> {
        let path = target.split(['?', '#']).next()?;
        let path = percent_decode(path.strip_prefix('/')?)?;
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.iter().any(|s| *s == "." || *s == ".." || s.contains(['\\', '\0'])) {
            return None;
        }
        let (base, rest) = match segments.split_first() {
            Some((&"pkg", rest)) => (&self.pkg, rest),
            _ => (&self.www, &segments[..]),
        };
        let mut file = base.clone();
        file.extend(rest);
        if file.is_dir() {
            file.push("index.html");
        }
        // A symlink could still lead out of the folder: compare real paths.
        let file = file.canonicalize().ok()?;
        (file.is_file() && file.starts_with(base.canonicalize().ok()?)).then_some(file)
    }
}

/// Serve forever, one thread per connection. `log` prints one line per request.
pub fn serve(listener: TcpListener, site: Site, log: bool) {
    let site = Arc::new(site);
    for stream in listener.incoming().flatten() {
        let site = Arc::clone(&site);
        thread::spawn(move || {
            if let Err(e) = handle(stream, &site, log) {
                if log {
                    eprintln!("serve: {e}");
                }
            }
        });
    }
}

fn handle(mut stream: TcpStream, site: &Site, log: bool) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(Read::by_ref(&mut stream).take(MAX_REQUEST_HEAD));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    drop(reader);

    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, content_type, body) = if method != "GET" {
        ("405 Method Not Allowed", "text/plain; charset=utf-8", b"GET only\n".to_vec())
    } else {
        match site.resolve(target).map(|file| (fs::read(&file), file)) {
            Some((Ok(body), file)) => ("200 OK", mime_type(&file), body),
            _ => ("404 Not Found", "text/plain; charset=utf-8", b"not found\n".to_vec()),
        }
    };
    if log {
        println!("{method} {target} {status}");
    }
    // Cross-origin isolation gives the page precise performance.now() timings (and
    // SharedArrayBuffer); everything the demo loads is same-origin, so it costs nothing.
    let head = format!(
        "HTTP/1.1 {status}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-store\r\n\
         Cross-Origin-Opener-Policy: same-origin\r\n\
         Cross-Origin-Embedder-Policy: require-corp\r\n\
         Allow: GET\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

pub fn mime_type(file: &Path) -> &'static str {
    let extension = file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "md" | "ts") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> (PathBuf, Site) {
        let root = std::env::temp_dir().join(format!("xtask-serve-test-{}", std::process::id()));
        fs::create_dir_all(root.join("www/sub")).unwrap();
        fs::create_dir_all(root.join("pkg")).unwrap();
        fs::write(root.join("www/index.html"), "<p>hi</p>").unwrap();
        fs::write(root.join("www/sub/index.html"), "<p>sub</p>").unwrap();
        fs::write(root.join("www/main.js"), "").unwrap();
        fs::write(root.join("pkg/webrnn_bg.wasm"), "").unwrap();
        fs::write(root.join("secret.txt"), "").unwrap();
        let site = Site::new(&root);
        (root, site)
    }

    #[test]
    fn maps_pkg_and_www_and_refuses_traversal() {
        let (root, site) = site();
        let real = |p: &str| Some(root.join(p).canonicalize().unwrap());
        assert_eq!(site.resolve("/"), real("www/index.html"));
        assert_eq!(site.resolve("/sub/"), real("www/sub/index.html"));
        assert_eq!(site.resolve("/main.js?v=1"), real("www/main.js"));
        assert_eq!(site.resolve("/pkg/webrnn_bg.wasm"), real("pkg/webrnn_bg.wasm"));
        for bad in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/pkg/../../secret.txt",
            "/sub/..%2f..%2fsecret.txt",
            "/..\\secret.txt",
            "/missing.js",
            "/%zz",
            "secret.txt",
        ] {
            assert_eq!(site.resolve(bad), None, "{bad}");
        }
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn serves_wasm_and_javascript_with_browser_mime_types() {
        assert_eq!(mime_type(Path::new("pkg/webrnn_bg.wasm")), "application/wasm");
        assert_eq!(mime_type(Path::new("pkg/webrnn.js")), "text/javascript");
        assert_eq!(mime_type(Path::new("www/index.html")), "text/html; charset=utf-8");
        assert_eq!(mime_type(Path::new("www/model.onnx")), "application/octet-stream");
    }
}
