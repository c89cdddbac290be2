// The bodies of the fuzz targets, shared with `tests/fuzz_regressions.rs` (which runs them on
// every committed input that once failed): each feeds the bytes to a loader and, where that
// loads, does what a caller would next. Every result must be a value or a typed error.

use std::sync::OnceLock;

use webrnn::{DType, Data, Model};

/// Elements per input a fuzzed model is stepped with at most (its shapes come from the input).
const MAX_FEED: usize = 1 << 16;

/// The ONNX loader (protobuf decoding, import, constant folding of the real-world operators,
/// session planning); a model that loads is stepped.
pub fn onnx(data: &[u8]) {
    if let Ok(model) = Model::from_onnx(data) {
        exercise(&model);
    }
}

/// The safetensors + config loader: the config JSON, a NUL byte, then the safetensors file.
pub fn safetensors(data: &[u8]) {
    let (config, weights) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(config) = std::str::from_utf8(config) else { return };
    if let Ok(model) = Model::from_safetensors(weights, config) {
        exercise(&model);
    }
}

/// The snapshot decoder: a session of a fixed model (the golden embedding GRU) loads the bytes as
/// its state. Bytes starting with 0xFF are edits of a real snapshot instead (triples of a 16-bit
/// offset and a byte XORed in there), so the fuzzer gets past the header checks from the start.
pub fn snapshot(data: &[u8]) {
    let Some((model, snap)) = snapshot_fixture() else { return };
    let bytes = match data.split_first() {
        Some((0xff, edits)) => {
            let mut b = snap.clone();
            for e in edits.chunks_exact(3) {
                let at = u16::from_le_bytes([e[0], e[1]]) as usize % snap.len().max(1);
                if let Some(x) = b.get_mut(at) {
                    *x ^= e[2];
                }
            }
            b
        }
        _ => data.to_vec(),
    };
    let Ok(mut s) = model.create_session() else { return };
    if s.load_state(&bytes).is_ok() {
        let _ = s.step(vec![Data::I64(vec![5])]);
        let _ = s.save_state();
    }
}

fn snapshot_fixture() -> Option<&'static (Model, Vec<u8>)> {
    static F: OnceLock<Option<(Model, Vec<u8>)>> = OnceLock::new();
    F.get_or_init(|| {
        let model = Model::from_onnx(include_bytes!("../../tests/data/golden/dynamo_gru_embed/model.onnx")).ok()?;
        let mut s = model.create_session().ok()?;
        for id in [3, 7, 11] {
            s.step(vec![Data::I64(vec![id])]).ok()?;
        }
        let snap = s.save_state().ok()?;
        Some((model, snap))
    })
    .as_ref()
}

/// Inspects `model` and, where sessions are possible, steps one twice on small inputs and
/// round-trips its state.
fn exercise(model: &Model) {
    let _ = model.fingerprint_hex();
    let Ok(plan) = model.session_plan() else { return };
    let n: Vec<usize> = plan.inputs.iter().map(|p| p.step_len()).collect();
    if n.iter().any(|&n| n > MAX_FEED) {
        return;
    }
    let feed: Vec<Data> = plan
        .inputs
        .iter()
        .zip(&n)
        .map(|(p, &n)| if p.dtype == DType::I64 { Data::I64(vec![1; n]) } else { Data::F32(vec![0.5; n]) })
        .collect();
    if let Ok(mut s) = model.create_session() {
        let _ = s.step(feed.clone());
        let _ = s.step(feed);
        if let Ok(snap) = s.save_state() {
            let _ = s.load_state(&snap);
        }
    }
}
