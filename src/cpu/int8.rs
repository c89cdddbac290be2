//! int8 weights ([`super::CpuKernels::with_int8`]): `C += A·B` with `B` quantized once at load and
//! each row of `A` quantized when it arrives, the products summed exactly in `i32`.
//!
//! * Weights: symmetric, one scale per column of `B` (an output row of `W` or `R`):
//!   `s_w = max|w| / 127`, `q_w = round(w / s_w)` in `-127..=127`.
//! * Activations: symmetric, one scale per row of `A` (a time step's input, a hidden state):
//!   `s_a = max|a| / 63`, `q_a = round(a / s_a)` in `-63..=63`, stored biased as `u = q_a + 64`
//!   in `1..=127`. Seven bits, not eight: relaxed-simd's int8 dot product is only defined on every
//!   engine when one operand has its top bit clear, and every instruction set here computes the
//!   same integers (the biased sums, then `- 64·Σ q_w`), so results do not depend on which wasm
//!   variant a browser loads.
//! * `C += (Σ_k q_w·u - 64·Σ_k q_w) · s_a · s_w`.
//!
//! A row of `A` with a NaN or infinity is multiplied in f32 by the dequantized weights instead, so
//! NaN in is NaN out. Quantizing is portable code shared by every instruction set; only the inner
//! dot product ([`Simd::dot4`]) is per instruction set.

use super::gemm::NR;
use super::simd::{Simd, F4};

/// Largest `|q_w|`.
const W_MAX: f32 = 127.0;
/// Largest `|q_a|`.
pub const ACT_MAX: f32 = 63.0;
/// What is added to `q_a` to make it a 7-bit unsigned operand.
const ACT_BIAS: i32 = 64;
/// A row or column whose largest magnitude is at most this counts as all zeros (scale 0): `127 / max`
/// and `63 / max` then stay finite, so quantizing never meets an infinity or a NaN, whose handling
/// by the vector min/max LLVM may pick (relaxed-simd's) would differ between engines.
const TINY: f32 = 1e-36;
/// The longest `k` kept in int8: `|Σ q_w·u| ≤ k·127·127` and `64·|Σ q_w| ≤ k·64·127` then stay
/// well inside `i32`. A longer matrix stays f32.
pub const MAX_K: usize = 1 << 16;

/// Four columns by four consecutive `k`, laid out as the instruction set's [`Simd::dot4`] reads
/// them (see [`byte`]).
type Block = [i8; 16];
/// Four consecutive `k` of one panel: its [`NR`] columns as four blocks.
type PanelQuad = [Block; NR / 4];

/// A `k × n` int8 matrix (`n` padded with zero columns to a multiple of [`NR`]) in panel-major
/// order, with its per-column scales.
#[derive(Debug, Clone)]
pub struct QPacked {
    pub k: usize,
    /// Padded column count, a multiple of [`NR`].
    pub n: usize,
    /// `k` in quads, rounded up (the padding weights are zero).
    kq: usize,
    /// `(n / NR) · kq` quads, panel after panel.
    panels: Vec<PanelQuad>,
    /// `s_w` per column, `n / 4` vectors.
    scale: Vec<F4>,
    /// `64·Σ_k q_w` per column: what the biased activations added.
    comp: Vec<[i32; 4]>,
    /// The block layout ([`Simd::INT8_PAIRS`]).
    pairs: bool,
}

/// Where `k` offset `j` of column `c` sits in a block: four `k` per column (`4·c + j`), or with
/// `pairs` `k` 0-1 of the four columns in bytes 0..8 and `k` 2-3 in bytes 8..16 (`2·c + j % 2`).
fn byte(pairs: bool, c: usize, j: usize) -> usize {
    if pairs {
        (j / 2) * 8 + 2 * c + j % 2
    } else {
        4 * c + j
    }
}

