//! Sessions on the GPU backend: many sessions stepped together (`step_batch`), one session stepped
//! alone, and whole sequences (`run`) give the CPU's outputs and states (atol 1e-4, rtol 1e-3).

mod common;
mod gpu_common;

use gpu_common::*;
use webrnn::{Backend, DType, Data, Model, Session};

fn inputs(model: &Model, sessions: usize, steps: usize, rng: &mut Rng) -> Vec<Data> {
    let plan = model.session_plan().unwrap();
    plan.inputs
        .iter()
        .map(|p| {
            let n = p.step_len() * sessions * steps;
            match p.dtype {
                DType::I64 => Data::I64((0..n).map(|_| (rng.next_u32() % 5) as i64).collect()),
                _ => Data::F32(rng.vec(n, 2.0)),
            }
        })
        .collect()
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= GPU_ATOL + GPU_RTOL * b.abs(), "{what}[{i}]: {a} vs {b}");
    }
}

#[test]
fn gpu_sessions_step_like_cpu_sessions() {
    if gpu_or_skip("gpu_sessions_step_like_cpu_sessions").is_none() {
        return;
    }
    for name in ["legacy_lstm_step_b3_op14", "legacy_gru_embed_op14", "sd_rnn_relu_softmax", "sd_gru_embed_head"] {
        let dir = common::data_dir().join("golden").join(name);
        let cpu = if dir.join("model.onnx").exists() {
            Model::from_onnx_file(&dir.join("model.onnx")).unwrap()
        } else {
            let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
            Model::from_safetensors(&std::fs::read(dir.join("model.safetensors")).unwrap(), &cfg).unwrap()
        };
        if !cpu.session_plan().unwrap().streamable {
            continue;
        }
        let gpu = cpu.with_backend(Backend::Gpu).unwrap();
        assert_eq!(gpu.backend(), Backend::Gpu);
        let mut rng = Rng::new(5);
        let batch = 11;
        let mut on_cpu: Vec<Session> = (0..batch).map(|_| cpu.create_session().unwrap()).collect();
        let mut on_gpu: Vec<Session> = (0..batch).map(|_| gpu.create_session().unwrap()).collect();
        for step in 0..4 {
            let x = inputs(&cpu, batch, 1, &mut rng);
            let want = cpu.step_batch(&mut on_cpu.iter_mut().collect::<Vec<_>>(), x.clone()).unwrap();
            let got = gpu.step_batch(&mut on_gpu.iter_mut().collect::<Vec<_>>(), x).unwrap();
            for (o, (g, w)) in got.iter().zip(&want).enumerate() {
                close(&format!("{name} step {step} output {o}"), g.as_f32().unwrap(), w.as_f32().unwrap());
            }
        }
        for (b, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
            close(&format!("{name} session {b} state"), g.state(), c.state());
        }
        // One session alone, a whole sequence.
        let x = inputs(&cpu, 1, 30, &mut rng);
        let want = on_cpu[0].run(x.clone(), 30).unwrap();
        let got = on_gpu[0].run(x, 30).unwrap();
        for (o, (g, w)) in got.iter().zip(&want).enumerate() {
            close(&format!("{name} run output {o}"), g.as_f32().unwrap(), w.as_f32().unwrap());
        }
        close(&format!("{name} state after run"), on_gpu[0].state(), on_cpu[0].state());
        // The asynchronous API (the browser's only way) gives the same results natively.
        let x = inputs(&cpu, batch, 1, &mut rng);
        let want = cpu.step_batch(&mut on_cpu.iter_mut().collect::<Vec<_>>(), x.clone()).unwrap();
        let got = webrnn::gpu::block_on(gpu.step_batch_async(&mut on_gpu.iter_mut().collect::<Vec<_>>(), x)).unwrap();
        for (o, (g, w)) in got.iter().zip(&want).enumerate() {
            close(&format!("{name} async step output {o}"), g.as_f32().unwrap(), w.as_f32().unwrap());
        }
        println!("{name}: {batch} sessions x 4 steps and a 30-step run agree");
    }
}
