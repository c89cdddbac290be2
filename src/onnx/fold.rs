//! Load-time simplification, as onnxruntime's constant folding and `If` elimination (and
//! onnx-simplifier from outside) do it: a graph whose inputs are partly fixed is a smaller graph.
//!
//! 1. Fixed inputs (Silero's `sr`) become constants.
//! 2. A node whose inputs are all constants runs once, here, and its outputs become constants.
//! 3. An `If` whose condition is constant is replaced by the nodes of its taken branch.
//! 4. Nodes that no graph output needs are dropped.
//!
//! The hot path then runs a flat list of kernels with no branch. Every step computes exactly what
//! the executor would have computed (the same kernels), so results do not change.

use std::collections::VecDeque;

use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op};
use crate::tensor::{DType, Tensor};

/// Most elements a folded node may produce in all: folding must not turn a small file into a
/// large constant table (an `Expand` of a scalar to a huge shape stays a node).
const MAX_FOLDED: usize = 1 << 22;

/// Turns the named graph inputs into constants. A value given as float for an integer input must
/// hold whole numbers; a value whose element count matches a fully static declared shape takes it.
pub fn fix_inputs(graph: &mut Graph, fixed: &[(String, Tensor)]) -> Result<()> {
    for (name, t) in fixed {
        let Some(pos) = graph.inputs.iter().position(|d| &d.name == name) else {
            let names: Vec<&str> = graph.inputs.iter().map(|d| d.name.as_str()).collect();
            return Err(Error::InvalidArgument(format!(
                "no graph input is named '{name}' (the inputs are: {})",
                names.join(", ")
            )));
        };
        let decl = graph.inputs.remove(pos);
        let mut t = t.clone();
        // Plain numbers from JS arrive as whichever type they look like: take the declared one.
        if decl.dtype == Some(DType::I64) && t.dtype() == DType::F32 {
            let v = t.to_i64_vec().map_err(|e| e.context(&format!("fixed input '{name}'")))?;
            t = Tensor::from_i64(t.shape().to_vec(), v)?;
        } else if decl.dtype == Some(DType::F32) && t.dtype() == DType::I64 {
            t = crate::ops::cast(&t, DType::F32)?;
        }
        if let Some(dims) = &decl.dims {
            let static_dims: Option<Vec<usize>> = dims.iter().copied().collect();
            let fits = dims.len() == t.rank() && dims.iter().zip(t.shape()).all(|(d, &s)| d.is_none_or(|d| d == s));
            match static_dims {
                _ if fits => {}
                Some(s) if s.iter().product::<usize>() == t.len() => t = t.reshaped(s)?,
                _ => {
                    let want: Vec<String> = dims.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
                    return Err(Error::Shape(format!(
                        "fixed input '{name}' must have shape [{}], got {:?}",
                        want.join(", "),
                        t.shape()
                    )));
                }
            }
        }
        if let Some(dt) = decl.dtype {
            if dt != t.dtype() {
                return Err(Error::Shape(format!(
                    "fixed input '{name}' must be {}, got {}",
                    dt.name(),
                    t.dtype().name()
                )));
            }
        }
        graph.constants[decl.id] = Some(t);
    }
    Ok(())
}

/// Folds constant nodes and constant `If`s, then drops what no output needs.
pub fn fold(graph: &mut Graph) {
    let mut queue: VecDeque<Node> = std::mem::take(&mut graph.nodes).into();
    let mut kept = Vec::new();
    while let Some(node) = queue.pop_front() {
        if let Op::If(op) = &node.op {
            let cond = node.inputs.first().copied().flatten().and_then(|v| graph.constants[v].as_ref());
            if let Some(branch) = cond.and_then(|c| op.taken(c).ok()) {
                let mut inlined = branch.nodes.clone();
                for (i, (out, &from)) in node.outputs.iter().zip(&branch.outputs).enumerate() {
                    inlined.push(Node {
                        name: format!("{}/output {i}", node.name),
                        op: Op::Identity,
                        inputs: vec![Some(from)],
                        outputs: vec![*out],
                    });
                }
                for n in inlined.into_iter().rev() {
                    queue.push_front(n);
                }
                continue;
            }
        }
        if let Some(values) = evaluate(graph, &node) {
            for (slot, t) in node.outputs.iter().zip(values) {
                if let Some(v) = slot {
                    graph.constants[*v] = Some(t);
                }
            }
            continue;
        }
        kept.push(node);
    }
    graph.nodes = prune(graph, kept);
}

/// The outputs of `node` when all its inputs are constants and they are small; `None` otherwise
/// (including when the node fails: the executor then reports the failure where it happens).
fn evaluate(graph: &Graph, node: &Node) -> Option<Vec<Tensor>> {
    if matches!(node.op, Op::Recurrent(_)) {
        return None;
    }
    let args: Option<Vec<Option<&Tensor>>> =
        node.inputs.iter().map(|v| v.map_or(Some(None), |v| graph.constants[v].as_ref().map(Some))).collect();
    let args = args?;
    let out = match &node.op {
        Op::If(op) => op.run(&args, &graph.constants),
        op => op.run(&args),
    }
    .ok()?;
    let total: usize = out.iter().map(Tensor::len).sum();
    (total <= MAX_FOLDED && out.len() >= node.outputs.iter().flatten().count()).then_some(out)
}

/// The nodes some graph output needs, in their order.
fn prune(graph: &Graph, nodes: Vec<Node>) -> Vec<Node> {
    let mut needed = vec![false; graph.value_count()];
    for o in &graph.outputs {
        needed[o.id] = true;
    }
    let mut keep = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate().rev() {
        if n.outputs.iter().flatten().any(|v| needed[*v]) {
            keep[i] = true;
            for v in n.inputs.iter().flatten() {
                needed[*v] = true;
            }
        }
    }
    nodes.into_iter().zip(keep).filter_map(|(n, k)| k.then_some(n)).collect()
}
