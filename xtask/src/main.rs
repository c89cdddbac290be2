//! Developer tasks for webrnn, run as `cargo xtask <task>`.
//!
//! CI calls `cargo xtask test` (through `.ci/run`), so a local run and a CI run are the same thing.

mod serve;
mod setup;

use std::env;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The model the demo page and the browser smoke test load, copied to `www/model.onnx`.
const DEMO_MODEL: &str = "tests/data/golden/legacy_gru_embed_op14/model.onnx";

/// Chromium flags for a quiet, reproducible headless run (no network chatter, no first-run UI).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
];

/// Wall-clock limit for the headless browser; the virtual time budget normally ends it far sooner.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

/// Features rustc enables by default for wasm32-unknown-unknown, plus simd128 for the SIMD kernels.
/// wasm-bindgen drops the `target_features` section, so wasm-opt cannot detect them itself.
const WASM_OPT_ARGS: &[&str] = &[
    "-O3",
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-multivalue",
    "--enable-reference-types",
    "--enable-simd",
];

/// binaryen installed by setup from xtask/package.json.
const LOCAL_WASM_OPT: &str = "xtask/node_modules/.bin/wasm-opt";

/// The oldest wasm-opt on PATH we trust: 132 is tested; 108 (Debian 12's binaryen) writes the
/// export of wasm-bindgen's `__wbindgen_externrefs` table against the wrong table, so the package
/// fails in the browser at `init()`.
const MIN_WASM_OPT: u32 = 132;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  setup            install what the other tasks need (idempotent)
  test             setup, fmt, clippy (native + wasm32), cargo test, browser smoke test
  pack             build the wasm package into pkg/ and print its gzipped size
  demo [--port N]  pack and serve the demo page on http://127.0.0.1:8080 (or N)
  bench            run the benchmarks (not built yet)";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("setup") => no_more_args(&args).and_then(|()| setup::setup(&root)),
        Some("test") => no_more_args(&args).and_then(|()| test(&root)),
        Some("pack") => no_more_args(&args).and_then(|()| pack(&root)),
        Some("demo") => demo_port(&args[1..]).and_then(|port| demo(&root, port)),
        Some("bench") => no_more_args(&args).map(|()| println!("bench: not built yet")),
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().expect("xtask lives inside the workspace").to_path_buf()
}

fn no_more_args(args: &[String]) -> Result {
    match args.get(1) {
        None => Ok(()),
        Some(extra) => Err(format!("unexpected argument `{extra}`\n\n{USAGE}")),
    }
}

fn demo_port(args: &[String]) -> Result<u16> {
    match args {
        [] => Ok(8080),
        [flag, port] if flag == "--port" => port.parse().map_err(|_| format!("bad port `{port}`")),
        _ => Err(format!("usage: cargo xtask demo [--port N]\n\n{USAGE}")),
    }
}

