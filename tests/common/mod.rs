//! Shared helpers for the integration tests: test-case discovery and tolerance comparison.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use webrnn::{onnx, Tensor};

pub const CPU_ATOL: f32 = 1e-5;
pub const CPU_RTOL: f32 = 1e-4;

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Case directories under `tests/data/<group>` (each with a model and `test_data_set_0`).
pub fn cases(group: &str) -> Vec<PathBuf> {
    let dir = data_dir().join(group);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("test_data_set_0").is_dir())
        .collect();
    v.sort();
    v
}

/// `input_N.pb` / `output_N.pb` files of a case, in N order.
pub fn numbered(case: &Path, prefix: &str) -> Vec<PathBuf> {
    let ds = case.join("test_data_set_0");
    (0..).map(|i| ds.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.exists()).collect()
}

pub fn read_tensor(p: &Path) -> Tensor {
    onnx::decode_tensor(&std::fs::read(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Max violation of `|a - b| <= atol + rtol·|b|` (0 when within tolerance); NaN must match NaN.
pub fn compare(what: &str, got: &Tensor, want: &Tensor, atol: f32, rtol: f32) -> Result<f32, String> {
    if got.shape() != want.shape() {
        return Err(format!("{what}: shape {:?}, expected {:?}", got.shape(), want.shape()));
    }
    if let (Ok(g), Ok(w)) = (got.as_i64(), want.as_i64()) {
        // Integer and boolean outputs are exact.
        return match g.iter().zip(w).position(|(a, b)| a != b) {
            Some(i) => Err(format!("{what}[{i}]: {} vs expected {}", g[i], w[i])),
            None => Ok(0.0),
        };
    }
    let (g, w) = (got.as_f32().map_err(|e| e.to_string())?, want.as_f32().map_err(|e| e.to_string())?);
    let mut max_err = 0f32;
    for (i, (&a, &b)) in g.iter().zip(w).enumerate() {
        if a.is_nan() || b.is_nan() {
            if a.is_nan() != b.is_nan() {
                return Err(format!("{what}[{i}]: {a} vs {b}"));
            }
            continue;
        }
        let err = (a - b).abs();
        if err > atol + rtol * b.abs() {
            return Err(format!("{what}[{i}]: {a} vs expected {b} (|diff| {err})"));
        }
        max_err = max_err.max(err);
    }
    Ok(max_err)
}

/// A fresh empty directory under the system temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("webrnn-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The case's model file: `model.onnx`, else `model.safetensors` (with `config.json` beside it).
pub fn model_file(case: &Path) -> PathBuf {
    let onnx = case.join("model.onnx");
    if onnx.exists() {
        onnx
    } else {
        case.join("model.safetensors")
    }
}

/// Runs one case through `webrnn run --backend BACKEND` exactly as a user would; returns its
/// outputs in order.
pub fn run_cli(case: &Path, backend: &str) -> Result<Vec<Tensor>, String> {
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
    let mut got = Vec::new();
    for i in 0..numbered(case, "output").len() {
        let file = out.join(format!("output_{i}.pb"));
        if !file.exists() {
            return Err(format!("{name}: no output_{i}.pb written"));
        }
        got.push(read_tensor(&file));
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(got)
}

/// Runs one case through the CLI on `backend` and compares every output with the expected one;
/// returns the max abs error seen.
pub fn run_cli_case(case: &Path, backend: &str, atol: f32, rtol: f32) -> Result<f32, String> {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let mut worst = 0f32;
    for (i, (got, want)) in run_cli(case, backend)?.iter().zip(numbered(case, "output")).enumerate() {
        let what = format!("{name} output {i}");
        worst = worst.max(compare(&what, got, &read_tensor(&want), atol, rtol)?);
    }
    Ok(worst)
}

/// Every case of `tests/data/<group>` through the CLI on `backend`; fails listing every failure.
pub fn run_cli_group(group: &str, backend: &str, min_cases: usize, atol: f32, rtol: f32) {
    let cases = cases(group);
    assert!(cases.len() >= min_cases, "{group}: found {} cases, expected at least {min_cases}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        match run_cli_case(case, backend, atol, rtol) {
            Ok(err) => println!("{:<50} ok (max |diff| {err:.2e})", case.file_name().unwrap().to_string_lossy()),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {group} cases failed on {backend}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
