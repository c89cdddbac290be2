//! Sessions: per-user recurrent state that persists from call to call. A session holds the state of
//! every recurrent layer of its model; `step`, `run` and `Model::step_batch` feed the graph only the
//! real inputs, inject the sessions' states into the recurrent nodes and keep their final states.
//! A failed call leaves every session's state as it was.
//!
//! On a backend that keeps state on its device (the GPU's state pools), a session's newest state
//! may live there only: its host copy is then older, and the session journals the inputs of the
//! calls since, so that it can always rebuild its state without the device (a lost device, a
//! clone) by replaying them from the host copy. [`Model::sync_async`] brings the host copy up to
//! date; every [`JOURNAL_CALLS`] calls a step brings it back on its own.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cell::{CellKind, Dims};
use crate::error::{Error, Result};
use crate::graph::{block_on_ready, StateHook};
use crate::model::{CellLayout, Model, SessionPlan};
use crate::ops;
use crate::tensor::{numel, Data, Tensor};

pub mod calls;
pub(crate) mod specialize;

/// How many calls a session's state may stay on the device only before a call brings it back.
pub const JOURNAL_CALLS: usize = 32;

/// Session ids and state versions: never reused, so a device's copy cannot be mistaken for
/// another session's or another version's.
static COUNTER: AtomicU64 = AtomicU64::new(1);

fn fresh() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// One user's recurrent state for one model.
#[derive(Debug)]
pub struct Session {
    model: Model,
    /// All layers' states back to back, each `h` (dirs × state_size) then `c` (dirs × hidden):
    /// the state at version `host_version`.
    pub(crate) state: Vec<f32>,
    steps: u64,
    id: u64,
    /// The version of the session's newest state (on the device only when it is not `host_version`).
    pub(crate) version: u64,
    pub(crate) host_version: u64,
    /// The calls from `host_version` to `version`, to replay.
    journal: Vec<Journaled>,
    /// Bring the newest state back with every call's outputs ([`Session::set_read_back`]).
    read_back: bool,
    /// The session's adapter ([`Session::enable_adaptation`]).
    pub(crate) adapter: Option<Box<crate::adapt::Adapter>>,
}

/// One call's inputs for one session.
#[derive(Debug, Clone)]
struct Journaled {
    inputs: Vec<Data>,
    steps: usize,
}

impl Clone for Session {
    /// The same state, as a new session: the device's copy stays with the original, so a clone
    /// whose newest state is there rebuilds it from the journal when it is next used.
    fn clone(&self) -> Session {
        Session {
            model: self.model.clone(),
            state: self.state.clone(),
            steps: self.steps,
            id: fresh(),
            version: self.version,
            host_version: self.host_version,
            journal: self.journal.clone(),
            read_back: self.read_back,
            adapter: self.adapter.clone(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.model.kernels().release_state(self.id);
    }
}

/// Where one layer's state lives inside a session's state vector.
struct Slot {
    offset: usize,
    dirs: usize,
    out: usize,
    hidden: usize,
    lstm: bool,
    layout: u8,
}

impl Slot {
    fn of(c: &CellLayout) -> Slot {
        Slot {
            offset: c.offset,
            dirs: c.direction.count(),
            out: c.state_size,
            hidden: c.hidden_size,
            lstm: matches!(c.cell, CellKind::Lstm { .. }),
            layout: c.layout,
        }
    }
}

/// Feeds the states of a batch of sessions into recurrent nodes and collects their final states.
struct BatchHook<'a> {
    cells: &'a [CellLayout],
    current: Vec<&'a [f32]>,
    staged: Vec<Vec<f32>>,
    resident: Option<&'a crate::cell::Resident>,
    /// A node left its final state on the device only.
    on_device: bool,
}

impl Slot {
    /// Index in a `[dirs, B, size]` (layout 0) or `[B, dirs, size]` (layout 1) state tensor.
    fn tensor_offset(&self, d: usize, b: usize, batch: usize, size: usize) -> usize {
        if self.layout == 0 {
            (d * batch + b) * size
        } else {
            (b * self.dirs + d) * size
        }
    }

