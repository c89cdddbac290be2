//! Pooling: MaxPool (with the optional Indices output), AveragePool, GlobalAveragePool,
//! GlobalMaxPool, over 1, 2 or 3 spatial axes of an `[N, C, D1...]` tensor.
//!
//! Output sizes follow the spec: with explicit pads, `floor` (or `ceil` with `ceil_mode`) of
//! `(in + pads - ((k - 1) * dilation + 1)) / stride + 1`, dropping a last window that would start
//! in the right padding; with `auto_pad` SAME_* `ceil(in / stride)` and the padding split evenly
//! (the odd one at the end for SAME_UPPER, at the start for SAME_LOWER; never negative), VALID no
//! padding. Padding never holds values: MaxPool takes the max of the window's input elements
//! (NaN propagates), AveragePool divides by their count, or with `count_include_pad` by the count
//! of the window's positions inside the padded input (positions added by `ceil_mode` past the
//! right pad are not counted).
//!
//! The kernel works on 3 spatial axes (1-D and 2-D pooling pad the front with size-1 axes) and
//! precomputes, per axis and output position, the first input position and the number of taps
//! that fall inside the input, so the window loops carry no bounds tests.

use crate::error::{shape_err, Error, Result};
use crate::ops::{arg, Attrs};
use crate::tensor::{numel, Data, Tensor};

/// The largest kernel, stride, dilation or pad accepted (keeps all size arithmetic in i64 exact).
const MAX_ATTR: i64 = 1 << 30;

pub use super::conv::AutoPad;

/// Window geometry of MaxPool / AveragePool, per spatial axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub kernel: Vec<i64>,
    pub strides: Vec<i64>,
    pub dilations: Vec<i64>,
    /// `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]` (explicit padding only).
    pub pads: Vec<i64>,
    pub auto_pad: AutoPad,
    pub ceil_mode: bool,
}

/// Pooling.
#[derive(Debug, Clone, PartialEq)]
pub enum Pool {
    /// `indices`: the node asks for output 1; `column_major`: `storage_order=1`.
    MaxPool {
        window: Window,
        indices: bool,
        column_major: bool,
    },
    AveragePool {
        window: Window,
        count_include_pad: bool,
    },
    GlobalAveragePool,
    GlobalMaxPool,
}

impl Pool {
    pub fn name(&self) -> &'static str {
        match self {
            Pool::MaxPool { .. } => "MaxPool",
            Pool::AveragePool { .. } => "AveragePool",
            Pool::GlobalAveragePool => "GlobalAveragePool",
            Pool::GlobalMaxPool => "GlobalMaxPool",
        }
    }

    /// The operator of this family named `op_type` (MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool), or `None` for any other.
    pub(crate) fn parse(op_type: &str, a: &Attrs<'_>, opset: i64, _consts: &[Option<&Tensor>]) -> Option<Result<Self>> {
        Some(match op_type {
            "MaxPool" => parse_max(a, opset),
            "AveragePool" => parse_avg(a, opset),
            "GlobalAveragePool" => Ok(Pool::GlobalAveragePool),
            "GlobalMaxPool" => Ok(Pool::GlobalMaxPool),
            _ => return None,
        })
    }

    pub fn run(&self, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let x = arg(args, 0)?;
        match self {
            Pool::MaxPool { window, indices, column_major } => max_pool(x, window, *indices, *column_major),
            Pool::AveragePool { window, count_include_pad } => Ok(vec![avg_pool(x, window, *count_include_pad)?]),
            Pool::GlobalAveragePool => Ok(vec![global(x, false)?]),
            Pool::GlobalMaxPool => Ok(vec![global(x, true)?]),
        }
    }
}

fn flag(a: &Attrs<'_>, key: &str, since: i64, opset: i64) -> Result<bool> {
    if opset < since && a.has(key) {
        return Err(a.bad(key, &format!("is not defined before opset {since}")));
    }
    match a.int(key, 0) {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(a.bad(key, "must be 0 or 1")),
    }
}

fn parse_max(a: &Attrs<'_>, opset: i64) -> Result<Pool> {
    let window = parse_window(a, opset, 10, 10)?;
    let column_major = flag(a, "storage_order", 8, opset)?;
    let indices = a.node.output.get(1).is_some_and(|o| !o.is_empty());
    if indices && opset < 8 {
        return Err(Error::InvalidModel(format!("node '{}' (MaxPool): the Indices output needs opset 8", a.name)));
    }
    Ok(Pool::MaxPool { window, indices, column_major })
}