/// `cargo xtask test`: every check CI runs, in order, stopping at the first failure.
fn test(root: &Path) -> Result {
    type Step = (&'static str, fn(&Path) -> Result);
    let steps: [Step; 6] = [
        ("setup", setup::setup),
        ("fmt", |root| cargo(root, &["fmt", "--all", "--", "--check"])),
        ("clippy", |root| cargo(root, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
        ("clippy wasm32", |root| {
            cargo(
                root,
                &[
                    "clippy",
                    "--package",
                    "webrnn",
                    "--lib",
                    "--target",
                    "wasm32-unknown-unknown",
                    "--",
                    "-D",
                    "warnings",
                ],
            )
        }),
        ("cargo test", |root| cargo(root, &["test", "--workspace"])),
        ("browser smoke test", smoke_test),
    ];

    let started = Instant::now();
    let mut results: Vec<(&str, Result, Duration)> = Vec::new();
    for (index, (name, step)) in steps.iter().enumerate() {
        println!("\n==> [{}/{}] {name}", index + 1, steps.len());
        let step_started = Instant::now();
        let result = step(root);
        let elapsed = step_started.elapsed();
        let failed = result.is_err();
        match &result {
            Ok(()) => println!("<== {name}: ok ({})", seconds(elapsed)),
            Err(message) => println!("<== {name}: FAILED ({})\n{message}", seconds(elapsed)),
        }
        results.push((name, result, elapsed));
        if failed {
            break;
        }
    }

    println!("\nsummary:");
    for (index, (name, _)) in steps.iter().enumerate() {
        match results.get(index) {
            Some((_, Ok(()), elapsed)) => println!("  ok      {:>7}  {name}", seconds(*elapsed)),
            Some((_, Err(_), elapsed)) => println!("  FAILED  {:>7}  {name}", seconds(*elapsed)),
            None => println!("  skipped {:>7}  {name}", ""),
        }
    }
    println!("  total   {:>7}", seconds(started.elapsed()));
    match results.iter().find(|(_, result, _)| result.is_err()) {
        Some((name, _, _)) => Err(format!("step `{name}` failed")),
        None => Ok(()),
    }
}

/// `cargo xtask pack`: the wasm package in `pkg/`, optimised by the wasm-opt setup installed.
///
/// wasm-pack's own wasm-opt step would download binaryen; `--no-opt` skips it.
fn pack(root: &Path) -> Result {
    run(Command::new("wasm-pack")
        .args(["build", "--release", "--target", "web", "--out-dir", "pkg", "--no-opt"])
        .current_dir(root))?;

    let pkg = root.join("pkg");
    let wasm_files = files_with_extension(&pkg, "wasm")?;
    match wasm_opt(root) {
        Some(wasm_opt) => {
            for wasm in &wasm_files {
                run(Command::new(&wasm_opt).args(WASM_OPT_ARGS).arg(wasm).arg("-o").arg(wasm))?;
            }
        }
        None => {
            println!("pack: no wasm-opt {MIN_WASM_OPT}+ found, the package is unoptimised (run `cargo xtask setup`)")
        }
    }

    let mut shipped = wasm_files;
    shipped.extend(files_with_extension(&pkg, "js")?);
    let mut total_gzip = 0;
    for file in &shipped {
        let size = fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?.len();
        let gzip = gzip_size(file)?;
        total_gzip += gzip;
        let name = file.strip_prefix(root).unwrap_or(file).display().to_string();
        println!("pack: {name:<24} {:>10}  gzip {:>10}", kib(size), kib(gzip));
    }
    println!("pack: {:<24} {:>10}  gzip {:>10}", "total", "", kib(total_gzip));
    Ok(())
}

/// The local binaryen from npm, else a recent enough wasm-opt on PATH.
fn wasm_opt(root: &Path) -> Option<PathBuf> {
    let local = root.join(LOCAL_WASM_OPT);
    if local.is_file() {
        return Some(local);
    }
    // `wasm-opt --version` prints `wasm-opt version 132 (version_132)`.
    let version = output(Command::new("wasm-opt").arg("--version"))?;
    let number: u32 = version.split_whitespace().nth(2)?.parse().ok()?;
    (number >= MIN_WASM_OPT).then(|| PathBuf::from("wasm-opt"))
}

/// `cargo xtask demo`: pack, then serve `www/` and `pkg/` until Ctrl-C.
fn demo(root: &Path, port: u16) -> Result {
    setup::setup(root)?;
    pack(root)?;
    copy_demo_model(root)?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port} ({e}); try --port N"))?;
    println!("\ndemo: http://127.0.0.1:{port}/  (Ctrl-C to stop)");
    serve::serve(listener, serve::Site::new(root), true);
    Ok(())
}

fn copy_demo_model(root: &Path) -> Result {
    let source = root.join(DEMO_MODEL);
    if !source.is_file() {
        return Err(format!("demo model {DEMO_MODEL} not found; scripts/make_golden.py generates it"));
    }
    let target = root.join("www/model.onnx");
    fs::copy(&source, &target).map_err(|e| format!("copy {DEMO_MODEL} -> www/model.onnx: {e}"))?;
    Ok(())
}

/// Build the package, serve the demo on a free port and check that headless Chromium renders a
/// prediction: the page sets `data-status="ok"` on `<body>` when it has one.
fn smoke_test(root: &Path) -> Result {
    pack(root)?;
    copy_demo_model(root)?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let site = serve::Site::new(root);
    thread::spawn(move || serve::serve(listener, site, false));

    let url = format!("http://127.0.0.1:{port}/");
    let dom = headless_dom(&url)?;
    let status = body_status(&dom).unwrap_or_else(|| "(none)".to_string());
    if status == "ok" {
        for id in ["prediction", "latency"] {
            println!("smoke: {}", element_text(&dom, id).unwrap_or_default());
        }
        return Ok(());
    }
    let error = element_text(&dom, "error").unwrap_or_default();
    Err(format!("demo page at {url} ended with data-status={status}: {error}"))
}

/// Load `url` in headless Chromium and return the DOM once the virtual time budget has run out.
fn headless_dom(url: &str) -> Result<String> {
    let chromium = env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    let profile = env::temp_dir().join(format!("webrnn-chromium-{}-{}", std::process::id(), nanos()));
    let mut command = Command::new(&chromium);
    command
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    println!("$ {}", describe(&command));
    let mut child = command.spawn().map_err(|e| format!("{chromium}: {e}"))?;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());

    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = fs::remove_dir_all(&profile);
                return Err(format!("chromium did not finish within {CHROMIUM_TIMEOUT:?}"));
            }
            None => thread::sleep(Duration::from_millis(100)),
        }
    };
    let dom = stdout.join().unwrap_or_default();
    let log = stderr.join().unwrap_or_default();
    let _ = fs::remove_dir_all(&profile);
    if !status.success() || dom.is_empty() {
        return Err(format!("chromium failed ({status}); its log ends:\n{}", tail(&log, 20)));
    }
    Ok(dom)
}

