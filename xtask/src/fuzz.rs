//! `cargo xtask fuzz [--minutes N]`: the coverage-guided fuzzers of `fuzz/` (cargo-fuzz, i.e.
//! libFuzzer, on the nightly toolchain the machine image carries beside stable) for N minutes per
//! target (default 10), and a short run of each in `cargo xtask test`.
//!
//! Targets: `onnx` (the ONNX loader, real-world operators folded at load, a loaded model stepped),
//! `safetensors` (state dict + config), `snapshot` (session state decoding). Seeds are the test
//! fixtures (copied into `fuzz/corpus/<target>` when it has none; the corpus grows there between
//! runs and is not committed). A crash, a hang (10 s per input) or an allocation past 2 GiB stops
//! the run with the input in `fuzz/artifacts/<target>/`; commit it under
//! `tests/data/fuzz/<target>/` and `tests/fuzz_regressions.rs` runs it on every `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{output, run, Result};

pub const TARGETS: &[&str] = &["onnx", "safetensors", "snapshot"];

/// Seconds per target of the run in `cargo xtask test`.
const CI_SECONDS: u64 = 25;

/// `cargo xtask fuzz`: setup, then each target for `seconds`.
pub fn fuzz(root: &Path, seconds: u64) -> Result {
    crate::setup::setup(root)?;
    run_targets(root, seconds)
}

/// The short run of `cargo xtask test` (whose first step is setup).
pub fn ci(root: &Path) -> Result {
    run_targets(root, CI_SECONDS)
}

fn run_targets(root: &Path, seconds: u64) -> Result {
    if output(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])).is_none() {
        return Err("the fuzzers need the nightly toolchain (`rustup toolchain list` shows none)".into());
    }
    let dir = root.join("fuzz");
    // No sanitizer: the crate is safe Rust natively (the SIMD kernels are wasm-only), and panics,
    // aborts, hangs and huge allocations are what is looked for; twice the inputs per second.
    let common = ["+nightly", "fuzz"];
    let flags = ["-O", "--sanitizer", "none"];
    run(Command::new("cargo").args(common).arg("build").args(flags).current_dir(&dir))?;
    for target in TARGETS {
        let corpus = seed(root, target)?;
        println!("fuzz: {target} for {seconds} s ({} inputs in the corpus)", count(&corpus));
        let status = Command::new("cargo")
            .args(common)
            .args(["run", target])
            .args(flags)
            .arg(&corpus)
            .args(["--", &format!("-max_total_time={seconds}"), "-timeout=10", "-rss_limit_mb=2048"])
            .args(["-print_final_stats=1", "-max_len=262144"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("cargo fuzz: {e}"))?;
        if !status.success() {
            return Err(format!(
                "fuzz target {target} failed: its input is in fuzz/artifacts/{target}/; commit it under \
                 tests/data/fuzz/{target}/ (tests/fuzz_regressions.rs) with the fix"
            ));
        }
    }
    Ok(())
}

/// `fuzz/corpus/<target>`, seeded from the fixtures when empty.
fn seed(root: &Path, target: &str) -> Result<PathBuf> {
    let corpus = root.join("fuzz/corpus").join(target);
    fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    if count(&corpus) > 0 {
        return Ok(corpus);
    }
    let data = root.join("tests/data");
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let read = |p: &Path| fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    match target {
        "onnx" => {
            for group in ["onnx-node", "onnx-node-ops", "onnx-options", "golden", "realworld/models"] {
                for file in files(&data.join(group)) {
                    let small = fs::metadata(&file).is_ok_and(|m| m.len() <= 256 * 1024);
                    if small && file.extension().is_some_and(|e| e == "onnx") {
                        seeds.push((format!("{group}-{}", seeds.len()), read(&file)?));
                    }
                }
            }
        }
        "safetensors" => {
            for case in files(&data.join("golden")).into_iter().filter(|f| f.ends_with("model.safetensors")) {
                let dir = case.parent().unwrap_or(&data);
                let mut bytes = read(&dir.join("config.json"))?;
                bytes.push(0);
                bytes.extend(read(&case)?);
                seeds.push((format!("golden-{}", seeds.len()), bytes));
            }
        }
        _ => seeds.push(("edit-nothing".into(), vec![0xff])),
    }
    for file in files(&data.join("fuzz").join(target)) {
        seeds.push((format!("regression-{}", seeds.len()), read(&file)?));
    }
    for (name, bytes) in seeds {
        let path = corpus.join(name);
        fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(corpus)
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Every file under `dir`, recursively, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
