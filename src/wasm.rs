//! The JavaScript boundary: thin `#[wasm_bindgen]` wrappers over [`crate::Model`] and
//! [`crate::Session`], consumed by the TypeScript layer in `js/` (the `webrnn` npm package). No
//! logic lives here; every error becomes a JS `Error` whose message starts with the stable error
//! code (`"shape: ..."`), and no call can panic.
//!
//! A `Model` owns its sessions and hands out numeric ids: `Model::step_batch` needs several
//! sessions mutably at once, which wasm-bindgen cannot lend from JS-owned objects.
//!
//! Every stepping call has a synchronous form (the CPU backends) and an `...Async` form returning
//! a Promise (the GPU backend, whose results arrive asynchronously; the CPU backends work there
//! too). An async call takes its sessions out of the model's table until it settles, so a second
//! call on one of them meanwhile fails with `invalid_argument` instead of racing it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use wasm_bindgen::prelude::*;

use crate::graph::block_on_ready;
use crate::{Backend, Data, Error};

fn err(e: Error) -> JsError {
    JsError::new(&format!("{}: {e}", e.code()))
}

/// What this wasm build contains: the JS loader picks a backend from it.
#[wasm_bindgen(js_name = buildInfo)]
pub fn build_info() -> String {
    let kernels = |b: Backend| b.kernels(&[]).map(|k| k.backend().name());
    // "gpu": the build has the WebGPU backend (whether this browser has an adapter is `initGpu`'s
    // answer).
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "simd128": cfg!(target_feature = "simd128"),
        "relaxed_simd": cfg!(target_feature = "relaxed-simd"),
        "cpu": kernels(Backend::Cpu).unwrap_or("cpu-scalar"),
        "gpu": cfg!(feature = "gpu"),
        "snapshot_version": crate::snapshot::FORMAT_VERSION,
    })
    .to_string()
}

/// The ONNX bytes of a small GRU ([`crate::onnx::warmup`]) that `Runtime.loadModel` loads and
/// steps while the page's own model is still downloading, so that the browser compiles the loading
/// and stepping code then rather than after the download.
#[wasm_bindgen(js_name = warmUpModel)]
pub fn warm_up_model() -> Vec<u8> {
    crate::onnx::warmup::gru_model()
}

/// Opens the browser's WebGPU device for the models loaded afterwards with backend `gpu`.
/// Resolves to the adapter's description; rejects with `backend_unavailable` when there is no
/// adapter (or it is too small for the kernels). Idempotent; after a device loss it opens a new one.
#[wasm_bindgen(js_name = initGpu)]
pub async fn init_gpu() -> Result<String, JsError> {
    #[cfg(feature = "gpu")]
    {
        let ctx = crate::gpu::context::init_browser().await.map_err(err)?;
        Ok(ctx.adapter.clone())
    }
    #[cfg(not(feature = "gpu"))]
    Err(err(no_gpu()))
}

/// The GPU entry points of a build without the `gpu` feature (the package's CPU variants) keep
/// their names, so both kinds of build bind the same JS API.
#[cfg(not(feature = "gpu"))]
fn no_gpu() -> Error {
    Error::BackendUnavailable("this wasm build has no WebGPU backend (a CPU-only variant)".into())
}

/// `{"initialised", "adapter", "lost", "software", "gpu_runs", "cpu_fallback_runs"}` of the
/// page's WebGPU device as JSON (software: a CPU-emulated adapter such as SwiftShader; runs:
/// recurrent layers executed). After a loss, GPU models go on on the CPU
/// kernels with their sessions' state intact.
#[wasm_bindgen(js_name = gpuStatus)]
pub fn gpu_status() -> String {
    #[cfg(feature = "gpu")]
    let status = {
        let ctx = crate::gpu::context::browser_context();
        let (gpu_runs, cpu_fallback_runs) = crate::gpu::run_counts();
        serde_json::json!({
            "initialised": ctx.is_some(),
            "adapter": ctx.as_ref().map(|c| c.adapter.clone()),
            "lost": ctx.as_ref().is_some_and(|c| c.is_lost()),
            "software": ctx.as_ref().is_some_and(|c| c.software),
            "gpu_runs": gpu_runs,
            "cpu_fallback_runs": cpu_fallback_runs,
        })
    };
    #[cfg(not(feature = "gpu"))]
    let status = serde_json::json!({
        "initialised": false,
        "adapter": null,
        "lost": false,
        "software": false,
        "gpu_runs": 0,
        "cpu_fallback_runs": 0,
    });
    status.to_string()
}

