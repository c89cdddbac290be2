//! The model description every importer produces: a topologically ordered list of nodes over
//! numbered values, plus constant tensors. Execution walks the nodes once; recurrent nodes may take
//! their initial state from, and hand their final state to, a [`StateHook`] (how sessions carry state).

use crate::backend::{RecurrentKernels, ScalarKernels};
use crate::budget;
use crate::cell::{self, RecurrentInputs, RecurrentSpec};
use crate::error::{Error, Result};
pub use crate::ops::{rec_input, Node, Op, SliceAttrs, ValueId};
use crate::tensor::{DType, Tensor};

/// Static description of a graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueDecl {
    pub name: String,
    pub id: ValueId,
    pub dtype: Option<DType>,
    /// `None` when the rank is unknown; each dim `None` when symbolic.
    pub dims: Option<Vec<Option<usize>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub value_names: Vec<String>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueDecl>,
    pub outputs: Vec<ValueDecl>,
    /// Constant values (initializers and folded `Constant` nodes), by value id.
    pub constants: Vec<Option<Tensor>>,
}

/// Lets a caller replace the initial state of recurrent nodes and receive their final state.
pub trait StateHook {
    /// The `(initial_h, initial_c)` to use for recurrent node `node`, or `None` to use the graph's.
    fn initial_state(&mut self, node: usize, dims: &cell::Dims) -> Result<Option<(Tensor, Option<Tensor>)>>;
    /// The node's outputs: its final `Y_h` (and `Y_c`), unless `out.on_device`.
    fn final_state(&mut self, node: usize, out: &cell::RecurrentOutputs) -> Result<()>;
    /// Sessions whose state a backend may keep on its device ([`cell::Resident`]).
    fn resident(&self) -> Option<&cell::Resident> {
        None
    }
}

/// Plain graph execution: recurrent nodes use the graph's own initial states.
pub struct NoHook;

impl StateHook for NoHook {
    fn initial_state(&mut self, _: usize, _: &cell::Dims) -> Result<Option<(Tensor, Option<Tensor>)>> {
        Ok(None)
    }
    fn final_state(&mut self, _: usize, _: &cell::RecurrentOutputs) -> Result<()> {
        Ok(())
    }
}

/// Which nodes to run and in what order, for a set of wanted values.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub nodes: Vec<usize>,
    /// Per value: index in `nodes` of its last use (values are freed after it), or `usize::MAX`.
    last_use: Vec<usize>,
    /// Per value: whether a scheduled node reads it (or it is wanted).
    pub reads: Vec<bool>,
    wanted: Vec<ValueId>,
    /// The peaks [`budget::peak`] found, by the types and shapes of the fed inputs (which is all
    /// it reads of them): a stream's steps walk the schedule once.
    peaks: budget::Memo,
}

impl Schedule {
    /// Index in `nodes` of the last node that reads `v` (`usize::MAX`: wanted, or never read).
    pub fn last_use(&self, v: ValueId) -> usize {
        self.last_use.get(v).copied().unwrap_or(usize::MAX)
    }
}

impl Graph {
    pub fn value_count(&self) -> usize {
        self.value_names.len()
    }

    /// Renumbers the values so that only those the inputs, nodes and outputs name are left (in
    /// order of first mention), with their names and constants; the constants no node reads go.
    /// An executor's per-call tables are as long as the value count: a graph specialised from a
    /// large one (Silero v5's 709 values, both sample rates' branches) runs with 41 nodes over a
    /// few hundred values after this. Returns false, changing nothing, where a node holds value
    /// numbers of its own beyond its inputs and outputs (an `If`'s branches) or names a value
    /// that does not exist.
    pub fn compact(&mut self) -> bool {
        let n = self.value_count();
        let mentioned = || {
            let nodes = self.nodes.iter().flat_map(|nd| nd.inputs.iter().chain(&nd.outputs).flatten().copied());
            self.inputs.iter().map(|d| d.id).chain(nodes).chain(self.outputs.iter().map(|d| d.id))
        };
        if self.nodes.iter().any(|nd| matches!(nd.op, Op::If(_))) || mentioned().any(|v| v >= n) {
            return false;
        }
        let mut map = vec![usize::MAX; n];
        let mut kept: Vec<ValueId> = Vec::new();
        let mut renumber = |v: &mut ValueId| {
            if map[*v] == usize::MAX {
                map[*v] = kept.len();
                kept.push(*v);
            }
            *v = map[*v];
        };
        self.inputs.iter_mut().for_each(|d| renumber(&mut d.id));
        for nd in &mut self.nodes {
            nd.inputs.iter_mut().chain(nd.outputs.iter_mut()).flatten().for_each(&mut renumber);
        }
        self.outputs.iter_mut().for_each(|d| renumber(&mut d.id));
        self.value_names = kept.iter().map(|&v| std::mem::take(&mut self.value_names[v])).collect();
        self.constants = kept.iter().map(|&v| self.constants.get_mut(v).and_then(Option::take)).collect();
        true
    }

