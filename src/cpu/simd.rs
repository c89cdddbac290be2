//! The few vector operations the kernels need, as one small trait with one implementation per
//! instruction set, and the vectorized `sigmoid` and `tanh` written once on top of it.
//!
//! Every vector is four `f32` lanes: wasm's only width, and one SSE register natively.

use crate::cell::Activation;

/// Four lanes in memory. Buffers the kernels touch are `Vec<F4>`, so every load is in bounds by type.
pub type F4 = [f32; 4];

pub trait Simd: Copy {
    type V: Copy;
    fn splat(x: f32) -> Self::V;
    fn load(p: &F4) -> Self::V;
    fn store(v: Self::V, p: &mut F4);
    fn add(a: Self::V, b: Self::V) -> Self::V;
    fn sub(a: Self::V, b: Self::V) -> Self::V;
    fn mul(a: Self::V, b: Self::V) -> Self::V;
    fn div(a: Self::V, b: Self::V) -> Self::V;
    /// `a·b + c`, fused or not.
    fn madd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise min/max; what they do with NaN does not matter to the callers.
    fn min(a: Self::V, b: Self::V) -> Self::V;
    fn max(a: Self::V, b: Self::V) -> Self::V;
    /// `x` where `x` is NaN, else `r`.
    fn nan_or(x: Self::V, r: Self::V) -> Self::V;

    // The dot product of the int8 weights (`cpu/int8.rs`): four `i32` lanes, one per column
    // of a block of four columns by four consecutive `k` (`w[4·c + j]` is column `c`, `k` offset `j`).
    /// How [`Simd::dot4`] wants the 16 weight bytes: `false`, four consecutive `k` per column
    /// (column `c`, offset `j` at `4·c + j`); `true`, `k` 0-1 of the four columns in bytes 0..8 and
    /// `k` 2-3 in bytes 8..16 (`2·c + j % 2`), so that each half sign-extends to the `k` pairs
    /// that `i32x4.dot_i16x8_s` multiplies.
    const INT8_PAIRS: bool;
    /// Four `i32` accumulators.
    type Acc: Copy;
    /// Four activations as [`Simd::dot4`] wants them, made once per four `k`.
    type Act: Copy;
    fn acc_zero() -> Self::Acc;
    /// The four activation bytes of `quad` (little-endian), each in `1..=127`.
    fn act(quad: u32) -> Self::Act;
    /// `acc[c] + Σ_j w(c, j)·u[j]` for the block `w` laid out as [`Simd::INT8_PAIRS`] says; exact
    /// (no lane can overflow for `k` within `int8::MAX_K`).
    fn dot4(acc: Self::Acc, w: &[i8; 16], u: Self::Act) -> Self::Acc;
    /// `acc - comp` as floats.
    fn acc_to_f32(acc: Self::Acc, comp: &[i32; 4]) -> Self::V;
}

/// Numerator (odd, `x·p(x²)`) and denominator (even, `q(x²)`) of the 13/6-degree rational
/// interpolant of `tanh` on [-9, 9] that Eigen and ORT's MLAS use (a couple of ulp there).
const TANH_P: [f32; 7] =
    [-2.760_768_5e-16, 2.000_188e-13, -8.604_672e-11, 5.122_297e-8, 1.485_722_4e-5, 6.372_619_3e-4, 4.893_524_6e-3];
const TANH_Q: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3];

/// Every constant of [`tanh_rational_by`], by index: `TANH_P` from 0, `TANH_Q` from `Q`, then the
/// clamps and ½ at `K` (-9, 9, -1, 1, ½).
const ALL: [f32; 16] = {
    let ks = [-9.0, 9.0, -1.0, 1.0, 0.5];
    let mut all = [0.0; 16];
    let mut i = 0;
    while i < 16 {
        all[i] = if i < Q {
            TANH_P[i]
        } else if i < K {
            TANH_Q[i - Q]
        } else {
            ks[i - K]
        };
        i += 1;
    }
    all
};
const Q: usize = TANH_P.len();
const K: usize = Q + TANH_Q.len();
const HALF: usize = K + 4;

/// [`ALL`] as vectors in memory, for the kernels' activation passes.
///
/// Written as `splat`s, each constant is a `v128.const` to V8, which, out of registers in a loop
/// of sixteen of them, rebuilds each one on every use (a 64-bit move and an unpack: three
/// instructions for one); loaded from here it is one load from L1. Made at run time
/// ([`consts`]) so that LLVM cannot fold the loads back into constants.
#[derive(Debug)]
pub struct Consts([F4; ALL.len()]);

