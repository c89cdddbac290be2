//! What int8 weights cost in accuracy: every PyTorch golden case (`tests/data/golden`) on the CPU
//! kernels with f32 and with int8 weights, max |int8 - f32| and max |int8 - PyTorch| over all
//! outputs. `cargo xtask bench` prints this next to the speed table; `tests/int8.rs` asserts a
//! sanity bound on the same figures.
//!
//! `cargo run --release --example int8_accuracy [DIR]`

use std::path::{Path, PathBuf};

use webrnn::{onnx, Backend, Error, Model, Result, Tensor};

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
}

fn load(case: &Path) -> Result<Model> {
    let onnx = case.join("model.onnx");
    if onnx.exists() {
        return Model::from_onnx_file(&onnx);
    }
    let config = String::from_utf8_lossy(&read(&case.join("config.json"))?).into_owned();
    Model::from_safetensors(&read(&case.join("model.safetensors"))?, &config)
}

/// `input_0.pb, input_1.pb...` (or `output_...`) of the case's data set.
fn numbered(case: &Path, prefix: &str) -> Result<Vec<Tensor>> {
    let dir = case.join("test_data_set_0");
    let paths = (0..).map(|i| dir.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.exists());
    paths.map(|p| onnx::decode_tensor(&read(&p)?)).collect()
}

/// max |a - b| over every element of every tensor; NaN where only one side is NaN.
fn max_diff(a: &[Tensor], b: &[Tensor]) -> Result<f32> {
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(b) {
        for (&u, &v) in x.as_f32()?.iter().zip(y.as_f32()?) {
            if u.is_nan() != v.is_nan() {
                return Ok(f32::NAN);
            }
            if !u.is_nan() {
                worst = worst.max((u - v).abs());
            }
        }
    }
    Ok(worst)
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| "tests/data/golden".into());
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("test_data_set_0").is_dir())
        .collect();
    cases.sort();
    println!(
        "| golden case | int8 matrices | max \\|int8 - f32\\| | max \\|int8 - PyTorch\\| | max \\|f32 - PyTorch\\| |"
    );
    println!("|---|---:|---:|---:|---:|");
    let mut worst = 0f32;
    for case in &cases {
        let model = load(case)?;
        let inputs = numbered(case, "input")?;
        let expected = numbered(case, "output")?;
        let f32s = model.with_backend(Backend::Cpu)?.run_graph(inputs.clone())?;
        let int8 = model.with_backend(Backend::CpuInt8)?.run_graph(inputs)?;
        let mut kernels = webrnn::cpu::CpuKernels::with_int8(webrnn::cpu::Isa::best());
        webrnn::backend::RecurrentKernels::prepare(&mut kernels, &model.graph().layers())?;
        let loss = max_diff(&int8, &f32s)?;
        worst = worst.max(loss);
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        println!(
            "| {name} | {} | {loss:.1e} | {:.1e} | {:.1e} |",
            kernels.int8_matrices(),
            max_diff(&int8, &expected)?,
            max_diff(&f32s, &expected)?
        );
    }
    println!("\nint8 weights: max |int8 - f32| {worst:.1e} over {} golden cases (f32 meets 1e-5)", cases.len());
    Ok(())
}