fn read_in_background<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// The text inside the element with `id`, assuming it holds text only (as the demo page's do).
fn element_text(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!(r#"id="{id}""#))?;
    let open_end = start + html[start..].find('>')? + 1;
    let close = open_end + html[open_end..].find("</")?;
    let text = &html[open_end..close];
    Some(text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&"))
}

/// The `data-status` attribute of `<body>`: the page's verdict.
fn body_status(html: &str) -> Option<String> {
    let body = html.find("<body")?;
    let tag = &html[body..body + html[body..].find('>')?];
    let start = tag.find(r#"data-status=""#)? + r#"data-status=""#.len();
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].to_string())
}

fn cargo(root: &Path, args: &[&str]) -> Result {
    run(Command::new("cargo").args(args).current_dir(root))
}

/// Run a command with inherited stdio, echoing it first.
fn run(command: &mut Command) -> Result {
    println!("$ {}", describe(command));
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command.status().map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(command)))
    }
}

/// Stdout of a command that succeeded, or `None` (also when the program is missing).
fn output(command: &mut Command) -> Option<String> {
    let out = command.stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|arg| arg.to_string_lossy().into_owned()));
    words.join(" ")
}

fn which(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

fn files_with_extension(dir: &Path, extension: &str) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .collect();
    files.sort();
    Ok(files)
}

fn gzip_size(file: &Path) -> Result<u64> {
    let out = Command::new("gzip").args(["-9", "-c"]).arg(file).output().map_err(|e| format!("gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip {} failed", file.display()));
    }
    Ok(out.stdout.len() as u64)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

fn nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_prediction_and_status_from_a_dumped_dom() {
        let dom = r#"<html><head><style>body[data-status="ok"] { color: green }</style></head>
            <body data-status="error"><p id="prediction">top-3: #2 0.5 &amp; more</p></body></html>"#;
        assert_eq!(body_status(dom).as_deref(), Some("error"));
        assert_eq!(body_status("<body>"), None);
        assert_eq!(element_text(dom, "prediction").as_deref(), Some("top-3: #2 0.5 & more"));
        assert_eq!(element_text(dom, "error"), None);
    }

    #[test]
    fn demo_port_defaults_to_8080() {
        assert_eq!(demo_port(&[]), Ok(8080));
        assert_eq!(demo_port(&["--port".into(), "9000".into()]), Ok(9000));
        assert!(demo_port(&["--port".into()]).is_err());
        assert!(demo_port(&["--port".into(), "x".into()]).is_err());
    }
}
