//! GPU-resident session state. Each recurrent node keeps a state pool: one slot per session that
//! ran on the GPU, holding the session's state for the node after its last call, laid out as the
//! session's own state (every direction's `h`, then every direction's `c`). A batched run gathers
//! the slots of its sessions into its working state (`state_slots.wgsl`) and scatters the final
//! state back, so nothing is uploaded or read back unless a session's host copy is newer or the
//! caller asks for it ([`Resident::read_back`]).
//!
//! A slot is only trusted for the exact state version the session says it is at: a failed call,
//! a state set on the host or another device's pool never leaves a slot that could be mistaken
//! for the session's state.

use std::collections::HashMap;
use std::sync::Mutex;

use super::context::{gpu_err, GpuContext};
use super::layer::SlotParams;
use super::shaders::GEMV_UNITS;
use crate::cell::{Dims, Resident};
use crate::error::{Error, Result};

/// The pools of one model's nodes, and the sessions dropped since they were last tidied.
#[derive(Debug, Default)]
pub struct Pools {
    pub nodes: Mutex<HashMap<usize, StatePool>>,
    pub released: Mutex<Vec<u64>>,
}

impl Pools {
    /// Frees the slots of released sessions. Called with the device gate held, when no run has a
    /// pool taken out.
    fn tidy(&self) {
        let released = match self.released.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        if released.is_empty() {
            return;
        }
        if let Ok(mut nodes) = self.nodes.lock() {
            for pool in nodes.values_mut() {
                for s in &released {
                    pool.release(*s);
                }
            }
        }
    }

    fn take(&self, node: usize) -> Option<StatePool> {
        self.tidy();
        self.nodes.lock().ok().and_then(|mut n| n.remove(&node))
    }

    fn put(&self, node: usize, pool: StatePool) {
        if let Ok(mut n) = self.nodes.lock() {
            n.insert(node, pool);
        }
    }

    /// Whether every node in `nodes` holds `session`'s state at `version`.
    pub fn holds(&self, nodes: &[usize], session: u64, version: u64) -> bool {
        let Ok(map) = self.nodes.lock() else {
            return false;
        };
        !nodes.is_empty()
            && nodes.iter().all(|n| map.get(n).and_then(|p| p.owners.get(&session)).is_some_and(|o| o.1 == version))
    }
}

/// One node's slots.
#[derive(Debug)]
pub struct StatePool {
    buf: wgpu::Buffer,
    /// Slots the buffer has room for.
    cap: usize,
    /// Floats per slot.
    slot_len: usize,
    /// Session → (its slot, the state version the slot holds).
    owners: HashMap<u64, (u32, u64)>,
    free: Vec<u32>,
    /// Slots handed out so far (the next fresh one).
    used: u32,
    /// The batch's slot indices, and room for how many.
    index: wgpu::Buffer,
    index_cap: usize,
    /// What `index` holds now, and the last run's bindings: a session stepping again on the same
    /// buffers writes and creates nothing (each is a round trip to the GPU process in a browser).
    written: Vec<u32>,
    bound: Option<Bound>,
}

/// `state_slots`' parameters and bind group for runs of one shape on one working state.
#[derive(Debug, Clone)]
struct Bound {
    key: ([usize; 5], bool, usize, wgpu::Buffer),
    /// The buffer the group binds, kept with it.
    _params: wgpu::Buffer,
    group: wgpu::BindGroup,
}

impl StatePool {
    fn release(&mut self, session: u64) {
        if let Some((slot, _)) = self.owners.remove(&session) {
            self.free.push(slot);
        }
    }
}

/// A run's side of the pool, between [`GpuContext::gather`] and [`GpuContext::scatter_done`].
pub struct Gathered {
    pub pool: StatePool,
    node: usize,
    /// Each batch entry's slot.
    slots: Vec<u32>,
    /// Per direction, the gather's and the scatter's parameters are `align` bytes apart.
    align: u64,
    group: wgpu::BindGroup,
    x_groups: u32,
    batch: u32,
}

/// What the sessions of a run ask of the pool.
pub struct ResidentRun<'a> {
    pub resident: &'a Resident,
    pub pools: &'a Pools,
    pub node: usize,
}

/// Floats of one session's state for a node: every direction's `h`, then (LSTM) its `c`.
pub fn slot_len(dims: &Dims, lstm: bool) -> usize {
    dims.dirs * dims.out + if lstm { dims.dirs * dims.hidden } else { 0 }
}

