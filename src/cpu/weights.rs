//! A recurrent node's weights, packed for the kernels: per direction, `W` and `R` as [`Matrix`]es
//! whose columns are the gates laid out at a stride of `hp` (the hidden size rounded up to whole
//! vectors), so every gate of every hidden unit sits at the same lane of the same vector.

use super::gemm::{gemm_in, Packed};
use super::int8::{qgemm_in, QPacked, QRows};
use super::simd::{Simd, F4};
use super::Isa;
use crate::cell::{CellKind, Dims, RecurrentInputs};
use crate::error::Result;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rounds up to whole vectors.
pub fn round4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// A packed weight matrix: f32, or int8 with a scale per column (`CpuKernels::with_int8`).
#[derive(Debug, Clone)]
pub enum Matrix {
    F32(Packed),
    Int8(QPacked),
}

impl Matrix {
    /// Packs `cols` columns of `k` entries as [`Packed::new`] does; in int8 for the instruction set
    /// `int8` if given and int8 can stand for them (finite values, `k` not too long), else in f32.
    pub fn new(k: usize, cols: usize, int8: Option<Isa>, value: impl Fn(usize, usize) -> Option<f32>) -> Matrix {
        match int8.and_then(|isa| QPacked::new(k, cols, isa.int8_pairs(), &value)) {
            Some(q) => Matrix::Int8(q),
            None => Matrix::F32(Packed::new(k, cols, value)),
        }
    }

    /// Padded column count, a multiple of 16.
    pub fn n(&self) -> usize {
        match self {
            Matrix::F32(p) => p.n,
            Matrix::Int8(q) => q.n,
        }
    }

    /// Vectors per row of `C`.
    pub fn n4(&self) -> usize {
        self.n() / 4
    }

    pub fn is_int8(&self) -> bool {
        matches!(self, Matrix::Int8(_))
    }

