//! What the engine reports through the [`metrics`] facade, so that the
//! host picks the exporter (Prometheus, StatsD, ...) as it picks a
//! `tracing` subscriber; with no recorder installed every call here is a
//! no-op. The handles are registered once, when the engine starts (so a
//! recorder must be installed before it starts to see them), and updated
//! once per completed epoch on the thread that completes it: never per
//! record, and no allocation. An engine given a name
//! ([`EngineBuilder::metrics_name`](crate::EngineBuilder::metrics_name))
//! labels every metric `engine = name`, so that several engines in one
//! process report apart.
//!
//! | name | kind | what |
//! | --- | --- | --- |
//! | `microbatch_records_accepted_total` | counter | records the workers took in |
//! | `microbatch_records_in_results_total` | counter | records counted in emitted results |
//! | `microbatch_records_dead_lettered_total` | counter | records quarantined by the panic policy |
//! | `microbatch_records_late_total` | counter | records an event-time job dropped as late |
//! | `microbatch_records_shed_total` | counter | records `Producer::send` dropped under `Overload::DropNewest` |
//! | `microbatch_epochs_total{reason}` | counter | epochs completed, by what sealed them (`interval`, `count`, `shutdown`) |
//! | `microbatch_rows_total` | counter | result rows emitted |
//! | `microbatch_seal_to_result_seconds` | histogram | from an epoch's seal to its committed result |
//! | `microbatch_record_latency_seconds` | histogram | record latency, from the push (or due time) to the epoch's result: one sample per run of records taken together (at most 1024 per worker and epoch), so its quantiles are over runs |
//! | `microbatch_epoch_record_latency_p99_seconds` | gauge | the last epoch's record-latency p99, over its records |
//! | `microbatch_worker_waiting_microseconds_total{worker}` | counter | time each worker spent in its wait loop |
//! | `microbatch_ring_backlog_records` | gauge | the last epoch's most records waiting in one producer ring when a worker came to take (`EpochProgress::ring_backlog`) |
//! | `microbatch_ring_occupancy_ratio` | gauge | that backlog over the ring capacity: near 1, producers are about to wait (or shed) |
//! | `microbatch_epoch_interval_seconds` | gauge | the interval the last epoch opened with (the adaptive interval's choice under `Config::target_latency`); 0 without a time trigger |
//! | `microbatch_latency_target_unreachable` | gauge | under a latency target: 1 while no interval can meet it at the load, else 0 |

use metrics::{Counter, Gauge, Histogram, Label};

use crate::progress::{EpochProgress, SealReason, TargetStatus};

/// The engine's metric handles, registered once.
pub(crate) struct Telemetry {
    accepted: Counter,
    shed: Counter,
    in_results: Counter,
    dead_lettered: Counter,
    late: Counter,
    rows: Counter,
    /// By [`SealReason`]: interval, count, shutdown.
    epochs: [Counter; 3],
    seal_to_result: Histogram,
    record_latency: Histogram,
    epoch_p99: Gauge,
    ring_backlog: Gauge,
    ring_occupancy: Gauge,
    interval: Gauge,
    unreachable: Gauge,
    /// Each producer ring's capacity, for the occupancy.
    ring_capacity: f64,
    /// One per worker.
    waiting: Box<[Counter]>,
}

impl Telemetry {
    /// Registers the handles of an engine of `workers` workers with the
    /// recorder installed now (a no-op one if none is), each labelled
    /// `engine = name` when the engine has a name. Cold.
    pub(crate) fn register(workers: usize, ring_capacity: usize, name: Option<&str>) -> Self {
        let base: Vec<Label> = name
            .map(|name| Label::new("engine", name.to_owned()))
            .into_iter()
            .collect();
        let with = |key: &'static str, value: String| {
            let mut labels = base.clone();
            labels.push(Label::new(key, value));
            labels
        };
        let counter = |metric: &'static str| metrics::counter!(metric, base.clone());
        let gauge = |metric: &'static str| metrics::gauge!(metric, base.clone());
        let histogram = |metric: &'static str| metrics::histogram!(metric, base.clone());
        let epochs = |reason: SealReason| {
            metrics::counter!(
                "microbatch_epochs_total",
                with("reason", reason.as_str().into())
            )
        };
        Telemetry {
            accepted: counter("microbatch_records_accepted_total"),
            shed: counter("microbatch_records_shed_total"),
            in_results: counter("microbatch_records_in_results_total"),
            dead_lettered: counter("microbatch_records_dead_lettered_total"),
            late: counter("microbatch_records_late_total"),
            rows: counter("microbatch_rows_total"),
            epochs: [
                epochs(SealReason::Interval),
                epochs(SealReason::Count),
                epochs(SealReason::Shutdown),
            ],
            seal_to_result: histogram("microbatch_seal_to_result_seconds"),
            record_latency: histogram("microbatch_record_latency_seconds"),
            epoch_p99: gauge("microbatch_epoch_record_latency_p99_seconds"),
            ring_backlog: gauge("microbatch_ring_backlog_records"),
            ring_occupancy: gauge("microbatch_ring_occupancy_ratio"),
            interval: gauge("microbatch_epoch_interval_seconds"),
            unreachable: gauge("microbatch_latency_target_unreachable"),
            ring_capacity: ring_capacity.max(1) as f64,
            waiting: (0..workers)
                .map(|worker| {
                    metrics::counter!(
                        "microbatch_worker_waiting_microseconds_total",
                        with("worker", worker.to_string())
                    )
                })
                .collect(),
        }
    }

    /// Reports the completed epoch of `progress`, whose records arrived in
    /// `runs` of `(latency µs, records)`; `accepted` and `shed` are the
    /// run's totals so far.
    pub(crate) fn epoch_completed(
        &self,
        progress: &EpochProgress,
        runs: &[(u64, u64)],
        accepted: u64,
        shed: u64,
    ) {
        self.accepted.absolute(accepted);
        self.shed.absolute(shed);
        self.in_results.increment(progress.records);
        self.dead_lettered.increment(progress.dead_letters);
        self.late.increment(progress.late_records);
        self.rows.increment(progress.rows);
        let reason = match progress.seal_reason {
            SealReason::Interval => 0,
            SealReason::Count => 1,
            SealReason::Shutdown => 2,
        };
        self.epochs[reason].increment(1);
        self.seal_to_result
            .record(progress.seal_to_result.as_secs_f64());
        // One sample per run, not per record: a recorder may keep every
        // sample, and an epoch holds millions of records.
        for &(micros, _) in runs {
            self.record_latency.record(micros as f64 / 1e6);
        }
        self.epoch_p99.set(progress.latency.p99_micros as f64 / 1e6);
        self.ring_backlog.set(progress.ring_backlog as f64);
        self.ring_occupancy
            .set(progress.ring_backlog as f64 / self.ring_capacity);
        self.interval
            .set(progress.interval.map_or(0.0, |i| i.as_secs_f64()));
        if let Some(target) = progress.target {
            self.unreachable
                .set(f64::from(u8::from(target == TargetStatus::Unreachable)));
        }
        for (counter, waited) in self.waiting.iter().zip(&progress.waited_per_worker) {
            counter.increment(waited.as_micros() as u64);
        }
    }
}
