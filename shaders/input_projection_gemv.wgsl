// The input projection for a few rows (M <= 16: a session step of a small batch), where the
// 64 x 64 tiles of input_projection.wgsl would compute mostly padding:
//     out[M, N] = x[M, K] * w[N, K]^T + bias[N]
// One invocation per (column, block of 4 rows) walks the whole of K, applying each weight it
// loads to its 4 rows; no workgroup memory and no barrier (see recurrent_gemv.wgsl for why).
// Accumulates in f32. Dispatch: (ceil(N / 64), ceil(M / 4), 1).

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: GemmParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const COLS: u32 = 64u;
const ROWS: u32 = 4u;

@compute @workgroup_size(64, 1, 1)
fn input_projection_gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wg.x * COLS + lid.x;
    let r0 = wg.y * ROWS;
    if (c >= params.n || r0 >= params.m) {
        return;
    }
    // Rows past M read row 0 again (always in bounds) and are never written.
    let rows = vec4<u32>(r0, r0 + 1u, r0 + 2u, r0 + 3u);
    let row_base = select(vec4<u32>(0u), rows * params.k, rows < vec4<u32>(params.m));
    var acc = vec4<f32>(0.0);
    let w_row = c * params.k;
    for (var k = 0u; k < params.k; k++) {
        let xv = vec4<f32>(x[row_base.x + k], x[row_base.y + k], x[row_base.z + k], x[row_base.w + k]);
        acc = fma(xv, vec4<f32>(w[w_row + k]), acc);
    }
    for (var i = 0u; i < ROWS; i++) {
        if (r0 + i < params.m) {
            out[(r0 + i) * params.n + c] = acc[i] + bias[c];
        }
    }
}
