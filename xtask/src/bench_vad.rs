//! The voice-activity table of `cargo xtask bench` (`--vad` alone): webrnn's `Vad` (the package's
//! `webrnn/audio`, packed first) against onnxruntime-web (wasm EP, one thread, called as
//! @ricky0123/vad-web 0.0.31 calls Silero) on Silero v5 and legacy, in one headless Chromium page
//! (`bench/vad.html`, `bench/vad.js`): µs per chunk (interleaved rounds after a warm-up), the
//! real-time factor, cold start to the first probability; then what a VAD page downloads,
//! gzipped: webrnn's JS (main and audio entries), one wasm variant (the largest CPU-only one) and the model,
//! against vad-web's bundle (onnxruntime-web's JS inside), its worklet, onnxruntime-web's wasm
//! and its loader, and the same model. JSON in `bench/results-vad.json`, the tables on stdout.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bench::{run_page, Page, CHROMIUM_FLAGS};
use crate::{gzip_size, Result};

/// Where the page loads the package from (a copy, as `bench_gpu.rs` takes one).
const PKG_COPY: &str = "target/bench/vad-pkg";
const MODELS: &[&str] = &["v5", "legacy"];

/// What a page running vad-web 0.0.31 downloads besides the model (its README's set-up: the
/// bundle, which has onnxruntime-web's JS inside, the worklet, and onnxruntime-web's wasm files).
const VAD_WEB_FILES: &[&str] = &[
    "bench/node_modules/@ricky0123/vad-web/dist/bundle.min.js",
    "bench/node_modules/@ricky0123/vad-web/dist/vad.worklet.bundle.min.js",
    "bench/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
    "bench/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
];

pub fn bench(root: &Path) -> Result {
    crate::setup::setup(root)?;
    for f in VAD_WEB_FILES {
        if !root.join(f).is_file() {
            return Err(format!("{f} is missing: `cargo xtask setup` installs bench/package.json"));
        }
    }
    if env::var_os("WEBRNN_BENCH_SKIP_PACK").is_some() && root.join("pkg/webrnn-audio.js").is_file() {
        println!("bench-vad: WEBRNN_BENCH_SKIP_PACK is set: timing pkg/ as it is");
    } else {
        crate::pack::pack(root)?;
    }
    crate::bench_gpu::copy_package(&root.join("pkg"), &root.join(PKG_COPY))?;
    let out = root.join("target/bench");
    let models: Vec<String> = MODELS.iter().map(|m| format!("\"{m}\"")).collect();
    let config = format!(
        r#"{{"package":"/{PKG_COPY}/webrnn.js","audio":"/{PKG_COPY}/webrnn-audio.js","models":[{}],"warmup_calls":200,"block_ms":20,"budget_ms":400,"rounds":6,"cold_runs":5}}"#,
        models.join(",")
    );
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    fs::write(out.join("vad-config.json"), config).map_err(|e| format!("vad-config.json: {e}"))?;
    let page = Page {
        label: "bench-vad",
        path: "bench/vad.html",
        note: " (about a minute)",
        flags: CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect(),
        done: "/results",
        timeout: Duration::from_secs(10 * 60),
    };
    let mut posted = run_page(root, &page, |path, body| {
        if path == "/progress" {
            println!("bench-vad: {body}");
            return false;
        }
        true
    })?;
    let results = posted.remove("/results").ok_or("the VAD page sent no results (timed out or crashed)")?;
    if results.starts_with("{\"error\"") {
        return Err(format!("the VAD benchmark page failed: {results}"));
    }
    println!("\n{}", posted.remove("/table").unwrap_or_default());
    println!("bench-vad: µs per chunk of Vad.process (framing, context, state, segment rules) vs onnxruntime-web's session.run as vad-web calls it; RTF = compute time / audio time; cold start: a fresh iframe's navigation to its first probability, median of 5");

    let (table, json) = downloads(root)?;
    println!("\n{table}");
    let path = root.join("bench/results-vad.json");
    let merged = match results.trim_end().strip_suffix('}') {
        Some(body) => format!("{body},\"downloads\":{json}}}\n"),
        None => results,
    };
    fs::write(&path, merged).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("bench-vad: raw results in bench/results-vad.json");
    Ok(())
}

