//! A corpus of malformed files fed through every loader: truncated and corrupted ONNX models,
//! tensors, safetensors state dicts, configs and state snapshots. Each must give a typed error (or,
//! for a harmless corruption, a working model): never a panic, never an abort.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use common::*;
use webrnn::{onnx, Data, Error, Model};

/// Deterministic xorshift so the corpus is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Truncations and byte-level corruptions of `bytes`.
fn variants(bytes: &[u8], rng: &mut Rng, count: usize) -> Vec<(String, Vec<u8>)> {
    let n = bytes.len();
    let mut v: Vec<(String, Vec<u8>)> = [0, 1, 2, 7, n / 3, n / 2, n.saturating_sub(9), n.saturating_sub(1)]
        .into_iter()
        .filter(|&k| k < n)
        .map(|k| (format!("truncated to {k} bytes"), bytes[..k].to_vec()))
        .collect();
    for i in 0..count {
        let mut b = bytes.to_vec();
        let what = match i % 4 {
            0 => {
                let p = rng.below(n);
                b[p] ^= 1 << rng.below(8);
                format!("bit flip at {p}")
            }
            1 => {
                let p = rng.below(n);
                b[p..(p + 4).min(n)].fill(0xff);
                format!("0xff x4 at {p}")
            }
            2 => {
                let p = rng.below(n);
                let len = 1 + rng.below(16);
                let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                b.splice(p..p, junk);
                format!("{len} random bytes inserted at {p}")
            }
            _ => {
                let p = rng.below(n);
                let len = (1 + rng.below(64)).min(n - p);
                b.drain(p..p + len);
                format!("{len} bytes removed at {p}")
            }
        };
        v.push((what, b));
    }
    v
}

#[derive(Default)]
struct Tally {
    tried: usize,
    loaded: usize,
    errors: std::collections::BTreeMap<&'static str, usize>,
    panics: Vec<String>,
}

impl Tally {
    /// Runs `f`; records its error code, success, or panic.
    fn check<T>(&mut self, what: &str, f: impl FnOnce() -> Result<T, Error>) -> Option<T> {
        self.tried += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(v)) => {
                self.loaded += 1;
                Some(v)
            }
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty());
                *self.errors.entry(e.code()).or_default() += 1;
                None
            }
            Err(_) => {
                self.panics.push(what.to_string());
                None
            }
        }
    }
}

fn sibling_loader(dir: &Path) -> impl FnMut(&str) -> webrnn::Result<Arc<Vec<u8>>> + '_ {
    move |loc: &str| std::fs::read(dir.join(loc)).map(Arc::new).map_err(|e| Error::Io(e.to_string()))
}

/// Exercises a model that loaded from corrupted bytes: it must run or fail cleanly.
fn exercise(tally: &mut Tally, what: &str, model: &Model, case: &Path) {
    let inputs: Vec<_> = numbered(case, "input").iter().map(|p| read_tensor(p)).collect();
    tally.check(&format!("{what}: run_graph"), || model.run_graph(inputs));
    if let Ok(plan) = model.session_plan() {
        let n = plan.inputs.iter().map(|p| p.step_len()).collect::<Vec<_>>();
        let feed: Vec<Data> = plan
            .inputs
            .iter()
            .zip(&n)
            .map(|(p, &n)| if p.dtype == webrnn::DType::I64 { Data::I64(vec![1; n]) } else { Data::F32(vec![0.5; n]) })
            .collect();
        tally.check(&format!("{what}: session run"), || model.create_session()?.run(feed, 2));
    }
}

#[test]
fn corrupted_onnx_models_and_tensors_give_typed_errors() {
    let mut tally = Tally::default();
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let mut all = cases("onnx-node");
    all.extend(cases("onnx-options"));
    all.extend(cases("golden").into_iter().filter(|c| c.join("model.onnx").exists()));
    for case in &all {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(case.join("model.onnx")).unwrap();
        for (what, b) in variants(&bytes, &mut rng, 48) {
            let what = format!("{name} model, {what}");
            let mut load = sibling_loader(case);
            if let Some(m) = tally.check(&what, || Model::from_onnx_with_external(&b, &mut load)) {
                exercise(&mut tally, &what, &m, case);
            }
        }
        for input in numbered(case, "input") {
            let bytes = std::fs::read(&input).unwrap();
            for (what, b) in variants(&bytes, &mut rng, 8) {
                tally.check(&format!("{name} {}: {what}", input.display()), || onnx::decode_tensor(&b));
            }
        }
    }
    // Not protobuf at all, and a protobuf that is not a model.
    tally.check("empty", || Model::from_onnx(&[]));
    tally.check("text", || Model::from_onnx(b"this is not an onnx file"));
    tally.check("tensor as model", || {
        Model::from_onnx(
            &std::fs::read(data_dir().join("onnx-node/test_gru_defaults/test_data_set_0/input_0.pb")).unwrap(),
        )
    });
    println!("onnx corpus: {} inputs, {} loaded or ran, errors by code {:?}", tally.tried, tally.loaded, tally.errors);
    assert!(tally.panics.is_empty(), "{} panics:\n{}", tally.panics.len(), tally.panics.join("\n"));
    assert!(tally.errors.values().sum::<usize>() > tally.tried / 3, "the corpus should mostly be rejected");
}

