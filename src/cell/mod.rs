//! The scalar reference of the ONNX recurrent operators `RNN`, `GRU` and `LSTM`: plain loops, one
//! batch entry and one time step at a time, written to read like the operator specification. Every
//! faster backend is tested against this code, and this code is tested against ONNX's conformance
//! cases and PyTorch's own outputs.
//!
//! Conventions (ONNX): gate order GRU `z r h`, LSTM `i o f c`, peepholes `i o f`; `W` is
//! `[dirs, G·H, I]`, `R` is `[dirs, G·H, H]`, `B` is `[dirs, 2·G·H]` (`Wb` then `Rb`).
//! One extension beyond ONNX: an LSTM output projection (`proj`, `[dirs, P, H]`, PyTorch's
//! `proj_size`), under which the hidden state, `R`'s columns, `Y` and `Y_h` have size `P`.

pub mod activation;

pub use activation::Activation;

use crate::error::{shape_err, Error, Result};
use crate::tensor::Tensor;

/// Recurrent node input slots (ONNX order), plus the projection extension.
pub mod rec_input {
    pub const X: usize = 0;
    pub const W: usize = 1;
    pub const R: usize = 2;
    pub const B: usize = 3;
    pub const SEQUENCE_LENS: usize = 4;
    pub const INITIAL_H: usize = 5;
    pub const INITIAL_C: usize = 6;
    pub const P: usize = 7;
    /// Not ONNX: LSTM output projection `[dirs, P, H]` (PyTorch `proj_size`).
    pub const PROJ: usize = 8;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Rnn,
    Gru { linear_before_reset: bool },
    Lstm { input_forget: bool },
}

impl CellKind {
    /// Number of gates (rows of W per hidden unit).
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn => 1,
            CellKind::Gru { .. } => 3,
            CellKind::Lstm { .. } => 4,
        }
    }

    /// Number of activation functions per direction (f; f, g; f, g, h).
    pub fn activations_per_direction(self) -> usize {
        match self {
            CellKind::Rnn => 1,
            CellKind::Gru { .. } => 2,
            CellKind::Lstm { .. } => 3,
        }
    }

    pub fn default_activations(self) -> &'static [Activation] {
        match self {
            CellKind::Rnn => &[Activation::Tanh],
            CellKind::Gru { .. } => &[Activation::Sigmoid, Activation::Tanh],
            CellKind::Lstm { .. } => &[Activation::Sigmoid, Activation::Tanh, Activation::Tanh],
        }
    }

    pub fn op_name(self) -> &'static str {
        match self {
            CellKind::Rnn => "RNN",
            CellKind::Gru { .. } => "GRU",
            CellKind::Lstm { .. } => "LSTM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
    Bidirectional,
}

impl Direction {
    pub fn count(self) -> usize {
        if self == Direction::Bidirectional {
            2
        } else {
            1
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
            Direction::Bidirectional => "bidirectional",
        }
    }
}

/// Everything about a recurrent node that is not a tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentSpec {
    pub cell: CellKind,
    pub direction: Direction,
    pub hidden_size: usize,
    /// `activations_per_direction() * direction.count()` entries, direction-major.
    pub activations: Vec<Activation>,
    pub clip: Option<f32>,
    /// 0: `X` is `[T, B, I]`; 1: `X` is `[B, T, I]` (and states are batch-major too).
    pub layout: u8,
}

impl RecurrentSpec {
    /// A spec with the operator's default activations.
    pub fn new(cell: CellKind, direction: Direction, hidden_size: usize) -> Self {
        let acts = cell.default_activations();
        let activations = (0..direction.count()).flat_map(|_| acts.iter().copied()).collect();
        RecurrentSpec { cell, direction, hidden_size, activations, clip: None, layout: 0 }
    }
}