    /// The recurrent nodes as the backends prepare for them.
    pub fn layers(&self) -> Vec<crate::backend::Layer<'_>> {
        use crate::backend::{Layer, LayerInput};
        let read = |v: Option<ValueId>| {
            v.is_some_and(|y| {
                self.outputs.iter().any(|o| o.id == y) || self.nodes.iter().any(|m| m.inputs.contains(&Some(y)))
            })
        };
        self.recurrent_nodes()
            .map(|(node, n, spec)| Layer {
                node,
                spec,
                inputs: n
                    .inputs
                    .iter()
                    .map(|v| match v {
                        None => LayerInput::Absent,
                        Some(v) => match self.constants.get(*v).and_then(Option::as_ref) {
                            Some(t) => LayerInput::Constant(t),
                            None => LayerInput::Computed,
                        },
                    })
                    .collect(),
                y_used: read(n.outputs.first().copied().flatten()),
            })
            .collect()
    }

    pub fn recurrent_nodes(&self) -> impl Iterator<Item = (usize, &Node, &RecurrentSpec)> {
        self.nodes.iter().enumerate().filter_map(|(i, n)| match &n.op {
            Op::Recurrent(s) => Some((i, n, s)),
            _ => None,
        })
    }

    /// The producer node of each value (`None` for inputs and constants).
    pub fn producers(&self) -> Vec<Option<usize>> {
        let mut p = vec![None; self.value_count()];
        for (i, n) in self.nodes.iter().enumerate() {
            for v in n.outputs.iter().flatten() {
                p[*v] = Some(i);
            }
        }
        p
    }

    /// Nodes needed to compute `wanted`. With `hooked_states`, recurrent nodes' `initial_h`/`initial_c`
    /// inputs are not needed (a [`StateHook`] supplies them), so what only feeds them is skipped.
    pub fn schedule(&self, wanted: &[ValueId], hooked_states: bool) -> Schedule {
        let producers = self.producers();
        let mut needed_node = vec![false; self.nodes.len()];
        let mut stack: Vec<ValueId> = wanted.to_vec();
        let mut seen = vec![false; self.value_count()];
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut seen[v], true) {
                continue;
            }
            if let Some(ni) = producers[v] {
                if !std::mem::replace(&mut needed_node[ni], true) {
                    stack.extend(read_inputs(&self.nodes[ni], hooked_states));
                }
            }
        }
        let nodes: Vec<usize> = (0..self.nodes.len()).filter(|&i| needed_node[i]).collect();
        let mut last_use = vec![usize::MAX; self.value_count()];
        let mut reads = vec![false; self.value_count()];
        for (pos, &ni) in nodes.iter().enumerate() {
            for v in read_inputs(&self.nodes[ni], hooked_states) {
                last_use[v] = pos;
                reads[v] = true;
            }
        }
        for &v in wanted {
            last_use[v] = usize::MAX;
            reads[v] = true;
        }
        Schedule { nodes, last_use, reads, wanted: wanted.to_vec(), peaks: Default::default() }
    }

    /// Runs the scheduled nodes on `inputs` (one tensor per graph input, in order) and returns the
    /// wanted values in the schedule's order.
    /// Inputs the schedule does not read may be `None`.
    pub fn execute(
        &self,
        sched: &Schedule,
        inputs: Vec<Option<Tensor>>,
        hook: &mut dyn StateHook,
        kernels: &dyn RecurrentKernels,
    ) -> Result<Vec<Tensor>> {
        block_on_ready(self.execute_async(sched, inputs, hook, kernels))?
    }

    /// [`Graph::execute`] for kernels that finish asynchronously (WebGPU readback in a browser):
    /// recurrent nodes whose kernels offer [`RecurrentKernels::run_async`] are awaited.
    pub async fn execute_async(
        &self,
        sched: &Schedule,
        inputs: Vec<Option<Tensor>>,
        hook: &mut dyn StateHook,
        kernels: &dyn RecurrentKernels,
    ) -> Result<Vec<Tensor>> {
        self.execute_within(sched, inputs, hook, kernels, budget::DEFAULT_MAX_MEMORY).await
    }

    /// [`Graph::execute_async`] within a memory budget of `max_bytes`: a call whose peak
    /// ([`budget::peak`]) passes it is refused with [`Error::Resource`] before any node runs, and
    /// where the peak cannot be worked out beforehand, at the first node whose outputs pass it.
    pub async fn execute_within(
        &self,
        sched: &Schedule,
        inputs: Vec<Option<Tensor>>,
        hook: &mut dyn StateHook,
        kernels: &dyn RecurrentKernels,
        max_bytes: usize,
    ) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::InvalidArgument(format!(
                "the model has {} inputs, {} were given",
                self.inputs.len(),
                inputs.len()
            )));
        }
        let mut owned: Vec<Option<Tensor>> = vec![None; self.value_count()];
        for (decl, t) in self.inputs.iter().zip(inputs) {
            match t {
                Some(t) => {
                    check_decl(decl, &t)?;
                    owned[decl.id] = Some(t);
                }
                None if sched.reads[decl.id] => {
                    return Err(Error::InvalidArgument(format!("input '{}' is required", decl.name)))
                }
                None => {}
            }
        }
        let fed: Vec<Option<&Tensor>> = self.inputs.iter().map(|d| owned[d.id].as_ref()).collect();
        let peak = sched.peaks.get_or(&fed, || budget::peak(self, sched, &fed));
        budget::check("the call", peak.bytes, max_bytes)?;
        let bytes = |t: &Tensor| budget::bytes(t.dtype(), t.len());
        let mut live: usize = owned.iter().flatten().map(bytes).sum();
        for (pos, &ni) in sched.nodes.iter().enumerate() {
            let node = &self.nodes[ni];
            // An operator that can take over its input's buffer gets it by value where this node
            // is the input's last reader (and reads it through no other slot): Relu, Sigmoid,
            // Add... compute in place, the reshapes keep it; no allocation. Add and Mul take
            // input 1's buffer instead where input 0's cannot be had or is the smaller one.
            let last_read = |slot: usize| {
                let v = node.inputs.get(slot).copied().flatten()?;
                let only = node.inputs.iter().enumerate().all(|(i, u)| i == slot || *u != Some(v));
                (node.op.reuses_input() && sched.last_use[v] == pos && only && owned[v].is_some()).then_some(v)
            };
            let len = |v: Option<usize>| v.and_then(|v| owned[v].as_ref()).map_or(0, Tensor::len);
            let (first, second) = (last_read(0), if node.op.commutes() { last_read(1) } else { None });
            let swap = second.is_some() && (first.is_none() || len(second) > len(first));
            let given = if swap { second } else { first }.and_then(|v| owned[v].take());
            live = live.saturating_sub(given.as_ref().map_or(0, bytes));
            // The arguments on the stack for all but wide nodes (Concat of many): no allocation.
            let (mut small, mut wide) = ([None; 8], Vec::new());
            let args: &mut [Option<&Tensor>] = if node.inputs.len() <= small.len() {
                &mut small[..node.inputs.len()]
            } else {
                wide.resize(node.inputs.len(), None);
                &mut wide
            };
            for (a, v) in args.iter_mut().zip(&node.inputs) {
                *a = v.and_then(|v| owned[v].as_ref().or(self.constants[v].as_ref()));
            }
            if swap {
                args.swap(0, 1);
            }
            let results = match given {
                Some(x) => node.op.run_owned(x, args, kernels.cpu_isa()),
                None => run_node(ni, node, args, &self.constants, hook, kernels).await,
            }
            .map_err(|e| e.context(&format!("{} node '{}'", node.op.name(), node.name)))?;
            live = live.saturating_add(results.iter().map(bytes).sum::<usize>());
            if live > max_bytes {
                let what = format!("the call (at {} node '{}')", node.op.name(), node.name);
                return budget::check(&what, live, max_bytes).map(|_| Vec::new());
            }
            for (slot, t) in node.outputs.iter().zip(results) {
                // An output no node reads and the caller does not want is let go at once.
                match slot {
                    Some(v) if sched.reads[*v] => owned[*v] = Some(t),
                    _ => live = live.saturating_sub(bytes(&t)),
                }
            }
            for v in node.inputs.iter().flatten() {
                if sched.last_use[*v] == pos {
                    if let Some(t) = owned[*v].take() {
                        live = live.saturating_sub(bytes(&t));
                    }
                }
            }
        }
        sched
            .wanted
            .iter()
            .map(|&v| match owned[v].take().or_else(|| self.constants[v].clone()) {
                Some(t) => Ok(t),
                None => Err(Error::InvalidModel(format!("value '{}' was never computed", self.value_names[v]))),
            })
            .collect()
    }

    /// Executes the whole graph and returns every graph output.
    /// Executes the whole graph with the scalar reference kernels.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        self.run_with(inputs, &ScalarKernels)
    }

    /// Executes the whole graph with the given recurrent kernels.
    pub fn run_with(&self, inputs: Vec<Tensor>, kernels: &dyn RecurrentKernels) -> Result<Vec<Tensor>> {
        let wanted: Vec<ValueId> = self.outputs.iter().map(|o| o.id).collect();
        let sched = self.schedule(&wanted, false);
        self.execute(&sched, inputs.into_iter().map(Some).collect(), &mut NoHook, kernels)
    }
}

