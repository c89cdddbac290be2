//! Graphs specialised to the shapes a call-planned model is called with ([`fold::specialize`]):
//! Silero VAD checks at run time whether its batch and its encoder's time axis are 1, in `If`s
//! that hold its LSTM. Specialised to one chunk size, those conditions are constants, the `If`s
//! are gone, and the LSTM is a node of the flat list that the backend's kernels run with their
//! weights packed once. The first call of each input shape specialises (and keeps the graph for
//! the next calls); the others run the kept graph.

use std::sync::{Arc, Mutex};

use crate::backend::{Backend, LocalFuture, RecurrentKernels, ScalarKernels};
use crate::cell::{RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use crate::cpu::{CpuKernels, Isa};
use crate::error::Result;
use crate::graph::{Graph, Op, Schedule};
use crate::onnx::fold;
use crate::ops::array::Array;
use crate::tensor::Tensor;

/// How many input shapes a model keeps a specialised graph for.
const KEPT: usize = 4;

/// One specialisation: the graph, its schedule, and kernels for its recurrent nodes.
pub(crate) struct Specialized {
    /// The shapes of the fed graph inputs it was made for.
    key: Vec<Option<Vec<usize>>>,
    pub graph: Graph,
    pub schedule: Schedule,
    /// Per node: the index of the same recurrent node in the model's graph, whose kernels (and
    /// packed weights) the model already has; `None` for the nodes that came out of branches.
    map: Vec<Option<usize>>,
    /// Kernels for those others, of the model's backend kind (a GPU model's run on its CPU ISA).
    local: Box<dyn RecurrentKernels>,
}

/// The specialisations a model keeps, most recent last.
#[derive(Default)]
pub(crate) struct Cache(Mutex<Vec<Arc<Specialized>>>);

/// Whether specialising `graph` to shapes can fold anything: it reads shapes, or branches.
pub(crate) fn worth_it(graph: &Graph) -> bool {
    graph.nodes.iter().any(|n| matches!(n.op, Op::If(_) | Op::Shape { .. } | Op::Array(Array::Size)))
}

impl Cache {
    /// The specialisation of `graph` for the inputs of `feed` (one per graph input), made now if
    /// none is kept for their shapes.
    pub(crate) fn get(
        &self,
        graph: &Graph,
        main: &dyn RecurrentKernels,
        feed: &[Option<Tensor>],
    ) -> Result<Arc<Specialized>> {
        let key: Vec<Option<Vec<usize>>> = feed.iter().map(|t| t.as_ref().map(|t| t.shape().to_vec())).collect();
        if let Some(s) = self.0.lock().ok().and_then(|c| c.iter().find(|s| s.key == key).cloned()) {
            return Ok(s);
        }
        let inputs: Vec<_> = graph
            .inputs
            .iter()
            .zip(feed)
            .filter_map(|(d, t)| t.as_ref().map(|t| (d.id, t.dtype(), t.shape().to_vec())))
            .collect();
        let g = fold::specialize(graph, &inputs);
        let original = |n: &crate::graph::Node| {
            graph.nodes.iter().position(|m| matches!(m.op, Op::Recurrent(_)) && m.outputs == n.outputs)
        };
        let map = g.nodes.iter().map(|n| if matches!(n.op, Op::Recurrent(_)) { original(n) } else { None }).collect();
        // Its value numbers are the whole graph's (branches included): the per-call tables shrink
        // to the values the flat list names. After `map`, which matches nodes by value numbers.
        let mut g = g;
        g.compact();
        let isa = main.cpu_isa();
        let mut local: Box<dyn RecurrentKernels> = match main.backend() {
            Backend::CpuScalar => Box::new(ScalarKernels),
            Backend::CpuInt8 => Box::new(CpuKernels::with_int8(isa)),
            Backend::Cpu | Backend::Gpu => Box::new(CpuKernels::new(isa)),
        };
        local.prepare(&g.layers())?;
        let wanted: Vec<usize> = g.outputs.iter().map(|o| o.id).collect();
        let schedule = g.schedule(&wanted, false);
        let s = Arc::new(Specialized { key, graph: g, schedule, map, local });
        if let Ok(mut c) = self.0.lock() {
            if c.len() >= KEPT {
                c.remove(0);
            }
            c.push(s.clone());
        }
        Ok(s)
    }
}

impl Specialized {
    /// Kernels for this graph's nodes: the model's own for the nodes it has, these for the rest.
    pub(crate) fn kernels<'a>(&'a self, main: &'a dyn RecurrentKernels) -> Remapped<'a> {
        Remapped { main, map: &self.map, local: self.local.as_ref() }
    }
}

/// [`RecurrentKernels`] for a specialised graph, by node.
pub(crate) struct Remapped<'a> {
    main: &'a dyn RecurrentKernels,
    map: &'a [Option<usize>],
    local: &'a dyn RecurrentKernels,
}

impl Remapped<'_> {
    fn original(&self, node: usize) -> Option<usize> {
        self.map.get(node).copied().flatten()
    }
}

impl RecurrentKernels for Remapped<'_> {
    fn backend(&self) -> Backend {
        self.main.backend()
    }

    fn cpu_isa(&self) -> Isa {
        self.main.cpu_isa()
    }

    fn run(&self, node: usize, spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
        match self.original(node) {
            Some(o) => self.main.run(o, spec, inputs),
            None => self.local.run(node, spec, inputs),
        }
    }

    fn run_async<'a>(
        &'a self,
        node: usize,
        spec: &'a RecurrentSpec,
        inputs: RecurrentInputs<'a>,
    ) -> Option<LocalFuture<'a, Result<RecurrentOutputs>>> {
        match self.original(node) {
            Some(o) => self.main.run_async(o, spec, inputs),
            None => self.local.run_async(node, spec, inputs),
        }
    }
}
