// Shared by the recurrent step kernels: the per-step uniform (one 256-byte-aligned entry per step
// of a chunk, selected with a dynamic offset) and the state buffer layout.
//
// state = [h half 0: B*K | h half 1: B*K | aux: B*H], K = `state_size`. Step s reads h from half
// s % 2 and writes half (s + 1) % 2; aux is the LSTM cell state (updated in place) or the GRU
// `r * h` of the current step (linear_before_reset = 0).

const FLAG_LINEAR_BEFORE_RESET: u32 = 1u;
const FLAG_INPUT_FORGET: u32 = 2u;

struct StepParams {
    batch: u32,
    hidden: u32,
    state_size: u32,
    // Global step index s (selects the h half); the step within the chunk (selects xw and y rows).
    step: u32,
    local_step: u32,
    flags: u32,
    // Gate pre-activations are clamped to [-clip, clip] (f32 max when the model has no clip).
    clip: f32,
    pad: u32,
    // f, g, h activation kinds of `cell_math.wgsl`, and their parameters.
    acts: vec4<u32>,
    alphas: vec4<f32>,
    betas: vec4<f32>,
}

fn h_read_offset(p: StepParams) -> u32 {
    return (p.step % 2u) * p.batch * p.state_size;
}

fn h_write_offset(p: StepParams) -> u32 {
    return ((p.step + 1u) % 2u) * p.batch * p.state_size;
}

fn aux_offset(p: StepParams) -> u32 {
    return 2u * p.batch * p.state_size;
}

fn gate(p: StepParams, which: u32, x: f32) -> f32 {
    let c = clamp(x, -p.clip, p.clip);
    return activate(p.acts[which], c, p.alphas[which], p.betas[which]);
}
