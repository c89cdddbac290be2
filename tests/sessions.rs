//! Sessions against PyTorch's own outputs: stepping a session one time step at a time (and many
//! sessions at once with `step_batch`) must reproduce the whole-sequence outputs and final states
//! that PyTorch computed, and the runtime must find the state inputs/outputs the exporter made.

mod common;

use std::path::Path;

use common::*;
use webrnn::{ops, Data, Model, Session, Tensor};

fn load(case: &Path) -> Model {
    let onnx = case.join("model.onnx");
    if onnx.exists() {
        Model::from_onnx_file(&onnx).unwrap()
    } else {
        let cfg = std::fs::read_to_string(case.join("config.json")).unwrap();
        Model::from_safetensors(&std::fs::read(case.join("model.safetensors")).unwrap(), &cfg).unwrap()
    }
}

fn case_json(case: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(case.join("case.json")).unwrap()).unwrap()
}

/// `x` with axes moved to `[B, T, rest...]`.
fn to_btr(x: &Tensor, t_axis: usize, b_axis: usize) -> Tensor {
    let mut perm = vec![b_axis, t_axis];
    perm.extend((0..x.rank()).filter(|&a| a != t_axis && a != b_axis));
    ops::transpose(x, Some(&perm)).unwrap()
}

fn rows(t: &Tensor) -> Vec<f32> {
    match t.data() {
        Data::F32(v) => v.clone(),
        Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
    }
}

/// Per-session initial state from the graph's h0/c0 inputs (`[L·D, B, H]`, PyTorch's layer order),
/// laid out as the session keeps it: per layer, h (dirs × state size) then, for LSTM, c (dirs × H).
fn session_states(model: &Model, case: &Path, batch: usize) -> Vec<Vec<f32>> {
    let plan = model.session_plan().unwrap();
    let inputs = numbered(case, "input");
    let h0 = plan.state_inputs.first().map(|&i| read_tensor(&inputs[i]));
    let c0 = plan.state_inputs.get(1).map(|&i| read_tensor(&inputs[i]));
    let mut states = vec![Vec::new(); batch];
    let mut row = 0;
    for cell in &plan.cells {
        let dirs = cell.direction.count();
        let lstm = matches!(cell.cell, webrnn::cell::CellKind::Lstm { .. });
        let parts = [(h0.as_ref(), cell.state_size, true), (c0.as_ref(), cell.hidden_size, lstm)];
        for (b, st) in states.iter_mut().enumerate() {
            for &(src, size, present) in &parts {
                if !present {
                    continue;
                }
                for d in 0..dirs {
                    match src {
                        Some(t) => {
                            let off = ((row + d) * batch + b) * size;
                            st.extend_from_slice(&t.as_f32().unwrap()[off..off + size]);
                        }
                        None => st.extend(std::iter::repeat_n(0.0, size)),
                    }
                }
            }
        }
        row += dirs;
    }
    states
}

#[test]
fn sessions_find_state_inputs_and_outputs_as_exported() {
    for case in cases("golden") {
        let meta = case_json(&case);
        let model = load(&case);
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let plan = match model.session_plan() {
            Ok(p) => p,
            Err(e) => {
                // Only the recurrence the exporter unrolled (dynamo nn.RNN) has no recurrent layer.
                assert!(name.starts_with("dynamo_rnn"), "{name}: {e}");
                continue;
            }
        };
        let ids = |v: &serde_json::Value| -> Vec<usize> {
            v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
        };
        assert_eq!(plan.state_inputs, ids(&meta["stateful_inputs"]), "{name}: state inputs");
        assert_eq!(plan.state_outputs, ids(&meta["stateful_outputs"]), "{name}: state outputs");
        assert_eq!(plan.streamable, meta["streamable"].as_bool().unwrap(), "{name}: streamable");
        let bf = meta["batch_first"].as_bool().unwrap();
        let p = &plan.inputs[0];
        assert_eq!((p.batch_axis, p.time_axis), if bf { (0, 1) } else { (1, 0) }, "{name}: input axes");
    }
}

