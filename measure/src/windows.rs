//! What a window costs per record: a per-key count and sum over
//! `(key, value, event time ms)` records (10 000 keys, 1 000 records per
//! event-time millisecond, in order, as a 1 M events/s stream replayed;
//! 2 workers, 100 ms epochs, records
//! from an iterator in the workers), unwindowed (`key_by`), in 1 s tumbling
//! windows, in 10 s windows hopping by 2 s (five windows per record), and
//! in sessions of a 100 ms gap (one per key: a key's records are about
//! 10 ms apart), the order rotating each round:
//!
//! ```text
//! windows [ROUNDS] [RECORDS]
//! ```
//!
//! Defaults: 5 rounds of 20 M records.

use std::time::Duration;

use crate::ab::{median, rate_over};
use microbatch::job::{self, Job, Windows};
use microbatch::source::IterSource;

type Timed = (u64, u64, u64);

const KEYS: u64 = 10_000;

/// Records per second of `job` over `records` records, 1 000 per
/// event-time millisecond.
fn run<J: Job<Timed>>(job: J, records: u64) -> f64 {
    let feed = (0..records).map(|i| {
        (
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS,
            i & 1023,
            i / 1_000,
        )
    });
    let (rate, summary) = rate_over(job, IterSource::new(feed), records);
    assert_eq!(summary.late_records, 0);
    rate
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

const NAMES: [&str; 4] = [
    "unwindowed",
    "tumbling 1 s",
    "hopping 10 s / 2 s",
    "session 100 ms",
];

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let args: Vec<u64> = crate::ab::numbers(args);
    let rounds = args.first().copied().unwrap_or(5).max(1) as usize;
    let records = args.get(1).copied().unwrap_or(20_000_000);
    let mut rates: [Vec<f64>; 4] = Default::default();
    let mut ratios: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        let mut rate = [0.0; 4];
        for step in 0..4 {
            let v = (round + step) % 4;
            rate[v] = variant(v, records);
        }
        let mut line = format!("round {round}: {} {:.1} M/s", NAMES[0], rate[0] / 1e6);
        for v in 1..4 {
            line.push_str(&format!(
                ", {} {:.1} M/s ({:.3}x)",
                NAMES[v],
                rate[v] / 1e6,
                rate[v] / rate[0]
            ));
            ratios[v - 1].push(rate[v] / rate[0]);
        }
        println!("{line}");
        for v in 0..4 {
            rates[v].push(rate[v]);
        }
    }
    let mut line = String::from("median:");
    for v in 0..4 {
        line.push_str(&format!(
            " {} {:.1} M/s;",
            NAMES[v],
            median(&mut rates[v]) / 1e6
        ));
    }
    line.push_str(" paired ratios against unwindowed:");
    for v in 1..4 {
        line.push_str(&format!(" {:.3}", median(&mut ratios[v - 1])));
    }
    println!("{line}");
}
