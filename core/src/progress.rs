//! Progress of each epoch, modelled on Spark's `StreamingQueryProgress`,
//! and the engine's running totals.
//!
//! Record latency: a worker notes, for each run of records it takes in,
//! when the run arrived (for a producer's ring, the earliest push in it
//! not yet accounted for; for an open-loop source, when its first record
//! was due) and how many records it held. When the epoch's last partition
//! is out, each run's latency is "result time − arrival" and goes into an
//! hdrhistogram with the run's count. Up to [`MARKS_PER_WORKER`] runs are
//! kept per worker and epoch; beyond that neighbouring runs merge with an
//! even stride, keeping the earlier time. See the `input` module for the one case
//! where a push is counted from slightly later (a push racing the worker's
//! read of its ring).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The hot-key sampler's bounds: what a [`HotKey`] report means.
pub use crate::job::hot::{HOT_KEY_MIN_SAMPLES, HOT_KEY_MIN_SHARE, HOT_KEY_SLOTS, SAMPLE_EVERY};

/// Why an epoch was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SealReason {
    /// Its interval ran out.
    Interval,
    /// A worker's open batch reached `max_batch_records`, or, under a
    /// checkpoint, the epoch's share of the log was handed out.
    Count,
    /// The engine shut down.
    #[default]
    Shutdown,
}

impl SealReason {
    /// Its name: `interval`, `count` or `shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            SealReason::Interval => "interval",
            SealReason::Count => "count",
            SealReason::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for SealReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an epoch's record latency says of the engine's latency target
/// (see [`Config::target_latency`](crate::Config::target_latency)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// Its records' latency p99 was within the target.
    Met,
    /// Its p99 was above the target; the interval adapts.
    Missed,
    /// No interval meets the target at this load (the input is beyond
    /// what the engine serves within it, or the sink is slower than the
    /// target): the interval is held at its largest, the cheapest per
    /// record, until the load falls.
    Unreachable,
}

/// Time spent in each phase of an epoch: the largest over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PhaseDurations {
    /// Folding records into partial aggregates while the epoch was open.
    pub reduce: Duration,
    /// From an owner's own seal to the arrival of the last part.
    pub shuffle_wait: Duration,
    /// Merging the parts from other workers.
    pub merge: Duration,
    /// In the sink: the longest `write` of a partition, or the epoch's
    /// commit (`epoch_complete`, with the checkpoint's files), whichever is
    /// longer.
    pub sink: Duration,
}

/// Percentiles of record latency, in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Records measured.
    pub records: u64,
    /// Median.
    pub p50_micros: u64,
    /// 90th percentile.
    pub p90_micros: u64,
    /// 99th percentile.
    pub p99_micros: u64,
    /// 99.9th percentile.
    pub p999_micros: u64,
    /// Largest.
    pub max_micros: u64,
}

impl LatencySummary {
    /// The exact summary of runs of records, `(latency µs, records)`, in
    /// any order (sorted here).
    pub fn of_runs(runs: &mut [(u64, u64)]) -> Self {
        runs.sort_unstable_by_key(|run| run.0);
        let records: u64 = runs.iter().map(|run| run.1).sum();
        let at = |quantile: f64| {
            let rank = ((quantile * records as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for &(latency, count) in runs.iter() {
                seen += count;
                if seen >= rank {
                    return latency;
                }
            }
            0
        };
        LatencySummary {
            records,
            p50_micros: at(0.5),
            p90_micros: at(0.9),
            p99_micros: at(0.99),
            p999_micros: at(0.999),
            max_micros: runs.last().map_or(0, |run| run.0),
        }
    }

    /// The summary of a histogram of µs.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        LatencySummary {
            records: histogram.len(),
            p50_micros: histogram.value_at_quantile(0.5),
            p90_micros: histogram.value_at_quantile(0.9),
            p99_micros: histogram.value_at_quantile(0.99),
            p999_micros: histogram.value_at_quantile(0.999),
            max_micros: histogram.max(),
        }
    }
}

/// Most hot keys an epoch reports.
pub const HOT_KEYS_REPORTED: usize = 8;

/// A key that took a large share of an epoch's records (keyed jobs), found
/// by sampling one record in [`SAMPLE_EVERY`]: a key is reported once it
/// has [`HOT_KEY_MIN_SAMPLES`] samples and [`HOT_KEY_MIN_SHARE`] of the
/// epoch's, among at most [`HOT_KEY_SLOTS`] candidates per owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HotKey {
    /// The key, as its `Debug` form.
    pub key: String,
    /// Estimated records of the key in the epoch: the samples surely of
    /// this key times [`SAMPLE_EVERY`], so
    /// rather under than over.
    pub records: u64,
}

