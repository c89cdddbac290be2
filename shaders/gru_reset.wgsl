// First of the two GRU dispatches of a step when linear_before_reset = 0: the reset gate
// r = f(clip(xw_r + h Rr^T + Rb_r)) and aux = r * h, which gru_step then multiplies by Rh.
// Includes cell_math.wgsl, step_params.wgsl and one matrix-product strategy: recurrent_matvec.wgsl
// (dispatch (ceil(H / 16), ceil(B / 16), 1)) or recurrent_gemv.wgsl (dispatch (ceil(H / 64), B, 1)).

const GATES: u32 = 3u;

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> xw: array<f32>;
@group(0) @binding(2) var<storage, read> r: array<f32>;
@group(0) @binding(3) var<storage, read> vecs: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> lens: array<u32>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn gru_reset(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = recurrent_matvec(p, h_read_offset(p), 2u, wg, lid);
    let j = entry_unit(wg, lid);
    let b = entry_batch(wg, lid);
    if (!entry_owner(lid) || j >= p.hidden || b >= p.batch || p.step >= lens[b]) {
        return;
    }
    let row = (p.local_step * p.batch + b) * GATES * p.hidden;
    let rg = gate(p, 0u, xw[row + GATES * j + 1u] + acc[1] + vecs[GATES * j + 1u]);
    state[aux_offset(p) + b * p.hidden + j] = rg * state[h_read_offset(p) + b * p.state_size + j];
}
