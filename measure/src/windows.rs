//! What a window costs per record: a per-key count and sum over
//! `(key, value, event time ms)` records (10 000 keys, 1 000 records per
//! event-time millisecond, in order, as a 1 M events/s stream replayed;
//! 2 workers, 100 ms epochs, records
//! from an iterator in the workers), unwindowed (`key_by`), in 1 s tumbling
//! windows, and in 10 s windows hopping by 2 s (five windows per record),
//! the order rotating each round:
//!
//! ```text
//! windows [ROUNDS] [RECORDS]
//! ```
//!
//! Defaults: 5 rounds of 20 M records.

use std::time::{Duration, Instant};

use crate::ab::median;
use microbatch::job::{self, Job, Windows};
use microbatch::sink::DiscardSink;
use microbatch::source::IterSource;
use microbatch::Engine;

type Timed = (u64, u64, u64);

const KEYS: u64 = 10_000;

/// Records per second of `job` over `records` records, 1 000 per
/// event-time millisecond.
fn run<J: Job<Timed>>(job: J, records: u64) -> f64 {
    let started = Instant::now();
    let feed = (0..records).map(|i| {
        (
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS,
            i & 1023,
            i / 1_000,
        )
    });
    let engine = Engine::builder(job, DiscardSink)
        .workers(2)
        .interval(Some(Duration::from_millis(100)))
        .max_batch_records(None)
        .source(IterSource::new(feed))
        .start()
        .expect("valid settings");
    let summary = engine.finish().expect("a clean run");
    assert_eq!(summary.records_in_results, records);
    assert_eq!(summary.late_records, 0);
    records as f64 / started.elapsed().as_secs_f64()
}

fn variant(index: usize, records: u64) -> f64 {
    let stream = job::records::<Timed>;
    match index {
        0 => run(
            stream()
                .key_by(|r| r.0)
                .aggregate_with(|c| (c.count(), c.sum(|r| r.1))),
            records,
        ),
        1 => run(
            stream()
                .event_time(|r| r.2)
                .window(Windows::tumbling(Duration::from_secs(1)))
                .key_by(|r| r.0)
                .aggregate_with(|c| (c.count(), c.sum(|r| r.1))),
            records,
        ),
        _ => run(
            stream()
                .event_time(|r| r.2)
                .window(Windows::hopping(
                    Duration::from_secs(10),
                    Duration::from_secs(2),
                ))
                .key_by(|r| r.0)
                .aggregate_with(|c| (c.count(), c.sum(|r| r.1))),
            records,
        ),
    }
}

const NAMES: [&str; 3] = ["unwindowed", "tumbling 1 s", "hopping 10 s / 2 s"];

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let args: Vec<u64> = crate::ab::numbers(args);
    let rounds = args.first().copied().unwrap_or(5).max(1) as usize;
    let records = args.get(1).copied().unwrap_or(20_000_000);
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    let mut ratios = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let mut rate = [0.0; 3];
        for step in 0..3 {
            let v = (round + step) % 3;
            rate[v] = variant(v, records);
        }
        println!(
            "round {round}: {} {:.1} M/s, {} {:.1} M/s ({:.3}x), {} {:.1} M/s ({:.3}x)",
            NAMES[0],
            rate[0] / 1e6,
            NAMES[1],
            rate[1] / 1e6,
            rate[1] / rate[0],
            NAMES[2],
            rate[2] / 1e6,
            rate[2] / rate[0]
        );
        for v in 0..3 {
            rates[v].push(rate[v]);
        }
        ratios[0].push(rate[1] / rate[0]);
        ratios[1].push(rate[2] / rate[0]);
    }
    println!(
        "median: {} {:.1} M/s, {} {:.1} M/s, {} {:.1} M/s; paired ratios against unwindowed: {:.3} and {:.3}",
        NAMES[0],
        median(&mut rates[0]) / 1e6,
        NAMES[1],
        median(&mut rates[1]) / 1e6,
        NAMES[2],
        median(&mut rates[2]) / 1e6,
        median(&mut ratios[0]),
        median(&mut ratios[1]),
    );
}