fn parse_avg(a: &Attrs<'_>, opset: i64) -> Result<Pool> {
    let window = parse_window(a, opset, 19, 10)?;
    let count_include_pad = flag(a, "count_include_pad", 7, opset)?;
    Ok(Pool::AveragePool { window, count_include_pad })
}

fn parse_window(a: &Attrs<'_>, opset: i64, dilations_since: i64, ceil_since: i64) -> Result<Window> {
    let kernel = a.ints("kernel_shape").ok_or_else(|| a.bad("kernel_shape", "is required"))?;
    let k = kernel.len();
    if k == 0 || k > 3 {
        return Err(a.unsupported(format!("{k} spatial axes (1, 2 or 3 are supported)")));
    }
    let list = |key: &str, default: i64, len: usize, min: i64| -> Result<Vec<i64>> {
        let v = a.ints(key).unwrap_or_else(|| vec![default; len]);
        if v.len() != len {
            return Err(a.bad(key, &format!("must have {len} entries, has {}", v.len())));
        }
        if v.iter().any(|&x| x < min || x > MAX_ATTR) {
            return Err(a.bad(key, &format!("entries must be in {min}..={MAX_ATTR}")));
        }
        Ok(v)
    };
    let kernel = list("kernel_shape", 1, k, 1)?;
    let strides = list("strides", 1, k, 1)?;
    if opset < dilations_since && a.has("dilations") {
        return Err(a.bad("dilations", &format!("is not defined before opset {dilations_since}")));
    }
    let dilations = list("dilations", 1, k, 1)?;
    let pads = list("pads", 0, 2 * k, 0)?;
    let ceil_mode = flag(a, "ceil_mode", ceil_since, opset)?;
    let auto_pad = AutoPad::parse(a)?;
    if auto_pad != AutoPad::NotSet && pads.iter().any(|&p| p != 0) {
        return Err(a.bad("pads", "cannot be used together with auto_pad"));
    }
    Ok(Window { kernel, strides, dilations, pads, auto_pad, ceil_mode })
}

/// One spatial axis of a pooling: per output position, the first input position inside the
/// window, how many taps fall inside the input, and how many inside the padded input.
struct Axis {
    dilation: usize,
    first: Vec<usize>,
    taps: Vec<usize>,
    padded: Vec<usize>,
}

impl Axis {
    /// The size-1 axis that pads 1-D and 2-D pooling to 3 axes.
    fn unit() -> Axis {
        Axis { dilation: 1, first: vec![0], taps: vec![1], padded: vec![1] }
    }

    fn out(&self) -> usize {
        self.first.len()
    }

    fn plan(input: usize, kernel: i64, stride: i64, dilation: i64, pads: (i64, i64), w: &Window) -> Result<Axis> {
        let Ok(n) = i64::try_from(input) else { return shape_err!("spatial size {input} is too large") };
        let extent = (kernel - 1) * dilation + 1;
        let (out, head, tail) = match w.auto_pad {
            AutoPad::NotSet => {
                let total = n + pads.0 + pads.1;
                if total < extent {
                    return shape_err!("the pooling window ({extent} wide) is larger than the padded input ({total})");
                }
                let mut out = if w.ceil_mode {
                    (total - extent + stride - 1) / stride + 1
                } else {
                    (total - extent) / stride + 1
                };
                // A last window starting in the right padding is dropped.
                if w.ceil_mode && (out - 1) * stride >= n + pads.0 {
                    out -= 1;
                }
                (out, pads.0, pads.1)
            }
            AutoPad::Valid => {
                if n < extent {
                    return shape_err!("the pooling window ({extent} wide) is larger than the input ({n})");
                }
                ((n - extent) / stride + 1, 0, 0)
            }
            AutoPad::SameUpper | AutoPad::SameLower => {
                let out = (n + stride - 1) / stride;
                let total = if out == 0 { 0 } else { ((out - 1) * stride + extent - n).max(0) };
                let small = total / 2;
                if w.auto_pad == AutoPad::SameUpper {
                    (out, small, total - small)
                } else {
                    (out, total - small, small)
                }
            }
        };
        let ceil_div = |a: i64, b: i64| (a + b - 1) / b;
        let out = usize::try_from(out).unwrap_or(0);
        let (mut first, mut taps, mut padded) =
            (Vec::with_capacity(out), Vec::with_capacity(out), Vec::with_capacity(out));
        for o in 0..out as i64 {
            let start = o * stride - head;
            // Taps t in [lo, hi) land inside the input: 0 <= start + t*dilation < n.
            let lo = if start >= 0 { 0 } else { ceil_div(-start, dilation) }.min(kernel);
            let hi = if n > start { ceil_div(n - start, dilation).min(kernel) } else { 0 };
            let inside = (hi - lo).max(0);
            let hi_pad = if n + tail > start { ceil_div(n + tail - start, dilation).min(kernel) } else { 0 };
            first.push(usize::try_from(start + lo * dilation).unwrap_or(0));
            taps.push(usize::try_from(inside).unwrap_or(0));
            padded.push(usize::try_from(hi_pad).unwrap_or(0));
        }
        Ok(Axis { dilation: usize::try_from(dilation).unwrap_or(1), first, taps, padded })
    }
}

