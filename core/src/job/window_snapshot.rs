//! An owner's open event-time state in a checkpoint's state snapshot: a
//! 16-byte header (how far windows are closed, then the event-time
//! frontier, each a little-endian u64, `u64::MAX` for none) and the open
//! entries, `(key, value)`, in the job's [`TotalsCodec`]: the panes of
//! aligned windows as `(key, (pane start, state, records))`, sessions as
//! `(key, (start, end, state, records))`. Every few epochs, on the owner;
//! it allocates.

use super::event_time::Closed;
use super::running::TotalsCodec;

const NONE: u64 = u64::MAX;
const HEADER: usize = 16;

/// Encodes `closed` and the `entries` it makes into `out`; `Ok(false)` if
/// `codec` does not snapshot (then `entries` is not called).
pub(super) fn save_open<C, K, V>(
    codec: &C,
    closed: Closed,
    entries: impl FnOnce() -> Vec<(K, V)>,
    out: &mut Vec<u8>,
) -> Result<bool, String>
where
    C: TotalsCodec<K, V>,
{
    if !codec.snapshots() {
        return Ok(false);
    }
    out.extend_from_slice(&closed.through.unwrap_or(NONE).to_le_bytes());
    out.extend_from_slice(&closed.frontier.unwrap_or(NONE).to_le_bytes());
    codec.save_owned(entries(), out)
}

/// What `save_open` encoded, checked.
pub(super) fn load_open<C, K, V>(codec: &C, bytes: &[u8]) -> Result<(Closed, Vec<(K, V)>), String>
where
    C: TotalsCodec<K, V>,
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
    let closed = Closed {
        through: word(0),
        frontier: word(8),
    };
    Ok((closed, codec.load(&bytes[HEADER..])?))
}