impl GpuContext {
    fn pool_buffers(&self, slots: usize, slot_len: usize, index_cap: usize) -> Result<(wgpu::Buffer, wgpu::Buffer)> {
        use wgpu::BufferUsages as U;
        let bytes = (slots * slot_len * 4) as u64;
        let limit = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(Error::BackendUnavailable(format!(
                "GPU: {slots} sessions' state ({bytes} bytes) exceeds the adapter's {limit}-byte binding"
            )));
        }
        let state = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("state pool"),
            size: bytes.max(16),
            usage: U::STORAGE | U::COPY_DST | U::COPY_SRC,
            mapped_at_creation: false,
        });
        let index = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("state slots"),
            size: ((index_cap * 4) as u64).max(16),
            usage: U::STORAGE | U::COPY_DST,
            mapped_at_creation: false,
        });
        Ok((state, index))
    }

    /// Takes the node's pool out for a run of `dims` (the caller holds the device gate), gives
    /// every session of the batch a slot holding its current state (uploading the host copy where
    /// that is the newer one), and builds the gather/scatter bindings over `state`, the run's
    /// working state. `h0`/`c0`: the host copies, layout 0. An error leaves the pool as it was.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gather(
        &self,
        run: &ResidentRun<'_>,
        dims: &Dims,
        lstm: bool,
        h0: &[f32],
        c0: &[f32],
        state: &wgpu::Buffer,
        steps: usize,
    ) -> Result<Gathered> {
        let res = run.resident;
        let batch = dims.batch;
        if res.sessions.len() != batch || res.versions.len() != batch || res.host_valid.len() != batch {
            return Err(Error::InvalidArgument(format!(
                "resident state for {} sessions, batch {batch}",
                res.sessions.len()
            )));
        }
        let max_groups = self.limits.max_compute_workgroups_per_dimension as usize;
        if batch > max_groups {
            return Err(Error::BackendUnavailable(format!(
                "GPU: batch {batch} exceeds the adapter's {max_groups} workgroups"
            )));
        }
        let len = slot_len(dims, lstm);
        let taken = run.pools.take(run.node).filter(|p| p.slot_len == len);
        let mut pool = match taken {
            Some(p) => p,
            None => {
                let cap = batch.next_power_of_two().max(16);
                let (buf, index) = self.pool_buffers(cap, len, cap)?;
                StatePool {
                    buf,
                    cap,
                    slot_len: len,
                    owners: HashMap::new(),
                    free: Vec::new(),
                    used: 0,
                    index,
                    index_cap: cap,
                    written: Vec::new(),
                    bound: None,
                }
            }
        };
        let mut fresh = Vec::new();
        match self.assign_slots(&mut pool, res, dims, lstm, h0, c0, &mut fresh) {
            Ok(slots) => Ok(self.bind_slots(pool, run.node, slots, dims, lstm, state, steps)),
            Err(e) => {
                pool.free.extend(fresh);
                run.pools.put(run.node, pool);
                Err(e)
            }
        }
    }

    /// The slot of each batch entry; uploads host copies that are newer than the pool's. Slots it
    /// hands out to sessions new to the pool are pushed to `fresh` (the caller frees them on error).
    #[allow(clippy::too_many_arguments)]
    fn assign_slots(
        &self,
        pool: &mut StatePool,
        res: &Resident,
        dims: &Dims,
        lstm: bool,
        h0: &[f32],
        c0: &[f32],
        fresh: &mut Vec<u32>,
    ) -> Result<Vec<u32>> {
        let Dims { batch, out, hidden, dirs, .. } = *dims;
        let mut slots = Vec::with_capacity(batch);
        let mut uploads = Vec::new();
        for b in 0..batch {
            let (s, version) = (res.sessions[b], res.versions[b]);
            match pool.owners.get(&s) {
                Some(&(slot, v)) if v == version => slots.push(slot),
                owned => {
                    if !res.host_valid[b] {
                        return Err(Error::BackendUnavailable(format!(
                            "GPU: session {s}'s state is neither on the device nor on the host (replay it)"
                        )));
                    }
                    let slot = match owned {
                        Some(&(slot, _)) => slot,
                        None => {
                            let slot = pool.free.pop().unwrap_or_else(|| {
                                pool.used += 1;
                                pool.used - 1
                            });
                            fresh.push(slot);
                            slot
                        }
                    };
                    slots.push(slot);
                    uploads.push(b);
                }
            }
        }
        let needed = pool.used as usize;
        if needed > pool.cap || batch > pool.index_cap {
            let cap = needed.next_power_of_two().max(pool.cap);
            let index_cap = batch.next_power_of_two().max(pool.index_cap);
            let (buf, index) = self.pool_buffers(cap, pool.slot_len, index_cap)?;
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("grow") });
            enc.copy_buffer_to_buffer(&pool.buf, 0, &buf, 0, (pool.cap * pool.slot_len * 4).max(16) as u64);
            self.queue.submit([enc.finish()]);
            (pool.buf, pool.index, pool.cap, pool.index_cap) = (buf, index, cap, index_cap);
            (pool.written, pool.bound) = (Vec::new(), None);
        }
        for b in uploads {
            let mut v = Vec::with_capacity(pool.slot_len);
            for d in 0..dirs {
                v.extend_from_slice(h0.get((d * batch + b) * out..(d * batch + b + 1) * out).unwrap_or_default());
            }
            if lstm {
                for d in 0..dirs {
                    v.extend_from_slice(
                        c0.get((d * batch + b) * hidden..(d * batch + b + 1) * hidden).unwrap_or_default(),
                    );
                }
            }
            if v.len() != pool.slot_len {
                return Err(Error::Shape("initial state does not match the node".into()));
            }
            let at = (slots[b] as usize * pool.slot_len * 4) as u64;
            self.queue.write_buffer(&pool.buf, at, bytemuck::cast_slice(&v));
        }
        if pool.written != slots {
            self.queue.write_buffer(&pool.index, 0, bytemuck::cast_slice(&slots));
            pool.written.clone_from(&slots);
        }
        Ok(slots)
    }

    #[allow(clippy::too_many_arguments)]
    fn bind_slots(
        &self,
        mut pool: StatePool,
        node: usize,
        slots: Vec<u32>,
        dims: &Dims,
        lstm: bool,
        state: &wgpu::Buffer,
        steps: usize,
    ) -> Gathered {
        let Dims { batch, out, hidden, dirs, .. } = *dims;
        let align = super::shaders::SLOT_PARAMS_SIZE
            .next_multiple_of((self.limits.min_uniform_buffer_offset_alignment as u64).max(16));
        let key = ([batch, out, hidden, dirs, pool.slot_len], lstm, steps % 2, state.clone());
        let bound = match pool.bound.take().filter(|b| b.key == key) {
            Some(b) => b,
            None => {
                let mut bytes = vec![0u8; (2 * dirs) * align as usize];
                for d in 0..dirs {
                    for (k, to_pool) in [(0, false), (1, true)] {
                        let p = SlotParams::new(dims, pool.slot_len, lstm, d, to_pool, steps);
                        let at = (2 * d + k) * align as usize;
                        bytes[at..at + 48].copy_from_slice(&p.to_bytes());
                    }
                }
                let params = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("slot params"),
                    size: bytes.len() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.queue.write_buffer(&params, 0, &bytes);
                let group = self.slots_group(&params, &pool.index, &pool.buf, state);
                Bound { key, _params: params, group }
            }
        };
        let group = bound.group.clone();
        pool.bound = Some(bound);
        let x_groups = out.max(hidden).div_ceil(GEMV_UNITS as usize) as u32;
        Gathered { pool, node, slots, align, group, x_groups, batch: batch as u32 }
    }

    /// The bindings of `state_slots`: its parameters (the first at offset 0, others by dynamic
    /// offset), the batch's slot indices, the pool and the working state.
    fn slots_group(
        &self,
        params: &wgpu::Buffer,
        index: &wgpu::Buffer,
        pool: &wgpu::Buffer,
        state: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("state_slots"),
            layout: &self.slots_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: params,
                        offset: 0,
                        size: std::num::NonZeroU64::new(super::shaders::SLOT_PARAMS_SIZE),
                    }),
                },
                wgpu::BindGroupEntry { binding: 1, resource: index.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: pool.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: state.as_entire_binding() },
            ],
        })
    }

    /// Records a direction's gather (`to_pool == false`) or scatter into `pass`.
    pub(crate) fn dispatch_slots(&self, pass: &mut wgpu::ComputePass<'_>, g: &Gathered, d: usize, to_pool: bool) {
        let offset = [((2 * d + to_pool as usize) as u64 * g.align) as u32];
        pass.set_pipeline(&self.state_slots);
        pass.set_bind_group(0, &g.group, &offset);
        pass.dispatch_workgroups(g.x_groups, g.batch, 1);
    }

    /// Puts the pool back after a run: on success the batch's slots hold version `next`; after a
    /// failure they may hold anything, so the sessions lose them (they replay from their host copy).
    pub(crate) fn scatter_done(&self, run: &ResidentRun<'_>, g: Gathered, ok: bool) {
        let Gathered { mut pool, node, slots, .. } = g;
        for (&s, &slot) in run.resident.sessions.iter().zip(&slots) {
            if ok {
                pool.owners.insert(s, (slot, run.resident.next));
            } else {
                pool.owners.remove(&s);
                pool.free.push(slot);
            }
        }
        run.pools.put(node, pool);
    }

    /// Reads the slots of `sessions` in node `node`'s pool: per session its state for the node, or
    /// `None` where the pool does not hold it at `versions`.
    pub async fn read_slots(
        &self,
        pools: &Pools,
        node: usize,
        sessions: &[u64],
        versions: &[u64],
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let _exclusive = self.exclusive().await?;
        let Some(pool) = pools.take(node) else {
            return Ok(vec![None; sessions.len()]);
        };
        let held: Vec<Option<u32>> =
            sessions.iter().zip(versions).map(|(s, v)| pool.owners.get(s).filter(|o| o.1 == *v).map(|o| o.0)).collect();
        let n = held.iter().flatten().count();
        let len = pool.slot_len;
        let result = async {
            if n == 0 {
                return Ok(Vec::new());
            }
            let read = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("state read-back"),
                size: ((n * len * 4) as u64).max(16),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("sync") });
            for (k, slot) in held.iter().flatten().enumerate() {
                let (from, to) = ((*slot as usize * len * 4) as u64, (k * len * 4) as u64);
                enc.copy_buffer_to_buffer(&pool.buf, from, &read, to, (len * 4) as u64);
            }
            self.queue.submit([enc.finish()]);
            self.read_back(&read, n * len).await
        }
        .await;
        pools.put(node, pool);
        self.take_errors()?;
        let all = result?;
        if all.len() != n * len {
            return Err(gpu_err("read-back failed", "short state"));
        }
        let mut chunks = all.chunks_exact(len.max(1));
        Ok(held.iter().map(|h| h.and_then(|_| chunks.next().map(<[f32]>::to_vec))).collect())
    }
}

