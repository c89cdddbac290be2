//! Load-time simplification, as onnxruntime's constant folding and `If` elimination (and
//! onnx-simplifier from outside) do it: a graph whose inputs are partly fixed is a smaller graph.
//!
//! 1. Fixed inputs (Silero's `sr`) become constants.
//! 2. A node whose inputs are all constants runs once, here, and its outputs become constants.
//! 3. An `If` whose condition is constant is replaced by the nodes of its taken branch.
//! 4. Nodes that no graph output needs are dropped.
//! 5. Constant weights are packed for their kernels ([`prepare`]: Conv's and ConvTranspose's).
//!
//! The hot path then runs a flat list of kernels with no branch. Every step computes exactly what
//! the executor would have computed (the same kernels), so results do not change.

use std::collections::{HashMap, VecDeque};

use crate::cpu::Isa;
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::ops::array::Array;
use crate::tensor::{numel, DType, Data, Tensor};

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

/// Values whose type and shape are known but not their data: what [`specialize`] follows.
type Shapes = HashMap<ValueId, (DType, Vec<usize>)>;

/// Folds constant nodes and constant `If`s, then drops what no output needs.
pub fn fold(graph: &mut Graph) {
    fold_shapes(graph, &mut Shapes::new());
}

/// `graph` for calls whose inputs have exactly these types and shapes (`(value, dtype, shape)`):
/// what only depends on shapes becomes constant. `Shape` and `Size` of a value whose shape follows
/// from the inputs' are constants, so the `If`s on them (Silero's "is the batch 1", "is the time
/// axis 1") fold to their taken branch, whose nodes (an LSTM among them) join the flat list. A
/// node's output shape is known when its operator's output shape depends only on its inputs'
/// shapes (and on the values of those inputs it reads shapes from, when they are constants): the
/// node is run once, here, on zeros of its inputs' shapes.
pub fn specialize(graph: &Graph, inputs: &[(ValueId, DType, Vec<usize>)]) -> Graph {
    let mut g = graph.clone();
    let mut shapes: Shapes = inputs.iter().map(|(v, d, s)| (*v, (*d, s.clone()))).collect();
    fold_shapes(&mut g, &mut shapes);
    elide_identities(&mut g);
    fuse_relu(&mut g);
    // Constants no node or output reads any more (the folded branches' weights) are let go.
    let mut read = vec![false; g.value_count()];
    fn mark(nodes: &[Node], read: &mut [bool]) {
        for n in nodes {
            n.inputs.iter().flatten().for_each(|&v| read[v] = true);
            if let Op::If(op) = &n.op {
                for b in [&op.then_branch, &op.else_branch] {
                    mark(&b.nodes, read);
                    b.outputs.iter().for_each(|&v| read[v] = true);
                }
            }
        }
    }
    mark(&g.nodes, &mut read);
    g.outputs.iter().for_each(|o| read[o.id] = true);
    for (c, r) in g.constants.iter_mut().zip(read) {
        if !r {
            *c = None;
        }
    }
    g
}

/// Identity nodes (what inlined branches leave: Silero v5 has 20 in its hot path) dropped, their
/// readers reading the value they copied; one that writes a graph output stays. Skipped while
/// `If`s remain, whose branches may read the values too.
fn elide_identities(g: &mut Graph) {
    if g.nodes.iter().any(|n| matches!(n.op, Op::If(_))) {
        return;
    }
    let mut output = vec![false; g.value_count()];
    g.outputs.iter().for_each(|o| output[o.id] = true);
    let mut alias: Vec<ValueId> = (0..g.value_count()).collect();
    g.nodes.retain_mut(|n| {
        for v in n.inputs.iter_mut().flatten() {
            *v = alias.get(*v).copied().unwrap_or(*v);
        }
        match (&n.op, n.inputs.as_slice(), n.outputs.as_slice()) {
            (Op::Identity, [Some(src)], [Some(dst)]) if output.get(*dst) == Some(&false) => {
                alias[*dst] = *src;
                false
            }
            _ => true,
        }
    });
}

