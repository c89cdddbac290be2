//! The ONNX backend suite's node cases for the operators around recurrent layers
//! (`tests/data/onnx-node-ops`, copied from `shared/onnx-node-ops`), through the `webrnn run` CLI.
//! Every case whose operators all load must match the ONNX reference outputs at the CPU tolerance;
//! the cases whose model uses an operator (or option) this runtime refuses are listed, and the
//! refusal must be the typed `unsupported operator` error that names operator and node.
//!
//! `WEBRNN_NODE_CASES=conv,pad` runs only the cases whose name contains one of the words.

mod common;

use common::*;
use webrnn::onnx;

/// At least this many cases must run (not be refused) on each backend.
const MIN_SUPPORTED: usize = 328;

fn run_backend(backend: &str) {
    let filter: Vec<String> = std::env::var("WEBRNN_NODE_CASES")
        .map(|v| v.split(',').map(str::to_string).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let all = cases("onnx-node-ops");
    assert!(all.len() >= 360, "found {} node cases", all.len());
    let (mut passed, mut refused, mut failures) = (0usize, Vec::new(), Vec::new());
    for case in &all {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let bytes = std::fs::read(case.join("model.onnx")).unwrap();
        let mut bad = onnx::unsupported_nodes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(webrnn::Error::UnsupportedOp { op, node, .. }) = webrnn::Model::from_onnx(&bytes) {
            bad.push((op, node)); // an unsupported element type of a graph value
        }
        if !bad.is_empty() {
            let ops: Vec<String> = bad.iter().map(|(op, _)| op.clone()).collect();
            refused.push(format!("{name} ({})", ops.join(", ")));
            continue;
        }
        // Its expected output is written by hand to 4 decimals (0.1511 for 0.151056 = 1.3595/9).
        let atol = if name == "test_averagepool_2d_ceil_last_window_starts_on_pad" { 1e-4 } else { CPU_ATOL };
        match run_cli_case(case, backend, atol, CPU_RTOL) {
            Ok(err) => {
                passed += 1;
                println!("{name:<60} ok (max |diff| {err:.2e})");
            }
            Err(e) => failures.push(e),
        }
    }
    println!("{backend}: {passed} passed, {} failed, {} refused at load:", failures.len(), refused.len());
    for r in &refused {
        println!("  refused: {r}");
    }
    assert!(failures.is_empty(), "{} node cases failed on {backend}:\n{}", failures.len(), failures.join("\n"));
    if filter.is_empty() {
        assert!(passed >= MIN_SUPPORTED, "only {passed} node cases ran on {backend}, expected {MIN_SUPPORTED}");
    }
}

#[test]
fn onnx_operator_node_cases_pass_on_cpu() {
    run_backend("cpu");
}

#[test]
fn onnx_operator_node_cases_pass_on_cpu_scalar() {
    run_backend("cpu-scalar");
}
