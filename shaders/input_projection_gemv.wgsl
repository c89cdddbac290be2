// The input projection for a few rows (M <= 16: a session step of a small batch), where the
// 64 x 64 tiles of input_projection.wgsl would compute mostly padding:
//     out[M, N] = x[M, K] * w[N, K]^T + bias[N]
// A 64 x 4 workgroup computes 4 output columns for 4 rows: 64 invocations split K (coalesced
// loads of w's rows), each weight applied to all 4 rows, then a tree reduction in workgroup
// memory (4 KiB). Accumulates in f32. Dispatch: (ceil(N / 4), ceil(M / 4), 1).

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

const LANES: u32 = 64u;
const COLS: u32 = 4u;
const ROWS: u32 = 4u;

// [column in group * ROWS + row in group][lane]
var<workgroup> partial: array<array<f32, 64>, 16>;

@compute @workgroup_size(64, 4, 1)
fn input_projection_gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wg.x * COLS + lid.y;
    let r0 = wg.y * ROWS;
    var acc = vec4<f32>(0.0);
    if (c < params.n) {
        // Rows past M read row 0 again (always in bounds) and are never written.
        let rows = vec4<u32>(r0, r0 + 1u, r0 + 2u, r0 + 3u);
        let row_base = select(vec4<u32>(0u), rows * params.k, rows < vec4<u32>(params.m));
        for (var k = lid.x; k < params.k; k += LANES) {
            let xv = vec4<f32>(x[row_base.x + k], x[row_base.y + k], x[row_base.z + k], x[row_base.w + k]);
            acc = fma(xv, vec4<f32>(w[c * params.k + k]), acc);
        }
    }
    for (var i = 0u; i < ROWS; i++) {
        partial[lid.y * ROWS + i][lid.x] = acc[i];
    }
    workgroupBarrier();
    for (var stride = LANES / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            for (var i = 0u; i < ROWS; i++) {
                partial[lid.y * ROWS + i][lid.x] += partial[lid.y * ROWS + i][lid.x + stride];
            }
        }
        workgroupBarrier();
    }
    if (lid.x < ROWS && c < params.n && r0 + lid.x < params.m) {
        out[(r0 + lid.x) * params.n + c] = partial[lid.y * ROWS + lid.x][0] + bias[c];
    }
}
