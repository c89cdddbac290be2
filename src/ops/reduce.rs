//! Reductions over axes: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
//! ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp.
//!
//! The axes are an attribute before opset 13 (ReduceSum) or 18 (the others) and the optional
//! input 1 from then on, where `noop_with_empty_axes` says what absent or empty axes mean (reduce
//! everything, or reduce over the empty set of axes: the element-wise steps alone, e.g.
//! ReduceSumSquare squares). A reduction over an empty set of values gives the spec's identity: 0
//! for the sums and norms, 1 for the product, -inf for ReduceMax / ReduceLogSum / ReduceLogSumExp,
//! +inf for ReduceMin, NaN (0/0) for ReduceMean. Sums are accumulated in f64.
//!
//! Integer tensors (every ONNX integer type and bool are carried as i64) reduce with wrapping
//! arithmetic as numpy's int64 does; ReduceMean truncates toward zero and ReduceL2 truncates the
//! root. ReduceLogSum / ReduceLogSumExp need floats (Log and Exp are not defined on integers).
//! The one place where the lost ONNX integer type matters is the empty set of ReduceMax/ReduceMin,
//! whose result is the type's minimum/maximum: ReduceMax gives 0, the minimum of bool (`any` of
//! nothing is false) and of the unsigned types; ReduceMin, whose answer (true, 255, i64::MAX...)
//! has no such common value, refuses with a shape error.

use crate::error::{shape_err, Result};
use crate::ops::{arg, opt, Attrs};
use crate::tensor::{norm_axis, numel, Data, Tensor};

/// What the reduction computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    SumSquare,
    LogSum,
    LogSumExp,
}

impl Kind {
    fn of(op_type: &str) -> Option<Kind> {
        Some(match op_type {
            "ReduceSum" => Kind::Sum,
            "ReduceMean" => Kind::Mean,
            "ReduceMax" => Kind::Max,
            "ReduceMin" => Kind::Min,
            "ReduceProd" => Kind::Prod,
            "ReduceL1" => Kind::L1,
            "ReduceL2" => Kind::L2,
            "ReduceSumSquare" => Kind::SumSquare,
            "ReduceLogSum" => Kind::LogSum,
            "ReduceLogSumExp" => Kind::LogSumExp,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Sum => "ReduceSum",
            Kind::Mean => "ReduceMean",
            Kind::Max => "ReduceMax",
            Kind::Min => "ReduceMin",
            Kind::Prod => "ReduceProd",
            Kind::L1 => "ReduceL1",
            Kind::L2 => "ReduceL2",
            Kind::SumSquare => "ReduceSumSquare",
            Kind::LogSum => "ReduceLogSum",
            Kind::LogSumExp => "ReduceLogSumExp",
        }
    }

    /// The first opset where the axes are input 1 instead of an attribute.
    fn axes_input_since(self) -> i64 {
        if self == Kind::Sum {
            13
        } else {
            18
        }
    }
}

/// A reduction with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum Reduce {
    Reduce {
        kind: Kind,
        /// `Some` for the attribute form (older opsets; empty = all axes), `None` when the axes
        /// come from input 1.
        axes: Option<Vec<i64>>,
        keepdims: bool,
        /// Input form only: absent or empty axes reduce over no axis instead of all.
        noop_with_empty_axes: bool,
    },
}

impl Reduce {
    pub fn name(&self) -> &'static str {
        match self {
            Reduce::Reduce { kind, .. } => kind.name(),
        }
    }

    /// The operator of this family named `op_type` (ReduceSum, ReduceMean, ReduceMax, ReduceMin,
    /// ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp), or `None`
    /// for any other.
    pub(crate) fn parse(op_type: &str, a: &Attrs<'_>, opset: i64, _consts: &[Option<&Tensor>]) -> Option<Result<Self>> {
        let kind = Kind::of(op_type)?;
        Some(parse_reduce(kind, a, opset))
    }

    pub fn run(&self, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match self {
            Reduce::Reduce { kind, axes, keepdims, noop_with_empty_axes } => {
                let x = arg(args, 0)?;
                let axes: Vec<i64> = match axes {
                    Some(a) => a.clone(),
                    None => match opt(args, 1) {
                        Some(t) if t.rank() > 1 => return shape_err!("axes must be a 1-D tensor, got {:?}", t.shape()),
                        Some(t) => t.as_i64()?.to_vec(),
                        None => Vec::new(),
                    },
                };
                // Empty axes: all of them, unless the input form asks for the no-op.
                let noop = axes.is_empty() && *noop_with_empty_axes;
                let reduced = reduced_mask(x.rank(), &axes, noop)?;
                Ok(vec![reduce(*kind, x, &reduced, *keepdims)?])
            }
        }
    }
}

