//! The `webrnn` command line: what `inspect` reports and how `run` fails.

mod common;

use std::process::{Command, Output};

use common::*;

fn webrnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webrnn")).args(args).output().unwrap()
}

fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure, stdout: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "stderr must be one line: {err}");
    err
}

#[test]
fn inspect_reports_layers_and_session_state() {
    let model = data_dir().join("golden/legacy_lstm_bidir_op17/model.onnx");
    let out = webrnn(&["inspect", model.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "opset 17",
        "LSTM",
        "bidirectional hidden=37",
        "state input h0",
        "state input c0",
        "state output h_n",
        "run only",
    ] {
        assert!(text.contains(want), "inspect output lacks '{want}':\n{text}");
    }
    let sd = data_dir().join("golden/sd_lstm_proj_bidir/model.safetensors");
    let out = webrnn(&["inspect", sd.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("state_dict"), "{text}");
}

#[test]
fn run_failures_are_one_line_and_nonzero() {
    let case = data_dir().join("onnx-node/test_gru_defaults");
    let model = case.join("model.onnx");
    let model = model.to_str().unwrap();
    let input = case.join("test_data_set_0/input_0.pb");
    let input = input.to_str().unwrap();
    let out_dir = scratch("cli-fail");
    let out_dir = out_dir.to_str().unwrap();

    let e = one_line_error(&webrnn(&["run", "/nonexistent/model.onnx", "--out-dir", out_dir]));
    assert!(e.contains("i/o error"), "{e}");
    let e = one_line_error(&webrnn(&["run", model, "--out-dir", out_dir, input]));
    assert!(e.contains("3 inputs, 1 were given"), "{e}");
    let e = one_line_error(&webrnn(&["run", model, "--backend", "tpu", "--out-dir", out_dir, input]));
    assert!(e.contains("unknown backend"), "{e}");
    let e = one_line_error(&webrnn(&["run", model, input]));
    assert!(e.contains("--out-dir"), "{e}");
    // An input of the wrong shape: feed W where X belongs.
    let w = case.join("test_data_set_0/input_1.pb");
    let r = case.join("test_data_set_0/input_2.pb");
    let e = one_line_error(&webrnn(&[
        "run",
        model,
        "--out-dir",
        out_dir,
        w.to_str().unwrap(),
        w.to_str().unwrap(),
        r.to_str().unwrap(),
    ]));
    assert!(e.contains("shape error"), "{e}");
    let e = one_line_error(&webrnn(&["frobnicate"]));
    assert!(e.contains("unknown command"), "{e}");
}
