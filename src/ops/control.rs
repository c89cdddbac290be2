//! `If`: two branches over the enclosing graph's values.
//!
//! The importer gives each branch's own values (its node outputs and initializers) numbers of their
//! own in the enclosing graph's numbering, so a branch is a plain list of nodes that reads the
//! enclosing values it captures by their numbers. An `If` node's inputs are the condition followed by
//! every value its branches capture (so the executor schedules and frees them as for any node).
//!
//! An `If` whose condition is a constant at load (a fixed input such as Silero's `sr`) is replaced by
//! its taken branch before anything runs ([`crate::onnx::fold`]); what is left runs here, on the
//! taken branch only. Recurrent nodes inside a branch that stays dynamic run on the scalar
//! reference kernels, with their graph-given states (sessions cannot reach into a branch).

use std::collections::HashMap;

use super::{Node, Op, ValueId};
use crate::cell;
use crate::cpu::Isa;
use crate::error::{shape_err, Error, Result};
use crate::tensor::{Data, Tensor};

/// One branch: its nodes in execution order and the values it returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub nodes: Vec<Node>,
    pub outputs: Vec<ValueId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct If {
    pub then_branch: Branch,
    pub else_branch: Branch,
    /// The enclosing values the branches read, in the order of the node's inputs after the condition.
    pub captures: Vec<ValueId>,
}

/// The truth of an `If` condition: a tensor of exactly one element.
pub fn truth(cond: &Tensor) -> Result<bool> {
    if cond.len() != 1 {
        return shape_err!("If: the condition must hold one element, it has shape {:?}", cond.shape());
    }
    Ok(match cond.data() {
        Data::I64(v) => v[0] != 0,
        Data::F32(v) => v[0] != 0.0,
    })
}

impl If {
    pub fn name(&self) -> &'static str {
        "If"
    }

    /// The branch `cond` selects.
    pub fn taken(&self, cond: &Tensor) -> Result<&Branch> {
        Ok(if truth(cond)? { &self.then_branch } else { &self.else_branch })
    }

    /// Runs the taken branch. `args` are the node's inputs (condition, then the captures);
    /// `constants` the graph's constant table (branch initializers are in it too).
    pub fn run(&self, args: &[Option<&Tensor>], constants: &[Option<Tensor>], isa: Isa) -> Result<Vec<Tensor>> {
        let cond = super::arg(args, 0)?;
        let branch = self.taken(cond)?;
        let mut local: HashMap<ValueId, Tensor> = HashMap::new();
        for (i, &v) in self.captures.iter().enumerate() {
            if let Some(t) = args.get(i + 1).copied().flatten() {
                local.insert(v, t.clone());
            }
        }
        run_nodes(&branch.nodes, &mut local, constants, isa)?;
        branch
            .outputs
            .iter()
            .map(|&v| {
                local.get(&v).or_else(|| constants.get(v).and_then(Option::as_ref)).cloned().ok_or_else(|| {
                    Error::InvalidModel(format!(
                        "If: a branch output (value #{v}) is computed by no node of the branch"
                    ))
                })
            })
            .collect()
    }
}

/// Runs `nodes` in order over the values in `local` (and the constants), adding their outputs.
fn run_nodes(
    nodes: &[Node],
    local: &mut HashMap<ValueId, Tensor>,
    constants: &[Option<Tensor>],
    isa: Isa,
) -> Result<()> {
    for node in nodes {
        let results = {
            let args: Vec<Option<&Tensor>> = node
                .inputs
                .iter()
                .map(|v| v.and_then(|v| local.get(&v).or_else(|| constants.get(v).and_then(Option::as_ref))))
                .collect();
            run_node(node, &args, constants, isa)
                .map_err(|e| e.context(&format!("{} node '{}'", node.op.name(), node.name)))?
        };
        for (slot, t) in node.outputs.iter().zip(results) {
            if let Some(v) = slot {
                local.insert(*v, t);
            }
        }
    }
    Ok(())
}

fn run_node(node: &Node, args: &[Option<&Tensor>], constants: &[Option<Tensor>], isa: Isa) -> Result<Vec<Tensor>> {
    match &node.op {
        Op::If(op) => op.run(args, constants, isa),
        Op::Recurrent(spec) => {
            let inputs = super::recurrent_inputs(args)?;
            let out = cell::run_reference(spec, &inputs)?;
            let mut v = vec![out.y, out.y_h];
            v.extend(out.y_c);
            Ok(v)
        }
        op => op.run(args, isa),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, op: Op, inputs: &[ValueId], outputs: &[ValueId]) -> Node {
        Node {
            name: name.into(),
            op,
            inputs: inputs.iter().map(|&v| Some(v)).collect(),
            outputs: outputs.iter().map(|&v| Some(v)).collect(),
        }
    }

    #[test]
    fn the_condition_picks_the_branch_and_captures_are_read() {
        // Values: 0 cond, 1 x (captured), 2 then-out, 3 else-out, 4 constant 10.
        let op = If {
            then_branch: Branch { nodes: vec![node("add", Op::Add, &[1, 4], &[2])], outputs: vec![2] },
            else_branch: Branch { nodes: vec![node("neg", Op::Sub, &[4, 1], &[3])], outputs: vec![3] },
            captures: vec![1],
        };
        let mut constants = vec![None; 5];
        constants[4] = Some(Tensor::from_f32(vec![], vec![10.0]).unwrap());
        let x = Tensor::from_f32(vec![2], vec![1.0, 2.0]).unwrap();
        for (c, want) in [(1, [11.0, 12.0]), (0, [9.0, 8.0])] {
            let cond = Tensor::from_i64(vec![1], vec![c]).unwrap();
            let got = op.run(&[Some(&cond), Some(&x)], &constants, Isa::Scalar).unwrap();
            assert_eq!(got[0].as_f32().unwrap(), &want);
        }
        let two = Tensor::from_i64(vec![2], vec![1, 1]).unwrap();
        assert_eq!(op.run(&[Some(&two), Some(&x)], &constants, Isa::Scalar).unwrap_err().code(), "shape");
    }
}
