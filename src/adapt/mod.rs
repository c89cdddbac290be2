//! On-device personalization (#17): a per-session adapter on the model's output head, learned
//! online from the session's own steps, with a guard against forgetting.
//!
//! After each step the adapter adds `Δ(x) = D·u + d` to the head's logits, where `x` is the last
//! recurrent layer's new hidden state and `u = x` (full delta, `rank` 0) or `u = B·x` (low rank:
//! `B` a fixed random `rank × H` matrix, `D` then `classes × rank`). [`Session::learn`] takes a
//! class index (cross-entropy on the softmax of the logits) or target values (squared error on a
//! raw output) and takes one clipped SGD step on `D` and `d`. The [`guard`] decides whether the
//! step's output is the adapted one. Plain loops (LLVM vectorises them): one code path per build,
//! not one per instruction set, so the package stays small.

pub mod guard;
pub mod head;
pub mod persist;

pub use head::{Activation, Head};

use crate::error::{Error, Result};
use crate::model::Model;
use crate::session::Session;
use guard::Window;

/// How a session adapts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptOptions {
    pub learning_rate: f32,
    /// 0: a full `classes × H` delta; otherwise a low-rank one through a fixed random projection.
    pub rank: usize,
    /// Steps of the guard's loss window.
    pub window: usize,
    /// Largest norm of one update of the delta (larger ones are scaled down).
    pub max_update_norm: f32,
    /// Off: the adapter is always used and never rolled back (for measuring what the guard does).
    pub guard: bool,
}

impl Default for AdaptOptions {
    fn default() -> Self {
        AdaptOptions { learning_rate: 0.02, rank: 0, window: 100, max_update_norm: 1.0, guard: true }
    }
}

impl AdaptOptions {
    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidArgument(format!("adapt: {what}")));
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 10.0) {
            return bad("learningRate must be a number in (0, 10]");
        }
        if !(1..=100_000).contains(&self.window) {
            return bad("window must be an integer from 1 to 100000");
        }
        if self.rank > 4096 {
            return bad("rank must be 0 (full delta) or at most 4096");
        }
        if !(self.max_update_norm.is_finite() && self.max_update_norm > 0.0) {
            return bad("maxUpdateNorm must be a positive number");
        }
        Ok(())
    }
}

/// What [`Session::learn`] learns from the last step's output.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The class that came next (cross-entropy).
    Class(usize),
    /// The values the output should have been (squared error; raw outputs only).
    Values(&'a [f32]),
}

/// [`Session::adaptation`]: the guard's view of the adapter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptation {
    pub updates: u64,
    /// Whether the session's outputs are the adapted ones.
    pub active: bool,
    /// Mean losses over the window (NaN while it is empty).
    pub base_loss: f32,
    pub adapted_loss: f32,
    pub rollbacks: u32,
    /// Top-1 accuracy of the base and the adapted output over the class targets learned since the
    /// adapter was made or reset (NaN before any).
    pub base_accuracy: f32,
    pub adapted_accuracy: f32,
}

/// One session's adapter, with its scratch (nothing is allocated per step).
#[derive(Debug, Clone)]
pub struct Adapter {
    pub(crate) head: Head,
    pub(crate) options: AdaptOptions,
    /// `classes × m` delta rows, then `classes` biases (`m` = H, or the rank).
    pub(crate) params: Vec<f32>,
    /// The last good copy of `params` (rolled back to after a divergence).
    pub(crate) good: Vec<f32>,
    /// Low rank: the fixed projection, `rank × H`.
    proj: Vec<f32>,
    pub(crate) window: Window,
    pub(crate) updates: u64,
    pub(crate) rollbacks: u32,
    /// Class targets scored, and the base and adapted outputs' top-1 hits among them.
    pub(crate) scored: u64,
    pub(crate) hits: [u64; 2],
    /// The last step's head input, its projection, base output (log-probabilities, or raw values)
    /// and adapted logits; `pending` while a step's output waits for its `learn`.
    x: Vec<f32>,
    u: Vec<f32>,
    base: Vec<f32>,
    adapted: Vec<f32>,
    pending: bool,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, k| if v[k] > v[best] { k } else { best })
}

/// `v` ← log-softmax(`v`).
fn log_softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + v.iter().map(|&z| (z - max).exp()).sum::<f32>().ln();
    v.iter_mut().for_each(|z| *z -= lse);
}

/// A fixed pseudo-random projection (xorshift; scaled so `B·x` keeps `x`'s norm on average).
fn projection(rank: usize, h: usize) -> Vec<f32> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let scale = (3.0 / rank as f32).sqrt();
    (0..rank * h)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

