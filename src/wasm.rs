//! The JavaScript boundary: thin `#[wasm_bindgen]` wrappers over [`crate::Model`] and
//! [`crate::Session`], consumed by the TypeScript layer in `js/` (the `webrnn` npm package). No
//! logic lives here; every error becomes a JS `Error` whose message starts with the stable error
//! code (`"shape: ..."`), and no call can panic.
//!
//! A `Model` owns its sessions and hands out numeric ids: `Model::step_batch` needs several
//! sessions mutably at once, which wasm-bindgen cannot lend from JS-owned objects.

use std::collections::HashMap;
use std::sync::Arc;

use wasm_bindgen::prelude::*;

use crate::{Backend, Data, Error};

fn err(e: Error) -> JsError {
    JsError::new(&format!("{}: {e}", e.code()))
}

/// What this wasm build contains: the JS loader picks a backend from it.
#[wasm_bindgen(js_name = buildInfo)]
pub fn build_info() -> String {
    let empty = crate::graph::Graph {
        value_names: Vec::new(),
        nodes: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        constants: Vec::new(),
    };
    let kernels = |b: Backend| b.kernels(&empty).map(|k| k.backend().name());
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "simd128": cfg!(target_feature = "simd128"),
        "relaxed_simd": cfg!(target_feature = "relaxed-simd"),
        "cpu": kernels(Backend::Cpu).unwrap_or("cpu-scalar"),
        "gpu": kernels(Backend::Gpu).is_ok(),
        "snapshot_version": crate::snapshot::FORMAT_VERSION,
    })
    .to_string()
}

#[wasm_bindgen]
pub struct Model {
    inner: crate::Model,
    sessions: HashMap<u32, crate::Session>,
    next_id: u32,
}

fn on_backend(model: crate::Model, backend: &str) -> Result<crate::Model, Error> {
    model.with_backend(Backend::parse(backend)?)
}

fn one_input(data: Data) -> Vec<Data> {
    vec![data]
}

fn first_output(outs: Vec<crate::Tensor>) -> Result<Vec<f32>, JsError> {
    let t = outs.into_iter().next().ok_or_else(|| err(Error::InvalidModel("the model has no output".into())))?;
    t.into_f32().map_err(err)
}

fn tokens(ids: &[i32]) -> Data {
    Data::I64(ids.iter().map(|&v| v as i64).collect())
}

#[wasm_bindgen]
impl Model {
    fn wrap(inner: crate::Model) -> Model {
        Model { inner, sessions: HashMap::new(), next_id: 1 }
    }

