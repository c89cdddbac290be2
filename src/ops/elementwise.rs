//! Elementwise operators: unary functions, broadcasting binary arithmetic and the helpers other
//! families broadcast with.

use crate::error::{shape_err, Error, Result};
use crate::ops::Op;
use crate::tensor::{numel, Data, Tensor};

mod erf;
mod math;

pub use math::{Math, Unary as MathUnary};

/// Relu, Sigmoid, Tanh; a float input's buffer becomes the output's.
pub fn unary(op: &Op, x: Tensor) -> Result<Tensor> {
    let f: fn(f32) -> f32 = match op {
        Op::Relu => |v| if v.is_nan() { v } else { v.max(0.0) },
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

pub(crate) fn broadcast_map<T: Copy, U>(
    a_shape: &[usize],
    a: &[T],
    b_shape: &[usize],
    b: &[T],
    f: impl Fn(T, T) -> U,
) -> Result<(Vec<usize>, Vec<U>)> {
    let out = broadcast_shape(a_shape, b_shape)?;
    let n = numel(&out)?;
    if a_shape == b_shape {
        return Ok((out, a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()));
    }
    if b.len() == 1 && a.len() == n {
        return Ok((out, a.iter().map(|&x| f(x, b[0])).collect()));
    }
    let sa = broadcast_strides(a_shape, &out);
    let sb = broadcast_strides(b_shape, &out);
    let mut idx = vec![0usize; out.len()];
    let (mut ia, mut ib) = (0usize, 0usize);
    let mut res = Vec::with_capacity(n);
    for _ in 0..n {
        res.push(f(a[ia], b[ib]));
        // Odometer increment over `out`, keeping both flat offsets in step.
        for ax in (0..out.len()).rev() {
            idx[ax] += 1;
            ia += sa[ax];
            ib += sb[ax];
            if idx[ax] < out[ax] {
                break;
            }
            ia -= sa[ax] * out[ax];
            ib -= sb[ax] * out[ax];
            idx[ax] = 0;
        }
    }
    Ok((out, res))
}

pub fn binary(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => {
            let f: fn(f32, f32) -> f32 = match op {
                Op::Add => |p, q| p + q,
                Op::Sub => |p, q| p - q,
                Op::Mul => |p, q| p * q,
                _ => |p, q| p / q,
            };
            let (shape, v) = broadcast_map(a.shape(), x, b.shape(), y, f)?;
            Tensor::from_f32(shape, v)
        }
        (Data::I64(x), Data::I64(y)) => {
            if matches!(op, Op::Div) && y.contains(&0) {
                return shape_err!("integer division by zero");
            }
            let f: fn(i64, i64) -> i64 = match op {
                Op::Add => i64::wrapping_add,
                Op::Sub => i64::wrapping_sub,
                Op::Mul => i64::wrapping_mul,
                _ => |p, q| p.checked_div(q).unwrap_or(0),
            };
            let (shape, v) = broadcast_map(a.shape(), x, b.shape(), y, f)?;
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
