// The CPU kernels, every instruction set this build has, against the scalar reference
// (`cell::run_reference`, the specification) at the CPU tolerance: sizes that break vector code,
// long sequences, big batches, saturating inputs, and every option of the three operators.
// The same bodies run natively (`cargo test`) and in headless Chromium for the wasm simd128 and
// relaxed-simd builds: `src/cpu/mod.rs` includes this file as a unit-test module on wasm32 (an
// integration test there would need the CLI binary to build for wasm32). Plain `//` comments here,
// because `include!` cannot take inner doc comments.

use webrnn::backend::RecurrentKernels;
use webrnn::cell::{self, Activation, CellKind, Direction, RecurrentInputs, RecurrentSpec};
use webrnn::cpu::{CpuKernels, Isa};
use webrnn::graph::{Graph, Node, Op, ValueDecl};
use webrnn::Tensor;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const ATOL: f32 = 1e-5;
const RTOL: f32 = 1e-4;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.unit() * scale).collect()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone)]
struct Case {
    cell: CellKind,
    direction: Direction,
    hidden: usize,
    input: usize,
    batch: usize,
    seq: usize,
    layout: u8,
    bias: bool,
    sequence_lens: bool,
    initial: bool,
    peepholes: bool,
    proj: Option<usize>,
    clip: Option<f32>,
    activations: Option<Vec<Activation>>,
    /// Inputs up to ±10240 (multiples of 1024) and `W` in multiples of 1/64, so `X·Wᵀ` is exact in
    /// f32 whatever the summation order: huge pre-activations that saturate every gate, without the
    /// catastrophic cancellation that would make any two summation orders disagree.
    saturating: bool,
    seed: u64,
}

fn case(cell: CellKind, hidden: usize, input: usize, batch: usize, seq: usize) -> Case {
    Case {
        cell,
        direction: Direction::Forward,
        hidden,
        input,
        batch,
        seq,
        layout: 0,
        bias: true,
        sequence_lens: false,
        initial: false,
        peepholes: false,
        proj: None,
        clip: None,
        activations: None,
        saturating: false,
        seed: 1,
    }
}

const CELLS: [CellKind; 5] = [
    CellKind::Rnn,
    CellKind::Gru { linear_before_reset: false },
    CellKind::Gru { linear_before_reset: true },
    CellKind::Lstm { input_forget: false },
    CellKind::Lstm { input_forget: true },
];

/// Every activation of the spec, with parameters that are not the identity.
const ACTIVATIONS: [Activation; 11] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::HardSigmoid { alpha: 0.3, beta: 0.4 },
    Activation::LeakyRelu { alpha: 0.1 },
    Activation::Elu { alpha: 0.8 },
    Activation::Softsign,
    Activation::Softplus,
    Activation::Affine { alpha: 0.5, beta: 0.1 },
    Activation::ScaledTanh { alpha: 0.9, beta: 1.1 },
    Activation::ThresholdedRelu { alpha: 0.2 },
];

/// The tensors of a case.
struct Built {
    spec: RecurrentSpec,
    x: Tensor,
    w: Tensor,
    r: Tensor,
    bias: Option<Tensor>,
    lens: Option<Tensor>,
    init_h: Option<Tensor>,
    init_c: Option<Tensor>,
    p: Option<Tensor>,
    proj: Option<Tensor>,
}

impl Built {
    fn inputs(&self) -> RecurrentInputs<'_> {
        RecurrentInputs {
            b: self.bias.as_ref(),
            sequence_lens: self.lens.as_ref(),
            initial_h: self.init_h.as_ref(),
            initial_c: self.init_c.as_ref(),
            p: self.p.as_ref(),
            proj: self.proj.as_ref(),
            ..RecurrentInputs::new(&self.x, &self.w, &self.r)
        }
    }
}