fn parse_reduce(kind: Kind, a: &Attrs<'_>, opset: i64) -> Result<Reduce> {
    let keepdims = match a.int("keepdims", 1) {
        0 => false,
        1 => true,
        _ => return Err(a.bad("keepdims", "must be 0 or 1")),
    };
    let input_form = opset >= kind.axes_input_since();
    if input_form {
        if a.has("axes") {
            return Err(a.bad("axes", &format!("is input 1 since opset {}, not an attribute", kind.axes_input_since())));
        }
        let noop_with_empty_axes = match a.int("noop_with_empty_axes", 0) {
            0 => false,
            1 => true,
            _ => return Err(a.bad("noop_with_empty_axes", "must be 0 or 1")),
        };
        Ok(Reduce::Reduce { kind, axes: None, keepdims, noop_with_empty_axes })
    } else {
        if a.has("noop_with_empty_axes") {
            return Err(
                a.bad("noop_with_empty_axes", &format!("is not defined before opset {}", kind.axes_input_since()))
            );
        }
        if a.node.input.len() > 1 {
            return Err(
                a.bad("axes", &format!("is an attribute before opset {}, not an input", kind.axes_input_since()))
            );
        }
        Ok(Reduce::Reduce {
            kind,
            axes: Some(a.ints("axes").unwrap_or_default()),
            keepdims,
            noop_with_empty_axes: false,
        })
    }
}

/// Which axes of a rank-`rank` tensor are reduced: `axes` (empty = all unless `noop`).
pub(crate) fn reduced_mask(rank: usize, axes: &[i64], noop: bool) -> Result<Vec<bool>> {
    if axes.is_empty() {
        return Ok(vec![!noop; rank]);
    }
    let mut mask = vec![false; rank];
    for &ax in axes {
        let a = norm_axis(ax, rank)?;
        if std::mem::replace(&mut mask[a], true) {
            return shape_err!("axis {ax} is listed twice in axes {axes:?}");
        }
    }
    Ok(mask)
}

/// Reduces `x` over the axes marked in `reduced` (same length as its rank).
pub fn reduce(kind: Kind, x: &Tensor, reduced: &[bool], keepdims: bool) -> Result<Tensor> {
    let shape = x.shape();
    if reduced.len() != shape.len() {
        return shape_err!("{}: {} axis flags for a rank-{} tensor", kind.name(), reduced.len(), shape.len());
    }
    let kept: Vec<usize> = shape.iter().zip(reduced).map(|(&d, &r)| if r { 1 } else { d }).collect();
    let out_shape: Vec<usize> =
        if keepdims { kept.clone() } else { shape.iter().zip(reduced).filter(|(_, &r)| !r).map(|(&d, _)| d).collect() };
    let n_out = numel(&kept)?;
    // The number of values folded into each output (a product of input dims, so it fits when the
    // input does; an empty input has fewer than MAX_ELEMENTS).
    let count = shape.iter().zip(reduced).filter(|(_, &r)| r).try_fold(1usize, |acc, (&d, _)| acc.checked_mul(d));
    let Some(count) = count else {
        return shape_err!("{}: shape {shape:?} is too large", kind.name());
    };
    let data = match x.data() {
        Data::F32(v) => Data::F32(reduce_f32(kind, v, shape, reduced, n_out, count)),
        Data::I64(v) => Data::I64(reduce_i64(kind, v, shape, reduced, n_out, count)?),
    };
    Tensor::new(out_shape, data)
}

