//! The click-stream analysis through the library API: the same job, sink
//! and settings as `profiles/clickstream.toml`, so both give the same
//! tables.
//!
//! ```sh
//! # Draw EVENTS clicks (the profile's generator: 1 M Zipf users) into a CSV file.
//! cargo run --release -p microbatch-cli --example clickstream -- generate 12000000 clicks.csv
//! # The live analysis of the generator for SECONDS, into DATABASE.
//! cargo run --release -p microbatch-cli --example clickstream -- live clicks.db 60
//! # A click log (microbatch log write --schema clickstream) replayed at
//! # 200 000 events/s in 1 s epochs, exactly once across kills and restarts.
//! cargo run --release -p microbatch-cli --example clickstream -- replay clicks.log clicks.db clicks.checkpoint
//! ```

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use microbatch::checkpoint::Checkpoint;
use microbatch::job::Job;
use microbatch::log::{LogReader, LogSource};
use microbatch::progress::EpochProgress;
use microbatch::{Engine, Summary};
use microbatch_cli::jobs::clickstream::{
    clickstream_job, CaseRow, Click, ClickConfig, ClickGenerator, ClickstreamSink, CSV_HEADER,
    SESSION_GAP,
};
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Events per second, as in the profile.
const RATE: u64 = 200_000;
/// One micro-batch a second.
const INTERVAL: Duration = Duration::from_secs(1);

/// The profile's generator: 1 M users, Zipf 1.0, seed 7.
fn generator_config() -> ClickConfig {
    ClickConfig {
        users: 1_000_000,
        user_skew: 1.0,
        rate: Some(RATE),
        seed: 7,
        ..ClickConfig::default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["generate", events, file] => generate(events.parse()?, Path::new(file)),
        ["live", database, seconds] => live(Path::new(database), seconds.parse()?),
        ["replay", log, database, checkpoint] => {
            replay(Path::new(log), Path::new(database), Path::new(checkpoint))
        }
        _ => Err("usage: clickstream generate EVENTS FILE.csv | live DATABASE SECONDS | replay LOG DATABASE CHECKPOINT".into()),
    }
}

/// Writes `events` clicks of the generator to `file` as CSV.
fn generate(events: u64, file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let config = ClickConfig {
        events: Some(events),
        ..generator_config()
    };
    let mut out = BufWriter::new(std::fs::File::create(file)?);
    writeln!(out, "{}", CSV_HEADER.join(","))?;
    for click in ClickGenerator::new(config).events()? {
        writeln!(out, "{}", click.to_csv())?;
    }
    out.flush()?;
    println!("wrote {events} clicks to {}", file.display());
    Ok(())
}

/// One line per epoch.
fn report(progress: &EpochProgress) {
    println!(
        "epoch {:>4}: {:>7} clicks, {:>6} rows, result {:>6.1} ms after the seal, p99 latency {:.0} ms",
        progress.epoch,
        progress.records,
        progress.rows,
        progress.seal_to_result.as_secs_f64() * 1e3,
        progress.latency.p99_micros as f64 / 1e3,
    );
}

/// The profile's job: the epochs' statistics and each user's sessions
/// (30 minutes' gap; the clicks come in event-time order, so the
/// watermark needs no delay).
fn case() -> impl Job<Click, Row = CaseRow> {
    clickstream_job(SESSION_GAP, Duration::ZERO)
}

/// The generator, live, for `seconds`.
fn live(database: &Path, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::builder(case(), ClickstreamSink::open(database)?)
        .interval(Some(INTERVAL))
        .source(ClickGenerator::new(generator_config()))
        .on_progress(report)
        .start()?;
    std::thread::sleep(Duration::from_secs(seconds));
    done(&engine.shutdown()?, database);
    Ok(())
}

/// A click log at the live pace, in epochs of one second's clicks, under a
/// checkpoint: killed and started again, it resumes after its last
/// committed epoch and writes each epoch once.
fn replay(
    log: &Path,
    database: &Path,
    checkpoint: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let checkpoint = Checkpoint::open(checkpoint, RATE * INTERVAL.as_secs())?;
    if let Some(last) = checkpoint.last_committed() {
        println!("resuming after epoch {last}");
    }
    let engine = Engine::builder(case(), ClickstreamSink::open(database)?)
        .interval(None)
        .source(LogSource::new(LogReader::open(log)?, Some(RATE)))
        .checkpoint(checkpoint)
        .on_progress(report)
        .start()?;
    done(&engine.finish()?, database);
    Ok(())
}

/// The last line: what went where.
fn done(summary: &Summary, database: &Path) {
    println!(
        "{} clicks in {} epochs into {}",
        summary.records_in_results,
        summary.epochs,
        database.display()
    );
}