fn build(c: &Case) -> Built {
    let mut rng = Rng(c.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let dirs = c.direction.count();
    let gates = c.cell.gates();
    let (h, i, b, t) = (c.hidden, c.input, c.batch, c.seq);
    let out = c.proj.unwrap_or(h);
    let mut spec = RecurrentSpec::new(c.cell, c.direction, h);
    spec.layout = c.layout;
    spec.clip = c.clip;
    if let Some(a) = &c.activations {
        spec.activations = a.clone();
    }
    let ws = 1.0 / ((i + out) as f32).sqrt().max(1.0);
    let t3 = |shape: Vec<usize>, data: Vec<f32>| Tensor::from_f32(shape, data).unwrap();
    let x_shape = if c.layout == 0 { vec![t, b, i] } else { vec![b, t, i] };
    let state_shape = |size| if c.layout == 0 { vec![dirs, b, size] } else { vec![b, dirs, size] };
    let (x, w) = if c.saturating {
        let xs = (0..t * b * i).map(|_| (rng.below(21) as f32 - 10.0) * 1024.0).collect();
        let wv = (0..dirs * gates * h * i).map(|_| (rng.below(129) as f32 - 64.0) / 64.0).collect();
        (t3(x_shape, xs), t3(vec![dirs, gates * h, i], wv))
    } else {
        (t3(x_shape, rng.vec(t * b * i, 1.0)), t3(vec![dirs, gates * h, i], rng.vec(dirs * gates * h * i, ws)))
    };
    let r = t3(vec![dirs, gates * h, out], rng.vec(dirs * gates * h * out, ws));
    let bias_values = |rng: &mut Rng| match c.saturating {
        true => (0..dirs * 2 * gates * h).map(|_| (rng.below(9) as f32 - 4.0) / 4.0).collect(),
        false => rng.vec(dirs * 2 * gates * h, 0.5),
    };
    let bias = c.bias.then(|| t3(vec![dirs, 2 * gates * h], bias_values(&mut rng)));
    let lens = c
        .sequence_lens
        .then(|| Tensor::from_i64(vec![b], (0..b).map(|k| if k == 0 { t } else { rng.below(t + 1) } as i64).collect()));
    let lens = lens.map(|l| l.unwrap());
    let init_h = c.initial.then(|| t3(state_shape(out), rng.vec(dirs * b * out, 0.8)));
    let is_lstm = matches!(c.cell, CellKind::Lstm { .. });
    let init_c = (c.initial && is_lstm).then(|| t3(state_shape(h), rng.vec(dirs * b * h, 0.8)));
    let p = c.peepholes.then(|| t3(vec![dirs, 3 * h], rng.vec(dirs * 3 * h, 0.5)));
    let proj = c.proj.map(|pn| t3(vec![dirs, pn, h], rng.vec(dirs * pn * h, 1.0 / (h as f32).sqrt())));
    Built { spec, x, w, r, bias, lens, init_h, init_c, p, proj }
}

/// Runs `c` on the reference and on every instruction set (weights packed on the fly), compares.
fn check(c: &Case) {
    let built = build(c);
    let inputs = built.inputs();
    let want = cell::run_reference(&built.spec, &inputs).unwrap();
    for isa in Isa::available() {
        let got = CpuKernels::new(isa).run(0, &built.spec, &inputs).unwrap_or_else(|e| panic!("{isa:?} {c:?}: {e}"));
        let what = format!("{} {c:?}", isa.name());
        compare(&format!("Y of {what}"), &got.y, &want.y);
        compare(&format!("Y_h of {what}"), &got.y_h, &want.y_h);
        match (&got.y_c, &want.y_c) {
            (Some(g), Some(w)) => compare(&format!("Y_c of {what}"), g, w),
            (None, None) => {}
            _ => panic!("{what}: Y_c presence differs"),
        }
    }
}

fn compare(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (k, (&g, &w)) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()).enumerate() {
        let ok = if w.is_nan() { g.is_nan() } else { (g - w).abs() <= ATOL + RTOL * w.abs() };
        assert!(ok, "{what}: element {k} is {g}, reference {w}");
    }
}

