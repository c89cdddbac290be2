//! Developer tasks for webrnn, run as `cargo xtask <task>`.
//!
//! CI calls `cargo xtask test` (through `.ci/run`), so a local run and a CI run are the same thing.

mod bench;
mod bench_gpu;
mod bench_realworld;
mod bench_startup;
mod bench_vad;
mod fuzz;
mod pack;
mod pack_audio;
mod serve;
mod setup;
mod soak;

use std::env;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The models the demo page loads, committed; `scripts/train_demo.py` makes them, but Silero VAD,
/// a copy of `tests/data/realworld/models/silero_vad_16k_op15.onnx`.
const DEMO_MODELS: &[&str] = &[
    "www/models/text-gru.onnx",
    "www/models/text-gru.json",
    "www/models/stream-lstm.onnx",
    "www/models/stream-lstm.json",
    "www/models/silero-vad.onnx",
];

/// Where the demo's end-to-end test leaves its screenshots.
const E2E_OUT: &str = "target/e2e";

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  setup            install what the other tasks need (idempotent)
  test             setup, fmt, clippy (native + wasm32, with and without the gpu feature), cargo test, demo e2e test, js tests
  pack             build the npm package (wasm variants + TypeScript API) into pkg/, print its size
  demo [--port N]  pack and serve the demo page on http://127.0.0.1:8080 (or N)
  bench [--cpu|--gpu|--realworld|--startup|--vad]
                   webrnn vs onnxruntime-web in headless Chromium: the CPU page (wasm EP, one
                   thread; bench/results.json), the real-world models chunk by chunk
                   (bench/results-realworld.json), cold start to the first output in fresh
                   browsers (bench/results-startup.json), voice activity: webrnn/audio's Vad
                   against onnxruntime-web as vad-web calls it, and the download of each
                   (bench/results-vad.json), then the WebGPU page (WebGPU EP;
                   bench/results-webgpu.json) and the native GPU table; --cpu: all but the
                   WebGPU half, --realworld / --startup / --vad: that table only, --gpu: the
                   WebGPU half
  fuzz [--minutes N]
                   the coverage-guided fuzzers of fuzz/ (cargo-fuzz, nightly), N minutes per
                   target (default 10); `test` runs each for 25 s
  soak             the long soak and scale tests, native and in Node: 1,000,000 steps on one
                   session, 10,000 sessions, 1,000 loads (`test` runs short versions)";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("setup") => no_more_args(&args).and_then(|()| setup::setup(&root)),
        Some("test") => no_more_args(&args).and_then(|()| test(&root)),
        Some("pack") => no_more_args(&args).and_then(|()| pack::pack(&root)),
        Some("demo") => demo_port(&args[1..]).and_then(|port| demo(&root, port)),
        Some("bench") => bench_pages(&args[1..]).and_then(|[cpu, realworld, startup, vad, gpu]| {
            if cpu {
                bench::bench(&root)?;
            }
            if realworld {
                bench_realworld::bench(&root)?;
            }
            if startup {
                bench_startup::bench(&root)?;
            }
            if vad {
                bench_vad::bench(&root)?;
            }
            if gpu {
                bench_gpu::bench(&root)?;
            }
            Ok(())
        }),
        Some("fuzz") => fuzz_minutes(&args[1..]).and_then(|m| fuzz::fuzz(&root, (m * 60.0).round() as u64)),
        Some("soak") => no_more_args(&args).and_then(|()| soak::soak(&root)),
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

/// Which pages `bench` runs: `[cpu, realworld, startup, vad, gpu]`. No flag: all; `--cpu` all but
/// the WebGPU page; `--realworld`, `--startup`, `--vad`, `--gpu`: that one.
fn bench_pages(args: &[String]) -> Result<[bool; 5]> {
    match args {
        [] => Ok([true; 5]),
        [flag] if flag == "--cpu" => Ok([true, true, true, true, false]),
        [flag] if flag == "--realworld" => Ok([false, true, false, false, false]),
        [flag] if flag == "--startup" => Ok([false, false, true, false, false]),
        [flag] if flag == "--vad" => Ok([false, false, false, true, false]),
        [flag] if flag == "--gpu" => Ok([false, false, false, false, true]),
        _ => Err(format!("usage: cargo xtask bench [--cpu|--gpu|--realworld|--startup|--vad]\n\n{USAGE}")),
    }
}

fn fuzz_minutes(args: &[String]) -> Result<f64> {
    match args {
        [] => Ok(10.0),
        [flag, m] if flag == "--minutes" => {
            m.parse().ok().filter(|m: &f64| *m > 0.0).ok_or_else(|| format!("bad minutes `{m}`"))
        }
        _ => Err(format!("usage: cargo xtask fuzz [--minutes N]\n\n{USAGE}")),
    }
}

fn demo_port(args: &[String]) -> Result<u16> {
    match args {
        [] => Ok(8080),
        [flag, port] if flag == "--port" => port.parse().map_err(|_| format!("bad port `{port}`")),
        _ => Err(format!("usage: cargo xtask demo [--port N]\n\n{USAGE}")),
    }
}

/// Clippy on the library for wasm32 (the browser build), with `extra` cargo arguments.
fn clippy_wasm32(root: &Path, extra: &[&str]) -> Result {
    let mut args = vec!["clippy", "--package", "webrnn", "--lib", "--target", "wasm32-unknown-unknown"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "-D", "warnings"]);
    cargo(root, &args)
}

