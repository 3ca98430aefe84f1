//! What one run measured, as a table for people and a JSON object for
//! scripts.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::interval_choice::{IntervalChosen, TargetReport};

/// Percentiles of a latency, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// Of a histogram in microseconds (the engine's unit).
    pub fn of_micros(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let at = |q: f64| histogram.value_at_quantile(q).saturating_mul(1000);
        Percentiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: histogram.max().saturating_mul(1000),
        }
    }

    /// Of a list of durations (nearest rank).
    pub fn of_durations(durations: &[Duration]) -> Self {
        let mut nanos: Vec<u64> = durations
            .iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect();
        if nanos.is_empty() {
            return Percentiles::default();
        }
        nanos.sort_unstable();
        let at =
            |q: f64| nanos[((q * nanos.len() as f64).ceil() as usize).clamp(1, nanos.len()) - 1];
        Percentiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: nanos[nanos.len() - 1],
        }
    }
}

/// Measured epochs by why they were sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EpochsByReason {
    /// Sealed by the interval.
    pub interval: u64,
    /// Sealed by `max_batch_records`.
    pub count: u64,
    /// Sealed by shutdown.
    pub shutdown: u64,
}

/// The summary of one run. Figures cover the measured window (after the
/// warm-up) unless their name says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The profile's file name.
    pub profile: String,
    /// Cores the machine offers this process.
    pub cores: usize,
    /// Worker threads.
    pub workers: usize,
    /// Whether every worker ran pinned to its own core.
    pub pinned: bool,
    /// Why not, when not.
    pub pinning_note: Option<String>,
    /// The interval trigger, in milliseconds; `null` when off or adaptive
    /// (then see `interval_chosen_ms`).
    pub interval_ms: Option<f64>,
    /// Under `engine.interval = "auto"`: the intervals the measured epochs
    /// opened with, ms (`p50`, `min`, `max`); `null` otherwise.
    pub interval_chosen_ms: Option<IntervalChosen>,
    /// Under `engine.interval = "auto"`: the latency target and whether it
    /// held; `null` otherwise.
    pub target: Option<TargetReport>,
    /// The count trigger; `null` when off.
    pub max_batch_records: Option<u64>,
    /// Offered open-loop rate, records/s; `null` for "max".
    pub offered_rate_rps: Option<u64>,
    /// Producer threads (0: generated inside the workers).
    pub producers: usize,
    /// The warm-up left out of the figures, seconds.
    pub warmup_s: f64,
    /// Records the engine accepted over the whole run.
    pub records_in: u64,
    /// Records counted in emitted results over the whole run; equal to
    /// `records_in` after a clean run.
    pub records_out: u64,
    /// Records accepted in the measured window.
    pub records_measured: u64,
    /// The measured window, seconds.
    pub elapsed_s: f64,
    /// `records_measured / elapsed_s`.
    pub throughput_rps: f64,
    /// Record latency: from a record's intended send time (open-loop
    /// generator) or arrival to its epoch's result. Microsecond resolution.
    pub record_latency_ns: Percentiles,
    /// From an epoch's seal to its result at the sink, measured epochs.
    pub seal_to_result_ns: Percentiles,
    /// Epochs emitted over the whole run.
    pub epochs: u64,
    /// Epochs opened in the measured window.
    pub epochs_measured: u64,
    /// Measured epochs by seal reason.
    pub epochs_by_reason: EpochsByReason,
    /// Records each worker took in the measured epochs: imbalance shows.
    pub records_per_worker: Vec<u64>,
    /// The share of the measured time each worker spent in its wait loop,
    /// for input or for room in the epoch window, in wall time (from
    /// `EpochProgress::waited_per_worker`; time the OS gave its core to
    /// other threads meanwhile counts too).
    pub waited_share_per_worker: Vec<f64>,
    /// Whether idle workers took records from other workers' rings.
    pub work_stealing: bool,
    /// Of `records_measured`, those a worker took from another worker's
    /// ring.
    pub records_stolen: u64,
    /// `engine.placement`: `adaptive`, `partitioned` or `combined`.
    pub placement: microbatch::PlacementPolicy,
    /// Of the workers' batches in the measured epochs (workers × epochs),
    /// those folded combined (see `microbatch::job::Placement`).
    pub batches_combined: u64,
    /// The hottest keys over the measured epochs and their estimated share
    /// of the measured records (keyed jobs; sampled per epoch, see
    /// `microbatch::job::hot`; a key counts only in the epochs that
    /// reported it).
    pub hot_keys: Vec<HotKeyShare>,
    /// Windowed jobs: records dropped behind the watermark, over the run.
    pub late_records: u64,
    /// Windowed jobs: windows emitted (rows), over the run; 0 otherwise.
    pub windows_emitted: u64,
    /// Windowed jobs: the most windows held open after an epoch.
    pub open_windows_max: usize,
    /// Windowed jobs: how far the watermark trailed the newest event time
    /// folded, ms, median over the measured epochs.
    pub watermark_lag_ms_p50: Option<u64>,
    /// The same, 99th percentile.
    pub watermark_lag_ms_p99: Option<u64>,
    /// CPU time of the process in the measured window, seconds (Linux).
    pub cpu_s: Option<f64>,
    /// From the engine's start to its first epoch's result, seconds (none
    /// if no epoch completed).
    pub first_result_s: Option<f64>,
    /// The most resident memory the process held, bytes (Linux).
    pub peak_memory_bytes: Option<u64>,
    /// `[[queries]]`: each query's figures, over the measured window; absent
    /// for a run of one `[job]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queries: Option<Vec<QueryLine>>,
    /// What the reader should know about these figures.
    pub notes: Vec<String>,
}