/// Hidden sizes 1, 3, 63, 64, 65, 257 and inputs 1, 65 for every cell, in small batches of `short`
/// steps (`long` for hidden sizes up to 64); seeds from `seed + 1`.
fn size_cases(mut seed: u64, short: usize, long: usize) -> Vec<Case> {
    let mut cases = Vec::new();
    for cell in CELLS {
        for hidden in [1, 3, 63, 64, 65, 257] {
            for input in [1, 65] {
                seed += 1;
                let batch = [1, 2, 3, 5][seed as usize % 4];
                let seq = if hidden > 64 { short } else { long };
                cases.push(Case { seed, ..case(cell, hidden, input, batch, seq) });
            }
        }
    }
    cases
}

#[test]
fn sizes_that_break_vector_code() {
    size_cases(0, 2, 4).iter().for_each(check);
}

#[test]
fn batches_up_to_70() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        for batch in [1, 2, 7, 64, 70] {
            check(&Case { seed: k as u64 * 10 + batch as u64, ..case(cell, 17, 9, batch, 3) });
        }
    }
}

#[test]
fn a_thousand_steps() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        check(&Case { seed: 100 + k as u64, ..case(cell, 13, 5, 2, 1000) });
    }
    check(&Case { seed: 7, ..case(CellKind::Gru { linear_before_reset: true }, 64, 16, 1, 1000) });
}

#[test]
fn saturating_inputs() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        for (hidden, input) in [(65, 65), (3, 1), (64, 257)] {
            let c = Case { saturating: true, seed: 200 + k as u64, ..case(cell, hidden, input, 3, 6) };
            check(&Case { initial: true, ..c.clone() });
            check(&Case { clip: Some(5.0), peepholes: c.cell.gates() == 4, ..c });
        }
    }
}

/// Every cell in every direction and layout, with and without lengths, initial states and bias;
/// seeds from `seed + 1`.
fn direction_layout_cases(mut seed: u64) -> Vec<Case> {
    let mut cases = Vec::new();
    for cell in CELLS {
        for direction in [Direction::Forward, Direction::Reverse, Direction::Bidirectional] {
            for layout in [0, 1] {
                for (sequence_lens, initial, bias) in [(false, false, true), (true, true, false), (true, false, true)] {
                    seed += 1;
                    let c = case(cell, 5, 3, 4, 6);
                    cases.push(Case { direction, layout, sequence_lens, initial, bias, seed, ..c });
                }
            }
        }
    }
    cases
}

#[test]
fn directions_layouts_lengths_and_initial_states() {
    direction_layout_cases(300).iter().for_each(check);
}

#[test]
fn every_activation_and_clip() {
    let mut seed = 400;
    for cell in CELLS {
        let per_dir = cell.activations_per_direction();
        for start in 0..ACTIVATIONS.len() {
            seed += 1;
            let acts: Vec<Activation> =
                (0..2 * per_dir).map(|k| ACTIVATIONS[(start + k * 3) % ACTIVATIONS.len()]).collect();
            let clip = (start % 2 == 0).then_some(2.5);
            let c = case(cell, 6, 4, 3, 5);
            check(&Case {
                direction: Direction::Bidirectional,
                activations: Some(acts),
                clip,
                seed,
                initial: true,
                ..c
            });
        }
    }
}

#[test]
fn lstm_peepholes_and_projection() {
    let mut seed = 500;
    for cell in [CellKind::Lstm { input_forget: false }, CellKind::Lstm { input_forget: true }] {
        for (hidden, proj) in [(13, None), (13, Some(5)), (5, Some(13)), (64, Some(17)), (1, Some(1))] {
            for direction in [Direction::Forward, Direction::Bidirectional] {
                seed += 1;
                let c = case(cell, hidden, 7, 3, 5);
                check(&Case { peepholes: true, proj, direction, initial: true, sequence_lens: true, seed, ..c });
            }
        }
    }
}

