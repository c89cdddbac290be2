//! `Size`, `Range`, `ScatterND`, `GatherElements`, `Tile`.
//!
//! Integer tensors of every ONNX integer type are `i64` here (see [`crate::tensor`]), so integer
//! arithmetic in the kernels (ScatterND add/mul) wraps as the narrower types would not; results in
//! range of the original type are exact.

use std::sync::{Arc, Mutex};

use crate::error::{shape_err, Error, Result};
use crate::ops::{arg, Attrs};
use crate::tensor::{norm_axis, numel, Data, Tensor, MAX_ELEMENTS};

/// How `ScatterND` combines an update with the element already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

/// Indexing and generating operators.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// Number of elements, as an int64 scalar.
    Size,
    /// `start + i·delta` for `i < max(ceil((limit - start) / delta), 0)` (opset 11).
    Range,
    ScatterND {
        reduction: Reduction,
        /// Set when the indices are a constant of the graph.
        runs: RunCache,
    },
    GatherElements {
        axis: i64,
    },
    /// `legacy`: Tile-1 (inputs `input, tiles, axis`: repeat along one axis); else `input, repeats`.
    Tile {
        legacy: bool,
    },
}

impl Array {
    pub fn name(&self) -> &'static str {
        match self {
            Array::Size => "Size",
            Array::Range => "Range",
            Array::ScatterND { .. } => "ScatterND",
            Array::GatherElements { .. } => "GatherElements",
            Array::Tile { .. } => "Tile",
        }
    }

    /// The operator of this family named `op_type` (Size, Range, ScatterND, GatherElements, Tile), or `None` for any other.
    pub(crate) fn parse(op_type: &str, a: &Attrs<'_>, opset: i64, consts: &[Option<&Tensor>]) -> Option<Result<Self>> {
        let since = |v: i64| {
            if opset < v {
                Err(Error::InvalidModel(format!(
                    "node '{}': {op_type} is not defined before opset {v} (model opset {opset})",
                    a.name
                )))
            } else {
                Ok(())
            }
        };
        let op = match op_type {
            "Size" => Ok(Array::Size),
            "Range" => since(11).map(|()| Array::Range),
            "ScatterND" => {
                let runs = RunCache(consts.get(1).copied().flatten().map(|_| Arc::default()));
                since(11).and_then(|()| parse_reduction(a, opset)).map(|reduction| Array::ScatterND { reduction, runs })
            }
            "GatherElements" => since(11).map(|()| Array::GatherElements { axis: a.int("axis", 0) }),
            "Tile" => Ok(Array::Tile { legacy: opset < 6 }),
            _ => return None,
        };
        Some(op)
    }

    /// [`Array::run`] with input 0 by value: ScatterND writes its updates into the data's buffer.
    pub fn run_owned(&self, x: Tensor, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        match self {
            Array::ScatterND { reduction, runs } => {
                Ok(vec![scatter_nd_with(x, arg(args, 1)?, arg(args, 2)?, *reduction, runs)?])
            }
            _ => self.run(&crate::ops::with_first(&x, args)),
        }
    }

    pub fn run(&self, args: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let out = match self {
            Array::Size => Ok(Tensor::scalar_i64(arg(args, 0)?.len() as i64)),
            Array::Range => range(arg(args, 0)?, arg(args, 1)?, arg(args, 2)?),
            Array::ScatterND { .. } => return self.run_owned(arg(args, 0)?.clone(), args),
            Array::GatherElements { axis } => gather_elements(arg(args, 0)?, arg(args, 1)?, *axis),
            Array::Tile { legacy: false } => {
                let x = arg(args, 0)?;
                tile(x, &arg(args, 1)?.to_i64_vec()?)
            }
            Array::Tile { legacy: true } => {
                let x = arg(args, 0)?;
                let tiles = scalar_int(arg(args, 1)?, "Tile tiles")?;
                let axis = norm_axis(scalar_int(arg(args, 2)?, "Tile axis")?, x.rank())?;
                let mut repeats = vec![1i64; x.rank()];
                repeats[axis] = tiles;
                tile(x, &repeats)
            }
        };
        out.map(|t| vec![t])
    }
}