/// One query of a run of `[[queries]]`, over the measured window (its
/// epochs completed after the warm-up).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryLine {
    /// Its name.
    pub name: String,
    /// Its priority.
    pub priority: i64,
    /// Its interval (`engine.interval` unless its own), ms; none for a
    /// query with a count trigger.
    pub interval_ms: Option<f64>,
    /// Its count trigger, if it has one instead of an interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batch_records: Option<u64>,
    /// Records a windowed query dropped behind its watermark (windowed
    /// queries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_records: Option<u64>,
    /// Rows written to its output (the run's `records_out` counts the
    /// records in the results, each once, whatever the queries).
    pub records_out: u64,
    /// Its epochs completed.
    pub epochs: u64,
    /// From each of its epochs' seal to its result.
    pub seal_to_result_ns: Percentiles,
}

/// A hot key and its estimated share of an epoch's records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotKeyShare {
    /// The key, as its `Debug` form.
    pub key: String,
    /// Estimated fraction of the epoch's records, 0..=1.
    pub share: f64,
}

impl HotKeyShare {
    /// The hot keys of `epoch`.
    pub fn of(epoch: &microbatch::progress::EpochProgress) -> Vec<HotKeyShare> {
        Self::over([epoch])
    }

    /// The hottest keys over `epochs`, most first, at most
    /// `microbatch::progress::HOT_KEYS_REPORTED`.
    pub fn over<'a>(
        epochs: impl IntoIterator<Item = &'a microbatch::progress::EpochProgress>,
    ) -> Vec<HotKeyShare> {
        let mut records = 0u64;
        let mut by_key: std::collections::HashMap<&str, u64> = Default::default();
        for epoch in epochs {
            records += epoch.records;
            for hot in &epoch.hot_keys {
                *by_key.entry(hot.key.as_str()).or_default() += hot.records;
            }
        }
        let mut hot: Vec<(&str, u64)> = by_key.into_iter().collect();
        hot.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        hot.truncate(microbatch::progress::HOT_KEYS_REPORTED);
        hot.into_iter()
            .map(|(key, n)| HotKeyShare {
                key: key.to_owned(),
                share: (n as f64 / records.max(1) as f64).min(1.0),
            })
            .collect()
    }
}

