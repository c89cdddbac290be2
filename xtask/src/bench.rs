//! `cargo xtask bench`: webrnn's CPU kernels (one wasm build per variant, some also with int8
//! weights) side by side with onnxruntime-web (wasm EP, one thread) and TF.js (wasm backend, one
//! thread, where tf.layers can build the model: the LSTMs) in one headless Chromium page
//! (`bench/index.html`), on the same weights (`scripts/make_bench_models.py` writes the ONNX models
//! into `target/bench/models`, and the same weights in Keras's layout for TF.js), and what int8
//! weights cost in accuracy on the golden cases (`examples/int8_accuracy.rs`). The WebGPU page and
//! the native GPU table follow (`bench_gpu.rs`; `cargo xtask bench --cpu` or `--gpu` runs one half).
//!
//! The page checks that every implementation's outputs agree before it times anything, then POSTs
//! its results here: the JSON goes to `bench/results.json`, the markdown table to stdout. Timings are
//! real wall-clock (no `--virtual-time-budget`), medians of blocks of calls.

use std::collections::HashMap;
use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

/// Wasm builds of `bench/wasm`: directory suffix and the target features it is compiled with.
pub(crate) const VARIANTS: &[(&str, &str)] =
    &[("scalar", ""), ("simd128", "+simd128"), ("relaxed-simd", "+simd128,+relaxed-simd")];

/// Variants the page also runs with int8 weights (`Backend::CpuInt8`).
const INT8_VARIANTS: &[&str] = &["simd128", "relaxed-simd"];

/// How far int8 outputs may be from onnxruntime's f32 ones and still count as agreeing: a sanity
/// bound (f32 variants must agree to 1e-4); the table prints what they show.
const INT8_ATOL: f64 = 0.05;

const MODELS: &[(&str, usize)] = &[("gru", 64), ("gru", 256), ("gru", 512), ("lstm", 64), ("lstm", 256), ("lstm", 512)];

/// How long the page may take in all.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20 * 60);

pub(crate) const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
];

pub fn bench(root: &Path) -> Result {
    crate::setup::setup(root)?;
    for package in ["onnxruntime-web", "@tensorflow/tfjs-layers", "@tensorflow/tfjs-backend-wasm"] {
        if !root.join("bench/node_modules").join(package).is_dir() {
            return Err(format!("bench/node_modules/{package} is missing: `cargo xtask setup` installs it"));
        }
    }
    let out = root.join("target/bench");
    make_models(root, &out.join("models"))?;
    let only = Subset::from_env()?;
    for (name, features) in VARIANTS.iter().filter(|(n, _)| only.variant(n)) {
        build_variant(root, &out, name, features)?;
    }
    write_config(&out, &only)?;

    let page = Page {
        label: "bench",
        path: "bench/index.html",
        note: " (this takes a few minutes)",
        flags: CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect(),
        done: "/results",
        timeout: PAGE_TIMEOUT,
    };
    let mut posted = run_page(root, &page, |_, _| true)?;
    let results = posted.remove("/results").ok_or("the benchmark page sent no results (timed out or crashed)")?;
    if results.starts_with("{\"error\"") {
        return Err(format!("the benchmark page failed: {results}"));
    }
    let path = root.join("bench/results.json");
    fs::write(&path, &results).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\n{}", posted.remove("/table").unwrap_or_default());
    println!("bench: µs per time step (batch64: per step of all 64 streams); raw results in bench/results.json");
    println!("\nbench: int8 weights on the golden cases (tests/data/golden), natively:");
    crate::run(
        Command::new("cargo").args(["run", "--quiet", "--release", "--example", "int8_accuracy"]).current_dir(root),
    )?;

    // The WebGPU page (webrnn's WebGPU backend through pkg/ against onnxruntime-web's WebGPU EP)
    // and the native GPU table are in bench_gpu.rs: `cargo xtask bench` runs them after this page.
    Ok(())
}

/// A page of `bench/` that `run_page` opens.
pub(crate) struct Page<'a> {
    /// What the lines printed start with.
    pub label: &'a str,
    /// The page's path in the repository.
    pub path: &'a str,
    /// Said after the page's URL when it starts (how long it takes).
    pub note: &'a str,
    /// Chromium's flags (`--user-data-dir` is added).
    pub flags: Vec<String>,
    /// The path of the page's last POST.
    pub done: &'a str,
    pub timeout: Duration,
}

