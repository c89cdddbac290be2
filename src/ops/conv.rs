//! `Conv` and `ConvTranspose` over 1 to 3 spatial axes: groups (depthwise included), strides,
//! dilations, pads, `auto_pad`, and for the transpose `output_padding` and `output_shape`.
//!
//! Both lower to one matrix product per image and group on the CPU backend's packed SIMD GEMM
//! (`cpu/gemm.rs`, the kernel of the recurrent layers): `Conv` as im2col (one row of `C/g·K` taps
//! per output position, `P × C/g·K`) times the group's weights packed as a `C/g·K × M/g` matrix,
//! `ConvTranspose` as the input's transpose (`P × C/g`) times the weights (`C/g × M/g·K`) followed
//! by col2im (each product row scattered back onto the output). Constant weights are packed once,
//! when the graph is prepared ([`Conv::prepare`]); weights computed at run time on each call.
//! Shapes are padded to three spatial axes with ones, so one loop nest serves 1-D, 2-D and 3-D.

use std::sync::Arc;

use crate::cpu::gemm::Packed;
use crate::ops::scratch::with_scratch;

mod im2col;
use crate::cpu::Isa;
use crate::error::{shape_err, Error, Result};
use crate::ops::{arg, opt, Attrs};
use crate::tensor::{numel, Tensor};
use im2col::im2col;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoPad {
    #[default]
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

impl AutoPad {
    /// The `auto_pad` attribute of a convolution or pooling node.
    pub fn parse(a: &Attrs<'_>) -> Result<AutoPad> {
        Ok(match a.string("auto_pad")?.as_deref() {
            None | Some("NOTSET") | Some("") => AutoPad::NotSet,
            Some("SAME_UPPER") => AutoPad::SameUpper,
            Some("SAME_LOWER") => AutoPad::SameLower,
            Some("VALID") => AutoPad::Valid,
            Some(other) => return Err(a.bad("auto_pad", &format!("has unknown value '{other}'"))),
        })
    }
}

/// The attributes both operators share.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConvAttrs {
    pub auto_pad: AutoPad,
    pub group: usize,
    pub kernel_shape: Option<Vec<usize>>,
    pub strides: Option<Vec<usize>>,
    pub dilations: Option<Vec<usize>>,
    pub pads: Option<Vec<usize>>,
    /// ConvTranspose only.
    pub output_padding: Option<Vec<usize>>,
    pub output_shape: Option<Vec<usize>>,
    /// The constant `W` packed for the GEMM ([`Conv::prepare`]).
    pub packed: Option<PackedWeights>,
    /// A `Relu` that read only this output, folded in (`onnx::fold::specialize`): the output is
    /// the Relu's, computed in the same pass.
    pub relu: bool,
}

/// A constant `W`, one packed matrix per group, with the shape it was packed from (a `W` of
/// another shape at run time is packed on the call instead).
#[derive(Clone)]
pub struct PackedWeights {
    shape: Vec<usize>,
    groups: Arc<Vec<Packed>>,
}

impl std::fmt::Debug for PackedWeights {
    /// The shape only: the weights are the graph's constant, which the fingerprint hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedWeights({:?})", self.shape)
    }
}

impl PartialEq for PackedWeights {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape
            && (Arc::ptr_eq(&self.groups, &other.groups) || self.groups.len() == other.groups.len())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Conv {
    Conv(ConvAttrs),
    Transpose(ConvAttrs),
}

/// Largest stride, dilation, pad or kernel accepted (keeps every size product far from overflow).
const MAX_ATTR: i64 = 1 << 20;

fn sizes(a: &Attrs<'_>, key: &str, min: i64) -> Result<Option<Vec<usize>>> {
    a.ints(key)
        .map(|v| {
            v.iter()
                .map(|&x| {
                    if (min..=MAX_ATTR).contains(&x) {
                        Ok(x as usize)
                    } else {
                        Err(a.bad(key, &format!("has value {x} out of range {min}..={MAX_ATTR}")))
                    }
                })
                .collect()
        })
        .transpose()
}

impl Conv {
    pub fn name(&self) -> &'static str {
        match self {
            Conv::Conv(_) => "Conv",
            Conv::Transpose(_) => "ConvTranspose",
        }
    }