/// Checks the page's WebGPU device against the scalar reference (every cell kind, both kernel
/// families, several chunks): resolves to a report, rejects with `backend_unavailable` naming the
/// first disagreement (or the missing device).
#[wasm_bindgen(js_name = gpuSelfTest)]
pub async fn gpu_self_test() -> Result<String, JsError> {
    #[cfg(feature = "gpu")]
    {
        let ctx = crate::gpu::context::shared().map_err(err)?;
        crate::gpu::self_test::self_test(ctx).await.map_err(err)
    }
    #[cfg(not(feature = "gpu"))]
    Err(err(no_gpu()))
}

/// Destroys the page's WebGPU device, as a driver reset would: for tests of the device-loss path
/// (models go on on the CPU, the app is told). Not part of the package's API.
#[wasm_bindgen(js_name = destroyGpuForTesting)]
pub fn destroy_gpu_for_testing() {
    #[cfg(feature = "gpu")]
    if let Some(ctx) = crate::gpu::context::browser_context() {
        ctx.device.destroy();
    }
}

/// A model's sessions by id. Shared with the model's in-flight async calls.
struct Table {
    sessions: HashMap<u32, crate::Session>,
    next_id: u32,
}

type Shared = Rc<RefCell<Table>>;

fn busy() -> Error {
    Error::InvalidArgument("the model is busy (re-entrant call)".into())
}

/// Sessions taken out of the table for a call; they go back when it ends, however it ends (an
/// error, or its future dropped unfinished), unchanged unless the call succeeded.
struct Taken {
    table: Shared,
    items: Vec<(u32, crate::Session)>,
}

impl Taken {
    /// Takes sessions `ids` out of `table` (all or none).
    fn new(table: &Shared, ids: &[u32]) -> Result<Taken, Error> {
        let mut t = table.try_borrow_mut().map_err(|_| busy())?;
        let mut items: Vec<(u32, crate::Session)> = Vec::with_capacity(ids.len());
        for &id in ids {
            match t.sessions.remove(&id) {
                Some(s) => items.push((id, s)),
                None => {
                    t.sessions.extend(items);
                    return Err(Error::InvalidArgument(format!(
                        "session {id} is unknown, disposed, given twice, or busy with a call still in flight"
                    )));
                }
            }
        }
        Ok(Taken { table: table.clone(), items })
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let Ok(mut t) = self.table.try_borrow_mut() {
            t.sessions.extend(self.items.drain(..));
        }
    }
}

/// What a stepping call does with the sessions it took.
#[derive(Clone, Copy)]
enum Call {
    Step,
    Run(usize),
    Batch,
}

async fn call(model: &crate::Model, table: &Shared, ids: &[u32], data: Data, what: Call) -> Result<Vec<f32>, Error> {
    let mut taken = Taken::new(table, ids)?;
    let result = {
        let mut refs: Vec<&mut crate::Session> = taken.items.iter_mut().map(|(_, s)| s).collect();
        match (what, refs.first_mut()) {
            (Call::Step, Some(s)) => s.step_async(one_input(data)).await,
            (Call::Run(steps), Some(s)) => s.run_async(one_input(data), steps).await,
            (Call::Batch, _) => model.step_batch_async(&mut refs, one_input(data)).await,
            (_, None) => Err(Error::InvalidArgument("no session given".into())),
        }
    };
    drop(taken);
    first_output(result?)
}

#[wasm_bindgen]
pub struct Model {
    inner: crate::Model,
    table: Shared,
    /// [`output_size`], found on first use.
    out_size: std::cell::OnceCell<usize>,
}

fn on_backend(model: crate::Model, backend: &str) -> Result<crate::Model, Error> {
    model.with_backend(Backend::parse(backend)?)
}

fn one_input(data: Data) -> Vec<Data> {
    vec![data]
}

fn first_output(outs: Vec<crate::Tensor>) -> Result<Vec<f32>, Error> {
    let t = outs.into_iter().next().ok_or_else(|| Error::InvalidModel("the model has no output".into()))?;
    t.into_f32()
}

