//! The device, its limits and the compiled kernels. Creation and read-back are `async` (the
//! browser can only map buffers asynchronously); native code drives them with a blocking wrapper.

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::shaders::{self, Kernel, STEP_PARAMS_SIZE};
use crate::error::{Error, Result};

/// Workgroup memory and invocations the kernels need (input_projection: 2 x 4 KiB, 256 threads).
const NEEDED_WORKGROUP_STORAGE: u32 = 8192;
const NEEDED_INVOCATIONS: u32 = 256;

/// A wgpu device with the backend's pipelines, and a record of errors nobody captured.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub adapter: String,
    /// A software adapter (SwiftShader, lavapipe: wgpu's `DeviceType::Cpu`). These run every
    /// invocation of a workgroup with barriers as a coroutine, so the kernels without barriers
    /// win there at every size; on hardware the tiled kernels win for large batches.
    pub software: bool,
    /// Errors reported outside any error scope (wgpu's default handler would panic) and device loss.
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<AtomicBool>,
    /// One operation (upload, node run) on the device at a time: WebGPU's error scopes are one
    /// stack per device, so two interleaved async operations would pop each other's scopes.
    gate: Gate,
    pub gemm_layout: wgpu::BindGroupLayout,
    pub step_layout: wgpu::BindGroupLayout,
    pub slots_layout: wgpu::BindGroupLayout,
    pub input_projection: wgpu::ComputePipeline,
    pub input_projection_gemv: wgpu::ComputePipeline,
    /// Step kernels for batches above [`shaders::SMALL_BATCH`], and for small ones.
    pub tiled: StepPipelines,
    pub small_batch: StepPipelines,
    /// Sessions' state between a node's state pool and a run ([`shaders::STATE_SLOTS`]).
    pub state_slots: wgpu::ComputePipeline,
}

/// The compiled step kernels of one matrix-product strategy.
pub struct StepPipelines {
    pub rnn_step: wgpu::ComputePipeline,
    pub gru_reset: wgpu::ComputePipeline,
    pub gru_step: wgpu::ComputePipeline,
    pub lstm_step: wgpu::ComputePipeline,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.adapter).finish_non_exhaustive()
    }
}

pub(crate) fn gpu_err(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::BackendUnavailable(format!("GPU {what}: {detail}"))
}

fn entry(binding: u32, ty: wgpu::BufferBindingType, dynamic: bool, min: Option<u64>) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: dynamic,
            min_binding_size: min.and_then(NonZeroU64::new),
        },
        count: None,
    }
}

const READ: wgpu::BufferBindingType = wgpu::BufferBindingType::Storage { read_only: true };
const READ_WRITE: wgpu::BufferBindingType = wgpu::BufferBindingType::Storage { read_only: false };
const UNIFORM: wgpu::BufferBindingType = wgpu::BufferBindingType::Uniform;