impl QPacked {
    /// Quantizes `cols` columns of `k` entries (`value` as for [`super::gemm::Packed::new`]) into
    /// blocks of the layout `pairs` ([`Simd::INT8_PAIRS`] of the instruction set that will read
    /// them); `None` where int8 cannot stand for them: a value that is not finite, or `k > MAX_K`.
    pub fn new(k: usize, cols: usize, pairs: bool, value: impl Fn(usize, usize) -> Option<f32>) -> Option<QPacked> {
        if k > MAX_K {
            return None;
        }
        let n = cols.div_ceil(NR) * NR;
        let kq = k.div_ceil(4);
        let mut panels = vec![[[0i8; 16]; NR / 4]; (n / NR) * kq];
        let mut scale = vec![[0f32; 4]; n / 4];
        let mut comp = vec![[0i32; 4]; n / 4];
        let mut column = vec![0f32; k];
        for col in 0..n {
            let mut max = 0f32;
            for (kk, v) in column.iter_mut().enumerate() {
                *v = value(col, kk).unwrap_or(0.0);
                if !v.is_finite() {
                    return None;
                }
                max = max.max(v.abs());
            }
            let inv = if max > TINY { W_MAX / max } else { 0.0 };
            let (p, lane) = (col / NR, col % NR);
            let mut sum = 0i32;
            for (kk, &v) in column.iter().enumerate() {
                let q = (v * inv).round_ties_even().clamp(-W_MAX, W_MAX) as i8;
                panels[p * kq + kk / 4][lane / 4][byte(pairs, lane % 4, kk % 4)] = q;
                sum += i32::from(q);
            }
            scale[col / 4][col % 4] = if max > TINY { max / W_MAX } else { 0.0 };
            comp[col / 4][col % 4] = ACT_BIAS * sum;
        }
        Some(QPacked { k, n, kq, panels, scale, comp, pairs })
    }

    /// Vectors per row of `C`.
    pub fn n4(&self) -> usize {
        self.n / 4
    }

    /// The dequantized weight `q_w·s_w` of column `col`, entry `kk` (both in range).
    pub fn weight(&self, col: usize, kk: usize) -> f32 {
        let (p, lane) = (col / NR, col % NR);
        let q = self.panels[p * self.kq + kk / 4][lane / 4][byte(self.pairs, lane % 4, kk % 4)];
        f32::from(q) * self.scale[col / 4][col % 4]
    }
}

/// The rows of `A` quantized for one product: scratch that the caller keeps between calls.
#[derive(Debug, Clone, Default)]
pub struct QRows {
    /// `m · kq` quads of biased activations.
    quads: Vec<[u8; 4]>,
    /// `s_a` per row (0 for a row in `nonfinite`).
    scale: Vec<f32>,
    /// Rows with a NaN or infinity: multiplied in f32 instead.
    nonfinite: Vec<usize>,
}

impl QRows {
    /// Quantizes the `m` rows `a[i·lda .. i·lda + k]` (the caller has checked the lengths).
    fn quantize(&mut self, a: &[f32], lda: usize, m: usize, k: usize) {
        let kq = k.div_ceil(4);
        self.quads.clear();
        self.quads.resize(m * kq, [ACT_BIAS as u8; 4]);
        self.scale.clear();
        self.nonfinite.clear();
        for (i, (row, quads)) in a.chunks(lda).zip(self.quads.chunks_exact_mut(kq)).take(m).enumerate() {
            let row = &row[..k];
            // max |v| by its bits (ordered like the magnitudes, and an integer reduction that
            // vectorizes); infinities and NaNs are the patterns from 0x7f80_0000 up.
            let max_bits = row.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff));
            if max_bits >= 0x7f80_0000 {
                self.nonfinite.push(i);
                self.scale.push(0.0);
                continue;
            }
            let max = f32::from_bits(max_bits);
            let inv = if max > TINY { ACT_MAX / max } else { 0.0 };
            for (u, &v) in quads.as_flattened_mut().iter_mut().zip(row) {
                *u = ((v * inv).round_ties_even().clamp(-ACT_MAX, ACT_MAX) as i32 + ACT_BIAS) as u8;
            }
            self.scale.push(if max > TINY { max / ACT_MAX } else { 0.0 });
        }
    }
}

