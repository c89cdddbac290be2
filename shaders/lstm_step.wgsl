// One time step of an LSTM layer for a batch of sessions, gates i, o, f, c (ONNX order)
// interleaved, optional peepholes (vecs[4H..7H] = p_i, p_o, p_f), input_forget and clip. The cell
// state lives in the aux part of `state` and is updated in place by the invocation owning it.
// Includes cell_math.wgsl, step_params.wgsl and one matrix-product strategy: recurrent_matvec.wgsl
// (dispatch (ceil(H / 16), ceil(B / 16), 1)) or recurrent_gemv.wgsl (dispatch (ceil(H / 64), B, 1)).

const GATES: u32 = 4u;

@group(0) @binding(0) var<uniform> p: StepParams;
@group(0) @binding(1) var<storage, read> xw: array<f32>;
@group(0) @binding(2) var<storage, read> r: array<f32>;
@group(0) @binding(3) var<storage, read> vecs: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> lens: array<u32>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn lstm_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let acc = recurrent_matvec(p, h_read_offset(p), 15u, wg, lid);
    let j = entry_unit(wg, lid);
    let b = entry_batch(wg, lid);
    let hs = p.hidden;
    if (!entry_owner(lid) || j >= hs || b >= p.batch) {
        return;
    }
    let h_in = h_read_offset(p) + b * p.state_size + j;
    let h_out = h_write_offset(p) + b * p.state_size + j;
    if (p.step >= lens[b]) {
        state[h_out] = state[h_in];
        return;
    }
    let row = (p.local_step * p.batch + b) * GATES * hs + GATES * j;
    let rb = GATES * j;
    let peep = GATES * hs;
    let c_at = aux_offset(p) + b * hs + j;
    let c_prev = state[c_at];
    let i = gate(p, 0u, xw[row] + acc[0] + vecs[rb] + vecs[peep + j] * c_prev);
    var f = 1.0 - i;
    if ((p.flags & FLAG_INPUT_FORGET) == 0u) {
        f = gate(p, 0u, xw[row + 2u] + acc[2] + vecs[rb + 2u] + vecs[peep + 2u * hs + j] * c_prev);
    }
    let cand = gate(p, 1u, xw[row + 3u] + acc[3] + vecs[rb + 3u]);
    let c = f * c_prev + i * cand;
    let o = gate(p, 0u, xw[row + 1u] + acc[1] + vecs[rb + 1u] + vecs[peep + hs + j] * c);
    let h = o * activate(p.acts[2], c, p.alphas[2], p.betas[2]);
    state[c_at] = c;
    state[h_out] = h;
    y[(p.local_step * p.batch + b) * p.state_size + j] = h;
}