/// The `reduction` attribute of ScatterND: absent before opset 16, `none|add|mul` in 16–17, with
/// `max|min` from 18.
fn parse_reduction(a: &Attrs<'_>, opset: i64) -> Result<Reduction> {
    let Some(s) = a.string("reduction")? else { return Ok(Reduction::None) };
    if opset < 16 {
        return Err(a.bad("reduction", &format!("is not defined before opset 16 (model opset {opset})")));
    }
    match (s.as_str(), opset >= 18) {
        ("none", _) => Ok(Reduction::None),
        ("add", _) => Ok(Reduction::Add),
        ("mul", _) => Ok(Reduction::Mul),
        ("max", true) => Ok(Reduction::Max),
        ("min", true) => Ok(Reduction::Min),
        ("max" | "min", false) => Err(a.bad("reduction", &format!("'{s}' is not defined before opset 18"))),
        _ => Err(a.bad("reduction", &format!("'{s}' is not one of none, add, mul, max, min"))),
    }
}

/// The single value of a scalar (or one-element 1-D) input.
fn scalar_of<'t>(t: &'t Tensor, what: &str) -> Result<&'t Tensor> {
    if t.len() != 1 || t.rank() > 1 {
        return shape_err!("{what} must be a scalar, got shape {:?}", t.shape());
    }
    Ok(t)
}

fn scalar_int(t: &Tensor, what: &str) -> Result<i64> {
    match scalar_of(t, what)?.as_i64() {
        Ok(v) => Ok(v[0]),
        Err(_) => shape_err!("{what} must be an integer tensor"),
    }
}

/// An element count computed in a wider type, checked against [`MAX_ELEMENTS`].
fn count(n: f64, what: &str) -> Result<usize> {
    if n.is_nan() || n > MAX_ELEMENTS as f64 {
        return shape_err!("{what} has {n} elements (limit {MAX_ELEMENTS})");
    }
    Ok(n.max(0.0) as usize)
}

pub fn range(start: &Tensor, limit: &Tensor, delta: &Tensor) -> Result<Tensor> {
    let (s, l, d) =
        (scalar_of(start, "Range start")?, scalar_of(limit, "Range limit")?, scalar_of(delta, "Range delta")?);
    match (s.data(), l.data(), d.data()) {
        (Data::F32(s), Data::F32(l), Data::F32(d)) => {
            let (s, l, d) = (s[0], l[0], d[0]);
            if d == 0.0 {
                return shape_err!("Range delta is 0");
            }
            let n = count(((l as f64 - s as f64) / d as f64).ceil(), "Range")?;
            let n = numel(&[n])?;
            Tensor::from_f32(vec![n], (0..n).map(|i| s + i as f32 * d).collect())
        }
        (Data::I64(s), Data::I64(l), Data::I64(d)) => {
            let (s, l, d) = (s[0] as i128, l[0] as i128, d[0] as i128);
            if d == 0 {
                return shape_err!("Range delta is 0");
            }
            // ceil((l - s) / d), exact in i128.
            let (num, q) = (l - s, (l - s) / d);
            let n = if num % d != 0 && (num < 0) == (d < 0) { q + 1 } else { q };
            if n > MAX_ELEMENTS as i128 {
                return shape_err!("Range has {n} elements (limit {MAX_ELEMENTS})");
            }
            let n = n.max(0) as usize;
            // Every value lies between start and limit, so it fits in i64.
            Tensor::from_i64(vec![n], (0..n).map(|i| (s + i as i128 * d) as i64).collect())
        }
        _ => shape_err!(
            "Range start, limit and delta must share one type, got {}, {} and {}",
            s.dtype().name(),
            l.dtype().name(),
            d.dtype().name()
        ),
    }
}

