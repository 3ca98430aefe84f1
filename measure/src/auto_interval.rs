//! The adaptive interval against fixed ones at the same offered load: each
//! round runs the profile as it is (`engine.interval = "auto"`) and then
//! each fixed interval, with the target off, through the CLI's own `run`,
//! so every variant's figures sit beside the adaptive run's of the same
//! round.
//!
//! ```text
//! auto_interval [--profile PATH] [--rounds N] [FIXED_INTERVAL ...]
//! ```
//!
//! Default profile `profiles/auto-interval.toml`; default fixed intervals
//! 1 ms (what a controller that picked the smallest would run) and the
//! target (the largest it may choose). Per variant: the record latency
//! p99, the interval (the adaptive one's median choice) and the CPU time
//! per record, with its ratio to the adaptive run's. Each run is shortened
//! as [`short_run`] says.
use crate::ab::{checked, median, short_run, spread, RunOptions};
use microbatch_cli::commands::run::run;
use microbatch_cli::driver::{Quiet, RunFiles};
use microbatch_cli::report::RunReport;

/// One run's figures: record p99 (ms), interval (ms), CPU ns per record.
fn figures(report: &RunReport) -> (f64, f64, f64) {
    let p99 = report.record_latency_ns.p99 as f64 / 1e6;
    let interval = report.interval_in_force_ms().unwrap_or(f64::NAN);
    let cpu = report.cpu_s.unwrap_or(f64::NAN) * 1e9 / report.records_measured.max(1) as f64;
    (p99, interval, cpu)
}

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let mut options = RunOptions::from_args(args)?;
    if options.path == "profiles/default.toml" {
        options.path = "profiles/auto-interval.toml".to_owned();
    }
    if options.records.is_some() {
        return Err("auto_interval takes no --records: the profile's rate and duration say".into());
    }
    let auto = short_run(&options.path, "-")?;
    let Some(target) = auto.engine.target_latency else {
        return Err(format!("{}: engine.interval is not \"auto\"", options.path).into());
    };
    let mut fixed = options.rest;
    if fixed.is_empty() {
        fixed = vec!["1ms".into(), format!("{target:?}")];
    }
    let mut names = vec![format!("auto (target {target:?})")];
    let mut profiles = vec![auto];
    for interval in &fixed {
        let variant = format!("engine.interval={interval},engine.target_latency=off");
        profiles.push(short_run(&options.path, &variant)?);
        names.push(format!("fixed {interval}"));
    }
    let rounds = options.rounds;
    let mut runs = vec![Vec::new(); profiles.len()];
    println!(
        "{}: each variant beside the adaptive run of its round",
        options.path
    );
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, (name, profile)) in names.iter().zip(&profiles).enumerate() {
            let report = checked(name, run(profile, name, &RunFiles::default(), &mut Quiet))
                .map_err(|(error, _)| error)?;
            let (p99, interval, cpu) = figures(&report);
            line += &format!(
                "  {name}: p99 {p99:.2} ms, interval {interval:.1} ms, {cpu:.2} ns CPU/record"
            );
            if let Some(target) = &report.target {
                line += if target.met { " (met)" } else { " (NOT met)" };
            }
            runs[i].push((p99, interval, cpu));
        }
        println!("{line}");
    }
    println!("\nover {rounds} rounds, median (spread):");
    let cpu_of = |i: usize, round: usize| runs[i][round].2;
    for (i, name) in names.iter().enumerate() {
        let mut p99: Vec<f64> = runs[i].iter().map(|r| r.0).collect();
        let mut interval: Vec<f64> = runs[i].iter().map(|r| r.1).collect();
        let mut ratios: Vec<f64> = (0..rounds).map(|r| cpu_of(i, r) / cpu_of(0, r)).collect();
        let (low, high) = spread(&ratios);
        println!(
            "  {name:<28} record p99 {:>8.2} ms  interval {:>6.1} ms  CPU/record {:.2}x the adaptive run's ({low:.2}-{high:.2})",
            median(&mut p99),
            median(&mut interval),
            median(&mut ratios),
        );
    }
    Ok(())
}