impl GpuContext {
    /// Finds an adapter (Vulkan natively, WebGPU in the browser), opens a device with the
    /// adapter's own limits, and compiles every kernel. No adapter is `BackendUnavailable`.
    pub async fn new() -> Result<GpuContext> {
        // In the browser wgpu panics on a global without `navigator.gpu` (e.g. a shared worker).
        #[cfg(target_arch = "wasm32")]
        if !wgpu::util::is_browser_webgpu_supported().await {
            return Err(Error::BackendUnavailable("no GPU adapter found (this browser context has no WebGPU)".into()));
        }
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::BROWSER_WEBGPU;
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::BackendUnavailable(format!("no GPU adapter found ({e})")))?;
        let info = adapter.get_info();
        // Browsers may hide the adapter's name.
        let name = [&info.name, &info.driver, &info.driver_info].into_iter().find(|s| !s.is_empty());
        let adapter_name =
            format!("{} ({:?}, {:?})", name.map_or("unnamed adapter", |s| s.as_str()), info.backend, info.device_type);
        let limits = adapter.limits();
        if limits.max_compute_workgroup_storage_size < NEEDED_WORKGROUP_STORAGE
            || limits.max_compute_invocations_per_workgroup < NEEDED_INVOCATIONS
            || limits.max_compute_workgroup_size_x < 16
            || limits.max_compute_workgroup_size_y < 16
            || limits.max_storage_buffers_per_shader_stage < 6
        {
            return Err(Error::BackendUnavailable(format!(
                "GPU adapter {adapter_name} is too small: needs {NEEDED_WORKGROUP_STORAGE} bytes of workgroup \
                 memory, {NEEDED_INVOCATIONS} invocations and 6 storage buffers per workgroup"
            )));
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("webrnn"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| gpu_err("device request failed", e))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let sink = errors.clone();
        let lost = Arc::new(AtomicBool::new(false));
        let lost_flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            lost_flag.store(true, Ordering::SeqCst);
            if let Ok(mut v) = sink.lock() {
                v.push(format!("device lost ({reason:?}): {message}"));
            }
        });

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let gemm_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("input_projection"),
            entries: &[
                entry(0, UNIFORM, false, Some(shaders::GEMM_PARAMS_SIZE)),
                entry(1, READ, false, None),
                entry(2, READ, false, None),
                entry(3, READ, false, None),
                entry(4, READ_WRITE, false, None),
            ],
        });
        let step_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("recurrent_step"),
            entries: &[
                entry(0, UNIFORM, true, Some(STEP_PARAMS_SIZE)),
                entry(1, READ, false, None),
                entry(2, READ, false, None),
                entry(3, READ, false, None),
                entry(4, READ_WRITE, false, None),
                entry(5, READ_WRITE, false, None),
                entry(6, READ, false, None),
            ],
        });
        let slots_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("state_slots"),
            entries: &[
                entry(0, UNIFORM, true, Some(shaders::SLOT_PARAMS_SIZE)),
                entry(1, READ, false, None),
                entry(2, READ_WRITE, false, None),
                entry(3, READ_WRITE, false, None),
            ],
        });
        let pipeline = |kernel: Kernel, layout: &wgpu::BindGroupLayout| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.entry),
                source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
            });
            let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(kernel.entry),
                bind_group_layouts: &[Some(layout)],
                immediate_size: 0,
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.entry),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(kernel.entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let input_projection = pipeline(shaders::INPUT_PROJECTION, &gemm_layout);
        let input_projection_gemv = pipeline(shaders::INPUT_PROJECTION_GEMV, &gemm_layout);
        let steps = |k: shaders::StepKernels| StepPipelines {
            rnn_step: pipeline(k.rnn_step, &step_layout),
            gru_reset: pipeline(k.gru_reset, &step_layout),
            gru_step: pipeline(k.gru_step, &step_layout),
            lstm_step: pipeline(k.lstm_step, &step_layout),
        };
        let tiled = steps(shaders::STEP_TILED);
        let small_batch = steps(shaders::STEP_SMALL_BATCH);
        let state_slots = pipeline(shaders::STATE_SLOTS, &slots_layout);
        if let Some(e) = scope.pop().await {
            return Err(gpu_err("kernel compilation failed", e));
        }
        Ok(GpuContext {
            device,
            queue,
            limits,
            adapter: adapter_name,
            software: info.device_type == wgpu::DeviceType::Cpu,
            errors,
            lost,
            gate: Gate::default(),
            gemm_layout,
            step_layout,
            slots_layout,
            input_projection,
            input_projection_gemv,
            tiled,
            small_batch,
            state_slots,
        })
    }

    /// Waits until no other operation runs on the device; the operation lasts as long as the guard.
    pub(crate) async fn exclusive(&self) -> Result<GateGuard<'_>> {
        self.gate.acquire().await
    }

    /// Whether the device is gone (driver reset, `destroy`, browser reclaim): nothing more runs on it.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Errors recorded since the last call (uncaptured errors, device loss), as one error.
    pub fn take_errors(&self) -> Result<()> {
        let mut v = self.errors.lock().map_err(|_| gpu_err("error log", "poisoned"))?;
        if v.is_empty() {
            return Ok(());
        }
        let msg = v.join("; ");
        v.clear();
        Err(gpu_err("error", msg))
    }

    /// Waits for submitted work natively; in the browser the event loop does it.
    pub fn wait_idle(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| gpu_err("poll", e))?;
        Ok(())
    }

    /// Copies `len` f32s of `buffer` (which must have MAP_READ) to the CPU.
    pub async fn read_back(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        Ok(self.read_back_many(&[(buffer, 0, len)]).await?.pop().unwrap_or_default())
    }

    /// Copies spans `(buffer, first f32, f32 count)` of MAP_READ buffers to the CPU with one wait
    /// on the device (at most one span per buffer; `first` even, as mapping offsets are 8-aligned).
    pub async fn read_back_many(&self, spans: &[(&wgpu::Buffer, usize, usize)]) -> Result<Vec<Vec<f32>>> {
        let range = |first: usize, len: usize| (first * 4) as u64..((first + len) * 4) as u64;
        let mut pending = Vec::new();
        for &(buffer, first, len) in spans {
            let (tx, rx) = oneshot();
            if len > 0 {
                buffer.slice(range(first, len)).map_async(wgpu::MapMode::Read, move |r| tx.send(r));
            } else {
                tx.send(Ok(()));
            }
            pending.push(rx);
        }
        self.wait_idle()?;
        // Natively the callbacks have usually run by now. When several threads share the device,
        // another thread's poll may be the one firing our callback, so it can land a moment after
        // our own wait returns: keep polling for a bounded time, never wait on one that cannot come.
        #[cfg(not(target_arch = "wasm32"))]
        {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !pending.iter().all(|rx| rx.is_ready()) {
                if std::time::Instant::now() > deadline {
                    return Err(gpu_err("read-back failed", "the device never completed the mapping"));
                }
                self.wait_idle()?;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let mut out = Vec::new();
        for (rx, &(buffer, first, len)) in pending.into_iter().zip(spans) {
            rx.await.map_err(|e| gpu_err("read-back failed", e))?;
            if len == 0 {
                out.push(Vec::new());
                continue;
            }
            let values = {
                let view =
                    buffer.slice(range(first, len)).get_mapped_range().map_err(|e| gpu_err("read-back failed", e))?;
                view.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            };
            buffer.unmap();
            out.push(values);
        }
        Ok(out)
    }
}

/// An async mutex without data: [`GpuContext::exclusive`].
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    busy: bool,
    waiters: Vec<Waker>,
}

