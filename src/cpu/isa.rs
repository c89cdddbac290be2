//! [`Isa`]: the instruction set the kernels run on, and its dispatch onto the generic SIMD code
//! (activations, the packed GEMM). It depends on nothing but that code, so the kernel trait
//! (`backend.rs`) and the operators can name it without depending on the CPU backend.

use super::{gemm, simd};
use crate::cell::Activation;

/// The fastest [`simd::Simd`] implementation of this build (the one builds without `all-isas` run).
#[cfg(all(
    not(feature = "all-isas"),
    target_arch = "wasm32",
    target_feature = "simd128",
    target_feature = "relaxed-simd"
))]
pub(crate) type Best = simd::RelaxedSimd;
#[cfg(all(
    not(feature = "all-isas"),
    target_arch = "wasm32",
    target_feature = "simd128",
    not(target_feature = "relaxed-simd")
))]
pub(crate) type Best = simd::Simd128;
#[cfg(all(not(feature = "all-isas"), not(all(target_arch = "wasm32", target_feature = "simd128"))))]
pub(crate) type Best = simd::Portable;

/// Evaluates `$body` with `$S` the [`simd::Simd`] implementation that runs instruction set
/// `$isa`. With the `all-isas` feature (a default one: the tests run every instruction set of a
/// build) the kernels are compiled once per instruction set. Without it (the npm package's wasm
/// builds) they are compiled once, for the build's best ([`Best`]), and every [`Isa`] of the build
/// runs those: the relaxed-SIMD build would otherwise carry three copies of the recurrent, GEMM
/// and int8 kernels for the one it uses.
macro_rules! with_simd {
    ($isa:expr, $S:ident => $body:expr) => {{
        #[cfg(feature = "all-isas")]
        {
            match $isa {
                $crate::cpu::Isa::Scalar => {
                    type $S = $crate::cpu::simd::Portable;
                    $body
                }
                #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                $crate::cpu::Isa::Simd128 => {
                    type $S = $crate::cpu::simd::Simd128;
                    $body
                }
                #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
                $crate::cpu::Isa::RelaxedSimd => {
                    type $S = $crate::cpu::simd::RelaxedSimd;
                    $body
                }
            }
        }
        #[cfg(not(feature = "all-isas"))]
        {
            let _: $crate::cpu::Isa = $isa;
            type $S = $crate::cpu::isa::Best;
            $body
        }
    }};
}
pub(crate) use with_simd;

/// The instruction set the kernels run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable code, available everywhere.
    Scalar,
    /// WebAssembly SIMD.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
    /// WebAssembly relaxed SIMD (fused multiply-add).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
    RelaxedSimd,
}

impl Isa {
    /// Every instruction set this build can run, slowest first (without the `all-isas` feature,
    /// the one its kernels are compiled for: see [`with_simd`]).
    pub fn available() -> Vec<Isa> {
        #[cfg(not(feature = "all-isas"))]
        {
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
            return vec![Isa::RelaxedSimd];
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(target_feature = "relaxed-simd")))]
            return vec![Isa::Simd128];
            #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
            return vec![Isa::Scalar];
        }
        #[cfg(feature = "all-isas")]
        vec![
            Isa::Scalar,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
            Isa::RelaxedSimd,
        ]
    }

    /// The fastest instruction set of this build.
    pub fn best() -> Isa {
        Isa::available().last().copied().unwrap_or(Isa::Scalar)
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => "simd128",
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
            Isa::RelaxedSimd => "relaxed-simd",
        }
    }

    /// The block layout of int8 weights for this instruction set ([`simd::Simd::INT8_PAIRS`]).
    pub(crate) fn int8_pairs(self) -> bool {
        use simd::Simd;
        with_simd!(self, S => <S as Simd>::INT8_PAIRS)
    }

    /// Applies `act` in place with this instruction set's vector code (what the kernels use).
    pub fn activate(self, act: Activation, xs: &mut [f32]) {
        with_simd!(self, S => activate_slice::<S>(act, xs))
    }
}

impl Isa {
    /// `c[i] += a[i]·b` for `m` rows of `a` ([`gemm::gemm`]) with this instruction set's kernels:
    /// the products of the operators that are matrix products at heart (Conv, ConvTranspose).
    pub(crate) fn gemm(self, a: &[f32], lda: usize, m: usize, b: &gemm::Packed, c: &mut [simd::F4]) {
        with_simd!(self, S => gemm::gemm::<S>(a, lda, m, b, c))
    }
}

fn activate_slice<S: simd::Simd>(act: Activation, xs: &mut [f32]) {
    for chunk in xs.chunks_mut(4) {
        let mut lanes = [0f32; 4];
        lanes[..chunk.len()].copy_from_slice(chunk);
        S::store(simd::activate::<S>(act, S::load(&lanes)), &mut lanes);
        let n = chunk.len();
        chunk.copy_from_slice(&lanes[..n]);
    }
}
