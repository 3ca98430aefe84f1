//! Skewed keys against uniform keys, the engine alone: each distribution's
//! records are generated into memory first (the generator's cost per
//! record, one thread, is measured apart and printed beside the fold's),
//! then each round runs the profile's job over every distribution's
//! records in turn:
//!
//! ```text
//! skew_keys_ab [profile] [rounds] [millions of records]
//! ```
//!
//! Defaults: `profiles/skew-keys.toml`, 3 rounds, 100 M records (1.6 GB
//! per distribution). Each run's first 200 ms are a warm-up left out of
//! its figures (`ab::IN_MEMORY_WARMUP`).
use std::process::ExitCode;
use std::time::Instant;

use crate::ab::{events_in_memory, median, run_over, InMemoryArgs};
use microbatch::source::{Event, Generator, GeneratorConfig, KeyDistribution, Poll, SourceSpec};
use microbatch_cli::report::rate;

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> ExitCode {
    let InMemoryArgs {
        path,
        mut profile,
        rounds,
        records,
    } = match InMemoryArgs::from_args(args, "profiles/skew-keys.toml", 3, 100) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // The workers read the records; no producer threads.
    profile.workload.producers = 0;
    let variants = [
        ("uniform", KeyDistribution::Uniform),
        ("zipf 1.0", KeyDistribution::Zipf(1.0)),
        ("zipf 1.5", KeyDistribution::Zipf(1.5)),
    ];
    println!(
        "{} keys, {} M records per distribution, generated first",
        profile.workload.keys,
        records / 1_000_000
    );
    let mut generator_ns = Vec::new();
    let inputs: Vec<Vec<Event>> = variants
        .iter()
        .map(|(_, distribution)| {
            let mut config = profile.workload.generator();
            config.distribution = *distribution;
            generator_ns.push(generator_cost(config.clone(), records));
            events_in_memory(config, records)
        })
        .collect();
    let mut throughput = vec![Vec::new(); variants.len()];
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, ((name, _), events)) in variants.iter().zip(&inputs).enumerate() {
            let report = match run_over(&profile, name, events) {
                Ok(report) => report,
                Err((error, code)) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(code);
                }
            };
            throughput[i].push(report.throughput_rps);
            line += &format!("  {name} {}", rate(report.throughput_rps));
        }
        println!("{line}");
    }
    let base = median(&mut throughput[0].clone());
    println!("\nmedian throughput over {rounds} rounds ({path}, engine only):");
    let workers = profile.engine.workers.max(1) as f64;
    for (((name, _), runs), generated) in variants.iter().zip(&mut throughput).zip(&generator_ns) {
        let m = median(runs);
        println!(
            "  {name:<10} {:>12}  {:.2}x uniform  (fold {:.1} ns a record a worker; generator {generated:.1} ns a record, one thread)",
            rate(m),
            m / base,
            workers * 1e9 / m,
        );
    }
    ExitCode::SUCCESS
}

/// The generator's cost per record in ns, one thread, drawing `records`
/// into a reused 4096-record chunk as a worker does (the fold left out).
fn generator_cost(mut config: GeneratorConfig, records: usize) -> f64 {
    config.rate = None;
    config.records = Some(records as u64);
    let mut part = Generator::new(config)
        .split(1)
        .expect("a valid generator")
        .pop()
        .expect("one part");
    let mut chunk = Vec::with_capacity(4096);
    let (mut drawn, mut checksum) = (0usize, 0u64);
    let started = Instant::now();
    while let Poll::Ready { .. } = part.poll(0, &mut chunk, 4096) {
        drawn += chunk.len();
        checksum = chunk
            .iter()
            .fold(checksum, |sum, e| sum.wrapping_add(e.key));
        chunk.clear();
    }
    let elapsed = started.elapsed();
    std::hint::black_box(checksum);
    elapsed.as_nanos() as f64 / drawn.max(1) as f64
}
