//! Elementwise operators: unary functions, broadcasting binary arithmetic and the helpers other
//! families broadcast with.

use crate::error::{shape_err, Error, Result};
use crate::ops::Op;
use crate::tensor::{numel, Data, Tensor};

mod erf;
mod math;
mod quant;

pub use math::{Math, Unary as MathUnary};

/// Relu, Sigmoid, Tanh; a float input's buffer becomes the output's.
pub fn unary(op: &Op, x: Tensor) -> Result<Tensor> {
    let f: fn(f32) -> f32 = match op {
        // A comparison (NaN stays NaN): f32::max is a libm call in wasm.
        Op::Relu => |v| if v < 0.0 { 0.0 } else { v },
        Op::Sigmoid => crate::cell::activation::sigmoid,
        Op::Tanh => f32::tanh,
        _ => return Err(Error::InvalidModel(format!("{} is not a unary operator", op.name()))),
    };
    match x.data() {
        Data::F32(_) => {
            let shape = x.shape().to_vec();
            let mut v = x.into_f32()?;
            v.iter_mut().for_each(|a| *a = f(*a));
            Tensor::from_f32(shape, v)
        }
        Data::I64(v) if matches!(op, Op::Relu) => {
            Tensor::from_i64(x.shape().to_vec(), v.iter().map(|&a| a.max(0)).collect())
        }
        Data::I64(_) => shape_err!("{} needs a float tensor", op.name()),
    }
}

/// Numpy-style broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return shape_err!("shapes {a:?} and {b:?} do not broadcast");
        };
    }
    Ok(out)
}

/// Strides of `shape` seen from the broadcast `out` shape (0 along broadcast axes).
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = Tensor::strides(shape);
    let off = out.len() - shape.len();
    (0..out.len()).map(|i| if i < off || shape[i - off] == 1 { 0 } else { own[i - off] }).collect()
}

/// A broadcast walked in runs: the output's size-1 axes dropped and neighbouring axes merged where
/// both operands lie flat across them, so the innermost stretch (`len` elements, each operand's
/// step 0 or 1) is as long as the shapes allow and the odometer moves once per stretch, not per
/// element.
struct Runs {
    out: Vec<usize>,
    /// The outer (merged) axes: extent, stride in a, stride in b.
    outer: Vec<(usize, usize, usize)>,
    len: usize,
    da: usize,
    db: usize,
}

impl Runs {
    fn new(a_shape: &[usize], b_shape: &[usize]) -> Result<Self> {
        let out = broadcast_shape(a_shape, b_shape)?;
        let (sa, sb) = (broadcast_strides(a_shape, &out), broadcast_strides(b_shape, &out));
        let mut axes: Vec<(usize, usize, usize)> = Vec::with_capacity(out.len());
        for (i, &n) in out.iter().enumerate() {
            if n == 1 {
                continue;
            }
            match axes.last_mut() {
                Some(last) if last.1 == sa[i] * n && last.2 == sb[i] * n => *last = (last.0 * n, sa[i], sb[i]),
                _ => axes.push((n, sa[i], sb[i])),
            }
        }
        let (len, da, db) = axes.pop().unwrap_or((1, 0, 0));
        Ok(Runs { out, outer: axes, len, da, db })
    }

    /// Calls `run(ia, ib)` with each stretch's first offset in a and in b.
    fn walk(&self, mut run: impl FnMut(usize, usize)) {
        if self.len == 0 || self.outer.iter().any(|d| d.0 == 0) {
            return;
        }
        let mut idx = vec![0usize; self.outer.len()];
        let (mut ia, mut ib) = (0usize, 0usize);
        loop {
            run(ia, ib);
            let mut ax = self.outer.len();
            loop {
                if ax == 0 {
                    return;
                }
                ax -= 1;
                let (n, sa, sb) = self.outer[ax];
                idx[ax] += 1;
                ia += sa;
                ib += sb;
                if idx[ax] < n {
                    break;
                }
                ia -= sa * n;
                ib -= sb * n;
                idx[ax] = 0;
            }
        }
    }
}