impl Adapter {
    pub(crate) fn new(head: Head, options: AdaptOptions) -> Result<Adapter> {
        options.check()?;
        let m = if options.rank == 0 { head.inputs } else { options.rank };
        let n = head.classes;
        let len =
            m.checked_mul(n).and_then(|x| x.checked_add(n)).ok_or_else(|| Error::Shape("adapter too big".into()))?;
        let params = crate::budget::try_vec(len, 0.0, "a session's adapter")?;
        Ok(Adapter {
            proj: if options.rank == 0 { Vec::new() } else { projection(options.rank, head.inputs) },
            good: params.clone(),
            params,
            window: Window::new(options.window),
            updates: 0,
            rollbacks: 0,
            scored: 0,
            hits: [0; 2],
            x: vec![0.0; head.inputs],
            u: vec![0.0; m],
            base: vec![0.0; n],
            adapted: vec![0.0; n],
            pending: false,
            head,
            options,
        })
    }

    fn width(&self) -> usize {
        self.u.len()
    }

    fn active(&self) -> bool {
        !self.options.guard || self.window.adapted_wins()
    }

    pub(crate) fn report(&self) -> Adaptation {
        let (base_loss, adapted_loss) = self.window.means();
        let rate = |h: u64| h as f32 / self.scored as f32;
        Adaptation {
            updates: self.updates,
            active: self.active(),
            base_loss,
            adapted_loss,
            rollbacks: self.rollbacks,
            base_accuracy: rate(self.hits[0]),
            adapted_accuracy: rate(self.hits[1]),
        }
    }

    /// Back to a zero delta, an empty window and no counts (the options stay).
    pub(crate) fn reset(&mut self) {
        self.params.iter_mut().for_each(|v| *v = 0.0);
        self.good.copy_from_slice(&self.params);
        self.window.clear();
        (self.updates, self.rollbacks, self.pending) = (0, 0, false);
        (self.scored, self.hits) = (0, [0; 2]);
    }

    pub(crate) fn forget_step(&mut self) {
        self.pending = false;
    }

    /// After a step: `out` is the head's output for it, `x` the head's input. Keeps both for
    /// [`Adapter::learn`] and makes `out` the adapted output while the guard allows it.
    pub(crate) fn observe(&mut self, out: &mut [f32], x: &[f32]) {
        let n = self.head.classes;
        if out.len() != n || x.len() != self.x.len() {
            self.pending = false;
            return;
        }
        self.x.copy_from_slice(x);
        let m = self.width();
        if self.proj.is_empty() {
            self.u.copy_from_slice(x);
        } else {
            for (u, row) in self.u.iter_mut().zip(self.proj.chunks_exact(x.len())) {
                *u = dot(row, x);
            }
        }
        for (b, &o) in self.base.iter_mut().zip(out.iter()) {
            *b = match self.head.activation {
                Activation::Softmax => o.max(1e-30).ln(),
                _ => o,
            };
        }
        let (rows, bias) = self.params.split_at(n * m);
        for (j, a) in self.adapted.iter_mut().enumerate() {
            *a = self.base[j] + dot(&rows[j * m..(j + 1) * m], &self.u) + bias[j];
        }
        self.pending = true;
        if !self.active() {
            return;
        }
        let act = self.head.activation;
        if act != Activation::None {
            log_softmax(&mut self.adapted);
        }
        for (o, &a) in out.iter_mut().zip(&self.adapted) {
            *o = if act == Activation::Softmax { a.exp() } else { a };
        }
    }

    /// One online update from the last observed step (see [`Session::learn`]).
    pub(crate) fn learn(&mut self, target: Target<'_>) -> Result<()> {
        if !self.pending {
            return Err(Error::InvalidArgument(
                "learn needs a step first: it learns from the output of the session's last step (once per step)".into(),
            ));
        }
        let n = self.head.classes;
        let (lb, la) = match target {
            Target::Class(c) => {
                if c >= n {
                    return Err(Error::InvalidArgument(format!(
                        "learn: class {c} is out of range (the output has {n})"
                    )));
                }
                self.scored += 1;
                self.hits[0] += (argmax(&self.base) == c) as u64;
                self.hits[1] += (argmax(&self.adapted) == c) as u64;
                if self.head.activation == Activation::None {
                    log_softmax(&mut self.base);
                }
                log_softmax(&mut self.adapted);
                let (lb, la) = (-self.base[c], -self.adapted[c]);
                // ∂CE/∂logits = softmax − onehot, kept in `adapted`.
                self.adapted.iter_mut().for_each(|a| *a = a.exp());
                self.adapted[c] -= 1.0;
                (lb, la)
            }
            Target::Values(t) => {
                if self.head.activation != Activation::None {
                    return Err(Error::InvalidArgument(
                        "learn: the output is a (log-)softmax over classes: give the class index, not values".into(),
                    ));
                }
                if t.len() != n {
                    return Err(Error::Shape(format!("learn: the target has {} values, the output {n}", t.len())));
                }
                if t.iter().any(|v| !v.is_finite()) {
                    return Err(Error::InvalidArgument("learn: the target has a non-finite value".into()));
                }
                let mse = |v: &[f32]| v.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / n as f32;
                let (lb, la) = (mse(&self.base), mse(&self.adapted));
                for (a, &b) in self.adapted.iter_mut().zip(t) {
                    *a = 2.0 * (*a - b) / n as f32;
                }
                (lb, la)
            }
        };
        self.pending = false;
        if self.options.guard && self.window.diverged(lb, la) {
            self.params.copy_from_slice(&self.good);
            self.window.clear();
            self.rollbacks += 1;
            return Ok(());
        }
        self.window.push(lb, la);
        let g = &self.adapted;
        let norm = (g.iter().map(|v| v * v).sum::<f32>() * (dot(&self.u, &self.u) + 1.0)).sqrt();
        let mut lr = self.options.learning_rate;
        if lr * norm > self.options.max_update_norm {
            lr = self.options.max_update_norm / norm;
        }
        if !lr.is_finite() || !norm.is_finite() {
            return Ok(());
        }
        let m = self.width();
        let (rows, bias) = self.params.split_at_mut(n * m);
        for ((row, b), &gj) in rows.chunks_exact_mut(m).zip(bias.iter_mut()).zip(g) {
            let s = lr * gj;
            row.iter_mut().zip(&self.u).for_each(|(w, &u)| *w -= s * u);
            *b -= s;
        }
        self.updates += 1;
        let every = (self.options.window / 4).max(1) as u64;
        if self.active() && self.updates % every == 0 {
            self.good.copy_from_slice(&self.params);
        }
        Ok(())
    }
}

