//! Soak and scale (issue #16): a session stepped for a long time keeps its memory flat and its
//! outputs finite, sessions and models created and dropped by the thousand give all their memory
//! back. Memory is counted by this binary's allocator (the bytes this thread holds), so the checks
//! are exact, not sampled. The short versions run in `cargo test`; `cargo xtask soak` runs the
//! long one (`soak_long`, ignored here: 1,000,000 steps, 10,000 sessions, 1,000 loads) with the
//! p99 step latency at the end against the start.

mod common;

use std::time::Instant;

use common::data_dir;
use counting::live;
use webrnn::{Data, Model};

#[path = "common/counting.rs"]
mod counting;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const MODEL: &str = "golden/legacy_lstm_step_b3_op14/model.onnx";

fn model() -> Model {
    Model::from_onnx_file(&data_dir().join(MODEL)).unwrap()
}

/// Deterministic finite inputs in [-3, 3] (a sine sweep, with bursts up to ±1e4 now and then).
fn input(step: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let v = ((step * 7 + i * 13) as f32 * 0.01).sin() * 3.0;
            if step % 997 == 0 {
                v * 3e3
            } else {
                v
            }
        })
        .collect()
}

/// Steps one session `steps` times: the bytes held after warming up and at the end, and the p99
/// step latency (µs) of the first and last 10% of the steps.
fn stream(steps: usize) -> (isize, isize, f64, f64) {
    let m = model();
    let len = m.session_plan().unwrap().inputs[0].step_len();
    let mut s = m.create_session().unwrap();
    let warm = steps / 20;
    let (mut held, mut times) = (0, Vec::with_capacity(steps));
    for step in 0..steps {
        let x = input(step, len);
        let t = Instant::now();
        let y = s.step(vec![Data::F32(x)]).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
        for t in &y {
            assert!(t.as_f32().unwrap().iter().all(|v| v.is_finite()), "non-finite output at step {step}");
        }
        drop(y);
        if step == warm {
            held = live();
        }
    }
    assert!(s.state().unwrap().iter().all(|v| v.is_finite()));
    let p99 = |w: &[f64]| {
        let mut w = w.to_vec();
        w.sort_by(f64::total_cmp);
        w[w.len() * 99 / 100]
    };
    let tenth = steps / 10;
    (held, live(), p99(&times[warm..warm + tenth]), p99(&times[steps - tenth..]))
}

/// Creates, steps and drops `n` sessions (100 alive at a time); the bytes held after the
/// first hundred and at the end.
fn sessions(n: usize) -> (isize, isize) {
    let m = model();
    let len = m.session_plan().unwrap().inputs[0].step_len();
    let mut held = 0;
    for round in 0..n / 100 {
        let mut ss: Vec<_> = (0..100).map(|_| m.create_session().unwrap()).collect();
        let mut refs: Vec<_> = ss.iter_mut().collect();
        m.step_batch(&mut refs, vec![Data::F32(input(round, len * 100))]).unwrap();
        for s in &mut ss[..3] {
            s.step(vec![Data::F32(input(round, len))]).unwrap();
        }
        drop(ss);
        if round == 0 {
            held = live();
        }
    }
    (held, live())
}

/// Loads, runs and drops the model `n` times; the bytes held after the first and at the end.
fn loads(n: usize) -> (isize, isize) {
    let bytes = std::fs::read(data_dir().join(MODEL)).unwrap();
    let mut held = 0;
    for i in 0..n {
        let m = Model::from_onnx(&bytes).unwrap();
        let len = m.session_plan().unwrap().inputs[0].step_len();
        m.create_session().unwrap().step(vec![Data::F32(input(i, len))]).unwrap();
        drop(m);
        if i == 0 {
            held = live();
        }
    }
    (held, live())
}

/// Memory is flat: what is held at the end is what was held after the warm-up (a few KiB of
/// slack for the allocator's own bookkeeping of growing collections).
fn flat(what: &str, (before, after): (isize, isize)) {
    assert!(after - before <= 4096, "{what}: {before} bytes held after warming up, {after} at the end");
}

#[test]
fn soak_short() {
    let (a, b, p_start, p_end) = stream(20_000);
    flat("20k steps", (a, b));
    println!("20k steps: {a} → {b} bytes, p99 {p_start:.1} µs → {p_end:.1} µs");
    flat("2000 sessions", sessions(2000));
    flat("100 loads", loads(100));
}

#[test]
#[ignore = "long: cargo xtask soak"]
fn soak_long() {
    let steps = std::env::var("WEBRNN_SOAK_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let t = Instant::now();
    let (a, b, p_start, p_end) = stream(steps);
    println!(
        "{steps} steps in {:.1} s: held {a} → {b} bytes, p99 step {p_start:.2} µs (start) → {p_end:.2} µs (end)",
        t.elapsed().as_secs_f64()
    );
    flat("the long stream", (a, b));
    assert!(p_end <= 1.5 * p_start, "p99 step latency grew from {p_start:.2} µs to {p_end:.2} µs");
    let s = sessions(10_000);
    println!("10,000 sessions created, stepped and dropped: held {} → {} bytes", s.0, s.1);
    flat("10,000 sessions", s);
    let l = loads(1000);
    println!("1,000 loads: held {} → {} bytes", l.0, l.1);
    flat("1,000 loads", l);
}