/// Holds the [`Gate`]; dropping it (also when its operation's future is dropped midway) lets
/// the next one in.
pub(crate) struct GateGuard<'a>(&'a Gate);

impl Gate {
    fn acquire(&self) -> impl Future<Output = Result<GateGuard<'_>>> + '_ {
        std::future::poll_fn(move |cx| {
            let Ok(mut s) = self.state.lock() else { return Poll::Ready(Err(gpu_err("device gate", "poisoned"))) };
            if s.busy {
                s.waiters.push(cx.waker().clone());
                Poll::Pending
            } else {
                s.busy = true;
                Poll::Ready(Ok(GateGuard(self)))
            }
        })
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        let waiters = match self.0.state.lock() {
            Ok(mut s) => {
                s.busy = false;
                std::mem::take(&mut s.waiters)
            }
            Err(_) => Vec::new(),
        };
        // Every waiter tries again (one whose future was dropped meanwhile must not swallow the turn).
        waiters.into_iter().for_each(Waker::wake);
    }
}

/// A one-shot channel for wgpu callbacks, awaitable natively and in the browser.
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Sender<T>(Arc<Mutex<Slot<T>>>);
struct Receiver<T>(Arc<Mutex<Slot<T>>>);

fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    fn send(self, v: T) {
        if let Ok(mut s) = self.0.lock() {
            s.value = Some(v);
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }
}

