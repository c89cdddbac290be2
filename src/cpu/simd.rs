//! The few vector operations the kernels need, as one small trait with one implementation per
//! instruction set, and the vectorized `exp`, `sigmoid` and `tanh` written once on top of it.
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
    fn abs(a: Self::V) -> Self::V;
    /// The magnitude of `mag` with the sign of `sign`.
    fn copysign(mag: Self::V, sign: Self::V) -> Self::V;
    /// `x` where `x` is NaN, else `r`.
    fn nan_or(x: Self::V, r: Self::V) -> Self::V;
    /// `2^n` for `n` integral in `[-126, 127]`, given as `n + 2^23 + 127` (its low mantissa bits).
    fn exp2_biased(n_biased: Self::V) -> Self::V;

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

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cody-Waite), so `x - n·ln2` is exact enough for |n| ≤ 127.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding then subtracting 1.5·2^23 rounds a float of magnitude < 2^22 to the nearest integer.
const ROUND: f32 = 12_582_912.0;
/// Cephes `expf` minimax polynomial on [-ln2/2, ln2/2].
const EXP_POLY: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];

/// `e^x` for `x` in `[-87, 88]` (callers clamp), about 1 ulp.
#[inline(always)]
fn exp_bounded<S: Simd>(x: S::V) -> S::V {
    let n = S::sub(S::madd(x, S::splat(LOG2E), S::splat(ROUND)), S::splat(ROUND));
    let r = S::madd(n, S::splat(-LN2_HI), x);
    let r = S::madd(n, S::splat(-LN2_LO), r);
    let mut p = S::splat(EXP_POLY[0]);
    for c in &EXP_POLY[1..] {
        p = S::madd(p, r, S::splat(*c));
    }
    let r2 = S::mul(r, r);
    let p = S::add(S::madd(p, r2, r), S::splat(1.0));
    S::mul(p, S::exp2_biased(S::add(n, S::splat(8_388_608.0 + 127.0))))
}

/// `1 / (1 + e^-x)`: exact limits 0 and 1 for large |x|, NaN for NaN, never NaN otherwise.
#[inline(always)]
pub fn sigmoid<S: Simd>(x: S::V) -> S::V {
    let t = S::min(S::max(S::sub(S::splat(0.0), x), S::splat(-87.0)), S::splat(88.0));
    let e = exp_bounded::<S>(t);
    S::nan_or(x, S::div(S::splat(1.0), S::add(S::splat(1.0), e)))
}

/// `tanh(x) = sign(x)·(1 - e^-2|x|) / (1 + e^-2|x|)`; |x| ≥ 9 rounds to ±1 in f32 anyway.
#[inline(always)]
pub fn tanh<S: Simd>(x: S::V) -> S::V {
    let a = S::min(S::abs(x), S::splat(9.0));
    let e = exp_bounded::<S>(S::mul(a, S::splat(-2.0)));
    let t = S::div(S::sub(S::splat(1.0), e), S::add(S::splat(1.0), e));
    S::nan_or(x, S::copysign(t, x))
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
    fn abs(a: F4) -> F4 {
        lanes!(|a| f32::from_bits(a.to_bits() & 0x7fff_ffff))
    }
    #[inline(always)]
    fn copysign(mag: F4, sign: F4) -> F4 {
        lanes!(|mag, sign| f32::from_bits((mag.to_bits() & 0x7fff_ffff) | (sign.to_bits() & 0x8000_0000)))
    }
    #[inline(always)]
    fn nan_or(x: F4, r: F4) -> F4 {
        lanes!(|x, r| if x.is_nan() { x } else { r })
    }
    #[inline(always)]
    fn exp2_biased(n: F4) -> F4 {
        lanes!(|n| f32::from_bits(n.to_bits() << 23))
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
                fn abs(a: v128) -> v128 {
                    f32x4_abs(a)
                }
                #[inline(always)]
                fn copysign(mag: v128, sign: v128) -> v128 {
                    v128_bitselect(sign, mag, f32x4_splat(-0.0))
                }
                #[inline(always)]
                fn nan_or(x: v128, r: v128) -> v128 {
                    v128_bitselect(x, r, f32x4_ne(x, x))
                }
                #[inline(always)]
                fn exp2_biased(n: v128) -> v128 {
                    i32x4_shl(n, 23)
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
            // SAFETY: `w` is 16 readable bytes; v128_load has no alignment requirement.
            i32x4_relaxed_dot_i8x16_i7x16_add(unsafe { v128_load(w.as_ptr().cast()) }, u, acc)
        }
    });
}