    /// The operator of this family named `op_type`, or `None` for any other.
    pub(crate) fn parse(
        op_type: &str,
        a: &Attrs<'_>,
        _opset: i64,
        _consts: &[Option<&Tensor>],
    ) -> Option<Result<Self>> {
        let transpose = match op_type {
            "Conv" => false,
            "ConvTranspose" => true,
            _ => return None,
        };
        let parse = || -> Result<ConvAttrs> {
            let auto_pad = AutoPad::parse(a)?;
            let group = a.int("group", 1);
            if !(1..=MAX_ATTR).contains(&group) {
                return Err(a.bad("group", "must be at least 1"));
            }
            Ok(ConvAttrs {
                auto_pad,
                group: group as usize,
                kernel_shape: sizes(a, "kernel_shape", 1)?,
                strides: sizes(a, "strides", 1)?,
                dilations: sizes(a, "dilations", 1)?,
                pads: sizes(a, "pads", 0)?,
                output_padding: if transpose { sizes(a, "output_padding", 0)? } else { None },
                output_shape: if transpose { sizes(a, "output_shape", 1)? } else { None },
                packed: None,
                relu: false,
            })
        };
        Some(parse().map(|c| if transpose { Conv::Transpose(c) } else { Conv::Conv(c) }))
    }

    /// Packs a constant `W` (`w`, the node's input 1 when it is a constant) for the GEMM, once.
    /// A `W` that does not fit the attributes is left for the run to report.
    pub fn prepare(&mut self, w: Option<&Tensor>) {
        let (c, transpose) = match self {
            Conv::Conv(c) => (c, false),
            Conv::Transpose(c) => (c, true),
        };
        // Channels and outputs as W gives them (`[M, C/g, K…]`, the transpose's `[C, M/g, K…]`);
        // weights that run direct ([`is_depthwise`]) are not packed.
        let runs_direct = |w: &Tensor| {
            let (lead, per_group) = (w.shape()[0], w.shape()[1].saturating_mul(c.group));
            let (ch, m) = if transpose { (lead, per_group) } else { (per_group, lead) };
            is_depthwise(ch, m, c.group)
        };
        let w = w.filter(|w| w.rank() >= 3 && !runs_direct(w));
        if let Some(w) = w {
            if let Ok(groups) = pack_groups(w, c.group, transpose) {
                c.packed = Some(PackedWeights { shape: w.shape().to_vec(), groups: Arc::new(groups) });
            }
        }
    }

    pub fn run(&self, args: &[Option<&Tensor>], isa: Isa) -> Result<Vec<Tensor>> {
        let (x, w, b) = (arg(args, 0)?, arg(args, 1)?, opt(args, 2));
        let (out, relu) = match self {
            Conv::Conv(c) => (conv(c, x, w, b, isa)?, c.relu),
            Conv::Transpose(c) => (conv_transpose(c, x, w, b, isa)?, c.relu),
        };
        // The Relu operator's own kernel, in the output's buffer.
        Ok(vec![if relu { crate::ops::unary(&crate::ops::Op::Relu, out)? } else { out }])
    }
}

/// The geometry of one operator call, on three spatial axes.
struct Geometry {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    input: [usize; 3],
    kernel: [usize; 3],
    output: [usize; 3],
    stride: [usize; 3],
    dilation: [usize; 3],
    pad_begin: [usize; 3],
}

fn per_axis(v: &Option<Vec<usize>>, rank: usize, default: usize, what: &str) -> Result<Vec<usize>> {
    match v {
        None => Ok(vec![default; rank]),
        Some(v) if v.len() == rank => Ok(v.clone()),
        Some(v) => shape_err!("{what} has {} values for {rank} spatial axes", v.len()),
    }
}

fn pad3(v: &[usize], fill: usize) -> [usize; 3] {
    let mut o = [fill; 3];
    let off = 3 - v.len();
    o[off..].copy_from_slice(v);
    o
}

/// Spatial rank, input sizes, kernel, strides, dilations.
type Spatial = (usize, Vec<usize>, Vec<usize>, Vec<usize>, Vec<usize>);

