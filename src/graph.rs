//! The model description every importer produces: a topologically ordered list of nodes over
//! numbered values, plus constant tensors. Execution walks the nodes once; recurrent nodes may take
//! their initial state from, and hand their final state to, a [`StateHook`] (how sessions carry state).

use crate::backend::{RecurrentKernels, ScalarKernels};
use crate::cell::{self, RecurrentInputs, RecurrentSpec};
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::{DType, Tensor};

pub type ValueId = usize;

/// Opset < 10 `Slice` attributes: starts, ends, optional axes.
pub type SliceAttrs = (Vec<i64>, Vec<i64>, Option<Vec<i64>>);

/// One operator with its attributes already parsed and validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    },
    Gather {
        axis: i64,
    },
    Transpose {
        perm: Option<Vec<usize>>,
    },
    Reshape {
        allow_zero: bool,
    },
    Flatten {
        axis: i64,
    },
    /// `axes` from the attribute (opset < 13) or `None` when they come from input 1 (or are absent).
    Squeeze {
        axes: Option<Vec<i64>>,
    },
    Unsqueeze {
        axes: Option<Vec<i64>>,
    },
    /// Opset < 10 keeps starts/ends/axes in attributes.
    Slice {
        attrs: Option<SliceAttrs>,
    },
    Concat {
        axis: i64,
    },
    Split {
        axis: i64,
        split: Option<Vec<i64>>,
        num_outputs: usize,
    },
    Expand,
    Shape {
        start: i64,
        end: Option<i64>,
    },
    ConstantOfShape {
        value: Tensor,
    },
    Cast {
        to: DType,
    },
    /// `legacy`: opset < 13 semantics (coerce to 2-D at `axis`).
    Softmax {
        axis: i64,
        legacy: bool,
        log: bool,
    },
    Recurrent(RecurrentSpec),
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Identity => "Identity",
            Op::Relu => "Relu",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Div => "Div",
            Op::MatMul => "MatMul",
            Op::Gemm { .. } => "Gemm",
            Op::Gather { .. } => "Gather",
            Op::Transpose { .. } => "Transpose",
            Op::Reshape { .. } => "Reshape",
            Op::Flatten { .. } => "Flatten",
            Op::Squeeze { .. } => "Squeeze",
            Op::Unsqueeze { .. } => "Unsqueeze",
            Op::Slice { .. } => "Slice",
            Op::Concat { .. } => "Concat",
            Op::Split { .. } => "Split",
            Op::Expand => "Expand",
            Op::Shape { .. } => "Shape",
            Op::ConstantOfShape { .. } => "ConstantOfShape",
            Op::Cast { .. } => "Cast",
            Op::Softmax { log: false, .. } => "Softmax",
            Op::Softmax { log: true, .. } => "LogSoftmax",
            Op::Recurrent(s) => s.cell.op_name(),
        }
    }
}

/// Recurrent node input slots (ONNX order), plus the projection extension.
pub mod rec_input {
    pub const X: usize = 0;
    pub const W: usize = 1;
    pub const R: usize = 2;
    pub const B: usize = 3;
    pub const SEQUENCE_LENS: usize = 4;
    pub const INITIAL_H: usize = 5;
    pub const INITIAL_C: usize = 6;
    pub const P: usize = 7;
    /// Not ONNX: LSTM output projection `[dirs, P, H]` (PyTorch `proj_size`).
    pub const PROJ: usize = 8;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    /// `None` for an omitted optional input.
    pub inputs: Vec<Option<ValueId>>,
    pub outputs: Vec<Option<ValueId>>,
}

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
}

impl Graph {
    pub fn value_count(&self) -> usize {
        self.value_names.len()
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
        Schedule { nodes, last_use, reads, wanted: wanted.to_vec() }
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
        for (pos, &ni) in sched.nodes.iter().enumerate() {
            let node = &self.nodes[ni];
            let args: Vec<Option<&Tensor>> =
                node.inputs.iter().map(|v| v.and_then(|v| owned[v].as_ref().or(self.constants[v].as_ref()))).collect();
            let results = run_node(ni, node, &args, hook, kernels)
                .await
                .map_err(|e| e.context(&format!("{} node '{}'", node.op.name(), node.name)))?;
            drop(args);
            for (slot, t) in node.outputs.iter().zip(results) {
                if let Some(v) = slot {
                    owned[*v] = Some(t);
                }
            }
            for v in node.inputs.iter().flatten() {
                if sched.last_use[*v] == pos {
                    owned[*v] = None;
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

fn arg<'a>(args: &[Option<&'a Tensor>], i: usize) -> Result<&'a Tensor> {
    args.get(i).copied().flatten().ok_or_else(|| Error::InvalidModel(format!("required input {i} is missing")))
}

fn opt<'a>(args: &[Option<&'a Tensor>], i: usize) -> Option<&'a Tensor> {
    args.get(i).copied().flatten()
}

