//! What the kernels read, in the layout they read it: weights with interleaved gate rows, the
//! per-step uniform, activation codes. Shared by the GPU path and its CPU twin.

use crate::cell::{self, Activation, CellKind, Dims, RecurrentInputs, RecurrentSpec};
use crate::error::Result;

/// `StepParams.flags` bits (step_params.wgsl).
pub const FLAG_LINEAR_BEFORE_RESET: u32 = 1;
pub const FLAG_INPUT_FORGET: u32 = 2;

/// The uniform of `state_slots`, field for field `SlotParams` of `shaders/state_slots.wgsl`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotParams {
    pub batch: u32,
    pub out: u32,
    pub hidden: u32,
    pub slot_len: u32,
    pub slot_h: u32,
    pub slot_c: u32,
    pub state_h: u32,
    pub state_c: u32,
    pub has_c: u32,
    pub to_pool: u32,
}

impl SlotParams {
    /// Direction `d`'s gather (`to_pool` false: before its first step) or scatter (after step
    /// `steps`, whose h is in the half of the working state that step wrote) for a run of `dims`.
    pub fn new(dims: &crate::cell::Dims, slot_len: usize, lstm: bool, d: usize, to_pool: bool, steps: usize) -> Self {
        let crate::cell::Dims { batch, out, hidden, dirs, .. } = *dims;
        SlotParams {
            batch: batch as u32,
            out: out as u32,
            hidden: hidden as u32,
            slot_len: slot_len as u32,
            slot_h: (d * out) as u32,
            slot_c: (dirs * out + d * hidden) as u32,
            state_h: if to_pool { ((steps % 2) * batch * out) as u32 } else { 0 },
            state_c: (2 * batch * out) as u32,
            has_c: lstm as u32,
            to_pool: to_pool as u32,
        }
    }

