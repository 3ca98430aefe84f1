//! The engine against Timely Dataflow on the same keyed count + sum:
//! `microbatch_bench::timely_job` (Timely 0.32, the engine's generator in
//! each worker, pre-aggregation before the exchange, one epoch in flight)
//! next to the profile run through the CLI's own `run`, interleaved round
//! by round:
//!
//! ```text
//! timely [--profile PATH] [--rounds N]
//! ```
//!
//! Each round runs, in turn: Timely at 1 Mi records per worker and epoch;
//! the profile as shipped and with `engine.max_batch_records = 1048576`
//! (the same epochs as Timely's); Timely at 10 000 records per worker and
//! epoch (20 000 an epoch, about a millisecond or two each); the profile
//! at `engine.interval = 1ms`. Engine runs are shortened as [`short_run`] says. Defaults:
//! `profiles/default.toml`, 5 rounds.
use microbatch_bench::timely_job::{keyed_count_sum, TimelyRun};
use microbatch_cli::commands::run::run;
use microbatch_cli::driver::{Quiet, RunFiles};

use crate::ab::{checked, median, short_run, spread, RunOptions};

/// Timely's runs: (name, records per worker and epoch, epochs).
const TIMELY: [(&str, usize, u64); 2] = [
    ("timely, 1 Mi records a worker an epoch", 1 << 20, 100),
    ("timely, 10 000 records a worker an epoch", 10_000, 10_000),
];

/// The engine's variants, each set beside the Timely run it is compared
/// with (an index into `TIMELY`).
const ENGINE: [(&str, usize); 3] = [
    ("-", 0),
    ("engine.max_batch_records=1048576", 0),
    ("engine.interval=1ms", 1),
];

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let RunOptions {
        path,
        rounds,
        records,
        rest,
    } = RunOptions::from_args(args)?;
    if let Some(other) = rest.first() {
        return Err(format!("unknown argument {other}").into());
    }
    if records.is_some() {
        return Err("--records: Timely's runs are set in epochs, not records".into());
    }
    let profiles = ENGINE
        .iter()
        .map(|(variant, _)| short_run(&path, variant))
        .collect::<Result<Vec<_>, _>>()?;
    let workers = profiles[0].engine.workers.max(1);
    let config = profiles[0].workload.generator();
    let mut timely = vec![Vec::new(); TIMELY.len()];
    let mut ratios = vec![Vec::new(); ENGINE.len()];
    println!("{path}: the engine against Timely Dataflow, {workers} workers each");
    for round in 1..=rounds {
        println!("round {round}:");
        for (t, &(name, per_worker, epochs)) in TIMELY.iter().enumerate() {
            let run = keyed_count_sum(workers, config.clone(), per_worker, epochs)?;
            check(name, &run)?;
            timely[t].push(run.throughput());
            println!(
                "  {name:<42} {:>7.1} M/s  ({:.2} ms an epoch)",
                run.throughput() / 1e6,
                run.elapsed.as_secs_f64() * 1e3 / epochs as f64,
            );
            for (e, ((variant, against), profile)) in ENGINE.iter().zip(&profiles).enumerate() {
                if *against != t {
                    continue;
                }
                let report =
                    checked(variant, run_quietly(profile, variant)).map_err(|(error, _)| error)?;
                let ratio = report.throughput_rps / run.throughput();
                ratios[e].push(ratio);
                println!(
                    "  engine {variant:<35} {:>7.1} M/s  {ratio:.2} × timely  ({} epochs: {} by interval, {} by count)",
                    report.throughput_rps / 1e6,
                    report.epochs_measured,
                    report.epochs_by_reason.interval,
                    report.epochs_by_reason.count,
                );
            }
        }
    }
    println!("\nmedian of {rounds} rounds:");
    for (t, &(name, ..)) in TIMELY.iter().enumerate() {
        let (low, high) = spread(&timely[t]);
        println!(
            "  {name:<42} {:>7.1} M/s (rounds {:.1}–{:.1})",
            median(&mut timely[t].clone()) / 1e6,
            low / 1e6,
            high / 1e6
        );
    }
    for ((variant, against), ratio) in ENGINE.iter().zip(&mut ratios) {
        let (low, high) = spread(ratio);
        println!(
            "  engine {variant:<35} {:.2} × {} (rounds {low:.2}–{high:.2})",
            median(ratio),
            TIMELY[*against].0,
        );
    }
    Ok(())
}

/// A run of the profile with no progress shown.
fn run_quietly(
    profile: &microbatch_cli::profile::Profile,
    name: &str,
) -> Result<microbatch_cli::driver::RunOutcome, microbatch_cli::driver::error::RunError> {
    run(profile, name, &RunFiles::default(), &mut Quiet)
}

/// Timely's run must have folded every record once.
fn check(name: &str, run: &TimelyRun) -> Result<(), String> {
    if run.counted == run.records {
        Ok(())
    } else {
        Err(format!(
            "{name}: {} records sent, {} counted",
            run.records, run.counted
        ))
    }
}
