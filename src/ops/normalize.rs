//! Normalisations: `Softmax` / `LogSoftmax`, and (the [`Norm`] family) BatchNormalization,
//! LayerNormalization and InstanceNormalization. Statistics are accumulated in f64.

use crate::error::{shape_err, Result};
use crate::ops::elementwise::{broadcast_shape, broadcast_strides};
use crate::ops::{arg, opt, Attrs};
use crate::tensor::{norm_axis, numel, Tensor};

pub fn softmax(x: &Tensor, axis: i64, legacy: bool, log: bool) -> Result<Tensor> {
    let v = x.as_f32()?;
    let r = x.rank();
    if r == 0 {
        return shape_err!("softmax of a scalar");
    }
    let ax = norm_axis(axis, r)?;
    // Legacy: the block [axis..] is one row. Otherwise: the axis is the row, strided by `inner`.
    let (outer, len, inner) = if legacy {
        (numel(&x.shape()[..ax])?, numel(&x.shape()[ax..])?, 1)
    } else {
        (numel(&x.shape()[..ax])?, x.shape()[ax], numel(&x.shape()[ax + 1..])?)
    };
    let mut out = vec![0f32; v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * len + k) * inner + i;
            let mut m = f32::NEG_INFINITY;
            let mut nan = false;
            for k in 0..len {
                let a = v[at(k)];
                nan |= a.is_nan();
                m = m.max(a);
            }
            if nan {
                (0..len).for_each(|k| out[at(k)] = f32::NAN);
                continue;
            }
            let sum: f32 = (0..len).map(|k| (v[at(k)] - m).exp()).sum();
            for k in 0..len {
                let z = v[at(k)] - m;
                out[at(k)] = if log { z - sum.ln() } else { z.exp() / sum };
            }
        }
    }
    Tensor::from_f32(x.shape().to_vec(), out)
}

/// Normalisations with learned scale and bias.
#[derive(Debug, Clone, PartialEq)]
pub enum Norm {
    /// Inference: the given mean/var. `training` (opset 14+ `training_mode=1`): the batch's own
    /// statistics, and the running mean/var as outputs 1 and 2. `spatial: false` (opsets < 9):
    /// one statistic per activation (`C x D1 x ...`) instead of per channel.
    BatchNormalization {
        epsilon: f32,
        momentum: f32,
        training: bool,
        spatial: bool,
    },
    /// Normalises over the axes `axis..`; outputs Y and the optional Mean and InvStdDev.
    LayerNormalization {
        axis: i64,
        epsilon: f32,
    },
    InstanceNormalization {
        epsilon: f32,
    },
}

impl Norm {
    pub fn name(&self) -> &'static str {
        match self {
            Norm::BatchNormalization { .. } => "BatchNormalization",
            Norm::LayerNormalization { .. } => "LayerNormalization",
            Norm::InstanceNormalization { .. } => "InstanceNormalization",
        }
    }

    /// The operator of this family named `op_type` (BatchNormalization, LayerNormalization, InstanceNormalization), or `None` for any other.
    pub(crate) fn parse(op_type: &str, a: &Attrs<'_>, opset: i64, _consts: &[Option<&Tensor>]) -> Option<Result<Self>> {
        Some(match op_type {
            "BatchNormalization" => parse_batch_norm(a, opset),
            "LayerNormalization" => parse_layer_norm(a),
            "InstanceNormalization" => epsilon(a).map(|epsilon| Norm::InstanceNormalization { epsilon }),
            _ => return None,
        })
    }

    pub fn run(&self, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match *self {
            Norm::BatchNormalization { epsilon, momentum, training, spatial } => batch_norm(
                arg(args, 0)?,
                [arg(args, 1)?, arg(args, 2)?, arg(args, 3)?, arg(args, 4)?],
                epsilon,
                momentum,
                training,
                spatial,
            ),
            Norm::LayerNormalization { axis, epsilon } => {
                layer_norm(arg(args, 0)?, arg(args, 1)?, opt(args, 2), axis, epsilon)
            }
            Norm::InstanceNormalization { epsilon } => {
                Ok(vec![instance_norm(arg(args, 0)?, arg(args, 1)?, arg(args, 2)?, epsilon)?])
            }
        }
    }
}

fn epsilon(a: &Attrs<'_>) -> Result<f32> {
    let e = a.float("epsilon", 1e-5);
    if e.is_nan() {
        return Err(a.bad("epsilon", "is NaN"));
    }
    Ok(e)
}

