//! The CPU twin of every GPU kernel: same names as the shader entry points, same buffers, same
//! math (clamped exponentials, f32 accumulation), no tiling. The GPU output is compared against
//! these in `tests/gpu_kernels.rs`, and [`run_node`] — the whole GPU pipeline on the CPU — against
//! the scalar reference, so a failure points at either the kernel or the orchestration.

use super::layer::{self, SlotParams, StepParams, FLAG_INPUT_FORGET, FLAG_LINEAR_BEFORE_RESET};
use crate::cell::{self, CellKind, RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use crate::error::Result;

/// `state_slots` of state_slots.wgsl: gathers (`to_pool == 0`) or scatters the state of the batch's
/// sessions between `pool` and `state`. Indices outside the buffers are skipped, as WGSL's
/// bounds-checked accesses would leave them.
pub fn state_slots(p: &SlotParams, slots: &[u32], pool: &mut [f32], state: &mut [f32]) {
    let mut move_value = |q: usize, s: usize| {
        let (Some(pv), Some(sv)) = (pool.get(q).copied(), state.get(s).copied()) else {
            return;
        };
        if p.to_pool == 1 {
            pool[q] = sv;
        } else {
            state[s] = pv;
        }
    };
    let (out, hidden) = (p.out as usize, p.hidden as usize);
    for (b, &slot) in slots.iter().enumerate().take(p.batch as usize) {
        let base = slot as usize * p.slot_len as usize;
        for i in 0..out.max(hidden) {
            if i < out {
                move_value(base + p.slot_h as usize + i, p.state_h as usize + b * out + i);
            }
            if p.has_c == 1 && i < hidden {
                move_value(base + p.slot_c as usize + i, p.state_c as usize + b * hidden + i);
            }
        }
    }
}

/// `sigmoid_clamped` of cell_math.wgsl.
pub fn sigmoid_clamped(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-80.0, 80.0)).exp())
}

/// `tanh_clamped` of cell_math.wgsl.
pub fn tanh_clamped(x: f32) -> f32 {
    let e = (-2.0 * x.abs().min(20.0)).exp();
    let s = if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    };
    s * (1.0 - e) / (1.0 + e)
}

/// `log1p_accurate` of cell_math.wgsl.
pub fn log1p_accurate(e: f32) -> f32 {
    let u = 1.0 + e;
    if u == 1.0 {
        return e;
    }
    u.ln() * e / (u - 1.0)
}

/// `activate` of cell_math.wgsl.
pub fn activate(kind: u32, x: f32, alpha: f32, beta: f32) -> f32 {
    match kind {
        0 => sigmoid_clamped(x),
        1 => tanh_clamped(x),
        2 => x.max(0.0),
        3 => (alpha * x + beta).clamp(0.0, 1.0),
        4 => {
            if x < 0.0 {
                alpha * x
            } else {
                x
            }
        }
        5 => {
            if x < 0.0 {
                alpha * (x.max(-80.0).exp() - 1.0)
            } else {
                x
            }
        }
        6 => x / (1.0 + x.abs()),
        7 => {
            if x > 20.0 {
                x
            } else {
                log1p_accurate(x.clamp(-80.0, 20.0).exp())
            }
        }
        8 => alpha * x + beta,
        9 => alpha * tanh_clamped(beta * x),
        10 => {
            if x > alpha {
                x
            } else {
                0.0
            }
        }
        _ => x,
    }
}

fn gate(p: &StepParams, which: usize, x: f32) -> f32 {
    activate(p.acts[which], x.clamp(-p.clip, p.clip), p.alphas[which], p.betas[which])
}

/// `input_projection`: `out[M, N] = x[M, K] · w[N, K]ᵀ + bias[N]`.
pub fn input_projection(m: usize, n: usize, k: usize, x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32]) {
    for i in 0..m {
        for c in 0..n {
            let mut acc = 0f32;
            for kk in 0..k {
                acc = x[i * k + kk].mul_add(w[c * k + kk], acc);
            }
            out[i * n + c] = acc + bias[c];
        }
    }
}

/// `input_projection_gemv`: the same product as [`input_projection`] (it is only another tiling).
pub fn input_projection_gemv(m: usize, n: usize, k: usize, x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32]) {
    input_projection(m, n, k, x, w, bias, out)
}

fn h_read(p: &StepParams) -> usize {
    (p.step % 2) as usize * p.batch as usize * p.state_size as usize
}

fn h_write(p: &StepParams) -> usize {
    ((p.step + 1) % 2) as usize * p.batch as usize * p.state_size as usize
}

fn aux(p: &StepParams) -> usize {
    2 * p.batch as usize * p.state_size as usize
}