/// One line of the per-epoch JSON-lines file: an epoch's progress in
/// plain units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochLine {
    /// The epoch.
    pub epoch: u64,
    /// Opened before the warm-up ended (left out of the summary).
    pub warmup: bool,
    /// `interval`, `count` or `shutdown`.
    pub seal_reason: microbatch::progress::SealReason,
    /// Records in the epoch.
    pub records: u64,
    /// Records per worker.
    pub records_per_worker: Vec<u64>,
    /// How long each worker waited while its batch was open, ms.
    pub waited_ms_per_worker: Vec<f64>,
    /// Of `records`, those taken from another worker's ring.
    pub records_stolen: u64,
    /// Workers whose batch of the epoch was folded combined.
    pub combined_batches: usize,
    /// The hottest keys and their estimated share of `records`.
    pub hot_keys: Vec<HotKeyShare>,
    /// Result rows.
    pub rows: u64,
    /// Opened, ms since the engine started.
    pub opened_ms: f64,
    /// Sealed, ms since the engine started.
    pub sealed_ms: f64,
    /// Result out, ms since the engine started.
    pub completed_ms: f64,
    /// Records per second while the epoch was open.
    pub input_rate_rps: f64,
    /// Records per second from open to result.
    pub processing_rate_rps: f64,
    /// Folding records (largest over the workers), ms.
    pub reduce_ms: f64,
    /// Waiting for other workers' parts, ms.
    pub shuffle_wait_ms: f64,
    /// Merging parts, ms.
    pub merge_ms: f64,
    /// Writing to the sink, ms.
    pub sink_ms: f64,
    /// Seal to result, ns.
    pub seal_to_result_ns: u64,
    /// Record latency of the epoch's records.
    pub record_latency_ns: Percentiles,
    /// The interval the epoch opened with, ms; `null` without a time
    /// trigger. Under `engine.interval = "auto"`, the adaptive choice.
    pub interval_ms: Option<f64>,
    /// Under a latency target, what the epoch's latency says of it: `met`,
    /// `missed` or `unreachable`; `null` without one.
    pub target: Option<microbatch::progress::TargetStatus>,
}

/// Shares (0 to 1) as percentages with `decimals` decimals, joined by " / ".
fn percents(shares: impl Iterator<Item = f64>, decimals: usize) -> String {
    shares
        .map(|share| format!("{:.decimals$}%", 100.0 * share))
        .collect::<Vec<_>>()
        .join(" / ")
}

impl EpochLine {
    /// The line of `epoch`, given when the warm-up ended.
    pub fn of(epoch: &microbatch::progress::EpochProgress, warmup_end: Duration) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let latency = &epoch.latency;
        EpochLine {
            epoch: epoch.epoch,
            warmup: epoch.opened < warmup_end,
            seal_reason: epoch.seal_reason,
            records: epoch.records,
            records_per_worker: epoch.records_per_worker.clone(),
            waited_ms_per_worker: epoch.waited_per_worker.iter().map(|d| ms(*d)).collect(),
            records_stolen: epoch.records_stolen,
            combined_batches: epoch.combined_batches,
            hot_keys: HotKeyShare::of(epoch),
            rows: epoch.rows,
            opened_ms: ms(epoch.opened),
            sealed_ms: ms(epoch.sealed),
            completed_ms: ms(epoch.completed),
            input_rate_rps: epoch.input_rate,
            processing_rate_rps: epoch.processing_rate,
            reduce_ms: ms(epoch.durations.reduce),
            shuffle_wait_ms: ms(epoch.durations.shuffle_wait),
            merge_ms: ms(epoch.durations.merge),
            sink_ms: ms(epoch.durations.sink),
            seal_to_result_ns: u64::try_from(epoch.seal_to_result.as_nanos()).unwrap_or(u64::MAX),
            record_latency_ns: Percentiles {
                p50: latency.p50_micros * 1000,
                p90: latency.p90_micros * 1000,
                p99: latency.p99_micros * 1000,
                p999: latency.p999_micros * 1000,
                max: latency.max_micros * 1000,
            },
            interval_ms: epoch.interval.map(ms),
            target: epoch.target,
        }
    }
}

