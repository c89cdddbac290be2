//! One recurrent node on the CPU: the input projection of a chunk of time steps as one GEMM, then
//! per step one GEMM over the batch against `R` and the gate math fused after it.

use super::gemm::gemm;
use super::int8::QRows;
use super::simd::{activate, clip, consts, sigmoid_in, tanh_in, Simd, F4};
use super::weights::{round4, DirWeights, NodeWeights};
use crate::cell::{self, Activation, CellKind, Dims, Direction, RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use crate::error::Result;

/// Floats of `X·Wᵀ` computed ahead of the recurrence at a time (1 MiB): the whole sequence in the
/// common cases, bounded memory for long, wide batches.
pub(crate) const CHUNK_FLOATS: usize = 1 << 18;

pub fn run<S: Simd>(
    spec: &RecurrentSpec,
    inp: &RecurrentInputs<'_>,
    dims: &Dims,
    weights: &NodeWeights,
) -> Result<RecurrentOutputs> {
    let Dims { seq, batch, input, hidden, out, dirs, .. } = *dims;
    let x = inp.x.as_f32()?;
    let init_h = inp.initial_h.map(|h| h.as_f32()).transpose()?;
    let init_c = inp.initial_c.map(|c| c.as_f32()).transpose()?;
    let lens: Vec<usize> = match inp.sequence_lens {
        Some(sl) => sl.as_i64()?.iter().map(|&l| l.clamp(0, seq as i64) as usize).collect(),
        None => vec![seq; batch],
    };
    let is_lstm = matches!(spec.cell, CellKind::Lstm { .. });
    let per_dir = spec.cell.activations_per_direction();
    let (hp, outp) = (round4(hidden), round4(out));

    let mut y = vec![0f32; crate::tensor::numel(&[seq, dirs, batch, out])?];
    let mut y_h = vec![0f32; dirs * batch * out];
    let mut y_c = vec![0f32; if is_lstm { dirs * batch * hidden } else { 0 }];
    let state_at = |d: usize, b: usize, size: usize| {
        if spec.layout == 0 {
            (d * batch + b) * size
        } else {
            (b * dirs + d) * size
        }
    };
    let x_at = |t: usize, b: usize| {
        let off = if spec.layout == 0 { (t * batch + b) * input } else { (b * seq + t) * input };
        &x[off..off + input]
    };
    let max_len = lens.iter().copied().max().unwrap_or(0);

    for (d, w) in weights.dirs.iter().enumerate() {
        let reverse = spec.direction == Direction::Reverse || d == 1;
        let time = |s: usize, b: usize| if reverse { lens[b] - 1 - s } else { s };
        let acts = &spec.activations[d * per_dir..(d + 1) * per_dir];
        let mut st = State::new(spec.cell, w, batch, hp, outp);
        for b in 0..batch {
            if let Some(h0) = init_h {
                let o = state_at(d, b, out);
                st.h.as_flattened_mut()[b * outp..b * outp + out].copy_from_slice(&h0[o..o + out]);
            }
            if let (true, Some(c0)) = (is_lstm, init_c) {
                let o = state_at(d, b, hidden);
                st.c.as_flattened_mut()[b * hp..b * hp + hidden].copy_from_slice(&c0[o..o + hidden]);
            }
        }
        // A single step of a single stream reads every weight once: at H = 256 more than L2 holds.
        // Every other such call goes the other way round (H·Rᵀ first, both products walking
        // their panels backwards), so that it starts with what the previous call read last.
        let backwards = max_len == 1 && batch == 1 && w.flip.next();
        if backwards {
            st.product::<S>(w, true);
        }
        let nx4 = w.w.n4();
        // Forward in time over full-length entries in layout 0, a chunk's rows already lie in X in
        // the order the GEMM wants them: no gather (a stream's step).
        let in_order = spec.layout == 0 && !reverse && lens.iter().all(|&l| l == seq);
        let chunk_steps = (CHUNK_FLOATS / (batch * w.w.n()).max(1)).max(1);
        let mut xs = Vec::new();
        let mut xw: Vec<F4> = Vec::new();
        let mut xq = QRows::default();
        for s0 in (0..max_len).step_by(chunk_steps) {
            let s1 = (s0 + chunk_steps).min(max_len);
            let rows = (s1 - s0) * batch;
            // Gather each step's input rows (per-entry time under sequence_lens and reverse), then
            // one GEMM for the chunk.
            let xs_chunk: &[f32] = match x.get(s0 * batch * input..s1 * batch * input) {
                Some(rows_x) if in_order => rows_x,
                _ => {
                    xs.clear();
                    xs.resize(rows * input, 0.0);
                    for s in s0..s1 {
                        for (b, &len) in lens.iter().enumerate() {
                            if s < len {
                                let row = (s - s0) * batch + b;
                                xs[row * input..(row + 1) * input].copy_from_slice(x_at(time(s, b), b));
                            }
                        }
                    }
                    &xs
                }
            };
            xw.clear();
            for _ in 0..rows {
                xw.extend_from_slice(&w.x_bias);
            }
            w.w.gemm::<S>(xs_chunk, input, rows, &mut xw, &mut xq, backwards);
            for s in s0..s1 {
                let xw_s = &xw[(s - s0) * batch * nx4..(s - s0 + 1) * batch * nx4];
                let active = |b: usize| s < lens[b];
                if !backwards {
                    st.product::<S>(w, false);
                }
                st.step::<S>(spec.cell, acts, spec.clip, w, xw_s, &active);
                for b in (0..batch).filter(|&b| active(b)) {
                    let yo = ((time(s, b) * dirs + d) * batch + b) * out;
                    y[yo..yo + out].copy_from_slice(&st.h.as_flattened()[b * outp..b * outp + out]);
                }
            }
        }
        for b in 0..batch {
            let ho = (d * batch + b) * out;
            y_h[ho..ho + out].copy_from_slice(&st.h.as_flattened()[b * outp..b * outp + out]);
            if is_lstm {
                let co = (d * batch + b) * hidden;
                y_c[co..co + hidden].copy_from_slice(&st.c.as_flattened()[b * hp..b * hp + hidden]);
            }
        }
    }
    cell::finish_outputs(spec, dims, y, y_h, is_lstm.then_some(y_c))
}

/// `act(clip(v))` for every vector of `vs`, the activation and the clip picked once for all.
#[inline(always)]
fn clip_activate<S: Simd>(act: Activation, clip_to: Option<f32>, vs: &mut [F4]) {
    if clip_to.is_some() {
        for v in vs.iter_mut() {
            S::store(clip::<S>(S::load(v), clip_to), v);
        }
    }
    match act {
        Activation::Sigmoid => {
            let t = consts();
            vs.iter_mut().for_each(|v| S::store(sigmoid_in::<S>(S::load(v), t), v))
        }
        Activation::Tanh => {
            let t = consts();
            vs.iter_mut().for_each(|v| S::store(tanh_in::<S>(S::load(v), t), v))
        }
        other => vs.iter_mut().for_each(|v| S::store(activate::<S>(other, S::load(v)), v)),
    }
}

/// The recurrent state of one direction for the whole batch, and the step's scratch buffers.
struct State {
    hp4: usize,
    outp4: usize,
    /// `[batch, outp]`, lanes past `out` unused.
    h: Vec<F4>,
    /// `[batch, hp]` (LSTM).
    c: Vec<F4>,
    /// `H·Rᵀ` (+ the unfoldable bias), `[batch, r.n]`.
    hr: Vec<F4>,
    /// GRU without linear_before_reset: `r ⊙ H` and `(r ⊙ H)·Rhᵀ`. LSTM with projection: the
    /// unprojected hidden state and its projection.
    tmp: Vec<F4>,
    tmp2: Vec<F4>,
    /// The quantized rows of an int8 product.
    q: QRows,
}

impl State {
    fn new(cell: CellKind, w: &DirWeights, batch: usize, hp: usize, outp: usize) -> State {
        let tmp2_n4 = w.r_h.as_ref().map_or(0, |m| m.n4()).max(w.proj.as_ref().map_or(0, |p| p.n4()));
        State {
            hp4: hp / 4,
            outp4: outp / 4,
            h: vec![[0.0; 4]; batch * outp / 4],
            c: vec![[0.0; 4]; if matches!(cell, CellKind::Lstm { .. }) { batch * hp / 4 } else { 0 }],
            hr: vec![[0.0; 4]; batch * w.r.n4()],
            tmp: vec![[0.0; 4]; if tmp2_n4 > 0 { batch * hp / 4 } else { 0 }],
            tmp2: vec![[0.0; 4]; batch * tmp2_n4],
            q: QRows::default(),
        }
    }

    /// `H·Rᵀ` plus its bias into `hr`: the first half of a step.
    #[inline(always)]
    fn product<S: Simd>(&mut self, w: &DirWeights, backwards: bool) {
        let batch = self.h.len() / self.outp4.max(1);
        for row in self.hr.chunks_exact_mut(w.r.n4()) {
            row.copy_from_slice(&w.r_bias);
        }
        w.r.gemm::<S>(self.h.as_flattened(), self.outp4 * 4, batch, &mut self.hr, &mut self.q, backwards);
    }

    /// The rest of a time step for every batch entry, after [`State::product`]; entries where
    /// `active` is false keep their state.
    #[inline(always)]
    fn step<S: Simd>(
        &mut self,
        cell: CellKind,
        acts: &[Activation],
        clip_to: Option<f32>,
        w: &DirWeights,
        xw: &[F4],
        active: &dyn Fn(usize) -> bool,
    ) {
        let (hp4, outp4) = (self.hp4, self.outp4);
        let batch = self.h.len() / outp4.max(1);
        let (nx4, nr4) = (w.w.n4(), w.r.n4());
        let act = |i: usize| acts.get(i).copied().unwrap_or(Activation::Tanh);
        let ld = |v: &F4| S::load(v);
        // The gate math goes in passes: pre-activations into a buffer (H·Rᵀ's rows, in place),
        // then one activation over the whole buffer. Each pass's iterations are independent, so
        // the core overlaps the activations' long dependency chains, and the activation (and the
        // clip) is chosen once per pass instead of once per vector.
        match cell {
            CellKind::Rnn => {
                let f = act(0);
                for b in (0..batch).filter(|&b| active(b)) {
                    let (xw, hr) = (&xw[b * nx4..], &self.hr[b * nr4..]);
                    let h = &mut self.h[b * outp4..(b + 1) * outp4];
                    for (q, v) in h.iter_mut().enumerate() {
                        S::store(S::add(ld(&xw[q]), ld(&hr[q])), v);
                    }
                    clip_activate::<S>(f, clip_to, h);
                }
            }
            CellKind::Gru { linear_before_reset } => {
                let (f, g) = (act(0), act(1));
                if let (false, Some(r_h)) = (linear_before_reset, &w.r_h) {
                    // r first, then (r ⊙ H)·Rhᵀ: a second GEMM inside the step.
                    let n4 = r_h.n4();
                    for b in 0..batch {
                        let xw = &xw[b * nx4..];
                        let r = &mut self.hr[b * nr4 + hp4..b * nr4 + 2 * hp4];
                        for (q, v) in r.iter_mut().enumerate() {
                            S::store(S::add(ld(&xw[hp4 + q]), ld(v)), v);
                        }
                        clip_activate::<S>(f, clip_to, r);
                        for (q, v) in r.iter().enumerate() {
                            S::store(S::mul(ld(v), ld(&self.h[b * outp4 + q])), &mut self.tmp[b * hp4 + q]);
                        }
                    }
                    self.tmp2.fill([0.0; 4]);
                    r_h.gemm::<S>(self.tmp.as_flattened(), hp4 * 4, batch, &mut self.tmp2, &mut self.q, false);
                    for b in (0..batch).filter(|&b| active(b)) {
                        let xw = &xw[b * nx4..];
                        let z = &mut self.hr[b * nr4..b * nr4 + hp4];
                        for (q, v) in z.iter_mut().enumerate() {
                            S::store(S::add(ld(&xw[q]), ld(v)), v);
                        }
                        clip_activate::<S>(f, clip_to, z);
                        let n = &mut self.tmp2[b * n4..b * n4 + hp4];
                        for (q, v) in n.iter_mut().enumerate() {
                            S::store(S::add(ld(&xw[2 * hp4 + q]), ld(v)), v);
                        }
                        clip_activate::<S>(g, clip_to, n);
                        for (q, h) in self.h[b * outp4..(b + 1) * outp4].iter_mut().enumerate() {
                            let (z, n) = (ld(&z[q]), ld(&n[q]));
                            S::store(S::madd(z, S::sub(ld(h), n), n), h);
                        }
                    }
                } else {
                    for b in (0..batch).filter(|&b| active(b)) {
                        let xw = &xw[b * nx4..];
                        let (zr, hn) = self.hr[b * nr4..(b + 1) * nr4].split_at_mut(2 * hp4);
                        for (q, v) in zr.iter_mut().enumerate() {
                            S::store(S::add(ld(&xw[q]), ld(v)), v);
                        }
                        clip_activate::<S>(f, clip_to, zr);
                        let hn = &mut hn[..hp4];
                        for (q, v) in hn.iter_mut().enumerate() {
                            S::store(S::madd(ld(&zr[hp4 + q]), ld(v), ld(&xw[2 * hp4 + q])), v);
                        }
                        clip_activate::<S>(g, clip_to, hn);
                        for (q, h) in self.h[b * outp4..(b + 1) * outp4].iter_mut().enumerate() {
                            let (z, n) = (ld(&zr[q]), ld(&hn[q]));
                            S::store(S::madd(z, S::sub(ld(h), n), n), h);
                        }
                    }
                }
            }
            CellKind::Lstm { input_forget } => {
                let (f, g, hact) = (act(0), act(1), act(2));
                let proj = w.proj.as_ref();
                let peep = |k: usize, q: usize| ld(&w.peep[k * hp4 + q]);
                for b in (0..batch).filter(|&b| active(b)) {
                    let xw = &xw[b * nx4..];
                    let hr = &mut self.hr[b * nr4..(b + 1) * nr4];
                    let cs = &mut self.c[b * hp4..(b + 1) * hp4];
                    // Gates i, o, f, c at hr[0], hr[hp4], hr[2·hp4], hr[3·hp4]: first i, f, c.
                    for q in 0..hp4 {
                        let c_prev = ld(&cs[q]);
                        let pre = |gate: usize| S::add(ld(&xw[gate * hp4 + q]), ld(&hr[gate * hp4 + q]));
                        let (i, fg, cand) =
                            (S::madd(peep(0, q), c_prev, pre(0)), S::madd(peep(2, q), c_prev, pre(2)), pre(3));
                        S::store(i, &mut hr[q]);
                        S::store(fg, &mut hr[2 * hp4 + q]);
                        S::store(cand, &mut hr[3 * hp4 + q]);
                    }
                    clip_activate::<S>(f, clip_to, &mut hr[..hp4]);
                    if !input_forget {
                        clip_activate::<S>(f, clip_to, &mut hr[2 * hp4..3 * hp4]);
                    }
                    clip_activate::<S>(g, clip_to, &mut hr[3 * hp4..4 * hp4]);
                    // The new cell state, then o (its peephole sees the new cell state).
                    for q in 0..hp4 {
                        let i = ld(&hr[q]);
                        let fg = if input_forget { S::sub(S::splat(1.0), i) } else { ld(&hr[2 * hp4 + q]) };
                        let c_new = S::add(S::mul(fg, ld(&cs[q])), S::mul(i, ld(&hr[3 * hp4 + q])));
                        S::store(c_new, &mut cs[q]);
                        let o = S::madd(peep(1, q), c_new, S::add(ld(&xw[hp4 + q]), ld(&hr[hp4 + q])));
                        S::store(o, &mut hr[hp4 + q]);
                    }
                    clip_activate::<S>(f, clip_to, &mut hr[hp4..2 * hp4]);
                    let full_h = match proj {
                        Some(_) => &mut self.tmp[b * hp4..(b + 1) * hp4],
                        None => &mut self.h[b * outp4..(b + 1) * outp4],
                    };
                    full_h.copy_from_slice(cs);
                    clip_activate::<S>(hact, None, full_h);
                    for (q, v) in full_h.iter_mut().enumerate() {
                        S::store(S::mul(ld(&hr[hp4 + q]), ld(v)), v);
                    }
                }
                if let Some(p) = proj {
                    let n4 = p.n4();
                    self.tmp2.fill([0.0; 4]);
                    gemm::<S>(self.tmp.as_flattened(), hp4 * 4, batch, p, &mut self.tmp2);
                    for b in (0..batch).filter(|&b| active(b)) {
                        let src = &self.tmp2[b * n4..b * n4 + outp4];
                        self.h[b * outp4..(b + 1) * outp4].copy_from_slice(src);
                    }
                }
            }
        }
    }
}
