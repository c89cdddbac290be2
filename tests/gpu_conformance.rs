//! The ONNX conformance, operator-option and PyTorch golden cases through `webrnn run --backend
//! gpu`, exactly as a user runs them, at the GPU tolerance (atol 1e-4, rtol 1e-3). A separate file
//! from `conformance.rs` (the CPU groups) so the two can change independently.

mod common;
mod gpu_common;

use std::path::Path;
use std::process::Command;

use common::*;

fn run_case(case: &Path) -> Result<f32, String> {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let out = scratch(&format!("{name}-gpu"));
    let model = if case.join("model.onnx").exists() { case.join("model.onnx") } else { case.join("model.safetensors") };
    let status = Command::new(env!("CARGO_BIN_EXE_webrnn"))
        .arg("run")
        .arg(model)
        .args(["--backend", "gpu", "--out-dir"])
        .arg(&out)
        .args(numbered(case, "input"))
        .output()
        .map_err(|e| e.to_string())?;
    if !status.status.success() {
        return Err(format!("{name}: webrnn run failed: {}", String::from_utf8_lossy(&status.stderr)));
    }
    let mut worst = 0f32;
    for (i, want) in numbered(case, "output").iter().enumerate() {
        let got = out.join(format!("output_{i}.pb"));
        if !got.exists() {
            return Err(format!("{name}: no output_{i}.pb written"));
        }
        let what = format!("{name} output {i}");
        worst = worst.max(compare(
            &what,
            &read_tensor(&got),
            &read_tensor(want),
            gpu_common::GPU_ATOL,
            gpu_common::GPU_RTOL,
        )?);
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(worst)
}

fn run_group(group: &str, min_cases: usize) {
    if gpu_common::gpu_or_skip(group).is_none() {
        return;
    }
    let cases = cases(group);
    assert!(cases.len() >= min_cases, "{group}: found {} cases, expected at least {min_cases}", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| match run_case(case) {
            Ok(err) => {
                println!("{:<50} ok (max |diff| {err:.2e})", case.file_name().unwrap().to_string_lossy());
                None
            }
            Err(e) => Some(e),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} {group} cases failed on the GPU:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn onnx_conformance_cases_pass_on_gpu() {
    run_group("onnx-node", 18);
}

#[test]
fn onnx_operator_option_cases_pass_on_gpu() {
    run_group("onnx-options", 40);
}

#[test]
fn pytorch_golden_cases_pass_on_gpu() {
    run_group("golden", 10);
}
