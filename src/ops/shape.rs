//! Shape and indexing operators: transposes, reshapes, slices, concatenation, gathers, casts.

use super::elementwise::{broadcast_shape, broadcast_strides};
use crate::error::{shape_err, Error, Result};
use crate::tensor::{norm_axis, numel, DType, Data, Tensor};

/// source element (generic gather used by Transpose/Slice/Gather/Concat).
pub(crate) fn remap(x: &Tensor, out_shape: Vec<usize>, mut src: impl FnMut(&[usize]) -> usize) -> Result<Tensor> {
    let n = numel(&out_shape)?;
    let mut idx = vec![0usize; out_shape.len()];
    let mut order = Vec::with_capacity(n);
    for _ in 0..n {
        order.push(src(&idx));
        for ax in (0..out_shape.len()).rev() {
            idx[ax] += 1;
            if idx[ax] < out_shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    let data = match x.data() {
        Data::F32(v) => Data::F32(order.iter().map(|&i| v[i]).collect()),
        Data::I64(v) => Data::I64(order.iter().map(|&i| v[i]).collect()),
    };
    Tensor::new(out_shape, data)
}

pub fn transpose(x: &Tensor, perm: Option<&[usize]>) -> Result<Tensor> {
    let r = x.rank();
    let perm: Vec<usize> = match perm {
        Some(p) => p.to_vec(),
        None => (0..r).rev().collect(),
    };
    let (out_shape, keeps_order) = permuted(x.shape(), &perm)?;
    if keeps_order {
        return x.clone().reshaped(out_shape);
    }
    let strides = Tensor::strides(x.shape());
    remap(x, out_shape, |idx| idx.iter().zip(&perm).map(|(&i, &p)| i * strides[p]).sum())
}

/// [`transpose`] of a tensor the caller gives up: when only axes of size 1 move (a session step's
/// batch and time axes, a stream's batch of one), its data is reused as it is, not copied.
pub fn transpose_owned(x: Tensor, perm: &[usize]) -> Result<Tensor> {
    match permuted(x.shape(), perm)? {
        (out_shape, true) => x.reshaped(out_shape),
        _ => transpose(&x, Some(perm)),
    }
}

/// The shape `perm` gives `shape`, and whether it keeps the memory order (only axes of size 1 move).
fn permuted(shape: &[usize], perm: &[usize]) -> Result<(Vec<usize>, bool)> {
    let r = shape.len();
    let mut seen = vec![false; r];
    if perm.len() != r || perm.iter().any(|&p| p >= r || std::mem::replace(&mut seen[p], true)) {
        return shape_err!("Transpose perm {perm:?} is not a permutation of rank {r}");
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut moved = perm.iter().filter(|&&p| shape[p] > 1);
    let mut last = moved.next();
    let keeps_order = moved.all(|p| {
        let ordered = last.is_some_and(|l| l < p);
        last = Some(p);
        ordered
    });
    Ok((out_shape, keeps_order))
}

pub fn reshape(x: Tensor, shape: &Tensor, allow_zero: bool) -> Result<Tensor> {
    let spec = shape.as_i64()?;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => match x.shape().get(i) {
                Some(&s) => out.push(s),
                None => return shape_err!("Reshape: 0 at position {i} beyond the input's rank"),
            },
            d if d >= 0 => out.push(d as usize),
            _ => return shape_err!("Reshape: invalid target shape {spec:?}"),
        }
    }
    if let Some(i) = infer {
        let known = numel(&out)?;
        if known == 0 || x.len() % known != 0 {
            return shape_err!("Reshape: cannot infer -1 in {spec:?} for {} elements", x.len());
        }
        out[i] = x.len() / known;
    }
    if numel(&out)? != x.len() {
        return shape_err!("Reshape: {:?} into {out:?} changes the element count", x.shape());
    }
    x.reshaped(out)
}

pub fn flatten(x: Tensor, axis: i64) -> Result<Tensor> {
    let r = x.rank() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a > r {
        return shape_err!("Flatten axis {axis} out of range for rank {r}");
    }
    let a = a as usize;
    let outer = numel(&x.shape()[..a])?;
    let inner = numel(&x.shape()[a..])?;
    x.reshaped(vec![outer, inner])
}

pub fn squeeze(x: Tensor, axes: Option<&[i64]>) -> Result<Tensor> {
    let shape = x.shape();
    let drop: Vec<usize> = match axes {
        Some(axes) => {
            let mut v = Vec::new();
            for &a in axes {
                let a = norm_axis(a, shape.len())?;
                if shape[a] != 1 {
                    return shape_err!("Squeeze axis {a} has size {}, not 1", shape[a]);
                }
                v.push(a);
            }
            v
        }
        None => (0..shape.len()).filter(|&i| shape[i] == 1).collect(),
    };
    let out = (0..shape.len()).filter(|i| !drop.contains(i)).map(|i| shape[i]).collect();
    x.reshaped(out)
}

pub fn unsqueeze(x: Tensor, axes: &[i64]) -> Result<Tensor> {
    let r = x.rank() + axes.len();
    let mut pos = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = norm_axis(a, r)?;
        if pos.contains(&a) {
            return shape_err!("Unsqueeze axes {axes:?} repeat an axis");
        }
        pos.push(a);
    }
    let mut src = x.shape().iter();
    let out = (0..r).map(|i| if pos.contains(&i) { 1 } else { src.next().copied().unwrap_or(1) }).collect();
    x.reshaped(out)
}

