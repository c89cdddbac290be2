//! `Pad`: constant, reflect, edge and wrap, on float and integer tensors.
//!
//! Opset 1 reads the pads from the `paddings` attribute, opsets 2-10 from `pads` (both with the
//! `value` attribute); from opset 11 they are input 1 and the constant is the optional input 2, and
//! from opset 18 the optional input 3 names the `axes` the pads are for. `wrap` exists from opset 19.
//!
//! Pads are `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`; a negative pad removes elements from
//! that side. As in the ONNX reference, an axis is cropped first and the modes that copy input
//! elements (reflect, edge, wrap) work on what is left of it.

use crate::error::{shape_err, Error, Result};
use crate::tensor::{norm_axis, numel, Data, Tensor};

/// How the added elements are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// The constant value.
    Constant,
    /// The mirror image without the edge element: `[a, b, c]` → `[c, b, a, b, c, b, a]`.
    Reflect,
    /// The edge element repeated.
    Edge,
    /// The axis repeated (circular): `[a, b, c]` → `[b, c, a, b, c, a, b]`.
    Wrap,
}

/// `Pad`.
#[derive(Debug, Clone, PartialEq)]
pub enum Pad {
    /// `attrs`: the pads and the constant from the attributes (opset < 11), else `None` (inputs).
    Pad { mode: PadMode, attrs: Option<(Vec<i64>, f32)>, axes_input: bool },
}

impl Pad {
    pub fn name(&self) -> &'static str {
        match self {
            Pad::Pad { .. } => "Pad",
        }
    }

    /// The operator of this family named `op_type` (Pad), or `None` for any other.
    pub(crate) fn parse(
        op_type: &str,
        a: &crate::ops::Attrs<'_>,
        opset: i64,
        _consts: &[Option<&Tensor>],
    ) -> Option<Result<Self>> {
        (op_type == "Pad").then(|| parse_pad(a, opset))
    }

    pub fn run(&self, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let Pad::Pad { mode, attrs, axes_input } = self;
        let x = crate::ops::arg(args, 0)?;
        let (pads, value) = match attrs {
            Some((pads, value)) => (pads.clone(), Value::from_attr(*value, x)),
            None => {
                let pads = crate::ops::arg(args, 1)?.to_i64_vec()?;
                let value = match crate::ops::opt(args, 2) {
                    Some(v) => Value::from_input(v, x)?,
                    None => Value::from_attr(0.0, x),
                };
                (pads, value)
            }
        };
        let axes = if *axes_input { crate::ops::opt(args, 3).map(Tensor::to_i64_vec).transpose()? } else { None };
        pad(x, &pads, axes.as_deref(), *mode, value).map(|t| vec![t])
    }
}

fn parse_pad(a: &crate::ops::Attrs<'_>, opset: i64) -> Result<Pad> {
    let mode = match a.string("mode")?.as_deref().unwrap_or("constant") {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" if opset >= 19 => PadMode::Wrap,
        "wrap" => return Err(a.bad("mode", "'wrap' exists from opset 19")),
        other => return Err(a.bad("mode", &format!("'{other}' is not constant, reflect, edge or wrap"))),
    };
    let attrs = if opset < 11 {
        let key = if opset < 2 { "paddings" } else { "pads" };
        let pads = a.ints(key).ok_or_else(|| a.bad(key, "is required before opset 11"))?;
        Some((pads, a.float("value", 0.0)))
    } else {
        None
    };
    Ok(Pad::Pad { mode, attrs, axes_input: opset >= 18 })
}

/// The constant, in the data's element type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    F32(f32),
    I64(i64),
}

impl Value {
    /// The `value` attribute (a float) for `x`'s element type (truncated for integers, as a cast).
    fn from_attr(v: f32, x: &Tensor) -> Value {
        match x.data() {
            Data::F32(_) => Value::F32(v),
            Data::I64(_) => Value::I64(v as i64),
        }
    }

