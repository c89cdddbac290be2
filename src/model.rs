//! A loaded model: its graph, where it came from, its fingerprint, and the plan sessions use to feed
//! it (which graph inputs are real inputs and which are recurrent state, and where the time and batch
//! axes of each input and output are).

use std::sync::Arc;

use crate::backend::{Backend, Layer, RecurrentKernels, ScalarKernels, ShapeKernels};
use crate::cell::{self, CellKind, Direction};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Schedule, StateHook, ValueId};
use crate::onnx::{self, OnnxInfo};
use crate::tensor::{DType, Data, Tensor};

/// How a model was loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Onnx(OnnxInfo),
    StateDict,
}

/// One recurrent layer (node) of the model, as sessions see it.
#[derive(Debug, Clone, PartialEq)]
pub struct CellLayout {
    /// Index of the node in the graph.
    pub node: usize,
    pub name: String,
    pub cell: CellKind,
    pub direction: Direction,
    pub hidden_size: usize,
    /// Size of the fed-back hidden state (the projection size for a projected LSTM).
    pub state_size: usize,
    /// The node's `layout` attribute (how its state tensors order batch and direction).
    pub layout: u8,
    /// Where this layer's state starts in a session's state vector.
    pub offset: usize,
}

impl CellLayout {
    /// f32 values of one session's state for this layer: `h` then (LSTM) `c`.
    pub fn state_len(&self) -> usize {
        let dirs = self.direction.count();
        dirs * self.state_size + if matches!(self.cell, CellKind::Lstm { .. }) { dirs * self.hidden_size } else { 0 }
    }
}

/// A real (caller-fed) graph input, as a session feeds it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPlan {
    pub graph_index: usize,
    pub name: String,
    pub dtype: DType,
    pub time_axis: usize,
    pub batch_axis: usize,
    /// Sizes of the other axes, in order.
    pub rest: Vec<usize>,
}

impl InputPlan {
    /// Elements of one time step of one session.
    pub fn step_len(&self) -> usize {
        self.rest.iter().product()
    }

    /// The graph tensor shape for `t` steps of `b` sessions.
    fn shape(&self, t: usize, b: usize) -> Vec<usize> {
        let mut s = self.rest.clone();
        let (first, second) = if self.time_axis < self.batch_axis {
            ((self.time_axis, t), (self.batch_axis, b))
        } else {
            ((self.batch_axis, b), (self.time_axis, t))
        };
        s.insert(first.0, first.1);
        s.insert(second.0, second.1);
        s
    }
}

/// A non-state graph output, as a session returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputPlan {
    pub graph_index: usize,
    pub name: String,
    /// `None` when the output has no time axis (e.g. only the last step goes through the head).
    pub time_axis: Option<usize>,
    pub batch_axis: usize,
}

/// How sessions drive the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPlan {
    pub inputs: Vec<InputPlan>,
    /// Graph inputs that only feed recurrent initial states (their values come from the session).
    pub state_inputs: Vec<usize>,
    pub outputs: Vec<OutputPlan>,
    /// Graph outputs that are final recurrent states (the session keeps them).
    pub state_outputs: Vec<usize>,
    pub cells: Vec<CellLayout>,
    /// False when a layer runs backwards in time (reverse or bidirectional): `step` is refused.
    pub streamable: bool,
    pub(crate) schedule: Schedule,
    /// Recurrent nodes whose final state a node of the schedule reads (e.g. a head on `h_n`): on a
    /// device that keeps the sessions' state, it still comes back on every call.
    pub(crate) state_readers: Vec<usize>,
    /// `Some` for a model called one chunk at a time whose session state is graph tensors (Silero
    /// VAD's `state` → `stateN`, GTCRN's caches): `inputs`, `outputs` and `cells` are then empty.
    pub calls: Option<crate::session::calls::CallPlan>,
}

impl SessionPlan {
    /// f32 values in one session's state.
    pub fn state_len(&self) -> usize {
        match &self.calls {
            Some(c) => c.state_len(),
            None => self.cells.iter().map(|c| c.state_len()).sum(),
        }
    }
}