pub fn slice(x: &Tensor, starts: &[i64], ends: &[i64], axes: Option<&[i64]>, steps: Option<&[i64]>) -> Result<Tensor> {
    let r = x.rank();
    let n = starts.len();
    if ends.len() != n || axes.is_some_and(|a| a.len() != n) || steps.is_some_and(|s| s.len() != n) {
        return shape_err!("Slice: starts, ends, axes and steps differ in length");
    }
    let mut begin: Vec<i128> = vec![0; r];
    let mut step: Vec<i128> = vec![1; r];
    let mut out_shape = x.shape().to_vec();
    for i in 0..n {
        let ax = match axes {
            Some(a) => norm_axis(a[i], r)?,
            None => norm_axis(i as i64, r)?,
        };
        let dim = x.shape()[ax] as i64;
        let st = steps.map_or(1, |s| s[i]);
        if st == 0 {
            return shape_err!("Slice step 0");
        }
        // i128 keeps every intermediate exact, whatever the (possibly hostile) i64 inputs.
        let (dim, st) = (dim as i128, st as i128);
        let fix = |v: i64| if v < 0 { v as i128 + dim } else { v as i128 };
        let (s, e) = (fix(starts[i]), fix(ends[i]));
        let (s, e) =
            if st > 0 { (s.clamp(0, dim), e.clamp(0, dim)) } else { (s.clamp(0, dim - 1), e.clamp(-1, dim - 1)) };
        let len = if st > 0 && e > s {
            (e - s - 1) / st + 1
        } else if st < 0 && s > e {
            (s - e - 1) / -st + 1
        } else {
            0
        };
        begin[ax] = s;
        step[ax] = st;
        out_shape[ax] = len as usize;
    }
    let strides = Tensor::strides(x.shape());
    let total = numel(&out_shape)?;
    if r == 0 || total == 0 {
        return remap(x, out_shape, |idx| {
            idx.iter().enumerate().map(|(ax, &i)| ((begin[ax] + i as i128 * step[ax]) as usize) * strides[ax]).sum()
        });
    }
    // Row by row (every axis but the last): the row's first source element, then the row's
    // elements `step` apart (a plain copy for step 1).
    // Trailing axes taken whole (from 0, step 1) merge into the rows: a row is then the run of
    // the innermost axis that is not whole, times the block of whole axes below it (one copy of
    // 516 floats instead of 129 of 4 for Silero's real/imaginary split of its STFT).
    let whole = |ax: usize| begin[ax] == 0 && step[ax] == 1 && out_shape[ax] == x.shape()[ax];
    let mut k = r - 1;
    while k > 0 && whole(k) {
        k -= 1;
    }
    let (last, inner, st) = if k < r - 1 && step[k] == 1 {
        (k, out_shape[k] * x.shape()[k + 1..].iter().product::<usize>(), 1)
    } else {
        (r - 1, out_shape[r - 1], step[r - 1])
    };
    let mut idx = vec![0usize; last];
    let mut firsts = Vec::with_capacity(total / inner);
    for _ in 0..total / inner {
        let at: i128 =
            (0..r).map(|ax| (begin[ax] + idx.get(ax).map_or(0, |&i| i as i128) * step[ax]) * strides[ax] as i128).sum();
        firsts.push(at);
        for ax in (0..last).rev() {
            idx[ax] += 1;
            if idx[ax] < out_shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    macro_rules! rows {
        ($v:expr) => {{
            let v = $v;
            let mut out = Vec::with_capacity(total);
            for &at in &firsts {
                let end = at + (inner as i128 - 1) * st;
                let (lo, hi) = (at.min(end), at.max(end));
                let run = (lo >= 0 && (hi as usize) < v.len()).then(|| &v[lo as usize..=hi as usize]);
                let Some(run) = run else { return shape_err!("Slice: a row runs outside the input") };
                match st {
                    1 => out.extend_from_slice(run),
                    s if s > 0 => out.extend(run.iter().step_by(s as usize)),
                    s => out.extend(run.iter().rev().step_by((-s) as usize)),
                }
            }
            out
        }};
    }
    let data = match x.data() {
        Data::F32(v) => Data::F32(rows!(v)),
        Data::I64(v) => Data::I64(rows!(v)),
    };
    Tensor::new(out_shape, data)
}

pub fn concat(parts: &[&Tensor], axis: i64) -> Result<Tensor> {
    let first = parts.first().ok_or_else(|| Error::InvalidModel("Concat with no inputs".into()))?;
    let r = first.rank();
    let ax = norm_axis(axis, r)?;
    let mut out_shape = first.shape().to_vec();
    out_shape[ax] = 0;
    for p in parts {
        let ok =
            p.rank() == r && p.dtype() == first.dtype() && (0..r).all(|i| i == ax || p.shape()[i] == first.shape()[i]);
        if !ok {
            return shape_err!("Concat: {:?} does not match {:?} along axis {ax}", p.shape(), first.shape());
        }
        out_shape[ax] += p.shape()[ax];
    }
    let outer = numel(&out_shape[..ax])?;
    let inner = numel(&out_shape[ax + 1..])?;
    macro_rules! join {
        ($variant:ident) => {{
            let mut v = Vec::with_capacity(numel(&out_shape)?);
            for o in 0..outer {
                for p in parts {
                    let chunk = p.shape()[ax] * inner;
                    if let Data::$variant(d) = p.data() {
                        v.extend_from_slice(&d[o * chunk..(o + 1) * chunk]);
                    }
                }
            }
            Data::$variant(v)
        }};
    }
    let data = match first.dtype() {
        DType::F32 => join!(F32),
        DType::I64 => join!(I64),
    };
    Tensor::new(out_shape, data)
}

pub fn split(x: &Tensor, axis: i64, sizes: Option<&[i64]>, num_outputs: usize) -> Result<Vec<Tensor>> {
    let ax = norm_axis(axis, x.rank())?;
    let dim = x.shape()[ax];
    let sizes: Vec<usize> = match sizes {
        Some(s) => {
            if s.iter().any(|&v| v < 0) || s.iter().try_fold(0i64, |a, &v| a.checked_add(v)) != Some(dim as i64) {
                return shape_err!("Split sizes {s:?} do not add up to {dim}");
            }
            s.iter().map(|&v| v as usize).collect()
        }
        None => {
            if num_outputs == 0 {
                return shape_err!("Split into zero outputs");
            }
            let chunk = dim.div_ceil(num_outputs);
            (0..num_outputs).map(|i| chunk.min(dim.saturating_sub(i * chunk))).collect()
        }
    };
    let mut out = Vec::with_capacity(sizes.len());
    let mut start = 0i64;
    for s in sizes {
        let end = start + s as i64;
        out.push(slice(x, &[start], &[end], Some(&[ax as i64]), None)?);
        start = end;
    }
    Ok(out)
}

pub fn gather(data: &Tensor, indices: &Tensor, axis: i64) -> Result<Tensor> {
    let ax = norm_axis(axis, data.rank())?;
    let dim = data.shape()[ax] as i64;
    let idx: Vec<usize> = indices
        .to_i64_vec()?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + dim } else { i };
            if j < 0 || j >= dim {
                shape_err!("Gather index {i} out of range for axis of size {dim}")
            } else {
                Ok(j as usize)
            }
        })
        .collect::<Result<_>>()?;
    let outer = numel(&data.shape()[..ax])?;
    let inner = numel(&data.shape()[ax + 1..])?;
    let mut out_shape = data.shape()[..ax].to_vec();
    out_shape.extend_from_slice(indices.shape());
    out_shape.extend_from_slice(&data.shape()[ax + 1..]);
    macro_rules! take {
        ($v:expr, $variant:ident) => {{
            let mut o = Vec::with_capacity(outer * idx.len() * inner);
            for a in 0..outer {
                for &j in &idx {
                    let base = (a * dim as usize + j) * inner;
                    o.extend_from_slice(&$v[base..base + inner]);
                }
            }
            Data::$variant(o)
        }};
    }
    let out = match data.data() {
        Data::F32(v) => take!(v, F32),
        Data::I64(v) => take!(v, I64),
    };
    Tensor::new(out_shape, out)
}