    /// The 48 bytes of the WGSL struct (twelve u32, the last two padding).
    pub fn to_bytes(&self) -> [u8; 48] {
        let words: [u32; 12] = [
            self.batch,
            self.out,
            self.hidden,
            self.slot_len,
            self.slot_h,
            self.slot_c,
            self.state_h,
            self.state_c,
            self.has_c,
            self.to_pool,
            0,
            0,
        ];
        let mut b = [0u8; 48];
        for (chunk, w) in b.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

/// The uniform of the step kernels, field for field `StepParams` of `shaders/step_params.wgsl`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepParams {
    pub batch: u32,
    pub hidden: u32,
    pub state_size: u32,
    pub step: u32,
    pub local_step: u32,
    pub flags: u32,
    pub clip: f32,
    pub acts: [u32; 4],
    pub alphas: [f32; 4],
    pub betas: [f32; 4],
}

impl StepParams {
    /// The 80 bytes of the WGSL struct (std140-compatible: eight scalars, then three vec4s).
    pub fn to_bytes(&self) -> [u8; 80] {
        let words: [u32; 20] = [
            self.batch,
            self.hidden,
            self.state_size,
            self.step,
            self.local_step,
            self.flags,
            self.clip.to_bits(),
            0,
            self.acts[0],
            self.acts[1],
            self.acts[2],
            self.acts[3],
            self.alphas[0].to_bits(),
            self.alphas[1].to_bits(),
            self.alphas[2].to_bits(),
            self.alphas[3].to_bits(),
            self.betas[0].to_bits(),
            self.betas[1].to_bits(),
            self.betas[2].to_bits(),
            self.betas[3].to_bits(),
        ];
        let mut out = [0u8; 80];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

/// An activation as `cell_math.wgsl`'s `activate` takes it: (kind, alpha, beta).
pub fn activation_code(a: Activation) -> (u32, f32, f32) {
    match a {
        Activation::Sigmoid => (0, 0.0, 0.0),
        Activation::Tanh => (1, 0.0, 0.0),
        Activation::Relu => (2, 0.0, 0.0),
        Activation::HardSigmoid { alpha, beta } => (3, alpha, beta),
        Activation::LeakyRelu { alpha } => (4, alpha, 0.0),
        Activation::Elu { alpha } => (5, alpha, 0.0),
        Activation::Softsign => (6, 0.0, 0.0),
        Activation::Softplus => (7, 0.0, 0.0),
        Activation::Affine { alpha, beta } => (8, alpha, beta),
        Activation::ScaledTanh { alpha, beta } => (9, alpha, beta),
        Activation::ThresholdedRelu { alpha } => (10, alpha, 0.0),
    }
}

/// The step uniform of direction `d` of a node, for step `step` (`local_step` within its chunk).
pub fn step_params(spec: &RecurrentSpec, dims: &Dims, d: usize, step: u32, local_step: u32) -> StepParams {
    let per_dir = spec.cell.activations_per_direction();
    let mut acts = [0u32; 4];
    let mut alphas = [0f32; 4];
    let mut betas = [0f32; 4];
    for (i, &a) in spec.activations[d * per_dir..(d + 1) * per_dir].iter().enumerate() {
        (acts[i], alphas[i], betas[i]) = activation_code(a);
    }
    let flags = match spec.cell {
        CellKind::Gru { linear_before_reset: true } => FLAG_LINEAR_BEFORE_RESET,
        CellKind::Lstm { input_forget: true } => FLAG_INPUT_FORGET,
        _ => 0,
    };
    StepParams {
        batch: dims.batch as u32,
        hidden: dims.hidden as u32,
        state_size: dims.out as u32,
        step,
        local_step,
        flags,
        clip: spec.clip.unwrap_or(f32::MAX),
        acts,
        alphas,
        betas,
    }
}

/// One direction of a recurrent node, packed for the kernels: gate rows interleaved (row `G·j + g`
/// is gate `g` of hidden unit `j`), so one workgroup's units are one contiguous block of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedDirection {
    /// `[G·H, I]`.
    pub w: Vec<f32>,
    /// `[G·H, K]`.
    pub r: Vec<f32>,
    /// `[G·H]`: `Wb`, added by the input projection.
    pub w_bias: Vec<f32>,
    /// `[G·H + 3·H]`: `Rb` interleaved, then the peepholes `p_i, p_o, p_f` (zeros when absent).
    pub vecs: Vec<f32>,
}

/// Row `g·H + j` of an ONNX `[G·H, n]` block goes to row `G·j + g`.
pub fn interleave_rows(src: &[f32], gates: usize, hidden: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; src.len()];
    for g in 0..gates {
        for j in 0..hidden {
            let from = (g * hidden + j) * n;
            let to = (gates * j + g) * n;
            out[to..to + n].copy_from_slice(&src[from..from + n]);
        }
    }
    out
}

/// Packs direction `d` of a node's weights.
pub fn pack_direction(inputs: &RecurrentInputs<'_>, dims: &Dims, d: usize) -> Result<PackedDirection> {
    let Dims { input, hidden, out, gates, .. } = *dims;
    let gh = gates * hidden;
    let w = &inputs.w.as_f32()?[d * gh * input..(d + 1) * gh * input];
    let r = &inputs.r.as_f32()?[d * gh * out..(d + 1) * gh * out];
    let (wb, rb) = match inputs.b {
        Some(b) => {
            let b = &b.as_f32()?[d * 2 * gh..(d + 1) * 2 * gh];
            (interleave_rows(&b[..gh], gates, hidden, 1), interleave_rows(&b[gh..], gates, hidden, 1))
        }
        None => (vec![0f32; gh], vec![0f32; gh]),
    };
    let mut vecs = rb;
    match inputs.p {
        Some(p) => vecs.extend_from_slice(&p.as_f32()?[d * 3 * hidden..(d + 1) * 3 * hidden]),
        None => vecs.resize(gh + 3 * hidden, 0.0),
    }
    Ok(PackedDirection {
        w: interleave_rows(w, gates, hidden, input),
        r: interleave_rows(r, gates, hidden, out),
        w_bias: wb,
        vecs,
    })
}

/// `X` of direction `d` as the kernels consume it: `[T, B, I]` in step order, so the reverse
/// direction reads entry `b` backwards from its own length (`sequence_lens`); zeros past it.
pub fn direction_input(x_layout0: &[f32], dims: &Dims, lens: &[u32], reverse: bool) -> Vec<f32> {
    if !reverse {
        return x_layout0.to_vec();
    }
    let Dims { seq, batch, input, .. } = *dims;
    let mut out = vec![0f32; seq * batch * input];
    for (b, &len) in lens.iter().enumerate() {
        let len = len as usize;
        for s in 0..len {
            let t = len - 1 - s;
            let (src, dst) = ((t * batch + b) * input, (s * batch + b) * input);
            out[dst..dst + input].copy_from_slice(&x_layout0[src..src + input]);
        }
    }
    out
}

/// `X` in layout 0 (`[T, B, I]`), transposing a layout-1 (`[B, T, I]`) input.
pub fn x_layout0(spec: &RecurrentSpec, dims: &Dims, x: &[f32]) -> Vec<f32> {
    if spec.layout == 0 {
        return x.to_vec();
    }
    cell::swap_leading(x, dims.batch, dims.seq, dims.input)
}

/// An initial state `[D, B, n]` in layout 0 (zeros when absent), transposing layout 1 (`[B, D, n]`).
pub fn state_layout0(spec: &RecurrentSpec, dims: &Dims, s: Option<&[f32]>, n: usize) -> Vec<f32> {
    let Dims { batch, dirs, .. } = *dims;
    let Some(s) = s else { return vec![0f32; dirs * batch * n] };
    if spec.layout == 0 {
        return s.to_vec();
    }
    cell::swap_leading(s, batch, dirs, n)
}

/// Per batch entry, how many steps it runs (`sequence_lens`, else T).
pub fn lengths(inputs: &RecurrentInputs<'_>, dims: &Dims) -> Result<Vec<u32>> {
    Ok(match inputs.sequence_lens {
        Some(sl) => sl.as_i64()?.iter().map(|&l| l as u32).collect(),
        None => vec![dims.seq as u32; dims.batch],
    })
}