fn parse_batch_norm(a: &Attrs<'_>, opset: i64) -> Result<Norm> {
    let epsilon = epsilon(a)?;
    let momentum = a.float("momentum", 0.9);
    let outputs = a.node.output.iter().filter(|o| !o.is_empty()).count();
    let training = if opset >= 14 {
        match a.int("training_mode", 0) {
            0 if outputs > 1 => return Err(a.bad("training_mode", "is 0 but the node asks for running mean/var")),
            0 => false,
            1 => true,
            _ => return Err(a.bad("training_mode", "must be 0 or 1")),
        }
    } else {
        // Before opset 14 the mode is the output count (and, before 7, is_test).
        if outputs > 1 || (opset < 7 && a.int("is_test", 0) == 0) {
            return Err(a.unsupported("training mode before opset 14 (saved mean/var outputs, is_test=0)"));
        }
        false
    };
    let spatial = if opset < 9 {
        match a.int("spatial", 1) {
            0 => false,
            1 => true,
            _ => return Err(a.bad("spatial", "must be 0 or 1")),
        }
    } else if a.has("spatial") {
        return Err(a.bad("spatial", "is not defined since opset 9"));
    } else {
        true
    };
    Ok(Norm::BatchNormalization { epsilon, momentum, training, spatial })
}

fn parse_layer_norm(a: &Attrs<'_>) -> Result<Norm> {
    // stash_type: the precision of the statistics. Sums are accumulated in f64, which is at least
    // float (1) and double (11); the half types would need rounding we do not do.
    match a.int("stash_type", 1) {
        1 | 11 => {}
        10 | 16 => return Err(a.unsupported("stash_type float16/bfloat16")),
        _ => return Err(a.bad("stash_type", "must be a floating-point type")),
    }
    Ok(Norm::LayerNormalization { axis: a.int("axis", -1), epsilon: epsilon(a)? })
}

/// `x` is `[N, C, D1...]`; scale, bias, mean, var are `[C]` (or `[C, D1...]` when not `spatial`).
fn batch_norm(
    x: &Tensor,
    params: [&Tensor; 4],
    epsilon: f32,
    momentum: f32,
    training: bool,
    spatial: bool,
) -> Result<Vec<Tensor>> {
    let v = x.as_f32()?;
    let s = x.shape();
    if s.len() < 2 {
        return shape_err!("BatchNormalization needs an input of rank >= 2, got {s:?}");
    }
    let (n, c) = (s[0], s[1]);
    let inner = numel(&s[2..])?;
    // Each statistic covers `len` consecutive values, repeated `n` times (one block per item).
    let (stats, len) = if spatial { (c, inner) } else { (numel(&s[1..])?, 1) };
    let [scale, bias, mean, var] = params;
    let p: Vec<&[f32]> = [scale, bias, mean, var].iter().map(|t| t.as_f32()).collect::<Result<_>>()?;
    if p.iter().any(|q| q.len() != stats) {
        let shapes: Vec<_> = params.iter().map(|t| t.shape().to_vec()).collect();
        return shape_err!("BatchNormalization: scale, B, mean and var must hold {stats} values each, got {shapes:?}");
    }
    let (bmean, bvar) = if training {
        // Population mean and variance per statistic over the batch (and spatial axes).
        let blocks = || v.chunks_exact(len.max(1)).enumerate().map(|(i, b)| (i % stats.max(1), b));
        let cnt = (n * len) as f64;
        let mut m = vec![0f64; stats];
        for (k, block) in blocks() {
            if let Some(m) = m.get_mut(k) {
                *m += block.iter().map(|&a| f64::from(a)).sum::<f64>() / cnt;
            }
        }
        let mut var = vec![0f64; stats];
        for (k, block) in blocks() {
            if let (Some(q), Some(&mk)) = (var.get_mut(k), m.get(k)) {
                *q += block.iter().map(|&a| (f64::from(a) - mk).powi(2)).sum::<f64>() / cnt;
            }
        }
        (m, var)
    } else {
        (p[2].iter().map(|&a| f64::from(a)).collect(), p[3].iter().map(|&a| f64::from(a)).collect())
    };
    let mut y = vec![0f32; v.len()];
    for (i, (yb, xb)) in y.chunks_exact_mut(len.max(1)).zip(v.chunks_exact(len.max(1))).enumerate() {
        let k = i % stats;
        let (Some(&m), Some(&var), Some(&g), Some(&b)) = (bmean.get(k), bvar.get(k), p[0].get(k), p[1].get(k)) else {
            continue;
        };
        let a = f64::from(g) / (var + f64::from(epsilon)).sqrt();
        for (o, &xv) in yb.iter_mut().zip(xb) {
            *o = ((f64::from(xv) - m) * a + f64::from(b)) as f32;
        }
    }
    let mut out = vec![Tensor::from_f32(s.to_vec(), y)?];
    if training {
        let mo = f64::from(momentum);
        let run = |old: &[f32], cur: &[f64]| -> Vec<f32> {
            old.iter().zip(cur).map(|(&o, &c)| (f64::from(o) * mo + c * (1.0 - mo)) as f32).collect()
        };
        out.push(Tensor::from_f32(mean.shape().to_vec(), run(p[2], &bmean))?);
        out.push(Tensor::from_f32(var.shape().to_vec(), run(p[3], &bvar))?);
    }
    Ok(out)
}

