//! The CPU twin of the GPU pipeline (same packing, same kernels' math, no GPU) against the scalar
//! reference: runs everywhere, so orchestration bugs show up even where no adapter exists.

mod gpu_common;

use gpu_common::*;
use webrnn::cell::{run_reference, Direction};
use webrnn::gpu::cpu_twin;

#[test]
fn twin_matches_reference_for_every_cell_direction_and_option() {
    let dirs = [Direction::Forward, Direction::Reverse, Direction::Bidirectional];
    let mut seed = 1;
    for cell in ALL_CELLS {
        for dir in dirs {
            for (hidden, batch) in [(1, 1), (3, 5), (17, 4)] {
                for rich in [false, true] {
                    seed += 1;
                    let c = case(cell, dir, Shape { seq: 7, batch, input: 5, hidden }, 2.0, rich, seed);
                    let what = format!("{cell:?} {dir:?} H={hidden} B={batch} rich={rich}");
                    let got = cpu_twin::run_node(&c.spec, &c.inputs()).unwrap();
                    let want = run_reference(&c.spec, &c.inputs()).unwrap();
                    compare_outputs(&what, &got, &want, 1e-5, 1e-4);
                }
            }
        }
    }
}

#[test]
fn twin_matches_reference_on_saturating_inputs_and_every_activation() {
    for (i, cell) in ALL_CELLS.into_iter().enumerate() {
        let mut c =
            case(cell, Direction::Forward, Shape { seq: 6, batch: 3, input: 4, hidden: 5 }, 1e4, false, 99 + i as u64);
        let what = format!("{cell:?} |x| <= 1e4");
        let got = cpu_twin::run_node(&c.spec, &c.inputs()).unwrap();
        compare_outputs(&what, &got, &run_reference(&c.spec, &c.inputs()).unwrap(), 1e-5, 1e-4);
        let per = cell.activations_per_direction();
        for (k, a) in all_activations().into_iter().enumerate() {
            c.spec.activations = vec![a; per];
            c.x = webrnn::Tensor::from_f32(c.x.shape().to_vec(), Rng::new(k as u64).vec(c.x.len(), 3.0)).unwrap();
            let got = cpu_twin::run_node(&c.spec, &c.inputs()).unwrap();
            compare_outputs(
                &format!("{cell:?} {a:?}"),
                &got,
                &run_reference(&c.spec, &c.inputs()).unwrap(),
                1e-5,
                1e-4,
            );
        }
    }
}
