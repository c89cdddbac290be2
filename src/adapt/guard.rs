//! The guard: base and adapted losses over a recent window, scored on each step's prediction before
//! the update it triggers. The adapter is used only while its mean there beats the base model's;
//! a non-finite or spiking loss rolls the adapter back to its last good copy.

/// A ring of `(base, adapted)` losses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    pub(crate) losses: Vec<(f32, f32)>,
    pub(crate) next: usize,
    pub(crate) cap: usize,
}

/// An adapted loss above this many times the base one (or the window's base mean) is a spike.
pub const SPIKE: f32 = 8.0;

impl Window {
    pub(crate) fn new(cap: usize) -> Window {
        Window { losses: Vec::with_capacity(cap), next: 0, cap: cap.max(1) }
    }

    pub(crate) fn push(&mut self, base: f32, adapted: f32) {
        if self.losses.len() < self.cap {
            self.losses.push((base, adapted));
        } else {
            self.losses[self.next] = (base, adapted);
        }
        self.next = (self.next + 1) % self.cap;
    }

    pub(crate) fn clear(&mut self) {
        self.losses.clear();
        self.next = 0;
    }

    /// Mean base and adapted loss (NaN when empty).
    pub(crate) fn means(&self) -> (f32, f32) {
        let n = self.losses.len() as f32;
        let (b, a) = self.losses.iter().fold((0.0, 0.0), |(b, a), &(x, y)| (b + x, a + y));
        (b / n, a / n)
    }

    /// Losses needed before the adapter may be used.
    pub(crate) fn min_len(&self) -> usize {
        (self.cap / 4).clamp(1, 16)
    }

    /// Whether the adapter beats the base model over the window.
    pub(crate) fn adapted_wins(&self) -> bool {
        let (b, a) = self.means();
        self.losses.len() >= self.min_len() && a < b
    }

    /// Whether `adapted` is a divergence: non-finite, or a spike over `base` and the window's mean.
    pub(crate) fn diverged(&self, base: f32, adapted: f32) -> bool {
        let mean = if self.losses.is_empty() { base } else { self.means().0 };
        !adapted.is_finite() || adapted > SPIKE * base.max(mean).max(1e-3)
    }
}
