//! What the benchmark page calls: one model, one session, the three ways of feeding it.

use wasm_bindgen::prelude::*;
use webrnn::{Backend, Data, Model, Session, Tensor};

fn err(e: webrnn::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// The instruction set the CPU kernels of this build use.
#[wasm_bindgen]
pub fn isa() -> String {
    webrnn::cpu::Isa::best().name().to_string()
}

#[wasm_bindgen]
pub struct BenchModel {
    model: Model,
    session: Session,
    hidden: usize,
    lstm: bool,
}

/// Writes `y` into the caller's `out` as the package's `step(x, out)` does (`Model::sync_into` in
/// src/wasm.rs): no new Float32Array per call.
fn write(y: Option<&webrnn::Tensor>, out: &js_sys::Float32Array) -> Result<(), JsError> {
    let y = y.ok_or_else(|| JsError::new("no output"))?.as_f32().map_err(err)?;
    if y.len() != out.length() as usize {
        return Err(JsError::new(&format!("out has {} values, the output {}", out.length(), y.len())));
    }
    out.copy_from(y);
    Ok(())
}

#[wasm_bindgen]
impl BenchModel {
    /// `hidden` is the layer's hidden size (= input size); `lstm` whether it has a cell state;
    /// `backend` `cpu` (f32 weights) or `cpu-int8`.
    #[wasm_bindgen(constructor)]
    pub fn new(onnx: &[u8], hidden: usize, lstm: bool, backend: &str) -> Result<BenchModel, JsError> {
        let backend = Backend::parse(backend).map_err(err)?;
        let model = Model::from_onnx(onnx).and_then(|m| m.with_backend(backend)).map_err(err)?;
        let session = model.create_session().map_err(err)?;
        Ok(BenchModel { model, session, hidden, lstm })
    }

    pub fn reset(&mut self) {
        self.session.reset();
    }

    /// One time step of one stream (batch 1), Y written into `out`.
    pub fn step_into(&mut self, x: &[f32], out: &js_sys::Float32Array) -> Result<(), JsError> {
        let y = self.session.step(vec![Data::F32(x.to_vec())]).map_err(err)?;
        write(y.first(), out)
    }

    /// `steps` time steps of one stream in one call, Y written into `out`.
    pub fn run_into(&mut self, xs: &[f32], steps: usize, out: &js_sys::Float32Array) -> Result<(), JsError> {
        let y = self.session.run(vec![Data::F32(xs.to_vec())], steps).map_err(err)?;
        write(y.first(), out)
    }

    /// The whole graph on one step of `batch` streams from the given state, Y_h written into `out`.
    pub fn batch_into(&self, x: &[f32], h0: &[f32], batch: usize, out: &js_sys::Float32Array) -> Result<(), JsError> {
        let h = self.hidden;
        let t = |data: &[f32], shape: Vec<usize>| Tensor::from_f32(shape, data.to_vec()).map_err(err);
        let mut inputs = vec![t(x, vec![1, batch, h])?, t(h0, vec![1, batch, h])?];
        if self.lstm {
            inputs.push(t(h0, vec![1, batch, h])?);
        }
        write(self.model.run_graph(inputs).map_err(err)?.get(1), out)
    }
}

/// `rounds` rounds of twelve independent four-lane multiply-adds (`acc = acc·m + a`), all in
/// registers, on this build's vector code: the page times it for the floating-point peak of the
/// variant on this machine (`2·4·12·rounds` flops; fused where the build has relaxed SIMD). Returns a
/// sum of the accumulators so that none of the work can be dropped.
#[wasm_bindgen]
pub fn peak_kernel(rounds: u32, m: f32, a: f32) -> f32 {
    use webrnn::cpu::{simd, Isa};
    match Isa::best() {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
        Isa::RelaxedSimd => peak::<simd::RelaxedSimd>(rounds, m, a),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => peak::<simd::Simd128>(rounds, m, a),
        _ => peak::<simd::Portable>(rounds, m, a),
    }
}

fn peak<S: webrnn::cpu::simd::Simd>(rounds: u32, m: f32, a: f32) -> f32 {
    let (mv, av) = (S::splat(m), S::splat(a));
    let mut acc = [S::splat(0.0); 12];
    for (i, v) in acc.iter_mut().enumerate() {
        *v = S::splat(i as f32);
    }
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = S::madd(*v, mv, av);
        }
    }
    let mut out = [0f32; 4];
    let sum = acc.iter().fold(S::splat(0.0), |s, &v| S::add(s, v));
    S::store(sum, &mut out);
    out.iter().sum()
}

/// A real-world model (tests/data/realworld) called chunk by chunk, its state carried by the
/// session, as the package's `loadModel(source, { inputs, state })` and `step(x, out)` do.
#[wasm_bindgen]
pub struct ChunkModel {
    session: Session,
}

#[wasm_bindgen]
impl ChunkModel {
    /// `fixed`: `name=value` pairs (integer inputs such as Silero's `sr`), comma-separated;
    /// `state`: `input=output` pairs, comma-separated; `backend` as [`BenchModel::new`].
    #[wasm_bindgen(constructor)]
    pub fn new(onnx: &[u8], fixed: &str, state: &str, backend: &str) -> Result<ChunkModel, JsError> {
        let pairs = |s: &str| -> Vec<(String, String)> {
            s.split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .collect()
        };
        let mut options = webrnn::LoadOptions::default();
        for (name, value) in pairs(fixed) {
            let v: i64 = value.parse().map_err(|_| JsError::new(&format!("fixed input {name}={value}: not an integer")))?;
            options = options.input(&name, Tensor::from_i64(vec![], vec![v]).map_err(err)?);
        }
        for (input, output) in pairs(state) {
            options = options.state(&input, &output);
        }
        let backend = Backend::parse(backend).map_err(err)?;
        let model = Model::from_onnx_with(onnx, &options).and_then(|m| m.with_backend(backend)).map_err(err)?;
        let session = model.create_session().map_err(err)?;
        Ok(ChunkModel { session })
    }

    pub fn reset(&mut self) {
        self.session.reset();
    }

    /// One call on chunk `x`: the model's first output that is not state, written into `out`.
    pub fn step_into(&mut self, x: &[f32], out: &js_sys::Float32Array) -> Result<(), JsError> {
        let y = self.session.step(vec![Data::F32(x.to_vec())]).map_err(err)?;
        write(y.first(), out)
    }

    /// [`ChunkModel::step_into`] returning a new array (for the page's check, which learns the
    /// output's length from it).
    pub fn step(&mut self, x: &[f32]) -> Result<Vec<f32>, JsError> {
        let y = self.session.step(vec![Data::F32(x.to_vec())]).map_err(err)?;
        Ok(y.first().ok_or_else(|| JsError::new("no output"))?.as_f32().map_err(err)?.to_vec())
    }
}
