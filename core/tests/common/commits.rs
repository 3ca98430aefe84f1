//! What the checkpoint tests share: a log of keyed events cut into
//! epochs of `PER_EPOCH` records, and a sink that commits each epoch once
//! as the file and SQLite sinks do.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use microbatch::log::{LogOptions, LogWriter};
use microbatch::sink::{Sink, SinkError};
use microbatch::source::Event;

/// Records in the log.
pub const RECORDS: u64 = 100_000;
/// Records per epoch of the checkpoint's plan.
pub const PER_EPOCH: u64 = 10_000;

/// Each committed epoch's rows, sorted.
pub type Committed<Row> = Arc<Mutex<BTreeMap<u64, Vec<Row>>>>;

/// Commits each epoch whole when it is complete, once: an epoch committed
/// before is skipped (and counted in `again`), like the file and SQLite
/// sinks. Fails at `fail_at`, before committing it.
pub struct CommitSink<Row> {
    pub pending: Mutex<BTreeMap<u64, Vec<Row>>>,
    pub committed: Committed<Row>,
    pub again: Arc<AtomicU64>,
    pub fail_at: Option<u64>,
}

impl<Row> CommitSink<Row> {
    /// A sink committing into `committed`, counting epochs seen again in
    /// `again`, failing at `fail_at`.
    pub fn new(committed: &Committed<Row>, again: &Arc<AtomicU64>, fail_at: Option<u64>) -> Self {
        CommitSink {
            pending: Mutex::new(BTreeMap::new()),
            committed: Arc::clone(committed),
            again: Arc::clone(again),
            fail_at,
        }
    }
}

impl<Row: Ord + Send + 'static> Sink<Row> for CommitSink<Row> {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        let mut pending = self.pending.lock().unwrap();
        pending.entry(epoch).or_default().append(rows);
        Ok(())
    }

    fn epoch_complete(
        &self,
        epoch: u64,
        _: &microbatch::progress::EpochProgress,
    ) -> Result<(), SinkError> {
        let mut rows = self
            .pending
            .lock()
            .unwrap()
            .remove(&epoch)
            .unwrap_or_default();
        if self.fail_at == Some(epoch) {
            return Err(SinkError::Custom(format!("injected failure at {epoch}")));
        }
        match self.committed.lock().unwrap().entry(epoch) {
            Entry::Occupied(_) => {
                self.again.fetch_add(1, Ordering::Relaxed);
            }
            Entry::Vacant(slot) => {
                rows.sort();
                slot.insert(rows);
            }
        }
        Ok(())
    }
}

/// Writes the log: `RECORDS` events over 64 keys, in blocks of 1 000.
pub fn write_log(dir: &Path) {
    let mut writer = LogWriter::create(
        dir,
        LogOptions {
            block_records: 1000,
            ..LogOptions::default()
        },
    )
    .unwrap();
    for i in 0..RECORDS {
        let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
        writer.append(Event { key, value: i % 7 }).unwrap();
    }
    writer.finish().unwrap();
}