    /// `c[i] += a[i]·B` (see [`gemm_in`]; `backwards` walks a one-row product's panels last to
    /// first); `scratch` holds the quantized rows of `a` for int8.
    #[inline(always)]
    pub fn gemm<S: Simd>(&self, a: &[f32], lda: usize, m: usize, c: &mut [F4], scratch: &mut QRows, backwards: bool) {
        match self {
            Matrix::F32(p) => gemm_in::<S>(a, lda, m, p, c, backwards),
            Matrix::Int8(q) => qgemm_in::<S>(a, lda, m, q, c, scratch, backwards),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DirWeights {
    /// `X·Wᵀ`, columns `g·hp + j`.
    pub w: Matrix,
    /// Added to every `X·Wᵀ` row: `Wb`, plus every part of `Rb` that is a plain addition.
    pub x_bias: Vec<F4>,
    /// `H·Rᵀ`; for GRU without `linear_before_reset` only the `z` and `r` gates.
    pub r: Matrix,
    /// Added to every `H·Rᵀ` row: the part of `Rb` that is not a plain addition (GRU's `Rbh` under
    /// `linear_before_reset`), else zeros.
    pub r_bias: Vec<F4>,
    /// GRU without `linear_before_reset`: `Rh`, applied to `r ⊙ H`.
    pub r_h: Option<Matrix>,
    /// LSTM peepholes `i o f` at stride `hp` (zeros when absent, as the reference adds `0·c`).
    pub peep: Vec<F4>,
    /// LSTM output projection (f32 also under int8: it is neither `W` nor `R`).
    pub proj: Option<Packed>,
    /// Which way the next single-step call walks the weights (`recurrent.rs`).
    pub flip: Flip,
}

/// A toggle flipped by every single-step call, through `&self` (the kernels are shared).
#[derive(Debug, Default)]
pub struct Flip(AtomicBool);

impl Flip {
    /// The current value; the next call sees the other one.
    pub fn next(&self) -> bool {
        self.0.fetch_xor(true, Ordering::Relaxed)
    }
}

impl Clone for Flip {
    fn clone(&self) -> Flip {
        Flip(AtomicBool::new(self.0.load(Ordering::Relaxed)))
    }
}

#[derive(Debug, Clone)]
pub struct NodeWeights {
    pub cell: CellKind,
    pub input: usize,
    pub hidden: usize,
    pub out: usize,
    pub dirs: Vec<DirWeights>,
    /// The instruction set `W` and `R` were packed in int8 for, if they were.
    pub int8: Option<Isa>,
    /// Where the tensors packed here live, so `run` can tell whether it is handed the same ones.
    source: [(usize, usize); 5],
}

fn source_of(inp: &RecurrentInputs<'_>) -> Result<[(usize, usize); 5]> {
    let at = |t: Option<&crate::tensor::Tensor>| -> Result<(usize, usize)> {
        Ok(match t {
            Some(t) => {
                let d = t.as_f32()?;
                (d.as_ptr() as usize, d.len())
            }
            None => (0, 0),
        })
    };
    Ok([at(Some(inp.w))?, at(Some(inp.r))?, at(inp.b)?, at(inp.p)?, at(inp.proj)?])
}

impl NodeWeights {
    /// Packs the weights of `inp`, whose shapes `check_inputs` has validated as `dims`; `W` and `R`
    /// in int8 for the instruction set `int8` if given (a matrix int8 cannot stand for stays f32).
    pub fn pack(cell: CellKind, inp: &RecurrentInputs<'_>, dims: &Dims, int8: Option<Isa>) -> Result<NodeWeights> {
        let Dims { input, hidden, out, dirs, gates, .. } = *dims;
        let (hp, gh) = (round4(hidden), gates * hidden);
        let w = inp.w.as_f32()?;
        let r = inp.r.as_f32()?;
        let bias = inp.b.map(|b| b.as_f32()).transpose()?;
        let p = inp.p.map(|p| p.as_f32()).transpose()?;
        let proj = inp.proj.map(|p| p.as_f32()).transpose()?;
        let gru_lbr = matches!(cell, CellKind::Gru { linear_before_reset: true });
        let gru_split = matches!(cell, CellKind::Gru { linear_before_reset: false });
        // Column `g·hp + j` of the packed matrices is row `g·hidden + j` of W/R, for gates g0..g1.
        let unit = |col: usize, g0: usize, g1: usize| {
            let (g, j) = (g0 + col / hp, col % hp);
            (g < g1 && j < hidden).then_some(g * hidden + j)
        };
        let mut out_dirs = Vec::with_capacity(dirs);
        for d in 0..dirs {
            let w_d = &w[d * gh * input..(d + 1) * gh * input];
            let r_d = &r[d * gh * out..(d + 1) * gh * out];
            let r_gates = if gru_split { 2 } else { gates };
            let wp =
                Matrix::new(input, gates * hp, int8, |col, kk| unit(col, 0, gates).map(|row| w_d[row * input + kk]));
            let rp =
                Matrix::new(out, r_gates * hp, int8, |col, kk| unit(col, 0, r_gates).map(|row| r_d[row * out + kk]));
            let r_h =
                gru_split.then(|| Matrix::new(out, hp, int8, |col, kk| unit(col, 2, 3).map(|row| r_d[row * out + kk])));
            let mut x_bias = vec![[0f32; 4]; wp.n4()];
            let mut r_bias = vec![[0f32; 4]; rp.n4()];
            if let Some(b) = bias {
                let (wb, rb) = b[d * 2 * gh..(d + 1) * 2 * gh].split_at(gh);
                for col in 0..gates * hp {
                    if let Some(row) = unit(col, 0, gates) {
                        let xb = &mut x_bias.as_flattened_mut()[col];
                        *xb = wb[row];
                        if gru_lbr && row >= 2 * hidden {
                            r_bias.as_flattened_mut()[col] = rb[row];
                        } else {
                            *xb += rb[row];
                        }
                    }
                }
            }
            let mut peep = vec![[0f32; 4]; 3 * hp / 4];
            if let Some(p) = p {
                for col in 0..3 * hp {
                    if let Some(row) = unit(col, 0, 3) {
                        peep.as_flattened_mut()[col] = p[d * 3 * hidden + row];
                    }
                }
            }
            let proj = proj.map(|pm| {
                let pm = &pm[d * out * hidden..(d + 1) * out * hidden];
                Packed::new(hidden, out, |col, kk| (col < out).then(|| pm[col * hidden + kk]))
            });
            out_dirs.push(DirWeights { w: wp, x_bias, r: rp, r_bias, r_h, peep, proj, flip: Flip::default() });
        }
        Ok(NodeWeights { cell, input, hidden, out, dirs: out_dirs, int8, source: source_of(inp)? })
    }

    /// Whether these are the packed weights of `inp` (same tensors, same sizes, same precision).
    pub fn packs(&self, cell: CellKind, inp: &RecurrentInputs<'_>, dims: &Dims, int8: Option<Isa>) -> bool {
        self.cell == cell
            && self.int8 == int8
            && (self.input, self.hidden, self.out, self.dirs.len()) == (dims.input, dims.hidden, dims.out, dims.dirs)
            && source_of(inp).is_ok_and(|s| s == self.source)
    }
}
