//! `cargo xtask soak`: the long versions of the soak and scale tests (issue #16), natively and
//! through the npm package in Node: 1,000,000 streaming steps on one session (flat memory, finite
//! outputs, p99 step latency at the end within 1.5× of the start), 10,000 sessions created,
//! stepped and disposed, a model loaded and disposed 1,000 times. `cargo test` and `js/test/run.mjs`
//! run the short versions.

use std::path::Path;
use std::process::Command;

use crate::{pack, run, Result};

pub fn soak(root: &Path) -> Result {
    println!("==> native (tests/soak.rs, release)");
    run(Command::new("cargo")
        .args(["test", "--release", "--test", "soak", "--", "--ignored", "--nocapture", "soak_long"])
        .current_dir(root))?;
    pack::pack(root)?;
    println!("==> the npm package in Node (js/test/soak.mjs --long)");
    run(Command::new("node").args(["js/test/soak.mjs", "--long"]).current_dir(root))
}