#[test]
fn stepping_sessions_reproduces_pytorch_sequences() {
    let mut checked = 0;
    for case in cases("golden") {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let model = load(&case);
        let Ok(plan) = model.session_plan() else { continue };
        let inputs = numbered(&case, "input");
        let outputs = numbered(&case, "output");
        let pi = &plan.inputs[0];
        let x = to_btr(&read_tensor(&inputs[pi.graph_index]), pi.time_axis, pi.batch_axis);
        let (batch, steps) = (x.shape()[0], x.shape()[1]);
        let xv = rows(&x);
        let step_len = pi.step_len();
        let po = &plan.outputs[0];
        let want_y = read_tensor(&outputs[po.graph_index]);
        let want_y = to_btr(&want_y, po.time_axis.unwrap(), po.batch_axis);
        let out_len = want_y.shape()[2..].iter().product::<usize>();
        let wy = want_y.as_f32().unwrap();
        let init = session_states(&model, &case, batch);
        let mut sessions: Vec<Session> = init
            .iter()
            .map(|s| {
                let mut sess = model.create_session().unwrap();
                sess.set_state(s).unwrap();
                sess
            })
            .collect();
        let feed = |v: Vec<f32>| {
            if pi.dtype == webrnn::DType::I64 {
                Data::I64(v.iter().map(|&x| x as i64).collect())
            } else {
                Data::F32(v)
            }
        };

        if plan.streamable {
            // All sessions at once, one step per call.
            for t in 0..steps {
                let xb: Vec<f32> = (0..batch)
                    .flat_map(|b| xv[(b * steps + t) * step_len..(b * steps + t + 1) * step_len].to_vec())
                    .collect();
                let mut refs: Vec<&mut Session> = sessions.iter_mut().collect();
                let y = model.step_batch(&mut refs, vec![feed(xb)]).unwrap();
                let got = y[0].as_f32().unwrap();
                for b in 0..batch {
                    let w = &wy[(b * steps + t) * out_len..(b * steps + t + 1) * out_len];
                    let g = &got[b * out_len..(b + 1) * out_len];
                    let gt = Tensor::from_f32(vec![out_len], g.to_vec()).unwrap();
                    let wt = Tensor::from_f32(vec![out_len], w.to_vec()).unwrap();
                    compare(&format!("{name} step {t} session {b}"), &gt, &wt, CPU_ATOL, CPU_RTOL).unwrap();
                }
            }
            // The final states equal PyTorch's h_n (and c_n) for every session.
            for (k, &oi) in plan.state_outputs.iter().enumerate() {
                let want = read_tensor(&outputs[oi]);
                let wv = want.as_f32().unwrap();
                let size = want.shape()[2];
                for (b, s) in sessions.iter().enumerate() {
                    // h_n rows are layers in order; session state is [h of layer 0, (c of layer 0), h of layer 1, ...].
                    let mut off = 0;
                    let mut row = 0;
                    for cell in &plan.cells {
                        let dirs = cell.direction.count();
                        let h_len = dirs * cell.state_size;
                        let lstm = matches!(cell.cell, webrnn::cell::CellKind::Lstm { .. });
                        let c_len = if lstm { dirs * cell.hidden_size } else { 0 };
                        let (base, len) = if k == 0 { (off, cell.state_size) } else { (off + h_len, cell.hidden_size) };
                        assert_eq!(len, size, "{name}");
                        for d in 0..dirs {
                            let got = &s.state().unwrap()[base + d * len..base + (d + 1) * len];
                            let w = &wv[((row + d) * batch + b) * size..((row + d) * batch + b + 1) * size];
                            compare(
                                &format!("{name} final state {k} session {b}"),
                                &Tensor::from_f32(vec![len], got.to_vec()).unwrap(),
                                &Tensor::from_f32(vec![len], w.to_vec()).unwrap(),
                                CPU_ATOL,
                                CPU_RTOL,
                            )
                            .unwrap();
                        }
                        off += h_len + c_len;
                        row += dirs;
                    }
                }
            }
        } else {
            assert!(sessions[0].step(vec![feed(vec![0.0; step_len])]).is_err(), "{name}: step must be refused");
        }

        // `run` over the whole sequence from the same initial state, one session at a time.
        for (b, st) in init.iter().enumerate() {
            let mut s = model.create_session().unwrap();
            s.set_state(st).unwrap();
            let y = s.run(vec![feed(xv[b * steps * step_len..(b + 1) * steps * step_len].to_vec())], steps).unwrap();
            let w =
                Tensor::from_f32(vec![steps * out_len], wy[b * steps * out_len..(b + 1) * steps * out_len].to_vec())
                    .unwrap();
            let g = y[0].clone().reshaped(vec![steps * out_len]).unwrap();
            compare(&format!("{name} run session {b}"), &g, &w, CPU_ATOL, CPU_RTOL).unwrap();
        }
        checked += 1;
        println!("{name}: {batch} session(s) × {steps} steps match PyTorch");
    }
    assert!(checked >= 15, "only {checked} golden cases had sessions");
}

