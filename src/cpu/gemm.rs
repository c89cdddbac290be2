//! `C += A·B` with `B` a constant weight matrix packed once into panels of 16 columns, so the
//! inner loop streams one panel row (four vectors) per `k` and keeps two rows of `C` in registers
//! (one row: three panels, twelve accumulators). This one kernel is both the input projection of a
//! whole sequence (`A` = all `T·B` input rows) and the recurrent step (`A` = the batch's hidden
//! states, each weight loaded once for two rows).
//!
//! Register budget: x64 has 16 vector registers for V8 to give wasm. Twelve accumulators plus the
//! broadcast input and one loaded weight fit; a three-row GEMM kernel (twelve accumulators, four
//! weights, three inputs: 19) did not, and ran batch64 at half speed in Chromium.

use super::simd::{Simd, F4};

/// Columns per panel.
pub const NR: usize = 16;

/// Rows of `k` per block of a panel in the many-row product.
const KC: usize = 256;

/// One `k` of one panel: 16 columns as four vectors.
pub type PanelRow = [F4; NR / 4];

/// A `k × n` matrix (`n` padded with zero columns to a multiple of [`NR`]) in panel-major order.
#[derive(Debug, Clone)]
pub struct Packed {
    pub k: usize,
    /// Padded column count, a multiple of [`NR`]; `C` rows have this many floats.
    pub n: usize,
    panels: Vec<PanelRow>,
}

impl Packed {
    /// Packs `cols` columns of `k` entries; `value(col, kk)` gives column `col`'s entry `kk`, or
    /// `None` for a padding column (all zeros).
    pub fn new(k: usize, cols: usize, value: impl Fn(usize, usize) -> Option<f32>) -> Packed {
        let n = cols.div_ceil(NR) * NR;
        let mut panels = vec![[[0f32; 4]; NR / 4]; (n / NR) * k];
        if k > 0 {
            for (p, panel) in panels.chunks_exact_mut(k).enumerate() {
                for lane in 0..NR {
                    for (kk, row) in panel.iter_mut().enumerate() {
                        row[lane / 4][lane % 4] = value(p * NR + lane, kk).unwrap_or(0.0);
                    }
                }
            }
        }
        Packed { k, n, panels }
    }

    /// Vectors per row of `C`.
    pub fn n4(&self) -> usize {
        self.n / 4
    }
}

/// `c[i] += a[i]·B` for the `m` rows `a[i·lda .. i·lda + k]`; `c` holds `m` rows of `b.n4()` vectors.
/// Slices too short for the sizes are a caller bug; the kernel then stops early instead of panicking.
pub fn gemm<S: Simd>(a: &[f32], lda: usize, m: usize, b: &Packed, c: &mut [F4]) {
    gemm_in::<S>(a, lda, m, b, c, false)
}

/// [`gemm`]; with `backwards` a one-row product walks the panels last to first (the same sums,
/// bit for bit: each column's `k` order is unchanged). A stream's step reads all its weights
/// once per call, more than L2 holds at H = 256; walking them backwards on every other call starts
/// with the part the previous call left in L2 (`recurrent.rs`).
#[inline(never)]
pub fn gemm_in<S: Simd>(a: &[f32], lda: usize, m: usize, b: &Packed, c: &mut [F4], backwards: bool) {
    let (k, n4) = (b.k, b.n4());
    if k == 0 || m == 0 || n4 == 0 || lda < k || c.len() < m * n4 || a.len() < (m - 1) * lda + k {
        return;
    }
    if m == 1 {
        // One row (a stream's step): three panels at once, twelve independent accumulators. Eight
        // (two panels) exactly cover the multiply-add latency at two per cycle, leaving no slack
        // for a load that comes late; twelve still leave registers for the weight and the input.
        // What is left after the triples goes in pairs: a panel left on its own would have four
        // accumulators, a dependency chain that runs at a third of the speed (so 3n + 1 panels
        // are n - 1 triples and two pairs).
        let a0 = &a[..k];
        let np = b.panels.len() / k;
        let nt = if np % 3 == 1 && np >= 4 { np / 3 - 1 } else { np / 3 };
        let (head, rest) = c[..n4].split_at_mut(nt * 3 * (NR / 4));
        let (triples, last) = b.panels.split_at(nt * 3 * k);
        let tail = |rest: &mut [F4]| {
            for (c0, pair) in rest.chunks_mut(2 * (NR / 4)).zip(last.chunks(2 * k)) {
                match (pair.len() / k, c0.len() / (NR / 4)) {
                    (2, 2) => {
                        let (p0, p1) = pair.split_at(k);
                        kernel1x2::<S>(a0, p0, p1, c0);
                    }
                    (1, 1) => kernel1::<S>(a0, pair, c0),
                    _ => {}
                }
            }
        };
        let each = head.chunks_exact_mut(3 * (NR / 4)).zip(triples.chunks_exact(3 * k));
        let one = |(c0, triple): (&mut [F4], &[PanelRow])| {
            let (p0, p12) = triple.split_at(k);
            let (p1, p2) = p12.split_at(k);
            kernel1x3::<S>(a0, p0, p1, p2, c0);
        };
        if backwards {
            tail(rest);
            each.rev().for_each(one);
        } else {
            each.for_each(one);
            tail(rest);
        }
        return;
    }
    for (p, panel) in b.panels.chunks_exact(k).enumerate() {
        let col = p * (NR / 4);
        // The panel in blocks of KC rows of `k` (16 KiB), so that the block stays in L1 across
        // all the rows of `a` instead of streaming from L2 for every pair of rows.
        for k0 in (0..k).step_by(KC) {
            let k1 = (k0 + KC).min(k);
            let panel = &panel[k0..k1];
            let mut rows = c.chunks_exact_mut(n4).zip(a.chunks(lda));
            loop {
                match (rows.next(), rows.next()) {
                    (Some((c0, a0)), Some((c1, a1))) => {
                        kernel2::<S>(&a0[k0..k1], &a1[k0..k1], panel, &mut c0[col..col + 4], &mut c1[col..col + 4])
                    }
                    (Some((c0, a0)), None) => {
                        kernel1::<S>(&a0[k0..k1], panel, &mut c0[col..col + 4]);
                        break;
                    }
                    _ => break,
                }
            }
        }
    }
}