pub fn expand(x: &Tensor, shape: &Tensor) -> Result<Tensor> {
    let dims: Vec<usize> = shape
        .as_i64()?
        .iter()
        .map(|&d| if d < 0 { shape_err!("Expand: negative dim {d}") } else { Ok(d as usize) })
        .collect::<Result<_>>()?;
    let out = broadcast_shape(x.shape(), &dims)?;
    let strides = broadcast_strides(x.shape(), &out);
    remap(x, out, |idx| idx.iter().zip(&strides).map(|(&i, &s)| i * s).sum())
}

pub fn shape_of(x: &Tensor, start: i64, end: Option<i64>) -> Result<Tensor> {
    let r = x.rank() as i64;
    let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clampi(start), clampi(end.unwrap_or(r)));
    let dims: Vec<i64> = if s < e { x.shape()[s..e].iter().map(|&d| d as i64).collect() } else { vec![] };
    Tensor::from_i64(vec![dims.len()], dims)
}

pub fn constant_of_shape(shape: &Tensor, value: &Tensor) -> Result<Tensor> {
    let dims: Vec<usize> = shape
        .as_i64()?
        .iter()
        .map(|&d| if d < 0 { shape_err!("ConstantOfShape: negative dim {d}") } else { Ok(d as usize) })
        .collect::<Result<_>>()?;
    let n = numel(&dims)?;
    match value.data() {
        Data::F32(v) => Tensor::from_f32(dims, vec![v.first().copied().unwrap_or(0.0); n]),
        Data::I64(v) => Tensor::from_i64(dims, vec![v.first().copied().unwrap_or(0); n]),
    }
}

