//! The operators, by family. Each family file reads like the spec: attribute parsing (`parse`), the
//! shape rule and the kernel (`run`). The graph executor knows none of them: it calls [`Op::run`]
//! (recurrent nodes and `If` aside, which need the executor's state hook and value table).
//!
//! Families: [`elementwise`] (unary/binary arithmetic), [`logic`] (comparisons, boolean logic,
//! `Where`), [`matmul`], [`conv`] (Conv, ConvTranspose), [`pad`], [`reduce`], [`normalize`]
//! (Softmax, BatchNormalization, LayerNormalization, InstanceNormalization), [`pool`], [`shape`]
//! (reshapes, slices, gathers, casts), [`array`] (Size, Range, ScatterND, GatherElements, Tile),
//! [`control`] (`If`).
//!
//! Boolean tensors are `i64` tensors of 0 and 1 (as the importer reads ONNX `bool`).

pub mod array;
pub mod attrs;
pub mod control;
pub mod conv;
pub mod elementwise;
pub mod logic;
pub mod matmul;
pub mod normalize;
pub mod pad;
pub mod pool;
pub mod reduce;
mod scratch;
pub mod shape;

pub use attrs::Attrs;
pub use elementwise::{binary, binary_owned, broadcast_shape, unary};
pub use matmul::{gemm, matmul};
pub use normalize::softmax;
pub use shape::*;

use crate::cell::RecurrentSpec;
use crate::cpu::Isa;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// A value of a graph, by number.
pub type ValueId = usize;

/// One operator applied to numbered values.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    /// `None` for an omitted optional input.
    pub inputs: Vec<Option<ValueId>>,
    pub outputs: Vec<Option<ValueId>>,
}

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
    /// Families of operators added for the real-world front ends; each file parses and runs its own.
    Math(elementwise::Math),
    Logic(logic::Logic),
    Conv(conv::Conv),
    Pad(pad::Pad),
    Reduce(reduce::Reduce),
    Norm(normalize::Norm),
    Pool(pool::Pool),
    Array(array::Array),
    If(control::If),
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
            Op::Math(o) => o.name(),
            Op::Logic(o) => o.name(),
            Op::Conv(o) => o.name(),
            Op::Pad(o) => o.name(),
            Op::Reduce(o) => o.name(),
            Op::Norm(o) => o.name(),
            Op::Pool(o) => o.name(),
            Op::Array(o) => o.name(),
            Op::If(o) => o.name(),
        }
    }
}

/// Recurrent node input slots (defined with the cells, which the kernels share).
pub use crate::cell::rec_input;

/// Parses an operator of one of the families, or `None` when no family knows `op_type`.
/// `consts` holds, per node input, its value when it is a constant at load (weights to pack).
pub(crate) fn parse_family(op_type: &str, a: &Attrs<'_>, opset: i64, consts: &[Option<&Tensor>]) -> Option<Result<Op>> {
    fn wrap<T>(r: Option<Result<T>>, f: fn(T) -> Op) -> Option<Result<Op>> {
        r.map(|r| r.map(f))
    }
    wrap(elementwise::Math::parse(op_type, a, opset, consts), Op::Math)
        .or_else(|| wrap(logic::Logic::parse(op_type, a, opset, consts), Op::Logic))
        .or_else(|| wrap(conv::Conv::parse(op_type, a, opset, consts), Op::Conv))
        .or_else(|| wrap(pad::Pad::parse(op_type, a, opset, consts), Op::Pad))
        .or_else(|| wrap(reduce::Reduce::parse(op_type, a, opset, consts), Op::Reduce))
        .or_else(|| wrap(normalize::Norm::parse(op_type, a, opset, consts), Op::Norm))
        .or_else(|| wrap(pool::Pool::parse(op_type, a, opset, consts), Op::Pool))
        .or_else(|| wrap(array::Array::parse(op_type, a, opset, consts), Op::Array))
}

/// The node input `i`, which the operator requires.
pub fn arg<'a>(args: &[Option<&'a Tensor>], i: usize) -> Result<&'a Tensor> {
    args.get(i).copied().flatten().ok_or_else(|| Error::InvalidModel(format!("required input {i} is missing")))
}

/// The optional node input `i`.
pub fn opt<'a>(args: &[Option<&'a Tensor>], i: usize) -> Option<&'a Tensor> {
    args.get(i).copied().flatten()
}

/// A recurrent node's inputs from its arguments (ONNX slot order, [`rec_input`]).
pub fn recurrent_inputs<'a>(args: &[Option<&'a Tensor>]) -> Result<crate::cell::RecurrentInputs<'a>> {
    use rec_input as ri;
    Ok(crate::cell::RecurrentInputs {
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
    })
}

/// The operators whose output takes over input 0's buffer in [`Op::run_owned`] (besides the
/// unary `Math` ones), as one pattern for [`Op::reuses_input`] and [`Op::run`].
macro_rules! owned_ops {
    () => {
        Op::Identity
            | Op::Relu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Reshape { .. }
            | Op::Flatten { .. }
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
    };
}

