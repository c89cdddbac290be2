//! On-device personalization (#17): the output head found, learning, the guard, persistence.

mod common;

use webrnn::adapt::Activation;
use webrnn::{AdaptOptions, Data, Error, Model, Session, Target};

const VOCAB_FIRST: char = ' ';

fn text_model() -> Model {
    Model::from_onnx_file("www/models/text-gru.onnx".as_ref()).unwrap()
}

/// The demo's vocabulary: '\n', then ' '..='~'.
fn id(c: char) -> usize {
    if c == '\n' {
        0
    } else {
        (c as usize).saturating_sub(VOCAB_FIRST as usize - 1).min(95)
    }
}

fn step(s: &mut Session, c: char) -> Vec<f32> {
    let out = s.step(vec![Data::I64(vec![id(c) as i64])]).unwrap();
    out[0].as_f32().unwrap().to_vec()
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
}

/// Top-1 next-character accuracy over `text`, learning after each step when `learn`.
fn accuracy(s: &mut Session, text: &str, learn: bool) -> f32 {
    let chars: Vec<char> = text.chars().collect();
    let mut hits = 0;
    for w in chars.windows(2) {
        let out = step(s, w[0]);
        hits += (argmax(&out) == id(w[1])) as usize;
        if learn {
            s.learn(Target::Class(id(w[1]))).unwrap();
        }
    }
    hits as f32 / (chars.len() - 1) as f32
}

fn notes() -> String {
    std::fs::read_to_string(common::data_dir().join("adapt/user_notes.txt")).unwrap()
}

#[test]
fn finds_the_demo_models_head_and_refuses_models_without_one() {
    let head = text_model().output_head().unwrap();
    assert_eq!((head.classes, head.inputs, head.activation), (96, 256, Activation::LogSoftmax));
    let plain = Model::from_onnx_file(&common::data_dir().join("onnx-options/lstm_only_y/model.onnx")).unwrap();
    let e = plain.output_head().unwrap_err();
    assert!(matches!(e, Error::InvalidModel(_)), "{e}");
    let bidir = Model::from_onnx_file(&common::data_dir().join("golden/dynamo_gru_bidir/model.onnx")).unwrap();
    assert!(bidir.output_head().unwrap_err().to_string().contains("not forward-only"));
    let e = bidir.create_adapting_session(AdaptOptions::default()).unwrap_err();
    assert!(matches!(e, Error::InvalidModel(_)) && e.to_string().contains("no output head"), "{e}");
}

#[test]
fn bad_calls_get_typed_errors_and_change_nothing() {
    let model = text_model();
    let mut plain = model.create_session().unwrap();
    step(&mut plain, 'a');
    assert!(matches!(plain.learn(Target::Class(1)), Err(Error::InvalidArgument(_))));
    let mut s = model.create_adapting_session(AdaptOptions::default()).unwrap();
    let e = s.learn(Target::Class(3)).unwrap_err();
    assert!(e.to_string().contains("needs a step first"), "{e}");
    step(&mut s, 'a');
    assert!(s.learn(Target::Class(96)).unwrap_err().to_string().contains("out of range"));
    assert!(s.learn(Target::Values(&[0.0; 96])).unwrap_err().to_string().contains("class index"));
    s.learn(Target::Class(3)).unwrap();
    assert!(s.learn(Target::Class(3)).unwrap_err().to_string().contains("once per step"));
    assert_eq!(s.adaptation().unwrap().updates, 1);
    for bad in [
        AdaptOptions { learning_rate: f32::NAN, ..Default::default() },
        AdaptOptions { learning_rate: -1.0, ..Default::default() },
        AdaptOptions { window: 0, ..Default::default() },
        AdaptOptions { max_update_norm: 0.0, ..Default::default() },
    ] {
        assert!(matches!(model.create_adapting_session(bad), Err(Error::InvalidArgument(_))), "{bad:?}");
    }
}

#[test]
fn one_update_lowers_the_loss_of_that_step_and_outputs_stay_log_probabilities() {
    let model = text_model();
    let options = AdaptOptions { guard: false, ..Default::default() };
    let mut s = model.create_adapting_session(options).unwrap();
    for c in "the quick brown ".chars() {
        step(&mut s, c);
    }
    let before = s.state().unwrap().to_vec();
    let out = step(&mut s, 'f');
    let target = id('x');
    s.learn(Target::Class(target)).unwrap();
    s.set_state(&before).unwrap();
    let again = step(&mut s, 'f');
    assert!(again[target] > out[target] + 1e-3, "log p(target) {} -> {}", out[target], again[target]);
    let total: f32 = again.iter().map(|v| v.exp()).sum();
    assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
}

