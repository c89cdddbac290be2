//! A counting global allocator for the test binaries that measure memory (`#[path]`-included by
//! tests/soak.rs and tests/budget.rs, so the others keep the plain one): the bytes this thread
//! has allocated and not freed, and the most it has held since [`reset_peak`].
#![allow(dead_code)] // each binary uses part of it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|c| {
            c.set(c.get() + l.size() as isize);
            let _ = PEAK.try_with(|p| p.set(p.get().max(c.get())));
        });
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get() - l.size() as isize));
        unsafe { System.dealloc(p, l) }
    }
}

/// Bytes this thread holds.
pub fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Starts a new peak at what is held now.
pub fn reset_peak() {
    PEAK.with(|p| p.set(live()));
}

/// The most bytes held since [`reset_peak`], above what was held then is `peak() - then`.
pub fn peak() -> isize {
    PEAK.with(Cell::get)
}
