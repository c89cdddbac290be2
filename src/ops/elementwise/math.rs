//! Elementwise math beyond the basic four operators: unary functions with their attributes, `Pow`,
//! `PRelu`, `Clip`, and the variadic `Min` / `Max` (numpy broadcasting, NaN propagating).

use super::{broadcast_map, broadcast_owned, broadcast_shape};
use crate::error::{shape_err, Result};
use crate::ops::{arg, opt, Attrs};
use crate::tensor::{Data, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    Sqrt,
    Log,
    Neg,
    Exp,
    Abs,
    Reciprocal,
    Erf,
    Softplus,
    Elu { alpha: f32 },
    Selu { alpha: f32, gamma: f32 },
    LeakyRelu { alpha: f32 },
    HardSigmoid { alpha: f32, beta: f32 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Math {
    Unary(Unary),
    Pow,
    PRelu,
    /// `Some` bounds from attributes (opset < 11); `None`: from the optional inputs 1 and 2.
    Clip {
        attrs: Option<(f32, f32)>,
    },
    Min,
    Max,
    /// `DequantizeLinear`: `axis` for per-axis scales, `block_size` (0: none) for blocked ones.
    Dequantize {
        axis: i64,
        block_size: usize,
    },
}

impl Unary {
    fn name(self) -> &'static str {
        match self {
            Unary::Sqrt => "Sqrt",
            Unary::Log => "Log",
            Unary::Neg => "Neg",
            Unary::Exp => "Exp",
            Unary::Abs => "Abs",
            Unary::Reciprocal => "Reciprocal",
            Unary::Erf => "Erf",
            Unary::Softplus => "Softplus",
            Unary::Elu { .. } => "Elu",
            Unary::Selu { .. } => "Selu",
            Unary::LeakyRelu { .. } => "LeakyRelu",
            Unary::HardSigmoid { .. } => "HardSigmoid",
        }
    }

    #[inline]
    fn f32(self, x: f32) -> f32 {
        match self {
            Unary::Sqrt => x.sqrt(),
            Unary::Log => x.ln(),
            Unary::Neg => -x,
            Unary::Exp => x.exp(),
            Unary::Abs => x.abs(),
            Unary::Reciprocal => 1.0 / x,
            Unary::Erf => super::erf::erf(x as f64) as f32,
            // ln(1 + e^x) without overflow for large x.
            Unary::Softplus => {
                if x > 0.0 {
                    x + (-x).exp().ln_1p()
                } else {
                    x.exp().ln_1p()
                }
            }
            Unary::Elu { alpha } => {
                if x < 0.0 {
                    alpha * (x.exp() - 1.0)
                } else {
                    x
                }
            }
            Unary::Selu { alpha, gamma } => {
                if x <= 0.0 {
                    gamma * (alpha * x.exp() - alpha)
                } else {
                    gamma * x
                }
            }
            Unary::LeakyRelu { alpha } => {
                if x < 0.0 {
                    alpha * x
                } else {
                    x
                }
            }
            Unary::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
        }
    }

    /// Applies the operator to every element of `v`; the cheap ones matched once, not per element.
    fn map(self, v: &mut [f32]) {
        // Spelled out, not `Unary::f32` of a constant: LLVM keeps that large match out of line
        // (a call per element, which costed more than the square roots of Silero's spectrum).
        match self {
            Unary::Sqrt => v.iter_mut().for_each(|a| *a = a.sqrt()),
            Unary::Neg => v.iter_mut().for_each(|a| *a = -*a),
            Unary::Abs => v.iter_mut().for_each(|a| *a = a.abs()),
            Unary::Reciprocal => v.iter_mut().for_each(|a| *a = 1.0 / *a),
            // The others cost more than the match per element; one loop for all of them.
            u => v.iter_mut().for_each(|a| *a = u.f32(*a)),
        }
    }

    /// The integer form, where the operator has one (ONNX allows Abs and Neg on integers).
    fn i64(self, x: i64) -> Option<i64> {
        match self {
            Unary::Abs => Some(x.wrapping_abs()),
            Unary::Neg => Some(x.wrapping_neg()),
            _ => None,
        }
    }
}

impl Math {
    pub fn name(&self) -> &'static str {
        match self {
            Math::Unary(u) => u.name(),
            Math::Pow => "Pow",
            Math::PRelu => "PRelu",
            Math::Clip { .. } => "Clip",
            Math::Min => "Min",
            Math::Max => "Max",
            Math::Dequantize { .. } => "DequantizeLinear",
        }
    }

    /// The operator of this family named `op_type`, or `None` for any other.
    pub(crate) fn parse(op_type: &str, a: &Attrs<'_>, opset: i64, _consts: &[Option<&Tensor>]) -> Option<Result<Self>> {
        let u = |u: Unary| Some(Ok(Math::Unary(u)));
        match op_type {
            "DequantizeLinear" => Some(parse_dequantize(a, opset)),
            "Sqrt" => u(Unary::Sqrt),
            "Log" => u(Unary::Log),
            "Neg" => u(Unary::Neg),
            "Exp" => u(Unary::Exp),
            "Abs" => u(Unary::Abs),
            "Reciprocal" => u(Unary::Reciprocal),
            "Erf" => u(Unary::Erf),
            "Softplus" => u(Unary::Softplus),
            "Elu" => u(Unary::Elu { alpha: a.float("alpha", 1.0) }),
            "Selu" => u(Unary::Selu { alpha: a.float("alpha", 1.673_263_2), gamma: a.float("gamma", 1.050_701) }),
            "LeakyRelu" => u(Unary::LeakyRelu { alpha: a.float("alpha", 0.01) }),
            "HardSigmoid" => u(Unary::HardSigmoid { alpha: a.float("alpha", 0.2), beta: a.float("beta", 0.5) }),
            "Pow" => Some(Ok(Math::Pow)),
            "PRelu" => Some(Ok(Math::PRelu)),
            "Clip" if opset < 11 => {
                Some(Ok(Math::Clip { attrs: Some((a.float("min", f32::NEG_INFINITY), a.float("max", f32::INFINITY))) }))
            }
            "Clip" => Some(Ok(Math::Clip { attrs: None })),
            "Min" => Some(Ok(Math::Min)),
            "Max" => Some(Ok(Math::Max)),
            _ => None,
        }
    }

    /// [`Math::run`] with input 0 by value: its buffer becomes the output's wherever the output has
    /// its shape and type (a float unary operator, Clip, PRelu, and Pow or Min/Max onto it).
    pub fn run_owned(&self, x: Tensor, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let out = match self {
            Math::Unary(u) => match x.data() {
                Data::F32(_) => {
                    let shape = x.shape().to_vec();
                    let mut v = x.into_f32()?;
                    u.map(&mut v);
                    Tensor::from_f32(shape, v)
                }
                Data::I64(_) => unary_i64(*u, &x),
            },
            Math::Pow => pow(x, arg(args, 1)?),
            Math::PRelu => prelu(x, arg(args, 1)?),
            Math::Clip { attrs } => clip(x, *attrs, opt(args, 1), opt(args, 2)),
            Math::Dequantize { axis, block_size } => {
                super::quant::dequantize(&x, arg(args, 1)?, opt(args, 2), *axis, *block_size)
            }
            Math::Min | Math::Max => {
                let rest: Vec<&Tensor> = args.iter().skip(1).flatten().copied().collect();
                min_max(x, &rest, matches!(self, Math::Max))
            }
        }?;
        Ok(vec![out])
    }

    pub fn run(&self, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let x = arg(args, 0)?;
        match (self, x.data()) {
            (Math::Unary(u), Data::F32(v)) => {
                let mut v = v.clone();
                u.map(&mut v);
                Ok(vec![Tensor::from_f32(x.shape().to_vec(), v)?])
            }
            (Math::Unary(u), Data::I64(_)) => Ok(vec![unary_i64(*u, x)?]),
            // The others start from a copy of input 0 (the output, unless it broadcasts wider).
            _ => self.run_owned(x.clone(), args),
        }
    }
}