/// Serves the repository (`serve`) and opens `page` in headless Chromium (`$CHROMIUM`, else
/// /usr/bin/chromium) with a profile of its own; returns what the page POSTed, by path, once it has
/// posted `page.done`, has exited, or has run out of time. `keep(path, body)` sees each POST as it
/// comes; one it returns false for (a progress line) is not kept.
pub(crate) fn run_page(
    root: &Path,
    page: &Page,
    mut keep: impl FnMut(&str, &str) -> bool,
) -> Result<HashMap<String, String>> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (tx, rx) = mpsc::channel();
    let root_owned = root.to_path_buf();
    thread::spawn(move || serve(listener, &root_owned, tx));

    let url = format!("http://127.0.0.1:{port}/{}", page.path);
    let chromium = env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    let profile = env::temp_dir().join(format!("webrnn-{}-chromium-{}", page.label, std::process::id()));
    println!("{}: {url} in headless {chromium}{}", page.label, page.note);
    let mut child = Command::new(&chromium)
        .args(&page.flags)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{chromium}: {e}"))?;
    let mut posted = HashMap::new();
    let deadline = Instant::now() + page.timeout;
    while !posted.contains_key(page.done) {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok((path, body)) => {
                if keep(&path, &body) {
                    posted.insert(path, body);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = fs::remove_dir_all(&profile);
    Ok(posted)
}

/// The bench models are written by `scripts/make_bench_models.py` (onnx + numpy). It runs in
/// `$WEBRNN_PYTHON` if set, else in a virtual environment of its own under `target/bench-venv`,
/// made on first use with the pins of `scripts/requirements-bench.txt` (the benchmark's own
/// dependency: `setup` does not install it, so `test` never pays for it).
pub(crate) fn make_models(root: &Path, dir: &Path) -> Result {
    let python = match env::var("WEBRNN_PYTHON") {
        Ok(p) => p,
        Err(_) => {
            let venv = root.join("target/bench-venv");
            let python = venv.join("bin/python");
            if !python.is_file() {
                crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
                crate::run(
                    Command::new(&python)
                        .args(["-m", "pip", "install", "--quiet", "-r"])
                        .arg(root.join("scripts/requirements-bench.txt")),
                )?;
            }
            python.to_string_lossy().into_owned()
        }
    };
    crate::run(Command::new(python).arg(root.join("scripts/make_bench_models.py")).arg(dir))
}

pub(crate) fn build_variant(root: &Path, out: &Path, name: &str, features: &str) -> Result {
    let target_dir = out.join(format!("wasm-{name}"));
    let mut flags = String::new();
    if !features.is_empty() {
        // As `pack` builds the SIMD variants.
        flags = format!("-C target-feature={features} {}", crate::pack::simd_codegen!());
    }
    crate::run(
        Command::new("cargo")
            .args(["build", "--release", "--target", "wasm32-unknown-unknown", "--manifest-path"])
            .arg(root.join("bench/wasm/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", flags)
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
    )?;
    let wasm = target_dir.join("wasm32-unknown-unknown/release/webrnn_bench.wasm");
    crate::run(
        Command::new("wasm-bindgen")
            .args(["--target", "web", "--out-dir"])
            .arg(out.join(format!("pkg-{name}")))
            .arg(wasm),
    )
}

/// A part of the benchmark, for a quick look while working on one kernel (the published table is
/// the whole run): `WEBRNN_BENCH_MODELS` (e.g. `gru_h64,lstm_h256`), `WEBRNN_BENCH_MODES`
/// (`stream,seq256,batch64`) and `WEBRNN_BENCH_VARIANTS` (`scalar,simd128,relaxed-simd`) each keep
/// the names they list; `WEBRNN_BENCH_NO_TFJS=1` leaves TF.js out (its steps take milliseconds).
struct Subset {
    models: Option<Vec<String>>,
    modes: Option<Vec<String>>,
    variants: Option<Vec<String>>,
    tfjs: bool,
}

impl Subset {
    fn from_env() -> Result<Subset> {
        let list = |var: &str, known: &[String]| -> Result<Option<Vec<String>>> {
            let Ok(v) = env::var(var) else { return Ok(None) };
            let names: Vec<String> = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            if let Some(bad) = names.iter().find(|n| !known.contains(n)) {
                return Err(format!("{var}: no {bad:?} among {}", known.join(", ")));
            }
            Ok(Some(names))
        };
        let models: Vec<String> = MODELS.iter().map(|(cell, h)| format!("{cell}_h{h}")).collect();
        let modes: Vec<String> = MODES.iter().map(|m| m.to_string()).collect();
        let variants: Vec<String> = VARIANTS.iter().map(|(n, _)| n.to_string()).collect();
        let subset = Subset {
            models: list("WEBRNN_BENCH_MODELS", &models)?,
            modes: list("WEBRNN_BENCH_MODES", &modes)?,
            variants: list("WEBRNN_BENCH_VARIANTS", &variants)?,
            tfjs: env::var("WEBRNN_BENCH_NO_TFJS").map_or(true, |v| v.is_empty() || v == "0"),
        };
        if subset.models.is_some() || subset.modes.is_some() || subset.variants.is_some() || !subset.tfjs {
            println!("bench: a subset (WEBRNN_BENCH_*), not the whole table");
        }
        Ok(subset)
    }

    fn keeps(list: &Option<Vec<String>>, name: &str) -> bool {
        list.as_ref().is_none_or(|l| l.iter().any(|n| n == name))
    }

    fn variant(&self, name: &str) -> bool {
        Subset::keeps(&self.variants, name)
    }
}

const MODES: &[&str] = &["stream", "seq256", "batch64"];

fn write_config(out: &Path, only: &Subset) -> Result {
    let models: Vec<String> = MODELS
        .iter()
        .filter(|(cell, h)| Subset::keeps(&only.models, &format!("{cell}_h{h}")))
        .map(|(cell, h)| {
            format!(
                r#"{{"name":"{cell}_h{h}","cell":"{cell}","hidden":{h},"file":"{cell}_h{h}.onnx","keras":"{cell}_h{h}.keras.bin"}}"#
            )
        })
        .collect();
    let quoted =
        |names: &mut dyn Iterator<Item = &str>| names.map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(",");
    let variants = quoted(&mut VARIANTS.iter().map(|(n, _)| *n).filter(|n| only.variant(n)));
    let int8 = quoted(&mut INT8_VARIANTS.iter().copied().filter(|n| only.variant(n)));
    let modes = quoted(&mut MODES.iter().copied().filter(|m| Subset::keeps(&only.modes, m)));
    let tfjs = only.tfjs;
    let config = format!(
        r#"{{"models":[{}],"variants":[{variants}],"int8_variants":[{int8}],"int8_atol":{INT8_ATOL},"modes":[{modes}],"tfjs":{tfjs},"seq":256,"batch":64,"block_ms":20,"budget_ms":250,"rounds":5}}"#,
        models.join(",")
    );
    fs::write(out.join("config.json"), config).map_err(|e| format!("config.json: {e}"))
}

/// GET: files under `bench/`, `target/bench/` and the real-world fixtures; POST: `(path, body)` to `tx`.
fn serve(listener: TcpListener, root: &Path, tx: mpsc::Sender<(String, String)>) {
    for stream in listener.incoming().flatten() {
        let (root, tx) = (root.to_path_buf(), tx.clone());
        thread::spawn(move || {
            let _ = handle(stream, &root, &tx);
        });
    }
}

fn handle(mut stream: TcpStream, root: &Path, tx: &mpsc::Sender<(String, String)>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut words = request.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let path = target.split(['?', '#']).next().unwrap_or("/");
    if method == "POST" {
        let mut body = vec![0; length.min(64 << 20)];
        reader.read_exact(&mut body)?;
        let _ = tx.send((path.to_string(), String::from_utf8_lossy(&body).into_owned()));
        return respond(&mut stream, "200 OK", "text/plain", b"ok");
    }
    match resolve(root, path) {
        Some(file) => {
            let body = fs::read(&file)?;
            respond(&mut stream, "200 OK", content_type(&file), &body)
        }
        None => respond(&mut stream, "404 Not Found", "text/plain", b"not found"),
    }
}

fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix('/')?;
    if rel.split('/').any(|s| s == ".." || s.contains(['\\', '\0'])) {
        return None;
    }
    // The real-world page (bench_realworld.rs) reads the fixtures and the tests' TensorProto reader.
    let allowed = ["bench/", "target/bench/", "tests/data/realworld/", "js/test/pages/tensor.js"];
    allowed.iter().any(|a| rel.starts_with(a)).then(|| root.join(rel)).filter(|p| p.is_file())
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)
}
