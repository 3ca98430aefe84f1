//! What a part of an event-time job keeps of event time, the same for
//! aligned windows and sessions: the newest event time folded, the records
//! dropped as late, and the watermark the batch opened with; and what an
//! owner is told of event time when it finishes an epoch ([`EpochTime`]).

use super::{HashPartitioner, Partitioner, Parts, Pipe};

/// Where event time stands when an owner finishes an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EpochTime {
    /// The least, over the workers, of the newest event time (ms) each has
    /// folded up to this epoch (idle workers left out, see
    /// [`Job::idle_timeout`](super::Job::idle_timeout)); `None` until every worker has folded one.
    /// A job's watermark is this less its delay.
    pub frontier: Option<u64>,
    /// The last epoch: the input has ended, every window closes (not when
    /// the sink keeps the state to resume from: that run only pauses).
    pub last: bool,
    /// The epoch being finished.
    pub epoch: u64,
    /// How many owners finish this epoch, one partition each (the job's
    /// [`partitions`](super::Job::partitions)): a job that gathers every owner's
    /// share of an epoch (see [`Job::regroup`](super::Job::regroup)) knows when it has them all.
    pub partitions: usize,
    /// The partition being finished (its owner's id).
    pub partition: usize,
    /// When the epoch was sealed (its first worker's seal), for a job that
    /// measures how long its results took.
    pub sealed_at: Option<std::time::Instant>,
    /// The records the epoch holds, over every worker.
    pub records: u64,
}

/// A part's event-time bookkeeping.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PartClock {
    /// The newest event time folded.
    newest: Option<u64>,
    /// Records dropped as late.
    pub(super) late: u64,
    /// The watermark when the batch opened: records behind it are late.
    watermark: Option<u64>,
}

impl PartClock {
    /// A batch opens: the watermark is `frontier` less `delay_ms`.
    pub(super) fn open(&mut self, frontier: Option<u64>, delay_ms: u64) {
        self.watermark = frontier.map(|frontier| frontier.saturating_sub(delay_ms));
        self.newest = None;
    }

    /// A run of records folded, the newest at `newest`, `late` dropped.
    fn note(&mut self, newest: Option<u64>, late: u64) {
        self.newest = self.newest.max(newest);
        self.late += late;
    }

    /// Takes `from`'s figures in (a merge of parts).
    pub(super) fn absorb(&mut self, from: &mut PartClock) {
        self.newest = self.newest.max(from.newest.take());
        self.late += std::mem::take(&mut from.late);
    }

    /// The newest event time folded into `clocks`.
    pub(super) fn newest<'a>(clocks: impl Iterator<Item = &'a PartClock>) -> Option<u64> {
        clocks.filter_map(|clock| clock.newest).max()
    }

    /// Takes the count of late records.
    pub(super) fn take_late(&mut self) -> u64 {
        std::mem::take(&mut self.late)
    }
}

/// How far an owner has closed windows (or sessions) and the frontier it
/// finished its last epoch at: what its open state is relative to, kept
/// with it and in its snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Closed {
    /// Windows ending at or before this have gone out.
    pub(super) through: Option<u64>,
    /// The event-time frontier of the last epoch finished.
    pub(super) frontier: Option<u64>,
}

/// Feeds `records` through `pipe` into `parts`, the one loop of every
/// event-time job: each item behind the batch's watermark is counted late,
/// every other goes to `fold` with its event time (`time`), and the
/// newest time and the late count are noted in the first part's clock
/// (`clock`). Hot path: per item, its time, one comparison, and `fold`.
#[inline(always)]
pub(super) fn fold_on_time<R, P: Pipe<R>, Part>(
    records: &[R],
    pipe: &P,
    time: &impl Fn(&P::Out) -> u64,
    parts: &mut Parts<'_, Part>,
    clock: fn(&mut Part) -> &mut PartClock,
    mut fold: impl FnMut(&P::Out, u64, &mut Parts<'_, Part>),
) {
    let Some(watermark) = parts.first_mut().map(|part| clock(part).watermark) else {
        return;
    };
    let (mut newest, mut late) = (None, 0);
    for record in records {
        pipe.feed(record, |item| {
            let t = time(item);
            if watermark.is_some_and(|watermark| t < watermark) {
                late += 1;
                return;
            }
            newest = newest.max(Some(t));
            fold(item, t, parts);
        });
    }
    if let Some(first) = parts.first_mut() {
        clock(first).note(newest, late);
    }
}

/// The watermark an owner closes windows by for `time`: everything at the
/// last epoch, else the frontier less `delay_ms`; `None` before there is
/// a frontier.
pub(super) fn closing_watermark(time: EpochTime, delay_ms: u64) -> Option<u64> {
    if time.last {
        Some(u64::MAX)
    } else {
        time.frontier
            .map(|frontier| frontier.saturating_sub(delay_ms))
    }
}

/// The partition of an entry whose hash is `hash`, of `partitions`.
#[inline(always)]
pub(super) fn partition_of(hash: u64, partitions: usize) -> usize {
    if partitions == 1 {
        0
    } else {
        Partitioner::<()>::partition(&HashPartitioner, &(), hash, partitions)
    }
}