/// The gzipped bytes (level 9) of what each page downloads, per model: a markdown table and JSON.
fn downloads(root: &Path) -> Result<(String, String)> {
    let pkg = root.join("pkg");
    // A VAD page runs on the CPU: it loads a CPU-only build (never the webrnn_gpu_* ones).
    let wasm = crate::files_with_extension(&pkg, "wasm")?
        .into_iter()
        .filter(|f| !f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("webrnn_gpu")))
        .map(|f| gzip_size(&f).map(|g| (g, f)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .max()
        .ok_or("pkg/ has no .wasm")?;
    let js = gzip_size(&pkg.join("webrnn.js"))? + gzip_size(&pkg.join("webrnn-audio.js"))?;
    let mut vad_web = 0;
    for f in VAD_WEB_FILES {
        vad_web += gzip_size(&root.join(f))?;
    }
    let kb = |b: u64| format!("{:.0} KB", b as f64 / 1000.0);
    let mut table = String::from(
        "| download, gzipped | webrnn (JS + wasm + model) | vad-web 0.0.31 + onnxruntime-web (JS + wasm + model) | ratio | runtime only (no model) |\n|---|---|---|---|---|\n",
    );
    let mut json = Vec::new();
    for model in MODELS {
        let file: PathBuf = root.join(format!("tests/data/realworld/models/silero_vad_{model}.onnx"));
        let m = gzip_size(&file)?;
        let (w, v) = (js + wasm.0 + m, vad_web + m);
        table.push_str(&format!(
            "| Silero {model} | {} ({} JS, {} wasm, {} model) | {} ({} runtime, {} model) | {:.2}× | {} vs {}: {:.2}× |\n",
            kb(w),
            kb(js),
            kb(wasm.0),
            kb(m),
            kb(v),
            kb(vad_web),
            kb(m),
            w as f64 / v as f64,
            kb(js + wasm.0),
            kb(vad_web),
            (js + wasm.0) as f64 / vad_web as f64
        ));
        json.push(format!(
            r#"{{"model":"{model}","webrnn_js":{js},"webrnn_wasm":{},"model_gz":{m},"vad_web_runtime":{vad_web},"webrnn_total":{w},"vad_web_total":{v}}}"#,
            wasm.0
        ));
    }
    // What the demo ships: silero-vad 6.2.3's 16 kHz-only export (the v5 interface, v6's weights,
    // no 8 kHz branch), and the same with int8 weights (scripts/quantize_weights.py: a different
    // model, within 0.1 of its probabilities), against vad-web's v5 page.
    let v5 = gzip_size(&root.join("tests/data/realworld/models/silero_vad_v5.onnx"))?;
    for (name, what) in [
        ("16k_op15", "the demo's 16 kHz-only model (silero_vad_16k_op15)"),
        ("16k_op15_int8", "that model's int8-weight file (silero_vad_16k_op15_int8, scripts/quantize_weights.py)"),
    ] {
        let m = gzip_size(&root.join(format!("tests/data/realworld/models/silero_vad_{name}.onnx")))?;
        let (w, v) = (js + wasm.0 + m, vad_web + v5);
        table.push_str(&format!(
            "| webrnn with {what} vs vad-web with v5 | {} ({} model) | {} | {:.2}× | |\n",
            kb(w),
            kb(m),
            kb(v),
            w as f64 / v as f64
        ));
        json.push(format!(r#"{{"model":"{name} vs v5","webrnn_total":{w},"vad_web_total":{v}}}"#));
    }
    Ok((table, format!("[{}]", json.join(","))))
}