#[test]
fn a_tiny_update_norm_bound_keeps_outputs_at_the_base_models() {
    let model = text_model();
    let options = AdaptOptions { guard: false, max_update_norm: 1e-7, ..Default::default() };
    let mut s = model.create_adapting_session(options).unwrap();
    let mut base = model.create_session().unwrap();
    for c in "clipped updates barely move".chars() {
        let (a, b) = (step(&mut s, c), step(&mut base, c));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 + 1e-4 * y.abs(), "{x} vs {y}");
        }
        s.learn(Target::Class(id('e'))).unwrap();
    }
}

#[test]
fn adapting_beats_state_only_on_a_users_notes_full_and_low_rank() {
    let model = text_model();
    let text = notes();
    let base = accuracy(&mut model.create_session().unwrap(), &text, false);
    for rank in [0, 32] {
        let mut s = model.create_adapting_session(AdaptOptions { rank, ..Default::default() }).unwrap();
        let adapted = accuracy(&mut s, &text, true);
        let a = s.adaptation().unwrap();
        assert!(a.active && a.adapted_loss < a.base_loss, "rank {rank}: {a:?}");
        assert!((a.base_accuracy - base).abs() < 1e-3, "rank {rank}: {a:?} vs {base}");
        assert!((a.adapted_accuracy - adapted).abs() < 0.05, "rank {rank}: {a:?} vs {adapted}");
        assert!(adapted > base + 0.1, "rank {rank}: {base} -> {adapted}");
    }
}

#[test]
fn the_guard_keeps_prose_accuracy_and_rolls_back_divergence() {
    let model = text_model();
    let licence = std::fs::read_to_string("LICENSE-APACHE").unwrap();
    let prose: String = licence.chars().skip(600).take(2500).collect();
    let fresh = accuracy(&mut model.create_session().unwrap(), &prose, false);
    let mut guarded =
        model.create_adapting_session(AdaptOptions { learning_rate: 0.05, ..Default::default() }).unwrap();
    accuracy(&mut guarded, &notes(), true);
    let after = accuracy(&mut guarded, &prose, true);
    assert!(after > fresh - 0.03, "prose {fresh} -> {after} with the guard");
    // A huge learning rate with no norm bound diverges: the guard rolls back and outputs stay finite.
    let wild = AdaptOptions { learning_rate: 10.0, max_update_norm: 1e9, window: 8, ..Default::default() };
    let mut s = model.create_adapting_session(wild).unwrap();
    for (k, c) in notes().chars().take(400).enumerate() {
        let out = step(&mut s, c);
        assert!(out.iter().all(|v| v.is_finite()));
        s.learn(Target::Class((k * 37) % 96)).unwrap();
    }
    assert!(s.adaptation().unwrap().rollbacks > 0, "{:?}", s.adaptation());
    s.reset_adaptation();
    let a = s.adaptation().unwrap();
    assert!(a.updates == 0 && a.rollbacks == 0 && !a.active && a.base_loss.is_nan(), "{a:?}");
}

#[test]
fn regression_heads_learn_from_values() {
    let dir = common::data_dir().join("golden/sd_gru_embed_head");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let model = Model::from_safetensors(&bytes, &config).unwrap();
    let head = model.output_head().unwrap();
    assert_eq!((head.classes, head.activation), (37, Activation::None));
    let options = AdaptOptions { guard: false, learning_rate: 0.2, ..Default::default() };
    let mut s = model.create_adapting_session(options).unwrap();
    let target: Vec<f32> = (0..37).map(|k| (k as f32 * 0.3).sin()).collect();
    let mse = |v: &[f32]| v.iter().zip(&target).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
    let mut first = None;
    let mut last = 0.0;
    for k in 0..200 {
        let out = s.step(vec![Data::I64(vec![k % 5])]).unwrap()[0].as_f32().unwrap().to_vec();
        last = mse(&out);
        first.get_or_insert(last);
        s.learn(Target::Values(&target)).unwrap();
    }
    assert!(last < first.unwrap() * 0.5, "{first:?} -> {last}");
    s.step(vec![Data::I64(vec![1])]).unwrap();
    assert!(s.learn(Target::Values(&[0.0; 3])).is_err());
    assert!(s.learn(Target::Values(&[f32::NAN; 37])).unwrap_err().to_string().contains("non-finite"));
}

