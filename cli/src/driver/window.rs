//! The measured window: what is known when the warm-up ends, and the
//! report of the run from then to its end.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use microbatch::checkpoint::Checkpoint;
use microbatch::job::Job;
use microbatch::progress::{EpochProgress, SealReason};
use microbatch::{Engine, Summary};

use crate::cpu;
use crate::interval_choice::{IntervalChosen, TargetReport};
use crate::profile::schema::{JobKind, Profile};
use crate::report::{EpochsByReason, HotKeyShare, Percentiles, RunReport};

/// What is known when the warm-up ends.
pub(super) struct Snapshot {
    at: Instant,
    since_start: Duration,
    records: u64,
    latency: Histogram<u64>,
    cpu: Option<Duration>,
}

impl Snapshot {
    /// The window is the whole run: nothing to subtract (an empty
    /// histogram shaped as `like`).
    pub(super) fn at_start(started: Instant, like: &Histogram<u64>, cpu: Option<Duration>) -> Self {
        Snapshot {
            at: started,
            since_start: Duration::ZERO,
            records: 0,
            latency: Histogram::new_from(like),
            cpu,
        }
    }

    /// The engine's figures now, `since_start` after the start.
    pub(super) fn now<R: Send + 'static, J: Job<R>>(
        engine: &Engine<R, J>,
        since_start: Duration,
    ) -> Self {
        Snapshot {
            at: Instant::now(),
            since_start,
            records: engine.progress().records_taken,
            latency: engine.latency_histogram(),
            cpu: cpu::process_time(),
        }
    }
}

/// How the run ended, and what the report says of its setting.
pub(super) struct Ending {
    pub(super) started: Instant,
    pub(super) ended: Instant,
    /// Process CPU time at the end.
    pub(super) cpu: Option<Duration>,
    /// Under a checkpoint, the records per epoch its plan cuts.
    pub(super) planned_epoch: Option<u64>,
    pub(super) checkpoint_note: Option<String>,
    /// How long the engine took to start (not in the figures).
    pub(super) set_up: Duration,
}

/// The report's note on the checkpoint a run resumes from.
pub(super) fn checkpoint_note(checkpoint: &Checkpoint) -> String {
    format!(
        "checkpoint {}: epochs of {} log records{}",
        checkpoint.dir().display(),
        checkpoint.records_per_epoch(),
        checkpoint
            .last_committed()
            .map_or(String::new(), |last| format!(
                "; resumed after epoch {last}"
            ))
    )
}

/// Per worker, the sum over `epochs` of the figure `of` gives per worker.
fn per_worker_sums<T: Copy + Default + std::ops::AddAssign>(
    epochs: &[&EpochProgress],
    workers: usize,
    of: impl Fn(&EpochProgress) -> &[T],
) -> Vec<T> {
    let mut sums = vec![T::default(); workers];
    for epoch in epochs {
        for (sum, value) in sums.iter_mut().zip(of(epoch)) {
            *sum += *value;
        }
    }
    sums
}