pub(crate) struct ModelInner {
    pub graph: Arc<Graph>,
    pub source: Source,
    /// Computed on first use (a snapshot, a store, [`Model::fingerprint`]), not at load: hashing
    /// every weight byte was two thirds of loading a GRU of 256 units. Shared by the same model on
    /// other kernels ([`Model::with_backend`]).
    pub fingerprint: Arc<std::sync::OnceLock<[u8; 16]>>,
    pub plan: std::result::Result<SessionPlan, Error>,
    pub kernels: Box<dyn RecurrentKernels>,
    /// Call-planned graphs specialised to the shapes they are called with.
    pub specialized: crate::session::specialize::Cache,
    /// The memory budget of each call, in bytes ([`LoadOptions::max_memory_bytes`]).
    pub max_memory: usize,
}

/// A loaded model. Cheap to clone (shared).
#[derive(Clone)]
pub struct Model {
    pub(crate) inner: Arc<ModelInner>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("fingerprint", &self.fingerprint_hex()).finish_non_exhaustive()
    }
}

/// What a caller tells the loader about a model beyond its file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// Graph inputs that are the same on every call (Silero's `sr`): they become constants at
    /// load, and the graph is folded around them (an `If` on them disappears).
    pub inputs: Vec<(String, Tensor)>,
    /// Session state the runtime cannot find by itself: `(graph input, graph output)` pairs, the
    /// output's value being fed back into the input on the next call.
    pub state: Vec<(String, String)>,
    /// The memory budget, in bytes (default [`crate::budget::DEFAULT_MAX_MEMORY`], 256 MiB): a
    /// model whose weights need more is refused at load, a call whose intermediates would need
    /// more is refused before it allocates them, with [`Error::Resource`].
    pub max_memory_bytes: Option<usize>,
}

impl LoadOptions {
    /// Sets [`LoadOptions::max_memory_bytes`].
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.max_memory_bytes = Some(bytes);
        self
    }

    /// The budget these options give.
    pub fn budget(&self) -> usize {
        self.max_memory_bytes.unwrap_or(crate::budget::DEFAULT_MAX_MEMORY)
    }

    /// Fixes graph input `name` to `value` (see [`LoadOptions::inputs`]).
    pub fn input(mut self, name: &str, value: Tensor) -> Self {
        self.inputs.push((name.to_string(), value));
        self
    }

    /// Declares that graph output `output` is the next value of graph input `input`.
    pub fn state(mut self, input: &str, output: &str) -> Self {
        self.state.push((input.to_string(), output.to_string()));
        self
    }
}

impl Model {
    /// Loads an ONNX model whose weights are all inside `bytes`.
    pub fn from_onnx(bytes: &[u8]) -> Result<Model> {
        Self::from_onnx_with(bytes, &LoadOptions::default())
    }

    /// [`Model::from_onnx`] with load options (fixed inputs, declared state).
    pub fn from_onnx_with(bytes: &[u8], options: &LoadOptions) -> Result<Model> {
        Self::from_onnx_with_external_and(bytes, options, &mut |loc: &str| {
            Err(Error::Io(format!("the model keeps weights in external file '{loc}': load it with its external data")))
        })
    }

    /// Loads an ONNX model; `external` supplies external-data files by their `location`.
    pub fn from_onnx_with_external(bytes: &[u8], external: &mut onnx::ExternalLoader<'_>) -> Result<Model> {
        Self::from_onnx_with_external_and(bytes, &LoadOptions::default(), external)
    }

    /// Loads an ONNX model with load options; `external` supplies external-data files.
    pub fn from_onnx_with_external_and(
        bytes: &[u8],
        options: &LoadOptions,
        external: &mut onnx::ExternalLoader<'_>,
    ) -> Result<Model> {
        let (graph, info) = onnx::import_within(bytes, external, &options.inputs, options.budget())?;
        Ok(Self::from_graph_with(graph, Source::Onnx(info), &options.state, options.budget()))
    }