/// What happened in one epoch. (`Default` is for test fixtures.)
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EpochProgress {
    /// The epoch.
    pub epoch: u64,
    /// Why it was sealed.
    pub seal_reason: SealReason,
    /// Records taken in, over all workers.
    pub records: u64,
    /// Records taken in, per worker (by the worker that reduced them).
    pub records_per_worker: Vec<u64>,
    /// How long each worker spent in its wait loop (spinning, yielding or
    /// parked, for input or for room in the epoch window) while its batch
    /// of this epoch was open, in wall time: time the OS gave the worker's
    /// core to other threads meanwhile (producers, a busy neighbour) counts
    /// too. A worker that waits for much of its batches has slack; the
    /// adaptive placement reads it (see
    /// [`Placement`](crate::job::Placement)).
    pub waited_per_worker: Vec<Duration>,
    /// The most records one producer ring held when a worker came to take
    /// from it, over the epoch's batches: how far the producers ran ahead
    /// (against [`Config::ring_capacity`](crate::Config::ring_capacity), how
    /// near they came to waiting).
    pub ring_backlog: usize,
    /// Of `records`, those a worker took from another worker's producer
    /// rings (work stealing; see [`Config::work_stealing`](crate::Config::work_stealing)).
    pub records_stolen: u64,
    /// Workers that folded their batch of this epoch
    /// [`Combined`](crate::job::Placement::Combined) (see
    /// [`Config::placement`](crate::Config::placement)); the others folded
    /// it partitioned.
    pub combined_batches: usize,
    /// Records taken in but quarantined in the dead-letter file because
    /// user code panicked on them (see
    /// [`PanicPolicy`](crate::PanicPolicy)); not in `records`.
    pub dead_letters: u64,
    /// Records an event-time job dropped as late, behind its watermark
    /// (see [`job::Windows`](crate::job::Windows)): taken in the epoch, so
    /// counted in `records`, but folded into no row. A record a worker
    /// drops counts once; one that reaches an owner after some of its
    /// windows went out counts once per such window (several only for
    /// hopping windows).
    pub late_records: u64,
    /// An event-time job's frontier when the epoch was finished: the least
    /// over the workers of the newest event time (ms) each had folded (its
    /// watermark is this less its delay); `None` for other jobs, and until
    /// every worker has folded a record.
    pub event_time_frontier_ms: Option<u64>,
    /// The newest event time (ms) any worker had folded by the epoch's
    /// seal; with the frontier, how far behind the watermark runs.
    pub event_time_newest_ms: Option<u64>,
    /// Windows an event-time job holds open after the epoch, over its
    /// owners: its state, which closing windows keeps bounded.
    pub open_windows: usize,
    /// Windows (or sessions) an event-time job emitted in the epoch.
    pub windows_emitted: u64,
    /// Rows of the result.
    pub rows: u64,
    /// When the epoch opened, since the engine started.
    pub opened: Duration,
    /// When it was sealed.
    pub sealed: Duration,
    /// When its result was out: the sink (and the checkpoint, if any)
    /// committed it. The copy a sink's `epoch_complete` receives says when
    /// the rows were complete, just before that commit; so do its
    /// `seal_to_result`, `processing_rate` and `latency`.
    pub completed: Duration,
    /// Records per second while it was open.
    pub input_rate: f64,
    /// Records per second from open to result.
    pub processing_rate: f64,
    /// Time per phase.
    pub durations: PhaseDurations,
    /// From seal to the result out (see `completed`).
    pub seal_to_result: Duration,
    /// Record latency, from arrival (or intended send time) to result.
    pub latency: LatencySummary,
    /// The interval the epoch opened with: its time trigger (`None`
    /// without one). Under a latency target it is the adaptive interval's
    /// choice of the moment.
    pub interval: Option<Duration>,
    /// Under a latency target, what this epoch's latency says of it;
    /// `None` without a target.
    pub target: Option<TargetStatus>,
    /// The keys with the most records, most first, at most
    /// [`HOT_KEYS_REPORTED`]; empty for jobs without keys.
    pub hot_keys: Vec<HotKey>,
}

/// The engine's running totals; see [`Engine::progress`](crate::Engine::progress).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Progress {
    /// Epochs whose results are all out.
    pub epochs_completed: u64,
    /// Records taken in by the workers so far.
    pub records_taken: u64,
    /// Records in completed epochs.
    pub records_in_results: u64,
    /// Of `records_in_results`, those taken by a worker from another
    /// worker's producer rings.
    pub records_stolen: u64,
    /// Records quarantined in the dead-letter file so far.
    pub dead_letters: u64,
    /// Records dropped as late by an event-time job so far.
    pub late_records: u64,
    /// The most windows an event-time job held open after an epoch.
    pub open_windows_max: usize,
    /// Windows (or sessions) an event-time job emitted.
    pub windows_emitted: u64,
    /// Records [`Producer::send`](crate::Producer::send) dropped because
    /// their ring was full, under
    /// [`Overload::DropNewest`](crate::Overload::DropNewest); never
    /// accepted, so not in `records_taken`.
    pub records_shed: u64,
    /// Rows emitted.
    pub rows: u64,
    /// Record latency over every completed epoch.
    pub latency: LatencySummary,
    /// The last completed epoch.
    pub last: Option<EpochProgress>,
    /// Workers that run unpinned, and why; empty if all are pinned or
    /// pinning is off.
    pub unpinned: Vec<usize>,
    /// Why workers run unpinned, if they do.
    pub pinning_note: Option<String>,
}

