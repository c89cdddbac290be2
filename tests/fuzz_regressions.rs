//! Inputs the fuzzers of `fuzz/` (`cargo xtask fuzz`) found or reached deep with, committed under
//! `tests/data/fuzz/<target>/`: each runs through its target's body (`fuzz/fuzz_targets/common.rs`)
//! on every `cargo test`, so a fixed crash stays fixed. Each must give values or typed errors.

use std::panic::{catch_unwind, AssertUnwindSafe};

#[allow(dead_code)]
#[path = "../fuzz/fuzz_targets/common.rs"]
mod common;

/// A target's body.
type Body = fn(&[u8]);

#[test]
fn committed_fuzz_inputs_give_values_or_typed_errors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let targets: [(&str, Body); 3] =
        [("onnx", common::onnx), ("safetensors", common::safetensors), ("snapshot", common::snapshot)];
    let mut failed = Vec::new();
    for (target, body) in targets {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(target))
            .unwrap_or_else(|e| panic!("tests/data/fuzz/{target}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "tests/data/fuzz/{target} has no inputs");
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            if catch_unwind(AssertUnwindSafe(|| body(&bytes))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "panicked on: {failed:?}");
}
