//! The ONNX conformance, operator-option and PyTorch golden cases through `webrnn run --backend
//! gpu`, exactly as a user runs them, at the GPU tolerance (atol 1e-4, rtol 1e-3). A separate file
//! from `conformance.rs` (the CPU groups) so the two can change independently.

mod common;
mod gpu_common;

use common::run_cli_group;

fn run_group(group: &str, min_cases: usize) {
    if gpu_common::gpu_or_skip(group).is_some() {
        run_cli_group(group, "gpu", min_cases, gpu_common::GPU_ATOL, gpu_common::GPU_RTOL);
    }
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
