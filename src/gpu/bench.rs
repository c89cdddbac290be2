//! Sessions stepped per second: one time step of B sessions through one recurrent layer (what
//! `Model::step_batch` does per layer), on the GPU and on the CPU backend; and whole
//! `Model::step_batch` calls of B GPU sessions, whose state stays on the device between calls.
//! Native only; run with `cargo run --release --example gpu_bench [H] [B...]`.

use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::cell::{CellKind, Direction, RecurrentInputs, RecurrentSpec};
use crate::error::Result;
use crate::graph::{Graph, Node, Op, ValueDecl};
use crate::model::{Model, Source};
use crate::tensor::{DType, Data, Tensor};

/// One measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    pub backend: Backend,
    pub cell: CellKind,
    pub hidden: usize,
    pub batch: usize,
    pub steps: usize,
    pub sessions_per_second: f64,
}

/// A graph of one layer (input size = hidden size) with deterministic weights, and its X/h0/c0.
fn layer(cell: CellKind, hidden: usize, batch: usize) -> Result<(Graph, RecurrentSpec, [Tensor; 3])> {
    let g = cell.gates();
    let spec = RecurrentSpec::new(cell, Direction::Forward, hidden);
    let wave = |n: usize, scale: f32| (0..n).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * scale).collect();
    let s = 1.0 / (hidden as f32).sqrt();
    let w = Tensor::from_f32(vec![1, g * hidden, hidden], wave(g * hidden * hidden, s))?;
    let r = Tensor::from_f32(vec![1, g * hidden, hidden], wave(g * hidden * hidden, s))?;
    let b = Tensor::from_f32(vec![1, 2 * g * hidden], wave(2 * g * hidden, 0.1))?;
    let x = Tensor::from_f32(vec![1, batch, hidden], wave(batch * hidden, 1.0))?;
    let h0 = Tensor::from_f32(vec![1, batch, hidden], wave(batch * hidden, 0.5))?;
    let c0 = Tensor::from_f32(vec![1, batch, hidden], wave(batch * hidden, 0.5))?;
    let names = ["X", "W", "R", "B", "h0", "c0", "Y", "Y_h", "Y_c"];
    let graph = Graph {
        value_names: names.iter().map(|s| s.to_string()).collect(),
        nodes: vec![Node {
            name: "layer".into(),
            op: Op::Recurrent(spec.clone()),
            inputs: vec![Some(0), Some(1), Some(2), Some(3), None, Some(4), Some(5)],
            outputs: vec![Some(6), Some(7), Some(8)],
        }],
        // [T, B, H] with symbolic T and B: what sessions take apart.
        inputs: [0, 4, 5]
            .iter()
            .map(|&id| {
                let dims = if id == 0 { vec![None, None, Some(hidden)] } else { vec![Some(1), None, Some(hidden)] };
                ValueDecl { name: names[id].into(), id, dtype: Some(DType::F32), dims: Some(dims) }
            })
            .collect(),
        outputs: [6, 7, 8]
            .iter()
            .map(|&id| ValueDecl { name: names[id].into(), id, dtype: Some(DType::F32), dims: None })
            .collect(),
        constants: vec![None, Some(w), Some(r), Some(b), None, None, None, None, None],
    };
    Ok((graph, spec, [x, h0, c0]))
}

/// Steps `batch` sessions on `backend` for at least `min_time` (and at least twice, after one
/// warm-up step) and reports sessions stepped per second.
pub fn step_throughput(
    backend: Backend,
    cell: CellKind,
    hidden: usize,
    batch: usize,
    min_time: Duration,
) -> Result<BenchRow> {
    let (graph, spec, [x, h0, c0]) = layer(cell, hidden, batch)?;
    let kernels = backend.kernels(&graph.layers())?;
    let c = |i: usize| graph.constants[i].as_ref();
    let inputs = RecurrentInputs {
        x: &x,
        w: c(1).unwrap_or(&x),
        r: c(2).unwrap_or(&x),
        b: c(3),
        sequence_lens: None,
        initial_h: Some(&h0),
        initial_c: matches!(cell, CellKind::Lstm { .. }).then_some(&c0),
        p: None,
        proj: None,
        resident: None,
    };
    kernels.run(0, &spec, &inputs)?;
    let started = Instant::now();
    let mut steps = 0;
    while steps < 2 || started.elapsed() < min_time {
        kernels.run(0, &spec, &inputs)?;
        steps += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(BenchRow { backend, cell, hidden, batch, steps, sessions_per_second: (steps * batch) as f64 / secs })
}

/// `Model::step_batch` of `batch` GPU sessions on the one-layer model, as an app calls it: the
/// sessions' state stays in the layer's state pool from call to call (read back every
/// [`crate::session::JOURNAL_CALLS`] calls). Sessions stepped per second.
pub fn session_throughput(cell: CellKind, hidden: usize, batch: usize, min_time: Duration) -> Result<f64> {
    let (graph, _, [x, ..]) = layer(cell, hidden, batch)?;
    let model = Model::from_graph(graph, Source::StateDict).with_backend(Backend::Gpu)?;
    let mut sessions = (0..batch).map(|_| model.create_session()).collect::<Result<Vec<_>>>()?;
    let x = Data::F32(x.as_f32()?.to_vec());
    let mut step = || model.step_batch(&mut sessions.iter_mut().collect::<Vec<_>>(), vec![x.clone()]);
    step()?;
    let started = Instant::now();
    let mut steps = 0;
    while steps < 2 || started.elapsed() < min_time {
        step()?;
        steps += 1;
    }
    Ok((steps * batch) as f64 / started.elapsed().as_secs_f64())
}

/// The GPU-vs-CPU table: one row per (cell, batch), LSTM and GRU at hidden size `hidden`.
pub fn report(hidden: usize, batches: &[usize], min_time: Duration) -> Result<String> {
    let mut out = format!(
        "{:<6} {:>6} {:>6} {:>16} {:>16} {:>8} {:>22}\n",
        "cell", "H", "B", "GPU sessions/s", "CPU sessions/s", "GPU/CPU", "GPU step_batch sess/s"
    );
    for cell in [CellKind::Lstm { input_forget: false }, CellKind::Gru { linear_before_reset: true }] {
        for &batch in batches {
            let gpu = step_throughput(Backend::Gpu, cell, hidden, batch, min_time)?;
            let cpu = step_throughput(Backend::Cpu, cell, hidden, batch, min_time)?;
            let resident = session_throughput(cell, hidden, batch, min_time)?;
            out.push_str(&format!(
                "{:<6} {:>6} {:>6} {:>16.0} {:>16.0} {:>8.2} {:>22.0}\n",
                cell.op_name(),
                hidden,
                batch,
                gpu.sessions_per_second,
                cpu.sessions_per_second,
                gpu.sessions_per_second / cpu.sessions_per_second,
                resident
            ));
        }
    }
    Ok(out)
}