/// Checks X and W and works out the spatial sizes common to both operators.
fn common(c: &ConvAttrs, x: &Tensor, w: &Tensor, transpose: bool) -> Result<Spatial> {
    let rank = x.rank().checked_sub(2).filter(|r| (1..=3).contains(r)).ok_or_else(|| {
        Error::Shape(format!("X must have 1 to 3 spatial axes (rank 3 to 5), has shape {:?}", x.shape()))
    })?;
    if w.rank() != x.rank() {
        return shape_err!("W {:?} must have X's rank {:?}", w.shape(), x.shape());
    }
    let kernel = w.shape()[2..].to_vec();
    if let Some(k) = &c.kernel_shape {
        if k != &kernel {
            return shape_err!("kernel_shape {k:?} differs from W's spatial shape {kernel:?}");
        }
    }
    let _ = transpose;
    let strides = per_axis(&c.strides, rank, 1, "strides")?;
    let dilations = per_axis(&c.dilations, rank, 1, "dilations")?;
    let input = x.shape()[2..].to_vec();
    Ok((rank, input, kernel, strides, dilations))
}

fn conv(c: &ConvAttrs, x: &Tensor, w: &Tensor, b: Option<&Tensor>, isa: Isa) -> Result<Tensor> {
    conv_with(c, x, w, b, isa, true)
}

/// [`conv`]; `direct` false keeps depthwise calls on the GEMM too (the tests' reference).
fn conv_with(c: &ConvAttrs, x: &Tensor, w: &Tensor, b: Option<&Tensor>, isa: Isa, direct: bool) -> Result<Tensor> {
    let (rank, input, kernel, strides, dilations) = common(c, x, w, false)?;
    let (n, ch, m) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let g = c.group;
    if ch % g != 0 || m % g != 0 || w.shape()[1] * g != ch {
        return shape_err!("Conv: X has {ch} channels, W {:?} with group {g} does not fit", w.shape());
    }
    let mut pad_begin = vec![0; rank];
    let mut output = vec![0; rank];
    for i in 0..rank {
        let eff = (kernel[i] - 1) * dilations[i] + 1;
        let (pb, pe) = match c.auto_pad {
            AutoPad::NotSet => {
                let p = per_axis(&c.pads.as_ref().map(|p| p.to_vec()), 2 * rank, 0, "pads")?;
                (p[i], p[i + rank])
            }
            AutoPad::Valid => (0, 0),
            AutoPad::SameUpper | AutoPad::SameLower => {
                let out = input[i].div_ceil(strides[i]);
                let total = ((out.max(1) - 1) * strides[i] + eff).saturating_sub(input[i]);
                let small = total / 2;
                if c.auto_pad == AutoPad::SameUpper {
                    (small, total - small)
                } else {
                    (total - small, small)
                }
            }
        };
        let span = input[i] + pb + pe;
        if span < eff {
            return shape_err!(
                "Conv: axis {i} of size {} (padded {span}) is smaller than the kernel ({eff})",
                input[i]
            );
        }
        output[i] = (span - eff) / strides[i] + 1;
        pad_begin[i] = pb;
    }
    let geo = Geometry {
        n,
        c: ch,
        m,
        group: g,
        input: pad3(&input, 1),
        kernel: pad3(&kernel, 1),
        output: pad3(&output, 1),
        stride: pad3(&strides, 1),
        dilation: pad3(&dilations, 1),
        pad_begin: pad3(&pad_begin, 0),
    };
    let (bias, shape) = (bias_of(b, m)?, [&[n, m][..], &output].concat());
    if direct && is_depthwise(geo.c, geo.m, geo.group) {
        let out = depthwise_run(&geo, x.as_f32()?, w.as_f32()?, bias, numel(&shape)?, false)?;
        return Tensor::from_f32(shape, out);
    }
    let packs = packed_for(c, w, false)?;
    let out = conv_run(&geo, x.as_f32()?, &packs, bias, numel(&shape)?, isa)?;
    Tensor::from_f32(shape, out)
}

