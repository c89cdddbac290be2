//! Versioned binary snapshots of a session's state, bound to the model that made them.
//!
//! Layout (little-endian): magic `WRNNSTAT`, format version `u32`, model fingerprint `[u8; 16]`,
//! layer count `u32`, per layer (cell kind `u8`, directions `u8`, hidden size `u32`, state size
//! `u32`), for a model with graph-tensor state (called chunk by chunk) the pair count `u32` and per
//! pair its rank `u8` and dims `u32`, steps `u64`, value count `u32`, the `f32` values, from format 2
//! the session's adapter ([`crate::adapt::persist`]), then an FNV-1a 64 checksum of every byte
//! before it. Format 1 (no adapter) still loads.

use crate::adapt::persist::{self, Reader};
use crate::cell::CellKind;
use crate::error::{Error, Result};
use crate::session::Session;

const MAGIC: &[u8; 8] = b"WRNNSTAT";
pub const FORMAT_VERSION: u32 = 2;

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
    /// Serializes the session's state, with its adapter if it adapts.
    pub fn save_state(&self) -> Result<Vec<u8>> {
        self.snapshot(true)
    }

    /// The state alone: a few KiB where the adapter is a few hundred (to copy a state into a
    /// scratch session on every keystroke). Loading it leaves the loading session's adapter as is.
    pub fn save_state_without_adapter(&self) -> Result<Vec<u8>> {
        self.snapshot(false)
    }

    fn snapshot(&self, with_adapter: bool) -> Result<Vec<u8>> {
        let state = self.state()?;
        let mut v = Vec::with_capacity(64 + state.len() * 4);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        v.extend_from_slice(&self.model().fingerprint());
        v.extend_from_slice(&layout_bytes(self)?);
        v.extend_from_slice(&self.steps().to_le_bytes());
        v.extend_from_slice(&(state.len() as u32).to_le_bytes());
        state.iter().for_each(|x| v.extend_from_slice(&x.to_le_bytes()));
        persist::write(self.adapter.as_deref().filter(|_| with_adapter), &mut v);
        let sum = checksum(&v);
        v.extend_from_slice(&sum.to_le_bytes());
        Ok(v)
    }

    /// Restores a snapshot made by [`Session::save_state`] for this same model (and its adapter,
    /// if it carries one: adaptation is then on). On any error the session keeps its current state.
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
        let mut r = Reader { bytes: body, pos: 8 };
        let version = r.u32()? as u32;
        if version == 0 || version > FORMAT_VERSION {
            return Err(Error::CorruptState(format!(
                "snapshot format version {version}, this runtime reads 1 to {FORMAT_VERSION}"
            )));
        }
        if r.take(16)? != self.model().fingerprint() {
            return Err(Error::StateMismatch("the snapshot was made by another model (fingerprints differ)".into()));
        }
        let layout = layout_bytes(self)?;
        if r.take(layout.len())? != layout.as_slice() {
            return Err(Error::StateMismatch("the snapshot's layer layout differs from the model's".into()));
        }
        let steps = r.u64()?;
        let n = r.u32()?;
        if n != self.state_len() {
            return Err(Error::StateMismatch(format!(
                "snapshot holds {n} values, the model's state has {}",
                self.state_len()
            )));
        }
        let values = r.f32s(n)?;
        let adapter = if version >= 2 { persist::read(&mut r, self.model().output_head())? } else { None };
        if r.pos != body.len() {
            return Err(Error::CorruptState("trailing bytes after the state".into()));
        }
        self.set_state(&values)?;
        self.set_steps(steps);
        // The adapter comes with the state; a snapshot without one leaves the session's as it is.
        if let Some(a) = adapter {
            self.adapter = Some(Box::new(a));
            self.set_read_back(true);
        }
        Ok(())
    }
}