    /// Loads an ONNX file, reading external data from files beside it. (It compiles on wasm32,
    /// so that every target of the package builds there, as `wasm-pack test` needs; in a browser
    /// there is no file system and it is an [`Error::Io`].)
    pub fn from_onnx_file(path: &std::path::Path) -> Result<Model> {
        Self::from_onnx_file_with(path, &LoadOptions::default())
    }

    /// [`Model::from_onnx_file`] with load options.
    pub fn from_onnx_file_with(path: &std::path::Path, options: &LoadOptions) -> Result<Model> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        Self::from_onnx_with_external_and(&bytes, options, &mut |loc: &str| {
            let rel = std::path::Path::new(loc);
            if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                return Err(Error::Format(format!("external data location '{loc}' must be a plain relative path")));
            }
            let p = dir.join(rel);
            std::fs::read(&p).map(Arc::new).map_err(|e| Error::Io(format!("{}: {e}", p.display())))
        })
    }

    /// Loads a PyTorch `state_dict` saved as safetensors, described by a JSON config.
    pub fn from_safetensors(bytes: &[u8], config_json: &str) -> Result<Model> {
        Self::from_safetensors_with(bytes, config_json, &LoadOptions::default())
    }

    /// [`Model::from_safetensors`] with load options (of which a state dict takes only the
    /// memory budget).
    pub fn from_safetensors_with(bytes: &[u8], config_json: &str, options: &LoadOptions) -> Result<Model> {
        if !options.inputs.is_empty() || !options.state.is_empty() {
            return Err(Error::InvalidArgument(
                "inputs and state are options of ONNX models (a state dict has neither)".into(),
            ));
        }
        let graph = crate::state_dict::import(bytes, config_json)?;
        crate::budget::check("the model's weights", weight_bytes(&graph), options.budget())?;
        Ok(Self::from_graph_with(graph, Source::StateDict, &[], options.budget()))
    }

    /// The memory budget of each call, in bytes.
    pub fn max_memory(&self) -> usize {
        self.inner.max_memory
    }

    /// A model of `graph` with the default budget (for the GPU benchmark's generated graphs).
    #[cfg(feature = "gpu")]
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn from_graph(graph: Graph, source: Source) -> Model {
        Self::from_graph_with(graph, source, &[], crate::budget::DEFAULT_MAX_MEMORY)
    }

    fn from_graph_with(graph: Graph, source: Source, declared_state: &[(String, String)], max_memory: usize) -> Model {
        // Declared state means graph-tensor state; otherwise the recurrent layers' own state over
        // time and batch axes, and failing that, graph-tensor state found in the graph.
        let plan = if declared_state.is_empty() {
            plan_sessions(&graph).or_else(|seq| {
                crate::session::calls::plan(&graph, &[]).map_err(|calls| {
                    Error::InvalidModel(format!(
                        "{} (as a sequence model: {}; as a model called chunk by chunk with its state in graph tensors: {})",
                        "sessions unavailable",
                        seq.to_string().trim_start_matches("invalid model: "),
                        calls.to_string().trim_start_matches("invalid model: ")
                    ))
                })
            })
        } else {
            crate::session::calls::plan(&graph, declared_state)
        };
        let kernels = Box::new(ScalarKernels);
        Model {
            inner: Arc::new(ModelInner {
                graph: Arc::new(graph),
                source,
                fingerprint: Default::default(),
                plan,
                kernels,
                specialized: Default::default(),
                max_memory,
            }),
        }
    }

    /// The same model (same fingerprint, so sessions carry over) running its recurrent layers on
    /// `backend`.
    pub fn with_backend(&self, backend: Backend) -> Result<Model> {
        self.on_kernels(backend.kernels(&self.inner.graph.layers())?)
    }

    /// The same model running its recurrent layers on `kernels`, prepared here: a GPU device of
    /// the caller's ([`crate::gpu::GpuKernels::with_context`]), another [`crate::gpu::KernelChoice`].
    pub fn with_kernels(&self, mut kernels: Box<dyn RecurrentKernels>) -> Result<Model> {
        kernels.prepare(&self.inner.graph.layers())?;
        self.on_kernels(kernels)
    }

    fn on_kernels(&self, kernels: Box<dyn RecurrentKernels>) -> Result<Model> {
        let i = &self.inner;
        Ok(Model {
            inner: Arc::new(ModelInner {
                graph: i.graph.clone(),
                source: i.source.clone(),
                fingerprint: i.fingerprint.clone(),
                plan: i.plan.clone(),
                kernels,
                specialized: Default::default(),
                max_memory: i.max_memory,
            }),
        })
    }

    /// The backend that runs this model's recurrent layers.
    pub fn backend(&self) -> Backend {
        self.inner.kernels.backend()
    }

    pub(crate) fn kernels(&self) -> &dyn RecurrentKernels {
        self.inner.kernels.as_ref()
    }

    pub fn graph(&self) -> &Graph {
        &self.inner.graph
    }

    pub fn source(&self) -> &Source {
        &self.inner.source
    }

    /// 128-bit hash of the model's structure and weights (computed on the first call).
    pub fn fingerprint(&self) -> [u8; 16] {
        *self.inner.fingerprint.get_or_init(|| fingerprint(&self.inner.graph))
    }

    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// How sessions feed this model, or why they cannot.
    pub fn session_plan(&self) -> Result<&SessionPlan> {
        self.inner.plan.as_ref().map_err(Clone::clone)
    }

    /// Runs the whole graph on one tensor per graph input (as the ONNX test data sets do).
    pub fn run_graph(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        crate::graph::block_on_ready(self.run_graph_async(inputs))?
    }

    /// [`Model::run_graph`] for backends that complete asynchronously.
    pub async fn run_graph_async(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let g = &self.inner.graph;
        let wanted: Vec<ValueId> = g.outputs.iter().map(|o| o.id).collect();
        let sched = g.schedule(&wanted, false);
        let feed = inputs.into_iter().map(Some).collect();
        g.execute_within(&sched, feed, &mut crate::graph::NoHook, self.kernels(), self.inner.max_memory).await
    }

    /// Where each part of the graph runs: one entry per recurrent node (those inside `If`
    /// branches too), then one for every other operator (`node` empty, `op` "other operators").
    /// A GPU backend runs the recurrent nodes of the graph's flat list; those inside branches run
    /// on the CPU (a call-planned model folds them out of their branches for the shapes it is
    /// called with, onto the CPU kernels; elsewhere they run on the scalar reference), as does
    /// everything that is not a recurrent node.
    pub fn placement(&self) -> Vec<Placement> {
        let kernels = self.kernels();
        let cpu = format!("cpu ({})", kernels.cpu_isa().name());
        let top = match kernels.backend() {
            Backend::Gpu => "gpu".to_string(),
            Backend::CpuInt8 => format!("cpu ({}, int8 weights)", kernels.cpu_isa().name()),
            _ => cpu.clone(),
        };
        let folded =
            self.session_plan().is_ok_and(|p| p.calls.is_some()) && crate::session::specialize::worth_it(self.graph());
        let in_branch = if folded { cpu.clone() } else { "cpu (scalar reference, inside an If branch)".to_string() };
        let mut out = Vec::new();
        let mut others = 0;
        fn walk(
            nodes: &[crate::graph::Node],
            device: &str,
            branch: &str,
            out: &mut Vec<Placement>,
            others: &mut usize,
        ) {
            for n in nodes {
                match &n.op {
                    Op::Recurrent(s) => out.push(Placement {
                        node: n.name.clone(),
                        op: s.cell.op_name().to_string(),
                        device: device.to_string(),
                    }),
                    Op::If(op) => {
                        *others += 1;
                        walk(&op.then_branch.nodes, branch, branch, out, others);
                        walk(&op.else_branch.nodes, branch, branch, out, others);
                    }
                    _ => *others += 1,
                }
            }
        }
        walk(&self.graph().nodes, &top, &in_branch, &mut out, &mut others);
        if others > 0 {
            out.push(Placement { node: String::new(), op: format!("other operators ({others} nodes)"), device: cpu });
        }
        out
    }

    pub(crate) fn same_as(&self, other: &Model) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || Arc::ptr_eq(&self.inner.graph, &other.inner.graph)
            || self.fingerprint() == other.fingerprint()
    }
}

