//! Skewed keys against uniform keys, the engine alone: each distribution's
//! records are generated into memory first (a Zipf draw costs several
//! times a uniform one, which would otherwise dominate), then each round
//! runs the profile's job over every distribution's records in turn:
//!
//! ```text
//! skew_keys_ab [profile] [rounds] [millions of records]
//! ```
//!
//! Defaults: `profiles/skew-keys.toml`, 3 rounds, 100 M records (1.6 GB
//! per distribution). Each run's first 200 ms are a warm-up left out of
//! its figures (`ab::IN_MEMORY_WARMUP`).
use std::process::ExitCode;

use crate::ab::{events_in_memory, median, run_over, InMemoryArgs};
use microbatch::source::{Event, KeyDistribution};
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
    let inputs: Vec<Vec<Event>> = variants
        .iter()
        .map(|(_, distribution)| {
            let mut config = profile.workload.generator();
            config.distribution = *distribution;
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
    for ((name, _), runs) in variants.iter().zip(&mut throughput) {
        let m = median(runs);
        println!("  {name:<10} {:>12}  {:.2}x uniform", rate(m), m / base);
    }
    ExitCode::SUCCESS
}
