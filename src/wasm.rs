//! The JavaScript boundary: thin `#[wasm_bindgen]` wrappers over [`crate::Model`] and
//! [`crate::Session`]. No logic lives here; every error becomes a JS `Error` whose message starts
//! with the stable error code (`"shape: ..."`), and no call can panic.

use wasm_bindgen::prelude::*;

use crate::{Data, Error};

fn err(e: Error) -> JsError {
    JsError::new(&format!("{}: {e}", e.code()))
}

#[wasm_bindgen]
pub struct Model {
    inner: crate::Model,
}

#[wasm_bindgen]
impl Model {
    /// Loads an ONNX model whose weights are inside the file.
    #[wasm_bindgen(js_name = fromOnnx)]
    pub fn from_onnx(bytes: &[u8]) -> Result<Model, JsError> {
        crate::Model::from_onnx(bytes).map(|inner| Model { inner }).map_err(err)
    }

    /// Loads a PyTorch state dict (safetensors bytes) with its JSON config.
    #[wasm_bindgen(js_name = fromSafetensors)]
    pub fn from_safetensors(bytes: &[u8], config_json: &str) -> Result<Model, JsError> {
        crate::Model::from_safetensors(bytes, config_json).map(|inner| Model { inner }).map_err(err)
    }

    /// A JSON description: inputs, outputs, layers, fingerprint, session plan.
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
        serde_json::json!({
            "fingerprint": self.inner.fingerprint_hex(),
            "inputs": g.inputs.iter().map(decl).collect::<Vec<_>>(),
            "outputs": g.outputs.iter().map(decl).collect::<Vec<_>>(),
            "layers": layers,
            "streamable": plan.as_ref().map(|p| p.streamable).unwrap_or(false),
            "sessions": plan.as_ref().err().map(|e| e.to_string()),
        })
        .to_string()
    }

    #[wasm_bindgen(js_name = createSession)]
    pub fn create_session(&self) -> Result<Session, JsError> {
        self.inner.create_session().map(|inner| Session { inner }).map_err(err)
    }

    /// Values in one time step of the first real input, for one session.
    #[wasm_bindgen(js_name = inputSize)]
    pub fn input_size(&self) -> Result<usize, JsError> {
        let p = self.inner.session_plan().map_err(err)?;
        Ok(p.inputs.first().map_or(0, |i| i.step_len()))
    }

    /// Whether the first real input takes integer token ids.
    #[wasm_bindgen(js_name = inputIsTokens)]
    pub fn input_is_tokens(&self) -> Result<bool, JsError> {
        let p = self.inner.session_plan().map_err(err)?;
        Ok(p.inputs.first().is_some_and(|i| i.dtype == crate::DType::I64))
    }
}

#[wasm_bindgen]
pub struct Session {
    inner: crate::Session,
}

fn first_output(outs: Vec<crate::Tensor>) -> Result<Vec<f32>, JsError> {
    let t = outs.into_iter().next().ok_or_else(|| err(Error::InvalidModel("the model has no output".into())))?;
    t.into_f32().map_err(err)
}

#[wasm_bindgen]
impl Session {
    /// One time step of float input; returns the model's first non-state output.
    pub fn step(&mut self, x: &[f32]) -> Result<Vec<f32>, JsError> {
        first_output(self.inner.step(vec![Data::F32(x.to_vec())]).map_err(err)?)
    }

    /// One time step of token ids.
    #[wasm_bindgen(js_name = stepTokens)]
    pub fn step_tokens(&mut self, ids: &[i32]) -> Result<Vec<f32>, JsError> {
        first_output(self.inner.step(vec![Data::I64(ids.iter().map(|&v| v as i64).collect())]).map_err(err)?)
    }

    pub fn reset(&mut self) {
        self.inner.reset();
    }

    #[wasm_bindgen(js_name = saveState)]
    pub fn save_state(&self) -> Result<Vec<u8>, JsError> {
        self.inner.save_state().map_err(err)
    }

    #[wasm_bindgen(js_name = loadState)]
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        self.inner.load_state(bytes).map_err(err)
    }
}
