//! Versioned binary snapshots of a session's state, bound to the model that made them.
//!
//! Layout (little-endian): magic `WRNNSTAT`, format version `u32`, model fingerprint `[u8; 16]`,
//! layer count `u32`, per layer (cell kind `u8`, directions `u8`, hidden size `u32`, state size
//! `u32`), for a model with graph-tensor state (called chunk by chunk) the pair count `u32` and per
//! pair its rank `u8` and dims `u32`, steps `u64`, value count `u32`, the `f32` values, then an FNV-1a 64 checksum of every
//! byte before it.

use crate::cell::CellKind;
use crate::error::{Error, Result};
use crate::session::Session;

const MAGIC: &[u8; 8] = b"WRNNSTAT";
pub const FORMAT_VERSION: u32 = 1;

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn layout_bytes(session: &Session) -> Result<Vec<u8>> {
    let plan = session.model().session_plan()?;
    let mut v = Vec::new();
    v.extend_from_slice(&(plan.cells.len() as u32).to_le_bytes());
    for c in &plan.cells {
        v.push(match c.cell {
            CellKind::Rnn => 0,
            CellKind::Gru { linear_before_reset: false } => 1,
            CellKind::Gru { linear_before_reset: true } => 2,
            CellKind::Lstm { .. } => 3,
        });
        v.push(c.direction.count() as u8);
        v.extend_from_slice(&(c.hidden_size as u32).to_le_bytes());
        v.extend_from_slice(&(c.state_size as u32).to_le_bytes());
    }
    // Graph-tensor state (models called chunk by chunk): each pair's rank and shape.
    if let Some(calls) = &plan.calls {
        v.extend_from_slice(&(calls.states.len() as u32).to_le_bytes());
        for st in &calls.states {
            v.push(st.shape.len() as u8);
            st.shape.iter().for_each(|&d| v.extend_from_slice(&(d as u32).to_le_bytes()));
        }
    }
    Ok(v)
}

impl Session {
    /// Serializes the session's state.
    pub fn save_state(&self) -> Result<Vec<u8>> {
        let state = self.state()?;
        let mut v = Vec::with_capacity(64 + state.len() * 4);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        v.extend_from_slice(&self.model().fingerprint());
        v.extend_from_slice(&layout_bytes(self)?);
        v.extend_from_slice(&self.steps().to_le_bytes());
        v.extend_from_slice(&(state.len() as u32).to_le_bytes());
        state.iter().for_each(|x| v.extend_from_slice(&x.to_le_bytes()));
        let sum = checksum(&v);
        v.extend_from_slice(&sum.to_le_bytes());
        Ok(v)
    }

    /// Restores a snapshot made by [`Session::save_state`] for this same model. On any error the
    /// session keeps its current state.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() < MAGIC.len() + 4 + 16 + 8 || &bytes[..8] != MAGIC {
            return Err(Error::CorruptState("not a webrnn state snapshot (bad magic or too short)".into()));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let mut sb = [0u8; 8];
        sb.copy_from_slice(sum);
        if checksum(body) != u64::from_le_bytes(sb) {
            return Err(Error::CorruptState("checksum mismatch: the snapshot is damaged".into()));
        }
        let mut pos = 8;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = body.get(pos..pos + n).ok_or_else(|| Error::CorruptState("snapshot is truncated".into()))?;
            pos += n;
            Ok(s)
        };
        let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let version = u32_at(take(4)?);
        if version != FORMAT_VERSION {
            return Err(Error::CorruptState(format!(
                "snapshot format version {version}, this runtime reads {FORMAT_VERSION}"
            )));
        }
        let fp = take(16)?;
        if fp != self.model().fingerprint() {
            return Err(Error::StateMismatch("the snapshot was made by another model (fingerprints differ)".into()));
        }
        let layout = layout_bytes(self)?;
        if take(layout.len())? != layout.as_slice() {
            return Err(Error::StateMismatch("the snapshot's layer layout differs from the model's".into()));
        }
        let steps = u64::from_le_bytes(take(8)?.try_into().map_err(|_| Error::CorruptState("bad steps".into()))?);
        let n = u32_at(take(4)?) as usize;
        if n != self.state_len() {
            return Err(Error::StateMismatch(format!(
                "snapshot holds {n} values, the model's state has {}",
                self.state_len()
            )));
        }
        let raw = take(n.checked_mul(4).ok_or_else(|| Error::CorruptState("bad length".into()))?)?;
        if pos != body.len() {
            return Err(Error::CorruptState("trailing bytes after the state".into()));
        }
        let values: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        self.set_state(&values)?;
        self.set_steps(steps);
        Ok(())
    }
}