fn parse_dequantize(a: &Attrs<'_>, opset: i64) -> Result<Math> {
    if opset < 10 {
        return Err(a.unsupported(format!("DequantizeLinear is not defined before opset 10 (model opset {opset})")));
    }
    // Opset 23 names the output type; every float type is computed (and kept) as f32 here.
    let out = a.int("output_dtype", 0) as i32;
    if out != 0 && crate::onnx::tensor_proto::dtype_of(out) != Some(crate::tensor::DType::F32) {
        return Err(a.bad("output_dtype", &format!("is element type {out}, not a float type")));
    }
    let block_size = a.int("block_size", 0);
    let block_size = usize::try_from(block_size).map_err(|_| a.bad("block_size", "is negative"))?;
    Ok(Math::Dequantize { axis: a.int("axis", 1), block_size })
}

fn unary_i64(u: Unary, x: &Tensor) -> Result<Tensor> {
    match x.as_i64()?.iter().map(|&a| u.i64(a)).collect::<Option<Vec<i64>>>() {
        Some(r) => Tensor::from_i64(x.shape().to_vec(), r),
        None => shape_err!("{} needs a float tensor", u.name()),
    }
}

fn pow(x: Tensor, y: &Tensor) -> Result<Tensor> {
    let (shape, data) = x.into_parts();
    match (data, y.data()) {
        // A constant exponent of 2 (the squares of a spectrum) is a multiply, as onnxruntime has it:
        // the same correctly rounded value as powf, at a fraction of the cost.
        (Data::F32(a), Data::F32(b)) if b.len() == 1 && b[0] == 2.0 => {
            let (s, v) = broadcast_owned(shape, a, y.shape(), b, |p: f32, _| p * p)?;
            Tensor::from_f32(s, v)
        }
        (Data::F32(a), Data::F32(b)) => {
            let (s, v) = broadcast_owned(shape, a, y.shape(), b, |p: f32, q: f32| p.powf(q))?;
            Tensor::from_f32(s, v)
        }
        (Data::F32(a), Data::I64(b)) => {
            let bf: Vec<f32> = b.iter().map(|&q| q as f32).collect();
            let (s, v) = broadcast_owned(shape, a, y.shape(), &bf, |p: f32, q: f32| p.powf(q))?;
            Tensor::from_f32(s, v)
        }
        (Data::I64(a), Data::I64(b)) => {
            let (s, v) = broadcast_owned(shape, a, y.shape(), b, |p: i64, q: i64| {
                if q < 0 {
                    // Integer power with a negative exponent, truncated as numpy's float result cast back.
                    (p as f64).powf(q as f64) as i64
                } else {
                    p.wrapping_pow(q.min(u32::MAX as i64) as u32)
                }
            })?;
            Tensor::from_i64(s, v)
        }
        (Data::I64(a), Data::F32(b)) => {
            let bf: Vec<f64> = b.iter().map(|&q| q as f64).collect();
            let af: Vec<f64> = a.iter().map(|&p| p as f64).collect();
            let (s, v) = broadcast_map(&shape, &af, y.shape(), &bf, |p: f64, q: f64| p.powf(q) as i64)?;
            Tensor::from_i64(s, v)
        }
    }
}