/// The activation constants ([`Consts`]); the first call makes them.
pub fn consts() -> &'static Consts {
    static CONSTS: std::sync::OnceLock<Consts> = std::sync::OnceLock::new();
    CONSTS.get_or_init(|| Consts(ALL.map(|c| [c; 4])))
}

/// `tanh` by the rational interpolant, within [-1, 1] (the interpolant overshoots ±1 by a few ulp
/// near ±9); for `x` not NaN (NaN comes out NaN or not, callers decide). Nine multiply-adds, two
/// multiplies and one division, against an `exp`, a division and range checks for
/// `(1 - e^-2x) / (1 + e^-2x)`. `c(i)` is constant `ALL[i]`, splatted or loaded: the same values
/// and operations either way.
#[inline(always)]
fn tanh_rational_by<S: Simd>(x: S::V, c: impl Fn(usize) -> S::V) -> S::V {
    let x = S::min(S::max(x, c(K)), c(K + 1));
    let x2 = S::mul(x, x);
    let mut p = c(0);
    for i in 1..Q {
        p = S::madd(p, x2, c(i));
    }
    let mut q = c(Q);
    for i in Q + 1..K {
        q = S::madd(q, x2, c(i));
    }
    S::min(S::max(S::div(S::mul(p, x), q), c(K + 2)), c(K + 3))
}

#[inline(always)]
fn splatted<S: Simd>(i: usize) -> S::V {
    S::splat(ALL[i])
}

/// `1 / (1 + e^-x) = ½ + ½·tanh(x/2)`, within [0, 1] and ≤ 2.6e-7 from the exact value (absolute:
/// far out on the left it is 0, not e^x); NaN for NaN, never NaN otherwise.
#[inline(always)]
pub fn sigmoid<S: Simd>(x: S::V) -> S::V {
    let half = splatted::<S>(HALF);
    let t = tanh_rational_by::<S>(S::mul(x, half), splatted::<S>);
    S::nan_or(x, S::madd(t, half, half))
}

/// `tanh(x)`, ≤ 4.2e-7 from the exact value; |x| ≥ 9 rounds to ±1 in f32 anyway.
#[inline(always)]
pub fn tanh<S: Simd>(x: S::V) -> S::V {
    S::nan_or(x, tanh_rational_by::<S>(x, splatted::<S>))
}

/// [`sigmoid`] with its constants loaded from `t` (the same bits).
#[inline(always)]
pub fn sigmoid_in<S: Simd>(x: S::V, t: &Consts) -> S::V {
    let half = S::load(&t.0[HALF]);
    let tr = tanh_rational_by::<S>(S::mul(x, half), |i| S::load(&t.0[i]));
    S::nan_or(x, S::madd(tr, half, half))
}

/// [`tanh`] with its constants loaded from `t` (the same bits).
#[inline(always)]
pub fn tanh_in<S: Simd>(x: S::V, t: &Consts) -> S::V {
    S::nan_or(x, tanh_rational_by::<S>(x, |i| S::load(&t.0[i])))
}

/// One activation on four lanes: vector code for the common ones, the scalar reference otherwise.
#[inline(always)]
pub fn activate<S: Simd>(act: Activation, x: S::V) -> S::V {
    match act {
        Activation::Sigmoid => sigmoid::<S>(x),
        Activation::Tanh => tanh::<S>(x),
        other => {
            let mut lanes = [0f32; 4];
            S::store(x, &mut lanes);
            S::load(&lanes.map(|v| other.apply(v)))
        }
    }
}

/// The `clip` attribute: NaN stays NaN (as `f32::clamp` keeps it).
#[inline(always)]
pub fn clip<S: Simd>(x: S::V, clip: Option<f32>) -> S::V {
    match clip {
        Some(c) => S::nan_or(x, S::min(S::max(x, S::splat(-c)), S::splat(c))),
        None => x,
    }
}

/// Portable four-lane code: plain arrays that LLVM turns into SSE (natively) or leaves scalar.
#[derive(Debug, Clone, Copy)]
pub struct Portable;

macro_rules! lanes {
    (|$($a:ident),+| $e:expr) => {
        [0, 1, 2, 3].map(|i| {
            $(let $a = $a[i];)+
            $e
        })
    };
}

