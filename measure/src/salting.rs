//! A reduction whose state grows with its input (the distinct values of a
//! key), with one key taking half the records, unsalted and salted,
//! interleaved.
//!
//! ```sh
//! cargo run --release -p microbatch-measure -- salting [ROUNDS] [RECORDS]
//! ```
//!
//! The records (default 20 M: key 0 for half of them, the rest spread over
//! 100 000 keys) are made in memory first; 2 workers, epochs of 1 M
//! records per worker. Prints each round's throughput and the slowest
//! epoch's merge on an owner, and the medians.

use std::time::Duration;

use hashbrown::HashSet;

use microbatch::job::{self, Aggregator};
use microbatch::sink::DiscardSink;
use microbatch::source::IterSource;
use microbatch::{Engine, Summary};

type Record = (u64, u64);

/// The distinct values of a key (of 200 000 possible).
#[derive(Clone)]
struct Distinct;

impl Aggregator<Record> for Distinct {
    type State = HashSet<u64>;
    type Output = usize;

    fn init(&self) -> HashSet<u64> {
        HashSet::new()
    }

    fn update(&self, state: &mut HashSet<u64>, record: &Record) {
        state.insert(record.1 % 200_000);
    }

    fn merge(&self, into: &mut HashSet<u64>, from: HashSet<u64>) {
        into.extend(from);
    }

    fn finish(&self, state: HashSet<u64>) -> usize {
        state.len()
    }
}

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = args.into_iter().skip(1).collect();
    let rounds: usize = args.first().map_or(Ok(5), |a| a.parse())?;
    let count: u64 = args.get(1).map_or(Ok(20_000_000), |a| a.parse())?;
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let spread = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
            (if i % 2 == 0 { 0 } else { 1 + spread % 100_000 }, i)
        })
        .collect();
    let (mut plain, mut salted) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let a = run(&records, false)?;
        let b = run(&records, true)?;
        println!(
            "round {round}: unsalted {:.1} M/s (slowest merge {:.1} ms), salted {:.1} M/s (slowest merge {:.1} ms)",
            a.0 / 1e6,
            a.1.as_secs_f64() * 1e3,
            b.0 / 1e6,
            b.1.as_secs_f64() * 1e3
        );
        plain.push(a);
        salted.push(b);
    }
    let median = |runs: &mut Vec<(f64, Duration)>| {
        runs.sort_by(|x, y| x.0.total_cmp(&y.0));
        runs[runs.len() / 2]
    };
    let (a, b) = (median(&mut plain), median(&mut salted));
    println!(
        "median: unsalted {:.1} M/s, salted {:.1} M/s ({:.2}x)",
        a.0 / 1e6,
        b.0 / 1e6,
        b.0 / a.0
    );
    Ok(())
}

/// Throughput and the slowest epoch's merge of one run.
fn run(records: &[Record], salt: bool) -> Result<(f64, Duration), Box<dyn std::error::Error>> {
    let job = job::records::<Record>().key_by(|r| r.0).aggregate(Distinct);
    let job = if salt { job.salted([0u64]) } else { job };
    let slowest = std::sync::Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let seen = std::sync::Arc::clone(&slowest);
    let engine = Engine::builder(job, DiscardSink)
        .workers(2)
        .interval(None)
        .max_batch_records(Some(1_000_000))
        .on_progress(move |progress| {
            let mut slowest = seen.lock().unwrap();
            *slowest = (*slowest).max(progress.durations.merge);
        })
        .source(IterSource::new(records.to_vec()))
        .start()?;
    let summary: Summary = engine.finish()?;
    let rate = summary.records_in_results as f64 / summary.elapsed.as_secs_f64();
    let slowest = *slowest.lock().unwrap();
    Ok((rate, slowest))
}
