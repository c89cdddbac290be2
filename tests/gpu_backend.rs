//! The GPU backend against its CPU twin and the scalar reference (atol 1e-4, rtol 1e-3), on the
//! sizes that break kernels: hidden 1, 3, 63, 64, 65, 257; batches 1..300; 1,000 steps; |x| up
//! to 1e4. Needs an adapter (lavapipe natively): see `gpu_common::gpu_or_skip`.
//! Native only: it blocks on the device (webrnn::gpu::block_on) (on wasm32, `wasm-pack test` builds it empty).
#![cfg(not(target_arch = "wasm32"))]

mod gpu_common;

use std::time::Instant;

use gpu_common::*;
use webrnn::backend::RecurrentKernels;
use webrnn::cell::{run_reference, CellKind, Direction};
use webrnn::gpu::cpu_twin;

fn check(k: &webrnn::gpu::GpuKernels, c: &Case, what: &str) -> f32 {
    let started = Instant::now();
    let got = k.run(usize::MAX, &c.spec, &c.inputs()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let gpu_time = started.elapsed();
    let twin = cpu_twin::run_node(&c.spec, &c.inputs()).unwrap();
    compare_outputs(&format!("{what} (vs twin)"), &got, &twin, GPU_ATOL, GPU_RTOL);
    let worst = compare_outputs(what, &got, &run_reference(&c.spec, &c.inputs()).unwrap(), GPU_ATOL, GPU_RTOL);
    println!("{what:<60} ok  max |diff| {worst:.2e}  gpu {:.0} ms", gpu_time.as_secs_f64() * 1e3);
    worst
}

#[test]
fn gpu_matches_reference_for_every_cell_direction_and_option() {
    for (family, k) in gpu_families_or_skip("gpu_matches_reference_for_every_cell_direction_and_option") {
        println!("adapter: {}", k.context().adapter);
        let mut seed = 10;
        for cell in ALL_CELLS.into_iter().take(5) {
            for dir in [Direction::Forward, Direction::Reverse, Direction::Bidirectional] {
                // Tiled family: batch 5 takes the small-batch kernels, 20 the tiled ones.
                for (rich, batch) in [(false, 5), (true, 5), (false, 20), (true, 20)] {
                    seed += 1;
                    let c = case(cell, dir, Shape { seq: 9, batch, input: 7, hidden: 19 }, 2.0, rich, seed);
                    check(&k, &c, &format!("{family}: {cell:?} {dir:?} B={batch} rich={rich}"));
                }
            }
        }
    }
}

#[test]
fn gpu_matches_reference_on_kernel_breaking_sizes() {
    for (family, k) in gpu_families_or_skip("gpu_matches_reference_on_kernel_breaking_sizes") {
        let cells =
            [CellKind::Gru { linear_before_reset: true }, CellKind::Lstm { input_forget: false }, CellKind::Rnn];
        let mut seed = 100;
        for hidden in [1, 3, 63, 64, 65, 257] {
            for (batch, seq) in [(1, 4), (17, 3), (65, 2)] {
                let cell = cells[seed as usize % 3];
                seed += 1;
                let input = [1, 5, 64, 70][seed as usize % 4];
                let c = case(cell, Direction::Forward, Shape { seq, batch, input, hidden }, 1.0, seed % 2 == 0, seed);
                check(&k, &c, &format!("{family}: {cell:?} H={hidden} B={batch} T={seq} I={input}"));
            }
        }
    }
}

#[test]
fn gpu_matches_reference_on_large_batches() {
    for (family, k) in gpu_families_or_skip("gpu_matches_reference_on_large_batches") {
        for (i, cell) in [CellKind::Lstm { input_forget: false }, CellKind::Gru { linear_before_reset: false }]
            .into_iter()
            .enumerate()
        {
            let c = case(
                cell,
                Direction::Forward,
                Shape { seq: 3, batch: 300, input: 16, hidden: 33 },
                1.0,
                true,
                200 + i as u64,
            );
            check(&k, &c, &format!("{family}: {cell:?} B=300 H=33 T=3"));
        }
    }
}

#[test]
fn gpu_matches_reference_over_1000_steps() {
    let Some(k) = gpu_or_skip("gpu_matches_reference_over_1000_steps") else { return };
    // Several chunks (64 steps each) and a partial last one; sequence_lens end entries mid-chunk.
    for (i, cell) in ALL_CELLS.into_iter().take(5).enumerate() {
        let dir = if i == 3 { Direction::Bidirectional } else { Direction::Forward };
        let c = case(cell, dir, Shape { seq: 1000, batch: 3, input: 4, hidden: 8 }, 1.0, i % 2 == 1, 300 + i as u64);
        check(&k, &c, &format!("{cell:?} {dir:?} T=1000"));
    }
}

#[test]
fn gpu_matches_reference_on_saturating_inputs_and_every_activation() {
    for (family, k) in gpu_families_or_skip("gpu_matches_reference_on_saturating_inputs_and_every_activation") {
        for (i, cell) in ALL_CELLS.into_iter().take(5).enumerate() {
            let mut c = case(
                cell,
                Direction::Forward,
                Shape { seq: 6, batch: 3, input: 4, hidden: 5 },
                1e4,
                false,
                400 + i as u64,
            );
            check(&k, &c, &format!("{family}: {cell:?} |x| <= 1e4"));
            let per = cell.activations_per_direction();
            for (n, a) in all_activations().into_iter().enumerate() {
                c.spec.activations = vec![a; per];
                c.x = webrnn::Tensor::from_f32(c.x.shape().to_vec(), Rng::new(n as u64).vec(c.x.len(), 3.0)).unwrap();
                check(&k, &c, &format!("{family}: {cell:?} {a:?}"));
            }
        }
    }
}

#[test]
fn gpu_handles_layout_1() {
    let Some(k) = gpu_or_skip("gpu_handles_layout_1") else { return };
    let mut c = case(
        CellKind::Lstm { input_forget: false },
        Direction::Bidirectional,
        Shape { seq: 5, batch: 4, input: 3, hidden: 6 },
        1.0,
        true,
        500,
    );
    // Re-lay X [T, B, I] -> [B, T, I] and the states [D, B, n] -> [B, D, n].
    let t = |v: &webrnn::Tensor, a: usize, b: usize, n: usize| {
        let src = v.as_f32().unwrap();
        let mut out = vec![0f32; src.len()];
        for i in 0..a {
            for j in 0..b {
                out[(j * a + i) * n..(j * a + i + 1) * n].copy_from_slice(&src[(i * b + j) * n..(i * b + j + 1) * n]);
            }
        }
        webrnn::Tensor::from_f32(vec![b, a, n], out).unwrap()
    };
    c.x = t(&c.x, 5, 4, 3);
    c.h0 = c.h0.as_ref().map(|h| t(h, 2, 4, 6));
    c.c0 = c.c0.as_ref().map(|h| t(h, 2, 4, 6));
    c.spec.layout = 1;
    check(&k, &c, "LSTM bidirectional layout=1");
}

#[test]
fn gpu_refuses_what_exceeds_the_adapter_with_a_typed_error() {
    let Some(k) = gpu_or_skip("gpu_refuses_what_exceeds_the_adapter_with_a_typed_error") else { return };
    let limit = k.context().limits.max_storage_buffer_binding_size.min(k.context().limits.max_buffer_size);
    // R of one direction is G*H*H floats: pick H so it exceeds one binding (lavapipe: 128 MiB+).
    let hidden = ((limit / 4 / 3) as f64).sqrt() as usize + 16;
    if hidden * hidden * 3 > webrnn::tensor::MAX_ELEMENTS {
        println!("adapter binds {limit} bytes: larger than a tensor may be, nothing to refuse");
        return;
    }
    let c = case(
        CellKind::Gru { linear_before_reset: true },
        Direction::Forward,
        Shape { seq: 1, batch: 1, input: 1, hidden },
        1.0,
        false,
        1,
    );
    match k.run(0, &c.spec, &c.inputs()) {
        Err(e) => {
            assert_eq!(e.code(), "backend_unavailable", "{e}");
            println!("refused: {e}");
        }
        Ok(_) => panic!("H={hidden} should exceed the binding limit {limit}"),
    }
}

#[test]
fn input_projection_kernels_match_their_cpu_twins_across_tile_edges() {
    let Some(k) = gpu_or_skip("input_projection_kernels_match_their_cpu_twins_across_tile_edges") else { return };
    let mut rng = Rng::new(7);
    // Up to 16 rows: input_projection_gemv; above: the tiled input_projection.
    for (m, n, kk) in [
        (1, 1, 1),
        (1, 3, 15),
        (5, 1028, 257),
        (16, 65, 130),
        (17, 5, 3),
        (63, 64, 16),
        (64, 65, 17),
        (65, 257, 33),
        (130, 1028, 64),
        (300, 12, 1),
    ] {
        let (x, w, bias) = (rng.vec(m * kk, 1.0), rng.vec(n * kk, 1.0), rng.vec(n, 1.0));
        let got = webrnn::gpu::block_on(k.context().input_projection(m, n, kk, &x, &w, &bias)).unwrap();
        let mut want = vec![0f32; m * n];
        cpu_twin::input_projection(m, n, kk, &x, &w, &bias, &mut want);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-5 + 1e-5 * b.abs(), "M={m} N={n} K={kk} [{i}]: {a} vs {b}");
        }
    }
}

