//! Where a source stood when each epoch was sealed, for a sink that
//! commits it with the epoch's results: the pattern Kafka's docs call
//! "storing offsets outside Kafka". A restarted run reads the positions
//! back from the sink and starts each partition there, so an epoch is in
//! the sink with exactly the records before its positions, or not at all.
//!
//! Each source part records its partitions' positions at every seal
//! ([`Source::sealed`](super::Source::sealed)); the sink takes an epoch's
//! positions when the epoch is complete, which is after every worker
//! sealed it. Cold path: a lock per worker and epoch, and one per commit.

use std::collections::BTreeMap;

use crate::sync::cold::{lock, Mutex};
use crate::sync::Arc;

/// A source partition's position after an epoch: the offset of the next
/// record it will hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The partition (a Kafka topic's partition number).
    pub partition: i32,
    /// The offset of the partition's next record, one past the last record
    /// in the epoch or before it.
    pub next_offset: i64,
}

/// The positions of one source (`stream`, such as a Kafka topic) at each
/// sealed epoch not yet committed. Cloned handles share them: one for the
/// source's parts, one for the sink.
///
/// ```
/// use microbatch::source::{Position, SealedPositions};
///
/// let positions = SealedPositions::new("clicks");
/// positions.record(0, &[Position { partition: 1, next_offset: 40 }]);
/// positions.record(0, &[Position { partition: 0, next_offset: 12 }]);
/// positions.record(1, &[Position { partition: 0, next_offset: 30 }]);
/// assert_eq!(
///     positions.take(0),
///     [Position { partition: 0, next_offset: 12 }, Position { partition: 1, next_offset: 40 }]
/// );
/// assert_eq!(positions.take(1), [Position { partition: 0, next_offset: 30 }]);
/// ```
#[derive(Debug, Clone)]
pub struct SealedPositions {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    stream: String,
    epochs: Mutex<BTreeMap<u64, Vec<Position>>>,
}

impl SealedPositions {
    /// No positions yet, of the source named `stream`.
    pub fn new(stream: &str) -> Self {
        SealedPositions {
            shared: Arc::new(Shared {
                stream: stream.to_owned(),
                epochs: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The source's name, under which a sink stores the positions.
    pub fn stream(&self) -> &str {
        &self.shared.stream
    }

    /// A part's `positions` after it sealed `epoch` (each partition read by
    /// one part only).
    pub fn record(&self, epoch: u64, positions: &[Position]) {
        lock(&self.shared.epochs)
            .entry(epoch)
            .or_default()
            .extend_from_slice(positions);
    }

    /// The positions after `epoch`, by partition, for its commit; those of
    /// earlier epochs, which a sink that skipped them never took, go too.
    /// A partition's latest position stands for it.
    pub fn take(&self, epoch: u64) -> Vec<Position> {
        let mut epochs = lock(&self.shared.epochs);
        let later = epochs.split_off(&(epoch + 1));
        let done = std::mem::replace(&mut *epochs, later);
        drop(epochs);
        let mut latest = BTreeMap::new();
        for position in done.into_values().flatten() {
            latest.insert(position.partition, position.next_offset);
        }
        latest
            .into_iter()
            .map(|(partition, next_offset)| Position {
                partition,
                next_offset,
            })
            .collect()
    }
}