/// `cargo xtask test`: every check CI runs, in order, stopping at the first failure.
fn test(root: &Path) -> Result {
    type Step = (&'static str, fn(&Path) -> Result);
    let steps: [Step; 11] = [
        ("setup", setup::setup),
        ("fmt", |root| cargo(root, &["fmt", "--all", "--", "--check"])),
        ("clippy", |root| cargo(root, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
        ("clippy wasm32", |root| clippy_wasm32(root, &[])),
        // The package's CPU-only wasm variants are built without the `gpu` feature: that build (and
        // the native one without it, every target) stays clean too.
        ("clippy without the gpu feature", |root| {
            let native =
                ["clippy", "--package", "webrnn", "--all-targets", "--no-default-features", "--", "-D", "warnings"];
            cargo(root, &native)?;
            clippy_wasm32(root, &["--no-default-features"])
        }),
        // WEBRNN_REQUIRE_GPU: the GPU tests fail instead of skipping when no adapter is found
        // (setup installs lavapipe, so CI really runs them).
        ("cargo test", |root| {
            run(Command::new("cargo").args(["test", "--workspace"]).env("WEBRNN_REQUIRE_GPU", "1").current_dir(root))
        }),
        ("fuzz (short)", fuzz::ci),
        ("wasm browser tests (wasm-pack test)", wasm_browser_tests),
        ("demo e2e test", demo_e2e),
        ("js tests", js_tests),
        ("js apps tests", js_apps_tests),
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

/// `cargo xtask demo`: pack, then serve `www/` and `pkg/` until Ctrl-C.
fn demo(root: &Path, port: u16) -> Result {
    setup::setup(root)?;
    pack::pack(root)?;
    check_demo_models(root)?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port} ({e}); try --port N"))?;
    println!("\ndemo: http://127.0.0.1:{port}/  (Ctrl-C to stop)");
    serve::serve(listener, serve::Site::new(root), true);
    Ok(())
}

fn check_demo_models(root: &Path) -> Result {
    match DEMO_MODELS.iter().find(|file| !root.join(file).is_file()) {
        Some(missing) => Err(format!("demo model {missing} not found; scripts/train_demo.py makes it (Silero VAD: copied from tests/data/realworld/models)")),
        None => Ok(()),
    }
}

/// Build the package, serve the demo on a free port and run the page's end-to-end test
/// (`xtask/e2e/demo.mjs`: playwright-core driving Debian's Chromium, without and with WebGPU:
/// typing and suggestions, reload and restore, the stream panel, the WebGPU toggle, a narrow
/// window, "Forget me", no console errors). Screenshots go to `target/e2e/`.
fn demo_e2e(root: &Path) -> Result {
    pack::pack(root)?;
    check_demo_models(root)?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let site = serve::Site::new(root);
    thread::spawn(move || serve::serve(listener, site, false));
    let url = format!("http://127.0.0.1:{port}/");
    run(Command::new("node").args(["xtask/e2e/demo.mjs", &url, E2E_OUT]).current_dir(root))
}

/// The npm package's tests (js/test/run.mjs): tsc, size budget, Node 20, and headless Chromium with
/// and without WebGPU. They test `pkg/` as `pack` built it (the demo e2e test packs just before).
fn js_tests(root: &Path) -> Result {
    if !root.join("pkg/webrnn.js").is_file() {
        pack::pack(root)?;
    }
    run(Command::new("node").arg("js/test/run.mjs").current_dir(root))
}

/// The package as apps consume it (js/test/apps/run.mjs): the tarball of `pkg/` built into a tiny
/// app by Vite (build and dev server), webpack, Rollup and esbuild and loaded by a plain script
/// page, each streaming a golden GRU in headless Chromium; tsc on a consumer; Node 20 from the
/// tarball installed outside the repository.
fn js_apps_tests(root: &Path) -> Result {
    if !root.join("pkg/webrnn.js").is_file() {
        pack::pack(root)?;
    }
    run(Command::new("node").arg("js/test/apps/run.mjs").current_dir(root))
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

/// The crate's browser tests, run by the standard command `wasm-pack test --headless --chrome`
/// (it builds every target of the package for wasm32; the native-only ones build empty there) in
/// headless Chromium with the flags of webdriver.json: the CPU kernels' differential tests (lib
/// unit tests, so the same bodies as natively) and tests/cpu_kernels.rs. Built with simd128 +
/// relaxed-simd so the scalar, simd128 and relaxed paths all run.
fn wasm_browser_tests(root: &Path) -> Result {
    run(Command::new("wasm-pack")
        .args(["test", "--headless", "--chrome"])
        .env("RUSTFLAGS", concat!("-C target-feature=+simd128,+relaxed-simd ", pack::simd_codegen!()))
        .env("CARGO_TARGET_DIR", root.join("target/wasm-cpu-tests"))
        .current_dir(root))
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_models_are_committed_and_small() {
        let root = workspace_root();
        assert_eq!(check_demo_models(&root), Ok(()));
        for model in DEMO_MODELS.iter().filter(|file| file.ends_with(".onnx")) {
            let bytes = fs::metadata(root.join(model)).unwrap().len();
            assert!(bytes < 2 << 20, "{model} is {bytes} bytes; the demo models stay under 2 MiB");
        }
    }

    #[test]
    fn demo_port_defaults_to_8080() {
        assert_eq!(demo_port(&[]), Ok(8080));
        assert_eq!(demo_port(&["--port".into(), "9000".into()]), Ok(9000));
        assert!(demo_port(&["--port".into()]).is_err());
        assert!(demo_port(&["--port".into(), "x".into()]).is_err());
    }
}
