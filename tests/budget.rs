//! The memory budget (issue #16): a call whose intermediates would pass it is refused with
//! `Error::Resource` before it allocates them, a model whose weights pass it is refused at load,
//! and the models and sessions around keep working. The hostile models are made by
//! `scripts/make_budget_models.mjs`.

mod common;

use common::data_dir;
use counting::{live, peak, reset_peak};
use webrnn::budget::{self, DEFAULT_MAX_MEMORY};
use webrnn::{Data, Error, LoadOptions, Model, Tensor};

#[path = "common/counting.rs"]
mod counting;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const MIB: usize = 1 << 20;

/// The most bytes `f` held at once above what was held before it.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = live();
    reset_peak();
    let r = f();
    (r, (peak() - before).max(0) as usize)
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join("budget").join(name)).unwrap()
}

fn x() -> Vec<Tensor> {
    vec![Tensor::from_f32(vec![1], vec![2.0]).unwrap()]
}

fn resource<T: std::fmt::Debug>(r: webrnn::Result<T>, what: &str) -> String {
    match r {
        Err(Error::Resource(m)) => m,
        other => panic!("{what}: expected a resource error, got {other:?}"),
    }
}

/// A streaming model of the golden cases, and a check that it still steps as before.
struct Bystander {
    model: Model,
    session: webrnn::Session,
    first: Vec<f32>,
}

impl Bystander {
    fn new() -> Self {
        let model = Model::from_onnx_file(&data_dir().join("golden/legacy_gru_embed_op14/model.onnx")).unwrap();
        let mut session = model.create_session().unwrap();
        let first = session.step(vec![Data::I64(vec![3])]).unwrap()[0].as_f32().unwrap().to_vec();
        Bystander { model, session, first }
    }

    /// A fresh session gives the first step's output again, and the old one goes on.
    fn check(&mut self) {
        let mut fresh = self.model.create_session().unwrap();
        let y = fresh.step(vec![Data::I64(vec![3])]).unwrap();
        assert_eq!(y[0].as_f32().unwrap(), self.first.as_slice());
        assert!(self.session.step(vec![Data::I64(vec![4])]).is_ok());
        assert_eq!(self.session.steps(), 2);
    }
}

#[test]
fn the_503_byte_model_of_4_gb_is_refused_before_it_allocates() {
    let mut other = Bystander::new();
    let model = Model::from_onnx(&bytes("expand_adds_concat.onnx")).unwrap();
    assert_eq!(model.max_memory(), DEFAULT_MAX_MEMORY);
    let g = model.graph();
    let wanted: Vec<usize> = g.outputs.iter().map(|o| o.id).collect();
    let sched = g.schedule(&wanted, false);
    let input = x();
    let peak = budget::peak(g, &sched, &[Some(&input[0])]);
    // Expand, then 16 Adds alive at once (256 MiB each), then their Concat (4 GiB).
    assert_eq!(peak.stopped_at, None);
    assert!(peak.bytes >= 8 << 30, "peak {} bytes", peak.bytes);
    let (r, held) = allocated_by(|| model.run_graph(x()));
    let m = resource(r, "run_graph");
    assert!(m.contains("memory budget of 256.0 MiB"), "{m}");
    assert!(held < MIB, "the refused call allocated {held} bytes");
    // Refused again (nothing was left half done), and everything else still works.
    resource(model.run_graph(x()), "run_graph again");
    other.check();
}

#[test]
fn a_768_mib_model_runs_only_where_the_budget_allows() {
    let file = bytes("expand_adds_768m.onnx");
    let model = Model::from_onnx(&file).unwrap();
    let g = model.graph();
    let sched = g.schedule(&g.outputs.iter().map(|o| o.id).collect::<Vec<_>>(), false);
    let input = x();
    let peak = budget::peak(g, &sched, &[Some(&input[0])]);
    assert_eq!(peak.stopped_at, None);
    // 12 sums of the expanded value alive at once (the last in its buffer): 12 × 64 MiB.
    assert!((768 * MIB..770 * MIB).contains(&peak.bytes), "peak {} bytes", peak.bytes);
    resource(model.run_graph(x()), "default budget");
    let tight = Model::from_onnx_with(&file, &LoadOptions::default().max_memory(700 * MIB)).unwrap();
    resource(tight.run_graph(x()), "700 MiB");
    let roomy = Model::from_onnx_with(&file, &LoadOptions::default().max_memory(1 << 30)).unwrap();
    let y = roomy.run_graph(x()).unwrap();
    assert_eq!(y[0].as_f32().unwrap(), &[12.0 * 2.0 + 78.0]);
}