/// A NaN in one batch entry's input reaches every later step of that entry's Y and no other entry,
/// on the f32 kernels (which also match the reference) and the int8 ones.
#[test]
fn nan_in_nan_out() {
    for cell in CELLS {
        let spec = RecurrentSpec::new(cell, Direction::Forward, 5);
        let g = cell.gates();
        let mut xs = vec![0.5f32; 3 * 2 * 4];
        xs[4] = f32::NAN; // step 0, batch 1
        let x = Tensor::from_f32(vec![3, 2, 4], xs).unwrap();
        let w =
            Tensor::from_f32(vec![1, g * 5, 4], (0..g * 20).map(|i| (i % 7) as f32 * 0.05 - 0.15).collect()).unwrap();
        let r =
            Tensor::from_f32(vec![1, g * 5, 5], (0..g * 25).map(|i| (i % 5) as f32 * 0.05 - 0.1).collect()).unwrap();
        let inputs = RecurrentInputs::new(&x, &w, &r);
        let want = cell::run_reference(&spec, &inputs).unwrap();
        for isa in Isa::available() {
            for (int8, kernels) in [(false, CpuKernels::new(isa)), (true, CpuKernels::with_int8(isa))] {
                let what = format!("{isa:?} {cell:?} int8={int8}");
                let got = kernels.run(0, &spec, &inputs).unwrap();
                let y = got.y.as_f32().unwrap();
                for s in 0..3 {
                    let (b0, b1) = (&y[s * 10..s * 10 + 5], &y[s * 10 + 5..s * 10 + 10]);
                    assert!(b1.iter().all(|v| v.is_nan()), "{what}: NaN must reach Y (step {s})");
                    assert!(b0.iter().all(|v| v.is_finite()), "{what}: the other entry stays finite (step {s})");
                }
                if !int8 {
                    compare(&what, &got.y, &want.y);
                }
            }
        }
    }
}

#[test]
fn bad_shapes_are_errors() {
    let spec = RecurrentSpec::new(CellKind::Gru { linear_before_reset: true }, Direction::Forward, 4);
    let x = Tensor::from_f32(vec![2, 1, 3], vec![0.0; 6]).unwrap();
    let w = Tensor::from_f32(vec![1, 12, 2], vec![0.0; 24]).unwrap();
    let r = Tensor::from_f32(vec![1, 12, 4], vec![0.0; 48]).unwrap();
    let inputs = RecurrentInputs::new(&x, &w, &r);
    for isa in Isa::available() {
        let err = CpuKernels::new(isa).run(0, &spec, &inputs).unwrap_err();
        assert_eq!(err.code(), "shape");
    }
}