/// Resolves index `i` (negative counts from the end) against a dimension of size `dim`.
fn resolve(i: i64, dim: usize, what: &str) -> Result<usize> {
    let d = dim as i128;
    let j = if i < 0 { i as i128 + d } else { i as i128 };
    if j < 0 || j >= d {
        return shape_err!("{what} index {i} out of range for a dimension of size {dim}");
    }
    Ok(j as usize)
}

fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

fn nan_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

/// One copy of a ScatterND: `len` elements of the updates from `src` onto the data at `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    dst: usize,
    src: usize,
    len: usize,
}

/// The runs of a ScatterND whose indices are a graph constant, worked out on the first call and
/// kept for the data shape (and indices) they were made for: GTCRN's cache updates scatter 16·33·n
/// single elements per call through constant indices, all in rows of 33.
#[derive(Clone, Default)]
pub struct RunCache(Option<Arc<Mutex<Option<RunKey>>>>);

/// Data shape, the indices' address, updates shape; the runs.
type RunKey = (Vec<usize>, usize, Vec<usize>, Arc<Vec<Run>>);

impl PartialEq for RunCache {
    /// A cache: never part of what the operator computes.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for RunCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "RunCache(constant indices)" } else { "RunCache(none)" })
    }
}

/// [`scatter_nd`], through `cache` when it holds the runs for these operands.
fn scatter_nd_with(
    data: Tensor,
    indices: &Tensor,
    updates: &Tensor,
    reduction: Reduction,
    cache: &RunCache,
) -> Result<Tensor> {
    let Some(cell) = &cache.0 else { return scatter_nd(data, indices, updates, reduction) };
    // The indices' address tells one constant from another (a graph copied for a specialisation
    // holds its constants elsewhere, and makes its runs again).
    let at = match indices.data() {
        Data::I64(v) => v.as_ptr() as usize,
        Data::F32(v) => v.as_ptr() as usize,
    };
    let hit = cell.lock().ok().and_then(|c| {
        c.as_ref()
            .filter(|(shape, ptr, upd, _)| shape == data.shape() && *ptr == at && upd == updates.shape())
            .map(|(.., r)| r.clone())
    });
    let runs = match hit {
        Some(r) => r,
        None => {
            let r = Arc::new(scatter_runs(&data, indices, updates)?);
            if let Ok(mut c) = cell.lock() {
                *c = Some((data.shape().to_vec(), at, updates.shape().to_vec(), r.clone()));
            }
            r
        }
    };
    apply_runs(data, updates, &runs, reduction)
}

pub fn scatter_nd(data: Tensor, indices: &Tensor, updates: &Tensor, reduction: Reduction) -> Result<Tensor> {
    let runs = scatter_runs(&data, indices, updates)?;
    apply_runs(data, updates, &runs, reduction)
}

/// The checked copies of a ScatterND, consecutive slices that land next to each other merged.
fn scatter_runs(data: &Tensor, indices: &Tensor, updates: &Tensor) -> Result<Vec<Run>> {
    let (ds, is) = (data.shape(), indices.shape());
    let Some((&k, batch)) = is.split_last() else {
        return shape_err!("ScatterND indices must have rank >= 1, got a scalar");
    };
    if ds.is_empty() {
        return shape_err!("ScatterND data must have rank >= 1, got a scalar");
    }
    if k > ds.len() {
        return shape_err!("ScatterND indices' last dimension {k} exceeds the data rank {}", ds.len());
    }
    let want: Vec<usize> = batch.iter().chain(&ds[k..]).copied().collect();
    if updates.shape() != want.as_slice() {
        return shape_err!("ScatterND updates have shape {:?}, expected {want:?}", updates.shape());
    }
    let idx = indices.as_i64().map_err(|_| Error::Shape("ScatterND indices must be an integer tensor".into()))?;
    let strides = Tensor::strides(ds);
    let slice = numel(&ds[k..])?;
    let n = numel(batch)?;
    // Offsets into `data` of each update slice, all checked before anything is written.
    let mut runs: Vec<Run> = Vec::new();
    for (b, at) in idx.chunks_exact(k.max(1)).take(n).enumerate() {
        let mut off = 0usize;
        for (ax, &i) in at.iter().take(k).enumerate() {
            off += resolve(i, ds[ax], "ScatterND")? * strides[ax];
        }
        match runs.last_mut() {
            Some(r) if r.dst + r.len == off && r.src + r.len == b * slice => r.len += slice,
            _ => runs.push(Run { dst: off, src: b * slice, len: slice }),
        }
    }
    if k == 0 {
        // Empty index tuples: every update is the whole data.
        runs = (0..n).map(|b| Run { dst: 0, src: b * slice, len: slice }).collect();
    }
    Ok(runs)
}

