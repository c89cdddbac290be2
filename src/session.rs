//! Sessions: per-user recurrent state that persists from call to call. A session holds the state of
//! every recurrent layer of its model; `step`, `run` and `Model::step_batch` feed the graph only the
//! real inputs, inject the sessions' states into the recurrent nodes and keep their final states.
//! A failed call leaves every session's state as it was.

use crate::cell::{CellKind, Dims};
use crate::error::{Error, Result};
use crate::graph::{block_on_ready, StateHook};
use crate::model::{CellLayout, Model, SessionPlan};
use crate::ops;
use crate::tensor::{numel, Data, Tensor};

/// One user's recurrent state for one model.
#[derive(Debug, Clone)]
pub struct Session {
    model: Model,
    /// All layers' states back to back, each `h` (dirs × state_size) then `c` (dirs × hidden).
    state: Vec<f32>,
    steps: u64,
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

    fn final_state(&mut self, node: usize, y_h: &Tensor, y_c: Option<&Tensor>) -> Result<()> {
        let Some(slot) = self.slot(node) else {
            return Ok(());
        };
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
    ops::transpose(&x, Some(&perm))
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
    ops::transpose(&t, Some(&perm))
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
        let len = plan.cells.iter().map(|c| c.state_len()).sum();
        Ok(Session { model: self.clone(), state: vec![0.0; len], steps: 0 })
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
        let current: Vec<&[f32]> = sessions.iter().map(|s| s.state.as_slice()).collect();
        let (outs, staged) = self.execute_sessions(plan, current, inputs, 1).await?;
        for (s, st) in sessions.iter_mut().zip(staged) {
            s.state = st;
            s.steps += 1;
        }
        Ok(outs)
    }

    /// Runs `t` steps for the given session states; returns outputs `[B, (T,) rest]` and new states.
    async fn execute_sessions(
        &self,
        plan: &SessionPlan,
        current: Vec<&[f32]>,
        inputs: Vec<Data>,
        t: usize,
    ) -> Result<(Vec<Tensor>, Vec<Vec<f32>>)> {
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
        let mut hook = BatchHook { cells: &plan.cells, current, staged };
        let outs = self.graph().execute_async(&plan.schedule, feed, &mut hook, self.kernels()).await?;
        let outs = plan.outputs.iter().zip(outs).map(|(o, t)| from_graph_output(o, t)).collect::<Result<Vec<_>>>()?;
        Ok((outs, hook.staged))
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
        let (outs, mut staged) = model.execute_sessions(plan, vec![&self.state], inputs, steps).await?;
        self.state = staged.pop().unwrap_or_default();
        self.steps += steps as u64;
        outs.into_iter().map(|t| drop_leading(t, 1)).collect()
    }

    /// Back to the zero state.
    pub fn reset(&mut self) {
        self.state.iter_mut().for_each(|v| *v = 0.0);
        self.steps = 0;
    }

    /// The raw state: every layer's `h` then `c`, in the model's layer order.
    pub fn state(&self) -> &[f32] {
        &self.state
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
        Ok(())
    }

    pub(crate) fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }
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
