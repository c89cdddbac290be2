//! One recurrent node on the GPU: weights uploaded once, the input projection of a chunk of steps
//! as one GEMM, then every step of the chunk as fused dispatches in the same compute pass — no
//! CPU round trip between steps; one submission per chunk, and only wanted outputs read back.

use std::num::NonZeroU64;

use super::context::{gpu_err, GpuContext};
use super::cpu_twin::scatter_y;
use super::layer::{self, PackedDirection};
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

/// A node's weights on the device, one entry per direction.
#[derive(Debug)]
pub struct GpuWeights {
    dirs: Vec<GpuDirection>,
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
    fn dispatch_projection(&self, pass: &mut wgpu::ComputePass<'_>, group: &wgpu::BindGroup, rows: usize, cols: usize) {
        if rows <= GEMV_ROWS {
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
        Ok(GpuWeights { dirs })
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
            self.dispatch_projection(&mut pass, &group, m, n);
        }
        enc.copy_buffer_to_buffer(&out, 0, &read, 0, (m * n * 4).max(16) as u64);
        self.queue.submit([enc.finish()]);
        let result = self.read_back(&read, m * n).await;
        if let Some(e) = scope.pop().await {
            return Err(gpu_err("validation error", e));
        }
        result
    }

    /// Runs one recurrent node. `weights` from [`GpuContext::upload_weights`] for these inputs;
    /// `want_y`: read `Y` back (else it comes back as zeros: nobody reads it).
    pub async fn run_recurrent(
        &self,
        spec: &RecurrentSpec,
        inputs: &RecurrentInputs<'_>,
        weights: &GpuWeights,
        want_y: bool,
    ) -> Result<RecurrentOutputs> {
        let dims = cell::check_inputs(spec, inputs)?;
        let _exclusive = self.exclusive().await?;
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let result = self.run_directions(spec, inputs, &dims, weights, want_y).await;
        let oom = oom.pop().await;
        let validation = validation.pop().await;
        if let Some(e) = oom {
            return Err(gpu_err("out of memory", e));
        }
        if let Some(e) = validation {
            return Err(gpu_err("validation error", e));
        }
        self.take_errors()?;
        let (y, y_h, y_c) = result?;
        cell::finish_outputs(spec, &dims, y, y_h, y_c)
    }

    async fn run_directions(
        &self,
        spec: &RecurrentSpec,
        inputs: &RecurrentInputs<'_>,
        dims: &Dims,
        weights: &GpuWeights,
        want_y: bool,
    ) -> Result<(Vec<f32>, Vec<f32>, Option<Vec<f32>>)> {
        let Dims { seq, batch, input, hidden, out, dirs, gates } = *dims;
        if weights.dirs.len() != dirs {
            return Err(Error::InvalidArgument("GPU weights belong to another node".into()));
        }
        let lens = layer::lengths(inputs, dims)?;
        let steps = lens.iter().copied().max().unwrap_or(0) as usize;
        let x0 = layer::x_layout0(spec, dims, inputs.x.as_f32()?);
        let h0 = layer::state_layout0(spec, dims, inputs.initial_h.map(|t| t.as_f32()).transpose()?, out);
        let c0 = layer::state_layout0(spec, dims, inputs.initial_c.map(|t| t.as_f32()).transpose()?, hidden);
        let is_lstm = matches!(spec.cell, CellKind::Lstm { .. });
        let gh = gates * hidden;

        // Tiling against the adapter's limits.
        let lim = &self.limits;
        let max_groups = lim.max_compute_workgroups_per_dimension as usize;
        let (tile, step_tile) = (GEMM_TILE as usize, STEP_TILE as usize);
        let small_groups = if batch <= SMALL_BATCH { hidden.div_ceil(GEMV_UNITS as usize) } else { 0 };
        if hidden.div_ceil(step_tile).max(small_groups) > max_groups || batch.div_ceil(step_tile) > max_groups {
            return Err(Error::BackendUnavailable(format!(
                "GPU: hidden size {hidden} x batch {batch} needs more workgroups than the adapter's {max_groups} per dimension"
            )));
        }
        if gh.div_ceil(4) > max_groups {
            return Err(Error::BackendUnavailable(format!("GPU: {gh} gate rows exceed the adapter's dispatch limit")));
        }
        let binding = lim.max_storage_buffer_binding_size.min(lim.max_buffer_size) as usize;
        let per_step = batch * gh.max(input).max(out) * 4;
        let by_binding = binding / per_step.max(1);
        let by_dispatch = max_groups * tile / batch;
        let chunk = CHUNK_STEPS.min(steps.max(1)).min(by_binding).min(by_dispatch);
        if chunk == 0 {
            return Err(Error::BackendUnavailable(format!(
                "GPU: one step of batch {batch} x {gh} gate rows needs {per_step} bytes, the adapter binds at most {binding}"
            )));
        }
        let state_len = 2 * batch * out + batch * hidden;
        self.check_binding("recurrent state", (state_len * 4) as u64)?;

        let align = STEP_PARAMS_SIZE.next_multiple_of((lim.min_uniform_buffer_offset_alignment as u64).max(16));
        use wgpu::BufferUsages as U;
        let lens_buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("sequence_lens"),
            size: (batch * 4).max(16) as u64,
            usage: U::STORAGE | U::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&lens_buf, 0, bytemuck::cast_slice(&lens));
        let x_buf = self.buffer("x chunk", (chunk * batch * input * 4) as u64, U::STORAGE | U::COPY_DST);
        let xw_buf = self.buffer("xw chunk", (chunk * batch * gh * 4) as u64, U::STORAGE);
        let y_bytes = (chunk * batch * out * 4) as u64;
        let y_buf = self.buffer("y chunk", y_bytes, U::STORAGE | U::COPY_SRC);
        let y_read = self.buffer("y read-back", y_bytes, U::MAP_READ | U::COPY_DST);
        let params_buf = self.buffer("step params", chunk as u64 * align, U::UNIFORM | U::COPY_DST);
        let gemm_params = self.buffer("gemm params", 16, U::UNIFORM | U::COPY_DST);
        let state_buf = self.buffer("state", (state_len * 4) as u64, U::STORAGE | U::COPY_DST | U::COPY_SRC);
        let state_read = self.buffer("state read-back", (state_len * 4) as u64, U::MAP_READ | U::COPY_DST);