#[test]
fn state_slots_matches_its_cpu_twin() {
    let Some(k) = gpu_or_skip("state_slots_matches_its_cpu_twin") else { return };
    let mut rng = Rng::new(9);
    // (batch, out, hidden, dirs, lstm, steps): sizes across the 64-wide workgroups, both
    // directions' parts of a slot, gather and scatter, h in either half of the working state.
    for (batch, out, hidden, dirs, lstm, steps) in
        [(1, 1, 1, 1, false, 1), (3, 65, 65, 2, true, 2), (7, 5, 130, 1, true, 3), (300, 64, 64, 1, false, 4)]
    {
        let slot_len = dirs * out + if lstm { dirs * hidden } else { 0 };
        let slots: Vec<u32> = (0..batch as u32).map(|b| (b * 7 + 3) % (batch as u32 + 5)).collect();
        let pool = rng.vec((batch + 5) * slot_len, 1.0);
        let state = rng.vec(2 * batch * out + batch * hidden, 1.0);
        for d in 0..dirs {
            for to_pool in [false, true] {
                let dims = webrnn::cell::Dims { seq: steps, batch, input: 1, hidden, out, dirs, gates: 1 };
                let p = webrnn::gpu::layer::SlotParams::new(&dims, slot_len, lstm, d, to_pool, steps);
                let got = webrnn::gpu::block_on(k.context().state_slots(&p, &slots, &pool, &state)).unwrap();
                let (mut want_pool, mut want_state) = (pool.clone(), state.clone());
                cpu_twin::state_slots(&p, &slots, &mut want_pool, &mut want_state);
                assert_ne!((&want_pool, &want_state), (&pool, &state), "the twin moved nothing ({p:?})");
                assert_eq!(got, (want_pool, want_state), "{p:?}");
            }
        }
    }
}

