// Shared by the recurrent step kernels, for batches above 8: the recurrent matrix product of one
// step for a tile of 16 batch entries x 16 hidden units, all gates of each unit, K walked in tiles
// of 16 through workgroup memory. The kernel that includes this file defines `const GATES: u32`
// and the `r` and `state` bindings. (recurrent_gemv.wgsl is the small-batch alternative.)
//
// R's rows are interleaved (row GATES*j + g holds gate g of hidden unit j), so the rows of a
// workgroup's 16 units are one contiguous block: every load below is coalesced along k, and the
// gate math afterwards stays in the invocation that owns unit j.

const TB: u32 = 16u;
const TJ: u32 = 16u;
const TK: u32 = 16u;
const WG_X: u32 = 16u;
const WG_Y: u32 = 16u;

// Which (batch entry, hidden unit) an invocation finishes, and whether it finishes one at all.
fn entry_unit(wg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return wg.x * TJ + lid.x;
}

fn entry_batch(wg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return wg.y * TB + lid.y;
}

fn entry_owner(lid: vec3<u32>) -> bool {
    return true;
}

var<workgroup> h_tile: array<array<f32, 16>, 16>;
var<workgroup> r_tile: array<array<f32, 16>, 64>;

// Returns sum_k src[b, k] * R[GATES*j + g, k] for g < GATES, where (b, j) is this invocation's
// entry and src is the B x K matrix at `src_off` in `state`. Gates not in `gate_mask` are not
// loaded (they come back 0). Must be called in uniform control flow (it has barriers).
fn recurrent_matvec(p: StepParams, src_off: u32, gate_mask: u32, wg: vec3<u32>, lid: vec3<u32>) -> vec4<f32> {
    let k_len = p.state_size;
    let j0 = wg.x * TJ;
    let b0 = wg.y * TB;
    let tid = lid.y * 16u + lid.x;
    let rows = TJ * GATES;
    var acc = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < k_len; k0 += TK) {
        let hb = b0 + lid.y;
        let hk = k0 + lid.x;
        var hv = 0.0;
        if (hb < p.batch && hk < k_len) {
            hv = state[src_off + hb * k_len + hk];
        }
        h_tile[lid.y][lid.x] = hv;
        for (var e = 0u; e < GATES; e++) {
            let idx = tid + e * 256u;
            let row = idx / TK;
            let kk = idx % TK;
            let g = row % GATES;
            let unit = j0 + row / GATES;
            var rv = 0.0;
            if (row < rows && unit < p.hidden && k0 + kk < k_len && ((gate_mask >> g) & 1u) != 0u) {
                rv = r[(j0 * GATES + row) * k_len + k0 + kk];
            }
            r_tile[row][kk] = rv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let hk_val = h_tile[lid.y][kk];
            for (var g = 0u; g < GATES; g++) {
                acc[g] = fma(r_tile[lid.x * GATES + g][kk], hk_val, acc[g]);
            }
        }
        workgroupBarrier();
    }
    return acc;
}
