//! A recurrent node's weights, packed for the kernels: per direction, `W` and `R` as [`Packed`]
//! matrices whose columns are the gates laid out at a stride of `hp` (the hidden size rounded up
//! to whole vectors), so every gate of every hidden unit sits at the same lane of the same vector.

use super::gemm::Packed;
use super::simd::F4;
use crate::cell::{CellKind, Dims, RecurrentInputs};
use crate::error::Result;

/// Rounds up to whole vectors.
pub fn round4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

#[derive(Debug, Clone)]
pub struct DirWeights {
    /// `X·Wᵀ`, columns `g·hp + j`.
    pub w: Packed,
    /// Added to every `X·Wᵀ` row: `Wb`, plus every part of `Rb` that is a plain addition.
    pub x_bias: Vec<F4>,
    /// `H·Rᵀ`; for GRU without `linear_before_reset` only the `z` and `r` gates.
    pub r: Packed,
    /// Added to every `H·Rᵀ` row: the part of `Rb` that is not a plain addition (GRU's `Rbh` under
    /// `linear_before_reset`), else zeros.
    pub r_bias: Vec<F4>,
    /// GRU without `linear_before_reset`: `Rh`, applied to `r ⊙ H`.
    pub r_h: Option<Packed>,
    /// LSTM peepholes `i o f` at stride `hp` (zeros when absent, as the reference adds `0·c`).
    pub peep: Vec<F4>,
    /// LSTM output projection.
    pub proj: Option<Packed>,
}

#[derive(Debug, Clone)]
pub struct NodeWeights {
    pub cell: CellKind,
    pub input: usize,
    pub hidden: usize,
    pub out: usize,
    pub dirs: Vec<DirWeights>,
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
    /// Packs the weights of `inp`, whose shapes `check_inputs` has validated as `dims`.
    pub fn pack(cell: CellKind, inp: &RecurrentInputs<'_>, dims: &Dims) -> Result<NodeWeights> {
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
            let wp = Packed::new(input, gates * hp, |col, kk| unit(col, 0, gates).map(|row| w_d[row * input + kk]));
            let rp = Packed::new(out, r_gates * hp, |col, kk| unit(col, 0, r_gates).map(|row| r_d[row * out + kk]));
            let r_h = gru_split.then(|| Packed::new(out, hp, |col, kk| unit(col, 2, 3).map(|row| r_d[row * out + kk])));
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
            out_dirs.push(DirWeights { w: wp, x_bias, r: rp, r_bias, r_h, peep, proj });
        }
        Ok(NodeWeights { cell, input, hidden, out, dirs: out_dirs, source: source_of(inp)? })
    }

    /// Whether these are the packed weights of `inp` (same tensors, same sizes).
    pub fn packs(&self, cell: CellKind, inp: &RecurrentInputs<'_>, dims: &Dims) -> bool {
        self.cell == cell
            && (self.input, self.hidden, self.out, self.dirs.len()) == (dims.input, dims.hidden, dims.out, dims.dirs)
            && source_of(inp).is_ok_and(|s| s == self.source)
    }
}
