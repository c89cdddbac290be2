//! The WGSL sources, one kernel per file in `shaders/`. Shared snippets are joined in front of a
//! kernel by plain concatenation (no preprocessor), so what the GPU compiles is exactly what naga
//! validates in the tests.

/// A compute kernel: its entry point (also the name of its CPU twin in [`super::cpu_twin`]) and
/// the files, snippets first, whose concatenation is its module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    pub entry: &'static str,
    pub parts: &'static [(&'static str, &'static str)],
}

macro_rules! part {
    ($file:literal) => {
        ($file, include_str!(concat!("../../shaders/", $file)))
    };
}

const CELL_MATH: (&str, &str) = part!("cell_math.wgsl");
const STEP_PARAMS: (&str, &str) = part!("step_params.wgsl");
const TILED: (&str, &str) = part!("recurrent_matvec.wgsl");
const GEMV: (&str, &str) = part!("recurrent_gemv.wgsl");

pub const INPUT_PROJECTION: Kernel = Kernel { entry: "input_projection", parts: &[part!("input_projection.wgsl")] };
/// The input projection for at most [`GEMV_ROWS`] rows.
pub const INPUT_PROJECTION_GEMV: Kernel =
    Kernel { entry: "input_projection_gemv", parts: &[part!("input_projection_gemv.wgsl")] };
/// Gathers sessions' state from a node's state pool into a run's working state, and scatters it back.
pub const STATE_SLOTS: Kernel = Kernel { entry: "state_slots", parts: &[part!("state_slots.wgsl")] };
/// Row counts up to this take [`INPUT_PROJECTION_GEMV`].
pub const GEMV_ROWS: usize = 16;

/// The step kernels, built with one matrix-product strategy: `recurrent_matvec.wgsl` (16 x 16
/// tiles, batches above [`SMALL_BATCH`]) or `recurrent_gemv.wgsl` (one invocation per output, no barrier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepKernels {
    pub rnn_step: Kernel,
    pub gru_reset: Kernel,
    pub gru_step: Kernel,
    pub lstm_step: Kernel,
}

macro_rules! step_kernels {
    ($strategy:expr) => {
        StepKernels {
            rnn_step: Kernel { entry: "rnn_step", parts: &[CELL_MATH, STEP_PARAMS, $strategy, part!("rnn_step.wgsl")] },
            gru_reset: Kernel {
                entry: "gru_reset",
                parts: &[CELL_MATH, STEP_PARAMS, $strategy, part!("gru_reset.wgsl")],
            },
            gru_step: Kernel { entry: "gru_step", parts: &[CELL_MATH, STEP_PARAMS, $strategy, part!("gru_step.wgsl")] },
            lstm_step: Kernel {
                entry: "lstm_step",
                parts: &[CELL_MATH, STEP_PARAMS, $strategy, part!("lstm_step.wgsl")],
            },
        }
    };
}

pub const STEP_TILED: StepKernels = step_kernels!(TILED);
pub const STEP_SMALL_BATCH: StepKernels = step_kernels!(GEMV);

/// Batches up to this size use [`STEP_SMALL_BATCH`].
pub const SMALL_BATCH: usize = 8;

impl StepKernels {
    pub fn all(&self) -> [Kernel; 4] {
        [self.rnn_step, self.gru_reset, self.gru_step, self.lstm_step]
    }
}

/// Every kernel the backend compiles.
pub fn kernels() -> Vec<Kernel> {
    let mut v = vec![INPUT_PROJECTION, INPUT_PROJECTION_GEMV, STATE_SLOTS];
    v.extend(STEP_TILED.all());
    v.extend(STEP_SMALL_BATCH.all());
    v
}

/// Shared snippets with the snippets each needs in front of it (validated on their own too).
pub const SNIPPETS: [&[(&str, &str)]; 2] = [&[CELL_MATH], &[CELL_MATH, STEP_PARAMS]];

impl Kernel {
    /// The module source: the parts concatenated, each headed by its file name.
    pub fn source(&self) -> String {
        join(self.parts)
    }
}

/// Concatenates WGSL files, each headed by a comment naming it (for error messages).
pub fn join(parts: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (name, text) in parts {
        s.push_str("// ---- shaders/");
        s.push_str(name);
        s.push_str(" ----\n");
        s.push_str(text);
        s.push('\n');
    }
    s
}

/// Byte size of the step kernels' uniform `StepParams` (step_params.wgsl).
pub const STEP_PARAMS_SIZE: u64 = 80;
/// Byte size of `state_slots`' uniform `SlotParams`.
pub const SLOT_PARAMS_SIZE: u64 = 48;
/// Byte size of the GEMM's uniform `GemmParams` (input_projection.wgsl).
pub const GEMM_PARAMS_SIZE: u64 = 16;
/// Output tile of `input_projection` (rows and columns).
pub const GEMM_TILE: u32 = 64;
/// Tile of the tiled step kernels: hidden units x batch entries per workgroup.
pub const STEP_TILE: u32 = 16;
/// Hidden units per workgroup of the small-batch step kernels (one batch entry each), and
/// output columns per workgroup of `input_projection_gemv`.
pub const GEMV_UNITS: u32 = 64;