/// The report of the measured window of a run of `profile` (labelled
/// `name`) that ended with `summary` and emitted `epochs`, with the
/// warm-up's length (the window's start, after the run's).
pub(super) fn report(
    profile: &Profile,
    name: &str,
    summary: &Summary,
    snapshot: Option<Snapshot>,
    epochs: &[EpochProgress],
    ending: Ending,
) -> (RunReport, Duration) {
    let workload = &profile.workload;
    let mut notes: Vec<String> = ending.checkpoint_note.into_iter().collect();
    if ending.set_up >= Duration::from_secs(1) {
        notes.push(format!(
            "set-up took {:.1} s before the run (the generator's tables, the workers); not in the figures",
            ending.set_up.as_secs_f64()
        ));
    }
    // A window that took in nothing of a run that took records (a finite
    // input read whole within the warm-up, the run ending later) would
    // report 0 records/s: the whole run is the window then too.
    let empty_window = snapshot
        .as_ref()
        .is_some_and(|s| summary.records_accepted > 0 && s.records == summary.records_accepted);
    let snapshot = snapshot.filter(|_| !empty_window).unwrap_or_else(|| {
            notes.push(if empty_window {
                format!(
                    "every record was taken in within the {:.1} s warm-up: the figures cover the whole run",
                    profile.run.warmup.as_secs_f64()
                )
            } else {
                format!(
                    "the input ran out after {:.2} s, within the {:.1} s warm-up: the figures cover the whole run",
                    ending.ended.duration_since(ending.started).as_secs_f64(),
                    profile.run.warmup.as_secs_f64()
                )
            });
            Snapshot {
                at: ending.started,
                since_start: Duration::ZERO,
                records: 0,
                latency: Histogram::new_from(&summary.latency_histogram),
                cpu: Some(Duration::ZERO),
            }
        });
    if workload.producers > 0 {
        notes.push(
            "records come from producer threads: record latency counts from each record's push \
                 into its ring (a producer pushes a record once it is due)"
                .into(),
        );
    }
    let mut latency = summary.latency_histogram.clone();
    latency
        .subtract(&snapshot.latency)
        .expect("a later copy of the same histogram holds every earlier count");
    let measured: Vec<&EpochProgress> = epochs
        .iter()
        .filter(|epoch| epoch.opened >= snapshot.since_start)
        .collect();
    let mut by_reason = EpochsByReason::default();
    for epoch in &measured {
        match epoch.seal_reason {
            SealReason::Interval => by_reason.interval += 1,
            SealReason::Count => by_reason.count += 1,
            SealReason::Shutdown => by_reason.shutdown += 1,
        }
    }
    let seal_to_result: Vec<Duration> = measured.iter().map(|epoch| epoch.seal_to_result).collect();
    let elapsed_s = ending.ended.duration_since(snapshot.at).as_secs_f64();
    let records_measured = summary.records_accepted - snapshot.records;
    let lag = watermark_lag(&measured, profile.job.watermark_delay);
    let config = &profile.engine;
    let record_latency = Percentiles::of_micros(&latency);
    let report = RunReport {
        profile: name.to_owned(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        workers: config.workers,
        pinned: config.pin && summary.unpinned.is_empty(),
        pinning_note: if !config.pin {
            Some("pin = false".into())
        } else if !summary.unpinned.is_empty() {
            Some(format!("workers {:?} ran unpinned", summary.unpinned))
        } else {
            None
        },
        // Under a checkpoint, the log's positions cut the epochs.
        interval_ms: config
            .interval
            .filter(|_| ending.planned_epoch.is_none() && config.target_latency.is_none())
            .map(|interval| interval.as_secs_f64() * 1e3),
        interval_chosen_ms: config
            .target_latency
            .and_then(|_| IntervalChosen::over(&measured)),
        target: config
            .target_latency
            .map(|target| TargetReport::of(&measured, target, record_latency.p99)),
        max_batch_records: ending.planned_epoch.or(config.max_batch_records),
        offered_rate_rps: workload.rate.per_second(),
        producers: workload.producers,
        warmup_s: snapshot.since_start.as_secs_f64(),
        records_in: summary.records_accepted,
        records_out: summary.records_in_results,
        records_measured,
        elapsed_s,
        throughput_rps: records_measured as f64 / elapsed_s.max(1e-9),
        record_latency_ns: record_latency,
        seal_to_result_ns: Percentiles::of_durations(&seal_to_result),
        epochs: summary.epochs,
        epochs_measured: measured.len() as u64,
        epochs_by_reason: by_reason,
        records_per_worker: per_worker_sums(&measured, config.workers, |epoch| {
            &epoch.records_per_worker
        }),
        waited_share_per_worker: per_worker_sums(&measured, config.workers, |epoch| {
            &epoch.waited_per_worker
        })
        .iter()
        .map(|waited| (waited.as_secs_f64() / elapsed_s.max(1e-9)).min(1.0))
        .collect(),
        work_stealing: config.work_stealing,
        records_stolen: measured.iter().map(|epoch| epoch.records_stolen).sum(),
        placement: config.placement,
        batches_combined: measured
            .iter()
            .map(|epoch| epoch.combined_batches as u64)
            .sum(),
        hot_keys: HotKeyShare::over(measured.iter().copied()),
        late_records: summary.late_records,
        // Nexmark's q5 emits a row per window from its second aggregation,
        // whose rows the engine does not count as windows.
        windows_emitted: if profile.job.kind == JobKind::Nexmark && profile.job.emits_windows() {
            summary.rows
        } else {
            summary.windows_emitted
        },
        open_windows_max: summary.open_windows_max,
        watermark_lag_ms_p50: lag.0,
        watermark_lag_ms_p99: lag.1,
        cpu_s: match (snapshot.cpu, ending.cpu) {
            (Some(start), Some(end)) => Some(end.saturating_sub(start).as_secs_f64()),
            _ => None,
        },
        first_result_s: epochs.first().map(|epoch| epoch.completed.as_secs_f64()),
        peak_memory_bytes: cpu::peak_memory(),
        queries: None,
        notes,
    };
    (report, snapshot.since_start)
}

/// The median and 99th percentile over `epochs` of how far the watermark
/// (the frontier less `delay`) trailed the newest event time folded, ms;
/// `None` when no epoch has both (unwindowed jobs).
fn watermark_lag(epochs: &[&EpochProgress], delay: Duration) -> (Option<u64>, Option<u64>) {
    let delay = delay.as_millis() as u64;
    let mut lags: Vec<u64> = epochs
        .iter()
        .filter_map(|epoch| {
            let newest = epoch.event_time_newest_ms?;
            let watermark = epoch.event_time_frontier_ms?.saturating_sub(delay);
            Some(newest.saturating_sub(watermark))
        })
        .collect();
    if lags.is_empty() {
        return (None, None);
    }
    lags.sort_unstable();
    let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    (Some(at(0.5)), Some(at(0.99)))
}
