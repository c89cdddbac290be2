// Shared by the recurrent step kernels, for batches of 1 to 8 (few outputs, memory-bound): one
// invocation per (hidden unit, batch entry) walks the whole of K for every gate of its unit, with
// no workgroup memory and no barrier. A barrier-free kernel matters on software adapters
// (SwiftShader runs each invocation of a workgroup with barriers as a coroutine and switches
// between them at every barrier, which made the former K-split + tree-reduction variant ~50x
// slower there), and on real GPUs a step of a few sessions is bound by the dispatch, not by the
// product. The kernel that includes this file defines `const GATES: u32` and the `r` and `state`
// bindings. Dispatch: (ceil(H / 64), B, 1).

const GEMV_UNITS: u32 = 64u;
const WG_X: u32 = 64u;
const WG_Y: u32 = 1u;

fn entry_unit(wg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return wg.x * GEMV_UNITS + lid.x;
}

fn entry_batch(wg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return wg.y;
}

fn entry_owner(lid: vec3<u32>) -> bool {
    return true;
}

// As recurrent_matvec.wgsl: the gates (selected by `gate_mask`) of this invocation's unit for its
// batch entry, summed over K = p.state_size from `state[src_off + b * K ..]`.
fn recurrent_matvec(p: StepParams, src_off: u32, gate_mask: u32, wg: vec3<u32>, lid: vec3<u32>) -> vec4<f32> {
    let k_len = p.state_size;
    let j = entry_unit(wg, lid);
    let b = entry_batch(wg, lid);
    var acc = vec4<f32>(0.0);
    if (j >= p.hidden || b >= p.batch) {
        return acc;
    }
    let h0 = src_off + b * k_len;
    for (var g = 0u; g < GATES; g++) {
        if (((gate_mask >> g) & 1u) == 0u) {
            continue;
        }
        let row = (j * GATES + g) * k_len;
        // Four independent partial sums: shorter dependency chains than one running sum.
        var s = vec4<f32>(0.0);
        var k = 0u;
        for (; k + 4u <= k_len; k += 4u) {
            let hv = vec4<f32>(state[h0 + k], state[h0 + k + 1u], state[h0 + k + 2u], state[h0 + k + 3u]);
            let rv = vec4<f32>(r[row + k], r[row + k + 1u], r[row + k + 2u], r[row + k + 3u]);
            s = fma(rv, hv, s);
        }
        for (; k < k_len; k++) {
            s.x = fma(r[row + k], state[h0 + k], s.x);
        }
        acc[g] = (s.x + s.y) + (s.z + s.w);
    }
    return acc;
}
