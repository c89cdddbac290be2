//! Robustness of the operators on hostile inputs: every ONNX node case whose operators all load
//! (`tests/data/onnx-node-ops`) is run in-process through `Model::from_onnx(..)?.run_graph(..)` with
//! its inputs perturbed — wrong rank, wrong dtype, empty, scalar, NaN, extreme integers, missing or
//! extra inputs. Each run must return `Ok` or `Err`; none may panic (in wasm a panic aborts the
//! instance). Panics are caught per run and all reported together.
//!
//! `WEBRNN_NODE_CASES=conv,pad` runs only the cases whose name contains one of the words.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use common::*;
use webrnn::{onnx, Data, Model, Tensor};

/// The same values in another shape (`None` when the element count differs).
fn reshaped(t: &Tensor, shape: Vec<usize>) -> Option<Tensor> {
    t.clone().reshaped(shape).ok()
}

fn filled(t: &Tensor, f: f32, i: i64) -> Tensor {
    let n = t.len();
    let data = match t.data() {
        Data::F32(_) => Data::F32(vec![f; n]),
        Data::I64(_) => Data::I64(vec![i; n]),
    };
    Tensor::new(t.shape().to_vec(), data).unwrap()
}

/// Versions of one input that a caller could hand over by mistake or on purpose.
fn variants(t: &Tensor) -> Vec<(&'static str, Tensor)> {
    let mut v = Vec::new();
    let mut up = vec![1];
    up.extend_from_slice(t.shape());
    v.extend(reshaped(t, up).map(|x| ("rank+1", x)));
    v.extend(reshaped(t, vec![t.len()]).filter(|_| t.rank() != 1).map(|x| ("flattened", x)));
    if t.rank() > 0 {
        v.extend(reshaped(t, t.shape()[1..].to_vec()).map(|x| ("rank-1", x)));
        let mut empty = t.shape().to_vec();
        empty[0] = 0;
        v.push(("empty", Tensor::zeros(t.dtype(), empty).unwrap()));
    }
    v.push(("scalar", Tensor::zeros(t.dtype(), vec![]).unwrap()));
    v.push(("empty 1-D", Tensor::zeros(t.dtype(), vec![0]).unwrap()));
    let other = match t.data() {
        Data::F32(x) => Data::I64(x.iter().map(|&a| a as i64).collect()),
        Data::I64(x) => Data::F32(x.iter().map(|&a| a as f32).collect()),
    };
    v.push(("other dtype", Tensor::new(t.shape().to_vec(), other).unwrap()));
    match t.data() {
        Data::F32(_) => {
            v.push(("NaN", filled(t, f32::NAN, 0)));
            v.push(("+inf", filled(t, f32::INFINITY, 0)));
            v.push(("-inf", filled(t, f32::NEG_INFINITY, 0)));
            v.push(("huge", filled(t, 1e30, 0)));
        }
        Data::I64(_) => {
            for (name, x) in [("-1", -1), ("0", 0), ("i64::MAX", i64::MAX), ("i64::MIN", i64::MIN), ("2^40", 1 << 40)] {
                v.push((name, filled(t, 0.0, x)));
            }
        }
    }
    v
}

#[test]
fn hostile_inputs_never_panic() {
    let filter: Vec<String> = std::env::var("WEBRNN_NODE_CASES")
        .map(|v| v.split(',').map(str::to_string).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    // Keep the panics' messages for the report instead of printing each.
    let last_panic = Arc::new(Mutex::new(String::new()));
    let hook_msg = Arc::clone(&last_panic);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        *hook_msg.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string();
    }));

    let (mut cases_run, mut runs, mut panics) = (0usize, 0usize, Vec::new());
    for case in cases("onnx-node-ops") {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let bytes = std::fs::read(case.join("model.onnx")).unwrap();
        if !onnx::unsupported_nodes(&bytes).map(|bad| bad.is_empty()).unwrap_or(false) {
            continue;
        }
        let model = match catch_unwind(|| Model::from_onnx(&bytes)) {
            Ok(Ok(m)) => m,
            Ok(Err(_)) => continue,
            Err(_) => {
                panics.push(format!("{name}: loading: {}", last_panic.lock().unwrap()));
                continue;
            }
        };
        cases_run += 1;
        let inputs: Vec<Tensor> = numbered(&case, "input").iter().map(|p| read_tensor(p)).collect();
        let mut trials: Vec<(String, Vec<Tensor>)> = vec![("as given".into(), inputs.clone())];
        for (i, t) in inputs.iter().enumerate() {
            for (what, x) in variants(t) {
                let mut args = inputs.clone();
                args[i] = x;
                trials.push((format!("input {i} {what}"), args));
            }
        }
        if !inputs.is_empty() {
            trials.push(("last input missing".into(), inputs[..inputs.len() - 1].to_vec()));
        }
        let mut extra = inputs.clone();
        extra.push(Tensor::scalar_i64(1));
        trials.push(("an extra input".into(), extra));
        // Every input at once: all NaN / all extreme.
        trials.push(("all inputs NaN/-1".into(), inputs.iter().map(|t| filled(t, f32::NAN, -1)).collect()));
        trials.push((
            "all inputs empty".into(),
            inputs.iter().map(|t| Tensor::zeros(t.dtype(), vec![0]).unwrap()).collect(),
        ));

        for (what, args) in trials {
            runs += 1;
            if catch_unwind(AssertUnwindSafe(|| model.run_graph(args))).is_err() {
                panics.push(format!("{name}: {what}: {}", last_panic.lock().unwrap()));
            }
        }
    }
    std::panic::set_hook(default_hook);
    println!("{cases_run} cases, {runs} runs, {} panics", panics.len());
    assert!(panics.is_empty(), "{} runs panicked:\n{}", panics.len(), panics.join("\n"));
    if filter.is_empty() {
        assert!(cases_run > 0, "no node case loaded");
    }
}