fn tokens(ids: &[i32]) -> Data {
    Data::I64(ids.iter().map(|&v| v as i64).collect())
}

/// Graph input `i` from `{dims, data}`.
fn tensor_from_js(i: usize, v: &JsValue) -> Result<crate::Tensor, Error> {
    let bad = |what: &str| Error::InvalidArgument(format!("runGraph: input {i}: {what}"));
    let get = |key: &str| js_sys::Reflect::get(v, &JsValue::from_str(key)).map_err(|_| bad("not an object"));
    let dims = get("dims")?;
    let dims: js_sys::Array = dims.dyn_into().map_err(|_| bad("dims must be an array"))?;
    let dims = dims
        .iter()
        .map(|d| match d.as_f64() {
            Some(d) if d >= 0.0 && d.fract() == 0.0 && d < 2f64.powi(32) => Ok(d as usize),
            _ => Err(bad("dims must be whole numbers ≥ 0")),
        })
        .collect::<Result<Vec<usize>, Error>>()?;
    let data = get("data")?;
    if let Some(a) = data.dyn_ref::<js_sys::Float32Array>() {
        crate::Tensor::from_f32(dims, a.to_vec())
    } else if let Some(a) = data.dyn_ref::<js_sys::Int32Array>() {
        crate::Tensor::from_i64(dims, a.to_vec().into_iter().map(i64::from).collect())
    } else if let Some(a) = data.dyn_ref::<js_sys::BigInt64Array>() {
        crate::Tensor::from_i64(dims, a.to_vec())
    } else {
        Err(bad("data must be a Float32Array, Int32Array or BigInt64Array"))
    }
}

/// Load options from their JSON form (the JS layer has checked the types; this checks the values).
fn load_options(json: &str) -> Result<crate::LoadOptions, Error> {
    use serde_json::Value;
    let bad = |what: String| Error::InvalidArgument(format!("loadModel options: {what}"));
    let v: Value = serde_json::from_str(json).map_err(|e| bad(format!("not JSON: {e}")))?;
    let mut o = crate::LoadOptions::default();
    let numbers = |name: &str, v: &Value| -> Result<Vec<f64>, Error> {
        let list = match v {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        list.iter().map(|x| x.as_f64().ok_or_else(|| bad(format!("inputs.{name} must hold numbers")))).collect()
    };
    if let Some(inputs) = v.get("inputs").and_then(Value::as_object) {
        for (name, value) in inputs {
            let (dims, data) = match value {
                Value::Object(m) => {
                    let dims =
                        m.get("dims").and_then(Value::as_array).ok_or_else(|| bad(format!("inputs.{name}.dims")))?;
                    let dims: Vec<usize> = dims
                        .iter()
                        .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(|| bad(format!("inputs.{name}.dims"))))
                        .collect::<Result<_, Error>>()?;
                    (Some(dims), numbers(name, m.get("data").unwrap_or(&Value::Null))?)
                }
                Value::Array(_) => (None, numbers(name, value)?),
                other => (Some(vec![]), numbers(name, other)?),
            };
            let dims = dims.unwrap_or_else(|| vec![data.len()]);
            let t = if data.iter().all(|x| x.fract() == 0.0 && x.abs() < 9.0e15) {
                crate::Tensor::from_i64(dims, data.iter().map(|&x| x as i64).collect())
            } else {
                crate::Tensor::from_f32(dims, data.iter().map(|&x| x as f32).collect())
            }
            .map_err(|e| e.context(&format!("inputs.{name}")))?;
            o.inputs.push((name.clone(), t));
        }
    }
    if let Some(m) = v.get("max_memory_bytes").filter(|m| !m.is_null()) {
        let m = m
            .as_f64()
            .filter(|m| *m >= 1.0 && m.fract() == 0.0)
            .ok_or_else(|| bad("max_memory_bytes must be a positive whole number".into()))?;
        o.max_memory_bytes = Some(m.min(usize::MAX as f64) as usize);
    }
    if let Some(state) = v.get("state").and_then(Value::as_object) {
        for (input, output) in state {
            let output = output.as_str().ok_or_else(|| bad(format!("state.{input} must name a graph output")))?;
            o.state.push((input.clone(), output.to_string()));
        }
    }
    Ok(o)
}