#[test]
fn snapshots_round_trip_and_refuse_other_models() {
    let dir = data_dir().join("golden");
    let gru = load(&dir.join("legacy_gru_embed_op14"));
    let lstm = load(&dir.join("sd_lstm_nobias"));
    let mut s = gru.create_session().unwrap();
    for id in [3i64, 7, 11] {
        s.step(vec![Data::I64(vec![id])]).unwrap();
    }
    let snap = s.save_state().unwrap();
    let mut fresh = gru.create_session().unwrap();
    fresh.load_state(&snap).unwrap();
    assert_eq!(fresh.state().unwrap(), s.state().unwrap());
    assert_eq!(fresh.steps(), 3);
    let a = s.step(vec![Data::I64(vec![5])]).unwrap();
    let b = fresh.step(vec![Data::I64(vec![5])]).unwrap();
    assert_eq!(a, b);

    let mut other = lstm.create_session().unwrap();
    let before = other.state().unwrap().to_vec();
    assert_eq!(other.load_state(&snap).unwrap_err().code(), "state_mismatch");
    assert_eq!(other.state().unwrap(), &before[..], "a refused snapshot must leave the state alone");

    let mut corrupt = snap.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x40;
    assert_eq!(fresh.load_state(&corrupt).unwrap_err().code(), "corrupt_state");
    assert_eq!(fresh.load_state(&snap[..snap.len() - 3]).unwrap_err().code(), "corrupt_state");
    assert_eq!(fresh.load_state(b"hello").unwrap_err().code(), "corrupt_state");
}

#[test]
fn failed_calls_leave_sessions_intact() {
    let model = load(&data_dir().join("golden/legacy_gru_embed_op14"));
    let mut s = model.create_session().unwrap();
    s.step(vec![Data::I64(vec![1])]).unwrap();
    let before = s.state().unwrap().to_vec();
    // Wrong length, wrong type, out-of-vocabulary id, wrong input count.
    assert_eq!(s.step(vec![Data::I64(vec![1, 2])]).unwrap_err().code(), "shape");
    assert_eq!(s.step(vec![Data::F32(vec![1.0])]).unwrap_err().code(), "shape");
    assert_eq!(s.step(vec![Data::I64(vec![37])]).unwrap_err().code(), "shape");
    assert_eq!(s.step(vec![]).unwrap_err().code(), "invalid_argument");
    assert_eq!(s.state().unwrap(), &before[..]);
    assert!(s.step(vec![Data::I64(vec![2])]).is_ok());

    // A session of another model cannot join a batch.
    let other_model = load(&data_dir().join("golden/dynamo_gru_embed"));
    let mut foreign = load(&data_dir().join("golden/sd_gru_embed_head")).create_session().unwrap();
    let mut mine = other_model.create_session().unwrap();
    let mut batch = vec![&mut mine, &mut foreign];
    let e = other_model.step_batch(&mut batch, vec![Data::I64(vec![1, 2])]).unwrap_err();
    assert_eq!(e.code(), "state_mismatch");
}

#[test]
fn nan_in_gives_nan_out_and_finite_in_gives_finite_out() {
    let model = load(&data_dir().join("golden/sd_lstm_nobias"));
    let n = model.session_plan().unwrap().inputs[0].step_len();
    let mut s = model.create_session().unwrap();
    let y = s.step(vec![Data::F32(vec![1e4; n])]).unwrap();
    assert!(y[0].as_f32().unwrap().iter().all(|v| v.is_finite()), "saturating inputs must stay finite");
    let y = s.step(vec![Data::F32(vec![-3.4e38; n])]).unwrap();
    assert!(y[0].as_f32().unwrap().iter().all(|v| v.is_finite()));
    let mut x = vec![0.5; n];
    x[0] = f32::NAN;
    let y = s.step(vec![Data::F32(x)]).unwrap();
    assert!(y[0].as_f32().unwrap().iter().any(|v| v.is_nan()), "NaN must propagate");
    s.reset();
    let y = s.step(vec![Data::F32(vec![0.5; n])]).unwrap();
    assert!(y[0].as_f32().unwrap().iter().all(|v| v.is_finite()), "reset clears the NaN state");
}

/// The fingerprint is hashed when first asked for, not at load, and must not change, since every
/// snapshot and StateStore record saved so far is bound to it. The pinned values are those of
/// cfac0fd, which hashed at load (this test passed on it).
#[test]
fn fingerprints_are_lazy_and_unchanged() {
    let dir = data_dir().join("golden");
    let gru = load(&dir.join("legacy_gru_embed_op14"));
    let scalar = gru.with_backend(webrnn::Backend::CpuScalar).unwrap();
    // Asked first through the model on other kernels: the same shared value.
    let hex = scalar.fingerprint_hex();
    assert_eq!(hex, gru.fingerprint_hex());
    assert_eq!(hex, PINNED_GRU);
    let lstm = load(&dir.join("sd_lstm_nobias"));
    assert_eq!(lstm.fingerprint_hex(), PINNED_LSTM);
    // A snapshot made before the fingerprint was ever read still binds to it.
    let fresh = load(&dir.join("legacy_gru_embed_op14"));
    let snap = fresh.create_session().unwrap().save_state().unwrap();
    assert_eq!(&snap[12..28], &gru.fingerprint()[..]);
}

const PINNED_GRU: &str = "62371e67fde6c9cbaba14dd509c08b7f";
const PINNED_LSTM: &str = "22a2fed335c3c47f58ed6e6c76c00147";