/// A `Relu` whose input is a `Conv`'s output that nothing else reads (no other node, no graph
/// output) becomes part of that Conv ([`crate::ops::conv::ConvAttrs::relu`]): Silero's encoder is
/// four Conv + Relu pairs, and on a 32 ms chunk a node of its own costs more than the Relu.
fn fuse_relu(g: &mut Graph) {
    if g.nodes.iter().any(|n| matches!(n.op, Op::If(_))) {
        return;
    }
    let mut readers = vec![0usize; g.value_count()];
    g.nodes.iter().flat_map(|n| n.inputs.iter().flatten()).for_each(|&v| {
        if let Some(r) = readers.get_mut(v) {
            *r += 1;
        }
    });
    g.outputs.iter().for_each(|o| {
        if let Some(r) = readers.get_mut(o.id) {
            *r += 1;
        }
    });
    let producer = g.producers();
    // (Conv node, Relu node, the Relu's output) for each Relu whose input only it reads.
    let pairs: Vec<(usize, usize, ValueId)> = g
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match (&n.op, n.inputs.as_slice(), n.outputs.as_slice()) {
            (Op::Relu, [Some(x)], [Some(y)]) if readers.get(*x) == Some(&1) => {
                producer.get(*x).copied().flatten().filter(|&p| p < i).map(|p| (p, i, *y))
            }
            _ => None,
        })
        .collect();
    let mut gone = vec![false; g.nodes.len()];
    for (p, i, y) in pairs {
        let conv = &mut g.nodes[p];
        if let (Op::Conv(crate::ops::conv::Conv::Conv(c)), [Some(out)]) = (&mut conv.op, conv.outputs.as_mut_slice()) {
            if !c.relu {
                c.relu = true;
                *out = y;
                gone[i] = true;
            }
        }
    }
    let mut i = 0;
    g.nodes.retain(|_| {
        i += 1;
        !gone[i - 1]
    });
}

fn fold_shapes(graph: &mut Graph, shapes: &mut Shapes) {
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
        if !shapes.is_empty() {
            if let Some(values) = infer(graph, &node, shapes) {
                let to_constant = matches!(node.op, Op::Shape { .. } | Op::Array(Array::Size));
                for (slot, t) in node.outputs.iter().zip(values) {
                    if let Some(v) = slot {
                        if to_constant {
                            graph.constants[*v] = Some(t);
                        } else {
                            shapes.insert(*v, (t.dtype(), t.shape().to_vec()));
                        }
                    }
                }
                if to_constant {
                    continue;
                }
            }
        }
        // A Cast to the type its input already has copies it: an Identity, elided below.
        let mut node = node;
        if let (Op::Cast { to }, Some(Some(v))) = (&node.op, node.inputs.first()) {
            if shapes.get(v).is_some_and(|(d, _)| d == to) {
                node.op = Op::Identity;
            }
        }
        kept.push(node);
    }
    graph.nodes = prune(graph, kept);
}

/// Whether the value of input `slot` of `op` leaves its output shapes alone (only its shape
/// matters): such an input may be one whose data is not known when shapes are inferred.
fn shape_only(op: &Op, slot: usize) -> bool {
    match op {
        Op::Identity | Op::Relu | Op::Sigmoid | Op::Tanh | Op::Add | Op::Sub | Op::Mul | Op::Div => true,
        Op::MatMul | Op::Gemm { .. } | Op::Gather { .. } | Op::Transpose { .. } | Op::Flatten { .. } => true,
        Op::Concat { .. } | Op::Shape { .. } | Op::Cast { .. } | Op::Softmax { .. } | Op::Recurrent(_) => true,
        Op::Math(_) | Op::Logic(_) | Op::Conv(_) | Op::Norm(_) | Op::Pool(_) => true,
        Op::Array(Array::Size | Array::ScatterND { .. } | Array::GatherElements { .. }) => true,
        Op::Reshape { .. } | Op::Squeeze { .. } | Op::Unsqueeze { .. } | Op::Slice { .. } | Op::Split { .. } => {
            slot == 0
        }
        Op::Expand | Op::Pad(_) | Op::Reduce(_) | Op::Array(Array::Tile { .. }) => slot == 0,
        Op::ConstantOfShape { .. } | Op::Array(Array::Range) | Op::If(_) => false,
    }
}