fn reduce_f32(kind: Kind, v: &[f32], shape: &[usize], reduced: &[bool], n_out: usize, count: usize) -> Vec<f32> {
    let go = |init: f64, f: fn(f64, f32) -> f64| fold(v, shape, reduced, n_out, init, f);
    let sum = |acc: f64, x: f32| acc + f64::from(x);
    let out: Vec<f64> = match kind {
        Kind::Sum => go(0.0, sum),
        Kind::Mean => go(0.0, sum).into_iter().map(|s| s / count as f64).collect(),
        Kind::Max => go(f64::NEG_INFINITY, |m, x| max_nan(m, f64::from(x))),
        Kind::Min => go(f64::INFINITY, |m, x| min_nan(m, f64::from(x))),
        Kind::Prod => go(1.0, |acc, x| acc * f64::from(x)),
        Kind::L1 => go(0.0, |acc, x| acc + f64::from(x.abs())),
        Kind::L2 => go(0.0, |acc, x| acc + f64::from(x) * f64::from(x)).into_iter().map(f64::sqrt).collect(),
        Kind::SumSquare => go(0.0, |acc, x| acc + f64::from(x) * f64::from(x)),
        Kind::LogSum => go(0.0, sum).into_iter().map(f64::ln).collect(),
        Kind::LogSumExp => {
            // log(sum(exp(x))) = m + log(sum(exp(x - m))) with m the max; an infinite or NaN max
            // is the result itself (all -inf or the empty set: -inf; any +inf: +inf).
            let max = go(f64::NEG_INFINITY, |m, x| max_nan(m, f64::from(x)));
            let mut sums = vec![0f64; n_out];
            for_each_out(v, shape, reduced, |o, x| {
                if let (Some(s), Some(&m)) = (sums.get_mut(o), max.get(o)) {
                    if m.is_finite() {
                        *s += (f64::from(x) - m).exp();
                    }
                }
            });
            max.iter().zip(&sums).map(|(&m, &s)| if m.is_finite() { m + s.ln() } else { m }).collect()
        }
    };
    out.into_iter().map(|x| x as f32).collect()
}

fn reduce_i64(
    kind: Kind,
    v: &[i64],
    shape: &[usize],
    reduced: &[bool],
    n_out: usize,
    count: usize,
) -> Result<Vec<i64>> {
    let go = |init: i64, f: fn(i64, i64) -> i64| fold(v, shape, reduced, n_out, init, f);
    Ok(match kind {
        Kind::Sum => go(0, i64::wrapping_add),
        Kind::Mean => {
            let Ok(n) = i64::try_from(count) else { return shape_err!("ReduceMean: too many values") };
            if n == 0 && n_out > 0 {
                return shape_err!("ReduceMean of an empty set of integers is undefined");
            }
            // Truncation toward zero, as numpy's int64 mean cast back to int64.
            go(0, i64::wrapping_add).into_iter().map(|s| s.checked_div(n).unwrap_or(0)).collect()
        }
        // The minimum of bool and the unsigned types (see the module docs).
        Kind::Max if count == 0 => vec![0; n_out],
        Kind::Max => go(i64::MIN, i64::max),
        Kind::Min if count == 0 && n_out > 0 => {
            return shape_err!(
                "ReduceMin over an empty set of integers: the result (the type's maximum) depends on \
                 the ONNX integer type, which this runtime carries as int64"
            )
        }
        Kind::Min => go(i64::MAX, i64::min),
        Kind::Prod => go(1, i64::wrapping_mul),
        Kind::L1 => go(0, |acc, x| acc.wrapping_add(x.wrapping_abs())),
        Kind::SumSquare => go(0, |acc, x| acc.wrapping_add(x.wrapping_mul(x))),
        Kind::L2 => {
            // The root of the exact sum (in f64), truncated: numpy's sqrt(...).astype(int64).
            let mut sq = vec![0f64; n_out];
            for_each_out(v, shape, reduced, |o, x| {
                if let Some(s) = sq.get_mut(o) {
                    *s += (x as f64) * (x as f64);
                }
            });
            sq.into_iter().map(|s| s.sqrt() as i64).collect()
        }
        Kind::LogSum | Kind::LogSumExp => return shape_err!("{} needs a float tensor, got int64", kind.name()),
    })
}

/// The larger of two values; NaN wins (numpy's `maximum`).
fn max_nan(m: f64, x: f64) -> f64 {
    if x > m || x.is_nan() {
        x
    } else {
        m
    }
}

/// The smaller of two values; NaN wins (numpy's `minimum`).
fn min_nan(m: f64, x: f64) -> f64 {
    if x < m || x.is_nan() {
        x
    } else {
        m
    }
}

/// One accumulator per output element, started at `init` and folded with `f` over the input
/// elements reduced into it.
fn fold<T: Copy, A: Copy>(
    x: &[T],
    shape: &[usize],
    reduced: &[bool],
    n_out: usize,
    init: A,
    f: fn(A, T) -> A,
) -> Vec<A> {
    let mut acc = vec![init; n_out];
    for_each_out(x, shape, reduced, |o, v| {
        if let Some(a) = acc.get_mut(o) {
            *a = f(*a, v);
        }
    });
    acc
}

