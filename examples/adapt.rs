//! #17's figures for the demo's character GRU (H = 256, 96 classes): next-character top-1 accuracy
//! on a user's notes with state only and adapted, on generic prose afterwards (guard on and off),
//! and the cost of one `learn` against one `step`.
//!
//! `cargo run --release --example adapt -- [cpu|cpu-scalar] [learning rate]`

use std::time::Instant;

use webrnn::{AdaptOptions, Backend, Data, Model, Session, Target};

fn id(c: char) -> usize {
    if c == '\n' {
        0
    } else {
        (c as usize).saturating_sub(31).min(95)
    }
}

fn step(s: &mut Session, c: char) -> Vec<f32> {
    s.step(vec![Data::I64(vec![id(c) as i64])]).unwrap()[0].as_f32().unwrap().to_vec()
}

/// Top-1 accuracy over `text` and over its last 100 characters, learning after each step if `learn`.
fn accuracy(s: &mut Session, text: &str, learn: bool) -> (f32, f32) {
    let chars: Vec<char> = text.chars().collect();
    let hits: Vec<bool> = chars
        .windows(2)
        .map(|w| {
            let out = step(s, w[0]);
            let best = (0..out.len()).max_by(|&a, &b| out[a].total_cmp(&out[b])).unwrap_or(0);
            if learn {
                s.learn(Target::Class(id(w[1]))).unwrap();
            }
            best == id(w[1])
        })
        .collect();
    let rate = |h: &[bool]| h.iter().filter(|&&x| x).count() as f32 / h.len().max(1) as f32;
    (rate(&hits), rate(&hits[hits.len().saturating_sub(100)..]))
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> webrnn::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = Backend::parse(args.first().map(String::as_str).unwrap_or("cpu"))?;
    let lr: f32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.02);
    let model = Model::from_onnx_file("www/models/text-gru.onnx".as_ref())?.with_backend(backend)?;
    let notes =
        std::fs::read_to_string("tests/data/adapt/user_notes.txt").map_err(|e| webrnn::Error::Io(e.to_string()))?;
    let licence = std::fs::read_to_string("LICENSE-APACHE").map_err(|e| webrnn::Error::Io(e.to_string()))?;
    let prose: String = licence.chars().skip(600).take(4000).collect();
    let options = AdaptOptions { learning_rate: lr, ..Default::default() };
    println!("text-gru (H=256, 96 classes) on {}, learning rate {lr}", backend.name());
    let (base, base_last) = accuracy(&mut model.create_session()?, &notes, false);
    println!("user notes ({} chars), state only: top-1 {base:.3} (last 100: {base_last:.3})", notes.len());
    let mut adapted = None;
    for rank in [0, 32] {
        let mut s = model.create_adapting_session(AdaptOptions { rank, ..options })?;
        let (a, last) = accuracy(&mut s, &notes, true);
        println!("user notes, adapted (rank {rank}): top-1 {a:.3} (last 100: {last:.3}), {:?}", s.adaptation());
        adapted.get_or_insert(s);
    }
    let adapted = adapted.unwrap_or(model.create_session()?);
    let (fresh, _) = accuracy(&mut model.create_session()?, &prose, false);
    println!("prose ({} chars), fresh session: top-1 {fresh:.3}", prose.len());
    for guard in [true, false] {
        let mut s = adapted.clone();
        s.set_adapt_options(AdaptOptions { guard, ..options })?;
        let (p, _) = accuracy(&mut s, &prose, true);
        let on = if guard { "on" } else { "off" };
        println!("prose after the notes, learning on, guard {on}: top-1 {p:.3}, {:?}", s.adaptation());
    }
    let mut frozen = adapted.clone();
    frozen.set_adapt_options(AdaptOptions { guard: false, ..options })?;
    let (p, _) = accuracy(&mut frozen, &prose, false);
    println!("prose with the notes' adapter forced on, not learning: top-1 {p:.3}");
    // Cost: one step without an adapter, one step with one, one learn.
    let mut plain = model.create_session()?;
    let mut s = model.create_adapting_session(options)?;
    let chars: Vec<char> = notes.chars().collect();
    let (mut t_plain, mut t_step, mut t_learn) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        for w in chars.windows(2) {
            let t = Instant::now();
            step(&mut plain, w[0]);
            let t1 = Instant::now();
            step(&mut s, w[0]);
            let t2 = Instant::now();
            s.learn(Target::Class(id(w[1])))?;
            let t3 = Instant::now();
            if round > 0 {
                t_plain.push((t1 - t).as_secs_f64() * 1e6);
                t_step.push((t2 - t1).as_secs_f64() * 1e6);
                t_learn.push((t3 - t2).as_secs_f64() * 1e6);
            }
        }
    }
    let (a, b, c) = (p50(t_plain), p50(t_step), p50(t_learn));
    println!("p50: step {a:.1} µs, step with adapter {b:.1} µs, learn {c:.1} µs ({:.2}× a step)", c / a);
    Ok(())
}
