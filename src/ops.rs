//! The non-recurrent ONNX operators that exporters put around recurrent nodes (embedding lookups,
//! linear heads, shape plumbing). Straightforward implementations: these are not the hot path.

use crate::error::{shape_err, Error, Result};
use crate::graph::Op;
use crate::tensor::{norm_axis, numel, DType, Data, Tensor};

pub fn unary(op: &Op, x: &Tensor) -> Result<Tensor> {
    let f: fn(f32) -> f32 = match op {
        Op::Relu => |v| if v.is_nan() { v } else { v.max(0.0) },
        Op::Sigmoid => crate::cell::activation::sigmoid,
        Op::Tanh => f32::tanh,
        _ => return Err(Error::InvalidModel(format!("{} is not a unary operator", op.name()))),
    };
    match x.data() {
        Data::F32(v) => Tensor::from_f32(x.shape().to_vec(), v.iter().map(|&a| f(a)).collect()),
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
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = Tensor::strides(shape);
    let off = out.len() - shape.len();
    (0..out.len()).map(|i| if i < off || shape[i - off] == 1 { 0 } else { own[i - off] }).collect()
}

fn broadcast_map<T: Copy, U>(
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

/// `out[m, n] += a[m, k] * b[k, n]` for row-major blocks.
fn matmul_block(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        for p in 0..k {
            let av = a[i * k + p];
            let brow = &b[p * n..(p + 1) * n];
            for (o, &bv) in row.iter_mut().zip(brow) {
                *o += av * bv;
            }
        }
    }
}

pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (av, bv) = (a.as_f32()?, b.as_f32()?);
    if a.rank() == 0 || b.rank() == 0 {
        return shape_err!("MatMul operands must have rank >= 1, got {:?} and {:?}", a.shape(), b.shape());
    }
    let mut ashape = a.shape().to_vec();
    let mut bshape = b.shape().to_vec();
    let a_vec = ashape.len() == 1;
    let b_vec = bshape.len() == 1;
    if a_vec {
        ashape.insert(0, 1);
    }
    if b_vec {
        bshape.push(1);
    }
    let (m, k) = (ashape[ashape.len() - 2], ashape[ashape.len() - 1]);
    let (k2, n) = (bshape[bshape.len() - 2], bshape[bshape.len() - 1]);
    if k != k2 {
        return shape_err!("MatMul inner dimensions differ: {:?} x {:?}", a.shape(), b.shape());
    }
    let batch = broadcast_shape(&ashape[..ashape.len() - 2], &bshape[..bshape.len() - 2])?;
    let nb = numel(&batch)?;
    let total = numel(&[nb, m, n])?;
    let mut out = vec![0f32; total];
    let a_bstr = broadcast_strides(&ashape[..ashape.len() - 2], &batch);
    let b_bstr = broadcast_strides(&bshape[..bshape.len() - 2], &batch);
    let bstr = Tensor::strides(&batch);
    for bi in 0..nb {
        let (mut ao, mut bo) = (0usize, 0usize);
        for ax in 0..batch.len() {
            let idx = (bi / bstr[ax]) % batch[ax];
            ao += idx * a_bstr[ax];
            bo += idx * b_bstr[ax];
        }
        let ab = &av[ao * m * k..(ao + 1) * m * k];
        let bb = &bv[bo * k * n..(bo + 1) * k * n];
        matmul_block(ab, bb, &mut out[bi * m * n..(bi + 1) * m * n], m, k, n);
    }
    let mut shape = batch;
    if !a_vec {
        shape.push(m);
    }
    if !b_vec {
        shape.push(n);
    }
    Tensor::from_f32(shape, out)
}

fn transpose2(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut o = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            o[c * rows + r] = v[r * cols + c];
        }
    }
    o
}

