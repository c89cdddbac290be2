//! One recurrent node on the GPU: weights uploaded once, the input projection of a chunk of steps
//! as one GEMM, then every step of the chunk as fused dispatches in the same compute pass — no
//! CPU round trip between steps; one submission per chunk, and only wanted outputs read back.

use std::num::NonZeroU64;
use std::sync::Mutex;

use super::context::{gpu_err, GpuContext};
use super::cpu_twin::scatter_y;
use super::layer::{self, PackedDirection};
use super::pool::{Gathered, ResidentRun};
use super::shaders::{GEMM_TILE, GEMV_ROWS, GEMV_UNITS, SMALL_BATCH, STEP_PARAMS_SIZE, STEP_TILE};
use crate::cell::{self, CellKind, Dims, Direction, RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use crate::error::{Error, Result};

/// Steps per submission: long enough to amortise a submit, short enough that one submission stays
/// far below the browsers' watchdogs.
pub const CHUNK_STEPS: usize = 64;

/// One direction's packed weights on the device.
#[derive(Debug)]
pub struct GpuDirection {
    w: wgpu::Buffer,
    r: wgpu::Buffer,
    w_bias: wgpu::Buffer,
    vecs: wgpu::Buffer,
}

/// A node's weights on the device, one entry per direction, and the buffers its last run used.
#[derive(Debug)]
pub struct GpuWeights {
    dirs: Vec<GpuDirection>,
    /// Reused by the next run of the same shape (a session stepping again): creating buffers and
    /// bind groups, and error scopes around them, cost more than a small step itself.
    scratch: Mutex<Option<Scratch>>,
}

/// The working buffers of a node's run, and each direction's bind groups over them.
#[derive(Debug)]
struct Scratch {
    /// `[batch, chunk, input, gate rows, state size, state length, params alignment]`.
    key: [usize; 7],
    lens: wgpu::Buffer,
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    params: wgpu::Buffer,
    gemm_params: wgpu::Buffer,
    state: wgpu::Buffer,
    /// Where results come back: a chunk's `Y` (room for [`Scratch::y_cap`] values), then the
    /// state, so one mapping brings both.
    read: wgpu::Buffer,
    y_cap: usize,
    /// Per direction: the input projection's and the steps' bind groups.
    groups: Vec<(wgpu::BindGroup, wgpu::BindGroup)>,
    /// What `lens`, `params` and `gemm_params` hold now: a run like the last one (a stream's next
    /// step) rewrites none of them (each write is a round trip to the GPU process in a browser).
    written: (Vec<u32>, Vec<u8>, [u32; 4]),
}

/// How [`GpuContext::run_recurrent`] runs a node.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Read `Y` back (else it comes back as zeros: nobody reads it).
    pub want_y: bool,
    /// The kernels without workgroup barriers for every batch (else only for small batches).
    pub barrier_free: bool,
    /// The sessions' state lives in the node's state pool ([`super::pool`]).
    pub resident: Option<ResidentRun<'a>>,
    /// A node of the session schedule reads `Y_h`/`Y_c`: bring the final state back even when resident.
    pub state_used: bool,
}

/// One node run's inputs, sizes and buffers, as [`GpuContext::run_chunks`] reads them.
#[derive(Clone, Copy)]
struct Run<'a> {
    spec: &'a RecurrentSpec,
    inputs: &'a RecurrentInputs<'a>,
    dims: &'a Dims,
    lens: &'a [u32],
    steps: usize,
    chunk: usize,
    gathered: Option<&'a Gathered>,
}