    fn shape(&self, batch: usize, size: usize) -> Vec<usize> {
        if self.layout == 0 {
            vec![self.dirs, batch, size]
        } else {
            vec![batch, self.dirs, size]
        }
    }
}

impl BatchHook<'_> {
    /// The state slot of recurrent node `node` (a linear scan: models have a few layers).
    fn slot(&self, node: usize) -> Option<Slot> {
        self.cells.iter().find(|c| c.node == node).map(Slot::of)
    }
}

impl StateHook for BatchHook<'_> {
    fn initial_state(&mut self, node: usize, dims: &Dims) -> Result<Option<(Tensor, Option<Tensor>)>> {
        let slot = self.slot(node).ok_or_else(|| Error::InvalidModel("recurrent node without a state slot".into()))?;
        let batch = self.current.len();
        if dims.batch != batch || dims.out != slot.out || dims.dirs != slot.dirs {
            return Err(Error::Shape(format!(
                "a recurrent layer sees batch {} with state size {}, the sessions hold batch {batch} of size {}",
                dims.batch, dims.out, slot.out
            )));
        }
        let gather = |size: usize, base: usize| {
            let mut v = vec![0f32; slot.dirs * batch * size];
            for (b, st) in self.current.iter().enumerate() {
                for d in 0..slot.dirs {
                    let src = slot.offset + base + d * size;
                    let dst = slot.tensor_offset(d, b, batch, size);
                    v[dst..dst + size].copy_from_slice(&st[src..src + size]);
                }
            }
            v
        };
        let h = Tensor::from_f32(slot.shape(batch, slot.out), gather(slot.out, 0))?;
        let c = if slot.lstm {
            Some(Tensor::from_f32(slot.shape(batch, slot.hidden), gather(slot.hidden, slot.dirs * slot.out))?)
        } else {
            None
        };
        Ok(Some((h, c)))
    }

    fn resident(&self) -> Option<&crate::cell::Resident> {
        self.resident
    }

    fn final_state(&mut self, node: usize, out: &crate::cell::RecurrentOutputs) -> Result<()> {
        let Some(slot) = self.slot(node) else {
            return Ok(());
        };
        if out.on_device {
            self.on_device = true;
            return Ok(());
        }
        let (y_h, y_c) = (&out.y_h, out.y_c.as_ref());
        let batch = self.staged.len();
        let mut scatter = |t: &Tensor, size: usize, base: usize| -> Result<()> {
            let v = t.as_f32()?;
            if v.len() != slot.dirs * batch * size {
                return Err(Error::Shape("final state has an unexpected size".into()));
            }
            for (b, st) in self.staged.iter_mut().enumerate() {
                for d in 0..slot.dirs {
                    let src = slot.tensor_offset(d, b, batch, size);
                    let dst = slot.offset + base + d * size;
                    st[dst..dst + size].copy_from_slice(&v[src..src + size]);
                }
            }
            Ok(())
        };
        scatter(y_h, slot.out, 0)?;
        if let (true, Some(c)) = (slot.lstm, y_c) {
            scatter(c, slot.hidden, slot.dirs * slot.out)?;
        }
        Ok(())
    }
}

/// Flat per-session data → the graph's tensor for `t` steps of `b` sessions.
/// `data` is ordered session-major, then time, then the input's other axes.
fn to_graph_input(p: &crate::model::InputPlan, data: Data, t: usize, b: usize) -> Result<Tensor> {
    let mut src_shape = vec![b, t];
    src_shape.extend_from_slice(&p.rest);
    let x = Tensor::new(src_shape, data)?;
    let rank = p.rest.len() + 2;
    let mut rest_axis = 2;
    let perm: Vec<usize> = (0..rank)
        .map(|a| {
            if a == p.batch_axis {
                0
            } else if a == p.time_axis {
                1
            } else {
                rest_axis += 1;
                rest_axis - 1
            }
        })
        .collect();
    ops::transpose_owned(x, &perm)
}

/// A graph output → `[B, T, rest...]` (or `[B, rest...]` without a time axis).
fn from_graph_output(o: &crate::model::OutputPlan, t: Tensor) -> Result<Tensor> {
    let rank = t.rank();
    if o.batch_axis >= rank || o.time_axis.is_some_and(|a| a >= rank) {
        return Err(Error::Shape(format!("output '{}' has rank {rank}", o.name)));
    }
    let mut perm = vec![o.batch_axis];
    perm.extend(o.time_axis);
    perm.extend((0..rank).filter(|&a| a != o.batch_axis && Some(a) != o.time_axis));
    ops::transpose_owned(t, &perm)
}

