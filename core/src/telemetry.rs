//! What the engine reports through the [`metrics`] facade, so that the
//! host picks the exporter (Prometheus, StatsD, ...) as it picks a
//! `tracing` subscriber; with no recorder installed every call here is a
//! no-op. Called once per completed epoch, on the thread that completes
//! it: never per record.
//!
//! | name | kind | what |
//! | --- | --- | --- |
//! | `microbatch_records_accepted_total` | counter | records the workers took in |
//! | `microbatch_records_in_results_total` | counter | records counted in emitted results |
//! | `microbatch_records_dead_lettered_total` | counter | records quarantined by the panic policy |
//! | `microbatch_records_shed_total` | counter | records `Producer::send` dropped under `Overload::DropNewest` |
//! | `microbatch_epochs_total{reason}` | counter | epochs completed, by what sealed them (`interval`, `count`, `shutdown`) |
//! | `microbatch_rows_total` | counter | result rows emitted |
//! | `microbatch_seal_to_result_seconds` | histogram | from an epoch's seal to its committed result |
//! | `microbatch_record_latency_seconds` | histogram | record latency, from the push (or due time) to the epoch's result: one sample per run of records taken together (at most 1024 per worker and epoch), so its quantiles are over runs |
//! | `microbatch_epoch_record_latency_p99_seconds` | gauge | the last epoch's record-latency p99, over its records |
//! | `microbatch_worker_waiting_microseconds_total{worker}` | counter | time each worker spent in its wait loop |

use crate::progress::EpochProgress;

/// Reports the completed epoch of `progress`, whose records arrived in
/// `runs` of `(latency µs, records)`; `accepted` and `shed` are the run's
/// totals so far.
pub(crate) fn epoch_completed(
    progress: &EpochProgress,
    runs: &[(u64, u64)],
    accepted: u64,
    shed: u64,
) {
    metrics::counter!("microbatch_records_accepted_total").absolute(accepted);
    metrics::counter!("microbatch_records_shed_total").absolute(shed);
    metrics::counter!("microbatch_records_in_results_total").increment(progress.records);
    metrics::counter!("microbatch_records_dead_lettered_total").increment(progress.dead_letters);
    metrics::counter!("microbatch_rows_total").increment(progress.rows);
    metrics::counter!("microbatch_epochs_total", "reason" => progress.seal_reason.to_string())
        .increment(1);
    metrics::histogram!("microbatch_seal_to_result_seconds")
        .record(progress.seal_to_result.as_secs_f64());
    // One sample per run, not per record: a recorder may keep every
    // sample, and an epoch holds millions of records.
    let latency = metrics::histogram!("microbatch_record_latency_seconds");
    for &(micros, _) in runs {
        latency.record(micros as f64 / 1e6);
    }
    metrics::gauge!("microbatch_epoch_record_latency_p99_seconds")
        .set(progress.latency.p99_micros as f64 / 1e6);
    for (worker, waited) in progress.waited_per_worker.iter().enumerate() {
        metrics::counter!(
            "microbatch_worker_waiting_microseconds_total",
            "worker" => worker.to_string()
        )
        .increment(waited.as_micros() as u64);
    }
}
