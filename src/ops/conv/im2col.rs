//! im2col: the input patches of a convolution as the rows of a matrix, for the GEMM.

use super::{span, Geometry};

/// im2col of one image's group (`xg`: its `C/g` input planes) into `a`: one row per output
/// position (oz, oy, ox), one column per tap (ci, kz, ky, kx); zero where the tap is in the
/// padding. Each (ci, kz, ky) is one run of `kw` taps along an input row (a copy at dilation 1);
/// a pointwise convolution (1×1, stride 1, no padding) is the planes transposed.
pub(super) fn im2col(geo: &Geometry, xg: &[f32], a: &mut [f32], pointwise: bool) {
    let [id, ih, iw] = geo.input;
    let [kd, kh, kw] = geo.kernel;
    let [od, oh, ow] = geo.output;
    let [s0, s1, s2] = geo.stride;
    let [d0, d1, d2] = geo.dilation;
    let [p0, p1, p2] = geo.pad_begin;
    let in_img = id * ih * iw;
    let cg = geo.c / geo.group.max(1);
    let kn = cg * kd * kh * kw;
    if pointwise {
        for (ci, chan) in xg.chunks_exact(in_img.max(1)).enumerate() {
            for (q, &v) in chan.iter().enumerate() {
                a[q * kn + ci] = v;
            }
        }
        return;
    }
    if id == 1 && ih == 1 && kd == 1 && kh == 1 && d2 == 1 && kw <= 16 {
        // 1-D, undilated, a short kernel (the audio front ends' 3s and 5s): tap by tap, taps in
        // the padding zero; no memcpy/memset call per run of three (in wasm, calls into the
        // compiler's builtins that cost more than the copy).
        for (ox, row) in a.chunks_exact_mut(kn.max(1)).enumerate().take(ow) {
            let off = (ox * s2).wrapping_sub(p2);
            match kw {
                3 => taps::<3>(row, xg, off, iw),
                5 => taps::<5>(row, xg, off, iw),
                _ => {
                    for (run, plane) in row.chunks_exact_mut(kw.max(1)).zip(xg.chunks_exact(iw.max(1))) {
                        for (k, r) in run.iter_mut().enumerate() {
                            *r = plane.get(off.wrapping_add(k)).copied().unwrap_or(0.0);
                        }
                    }
                }
            }
        }
        return;
    }
    if id == 1 && ih == 1 && kd == 1 && kh == 1 && d2 == 1 {
        // 1-D, undilated, a long kernel (an STFT's): one span per position for every channel.
        for (ox, row) in a.chunks_exact_mut(kn.max(1)).enumerate().take(ow) {
            let (x0, x1) = span(kw, iw, 1, ox * s2, p2);
            let start = (ox * s2 + x0).saturating_sub(p2);
            for (run, plane) in row.chunks_exact_mut(kw.max(1)).zip(xg.chunks_exact(iw.max(1))) {
                run[..x0].fill(0.0);
                run[x1..].fill(0.0);
                if let (Some(dst), Some(src)) = (run.get_mut(x0..x1), plane.get(start..start + (x1 - x0))) {
                    dst.copy_from_slice(src);
                }
            }
        }
        return;
    }
    let mut rows = a.chunks_exact_mut(kn.max(1));
    for oz in 0..od {
        for oy in 0..oh {
            for ox in 0..ow {
                let Some(row) = rows.next() else { return };
                let (x0, x1) = span(kw, iw, d2, ox * s2, p2);
                let mut runs = row.chunks_exact_mut(kw.max(1));
                for plane in xg.chunks_exact(in_img.max(1)).take(cg) {
                    for kz in 0..kd {
                        let z = (oz * s0 + kz * d0).checked_sub(p0).filter(|&z| z < id);
                        for ky in 0..kh {
                            let Some(run) = runs.next() else { return };
                            let y = (oy * s1 + ky * d1).checked_sub(p1).filter(|&y| y < ih);
                            let (Some(z), Some(y), true) = (z, y, x0 < x1) else {
                                run.fill(0.0);
                                continue;
                            };
                            run[..x0].fill(0.0);
                            run[x1..].fill(0.0);
                            let src = &plane[(z * ih + y) * iw + ox * s2 + x0 * d2 - p2..];
                            if d2 == 1 {
                                run[x0..x1].copy_from_slice(&src[..x1 - x0]);
                            } else {
                                run[x0..x1].iter_mut().zip(src.iter().step_by(d2)).for_each(|(r, &v)| *r = v);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One row of a 1-D im2col with a kernel of `K`: plane `c`'s taps from input `off` (wrapped:
/// a position before the input is a huge index, so in the padding like one past it).
fn taps<const K: usize>(row: &mut [f32], xg: &[f32], off: usize, iw: usize) {
    for (run, plane) in row.chunks_exact_mut(K).zip(xg.chunks_exact(iw.max(1))) {
        for (k, r) in run.iter_mut().enumerate() {
            *r = plane.get(off.wrapping_add(k)).copied().unwrap_or(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    /// 1-D convolutions (the audio front ends' fast path) against the sum written out, one after
    /// another so each starts on the scratch the previous one left: strided, padded past the
    /// kernel (outputs whose taps are all padding), grouped, a kernel wider than the input.
    #[test]
    fn one_dimensional_convolutions_match_the_sum() {
        // (channels, outputs, width, kernel, stride, pads begin+end, groups)
        let cases = [
            (129, 128, 4, 3, 1, [1, 1], 1),
            (1, 258, 640, 256, 128, [0, 0], 1),
            (4, 6, 9, 3, 2, [4, 5], 2),
            (3, 2, 2, 5, 1, [2, 2], 1),
            (2, 3, 7, 1, 1, [0, 0], 1),
            (6, 4, 12, 4, 3, [1, 0], 2),
            (5, 3, 16, 5, 2, [2, 2], 1),
            (3, 4, 9, 3, 1, [0, 0], 1),
            (2, 2, 40, 20, 10, [9, 3], 1),
            (3, 2, 6, 7, 1, [3, 3], 1),
        ];
        for (ch, m, w, k, s, pads, g) in cases {
            let x: Vec<f32> = (0..2 * ch * w).map(|i| ((i * 7) % 13) as f32 * 0.5 - 3.0).collect();
            let wv: Vec<f32> = (0..m * ch / g * k).map(|i| ((i * 5) % 11) as f32 * 0.125 - 0.6).collect();
            let bias: Vec<f32> = (0..m).map(|i| i as f32 * 0.25).collect();
            let c = ConvAttrs {
                auto_pad: AutoPad::NotSet,
                group: g,
                kernel_shape: None,
                strides: Some(vec![s]),
                dilations: None,
                pads: Some(pads.to_vec()),
                output_padding: None,
                output_shape: None,
                packed: None,
                relu: false,
            };
            let xt = Tensor::from_f32(vec![2, ch, w], x.clone()).unwrap();
            let wt = Tensor::from_f32(vec![m, ch / g, k], wv.clone()).unwrap();
            let bt = Tensor::from_f32(vec![m], bias.clone()).unwrap();
            let got = conv(&c, &xt, &wt, Some(&bt), Isa::Scalar).unwrap();
            let ow = (w + pads[0] + pads[1] - k) / s + 1;
            assert_eq!(got.shape(), &[2, m, ow]);
            let (cg, mg) = (ch / g, m / g);
            for (i, &y) in got.as_f32().unwrap().iter().enumerate() {
                let (img, o, q) = (i / (m * ow), (i / ow) % m, i % ow);
                let mut want = bias[o];
                for ci in 0..cg {
                    for kk in 0..k {
                        let Some(at) = (q * s + kk).checked_sub(pads[0]).filter(|&at| at < w) else { continue };
                        want += wv[(o * cg + ci) * k + kk] * x[(img * ch + (o / mg) * cg + ci) * w + at];
                    }
                }
                let what = format!("{ch}x{w} k{k} s{s} {pads:?} g{g} [{i}]");
                assert!((y - want).abs() <= 1e-4 * (1.0 + want.abs()), "{what}: {y} vs {want}");
            }
        }
    }
}