fn check_finite_len(name: &str, data: &Data, want: usize) -> Result<()> {
    let len = match data {
        Data::F32(v) => v.len(),
        Data::I64(v) => v.len(),
    };
    if len != want {
        return Err(Error::Shape(format!("input '{name}' needs {want} values, got {len}")));
    }
    Ok(())
}

impl Model {
    /// A new session with zero state.
    pub fn create_session(&self) -> Result<Session> {
        let plan = self.session_plan()?;
        let len = plan.state_len();
        let version = fresh();
        Ok(Session {
            model: self.clone(),
            state: crate::budget::try_vec(len, 0.0, "a session's state")?,
            steps: 0,
            id: fresh(),
            version,
            host_version: version,
            journal: Vec::new(),
            read_back: false,
            adapter: None,
        })
    }

    /// One time step for many sessions at once. `inputs[k]` holds real input `k` for every session,
    /// session-major (`sessions.len() × step_len` values). Returns each non-state output as
    /// `[sessions, ...]`.
    pub fn step_batch(&self, sessions: &mut [&mut Session], inputs: Vec<Data>) -> Result<Vec<Tensor>> {
        block_on_ready(self.step_batch_async(sessions, inputs))?
    }

    /// [`Model::step_batch`] for backends that complete asynchronously.
    pub async fn step_batch_async(&self, sessions: &mut [&mut Session], inputs: Vec<Data>) -> Result<Vec<Tensor>> {
        let plan = self.session_plan()?;
        if plan.calls.is_some() {
            return Err(Error::InvalidArgument(
                "the model is called one chunk at a time with its state in graph tensors and has no batch axis \
                 sessions can share: step each session on its own"
                    .into(),
            ));
        }
        if !plan.streamable {
            return Err(Error::InvalidArgument(
                "the model has a reverse or bidirectional layer, which cannot be stepped; use run".into(),
            ));
        }
        if sessions.is_empty() {
            return Err(Error::InvalidArgument("step_batch needs at least one session".into()));
        }
        if let Some(s) = sessions.iter().find(|s| !s.model.same_as(self)) {
            return Err(Error::StateMismatch(format!(
                "a session of model {} was passed to model {}",
                s.model.fingerprint_hex(),
                self.fingerprint_hex()
            )));
        }
        self.call_sessions(plan, sessions, inputs, 1).await
    }