        let mut y = vec![0f32; seq * dirs * batch * out];
        let mut y_h = vec![0f32; dirs * batch * out];
        let mut y_c = vec![0f32; if is_lstm { dirs * batch * hidden } else { 0 }];
        let small = batch <= SMALL_BATCH;
        let pipelines = if small { &self.small_batch } else { &self.tiled };
        let (step_pipeline, reset) = match spec.cell {
            CellKind::Rnn => (&pipelines.rnn_step, false),
            CellKind::Gru { linear_before_reset } => (&pipelines.gru_step, !linear_before_reset),
            CellKind::Lstm { .. } => (&pipelines.lstm_step, false),
        };
        let groups = if small {
            (hidden.div_ceil(GEMV_UNITS as usize) as u32, batch as u32)
        } else {
            (hidden.div_ceil(step_tile) as u32, batch.div_ceil(step_tile) as u32)
        };

        for (d, wd) in weights.dirs.iter().enumerate() {
            let reverse = spec.direction == Direction::Reverse || d == 1;
            let xd = layer::direction_input(&x0, dims, &lens, reverse);
            let mut init = vec![0f32; state_len];
            init[..batch * out].copy_from_slice(&h0[d * batch * out..(d + 1) * batch * out]);
            if is_lstm {
                init[2 * batch * out..].copy_from_slice(&c0[d * batch * hidden..(d + 1) * batch * hidden]);
            }
            self.queue.write_buffer(&state_buf, 0, f32_bytes(&init));

            let gemm_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("input_projection"),
                layout: &self.gemm_layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: gemm_params.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: x_buf.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: wd.w.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: wd.w_bias.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 4, resource: xw_buf.as_entire_binding() },
                ],
            });
            let step_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("recurrent_step"),
                layout: &self.step_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &params_buf,
                            offset: 0,
                            size: NonZeroU64::new(STEP_PARAMS_SIZE),
                        }),
                    },
                    wgpu::BindGroupEntry { binding: 1, resource: xw_buf.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: wd.r.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: wd.vecs.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 4, resource: state_buf.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 5, resource: y_buf.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 6, resource: lens_buf.as_entire_binding() },
                ],
            });

            let mut s0 = 0;
            let mut final_state = Vec::new();
            while s0 < steps {
                let n = chunk.min(steps - s0);
                let rows = n * batch;
                if input > 0 {
                    self.queue.write_buffer(&x_buf, 0, f32_bytes(&xd[s0 * batch * input..(s0 + n) * batch * input]));
                }
                let mut params = vec![0u8; (n as u64 * align) as usize];
                for k in 0..n {
                    let p = layer::step_params(spec, dims, d, (s0 + k) as u32, k as u32);
                    let at = k * align as usize;
                    params[at..at + STEP_PARAMS_SIZE as usize].copy_from_slice(&p.to_bytes());
                }
                self.queue.write_buffer(&params_buf, 0, &params);
                let gemm = [rows as u32, gh as u32, input as u32, 0];
                self.queue.write_buffer(&gemm_params, 0, bytemuck::cast_slice(&gemm));

                let mut enc =
                    self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("chunk") });
                {
                    let mut pass =
                        enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                    self.dispatch_projection(&mut pass, &gemm_group, rows, gh);
                    for k in 0..n {
                        let offset = [(k as u64 * align) as u32];
                        if reset {
                            pass.set_pipeline(&pipelines.gru_reset);
                            pass.set_bind_group(0, &step_group, &offset);
                            pass.dispatch_workgroups(groups.0, groups.1, 1);
                        }
                        pass.set_pipeline(step_pipeline);
                        pass.set_bind_group(0, &step_group, &offset);
                        pass.dispatch_workgroups(groups.0, groups.1, 1);
                    }
                }
                let y_len = n * batch * out;
                // The last chunk also brings the final state back: one wait, not two.
                let last = s0 + n >= steps;
                let mut reads = Vec::new();
                if want_y {
                    enc.copy_buffer_to_buffer(&y_buf, 0, &y_read, 0, (y_len * 4) as u64);
                    reads.push((&y_read, y_len));
                }
                if last {
                    enc.copy_buffer_to_buffer(&state_buf, 0, &state_read, 0, (state_len * 4) as u64);
                    reads.push((&state_read, state_len));
                }
                self.queue.submit([enc.finish()]);
                if !reads.is_empty() {
                    let mut got = self.read_back_many(&reads).await?;
                    if last {
                        final_state = got.pop().unwrap_or_default();
                    }
                    if want_y {
                        scatter_y(&mut y, &got.pop().unwrap_or_default(), dims, &lens, d, reverse, s0);
                    }
                }
                s0 += n;
            }
            if steps == 0 {
                let mut enc =
                    self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("state") });
                enc.copy_buffer_to_buffer(&state_buf, 0, &state_read, 0, (state_len * 4) as u64);
                self.queue.submit([enc.finish()]);
                final_state = self.read_back(&state_read, state_len).await?;
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
        Ok((y, y_h, is_lstm.then_some(y_c)))
    }
}