/// One-node graph whose W, R, B (and P) are constants: exercises `prepare`'s pre-packed path
/// (and a second node reading the same weights as a run-time value, packed on the fly).
#[test]
fn prepared_constant_weights_match_the_reference() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        let (h, i, b, t) = (33, 7, 3, 9);
        let g = cell.gates();
        let mut rng = Rng(77 + k as u64);
        let ws = 1.0 / ((h + i) as f32).sqrt();
        let consts = [
            Tensor::from_f32(vec![1, g * h, i], rng.vec(g * h * i, ws)).unwrap(),
            Tensor::from_f32(vec![1, g * h, h], rng.vec(g * h * h, ws)).unwrap(),
            Tensor::from_f32(vec![1, 2 * g * h], rng.vec(2 * g * h, 0.5)).unwrap(),
        ];
        // Values: 0 = X (input), 1..=3 = W R B (constants), 4 = Y, 5 = Y_h, 6 = Y_c.
        let spec = RecurrentSpec::new(cell, Direction::Forward, h);
        let outputs = if g == 4 { vec![Some(4), Some(5), Some(6)] } else { vec![Some(4), Some(5)] };
        let node = Node {
            name: "rnn".into(),
            op: Op::Recurrent(spec),
            inputs: vec![Some(0), Some(1), Some(2), Some(3)],
            outputs: outputs.clone(),
        };
        let decl = |name: &str, id| ValueDecl { name: name.into(), id, dtype: None, dims: None };
        let graph = Graph {
            value_names: ["x", "w", "r", "b", "y", "y_h", "y_c"].map(String::from).to_vec(),
            nodes: vec![node],
            inputs: vec![decl("x", 0)],
            outputs: outputs.iter().flatten().map(|&id| decl(["y", "y_h", "y_c"][id - 4], id)).collect(),
            constants: vec![
                None,
                Some(consts[0].clone()),
                Some(consts[1].clone()),
                Some(consts[2].clone()),
                None,
                None,
                None,
            ],
        };
        let x = Tensor::from_f32(vec![t, b, i], rng.vec(t * b * i, 1.0)).unwrap();
        let want = graph.run(vec![x.clone()]).unwrap();
        for isa in Isa::available() {
            let mut kernels = CpuKernels::new(isa);
            kernels.prepare(&graph.layers()).unwrap();
            assert_eq!(kernels.prepared_nodes(), 1);
            let got = graph.run_with(vec![x.clone()], &kernels).unwrap();
            assert_eq!(got.len(), want.len());
            for (gt, wt) in got.iter().zip(&want) {
                compare(&format!("{isa:?} {cell:?} prepared"), gt, wt);
            }
            // The same with int8 weights: W, R (and GRU's separate Rh) are packed in int8 once.
            let mut int8 = CpuKernels::with_int8(isa);
            int8.prepare(&graph.layers()).unwrap();
            assert_eq!(int8.backend(), webrnn::Backend::CpuInt8);
            let split = matches!(cell, CellKind::Gru { linear_before_reset: false });
            assert_eq!((int8.prepared_nodes(), int8.int8_matrices()), (1, if split { 3 } else { 2 }), "{cell:?}");
            let e_x = rounding_bound(i, row_norms(x.as_f32().unwrap(), i), row_norms(consts[0].as_f32().unwrap(), i));
            let e_h = rounding_bound(h, (h as f32, 1.0), row_norms(consts[1].as_f32().unwrap(), h));
            let tol = 4.0 * (e_x + e_h);
            let got = graph.run_with(vec![x.clone()], &int8).unwrap();
            for (gt, wt) in got.iter().zip(&want) {
                for (&g, &w) in gt.as_f32().unwrap().iter().zip(wt.as_f32().unwrap()) {
                    assert!((g - w).abs() <= tol, "{isa:?} {cell:?} int8 prepared: {g} vs {w}, tolerance {tol}");
                }
            }
        }
    }
}