/// `c[i] += a[i]·B` for the `m` rows `a[i·lda .. i·lda + k]`, as [`super::gemm::gemm`] with int8 `B`;
/// the rows are quantized into `scratch`. Slices too short for the sizes are a caller bug; the
/// kernel then stops early instead of panicking. With `backwards` a one-row product walks the
/// panels last to first, as [`super::gemm::gemm_in`] does (the same sums).
pub fn qgemm_in<S: Simd>(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &QPacked,
    c: &mut [F4],
    scratch: &mut QRows,
    backwards: bool,
) {
    let (k, kq, n4) = (b.k, b.kq, b.n4());
    if k == 0 || m == 0 || n4 == 0 || lda < k || c.len() < m * n4 || a.len() < (m - 1) * lda + k {
        return;
    }
    if b.pairs != S::INT8_PAIRS {
        // Packed for another instruction set (CpuKernels never does this): slow but right.
        for i in 0..m {
            f32_row(&a[i * lda..i * lda + k], b, &mut c[i * n4..(i + 1) * n4]);
        }
        return;
    }
    scratch.quantize(a, lda, m, k);
    let rows = &scratch.quads;
    if m == 1 {
        // One row (a stream's step): two panels at once, eight independent accumulators.
        let (u, s) = (&rows[..kq], scratch.scale[0]);
        let pairs = b.panels.chunks_exact(2 * kq);
        let last = pairs.remainder();
        let pair = |p: usize, pair: &[PanelQuad], c: &mut [F4]| {
            let (p0, p1) = pair.split_at(kq);
            let (x, y) = kernel1x2::<S>(u, p0, p1);
            let g = 2 * p * (NR / 4);
            finish::<S>(x, s, b, g, &mut c[g..g + NR / 4]);
            finish::<S>(y, s, b, g + NR / 4, &mut c[g + NR / 4..g + NR / 2]);
        };
        let tail = |c: &mut [F4]| {
            if !last.is_empty() {
                let g = n4 - NR / 4;
                finish::<S>(kernel1::<S>(u, last), s, b, g, &mut c[g..n4]);
            }
        };
        if backwards {
            tail(c);
            pairs.enumerate().rev().for_each(|(p, q)| pair(p, q, c));
        } else {
            pairs.enumerate().for_each(|(p, q)| pair(p, q, c));
            tail(c);
        }
    } else {
        for (p, panel) in b.panels.chunks_exact(kq).enumerate() {
            let g = p * (NR / 4);
            let mut i = 0;
            while i + 1 < m {
                let (u0, u1) = (&rows[i * kq..(i + 1) * kq], &rows[(i + 1) * kq..(i + 2) * kq]);
                let (x, y) = kernel2::<S>(u0, u1, panel);
                let (c0, c1) = c[i * n4..(i + 2) * n4].split_at_mut(n4);
                finish::<S>(x, scratch.scale[i], b, g, &mut c0[g..g + NR / 4]);
                finish::<S>(y, scratch.scale[i + 1], b, g, &mut c1[g..g + NR / 4]);
                i += 2;
            }
            if i < m {
                let x = kernel1::<S>(&rows[i * kq..(i + 1) * kq], panel);
                finish::<S>(x, scratch.scale[i], b, g, &mut c[i * n4 + g..i * n4 + g + NR / 4]);
            }
        }
    }
    for &i in &scratch.nonfinite {
        f32_row(&a[i * lda..i * lda + k], b, &mut c[i * n4..(i + 1) * n4]);
    }
}

/// `c += a·B` in f32 with the dequantized weights.
fn f32_row(a: &[f32], b: &QPacked, c: &mut [F4]) {
    for col in 0..b.n {
        let dot = a.iter().enumerate().fold(0f32, |s, (kk, &v)| s + v * b.weight(col, kk));
        c[col / 4][col % 4] += dot;
    }
}

/// Adds the dequantized sums of the column groups `g..g + 4` to `c`.
#[inline(always)]
fn finish<S: Simd>(acc: [S::Acc; NR / 4], s_a: f32, b: &QPacked, g: usize, c: &mut [F4]) {
    let sa = S::splat(s_a);
    for (j, (acc, c)) in acc.into_iter().zip(c).enumerate() {
        let sum = S::acc_to_f32(acc, &b.comp[g + j]);
        S::store(S::add(S::load(c), S::mul(sum, S::mul(sa, S::load(&b.scale[g + j])))), c);
    }
}

#[inline(always)]
fn kernel1x2<S: Simd>(u: &[[u8; 4]], p0: &[PanelQuad], p1: &[PanelQuad]) -> ([S::Acc; 4], [S::Acc; 4]) {
    let mut x = [S::acc_zero(); NR / 4];
    let mut y = [S::acc_zero(); NR / 4];
    for ((&q, b0), b1) in u.iter().zip(p0).zip(p1) {
        let a = S::act(u32::from_le_bytes(q));
        for j in 0..NR / 4 {
            x[j] = S::dot4(x[j], &b0[j], a);
            y[j] = S::dot4(y[j], &b1[j], a);
        }
    }
    (x, y)
}

