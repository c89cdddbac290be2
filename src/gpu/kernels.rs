//! [`GpuKernels`]: the GPU backend behind [`RecurrentKernels`]. One `async` body serves both
//! entry points: natively `run` blocks on it; in the browser only `run_async` works (WebGPU maps
//! buffers asynchronously), and `run` says so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::context::GpuContext;
use super::recurrent::{self, GpuWeights};
use crate::backend::{Backend, LocalFuture, RecurrentKernels};
use crate::cell::{self, RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use crate::cpu::CpuKernels;
use crate::error::{Error, Result};
use crate::graph::{rec_input, Graph};

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
        // A lost device cannot come back; the state is the caller's (read back after every run),
        // so the CPU carries on from exactly where the GPU stopped.
        if recurrent::unsupported(inputs, &dims).is_some() || self.ctx.is_lost() {
            FALLBACK_RUNS.fetch_add(1, Ordering::Relaxed);
            return self.cpu.run(node, spec, inputs);
        }
        let want_y = self.nodes.get(&node).is_none_or(|n| n.y_used);
        let result = match self.weights(node, inputs, &dims).await {
            Ok(weights) => {
                let barrier_free = match self.choice {
                    KernelChoice::Auto => self.ctx.software,
                    KernelChoice::Tiled => false,
                    KernelChoice::BarrierFree => true,
                };
                self.ctx.run_recurrent(spec, inputs, &weights, want_y, barrier_free).await
            }
            Err(e) => Err(e),
        };
        match result {
            Err(_) if self.ctx.is_lost() => {
                FALLBACK_RUNS.fetch_add(1, Ordering::Relaxed);
                self.cpu.run(node, spec, inputs)
            }
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

    fn prepare(&mut self, graph: &Graph) -> Result<()> {
        self.cpu.prepare(graph)?;
        let constant = |id: Option<&Option<usize>>| {
            id.copied().flatten().and_then(|v| graph.constants.get(v)).and_then(|c| address(c.as_ref()))
        };
        for (i, node, _) in graph.recurrent_nodes() {
            let y = node.outputs.first().copied().flatten();
            let y_used = y.is_some_and(|y| {
                graph.outputs.iter().any(|o| o.id == y) || graph.nodes.iter().any(|n| n.inputs.contains(&Some(y)))
            });
            let constants =
                [rec_input::W, rec_input::R, rec_input::B, rec_input::P].map(|s| constant(node.inputs.get(s)));
            self.nodes.insert(i, NodeInfo { constants, y_used });
        }
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
