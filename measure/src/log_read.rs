//! The record log read two ways by the same keyed job (count and sum per
//! key), interleaved: records turned back into `Event` (`LogSource`) and
//! archived records lent in place from the map (`LogSource::archived`).
//!
//! ```sh
//! cargo run --release -p microbatch-measure -- log_read [ROUNDS] [LOG_DIR]
//! ```
//!
//! Without LOG_DIR, 30 M events over 100 000 keys are written to a
//! temporary log first. Prints each round and the medians.

use std::path::Path;
use std::time::Duration;

use crate::ab::median;
use microbatch::job::{self, count, sum};
use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
use microbatch::sink::DiscardSink;
use microbatch::source::{ArchivedEvent, Event, Generator, GeneratorConfig, Poll, SourceSpec};
use microbatch::Engine;

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = args.into_iter().skip(1).collect();
    let rounds: usize = args.first().map_or(Ok(5), |a| a.parse())?;
    let temporary = tempfile::tempdir()?;
    let log = match args.get(1) {
        Some(dir) => Path::new(dir).to_owned(),
        None => {
            let dir = temporary.path().join("events.log");
            write_log(&dir, 30_000_000)?;
            dir
        }
    };
    let (mut owned, mut lent) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let a = run_owned(&log)?;
        let b = run_lent(&log)?;
        println!(
            "round {round}: as Event {:.1} M/s, archived in place {:.1} M/s",
            a / 1e6,
            b / 1e6
        );
        owned.push(a);
        lent.push(b);
    }
    let (a, b) = (median(&mut owned), median(&mut lent));
    println!(
        "median: as Event {:.1} M/s, archived in place {:.1} M/s ({:.2}x)",
        a / 1e6,
        b / 1e6,
        b / a
    );
    Ok(())
}

fn write_log(dir: &Path, events: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut writer = LogWriter::<Event>::create(dir, LogOptions::default())?;
    let mut part = Generator::new(GeneratorConfig {
        records: Some(events),
        ..GeneratorConfig::default()
    })
    .split(1)?
    .remove(0);
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        match part.poll(0, &mut chunk, 4096) {
            Poll::Exhausted => break,
            _ => {
                for event in &chunk {
                    writer.append(*event)?;
                }
            }
        }
    }
    writer.finish()?;
    Ok(())
}

/// Records per second from start to the last result.
fn rate(records: u64, elapsed: Duration) -> f64 {
    records as f64 / elapsed.as_secs_f64()
}

fn run_owned(log: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    let job = job::records::<Event>()
        .key_by(|e| e.key)
        .aggregate((count(), sum(|e: &Event| e.value)));
    let engine = Engine::builder(job, DiscardSink)
        .source(LogSource::new(LogReader::<Event>::open(log)?, None))
        .start()?;
    let summary = engine.finish()?;
    Ok(rate(summary.records_in_results, summary.elapsed))
}

fn run_lent(log: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    let job = job::records::<ArchivedEvent>()
        .key_by(|e| e.key.to_native())
        .aggregate((count(), sum(|e: &ArchivedEvent| e.value.to_native())));
    let engine = Engine::builder(job, DiscardSink)
        .source(LogSource::new(LogReader::<Event>::open(log)?, None).archived())
        .start()?;
    let summary = engine.finish()?;
    Ok(rate(summary.records_in_results, summary.elapsed))
}
