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
//! per distribution).
use std::path::Path;
use std::process::ExitCode;

use microbatch::source::{Event, KeyDistribution};
use microbatch_bench::ab::{events_in_memory, median};
use microbatch_bench::cli::profile::Profile;
use microbatch_bench::cli::report::rate;
use microbatch_bench::cli::run::{run_with_input, Input, Quiet, RunFiles};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .map_or("profiles/skew-keys.toml", String::as_str);
    let rounds: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    let millions: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(100);
    let mut profile = match Profile::load(Path::new(path), &[]) {
        Ok(profile) => profile,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // An in-memory input ends the run when it is read whole.
    profile.workload.producers = 0;
    profile.run.warmup = std::time::Duration::ZERO;
    profile.run.duration = std::time::Duration::from_secs(3600);
    let variants = [
        ("uniform", KeyDistribution::Uniform),
        ("zipf 1.0", KeyDistribution::Zipf(1.0)),
        ("zipf 1.5", KeyDistribution::Zipf(1.5)),
    ];
    println!(
        "{} keys, {millions} M records per distribution, generated first",
        profile.workload.keys
    );
    let inputs: Vec<Vec<Event>> = variants
        .iter()
        .map(|(_, distribution)| {
            let mut config = profile.workload.generator();
            config.distribution = *distribution;
            events_in_memory(config, millions * 1_000_000)
        })
        .collect();
    let mut throughput = vec![Vec::new(); variants.len()];
    for round in 1..=rounds.max(1) {
        let mut line = format!("round {round}:");
        for (i, ((name, _), events)) in variants.iter().zip(&inputs).enumerate() {
            let input = Input::Events(events.clone());
            let report =
                match run_with_input(&profile, name, &RunFiles::default(), &mut Quiet, input) {
                    Ok(outcome) => outcome.report,
                    Err(error) => {
                        eprintln!("error: {name}: {error}");
                        return ExitCode::FAILURE;
                    }
                };
            if report.records_in != report.records_out {
                eprintln!("error: {name}: records accepted and in results differ");
                return ExitCode::from(3);
            }
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
