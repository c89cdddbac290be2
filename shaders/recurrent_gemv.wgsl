// Shared by the recurrent step kernels, for batches of 1 to 8 (memory-bound): one workgroup per
// hidden unit and 4 batch entries. 64 invocations split K (consecutive k: coalesced loads of R's
// rows and of h), each applies every weight it loads to all 4 batch entries, then a tree
// reduction in workgroup memory; invocations 0..3 finish batch entries 0..3. The kernel that
// includes this file defines `const GATES: u32` and the `r` and `state` bindings.

const GEMV_LANES: u32 = 64u;
const GEMV_BATCH: u32 = 4u;
const WG_X: u32 = 64u;
const WG_Y: u32 = 1u;

// [gate * GEMV_BATCH + batch entry][lane]: 16 x 64 f32 = 4 KiB.
var<workgroup> partial: array<array<f32, 64>, 16>;

fn entry_unit(wg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return wg.x;
}

fn entry_batch(wg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return wg.y * GEMV_BATCH + lid.x;
}

fn entry_owner(lid: vec3<u32>) -> bool {
    return lid.x < GEMV_BATCH;
}

// As recurrent_matvec.wgsl: the gates of this invocation's entry (meaningful for owners only).
// Must be called in uniform control flow (it has barriers).
fn recurrent_matvec(p: StepParams, src_off: u32, gate_mask: u32, wg: vec3<u32>, lid: vec3<u32>) -> vec4<f32> {
    let k_len = p.state_size;
    let j = wg.x;
    let b0 = wg.y * GEMV_BATCH;
    var acc: array<vec4<f32>, 4>;
    for (var bb = 0u; bb < GEMV_BATCH; bb++) {
        acc[bb] = vec4<f32>(0.0);
    }
    if (j < p.hidden) {
        for (var k = lid.x; k < k_len; k += GEMV_LANES) {
            var w = vec4<f32>(0.0);
            for (var g = 0u; g < GATES; g++) {
                if (((gate_mask >> g) & 1u) != 0u) {
                    w[g] = r[(j * GATES + g) * k_len + k];
                }
            }
            for (var bb = 0u; bb < GEMV_BATCH; bb++) {
                if (b0 + bb < p.batch) {
                    acc[bb] = fma(w, vec4<f32>(state[src_off + (b0 + bb) * k_len + k]), acc[bb]);
                }
            }
        }
    }
    // A previous call's owners may still be reading `partial`.
    workgroupBarrier();
    for (var g = 0u; g < 4u; g++) {
        for (var bb = 0u; bb < GEMV_BATCH; bb++) {
            partial[g * GEMV_BATCH + bb][lid.x] = acc[bb][g];
        }
    }
    workgroupBarrier();
    for (var stride = GEMV_LANES / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            for (var i = 0u; i < 16u; i++) {
                partial[i][lid.x] += partial[i][lid.x + stride];
            }
        }
        workgroupBarrier();
    }
    var out = vec4<f32>(0.0);
    if (lid.x < GEMV_BATCH) {
        for (var g = 0u; g < 4u; g++) {
            out[g] = partial[g * GEMV_BATCH + lid.x][0];
        }
    }
    return out;
}
