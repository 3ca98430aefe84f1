//! `microbatch nexmark generate`: Nexmark's events into a record log, so
//! that a run measures the engine and not the generator, and with `--csv`
//! the bids as text, for checking a query's rows against a reference.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use microbatch::log::{LogError, LogOptions, LogWriter};
use microbatch::ConfigError;

use super::import::nothing_kept_on_error;
use crate::jobs::nexmark::{NexEvent, NexmarkGenerator, NexmarkSettings, BID_CSV_HEADER};

/// `microbatch nexmark …`.
#[derive(clap::Subcommand)]
pub enum NexmarkCommand {
    /// Write Nexmark events (persons, auctions, bids: the `nexmark`
    /// crate's generator) into a record log in a new directory, for
    /// `workload.source = "log"` with `job.kind = "nexmark"`.
    Generate(GenerateArgs),
}

/// `microbatch nexmark generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Events in all (46 in 50 are bids).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,
    /// The log's directory (created; it must hold no log).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Also write the bids to FILE as CSV (`auction,bidder,price,date_time`).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Event time advances as if the events came at N per second (the
    /// Flink Nexmark suite's 10 000 000 by default).
    #[arg(long, value_name = "N", default_value_t = crate::jobs::nexmark::NOMINAL_RATE,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: u64,
    /// Records per block, at least 1.
    #[arg(long, value_name = "N", default_value_t = 4096,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=u64::from(u32::MAX)))]
    pub block_records: usize,
}

impl GenerateArgs {
    /// Writes the log (and the CSV file) these arguments ask for.
    pub fn generate(&self) -> Result<GenerateSummary, GenerateError> {
        let settings = NexmarkSettings {
            rate: self.rate,
            events: Some(self.events),
            ..NexmarkSettings::default()
        };
        let options = LogOptions {
            block_records: self.block_records,
            ..LogOptions::default()
        };
        generate(settings, &self.to, self.csv.as_deref(), options)
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenerateSummary {
    /// Events in the log.
    pub events: u64,
    /// Of which bids (and lines of the CSV file, after its header).
    pub bids: u64,
    /// The first and the last event's time, ms since the Unix epoch.
    pub first_ms: u64,
    /// See `first_ms`.
    pub last_ms: u64,
    /// The log's blocks.
    pub blocks: u64,
}

/// Why the events could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A setting is out of range.
    #[error(transparent)]
    Setting(#[from] ConfigError),
    /// The log cannot be written.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The CSV file cannot be written.
    #[error("{path}: cannot write: {message}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Writes the events of `settings` (bounded) into a new log in `to`, and
/// the bids into `csv` if given. On failure nothing of the log is kept
/// (and a log without its manifest would be refused anyway).
pub fn generate(
    settings: NexmarkSettings,
    to: &Path,
    csv: Option<&Path>,
    options: LogOptions,
) -> Result<GenerateSummary, GenerateError> {
    nothing_kept_on_error(to, || generate_into(settings, to, csv, options))
}

fn generate_into(
    settings: NexmarkSettings,
    to: &Path,
    csv: Option<&Path>,
    options: LogOptions,
) -> Result<GenerateSummary, GenerateError> {
    let csv_error = |path: &Path| {
        let path = path.to_owned();
        move |error: std::io::Error| GenerateError::Csv {
            path,
            message: error.to_string(),
        }
    };
    let mut text = match csv {
        Some(path) => {
            let mut file = BufWriter::new(File::create(path).map_err(csv_error(path))?);
            writeln!(file, "{BID_CSV_HEADER}").map_err(csv_error(path))?;
            Some((path, file))
        }
        None => None,
    };
    let mut writer = LogWriter::<NexEvent>::create(to, options)?;
    let mut summary = GenerateSummary::default();
    let mut failed: Option<GenerateError> = None;
    NexmarkGenerator::new(settings).for_each(|events| {
        for event in events {
            if failed.is_some() {
                return;
            }
            if summary.events == 0 {
                summary.first_ms = event.date_time();
            }
            summary.last_ms = event.date_time();
            summary.events += 1;
            if let Err(error) = writer.append(*event) {
                failed = Some(error.into());
                return;
            }
            let Some(bid) = event.bid() else {
                continue;
            };
            summary.bids += 1;
            if let Some((path, file)) = text.as_mut() {
                if let Err(error) = writeln!(file, "{}", bid.csv_line()) {
                    failed = Some(csv_error(path)(error));
                }
            }
        }
    })?;
    if let Some(error) = failed {
        return Err(error);
    }
    if let Some((path, mut file)) = text {
        file.flush().map_err(csv_error(path))?;
        file.get_ref().sync_all().map_err(csv_error(path))?;
    }
    summary.blocks = writer.finish()?.blocks;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use microbatch::log::LogReader;

    use super::*;
    use crate::jobs::nexmark::Bid;

    #[test]
    fn the_log_holds_every_event_and_the_csv_every_bid() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let csv = dir.path().join("bids.csv");
        let settings = NexmarkSettings {
            events: Some(5_000),
            ..NexmarkSettings::default()
        };
        let summary = generate(settings.clone(), &log, Some(&csv), LogOptions::default()).unwrap();
        assert_eq!((summary.events, summary.bids), (5_000, 4_600));
        let reader = LogReader::<NexEvent>::open(&log).unwrap();
        let mut events = Vec::new();
        for block in 0..reader.blocks() {
            reader.read(block, 0, usize::MAX, &mut events);
        }
        let mut expected = Vec::new();
        NexmarkGenerator::new(settings)
            .for_each(|e| expected.extend_from_slice(e))
            .unwrap();
        assert_eq!(events, expected);
        let text = std::fs::read_to_string(&csv).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(BID_CSV_HEADER));
        let bids: Vec<Bid> = lines.map(|l| Bid::from_csv_line(l).unwrap()).collect();
        let log_bids: Vec<Bid> = events.iter().filter_map(|e| e.bid().copied()).collect();
        assert_eq!(bids, log_bids);
    }

    #[test]
    fn an_unbounded_stream_is_refused_and_leaves_no_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let error = generate(
            NexmarkSettings::default(),
            &log,
            None,
            LogOptions::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("events"), "{error}");
        assert!(!log.exists());
    }
}
