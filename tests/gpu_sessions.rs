//! Sessions on the GPU backend: many sessions stepped together (`step_batch`), one session stepped
//! alone, and whole sequences (`run`) give the CPU's outputs and states (atol 1e-4, rtol 1e-3).
//! Native only: it blocks on the device (on wasm32, `wasm-pack test` builds it empty).
#![cfg(not(target_arch = "wasm32"))]

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

fn load(name: &str) -> Model {
    let dir = common::data_dir().join("golden").join(name);
    if dir.join("model.onnx").exists() {
        Model::from_onnx_file(&dir.join("model.onnx")).unwrap()
    } else {
        let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
        Model::from_safetensors(&std::fs::read(dir.join("model.safetensors")).unwrap(), &cfg).unwrap()
    }
}

/// One step of every session on both models; the outputs must agree.
fn step_both(what: &str, cpu: &Model, gpu: &Model, on_cpu: &mut [Session], on_gpu: &mut [Session], rng: &mut Rng) {
    let x = inputs(cpu, on_cpu.len(), 1, rng);
    let want = cpu.step_batch(&mut on_cpu.iter_mut().collect::<Vec<_>>(), x.clone()).unwrap();
    let got = gpu.step_batch(&mut on_gpu.iter_mut().collect::<Vec<_>>(), x).unwrap();
    for (o, (g, w)) in got.iter().zip(&want).enumerate() {
        close(&format!("{what} output {o}"), g.as_f32().unwrap(), w.as_f32().unwrap());
    }
}

fn same_state(what: &str, gpu: &mut Session, cpu: &Session) {
    gpu.sync().unwrap();
    assert!(!gpu.stale(), "{what}: synced");
    close(what, gpu.state().unwrap(), cpu.state().unwrap());
}

/// Sessions whose state lives on the GPU lose nothing: not to a failed call, a clone, a state set
/// on the host, a snapshot, nor the device itself going away mid-sequence (they replay their
/// journal on the CPU and carry on with the CPU's results).
#[test]
fn resident_state_survives_failures_clones_and_device_loss() {
    if gpu_or_skip("resident_state_survives_failures_clones_and_device_loss").is_none() {
        return;
    }
    for name in ["legacy_lstm_step_b3_op14", "sd_gru_embed_head"] {
        let cpu = load(name);
        // A device of its own, to destroy.
        let ctx = std::sync::Arc::new(webrnn::gpu::block_on(webrnn::gpu::GpuContext::new()).unwrap());
        let gpu = cpu.with_kernels(Box::new(webrnn::gpu::GpuKernels::with_context(ctx.clone()))).unwrap();
        let mut rng = Rng::new(17);
        let mut on_cpu: Vec<Session> = (0..5).map(|_| cpu.create_session().unwrap()).collect();
        let mut on_gpu: Vec<Session> = (0..5).map(|_| gpu.create_session().unwrap()).collect();
        // The state stays on the device for JOURNAL_CALLS - 1 calls; the next brings it back.
        for step in 1..=webrnn::session::JOURNAL_CALLS {
            step_both(&format!("{name} step {step}"), &cpu, &gpu, &mut on_cpu, &mut on_gpu, &mut rng);
            let back = step == webrnn::session::JOURNAL_CALLS;
            assert_eq!(on_gpu[0].stale(), !back, "{name} step {step}: state on the device only");
        }
        close(&format!("{name}: brought back"), on_gpu[3].state().unwrap(), on_cpu[3].state().unwrap());
        for step in 0..3 {
            step_both(&format!("{name} step +{step}"), &cpu, &gpu, &mut on_cpu, &mut on_gpu, &mut rng);
        }
        // A failed call changes nothing.
        let mut bad = inputs(&cpu, 5, 1, &mut rng);
        bad[0] = match &bad[0] {
            Data::F32(v) => Data::F32(v[1..].to_vec()),
            Data::I64(v) => Data::I64(v[1..].to_vec()),
        };
        assert!(gpu.step_batch(&mut on_gpu.iter_mut().collect::<Vec<_>>(), bad).is_err());
        // A clone of a session whose state is on the device, and a session whose state is set on
        // the host (from a CPU snapshot) while the device holds an older one.
        let (mut twin_cpu, mut twin_gpu) = (on_cpu[1].clone(), on_gpu[1].clone());
        assert!(twin_gpu.stale());
        let snapshot = on_cpu[2].save_state().unwrap();
        on_gpu[4].load_state(&snapshot).unwrap();
        on_cpu[4].load_state(&snapshot).unwrap();
        assert!(on_gpu[2].save_state().is_err(), "{name}: a snapshot of a state on the device needs a sync");
        for step in 0..3 {
            step_both(&format!("{name} after clone {step}"), &cpu, &gpu, &mut on_cpu, &mut on_gpu, &mut rng);
        }
        step_both(
            &format!("{name} clone"),
            &cpu,
            &gpu,
            std::slice::from_mut(&mut twin_cpu),
            std::slice::from_mut(&mut twin_gpu),
            &mut rng,
        );
        // The device goes away mid-sequence: the sessions replay on the CPU and carry on.
        assert!(on_gpu.iter().all(Session::stale));
        ctx.device.destroy();
        ctx.wait_idle().ok();
        assert!(ctx.is_lost(), "destroy() reports a device loss");
        for step in 0..3 {
            step_both(&format!("{name} after the loss {step}"), &cpu, &gpu, &mut on_cpu, &mut on_gpu, &mut rng);
        }
        step_both(
            &format!("{name} clone after the loss"),
            &cpu,
            &gpu,
            std::slice::from_mut(&mut twin_cpu),
            std::slice::from_mut(&mut twin_gpu),
            &mut rng,
        );
        for (b, (g, c)) in on_gpu.iter_mut().zip(&on_cpu).enumerate() {
            same_state(&format!("{name} session {b} after the loss"), g, c);
        }
        same_state(&format!("{name} clone after the loss"), &mut twin_gpu, &twin_cpu);
        println!("{name}: resident state survived a failed call, a clone, a host state and a device loss");
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
        // The state stayed on the GPU: the host copy is older until a sync brings it back.
        assert!(on_gpu.iter().all(|s| s.stale()), "{name}: the GPU sessions' state should be on the device");
        assert!(on_gpu[0].state().is_err(), "{name}: a stale host copy must not be handed out");
        gpu.sync(&mut on_gpu.iter_mut().collect::<Vec<_>>()).unwrap();
        for (b, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
            close(&format!("{name} session {b} state"), g.state().unwrap(), c.state().unwrap());
        }
        // One session alone, a whole sequence.
        let x = inputs(&cpu, 1, 30, &mut rng);
        let want = on_cpu[0].run(x.clone(), 30).unwrap();
        let got = on_gpu[0].run(x, 30).unwrap();
        for (o, (g, w)) in got.iter().zip(&want).enumerate() {
            close(&format!("{name} run output {o}"), g.as_f32().unwrap(), w.as_f32().unwrap());
        }
        on_gpu[0].sync().unwrap();
        close(&format!("{name} state after run"), on_gpu[0].state().unwrap(), on_cpu[0].state().unwrap());
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