async fn run_node(
    index: usize,
    node: &Node,
    args: &[Option<&Tensor>],
    hook: &mut dyn StateHook,
    kernels: &dyn RecurrentKernels,
) -> Result<Vec<Tensor>> {
    let one = |t: Result<Tensor>| t.map(|t| vec![t]);
    match &node.op {
        Op::Identity => Ok(vec![arg(args, 0)?.clone()]),
        Op::Relu | Op::Sigmoid | Op::Tanh => one(ops::unary(&node.op, arg(args, 0)?)),
        Op::Add | Op::Sub | Op::Mul | Op::Div => one(ops::binary(&node.op, arg(args, 0)?, arg(args, 1)?)),
        Op::MatMul => one(ops::matmul(arg(args, 0)?, arg(args, 1)?)),
        Op::Gemm { alpha, beta, trans_a, trans_b } => {
            one(ops::gemm(arg(args, 0)?, arg(args, 1)?, opt(args, 2), *alpha, *beta, *trans_a, *trans_b))
        }
        Op::Gather { axis } => one(ops::gather(arg(args, 0)?, arg(args, 1)?, *axis)),
        Op::Transpose { perm } => one(ops::transpose(arg(args, 0)?, perm.as_deref())),
        Op::Reshape { allow_zero } => one(ops::reshape(arg(args, 0)?, arg(args, 1)?, *allow_zero)),
        Op::Flatten { axis } => one(ops::flatten(arg(args, 0)?, *axis)),
        Op::Squeeze { axes } => {
            let axes = match axes {
                Some(a) => Some(a.clone()),
                None => opt(args, 1).map(|t| t.to_i64_vec()).transpose()?,
            };
            one(ops::squeeze(arg(args, 0)?, axes.as_deref()))
        }
        Op::Unsqueeze { axes } => {
            let axes = match axes {
                Some(a) => a.clone(),
                None => arg(args, 1)?.to_i64_vec()?,
            };
            one(ops::unsqueeze(arg(args, 0)?, &axes))
        }
        Op::Slice { attrs } => {
            let x = arg(args, 0)?;
            match attrs {
                Some((starts, ends, axes)) => one(ops::slice(x, starts, ends, axes.as_deref(), None)),
                None => {
                    let starts = arg(args, 1)?.to_i64_vec()?;
                    let ends = arg(args, 2)?.to_i64_vec()?;
                    let axes = opt(args, 3).map(|t| t.to_i64_vec()).transpose()?;
                    let steps = opt(args, 4).map(|t| t.to_i64_vec()).transpose()?;
                    one(ops::slice(x, &starts, &ends, axes.as_deref(), steps.as_deref()))
                }
            }
        }
        Op::Concat { axis } => {
            let parts: Vec<&Tensor> = args.iter().flatten().copied().collect();
            one(ops::concat(&parts, *axis))
        }
        Op::Split { axis, split, num_outputs } => {
            let sizes = match split {
                Some(s) => Some(s.clone()),
                None => opt(args, 1).map(|t| t.to_i64_vec()).transpose()?,
            };
            ops::split(arg(args, 0)?, *axis, sizes.as_deref(), *num_outputs)
        }
        Op::Expand => one(ops::expand(arg(args, 0)?, arg(args, 1)?)),
        Op::Shape { start, end } => one(ops::shape_of(arg(args, 0)?, *start, *end)),
        Op::ConstantOfShape { value } => one(ops::constant_of_shape(arg(args, 0)?, value)),
        Op::Cast { to } => one(ops::cast(arg(args, 0)?, *to)),
        Op::Softmax { axis, legacy, log } => one(ops::softmax(arg(args, 0)?, *axis, *legacy, *log)),
        Op::Recurrent(spec) => {
            use rec_input as ri;
            let mut inputs = RecurrentInputs {
                x: arg(args, ri::X)?,
                w: arg(args, ri::W)?,
                r: arg(args, ri::R)?,
                b: opt(args, ri::B),
                sequence_lens: opt(args, ri::SEQUENCE_LENS),
                initial_h: opt(args, ri::INITIAL_H),
                initial_c: opt(args, ri::INITIAL_C),
                p: opt(args, ri::P),
                proj: opt(args, ri::PROJ),
                resident: None,
            };
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
    }
}