impl Simd for Portable {
    type V = F4;
    #[inline(always)]
    fn splat(x: f32) -> F4 {
        [x; 4]
    }
    #[inline(always)]
    fn load(p: &F4) -> F4 {
        *p
    }
    #[inline(always)]
    fn store(v: F4, p: &mut F4) {
        *p = v;
    }
    #[inline(always)]
    fn add(a: F4, b: F4) -> F4 {
        lanes!(|a, b| a + b)
    }
    #[inline(always)]
    fn sub(a: F4, b: F4) -> F4 {
        lanes!(|a, b| a - b)
    }
    #[inline(always)]
    fn mul(a: F4, b: F4) -> F4 {
        lanes!(|a, b| a * b)
    }
    #[inline(always)]
    fn div(a: F4, b: F4) -> F4 {
        lanes!(|a, b| a / b)
    }
    #[inline(always)]
    fn madd(a: F4, b: F4, c: F4) -> F4 {
        lanes!(|a, b, c| a * b + c)
    }
    #[inline(always)]
    fn min(a: F4, b: F4) -> F4 {
        lanes!(|a, b| if a < b { a } else { b })
    }
    #[inline(always)]
    fn max(a: F4, b: F4) -> F4 {
        lanes!(|a, b| if a > b { a } else { b })
    }
    #[inline(always)]
    fn nan_or(x: F4, r: F4) -> F4 {
        lanes!(|x, r| if x.is_nan() { x } else { r })
    }