/// Applies `runs` in `data`'s buffer, which becomes the output's.
fn apply_runs(data: Tensor, updates: &Tensor, runs: &[Run], reduction: Reduction) -> Result<Tensor> {
    let dtype = data.dtype();
    let (ds, data) = data.into_parts();
    macro_rules! scatter {
        ($out:expr, $upd:expr, $f:expr) => {{
            let (mut out, upd) = ($out, $upd);
            let f = $f;
            for r in runs {
                let (Some(dst), Some(src)) = (out.get_mut(r.dst..r.dst + r.len), upd.get(r.src..r.src + r.len)) else {
                    return shape_err!("ScatterND: an update runs outside the data");
                };
                for (o, &u) in dst.iter_mut().zip(src) {
                    *o = f(*o, u);
                }
            }
            out
        }};
    }
    let out = match (data, updates.data()) {
        (Data::F32(v), Data::F32(u)) => Data::F32(match reduction {
            Reduction::None => scatter!(v, u, |_: f32, u: f32| u),
            Reduction::Add => scatter!(v, u, |o: f32, u: f32| o + u),
            Reduction::Mul => scatter!(v, u, |o: f32, u: f32| o * u),
            Reduction::Max => scatter!(v, u, nan_max),
            Reduction::Min => scatter!(v, u, nan_min),
        }),
        (Data::I64(v), Data::I64(u)) => Data::I64(match reduction {
            Reduction::None => scatter!(v, u, |_: i64, u: i64| u),
            Reduction::Add => scatter!(v, u, i64::wrapping_add),
            Reduction::Mul => scatter!(v, u, i64::wrapping_mul),
            Reduction::Max => scatter!(v, u, i64::max),
            Reduction::Min => scatter!(v, u, i64::min),
        }),
        _ => {
            return shape_err!(
                "ScatterND data and updates must share one type, got {} and {}",
                dtype.name(),
                updates.dtype().name()
            )
        }
    };
    Tensor::new(ds, out)
}

pub fn gather_elements(data: &Tensor, indices: &Tensor, axis: i64) -> Result<Tensor> {
    let (ds, is) = (data.shape(), indices.shape());
    if ds.is_empty() {
        return shape_err!("GatherElements data must have rank >= 1, got a scalar");
    }
    if is.len() != ds.len() {
        return shape_err!("GatherElements indices have rank {}, data rank {}", is.len(), ds.len());
    }
    let ax = norm_axis(axis, ds.len())?;
    if let Some(i) = (0..ds.len()).find(|&i| i != ax && is[i] > ds[i]) {
        return shape_err!("GatherElements indices shape {is:?} exceeds data shape {ds:?} along axis {i}");
    }
    let idx = indices.as_i64().map_err(|_| Error::Shape("GatherElements indices must be an integer tensor".into()))?;
    let strides = Tensor::strides(ds);
    let mut pos = vec![0usize; is.len()];
    let mut src = Vec::with_capacity(idx.len());
    for &i in idx {
        let mut off = 0usize;
        for (a, &p) in pos.iter().enumerate() {
            let p = if a == ax { resolve(i, ds[ax], "GatherElements")? } else { p };
            off += p * strides[a];
        }
        src.push(off);
        for a in (0..is.len()).rev() {
            pos[a] += 1;
            if pos[a] < is[a] {
                break;
            }
            pos[a] = 0;
        }
    }
    let out = match data.data() {
        Data::F32(v) => Data::F32(src.iter().map(|&o| v[o]).collect()),
        Data::I64(v) => Data::I64(src.iter().map(|&o| v[o]).collect()),
    };
    Tensor::new(is.to_vec(), out)
}

