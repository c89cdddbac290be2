//! The WebGPU page of `cargo xtask bench`: webrnn's WebGPU backend, loaded from the npm package as
//! `cargo xtask pack` builds it, side by side with onnxruntime-web's WebGPU execution provider
//! (`ort.webgpu.min.mjs`) in one headless Chromium page (`bench/gpu.html`), on the ONNX models of
//! `scripts/make_bench_models.py`.
//!
//! Chromium runs with the flags of `webdriver.json` (the ones every browser test here uses), which
//! include the WebGPU ones: on a machine without a GPU the adapter is SwiftShader. The page checks
//! that webrnn's and ORT WebGPU's outputs agree with ORT's CPU (wasm) outputs before it times
//! anything, streams its progress here (printed as it comes), and POSTs its results: the JSON goes
//! to `bench/results-webgpu.json` (the CPU page's `bench/results.json` is left alone), the markdown
//! tables to stdout. Then the native GPU-vs-CPU throughput table (`examples/gpu_bench.rs`, wgpu on
//! Vulkan: lavapipe on a machine without a GPU) is printed too.

use std::env;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// The models timed on the GPU page (SwiftShader is slow: the 512 ones would double the time).
const MODELS: &[(&str, usize)] = &[("gru", 64), ("gru", 256), ("lstm", 64), ("lstm", 256)];

/// Batch sizes of the sessions-per-second table (webrnn WebGPU next to webrnn CPU, in the page),
/// and the models it uses.
const THROUGHPUT_BATCHES: &[usize] = &[1, 64, 1024, 4096];
const THROUGHPUT_MODELS: &[&str] = &["gru_h256", "lstm_h256"];

/// How long the page may take in all.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Flags added to those of `webdriver.json`: a long-running background page must not be throttled.
const EXTRA_FLAGS: &[&str] = &[
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
];

/// Where the page loads the package from: a copy of `pkg/` taken right after packing, so that a
/// `pack` run elsewhere during the (long) page cannot pull the files from under it.
pub(crate) const PKG_COPY: &str = "target/bench/webrnn-pkg";

/// Whether this process has packed and copied the package already (the start-up page and this
/// one share it).
static PACKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Packs (unless `WEBRNN_BENCH_SKIP_PACK` is set and pkg/ exists, or this process did already)
/// and copies pkg/ to [`PKG_COPY`].
pub(crate) fn packed_copy(root: &Path, label: &str) -> Result {
    use std::sync::atomic::Ordering;
    if PACKED.load(Ordering::SeqCst) {
        return Ok(());
    }
    if env::var_os("WEBRNN_BENCH_SKIP_PACK").is_some() && root.join("pkg/webrnn.js").is_file() {
        println!("{label}: WEBRNN_BENCH_SKIP_PACK is set: timing pkg/ as it is");
    } else {
        crate::pack::pack(root)?;
    }
    copy_package(&root.join("pkg"), &root.join(PKG_COPY))?;
    PACKED.store(true, Ordering::SeqCst);
    Ok(())
}