    /// `t` steps of `sessions` (one step of a batch, or a sequence of one session), with their
    /// state on the device where the backend keeps it there; the sessions change only on success.
    async fn call_sessions(
        &self,
        plan: &SessionPlan,
        sessions: &mut [&mut Session],
        inputs: Vec<Data>,
        t: usize,
    ) -> Result<Vec<Tensor>> {
        let kernels = self.kernels();
        let keep = kernels.keeps_state();
        // Only asked about where a state may be on a device (nothing to allocate on the CPU path).
        let nodes: Vec<usize> = if keep || sessions.iter().any(|s| s.stale()) {
            plan.cells.iter().map(|c| c.node).collect()
        } else {
            Vec::new()
        };
        // A session whose newest state the device no longer holds rebuilds it first.
        for s in sessions.iter_mut() {
            if s.stale() && !(keep && kernels.holds_state(&nodes, s.id, s.version)) {
                self.replay(plan, s).await?;
            }
        }
        let resident = keep.then(|| crate::cell::Resident {
            sessions: sessions.iter().map(|s| s.id).collect(),
            versions: sessions.iter().map(|s| s.version).collect(),
            host_valid: sessions.iter().map(|s| !s.stale()).collect(),
            next: fresh(),
            read_back: sessions.iter().any(|s| s.read_back || s.journal.len() + 1 >= JOURNAL_CALLS),
            read_nodes: plan.state_readers.clone(),
        });
        // A copy of the inputs only where the state may stay on the device: to run the call again
        // if the device goes away under it, and for the sessions' journals.
        let kept = keep.then(|| inputs.clone());
        let current: Vec<&[f32]> = sessions.iter().map(|s| s.state.as_slice()).collect();
        let run = self.execute_sessions(plan, current, inputs, t, resident.as_ref()).await;
        let (outs, staged, on_device) = match (run, &kept) {
            // The device went away under the call: replay, then run without it.
            (Err(_), Some(again))
                if sessions.iter().any(|s| s.stale() && !kernels.holds_state(&nodes, s.id, s.version)) =>
            {
                for s in sessions.iter_mut().filter(|s| s.stale()) {
                    self.replay(plan, s).await?;
                }
                let current: Vec<&[f32]> = sessions.iter().map(|s| s.state.as_slice()).collect();
                self.execute_sessions(plan, current, again.clone(), t, None).await?
            }
            (r, _) => r?,
        };
        let next = resident.as_ref().map_or_else(fresh, |r| r.next);
        let mut parts = kept.filter(|_| on_device).map(|j| split_sessions(plan, j, sessions.len(), t).into_iter());
        for (s, st) in sessions.iter_mut().zip(staged) {
            s.version = next;
            match parts.as_mut() {
                Some(parts) => s.journal.push(Journaled { inputs: parts.next().unwrap_or_default(), steps: t }),
                None => {
                    s.state = st;
                    s.host_version = next;
                    s.journal.clear();
                }
            }
            s.steps += t as u64;
        }
        // Adapters see each step's output with the state that made it (a sequence: forget theirs).
        let mut outs = outs;
        for (row, s) in sessions.iter_mut().enumerate() {
            match (t, s.adapter.as_mut()) {
                (1, Some(_)) => s.observe_step(&mut outs, row),
                (_, Some(a)) => a.forget_step(),
                _ => {}
            }
        }
        Ok(outs)
    }

    /// Rebuilds a session's newest state on the host by replaying its journal from its host copy
    /// (on the device if there is one, without keeping the state there).
    async fn replay(&self, plan: &SessionPlan, s: &mut Session) -> Result<()> {
        let mut state = s.state.clone();
        for j in &s.journal {
            let (_, mut staged, _) = self.execute_sessions(plan, vec![&state], j.inputs.clone(), j.steps, None).await?;
            state = staged.pop().ok_or_else(|| Error::InvalidModel("replay produced no state".into()))?;
        }
        s.state = state;
        s.host_version = s.version;
        s.journal.clear();
        Ok(())
    }

    /// Brings the host copy of these sessions' state up to date where their newest state is on
    /// the device only ([`Session::state`], snapshots and saves need it). A no-op elsewhere.
    pub async fn sync_async(&self, sessions: &mut [&mut Session]) -> Result<()> {
        let plan = self.session_plan()?;
        let stale: Vec<usize> = (0..sessions.len()).filter(|&i| sessions[i].stale()).collect();
        if stale.is_empty() {
            return Ok(());
        }
        let ids: Vec<u64> = stale.iter().map(|&i| sessions[i].id).collect();
        let versions: Vec<u64> = stale.iter().map(|&i| sessions[i].version).collect();
        // Every node's part, for every stale session (None: the device no longer holds it).
        let mut parts: Vec<Vec<Option<Vec<f32>>>> = Vec::new();
        for c in &plan.cells {
            let got = match self.kernels().read_state(c.node, &ids, &versions) {
                Some(f) => f.await?,
                None => vec![None; ids.len()],
            };
            parts.push(got);
        }
        for (k, &i) in stale.iter().enumerate() {
            let s = &mut *sessions[i];
            let mut state = s.state.clone();
            let mut complete = true;
            for (c, got) in plan.cells.iter().zip(&parts) {
                let part = got.get(k).and_then(Option::as_ref).filter(|v| v.len() == c.state_len());
                match (part, state.get_mut(c.offset..c.offset + c.state_len())) {
                    (Some(v), Some(dst)) => dst.copy_from_slice(v),
                    _ => complete = false,
                }
            }
            if complete {
                s.state = state;
                s.host_version = s.version;
                s.journal.clear();
            } else {
                self.replay(plan, s).await?;
            }
        }
        Ok(())
    }

    /// [`Model::sync_async`], natively (or in the browser when no session's state is on a device).
    pub fn sync(&self, sessions: &mut [&mut Session]) -> Result<()> {
        block_on_ready(self.sync_async(sessions))?
    }

