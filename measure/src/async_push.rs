//! What a push costs by handle: a blocking [`Producer`](microbatch::Producer),
//! a [`SharedProducer`](microbatch::SharedProducer) and an
//! [`AsyncProducer`](microbatch::tokio::AsyncProducer) awaited in a task on
//! a one-thread runtime. Each pushes `RECORDS` `u64`s one at a time from
//! one thread into one worker (unpinned, a count over 1 024 keys, 10 ms
//! epochs, rings of 4 096), the variants' order rotating each round; then
//! what making a handle costs (a new ring against a clone).
//!
//! ```text
//! async_push [ROUNDS] [RECORDS]
//! ```
//!
//! Defaults: 5 rounds of 20 M records.

use std::time::{Duration, Instant};

use crate::ab::median;
use microbatch::job::{self, count, Job};
use microbatch::sink::DiscardSink;
use microbatch::{Engine, Summary};

fn job() -> impl Job<u64> {
    job::records::<u64>()
        .key_by(|r| *r & 1023)
        .aggregate(count())
}

fn engine() -> Engine<u64, impl Job<u64>> {
    Engine::builder(job(), DiscardSink)
        .workers(1)
        .pin(false)
        .interval(Some(Duration::from_millis(10)))
        .ring_capacity(4096)
        .start()
        .expect("valid settings")
}

/// Records per second of `push`ing `records` through one handle.
fn run(variant: &str, records: u64) -> f64 {
    let engine = engine();
    let started = Instant::now();
    let summary: Summary = match variant {
        "blocking" => {
            let mut producer = engine.producer();
            for i in 0..records {
                producer.push(i).expect("running");
            }
            drop(producer);
            engine.shutdown().expect("clean")
        }
        "shared" => {
            let producer = engine.shared_producer(1);
            for i in 0..records {
                producer.push(i).expect("running");
            }
            drop(producer);
            engine.shutdown().expect("clean")
        }
        "async" => tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(async {
                let producer = engine.async_producer(1);
                for i in 0..records {
                    producer.push(i).await.expect("running");
                }
                drop(producer);
                engine.shutdown_async().await.expect("clean")
            }),
        _ => unreachable!("a variant of VARIANTS"),
    };
    assert_eq!(summary.records_in_results, records);
    records as f64 / started.elapsed().as_secs_f64()
}

const VARIANTS: [&str; 3] = ["blocking", "shared", "async"];

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let args: Vec<u64> = crate::ab::numbers(args);
    let rounds = args.first().copied().unwrap_or(5).max(1) as usize;
    let records = args.get(1).copied().unwrap_or(20_000_000);
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    let mut ratios = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let mut rate = [0.0; 3];
        for step in 0..VARIANTS.len() {
            let v = (round + step) % VARIANTS.len();
            rate[v] = run(VARIANTS[v], records);
        }
        println!(
            "round {round}: blocking {:.1} M/s, shared {:.1} M/s ({:.3}x), async {:.1} M/s ({:.3}x)",
            rate[0] / 1e6,
            rate[1] / 1e6,
            rate[1] / rate[0],
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
        "median: blocking {:.1} M/s, shared {:.1} M/s, async {:.1} M/s; paired ratios against blocking: shared {:.3}, async {:.3}",
        median(&mut rates[0]) / 1e6,
        median(&mut rates[1]) / 1e6,
        median(&mut rates[2]) / 1e6,
        median(&mut ratios[0]),
        median(&mut ratios[1]),
    );
    handles();
}

/// What making 1 000 handles costs: new rings (`producer()`) against
/// clones of one shared handle.
fn handles() {
    const HANDLES: u32 = 1_000;
    let engine = engine();
    let started = Instant::now();
    let rings: Vec<_> = (0..HANDLES).map(|_| engine.producer()).collect();
    let per_ring = started.elapsed() / HANDLES;
    drop(rings);
    let shared = engine.shared_producer(1);
    let started = Instant::now();
    let clones: Vec<_> = (0..HANDLES).map(|_| shared.clone()).collect();
    let per_clone = started.elapsed() / HANDLES;
    drop(clones);
    println!(
        "a handle: producer() {per_ring:?} and a ring of 4 096 × 8 B = 32 KiB; shared clone {per_clone:?} and no memory of its own ({:.0}x cheaper to make)",
        per_ring.as_secs_f64() / per_clone.as_secs_f64().max(1e-12)
    );
    drop(shared);
    engine.shutdown().expect("clean");
}
