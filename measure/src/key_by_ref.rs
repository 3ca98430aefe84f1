//! What a borrowed key saves: a per-path count and sum over records
//! `(&'static str, u64)` (1 000 paths, 2 workers, 100 ms epochs, records
//! from an iterator in the workers), keyed by `key_by(|r|
//! r.0.to_owned())` (a `String` per record) and by `key_by_ref(|r| r.0)`
//! (a `String` per key and epoch), alternating which goes first:
//!
//! ```text
//! key_by_ref [ROUNDS] [RECORDS]
//! ```
//!
//! Defaults: 5 rounds of 20 M records.

use crate::ab::{median, rate_over};
use microbatch::job::{self, Job};
use microbatch::source::IterSource;

type Record = (&'static str, u64);

/// Records per second of `job` over `records` records of `paths`.
fn run<J: Job<Record>>(job: J, paths: &'static [&'static str], records: u64) -> f64 {
    let feed = (0..records).map(move |i| (paths[(i % paths.len() as u64) as usize], i));
    rate_over(job, IterSource::new(feed), records).0
}

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let args: Vec<u64> = crate::ab::numbers(args);
    let rounds = args.first().copied().unwrap_or(5).max(1);
    let records = args.get(1).copied().unwrap_or(20_000_000);
    let paths: Vec<&'static str> = (0..1000)
        .map(|i| &*Box::leak(format!("/api/v1/resource/{i}").into_boxed_str()))
        .collect();
    let paths: &'static [&'static str] = Box::leak(paths.into_boxed_slice());
    let owned = || {
        job::records::<Record>()
            .key_by(|r| r.0.to_owned())
            .aggregate_with(|c| (c.count(), c.sum(|r| r.1)))
    };
    let borrowed = || {
        job::records::<Record>()
            .key_by_ref(|r| r.0)
            .aggregate_with(|c| (c.count(), c.sum(|r| r.1)))
    };
    let (mut o, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (own, by_ref) = if round % 2 == 0 {
            let own = run(owned(), paths, records);
            (own, run(borrowed(), paths, records))
        } else {
            let by_ref = run(borrowed(), paths, records);
            (run(owned(), paths, records), by_ref)
        };
        println!(
            "round {round}: key_by (a String per record) {:.1} M/s, key_by_ref {:.1} M/s ({:.3}x)",
            own / 1e6,
            by_ref / 1e6,
            by_ref / own
        );
        o.push(own);
        b.push(by_ref);
        ratios.push(by_ref / own);
    }
    println!(
        "median: key_by {:.1} M/s, key_by_ref {:.1} M/s; median paired ratio {:.3}",
        median(&mut o) / 1e6,
        median(&mut b) / 1e6,
        median(&mut ratios)
    );
}
