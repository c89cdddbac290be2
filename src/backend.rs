//! Backends: who runs the recurrent nodes. Everything else in a graph (embedding lookups, heads,
//! shape plumbing) runs on the CPU in [`crate::ops`]; a backend supplies [`RecurrentKernels`], which
//! a model prepares once (e.g. to pre-pack its constant weights) and then calls for every recurrent
//! node it executes. The scalar reference ([`ScalarKernels`]) is always available and is what every
//! other backend is tested against.

use crate::cell::{self, RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The fastest CPU kernels of this build ([`crate::cpu`]: WebAssembly SIMD where compiled in).
    Cpu,
    /// The same kernels with int8 weights ([`crate::cpu::CpuKernels::with_int8`]): faster, and
    /// within about 1e-2 of f32 rather than 1e-5.
    CpuInt8,
    /// The scalar reference, always available.
    CpuScalar,
    /// WebGPU (browser) / wgpu (native).
    Gpu,
}

impl Backend {
    pub fn parse(name: &str) -> Result<Backend> {
        match name {
            "cpu" => Ok(Backend::Cpu),
            "cpu-int8" => Ok(Backend::CpuInt8),
            "cpu-scalar" => Ok(Backend::CpuScalar),
            "gpu" | "webgpu" => Ok(Backend::Gpu),
            other => Err(Error::InvalidArgument(format!("unknown backend '{other}' (cpu, cpu-int8, cpu-scalar, gpu)"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::CpuInt8 => "cpu-int8",
            Backend::CpuScalar => "cpu-scalar",
            Backend::Gpu => "gpu",
        }
    }
}

/// One recurrent node of a graph, as the backends prepare for it ([`RecurrentKernels::prepare`]):
/// what they need of the graph in their own terms, so that no backend depends on the executor's
/// graph type (`Graph::layers` makes these).
#[derive(Debug, Clone)]
pub struct Layer<'a> {
    /// The node's index in the graph: the `node` of [`RecurrentKernels::run`].
    pub node: usize,
    pub spec: &'a RecurrentSpec,
    /// Per input slot ([`crate::cell::rec_input`]: X, W, R, B, ...).
    pub inputs: Vec<LayerInput<'a>>,
    /// Whether anything reads the node's `Y` (a graph output, another node's input).
    pub y_used: bool,
}

/// One input of a [`Layer`].
#[derive(Debug, Clone, Copy)]
pub enum LayerInput<'a> {
    /// Not given (an optional input left out).
    Absent,
    /// A constant of the graph, the same tensor on every call.
    Constant(&'a Tensor),
    /// Computed or fed at run time.
    Computed,
}

impl<'a> Layer<'a> {
    /// Input `slot`; slots past the node's inputs are absent.
    pub fn input(&self, slot: usize) -> LayerInput<'a> {
        self.inputs.get(slot).copied().unwrap_or(LayerInput::Absent)
    }

    /// Input `slot` when it is a constant.
    pub fn constant(&self, slot: usize) -> Option<&'a Tensor> {
        match self.input(slot) {
            LayerInput::Constant(t) => Some(t),
            _ => None,
        }
    }
}

/// Runs recurrent nodes. Implementations must give the results of [`cell::run_reference`] within
/// their backend's tolerance, and must never panic.
pub trait RecurrentKernels: Send + Sync {
    /// Which backend this is (for reports and errors).
    fn backend(&self) -> Backend;

    /// The instruction set the graph's other operators (Conv, ConvTranspose...) run on beside
    /// these kernels: the CPU backends' own, the scalar reference's portable code, the fastest of
    /// this build for a GPU backend (whose recurrent layers are all it runs).
    fn cpu_isa(&self) -> crate::cpu::Isa {
        crate::cpu::Isa::best()
    }

    /// Called once per model before any `run`: pre-pack constant weights, allocate buffers...
    fn prepare(&mut self, _layers: &[Layer<'_>]) -> Result<()> {
        Ok(())
    }

    /// Runs recurrent node `node` (its index in `graph.nodes`) of the prepared graph.
    fn run(&self, node: usize, spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs>;

    /// For kernels whose results can only arrive asynchronously (WebGPU in a browser): the future
    /// of `run`. `None` (the default) means `run` is used; the async executor awaits `Some`.
    fn run_async<'a>(
        &'a self,
        _node: usize,
        _spec: &'a RecurrentSpec,
        _inputs: RecurrentInputs<'a>,
    ) -> Option<LocalFuture<'a, Result<RecurrentOutputs>>> {
        None
    }

