//! What the workers know of one epoch in flight, gathered for its progress
//! report.

use std::time::Duration;

use crate::progress::{HotKey, PhaseDurations, SealReason, MARKS_PER_WORKER};

/// One epoch's figures as the workers report them: the sealer's reason and
/// time, each worker's records and waiting, each owner's rows, hot keys and
/// state snapshot.
///
/// Slot `e % max_epochs_in_flight` serves epoch `e`: the clock's window
/// guarantees epoch `e - D` is complete before anyone touches the slot for
/// `e`, and [`open`](EpochSlot::open) resets a slot the first time an epoch
/// touches it.
pub(crate) struct EpochSlot {
    epoch: u64,
    pub(crate) reason: Option<SealReason>,
    pub(crate) sealed_micros: u64,
    /// The interval the epoch opened with, as its sealer read it.
    pub(crate) interval: Option<Duration>,
    pub(crate) records: Vec<u64>,
    /// How long each worker waited while its batch of the epoch was open.
    pub(crate) waited: Vec<Duration>,
    pub(crate) stolen: u64,
    /// Workers whose batch of the epoch was folded combined.
    pub(crate) combined: usize,
    pub(crate) dead_letters: u64,
    /// The most records a producer ring held when a worker came to take.
    pub(crate) ring_backlog: usize,
    /// Each worker's newest event time folded up to this epoch, and
    /// whether it was idle past the job's idle timeout (event-time jobs).
    pub(crate) event_times: Vec<(Option<u64>, bool)>,
    /// Records the owners dropped as late (behind the watermark).
    pub(crate) late_records: u64,
    /// The event-time frontier the owners finished the epoch at.
    pub(crate) frontier: Option<u64>,
    /// Windows the owners hold open after the epoch.
    pub(crate) open_windows: usize,
    /// Windows the owners emitted in the epoch.
    pub(crate) windows_emitted: u64,
    pub(crate) durations: PhaseDurations,
    pub(crate) rows: u64,
    /// Every worker's arrival marks of the epoch: `(µs, records)`.
    pub(crate) marks: Vec<(u64, u64)>,
    /// Each owner's hottest keys of its partition (keys of different
    /// partitions differ).
    pub(crate) hot_keys: Vec<HotKey>,
    /// Each owner's encoded totals, when the epoch is snapshotted.
    pub(crate) state_parts: Vec<Option<Vec<u8>>>,
    pub(crate) owners_done: usize,
}

impl EpochSlot {
    pub(crate) fn new(workers: usize) -> Self {
        EpochSlot {
            epoch: u64::MAX,
            reason: None,
            sealed_micros: 0,
            interval: None,
            records: vec![0; workers],
            waited: vec![Duration::ZERO; workers],
            stolen: 0,
            combined: 0,
            dead_letters: 0,
            ring_backlog: 0,
            event_times: vec![(None, false); workers],
            late_records: 0,
            frontier: None,
            open_windows: 0,
            windows_emitted: 0,
            durations: PhaseDurations::default(),
            rows: 0,
            marks: Vec::with_capacity(workers * MARKS_PER_WORKER),
            hot_keys: Vec::new(),
            state_parts: (0..workers).map(|_| None).collect(),
            owners_done: 0,
        }
    }

    /// Makes the slot `epoch`'s, reset, unless it is already: buffers keep
    /// their memory.
    pub(crate) fn open(&mut self, epoch: u64) {
        if self.epoch != epoch {
            self.epoch = epoch;
            self.reason = None;
            self.sealed_micros = 0;
            self.interval = None;
            self.records.fill(0);
            self.waited.fill(Duration::ZERO);
            self.stolen = 0;
            self.combined = 0;
            self.dead_letters = 0;
            self.ring_backlog = 0;
            self.event_times.fill((None, false));
            self.late_records = 0;
            self.frontier = None;
            self.open_windows = 0;
            self.windows_emitted = 0;
            self.durations = PhaseDurations::default();
            self.rows = 0;
            self.marks.clear();
            self.hot_keys.clear();
            self.state_parts.fill(None);
            self.owners_done = 0;
        }
    }
}

/// Keeps `field` at the larger of itself and `value`: an epoch's phase
/// takes as long as its slowest worker's.
pub(crate) fn keep_max(field: &mut Duration, value: Duration) {
    *field = (*field).max(value);
}