    /// The `constant_value` input: one element of the data's type.
    fn from_input(v: &Tensor, x: &Tensor) -> Result<Value> {
        if v.len() != 1 {
            return shape_err!("Pad constant_value must be a scalar, has shape {:?}", v.shape());
        }
        match (v.data(), x.data()) {
            (Data::F32(c), Data::F32(_)) => Ok(Value::F32(c[0])),
            (Data::I64(c), Data::I64(_)) => Ok(Value::I64(c[0])),
            _ => shape_err!("Pad constant_value is {}, the data {}", v.dtype().name(), x.dtype().name()),
        }
    }
}

/// Index `j` of an axis of `n > 0` elements extended by `mode` (`None`: the constant).
fn source(j: i64, n: i64, mode: PadMode) -> Option<i64> {
    if (0..n).contains(&j) {
        return Some(j);
    }
    match mode {
        PadMode::Constant => None,
        PadMode::Edge => Some(j.clamp(0, n - 1)),
        PadMode::Wrap => Some(j.rem_euclid(n)),
        PadMode::Reflect if n == 1 => Some(0),
        PadMode::Reflect => {
            let m = j.rem_euclid(2 * (n - 1));
            Some(if m >= n { 2 * (n - 1) - m } else { m })
        }
    }
}

/// Pads `x` by `pads` (`[begins..., ends...]` for `axes`, every axis when `None`).
pub fn pad(x: &Tensor, pads: &[i64], axes: Option<&[i64]>, mode: PadMode, value: Value) -> Result<Tensor> {
    let r = x.rank();
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&ax| norm_axis(ax, r)).collect::<Result<_>>()?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return shape_err!("Pad needs {} pads for {} axes, got {}", 2 * axes.len(), axes.len(), pads.len());
    }
    let (mut begin, mut end) = (vec![0i64; r], vec![0i64; r]);
    let mut seen = vec![false; r];
    for (i, &ax) in axes.iter().enumerate() {
        if std::mem::replace(&mut seen[ax], true) {
            return shape_err!("Pad axes {axes:?} name axis {ax} twice");
        }
        (begin[ax], end[ax]) = (pads[i], pads[i + axes.len()]);
    }
    let shape = x.shape();
    if r > 0 && (0..r - 1).all(|ax| begin[ax] == 0 && end[ax] == 0) {
        if let Some(t) = pad_last(x, begin[r - 1], end[r - 1], mode, value)? {
            return Ok(t);
        }
    }
    let mut out_shape = Vec::with_capacity(r);
    // Per axis, the source index of each output index (`None`: the constant).
    let mut maps: Vec<Vec<Option<usize>>> = Vec::with_capacity(r);
    for ax in 0..r {
        let n = shape[ax] as i128;
        let (b, e) = (begin[ax] as i128, end[ax] as i128);
        let crop = (-b).max(0);
        let kept = n - crop - (-e).max(0);
        let out = kept + b.max(0) + e.max(0);
        if kept < 0 || out < 0 {
            return shape_err!("Pad of {b} and {e} removes more than the {n} elements of axis {ax}");
        }
        let out = usize::try_from(out).map_err(|_| Error::Shape(format!("Pad makes axis {ax} too long")))?;
        out_shape.push(out);
        numel(&out_shape)?;
        if kept == 0 && out > 0 && mode != PadMode::Constant {
            return shape_err!("Pad {mode:?} cannot extend axis {ax}, which has no elements left");
        }
        let (kept, crop, shift) = (kept as i64, crop as i64, b.max(0) as i64);
        maps.push((0..out as i64).map(|o| source(o - shift, kept, mode).map(|j| (j + crop) as usize)).collect());
    }
    let strides = Tensor::strides(shape);
    let total = numel(&out_shape)?;
    let data = match (x.data(), value) {
        (Data::F32(v), Value::F32(c)) => Data::F32(gather(v, &maps, &strides, c, total)),
        (Data::I64(v), Value::I64(c)) => Data::I64(gather(v, &maps, &strides, c, total)),
        _ => return shape_err!("Pad constant does not have the data's type {}", x.dtype().name()),
    };
    Tensor::new(out_shape, data)
}

