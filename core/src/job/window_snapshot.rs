//! An owner's open windows in a checkpoint's state snapshot: a 16-byte
//! header (how far windows are closed, then the event-time frontier, each
//! a little-endian u64, `u64::MAX` for none) and the open panes as
//! `(key, (pane start, state, records))` entries in the job's
//! [`TotalsCodec`]. Every few epochs, on the owner; it allocates.

use std::hash::Hash;

use hashbrown::hash_table::HashTable;

use super::running::TotalsCodec;
use super::window::{Entry, OpenWindows};

const NONE: u64 = u64::MAX;
const HEADER: usize = 16;

/// Encodes `totals` into `out`; `Ok(false)` if `codec` does not snapshot.
pub(super) fn save_open_windows<C, K, S>(
    codec: &C,
    totals: &OpenWindows<K, S>,
    out: &mut Vec<u8>,
) -> Result<bool, String>
where
    C: TotalsCodec<K, (u64, S, u64)>,
    K: Clone,
    S: Clone,
{
    if !codec.snapshots() {
        return Ok(false);
    }
    let entries: Vec<(K, (u64, S, u64))> = totals
        .table
        .iter()
        .map(|(key, pane, state, records)| (key.clone(), (*pane, state.clone(), *records)))
        .collect();
    out.extend_from_slice(&totals.closed_through.unwrap_or(NONE).to_le_bytes());
    out.extend_from_slice(&totals.frontier.unwrap_or(NONE).to_le_bytes());
    codec.save(entries.iter(), out)
}

/// The open windows `save_open_windows` encoded, checked; `hash` places a
/// pane in the table as the job does.
pub(super) fn load_open_windows<C, K, S>(
    codec: &C,
    bytes: &[u8],
    hash: impl Fn(&Entry<K, S>) -> u64,
) -> Result<OpenWindows<K, S>, String>
where
    C: TotalsCodec<K, (u64, S, u64)>,
    K: Hash + Eq,
{
    if bytes.len() < HEADER {
        return Err(format!(
            "{} bytes, shorter than the {HEADER}-byte header of open windows",
            bytes.len()
        ));
    }
    let word = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        Some(u64::from_le_bytes(word)).filter(|&value| value != NONE)
    };
    let mut table = HashTable::new();
    for (key, (pane, state, records)) in codec.load(&bytes[HEADER..])? {
        let entry = (key, pane, state, records);
        let at = hash(&entry);
        table.insert_unique(at, entry, &hash);
    }
    Ok(OpenWindows {
        table,
        closed_through: word(0),
        frontier: word(8),
    })
}
