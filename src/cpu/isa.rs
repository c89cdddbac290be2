//! [`Isa`]: the instruction set the kernels run on, and its dispatch onto the generic SIMD code
//! (activations, the packed GEMM). It depends on nothing but that code, so the kernel trait
//! (`backend.rs`) and the operators can name it without depending on the CPU backend.

use super::{gemm, simd};
use crate::cell::Activation;

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
    /// Every instruction set this build can run, slowest first.
    pub fn available() -> Vec<Isa> {
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
        match self {
            Isa::Scalar => simd::Portable::INT8_PAIRS,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => simd::Simd128::INT8_PAIRS,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
            Isa::RelaxedSimd => simd::RelaxedSimd::INT8_PAIRS,
        }
    }

    /// Applies `act` in place with this instruction set's vector code (what the kernels use).
    pub fn activate(self, act: Activation, xs: &mut [f32]) {
        match self {
            Isa::Scalar => activate_slice::<simd::Portable>(act, xs),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => activate_slice::<simd::Simd128>(act, xs),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
            Isa::RelaxedSimd => activate_slice::<simd::RelaxedSimd>(act, xs),
        }
    }
}

impl Isa {
    /// `c[i] += a[i]·b` for `m` rows of `a` ([`gemm::gemm`]) with this instruction set's kernels:
    /// the products of the operators that are matrix products at heart (Conv, ConvTranspose).
    pub(crate) fn gemm(self, a: &[f32], lda: usize, m: usize, b: &gemm::Packed, c: &mut [simd::F4]) {
        match self {
            Isa::Scalar => gemm::gemm::<simd::Portable>(a, lda, m, b, c),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => gemm::gemm::<simd::Simd128>(a, lda, m, b, c),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", target_feature = "relaxed-simd"))]
            Isa::RelaxedSimd => gemm::gemm::<simd::RelaxedSimd>(a, lda, m, b, c),
        }
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