/// The three axes of `x` (`[N, C, D1..Dk]`, k = the window's axes), its planes (N·C) and the
/// padded 3-D input dims.
fn plan(x: &Tensor, w: &Window) -> Result<(usize, [usize; 3], [Axis; 3])> {
    let s = x.shape();
    let k = w.kernel.len();
    if s.len() != k + 2 {
        return shape_err!("{k}-D pooling needs a rank-{} input, got {s:?}", k + 2);
    }
    let planes = s[0].checked_mul(s[1]).ok_or_else(|| Error::Shape(format!("shape {s:?} is too large")))?;
    let mut dims = [1usize; 3];
    let mut axes = [Axis::unit(), Axis::unit(), Axis::unit()];
    for i in 0..k {
        let slot = 3 - k + i;
        dims[slot] = s[2 + i];
        axes[slot] = Axis::plan(s[2 + i], w.kernel[i], w.strides[i], w.dilations[i], (w.pads[i], w.pads[k + i]), w)?;
    }
    Ok((planes, dims, axes))
}

fn out_shape(x: &Tensor, axes: &[Axis; 3], k: usize) -> Vec<usize> {
    let mut shape = x.shape()[..2].to_vec();
    shape.extend(axes[3 - k..].iter().map(Axis::out));
    shape
}

fn avg_pool(x: &Tensor, w: &Window, count_include_pad: bool) -> Result<Tensor> {
    let v = x.as_f32()?;
    let (planes, [_, dh, dw], axes) = plan(x, w)?;
    let shape = out_shape(x, &axes, w.kernel.len());
    let [a0, a1, a2] = &axes;
    let n = numel(&shape)?;
    let plane = numel(&x.shape()[2..])?;
    let mut y = Vec::with_capacity(n);
    for p in 0..planes {
        let Some(xp) = v.get(p * plane..(p + 1) * plane) else { break };
        for o0 in 0..a0.out() {
            for o1 in 0..a1.out() {
                for o2 in 0..a2.out() {
                    let mut sum = 0f64;
                    for t0 in 0..a0.taps[o0] {
                        let i0 = a0.first[o0] + t0 * a0.dilation;
                        for t1 in 0..a1.taps[o1] {
                            let row = (i0 * dh + a1.first[o1] + t1 * a1.dilation) * dw;
                            for t2 in 0..a2.taps[o2] {
                                sum += f64::from(xp.get(row + a2.first[o2] + t2 * a2.dilation).copied().unwrap_or(0.0));
                            }
                        }
                    }
                    let count = if count_include_pad {
                        a0.padded[o0] * a1.padded[o1] * a2.padded[o2]
                    } else {
                        a0.taps[o0] * a1.taps[o1] * a2.taps[o2]
                    };
                    y.push((sum / count as f64) as f32);
                }
            }
        }
    }
    Tensor::from_f32(shape, y)
}

