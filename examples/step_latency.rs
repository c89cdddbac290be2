//! Per-call latency of `Session::step` (one session, one time step) on a model, natively: the
//! session/graph overhead around the kernels that the browser's "stream" mode pays on every call.
//!
//! `cargo run --release --example step_latency -- MODEL.onnx [cpu|cpu-int8|cpu-scalar] [steps]`

use std::time::Instant;

use webrnn::{Backend, DType, Data, Model};

fn main() -> webrnn::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().map(String::as_str).unwrap_or("www/models/text-gru.onnx");
    let backend = Backend::parse(args.get(1).map(String::as_str).unwrap_or("cpu"))?;
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let model = Model::from_onnx_file(path.as_ref())?.with_backend(backend)?;
    let plan = model.session_plan()?;
    let feed = || -> Vec<Data> {
        plan.inputs
            .iter()
            .map(|p| match p.dtype {
                DType::I64 => Data::I64(vec![1; p.step_len()]),
                DType::F32 => Data::F32(vec![0.25; p.step_len()]),
            })
            .collect()
    };
    let mut s = model.create_session()?;
    for _ in 0..steps / 10 {
        s.step(feed())?;
    }
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        s.step(feed())?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!("{path} on {}: step p50 {:.2} µs, p95 {:.2} µs over {steps} steps", backend.name(), q(0.5), q(0.95));
    Ok(())
}