/// The packed `W`: the one prepared at load when `w` has its shape, else `w` packed now.
fn packed_for(c: &ConvAttrs, w: &Tensor, transpose: bool) -> Result<Arc<Vec<Packed>>> {
    match &c.packed {
        Some(p) if p.shape == w.shape() => Ok(p.groups.clone()),
        _ => Ok(Arc::new(pack_groups(w, c.group, transpose)?)),
    }
}

fn bias_of(b: Option<&Tensor>, m: usize) -> Result<Option<&[f32]>> {
    match b {
        None => Ok(None),
        Some(b) if b.len() == m => Ok(Some(b.as_f32()?)),
        Some(b) => shape_err!("B has shape {:?}, the operator has {m} output channels", b.shape()),
    }
}

/// `W` as one GEMM operand per group: for `Conv` (`W` is `[M, C/g, K…]`) the group's filters as
/// the columns of a `C/g·K × M/g` matrix; for `ConvTranspose` (`W` is `[C, M/g, K…]`) the group's
/// `C/g × M/g·K` block as it is.
fn pack_groups(w: &Tensor, g: usize, transpose: bool) -> Result<Vec<Packed>> {
    let wv = w.as_f32()?;
    let rows = w.shape()[0];
    if g == 0 || rows % g != 0 {
        return shape_err!("W {:?} does not split into {g} groups", w.shape());
    }
    let per = rows / g;
    let kn = wv.len().checked_div(rows).unwrap_or(0);
    Ok((0..g)
        .map(|gi| {
            let wg = &wv[gi * per * kn..(gi + 1) * per * kn];
            if transpose {
                Packed::new(per, kn, |col, ci| (col < kn).then(|| wg[ci * kn + col]))
            } else {
                Packed::new(kn, per, |col, kk| (col < per).then(|| wg[col * kn + kk]))
            }
        })
        .collect())
}

/// One input channel per group and at most [`DEPTHWISE_MAX_OUT`] outputs each (depthwise, or a
/// single-channel filter): the GEMM would pad each group's few columns to a whole panel and run
/// once per group, so these go through [`depthwise_run`] instead.
fn is_depthwise(channels: usize, outputs: usize, group: usize) -> bool {
    group > 0 && channels == group && outputs / group <= DEPTHWISE_MAX_OUT
}

const DEPTHWISE_MAX_OUT: usize = 4;

/// The positions `i` in `0..walk` whose partner `i·s + off − pad` falls in `0..other`, as a range.
fn span(walk: usize, other: usize, s: usize, off: usize, pad: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(off).div_ceil(s);
    let hi = if other + pad > off { walk.min((other + pad - off).div_ceil(s)) } else { 0 };
    (lo.min(hi), hi)
}