/// [`pad`] of the innermost axis alone, by `b` and `e` ≥ 0 (an STFT's reflect padding of the
/// signal): each row is the source indices of its `b` + `e` padded elements, found once, around a
/// copy of the row. `None` where this does not apply (a crop, an empty axis).
fn pad_last(x: &Tensor, b: i64, e: i64, mode: PadMode, value: Value) -> Result<Option<Tensor>> {
    let shape = x.shape();
    let n = shape[shape.len() - 1];
    let (Ok(bu), Ok(eu)) = (usize::try_from(b), usize::try_from(e)) else { return Ok(None) };
    if n == 0 || bu > MAX_EDGE || eu > MAX_EDGE {
        return Ok(None);
    }
    let mut out_shape = shape.to_vec();
    out_shape[shape.len() - 1] = n + bu + eu;
    let total = numel(&out_shape)?;
    let ni = n as i64;
    let left: Vec<Option<usize>> = (-b..0).map(|j| source(j, ni, mode).map(|j| j as usize)).collect();
    let right: Vec<Option<usize>> = (ni..ni + e).map(|j| source(j, ni, mode).map(|j| j as usize)).collect();
    fn rows<T: Copy>(
        src: &[T],
        n: usize,
        left: &[Option<usize>],
        right: &[Option<usize>],
        value: T,
        total: usize,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(total);
        for row in src.chunks_exact(n) {
            let at = |i: &Option<usize>| i.and_then(|i| row.get(i).copied()).unwrap_or(value);
            out.extend(left.iter().map(at));
            out.extend_from_slice(row);
            out.extend(right.iter().map(at));
        }
        out
    }
    let data = match (x.data(), value) {
        (Data::F32(v), Value::F32(c)) => Data::F32(rows(v, n, &left, &right, c, total)),
        (Data::I64(v), Value::I64(c)) => Data::I64(rows(v, n, &left, &right, c, total)),
        _ => return shape_err!("Pad constant does not have the data's type {}", x.dtype().name()),
    };
    Tensor::new(out_shape, data).map(Some)
}

/// Most elements [`pad_last`] adds at either end of a row (more go the general way, which checks
/// the total size first).
const MAX_EDGE: usize = 1 << 16;

