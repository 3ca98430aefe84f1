//! Per-epoch figures of the end_to_end job at a fixed rate, one line an
//! epoch: `balance_probe <rate M/s> <interval ms> <seconds>`.
use std::time::Duration;

use microbatch_bench::end_to_end;

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let args: Vec<f64> = crate::ab::numbers(args);
    let rate = (args.first().copied().unwrap_or(20.0) * 1e6) as u64;
    let interval = Duration::from_secs_f64(args.get(1).copied().unwrap_or(100.0) / 1e3);
    let seconds = args.get(2).copied().unwrap_or(2.0);
    let epochs = end_to_end::at_rate(
        2,
        interval,
        (rate as f64 * seconds) as u64,
        rate,
        microbatch::IdleStrategy::Backoff,
    );
    for e in epochs {
        println!(
            "epoch {:>4} {:?} records {:?} reduce {:?} shuffle_wait {:?} merge {:?} sink {:?} seal_to_result {:?} latency p99 {} µs",
            e.epoch, e.seal_reason, e.records_per_worker, e.durations.reduce, e.durations.shuffle_wait,
            e.durations.merge, e.durations.sink, e.seal_to_result, e.latency.p99_micros
        );
    }
}
