//! Backends: who runs the recurrent nodes. Everything else in a graph (embedding lookups, heads,
//! shape plumbing) runs on the CPU in [`crate::ops`]; a backend supplies [`RecurrentKernels`], which
//! a model prepares once (e.g. to pre-pack its constant weights) and then calls for every recurrent
//! node it executes. The scalar reference ([`ScalarKernels`]) is always available and is what every
//! other backend is tested against.

use crate::cell::{self, RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use crate::error::{Error, Result};
use crate::graph::Graph;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The fastest CPU path of this build (today: the scalar reference).
    Cpu,
    /// The scalar reference, always available.
    CpuScalar,
    /// WebGPU (browser) / wgpu (native).
    Gpu,
}

impl Backend {
    pub fn parse(name: &str) -> Result<Backend> {
        match name {
            "cpu" => Ok(Backend::Cpu),
            "cpu-scalar" => Ok(Backend::CpuScalar),
            "gpu" | "webgpu" => Ok(Backend::Gpu),
            other => Err(Error::InvalidArgument(format!("unknown backend '{other}' (cpu, cpu-scalar, gpu)"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::CpuScalar => "cpu-scalar",
            Backend::Gpu => "gpu",
        }
    }

    /// The kernels of this backend, prepared for `graph`.
    pub fn kernels(self, graph: &Graph) -> Result<Box<dyn RecurrentKernels>> {
        let mut k: Box<dyn RecurrentKernels> = match self {
            Backend::Cpu | Backend::CpuScalar => Box::new(ScalarKernels),
            Backend::Gpu => return Err(Error::BackendUnavailable("the GPU backend is not built yet".into())),
        };
        k.prepare(graph)?;
        Ok(k)
    }
}

/// Runs recurrent nodes. Implementations must give the results of [`cell::run_reference`] within
/// their backend's tolerance, and must never panic.
pub trait RecurrentKernels: Send + Sync {
    /// Which backend this is (for reports and errors).
    fn backend(&self) -> Backend;

    /// Called once per model before any `run`: pre-pack constant weights, allocate buffers...
    fn prepare(&mut self, _graph: &Graph) -> Result<()> {
        Ok(())
    }

    /// Runs recurrent node `node` (its index in `graph.nodes`) of the prepared graph.
    fn run(&self, node: usize, spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs>;
}

/// The scalar reference of [`crate::cell`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ScalarKernels;

impl RecurrentKernels for ScalarKernels {
    fn backend(&self) -> Backend {
        Backend::CpuScalar
    }

    fn run(&self, _node: usize, spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
        cell::run_reference(spec, inputs)
    }
}