    /// Whether sessions may leave their state on this backend's device between calls (the GPU's
    /// state pools): they then pass [`crate::cell::Resident`] in their inputs.
    fn keeps_state(&self) -> bool {
        false
    }

    /// Whether the device holds `session`'s state at `version` for every node of `nodes`.
    fn holds_state(&self, _nodes: &[usize], _session: u64, _version: u64) -> bool {
        false
    }

    /// Reads back node `node`'s state of `sessions` at `versions`: per session its state (the
    /// node's part of the session's state), or `None` where the device does not hold it.
    fn read_state<'a>(
        &'a self,
        _node: usize,
        _sessions: &'a [u64],
        _versions: &'a [u64],
    ) -> Option<LocalFuture<'a, Result<DeviceStates>>> {
        None
    }

    /// The session is gone: whatever the device keeps for it may be freed.
    fn release_state(&self, _session: u64) {}
}

/// Per session, its state as a device holds it, or `None` where the device does not hold it.
pub type DeviceStates = Vec<Option<Vec<f32>>>;

/// A boxed future that need not be `Send` (browser futures are not).
pub type LocalFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// The scalar reference of [`crate::cell`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ScalarKernels;

impl RecurrentKernels for ScalarKernels {
    fn backend(&self) -> Backend {
        Backend::CpuScalar
    }

    fn cpu_isa(&self) -> crate::cpu::Isa {
        crate::cpu::Isa::Scalar
    }

    fn run(&self, _node: usize, spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
        cell::run_reference(spec, inputs)
    }
}

/// The kernels of session planning's probes: the reference's checks and output shapes, zeros for
/// values ([`cell::reference_shapes`]).
pub(crate) struct ShapeKernels;

impl RecurrentKernels for ShapeKernels {
    fn backend(&self) -> Backend {
        Backend::CpuScalar
    }

    fn cpu_isa(&self) -> crate::cpu::Isa {
        crate::cpu::Isa::Scalar
    }

    fn run(&self, _node: usize, spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
        cell::reference_shapes(spec, inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{CellKind, Direction};
    use crate::tensor::Tensor;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    /// The reference, but its results arrive only on the second poll (as a GPU readback would).
    struct Deferred;

    impl RecurrentKernels for Deferred {
        fn backend(&self) -> Backend {
            Backend::Gpu
        }
        fn run(&self, _: usize, _: &RecurrentSpec, _: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
            Err(Error::BackendUnavailable("synchronous run is not supported".into()))
        }
        fn run_async<'a>(
            &'a self,
            _node: usize,
            spec: &'a RecurrentSpec,
            inputs: RecurrentInputs<'a>,
        ) -> Option<LocalFuture<'a, Result<RecurrentOutputs>>> {
            let mut polled = false;
            Some(Box::pin(std::future::poll_fn(move |cx| {
                if std::mem::replace(&mut polled, true) {
                    Poll::Ready(cell::run_reference(spec, &inputs))
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })))
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn asynchronous_kernels_are_awaited_and_refused_by_the_sync_path() {
        use crate::graph::{Graph, Node, Op, ValueDecl};
        let spec = RecurrentSpec::new(CellKind::Gru { linear_before_reset: true }, Direction::Forward, 2);
        let w = Tensor::from_f32(vec![1, 6, 1], vec![0.5, -0.2, 0.1, 0.3, -0.4, 0.2]).unwrap();
        let r = Tensor::from_f32(vec![1, 6, 2], (0..12).map(|i| i as f32 * 0.05 - 0.3).collect()).unwrap();
        let g = Graph {
            value_names: ["x", "w", "r", "y", "y_h"].map(String::from).to_vec(),
            nodes: vec![Node {
                name: "gru".into(),
                op: Op::Recurrent(spec),
                inputs: vec![Some(0), Some(1), Some(2)],
                outputs: vec![Some(3), Some(4)],
            }],
            inputs: vec![ValueDecl { name: "x".into(), id: 0, dtype: None, dims: None }],
            outputs: vec![ValueDecl { name: "y".into(), id: 3, dtype: None, dims: None }],
            constants: vec![None, Some(w), Some(r), None, None],
        };
        let x = Tensor::from_f32(vec![3, 1, 1], vec![1.0, -1.0, 0.5]).unwrap();
        let e = g.run_with(vec![x.clone()], &Deferred).unwrap_err();
        assert_eq!(e.code(), "backend_unavailable");
        let sched = g.schedule(&[3], false);
        let got =
            block_on(g.execute_async(&sched, vec![Some(x.clone())], &mut crate::graph::NoHook, &Deferred)).unwrap();
        assert_eq!(got, g.run(vec![x]).unwrap());
    }
}
