//! The adapter's section of a snapshot (format 2): flag `u8` (0: none), then options (learning
//! rate `f32`, rank `u32`, window `u32`, max update norm `f32`, guard `u8`), the head's classes and
//! inputs `u32`, updates `u64`, rollbacks `u32`, class targets scored and the base and adapted
//! hits among them `u64` each, parameter count `u32`, the parameters and their
//! last good copy (`f32` each), the window's length `u32`, next slot `u32` and `(base, adapted)`
//! loss pairs (`f32`).

use super::{AdaptOptions, Adapter, Head};
use crate::error::{Error, Result};

fn put_u32(v: &mut Vec<u8>, x: usize) {
    v.extend_from_slice(&(x as u32).to_le_bytes());
}

fn put_f32s(v: &mut Vec<u8>, xs: &[f32]) {
    xs.iter().for_each(|x| v.extend_from_slice(&x.to_le_bytes()));
}

/// Appends the section for `adapter`.
pub(crate) fn write(adapter: Option<&Adapter>, v: &mut Vec<u8>) {
    let Some(a) = adapter else {
        v.push(0);
        return;
    };
    let o = &a.options;
    v.push(1);
    put_f32s(v, &[o.learning_rate]);
    put_u32(v, o.rank);
    put_u32(v, o.window);
    put_f32s(v, &[o.max_update_norm]);
    v.push(o.guard as u8);
    put_u32(v, a.head.classes);
    put_u32(v, a.head.inputs);
    v.extend_from_slice(&a.updates.to_le_bytes());
    put_u32(v, a.rollbacks as usize);
    for x in [a.scored, a.hits[0], a.hits[1]] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    put_u32(v, a.params.len());
    put_f32s(v, &a.params);
    put_f32s(v, &a.good);
    put_u32(v, a.window.losses.len());
    put_u32(v, a.window.next);
    a.window.losses.iter().for_each(|&(b, x)| put_f32s(v, &[b, x]));
}

/// A cursor over a snapshot's bytes.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| Error::CorruptState("bad length".into()))?;
        let s = self.bytes.get(self.pos..end).ok_or_else(|| Error::CorruptState("snapshot is truncated".into()))?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u32(&mut self) -> Result<usize> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let raw = self.take(n.checked_mul(4).ok_or_else(|| Error::CorruptState("bad length".into()))?)?;
        Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

/// Reads the section: `None` when the snapshot has no adapter.
pub(crate) fn read(r: &mut Reader<'_>, head: std::result::Result<Head, Error>) -> Result<Option<Adapter>> {
    if r.take(1)?[0] == 0 {
        return Ok(None);
    }
    let bad = |what: &'static str| Error::CorruptState(what.into());
    let learning_rate = r.f32s(1)?[0];
    let (rank, window) = (r.u32()?, r.u32()?);
    let max_update_norm = r.f32s(1)?[0];
    let guard = r.take(1)?[0] != 0;
    let options = AdaptOptions { learning_rate, rank, window, max_update_norm, guard };
    let (classes, inputs) = (r.u32()?, r.u32()?);
    let head = head?;
    if (classes, inputs) != (head.classes, head.inputs) {
        return Err(Error::StateMismatch("the snapshot's adapter was made for another output head".into()));
    }
    let mut a = Adapter::new(head, options).map_err(|_| bad("the snapshot's adapter has bad options"))?;
    a.updates = r.u64()?;
    a.rollbacks = r.u32()? as u32;
    (a.scored, a.hits) = (r.u64()?, [r.u64()?, r.u64()?]);
    if a.hits.iter().any(|&h| h > a.scored) {
        return Err(bad("the snapshot's adapter has more hits than targets"));
    }
    let n = r.u32()?;
    if n != a.params.len() {
        return Err(bad("the snapshot's adapter has a wrong parameter count"));
    }
    a.params = r.f32s(n)?;
    a.good = r.f32s(n)?;
    let (len, next) = (r.u32()?, r.u32()?);
    if len > window || next >= window.max(1) {
        return Err(bad("the snapshot's adapter has a bad window"));
    }
    let pairs = r.f32s(len.saturating_mul(2))?;
    a.window.losses = pairs.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    a.window.next = next;
    if a.params.iter().chain(&a.good).any(|v| !v.is_finite()) {
        return Err(bad("the snapshot's adapter has non-finite parameters"));
    }
    Ok(Some(a))
}