fn gather<T: Copy>(src: &[T], maps: &[Vec<Option<usize>>], strides: &[usize], value: T, total: usize) -> Vec<T> {
    fn walk<T: Copy>(
        out: &mut Vec<T>,
        src: &[T],
        maps: &[Vec<Option<usize>>],
        strides: &[usize],
        base: Option<usize>,
        value: T,
    ) {
        let (Some(map), Some(&stride)) = (maps.first(), strides.first()) else {
            out.push(base.and_then(|b| src.get(b).copied()).unwrap_or(value));
            return;
        };
        if maps.len() == 1 {
            // The innermost axis (stride 1: row-major) in runs: the kept middle is one copy.
            let mut at = 0;
            while let Some(&i) = map.get(at) {
                let (Some(b), Some(j)) = (base, i) else {
                    out.push(value);
                    at += 1;
                    continue;
                };
                let len = 1 + map[at + 1..].iter().zip(1..).take_while(|&(m, k)| *m == Some(j + k)).count();
                match src.get(b + j..b + j + len) {
                    Some(run) => out.extend_from_slice(run),
                    None => out.extend((0..len).map(|k| src.get(b + j + k).copied().unwrap_or(value))),
                }
                at += len;
            }
            return;
        }
        for &i in map {
            let b = base.zip(i).map(|(b, i)| b + i * stride);
            walk(out, src, &maps[1..], &strides[1..], b, value);
        }
    }
    let mut out = Vec::with_capacity(total);
    if total > 0 {
        walk(&mut out, src, maps, strides, Some(0), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn f(x: &Tensor) -> Vec<f32> {
        x.as_f32().unwrap().to_vec()
    }

    #[test]
    fn the_innermost_axis_alone_matches_the_general_walk() {
        // Rows padded alone (the innermost-axis path) = the same rows of a padding that also adds
        // a first row (the general path).
        let x = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        for mode in [PadMode::Constant, PadMode::Reflect, PadMode::Edge, PadMode::Wrap] {
            for (b, e) in [(2, 1), (0, 4), (5, 0)] {
                let alone = f(&pad(&x, &[0, b, 0, e], None, mode, Value::F32(9.)).unwrap());
                let general = f(&pad(&x, &[1, b, 0, e], None, mode, Value::F32(9.)).unwrap());
                assert_eq!(alone[..], general[general.len() - alone.len()..], "{mode:?} {b} {e}");
            }
        }
    }

    #[test]
    fn modes_on_one_axis() {
        let x = t(&[3], &[1., 2., 3.]);
        let p = |mode, pads: &[i64]| f(&pad(&x, pads, None, mode, Value::F32(9.)).unwrap());
        assert_eq!(p(PadMode::Constant, &[2, 1]), [9., 9., 1., 2., 3., 9.]);
        assert_eq!(p(PadMode::Reflect, &[2, 2]), [3., 2., 1., 2., 3., 2., 1.]);
        assert_eq!(p(PadMode::Edge, &[2, 1]), [1., 1., 1., 2., 3., 3.]);
        assert_eq!(p(PadMode::Wrap, &[2, 2]), [2., 3., 1., 2., 3., 1., 2.]);
        // Longer than the axis: reflect and wrap keep going (as numpy's pad does).
        assert_eq!(p(PadMode::Reflect, &[5, 0]), [2., 1., 2., 3., 2., 1., 2., 3.]);
        assert_eq!(p(PadMode::Wrap, &[0, 4]), [1., 2., 3., 1., 2., 3., 1.]);
    }

    #[test]
    fn negative_pads_crop_first() {
        let x = t(&[5], &[1., 2., 3., 4., 5.]);
        assert_eq!(f(&pad(&x, &[-1, -2], None, PadMode::Constant, Value::F32(0.)).unwrap()), [2., 3.]);
        // Cropped to [2, 3, 4, 5], then reflected.
        assert_eq!(f(&pad(&x, &[-1, 2], None, PadMode::Reflect, Value::F32(0.)).unwrap()), [2., 3., 4., 5., 4., 3.]);
        assert_eq!(f(&pad(&x, &[-5, 1], None, PadMode::Constant, Value::F32(7.)).unwrap()), [7.]);
        assert!(pad(&x, &[-5, 1], None, PadMode::Edge, Value::F32(0.)).is_err());
        assert!(pad(&x, &[-3, -3], None, PadMode::Constant, Value::F32(0.)).is_err());
    }

    #[test]
    fn two_d_with_axes_and_integers() {
        let x = Tensor::from_i64(vec![2, 2], vec![1, 2, 3, 4]).unwrap();
        let y = pad(&x, &[1, 0], Some(&[-1]), PadMode::Constant, Value::I64(-1)).unwrap();
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(y.as_i64().unwrap(), &[-1, 1, 2, -1, 3, 4]);
        let y = pad(&x, &[1, 0, 0, 1], None, PadMode::Edge, Value::I64(0)).unwrap();
        assert_eq!(y.shape(), &[3, 3]);
        assert_eq!(y.as_i64().unwrap(), &[1, 2, 2, 1, 2, 2, 3, 4, 4]);
    }

    #[test]
    fn hostile_pads_are_errors() {
        let x = t(&[2, 2], &[1., 2., 3., 4.]);
        let c = Value::F32(0.);
        assert!(pad(&x, &[1, 1], None, PadMode::Constant, c).is_err());
        assert!(pad(&x, &[1, 1], Some(&[0, -2]), PadMode::Constant, c).is_err());
        assert!(pad(&x, &[1, 1], Some(&[2]), PadMode::Constant, c).is_err());
        assert!(pad(&x, &[i64::MAX, 0, 0, 0], None, PadMode::Constant, c).is_err());
        assert!(pad(&x, &[i64::MIN, 0, 0, 0], None, PadMode::Constant, c).is_err());
        assert!(pad(&x, &[1 << 20, 1 << 20, 0, 0], None, PadMode::Constant, c).is_err());
        assert!(pad(&x, &[0, 0, 0, 0], None, PadMode::Constant, Value::I64(0)).is_err());
        let empty = t(&[0, 2], &[]);
        assert_eq!(pad(&empty, &[0, 1, 0, 1], None, PadMode::Reflect, c).unwrap().shape(), &[0, 4]);
        assert!(pad(&empty, &[1, 0, 0, 0], None, PadMode::Reflect, c).is_err());
        let scalar = t(&[], &[5.]);
        assert_eq!(f(&pad(&scalar, &[], None, PadMode::Reflect, c).unwrap()), [5.]);
    }
}