/// `t` (unidirectionally broadcast to `target`) as a flat row-major vector of `target`'s size.
fn broadcast_to(t: &Tensor, target: &[usize], what: &str) -> Result<Vec<f32>> {
    let v = t.as_f32()?;
    let s = t.shape();
    if s.len() > target.len() || broadcast_shape(s, target)? != target {
        return shape_err!("{what} of shape {s:?} does not broadcast to {target:?}");
    }
    if s == target {
        return Ok(v.to_vec());
    }
    let n = numel(target)?;
    let strides = broadcast_strides(s, target);
    let mut idx = vec![0usize; target.len()];
    let mut at = 0usize;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(v.get(at).copied().unwrap_or(0.0));
        for ax in (0..target.len()).rev() {
            idx[ax] += 1;
            at += strides[ax];
            if idx[ax] < target[ax] {
                break;
            }
            at -= strides[ax] * target[ax];
            idx[ax] = 0;
        }
    }
    Ok(out)
}

/// LayerNormalization: each row `x[i, axis..]` standardised, then `* scale + bias`.
fn layer_norm(x: &Tensor, scale: &Tensor, bias: Option<&Tensor>, axis: i64, epsilon: f32) -> Result<Vec<Tensor>> {
    let v = x.as_f32()?;
    let s = x.shape();
    let ax = norm_axis(axis, s.len())?;
    let rows = numel(&s[..ax])?;
    let cols = numel(&s[ax..])?;
    // Scale and bias depend only on the normalised axes (the common case: shape s[axis..]) or
    // on the whole of X.
    let expand = |t: &Tensor, what| {
        if t.rank() <= s.len() - ax {
            broadcast_to(t, &s[ax..], what)
        } else {
            broadcast_to(t, s, what)
        }
    };
    let w = expand(scale, "Scale")?;
    let b = bias.map(|b| expand(b, "B")).transpose()?;
    let mut y = vec![0f32; v.len()];
    let mut means = vec![f32::NAN; rows];
    let mut invs = vec![f32::NAN; rows];
    for (r, (yr, xr)) in y.chunks_exact_mut(cols.max(1)).zip(v.chunks_exact(cols.max(1))).enumerate() {
        let n = cols as f64;
        let mean = xr.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
        let var = xr.iter().map(|&a| (f64::from(a) - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + f64::from(epsilon)).sqrt();
        let off = if w.len() == cols { 0 } else { r * cols };
        let boff = |b: &Vec<f32>| if b.len() == cols { 0 } else { r * cols };
        for (j, (o, &xv)) in yr.iter_mut().zip(xr).enumerate() {
            let g = w.get(off + j).copied().unwrap_or(0.0);
            let bb = b.as_ref().and_then(|b| b.get(boff(b) + j).copied()).unwrap_or(0.0);
            *o = (((f64::from(xv) - mean) * inv) as f32) * g + bb;
        }
        if let (Some(m), Some(i)) = (means.get_mut(r), invs.get_mut(r)) {
            *m = mean as f32;
            *i = inv as f32;
        }
    }
    let stat_shape: Vec<usize> = s.iter().enumerate().map(|(i, &d)| if i < ax { d } else { 1 }).collect();
    Ok(vec![
        Tensor::from_f32(s.to_vec(), y)?,
        Tensor::from_f32(stat_shape.clone(), means)?,
        Tensor::from_f32(stat_shape, invs)?,
    ])
}

/// InstanceNormalization: each `x[n, c, ...]` standardised over its spatial axes, `* scale[c] + bias[c]`.
fn instance_norm(x: &Tensor, scale: &Tensor, bias: &Tensor, epsilon: f32) -> Result<Tensor> {
    let v = x.as_f32()?;
    let s = x.shape();
    if s.len() < 2 {
        return shape_err!("InstanceNormalization needs an input of rank >= 2, got {s:?}");
    }
    let c = s[1];
    let inner = numel(&s[2..])?;
    let (g, b) = (scale.as_f32()?, bias.as_f32()?);
    if g.len() != c || b.len() != c {
        return shape_err!(
            "InstanceNormalization: scale {:?} and B {:?} must hold {c} values",
            scale.shape(),
            bias.shape()
        );
    }
    let mut y = vec![0f32; v.len()];
    for (i, (yb, xb)) in y.chunks_exact_mut(inner.max(1)).zip(v.chunks_exact(inner.max(1))).enumerate() {
        let k = i % c.max(1);
        let (Some(&g), Some(&b)) = (g.get(k), b.get(k)) else { continue };
        let n = inner as f64;
        let mean = xb.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
        let var = xb.iter().map(|&a| (f64::from(a) - mean).powi(2)).sum::<f64>() / n;
        let a = f64::from(g) / (var + f64::from(epsilon)).sqrt();
        for (o, &xv) in yb.iter_mut().zip(xb) {
            *o = ((f64::from(xv) - mean) * a + f64::from(b)) as f32;
        }
    }
    Tensor::from_f32(s.to_vec(), y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn softmax_rows_sum_to_one_and_log_softmax_stays_finite() {
        let x = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let s = softmax(&x, -1, false, false).unwrap();
        let row: f32 = s.as_f32().unwrap()[..3].iter().sum();
        assert!((row - 1.0).abs() < 1e-6);
        let ls = softmax(&t(&[2], &[1000., 0.]), 0, false, true).unwrap();
        assert!(ls.as_f32().unwrap().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn norms_standardise_and_check_their_parameters() {
        let x = t(&[1, 2, 2], &[1., 3., 10., 10.]);
        let one = t(&[2], &[1., 1.]);
        let zero = t(&[2], &[0., 0.]);
        let inorm = Norm::InstanceNormalization { epsilon: 0.0 };
        let y = inorm.run(&[Some(&x), Some(&one), Some(&zero)]).unwrap();
        assert_eq!(y[0].as_f32().unwrap()[..2], [-1., 1.]);
        // Constant rows with epsilon 0: 0/0 is NaN, as the formula says.
        assert!(y[0].as_f32().unwrap()[2].is_nan());
        assert!(inorm.run(&[Some(&x), Some(&t(&[3], &[1.; 3])), Some(&zero)]).is_err());
        let bn = Norm::BatchNormalization { epsilon: 0.0, momentum: 0.9, training: false, spatial: true };
        let var = t(&[2], &[4., 1.]);
        let y = bn.run(&[Some(&x), Some(&one), Some(&zero), Some(&one), Some(&var)]).unwrap();
        assert_eq!(y[0].as_f32().unwrap(), [0., 1., 9., 9.]);
        assert!(bn.run(&[Some(&t(&[2], &[1., 2.])), Some(&one), Some(&zero), Some(&one), Some(&var)]).is_err());
        assert!(bn.run(&[Some(&x), Some(&one), Some(&zero), Some(&one)]).is_err());
        let ln = Norm::LayerNormalization { axis: -1, epsilon: 0.0 };
        let y = ln.run(&[Some(&x), Some(&one), None]).unwrap();
        assert_eq!(y.len(), 3);
        assert_eq!(y[0].as_f32().unwrap()[..2], [-1., 1.]);
        assert_eq!((y[1].shape(), y[1].as_f32().unwrap()), (&[1, 2, 1][..], &[2f32, 10.][..]));
        assert!(ln.run(&[Some(&x), Some(&t(&[3], &[1.; 3])), None]).is_err());
        let bad_axis = Norm::LayerNormalization { axis: 3, epsilon: 0.0 };
        assert!(bad_axis.run(&[Some(&x), Some(&one), None]).is_err());
    }
}
