//! Several queries on one engine, through the CLI's own `run`, each
//! variant once per round so that the machine's drift hits all alike:
//!
//! ```text
//! queries [--profile PATH] [--rounds N] [--variants 'SET,SET|SET|…']
//! ```
//!
//! - **Scheduling** (default profile `profiles/two-queries.toml`): the
//!   first query's seal-to-result p99 under `scheduler.policy =
//!   "priority"`, under `"fifo"`, and with that query alone (the others
//!   dropped), and the ratios of the priority run's to the other two.
//!   Runs keep the profile's warm-up, which covers the first epochs of a
//!   slow query while its tables grow to their size. With `--variants`,
//!   `"priority"` runs once per variant (`|`-separated lists of
//!   comma-separated `--set` overrides, e.g. `scheduler.piece=2048`) in
//!   each round, each against the same `"fifo"` and alone runs, and the
//!   hot-path rounds are left out.
//! - **Hot-path cost** (`profiles/default.toml`, at the maximum rate): the
//!   main job as `[job]`, the same job as the one query of `[[queries]]`,
//!   and with a second query beside it (a per-key count over 1 000 key
//!   buckets); throughput and its ratio to the `[job]` run's.
use std::path::Path;

use crate::ab::{checked, median, spread, RunOptions};
use microbatch_cli::commands::run::run;
use microbatch_cli::driver::{Quiet, RunFiles};
use microbatch_cli::profile::{JobSpec, OutputSpec, Profile, QueryProfile, Reduction};
use microbatch_cli::report::RunReport;

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let mut options = RunOptions::from_args(args)?;
    if options.path == "profiles/default.toml" {
        options.path = "profiles/two-queries.toml".to_owned();
    }
    let variants: Vec<String> = match options.rest.as_slice() {
        [] => Vec::new(),
        [flag, list] if flag == "--variants" => list.split('|').map(str::to_owned).collect(),
        other => return Err(format!("unexpected arguments {other:?}").into()),
    };
    scheduling(&options.path, options.rounds, &variants)?;
    if variants.is_empty() {
        hot_path(options.rounds)?;
    }
    Ok(())
}

fn load(path: &str, overrides: &[&str]) -> Result<Profile, String> {
    let overrides: Vec<String> = overrides.iter().map(|o| (*o).to_owned()).collect();
    Profile::load(Path::new(path), &overrides).map_err(|error| error.to_string())
}

fn one_run(name: &str, profile: &Profile) -> Result<RunReport, Box<dyn std::error::Error>> {
    checked(name, run(profile, name, &RunFiles::default(), &mut Quiet))
        .map_err(|(error, _)| error.into())
}

fn scheduling(path: &str, rounds: usize, own: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let duration = ["run.duration=6s"];
    let priority = load(path, &[duration[0], "scheduler.policy=priority"])?;
    if priority.queries.len() < 2 {
        return Err(format!("{path}: needs two or more [[queries]]").into());
    }
    let fifo = load(path, &[duration[0], "scheduler.policy=fifo"])?;
    let mut alone = priority.clone();
    alone.queries.truncate(1);
    let first = priority.queries[0].name.clone();
    let mut variants = vec![
        ("priority".to_owned(), priority.clone()),
        ("fifo".to_owned(), fifo),
        ("alone".to_owned(), alone),
    ];
    if !own.is_empty() {
        variants.remove(0);
        for (i, sets) in own.iter().enumerate() {
            let mut overrides = vec![duration[0], "scheduler.policy=priority"];
            overrides.extend(sets.split(',').filter(|set| !set.is_empty()));
            variants.insert(i, (format!("priority {sets}"), load(path, &overrides)?));
        }
    }
    let (fifo_at, alone_at) = (variants.len() - 2, variants.len() - 1);
    println!("{path}: query {first:?}'s seal-to-result p99, each variant once per round");
    let mut p99s = vec![Vec::new(); variants.len()];
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, (name, profile)) in variants.iter().enumerate() {
            let report = one_run(name, profile)?;
            let name = name.as_str();
            let queries = report.queries.unwrap_or_default();
            let p99 = queries[0].seal_to_result_ns.p99 as f64 / 1e6;
            line += &format!("  {name} {p99:.2} ms");
            for other in &queries[1..] {
                line += &format!(" ({} {} rows)", other.name, other.records_out);
            }
            p99s[i].push(p99);
        }
        println!("{line}");
    }
    let ratio = |of: usize, to: usize| -> (f64, f64, f64) {
        let mut ratios: Vec<f64> = (0..rounds).map(|r| p99s[of][r] / p99s[to][r]).collect();
        let (low, high) = spread(&ratios);
        (median(&mut ratios), low, high)
    };
    for (i, (name, _)) in variants.iter().enumerate() {
        let mut values = p99s[i].clone();
        println!("  {name:<14} p99 {:>8.2} ms (median)", median(&mut values));
    }
    for (i, (name, _)) in variants[..fifo_at].iter().enumerate() {
        let (fifo, low, high) = ratio(i, fifo_at);
        println!("  {name} / fifo  {fifo:.3} ({low:.3}-{high:.3})");
        let (alone, low, high) = ratio(i, alone_at);
        println!("  {name} / alone {alone:.2} ({low:.2}-{high:.2})");
    }
    Ok(())
}

fn hot_path(rounds: usize) -> Result<(), Box<dyn std::error::Error>> {
    let path = "profiles/default.toml";
    let job = load(path, &["run.warmup=1s", "run.duration=4s"])?;
    let query = |name: &str, spec: JobSpec, key_buckets| QueryProfile {
        name: name.into(),
        job: spec,
        interval: None,
        max_batch_records: None,
        priority: 0,
        key_buckets,
        output: OutputSpec::default(),
    };
    let mut one = job.clone();
    one.queries = vec![query("main", job.job.clone(), None)];
    let mut two = one.clone();
    let counts = JobSpec {
        reductions: vec![Reduction::Count],
        ..JobSpec::default()
    };
    two.queries.push(query("buckets", counts, Some(1000)));
    let variants = [("[job]", job), ("one query", one), ("two queries", two)];
    println!("\n{path}: throughput, each variant once per round");
    let mut rates = vec![Vec::new(); variants.len()];
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, (name, profile)) in variants.iter().enumerate() {
            let report = one_run(name, profile)?;
            let rate = report.throughput_rps / 1e6;
            line += &format!("  {name} {rate:.1} M/s");
            rates[i].push(rate);
        }
        println!("{line}");
    }
    for (i, (name, _)) in variants.iter().enumerate() {
        let mut ratios: Vec<f64> = (0..rounds).map(|r| rates[i][r] / rates[0][r]).collect();
        let (low, high) = spread(&ratios);
        let mut values = rates[i].clone();
        println!(
            "  {name:<12} {:>7.1} M/s  {:.2}x [job] ({low:.2}-{high:.2})",
            median(&mut values),
            median(&mut ratios)
        );
    }
    Ok(())
}
