//! The main job as shipped against its ceiling: each round runs the
//! single-thread loop (the same generator and the same FxHash hashbrown
//! count + sum fold, no engine: `microbatch_bench::end_to_end::single_thread`)
//! before each variant of the profile, run through the CLI's own `run`,
//! so every variant's figure is a ratio to W × the loop measured moments
//! before it.
//!
//! ```text
//! shipped [--profile PATH] [--rounds N] [--records M] [VARIANT ...]
//! ```
//!
//! A variant is a comma-separated list of `--set` overrides (`-` for the
//! profile as it is). Without variants: the profile as shipped, its count
//! trigger set to 1 Mi records, no count trigger, and 1 ms epochs. Each
//! run is shortened as [`short_run`] says. The loop folds `M` million records (default 50).
use crate::ab::{checked, median, short_run, spread, RunOptions};
use microbatch_bench::end_to_end::single_thread;
use microbatch_cli::commands::run::run;
use microbatch_cli::driver::{Quiet, RunFiles};

/// The variants measured when none are given.
const DEFAULT_VARIANTS: &[&str] = &[
    "-",
    "engine.max_batch_records=1048576",
    "engine.max_batch_records=off",
    "engine.interval=1ms",
];

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let RunOptions {
        path,
        rounds,
        records,
        rest: mut variants,
    } = RunOptions::from_args(args)?;
    let millions = records.unwrap_or(50);
    if variants.is_empty() {
        variants = DEFAULT_VARIANTS.iter().map(|v| v.to_string()).collect();
    }
    let profiles = variants
        .iter()
        .map(|variant| short_run(&path, variant))
        .collect::<Result<Vec<_>, _>>()?;
    let records = millions * 1_000_000;
    let mut loops = Vec::new();
    let mut ratios = vec![Vec::new(); variants.len()];
    let mut p99s = vec![Vec::new(); variants.len()];
    println!("{path}: each variant as a ratio to W × the single-thread loop of its round");
    for round in 1..=rounds {
        println!("round {round}:");
        for (i, (variant, profile)) in variants.iter().zip(&profiles).enumerate() {
            let (elapsed, _) = single_thread(records);
            let one = records as f64 / elapsed.as_secs_f64();
            loops.push(one);
            let report = checked(
                variant,
                run(profile, variant, &RunFiles::default(), &mut Quiet),
            )
            .map_err(|(error, _)| error)?;
            let ratio = report.throughput_rps / (report.workers as f64 * one);
            ratios[i].push(ratio);
            let p99 = report.seal_to_result_ns.p99 as f64 / 1e6;
            p99s[i].push(p99);
            println!(
                "  {variant:<36} {:>7.1} M/s  loop {:>6.1} M/s  {ratio:.2} × W × loop  \
                 seal-to-result p99 {p99:.2} ms  epochs {} by interval, {} by count",
                report.throughput_rps / 1e6,
                one / 1e6,
                report.epochs_by_reason.interval,
                report.epochs_by_reason.count,
            );
        }
    }
    println!(
        "\nmedian of {rounds} rounds (loop {:.1} M/s):",
        median(&mut loops.clone()) / 1e6
    );
    for ((variant, ratio), p99) in variants.iter().zip(&mut ratios).zip(&mut p99s) {
        let (low, high) = spread(ratio);
        println!(
            "  {variant:<36} {:.2} × W × loop (rounds {low:.2}–{high:.2})  \
             seal-to-result p99 median {:.2} ms",
            median(ratio),
            median(p99),
        );
    }
    Ok(())
}