    /// Runs `t` steps for the given session states; returns outputs `[B, (T,) rest]`, the new
    /// states, and whether a node left its state on the device only (the new states are then
    /// not all there).
    async fn execute_sessions(
        &self,
        plan: &SessionPlan,
        current: Vec<&[f32]>,
        inputs: Vec<Data>,
        t: usize,
        resident: Option<&crate::cell::Resident>,
    ) -> Result<(Vec<Tensor>, Vec<Vec<f32>>, bool)> {
        let b = current.len();
        if inputs.len() != plan.inputs.len() {
            let names: Vec<&str> = plan.inputs.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::InvalidArgument(format!(
                "the model takes {} input(s) ({}), {} were given",
                names.len(),
                names.join(", "),
                inputs.len()
            )));
        }
        // What the call holds besides the graph's values: the staged states (the current ones
        // stay until it succeeds), and the inputs in graph layout; refused before any is made.
        let fed: usize = plan
            .inputs
            .iter()
            .map(|p| crate::budget::bytes(p.dtype, b.saturating_mul(t).saturating_mul(p.step_len())))
            .sum();
        let states = crate::budget::bytes(crate::DType::F32, b.saturating_mul(plan.state_len()));
        crate::budget::check("the call's inputs and staged states", fed.saturating_add(states), self.inner.max_memory)?;
        let mut feed: Vec<Option<Tensor>> = vec![None; self.graph().inputs.len()];
        for (p, data) in plan.inputs.iter().zip(inputs) {
            let want = numel(&[b, t, p.step_len()])?;
            check_finite_len(&p.name, &data, want)?;
            let data = match (p.dtype, data) {
                (crate::tensor::DType::F32, Data::I64(v)) => Data::F32(v.into_iter().map(|x| x as f32).collect()),
                (crate::tensor::DType::I64, Data::F32(v)) => {
                    return Err(Error::Shape(format!("input '{}' takes integer ids, got {} floats", p.name, v.len())))
                }
                (_, d) => d,
            };
            feed[p.graph_index] = Some(to_graph_input(p, data, t, b)?);
        }
        let staged: Vec<Vec<f32>> = current.iter().map(|s| s.to_vec()).collect();
        let mut hook = BatchHook { cells: &plan.cells, current, staged, resident, on_device: false };
        let budget = self.inner.max_memory.saturating_sub(states);
        let outs = self.graph().execute_within(&plan.schedule, feed, &mut hook, self.kernels(), budget).await?;
        let outs = plan.outputs.iter().zip(outs).map(|(o, t)| from_graph_output(o, t)).collect::<Result<Vec<_>>>()?;
        Ok((outs, hook.staged, hook.on_device))
    }
}

impl Session {
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Time steps this session has consumed since creation or the last reset.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One time step. `inputs[k]` holds one step of real input `k` (`step_len` values).
    /// Returns each non-state output for this step (batch and time axes removed).
    pub fn step(&mut self, inputs: Vec<Data>) -> Result<Vec<Tensor>> {
        block_on_ready(self.step_async(inputs))?
    }

    /// [`Session::step`] for backends that complete asynchronously.
    pub async fn step_async(&mut self, inputs: Vec<Data>) -> Result<Vec<Tensor>> {
        let model = self.model.clone();
        let plan = model.session_plan()?;
        if plan.calls.is_some() {
            return model.call_graph(plan, self, inputs).await;
        }
        let mut one = [self];
        let outs = model.step_batch_async(&mut one, inputs).await?;
        outs.into_iter().map(|t| drop_leading(t, 1)).collect()
    }

    /// A whole sequence of `steps` time steps, time-major. Works for every model, bidirectional
    /// included (each direction starts from the session's state). Returns outputs `[T, ...]`
    /// (outputs without a time axis are returned as they are, without the batch axis).
    pub fn run(&mut self, inputs: Vec<Data>, steps: usize) -> Result<Vec<Tensor>> {
        block_on_ready(self.run_async(inputs, steps))?
    }

