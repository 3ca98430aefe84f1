//! The click-stream analysis over one fixed log of events, as one batch
//! and as micro-batches of 1 s, 100 ms and 10 ms: time to the first
//! result, record latency, throughput, CPU and peak memory, as the
//! Markdown table of `docs/batch-vs-microbatch.md`.
//!
//! ```sh
//! cargo run --release -p microbatch-measure -- batch_vs_microbatch [EVENTS] [RATE]
//! ```
//!
//! EVENTS (default 5 000 000) clicks are drawn once into a record log.
//! Each configuration then runs `profiles/clickstream.toml` over that log,
//! writing to SQLite, in a process of its own (so that its peak memory is
//! its own), twice: replayed at RATE events/s (default 1 000 000), as a
//! live stream would arrive (time to the first result, and record latency
//! from each event's due time to its epoch's commit in SQLite, and CPU
//! time), and at the maximum rate (throughput and CPU time). Peak memory is the larger of
//! the two runs' resident peaks (the log's mapped pages count in it). The
//! figures are one run each; the machine is shared, so read them as orders
//! of magnitude and ratios.

use std::path::{Path, PathBuf};
use std::process::Command;

use microbatch::log::{LogOptions, LogWriter};
use microbatch_cli::commands::run::run;
use microbatch_cli::driver::{Quiet, RunFiles};
use microbatch_cli::jobs::clickstream::{ClickConfig, ClickGenerator};
use microbatch_cli::profile::Profile;
use serde_json::Value;

/// The configurations compared: a name and the engine's triggers.
const MODES: [(&str, &str); 4] = [
    ("batch (one epoch)", "off"),
    ("micro-batch 1 s", "1s"),
    ("micro-batch 100 ms", "100ms"),
    ("micro-batch 10 ms", "10ms"),
];

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = args.into_iter().skip(1).collect();
    if args.first().map(String::as_str) == Some("--one") {
        return one(&args[1..]);
    }
    let events: u64 = args.first().map_or(Ok(5_000_000), |a| a.parse())?;
    let rate: u64 = args.get(1).map_or(Ok(1_000_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("clicks.log");
    eprintln!("drawing {events} clicks into {}", log.display());
    write_log(&log, events)?;

    println!(
        "| run | first result (at {0}/s) | latency p50 / p99 (at {0}/s) | CPU (at {0}/s) | throughput (max rate) | CPU (max rate) | peak memory |",
        human(rate)
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (index, (name, interval)) in MODES.iter().enumerate() {
        let paced = child(dir.path(), &log, interval, Some(rate), index * 2)?;
        let fast = child(dir.path(), &log, interval, None, index * 2 + 1)?;
        let number = |report: &Value, key: &str| report[key].as_f64().unwrap_or(f64::NAN);
        let latency = |percentile: &str| {
            paced["record_latency_ns"][percentile]
                .as_f64()
                .unwrap_or(f64::NAN)
                / 1e9
        };
        println!(
            "| {name} | {} | {} / {} | {:.2} s | {}/s | {:.2} s | {:.0} MiB |",
            seconds(number(&paced, "first_result_s")),
            seconds(latency("p50")),
            seconds(latency("p99")),
            number(&paced, "cpu_s"),
            human(number(&fast, "throughput_rps") as u64),
            number(&fast, "cpu_s"),
            number(&fast, "peak_memory_bytes").max(number(&paced, "peak_memory_bytes"))
                / (1 << 20) as f64,
        );
    }
    Ok(())
}

/// Draws `events` clicks (the profile's generator settings) into a log.
fn write_log(log: &Path, events: u64) -> Result<(), Box<dyn std::error::Error>> {
    let profile = Profile::load(Path::new("profiles/clickstream.toml"), &[])?;
    let config = ClickConfig {
        events: Some(events),
        rate: None,
        ..microbatch_cli::jobs::clickstream::click_config(&profile.workload)
    };
    let mut writer = LogWriter::create(log, LogOptions::default())?;
    for click in ClickGenerator::new(config).events()? {
        writer.append(click)?;
    }
    writer.finish()?;
    Ok(())
}

/// Runs one configuration in a child process; its report.
fn child(
    dir: &Path,
    log: &Path,
    interval: &str,
    rate: Option<u64>,
    index: usize,
) -> Result<Value, Box<dyn std::error::Error>> {
    let output = Command::new(std::env::current_exe()?)
        .arg("batch_vs_microbatch")
        .arg("--one")
        .arg(log)
        .arg(interval)
        .arg(rate.map_or("max".into(), |r| r.to_string()))
        .arg(dir.join(format!("results-{index}.db")))
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "the {interval} run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// In the child: runs the profile over `log` with `interval` at `rate`
/// into `database`, and prints the report as JSON.
fn one(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [log, interval, rate, database] = args else {
        return Err("--one LOG INTERVAL RATE DATABASE".into());
    };
    let overrides = [
        "workload.source=log".to_string(),
        format!("workload.path=\"{log}\""),
        format!("workload.rate={rate}"),
        format!("engine.interval={interval}"),
        "engine.max_batch_records=off".to_string(),
        format!("output.path=\"{database}\""),
        "run.duration=1h".to_string(),
    ];
    let profile = Profile::load(&PathBuf::from("profiles/clickstream.toml"), &overrides)?;
    let outcome = run(
        &profile,
        "clickstream.toml",
        &RunFiles::default(),
        &mut Quiet,
    )?;
    println!("{}", serde_json::to_string(&outcome.report)?);
    Ok(())
}

fn seconds(value: f64) -> String {
    if value < 1.0 {
        format!("{:.1} ms", value * 1e3)
    } else {
        format!("{value:.2} s")
    }
}

fn human(value: u64) -> String {
    match value {
        v if v >= 1_000_000 => format!("{:.1} M", v as f64 / 1e6),
        v if v >= 1_000 => format!("{:.0} K", v as f64 / 1e3),
        v => v.to_string(),
    }
}