/// Values in one step of the model's first output for one session: one step of zeros from a
/// throwaway session on the scalar kernels (whatever the graph's symbolic dims say).
fn output_size(model: &crate::Model) -> usize {
    let probe = || -> Result<usize, Error> {
        let plan = model.session_plan()?;
        if let Some(calls) = &plan.calls {
            return Ok(call_output_size(model, calls));
        }
        let [input] = plan.inputs.as_slice() else { return Ok(0) };
        let data = match input.dtype {
            crate::DType::I64 => Data::I64(vec![0; input.step_len()]),
            _ => Data::F32(vec![0.0; input.step_len()]),
        };
        let mut s = model.with_backend(Backend::CpuScalar)?.create_session()?;
        Ok(first_output(s.run(one_input(data), 1)?)?.len())
    };
    probe().unwrap_or(0)
}

/// A chunk-by-chunk model's first output size at batch 1, where it does not depend on the input's
/// length (0 where it does: Silero's sequence export returns one value per frame).
fn call_output_size(model: &crate::Model, calls: &crate::session::calls::CallPlan) -> usize {
    let g = model.graph();
    let Some(dims) = calls.outputs.first().and_then(|&o| g.outputs[o].dims.as_ref()) else { return 0 };
    // The output's first symbolic dimension is the batch where the input has a batch (several
    // symbolic dimensions) or none at all (a fixed shape); otherwise it follows the data's length.
    let has_batch = calls.inputs.iter().all(|i| {
        let free = g.inputs[i.graph_index].dims.as_ref().map_or(0, |d| d.iter().filter(|x| x.is_none()).count());
        free != 1
    });
    let mut batch = has_batch;
    let mut n = 1usize;
    for d in dims {
        match d {
            Some(d) => n = n.saturating_mul(*d),
            None if std::mem::replace(&mut batch, false) => {}
            None => return 0,
        }
    }
    n
}

#[wasm_bindgen]
impl Model {
    fn wrap(inner: crate::Model) -> Model {
        let table = Rc::new(RefCell::new(Table { sessions: HashMap::new(), next_id: 1 }));
        Model { inner, table, out_size: std::cell::OnceCell::new() }
    }

    /// Loads an ONNX model on `backend` (`cpu`, `cpu-scalar`, `gpu`). `external` maps
    /// external-data locations to their bytes; a location it lacks fails with an `io` error that
    /// carries the location in its `location` property, so the caller can fetch it and retry.
    #[wasm_bindgen(js_name = fromOnnx)]
    /// `options` is JSON: `{"inputs": {name: number | number[] | {"dims": [...], "data": [...]}},
    /// "state": {input: output}}` (see [`crate::LoadOptions`]).
    pub fn from_onnx(bytes: &[u8], external: &js_sys::Map, backend: &str, options: &str) -> Result<Model, JsValue> {
        let mut missing = None;
        let options = load_options(options).map_err(|e| JsValue::from(err(e)))?;
        let loaded = crate::Model::from_onnx_with_external_and(bytes, &options, &mut |loc: &str| match external
            .get(&JsValue::from_str(loc))
            .dyn_into::<js_sys::Uint8Array>()
        {
            Ok(data) => Ok(Arc::new(data.to_vec())),
            Err(_) => {
                missing = Some(loc.to_string());
                Err(Error::Io(format!("missing external data file '{loc}'")))
            }
        });
        match loaded.and_then(|m| on_backend(m, backend)) {
            Ok(inner) => Ok(Model::wrap(inner)),
            Err(e) => {
                let error: JsValue = err(e).into();
                if let Some(loc) = missing {
                    js_sys::Reflect::set(&error, &JsValue::from_str("location"), &JsValue::from_str(&loc))?;
                }
                Err(error)
            }
        }
    }

    /// Loads a PyTorch state dict (safetensors bytes) with its JSON config.
    #[wasm_bindgen(js_name = fromSafetensors)]
    pub fn from_safetensors(bytes: &[u8], config_json: &str, backend: &str, max_memory: f64) -> Result<Model, JsError> {
        let options = crate::LoadOptions::default().max_memory(if max_memory >= 1.0 {
            max_memory.min(usize::MAX as f64) as usize
        } else {
            crate::budget::DEFAULT_MAX_MEMORY
        });
        crate::Model::from_safetensors_with(bytes, config_json, &options)
            .and_then(|m| on_backend(m, backend))
            .map(Model::wrap)
            .map_err(err)
    }