/// `recurrent_matvec` of recurrent_matvec.wgsl for entry (b, j).
fn recurrent_matvec(
    p: &StepParams,
    gates: usize,
    state: &[f32],
    src: usize,
    r: &[f32],
    b: usize,
    j: usize,
) -> [f32; 4] {
    let k = p.state_size as usize;
    let mut acc = [0f32; 4];
    for (g, a) in acc.iter_mut().enumerate().take(gates) {
        let row = &r[(gates * j + g) * k..(gates * j + g + 1) * k];
        let h = &state[src + b * k..src + (b + 1) * k];
        *a = row.iter().zip(h).fold(0f32, |s, (&w, &v)| w.mul_add(v, s));
    }
    acc
}

/// Buffers every step kernel binds (the `@binding`s 1..6 of the step kernels).
pub struct StepBuffers<'a> {
    pub xw: &'a [f32],
    pub r: &'a [f32],
    pub vecs: &'a [f32],
    pub state: &'a mut [f32],
    pub y: &'a mut [f32],
    pub lens: &'a [u32],
}

/// Runs `body(b, j)` over the batch and hidden units of a step, copying h for finished entries.
fn each_entry(p: &StepParams, s: &mut StepBuffers<'_>, mut body: impl FnMut(&mut StepBuffers<'_>, usize, usize)) {
    let (batch, hidden, k) = (p.batch as usize, p.hidden as usize, p.state_size as usize);
    for b in 0..batch {
        for j in 0..hidden {
            if p.step >= s.lens[b] {
                s.state[h_write(p) + b * k + j] = s.state[h_read(p) + b * k + j];
            } else {
                body(s, b, j);
            }
        }
    }
}

/// `rnn_step`.
pub fn rnn_step(p: &StepParams, s: &mut StepBuffers<'_>) {
    let (batch, hidden, k) = (p.batch as usize, p.hidden as usize, p.state_size as usize);
    let src = s.state.to_vec();
    each_entry(p, s, |s, b, j| {
        let acc = recurrent_matvec(p, 1, &src, h_read(p), s.r, b, j);
        let row = (p.local_step as usize * batch + b) * hidden;
        let h = gate(p, 0, s.xw[row + j] + acc[0] + s.vecs[j]);
        s.state[h_write(p) + b * k + j] = h;
        s.y[(p.local_step as usize * batch + b) * k + j] = h;
    });
}

/// `gru_reset` (linear_before_reset = 0 only): aux = r ⊙ h.
pub fn gru_reset(p: &StepParams, s: &mut StepBuffers<'_>) {
    let (batch, hidden, k) = (p.batch as usize, p.hidden as usize, p.state_size as usize);
    let src = s.state.to_vec();
    for b in 0..batch {
        if p.step >= s.lens[b] {
            continue;
        }
        for j in 0..hidden {
            let acc = recurrent_matvec(p, 3, &src, h_read(p), s.r, b, j);
            let row = (p.local_step as usize * batch + b) * 3 * hidden;
            let rg = gate(p, 0, s.xw[row + 3 * j + 1] + acc[1] + s.vecs[3 * j + 1]);
            s.state[aux(p) + b * hidden + j] = rg * src[h_read(p) + b * k + j];
        }
    }
}

/// `gru_step`.
pub fn gru_step(p: &StepParams, s: &mut StepBuffers<'_>) {
    let (batch, hidden, k) = (p.batch as usize, p.hidden as usize, p.state_size as usize);
    let lbr = p.flags & FLAG_LINEAR_BEFORE_RESET != 0;
    let src = s.state.to_vec();
    each_entry(p, s, |s, b, j| {
        let acc = recurrent_matvec(p, 3, &src, h_read(p), s.r, b, j);
        let row = (p.local_step as usize * batch + b) * 3 * hidden + 3 * j;
        let rb = 3 * j;
        let z = gate(p, 0, s.xw[row] + acc[0] + s.vecs[rb]);
        let cand = if lbr {
            let rg = gate(p, 0, s.xw[row + 1] + acc[1] + s.vecs[rb + 1]);
            gate(p, 1, s.xw[row + 2] + rg * (acc[2] + s.vecs[rb + 2]))
        } else {
            let acc_rh = recurrent_matvec(p, 3, &src, aux(p), s.r, b, j);
            gate(p, 1, s.xw[row + 2] + acc_rh[2] + s.vecs[rb + 2])
        };
        let h = (1.0 - z) * cand + z * src[h_read(p) + b * k + j];
        s.state[h_write(p) + b * k + j] = h;
        s.y[(p.local_step as usize * batch + b) * k + j] = h;
    });
}

