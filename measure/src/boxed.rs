//! What a boxed job costs: the end_to_end job (keyed count and sum over
//! 100 000 keys, 2 workers, 100 ms epochs, the generator in the workers)
//! as its own type and behind a `Box<dyn Job>`, alternating which goes
//! first in each round:
//!
//! ```text
//! boxed [ROUNDS] [RECORDS]
//! ```
//!
//! Defaults: 5 rounds of 200 M records.

use crate::ab::{median, rate_over};
use microbatch::job::{BoxedJob, Job};
use microbatch::source::{Event, Generator};
use microbatch_bench::end_to_end::{count_and_sum, workload};

/// Records per second of one run of `job` over `records` records.
fn run<J: Job<Event>>(job: J, records: u64) -> f64 {
    rate_over(job, Generator::new(workload(records, None)), records).0
}

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let args: Vec<u64> = crate::ab::numbers(args);
    let rounds = args.first().copied().unwrap_or(5).max(1);
    let records = args.get(1).copied().unwrap_or(200_000_000);
    let (mut plain, mut boxed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let boxed_job = || -> BoxedJob<Event, _, _, _> { Box::new(count_and_sum()) };
        let (p, b) = if round % 2 == 0 {
            let p = run(count_and_sum(), records);
            (p, run(boxed_job(), records))
        } else {
            let b = run(boxed_job(), records);
            (run(count_and_sum(), records), b)
        };
        println!(
            "round {round}: own type {:.1} M/s, boxed {:.1} M/s ({:.3}x)",
            p / 1e6,
            b / 1e6,
            b / p
        );
        plain.push(p);
        boxed.push(b);
        ratios.push(b / p);
    }
    println!(
        "median: own type {:.1} M/s, boxed {:.1} M/s; median paired ratio {:.3}",
        median(&mut plain) / 1e6,
        median(&mut boxed) / 1e6,
        median(&mut ratios)
    );
}
