//! Same-run A/B of profile variants, interleaved so that the machine's
//! drift hits every variant alike:
//!
//! ```text
//! profile_ab <profile> <rounds> <variant> <variant> ...
//! ```
//!
//! A variant is a comma-separated list of `--set` overrides (`-` for the
//! profile as it is). Each round runs every variant once, in turn; the
//! table shows each variant's median throughput and its ratio to the
//! first variant's, and per round the ratios, so their spread shows.
use std::path::Path;
use std::process::ExitCode;

use microbatch_bench::cli::profile::Profile;
use microbatch_bench::cli::report::rate;
use microbatch_bench::cli::run::{run, Quiet, RunFiles};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: profile_ab <profile> <rounds> <variant> <variant> ... \
                 (a variant: key=value[,key=value...], or - for none)";
    let (Some(path), Some(Ok(rounds)), true) = (
        args.first(),
        args.get(1).map(|r| r.parse::<usize>()),
        args.len() >= 4,
    ) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let variants: Vec<(String, Profile)> = match args[2..]
        .iter()
        .map(|variant| {
            let overrides: Vec<String> = variant
                .split(',')
                .filter(|o| *o != "-" && !o.is_empty())
                .map(str::to_owned)
                .collect();
            Profile::load(Path::new(path), &overrides).map(|p| (variant.clone(), p))
        })
        .collect()
    {
        Ok(variants) => variants,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let mut throughput = vec![Vec::new(); variants.len()];
    for round in 1..=rounds.max(1) {
        let mut line = format!("round {round}:");
        for (i, (name, profile)) in variants.iter().enumerate() {
            let outcome = match run(profile, name, &RunFiles::default(), &mut Quiet) {
                Ok(outcome) => outcome,
                Err(error) => {
                    eprintln!("error: {name}: {error}");
                    return ExitCode::FAILURE;
                }
            };
            let report = outcome.report;
            if report.records_in != report.records_out {
                eprintln!("error: {name}: records accepted and in results differ");
                return ExitCode::from(3);
            }
            throughput[i].push(report.throughput_rps);
            line += &format!(
                "  {name} {} (stolen {:.1}%)",
                rate(report.throughput_rps),
                100.0 * report.records_stolen as f64 / report.records_measured.max(1) as f64
            );
        }
        let ratios: Vec<String> = throughput
            .iter()
            .skip(1)
            .map(|t| format!("{:.2}", t[round - 1] / throughput[0][round - 1]))
            .collect();
        println!("{line}  ratios to the first: {}", ratios.join(" "));
    }
    let base = median(&mut throughput[0].clone());
    println!("\nmedian throughput over {rounds} rounds ({path}):");
    for ((name, _), runs) in variants.iter().zip(&mut throughput) {
        let m = median(runs);
        println!("  {name:<40} {:>14}  {:.2}x the first", rate(m), m / base);
    }
    ExitCode::SUCCESS
}
