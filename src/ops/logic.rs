//! Comparisons (`Equal`, `Less`, `Greater`, `LessOrEqual`, `GreaterOrEqual`), boolean logic (`Not`,
//! `And`, `Or`, `Xor`) and `Where`, with numpy broadcasting. Booleans are `i64` 0/1.

use crate::error::{shape_err, Result};
use crate::ops::elementwise::{broadcast_map, broadcast_shape, broadcast_strides};
use crate::ops::{arg, Attrs};
use crate::tensor::{numel, Data, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logic {
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    Not,
    And,
    Or,
    Xor,
    Where,
}

impl Logic {
    pub fn name(&self) -> &'static str {
        match self {
            Logic::Equal => "Equal",
            Logic::Less => "Less",
            Logic::Greater => "Greater",
            Logic::LessOrEqual => "LessOrEqual",
            Logic::GreaterOrEqual => "GreaterOrEqual",
            Logic::Not => "Not",
            Logic::And => "And",
            Logic::Or => "Or",
            Logic::Xor => "Xor",
            Logic::Where => "Where",
        }
    }

    /// The operator of this family named `op_type`, or `None` for any other.
    pub(crate) fn parse(
        op_type: &str,
        _a: &Attrs<'_>,
        _opset: i64,
        _consts: &[Option<&Tensor>],
    ) -> Option<Result<Self>> {
        let op = match op_type {
            "Equal" => Logic::Equal,
            "Less" => Logic::Less,
            "Greater" => Logic::Greater,
            "LessOrEqual" => Logic::LessOrEqual,
            "GreaterOrEqual" => Logic::GreaterOrEqual,
            "Not" => Logic::Not,
            "And" => Logic::And,
            "Or" => Logic::Or,
            "Xor" => Logic::Xor,
            "Where" => Logic::Where,
            _ => return None,
        };
        Some(Ok(op))
    }

    pub fn run(&self, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let a = arg(args, 0)?;
        let out = match self {
            Logic::Not => match a.data() {
                Data::I64(v) => Tensor::from_i64(a.shape().to_vec(), v.iter().map(|&x| (x == 0) as i64).collect()),
                Data::F32(_) => shape_err!("Not needs a boolean tensor"),
            },
            Logic::Where => select(a, arg(args, 1)?, arg(args, 2)?),
            op => compare(*op, a, arg(args, 1)?),
        }?;
        Ok(vec![out])
    }
}

fn compare(op: Logic, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    macro_rules! cmp {
        ($x:expr, $y:expr) => {{
            let f = |p, q| -> i64 {
                (match op {
                    Logic::Equal => p == q,
                    Logic::Less => p < q,
                    Logic::Greater => p > q,
                    Logic::LessOrEqual => p <= q,
                    _ => p >= q,
                }) as i64
            };
            broadcast_map(a.shape(), $x, b.shape(), $y, f)?
        }};
    }
    let (shape, v) = match (op, a.data(), b.data()) {
        (Logic::And | Logic::Or | Logic::Xor, Data::I64(x), Data::I64(y)) => {
            let f = |p: i64, q: i64| -> i64 {
                let (p, q) = (p != 0, q != 0);
                (match op {
                    Logic::And => p && q,
                    Logic::Or => p || q,
                    _ => p != q,
                }) as i64
            };
            broadcast_map(a.shape(), x, b.shape(), y, f)?
        }
        (Logic::And | Logic::Or | Logic::Xor, _, _) => return shape_err!("{} needs boolean tensors", op.name()),
        (_, Data::F32(x), Data::F32(y)) => cmp!(x, y),
        (_, Data::I64(x), Data::I64(y)) => cmp!(x, y),
        _ => {
            return shape_err!(
                "{} needs operands of one type, got {} and {}",
                op.name(),
                a.dtype().name(),
                b.dtype().name()
            )
        }
    };
    Tensor::from_i64(shape, v)
}

/// `Where(cond, x, y)` with three-way broadcasting.
fn select(cond: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let c = match cond.data() {
        Data::I64(v) => v,
        Data::F32(_) => return shape_err!("Where needs a boolean condition"),
    };
    let out = broadcast_shape(&broadcast_shape(cond.shape(), x.shape())?, y.shape())?;
    let n = numel(&out)?;
    let (sc, sx, sy) =
        (broadcast_strides(cond.shape(), &out), broadcast_strides(x.shape(), &out), broadcast_strides(y.shape(), &out));
    let mut order = Vec::with_capacity(n);
    let mut idx = vec![0usize; out.len()];
    let (mut ic, mut ix, mut iy) = (0usize, 0usize, 0usize);
    for _ in 0..n {
        order.push((c[ic] != 0, ix, iy));
        for ax in (0..out.len()).rev() {
            idx[ax] += 1;
            ic += sc[ax];
            ix += sx[ax];
            iy += sy[ax];
            if idx[ax] < out[ax] {
                break;
            }
            ic -= sc[ax] * out[ax];
            ix -= sx[ax] * out[ax];
            iy -= sy[ax] * out[ax];
            idx[ax] = 0;
        }
    }
    let data = match (x.data(), y.data()) {
        (Data::F32(a), Data::F32(b)) => Data::F32(order.iter().map(|&(t, i, j)| if t { a[i] } else { b[j] }).collect()),
        (Data::I64(a), Data::I64(b)) => Data::I64(order.iter().map(|&(t, i, j)| if t { a[i] } else { b[j] }).collect()),
        _ => return shape_err!("Where needs X and Y of one type"),
    };
    Tensor::new(out, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_broadcasts_three_ways_and_types_are_checked() {
        let c = Tensor::from_i64(vec![2, 1], vec![1, 0]).unwrap();
        let x = Tensor::from_f32(vec![3], vec![1.0, 2.0, 3.0]).unwrap();
        let y = Tensor::from_f32(vec![], vec![-1.0]).unwrap();
        let w = select(&c, &x, &y).unwrap();
        assert_eq!(w.shape(), &[2, 3]);
        assert_eq!(w.as_f32().unwrap(), &[1.0, 2.0, 3.0, -1.0, -1.0, -1.0]);
        assert!(select(&x, &x, &y).is_err());
        let e = compare(Logic::Equal, &x, &Tensor::from_f32(vec![1], vec![2.0]).unwrap()).unwrap();
        assert_eq!(e.as_i64().unwrap(), &[0, 1, 0]);
        assert!(compare(Logic::Less, &x, &c).is_err());
        assert!(compare(Logic::And, &x, &x).is_err());
    }
}
