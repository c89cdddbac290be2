//! The real-world table of `cargo xtask bench`: the models of `tests/data/realworld` (Silero VAD
//! v5 and legacy as @ricky0123/vad-web ships them, DTLN's two stages, GTCRN) called chunk by
//! chunk on the fixtures' real audio, their state carried, by every webrnn CPU variant and by
//! onnxruntime-web (wasm EP, one thread) called the way vad-web calls it, in one headless Chromium
//! page (`bench/realworld.html`, `bench/realworld.js`). Outputs are checked to agree first; the
//! rounds interleave the implementations after a warm-up. The JSON goes to
//! `bench/results-realworld.json`, the markdown table to stdout.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::bench::{build_variant, run_page, Page, CHROMIUM_FLAGS, VARIANTS};
use crate::Result;

/// The cases timed, in the table's order (their directories under `tests/data/realworld`).
const CASES: &[&str] = &["silero_v5", "silero_legacy", "dtln_model_1", "dtln_model_2", "gtcrn_simple"];

pub fn bench(root: &Path) -> Result {
    crate::setup::setup(root)?;
    let out = root.join("target/bench");
    let only: Option<Vec<String>> =
        std::env::var("WEBRNN_BENCH_VARIANTS").ok().map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let variants: Vec<&str> =
        VARIANTS.iter().map(|(n, _)| *n).filter(|n| only.as_ref().is_none_or(|l| l.iter().any(|x| x == n))).collect();
    for (name, features) in VARIANTS.iter().filter(|(n, _)| variants.contains(n)) {
        build_variant(root, &out, name, features)?;
    }
    let quoted = |names: &[&str]| names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(",");
    let config = format!(
        r#"{{"cases":[{}],"variants":[{}],"checked_calls":8,"warmup_calls":200,"block_ms":20,"budget_ms":300,"rounds":5}}"#,
        quoted(CASES),
        quoted(&variants)
    );
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    fs::write(out.join("realworld-config.json"), config).map_err(|e| format!("realworld-config.json: {e}"))?;
    let page = Page {
        label: "bench-realworld",
        path: "bench/realworld.html",
        note: " (a few minutes)",
        flags: CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect(),
        done: "/results",
        timeout: Duration::from_secs(15 * 60),
    };
    let mut posted = run_page(root, &page, |path, body| {
        if path == "/progress" {
            println!("bench-realworld: {body}");
            return false;
        }
        true
    })?;
    let results = posted.remove("/results").ok_or("the real-world page sent no results (timed out or crashed)")?;
    if results.starts_with("{\"error\"") {
        return Err(format!("the real-world benchmark page failed: {results}"));
    }
    let path = root.join("bench/results-realworld.json");
    fs::write(&path, &results).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\n{}", posted.remove("/table").unwrap_or_default());
    println!("bench-realworld: µs per call (one chunk, state carried); raw results in bench/results-realworld.json");
    Ok(())
}