pub fn tile(x: &Tensor, repeats: &[i64]) -> Result<Tensor> {
    let xs = x.shape();
    if repeats.len() != xs.len() {
        return shape_err!("Tile repeats {repeats:?} must have one entry per axis of {xs:?}");
    }
    let mut out_shape = Vec::with_capacity(xs.len());
    for (&d, &r) in xs.iter().zip(repeats) {
        let r =
            usize::try_from(r).map_err(|_| Error::Shape(format!("Tile repeats {repeats:?} has a negative entry")))?;
        match d.checked_mul(r) {
            Some(n) => out_shape.push(n),
            None => return shape_err!("Tile of {xs:?} by {repeats:?} is too large"),
        }
    }
    numel(&out_shape)?;
    let strides = Tensor::strides(xs);
    crate::ops::shape::remap(x, out_shape, |idx| {
        idx.iter().zip(xs).zip(&strides).map(|((&i, &d), &s)| (i % d) * s).sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }
    fn i(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_i64(shape.to_vec(), v.to_vec()).unwrap()
    }
    fn fs(v: f32) -> Tensor {
        f(&[], &[v])
    }
    fn is(v: i64) -> Tensor {
        i(&[], &[v])
    }

    #[test]
    fn range_lengths_follow_the_ceiling_rule() {
        assert_eq!(range(&is(10), &is(4), &is(-3)).unwrap().as_i64().unwrap(), &[10, 7]);
        assert_eq!(range(&is(0), &is(7), &is(3)).unwrap().as_i64().unwrap(), &[0, 3, 6]);
        assert_eq!(range(&is(0), &is(6), &is(3)).unwrap().as_i64().unwrap(), &[0, 3]);
        assert_eq!(range(&is(5), &is(1), &is(2)).unwrap().shape(), &[0]);
        assert_eq!(range(&fs(1.0), &fs(2.0), &fs(0.25)).unwrap().as_f32().unwrap(), &[1.0, 1.25, 1.5, 1.75]);
        assert_eq!(range(&fs(3.0), &fs(1.0), &fs(1.0)).unwrap().shape(), &[0]);
        // Extremes do not overflow: the span is computed in i128.
        let r = range(&is(i64::MAX - 1), &is(i64::MAX), &is(i64::MAX)).unwrap();
        assert_eq!(r.as_i64().unwrap(), &[i64::MAX - 1]);
    }

    #[test]
    fn range_refuses_zero_delta_absurd_lengths_and_bad_inputs() {
        assert!(range(&is(0), &is(5), &is(0)).is_err());
        assert!(range(&fs(0.0), &fs(5.0), &fs(0.0)).is_err());
        assert!(range(&is(i64::MIN), &is(i64::MAX), &is(1)).is_err());
        assert!(range(&fs(0.0), &fs(f32::INFINITY), &fs(1.0)).is_err());
        assert!(range(&fs(0.0), &fs(f32::NAN), &fs(1.0)).is_err());
        assert!(range(&fs(0.0), &fs(1e30), &fs(1e-30)).is_err());
        assert!(range(&is(0), &fs(5.0), &is(1)).is_err());
        assert!(range(&i(&[2], &[0, 1]), &is(5), &is(1)).is_err());
        assert!(range(&i(&[0], &[]), &is(5), &is(1)).is_err());
    }

    #[test]
    fn scatter_nd_through_the_run_cache_matches_the_direct_kernel() {
        // Element-wise indices of a [2, 3, 4] data tensor, rows 1..3 of each plane (merged runs),
        // through the op as the graph calls it: first call, a hit, another data shape, bad updates.
        let mut at = Vec::new();
        for a in 0..2 {
            for b in 1..3 {
                for c in 0..4 {
                    at.extend([a, b, c]);
                }
            }
        }
        let idx = i(&[2, 2, 4, 3], &at);
        let op = Array::ScatterND { reduction: Reduction::Add, runs: RunCache(Some(Arc::default())) };
        let upd = f(&[2, 2, 4], &(0..16).map(|v| v as f32).collect::<Vec<_>>());
        for round in 0..3 {
            let data = f(&[2, 3, 4], &(0..24).map(|v| (v * round) as f32).collect::<Vec<_>>());
            let got = op.run(&[Some(&data), Some(&idx), Some(&upd)]).unwrap().remove(0);
            let want = scatter_nd(data.clone(), &idx, &upd, Reduction::Add).unwrap();
            assert_eq!(got.as_f32().unwrap(), want.as_f32().unwrap(), "round {round}");
        }
        let bigger = f(&[2, 4, 4], &[0.0; 32]);
        let got = op.run(&[Some(&bigger), Some(&idx), Some(&upd)]).unwrap().remove(0);
        assert_eq!(
            got.as_f32().unwrap(),
            scatter_nd(bigger.clone(), &idx, &upd, Reduction::Add).unwrap().as_f32().unwrap()
        );
        assert!(op.run(&[Some(&bigger), Some(&idx), Some(&f(&[16], &[0.0; 16]))]).is_err());
        let small = f(&[2, 2, 4], &[0.0; 16]);
        assert!(op.run(&[Some(&small), Some(&idx), Some(&upd)]).is_err());
    }

    #[test]
    fn scatter_nd_reductions_and_negative_indices() {
        let data = f(&[4], &[1., 2., 3., 4.]);
        let idx = i(&[3, 1], &[0, -1, 0]);
        let upd = f(&[3], &[10., 20., 30.]);
        let run = |r| scatter_nd(data.clone(), &idx, &upd, r).unwrap().into_f32().unwrap();
        assert_eq!(run(Reduction::None), &[30., 2., 3., 20.]);
        assert_eq!(run(Reduction::Add), &[41., 2., 3., 24.]);
        assert_eq!(run(Reduction::Mul), &[300., 2., 3., 80.]);
        assert_eq!(run(Reduction::Max), &[30., 2., 3., 20.]);
        assert_eq!(run(Reduction::Min), &[1., 2., 3., 4.]);
        let nan = scatter_nd(data.clone(), &i(&[1, 1], &[2]), &f(&[1], &[f32::NAN]), Reduction::Max).unwrap();
        assert!(nan.as_f32().unwrap()[2].is_nan());
        // Whole-row updates (k < rank) on a 2-D tensor.
        let m = i(&[2, 2], &[1, 2, 3, 4]);
        let y = scatter_nd(m.clone(), &i(&[1, 1], &[1]), &i(&[1, 2], &[7, 8]), Reduction::None).unwrap();
        assert_eq!(y.as_i64().unwrap(), &[1, 2, 7, 8]);
    }

    #[test]
    fn scatter_nd_refuses_bad_indices_and_shapes() {
        let data = f(&[4], &[1., 2., 3., 4.]);
        let upd = f(&[1], &[0.]);
        assert!(scatter_nd(data.clone(), &i(&[1, 1], &[4]), &upd, Reduction::None).is_err());
        assert!(scatter_nd(data.clone(), &i(&[1, 1], &[-5]), &upd, Reduction::None).is_err());
        assert!(scatter_nd(data.clone(), &i(&[1, 1], &[i64::MIN]), &upd, Reduction::None).is_err());
        assert!(scatter_nd(data.clone(), &i(&[1, 2], &[0, 0]), &upd, Reduction::None).is_err());
        assert!(scatter_nd(data.clone(), &i(&[1, 1], &[0]), &f(&[2], &[0., 0.]), Reduction::None).is_err());
        assert!(scatter_nd(data.clone(), &is(0), &upd, Reduction::None).is_err());
        assert!(scatter_nd(fs(1.0), &i(&[1, 0], &[]), &upd, Reduction::None).is_err());
        assert!(scatter_nd(data.clone(), &i(&[1, 1], &[0]), &i(&[1], &[0]), Reduction::None).is_err());
        assert!(scatter_nd(data.clone(), &f(&[1, 1], &[0.]), &upd, Reduction::None).is_err());
    }

    #[test]
    fn gather_elements_along_axes() {
        let d = f(&[2, 2], &[1., 2., 3., 4.]);
        let y = gather_elements(&d, &i(&[2, 2], &[0, 0, 1, 0]), 1).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[1., 1., 4., 3.]);
        let y = gather_elements(&d, &i(&[1, 2], &[-1, 0]), 0).unwrap();
        assert_eq!((y.shape(), y.as_f32().unwrap()), (&[1usize, 2][..], &[3., 2.][..]));
        assert!(gather_elements(&d, &i(&[1, 2], &[2, 0]), 0).is_err());
        assert!(gather_elements(&d, &i(&[1, 3], &[0, 0, 0]), 0).is_err());
        assert!(gather_elements(&d, &i(&[2], &[0, 0]), 0).is_err());
        assert!(gather_elements(&d, &i(&[2, 2], &[0; 4]), 2).is_err());
        assert!(gather_elements(&fs(1.0), &is(0), 0).is_err());
        assert_eq!(gather_elements(&d, &i(&[0, 2], &[]), 0).unwrap().shape(), &[0, 2]);
    }

    #[test]
    fn tile_repeats_and_refusals() {
        let x = i(&[2, 2], &[1, 2, 3, 4]);
        let y = tile(&x, &[1, 2]).unwrap();
        assert_eq!((y.shape(), y.as_i64().unwrap()), (&[2usize, 4][..], &[1, 2, 1, 2, 3, 4, 3, 4][..]));
        let y = tile(&x, &[2, 1]).unwrap();
        assert_eq!(y.as_i64().unwrap(), &[1, 2, 3, 4, 1, 2, 3, 4]);
        assert_eq!(tile(&x, &[0, 3]).unwrap().shape(), &[0, 6]);
        assert!(tile(&x, &[1]).is_err());
        assert!(tile(&x, &[-1, 1]).is_err());
        assert!(tile(&x, &[i64::MAX, i64::MAX]).is_err());
        assert!(tile(&x, &[1 << 20, 1 << 20]).is_err());
        let e = i(&[0, 2], &[]);
        assert_eq!(tile(&e, &[i64::MAX, 1]).unwrap().shape(), &[0, 2]);
        assert_eq!(tile(&is(7), &[]).unwrap().as_i64().unwrap(), &[7]);
    }

    #[test]
    fn legacy_tile_repeats_one_axis() {
        let x = i(&[1, 2], &[1, 2]);
        let op = Array::Tile { legacy: true };
        let y = op.run(&[Some(&x), Some(&is(3)), Some(&is(-2))]).unwrap();
        assert_eq!((y[0].shape(), y[0].as_i64().unwrap()), (&[3usize, 2][..], &[1, 2, 1, 2, 1, 2][..]));
        assert!(op.run(&[Some(&x), Some(&is(3)), Some(&is(2))]).is_err());
        assert!(op.run(&[Some(&x), Some(&fs(3.0)), Some(&is(0))]).is_err());
        let s = Array::Size.run(&[Some(&x)]).unwrap();
        assert_eq!((s[0].shape(), s[0].as_i64().unwrap()), (&[][..], &[2][..]));
    }
}