/// Calls `f(output index, value)` for every element of `x` (row-major `shape`), where the output
/// index is the element's position in the keepdims output (reduced axes collapsed to 1). Walks
/// the input once, a row of the innermost axis at a time.
fn for_each_out<T: Copy>(x: &[T], shape: &[usize], reduced: &[bool], mut f: impl FnMut(usize, T)) {
    let r = shape.len();
    if x.is_empty() {
        return;
    }
    if r == 0 {
        x.iter().for_each(|&v| f(0, v));
        return;
    }
    // Output strides along each input axis (0 along reduced ones).
    let mut ostride = vec![0usize; r];
    let mut s = 1usize;
    for a in (0..r).rev() {
        if !reduced[a] {
            ostride[a] = s;
            s = s.saturating_mul(shape[a]);
        }
    }
    let inner = shape[r - 1];
    let inner_reduced = reduced[r - 1];
    let mut idx = vec![0usize; r - 1];
    let mut o = 0usize;
    for row in x.chunks_exact(inner.max(1)) {
        if inner_reduced {
            row.iter().for_each(|&v| f(o, v));
        } else {
            row.iter().enumerate().for_each(|(i, &v)| f(o + i, v));
        }
        // Odometer over the outer axes.
        for a in (0..r - 1).rev() {
            idx[a] += 1;
            o += ostride[a];
            if idx[a] < shape[a] {
                break;
            }
            o -= ostride[a] * shape[a];
            idx[a] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn run(kind: Kind, x: &Tensor, axes: &[i64], keepdims: bool, noop: bool) -> Result<Tensor> {
        let op = Reduce::Reduce { kind, axes: None, keepdims, noop_with_empty_axes: noop };
        let axes = Tensor::from_i64(vec![axes.len()], axes.to_vec()).unwrap();
        op.run(&[Some(x), Some(&axes)]).map(|mut v| v.remove(0))
    }

    #[test]
    fn every_kind_over_one_axis() {
        let x = t(&[2, 3], &[1., -2., 3., 4., 5., -6.]);
        let got = |k| run(k, &x, &[1], false, false).unwrap().as_f32().unwrap().to_vec();
        assert_eq!(got(Kind::Sum), [2., 3.]);
        assert_eq!(got(Kind::Max), [3., 5.]);
        assert_eq!(got(Kind::Min), [-2., -6.]);
        assert_eq!(got(Kind::Prod), [-6., -120.]);
        assert_eq!(got(Kind::L1), [6., 15.]);
        assert_eq!(got(Kind::SumSquare), [14., 77.]);
        assert!((got(Kind::Mean)[1] - 1.0).abs() < 1e-6);
        assert!((got(Kind::L2)[0] - 14f32.sqrt()).abs() < 1e-6);
        assert!((got(Kind::LogSum)[0] - 2f32.ln()).abs() < 1e-6);
        let lse = (1f64.exp() + (-2f64).exp() + 3f64.exp()).ln() as f32;
        assert!((got(Kind::LogSumExp)[0] - lse).abs() < 1e-6);
        // Huge values stay finite in LogSumExp; +inf and NaN propagate.
        let big = t(&[3], &[1000., 1000., f32::NEG_INFINITY]);
        let v = run(Kind::LogSumExp, &big, &[], true, false).unwrap();
        assert!((v.as_f32().unwrap()[0] - (1000. + 2f32.ln())).abs() < 1e-3);
        let inf = t(&[2], &[f32::INFINITY, 1.]);
        assert_eq!(run(Kind::LogSumExp, &inf, &[], true, false).unwrap().as_f32().unwrap(), [f32::INFINITY]);
        let nan = t(&[3], &[1., f32::NAN, 2.]);
        assert!(run(Kind::Max, &nan, &[0], false, false).unwrap().as_f32().unwrap()[0].is_nan());
        assert!(run(Kind::Min, &nan, &[0], false, false).unwrap().as_f32().unwrap()[0].is_nan());
    }

    #[test]
    fn shapes_keepdims_noop_and_middle_axes() {
        let x = t(&[2, 3, 2], &(0..12).map(|i| i as f32).collect::<Vec<_>>());
        let y = run(Kind::Sum, &x, &[0, 2], true, false).unwrap();
        assert_eq!(y.shape(), [1, 3, 1]);
        assert_eq!(y.as_f32().unwrap(), [14., 22., 30.]);
        let y = run(Kind::Sum, &x, &[-2], false, false).unwrap();
        assert_eq!(y.shape(), [2, 2]);
        assert_eq!(y.as_f32().unwrap(), [6., 9., 24., 27.]);
        let all = run(Kind::Sum, &x, &[], false, false).unwrap();
        assert_eq!((all.shape(), all.as_f32().unwrap()), (&[][..], &[66f32][..]));
        // No-op: the element-wise steps only.
        let sq = run(Kind::SumSquare, &t(&[2], &[-2., 3.]), &[], true, true).unwrap();
        assert_eq!(sq.as_f32().unwrap(), [4., 9.]);
        // Absent axes input with noop: the same.
        let op = Reduce::Reduce { kind: Kind::L1, axes: None, keepdims: true, noop_with_empty_axes: true };
        let y = op.run(&[Some(&t(&[2], &[-2., 3.]))]).unwrap();
        assert_eq!(y[0].as_f32().unwrap(), [2., 3.]);
        // A scalar reduces to itself.
        let s = Tensor::from_f32(vec![], vec![5.]).unwrap();
        assert_eq!(run(Kind::Max, &s, &[], true, false).unwrap().as_f32().unwrap(), [5.]);
    }

    #[test]
    fn empty_sets_give_the_identities() {
        let x = t(&[2, 0], &[]);
        let get = |k| run(k, &x, &[1], false, false).unwrap().as_f32().unwrap().to_vec();
        assert_eq!(get(Kind::Sum), [0., 0.]);
        assert_eq!(get(Kind::Prod), [1., 1.]);
        assert_eq!(get(Kind::Max), [f32::NEG_INFINITY; 2]);
        assert_eq!(get(Kind::Min), [f32::INFINITY; 2]);
        assert_eq!(get(Kind::LogSumExp), [f32::NEG_INFINITY; 2]);
        assert_eq!(get(Kind::LogSum), [f32::NEG_INFINITY; 2]);
        assert!(get(Kind::Mean)[0].is_nan());
        // Reducing the non-empty axis of an empty tensor gives an empty result.
        assert_eq!(run(Kind::Sum, &x, &[0], true, false).unwrap().shape(), [1, 0]);
        let xi = Tensor::from_i64(vec![2, 0], vec![]).unwrap();
        assert_eq!(run(Kind::Max, &xi, &[1], false, false).unwrap().as_i64().unwrap(), [0, 0]);
        assert!(run(Kind::Min, &xi, &[1], false, false).is_err());
        assert!(run(Kind::Mean, &xi, &[1], false, false).is_err());
    }

    #[test]
    fn integers_wrap_and_truncate() {
        let x = Tensor::from_i64(vec![2, 2], vec![i64::MAX, 1, -3, -4]).unwrap();
        let get = |k| run(k, &x, &[1], false, false).unwrap().as_i64().unwrap().to_vec();
        assert_eq!(get(Kind::Sum), [i64::MIN, -7]);
        assert_eq!(get(Kind::Mean)[1], -3);
        assert_eq!(get(Kind::Max), [i64::MAX, -3]);
        assert_eq!(get(Kind::L2)[1], 5);
        assert!(run(Kind::LogSum, &x, &[1], false, false).is_err());
    }

    #[test]
    fn hostile_axes_are_errors() {
        let x = t(&[2, 3], &[0.; 6]);
        assert!(run(Kind::Sum, &x, &[2], true, false).is_err());
        assert!(run(Kind::Sum, &x, &[-3], true, false).is_err());
        assert!(run(Kind::Sum, &x, &[1, -1], true, false).is_err());
        assert!(run(Kind::Sum, &x, &[i64::MIN], true, false).is_err());
        let op = Reduce::Reduce { kind: Kind::Sum, axes: None, keepdims: true, noop_with_empty_axes: false };
        let axes2d = Tensor::from_i64(vec![1, 1], vec![0]).unwrap();
        assert!(op.run(&[Some(&x), Some(&axes2d)]).is_err());
        assert!(op.run(&[None]).is_err());
        // A huge dim with a zero elsewhere: the output would be too large, not allocated.
        let huge = Tensor::from_f32(vec![0, usize::MAX / 2], vec![]).unwrap();
        assert!(run(Kind::Sum, &huge, &[0], true, false).is_err());
    }
}