#[test]
fn snapshots_carry_the_adapter_and_older_ones_still_load() {
    let model = text_model();
    let mut s = model.create_adapting_session(AdaptOptions::default()).unwrap();
    accuracy(&mut s, &notes()[..1500], true);
    let bytes = s.save_state().unwrap();
    let mut restored = model.create_session().unwrap();
    restored.load_state(&bytes).unwrap();
    assert_eq!(restored.adaptation(), s.adaptation());
    for c in "monday: standup".chars() {
        let (a, b) = (step(&mut s, c), step(&mut restored, c));
        assert_eq!(a, b);
    }
    // Another model's snapshot is refused, and the session is unchanged.
    let other = Model::from_onnx_file("www/models/stream-lstm.onnx".as_ref()).unwrap();
    let mut o = other.create_session().unwrap();
    assert!(matches!(o.load_state(&bytes), Err(Error::StateMismatch(_))));
    // Format 1 (tests/data/snapshots/README.md) loads into a plain and an adapting session.
    let v1 = std::fs::read(common::data_dir().join("snapshots/text_gru_v1.bin")).unwrap();
    let mut want = model.create_session().unwrap();
    "the v1 snapshot\n".chars().for_each(|c| drop(step(&mut want, c)));
    for mut got in [model.create_session().unwrap(), s.clone()] {
        got.load_state(&v1).unwrap();
        assert_eq!(got.steps(), 16);
        for (a, b) in got.state().unwrap().iter().zip(want.state().unwrap()) {
            assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs());
        }
        if let Some(a) = got.adaptation() {
            assert_eq!(a, s.adaptation().unwrap(), "a format-1 snapshot leaves the session's adapter");
        }
    }
    // A state-only snapshot is small and leaves the loading session's adapter as it is.
    let small = s.save_state_without_adapter().unwrap();
    assert!(small.len() * 20 < bytes.len(), "{} vs {}", small.len(), bytes.len());
    let mut fresh = model.create_adapting_session(AdaptOptions::default()).unwrap();
    fresh.load_state(&small).unwrap();
    assert_eq!(fresh.state().unwrap(), s.state().unwrap());
    assert_eq!(fresh.adaptation().unwrap().updates, 0);
    // A damaged adapter section is caught by the checksum; a truncated one is refused.
    let mut bad = bytes.clone();
    let k = bad.len() - 100;
    bad[k] ^= 1;
    assert!(matches!(restored.load_state(&bad), Err(Error::CorruptState(_))));
    assert!(restored.load_state(&bytes[..bytes.len() - 9]).is_err());
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

#[test]
fn corrupted_adapter_sections_with_valid_checksums_never_panic_and_change_nothing() {
    let model = text_model();
    let mut s = model.create_adapting_session(AdaptOptions { rank: 8, window: 12, ..Default::default() }).unwrap();
    accuracy(&mut s, "abc abc abc abc abc", true);
    let good = s.save_state().unwrap();
    let small = s.save_state_without_adapter().unwrap();
    // The adapter section starts where the state-only snapshot's flag byte is.
    let section = small.len() - 9;
    let mut target = model.create_session().unwrap();
    let before = target.state().unwrap().to_vec();
    let mut seed = 17u64;
    let (mut refused, mut loaded) = (0, 0);
    for k in 0..400 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut b = good.clone();
        let body = b.len() - 8;
        // Mostly the section's header (options, sizes, counts), sometimes anywhere in it.
        let span = if k % 2 == 0 { 64 } else { body - section };
        let at = section + (seed >> 33) as usize % span.min(body - section);
        b[at] = b[at].wrapping_add(1 + (seed >> 20) as u8 % 255);
        let sum = fnv(&b[..body]);
        b[body..].copy_from_slice(&sum.to_le_bytes());
        match target.load_state(&b) {
            Ok(()) => {
                loaded += 1;
                target = model.create_session().unwrap();
            }
            Err(e) => {
                refused += 1;
                assert!(matches!(e, Error::CorruptState(_) | Error::StateMismatch(_)), "{e}");
                assert_eq!(target.state().unwrap(), &before[..], "a refused snapshot changed the state");
                assert!(target.adaptation().is_none());
            }
        }
    }
    assert!(refused > 100, "{refused} refused, {loaded} loaded");
}