/// Why the GPU path does not run a node (the caller runs it on the CPU instead), or `None`.
pub fn unsupported(inputs: &RecurrentInputs<'_>, dims: &Dims) -> Option<&'static str> {
    if inputs.proj.is_some() {
        return Some("LSTM output projection");
    }
    if dims.seq == 0 || dims.batch == 0 {
        return Some("empty input");
    }
    None
}

fn f32_bytes(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

impl GpuContext {
    fn check_binding(&self, what: &str, bytes: u64) -> Result<()> {
        let limit = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(Error::BackendUnavailable(format!(
                "GPU: {what} needs {bytes} bytes in one binding, the adapter allows {limit}"
            )));
        }
        Ok(())
    }

    fn buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        // Bindings must not be empty; sizes stay multiples of 4.
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage,
            mapped_at_creation: false,
        })
    }

    fn storage(&self, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
        let bytes = (data.len() * 4) as u64;
        self.check_binding(label, bytes)?;
        let b = self.buffer(label, bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST);
        if !data.is_empty() {
            self.queue.write_buffer(&b, 0, f32_bytes(data));
        }
        Ok(b)
    }

    /// `input_projection` for `rows` x `cols` outputs, or its GEMV form for a few rows.
    /// `barrier_free`: the GEMV form whatever the row count (see [`GpuContext::software`]).
    fn dispatch_projection(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        group: &wgpu::BindGroup,
        rows: usize,
        cols: usize,
        barrier_free: bool,
    ) {
        if rows <= GEMV_ROWS || barrier_free {
            pass.set_pipeline(&self.input_projection_gemv);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(cols.div_ceil(GEMV_UNITS as usize) as u32, rows.div_ceil(4) as u32, 1);
        } else {
            pass.set_pipeline(&self.input_projection);
            pass.set_bind_group(0, group, &[]);
            let tile = GEMM_TILE as usize;
            pass.dispatch_workgroups(cols.div_ceil(tile) as u32, rows.div_ceil(tile) as u32, 1);
        }
    }

    /// Packs and uploads a node's weights.
    pub async fn upload_weights(&self, inputs: &RecurrentInputs<'_>, dims: &Dims) -> Result<GpuWeights> {
        let _exclusive = self.exclusive().await?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut dirs = Vec::new();
        for d in 0..dims.dirs {
            let PackedDirection { w, r, w_bias, vecs } = layer::pack_direction(inputs, dims, d)?;
            dirs.push(GpuDirection {
                w: self.storage("W", &w)?,
                r: self.storage("R", &r)?,
                w_bias: self.storage("Wb", &w_bias)?,
                vecs: self.storage("Rb+P", &vecs)?,
            });
        }
        if let Some(e) = scope.pop().await {
            return Err(gpu_err("out of memory uploading weights", e));
        }
        Ok(GpuWeights { dirs, scratch: Mutex::new(None) })
    }

    /// The `input_projection` kernel alone (`out[M, N] = x[M, K] · w[N, K]ᵀ + bias[N]`): what the
    /// tests compare with its CPU twin on sizes that straddle the tiles.
    pub async fn input_projection(
        &self,
        m: usize,
        n: usize,
        k: usize,
        x: &[f32],
        w: &[f32],
        bias: &[f32],
    ) -> Result<Vec<f32>> {
        if x.len() != m * k || w.len() != n * k || bias.len() != n {
            return Err(Error::InvalidArgument(format!("input_projection: buffers do not match {m}x{k} · ({n}x{k})ᵀ")));
        }
        let max_groups = self.limits.max_compute_workgroups_per_dimension as usize;
        if m.div_ceil(GEMM_TILE as usize) > max_groups || n.div_ceil(4) > max_groups {
            return Err(Error::BackendUnavailable(format!(
                "GPU: a {m}x{n} product exceeds the adapter's dispatch limit"
            )));
        }
        use wgpu::BufferUsages as U;
        let _exclusive = self.exclusive().await?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let params = self.buffer("gemm params", 16, U::UNIFORM | U::COPY_DST);
        self.queue.write_buffer(&params, 0, bytemuck::cast_slice(&[m as u32, n as u32, k as u32, 0]));
        let (xb, wb, bb) = (self.storage("x", x)?, self.storage("w", w)?, self.storage("bias", bias)?);
        self.check_binding("out", (m * n * 4) as u64)?;
        let out = self.buffer("out", (m * n * 4) as u64, U::STORAGE | U::COPY_SRC);
        let read = self.buffer("out read-back", (m * n * 4) as u64, U::MAP_READ | U::COPY_DST);
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("input_projection"),
            layout: &self.gemm_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: xb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: wb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: bb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 4, resource: out.as_entire_binding() },
            ],
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gemm") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            self.dispatch_projection(&mut pass, &group, m, n, false);
        }
        enc.copy_buffer_to_buffer(&out, 0, &read, 0, (m * n * 4).max(16) as u64);
        self.queue.submit([enc.finish()]);
        let result = self.read_back(&read, m * n).await;
        if let Some(e) = scope.pop().await {
            return Err(gpu_err("validation error", e));
        }
        result
    }

    /// Runs one recurrent node. `weights` from [`GpuContext::upload_weights`] for these inputs.
    /// Resident runs leave the final state in the pool and bring it back only when asked
    /// ([`RecurrentOutputs::on_device`] says whether `y_h`/`y_c` hold it).
    pub async fn run_recurrent(
        &self,
        spec: &RecurrentSpec,
        inputs: &RecurrentInputs<'_>,
        weights: &GpuWeights,
        options: &RunOptions<'_>,
    ) -> Result<RecurrentOutputs> {
        let dims = cell::check_inputs(spec, inputs)?;
        let _exclusive = self.exclusive().await?;
        // Allocation runs inside error scopes (`scratch`); the steps themselves only record
        // commands on buffers that exist, and any error they still raise lands in the uncaptured
        // log, checked once the results are back (a scope pop is a round trip to the GPU process).
        let result = self.run_directions(spec, inputs, &dims, weights, options).await;
        self.take_errors()?;
        let (y, y_h, y_c, on_device) = result?;
        let mut out = cell::finish_outputs(spec, &dims, y, y_h, y_c)?;
        out.on_device = on_device;
        Ok(out)
    }

    /// The run proper: `(Y, Y_h, Y_c, whether the state stayed on the device only)`. A resident
    /// run takes the node's pool out for its duration and puts it back however it ends.
    async fn run_directions(
        &self,
        spec: &RecurrentSpec,
        inputs: &RecurrentInputs<'_>,
        dims: &Dims,
        weights: &GpuWeights,
        options: &RunOptions<'_>,
    ) -> Result<(Vec<f32>, Vec<f32>, Option<Vec<f32>>, bool)> {
        if weights.dirs.len() != dims.dirs {
            return Err(Error::InvalidArgument("GPU weights belong to another node".into()));
        }
        let lens = layer::lengths(inputs, dims)?;
        let steps = lens.iter().copied().max().unwrap_or(0) as usize;
        let (mut scratch, chunk) = self.scratch_for(dims, weights, options.barrier_free, steps).await?;
        let gathered = match &options.resident {
            Some(run) => {
                let is_lstm = matches!(spec.cell, CellKind::Lstm { .. });
                let h0 = layer::state_layout0(spec, dims, inputs.initial_h.map(|t| t.as_f32()).transpose()?, dims.out);
                let c0 =
                    layer::state_layout0(spec, dims, inputs.initial_c.map(|t| t.as_f32()).transpose()?, dims.hidden);
                Some(self.gather(run, dims, is_lstm, &h0, &c0, &scratch.state, steps)?)
            }
            None => None,
        };
        let run = Run { spec, inputs, dims, lens: &lens, steps, chunk, gathered: gathered.as_ref() };
        let result = self.run_chunks(&run, &mut scratch, options).await;
        if let (Some(r), Some(g)) = (&options.resident, gathered) {
            self.scatter_done(r, g, result.is_ok());
        }
        if result.is_ok() {
            if let Ok(mut slot) = weights.scratch.lock() {
                *slot = Some(scratch);
            }
        }
        result
    }

    /// The scratch buffers for a run of this shape (the node's from its last run when the shape is
    /// the same, else new ones) and the steps per chunk.
    async fn scratch_for(
        &self,
        dims: &Dims,
        weights: &GpuWeights,
        barrier_free: bool,
        steps: usize,
    ) -> Result<(Scratch, usize)> {
        let Dims { batch, input, hidden, out, gates, .. } = *dims;
        let gh = gates * hidden;
        let lim = &self.limits;
        let max_groups = lim.max_compute_workgroups_per_dimension as usize;
        let tile = GEMM_TILE as usize;
        let binding = lim.max_storage_buffer_binding_size.min(lim.max_buffer_size) as usize;
        let per_step = batch * gh.max(input).max(out) * 4;
        let by_binding = binding / per_step.max(1);
        // Rows per workgroup of the input projection: 4 in its GEMV form.
        let by_dispatch = max_groups * if barrier_free { 4 } else { tile } / batch.max(1);
        let chunk = CHUNK_STEPS.min(steps.max(1)).min(by_binding).min(by_dispatch);
        if chunk == 0 {
            return Err(Error::BackendUnavailable(format!(
                "GPU: one step of batch {batch} x {gh} gate rows needs {per_step} bytes, the adapter binds at most {binding}"
            )));
        }
        let state_len = 2 * batch * out + batch * hidden;
        self.check_binding("recurrent state", (state_len * 4) as u64)?;
        let align = STEP_PARAMS_SIZE.next_multiple_of((lim.min_uniform_buffer_offset_alignment as u64).max(16));
        let key = [batch, chunk, input, gh, out, state_len, align as usize];
        let reused = weights.scratch.lock().ok().and_then(|mut slot| slot.take()).filter(|s| s.key == key);
        let scratch = match reused {
            Some(s) => s,
            None => self.scratch(key, weights).await?,
        };
        Ok((scratch, chunk))
    }

    /// Every chunk of every direction.
    async fn run_chunks(
        &self,
        run: &Run<'_>,
        scratch: &mut Scratch,
        options: &RunOptions<'_>,
    ) -> Result<(Vec<f32>, Vec<f32>, Option<Vec<f32>>, bool)> {
        let Run { spec, inputs, dims, lens, steps, chunk, gathered } = *run;
        let (want_y, barrier_free) = (options.want_y, options.barrier_free);
        // The final state comes back unless it stays in the pool and nobody asked for it.
        let want_state = match (gathered, &options.resident) {
            (Some(_), Some(r)) => r.resident.read_back || options.state_used,
            _ => true,
        };
        let Dims { seq, batch, input, hidden, out, dirs, gates } = *dims;
        let x0 = layer::x_layout0(spec, dims, inputs.x.as_f32()?);
        let is_lstm = matches!(spec.cell, CellKind::Lstm { .. });
        let gh = gates * hidden;
        let (h0, c0) = if gathered.is_none() {
            let h0 = layer::state_layout0(spec, dims, inputs.initial_h.map(|t| t.as_f32()).transpose()?, out);
            let c0 = layer::state_layout0(spec, dims, inputs.initial_c.map(|t| t.as_f32()).transpose()?, hidden);
            (h0, c0)
        } else {
            (Vec::new(), Vec::new())
        };

        // Tiling against the adapter's limits.
        let max_groups = self.limits.max_compute_workgroups_per_dimension as usize;
        let step_tile = STEP_TILE as usize;
        let small = batch <= SMALL_BATCH || barrier_free;
        let (x_groups, y_groups) = if small {
            (hidden.div_ceil(GEMV_UNITS as usize), batch)
        } else {
            (hidden.div_ceil(step_tile), batch.div_ceil(step_tile))
        };
        if x_groups > max_groups || y_groups > max_groups {
            return Err(Error::BackendUnavailable(format!(
                "GPU: hidden size {hidden} x batch {batch} needs more workgroups than the adapter's {max_groups} per dimension"
            )));
        }
        if gh.div_ceil(4) > max_groups {
            return Err(Error::BackendUnavailable(format!("GPU: {gh} gate rows exceed the adapter's dispatch limit")));
        }
        let state_len = 2 * batch * out + batch * hidden;
        let align = scratch.key[6] as u64;
        let Scratch {
            lens: lens_buf,
            x: x_buf,
            y: y_buf,
            params: params_buf,
            gemm_params,
            state: state_buf,
            read,
            y_cap,
            groups: bind_groups,
            written,
            ..
        } = scratch;
        let y_cap = *y_cap;
        if written.0 != lens {
            self.queue.write_buffer(lens_buf, 0, bytemuck::cast_slice(lens));
            written.0 = lens.to_vec();
        }

        let mut y = vec![0f32; seq * dirs * batch * out];
        let mut y_h = vec![0f32; dirs * batch * out];
        let mut y_c = vec![0f32; if is_lstm { dirs * batch * hidden } else { 0 }];
        let pipelines = if small { &self.small_batch } else { &self.tiled };
        let (step_pipeline, reset) = match spec.cell {
            CellKind::Rnn => (&pipelines.rnn_step, false),
            CellKind::Gru { linear_before_reset } => (&pipelines.gru_step, !linear_before_reset),
            CellKind::Lstm { .. } => (&pipelines.lstm_step, false),
        };
        let groups = (x_groups as u32, y_groups as u32);

        for d in 0..dirs {
            let reverse = spec.direction == Direction::Reverse || d == 1;
            let xd = layer::direction_input(&x0, dims, lens, reverse);
            if gathered.is_none() {
                let mut init = vec![0f32; state_len];
                init[..batch * out].copy_from_slice(&h0[d * batch * out..(d + 1) * batch * out]);
                if is_lstm {
                    init[2 * batch * out..].copy_from_slice(&c0[d * batch * hidden..(d + 1) * batch * hidden]);
                }
                self.queue.write_buffer(state_buf, 0, f32_bytes(&init));
            }

            let Some((gemm_group, step_group)) = bind_groups.get(d) else {
                return Err(Error::InvalidArgument("GPU weights belong to another node".into()));
            };

            let mut s0 = 0;
            let mut final_state = Vec::new();
            // A resident run with no step still moves the state through the working buffer.
            while s0 < steps || (s0 == 0 && steps == 0) {
                let n = chunk.min(steps - s0);
                let rows = n * batch;
                if input > 0 && n > 0 {
                    self.queue.write_buffer(x_buf, 0, f32_bytes(&xd[s0 * batch * input..(s0 + n) * batch * input]));
                }
                let mut params = vec![0u8; (n as u64 * align) as usize];
                for k in 0..n {
                    let p = layer::step_params(spec, dims, d, (s0 + k) as u32, k as u32);
                    let at = k * align as usize;
                    params[at..at + STEP_PARAMS_SIZE as usize].copy_from_slice(&p.to_bytes());
                }
                let gemm = [rows as u32, gh as u32, input as u32, 0];
                if n > 0 && written.1 != params {
                    self.queue.write_buffer(params_buf, 0, &params);
                    written.1 = params;
                }
                if n > 0 && written.2 != gemm {
                    self.queue.write_buffer(gemm_params, 0, bytemuck::cast_slice(&gemm));
                    written.2 = gemm;
                }

                let last = s0 + n >= steps;
                let mut enc =
                    self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("chunk") });
                {
                    let mut pass =
                        enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                    if let (Some(g), 0) = (gathered, s0) {
                        self.dispatch_slots(&mut pass, g, d, false);
                    }
                    if n > 0 {
                        self.dispatch_projection(&mut pass, gemm_group, rows, gh, barrier_free);
                    }
                    for k in 0..n {
                        let offset = [(k as u64 * align) as u32];
                        if reset {
                            pass.set_pipeline(&pipelines.gru_reset);
                            pass.set_bind_group(0, step_group, &offset);
                            pass.dispatch_workgroups(groups.0, groups.1, 1);
                        }
                        pass.set_pipeline(step_pipeline);
                        pass.set_bind_group(0, step_group, &offset);
                        pass.dispatch_workgroups(groups.0, groups.1, 1);
                    }
                    if let (Some(g), true) = (gathered, last) {
                        self.dispatch_slots(&mut pass, g, d, true);
                    }
                }
                let y_len = n * batch * out;
                let y_back = want_y && n > 0;
                // The last chunk also brings the final state back: one wait, not two.
                let state_back = last && want_state;
                if y_back {
                    enc.copy_buffer_to_buffer(y_buf, 0, read, 0, (y_len * 4) as u64);
                }
                if state_back {
                    enc.copy_buffer_to_buffer(state_buf, 0, read, (y_cap * 4) as u64, (state_len * 4) as u64);
                }
                self.queue.submit([enc.finish()]);
                // One span of `read`: Y from 0 when wanted, the state at y_cap on the last chunk.
                let first = if y_back { 0 } else { y_cap };
                let end = if state_back { y_cap + state_len } else { y_len };
                if y_back || state_back {
                    let got = self.read_back_many(&[(read, first, end - first)]).await?.pop().unwrap_or_default();
                    if got.len() != end - first {
                        return Err(gpu_err("read-back failed", "short read"));
                    }
                    if state_back {
                        final_state = got[y_cap - first..].to_vec();
                    }
                    if y_back {
                        scatter_y(&mut y, &got[..y_len], dims, lens, d, reverse, s0);
                    }
                }
                if n == 0 {
                    break;
                }
                s0 += n;
            }
            if !want_state {
                continue;
            }
            let state = final_state;
            if state.len() != state_len {
                return Err(gpu_err("read-back failed", "short state"));
            }
            let half = (steps % 2) * batch * out;
            y_h[d * batch * out..(d + 1) * batch * out].copy_from_slice(&state[half..half + batch * out]);
            if is_lstm {
                y_c[d * batch * hidden..(d + 1) * batch * hidden].copy_from_slice(&state[2 * batch * out..]);
            }
        }
        Ok((y, y_h, is_lstm.then_some(y_c), !want_state))
    }

    /// Allocates a run's working buffers and bind groups (`key` as in [`Scratch`]), inside error
    /// scopes: out of memory or a size the adapter refuses is an error here, not garbage later.
    async fn scratch(&self, key: [usize; 7], weights: &GpuWeights) -> Result<Scratch> {
        let [batch, chunk, input, gh, out, state_len, align] = key;
        use wgpu::BufferUsages as U;
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let y_bytes = (chunk * batch * out * 4) as u64;
        let y_cap = (chunk * batch * out).next_multiple_of(2);
        let scratch = Scratch {
            key,
            lens: self.buffer("sequence_lens", (batch * 4) as u64, U::STORAGE | U::COPY_DST),
            x: self.buffer("x chunk", (chunk * batch * input * 4) as u64, U::STORAGE | U::COPY_DST),
            y: self.buffer("y chunk", y_bytes, U::STORAGE | U::COPY_SRC),
            params: self.buffer("step params", (chunk * align) as u64, U::UNIFORM | U::COPY_DST),
            gemm_params: self.buffer("gemm params", 16, U::UNIFORM | U::COPY_DST),
            state: self.buffer("state", (state_len * 4) as u64, U::STORAGE | U::COPY_DST | U::COPY_SRC),
            read: self.buffer("read-back", ((y_cap + state_len) * 4) as u64, U::MAP_READ | U::COPY_DST),
            y_cap,
            groups: Vec::new(),
            written: Default::default(),
        };
        let xw = self.buffer("xw chunk", (chunk * batch * gh * 4) as u64, U::STORAGE);
        let groups = weights
            .dirs
            .iter()
            .map(|wd| {
                let gemm = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("input_projection"),
                    layout: &self.gemm_layout,
                    entries: &[
                        wgpu::BindGroupEntry { binding: 0, resource: scratch.gemm_params.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 1, resource: scratch.x.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 2, resource: wd.w.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 3, resource: wd.w_bias.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 4, resource: xw.as_entire_binding() },
                    ],
                });
                let step = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("recurrent_step"),
                    layout: &self.step_layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &scratch.params,
                                offset: 0,
                                size: NonZeroU64::new(STEP_PARAMS_SIZE),
                            }),
                        },
                        wgpu::BindGroupEntry { binding: 1, resource: xw.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 2, resource: wd.r.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 3, resource: wd.vecs.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 4, resource: scratch.state.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 5, resource: scratch.y.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 6, resource: scratch.lens.as_entire_binding() },
                    ],
                });
                (gemm, step)
            })
            .collect();
        let (oom, validation) = (oom.pop().await, validation.pop().await);
        if let Some(e) = oom {
            return Err(gpu_err("out of memory", e));
        }
        if let Some(e) = validation {
            return Err(gpu_err("validation error", e));
        }
        Ok(Scratch { groups, ..scratch })
    }
}