#[test]
fn after_device_loss_the_kernels_fall_back_to_the_cpu() {
    if gpu_or_skip("after_device_loss_the_kernels_fall_back_to_the_cpu").is_none() {
        return;
    }
    // A device of its own: the shared one serves the other tests.
    let ctx = std::sync::Arc::new(webrnn::gpu::block_on(webrnn::gpu::GpuContext::new()).unwrap());
    let k = webrnn::gpu::GpuKernels::with_context(ctx.clone());
    let c = case(
        CellKind::Gru { linear_before_reset: true },
        Direction::Forward,
        Shape { seq: 4, batch: 2, input: 3, hidden: 5 },
        1.0,
        true,
        600,
    );
    check(&k, &c, "before the loss");
    ctx.device.destroy();
    ctx.wait_idle().ok();
    assert!(ctx.is_lost(), "destroy() reports a device loss");
    check(&k, &c, "after the loss (CPU)");
}

#[test]
fn gpu_handles_sessions_of_length_zero() {
    let Some(k) = gpu_or_skip("gpu_handles_sessions_of_length_zero") else { return };
    for cell in [CellKind::Lstm { input_forget: false }, CellKind::Gru { linear_before_reset: false }] {
        let mut c =
            case(cell, Direction::Bidirectional, Shape { seq: 3, batch: 4, input: 2, hidden: 3 }, 1.0, true, 700);
        c.lens = Some(webrnn::Tensor::from_i64(vec![4], vec![0; 4]).unwrap());
        check(&k, &c, &format!("{cell:?} all sequence_lens 0"));
        c.lens = Some(webrnn::Tensor::from_i64(vec![4], vec![0, 3, 1, 2]).unwrap());
        check(&k, &c, &format!("{cell:?} sequence_lens 0 3 1 2"));
    }
}

#[test]
fn the_browser_self_test_passes_natively() {
    if gpu_or_skip("the_browser_self_test_passes_natively").is_none() {
        return;
    }
    let ctx = std::sync::Arc::new(webrnn::gpu::block_on(webrnn::gpu::GpuContext::new()).unwrap());
    let report = webrnn::gpu::block_on(webrnn::gpu::self_test::self_test(ctx)).unwrap();
    print!("{report}");
}