fn millis(nanos: u64) -> String {
    let ms = nanos as f64 / 1e6;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{:.0} µs", nanos as f64 / 1e3)
    }
}

/// `rate` rounded to two significant digits: a rate to offer.
pub fn round_rate(rate: f64) -> u64 {
    if rate < 1.0 {
        return 1;
    }
    let scale = 10f64.powi(rate.log10().floor() as i32 - 1);
    ((rate / scale).round() * scale).max(1.0) as u64
}

/// Records per second, readable: `12.3 M/s`.
pub fn rate(records_per_second: f64) -> String {
    if records_per_second >= 1e6 {
        format!("{:.1} M/s", records_per_second / 1e6)
    } else if records_per_second >= 1e3 {
        format!("{:.1} K/s", records_per_second / 1e3)
    } else {
        format!("{records_per_second:.0} /s")
    }
}

/// `p50 / p90 / p99 / p99.9 / max` in readable units.
pub fn percentiles_line(p: &Percentiles) -> String {
    format!(
        "{} / {} / {} / {} / {}",
        millis(p.p50),
        millis(p.p90),
        millis(p.p99),
        millis(p.p999),
        millis(p.max)
    )
}

impl RunReport {
    /// The interval the run ran at, ms: its fixed interval, or under
    /// `engine.interval = "auto"` the median interval chosen; `None`
    /// without a time trigger.
    pub fn interval_in_force_ms(&self) -> Option<f64> {
        self.interval_ms
            .or(self.interval_chosen_ms.map(|chosen| chosen.p50))
    }

