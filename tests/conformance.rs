//! The 18 ONNX recurrent conformance cases, the operator-option cases (every activation, clip,
//! sequence_lens, layout 1...) and the project's PyTorch golden cases, run through the
//! `webrnn run` CLI exactly as a user would, compared at the CPU tolerance (atol 1e-5, rtol 1e-4).

mod common;

use common::*;

fn run_group(group: &str, backend: &str, min_cases: usize) {
    run_cli_group(group, backend, min_cases, CPU_ATOL, CPU_RTOL);
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
