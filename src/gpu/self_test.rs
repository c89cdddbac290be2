//! A self-check of the GPU backend against the scalar reference on this machine's adapter: every
//! cell kind, both kernel families (tiled, barrier-free), batches 3 and 20, several chunks (70
//! steps). Natively the tests call it; in the browser `gpuSelfTest()` (the package's
//! `Runtime.gpuSelfTest()`) runs it on the page's device, so an app can check an adapter before
//! trusting it.

use super::kernels::{GpuKernels, KernelChoice};
use super::GpuContext;
use crate::backend::RecurrentKernels;
use crate::cell::{self, CellKind, Direction, RecurrentInputs, RecurrentSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Runs the checks; `Ok` is a one-line-per-case report, the first disagreement is an error.
pub async fn self_test(ctx: std::sync::Arc<GpuContext>) -> Result<String> {
    let mut report = format!("adapter: {}\n", ctx.adapter);
    let cells = [
        CellKind::Rnn,
        CellKind::Gru { linear_before_reset: false },
        CellKind::Gru { linear_before_reset: true },
        CellKind::Lstm { input_forget: false },
    ];
    let mut seed = 1u32;
    let mut next = move |scale: f32| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        ((seed >> 8) as f32 / 8_388_608.0 - 1.0) * scale
    };
    for (family, choice) in [("tiled", KernelChoice::Tiled), ("barrier-free", KernelChoice::BarrierFree)] {
        let kernels = GpuKernels::with_context(ctx.clone()).with_kernel_choice(choice);
        for cell in cells {
            for batch in [3usize, 20] {
                let (seq, input, hidden, g) = (70usize, 5usize, 24usize, cell.gates());
                let mut vec = |n: usize, s: f32| (0..n).map(|_| next(s)).collect::<Vec<f32>>();
                let mut spec = RecurrentSpec::new(cell, Direction::Bidirectional, hidden);
                spec.clip = Some(5.0);
                let x = Tensor::from_f32(vec![seq, batch, input], vec(seq * batch * input, 2.0))?;
                let w = Tensor::from_f32(vec![2, g * hidden, input], vec(2 * g * hidden * input, 0.5))?;
                let r = Tensor::from_f32(vec![2, g * hidden, hidden], vec(2 * g * hidden * hidden, 0.2))?;
                let b = Tensor::from_f32(vec![2, 2 * g * hidden], vec(4 * g * hidden, 0.5))?;
                let h0 = Tensor::from_f32(vec![2, batch, hidden], vec(2 * batch * hidden, 1.0))?;
                let lstm = matches!(cell, CellKind::Lstm { .. });
                let c0 = Tensor::from_f32(vec![2, batch, hidden], vec(2 * batch * hidden, 1.0))?;
                let p = Tensor::from_f32(vec![2, 3 * hidden], vec(6 * hidden, 0.5))?;
                let lens = Tensor::from_i64(vec![batch], (0..batch).map(|i| (seq - i * 3 % seq) as i64).collect())?;
                let inputs = RecurrentInputs {
                    x: &x,
                    w: &w,
                    r: &r,
                    b: Some(&b),
                    sequence_lens: Some(&lens),
                    initial_h: Some(&h0),
                    initial_c: lstm.then_some(&c0),
                    p: lstm.then_some(&p),
                    proj: None,
                    resident: None,
                };
                let future = kernels
                    .run_async(0, &spec, inputs)
                    .ok_or_else(|| Error::BackendUnavailable("no async path".into()))?;
                let got = future.await?;
                let want = cell::run_reference(&spec, &inputs)?;
                let mut worst = 0f32;
                let pairs = [(&got.y, &want.y), (&got.y_h, &want.y_h)];
                let extra = got.y_c.as_ref().zip(want.y_c.as_ref());
                for (g, w) in pairs.into_iter().chain(extra) {
                    for (a, b) in g.as_f32()?.iter().zip(w.as_f32()?) {
                        let err = (a - b).abs();
                        if err.is_nan() || err > 1e-4 + 1e-3 * b.abs() {
                            return Err(Error::BackendUnavailable(format!(
                                "GPU self-test: {} {family} B={batch}: {a} vs reference {b}",
                                cell.op_name()
                            )));
                        }
                        worst = worst.max(err);
                    }
                }
                report.push_str(&format!("{cell:?} {family} B={batch} T={seq}: ok, max |diff| {worst:.1e}\n"));
            }
        }
    }
    Ok(report)
}