pub fn bench(root: &Path) -> Result {
    let started = Instant::now();
    crate::setup::setup(root)?;
    let ort = root.join("bench/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs");
    if !ort.is_file() {
        return Err(format!("{} is missing: `cargo xtask setup` installs onnxruntime-web", ort.display()));
    }
    packed_copy(root, "bench-webgpu")?;
    let out = root.join("target/bench");
    crate::bench::make_models(root, &out.join("models"))?;
    write_config(&out)?;

    let flags = webdriver_flags(root)?;
    let page = crate::bench::Page {
        label: "bench-webgpu",
        path: "bench/gpu.html",
        note: " with the flags of webdriver.json (about 5 minutes)",
        flags: flags.into_iter().chain(EXTRA_FLAGS.iter().map(|f| f.to_string())).collect(),
        done: "/gpu-results",
        timeout: PAGE_TIMEOUT,
    };
    let page_started = Instant::now();
    let mut posted = crate::bench::run_page(root, &page, |path, body| {
        if path != "/gpu-log" {
            return true;
        }
        println!("bench-webgpu: [{:>4.0}s] {body}", page_started.elapsed().as_secs_f64());
        false
    })?;
    let page_time = page_started.elapsed();

    let results =
        posted.remove("/gpu-results").ok_or("the WebGPU benchmark page sent no results (timed out or crashed)")?;
    if results.starts_with("{\"error\"") {
        return Err(format!("the WebGPU benchmark page failed: {results}"));
    }
    let path = root.join("bench/results-webgpu.json");
    fs::write(&path, &results).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\n{}", posted.remove("/gpu-table").unwrap_or_default());
    println!(
        "bench-webgpu: ms per time step (batch64: per step of all 64 streams); the page took {:.0} s; raw results in bench/results-webgpu.json",
        page_time.as_secs_f64()
    );

    if let Some(table) = native_throughput(root)? {
        // The page's JSON is one object: add the native table as one more (string) field.
        if let Some(body) = results.trim_end().strip_suffix('}') {
            let merged = format!("{body},\n \"native_gpu_bench\": {}\n}}\n", json_string(&table));
            fs::write(&path, merged).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    println!("bench-webgpu: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The args of `webdriver.json`'s `goog:chromeOptions` (headless, WebGPU on SwiftShader, no
/// network): the one list of Chromium flags of this repository (see DEVELOPERS.md).
fn webdriver_flags(root: &Path) -> Result<Vec<String>> {
    let path = root.join("webdriver.json");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let flags = json_string_array(&text, "args").ok_or_else(|| format!("{}: no \"args\" array", path.display()))?;
    if !flags.iter().any(|f| f.contains("webgpu")) {
        return Err(format!("{}: its args have no WebGPU flag", path.display()));
    }
    Ok(flags)
}

/// The strings of the first array named `key` in a JSON text (plain strings; `\"` and `\\`
/// unescaped), enough for webdriver.json without a JSON parser (xtask is std only).
fn json_string_array(text: &str, key: &str) -> Option<Vec<String>> {
    let after_key = &text[text.find(&format!("\"{key}\""))? + key.len() + 2..];
    let body = after_key.trim_start().strip_prefix(':')?.trim_start().strip_prefix('[')?;
    let mut items = Vec::new();
    let mut chars = body.chars();
    loop {
        match chars.next()? {
            ']' => return Some(items),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => s.push(chars.next()?),
                        c => s.push(c),
                    }
                }
                items.push(s);
            }
            c if c == ',' || c.is_whitespace() => {}
            _ => return None,
        }
    }
}

/// Copies the package's files (not its `types/`) into `to`, replacing what was there.
pub(crate) fn copy_package(from: &Path, to: &Path) -> Result {
    if !from.join("webrnn.js").is_file() {
        return Err(format!("{}: no webrnn.js (did `cargo xtask pack` run?)", from.display()));
    }
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?.flatten() {
        let path = entry.path();
        if path.is_file() {
            let dest = to.join(entry.file_name());
            fs::copy(&path, &dest).map_err(|e| format!("copy {} -> {}: {e}", path.display(), dest.display()))?;
        }
    }
    Ok(())
}

fn write_config(out: &Path) -> Result {
    let models: Vec<String> = MODELS
        .iter()
        .map(|(cell, h)| format!(r#"{{"name":"{cell}_h{h}","cell":"{cell}","hidden":{h},"file":"{cell}_h{h}.onnx"}}"#))
        .collect();
    let batches: Vec<String> = THROUGHPUT_BATCHES.iter().map(|b| b.to_string()).collect();
    let tmodels: Vec<String> = THROUGHPUT_MODELS.iter().map(|m| format!("\"{m}\"")).collect();
    let config = format!(
        concat!(
            r#"{{"package":"/{pkg}/webrnn.js","models":[{models}],"modes":["stream","seq256","batch64"],"#,
            r#""seq":256,"batch":64,"check_steps":16,"atol":1e-4,"rtol":1e-3,"#,
            r#""block_ms":50,"budget_ms":2500,"min_samples":3,"max_samples":60,"rounds":2,"#,
            r#""throughput":{{"models":[{tmodels}],"batches":[{batches}],"budget_ms":1500,"min_calls":2}}}}"#
        ),
        pkg = PKG_COPY,
        models = models.join(","),
        tmodels = tmodels.join(","),
        batches = batches.join(","),
    );
    fs::write(out.join("gpu-config.json"), config).map_err(|e| format!("gpu-config.json: {e}"))
}

/// `cargo run --release --example gpu_bench`: sessions stepped per second, one layer, H = 256,
/// B = 1, 64, 1024, 4096, wgpu natively (Vulkan; lavapipe without a GPU) next to the CPU kernels.
/// Returns the table it printed. Set `WEBRNN_BENCH_NO_NATIVE=1` to skip it (it takes a few
/// minutes on a software Vulkan, most of them at B = 4096).
fn native_throughput(root: &Path) -> Result<Option<String>> {
    if env::var_os("WEBRNN_BENCH_NO_NATIVE").is_some() {
        println!("bench-webgpu: WEBRNN_BENCH_NO_NATIVE is set: no native GPU table");
        return Ok(None);
    }
    let started = Instant::now();
    let mut command = Command::new("cargo");
    command.args(["run", "--quiet", "--release", "--example", "gpu_bench"]).current_dir(root);
    println!("\nbench-webgpu: native GPU (wgpu on Vulkan) next to the CPU kernels: $ {}", crate::describe(&command));
    let out = command.stderr(Stdio::inherit()).output().map_err(|e| format!("cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("`cargo run --release --example gpu_bench` failed ({})", out.status));
    }
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{table}");
    println!(
        "bench-webgpu: sessions stepped per second, one layer, natively ({:.0} s with the build)",
        started.elapsed().as_secs_f64()
    );
    Ok(Some(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_webgpu_flags_of_webdriver_json() {
        let flags = webdriver_flags(&crate::workspace_root()).unwrap();
        assert!(flags.iter().any(|f| f == "--enable-unsafe-webgpu"), "{flags:?}");
        assert!(!flags.iter().any(|f| f == "--disable-gpu"), "{flags:?}");
    }

    #[test]
    fn escapes_json_strings() {
        assert_eq!(json_string("a \"b\"\\\n\t"), r#""a \"b\"\\\n\u0009""#);
    }

    #[test]
    fn parses_a_string_array() {
        let text = r#"{ "a": 1, "args" : [ "--x", "--y=\"z\"" ,"w" ] }"#;
        assert_eq!(json_string_array(text, "args"), Some(vec!["--x".into(), "--y=\"z\"".into(), "w".into()]));
        assert_eq!(json_string_array(text, "nope"), None);
        assert_eq!(json_string_array(r#"{"args": [1]}"#, "args"), None);
    }
}