/// The elements MaxPool compares: NaN (floats only) wins.
trait Elem: Copy + PartialOrd {
    fn nan(self) -> bool;
}
impl Elem for f32 {
    fn nan(self) -> bool {
        self.is_nan()
    }
}
impl Elem for i64 {
    fn nan(self) -> bool {
        false
    }
}

fn max_pool(x: &Tensor, w: &Window, want_indices: bool, column_major: bool) -> Result<Vec<Tensor>> {
    let k = w.kernel.len();
    let (planes, dims, axes) = plan(x, w)?;
    let shape = out_shape(x, &axes, k);
    let n = numel(&shape)?;
    let (y, idx) = match x.data() {
        Data::F32(v) => {
            let (y, idx) = max_kernel(v, planes, dims, &axes, n, f32::NEG_INFINITY, column_major)?;
            (Data::F32(y), idx)
        }
        Data::I64(v) => {
            let (y, idx) = max_kernel(v, planes, dims, &axes, n, i64::MIN, column_major)?;
            (Data::I64(y), idx)
        }
    };
    let mut out = vec![Tensor::new(shape.clone(), y)?];
    if want_indices {
        out.push(Tensor::from_i64(shape, idx)?);
    }
    Ok(out)
}

#[allow(clippy::type_complexity)]
fn max_kernel<T: Elem>(
    v: &[T],
    planes: usize,
    [d0, d1, d2]: [usize; 3],
    [a0, a1, a2]: &[Axis; 3],
    n: usize,
    lowest: T,
    column_major: bool,
) -> Result<(Vec<T>, Vec<i64>)> {
    let plane = d0 * d1 * d2;
    let mut y = Vec::with_capacity(n);
    let mut indices = Vec::with_capacity(n);
    for p in 0..planes {
        let Some(xp) = v.get(p * plane..(p + 1) * plane) else { break };
        for o0 in 0..a0.out() {
            for o1 in 0..a1.out() {
                for o2 in 0..a2.out() {
                    let (mut m, mut at, mut found) = (lowest, (0, 0, 0), false);
                    'win: for t0 in 0..a0.taps[o0] {
                        let i0 = a0.first[o0] + t0 * a0.dilation;
                        for t1 in 0..a1.taps[o1] {
                            let i1 = a1.first[o1] + t1 * a1.dilation;
                            let row = (i0 * d1 + i1) * d2;
                            for t2 in 0..a2.taps[o2] {
                                let i2 = a2.first[o2] + t2 * a2.dilation;
                                let Some(&e) = xp.get(row + i2) else { continue };
                                if !found || e > m || e.nan() {
                                    (m, at, found) = (e, (i0, i1, i2), true);
                                    if e.nan() {
                                        break 'win;
                                    }
                                }
                            }
                        }
                    }
                    if !found {
                        return shape_err!("MaxPool: a window covers only padding (pads or dilations too large)");
                    }
                    let (i0, i1, i2) = at;
                    let spatial = if column_major { i0 + i1 * d0 + i2 * d0 * d1 } else { (i0 * d1 + i1) * d2 + i2 };
                    y.push(m);
                    indices.push(i64::try_from(p * plane + spatial).unwrap_or(i64::MAX));
                }
            }
        }
    }
    Ok((y, indices))
}