impl GpuContext {
    /// The `state_slots` kernel alone, on buffers of the caller's: `(pool, state)` after it. What
    /// the tests compare with its CPU twin ([`super::cpu_twin::state_slots`]).
    pub async fn state_slots(
        &self,
        p: &SlotParams,
        slots: &[u32],
        pool: &[f32],
        state: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        use wgpu::util::DeviceExt;
        use wgpu::BufferUsages as U;
        let _exclusive = self.exclusive().await?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let init = |label: &str, bytes: &[u8], usage: U| {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().max(16), 0);
            self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &padded,
                usage,
            })
        };
        let params = init("slot params", &p.to_bytes(), U::UNIFORM);
        let index = init("slots", bytemuck::cast_slice(slots), U::STORAGE);
        let pool_buf = init("pool", bytemuck::cast_slice(pool), U::STORAGE | U::COPY_SRC);
        let state_buf = init("state", bytemuck::cast_slice(state), U::STORAGE | U::COPY_SRC);
        let read = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: (((pool.len() + state.len()) * 4) as u64).max(16),
            usage: U::MAP_READ | U::COPY_DST,
            mapped_at_creation: false,
        });
        let group = self.slots_group(&params, &index, &pool_buf, &state_buf);
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("slots") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            pass.set_pipeline(&self.state_slots);
            pass.set_bind_group(0, &group, &[0]);
            let x = (p.out.max(p.hidden) as usize).div_ceil(GEMV_UNITS as usize) as u32;
            pass.dispatch_workgroups(x.max(1), p.batch.max(1), 1);
        }
        enc.copy_buffer_to_buffer(&pool_buf, 0, &read, 0, (pool.len() * 4) as u64);
        enc.copy_buffer_to_buffer(&state_buf, 0, &read, (pool.len() * 4) as u64, (state.len() * 4) as u64);
        self.queue.submit([enc.finish()]);
        let got = self.read_back(&read, pool.len() + state.len()).await;
        if let Some(e) = scope.pop().await {
            return Err(gpu_err("validation error", e));
        }
        let mut got = got?;
        let state_out = got.split_off(pool.len().min(got.len()));
        Ok((got, state_out))
    }
}