/// The tensors a recurrent node reads. Optional ONNX inputs are `None` when absent.
#[derive(Debug, Clone, Copy)]
pub struct RecurrentInputs<'a> {
    pub x: &'a Tensor,
    pub w: &'a Tensor,
    pub r: &'a Tensor,
    pub b: Option<&'a Tensor>,
    pub sequence_lens: Option<&'a Tensor>,
    pub initial_h: Option<&'a Tensor>,
    pub initial_c: Option<&'a Tensor>,
    pub p: Option<&'a Tensor>,
    pub proj: Option<&'a Tensor>,
    /// Set by sessions on a backend that keeps state on its device ([`Resident`]); `None` elsewhere.
    pub resident: Option<&'a Resident>,
}

/// The sessions of a batch whose state a backend may keep on its device between calls (the GPU's
/// state pool): per batch entry the session's id and the state version it is at, and whether
/// `initial_h`/`initial_c` hold that state (else only the device does).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resident {
    pub sessions: Vec<u64>,
    pub versions: Vec<u64>,
    pub host_valid: Vec<bool>,
    /// The version every session of the batch is at after the call.
    pub next: u64,
    /// Bring the final state back too (the sessions refresh their host copy).
    pub read_back: bool,
    /// The nodes whose final state the call itself reads (it comes back from them).
    pub read_nodes: Vec<usize>,
}

