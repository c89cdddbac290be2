//! The GPU backend: wgpu on Vulkan natively (lavapipe on CI), WebGPU in the browser.
//!
//! * `shaders/*.wgsl` — one kernel per file ([`shaders`] joins shared snippets in front);
//! * [`layer`] — what the kernels read: gate rows interleaved so one workgroup owns every gate of
//!   its hidden units, the per-step uniform;
//! * [`recurrent`] — a node: the input projection of a chunk of steps as one GEMM, then the steps
//!   as fused dispatches in one compute pass, one submission per chunk;
//! * [`cpu_twin`] — each kernel again in plain Rust, what the GPU output is tested against;
//! * [`context`] — device, limits, pipelines; `async` so the browser can drive it.
//!
//! Natively [`GpuKernels`] blocks on the device. Every wgpu failure (no adapter, validation, out
//! of memory, device loss, a size beyond the adapter's limits) is a
//! [`crate::Error::BackendUnavailable`] naming it; nothing panics. After a device loss the
//! kernels run on the scalar reference (the recurrent state is never only on the GPU).

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod context;
pub mod cpu_twin;
mod kernels;
pub mod layer;
pub mod pool;
pub mod recurrent;
pub mod self_test;
pub mod shaders;

pub use context::GpuContext;
pub use kernels::{run_counts, GpuKernels, KernelChoice};

/// Natively, drives one of the backend's `async` functions to completion (polling the device).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}
