//! Finds a model's output head: the MatMul/Gemm (+ Add of a constant bias) after its last
//! recurrent layer, optionally under a Softmax/LogSoftmax over the last axis, that makes one of
//! the session's outputs. The adapter adds its delta to that head's logits; its input `x` is the
//! last layer's newest hidden state, which the session holds after every step.

use crate::cell::Direction;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use crate::model::Model;

/// What follows the head's Add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Raw values: regression (squared error) or logits (cross-entropy on their softmax).
    None,
    Softmax,
    LogSoftmax,
}

/// The output head sessions adapt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Which of the session's outputs it makes.
    pub output: usize,
    pub activation: Activation,
    /// Classes (or values) of one step's output.
    pub classes: usize,
    /// Size of the head's input: the last recurrent layer's state size.
    pub inputs: usize,
    /// Where that layer's `h` starts in a session's state vector.
    pub state_offset: usize,
}

fn no_head(why: &str) -> Error {
    Error::InvalidModel(format!("no output head to adapt: {why}"))
}

/// The node producing `v`, seen through shape-only nodes (Squeeze, Reshape, Transpose...).
fn through_shapes(g: &Graph, producers: &[Option<usize>], mut v: usize) -> Option<(usize, usize)> {
    loop {
        let n = producers.get(v).copied().flatten()?;
        let node = &g.nodes[n];
        match node.op {
            Op::Identity
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Flatten { .. } => v = node.inputs.first().copied().flatten()?,
            _ => return Some((n, node.outputs.iter().position(|o| *o == Some(v))?)),
        }
    }
}

fn constant(g: &Graph, v: Option<usize>) -> Option<&crate::Tensor> {
    g.constants.get(v?)?.as_ref()
}

impl Model {
    /// The output head sessions can adapt, or an [`Error::InvalidModel`] saying why there is none.
    pub fn output_head(&self) -> Result<Head> {
        let plan = self.session_plan()?;
        if plan.calls.is_some() {
            return Err(no_head("the model is called chunk by chunk with its state in graph tensors"));
        }
        let cell = plan.cells.iter().max_by_key(|c| c.node).ok_or_else(|| no_head("no recurrent layer"))?;
        if cell.direction != Direction::Forward {
            return Err(no_head("the last recurrent layer is not forward-only"));
        }
        let g = self.graph();
        let producers = g.producers();
        let mut why = "no session output is a MatMul/Gemm (+ Add) of the last recurrent layer's output";
        for (output, o) in plan.outputs.iter().enumerate() {
            let Some(decl) = g.outputs.get(o.graph_index) else { continue };
            let Some(mut n) = producers.get(decl.id).copied().flatten() else { continue };
            let mut activation = Activation::None;
            if let Op::Softmax { axis, legacy: false, log } = g.nodes[n].op {
                let rank = decl.dims.as_ref().map(|d| d.len() as i64);
                if axis != -1 && Some(axis + 1) != rank {
                    why = "the output's softmax is not over its last axis";
                    continue;
                }
                activation = if log { Activation::LogSoftmax } else { Activation::Softmax };
                let Some(p) = g.nodes[n].inputs.first().copied().flatten().and_then(|v| producers[v]) else { continue };
                n = p;
            }
            if let Op::Add = g.nodes[n].op {
                let ins = &g.nodes[n].inputs;
                let (a, b) = (ins.first().copied().flatten(), ins.get(1).copied().flatten());
                let other = if constant(g, b).is_some() {
                    a
                } else if constant(g, a).is_some() {
                    b
                } else {
                    None
                };
                let Some(p) = other.and_then(|v| producers[v]) else { continue };
                n = p;
            }
            let node = &g.nodes[n];
            let (weight, trans) = match node.op {
                Op::MatMul => (constant(g, node.inputs.get(1).copied().flatten()), false),
                Op::Gemm { trans_a: false, trans_b, .. } => {
                    (constant(g, node.inputs.get(1).copied().flatten()), trans_b)
                }
                _ => continue,
            };
            let Some(w) = weight.filter(|w| w.rank() == 2) else {
                why = "the head's weight is not a constant matrix";
                continue;
            };
            let (rows, classes) = if trans { (w.shape()[1], w.shape()[0]) } else { (w.shape()[0], w.shape()[1]) };
            let Some(x) = node.inputs.first().copied().flatten() else { continue };
            match through_shapes(g, &producers, x) {
                Some((r, 0 | 1)) if r == cell.node && rows == cell.state_size => {}
                _ => {
                    why = "the head's input is not the last recurrent layer's output";
                    continue;
                }
            }
            return Ok(Head { output, activation, classes, inputs: rows, state_offset: cell.offset });
        }
        Err(no_head(why))
    }
}