fn prelu(x: Tensor, slope: &Tensor) -> Result<Tensor> {
    // Unidirectional: the slope broadcasts to X's shape.
    if broadcast_shape(x.shape(), slope.shape())? != x.shape() {
        return shape_err!("PRelu slope {:?} does not broadcast to X {:?}", slope.shape(), x.shape());
    }
    let (shape, data) = x.into_parts();
    match (data, slope.data()) {
        (Data::F32(a), Data::F32(b)) => {
            let (s, v) = broadcast_owned(shape, a, slope.shape(), b, |p: f32, q: f32| if p < 0.0 { p * q } else { p })?;
            Tensor::from_f32(s, v)
        }
        (Data::I64(a), Data::I64(b)) => {
            let (s, v) = broadcast_owned(
                shape,
                a,
                slope.shape(),
                b,
                |p: i64, q: i64| if p < 0 { p.wrapping_mul(q) } else { p },
            )?;
            Tensor::from_i64(s, v)
        }
        _ => shape_err!("PRelu needs X and slope of one type"),
    }
}

fn scalar(t: Option<&Tensor>, what: &str) -> Result<Option<Data>> {
    match t {
        None => Ok(None),
        Some(t) if t.len() == 1 => Ok(Some(t.data().clone())),
        Some(t) => shape_err!("Clip {what} must be a scalar, has shape {:?}", t.shape()),
    }
}