/// Direct convolution with one input channel per group ([`is_depthwise`]): for each output channel
/// and tap, one multiply-add over each contiguous row of positions (vectorised by the compiler at
/// stride 1). `Conv` walks the output positions and reads input `o·s + k·d − pad`; the transpose
/// walks the input positions and adds onto output `i·s + k·d − pad`. `W` is `[M, 1, K…]` for
/// `Conv` and `[C, M/g, K…]` for the transpose: output channel `o`'s taps at `o·K` in both.
fn depthwise_run(
    geo: &Geometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    total: usize,
    transpose: bool,
) -> Result<Vec<f32>> {
    let [kd, kh, kw] = geo.kernel;
    let [s0, s1, s2] = geo.stride;
    let [d0, d1, d2] = geo.dilation;
    let [p0, p1, p2] = geo.pad_begin;
    let taps = numel(&geo.kernel)?;
    let mg = geo.m / geo.group.max(1);
    let (in_img, out_img) = (numel(&geo.input)?, numel(&geo.output)?);
    // walk: the positions looped over; other: where each one's partner lies.
    let (walk, other) = if transpose { (geo.input, geo.output) } else { (geo.output, geo.input) };
    if w.len() < geo.m * taps || x.len() < geo.n * geo.c * in_img || total < geo.n * geo.m * out_img {
        return shape_err!(
            "{}: the operands do not fit the geometry",
            if transpose { "ConvTranspose" } else { "Conv" }
        );
    }
    let mut out = vec![0f32; total];
    for img in 0..geo.n {
        for o in 0..geo.m {
            let src = &x[(img * geo.c + o / mg) * in_img..][..in_img];
            let dst = &mut out[(img * geo.m + o) * out_img..][..out_img];
            if let Some(b) = bias {
                dst.fill(b[o]);
            }
            let wo = &w[o * taps..][..taps];
            let mut t = 0;
            for kz in 0..kd {
                let (z0, z1) = span(walk[0], other[0], s0, kz * d0, p0);
                for ky in 0..kh {
                    let (y0, y1) = span(walk[1], other[1], s1, ky * d1, p1);
                    for kx in 0..kw {
                        let (x0, x1) = span(walk[2], other[2], s2, kx * d2, p2);
                        let wv = wo[t];
                        t += 1;
                        if x0 == x1 {
                            continue;
                        }
                        let first = x0 * s2 + kx * d2 - p2;
                        let last = first + (x1 - x0 - 1) * s2;
                        for a in z0..z1 {
                            let b = a * s0 + kz * d0 - p0;
                            for c in y0..y1 {
                                let d = c * s1 + ky * d1 - p1;
                                let (w_row, o_row) = ((a * walk[1] + c) * walk[2], (b * other[1] + d) * other[2]);
                                if transpose {
                                    let s = &src[w_row + x0..w_row + x1];
                                    let r = &mut dst[o_row + first..=o_row + last];
                                    axpy_strided(wv, s, r, s2, true);
                                } else {
                                    let r = &mut dst[w_row + x0..w_row + x1];
                                    let s = &src[o_row + first..=o_row + last];
                                    axpy_strided(wv, s, r, s2, false);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `Conv` (`scatter` false): `r[i] += w·s[i·stride]`; the transpose (`scatter`):
/// `r[i·stride] += w·s[i]`. At stride 1 both are one contiguous multiply-add.
#[inline(always)]
fn axpy_strided(w: f32, s: &[f32], r: &mut [f32], stride: usize, scatter: bool) {
    match (stride, scatter) {
        (1, _) => r.iter_mut().zip(s).for_each(|(r, &s)| *r += w * s),
        (_, false) => r.iter_mut().zip(s.iter().step_by(stride)).for_each(|(r, &s)| *r += w * s),
        (_, true) => r.iter_mut().step_by(stride).zip(s).for_each(|(r, &s)| *r += w * s),
    }
}

fn conv_run(
    geo: &Geometry,
    x: &[f32],
    packs: &[Packed],
    bias: Option<&[f32]>,
    total: usize,
    isa: Isa,
) -> Result<Vec<f32>> {
    let [id, ih, iw] = geo.input;
    let [kd, kh, kw] = geo.kernel;
    let [od, oh, ow] = geo.output;
    let cg = geo.c / geo.group;
    let mg = geo.m / geo.group;
    let kn = numel(&[cg, kd, kh, kw])?;
    let p = numel(&[od, oh, ow])?;
    let in_img = numel(&[id, ih, iw])?;
    if packs.len() != geo.group || packs.iter().any(|b| b.k != kn) {
        return shape_err!("Conv: the packed weights do not fit {} groups of {kn} taps", geo.group);
    }
    let n = packs.first().map_or(0, |b| b.n);
    let mut out = Vec::with_capacity(total);
    let pointwise = kn == cg && geo.stride == [1; 3] && geo.pad_begin == [0; 3] && p == in_img;
    with_scratch(numel(&[p, kn])?, numel(&[p, n / 4])?, |a, c| {
        for img in 0..geo.n {
            for (g, pack) in packs.iter().enumerate() {
                im2col(geo, &x[(img * geo.c + g * cg) * in_img..][..cg * in_img], a, pointwise);
                for row in c.chunks_exact_mut(n / 4) {
                    let row = row.as_flattened_mut();
                    match bias {
                        Some(b) => {
                            row[..mg].copy_from_slice(&b[g * mg..(g + 1) * mg]);
                            row[mg..].fill(0.0);
                        }
                        None => row.fill(0.0),
                    }
                }
                isa.gemm(a, kn, p, pack, c);
                // Channel-major out of the position-major product.
                let flat = c.as_flattened();
                let at = out.len();
                out.resize(at + mg * p, 0.0);
                for (j, o) in out[at..].chunks_exact_mut(p.max(1)).enumerate() {
                    for (q, v) in o.iter_mut().enumerate() {
                        *v = flat[q * n + j];
                    }
                }
            }
        }
    });
    if out.len() != total {
        return shape_err!("Conv: {} outputs computed for {total}", out.len());
    }
    Ok(out)
}

fn conv_transpose(c: &ConvAttrs, x: &Tensor, w: &Tensor, b: Option<&Tensor>, isa: Isa) -> Result<Tensor> {
    transpose_with(c, x, w, b, isa, true)
}

/// [`conv_transpose`]; `direct` as for [`conv_with`].
fn transpose_with(c: &ConvAttrs, x: &Tensor, w: &Tensor, b: Option<&Tensor>, isa: Isa, direct: bool) -> Result<Tensor> {
    let (rank, input, kernel, strides, dilations) = common(c, x, w, true)?;
    let (n, ch) = (x.shape()[0], x.shape()[1]);
    let g = c.group;
    if w.shape()[0] != ch || ch % g != 0 {
        return shape_err!("ConvTranspose: X has {ch} channels, W {:?} with group {g} does not fit", w.shape());
    }
    let m = w.shape()[1].checked_mul(g).ok_or_else(|| Error::Shape("ConvTranspose: too many channels".into()))?;
    let out_pad = per_axis(&c.output_padding, rank, 0, "output_padding")?;
    let mut pad_begin = vec![0; rank];
    let mut output = vec![0; rank];
    for i in 0..rank {
        let eff = (kernel[i] - 1) * dilations[i] + 1;
        let full = strides[i] * (input[i].max(1) - 1) + out_pad[i] + eff;
        let target = match (&c.output_shape, c.auto_pad) {
            (Some(s), _) => {
                let s = if s.len() == rank + 2 { &s[2..] } else { &s[..] };
                Some(*s.get(i).ok_or_else(|| Error::Shape(format!("output_shape {s:?} has too few axes")))?)
            }
            (None, AutoPad::SameUpper | AutoPad::SameLower) => Some(input[i] * strides[i]),
            _ => None,
        };
        let (pb, pe) = match (target, c.auto_pad) {
            (Some(t), auto) => {
                // An output_shape past the full output adds positions at the end (as output_padding).
                let total = full.saturating_sub(t);
                if t > full {
                    output[i] = t;
                    continue;
                }
                if auto == AutoPad::SameUpper {
                    (total / 2, total - total / 2)
                } else {
                    (total - total / 2, total / 2)
                }
            }
            (None, AutoPad::Valid) => (0, 0),
            (None, _) => {
                let p = per_axis(&c.pads.as_ref().map(|p| p.to_vec()), 2 * rank, 0, "pads")?;
                (p[i], p[i + rank])
            }
        };
        output[i] = full
            .checked_sub(pb + pe)
            .filter(|&o| o > 0)
            .ok_or_else(|| Error::Shape(format!("ConvTranspose: pads {pb}+{pe} leave no output on axis {i}")))?;
        pad_begin[i] = pb;
    }
    let geo = Geometry {
        n,
        c: ch,
        m,
        group: g,
        input: pad3(&input, 1),
        kernel: pad3(&kernel, 1),
        output: pad3(&output, 1),
        stride: pad3(&strides, 1),
        dilation: pad3(&dilations, 1),
        pad_begin: pad3(&pad_begin, 0),
    };
    let (bias, shape) = (bias_of(b, m)?, [&[n, m][..], &output].concat());
    if direct && is_depthwise(geo.c, geo.m, geo.group) {
        let out = depthwise_run(&geo, x.as_f32()?, w.as_f32()?, bias, numel(&shape)?, true)?;
        return Tensor::from_f32(shape, out);
    }
    let packs = packed_for(c, w, true)?;
    let out = transpose_run(&geo, x.as_f32()?, &packs, bias, numel(&shape)?, isa)?;
    Tensor::from_f32(shape, out)
}

fn transpose_run(
    geo: &Geometry,
    x: &[f32],
    packs: &[Packed],
    bias: Option<&[f32]>,
    total: usize,
    isa: Isa,
) -> Result<Vec<f32>> {
    let [id, ih, iw] = geo.input;
    let [kd, kh, kw] = geo.kernel;
    let [od, oh, ow] = geo.output;
    let cg = geo.c / geo.group;
    let mg = geo.m / geo.group;
    let kn = numel(&[mg, kd, kh, kw])?;
    let p = numel(&[id, ih, iw])?;
    let out_img = numel(&[od, oh, ow])?;
    if packs.len() != geo.group || packs.iter().any(|b| b.k != cg || b.n < kn) {
        return shape_err!("ConvTranspose: the packed weights do not fit {} groups of {cg} channels", geo.group);
    }
    let n = packs.first().map_or(0, |b| b.n);
    let mut out = vec![0f32; total];
    // The transposed input and the product in the per-thread scratch, as Conv's (every element of
    // `a` is written below, `c` is cleared).
    with_scratch(numel(&[p, cg])?, numel(&[p, n / 4])?, |a, c| {
        for (g, pack) in packs.iter().enumerate() {
            for img in 0..geo.n {
                // The group's input transposed (one row per input position), times its weights:
                // row q of the product holds every tap (mo, kz, ky, kx) of input position q.
                let xg = &x[(img * geo.c + g * cg) * p..][..cg * p];
                for (ci, chan) in xg.chunks_exact(p.max(1)).enumerate().take(cg) {
                    for (q, &v) in chan.iter().enumerate() {
                        a[q * cg + ci] = v;
                    }
                }
                c.fill([0.0; 4]);
                isa.gemm(a, cg, p, pack, c);
                let flat = c.as_flattened();
                // col2im: tap (mo, kz, ky, kx) of input position (iz, iy, ix) lands on o = i·s + k·d − pad.
                let mut tap = 0;
                for mo in 0..mg {
                    let plane = &mut out[(img * geo.m + g * mg + mo) * out_img..][..out_img];
                    for kz in 0..kd {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let mut q = 0;
                                for iz in 0..id {
                                    let z = (iz * geo.stride[0] + kz * geo.dilation[0]).checked_sub(geo.pad_begin[0]);
                                    for iy in 0..ih {
                                        let y =
                                            (iy * geo.stride[1] + ky * geo.dilation[1]).checked_sub(geo.pad_begin[1]);
                                        for ix in 0..iw {
                                            let xx = (ix * geo.stride[2] + kx * geo.dilation[2])
                                                .checked_sub(geo.pad_begin[2]);
                                            if let (Some(z), Some(y), Some(xx)) = (z, y, xx) {
                                                if z < od && y < oh && xx < ow {
                                                    plane[(z * oh + y) * ow + xx] += flat[q * n + tap];
                                                }
                                            }
                                            q += 1;
                                        }
                                    }
                                }
                                tap += 1;
                            }
                        }
                    }
                }
            }
        }
    });
    if let Some(b) = bias {
        for (k, plane) in out.chunks_exact_mut(out_img).enumerate() {
            let bv = b[k % geo.m];
            plane.iter_mut().for_each(|v| *v += bv);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> ConvAttrs {
        ConvAttrs { group: 1, ..ConvAttrs::default() }
    }

    #[test]
    fn depthwise_conv_and_its_transpose_by_hand() {
        // Two channels, depthwise, kernel 2, stride 1: y[c][i] = w0·x[i] + w1·x[i+1].
        let x = Tensor::from_f32(vec![1, 2, 3], vec![1., 2., 3., 10., 20., 30.]).unwrap();
        let w = Tensor::from_f32(vec![2, 1, 2], vec![1., -1., 0.5, 0.5]).unwrap();
        let c = ConvAttrs { group: 2, ..attrs() };
        let y = conv(&c, &x, &w, None, Isa::Scalar).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2]);
        assert_eq!(y.as_f32().unwrap(), &[-1., -1., 15., 25.]);
        let t = conv_transpose(&c, &x, &w, None, Isa::Scalar).unwrap();
        assert_eq!(t.shape(), &[1, 2, 4]);
        assert_eq!(t.as_f32().unwrap(), &[1., 1., 1., -3., 5., 15., 25., 15.]);
    }

    #[test]
    fn direct_depthwise_matches_the_gemm() {
        // (channels, outputs per group, input, kernel, stride, dilation, pads begin+end): 1-D and
        // 2-D, strided, dilated, padded past the kernel, a lone channel.
        type Case<'a> = (usize, usize, &'a [usize], &'a [usize], &'a [usize], &'a [usize], &'a [usize]);
        let cases: &[Case] = &[
            (3, 1, &[9], &[3], &[1], &[1], &[1, 1]),
            (4, 2, &[11], &[5], &[2], &[1], &[2, 3]),
            (2, 1, &[7], &[3], &[3], &[2], &[4, 0]),
            (1, 1, &[20], &[7], &[1], &[1], &[0, 0]),
            (5, 1, &[6, 8], &[3, 3], &[1, 1], &[2, 1], &[2, 1, 2, 1]),
            (3, 3, &[4, 9], &[1, 5], &[1, 2], &[1, 1], &[0, 2, 0, 2]),
            (2, 4, &[5, 5], &[2, 3], &[2, 1], &[1, 3], &[1, 0, 0, 4]),
        ];
        for &(ch, mg, input, kernel, stride, dilation, pads) in cases {
            let x: Vec<f32> =
                (0..2 * ch * input.iter().product::<usize>()).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
            let x = Tensor::from_f32([&[2, ch][..], input].concat(), x).unwrap();
            let taps: usize = kernel.iter().product();
            let wv: Vec<f32> = (0..ch * mg * taps).map(|i| ((i * 5) % 9) as f32 * 0.25 - 1.0).collect();
            let b = Tensor::from_f32(vec![ch * mg], (0..ch * mg).map(|i| i as f32 * 0.5).collect()).unwrap();
            let c = ConvAttrs {
                group: ch,
                strides: Some(stride.to_vec()),
                dilations: Some(dilation.to_vec()),
                pads: Some(pads.to_vec()),
                ..attrs()
            };
            let w = Tensor::from_f32([&[ch * mg, 1][..], kernel].concat(), wv.clone()).unwrap();
            let want = conv_with(&c, &x, &w, Some(&b), Isa::Scalar, false).unwrap();
            let got = conv(&c, &x, &w, Some(&b), Isa::Scalar).unwrap();
            assert_eq!(got.shape(), want.shape(), "conv {input:?} {kernel:?}");
            for (g, e) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()) {
                assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "conv {input:?} {kernel:?}: {g} vs {e}");
            }
            let wt = Tensor::from_f32([&[ch, mg][..], kernel].concat(), wv).unwrap();
            let want = transpose_with(&c, &x, &wt, Some(&b), Isa::Scalar, false).unwrap();
            let got = conv_transpose(&c, &x, &wt, Some(&b), Isa::Scalar).unwrap();
            assert_eq!(got.shape(), want.shape(), "transpose {input:?} {kernel:?}");
            for (g, e) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()) {
                assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "transpose {input:?} {kernel:?}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn hostile_geometry_is_an_error() {
        let x = Tensor::from_f32(vec![1, 1, 2], vec![1., 2.]).unwrap();
        let w = Tensor::from_f32(vec![1, 1, 3], vec![1., 1., 1.]).unwrap();
        assert!(conv(&attrs(), &x, &w, None, Isa::Scalar).is_err()); // kernel larger than the input
        let w2 = Tensor::from_f32(vec![1, 2, 1], vec![1., 1.]).unwrap();
        assert!(conv(&attrs(), &x, &w2, None, Isa::Scalar).is_err()); // channels do not match
        let c = ConvAttrs { pads: Some(vec![5, 5]), ..attrs() };
        assert!(conv_transpose(&c, &x, &w, None, Isa::Scalar).is_err()); // pads eat the whole output
        let flat = Tensor::from_f32(vec![2], vec![1., 2.]).unwrap();
        assert!(conv(&attrs(), &flat, &flat, None, Isa::Scalar).is_err());
    }
}
