// One time step of a plain RNN layer for a batch of sessions: h' = f(clip(xw + h R^T + Rb)).
// Includes cell_math.wgsl, step_params.wgsl and one matrix-product strategy: recurrent_matvec.wgsl
// (dispatch (ceil(H / 16), ceil(B / 16), 1)) or recurrent_gemv.wgsl (dispatch (ceil(H / 64), B, 1)).

const GATES: u32 = 1u;

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> xw: array<f32>;
@group(0) @binding(2) var<storage, read> r: array<f32>;
@group(0) @binding(3) var<storage, read> vecs: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> lens: array<u32>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn rnn_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = recurrent_matvec(p, h_read_offset(p), 1u, wg, lid);
    let j = entry_unit(wg, lid);
    let b = entry_batch(wg, lid);
    if (!entry_owner(lid) || j >= p.hidden || b >= p.batch) {
        return;
    }
    let h_in = h_read_offset(p) + b * p.state_size + j;
    let h_out = h_write_offset(p) + b * p.state_size + j;
    if (p.step >= lens[b]) {
        state[h_out] = state[h_in];
        return;
    }
    let row = (p.local_step * p.batch + b) * p.hidden;
    let h = gate(p, 0u, xw[row + j] + acc[0] + vecs[j]);
    state[h_out] = h;
    y[(p.local_step * p.batch + b) * p.state_size + j] = h;
}