/// Runs a future that is expected to be ready at once (every kernel but an asynchronous GPU one).
pub fn block_on_ready<F: std::future::Future>(f: F) -> Result<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Ok(v),
        std::task::Poll::Pending => Err(Error::BackendUnavailable(
            "this backend completes asynchronously: use the async API (step_async, run_async...)".into(),
        )),
    }
}

/// The values `node` reads; with `hooked_states`, a recurrent node's initial states are not read.
fn read_inputs(node: &Node, hooked_states: bool) -> impl Iterator<Item = ValueId> + '_ {
    let recurrent = matches!(node.op, Op::Recurrent(_));
    node.inputs.iter().enumerate().filter_map(move |(slot, v)| {
        let hooked = hooked_states && recurrent && (slot == rec_input::INITIAL_H || slot == rec_input::INITIAL_C);
        v.filter(|_| !hooked)
    })
}

/// Checks a fed tensor against the declared type and static dims of a graph input.
fn check_decl(decl: &ValueDecl, t: &Tensor) -> Result<()> {
    if let Some(dt) = decl.dtype {
        if dt != t.dtype() {
            return Err(Error::Shape(format!("input '{}' must be {}, got {}", decl.name, dt.name(), t.dtype().name())));
        }
    }
    if let Some(dims) = &decl.dims {
        let ok = dims.len() == t.rank() && dims.iter().zip(t.shape()).all(|(d, &s)| d.is_none_or(|d| d == s));
        if !ok {
            let want: Vec<String> = dims.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
            return Err(Error::Shape(format!(
                "input '{}' must have shape [{}], got {:?}",
                decl.name,
                want.join(", "),
                t.shape()
            )));
        }
    }
    Ok(())
}

