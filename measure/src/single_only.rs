//! The single-thread end_to_end loop alone, for profilers: `single_only <records>`.
use microbatch_bench::end_to_end;

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let records = args
        .into_iter()
        .nth(1)
        .map_or(30_000_000, |a| a.parse().expect("a number"));
    let (elapsed, _) = end_to_end::single_thread(records);
    println!("{:.1} M/s", records as f64 / elapsed.as_secs_f64() / 1e6);
}
