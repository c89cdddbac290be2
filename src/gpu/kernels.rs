//! [`GpuKernels`]: the GPU backend behind [`RecurrentKernels`]. One `async` body serves both
//! entry points: natively `run` blocks on it; in the browser only `run_async` works (WebGPU maps
//! buffers asynchronously), and `run` says so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::context::GpuContext;
use super::pool::{Pools, ResidentRun};
use super::recurrent::{self, GpuWeights, RunOptions};
use crate::backend::{Backend, DeviceStates, LocalFuture, RecurrentKernels};
use crate::backend::{Layer, LayerInput};
use crate::cell::rec_input;
use crate::cell::{self, RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use crate::cpu::CpuKernels;
use crate::error::{Error, Result};

/// Recurrent node runs since start, on the GPU and on the CPU fallback (every `GpuKernels`):
/// how an app (and the tests) can tell that the GPU really did the work.
static GPU_RUNS: AtomicU64 = AtomicU64::new(0);
static FALLBACK_RUNS: AtomicU64 = AtomicU64::new(0);

/// `(GPU runs, CPU fallback runs)` of recurrent nodes so far, over every GPU model.
pub fn run_counts() -> (u64, u64) {
    (GPU_RUNS.load(Ordering::Relaxed), FALLBACK_RUNS.load(Ordering::Relaxed))
}

/// Which step and projection kernels a [`GpuKernels`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// Barrier-free kernels on software adapters and for small batches, tiled ones otherwise.
    #[default]
    Auto,
    /// Tiled (workgroup memory + barriers) above the small-batch sizes, whatever the adapter.
    Tiled,
    /// Barrier-free kernels at every size.
    BarrierFree,
}

/// What `prepare` learnt about a recurrent node.
#[derive(Debug, Clone, Copy)]
struct NodeInfo {
    /// Addresses of the graph's constant W, R, B, P: a call whose tensors are these may use the
    /// weights uploaded for the node (the graph outlives the kernels, so they are stable).
    constants: [Option<usize>; 4],
    /// Whether anything reads `Y` (else it is not read back).
    y_used: bool,
}

/// [`RecurrentKernels`] on the GPU. A node the GPU path does not run (LSTM output projection,
/// empty input) runs on the CPU kernels, and so does everything after a device loss: they are
/// prepared next to the GPU weights, so the fallback runs at the CPU backend's full speed.
pub struct GpuKernels {
    ctx: Arc<GpuContext>,
    choice: KernelChoice,
    cpu: CpuKernels,
    nodes: HashMap<usize, NodeInfo>,
    weights: Mutex<HashMap<usize, Arc<GpuWeights>>>,
    /// Sessions' state kept on the device between calls, per node.
    pools: Pools,
    /// Whether sessions may keep their state here: every recurrent node runs on the GPU with the
    /// graph's constant weights (set by `prepare`).
    resident_ok: bool,
}

impl std::fmt::Debug for GpuKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuKernels").field("adapter", &self.ctx.adapter).finish_non_exhaustive()
    }
}

fn address(t: Option<&crate::tensor::Tensor>) -> Option<usize> {
    t.and_then(|t| t.as_f32().ok()).map(|v| v.as_ptr() as usize)
}

impl GpuKernels {
    /// Kernels on the process-wide device (natively) or the page's (`init_browser`);
    /// `BackendUnavailable` when there is no adapter.
    pub fn new() -> Result<GpuKernels> {
        Ok(GpuKernels::with_context(super::context::shared()?))
    }

    /// Kernels on a device of the caller's: in the browser, one created with
    /// `GpuContext::new().await` and shared by every model; in tests, one they may destroy.
    pub fn with_context(ctx: Arc<GpuContext>) -> GpuKernels {
        GpuKernels {
            ctx,
            choice: KernelChoice::Auto,
            cpu: CpuKernels::default(),
            nodes: HashMap::new(),
            weights: Mutex::new(HashMap::new()),
            pools: Pools::default(),
            resident_ok: false,
        }
    }

    /// The same kernels with another [`KernelChoice`] (tests run both families on one adapter).
    pub fn with_kernel_choice(mut self, choice: KernelChoice) -> GpuKernels {
        self.choice = choice;
        self
    }

