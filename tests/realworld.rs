//! The recurrent models web apps ship, exactly as they ship them (`tests/data/realworld`, made by
//! `scripts/make_realworld.py` from the registry packages): each one loaded with the load options
//! its README line gives, streamed through ONE session call by call as its package's own caller
//! feeds it, and compared with onnxruntime's per-call outputs at the real-world tolerance
//! (atol 1e-4, rtol 1e-3). The session's state is checked against onnxruntime's state outputs, and
//! a snapshot taken mid-stream continues in a fresh session.

mod common;
#[cfg(feature = "gpu")]
mod gpu_common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;
use webrnn::{Backend, Data, LoadOptions, Model, Tensor};

const ATOL: f32 = 1e-4;
const RTOL: f32 = 1e-3;

/// The load options of each case beyond its fixed inputs: the state pairs the runtime does not find
/// by itself (DTLN's tf2onnx names pair nothing).
fn declared_state(case: &str) -> &'static [(&'static str, &'static str)] {
    match case {
        "dtln_model_1" => &[("input_3", "tf_op_layer_stack_2")],
        "dtln_model_2" => &[("input_5", "tf_op_layer_stack_5")],
        _ => &[],
    }
}

fn dir() -> PathBuf {
    data_dir().join("realworld")
}

fn case_json(case: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(case).join("case.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The fixed inputs as the JS API would take them: plain numbers (or arrays) with a declared shape.
fn options(case: &str, json: &Value) -> LoadOptions {
    let mut o = LoadOptions::default();
    if let Some(fixed) = json["fixed_inputs"].as_object() {
        for (name, spec) in fixed {
            let shape: Vec<usize> =
                spec["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            let values: Vec<f64> = match &spec["value"] {
                Value::Array(a) => a.iter().map(|v| v.as_f64().unwrap()).collect(),
                v => vec![v.as_f64().unwrap()],
            };
            let t = if spec["dtype"].as_str().unwrap().starts_with("int") {
                Tensor::from_i64(shape, values.iter().map(|&v| v as i64).collect())
            } else {
                Tensor::from_f32(shape, values.iter().map(|&v| v as f32).collect())
            };
            o = o.input(name, t.unwrap());
        }
    }
    for (i, out) in declared_state(case) {
        o = o.state(i, out);
    }
    o
}

/// Call `k` of a stacked `[calls, ...]` tensor.
fn call(t: &Tensor, k: usize) -> Tensor {
    let per = t.len() / t.shape()[0];
    let shape = t.shape()[1..].to_vec();
    match t.data() {
        Data::F32(v) => Tensor::from_f32(shape, v[k * per..(k + 1) * per].to_vec()).unwrap(),
        Data::I64(v) => Tensor::from_i64(shape, v[k * per..(k + 1) * per].to_vec()).unwrap(),
    }
}

fn file(case: &str, json: &Value, name: &str) -> (Tensor, Vec<usize>) {
    let f = &json["files"][name];
    let t = read_tensor(&dir().join(case).join(f["file"].as_str().unwrap()));
    let calls: Vec<usize> = match &f["calls"] {
        Value::Array(a) => a.iter().map(|c| c.as_u64().unwrap() as usize).collect(),
        _ => (0..t.shape()[0]).collect(),
    };
    (t, calls)
}

fn names(json: &Value, key: &str) -> Vec<String> {
    json[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// Puts a loaded model on the backend under test.
type On<'a> = &'a dyn Fn(Model) -> webrnn::Result<Model>;

/// Streams one case through a session on `on`'s backend; returns the max |diff| of the outputs.
fn stream(case: &str, on: On<'_>) -> Result<f32, String> {
    let json = case_json(case);
    let model_path: &Path = &dir().join(json["model"].as_str().unwrap());
    let bytes = std::fs::read(model_path).unwrap();
    let model =
        Model::from_onnx_with(&bytes, &options(case, &json)).and_then(on).map_err(|e| format!("{case}: load: {e}"))?;
    let calls = json["calls"].as_u64().unwrap() as usize;
    let streamed: Vec<(Tensor, Vec<usize>)> = names(&json, "streamed").iter().map(|n| file(case, &json, n)).collect();
    let outputs: Vec<(String, Tensor)> =
        names(&json, "outputs").iter().map(|n| (n.clone(), file(case, &json, n).0)).collect();
    let states: Vec<(String, Tensor, Vec<usize>)> = json["state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let out = s["output"].as_str().unwrap().to_string();
            let (t, at) = file(case, &json, &out);
            (out, t, at)
        })
        .collect();
    let plan = model.session_plan().map_err(|e| format!("{case}: {e}"))?;
    let pairs = &plan.calls.as_ref().ok_or_else(|| format!("{case}: not planned as a chunk-by-chunk model"))?.states;
    let mut session = model.create_session().map_err(|e| format!("{case}: {e}"))?;
    let mut worst = 0f32;
    for k in 0..calls {
        if k == calls / 2 {
            // A snapshot continues in a fresh session.
            let snap = session.save_state().map_err(|e| format!("{case}: save: {e}"))?;
            session = model.create_session().unwrap();
            session.load_state(&snap).map_err(|e| format!("{case}: load_state: {e}"))?;
        }
        let x: Vec<Data> = streamed.iter().map(|(t, _)| call(t, k).into_data()).collect();
        let got = session.step(x).map_err(|e| format!("{case}: call {k}: {e}"))?;
        if got.len() != outputs.len() {
            return Err(format!("{case}: {} outputs, expected {}", got.len(), outputs.len()));
        }
        for (g, (name, want)) in got.iter().zip(&outputs) {
            let want = call(want, k);
            let g = g.clone().reshaped(want.shape().to_vec()).map_err(|e| format!("{case}: {name}: {e}"))?;
            worst = worst.max(compare(&format!("{case} call {k} {name}"), &g, &want, ATOL, RTOL)?);
        }
        let state = session.state().unwrap();
        for (out, t, at) in &states {
            if let Some(pos) = at.iter().position(|&c| c == k) {
                let want = call(t, pos);
                let pair = pairs
                    .iter()
                    .find(|p| &p.output_name == out)
                    .ok_or_else(|| format!("{case}: {out} is not state"))?;
                let got = &state[pair.offset..pair.offset + want.len()];
                let got = Tensor::from_f32(want.shape().to_vec(), got.to_vec()).unwrap();
                compare(&format!("{case} call {k} state {out}"), &got, &want, ATOL, RTOL)?;
            }
        }
    }
    Ok(worst)
}

fn cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

fn stream_all(label: &str, on: On<'_>) {
    let filter = std::env::var("WEBRNN_REALWORLD").unwrap_or_default();
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 10, "found {} real-world cases", all.len());
    for case in all.iter().filter(|c| filter.is_empty() || filter.split(',').any(|f| c.contains(f))) {
        match stream(case, on) {
            Ok(err) => println!("{case:<24} {label} ok (max |diff| {err:.2e})"),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{} real-world cases failed on {}:\n{}", failures.len(), label, failures.join("\n"));
}

#[test]
fn real_world_models_stream_through_sessions_on_cpu() {
    stream_all("cpu", &|m| m.with_backend(Backend::Cpu));
}

#[test]
fn real_world_models_stream_through_sessions_on_cpu_scalar() {
    stream_all("cpu-scalar", &|m| m.with_backend(Backend::CpuScalar));
}

/// The recurrent layers on the GPU (lavapipe here), the rest on the CPU: the GPU tolerance is the
/// real-world one, so the same comparison holds.
#[cfg(feature = "gpu")]
#[test]
fn real_world_models_stream_through_sessions_on_gpu() {
    let Some(_) = gpu_common::gpu_or_skip("real_world_models_stream_through_sessions_on_gpu") else { return };
    stream_all("gpu", &|m| m.with_backend(Backend::Gpu));
}

/// Specialised to the chunk it is called with, Silero v5's `If`s on its batch and time axes fold:
/// its LSTM joins the flat list of nodes (where the backend's kernels run it with packed weights),
/// and the specialised graph computes what the graph as shipped does.
#[test]
fn silero_v5_specialised_to_its_chunk_has_no_branch_left() {
    let json = case_json("silero_v5");
    let bytes = std::fs::read(dir().join(json["model"].as_str().unwrap())).unwrap();
    let model = Model::from_onnx_with(&bytes, &options("silero_v5", &json)).unwrap();
    let g = model.graph();
    let count = |g: &webrnn::graph::Graph, name: &str| g.nodes.iter().filter(|n| n.op.name() == name).count();
    assert!(count(g, "If") > 0 && count(g, "LSTM") == 0, "the graph as loaded keeps its shape-dependent Ifs");
    let (x, _) = file("silero_v5", &json, "input");
    let x = call(&x, 3);
    let state = Tensor::from_f32(vec![2, 1, 128], (0..256).map(|i| (i as f32 * 0.37).sin() * 0.5).collect()).unwrap();
    let shapes: Vec<_> =
        [&x, &state].iter().zip(&g.inputs).map(|(t, d)| (d.id, t.dtype(), t.shape().to_vec())).collect();
    let s = webrnn::onnx::fold::specialize(g, &shapes);
    assert_eq!(count(&s, "If"), 0, "Ifs left after specialisation");
    assert_eq!(count(&s, "LSTM"), 1);
    // The encoder's Conv + Relu pairs are one node each; the decoder's Relu reads no Conv.
    assert_eq!((count(g, "Relu") > 1, count(&s, "Relu")), (true, 1), "Relu nodes left after specialisation");
    let want = g.run(vec![x.clone(), state.clone()]).unwrap();
    let got = s.run(vec![x.clone(), state.clone()]).unwrap();
    for (g, w) in got.iter().zip(&want) {
        compare("specialised silero_v5", g, w, 1e-6, 1e-6).unwrap();
    }
    // Renumbered to the values its flat list names (what sessions run): the same outputs, bit for bit.
    let mut c = s.clone();
    assert!(c.compact(), "a graph with no If compacts");
    assert!(c.value_count() * 3 < s.value_count(), "{} values of {} left", c.value_count(), s.value_count());
    assert_eq!(c.run(vec![x, state]).unwrap(), got);
    assert!(!g.clone().compact(), "a graph with Ifs is left as it is");
}

/// `Model::placement` names where each recurrent node runs and where the rest does.
#[test]
fn placement_names_each_recurrent_node_and_the_rest() {
    for (case, backend) in [("silero_v5", Backend::Cpu), ("dtln_model_1", Backend::CpuScalar)] {
        let json = case_json(case);
        let bytes = std::fs::read(dir().join(json["model"].as_str().unwrap())).unwrap();
        let model = Model::from_onnx_with(&bytes, &options(case, &json)).unwrap().with_backend(backend).unwrap();
        let place = model.placement();
        let (last, layers) = place.split_last().unwrap();
        assert!(
            last.node.is_empty() && last.op.starts_with("other operators") && last.device.starts_with("cpu"),
            "{case}: {place:?}"
        );
        assert_eq!(layers.len(), 2, "{case}: {place:?}");
        assert!(layers.iter().all(|p| p.op == "LSTM" && p.device.starts_with("cpu (")), "{case}: {place:?}");
    }
}