/// A stream's steps, one call each, on prepared weights: every other such call takes `H·Rᵀ` first and
/// walks the panels backwards (`cpu/recurrent.rs`), which must change no bit of any output
/// against packing the weights afresh on each call (always forwards), and stays within the
/// reference's tolerance. f32 and int8, every instruction set, sizes with a leftover panel.
#[test]
fn alternating_single_steps_change_no_bit() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        for (h, i) in [(65, 9), (33, 70), (1, 3)] {
            let g = cell.gates();
            let mut rng = Rng(500 + k as u64 + h as u64);
            let ws = 1.0 / ((h + i) as f32).sqrt();
            let w = Tensor::from_f32(vec![1, g * h, i], rng.vec(g * h * i, ws)).unwrap();
            let r = Tensor::from_f32(vec![1, g * h, h], rng.vec(g * h * h, ws)).unwrap();
            let b = Tensor::from_f32(vec![1, 2 * g * h], rng.vec(2 * g * h, 0.5)).unwrap();
            let lstm = g == 4;
            // Values: 0 = X, 1..=3 = W R B, 4 = h0, 5 = c0 (inputs); 6 = Y, 7 = Y_h, 8 = Y_c.
            let spec = RecurrentSpec::new(cell, Direction::Forward, h);
            let mut inputs = vec![Some(0), Some(1), Some(2), Some(3), None, Some(4)];
            let mut outputs = vec![Some(6), Some(7)];
            if lstm {
                inputs.push(Some(5));
                outputs.push(Some(8));
            }
            let node = Node { name: "rnn".into(), op: Op::Recurrent(spec), inputs, outputs: outputs.clone() };
            let names = ["x", "w", "r", "b", "h0", "c0", "y", "y_h", "y_c"];
            let decl = |id: usize| ValueDecl { name: names[id].into(), id, dtype: None, dims: None };
            let graph = Graph {
                value_names: names.map(String::from).to_vec(),
                nodes: vec![node],
                inputs: if lstm { vec![decl(0), decl(4), decl(5)] } else { vec![decl(0), decl(4)] },
                outputs: outputs.iter().flatten().map(|&id| decl(id)).collect(),
                constants: vec![None, Some(w), Some(r), Some(b), None, None, None, None, None],
            };
            for isa in Isa::available() {
                for int8 in [false, true] {
                    let make = || if int8 { CpuKernels::with_int8(isa) } else { CpuKernels::new(isa) };
                    let mut prepared = make();
                    prepared.prepare(&graph.layers()).unwrap();
                    let fresh = make();
                    let mut state =
                        vec![Tensor::from_f32(vec![1, 1, h], vec![0.0; h]).unwrap(); if lstm { 2 } else { 1 }];
                    for step in 0..6 {
                        let x = Tensor::from_f32(vec![1, 1, i], rng.vec(i, 1.0)).unwrap();
                        let feed: Vec<Tensor> = std::iter::once(x).chain(state.iter().cloned()).collect();
                        let got = graph.run_with(feed.clone(), &prepared).unwrap();
                        let again = graph.run_with(feed.clone(), &fresh).unwrap();
                        let what = format!("{isa:?} {cell:?} h={h} i={i} int8={int8} step {step}");
                        for (a, b) in got.iter().zip(&again) {
                            let bits = |t: &Tensor| t.as_f32().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                            assert_eq!(bits(a), bits(b), "{what}");
                        }
                        if !int8 {
                            let want = graph.run(feed).unwrap();
                            for (gt, wt) in got.iter().zip(&want) {
                                compare(&what, gt, wt);
                            }
                        }
                        state = got[1..].to_vec();
                    }
                }
            }
        }
    }
}

/// sigmoid and tanh of every instruction set: ≤ 2e-6 from the f64 value over the whole f32 range,
/// never outside their ranges, NaN only from NaN. Random bit patterns plus a dense grid where the curves bend.
#[test]
fn vector_sigmoid_and_tanh_are_accurate_everywhere() {
    let mut rng = Rng(99);
    let mut xs: Vec<f32> = (0..100_000).map(|_| f32::from_bits(rng.next() as u32)).collect();
    xs.extend((-200_000..200_000).map(|k| k as f32 * 1e-4));
    xs.extend([0.0, -0.0, 1e-30, -1e-30, 8.9, 9.0, 9.1, 87.0, -87.0, 88.5, -88.5, 1e4, -1e4]);
    xs.extend([f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE]);
    for isa in Isa::available() {
        for (act, f) in [
            (Activation::Sigmoid, (|x: f64| 1.0 / (1.0 + (-x).exp())) as fn(f64) -> f64),
            (Activation::Tanh, f64::tanh),
        ] {
            let mut ys = xs.clone();
            isa.activate(act, &mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                if x.is_nan() {
                    assert!(y.is_nan(), "{isa:?} {act:?}(NaN) = {y}");
                    continue;
                }
                let want = f(x as f64);
                assert!((y as f64 - want).abs() <= 2e-6, "{isa:?} {act:?}({x:e}) = {y:e}, want {want:e}");
                let range = if act == Activation::Sigmoid { 0.0..=1.0 } else { -1.0..=1.0 };
                assert!(range.contains(&y), "{isa:?} {act:?}({x:e}) = {y:e} is outside {range:?}");
            }
        }
    }
}