    /// The model's fingerprint (hex), hashed on the first call, not at load.
    pub fn fingerprint(&self) -> String {
        self.inner.fingerprint_hex()
    }

    /// A JSON description: inputs, outputs, layers, backend and the session plan (the fingerprint
    /// is [`Model::fingerprint`], computed when first asked for).
    pub fn info(&self) -> String {
        let g = self.inner.graph();
        let decl = |d: &crate::graph::ValueDecl| {
            serde_json::json!({
                "name": d.name,
                "dtype": d.dtype.map(|t| t.name()),
                "shape": d.dims,
            })
        };
        let layers: Vec<_> = g
            .recurrent_nodes()
            .map(|(_, n, s)| {
                serde_json::json!({
                    "name": n.name, "op": s.cell.op_name(), "hidden_size": s.hidden_size,
                    "direction": s.direction.name(),
                })
            })
            .collect();
        let plan = self.inner.session_plan();
        let first = plan.as_ref().ok().and_then(|p| p.inputs.first());
        let calls = plan.as_ref().ok().and_then(|p| p.calls.as_ref());
        // A chunk's size where it is fixed; 0 where it is taken from the data (Silero's samples).
        let call_size =
            calls.and_then(|c| c.inputs.first()).map(|i| i.dims.iter().map(|d| d.unwrap_or(0)).product::<usize>());
        serde_json::json!({
            "format": match self.inner.source() {
                crate::model::Source::Onnx(_) => "onnx",
                crate::model::Source::StateDict => "safetensors",
            },
            "backend": self.inner.backend().name(),
            "inputs": g.inputs.iter().map(decl).collect::<Vec<_>>(),
            "outputs": g.outputs.iter().map(decl).collect::<Vec<_>>(),
            "layers": layers,
            "streamable": plan.as_ref().map(|p| p.streamable).unwrap_or(false),
            "real_inputs": plan.as_ref().map(|p| p.inputs.len()).unwrap_or(0),
            "input_size": call_size.unwrap_or_else(|| first.map_or(0, |i| i.step_len())),
            "input_is_tokens": first.is_some_and(|i| i.dtype == crate::DType::I64)
                || calls.and_then(|c| c.inputs.first()).is_some_and(|i| i.dtype == crate::DType::I64),
            "output_size": self.output_size(),
            "state_len": plan.as_ref().map(|p| p.state_len()).unwrap_or(0),
            "sessions": plan.as_ref().err().map(|e| e.to_string()),
            "max_memory_bytes": self.inner.max_memory(),
            "chunked": calls.is_some(),
            "input_shape": calls.and_then(|c| c.inputs.first()).map(|i| i.dims.clone()),
            "placement": self.inner.placement().iter().map(|p| serde_json::json!({
                "node": p.node, "op": p.op, "device": p.device,
            })).collect::<Vec<_>>(),
            "state": calls.map(|c| c.states.iter().map(|s| serde_json::json!({
                "input": s.input_name, "output": s.output_name, "shape": s.shape,
            })).collect::<Vec<_>>()).unwrap_or_default(),
        })
        .to_string()
    }

    /// A new session with zero state; returns its id.
    #[wasm_bindgen(js_name = createSession)]
    pub fn create_session(&mut self) -> Result<u32, JsError> {
        let mut s = self.inner.create_session().map_err(err)?;
        // After an awaited call the host copy is current on every backend, so `saveState` works
        // on WebGPU as on the CPU (the state comes back in the outputs' read).
        s.set_read_back(true);
        let mut t = self.table.try_borrow_mut().map_err(|_| err(busy()))?;
        let id = t.next_id;
        t.next_id = t.next_id.wrapping_add(1).max(1);
        t.sessions.insert(id, s);
        Ok(id)
    }

    /// Forgets a session (one with a call in flight is forgotten when that call settles).
    #[wasm_bindgen(js_name = dropSession)]
    pub fn drop_session(&mut self, id: u32) {
        if let Ok(mut t) = self.table.try_borrow_mut() {
            t.sessions.remove(&id);
        }
    }

    /// A synchronous call on sessions `ids` (CPU backends).
    fn sync(&self, ids: &[u32], data: Data, what: Call) -> Result<Vec<f32>, JsError> {
        block_on_ready(call(&self.inner, &self.table, ids, data, what)).and_then(|r| r).map_err(err)
    }

