//! Random recurrent nodes for the GPU differential tests, and the "no adapter" skip rule.
#![allow(dead_code)]

use webrnn::cell::{Activation, CellKind, Direction, RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use webrnn::Tensor;

/// A small deterministic generator (xorshift), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) as u32
    }
    /// Uniform in [-scale, scale).
    pub fn f32(&mut self, scale: f32) -> f32 {
        (self.next_u32() as f32 / 4_294_967_296.0 * 2.0 - 1.0) * scale
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32(scale)).collect()
    }
}

/// The tensors of one node; `inputs()` borrows them.
pub struct Case {
    pub spec: RecurrentSpec,
    pub x: Tensor,
    pub w: Tensor,
    pub r: Tensor,
    pub b: Option<Tensor>,
    pub lens: Option<Tensor>,
    pub h0: Option<Tensor>,
    pub c0: Option<Tensor>,
    pub p: Option<Tensor>,
}

impl Case {
    pub fn inputs(&self) -> RecurrentInputs<'_> {
        RecurrentInputs {
            b: self.b.as_ref(),
            sequence_lens: self.lens.as_ref(),
            initial_h: self.h0.as_ref(),
            initial_c: self.c0.as_ref(),
            p: self.p.as_ref(),
            proj: None,
            ..RecurrentInputs::new(&self.x, &self.w, &self.r)
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub seq: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
}

/// A random node: weights scaled so the state neither dies nor saturates at once, `x_scale` for
/// the inputs (1e4 saturates every gate), every option switched on by `rich`.
pub fn case(cell: CellKind, dir: Direction, s: Shape, x_scale: f32, rich: bool, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let Shape { seq, batch, input, hidden } = s;
    let dirs = dir.count();
    let g = cell.gates();
    let ws = 1.0 / (input.max(1) as f32).sqrt();
    let rs = 1.0 / (hidden as f32).sqrt();
    let mut spec = RecurrentSpec::new(cell, dir, hidden);
    let t = |shape: Vec<usize>, v: Vec<f32>| Tensor::from_f32(shape, v).unwrap();
    let mut c = Case {
        spec: spec.clone(),
        x: t(vec![seq, batch, input], rng.vec(seq * batch * input, x_scale)),
        w: t(vec![dirs, g * hidden, input], rng.vec(dirs * g * hidden * input, ws)),
        r: t(vec![dirs, g * hidden, hidden], rng.vec(dirs * g * hidden * hidden, rs)),
        b: Some(t(vec![dirs, 2 * g * hidden], rng.vec(dirs * 2 * g * hidden, 0.5))),
        lens: None,
        h0: None,
        c0: None,
        p: None,
    };
    if rich {
        c.h0 = Some(t(vec![dirs, batch, hidden], rng.vec(dirs * batch * hidden, 1.0)));
        if matches!(cell, CellKind::Lstm { .. }) {
            c.c0 = Some(t(vec![dirs, batch, hidden], rng.vec(dirs * batch * hidden, 1.0)));
            c.p = Some(t(vec![dirs, 3 * hidden], rng.vec(dirs * 3 * hidden, 0.5)));
        }
        let lens: Vec<i64> = (0..batch)
            .map(|b| if b % 3 == 1 { (rng.next_u32() as usize % (seq + 1)) as i64 } else { seq as i64 })
            .collect();
        c.lens = Some(Tensor::from_i64(vec![batch], lens).unwrap());
        spec.clip = Some(3.0);
    }
    c.spec = spec;
    c
}

/// `Y`, `Y_h` (and `Y_c`) within atol + rtol·|want|; returns the largest |diff|.
pub fn compare_outputs(what: &str, got: &RecurrentOutputs, want: &RecurrentOutputs, atol: f32, rtol: f32) -> f32 {
    let mut worst = 0f32;
    let mut pairs = vec![("Y", &got.y, &want.y), ("Y_h", &got.y_h, &want.y_h)];
    if let (Some(g), Some(w)) = (&got.y_c, &want.y_c) {
        pairs.push(("Y_c", g, w));
    }
    assert_eq!(got.y_c.is_some(), want.y_c.is_some(), "{what}: Y_c presence");
    for (name, g, w) in pairs {
        assert_eq!(g.shape(), w.shape(), "{what} {name}: shape");
        for (i, (&a, &b)) in g.as_f32().unwrap().iter().zip(w.as_f32().unwrap()).enumerate() {
            assert!(a.is_finite(), "{what} {name}[{i}] = {a}");
            let err = (a - b).abs();
            assert!(err <= atol + rtol * b.abs(), "{what} {name}[{i}]: {a} vs {b} (|diff| {err})");
            worst = worst.max(err);
        }
    }
    worst
}

pub const ALL_CELLS: [CellKind; 6] = [
    CellKind::Rnn,
    CellKind::Gru { linear_before_reset: false },
    CellKind::Gru { linear_before_reset: true },
    CellKind::Lstm { input_forget: false },
    CellKind::Lstm { input_forget: true },
    CellKind::Rnn,
];

/// Every activation the operators accept, for the activation sweep.
pub fn all_activations() -> Vec<Activation> {
    vec![
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::HardSigmoid { alpha: 0.2, beta: 0.5 },
        Activation::LeakyRelu { alpha: 0.01 },
        Activation::Elu { alpha: 1.0 },
        Activation::Softsign,
        Activation::Softplus,
        Activation::Affine { alpha: 0.5, beta: 0.1 },
        Activation::ScaledTanh { alpha: 1.5, beta: 0.7 },
        Activation::ThresholdedRelu { alpha: 0.3 },
    ]
}

/// The GPU kernels, or `None` after printing "skipped: no adapter" — which fails instead when
/// `WEBRNN_REQUIRE_GPU` is set (CI: `cargo xtask test` sets it, its machines have lavapipe).
pub fn gpu_or_skip(test: &str) -> Option<webrnn::gpu::GpuKernels> {
    match webrnn::gpu::GpuKernels::new() {
        Ok(k) => Some(k),
        Err(e) => {
            if std::env::var_os("WEBRNN_REQUIRE_GPU").is_some() {
                panic!("{test}: WEBRNN_REQUIRE_GPU is set but the GPU backend is unavailable: {e}");
            }
            println!("{test}: skipped: no adapter ({e})");
            None
        }
    }
}

/// The GPU kernels once per kernel family (tiled with barriers, barrier-free), so both run on
/// whatever adapter the tests find (`Auto` would pick only the barrier-free ones on lavapipe).
pub fn gpu_families_or_skip(test: &str) -> Vec<(&'static str, webrnn::gpu::GpuKernels)> {
    use webrnn::gpu::KernelChoice;
    let Some(tiled) = gpu_or_skip(test) else { return Vec::new() };
    let Some(free) = gpu_or_skip(test) else { return Vec::new() };
    vec![
        ("tiled", tiled.with_kernel_choice(KernelChoice::Tiled)),
        ("barrier-free", free.with_kernel_choice(KernelChoice::BarrierFree)),
    ]
}

pub const GPU_ATOL: f32 = 1e-4;
pub const GPU_RTOL: f32 = 1e-3;