pub fn gemm(
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
) -> Result<Tensor> {
    if a.rank() != 2 || b.rank() != 2 {
        return shape_err!("Gemm needs 2-D operands, got {:?} and {:?}", a.shape(), b.shape());
    }
    let (ar, ac) = (a.shape()[0], a.shape()[1]);
    let (br, bc) = (b.shape()[0], b.shape()[1]);
    let am = if trans_a { transpose2(a.as_f32()?, ar, ac) } else { a.as_f32()?.to_vec() };
    let bm = if trans_b { transpose2(b.as_f32()?, br, bc) } else { b.as_f32()?.to_vec() };
    let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
    let (k2, n) = if trans_b { (bc, br) } else { (br, bc) };
    if k != k2 {
        return shape_err!("Gemm inner dimensions differ: {:?} x {:?}", a.shape(), b.shape());
    }
    let mut out = vec![0f32; numel(&[m, n])?];
    matmul_block(&am, &bm, &mut out, m, k, n);
    if alpha != 1.0 {
        out.iter_mut().for_each(|v| *v *= alpha);
    }
    if let Some(c) = c {
        let cs = c.shape();
        if broadcast_shape(&[m, n], cs)? != [m, n] {
            return shape_err!("Gemm C of shape {cs:?} does not broadcast to [{m}, {n}]");
        }
        let (_, sum) = broadcast_map(&[m, n], &out, cs, c.as_f32()?, |o, cv| o + beta * cv)?;
        out = sum;
    }
    Tensor::from_f32(vec![m, n], out)
}

/// Copies `x` into a new tensor of shape `out_shape` where `src_index(out_flat_index)` gives the
/// source element (generic gather used by Transpose/Slice/Gather/Concat).
fn remap(x: &Tensor, out_shape: Vec<usize>, mut src: impl FnMut(&[usize]) -> usize) -> Result<Tensor> {
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

pub fn reshape(x: &Tensor, shape: &Tensor, allow_zero: bool) -> Result<Tensor> {
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
    x.clone().reshaped(out)
}

pub fn flatten(x: &Tensor, axis: i64) -> Result<Tensor> {
    let r = x.rank() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a > r {
        return shape_err!("Flatten axis {axis} out of range for rank {r}");
    }
    let a = a as usize;
    let outer = numel(&x.shape()[..a])?;
    let inner = numel(&x.shape()[a..])?;
    x.clone().reshaped(vec![outer, inner])
}

pub fn squeeze(x: &Tensor, axes: Option<&[i64]>) -> Result<Tensor> {
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
    x.clone().reshaped(out)
}

pub fn unsqueeze(x: &Tensor, axes: &[i64]) -> Result<Tensor> {
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
    x.clone().reshaped(out)
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
    remap(x, out_shape, |idx| {
        idx.iter().enumerate().map(|(ax, &i)| ((begin[ax] + i as i128 * step[ax]) as usize) * strides[ax]).sum()
    })
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

    #[test]
    fn matmul_batched_and_vector_forms() {
        let a = t(&[2, 1, 2], &[1., 2., 3., 4.]);
        let b = t(&[2, 2], &[1., 0., 0., 1.]);
        let c = matmul(&a, &b).unwrap();
        assert_eq!(c.shape(), &[2, 1, 2]);
        assert_eq!(c.as_f32().unwrap(), &[1., 2., 3., 4.]);
        let v = t(&[2], &[1., 1.]);
        assert_eq!(matmul(&b, &v).unwrap().shape(), &[2]);
        assert!(matmul(&a, &t(&[3, 1], &[0.; 3])).is_err());
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
    fn transpose_gather_concat_softmax() {
        let x = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        assert_eq!(transpose(&x, None).unwrap().as_f32().unwrap(), &[1., 4., 2., 5., 3., 6.]);
        let idx = Tensor::from_i64(vec![1, 2], vec![1, -2]).unwrap();
        let g = gather(&x, &idx, 0).unwrap();
        assert_eq!(g.shape(), &[1, 2, 3]);
        assert_eq!(g.as_f32().unwrap(), &[4., 5., 6., 1., 2., 3.]);
        assert!(gather(&x, &Tensor::from_i64(vec![1], vec![2]).unwrap(), 0).is_err());
        let c = concat(&[&x, &x], 1).unwrap();
        assert_eq!(c.shape(), &[2, 6]);
        let s = softmax(&x, -1, false, false).unwrap();
        let row: f32 = s.as_f32().unwrap()[..3].iter().sum();
        assert!((row - 1.0).abs() < 1e-6);
        let ls = softmax(&t(&[2], &[1000., 0.]), 0, false, true).unwrap();
        assert!(ls.as_f32().unwrap().iter().all(|v| v.is_finite()));
    }
}