/// GlobalAveragePool / GlobalMaxPool: one value per `[n, c]` plane, spatial axes kept as 1.
fn global(x: &Tensor, max: bool) -> Result<Tensor> {
    let v = x.as_f32()?;
    let s = x.shape();
    if s.len() < 2 {
        return shape_err!("global pooling needs an input of rank >= 2, got {s:?}");
    }
    let plane = numel(&s[2..])?;
    let planes = s[0].checked_mul(s[1]).ok_or_else(|| Error::Shape(format!("shape {s:?} is too large")))?;
    let mut y = Vec::with_capacity(planes);
    for p in 0..planes {
        let xp = v.get(p * plane..(p + 1) * plane).unwrap_or(&[]);
        y.push(if max {
            xp.iter().fold(f32::NEG_INFINITY, |m, &e| if !m.is_nan() && (e > m || e.is_nan()) { e } else { m })
        } else {
            (xp.iter().map(|&e| f64::from(e)).sum::<f64>() / plane as f64) as f32
        });
    }
    let mut shape = s[..2].to_vec();
    shape.extend(std::iter::repeat_n(1, s.len() - 2));
    Tensor::from_f32(shape, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn win(kernel: &[i64], strides: &[i64], pads: &[i64], auto_pad: AutoPad, ceil_mode: bool) -> Window {
        let k = kernel.len();
        Window {
            kernel: kernel.to_vec(),
            strides: strides.to_vec(),
            dilations: vec![1; k],
            pads: pads.to_vec(),
            auto_pad,
            ceil_mode,
        }
    }

    #[test]
    fn one_d_pools_with_pads_ceil_and_same() {
        let x = t(&[1, 1, 5], &[1., 5., 2., 4., 3.]);
        let max = |w: Window| {
            let op = Pool::MaxPool { window: w, indices: true, column_major: false };
            op.run(&[Some(&x)]).unwrap()
        };
        let y = max(win(&[2], &[2], &[0, 0], AutoPad::NotSet, false));
        assert_eq!((y[0].shape(), y[0].as_f32().unwrap()), (&[1, 1, 2][..], &[5f32, 4.][..]));
        assert_eq!(y[1].as_i64().unwrap(), [1, 3]);
        let y = max(win(&[2], &[2], &[0, 0], AutoPad::NotSet, true));
        assert_eq!(y[0].as_f32().unwrap(), [5., 4., 3.]);
        let y = max(win(&[2], &[2], &[0, 0], AutoPad::SameLower, false));
        assert_eq!(y[0].as_f32().unwrap(), [1., 5., 4.]);
        let avg = |w: Window, inc: bool| {
            let op = Pool::AveragePool { window: w, count_include_pad: inc };
            op.run(&[Some(&x)]).unwrap().remove(0).as_f32().unwrap().to_vec()
        };
        assert_eq!(avg(win(&[3], &[3], &[1, 1], AutoPad::NotSet, false), false), [3., 3.]);
        assert_eq!(avg(win(&[3], &[3], &[1, 1], AutoPad::NotSet, false), true), [2., 3.]);
        let nan = t(&[1, 1, 3], &[1., f32::NAN, 2.]);
        let op = Pool::MaxPool {
            window: win(&[3], &[1], &[0, 0], AutoPad::NotSet, false),
            indices: false,
            column_major: false,
        };
        assert!(op.run(&[Some(&nan)]).unwrap()[0].as_f32().unwrap()[0].is_nan());
    }

    #[test]
    fn global_pools_keep_rank() {
        let x = t(&[1, 2, 2], &[1., 3., -1., f32::NAN]);
        let y = Pool::GlobalAveragePool.run(&[Some(&x)]).unwrap();
        assert_eq!(y[0].shape(), [1, 2, 1]);
        assert_eq!(y[0].as_f32().unwrap()[0], 2.);
        let y = Pool::GlobalMaxPool.run(&[Some(&x)]).unwrap();
        assert_eq!(y[0].as_f32().unwrap()[0], 3.);
        assert!(y[0].as_f32().unwrap()[1].is_nan());
    }

    #[test]
    fn hostile_geometry_is_an_error() {
        let x = t(&[1, 1, 3], &[1., 2., 3.]);
        let run = |w: Window| Pool::AveragePool { window: w, count_include_pad: false }.run(&[Some(&x)]);
        // Window wider than the padded input; wrong rank.
        assert!(run(win(&[5], &[1], &[0, 1], AutoPad::NotSet, false)).is_err());
        assert!(run(win(&[1, 1], &[1, 1], &[0; 4], AutoPad::NotSet, false)).is_err());
        assert!(run(win(&[4], &[1], &[0, 0], AutoPad::Valid, false)).is_err());
        // A window entirely in the left padding: no element to take the max of.
        let w = win(&[1], &[1], &[2, 0], AutoPad::NotSet, false);
        let op = Pool::MaxPool { window: w, indices: false, column_major: false };
        assert!(op.run(&[Some(&x)]).is_err());
        // Huge strides and pads stay within i64.
        let w = win(&[1], &[MAX_ATTR], &[MAX_ATTR, MAX_ATTR], AutoPad::NotSet, true);
        assert!(Pool::AveragePool { window: w, count_include_pad: true }.run(&[Some(&x)]).is_ok());
        assert!(Pool::GlobalAveragePool.run(&[Some(&t(&[2], &[1., 2.]))]).is_err());
    }
}
