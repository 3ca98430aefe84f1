//! An uneven producer, the engine alone: the profile's records are
//! generated into memory first, so the producer threads only copy them into
//! the rings (drawing records on the fly costs a producer about half of
//! what folding them costs a worker, which on 2 cores would cap what any
//! balancing can show). Each round runs every variant over the same
//! records, interleaved:
//!
//! ```text
//! skew_producer_ab [profile] [rounds] [millions of records]
//! ```
//!
//! Variants: all input at worker 0 without and with work stealing, and
//! even input (`hot_worker_share = 0.5`) with stealing. Defaults:
//! `profiles/skew-producer.toml`, 5 rounds, 200 M records (3.2 GB, and a
//! copy per run). Each run's first 200 ms are a warm-up left out of its
//! figures (`ab::IN_MEMORY_WARMUP`): at about 300 M/s, 200 M records leave
//! some 0.5 s measured.
use std::process::ExitCode;

use crate::ab::{events_in_memory, median, run_over, InMemoryArgs};
use microbatch_cli::report::rate;

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> ExitCode {
    let InMemoryArgs {
        path,
        profile,
        rounds,
        records,
    } = match InMemoryArgs::from_args(args, "profiles/skew-producer.toml", 5, 200) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if profile.workload.producers == 0 {
        eprintln!("error: {path}: workload.producers = 0; this example needs producer threads");
        return ExitCode::from(2);
    }
    let variants: [(&str, f64, bool); 3] = [
        ("all at worker 0, no stealing", 1.0, false),
        ("all at worker 0, stealing", 1.0, true),
        ("even, stealing", 0.5, true),
    ];
    println!(
        "{} producers, {} keys, {} M records generated first",
        profile.workload.producers,
        profile.workload.keys,
        records / 1_000_000
    );
    let events = events_in_memory(profile.workload.generator(), records);
    let mut throughput = vec![Vec::new(); variants.len()];
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, (name, share, stealing)) in variants.iter().enumerate() {
            let mut variant = profile.clone();
            variant.workload.hot_worker_share = Some(*share);
            variant.engine.work_stealing = *stealing;
            let report = match run_over(&variant, name, &events) {
                Ok(report) => report,
                Err((error, code)) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(code);
                }
            };
            throughput[i].push(report.throughput_rps);
            let stolen = 100.0 * report.records_stolen as f64 / report.records_out.max(1) as f64;
            let batches = report.records_per_worker.len() as u64 * report.epochs_measured;
            line += &format!(
                "  {name} {} ({stolen:.0}% stolen, {}/{batches} batches combined)",
                rate(report.throughput_rps),
                report.batches_combined
            );
        }
        println!("{line}");
    }
    let base = median(&mut throughput[0].clone());
    println!("\nmedian throughput over {rounds} rounds ({path}, input from memory):");
    for ((name, _, _), runs) in variants.iter().zip(&mut throughput) {
        let m = median(runs);
        println!("  {name:<30} {:>12}  {:.2}x the first", rate(m), m / base);
    }
    ExitCode::SUCCESS
}