/// Runs of records kept per worker and epoch for latency.
pub const MARKS_PER_WORKER: usize = 1024;

/// One worker's arrival marks of its open epoch: `(µs, records)`, in
/// arrival order. Fixed capacity; never allocates after construction.
///
/// Invariant: every mark but the last covers exactly `stride` runs, the
/// last covers `last_runs` ≤ `stride`, and a mark's time is the earliest of
/// its runs. When the marks are full, neighbouring pairs merge and the
/// stride doubles, so resolution stays even over the epoch: an early mark
/// never covers more of the epoch than a late one.
#[derive(Debug)]
pub(crate) struct ArrivalMarks {
    marks: Vec<(u64, u64)>,
    stride: u64,
    last_runs: u64,
}

impl ArrivalMarks {
    pub(crate) fn new() -> Self {
        ArrivalMarks {
            marks: Vec::with_capacity(MARKS_PER_WORKER),
            stride: 1,
            last_runs: 0,
        }
    }

    /// Notes `records` records that arrived (or were due) at `micros`.
    #[inline]
    pub(crate) fn note(&mut self, micros: u64, records: u64) {
        if self.last_runs < self.stride {
            if let Some(last) = self.marks.last_mut() {
                last.0 = last.0.min(micros);
                last.1 += records;
                self.last_runs += 1;
                return;
            }
        }
        if self.marks.len() == MARKS_PER_WORKER {
            // Halve the resolution: merge pairs, keeping the earlier time.
            for i in 0..MARKS_PER_WORKER / 2 {
                let (a, b) = (self.marks[2 * i], self.marks[2 * i + 1]);
                self.marks[i] = (a.0.min(b.0), a.1 + b.1);
            }
            self.marks.truncate(MARKS_PER_WORKER / 2);
            self.stride *= 2;
        }
        self.marks.push((micros, records));
        self.last_runs = 1;
    }

    pub(crate) fn as_slice(&self) -> &[(u64, u64)] {
        &self.marks
    }

    pub(crate) fn clear(&mut self) {
        self.marks.clear();
        self.stride = 1;
        self.last_runs = 0;
    }
}

/// A histogram of µs latencies up to an hour, 3 significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn run_percentiles_weigh_each_run_by_its_records() {
        let mut runs = [(50, 1), (10, 98), (20, 1)];
        let summary = LatencySummary::of_runs(&mut runs);
        assert_eq!(summary.records, 100);
        assert_eq!((summary.p50_micros, summary.p90_micros), (10, 10));
        assert_eq!(
            (summary.p99_micros, summary.p999_micros, summary.max_micros),
            (20, 50, 50)
        );
        assert_eq!(LatencySummary::of_runs(&mut []), LatencySummary::default());
    }

    #[test]
    fn marks_keep_every_record_and_the_earliest_times() {
        let mut marks = ArrivalMarks::new();
        for i in 0..1000u64 {
            marks.note(i, 2);
        }
        assert!(marks.as_slice().len() <= MARKS_PER_WORKER);
        assert_eq!(marks.as_slice().iter().map(|m| m.1).sum::<u64>(), 2000);
        assert_eq!(marks.as_slice()[0].0, 0);
        assert!(marks.as_slice().windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn merged_marks_keep_resolution_even_over_the_epoch() {
        // Runs of 10 records at µs 0..100_000: the record-weighted median
        // arrival is about 50_000, whatever the number of halvings.
        let mut marks = ArrivalMarks::new();
        for i in 0..100_000u64 {
            marks.note(i, 10);
        }
        let total: u64 = marks.as_slice().iter().map(|m| m.1).sum();
        assert_eq!(total, 1_000_000);
        let mut seen = 0;
        let median = marks
            .as_slice()
            .iter()
            .find(|m| {
                seen += m.1;
                seen >= total / 2
            })
            .unwrap()
            .0;
        assert!(
            (45_000..=50_000).contains(&median),
            "median arrival {median}"
        );
        marks.clear();
        marks.note(7, 1);
        assert_eq!(marks.as_slice(), &[(7, 1)]);
    }
}
