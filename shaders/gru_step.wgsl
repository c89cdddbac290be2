// One time step of a GRU layer for a batch of sessions, gates z, r, h (ONNX order) interleaved.
// linear_before_reset = 1: one dispatch, h~ = g(xw_h + r * (h Rh^T + Rb_h)).
// linear_before_reset = 0: after gru_reset wrote aux = r * h, h~ = g(xw_h + aux Rh^T + Rb_h).
// Then h' = (1 - z) h~ + z h.
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
fn gru_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lbr = (p.flags & FLAG_LINEAR_BEFORE_RESET) != 0u;
    // With lbr all three products come from h; without, z from h and the candidate from r * h.
    let acc = recurrent_matvec(p, h_read_offset(p), select(1u, 7u, lbr), wg, lid);
    var acc_rh = vec4<f32>(0.0);
    if (!lbr) {
        acc_rh = recurrent_matvec(p, aux_offset(p), 4u, wg, lid);
    }
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
    let row = (p.local_step * p.batch + b) * GATES * p.hidden + GATES * j;
    let rb = GATES * j;
    let z = gate(p, 0u, xw[row] + acc[0] + vecs[rb]);
    var cand = 0.0;
    if (lbr) {
        let rg = gate(p, 0u, xw[row + 1u] + acc[1] + vecs[rb + 1u]);
        cand = gate(p, 1u, xw[row + 2u] + rg * (acc[2] + vecs[rb + 2u]));
    } else {
        cand = gate(p, 1u, xw[row + 2u] + acc_rh[2] + vecs[rb + 2u]);
    }
    let h = (1.0 - z) * cand + z * state[h_in];
    state[h_out] = h;
    y[(p.local_step * p.batch + b) * p.state_size + j] = h;
}
