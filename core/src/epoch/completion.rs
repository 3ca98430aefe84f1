//! Epoch completion: one epoch at a time, in order, the figures the
//! workers left in an epoch's slot become its [`EpochProgress`], its
//! record latencies go into the run's histogram, and its counts into the
//! run's totals.
//!
//! The steps, each a method, in the order the completing thread runs them
//! (see `Runtime::complete_epoch`): [`gather`](Completion::gather) the
//! slot's figures as of the moment the rows are complete; the commit
//! (checkpoint offsets, sink, commit file: `checkpoint::commit`);
//! [`stamp_committed`](Completion::stamp_committed) the time the result
//! was out; [`account`](Completion::account) the epoch in the totals.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::slot::{keep_max, EpochSlot};
use crate::progress::{
    latency_histogram, EpochProgress, LatencySummary, Progress, SealReason, HOT_KEYS_REPORTED,
};

/// The run's completed epochs.
///
/// Invariant: epochs are completed in order; `next_epoch` is the only one
/// whose completion may proceed. Held for the whole of a completion (the
/// sink's commit included); what readers of progress see is
/// [`Published`], on a lock of its own, so a slow sink never holds them up.
pub(crate) struct Completion {
    /// The epoch whose turn it is.
    pub(crate) next_epoch: u64,
    /// When the epoch `next_epoch` opened: the previous one's seal, µs.
    opened_micros: u64,
}

/// What the completed epochs add up to, as progress readers see it.
pub(crate) struct Published {
    pub(crate) totals: Progress,
    /// Record latency over every completed epoch, µs.
    pub(crate) histogram: Histogram<u64>,
}

impl Published {
    pub(crate) fn new() -> Self {
        Published {
            totals: Progress::default(),
            histogram: latency_histogram(),
        }
    }
}

/// Records per second over `span`; 0 over an empty span.
fn rate(records: u64, span: Duration) -> f64 {
    if span.is_zero() {
        0.0
    } else {
        records as f64 / span.as_secs_f64()
    }
}

impl Completion {
    pub(crate) fn new(first_epoch: u64) -> Self {
        Completion {
            next_epoch: first_epoch,
            opened_micros: 0,
        }
    }

    /// `epoch`'s progress from its slot, with its rows complete at `now`
    /// (µs since the start), and its arrival marks turned into `(age µs,
    /// records)` runs as of `now`; the slot keeps an empty marks buffer
    /// until [`stamp_committed`](Self::stamp_committed) hands the runs back.
    pub(crate) fn gather(
        &self,
        epoch: u64,
        slot: &mut EpochSlot,
        now: u64,
    ) -> (EpochProgress, Vec<(u64, u64)>) {
        let records: u64 = slot.records.iter().sum();
        let opened = Duration::from_micros(self.opened_micros);
        let sealed_micros = slot.sealed_micros.max(self.opened_micros);
        let sealed = Duration::from_micros(sealed_micros);
        let completed = Duration::from_micros(now.max(sealed_micros));
        let mut hot_keys = std::mem::take(&mut slot.hot_keys);
        hot_keys.sort_by(|a, b| b.records.cmp(&a.records).then_with(|| a.key.cmp(&b.key)));
        hot_keys.truncate(HOT_KEYS_REPORTED);
        let mut runs = std::mem::take(&mut slot.marks);
        for run in &mut runs {
            run.0 = now.saturating_sub(run.0).max(1);
        }
        let progress = EpochProgress {
            epoch,
            seal_reason: slot.reason.unwrap_or(SealReason::Shutdown),
            records,
            records_per_worker: slot.records.clone(),
            waited_per_worker: slot.waited.clone(),
            records_stolen: slot.stolen,
            combined_batches: slot.combined,
            dead_letters: slot.dead_letters,
            late_records: slot.late_records,
            event_time_frontier_ms: slot.frontier,
            event_time_newest_ms: slot.event_times.iter().filter_map(|(t, _)| *t).max(),
            open_windows: slot.open_windows,
            windows_emitted: slot.windows_emitted,
            ring_backlog: slot.ring_backlog,
            rows: slot.rows,
            opened,
            sealed,
            completed,
            input_rate: rate(records, sealed.saturating_sub(opened)),
            processing_rate: rate(records, completed.saturating_sub(opened)),
            durations: slot.durations,
            seal_to_result: completed.saturating_sub(sealed),
            // Latency as of the rows' completion: what the sink's copy of
            // the progress says.
            latency: LatencySummary::of_runs(&mut runs),
            interval: slot.interval,
            target: None,
            hot_keys,
        };
        (progress, runs)
    }

    /// The result of the epoch gathered at `now` was out (the sink and the
    /// checkpoint committed it) at `committed`: completion and latency
    /// count to then, and the runs go into the run's `histogram`.
    pub(crate) fn stamp_committed(
        &mut self,
        histogram: &mut Histogram<u64>,
        progress: &mut EpochProgress,
        runs: &mut [(u64, u64)],
        now: u64,
        committed: u64,
    ) {
        let late = committed.saturating_sub(now);
        progress.completed += Duration::from_micros(late);
        progress.seal_to_result = progress.completed.saturating_sub(progress.sealed);
        let span = progress.completed.saturating_sub(progress.opened);
        if !span.is_zero() {
            progress.processing_rate = rate(progress.records, span);
        }
        keep_max(&mut progress.durations.sink, Duration::from_micros(late));
        for run in runs.iter_mut() {
            run.0 += late;
            // Saturates at the histogram's bound rather than failing.
            histogram.saturating_record_n(run.0, run.1);
        }
        progress.latency = LatencySummary::of_runs(runs);
    }

    /// Counts the completed epoch in the `totals`; the next epoch's turn.
    pub(crate) fn account(&mut self, totals: &mut Progress, progress: EpochProgress) {
        totals.epochs_completed += 1;
        totals.records_in_results += progress.records;
        totals.records_stolen += progress.records_stolen;
        totals.dead_letters += progress.dead_letters;
        totals.late_records += progress.late_records;
        totals.open_windows_max = totals.open_windows_max.max(progress.open_windows);
        totals.windows_emitted += progress.windows_emitted;
        totals.rows += progress.rows;
        self.opened_micros = progress.sealed.as_micros() as u64;
        totals.last = Some(progress);
        self.next_epoch += 1;
    }
}