impl<'a> RecurrentInputs<'a> {
    /// `X`, `W` and `R` with every optional input absent; set the others with struct update syntax.
    pub fn new(x: &'a Tensor, w: &'a Tensor, r: &'a Tensor) -> Self {
        RecurrentInputs {
            x,
            w,
            r,
            b: None,
            sequence_lens: None,
            initial_h: None,
            initial_c: None,
            p: None,
            proj: None,
            resident: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentOutputs {
    pub y: Tensor,
    pub y_h: Tensor,
    /// LSTM only.
    pub y_c: Option<Tensor>,
    /// The final state stayed on the device only ([`Resident`]): `y_h` and `y_c` are zeros, not
    /// the state.
    pub on_device: bool,
}

/// Validated sizes of one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub seq: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    /// Size of the hidden state fed back (`hidden`, or the projection size).
    pub out: usize,
    pub dirs: usize,
    pub gates: usize,
}

/// Checks every input's shape against the spec and returns the sizes.
pub fn check_inputs(spec: &RecurrentSpec, inp: &RecurrentInputs<'_>) -> Result<Dims> {
    let xs = inp.x.shape();
    if xs.len() != 3 {
        return shape_err!("X must have rank 3, got shape {xs:?}");
    }
    let (seq, batch) = if spec.layout == 0 { (xs[0], xs[1]) } else { (xs[1], xs[0]) };
    let input = xs[2];
    let hidden = spec.hidden_size;
    let dirs = spec.direction.count();
    let gates = spec.cell.gates();
    if hidden == 0 {
        return shape_err!("hidden_size must be positive");
    }
    let out = match inp.proj {
        Some(p) => {
            if !matches!(spec.cell, CellKind::Lstm { .. }) {
                return shape_err!("a projection is only defined for LSTM");
            }
            let ps = p.shape();
            if ps.len() != 3 || ps[0] != dirs || ps[2] != hidden || ps[1] == 0 {
                return shape_err!("projection must be [{dirs}, P, {hidden}], got {ps:?}");
            }
            ps[1]
        }
        None => hidden,
    };
    let expect = |name: &str, t: &Tensor, want: &[usize]| -> Result<()> {
        if t.shape() != want {
            return shape_err!("{name} must have shape {want:?}, got {:?}", t.shape());
        }
        t.as_f32().map(|_| ()).map_err(|e| e.context(name))
    };
    inp.x.as_f32().map_err(|e| e.context("X"))?;
    expect("W", inp.w, &[dirs, gates * hidden, input])?;
    expect("R", inp.r, &[dirs, gates * hidden, out])?;
    if let Some(b) = inp.b {
        expect("B", b, &[dirs, 2 * gates * hidden])?;
    }
    let state_shape = |size: usize| {
        if spec.layout == 0 {
            vec![dirs, batch, size]
        } else {
            vec![batch, dirs, size]
        }
    };
    if let Some(h) = inp.initial_h {
        expect("initial_h", h, &state_shape(out))?;
    }
    if let Some(c) = inp.initial_c {
        if !matches!(spec.cell, CellKind::Lstm { .. }) {
            return Err(Error::InvalidModel("initial_c is only defined for LSTM".into()));
        }
        expect("initial_c", c, &state_shape(hidden))?;
    }
    if let Some(p) = inp.p {
        expect("P", p, &[dirs, 3 * hidden])?;
    }
    if let Some(sl) = inp.sequence_lens {
        if sl.shape() != [batch] {
            return shape_err!("sequence_lens must have shape [{batch}], got {:?}", sl.shape());
        }
        for &l in sl.as_i64().map_err(|e| e.context("sequence_lens"))? {
            if l < 0 || l as u64 > seq as u64 {
                return shape_err!("sequence_lens value {l} outside 0..={seq}");
            }
        }
    }
    let per_dir = spec.cell.activations_per_direction();
    if spec.activations.len() != per_dir * dirs {
        return Err(Error::InvalidModel(format!(
            "{} needs {} activations, has {}",
            spec.cell.op_name(),
            per_dir * dirs,
            spec.activations.len()
        )));
    }
    Ok(Dims { seq, batch, input, hidden, out, dirs, gates })
}

/// Reads element `[a, b, k]` of a `[A, B, K]` state in the spec's layout (`a` = direction).
fn state_offset(layout: u8, dims: &Dims, d: usize, b: usize, size: usize) -> usize {
    if layout == 0 {
        (d * dims.batch + b) * size
    } else {
        (b * dims.dirs + d) * size
    }
}

/// Runs a recurrent node: the reference semantics of ONNX `RNN`/`GRU`/`LSTM` (opset 14+).
pub fn run_reference(spec: &RecurrentSpec, inp: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
    let dims = check_inputs(spec, inp)?;
    let Dims { seq, batch, input, hidden, out, dirs, gates } = dims;
    let x = inp.x.as_f32()?;
    let w = inp.w.as_f32()?;
    let r = inp.r.as_f32()?;
    let bias = inp.b.map(|b| b.as_f32()).transpose()?;
    let p = inp.p.map(|p| p.as_f32()).transpose()?;
    let proj = inp.proj.map(|p| p.as_f32()).transpose()?;
    let init_h = inp.initial_h.map(|h| h.as_f32()).transpose()?;
    let init_c = inp.initial_c.map(|c| c.as_f32()).transpose()?;
    let lens: Vec<usize> = match inp.sequence_lens {
        Some(sl) => sl.as_i64()?.iter().map(|&l| l as usize).collect(),
        None => vec![seq; batch],
    };
    let is_lstm = matches!(spec.cell, CellKind::Lstm { .. });
    let per_dir = spec.cell.activations_per_direction();

    // Outputs in layout 0: Y [T, D, B, out], Y_h [D, B, out], Y_c [D, B, H].
    let mut y = vec![0f32; crate::tensor::numel(&[seq, dirs, batch, out])?];
    let mut y_h = vec![0f32; dirs * batch * out];
    let mut y_c = vec![0f32; if is_lstm { dirs * batch * hidden } else { 0 }];

    let x_at = |t: usize, b: usize| -> &[f32] {
        let off = if spec.layout == 0 { (t * batch + b) * input } else { (b * seq + t) * input };
        &x[off..off + input]
    };
    let clip = |v: f32| match spec.clip {
        Some(c) => v.clamp(-c, c),
        None => v,
    };

    let gh = gates * hidden;
    for d in 0..dirs {
        let reverse = spec.direction == Direction::Reverse || d == 1;
        let acts = &spec.activations[d * per_dir..(d + 1) * per_dir];
        let w_d = &w[d * gh * input..(d + 1) * gh * input];
        let r_d = &r[d * gh * out..(d + 1) * gh * out];
        let zero_bias = vec![0f32; 2 * gh];
        let b_d = bias.map_or(&zero_bias[..], |b| &b[d * 2 * gh..(d + 1) * 2 * gh]);
        let (wb, rb) = b_d.split_at(gh);
        let p_d = p.map(|p| &p[d * 3 * hidden..(d + 1) * 3 * hidden]);
        let proj_d = proj.map(|p| &p[d * out * hidden..(d + 1) * out * hidden]);

        for (b, &len) in lens.iter().enumerate() {
            let mut h = vec![0f32; out];
            let mut c = vec![0f32; hidden];
            if let Some(h0) = init_h {
                let o = state_offset(spec.layout, &dims, d, b, out);
                h.copy_from_slice(&h0[o..o + out]);
            }
            if let Some(c0) = init_c {
                let o = state_offset(spec.layout, &dims, d, b, hidden);
                c.copy_from_slice(&c0[o..o + hidden]);
            }
            let mut xw = vec![0f32; gh]; // X_t · Wᵀ + Wb
            let mut hr = vec![0f32; gh]; // H_{t-1} · Rᵀ + Rb
            for step in 0..len {
                let t = if reverse { len - 1 - step } else { step };
                let xt = x_at(t, b);
                for row in 0..gh {
                    xw[row] = wb[row] + dot(&w_d[row * input..(row + 1) * input], xt);
                    hr[row] = rb[row] + dot(&r_d[row * out..(row + 1) * out], &h);
                }
                match spec.cell {
                    CellKind::Rnn => {
                        for j in 0..hidden {
                            h[j] = acts[0].apply(clip(xw[j] + hr[j]));
                        }
                    }
                    CellKind::Gru { linear_before_reset } => {
                        let (f, g) = (acts[0], acts[1]);
                        // Rows: z in [0, H), r in [H, 2H), h in [2H, 3H).
                        let mut hn = vec![0f32; hidden];
                        let r_gate: Vec<f32> =
                            (0..hidden).map(|j| f.apply(clip(xw[hidden + j] + hr[hidden + j]))).collect();
                        if !linear_before_reset {
                            // (r ⊙ H_{t-1}) · Rhᵀ + Rbh
                            let rh: Vec<f32> = (0..out).map(|k| r_gate[k] * h[k]).collect();
                            let rh_rows = &r_d[2 * hidden * out..3 * hidden * out];
                            for j in 0..hidden {
                                let v = xw[2 * hidden + j]
                                    + dot(&rh_rows[j * out..(j + 1) * out], &rh)
                                    + rb[2 * hidden + j];
                                hn[j] = g.apply(clip(v));
                            }
                        } else {
                            for j in 0..hidden {
                                let v = xw[2 * hidden + j] + r_gate[j] * hr[2 * hidden + j];
                                hn[j] = g.apply(clip(v));
                            }
                        }
                        for j in 0..hidden {
                            let z = f.apply(clip(xw[j] + hr[j]));
                            h[j] = (1.0 - z) * hn[j] + z * h[j];
                        }
                    }
                    CellKind::Lstm { input_forget } => {
                        let (f, g, hact) = (acts[0], acts[1], acts[2]);
                        // Rows: i in [0, H), o in [H, 2H), f in [2H, 3H), c in [3H, 4H).
                        let mut full_h = vec![0f32; hidden];
                        for j in 0..hidden {
                            let (pi, po, pf) = match p_d {
                                Some(p) => (p[j], p[hidden + j], p[2 * hidden + j]),
                                None => (0.0, 0.0, 0.0),
                            };
                            let i_gate = f.apply(clip(xw[j] + hr[j] + pi * c[j]));
                            let f_gate = if input_forget {
                                1.0 - i_gate
                            } else {
                                f.apply(clip(xw[2 * hidden + j] + hr[2 * hidden + j] + pf * c[j]))
                            };
                            let c_cand = g.apply(clip(xw[3 * hidden + j] + hr[3 * hidden + j]));
                            c[j] = f_gate * c[j] + i_gate * c_cand;
                            let o_gate = f.apply(clip(xw[hidden + j] + hr[hidden + j] + po * c[j]));
                            full_h[j] = o_gate * hact.apply(c[j]);
                        }
                        match proj_d {
                            Some(pm) => {
                                for k in 0..out {
                                    h[k] = dot(&pm[k * hidden..(k + 1) * hidden], &full_h);
                                }
                            }
                            None => h.copy_from_slice(&full_h),
                        }
                    }
                }
                let yo = ((t * dirs + d) * batch + b) * out;
                y[yo..yo + out].copy_from_slice(&h);
            }
            let ho = (d * batch + b) * out;
            y_h[ho..ho + out].copy_from_slice(&h);
            if is_lstm {
                let co = (d * batch + b) * hidden;
                y_c[co..co + hidden].copy_from_slice(&c);
            }
        }
    }
    finish_outputs(spec, &dims, y, y_h, is_lstm.then_some(y_c))
}

/// What [`run_reference`] returns for these inputs, with zeros for values: the same checks, the
/// same errors, the same output shapes, none of the arithmetic. Session planning runs the graph on
/// zeros of several shapes only to learn its outputs' shapes (`Model::session_plan`); with this
/// a GRU of 256 units loads in 0.1 of the time it took with the reference running every step.
pub fn reference_shapes(spec: &RecurrentSpec, inp: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
    let dims = check_inputs(spec, inp)?;
    let Dims { seq, batch, hidden, out, dirs, .. } = dims;
    let is_lstm = matches!(spec.cell, CellKind::Lstm { .. });
    let y = vec![0f32; crate::tensor::numel(&[seq, dirs, batch, out])?];
    let y_c = is_lstm.then(|| vec![0f32; dirs * batch * hidden]);
    finish_outputs(spec, &dims, y, vec![0f32; dirs * batch * out], y_c)
}

/// Builds the output tensors from layout-0 buffers, transposing for `layout = 1`.
pub fn finish_outputs(
    spec: &RecurrentSpec,
    dims: &Dims,
    y: Vec<f32>,
    y_h: Vec<f32>,
    y_c: Option<Vec<f32>>,
) -> Result<RecurrentOutputs> {
    let Dims { seq, batch, hidden, out, dirs, .. } = *dims;
    if spec.layout == 0 {
        return Ok(RecurrentOutputs {
            y: Tensor::from_f32(vec![seq, dirs, batch, out], y)?,
            y_h: Tensor::from_f32(vec![dirs, batch, out], y_h)?,
            y_c: y_c.map(|c| Tensor::from_f32(vec![dirs, batch, hidden], c)).transpose()?,
            on_device: false,
        });
    }
    // layout 1: Y [B, T, D, out], Y_h [B, D, out], Y_c [B, D, H].
    let mut y1 = vec![0f32; y.len()];
    for t in 0..seq {
        for d in 0..dirs {
            for b in 0..batch {
                let src = ((t * dirs + d) * batch + b) * out;
                let dst = ((b * seq + t) * dirs + d) * out;
                y1[dst..dst + out].copy_from_slice(&y[src..src + out]);
            }
        }
    }
    Ok(RecurrentOutputs {
        y: Tensor::from_f32(vec![batch, seq, dirs, out], y1)?,
        y_h: Tensor::from_f32(vec![batch, dirs, out], swap_leading(&y_h, dirs, batch, out))?,
        y_c: y_c
            .map(|c| Tensor::from_f32(vec![batch, dirs, hidden], swap_leading(&c, dirs, batch, hidden)))
            .transpose()?,
        on_device: false,
    })
}

/// `[a, b, n]` → `[b, a, n]`: how `layout = 1` tensors (`[B, T, I]`, `[B, D, H]`) map to the
/// layout-0 order the kernels work in (`[T, B, I]`, `[D, B, H]`), and back.
pub fn swap_leading(v: &[f32], a: usize, b: usize, n: usize) -> Vec<f32> {
    let mut o = vec![0f32; v.len()];
    for i in 0..a {
        for j in 0..b {
            let (src, dst) = ((i * b + j) * n, (j * a + i) * n);
            o[dst..dst + n].copy_from_slice(&v[src..src + n]);
        }
    }
    o
}

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