impl<T> Receiver<T> {
    #[cfg(not(target_arch = "wasm32"))]
    fn is_ready(&self) -> bool {
        self.0.lock().is_ok_and(|s| s.value.is_some())
    }
}

impl<T> Future for Receiver<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Ok(mut s) = self.0.lock() else { return Poll::Pending };
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The process-wide context, created on first use (native only: the browser must create it
/// asynchronously) and again after a device loss. "No adapter" is remembered.
#[cfg(not(target_arch = "wasm32"))]
pub fn shared() -> Result<Arc<GpuContext>> {
    static CONTEXT: Mutex<Option<Result<Arc<GpuContext>>>> = Mutex::new(None);
    let mut slot = CONTEXT.lock().map_err(|_| gpu_err("context", "poisoned"))?;
    match &*slot {
        Some(Ok(ctx)) if !ctx.is_lost() => return Ok(ctx.clone()),
        Some(Err(e)) => return Err(e.clone()),
        _ => {}
    }
    let fresh = pollster::block_on(GpuContext::new()).map(Arc::new);
    *slot = Some(fresh.clone());
    fresh
}

/// The page's (or worker's) context: the browser creates devices asynchronously, so
/// [`init_browser`] makes it once and models loaded afterwards share it.
#[cfg(target_arch = "wasm32")]
static BROWSER_CONTEXT: Mutex<Option<Arc<GpuContext>>> = Mutex::new(None);

/// The context [`init_browser`] made; `BackendUnavailable` before it has run or after a device loss.
#[cfg(target_arch = "wasm32")]
pub fn shared() -> Result<Arc<GpuContext>> {
    let slot = BROWSER_CONTEXT.lock().map_err(|_| gpu_err("context", "poisoned"))?;
    match &*slot {
        Some(ctx) if !ctx.is_lost() => Ok(ctx.clone()),
        Some(_) => Err(Error::BackendUnavailable("the WebGPU device was lost; initialise it again".into())),
        None => Err(Error::BackendUnavailable("WebGPU is not initialised (call initGpu first)".into())),
    }
}

/// The context [`init_browser`] made, lost or not (`None` before it has run).
#[cfg(target_arch = "wasm32")]
pub fn browser_context() -> Option<Arc<GpuContext>> {
    BROWSER_CONTEXT.lock().ok().and_then(|slot| slot.clone())
}

/// Opens the browser's WebGPU device (once; again after a device loss) for the models loaded
/// after it. Returns the context models use.
#[cfg(target_arch = "wasm32")]
pub async fn init_browser() -> Result<Arc<GpuContext>> {
    if let Ok(ctx) = shared() {
        return Ok(ctx);
    }
    let ctx = Arc::new(GpuContext::new().await?);
    let mut slot = BROWSER_CONTEXT.lock().map_err(|_| gpu_err("context", "poisoned"))?;
    // Two concurrent initialisations: the first one stored wins, both callers share it.
    match &*slot {
        Some(existing) if !existing.is_lost() => Ok(existing.clone()),
        _ => {
            *slot = Some(ctx.clone());
            Ok(ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn the_gate_admits_one_operation_at_a_time_and_survives_dropped_waiters() {
        let gate = Gate::default();
        let mut first = Box::pin(gate.acquire());
        let Poll::Ready(Ok(held)) = poll(&mut first) else { panic!("a free gate admits at once") };
        let mut second = Box::pin(gate.acquire());
        let mut third = Box::pin(gate.acquire());
        assert!(poll(&mut second).is_pending(), "a held gate makes others wait");
        assert!(poll(&mut third).is_pending());
        drop(second); // an operation given up while waiting (its future dropped)
        drop(held);
        let Poll::Ready(Ok(next)) = poll(&mut third) else { panic!("the next waiter gets its turn") };
        let mut fourth = Box::pin(gate.acquire());
        assert!(poll(&mut fourth).is_pending());
        drop(next);
        assert!(matches!(poll(&mut fourth), Poll::Ready(Ok(_))));
    }
}
