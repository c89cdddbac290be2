//! Per-thread scratch buffers for the im2col matrix and the product of a convolution: each call
//! used to allocate and zero both (six convolutions per Silero VAD chunk, twelve allocations);
//! now they are kept between calls and only grown. A buffer past [`KEEP`] is let go after the
//! call, so a model's one large convolution does not pin its memory for the page's lifetime.

use std::cell::RefCell;

use crate::cpu::simd::F4;

/// Bytes of scratch kept between calls.
const KEEP: usize = 1 << 20;

thread_local! {
    static SCRATCH: RefCell<(Vec<f32>, Vec<F4>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` with a buffer of `na` floats and one of `nc` vectors, their contents unspecified (the
/// caller writes every element it reads).
pub(crate) fn with_scratch<R>(na: usize, nc: usize, f: impl FnOnce(&mut [f32], &mut [F4]) -> R) -> R {
    let taken = SCRATCH.with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)).ok());
    let (mut a, mut c) = taken.unwrap_or_default();
    if a.len() < na {
        a.resize(na, 0.0);
    }
    if c.len() < nc {
        c.resize(nc, [0.0; 4]);
    }
    let r = f(&mut a[..na], &mut c[..nc]);
    let keep = |bytes: usize| bytes <= KEEP;
    if !keep(a.len() * 4) {
        a = Vec::new();
    }
    if !keep(c.len() * 16) {
        c = Vec::new();
    }
    SCRATCH.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            *s = (a, c);
        }
    });
    r
}