#[test]
fn corrupted_state_dicts_and_configs_give_typed_errors() {
    let mut tally = Tally::default();
    let mut rng = Rng(0x0dd_ba11_cafe);
    for case in cases("golden").into_iter().filter(|c| c.join("model.safetensors").exists()) {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(case.join("model.safetensors")).unwrap();
        let cfg = std::fs::read_to_string(case.join("config.json")).unwrap();
        for (what, b) in variants(&bytes, &mut rng, 48) {
            let what = format!("{name} safetensors, {what}");
            if let Some(m) = tally.check(&what, || Model::from_safetensors(&b, &cfg)) {
                exercise(&mut tally, &what, &m, &case);
            }
        }
        let json: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        let mut edits: Vec<(String, serde_json::Value)> = Vec::new();
        for (key, bad) in [
            ("hidden_size", serde_json::json!(14)),
            ("hidden_size", serde_json::json!(0)),
            ("hidden_size", serde_json::json!(-3)),
            ("input_size", serde_json::json!(99)),
            ("num_layers", serde_json::json!(7)),
            ("num_layers", serde_json::json!(1_000_000)),
            ("cell", serde_json::json!("transformer")),
            ("proj_size", serde_json::json!(100)),
            ("bidirectional", serde_json::json!(!json["bidirectional"].as_bool().unwrap_or(false))),
            ("prefix", serde_json::json!("nope.")),
            ("version", serde_json::json!(2)),
            ("embedding", serde_json::json!("missing.weight")),
            ("unknown_field", serde_json::json!(1)),
        ] {
            let mut j = json.clone();
            j[key] = bad.clone();
            edits.push((format!("{key} = {bad}"), j));
        }
        for (what, j) in edits {
            tally.check(&format!("{name} config {what}"), || Model::from_safetensors(&bytes, &j.to_string()));
        }
        for (what, c) in variants(cfg.as_bytes(), &mut rng, 16) {
            let c = String::from_utf8_lossy(&c).to_string();
            tally.check(&format!("{name} config {what}"), || Model::from_safetensors(&bytes, &c));
        }
    }
    println!(
        "state-dict corpus: {} inputs, {} loaded or ran, errors by code {:?}",
        tally.tried, tally.loaded, tally.errors
    );
    assert!(tally.panics.is_empty(), "{} panics:\n{}", tally.panics.len(), tally.panics.join("\n"));
    assert!(tally.errors.values().sum::<usize>() > tally.tried / 3);
}

#[test]
fn corrupted_snapshots_give_typed_errors_and_keep_the_state() {
    let model = Model::from_onnx_file(&data_dir().join("golden/legacy_gru_embed_op14/model.onnx")).unwrap();
    let mut s = model.create_session().unwrap();
    s.step(vec![Data::I64(vec![4])]).unwrap();
    let snap = s.save_state().unwrap();
    let before = s.state().unwrap().to_vec();
    let mut tally = Tally::default();
    let mut rng = Rng(77);
    for (what, b) in variants(&snap, &mut rng, 200) {
        let r = tally.check(&format!("snapshot {what}"), || s.load_state(&b));
        if r.is_none() {
            assert_eq!(s.state().unwrap(), &before[..], "a refused snapshot ({what}) changed the state");
        }
    }
    assert!(tally.panics.is_empty(), "{:?}", tally.panics);
    assert!(tally.errors.values().sum::<usize>() >= 200, "{:?}", tally.errors);
}

#[test]
fn unknown_operators_are_refused_at_load_naming_op_and_node() {
    use onnx::proto::ModelProto;
    use prost::Message;
    let bytes = std::fs::read(data_dir().join("onnx-node/test_gru_defaults/model.onnx")).unwrap();
    let mut m = ModelProto::decode(&bytes[..]).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.node[0].op_type = "Loop".into();
    g.node[0].name = "the_loop".into();
    let e = Model::from_onnx(&m.encode_to_vec()).unwrap_err();
    assert_eq!(e.code(), "unsupported_op");
    let msg = e.to_string();
    assert!(msg.contains("Loop") && msg.contains("the_loop"), "{msg}");

    // A custom domain is refused too.
    let mut m = ModelProto::decode(&bytes[..]).unwrap();
    m.graph.as_mut().unwrap().node[0].domain = "com.microsoft".into();
    assert_eq!(Model::from_onnx(&m.encode_to_vec()).unwrap_err().code(), "unsupported_op");

    // The CLI prints one line on stderr and exits non-zero.
    let dir = scratch("unknown-op");
    let path = dir.join("model.onnx");
    let mut m = ModelProto::decode(&bytes[..]).unwrap();
    m.graph.as_mut().unwrap().node[0].op_type = "Scan".into();
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_webrnn"))
        .args(["run"])
        .arg(&path)
        .arg("--out-dir")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("Scan"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_webrnn")).arg("inspect").arg(&path).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("unsupported:"));
}