#[inline(always)]
fn kernel2<S: Simd>(u0: &[[u8; 4]], u1: &[[u8; 4]], panel: &[PanelQuad]) -> ([S::Acc; 4], [S::Acc; 4]) {
    let mut x = [S::acc_zero(); NR / 4];
    let mut y = [S::acc_zero(); NR / 4];
    for ((&q0, &q1), blocks) in u0.iter().zip(u1).zip(panel) {
        let (a0, a1) = (S::act(u32::from_le_bytes(q0)), S::act(u32::from_le_bytes(q1)));
        for j in 0..NR / 4 {
            x[j] = S::dot4(x[j], &blocks[j], a0);
            y[j] = S::dot4(y[j], &blocks[j], a1);
        }
    }
    (x, y)
}

#[inline(always)]
fn kernel1<S: Simd>(u: &[[u8; 4]], panel: &[PanelQuad]) -> [S::Acc; 4] {
    let mut x = [S::acc_zero(); NR / 4];
    for (&q, blocks) in u.iter().zip(panel) {
        let a = S::act(u32::from_le_bytes(q));
        for j in 0..NR / 4 {
            x[j] = S::dot4(x[j], &blocks[j], a);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::simd::Portable;
    use crate::cpu::Isa;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// `qgemm_in` on `isa`, `b` packed for it.
    fn qgemm_on(isa: Isa, a: &[f32], lda: usize, m: usize, b: &QPacked, c: &mut [F4]) {
        qgemm_on_in(isa, a, lda, m, b, c, false)
    }

    fn qgemm_on_in(isa: Isa, a: &[f32], lda: usize, m: usize, b: &QPacked, c: &mut [F4], back: bool) {
        let mut scratch = QRows::default();
        match isa {
            Isa::Scalar => qgemm_in::<Portable>(a, lda, m, b, c, &mut scratch, back),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => qgemm_in::<crate::cpu::simd::Simd128>(a, lda, m, b, c, &mut scratch, back),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
            Isa::RelaxedSimd => qgemm_in::<crate::cpu::simd::RelaxedSimd>(a, lda, m, b, c, &mut scratch, back),
        }
    }

    /// xorshift64*, uniform in [-1, 1).
    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        }
    }

    /// A product to check: `m × k` activations (row stride `k + 1`) and a `k × cols` weight matrix
    /// (`w[col][kk]`), at the magnitudes `kind` picks.
    struct Problem {
        m: usize,
        k: usize,
        cols: usize,
        a: Vec<f32>,
        w: Vec<Vec<f32>>,
    }

    fn problem(m: usize, k: usize, cols: usize, kind: usize, seed: u64) -> Problem {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let lda = k + 1;
        let mut a: Vec<f32> = (0..m * lda).map(|_| rng.unit()).collect();
        let mut w: Vec<Vec<f32>> = (0..cols).map(|_| (0..k).map(|_| rng.unit() * 0.2).collect()).collect();
        match kind {
            // Saturating magnitudes, a zero row, a row of one repeated value, a zero column.
            1 => {
                a.iter_mut().for_each(|v| *v *= 1e4);
                a[..k].fill(0.0);
                if m > 1 {
                    a[lda..lda + k].fill(-3.5);
                }
                w[0].fill(0.0);
            }
            // One large entry per row and column among small ones.
            2 => {
                for (i, row) in a.chunks_mut(lda).enumerate() {
                    row[i % k] = 50.0;
                }
                for (col, wc) in w.iter_mut().enumerate() {
                    wc[col % k] = -7.0;
                }
            }
            _ => {}
        }
        Problem { m, k, cols, a, w }
    }

    impl Problem {
        fn pack(&self, isa: Isa) -> QPacked {
            let w = |col: usize, kk: usize| self.w.get(col).map(|c| c[kk]);
            QPacked::new(self.k, self.cols, isa.int8_pairs(), w).expect("finite weights pack")
        }
        fn row(&self, i: usize) -> &[f32] {
            &self.a[i * (self.k + 1)..i * (self.k + 1) + self.k]
        }
    }

    const SIZES: [usize; 6] = [1, 3, 63, 64, 65, 257];

    fn each_problem(mut f: impl FnMut(&Problem, &str)) {
        let mut seed = 0;
        for k in SIZES {
            for m in [1, 2, 3, 5] {
                for cols in [1, 16, 17, 33, 48] {
                    for kind in 0..3 {
                        seed += 1;
                        let p = problem(m, k, cols, kind, seed);
                        f(&p, &format!("m={m} k={k} cols={cols} kind={kind}"));
                    }
                }
            }
        }
    }

    /// Every instruction set sums the same integers and dequantizes them with the same float
    /// operations: the results are bit for bit those of the portable code.
    #[test]
    fn every_instruction_set_computes_the_same_bits() {
        each_problem(|p, what| {
            let b = p.pack(Isa::Scalar);
            let mut want = vec![[0.5f32; 4]; p.m * b.n4()];
            qgemm_on(Isa::Scalar, &p.a, p.k + 1, p.m, &b, &mut want);
            for isa in Isa::available() {
                let mut got = vec![[0.5f32; 4]; p.m * b.n4()];
                qgemm_on(isa, &p.a, p.k + 1, p.m, &p.pack(isa), &mut got);
                let bits = |c: &[F4]| c.as_flattened().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{isa:?} {what}");
                let mut back = vec![[0.5f32; 4]; p.m * b.n4()];
                qgemm_on_in(isa, &p.a, p.k + 1, p.m, &p.pack(isa), &mut back, true);
                assert_eq!(bits(&back), bits(&want), "{isa:?} {what} backwards");
            }
        });
    }

    /// The scheme written out plainly (quantize, multiply the signed integers in i64, scale in f64)
    /// against the packed, biased, blocked kernels.
    #[test]
    fn matches_the_scheme_written_out() {
        let quantize = |v: &[f32], max_q: f32| {
            let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
            let inv = if max > 0.0 { max_q / max } else { 0.0 };
            let q: Vec<i64> = v.iter().map(|x| (x * inv).round_ties_even().clamp(-max_q, max_q) as i64).collect();
            (q, (max / max_q) as f64)
        };
        each_problem(|p, what| {
            let b = p.pack(Isa::Scalar);
            let mut got = vec![[0f32; 4]; p.m * b.n4()];
            qgemm_on(Isa::Scalar, &p.a, p.k + 1, p.m, &b, &mut got);
            for i in 0..p.m {
                let (qa, sa) = quantize(p.row(i), ACT_MAX);
                for col in 0..b.n {
                    let (qw, sw) = p.w.get(col).map_or((vec![0; p.k], 0.0), |w| quantize(w, W_MAX));
                    let dot: i64 = qa.iter().zip(&qw).map(|(x, y)| x * y).sum();
                    let want = dot as f64 * sa * sw;
                    let g = got.as_flattened()[i * b.n + col] as f64;
                    let scale: f64 = p.row(i).iter().map(|v| v.abs() as f64).sum::<f64>() * 7.0 + 1e-30;
                    assert!((g - want).abs() <= 1e-6 * scale, "{what} row {i} col {col}: {g} vs {want}");
                }
            }
        });
    }

    /// The error against the exact product is within the worst case of rounding both operands to
    /// their grids: `|Σ a·w - Σ s_a·q_a·s_w·q_w| ≤ ½(s_w·‖a‖₁ + s_a·‖w‖₁) + ¾·k·s_a·s_w`.
    #[test]
    fn error_is_within_the_rounding_bound() {
        each_problem(|p, what| {
            let b = p.pack(Isa::Scalar);
            let mut got = vec![[0f32; 4]; p.m * b.n4()];
            qgemm_on(Isa::Scalar, &p.a, p.k + 1, p.m, &b, &mut got);
            for i in 0..p.m {
                let a = p.row(i);
                let norm = |v: &[f32]| {
                    let l1: f64 = v.iter().map(|x| x.abs() as f64).sum();
                    (l1, v.iter().fold(0f64, |m, x| m.max(x.abs() as f64)))
                };
                let (a1, amax) = norm(a);
                for (col, w) in p.w.iter().enumerate() {
                    let (w1, wmax) = norm(w);
                    let (sa, sw) = (amax / ACT_MAX as f64, wmax / W_MAX as f64);
                    let bound = 0.5 * (sw * a1 + sa * w1) + 0.75 * p.k as f64 * sa * sw;
                    let exact: f64 = a.iter().zip(w).map(|(&x, &y)| x as f64 * y as f64).sum();
                    let err = (got.as_flattened()[i * b.n + col] as f64 - exact).abs();
                    // f32 rounding of the scales and the result on top.
                    let slack = 1e-6 * a1 * wmax + 1e-30;
                    assert!(
                        err <= bound * (1.0 + 1e-4) + slack,
                        "{what} row {i} col {col}: error {err}, bound {bound}"
                    );
                }
            }
        });
    }

    /// A row with a NaN or infinity is multiplied in f32 (NaN in, NaN out); the other rows are not
    /// touched by it.
    #[test]
    fn non_finite_rows_go_through_f32() {
        for isa in Isa::available() {
            let p = problem(3, 65, 20, 0, 7);
            let b = p.pack(isa);
            let lda = p.k + 1;
            let mut a = p.a.clone();
            a[lda + 5] = f32::NAN;
            a[2 * lda + 9] = f32::INFINITY;
            let mut got = vec![[0f32; 4]; 3 * b.n4()];
            qgemm_on(isa, &a, lda, 3, &b, &mut got);
            let mut alone = vec![[0f32; 4]; b.n4()];
            qgemm_on(isa, &a, lda, 1, &b, &mut alone);
            let got = got.as_flattened();
            assert_eq!(&got[..b.n], alone.as_flattened(), "{isa:?}: row 0 on its own");
            assert!(got[b.n..b.n + 20].iter().all(|v| v.is_nan()), "{isa:?}: the NaN row");
            for col in 0..20 {
                let want: f32 = (0..p.k).map(|kk| a[2 * lda + kk] * b.weight(col, kk)).sum();
                let g = got[2 * b.n + col];
                assert!(g == want || (g.is_nan() && want.is_nan()), "{isa:?}: inf row col {col}: {g} vs {want}");
                assert!(!g.is_finite(), "{isa:?}: inf row col {col} is {g}");
            }
        }
    }

    #[test]
    fn what_int8_cannot_stand_for_is_refused() {
        assert!(QPacked::new(4, 3, false, |_, kk| Some(if kk == 2 { f32::NAN } else { 1.0 })).is_none());
        assert!(QPacked::new(4, 3, true, |_, _| Some(f32::INFINITY)).is_none());
        assert!(QPacked::new(MAX_K + 1, 1, false, |_, _| Some(1.0)).is_none());
        // All-zero and subnormal columns and rows count as zeros: no infinity or NaN on the way.
        let a = [1.0, -2.0, 3.0, 0.5, 1e-40, 1e-40, 0.0, -1e-41, 0.0, 0.0];
        for isa in Isa::available() {
            let b = QPacked::new(5, 3, isa.int8_pairs(), |col, _| [0.0, 1e-44, 1.0].get(col).copied()).unwrap();
            let mut c = vec![[0f32; 4]; 2 * b.n4()];
            qgemm_on(isa, &a, 5, 2, &b, &mut c);
            let c = c.as_flattened();
            assert_eq!([c[0], c[1], c[b.n], c[b.n + 1], c[b.n + 2]], [0.0; 5], "{isa:?}");
            assert!((c[2] - 2.5).abs() < 0.1, "{isa:?}: {}", c[2]);
        }
    }

    /// Weights packed for another instruction set's layout are still multiplied right (in f32).
    #[test]
    fn another_layout_falls_back_to_f32() {
        let p = problem(3, 17, 20, 0, 9);
        for isa in Isa::available() {
            let w = |col: usize, kk: usize| p.w.get(col).map(|c| c[kk]);
            let b = QPacked::new(p.k, p.cols, !isa.int8_pairs(), w).unwrap();
            let mut got = vec![[0f32; 4]; 3 * b.n4()];
            qgemm_on(isa, &p.a, p.k + 1, 3, &b, &mut got);
            for i in 0..3 {
                for col in 0..b.n {
                    let want: f32 = (0..p.k).map(|kk| p.row(i)[kk] * b.weight(col, kk)).sum();
                    let g = got.as_flattened()[i * b.n + col];
                    assert!((g - want).abs() <= 1e-5, "{isa:?} row {i} col {col}: {g} vs {want}");
                }
            }
        }
    }
}