    fn output_size(&self) -> usize {
        *self.out_size.get_or_init(|| output_size(&self.inner))
    }

    /// [`Model::sync`] writing the output into `out`, whose length is checked before anything runs
    /// (a wrong one changes no state): no new array per call, which for the small outputs of a
    /// stream costs more than the step itself.
    fn sync_into(&self, ids: &[u32], data: Data, what: Call, out: &js_sys::Float32Array) -> Result<(), JsError> {
        let steps = match what {
            Call::Run(steps) => steps,
            Call::Step | Call::Batch => 1,
        };
        let want = self.output_size().saturating_mul(ids.len()).saturating_mul(steps);
        if out.length() as usize != want {
            let got = out.length();
            return Err(err(Error::InvalidArgument(format!("out has {got} values; this call returns {want}"))));
        }
        let y = self.sync(ids, data, what)?;
        if y.len() != want {
            return Err(err(Error::Shape(format!(
                "the call returned {} values, not the {want} of outputSize",
                y.len()
            ))));
        }
        out.copy_from(&y);
        Ok(())
    }

    /// The same call as a Promise of a Float32Array (any backend).
    fn spawn(&self, ids: Vec<u32>, data: Data, what: Call) -> js_sys::Promise {
        let (model, table) = (self.inner.clone(), self.table.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let y = call(&model, &table, &ids, data, what).await.map_err(err)?;
            Ok(js_sys::Float32Array::from(y.as_slice()).into())
        })
    }

    /// One time step of float input; returns the model's first non-state output.
    pub fn step(&mut self, id: u32, x: &[f32]) -> Result<Vec<f32>, JsError> {
        self.sync(&[id], Data::F32(x.to_vec()), Call::Step)
    }

    /// One time step of token ids.
    #[wasm_bindgen(js_name = stepTokens)]
    pub fn step_tokens(&mut self, id: u32, ids: &[i32]) -> Result<Vec<f32>, JsError> {
        self.sync(&[id], tokens(ids), Call::Step)
    }

    /// `steps` time steps of float input, time-major.
    pub fn run(&mut self, id: u32, xs: &[f32], steps: usize) -> Result<Vec<f32>, JsError> {
        self.sync(&[id], Data::F32(xs.to_vec()), Call::Run(steps))
    }

    #[wasm_bindgen(js_name = runTokens)]
    pub fn run_tokens(&mut self, id: u32, ids: &[i32], steps: usize) -> Result<Vec<f32>, JsError> {
        self.sync(&[id], tokens(ids), Call::Run(steps))
    }

    /// One step for several sessions (`x` session-major); returns the first output, session-major.
    #[wasm_bindgen(js_name = stepBatch)]
    pub fn step_batch(&mut self, ids: &[u32], x: &[f32]) -> Result<Vec<f32>, JsError> {
        self.sync(ids, Data::F32(x.to_vec()), Call::Batch)
    }

    #[wasm_bindgen(js_name = stepBatchTokens)]
    pub fn step_batch_tokens(&mut self, ids: &[u32], x: &[i32]) -> Result<Vec<f32>, JsError> {
        self.sync(ids, tokens(x), Call::Batch)
    }

    /// `step` writing into `out` (outputSize values).
    #[wasm_bindgen(js_name = stepInto)]
    pub fn step_into(&mut self, id: u32, x: &[f32], out: &js_sys::Float32Array) -> Result<(), JsError> {
        self.sync_into(&[id], Data::F32(x.to_vec()), Call::Step, out)
    }

    #[wasm_bindgen(js_name = stepTokensInto)]
    pub fn step_tokens_into(&mut self, id: u32, ids: &[i32], out: &js_sys::Float32Array) -> Result<(), JsError> {
        self.sync_into(&[id], tokens(ids), Call::Step, out)
    }

    /// `run` writing into `out` (steps × outputSize values).
    #[wasm_bindgen(js_name = runInto)]
    pub fn run_into(&mut self, id: u32, xs: &[f32], steps: usize, out: &js_sys::Float32Array) -> Result<(), JsError> {
        self.sync_into(&[id], Data::F32(xs.to_vec()), Call::Run(steps), out)
    }

    #[wasm_bindgen(js_name = runTokensInto)]
    pub fn run_tokens_into(
        &mut self,
        id: u32,
        ids: &[i32],
        steps: usize,
        out: &js_sys::Float32Array,
    ) -> Result<(), JsError> {
        self.sync_into(&[id], tokens(ids), Call::Run(steps), out)
    }

    /// `stepBatch` writing into `out` (sessions × outputSize values).
    #[wasm_bindgen(js_name = stepBatchInto)]
    pub fn step_batch_into(&mut self, ids: &[u32], x: &[f32], out: &js_sys::Float32Array) -> Result<(), JsError> {
        self.sync_into(ids, Data::F32(x.to_vec()), Call::Batch, out)
    }

    #[wasm_bindgen(js_name = stepBatchTokensInto)]
    pub fn step_batch_tokens_into(
        &mut self,
        ids: &[u32],
        x: &[i32],
        out: &js_sys::Float32Array,
    ) -> Result<(), JsError> {
        self.sync_into(ids, tokens(x), Call::Batch, out)
    }

    /// `step` as a Promise (the GPU backend's form).
    #[wasm_bindgen(js_name = stepAsync)]
    pub fn step_async(&self, id: u32, x: &[f32]) -> js_sys::Promise {
        self.spawn(vec![id], Data::F32(x.to_vec()), Call::Step)
    }

    #[wasm_bindgen(js_name = stepTokensAsync)]
    pub fn step_tokens_async(&self, id: u32, ids: &[i32]) -> js_sys::Promise {
        self.spawn(vec![id], tokens(ids), Call::Step)
    }

    #[wasm_bindgen(js_name = runAsync)]
    pub fn run_async(&self, id: u32, xs: &[f32], steps: usize) -> js_sys::Promise {
        self.spawn(vec![id], Data::F32(xs.to_vec()), Call::Run(steps))
    }

    #[wasm_bindgen(js_name = runTokensAsync)]
    pub fn run_tokens_async(&self, id: u32, ids: &[i32], steps: usize) -> js_sys::Promise {
        self.spawn(vec![id], tokens(ids), Call::Run(steps))
    }

    #[wasm_bindgen(js_name = stepBatchAsync)]
    pub fn step_batch_async(&self, ids: &[u32], x: &[f32]) -> js_sys::Promise {
        self.spawn(ids.to_vec(), Data::F32(x.to_vec()), Call::Batch)
    }

    #[wasm_bindgen(js_name = stepBatchTokensAsync)]
    pub fn step_batch_tokens_async(&self, ids: &[u32], x: &[i32]) -> js_sys::Promise {
        self.spawn(ids.to_vec(), tokens(x), Call::Batch)
    }

    /// Brings back from the GPU the state of every session whose newest state is there only (a
    /// GPU model keeps it on the device between calls), so that `saveState` can read it. Sessions
    /// with a call in flight are left alone. Resolves when done; a no-op on the CPU.
    #[wasm_bindgen(js_name = syncAsync)]
    pub fn sync_async(&self) -> js_sys::Promise {
        let (model, table) = (self.inner.clone(), self.table.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let ids: Vec<u32> = match table.try_borrow() {
                Ok(t) => t.sessions.iter().filter(|(_, s)| s.stale()).map(|(&id, _)| id).collect(),
                Err(_) => return Err(err(busy()).into()),
            };
            if ids.is_empty() {
                return Ok(JsValue::UNDEFINED);
            }
            let mut taken = Taken::new(&table, &ids).map_err(err)?;
            let mut refs: Vec<&mut crate::Session> = taken.items.iter_mut().map(|(_, s)| s).collect();
            let result = model.sync_async(&mut refs).await;
            drop(taken);
            result.map_err(err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The whole graph as ONNX defines it, without sessions (what `webrnn run` does): one
    /// `{dims, data}` per graph input, in order (`data`: Float32Array, or Int32Array /
    /// BigInt64Array for integer tensors). Resolves to one `{dims, data}` per graph output
    /// (Float32Array or BigInt64Array). On any backend.
    #[wasm_bindgen(js_name = runGraph)]
    pub fn run_graph(&self, inputs: &js_sys::Array) -> js_sys::Promise {
        let tensors = match inputs.iter().enumerate().map(|(i, v)| tensor_from_js(i, &v)).collect() {
            Ok(t) => t,
            Err(e) => return js_sys::Promise::reject(&JsValue::from(err(e))),
        };
        let model = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let outs = model.run_graph_async(tensors).await.map_err(err)?;
            let result = js_sys::Array::new();
            for t in outs {
                let dims: js_sys::Array = t.shape().iter().map(|&d| JsValue::from(d as f64)).collect();
                let data: JsValue = match t.data() {
                    Data::F32(v) => js_sys::Float32Array::from(v.as_slice()).into(),
                    Data::I64(v) => js_sys::BigInt64Array::from(v.as_slice()).into(),
                };
                let o = js_sys::Object::new();
                js_sys::Reflect::set(&o, &"dims".into(), &dims)?;
                js_sys::Reflect::set(&o, &"data".into(), &data)?;
                result.push(&o);
            }
            Ok(result.into())
        })
    }

    /// Runs `f` on session `id` (synchronous, short: never across an await).
    fn with_session<T>(&self, id: u32, f: impl FnOnce(&mut crate::Session) -> Result<T, Error>) -> Result<T, JsError> {
        let mut t = self.table.try_borrow_mut().map_err(|_| err(busy()))?;
        let s = t.sessions.get_mut(&id).ok_or_else(|| {
            err(Error::InvalidArgument(format!("no session {id} (disposed, or busy with a call still in flight)")))
        })?;
        f(s).map_err(err)
    }

    pub fn reset(&mut self, id: u32) -> Result<(), JsError> {
        self.with_session(id, |s| {
            s.reset();
            Ok(())
        })
    }

    /// Time steps the session has consumed since creation or its last reset.
    pub fn steps(&mut self, id: u32) -> Result<f64, JsError> {
        self.with_session(id, |s| Ok(s.steps() as f64))
    }

    /// The session's state as a versioned, fingerprinted, checksummed snapshot, with its adapter
    /// if `adapter` and it adapts.
    #[wasm_bindgen(js_name = saveState)]
    pub fn save_state(&mut self, id: u32, adapter: bool) -> Result<Vec<u8>, JsError> {
        self.with_session(id, |s| if adapter { s.save_state() } else { s.save_state_without_adapter() })
    }

    #[wasm_bindgen(js_name = loadState)]
    pub fn load_state(&mut self, id: u32, bytes: &[u8]) -> Result<(), JsError> {
        self.with_session(id, |s| s.load_state(bytes))
    }

    /// Turns on adaptation (#17) for session `id`: an error naming why where the model has no
    /// output head to adapt, or an option is out of range.
    #[wasm_bindgen(js_name = enableAdaptation)]
    pub fn enable_adaptation(
        &mut self,
        id: u32,
        learning_rate: f32,
        rank: u32,
        window: u32,
        max_update_norm: f32,
        guard: bool,
    ) -> Result<(), JsError> {
        let (rank, window) = (rank as usize, window as usize);
        let options = crate::AdaptOptions { learning_rate, rank, window, max_update_norm, guard };
        self.with_session(id, |s| s.enable_adaptation(options))
    }

    /// Learns from the session's last step: `values` when not empty (squared error), else class
    /// `class` (the JS layer checks it is a whole number).
    pub fn learn(&mut self, id: u32, class: u32, values: &[f32]) -> Result<(), JsError> {
        let target =
            if values.is_empty() { crate::Target::Class(class as usize) } else { crate::Target::Values(values) };
        self.with_session(id, |s| s.learn(target))
    }

    /// `[updates, active (0/1), base loss, adapted loss, rollbacks, base accuracy, adapted
    /// accuracy]` (after forgetting the adapter with `reset`), empty without adaptation. No JSON:
    /// it is read on every keystroke.
    pub fn adaptation(&mut self, id: u32, reset: bool) -> Result<Vec<f64>, JsError> {
        self.with_session(id, |s| {
            if reset {
                s.reset_adaptation();
            }
            Ok(s.adaptation().map_or_else(Vec::new, |a| {
                let (bl, al, ba, aa) = (a.base_loss, a.adapted_loss, a.base_accuracy, a.adapted_accuracy);
                vec![
                    a.updates as f64,
                    a.active as u8 as f64,
                    bl as f64,
                    al as f64,
                    a.rollbacks as f64,
                    ba as f64,
                    aa as f64,
                ]
            }))
        })
    }
}