    /// The summary table printed after a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut line = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<28} {value}");
        };
        line(
            "records accepted / in results",
            format!(
                "{} / {}{}",
                self.records_in,
                self.records_out,
                if self.records_in == self.records_out {
                    " (equal)"
                } else {
                    " (NOT EQUAL)"
                }
            ),
        );
        line(
            "throughput",
            format!(
                "{} ({} records in {:.2} s, after {:.1} s warm-up)",
                rate(self.throughput_rps),
                self.records_measured,
                self.elapsed_s,
                self.warmup_s
            ),
        );
        line(
            "offered rate",
            self.offered_rate_rps
                .map_or("max (closed loop)".into(), |r| rate(r as f64)),
        );
        line("record latency", percentiles_line(&self.record_latency_ns));
        line("seal-to-result", percentiles_line(&self.seal_to_result_ns));
        line("  (percentiles)", "p50 / p90 / p99 / p99.9 / max".into());
        line(
            "epochs (measured / all)",
            format!(
                "{} / {}: {} by interval, {} by count, {} by shutdown",
                self.epochs_measured,
                self.epochs,
                self.epochs_by_reason.interval,
                self.epochs_by_reason.count,
                self.epochs_by_reason.shutdown
            ),
        );
        let total: u64 = self.records_per_worker.iter().sum();
        if total > 0 {
            let shares = self
                .records_per_worker
                .iter()
                .map(|n| *n as f64 / total as f64);
            line("input per worker", percents(shares, 0));
        }
        if self
            .waited_share_per_worker
            .iter()
            .any(|share| *share > 0.0)
        {
            let shares = self.waited_share_per_worker.iter().copied();
            line("waiting per worker", percents(shares, 1));
        }
        if !self.hot_keys.is_empty() {
            line(
                "hot keys (share, sampled)",
                self.hot_keys
                    .iter()
                    .take(3)
                    .map(|hot| format!("{} {:.1}%", hot.key, 100.0 * hot.share))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if self.windows_emitted > 0 || self.open_windows_max > 0 {
            line(
                "windows",
                format!(
                    "{} emitted, at most {} open, {} late records dropped",
                    self.windows_emitted, self.open_windows_max, self.late_records
                ),
            );
        }
        if let (Some(p50), Some(p99)) = (self.watermark_lag_ms_p50, self.watermark_lag_ms_p99) {
            line("watermark lag", format!("{p50} ms / {p99} ms (p50 / p99)"));
        }
        let batches = self.records_per_worker.len() as u64 * self.epochs_measured;
        line(
            "placement",
            format!(
                "{}: {} of {batches} batches combined",
                self.placement, self.batches_combined
            ),
        );
        line(
            "work stealing",
            if self.work_stealing {
                let share = 100.0 * self.records_stolen as f64 / total.max(1) as f64;
                format!("on: {} records stolen ({share:.1}%)", self.records_stolen)
            } else {
                "off".into()
            },
        );
        for query in self.queries.iter().flatten() {
            let ms = |ns: u64| ns as f64 / 1e6;
            line(
                &format!("query {}", query.name),
                format!(
                    "priority {}, every {}: {} epochs, {} rows{}; seal to result p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    query.priority,
                    match (query.max_batch_records, query.interval_ms) {
                        (Some(records), _) => format!("{records} records"),
                        (None, Some(ms)) => format!("{ms} ms"),
                        (None, None) => "engine epoch".into(),
                    },
                    query.epochs,
                    query.records_out,
                    query
                        .late_records
                        .map_or(String::new(), |late| format!(", {late} late records")),
                    ms(query.seal_to_result_ns.p50),
                    ms(query.seal_to_result_ns.p99),
                    ms(query.seal_to_result_ns.max),
                ),
            );
        }
        if let Some(target) = &self.target {
            line(
                "latency target",
                target.line(self.interval_chosen_ms.as_ref()),
            );
        }
        line(
            "triggers",
            format!(
                "interval {}, max_batch_records {}",
                match (self.interval_ms, &self.target) {
                    (_, Some(_)) => "auto".into(),
                    (Some(ms), None) => format!("{ms} ms"),
                    (None, None) => "off".into(),
                },
                self.max_batch_records
                    .map_or("off".into(), |n| n.to_string())
            ),
        );
        line(
            "workers",
            format!(
                "{} on {} cores, {}{}",
                self.workers,
                self.cores,
                if self.pinned { "pinned" } else { "not pinned" },
                self.pinning_note
                    .as_ref()
                    .map_or(String::new(), |note| format!(" ({note})"))
            ),
        );
        if let Some(cpu) = self.cpu_s {
            line(
                "CPU time",
                format!(
                    "{cpu:.2} s ({:.2} cores busy)",
                    cpu / self.elapsed_s.max(f64::MIN_POSITIVE)
                ),
            );
        }
        if let Some(first) = self.first_result_s {
            line("first result", format!("{first:.3} s after the start"));
        }
        if let Some(bytes) = self.peak_memory_bytes {
            line(
                "peak memory",
                format!("{:.1} MiB resident", bytes as f64 / (1 << 20) as f64),
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_durations_take_the_nearest_rank() {
        let durations: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let p = Percentiles::of_durations(&durations);
        assert_eq!(p.p50, 50_000);
        assert_eq!(p.p90, 90_000);
        assert_eq!(p.p99, 99_000);
        assert_eq!(p.p999, 100_000);
        assert_eq!(p.max, 100_000);
        assert_eq!(Percentiles::of_durations(&[]), Percentiles::default());
    }

    #[test]
    fn percentiles_of_a_histogram_are_in_nanoseconds() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        histogram.record_n(250, 99).unwrap();
        histogram.record(40_000).unwrap();
        let p = Percentiles::of_micros(&histogram);
        assert_eq!(p.p50, 250_000);
        assert_eq!(p.p99, 250_000);
        assert!(p.max >= 40_000_000 && p.max < 40_100_000, "{}", p.max);
    }

    #[test]
    fn rates_round_to_two_digits() {
        assert_eq!(round_rate(27_182_153.0), 27_000_000);
        assert_eq!(round_rate(96.4), 96);
        assert_eq!(round_rate(0.2), 1);
    }

    #[test]
    fn readable_units() {
        assert_eq!(rate(12_345_678.0), "12.3 M/s");
        assert_eq!(rate(2_500.0), "2.5 K/s");
        assert_eq!(millis(250_000), "250 µs");
        assert_eq!(millis(2_500_000), "2.50 ms");
        assert_eq!(millis(250_000_000), "250 ms");
    }
}