pub fn cast(x: &Tensor, to: DType) -> Result<Tensor> {
    let data = match (x.data(), to) {
        (Data::F32(v), DType::F32) => Data::F32(v.clone()),
        (Data::I64(v), DType::I64) => Data::I64(v.clone()),
        (Data::F32(v), DType::I64) => Data::I64(v.iter().map(|&a| a as i64).collect()),
        (Data::I64(v), DType::F32) => Data::F32(v.iter().map(|&a| a as f32).collect()),
    };
    Tensor::new(x.shape().to_vec(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn transpose_owned_reuses_the_data_only_when_the_order_is_kept() {
        let v: Vec<f32> = (0..24).map(|i| i as f32).collect();
        for (shape, perm, kept) in [
            (vec![1, 4, 6], vec![1, 0, 2], true),
            (vec![4, 1, 1, 6], vec![2, 0, 1, 3], true),
            (vec![1, 24, 1], vec![2, 1, 0], true),
            (vec![4, 6], vec![1, 0], false),
            (vec![2, 1, 12], vec![2, 1, 0], false),
        ] {
            let x = t(&shape, &v);
            let want = transpose(&x, Some(&perm)).unwrap();
            let at = x.as_f32().unwrap().as_ptr();
            let got = transpose_owned(x, &perm).unwrap();
            assert_eq!(
                (got.shape(), got.as_f32().unwrap()),
                (want.shape(), want.as_f32().unwrap()),
                "{shape:?} {perm:?}"
            );
            assert_eq!(got.as_f32().unwrap().as_ptr() == at, kept, "{shape:?} {perm:?}");
        }
        assert!(transpose_owned(t(&[2, 3], &v[..6]), &[0, 0]).is_err());
    }

    #[test]
    fn slice_negative_steps_and_clamping() {
        let x = Tensor::from_i64(vec![5], vec![0, 1, 2, 3, 4]).unwrap();
        let s = slice(&x, &[-1], &[i64::MIN], None, Some(&[-2])).unwrap();
        assert_eq!(s.as_i64().unwrap(), &[4, 2, 0]);
        let s = slice(&x, &[1], &[i64::MAX], Some(&[0]), None).unwrap();
        assert_eq!(s.as_i64().unwrap(), &[1, 2, 3, 4]);
    }

    #[test]
    fn slices_match_the_element_by_element_definition() {
        // Against the index formula, on shapes where whole trailing axes merge into the rows and
        // where they do not (a step, a partial last axis, every axis whole).
        let v: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32).collect();
        let x = t(&[2, 3, 4], &v);
        for (starts, ends, axes, steps) in [
            (vec![1], vec![3], vec![1], vec![1]),
            (vec![0, 1], vec![2, 2], vec![0, 1], vec![1, 1]),
            (vec![1], vec![2], vec![0], vec![1]),
            (vec![0], vec![3], vec![1], vec![2]),
            (vec![1, 1], vec![3, 4], vec![1, 2], vec![1, 2]),
            (vec![0], vec![9], vec![0], vec![1]),
            (vec![2], vec![0], vec![1], vec![-1]),
        ] {
            let got = slice(&x, &starts, &ends, Some(&axes), Some(&steps)).unwrap();
            let (mut b, mut st) = ([0i64; 3], [1i64; 3]);
            for i in 0..axes.len() {
                let ax = axes[i] as usize;
                b[ax] = starts[i].clamp(0, x.shape()[ax] as i64 - 1);
                st[ax] = steps[i];
            }
            let sh = got.shape().to_vec();
            let mut want = Vec::new();
            for i in 0..sh[0] as i64 {
                for j in 0..sh[1] as i64 {
                    for k in 0..sh[2] as i64 {
                        let (a, c, d) = (b[0] + i * st[0], b[1] + j * st[1], b[2] + k * st[2]);
                        want.push(v[(a * 12 + c * 4 + d) as usize]);
                    }
                }
            }
            assert_eq!(got.as_f32().unwrap(), &want[..], "{starts:?} {ends:?} {axes:?} {steps:?}");
        }
    }

    #[test]
    fn transposes_that_move_only_unit_axes_keep_the_data() {
        let x = t(&[1, 3, 1, 2], &[1., 2., 3., 4., 5., 6.]);
        let y = transpose(&x, Some(&[2, 1, 0, 3])).unwrap();
        assert_eq!(y.shape(), &[1, 3, 1, 2]);
        assert_eq!(y.as_f32().unwrap(), x.as_f32().unwrap());
        let z = transpose(&x, Some(&[0, 3, 2, 1])).unwrap();
        assert_eq!(z.shape(), &[1, 2, 1, 3]);
        assert_eq!(z.as_f32().unwrap(), &[1., 3., 5., 2., 4., 6.]);
    }

    #[test]
    fn transpose_gather_concat() {
        let x = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        assert_eq!(transpose(&x, None).unwrap().as_f32().unwrap(), &[1., 4., 2., 5., 3., 6.]);
        let idx = Tensor::from_i64(vec![1, 2], vec![1, -2]).unwrap();
        let g = gather(&x, &idx, 0).unwrap();
        assert_eq!(g.shape(), &[1, 2, 3]);
        assert_eq!(g.as_f32().unwrap(), &[4., 5., 6., 1., 2., 3.]);
        assert!(gather(&x, &Tensor::from_i64(vec![1], vec![2]).unwrap(), 0).is_err());
        let c = concat(&[&x, &x], 1).unwrap();
        assert_eq!(c.shape(), &[2, 6]);
    }
}