/// `lstm_step`.
pub fn lstm_step(p: &StepParams, s: &mut StepBuffers<'_>) {
    let (batch, hs, k) = (p.batch as usize, p.hidden as usize, p.state_size as usize);
    let src = s.state.to_vec();
    each_entry(p, s, |s, b, j| {
        let acc = recurrent_matvec(p, 4, &src, h_read(p), s.r, b, j);
        let row = (p.local_step as usize * batch + b) * 4 * hs + 4 * j;
        let (rb, peep) = (4 * j, 4 * hs);
        let c_at = aux(p) + b * hs + j;
        let c_prev = src[c_at];
        let i = gate(p, 0, s.xw[row] + acc[0] + s.vecs[rb] + s.vecs[peep + j] * c_prev);
        let f = if p.flags & FLAG_INPUT_FORGET != 0 {
            1.0 - i
        } else {
            gate(p, 0, s.xw[row + 2] + acc[2] + s.vecs[rb + 2] + s.vecs[peep + 2 * hs + j] * c_prev)
        };
        let cand = gate(p, 1, s.xw[row + 3] + acc[3] + s.vecs[rb + 3]);
        let c = f * c_prev + i * cand;
        let o = gate(p, 0, s.xw[row + 1] + acc[1] + s.vecs[rb + 1] + s.vecs[peep + hs + j] * c);
        let h = o * activate(p.acts[2], c, p.alphas[2], p.betas[2]);
        s.state[c_at] = c;
        s.state[h_write(p) + b * k + j] = h;
        s.y[(p.local_step as usize * batch + b) * k + j] = h;
    });
}

/// The GPU pipeline of one recurrent node, run on the CPU with the twins: pack, project all steps,
/// step each direction, scatter `Y` back to time order. (No LSTM projection: the GPU refuses it.)
pub fn run_node(spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
    let dims = cell::check_inputs(spec, inputs)?;
    let cell::Dims { seq, batch, input, hidden, out, dirs, gates } = dims;
    let lens = layer::lengths(inputs, &dims)?;
    let x0 = layer::x_layout0(spec, &dims, inputs.x.as_f32()?);
    let h0 = layer::state_layout0(spec, &dims, inputs.initial_h.map(|t| t.as_f32()).transpose()?, out);
    let c0 = layer::state_layout0(spec, &dims, inputs.initial_c.map(|t| t.as_f32()).transpose()?, hidden);
    let is_lstm = matches!(spec.cell, CellKind::Lstm { .. });
    let mut y = vec![0f32; seq * dirs * batch * out];
    let mut y_h = vec![0f32; dirs * batch * out];
    let mut y_c = vec![0f32; dirs * batch * hidden];
    for d in 0..dirs {
        let reverse = spec.direction == cell::Direction::Reverse || d == 1;
        let packed = layer::pack_direction(inputs, &dims, d)?;
        let xd = layer::direction_input(&x0, &dims, &lens, reverse);
        let mut xw = vec![0f32; seq * batch * gates * hidden];
        input_projection(seq * batch, gates * hidden, input, &xd, &packed.w, &packed.w_bias, &mut xw);
        let mut state = vec![0f32; 2 * batch * out + batch * hidden];
        state[..batch * out].copy_from_slice(&h0[d * batch * out..(d + 1) * batch * out]);
        if is_lstm {
            state[2 * batch * out..].copy_from_slice(&c0[d * batch * hidden..(d + 1) * batch * hidden]);
        }
        let mut ys = vec![0f32; seq * batch * out];
        for step in 0..seq as u32 {
            let p = layer::step_params(spec, &dims, d, step, step);
            let mut bufs =
                StepBuffers { xw: &xw, r: &packed.r, vecs: &packed.vecs, state: &mut state, y: &mut ys, lens: &lens };
            match spec.cell {
                CellKind::Rnn => rnn_step(&p, &mut bufs),
                CellKind::Gru { linear_before_reset } => {
                    if !linear_before_reset {
                        gru_reset(&p, &mut bufs);
                    }
                    gru_step(&p, &mut bufs);
                }
                CellKind::Lstm { .. } => lstm_step(&p, &mut bufs),
            }
        }
        scatter_y(&mut y, &ys, &dims, &lens, d, reverse, 0);
        let half = (seq % 2) * batch * out;
        y_h[d * batch * out..(d + 1) * batch * out].copy_from_slice(&state[half..half + batch * out]);
        if is_lstm {
            y_c[d * batch * hidden..(d + 1) * batch * hidden].copy_from_slice(&state[2 * batch * out..]);
        }
    }
    cell::finish_outputs(spec, &dims, y, y_h, is_lstm.then_some(y_c))
}

/// Moves step-ordered rows `[n, B, K]` of direction `d` (steps `s0..s0 + n`) to their time slots
/// in the layout-0 `Y` `[T, D, B, K]`.
pub fn scatter_y(y: &mut [f32], ys: &[f32], dims: &cell::Dims, lens: &[u32], d: usize, reverse: bool, s0: usize) {
    let cell::Dims { batch, out, dirs, .. } = *dims;
    let n = ys.len() / (batch * out).max(1);
    for (b, &len) in lens.iter().enumerate() {
        let len = len as usize;
        for ls in 0..n {
            let s = s0 + ls;
            if s >= len {
                break;
            }
            let t = if reverse { len - 1 - s } else { s };
            let (src, dst) = ((ls * batch + b) * out, ((t * dirs + d) * batch + b) * out);
            y[dst..dst + out].copy_from_slice(&ys[src..src + out]);
        }
    }
}
