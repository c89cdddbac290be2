//! Fuzz target `snapshot`: see `common.rs`.
#![no_main]

#[allow(dead_code)] // each target uses one of the bodies
#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::snapshot(data));
