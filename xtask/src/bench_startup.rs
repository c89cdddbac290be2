//! The start-up table of `cargo xtask bench`: how long a page takes from importing the library to
//! the first output of a GRU (H = 256, `gru_h256.onnx` of `scripts/make_bench_models.py`), webrnn
//! (the npm package as `pack` builds it, `Runtime.create()` with its defaults) against
//! onnxruntime-web (wasm EP, one thread). Cold: each measurement is a fresh headless Chromium with
//! a profile of its own (no HTTP cache, no compiled-wasm cache), one implementation per browser,
//! the order alternating round by round (`bench/startup.html`, `bench/startup.js`). The page
//! reports each phase; this prints the medians over the rounds and the ratio of the totals, and
//! writes every round's report to `bench/results-startup.json`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::bench::{run_page, Page, CHROMIUM_FLAGS};
use crate::Result;

/// The last run's medians in one line, which `cargo xtask pack` prints beside the page sizes.
pub const SUMMARY: &str = "bench/results-startup.txt";

/// Fresh browsers per implementation.
const ROUNDS: usize = 7;

const IMPLS: [&str; 2] = ["webrnn", "ort"];

/// One page's `/line`: `key=value` pairs in the page's order.
type Report = Vec<(String, String)>;

fn get<'a>(r: &'a Report, key: &str) -> Option<&'a str> {
    r.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn number(r: &Report, key: &str) -> f64 {
    get(r, key).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

pub fn bench(root: &Path) -> Result {
    crate::setup::setup(root)?;
    crate::bench_gpu::packed_copy(root, "bench-startup")?;
    crate::bench::make_models(root, &root.join("target/bench/models"))?;
    let mut reports: [Vec<Report>; 2] = [Vec::new(), Vec::new()];
    let mut json = Vec::new();
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always meets a machine just woken up.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let imp = IMPLS[i];
            let path = format!("bench/startup.html?impl={imp}&pkg=/{}/webrnn.js", crate::bench_gpu::PKG_COPY);
            let page = Page {
                label: "bench-startup",
                path: &path,
                note: "",
                flags: CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect(),
                done: "/results",
                timeout: Duration::from_secs(120),
            };
            let mut posted = run_page(root, &page, |_, _| true)?;
            let line = posted.remove("/line").ok_or_else(|| format!("the start-up page ({imp}) sent no results"))?;
            let report: Report = line
                .split(';')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if let Some(e) = get(&report, "error") {
                return Err(format!("the start-up page ({imp}) failed: {e}"));
            }
            println!("bench-startup: round {} {imp}: {:.1} ms", round + 1, number(&report, "total"));
            json.extend(posted.remove("/results"));
            reports[i].push(report);
        }
    }
    let sums = reports.each_ref().map(|r| r.first().map_or(f64::NAN, |r| number(r, "sum")));
    if (sums[0] - sums[1]).abs() > 1e-3 * (1.0 + sums[1].abs()) {
        return Err(format!("webrnn's first output (sum {}) differs from onnxruntime's ({})", sums[0], sums[1]));
    }
    println!("\n{}", table(&reports));
    let totals = reports.each_ref().map(|runs| median(runs.iter().map(|r| number(r, "total")).collect()));
    let summary = format!(
        "webrnn {:.1} ms, onnxruntime-web {:.1} ms: {:.2}× (median of {ROUNDS} fresh browsers each, GRU H = 256)\n",
        totals[0],
        totals[1],
        totals[0] / totals[1]
    );
    let path = root.join(SUMMARY);
    fs::write(&path, summary).map_err(|e| format!("{}: {e}", path.display()))?;
    let path = root.join("bench/results-startup.json");
    fs::write(&path, format!("{{\"model\":\"gru_h256\",\"rounds\":[{}]}}\n", json.join(",")))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "bench-startup: ms from import to the first output, median of {ROUNDS} fresh browsers each; every round in bench/results-startup.json"
    );
    Ok(())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The markdown table: per implementation the median of each phase and of the total; the ratio.
fn table(reports: &[Vec<Report>; 2]) -> String {
    let mut out = String::from(
        "| implementation | phases (median ms) | wasm fetched | total (median ms) |\n| --- | --- | --- | --- |\n",
    );
    let mut totals = [f64::NAN; 2];
    for (i, runs) in reports.iter().enumerate() {
        let Some(first) = runs.first() else { continue };
        let phases: Vec<String> = first
            .iter()
            .filter_map(|(k, _)| k.strip_prefix("phase:"))
            .map(|p| {
                let key = format!("phase:{p}");
                format!("{p} {:.1}", median(runs.iter().map(|r| number(r, &key)).collect()))
            })
            .collect();
        let wasm: Vec<String> = first
            .iter()
            .filter_map(|(k, v)| {
                Some(format!("{} ({:.0} KiB)", k.strip_prefix("wasm:")?, v.parse::<f64>().ok()? / 1024.0))
            })
            .collect();
        totals[i] = median(runs.iter().map(|r| number(r, "total")).collect());
        out.push_str(&format!(
            "| {} ({}) | {} | {} | {:.1} |\n",
            IMPLS[i],
            get(first, "variant").unwrap_or("?"),
            phases.join(", "),
            wasm.join(", "),
            totals[i]
        ));
    }
    out.push_str(&format!("\nwebrnn / ort: {:.2}×\n", totals[0] / totals[1]));
    out
}