// int8 weights (`CpuKernels::with_int8`) against the same f32 reference. Quantization error, not
// rounding, sets the tolerance here, so it is derived from each case's data:
//
// A pre-activation is a dot product `Σ a·w` computed as `Σ (s_a·q_a)(s_w·q_w)`, with `q_w` the
// weight rounded to the grid `s_w = max|w|/127` of its row and `q_a` the activation rounded to
// `s_a = max|a|/63` of its row; each rounding errs by at most half a step, so
// `|error| ≤ ½(s_w·‖a‖₁ + s_a·‖w‖₁) + ¾·k·s_a·s_w` (the GEMM-level tests in `src/cpu/int8.rs`
// check exactly this). Summed over the input product (`a` = the rows of X) and the recurrent one
// (`a` = the hidden state, `|h| ≤ max(1, |h0|)` for sigmoid/tanh cells, `‖P‖₁` times that with a
// projection) this is `E`, the worst error of one pre-activation in one step. The state's error
// is then at most `L·E / (1 - ρ)`: `L ≤ 2` covers the gate math of these cells (tanh is
// 1-Lipschitz, sigmoid ¼, GRU's `r ⊙ (R·h)` adds ¼·|R·h| ≤ 1 at these weight scales), and the
// test networks (weights ~ U(±1/√(input + hidden))) contract the previous step's error by
// `ρ ≤ ½`. So the tolerance is `4·E`. `E` assumes every rounding error has the same sign; in
// practice they cancel and the errors seen are 5-50× smaller (`INT8_REPORT=1` prints them).

/// The largest ‖row‖₁ and ‖row‖∞ over the rows of length `k` of `data`.
fn row_norms(data: &[f32], k: usize) -> (f32, f32) {
    data.chunks(k.max(1)).fold((0f32, 0f32), |(l1, max), row| {
        (l1.max(row.iter().map(|v| v.abs()).sum()), max.max(row.iter().fold(0f32, |m, v| m.max(v.abs()))))
    })
}

/// The worst-case error of a dot product of length `k` whose operands have the given norms.
fn rounding_bound(k: usize, (a1, amax): (f32, f32), (w1, wmax): (f32, f32)) -> f32 {
    let (sa, sw) = (amax / 63.0, wmax / 127.0);
    0.5 * (sw * a1 + sa * w1) + 0.75 * k as f32 * sa * sw
}

/// `4·E` for a case (see above).
fn int8_tolerance(c: &Case, built: &Built) -> f32 {
    let out = c.proj.unwrap_or(c.hidden);
    let h0 = built.init_h.as_ref().map_or(0.0, |h| row_norms(h.as_f32().unwrap(), out).1);
    let h_max = match &built.proj {
        Some(p) => row_norms(p.as_f32().unwrap(), c.hidden).0.max(h0),
        None => 1f32.max(h0),
    };
    let e_x = rounding_bound(
        c.input,
        row_norms(built.x.as_f32().unwrap(), c.input),
        row_norms(built.w.as_f32().unwrap(), c.input),
    );
    let e_h = rounding_bound(out, (out as f32 * h_max, h_max), row_norms(built.r.as_f32().unwrap(), out));
    4.0 * (e_x + e_h)
}