    /// [`Session::run`] for backends that complete asynchronously.
    pub async fn run_async(&mut self, inputs: Vec<Data>, steps: usize) -> Result<Vec<Tensor>> {
        if steps == 0 {
            return Err(Error::InvalidArgument("run needs at least one step".into()));
        }
        let model = self.model.clone();
        let plan = model.session_plan()?;
        if plan.calls.is_some() {
            return Err(Error::InvalidArgument(
                "the model is called one chunk at a time (its graph has no time axis): call step for each chunk".into(),
            ));
        }
        let outs = model.call_sessions(plan, &mut [self], inputs, steps).await?;
        outs.into_iter().map(|t| drop_leading(t, 1)).collect()
    }

    /// Back to the zero state.
    pub fn reset(&mut self) {
        self.state.iter_mut().for_each(|v| *v = 0.0);
        self.steps = 0;
        self.host_changed();
    }

    /// With `on`, every call brings this session's newest state back to the host with its outputs
    /// (in the same read of the device, so no extra wait): the host copy is never behind once a
    /// call has settled, and [`Session::state`] and snapshots work without a sync, as on the CPU.
    /// The JS API turns it on for every session; off (the default), the state stays on the device
    /// between calls and comes back every [`JOURNAL_CALLS`] calls or on a sync.
    pub fn set_read_back(&mut self, on: bool) {
        self.read_back = on;
    }

    /// Whether the newest state is on the device only ([`Model::sync_async`] brings it back).
    pub fn stale(&self) -> bool {
        self.version != self.host_version
    }

    /// The host copy became the state (reset, set): a new version the device does not hold.
    fn host_changed(&mut self) {
        if let Some(a) = self.adapter.as_mut() {
            a.forget_step();
        }
        self.version = fresh();
        self.host_version = self.version;
        self.journal.clear();
    }

    /// The raw state: every layer's `h` then `c`, in the model's layer order. An error while the
    /// newest state is on the GPU only ([`Session::stale`]): sync first.
    pub fn state(&self) -> Result<&[f32]> {
        if self.stale() {
            return Err(Error::InvalidArgument(
                "the session's newest state is on the GPU: sync it first (Model::sync, or await model.idle() in JS)"
                    .into(),
            ));
        }
        Ok(&self.state)
    }

    /// Values in the raw state.
    pub fn state_len(&self) -> usize {
        self.state.len()
    }

    /// [`Model::sync`] for this session alone.
    pub fn sync(&mut self) -> Result<()> {
        let model = self.model.clone();
        model.sync(&mut [self])
    }

    /// [`Model::sync_async`] for this session alone.
    pub async fn sync_async(&mut self) -> Result<()> {
        let model = self.model.clone();
        model.sync_async(&mut [self]).await
    }

    /// Replaces the raw state (same length as [`Session::state`]).
    pub fn set_state(&mut self, state: &[f32]) -> Result<()> {
        if state.len() != self.state.len() {
            return Err(Error::StateMismatch(format!(
                "the model's state has {} values, {} were given",
                self.state.len(),
                state.len()
            )));
        }
        self.state.copy_from_slice(state);
        self.host_changed();
        Ok(())
    }

    pub(crate) fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }
}

/// Each session's part of a call's inputs (session-major, `t` steps each).
fn split_sessions(plan: &SessionPlan, inputs: Vec<Data>, b: usize, t: usize) -> Vec<Vec<Data>> {
    let mut parts: Vec<Vec<Data>> = vec![Vec::with_capacity(inputs.len()); b];
    for (p, data) in plan.inputs.iter().zip(inputs) {
        let n = t * p.step_len();
        for (i, part) in parts.iter_mut().enumerate() {
            part.push(match &data {
                Data::F32(v) => Data::F32(v.get(i * n..(i + 1) * n).unwrap_or_default().to_vec()),
                Data::I64(v) => Data::I64(v.get(i * n..(i + 1) * n).unwrap_or_default().to_vec()),
            });
        }
    }
    parts
}

/// Removes the leading batch axis of size 1.
fn drop_leading(t: Tensor, expect: usize) -> Result<Tensor> {
    match t.shape().first() {
        Some(&n) if n == expect => {
            let shape = t.shape()[1..].to_vec();
            t.reshaped(shape)
        }
        _ => Err(Error::Shape(format!("unexpected output shape {:?}", t.shape()))),
    }
}
