//! The CPU backend: the recurrent operators as a GEMM over the whole sequence's inputs, then per
//! time step one small GEMM over the batch with the gate math fused after it, on four-lane vectors.
//!
//! As in RustFFT, one enum ([`Isa`]) picks the instruction set at construction and every kernel is
//! written once, generic over the small [`simd::Simd`] trait: [`Isa::Scalar`] is portable Rust
//! (which LLVM vectorizes natively) and is always available so tests can force it;
//! [`Isa::Simd128`] and [`Isa::RelaxedSimd`] exist in wasm builds compiled with
//! `-C target-feature=+simd128` (and `+relaxed-simd`).
//!
//! [`CpuKernels::prepare`] packs the constant weights of every recurrent node once; a node whose
//! weights are computed at run time has them packed on each call. [`CpuKernels::with_int8`] packs
//! `W` and `R` as int8 with a scale per output row and multiplies them by int8 activations
//! quantized as they arrive (`int8.rs`): about 4× less weight memory and cheaper dot products,
//! for a quantization error of a few 1e-3 (1.1e-2 at worst on the golden cases; `tests/cpu_kernels.rs`
//! derives the bound).

pub(crate) mod gemm;
mod int8;
mod recurrent;
pub(crate) use recurrent::CHUNK_FLOATS;
#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests {
    use crate as webrnn;
    include!("../../tests/cpu_kernels.rs");
}
mod isa;
pub mod simd;
mod weights;

use crate::backend::{Backend, Layer, LayerInput, RecurrentKernels};
use crate::cell::rec_input;
use crate::cell::{self, RecurrentInputs, RecurrentOutputs, RecurrentSpec};
use crate::error::Result;
use crate::tensor::Tensor;
pub use isa::Isa;
use weights::NodeWeights;

/// [`RecurrentKernels`] on the CPU, for one instruction set, with f32 or int8 weights.
#[derive(Debug, Clone)]
pub struct CpuKernels {
    isa: Isa,
    /// `W` and `R` in int8 ([`CpuKernels::with_int8`]).
    int8: bool,
    /// Packed constant weights, by node index.
    nodes: Vec<Option<NodeWeights>>,
}

impl Default for CpuKernels {
    fn default() -> Self {
        CpuKernels::new(Isa::best())
    }
}

impl CpuKernels {
    pub fn new(isa: Isa) -> CpuKernels {
        CpuKernels { isa, int8: false, nodes: Vec::new() }
    }

    /// Kernels whose `W` and `R` are int8: symmetric, one scale per output row, multiplied by
    /// activations quantized per row as they arrive, summed in `i32` ([`Backend::CpuInt8`]). A
    /// matrix int8 cannot stand for (a NaN or infinite weight) stays f32, as do LSTM projections.
    pub fn with_int8(isa: Isa) -> CpuKernels {
        CpuKernels { isa, int8: true, nodes: Vec::new() }
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    pub fn is_int8(&self) -> bool {
        self.int8
    }

    /// How many recurrent nodes have pre-packed weights.
    pub fn prepared_nodes(&self) -> usize {
        self.nodes.iter().flatten().count()
    }

    /// How many pre-packed weight matrices are int8.
    pub fn int8_matrices(&self) -> usize {
        let dirs = self.nodes.iter().flatten().flat_map(|n| &n.dirs);
        dirs.flat_map(|d| [Some(&d.w), Some(&d.r), d.r_h.as_ref()]).flatten().filter(|m| m.is_int8()).count()
    }
}

/// The constant weights of a recurrent node as a `RecurrentInputs` with a stand-in `X`, or `None`
/// if any weight is computed at run time.
fn pack_constants(layer: &Layer<'_>, int8: Option<Isa>) -> Option<NodeWeights> {
    let spec = layer.spec;
    // Some(None): input absent; Some(Some(t)): constant; None: computed at run time.
    let constant = |i: usize| match layer.input(i) {
        LayerInput::Absent => Some(None),
        LayerInput::Constant(t) => Some(Some(t)),
        LayerInput::Computed => None,
    };
    let (w, r) = (constant(rec_input::W)??, constant(rec_input::R)??);
    let (b, p, proj) = (constant(rec_input::B)?, constant(rec_input::P)?, constant(rec_input::PROJ)?);
    let x = Tensor::from_f32(vec![1, 1, *w.shape().get(2)?], vec![0.0; *w.shape().get(2)?]).ok()?;
    let inp = RecurrentInputs { b, p, proj, ..RecurrentInputs::new(&x, w, r) };
    let dims = cell::check_inputs(spec, &inp).ok()?;
    NodeWeights::pack(spec.cell, &inp, &dims, int8).ok()
}

impl RecurrentKernels for CpuKernels {
    fn backend(&self) -> Backend {
        if self.int8 {
            Backend::CpuInt8
        } else {
            Backend::Cpu
        }
    }

    fn cpu_isa(&self) -> Isa {
        self.isa
    }

    fn prepare(&mut self, layers: &[Layer<'_>]) -> Result<()> {
        let count = layers.iter().map(|l| l.node + 1).max().unwrap_or(0);
        self.nodes = (0..count).map(|_| None).collect();
        for l in layers {
            self.nodes[l.node] = pack_constants(l, self.int8.then_some(self.isa));
        }
        Ok(())
    }

    fn run(&self, node: usize, spec: &RecurrentSpec, inputs: &RecurrentInputs<'_>) -> Result<RecurrentOutputs> {
        let dims = cell::check_inputs(spec, inputs)?;
        let int8 = self.int8.then_some(self.isa);
        let packed;
        let weights = match self.nodes.get(node).and_then(Option::as_ref) {
            Some(w) if w.packs(spec.cell, inputs, &dims, int8) => w,
            _ => {
                packed = NodeWeights::pack(spec.cell, inputs, &dims, int8)?;
                &packed
            }
        };
        isa::with_simd!(self.isa, S => recurrent::run::<S>(spec, inputs, &dims, weights))
    }
}
