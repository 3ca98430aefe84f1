//! Same-run A/B of profile variants, interleaved so that the machine's
//! drift hits every variant alike:
//!
//! ```text
//! profile_ab [--in-memory <millions>] <profile> <rounds> <variant> <variant> ...
//! ```
//!
//! With `--in-memory`, that many million records of the first variant's
//! generator are drawn into memory before the first round, and every run
//! replays them until they are all read (no time limit; the first 200 ms
//! are a warm-up left out of the figures, `ab::IN_MEMORY_WARMUP`): the
//! producer threads then only copy records, so the runs measure the
//! engine rather than the generator.
//!
//! A variant is a comma-separated list of `--set` overrides (`-` for the
//! profile as it is), and may hold `busy-core=N`: a thread pinned to core
//! N spins for the whole run, so the worker pinned there gets about half
//! of its core (a slowed core, as a noisy neighbour makes one). Each round
//! runs every variant once, in turn; the table shows each variant's median
//! throughput and its ratio to the first variant's, and per round the
//! ratios, so their spread shows.
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::ab::{checked, events_in_memory, median, run_over, run_until_read};
use microbatch_bench::pin::pin_to_core;
use microbatch_cli::commands::run::run;
use microbatch_cli::driver::{Quiet, RunFiles};
use microbatch_cli::profile::Profile;
use microbatch_cli::report::rate;

/// One variant: its label, its profile and the core to keep busy.
struct Variant {
    name: String,
    profile: Profile,
    busy_core: Option<usize>,
}

/// A thread spinning on `core` until dropped.
struct BusyCore {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BusyCore {
    fn start(core: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                if !pin_to_core(core) {
                    eprintln!("warning: could not pin the busy thread to core {core}");
                }
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..1000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                }
            }
        });
        BusyCore {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BusyCore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> ExitCode {
    let mut args: Vec<String> = args.into_iter().skip(1).collect();
    let usage =
        "usage: profile_ab [--in-memory <millions>] <profile> <rounds> <variant> <variant> ... \
                 (a variant: key=value[,key=value...], or - for none)";
    let in_memory = if args.first().map(String::as_str) == Some("--in-memory") {
        match args.get(1).map(|m| m.parse::<usize>()) {
            Some(Ok(millions)) if millions > 0 => {
                args.drain(..2);
                Some(millions * 1_000_000)
            }
            _ => {
                eprintln!("error: --in-memory takes a positive count of million records");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let (Some(path), Some(Ok(rounds)), true) = (
        args.first(),
        args.get(1).map(|r| r.parse::<usize>()),
        args.len() >= 4,
    ) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let mut variants = Vec::new();
    for variant in &args[2..] {
        let mut overrides = Vec::new();
        let mut busy_core = None;
        for item in variant.split(',').filter(|o| *o != "-" && !o.is_empty()) {
            match item.strip_prefix("busy-core=") {
                Some(core) => match core.parse() {
                    Ok(core) => busy_core = Some(core),
                    Err(_) => {
                        eprintln!("error: busy-core takes a core number, not {core:?}");
                        return ExitCode::from(2);
                    }
                },
                None => overrides.push(item.to_owned()),
            }
        }
        match Profile::load(Path::new(path), &overrides) {
            Ok(mut profile) => {
                if in_memory.is_some() {
                    run_until_read(&mut profile);
                }
                variants.push(Variant {
                    name: variant.clone(),
                    profile,
                    busy_core,
                })
            }
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        }
    }
    let events = in_memory.map(|records| {
        let workload = &variants[0].profile.workload;
        println!(
            "{} M records of {path}'s generator drawn into memory first",
            records / 1_000_000
        );
        events_in_memory(workload.generator(), records)
    });
    let mut throughput = vec![Vec::new(); variants.len()];
    for round in 1..=rounds.max(1) {
        let mut line = format!("round {round}:");
        for (i, variant) in variants.iter().enumerate() {
            let name = &variant.name;
            let busy = variant.busy_core.map(BusyCore::start);
            let report = match &events {
                Some(events) => run_over(&variant.profile, name, events),
                None => checked(
                    name,
                    run(&variant.profile, name, &RunFiles::default(), &mut Quiet),
                ),
            };
            drop(busy);
            let report = match report {
                Ok(report) => report,
                Err((error, code)) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(code);
                }
            };
            throughput[i].push(report.throughput_rps);
            line += &format!(
                "  {name} {} (stolen {:.1}%, {}/{} batches combined, seal-to-result p50 {:.2} ms)",
                rate(report.throughput_rps),
                100.0 * report.records_stolen as f64 / report.records_measured.max(1) as f64,
                report.batches_combined,
                report.records_per_worker.len() as u64 * report.epochs_measured,
                report.seal_to_result_ns.p50 as f64 / 1e6
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
    for (variant, runs) in variants.iter().zip(&mut throughput) {
        let m = median(runs);
        println!(
            "  {:<40} {:>14}  {:.2}x the first",
            variant.name,
            rate(m),
            m / base
        );
    }
    ExitCode::SUCCESS
}
