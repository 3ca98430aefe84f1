//! The engine alone on the end_to_end job, for profilers: `engine_only <workers> <records>`.
use microbatch_bench::end_to_end;
use std::time::Duration;

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let args: Vec<u64> = crate::ab::numbers(args);
    let (workers, records) = (
        args.first().copied().unwrap_or(1),
        args.get(1).copied().unwrap_or(30_000_000),
    );
    let (elapsed, summary) =
        end_to_end::engine(workers as usize, Duration::from_millis(100), records, None);
    println!(
        "{:.1} M/s, {} epochs",
        records as f64 / elapsed.as_secs_f64() / 1e6,
        summary.epochs
    );
}