/// `node` run on zeros of the known shapes of its inputs (and the constants among them), when
/// every input is known that way and its outputs' shapes depend on nothing else.
fn infer(graph: &Graph, node: &Node, shapes: &Shapes) -> Option<Vec<Tensor>> {
    let known: Vec<_> = node
        .inputs
        .iter()
        .map(|v| {
            let v = (*v)?;
            match &graph.constants[v] {
                Some(t) => Some((t.dtype(), t.shape(), Some(t))),
                None => shapes.get(&v).map(|(d, s)| (*d, s.as_slice(), None)),
            }
        })
        .collect();
    if crate::budget::predicted_elements(&node.op, &known).is_some_and(|n| n > MAX_FOLDED) {
        return None; // the executor's to run (and to refuse over the budget), not the folding's
    }
    let mut owned: Vec<Option<Tensor>> = Vec::with_capacity(node.inputs.len());
    for (slot, v) in node.inputs.iter().enumerate() {
        let Some(v) = *v else {
            owned.push(None);
            continue;
        };
        if graph.constants[v].is_some() {
            owned.push(None);
            continue;
        }
        let (dtype, shape) = shapes.get(&v).filter(|_| shape_only(&node.op, slot))?;
        let n = numel(shape).ok().filter(|&n| n <= MAX_FOLDED)?;
        let data = match dtype {
            DType::F32 => Data::F32(vec![0.0; n]),
            DType::I64 => Data::I64(vec![0; n]),
        };
        owned.push(Some(Tensor::new(shape.clone(), data).ok()?));
    }
    let args: Vec<Option<&Tensor>> = node
        .inputs
        .iter()
        .zip(&owned)
        .map(|(v, o)| o.as_ref().or_else(|| v.and_then(|v| graph.constants[v].as_ref())))
        .collect();
    let out = match &node.op {
        Op::Recurrent(spec) => {
            let o = crate::cell::run_reference(spec, &crate::ops::recurrent_inputs(&args).ok()?).ok()?;
            let mut v = vec![o.y, o.y_h];
            v.extend(o.y_c);
            v
        }
        op => op.run(&args, Isa::best()).ok()?,
    };
    (out.len() >= node.outputs.iter().flatten().count()).then_some(out)
}

/// Packs the constant weights of the operators that keep them packed (Conv, ConvTranspose), in
/// the graph and in the branches of its `If`s.
pub fn prepare(graph: &mut Graph) {
    fn walk(nodes: &mut [Node], constants: &[Option<Tensor>]) {
        for node in nodes {
            match &mut node.op {
                Op::Conv(conv) => {
                    let w = node.inputs.get(1).copied().flatten().and_then(|v| constants.get(v)?.as_ref());
                    conv.prepare(w);
                }
                Op::If(op) => {
                    walk(&mut op.then_branch.nodes, constants);
                    walk(&mut op.else_branch.nodes, constants);
                }
                _ => {}
            }
        }
    }
    walk(&mut graph.nodes, &graph.constants);
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
    let shapes: Vec<_> = args.iter().map(|a| a.map(|t| (t.dtype(), t.shape(), Some(t)))).collect();
    if crate::budget::predicted_elements(&node.op, &shapes).is_some_and(|n| n > MAX_FOLDED) {
        return None; // too big to be a constant: not computed at all
    }
    let out = match &node.op {
        Op::If(op) => op.run(&args, &graph.constants, Isa::best()),
        op => op.run(&args, Isa::best()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ValueDecl;
    use crate::ops::conv::{Conv, ConvAttrs};

    /// x [1, 1, 4] → Conv (W [2, 1, 1] = ±1) → Relu → y; with `keep_conv` the Conv's output is
    /// a graph output too.
    fn conv_relu(keep_conv: bool) -> Graph {
        let attrs = ConvAttrs { group: 1, ..ConvAttrs::default() };
        let decl = |name: &str, id| ValueDecl { name: name.into(), id, dtype: Some(DType::F32), dims: None };
        let node = |name: &str, op, inputs: Vec<usize>, out| Node {
            name: name.into(),
            op,
            inputs: inputs.into_iter().map(Some).collect(),
            outputs: vec![Some(out)],
        };
        let mut outputs = vec![decl("y", 3)];
        if keep_conv {
            outputs.push(decl("c", 2));
        }
        Graph {
            value_names: ["x", "w", "c", "y"].map(String::from).to_vec(),
            nodes: vec![node("conv", Op::Conv(Conv::Conv(attrs)), vec![0, 1], 2), node("relu", Op::Relu, vec![2], 3)],
            inputs: vec![decl("x", 0)],
            outputs,
            constants: vec![None, Tensor::from_f32(vec![2, 1, 1], vec![1.0, -1.0]).ok(), None, None],
        }
    }

    #[test]
    fn a_relu_after_a_conv_joins_it_unless_the_conv_output_is_read_elsewhere() {
        let x = Tensor::from_f32(vec![1, 1, 4], vec![-2.0, 0.5, f32::NAN, 3.0]).unwrap();
        for keep_conv in [false, true] {
            let g = conv_relu(keep_conv);
            let want = g.run(vec![x.clone()]).unwrap();
            let mut f = g.clone();
            fuse_relu(&mut f);
            assert_eq!(f.nodes.len(), if keep_conv { 2 } else { 1 });
            let got = f.run(vec![x.clone()]).unwrap();
            let bits = |t: &[Tensor]| {
                t.iter().flat_map(|t| t.as_f32().unwrap().iter().map(|v| v.to_bits())).collect::<Vec<_>>()
            };
            assert_eq!(bits(&got), bits(&want), "keep_conv {keep_conv}");
        }
    }
}
