//! int8 weights (`webrnn run --backend cpu-int8`) on every PyTorch golden case, run through the CLI as
//! a user would: prints each case's accuracy loss against f32 (`--backend cpu`) and against
//! PyTorch's own outputs, and asserts only a loose sanity bound, since int8 cannot meet the f32
//! tolerance (atol 1e-5). `cargo test --test int8 -- --nocapture` shows the figures;
//! `cargo run --release --example int8_accuracy` prints the same table (the bench does).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use webrnn::Tensor;

/// The loosest max |int8 - f32| a golden case may show. The cases' outputs are hidden states in
/// [-1, 1], probabilities and log-probabilities; their int8 losses are 3e-3 to 1.1e-2 (each step
/// rounds every weight and activation to 1/127 and 1/63 of its row's largest), so 0.05 only
/// catches a broken path, not a worse rounding.
const SANITY: f32 = 0.05;

/// The outputs of `webrnn run --backend BACKEND` on a case.
fn outputs(case: &Path, backend: &str) -> Vec<Tensor> {
    run_cli(case, backend).unwrap_or_else(|e| panic!("{e}"))
}

/// max |a - b| over every element of every output; NaN where one is NaN and the other is not.
fn max_diff(a: &[Tensor], b: &[Tensor]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.shape(), y.shape());
        for (&u, &v) in x.as_f32().unwrap().iter().zip(y.as_f32().unwrap()) {
            if u.is_nan() != v.is_nan() {
                return f32::NAN;
            }
            if !u.is_nan() {
                worst = worst.max((u - v).abs());
            }
        }
    }
    worst
}

#[test]
fn golden_cases_on_int8_stay_near_f32() {
    let cases = cases("golden");
    assert!(cases.len() >= 10, "found {} golden cases", cases.len());
    println!("{:<34} {:>16} {:>20}", "golden case", "|int8 - f32|", "|int8 - pytorch|");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let int8 = outputs(case, "cpu-int8");
        let f32s = outputs(case, "cpu");
        let expected: Vec<Tensor> = numbered(case, "output").iter().map(|p| read_tensor(p)).collect();
        let (loss, vs_torch) = (max_diff(&int8, &f32s), max_diff(&int8, &expected));
        println!("{name:<34} {loss:>16.2e} {vs_torch:>20.2e}");
        if loss.is_nan() || loss > SANITY {
            failures.push(format!("{name}: max |int8 - f32| = {loss}"));
        }
    }
    assert!(failures.is_empty(), "int8 too far from f32:\n{}", failures.join("\n"));
}

#[test]
fn the_cli_takes_cpu_int8_and_says_which_backends_exist() {
    let bad = Command::new(env!("CARGO_BIN_EXE_webrnn"))
        .args(["run", "model.onnx", "--backend", "cpu-int4"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("cpu-int8"), "{err}");
    assert_eq!(webrnn::Backend::parse("cpu-int8").unwrap().name(), "cpu-int8");
}