    const INT8_PAIRS: bool = false;
    type Acc = [i32; 4];
    type Act = [i32; 4];
    #[inline(always)]
    fn acc_zero() -> [i32; 4] {
        [0; 4]
    }
    #[inline(always)]
    fn act(quad: u32) -> [i32; 4] {
        quad.to_le_bytes().map(i32::from)
    }
    #[inline(always)]
    fn dot4(acc: [i32; 4], w: &[i8; 16], u: [i32; 4]) -> [i32; 4] {
        [0, 1, 2, 3].map(|c| {
            let w = &w[4 * c..4 * c + 4];
            (0..4).fold(acc[c], |s, j| s.wrapping_add(i32::from(w[j]) * u[j]))
        })
    }
    #[inline(always)]
    fn acc_to_f32(acc: [i32; 4], comp: &[i32; 4]) -> F4 {
        [0, 1, 2, 3].map(|c| acc[c].wrapping_sub(comp[c]) as f32)
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use wasm::*;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{Simd, F4};
    use core::arch::wasm32::*;

    /// WebAssembly SIMD (`simd128`).
    #[derive(Debug, Clone, Copy)]
    pub struct Simd128;

    /// WebAssembly relaxed SIMD: `simd128` with fused multiply-add where the engine has it.
    #[cfg(target_feature = "relaxed-simd")]
    #[derive(Debug, Clone, Copy)]
    pub struct RelaxedSimd;

    macro_rules! wasm_simd {
        ($name:ident, $madd:expr, { $($int8:tt)* }) => {
            impl Simd for $name {
                type V = v128;
                #[inline(always)]
                fn splat(x: f32) -> v128 {
                    f32x4_splat(x)
                }
                #[inline(always)]
                fn load(p: &F4) -> v128 {
                    // SAFETY: `p` is 16 readable bytes; v128_load has no alignment requirement.
                    unsafe { v128_load(p.as_ptr().cast()) }
                }
                #[inline(always)]
                fn store(v: v128, p: &mut F4) {
                    // SAFETY: `p` is 16 writable bytes; v128_store has no alignment requirement.
                    unsafe { v128_store(p.as_mut_ptr().cast(), v) }
                }
                #[inline(always)]
                fn add(a: v128, b: v128) -> v128 {
                    f32x4_add(a, b)
                }
                #[inline(always)]
                fn sub(a: v128, b: v128) -> v128 {
                    f32x4_sub(a, b)
                }
                #[inline(always)]
                fn mul(a: v128, b: v128) -> v128 {
                    f32x4_mul(a, b)
                }
                #[inline(always)]
                fn div(a: v128, b: v128) -> v128 {
                    f32x4_div(a, b)
                }
                #[inline(always)]
                fn madd(a: v128, b: v128, c: v128) -> v128 {
                    $madd(a, b, c)
                }
                #[inline(always)]
                fn min(a: v128, b: v128) -> v128 {
                    f32x4_pmin(a, b)
                }
                #[inline(always)]
                fn max(a: v128, b: v128) -> v128 {
                    f32x4_pmax(a, b)
                }
                #[inline(always)]
                fn nan_or(x: v128, r: v128) -> v128 {
                    v128_bitselect(x, r, f32x4_ne(x, x))
                }
                #[inline(always)]
                fn acc_to_f32(acc: v128, comp: &[i32; 4]) -> v128 {
                    // SAFETY: `comp` is 16 readable bytes; v128_load has no alignment requirement.
                    f32x4_convert_i32x4(i32x4_sub(acc, unsafe { v128_load(comp.as_ptr().cast()) }))
                }
                $($int8)*
            }
        };
    }

    // simd128: each half of the block (`k` 0-1 of the four columns, then `k` 2-3) loaded
    // sign-extended to i16 (`v128.load8x8_s`), and `i32x4.dot_i16x8_s` against the activation pair.
    wasm_simd!(Simd128, |a, b, c| f32x4_add(f32x4_mul(a, b), c), {
        const INT8_PAIRS: bool = true;
        type Acc = v128;
        type Act = (v128, v128);
        #[inline(always)]
        fn acc_zero() -> v128 {
            i32x4_splat(0)
        }
        #[inline(always)]
        fn act(quad: u32) -> (v128, v128) {
            // [u0 u1] and [u2 u3] as i16 pairs, repeated in every i32 lane.
            let q = u32x4_splat(quad);
            let zero = u32x4_splat(0);
            (
                i8x16_shuffle::<0, 16, 1, 16, 0, 16, 1, 16, 0, 16, 1, 16, 0, 16, 1, 16>(q, zero),
                i8x16_shuffle::<2, 16, 3, 16, 2, 16, 3, 16, 2, 16, 3, 16, 2, 16, 3, 16>(q, zero),
            )
        }
        #[inline(always)]
        fn dot4(acc: v128, w: &[i8; 16], u: (v128, v128)) -> v128 {
            // SAFETY: `w` is 16 readable bytes, each load reads 8 of them; no alignment needed.
            let (lo, hi) = unsafe { (i16x8_load_extend_i8x8(w.as_ptr()), i16x8_load_extend_i8x8(w.as_ptr().add(8))) };
            i32x4_add(i32x4_add(acc, i32x4_dot_i16x8(lo, u.0)), i32x4_dot_i16x8(hi, u.1))
        }
    });

    // relaxed-simd: `i32x4.relaxed_dot_i8x16_i7x16_add_s` takes the weights as its signed operand
    // and the activations, biased into 1..=127, as the 7-bit one: with the top bit clear the result
    // is the same on every engine, and a pair of products (at most 2·127·127) never saturates the
    // i16 intermediate that x86's pmaddubsw has.
    #[cfg(target_feature = "relaxed-simd")]
    wasm_simd!(RelaxedSimd, |a, b, c| f32x4_relaxed_madd(a, b, c), {
        const INT8_PAIRS: bool = false;
        type Acc = v128;
        type Act = v128;
        #[inline(always)]
        fn acc_zero() -> v128 {
            i32x4_splat(0)
        }
        #[inline(always)]
        fn act(quad: u32) -> v128 {
            i32x4_splat(quad as i32)
        }
        #[inline(always)]
        fn dot4(acc: v128, w: &[i8; 16], u: v128) -> v128 {
            // The i16 form and a pairwise widening add rather than the fused
            // `i32x4.relaxed_dot_i8x16_i7x16_add_s`: the same integers (a pair of products fits
            // i16 unsaturated), but V8 (x64 without AVX-VNNI) builds the fused one's vector of
            // i16 ones in two instructions on every use, and that was a third of the loop.
            // SAFETY: `w` is 16 readable bytes; v128_load has no alignment requirement.
            let pairs = i16x8_relaxed_dot_i8x16_i7x16(unsafe { v128_load(w.as_ptr().cast()) }, u);
            i32x4_add(acc, i32x4_dot_i16x8(pairs, i16x8_splat(1)))
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The loaded constants give the splatted ones' results bit for bit, on every instruction set,
    /// over the whole range the interpolant covers and past it (±1e4, ±0, NaN).
    fn same_bits<S: Simd>() {
        let t = consts();
        let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.0113).collect();
        xs.extend([1e4, -1e4, 9.0, -9.0, 0.0, -0.0, f32::NAN, f32::MIN_POSITIVE, 88.7, -88.7]);
        for chunk in xs.chunks(4) {
            let mut lanes = [0f32; 4];
            lanes[..chunk.len()].copy_from_slice(chunk);
            let v = S::load(&lanes);
            let bits = |v: S::V| {
                let mut o = [0f32; 4];
                S::store(v, &mut o);
                o.map(f32::to_bits)
            };
            assert_eq!(bits(sigmoid_in::<S>(v, t)), bits(sigmoid::<S>(v)), "sigmoid {lanes:?}");
            assert_eq!(bits(tanh_in::<S>(v, t)), bits(tanh::<S>(v)), "tanh {lanes:?}");
        }
    }

    #[test]
    fn loaded_constants_are_the_splatted_ones() {
        same_bits::<Portable>();
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        same_bits::<Simd128>();
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
        same_bits::<RelaxedSimd>();
    }
}