    /// Loads an ONNX model on `backend` (`cpu`, `cpu-scalar`, `gpu`). `external` maps
    /// external-data locations to their bytes; a location it lacks fails with an `io` error that
    /// carries the location in its `location` property, so the caller can fetch it and retry.
    #[wasm_bindgen(js_name = fromOnnx)]
    pub fn from_onnx(bytes: &[u8], external: &js_sys::Map, backend: &str) -> Result<Model, JsValue> {
        let mut missing = None;
        let loaded = crate::Model::from_onnx_with_external(bytes, &mut |loc: &str| match external
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
    pub fn from_safetensors(bytes: &[u8], config_json: &str, backend: &str) -> Result<Model, JsError> {
        crate::Model::from_safetensors(bytes, config_json)
            .and_then(|m| on_backend(m, backend))
            .map(Model::wrap)
            .map_err(err)
    }

    /// A JSON description: inputs, outputs, layers, fingerprint, backend and the session plan.
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
        serde_json::json!({
            "fingerprint": self.inner.fingerprint_hex(),
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
            "input_size": first.map_or(0, |i| i.step_len()),
            "input_is_tokens": first.is_some_and(|i| i.dtype == crate::DType::I64),
            "state_len": plan.as_ref().map(|p| p.cells.iter().map(|c| c.state_len()).sum::<usize>()).unwrap_or(0),
            "sessions": plan.as_ref().err().map(|e| e.to_string()),
        })
        .to_string()
    }

    /// A new session with zero state; returns its id.
    #[wasm_bindgen(js_name = createSession)]
    pub fn create_session(&mut self) -> Result<u32, JsError> {
        let s = self.inner.create_session().map_err(err)?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.sessions.insert(id, s);
        Ok(id)
    }

    #[wasm_bindgen(js_name = dropSession)]
    pub fn drop_session(&mut self, id: u32) {
        self.sessions.remove(&id);
    }

    fn session(&mut self, id: u32) -> Result<&mut crate::Session, JsError> {
        self.sessions.get_mut(&id).ok_or_else(|| err(Error::InvalidArgument(format!("no session {id} (disposed?)"))))
    }

    /// One time step of float input; returns the model's first non-state output.
    pub fn step(&mut self, id: u32, x: &[f32]) -> Result<Vec<f32>, JsError> {
        first_output(self.session(id)?.step(one_input(Data::F32(x.to_vec()))).map_err(err)?)
    }

    /// One time step of token ids.
    #[wasm_bindgen(js_name = stepTokens)]
    pub fn step_tokens(&mut self, id: u32, ids: &[i32]) -> Result<Vec<f32>, JsError> {
        first_output(self.session(id)?.step(one_input(tokens(ids))).map_err(err)?)
    }

    /// `steps` time steps of float input, time-major.
    pub fn run(&mut self, id: u32, xs: &[f32], steps: usize) -> Result<Vec<f32>, JsError> {
        first_output(self.session(id)?.run(one_input(Data::F32(xs.to_vec())), steps).map_err(err)?)
    }

    #[wasm_bindgen(js_name = runTokens)]
    pub fn run_tokens(&mut self, id: u32, ids: &[i32], steps: usize) -> Result<Vec<f32>, JsError> {
        first_output(self.session(id)?.run(one_input(tokens(ids)), steps).map_err(err)?)
    }

    /// One step for several sessions (`x` session-major); returns the first output, session-major.
    #[wasm_bindgen(js_name = stepBatch)]
    pub fn step_batch(&mut self, ids: &[u32], x: &[f32]) -> Result<Vec<f32>, JsError> {
        self.batch(ids, Data::F32(x.to_vec()))
    }

    #[wasm_bindgen(js_name = stepBatchTokens)]
    pub fn step_batch_tokens(&mut self, ids: &[u32], x: &[i32]) -> Result<Vec<f32>, JsError> {
        self.batch(ids, tokens(x))
    }

    /// Takes the sessions out of the table for the call and puts every one back, whatever happens.
    fn batch(&mut self, ids: &[u32], data: Data) -> Result<Vec<f32>, JsError> {
        let mut taken: Vec<(u32, crate::Session)> = Vec::with_capacity(ids.len());
        for &id in ids {
            match self.sessions.remove(&id) {
                Some(s) => taken.push((id, s)),
                None => {
                    self.sessions.extend(taken);
                    return Err(err(Error::InvalidArgument(format!("session {id} is unknown or given twice"))));
                }
            }
        }
        let result = {
            let mut refs: Vec<&mut crate::Session> = taken.iter_mut().map(|(_, s)| s).collect();
            self.inner.step_batch(&mut refs, one_input(data))
        };
        self.sessions.extend(taken);
        first_output(result.map_err(err)?)
    }

    pub fn reset(&mut self, id: u32) -> Result<(), JsError> {
        self.session(id)?.reset();
        Ok(())
    }

    /// Time steps the session has consumed since creation or its last reset.
    pub fn steps(&mut self, id: u32) -> Result<f64, JsError> {
        Ok(self.session(id)?.steps() as f64)
    }

    /// The session's state as a versioned, fingerprinted, checksummed snapshot.
    #[wasm_bindgen(js_name = saveState)]
    pub fn save_state(&mut self, id: u32) -> Result<Vec<u8>, JsError> {
        self.session(id)?.save_state().map_err(err)
    }

    #[wasm_bindgen(js_name = loadState)]
    pub fn load_state(&mut self, id: u32, bytes: &[u8]) -> Result<(), JsError> {
        self.session(id)?.load_state(bytes).map_err(err)
    }
}
