// Shared by the recurrent step kernels (prepended to them by plain concatenation): the activation
// functions of the ONNX recurrent operators, written so that any finite input gives the CPU
// reference's result. WGSL lets implementations assume exp never overflows and tanh is
// indeterminate past |x| ~ 88, so every exp argument is clamped first.

const ACT_SIGMOID: u32 = 0u;
const ACT_TANH: u32 = 1u;
const ACT_RELU: u32 = 2u;
const ACT_HARD_SIGMOID: u32 = 3u;
const ACT_LEAKY_RELU: u32 = 4u;
const ACT_ELU: u32 = 5u;
const ACT_SOFTSIGN: u32 = 6u;
const ACT_SOFTPLUS: u32 = 7u;
const ACT_AFFINE: u32 = 8u;
const ACT_SCALED_TANH: u32 = 9u;
const ACT_THRESHOLDED_RELU: u32 = 10u;

// exp(80) ~ 5.5e34 is finite in f32; sigmoid(-80) ~ 1.8e-35 is the reference's 0 to any tolerance.
fn sigmoid_clamped(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-clamp(x, -80.0, 80.0)));
}

// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) in (0, 1]; tanh(20) is 1 in f32.
fn tanh_clamped(x: f32) -> f32 {
    let e = exp(-2.0 * min(abs(x), 20.0));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

// log(1 + e) without losing e when e is tiny (Goldberg's trick; WGSL has no log1p).
fn log1p_accurate(e: f32) -> f32 {
    let u = 1.0 + e;
    if (u == 1.0) {
        return e;
    }
    return log(u) * e / (u - 1.0);
}

fn activate(kind: u32, x: f32, alpha: f32, beta: f32) -> f32 {
    switch kind {
        case 0u: { return sigmoid_clamped(x); }
        case 1u: { return tanh_clamped(x); }
        case 2u: { return max(x, 0.0); }
        case 3u: { return clamp(alpha * x + beta, 0.0, 1.0); }
        case 4u: { return select(x, alpha * x, x < 0.0); }
        case 5u: { return select(x, alpha * (exp(max(x, -80.0)) - 1.0), x < 0.0); }
        case 6u: { return x / (1.0 + abs(x)); }
        case 7u: { return select(log1p_accurate(exp(min(max(x, -80.0), 20.0))), x, x > 20.0); }
        case 8u: { return alpha * x + beta; }
        case 9u: { return alpha * tanh_clamped(beta * x); }
        case 10u: { return select(0.0, x, x > alpha); }
        default: { return x; }
    }
}