fn clip(x: Tensor, attrs: Option<(f32, f32)>, min: Option<&Tensor>, max: Option<&Tensor>) -> Result<Tensor> {
    let (lo, hi) = (scalar(min, "min")?, scalar(max, "max")?);
    let (shape, data) = x.into_parts();
    match data {
        Data::F32(mut v) => {
            let get = |d: Option<Data>, default: f32| -> Result<f32> {
                match d {
                    None => Ok(default),
                    Some(Data::F32(b)) => Ok(b[0]),
                    Some(Data::I64(_)) => shape_err!("Clip bounds must have X's type"),
                }
            };
            let (l, h) = match attrs {
                Some(b) => b,
                None => (get(lo, f32::NEG_INFINITY)?, get(hi, f32::INFINITY)?),
            };
            // max then min, as the spec's reference: NaN in X stays NaN (comparisons, not
            // f32::max, which is a libm call in wasm).
            v.iter_mut().for_each(|a| {
                let c = if *a < l { l } else { *a };
                *a = if c > h { h } else { c };
            });
            Tensor::from_f32(shape, v)
        }
        Data::I64(mut v) => {
            let get = |d: Option<Data>, default: i64| -> Result<i64> {
                match d {
                    None => Ok(default),
                    Some(Data::I64(b)) => Ok(b[0]),
                    Some(Data::F32(_)) => shape_err!("Clip bounds must have X's type"),
                }
            };
            let (l, h) = (get(lo, i64::MIN)?, get(hi, i64::MAX)?);
            v.iter_mut().for_each(|a| *a = (*a).max(l).min(h));
            Tensor::from_i64(shape, v)
        }
    }
}

/// Min or Max of `first` and `rest`, folded into `first`'s buffer while the result keeps its shape.
fn min_max(first: Tensor, rest: &[&Tensor], max: bool) -> Result<Tensor> {
    let mut acc = first;
    for t in rest {
        let dtype = acc.dtype();
        let (shape, data) = acc.into_parts();
        acc = match (data, t.data()) {
            (Data::F32(a), Data::F32(b)) => {
                let f = |p: f32, q: f32| {
                    if p.is_nan() || q.is_nan() {
                        f32::NAN
                    } else if max == (p > q) {
                        p
                    } else {
                        q
                    }
                };
                let (s, v) = broadcast_owned(shape, a, t.shape(), b, f)?;
                Tensor::from_f32(s, v)?
            }
            (Data::I64(a), Data::I64(b)) => {
                let f = |p: i64, q: i64| if max { p.max(q) } else { p.min(q) };
                let (s, v) = broadcast_owned(shape, a, t.shape(), b, f)?;
                Tensor::from_i64(s, v)?
            }
            _ => {
                return shape_err!(
                    "{} needs inputs of one type, got {} and {}",
                    if max { "Max" } else { "Min" },
                    dtype.name(),
                    t.dtype().name()
                )
            }
        };
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_does_not_overflow_and_min_max_propagate_nan() {
        assert!((Unary::Softplus.f32(100.0) - 100.0).abs() < 1e-5);
        assert!(Unary::Softplus.f32(-100.0) >= 0.0);
        let a = Tensor::from_f32(vec![3], vec![1.0, f32::NAN, 3.0]).unwrap();
        let b = Tensor::from_f32(vec![1], vec![2.0]).unwrap();
        let m = min_max(a.clone(), &[&b], true).unwrap();
        let v = m.as_f32().unwrap();
        assert_eq!((v[0], v[2]), (2.0, 3.0));
        assert!(v[1].is_nan());
        let bad = Tensor::from_f32(vec![2], vec![0.0, 0.0]).unwrap();
        assert!(prelu(b, &bad).is_err());
    }
}