    /// The device these kernels run on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    async fn weights(&self, node: usize, inputs: &RecurrentInputs<'_>, dims: &cell::Dims) -> Result<Arc<GpuWeights>> {
        let here = [address(Some(inputs.w)), address(Some(inputs.r)), address(inputs.b), address(inputs.p)];
        let cacheable = self.nodes.get(&node).is_some_and(|n| n.constants == here && here[0].is_some());
        let poisoned = || Error::BackendUnavailable("GPU weight cache poisoned".into());
        if cacheable {
            if let Some(w) = self.weights.lock().map_err(|_| poisoned())?.get(&node) {
                return Ok(w.clone());
            }
        }
        let w = Arc::new(self.ctx.upload_weights(inputs, dims).await?);
        if cacheable {
            self.weights.lock().map_err(|_| poisoned())?.insert(node, w.clone());
        }
        Ok(w)
    }

    async fn run_node(
        &self,
        node: usize,
        spec: &RecurrentSpec,
        inputs: &RecurrentInputs<'_>,
    ) -> Result<RecurrentOutputs> {
        let dims = cell::check_inputs(spec, inputs)?;
        let resident = inputs.resident.filter(|_| self.resident_ok);
        // A lost device cannot come back. The CPU carries on from the caller's state, unless a
        // session's newest state was on the device only: its caller replays it first.
        let cpu = |why: &str| {
            if resident.is_some_and(|r| r.host_valid.iter().any(|v| !v)) {
                return Err(Error::BackendUnavailable(format!("GPU {why}: a session's state must be replayed")));
            }
            FALLBACK_RUNS.fetch_add(1, Ordering::Relaxed);
            self.cpu.run(node, spec, inputs)
        };
        if let Some(why) = recurrent::unsupported(inputs, &dims) {
            return cpu(why);
        }
        if self.ctx.is_lost() {
            return cpu("device lost");
        }
        let info = self.nodes.get(&node);
        let options = RunOptions {
            want_y: info.is_none_or(|n| n.y_used),
            barrier_free: match self.choice {
                KernelChoice::Auto => self.ctx.software,
                KernelChoice::Tiled => false,
                KernelChoice::BarrierFree => true,
            },
            resident: resident.map(|resident| ResidentRun { resident, pools: &self.pools, node }),
            state_used: resident.is_some_and(|r| r.read_nodes.contains(&node)),
        };
        let result = match self.weights(node, inputs, &dims).await {
            Ok(weights) => self.ctx.run_recurrent(spec, inputs, &weights, &options).await,
            Err(e) => Err(e),
        };
        match result {
            Err(_) if self.ctx.is_lost() => cpu("device lost"),
            r => {
                GPU_RUNS.fetch_add(1, Ordering::Relaxed);
                r
            }
        }
    }
}

impl RecurrentKernels for GpuKernels {
    fn backend(&self) -> Backend {
        Backend::Gpu
    }

    fn keeps_state(&self) -> bool {
        self.resident_ok && !self.ctx.is_lost()
    }

    fn holds_state(&self, nodes: &[usize], session: u64, version: u64) -> bool {
        self.keeps_state() && self.pools.holds(nodes, session, version)
    }

    fn read_state<'a>(
        &'a self,
        node: usize,
        sessions: &'a [u64],
        versions: &'a [u64],
    ) -> Option<LocalFuture<'a, Result<DeviceStates>>> {
        Some(Box::pin(async move {
            if self.ctx.is_lost() {
                return Ok(vec![None; sessions.len()]);
            }
            self.ctx.read_slots(&self.pools, node, sessions, versions).await
        }))
    }

    fn release_state(&self, session: u64) {
        if let Ok(mut r) = self.pools.released.lock() {
            r.push(session);
        }
    }

    fn prepare(&mut self, layers: &[Layer<'_>]) -> Result<()> {
        self.cpu.prepare(layers)?;
        let mut resident_ok = true;
        for l in layers {
            let constants = [rec_input::W, rec_input::R, rec_input::B, rec_input::P].map(|s| address(l.constant(s)));
            let has_proj = !matches!(l.input(rec_input::PROJ), LayerInput::Absent);
            resident_ok &= constants[0].is_some() && constants[1].is_some() && !has_proj;
            self.nodes.insert(l.node, NodeInfo { constants, y_used: l.y_used });
        }
        self.resident_ok = resident_ok;
        Ok(())
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn run(&self, node: usize, spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
        pollster::block_on(self.run_node(node, spec, inputs))
    }

    #[cfg(target_arch = "wasm32")]
    fn run(&self, node: usize, spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
        if self.ctx.is_lost() {
            FALLBACK_RUNS.fetch_add(1, Ordering::Relaxed);
            return self.cpu.run(node, spec, inputs);
        }
        Err(Error::BackendUnavailable(
            "WebGPU results arrive asynchronously: use the async API (step_async, run_async, run_graph_async)".into(),
        ))
    }

    fn run_async<'a>(
        &'a self,
        node: usize,
        spec: &'a RecurrentSpec,
        inputs: RecurrentInputs<'a>,
    ) -> Option<LocalFuture<'a, Result<RecurrentOutputs>>> {
        Some(Box::pin(async move { self.run_node(node, spec, &inputs).await }))
    }
}
