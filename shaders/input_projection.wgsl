// The input projection of a chunk of time steps as one tiled GEMM:
//     out[M, N] = x[M, K] * w[N, K]^T + bias[N]
// with M = steps * batch, K = input size, N = gates * hidden (rows interleaved, row G*j + g).
// A 16x16 workgroup computes a 64x64 output tile, 4x4 outputs per invocation, walking K in tiles
// of 16 held in workgroup memory (2 x 4 KiB). Accumulates in f32.

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

const TILE: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> x_tile: array<array<f32, 64>, 16>;
var<workgroup> w_tile: array<array<f32, 64>, 16>;

@compute @workgroup_size(16, 16, 1)
fn input_projection(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let tid = lid.y * 16u + lid.x;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (var k0 = 0u; k0 < params.k; k0 += TK) {
        // 64 x 16 elements of each operand, four per invocation, consecutive invocations reading
        // consecutive k (coalesced).
        for (var e = 0u; e < 4u; e++) {
            let idx = tid + e * 256u;
            let r = idx / TK;
            let kk = idx % TK;
            let gk = k0 + kk;
            let gr = row0 + r;
            let gc = col0 + r;
            var xv = 0.0;
            if (gr < params.m && gk < params.k) {
                xv = x[gr * params.k + gk];
            }
            var wv = 0.0;
            if (gc < params.n && gk < params.k) {
                wv = w[gc * params.k + gk];
            }
            x_tile[kk][r] = xv;
            w_tile[kk][r] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = x_tile[kk][lid.y + 16u * i];
                b[i] = w_tile[kk][lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(a[i], b[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x + 16u * j;
            if (r < params.m && c < params.n) {
                out[r * params.n + c] = acc[i][j] + bias[c];
            }
        }
    }
}