/// Runs `c` with int8 weights on every instruction set; every output within the tolerance of the
/// f32 reference. Returns the worst error seen as a fraction of the tolerance.
fn check_int8(c: &Case) -> f32 {
    let built = build(c);
    let inputs = built.inputs();
    let want = cell::run_reference(&built.spec, &inputs).unwrap();
    let tol = int8_tolerance(c, &built);
    let mut worst = 0f32;
    for isa in Isa::available() {
        let got =
            CpuKernels::with_int8(isa).run(0, &built.spec, &inputs).unwrap_or_else(|e| panic!("{isa:?} {c:?}: {e}"));
        let what = format!("int8 {} {c:?}", isa.name());
        let mut pairs = vec![(&got.y, &want.y, "Y"), (&got.y_h, &want.y_h, "Y_h")];
        if let (Some(g), Some(w)) = (&got.y_c, &want.y_c) {
            pairs.push((g, w, "Y_c"));
        }
        assert_eq!(got.y_c.is_some(), want.y_c.is_some(), "{what}: Y_c presence differs");
        for (g, w, name) in pairs {
            assert_eq!(g.shape(), w.shape(), "{name} of {what}: shape");
            for (k, (&g, &w)) in g.as_f32().unwrap().iter().zip(w.as_f32().unwrap()).enumerate() {
                assert!((g - w).abs() <= tol, "{name} of {what}: element {k} is {g}, reference {w}, tolerance {tol}");
                worst = worst.max((g - w).abs() / tol);
            }
        }
    }
    if std::env::var_os("INT8_REPORT").is_some() {
        println!(
            "int8 {:?} h={} i={} b={} t={}: max |diff| {:.1e} = {:.3} of the tolerance {tol:.1e}",
            c.cell,
            c.hidden,
            c.input,
            c.batch,
            c.seq,
            worst * tol,
            worst
        );
    }
    worst
}

#[test]
fn int8_sizes_that_break_vector_code() {
    for c in size_cases(600, 3, 6) {
        check_int8(&Case { initial: c.seed % 2 == 0, ..c });
    }
}

#[test]
fn int8_long_sequences_and_big_batches() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        check_int8(&Case { seed: 700 + k as u64, ..case(cell, 13, 5, 2, 1000) });
        check_int8(&Case { seed: 710 + k as u64, ..case(cell, 17, 9, 70, 3) });
    }
    check_int8(&Case { seed: 720, ..case(CellKind::Gru { linear_before_reset: true }, 64, 16, 1, 1000) });
}

#[test]
fn int8_directions_layouts_lengths_initial_states_and_projection() {
    for c in direction_layout_cases(800) {
        check_int8(&c);
    }
    let mut seed = 850;
    for cell in [CellKind::Lstm { input_forget: false }, CellKind::Lstm { input_forget: true }] {
        for (hidden, proj) in [(13, Some(5)), (5, Some(13)), (64, Some(17))] {
            seed += 1;
            let c = case(cell, hidden, 7, 3, 5);
            let direction = Direction::Bidirectional;
            check_int8(&Case { peepholes: true, proj, direction, initial: true, sequence_lens: true, seed, ..c });
        }
    }
}

/// Inputs up to ±10240: the quantized pre-activations are far off in absolute terms (their
/// rounding steps are ~100), but every gate saturates: outputs are finite and in [-1, 1], never NaN.
#[test]
fn int8_saturating_inputs_stay_finite_and_bounded() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        for (hidden, input) in [(65, 65), (3, 1), (64, 257)] {
            let c = Case { saturating: true, seed: 900 + k as u64, ..case(cell, hidden, input, 3, 6) };
            for c in
                [Case { initial: true, ..c.clone() }, Case { clip: Some(5.0), peepholes: c.cell.gates() == 4, ..c }]
            {
                let built = build(&c);
                for isa in Isa::available() {
                    let got = CpuKernels::with_int8(isa).run(0, &built.spec, &built.inputs()).unwrap();
                    for v in got.y.as_f32().unwrap().iter().chain(got.y_h.as_f32().unwrap()) {
                        assert!(v.is_finite() && v.abs() <= 1.0, "{isa:?} {c:?}: {v}");
                    }
                    if let Some(yc) = &got.y_c {
                        assert!(yc.as_f32().unwrap().iter().all(|v| v.is_finite()), "{isa:?} {c:?}: Y_c");
                    }
                }
            }
        }
    }
}