impl Model {
    /// A new session that adapts to its user ([`Session::enable_adaptation`]).
    pub fn create_adapting_session(&self, options: AdaptOptions) -> Result<Session> {
        let mut s = self.create_session()?;
        s.enable_adaptation(options)?;
        Ok(s)
    }
}

impl Session {
    /// Starts (or restarts, with new options) adapting this session's output head; an
    /// [`Error::InvalidModel`] says why where the model has no head to adapt. A GPU session then
    /// brings its state back with each step's outputs (the adapter reads it).
    pub fn enable_adaptation(&mut self, options: AdaptOptions) -> Result<()> {
        let head = self.model().output_head()?;
        self.adapter = Some(Box::new(Adapter::new(head, options)?));
        self.set_read_back(true);
        Ok(())
    }

    /// Changes the options of the adapter, keeping what it learned (the rank cannot change; a new
    /// window size starts an empty window).
    pub fn set_adapt_options(&mut self, options: AdaptOptions) -> Result<()> {
        options.check()?;
        let a = self.adapter.as_mut().ok_or_else(|| Error::InvalidArgument("the session does not adapt".into()))?;
        if options.rank != a.options.rank {
            return Err(Error::InvalidArgument("adapt: the rank of an adapter cannot change".into()));
        }
        if options.window != a.options.window {
            a.window = Window::new(options.window);
        }
        a.options = options;
        Ok(())
    }

    /// Stops adapting and forgets the adapter.
    pub fn disable_adaptation(&mut self) {
        self.adapter = None;
    }

    /// Updates the adapter from the last step's output: `target` is what came next. Errors (and
    /// changes nothing) without adaptation, before a step, twice for one step, or on a bad target.
    pub fn learn(&mut self, target: Target<'_>) -> Result<()> {
        self.adapter
            .as_mut()
            .ok_or_else(|| {
                Error::InvalidArgument("learn: the session does not adapt (create it with adaptation on)".into())
            })?
            .learn(target)
    }

    /// The adapter's counts and window losses, `None` without adaptation.
    pub fn adaptation(&self) -> Option<Adaptation> {
        self.adapter.as_ref().map(|a| a.report())
    }

    /// The adaptation options, `None` without adaptation.
    pub fn adapt_options(&self) -> Option<AdaptOptions> {
        self.adapter.as_ref().map(|a| a.options)
    }

    /// Forgets what the adapter learned (adaptation stays on).
    pub fn reset_adaptation(&mut self) {
        if let Some(a) = self.adapter.as_mut() {
            a.reset();
        }
    }

    /// Called after each successful step of this session with its outputs.
    pub(crate) fn observe_step(&mut self, outs: &mut [crate::Tensor], row: usize) {
        let Some(a) = self.adapter.as_mut() else { return };
        let (output, offset, n) = (a.head.output, a.head.state_offset, a.head.classes);
        let x = self.state.get(offset..offset + a.head.inputs);
        let (Some(t), Some(x)) = (outs.get_mut(output), x) else {
            a.forget_step();
            return;
        };
        match (t.as_f32_mut(), self.version == self.host_version) {
            (Some(v), true) if v.len() >= (row + 1) * n => a.observe(&mut v[row * n..(row + 1) * n], x),
            _ => a.forget_step(),
        }
    }
}
