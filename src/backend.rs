//! Backend selection. The CPU backends run the recurrent kernels of [`crate::cell`]; the WebGPU
//! backend is not part of this build yet.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The fastest CPU path of this build.
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

    /// Errors unless this backend can run here.
    pub fn ensure_available(self) -> Result<()> {
        match self {
            Backend::Cpu | Backend::CpuScalar => Ok(()),
            Backend::Gpu => Err(Error::BackendUnavailable("the GPU backend is not built yet".into())),
        }
    }
}