#[inline(always)]
fn kernel2<S: Simd>(a0: &[f32], a1: &[f32], panel: &[PanelRow], c0: &mut [F4], c1: &mut [F4]) {
    let mut x = [S::load(&c0[0]), S::load(&c0[1]), S::load(&c0[2]), S::load(&c0[3])];
    let mut y = [S::load(&c1[0]), S::load(&c1[1]), S::load(&c1[2]), S::load(&c1[3])];
    for ((&u, &v), row) in a0.iter().zip(a1).zip(panel) {
        let (u, v) = (S::splat(u), S::splat(v));
        for j in 0..NR / 4 {
            let w = S::load(&row[j]);
            x[j] = S::madd(u, w, x[j]);
            y[j] = S::madd(v, w, y[j]);
        }
    }
    for j in 0..NR / 4 {
        S::store(x[j], &mut c0[j]);
        S::store(y[j], &mut c1[j]);
    }
}

#[inline(always)]
fn kernel1x2<S: Simd>(a0: &[f32], p0: &[PanelRow], p1: &[PanelRow], c0: &mut [F4]) {
    let mut x = [S::load(&c0[0]), S::load(&c0[1]), S::load(&c0[2]), S::load(&c0[3])];
    let mut y = [S::load(&c0[4]), S::load(&c0[5]), S::load(&c0[6]), S::load(&c0[7])];
    for ((&u, r0), r1) in a0.iter().zip(p0).zip(p1) {
        let u = S::splat(u);
        for j in 0..NR / 4 {
            x[j] = S::madd(u, S::load(&r0[j]), x[j]);
            y[j] = S::madd(u, S::load(&r1[j]), y[j]);
        }
    }
    for j in 0..NR / 4 {
        S::store(x[j], &mut c0[j]);
        S::store(y[j], &mut c0[NR / 4 + j]);
    }
}

#[inline(always)]
fn kernel1x3<S: Simd>(a0: &[f32], p0: &[PanelRow], p1: &[PanelRow], p2: &[PanelRow], c0: &mut [F4]) {
    let mut x = [S::load(&c0[0]), S::load(&c0[1]), S::load(&c0[2]), S::load(&c0[3])];
    let mut y = [S::load(&c0[4]), S::load(&c0[5]), S::load(&c0[6]), S::load(&c0[7])];
    let mut z = [S::load(&c0[8]), S::load(&c0[9]), S::load(&c0[10]), S::load(&c0[11])];
    for (((&u, r0), r1), r2) in a0.iter().zip(p0).zip(p1).zip(p2) {
        let u = S::splat(u);
        for j in 0..NR / 4 {
            x[j] = S::madd(u, S::load(&r0[j]), x[j]);
            y[j] = S::madd(u, S::load(&r1[j]), y[j]);
            z[j] = S::madd(u, S::load(&r2[j]), z[j]);
        }
    }
    for j in 0..NR / 4 {
        S::store(x[j], &mut c0[j]);
        S::store(y[j], &mut c0[NR / 4 + j]);
        S::store(z[j], &mut c0[NR / 2 + j]);
    }
}

#[inline(always)]
fn kernel1<S: Simd>(a0: &[f32], panel: &[PanelRow], c0: &mut [F4]) {
    let mut x = [S::load(&c0[0]), S::load(&c0[1]), S::load(&c0[2]), S::load(&c0[3])];
    for (&u, row) in a0.iter().zip(panel) {
        let u = S::splat(u);
        for j in 0..NR / 4 {
            x[j] = S::madd(u, S::load(&row[j]), x[j]);
        }
    }
    for j in 0..NR / 4 {
        S::store(x[j], &mut c0[j]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::simd::Portable;

    #[test]
    fn matches_a_naive_product_at_awkward_sizes() {
        for (m, k, cols) in [
            (1, 1, 1),
            (3, 5, 17),
            (2, 0, 4),
            (5, 65, 33),
            (4, 3, 16),
            (1, 7, 33),
            (1, 9, 64),
            (5, 513, 20),
            (1, 5, 48),
            (1, 3, 80),
            (1, 65, 96),
            (1, 2, 16),
            (1, 4, 32),
        ] {
            let a: Vec<f32> = (0..m * (k + 1)).map(|i| (i % 7) as f32 - 3.0).collect();
            let w = |col: usize, kk: usize| (col < cols).then(|| ((col * 3 + kk) % 5) as f32 * 0.5);
            let b = Packed::new(k, cols, w);
            let mut c = vec![[1f32; 4]; m * b.n4()];
            gemm::<Portable>(&a, k + 1, m, &b, &mut c);
            let mut back = vec![[1f32; 4]; m * b.n4()];
            gemm_in::<Portable>(&a, k + 1, m, &b, &mut back, true);
            assert_eq!(back, c, "backwards m={m} k={k} cols={cols}");
            for i in 0..m {
                for col in 0..b.n {
                    let want = 1.0 + (0..k).map(|kk| a[i * (k + 1) + kk] * w(col, kk).unwrap_or(0.0)).sum::<f32>();
                    assert_eq!(c.as_flattened()[i * b.n + col], want, "m={m} k={k} row {i} col {col}");
                }
            }
        }
    }
}