pub(crate) fn broadcast_map<T: Copy, U>(
    a_shape: &[usize],
    a: &[T],
    b_shape: &[usize],
    b: &[T],
    f: impl Fn(T, T) -> U,
) -> Result<(Vec<usize>, Vec<U>)> {
    let r = Runs::new(a_shape, b_shape)?;
    let mut res = Vec::with_capacity(numel(&r.out)?);
    let len = r.len;
    // The two stretches that matter (same shapes, a scalar or row of b) get their own loops; the
    // rest, one loop with both steps (less code: this is instantiated for every operator).
    r.walk(|ia, ib| match (r.da, r.db) {
        (1, 1) => res.extend(a[ia..ia + len].iter().zip(&b[ib..ib + len]).map(|(&x, &y)| f(x, y))),
        (1, _) => res.extend(a[ia..ia + len].iter().map(|&x| f(x, b[ib]))),
        (da, db) => res.extend((0..len).map(|k| f(a[ia + k * da], b[ib + k * db]))),
    });
    Ok((r.out, res))
}

/// [`broadcast_map`] with `a` by value: where the result has `a`'s shape it is computed in `a`'s
/// buffer, which becomes the output's (no allocation); otherwise into a new one.
pub(crate) fn broadcast_owned<T: Copy>(
    a_shape: Vec<usize>,
    mut a: Vec<T>,
    b_shape: &[usize],
    b: &[T],
    f: impl Fn(T, T) -> T,
) -> Result<(Vec<usize>, Vec<T>)> {
    let r = Runs::new(&a_shape, b_shape)?;
    if r.out != a_shape {
        return broadcast_map(&a_shape, &a, b_shape, b, f);
    }
    // `a` spans the whole output: its stretches are contiguous.
    let len = r.len;
    r.walk(|ia, ib| {
        let run = &mut a[ia..ia + len];
        if r.db == 1 {
            run.iter_mut().zip(&b[ib..ib + len]).for_each(|(x, &y)| *x = f(*x, y));
        } else {
            let y = b[ib];
            run.iter_mut().for_each(|x| *x = f(*x, y));
        }
    });
    Ok((a_shape, a))
}

/// Add, Sub, Mul, Div with `a` by value ([`broadcast_owned`]).
pub fn binary_owned(op: &Op, a: Tensor, b: &Tensor) -> Result<Tensor> {
    let dtype = a.dtype();
    let (shape, data) = a.into_parts();
    match (data, b.data()) {
        (Data::F32(x), Data::F32(y)) => {
            let (shape, v) = broadcast_owned(shape, x, b.shape(), y, f32_op(op))?;
            Tensor::from_f32(shape, v)
        }
        (Data::I64(x), Data::I64(y)) => {
            if matches!(op, Op::Div) && y.contains(&0) {
                return shape_err!("integer division by zero");
            }
            let (shape, v) = broadcast_owned(shape, x, b.shape(), y, i64_op(op))?;
            Tensor::from_i64(shape, v)
        }
        _ => shape_err!("{} needs operands of one type, got {} and {}", op.name(), dtype.name(), b.dtype().name()),
    }
}

fn f32_op(op: &Op) -> fn(f32, f32) -> f32 {
    match op {
        Op::Add => |p, q| p + q,
        Op::Sub => |p, q| p - q,
        Op::Mul => |p, q| p * q,
        _ => |p, q| p / q,
    }
}

fn i64_op(op: &Op) -> fn(i64, i64) -> i64 {
    match op {
        Op::Add => i64::wrapping_add,
        Op::Sub => i64::wrapping_sub,
        Op::Mul => i64::wrapping_mul,
        _ => |p, q| p.checked_div(q).unwrap_or(0),
    }
}

pub fn binary(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => {
            let (shape, v) = broadcast_map(a.shape(), x, b.shape(), y, f32_op(op))?;
            Tensor::from_f32(shape, v)
        }
        (Data::I64(x), Data::I64(y)) => {
            if matches!(op, Op::Div) && y.contains(&0) {
                return shape_err!("integer division by zero");
            }
            let (shape, v) = broadcast_map(a.shape(), x, b.shape(), y, i64_op(op))?;
            Tensor::from_i64(shape, v)
        }
        _ => shape_err!("{} needs operands of one type, got {} and {}", op.name(), a.dtype().name(), b.dtype().name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn broadcasting_add_matches_numpy() {
        let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let b = t(&[3], &[10., 20., 30.]);
        let c = binary(&Op::Add, &a, &b).unwrap();
        assert_eq!(c.as_f32().unwrap(), &[11., 22., 33., 14., 25., 36.]);
        let col = t(&[2, 1], &[100., 200.]);
        let d = binary(&Op::Sub, &a, &col).unwrap();
        assert_eq!(d.as_f32().unwrap(), &[-99., -98., -97., -196., -195., -194.]);
        assert!(binary(&Op::Add, &a, &t(&[2], &[1., 2.])).is_err());
    }
}
