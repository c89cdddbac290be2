//! The 18 ONNX recurrent conformance cases, the operator-option cases (every activation, clip,
//! sequence_lens, layout 1...) and the project's PyTorch golden cases, run through the
//! `webrnn run` CLI exactly as a user would, compared at the CPU tolerance (atol 1e-5, rtol 1e-4).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn model_file(case: &Path) -> std::path::PathBuf {
    let onnx = case.join("model.onnx");
    if onnx.exists() {
        onnx
    } else {
        case.join("model.safetensors")
    }
}

/// Runs one case through the CLI with `backend`; returns the max abs error seen.
fn run_case(case: &Path, backend: &str) -> Result<f32, String> {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let out = scratch(&format!("{name}-{backend}"));
    let status = Command::new(env!("CARGO_BIN_EXE_webrnn"))
        .arg("run")
        .arg(model_file(case))
        .args(["--backend", backend, "--out-dir"])
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
        worst = worst.max(compare(
            &format!("{name} output {i}"),
            &read_tensor(&got),
            &read_tensor(want),
            CPU_ATOL,
            CPU_RTOL,
        )?);
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(worst)
}

fn run_group(group: &str, backend: &str, min_cases: usize) {
    let cases = cases(group);
    assert!(cases.len() >= min_cases, "{group}: found {} cases, expected at least {min_cases}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        match run_case(case, backend) {
            Ok(err) => println!("{:<50} ok (max |diff| {err:.2e})", case.file_name().unwrap().to_string_lossy()),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {group} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn onnx_conformance_cases_pass_on_cpu() {
    run_group("onnx-node", "cpu", 18);
}

#[test]
fn onnx_conformance_cases_pass_on_cpu_scalar() {
    run_group("onnx-node", "cpu-scalar", 18);
}

#[test]
fn onnx_operator_option_cases_pass_on_cpu() {
    run_group("onnx-options", "cpu", 40);
}

#[test]
fn onnx_operator_option_cases_pass_on_cpu_scalar() {
    run_group("onnx-options", "cpu-scalar", 40);
}

#[test]
fn pytorch_golden_cases_pass_on_cpu() {
    run_group("golden", "cpu", 10);
}