#[test]
fn an_operator_without_a_shape_rule_is_refused_at_its_node() {
    let mut other = Bystander::new();
    let model = Model::from_onnx(&bytes("expand_tile.onnx")).unwrap();
    let g = model.graph();
    let sched = g.schedule(&g.outputs.iter().map(|o| o.id).collect::<Vec<_>>(), false);
    let input = x();
    assert_eq!(budget::peak(g, &sched, &[Some(&input[0])]).stopped_at, Some(1), "the walk stops at Tile");
    let m = resource(model.run_graph(x()), "run_graph");
    assert!(m.contains("Tile node"), "{m}");
    let roomy =
        Model::from_onnx_with(&bytes("expand_tile.onnx"), &LoadOptions::default().max_memory(600 * MIB)).unwrap();
    let y = roomy.run_graph(x()).unwrap();
    assert_eq!(y[0].shape(), &[8192, 8192]);
    assert!(y[0].as_f32().unwrap().iter().all(|&v| v == 3.0));
    drop(y);
    other.check();
}

#[test]
fn a_huge_constant_is_neither_folded_at_load_nor_run() {
    let (model, held) = allocated_by(|| Model::from_onnx(&bytes("const_expand.onnx")).unwrap());
    assert!(held < 4 * MIB, "loading allocated {held} bytes");
    let (r, held) = allocated_by(|| model.run_graph(x()));
    resource(r, "Expand of a constant to [8192, 8192], then Add");
    assert!(held < MIB, "the refused call allocated {held} bytes");
}

#[test]
fn weights_over_the_budget_are_refused_at_load() {
    let m = resource(Model::from_onnx(&bytes("huge_weights.onnx")), "a file declaring 256 MiB of weights");
    assert!(m.contains("weights"), "{m}");
    let file = std::fs::read(data_dir().join("golden/legacy_gru_embed_op14/model.onnx")).unwrap();
    resource(Model::from_onnx_with(&file, &LoadOptions::default().max_memory(1024)), "1 KiB budget");
    let dir = data_dir().join("golden/sd_gru_embed_head");
    let (st, cfg) = (
        std::fs::read(dir.join("model.safetensors")).unwrap(),
        std::fs::read_to_string(dir.join("config.json")).unwrap(),
    );
    resource(Model::from_safetensors_with(&st, &cfg, &LoadOptions::default().max_memory(1024)), "state dict, 1 KiB");
    assert!(Model::from_safetensors(&st, &cfg).is_ok());
    Bystander::new().check();
}

#[test]
fn a_batch_over_the_budget_leaves_every_session_as_it_was() {
    let file = std::fs::read(data_dir().join("golden/legacy_lstm_step_b3_op14/model.onnx")).unwrap();
    let model = Model::from_onnx_with(&file, &LoadOptions::default().max_memory(256 << 10)).unwrap();
    let step_len = model.session_plan().unwrap().inputs[0].step_len();
    let mut sessions: Vec<_> = (0..4000).map(|_| model.create_session().unwrap()).collect();
    let mut refs: Vec<&mut webrnn::Session> = sessions.iter_mut().collect();
    let x = vec![0.5f32; refs.len() * step_len];
    let m = resource(model.step_batch(&mut refs, vec![Data::F32(x)]), "4000 sessions in 256 KiB");
    assert!(m.contains("inputs and staged states") || m.contains("the call"), "{m}");
    assert!(sessions.iter().all(|s| s.steps() == 0 && s.state().unwrap().iter().all(|&v| v == 0.0)));
    let mut few: Vec<&mut webrnn::Session> = sessions.iter_mut().take(8).collect();
    model.step_batch(&mut few, vec![Data::F32(vec![0.5; 8 * step_len])]).unwrap();
    assert_eq!(sessions[0].steps(), 1);
    assert!(sessions[0].state().unwrap().iter().any(|&v| v != 0.0));
    assert_eq!(sessions[8].steps(), 0);
}

/// Every model of the fixtures whose shapes the walk follows to the end: what running it holds
/// at its peak (measured by the allocator) is what the walk said, give or take the small
/// bookkeeping of the executor and the walk itself; never a large buffer it did not count.
#[test]
fn the_walk_accounts_for_what_the_fixtures_hold() {
    let (mut followed, mut worst) = (0, (String::new(), 0isize));
    for group in ["golden", "onnx-node", "onnx-node-ops"] {
        for case in common::cases(group) {
            let Ok(m) = Model::from_onnx_file(&case.join("model.onnx")) else { continue };
            let inputs: Vec<Tensor> = common::numbered(&case, "input").iter().map(|f| common::read_tensor(f)).collect();
            let g = m.graph();
            let sched = g.schedule(&g.outputs.iter().map(|o| o.id).collect::<Vec<_>>(), false);
            let fed: Vec<Option<&Tensor>> = inputs.iter().map(Some).collect();
            let walk = budget::peak(g, &sched, &fed);
            if walk.stopped_at.is_some() || inputs.len() != g.inputs.len() {
                continue;
            }
            followed += 1;
            let fed_bytes: usize = inputs.iter().map(|t| budget::bytes(t.dtype(), t.len())).sum();
            let (_, held) = allocated_by(|| m.run_graph(inputs));
            let over = (held + fed_bytes) as isize - walk.bytes as isize;
            if over > worst.1 {
                worst = (case.display().to_string(), over);
            }
        }
    }
    assert!(followed > 200, "the walk followed only {followed} fixtures to the end");
    assert!(worst.1 < 256 << 10, "{} held {} bytes more than the walk said", worst.0, worst.1);
}