/// Where one part of a model runs ([`Model::placement`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The node's name; empty for the entry that stands for all the other operators.
    pub node: String,
    pub op: String,
    /// `gpu`, or `cpu (<isa>)` with the instruction set of the CPU kernels.
    pub device: String,
}

/// FNV-1a over the graph's structure and every constant's bytes, in two independent 64-bit lanes.
/// Bytes of a graph's constants (weights).
pub(crate) fn weight_bytes(g: &Graph) -> usize {
    g.constants.iter().flatten().map(|t| crate::budget::bytes(t.dtype(), t.len())).sum()
}

fn fingerprint(g: &Graph) -> [u8; 16] {
    struct Fnv(u64, u64);
    impl Fnv {
        fn eat(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
                self.1 = (self.1 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(5);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142);
    let structure = format!("{:?}|{:?}|{:?}", g.nodes, g.inputs, g.outputs);
    h.eat(structure.as_bytes());
    for (i, c) in g.constants.iter().enumerate() {
        if let Some(t) = c {
            h.eat(&(i as u64).to_le_bytes());
            h.eat(format!("{:?}", t.shape()).as_bytes());
            match t.data() {
                Data::F32(v) => v.iter().for_each(|x| h.eat(&x.to_le_bytes())),
                Data::I64(v) => v.iter().for_each(|x| h.eat(&x.to_le_bytes())),
            }
        }
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&h.0.to_le_bytes());
    out[8..].copy_from_slice(&h.1.to_le_bytes());
    out
}

/// Values that are (copies, slices or concatenations of) recurrent final states.
pub(crate) fn state_derived(g: &Graph) -> Vec<bool> {
    let mut derived = vec![false; g.value_count()];
    for node in &g.nodes {
        match &node.op {
            Op::Recurrent(_) => {
                for v in node.outputs.iter().skip(1).flatten() {
                    derived[*v] = true;
                }
            }
            Op::Identity
            | Op::Concat { .. }
            | Op::Reshape { .. }
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Split { .. }
            | Op::Gather { .. }
            | Op::Cast { .. } => {
                let dynamic: Vec<ValueId> =
                    node.inputs.iter().flatten().copied().filter(|v| g.constants[*v].is_none()).collect();
                // The data operand must be derived; shape/index operands may be anything constant-like.
                let data_ok = node.inputs.first().copied().flatten().is_some_and(|v| derived[v]);
                let all_ok = match node.op {
                    Op::Concat { .. } => !dynamic.is_empty() && dynamic.iter().all(|v| derived[*v]),
                    _ => data_ok,
                };
                if all_ok {
                    for v in node.outputs.iter().flatten() {
                        derived[*v] = true;
                    }
                }
            }
            _ => {}
        }
    }
    derived
}

/// Supplies zero states and records the (seq, batch) each recurrent node saw.
struct ProbeHook {
    seen: Vec<(usize, usize)>,
}

impl StateHook for ProbeHook {
    fn initial_state(&mut self, _: usize, d: &cell::Dims) -> Result<Option<(Tensor, Option<Tensor>)>> {
        self.seen.push((d.seq, d.batch));
        Ok(None)
    }
    fn final_state(&mut self, _: usize, _: &cell::RecurrentOutputs) -> Result<()> {
        Ok(())
    }
}

/// The recurrent nodes among `cells` whose `Y_h` or `Y_c` a node of `schedule` reads.
fn state_readers(g: &Graph, schedule: &Schedule, cells: &[CellLayout]) -> Vec<usize> {
    let read = |v: Option<crate::graph::ValueId>| {
        v.is_some_and(|v| schedule.nodes.iter().any(|&n| g.nodes.get(n).is_some_and(|n| n.inputs.contains(&Some(v)))))
    };
    cells
        .iter()
        .filter(|c| {
            let out = |k: usize| g.nodes.get(c.node).and_then(|n| n.outputs.get(k).copied().flatten());
            read(out(1)) || read(out(2))
        })
        .map(|c| c.node)
        .collect()
}

const PROBE: [(usize, usize); 3] = [(3, 2), (5, 2), (3, 4)];

fn plan_sessions(g: &Graph) -> Result<SessionPlan> {
    let mut offset = 0;
    let cells: Vec<CellLayout> = g
        .recurrent_nodes()
        .map(|(i, n, s)| {
            let proj = n.inputs.get(crate::graph::rec_input::PROJ).copied().flatten();
            let state_size = proj.and_then(|p| g.constants[p].as_ref()).map_or(s.hidden_size, |t| t.shape()[1]);
            let cell = CellLayout {
                node: i,
                name: n.name.clone(),
                cell: s.cell,
                direction: s.direction,
                hidden_size: s.hidden_size,
                state_size,
                layout: s.layout,
                offset,
            };
            offset += cell.state_len();
            cell
        })
        .collect();
    if cells.is_empty() {
        return Err(Error::InvalidModel("the model has no recurrent layer, so sessions have no state".into()));
    }
    let streamable = cells.iter().all(|c| c.direction == Direction::Forward);
    let derived = state_derived(g);
    let state_outputs: Vec<usize> = (0..g.outputs.len()).filter(|&i| derived[g.outputs[i].id]).collect();
    let kept: Vec<usize> = (0..g.outputs.len()).filter(|i| !state_outputs.contains(i)).collect();
    if kept.is_empty() {
        return Err(Error::InvalidModel("every graph output is a recurrent state; nothing to predict".into()));
    }
    let wanted: Vec<ValueId> = kept.iter().map(|&i| g.outputs[i].id).collect();
    let schedule = g.schedule(&wanted, true);
    let state_inputs: Vec<usize> = (0..g.inputs.len()).filter(|&i| !schedule.reads[g.inputs[i].id]).collect();
    let real: Vec<usize> = (0..g.inputs.len()).filter(|i| !state_inputs.contains(i)).collect();

    // Candidate (time, batch) axes per real input: symbolic dims first.
    let mut candidates: Vec<Vec<(usize, usize)>> = Vec::new();
    for &i in &real {
        let d = &g.inputs[i];
        let dims =
            d.dims.as_ref().ok_or_else(|| Error::InvalidModel(format!("input '{}' has no declared rank", d.name)))?;
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for t in 0..dims.len() {
            for b in 0..dims.len() {
                if t != b {
                    pairs.push((t, b));
                }
            }
        }
        pairs.sort_by_key(|&(t, b)| (dims[t].is_some() as u8 + dims[b].is_some() as u8, t, b));
        if pairs.is_empty() {
            return Err(Error::InvalidModel(format!("input '{}' has no time and batch axes", d.name)));
        }
        candidates.push(pairs);
    }
    let combos = candidates.iter().map(Vec::len).product::<usize>();
    if combos > 256 {
        return Err(Error::InvalidModel("too many real inputs to find their time and batch axes".into()));
    }
    for combo in 0..combos {
        let mut k = combo;
        let mut plans = Vec::new();
        for (slot, &i) in real.iter().enumerate() {
            let (t, b) = candidates[slot][k % candidates[slot].len()];
            k /= candidates[slot].len();
            let d = &g.inputs[i];
            let dims = d.dims.as_deref().unwrap_or_default();
            let rest = (0..dims.len()).filter(|&a| a != t && a != b).map(|a| dims[a].unwrap_or(1)).collect();
            plans.push(InputPlan {
                graph_index: i,
                name: d.name.clone(),
                dtype: d.dtype.unwrap_or(DType::F32),
                time_axis: t,
                batch_axis: b,
                rest,
            });
        }
        let mut shapes = Vec::new();
        let mut ok = true;
        for &(t, b) in &PROBE {
            let mut feed: Vec<Option<Tensor>> = vec![None; g.inputs.len()];
            for p in &plans {
                match Tensor::zeros(p.dtype, p.shape(t, b)) {
                    Ok(z) => feed[p.graph_index] = Some(z),
                    Err(_) => ok = false,
                }
            }
            let mut hook = ProbeHook { seen: Vec::new() };
            // Only the outputs' shapes are wanted: the recurrent layers are not computed.
            match g.execute(&schedule, feed, &mut hook, &ShapeKernels) {
                Ok(outs) if ok && hook.seen.iter().all(|&s| s == (t, b)) && hook.seen.len() == cells.len() => {
                    shapes.push(outs.iter().map(|o| o.shape().to_vec()).collect::<Vec<_>>())
                }
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let mut outputs = Vec::new();
        for (j, &gi) in kept.iter().enumerate() {
            let (s0, s1, s2) = (&shapes[0][j], &shapes[1][j], &shapes[2][j]);
            let name = &g.outputs[gi].name;
            if s0.len() != s1.len() || s0.len() != s2.len() {
                return Err(Error::InvalidModel(format!("output '{name}' changes rank with the sequence length")));
            }
            let t_axes: Vec<usize> = (0..s0.len()).filter(|&a| s0[a] != s1[a]).collect();
            let b_axes: Vec<usize> = (0..s0.len()).filter(|&a| s0[a] != s2[a]).collect();
            let time_axis = match t_axes[..] {
                [] => None,
                [a] if s0[a] == 3 && s1[a] == 5 => Some(a),
                _ => return Err(Error::InvalidModel(format!("output '{name}': cannot tell its time axis"))),
            };
            let batch_axis = match b_axes[..] {
                [a] if s0[a] == 2 && s2[a] == 4 && Some(a) != time_axis => a,
                _ => return Err(Error::InvalidModel(format!("output '{name}': cannot tell its batch axis"))),
            };
            outputs.push(OutputPlan { graph_index: gi, name: name.clone(), time_axis, batch_axis });
        }
        let state_readers = state_readers(g, &schedule, &cells);
        return Ok(SessionPlan {
            inputs: plans,
            state_inputs,
            outputs,
            state_outputs,
            cells,
            streamable,
            schedule,
            state_readers,
            calls: None,
        });
    }
    Err(Error::InvalidModel(
        "cannot find the time and batch axes of the model's inputs (sessions need each real input to carry both)"
            .into(),
    ))
}

/// The constructor of each backend's kernels lives here, above both the kernel trait
/// (`backend.rs`) and the backends that implement it (`cpu/`, `gpu/`).
impl Backend {
    /// The kernels of this backend, prepared for a graph's recurrent `layers`.
    pub fn kernels(self, layers: &[Layer<'_>]) -> Result<Box<dyn RecurrentKernels>> {
        let mut k: Box<dyn RecurrentKernels> = match self {
            Backend::Cpu => Box::new(crate::cpu::CpuKernels::default()),
            Backend::CpuInt8 => Box::new(crate::cpu::CpuKernels::with_int8(crate::cpu::Isa::best())),
            Backend::CpuScalar => Box::new(ScalarKernels),
            #[cfg(feature = "gpu")]
            Backend::Gpu => Box::new(crate::gpu::GpuKernels::new()?),
            #[cfg(not(feature = "gpu"))]
            Backend::Gpu => {
                return Err(Error::BackendUnavailable(
                    "this build of webrnn has no GPU backend (built without the `gpu` feature)".into(),
                ))
            }
        };
        k.prepare(layers)?;
        Ok(k)
    }
}