async fn run_node(
    index: usize,
    node: &Node,
    args: &[Option<&Tensor>],
    constants: &[Option<Tensor>],
    hook: &mut dyn StateHook,
    kernels: &dyn RecurrentKernels,
) -> Result<Vec<Tensor>> {
    match &node.op {
        Op::Recurrent(spec) => {
            let mut inputs = crate::ops::recurrent_inputs(args)?;
            let dims = cell::check_inputs(spec, &RecurrentInputs { initial_h: None, initial_c: None, ..inputs })?;
            let hooked = hook.initial_state(index, &dims)?;
            if let Some((h, c)) = &hooked {
                inputs.initial_h = Some(h);
                inputs.initial_c = c.as_ref();
            }
            let resident = hook.resident().cloned();
            inputs.resident = resident.as_ref();
            let out = match kernels.run_async(index, spec, inputs) {
                Some(pending) => pending.await?,
                None => kernels.run(index, spec, &inputs)?,
            };
            hook.final_state(index, &out)?;
            let mut v = vec![out.y, out.y_h];
            if let Some(c) = out.y_c {
                v.push(c);
            }
            Ok(v)
        }
        Op::If(op) => op.run(args, constants, kernels.cpu_isa()),
        op => op.run(args, kernels.cpu_isa()),
    }
}
