//! Per-call latency of the real-world models (`tests/data/realworld`), natively: one session,
//! one chunk per call with the state carried, as `tests/realworld.rs` streams them.
//!
//! `cargo run --release --example realworld_latency -- [case,...] [cpu|cpu-scalar] [rounds]`

use std::time::Instant;

use webrnn::{Backend, Data, LoadOptions, Model, Tensor};

fn main() -> webrnn::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases =
        args.first().map(String::as_str).unwrap_or("silero_v5,silero_legacy,dtln_model_1,dtln_model_2,gtcrn_simple");
    let backend = Backend::parse(args.get(1).map(String::as_str).unwrap_or("cpu"))?;
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/realworld");
    for case in cases.split(',') {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(case).join("case.json")).unwrap()).unwrap();
        let mut o = LoadOptions::default();
        for (name, spec) in json["fixed_inputs"].as_object().into_iter().flatten() {
            let v = spec["value"].as_f64().or_else(|| spec["value"][0].as_f64()).unwrap_or(0.0);
            let shape = if spec["value"].is_array() { vec![1] } else { vec![] };
            o = o.input(name, Tensor::from_i64(shape, vec![v as i64])?);
        }
        if case == "dtln_model_1" {
            o = o.state("input_3", "tf_op_layer_stack_2");
        }
        if case == "dtln_model_2" {
            o = o.state("input_5", "tf_op_layer_stack_5");
        }
        let bytes = std::fs::read(dir.join(json["model"].as_str().unwrap())).unwrap();
        let model = Model::from_onnx_with(&bytes, &o)?.with_backend(backend)?;
        let streamed: Vec<String> =
            json["streamed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        let inputs: Vec<Tensor> = streamed
            .iter()
            .map(|n| {
                webrnn::onnx::decode_tensor(
                    &std::fs::read(dir.join(case).join(json["files"][n]["file"].as_str().unwrap())).unwrap(),
                )
            })
            .collect::<webrnn::Result<_>>()?;
        let calls = inputs[0].shape()[0];
        let chunk = |k: usize| -> Vec<Data> {
            inputs
                .iter()
                .map(|t| {
                    let per = t.len() / calls;
                    Data::F32(t.as_f32().unwrap()[k * per..(k + 1) * per].to_vec())
                })
                .collect()
        };
        let mut s = model.create_session()?;
        let mut best = f64::MAX;
        for _ in 0..rounds {
            s.reset();
            let t = Instant::now();
            for k in 0..calls {
                s.step(chunk(k))?;
            }
            best = best.min(t.elapsed().as_secs_f64() * 1e6 / calls as f64);
        }
        println!("{case:<16} {}: {best:8.1} µs per call (best of {rounds} rounds of {calls} calls)", backend.name());
    }
    Ok(())
}