/// `args` with `x` as input 0 (for an operator given its input by value that runs as usual).
pub(crate) fn with_first<'a>(x: &'a Tensor, args: &[Option<&'a Tensor>]) -> Vec<Option<&'a Tensor>> {
    let mut all = args.to_vec();
    match all.first_mut() {
        Some(first) => *first = Some(x),
        None => all.push(Some(x)),
    }
    all
}

impl Op {
    /// Whether [`Op::run_owned`] hands input 0's buffer on to the output (unary elementwise
    /// operators, and the reshapes, which change only the shape): the executor then gives it the
    /// input by value where this node is the input's last use, and the op allocates nothing.
    pub fn reuses_input(&self) -> bool {
        matches!(
            self,
            owned_ops!()
                | Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Cast { .. }
                | Op::Math(_)
                | Op::Array(array::Array::ScatterND { .. })
        )
    }

    /// Whether inputs 0 and 1 may trade places (Add, Mul: IEEE 754 addition and multiplication
    /// commute exactly), so the executor can hand over input 1's buffer instead.
    pub fn commutes(&self) -> bool {
        matches!(self, Op::Add | Op::Mul)
    }

    /// [`Op::run`] with input 0 by value (`args[0]` is not read); for the operators of
    /// [`Op::reuses_input`] the output takes over its buffer, the others run as usual.
    pub fn run_owned(&self, x: Tensor, args: &[Option<&Tensor>], isa: Isa) -> Result<Vec<Tensor>> {
        let one = |t: Result<Tensor>| t.map(|t| vec![t]);
        match self {
            Op::Identity => Ok(vec![x]),
            Op::Relu | Op::Sigmoid | Op::Tanh => one(unary(self, x)),
            Op::Reshape { allow_zero } => one(reshape(x, arg(args, 1)?, *allow_zero)),
            Op::Flatten { axis } => one(flatten(x, *axis)),
            Op::Squeeze { axes } => {
                let axes = match axes {
                    Some(a) => Some(a.clone()),
                    None => opt(args, 1).map(|t| t.to_i64_vec()).transpose()?,
                };
                one(squeeze(x, axes.as_deref()))
            }
            Op::Unsqueeze { axes } => {
                let axes = match axes {
                    Some(a) => a.clone(),
                    None => arg(args, 1)?.to_i64_vec()?,
                };
                one(unsqueeze(x, &axes))
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div => one(binary_owned(self, x, arg(args, 1)?)),
            Op::Cast { to } if x.dtype() == *to => Ok(vec![x]),
            Op::Math(o) => o.run_owned(x, args),
            Op::Array(o) => o.run_owned(x, args),
            _ => self.run(&with_first(&x, args), isa),
        }
    }

    /// Runs a non-recurrent operator on its inputs (`None` for omitted optional ones), its matrix
    /// products on `isa`'s kernels. Recurrent nodes and `If` are run by the graph executor.
    pub fn run(&self, args: &[Option<&Tensor>], isa: Isa) -> Result<Vec<Tensor>> {
        let one = |t: Result<Tensor>| t.map(|t| vec![t]);
        match self {
            // Run on a copy of input 0 (the unary `Math` operators are matched below).
            owned_ops!() => self.run_owned(arg(args, 0)?.clone(), args, isa),
            Op::Add | Op::Sub | Op::Mul | Op::Div => one(binary(self, arg(args, 0)?, arg(args, 1)?)),
            Op::MatMul => one(matmul(arg(args, 0)?, arg(args, 1)?)),
            Op::Gemm { alpha, beta, trans_a, trans_b } => {
                one(gemm(arg(args, 0)?, arg(args, 1)?, opt(args, 2), *alpha, *beta, *trans_a, *trans_b))
            }
            Op::Gather { axis } => one(gather(arg(args, 0)?, arg(args, 1)?, *axis)),
            Op::Transpose { perm } => one(transpose(arg(args, 0)?, perm.as_deref())),
            Op::Slice { attrs } => {
                let x = arg(args, 0)?;
                match attrs {
                    Some((starts, ends, axes)) => one(slice(x, starts, ends, axes.as_deref(), None)),
                    None => {
                        let starts = arg(args, 1)?.to_i64_vec()?;
                        let ends = arg(args, 2)?.to_i64_vec()?;
                        let axes = opt(args, 3).map(|t| t.to_i64_vec()).transpose()?;
                        let steps = opt(args, 4).map(|t| t.to_i64_vec()).transpose()?;
                        one(slice(x, &starts, &ends, axes.as_deref(), steps.as_deref()))
                    }
                }
            }
            Op::Concat { axis } => {
                let parts: Vec<&Tensor> = args.iter().flatten().copied().collect();
                one(concat(&parts, *axis))
            }
            Op::Split { axis, split: sizes, num_outputs } => {
                let sizes = match sizes {
                    Some(s) => Some(s.clone()),
                    None => opt(args, 1).map(|t| t.to_i64_vec()).transpose()?,
                };
                split(arg(args, 0)?, *axis, sizes.as_deref(), *num_outputs)
            }
            Op::Expand => one(expand(arg(args, 0)?, arg(args, 1)?)),
            Op::Shape { start, end } => one(shape_of(arg(args, 0)?, *start, *end)),
            Op::ConstantOfShape { value } => one(constant_of_shape(arg(args, 0)?, value)),
            Op::Cast { to } => one(cast(arg(args, 0)?, *to)),
            Op::Softmax { axis, legacy, log } => one(softmax(arg(args, 0)?, *axis, *legacy, *log)),
            Op::Math(o) => o.run(args),
            Op::Logic(o) => o.run(args),
            Op::Conv(o) => o.run(args, isa),
            Op::Pad(o) => o.run(args),
            Op::Reduce(o) => o.run(args),
            Op::Norm(o) => o.run(args),
            Op::Pool(o) => o.run(args),
            Op::Array(o) => o.run(args),
            Op::Recurrent(_) | Op::If(_) => {
                Err(Error::InvalidModel(format!("{} nodes are run by the graph executor", self.name())))
            }
        }
    }
}
