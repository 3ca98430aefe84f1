//! `microbatch kafka produce`: loads a CSV or JSON-lines file of records
//! into a Kafka topic (creating it with `--partitions`), one message per
//! record, keyed by the record's key (the user, for clicks) so that a
//! key's records keep their order in one partition. Every line is checked
//! against `--schema` before the first message goes out: a bad line stops
//! the command with its number and nothing produced.

use std::path::{Path, PathBuf};

use microbatch::kafka::{create_topic, KafkaError, KafkaSettings, TopicWriter};
use microbatch::source::{Event, TimedEvent};

use crate::jobs::clickstream::Click;
use crate::profile::schema::DEFAULT_BROKERS;
use crate::text::{parse_line, Schema, TextFormat, TextRecord};

/// `microbatch kafka …`.
#[derive(clap::Subcommand)]
pub enum KafkaCommand {
    /// Load a CSV file (`key,value` lines, header optional; or the
    /// `--schema`'s columns) or a JSON-lines file into a topic, creating it
    /// with `--partitions` partitions.
    Produce(KafkaProduceArgs),
}

/// `microbatch kafka produce`.
#[derive(clap::Args)]
pub struct KafkaProduceArgs {
    /// The input: FILE.csv or FILE.jsonl; each record's line becomes a
    /// message's value, as it is written.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The bootstrap servers, `host:port[,host:port…]`.
    #[arg(long, default_value = DEFAULT_BROKERS)]
    pub brokers: String,
    /// The topic (created if missing; an existing one must have
    /// `--partitions` partitions).
    #[arg(long)]
    pub topic: String,
    /// The topic's partitions, at least 1.
    #[arg(long, default_value_t = 1,
          value_parser = clap::builder::RangedI64ValueParser::<i32>::new().range(1..=100_000))]
    pub partitions: i32,
    /// The records' type: `event` (`key,value`), `timed`
    /// (`key,value,event_time_ms`) or `clickstream`
    /// (`user,page,event_time_ms,dwell_ms,action`).
    #[arg(long, value_enum, default_value = "event")]
    pub schema: Schema,
}

/// Why `kafka produce` failed.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The input cannot be read, or a line is not a record.
    #[error("{path}: {message}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// Why, with the line.
        message: String,
    },
    /// The broker refused.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

impl KafkaProduceArgs {
    /// Produces the file's records; says what it did.
    pub fn produce(&self) -> Result<String, ProduceError> {
        match self.schema {
            Schema::Event => self.produce_as::<Event>(),
            Schema::Timed => self.produce_as::<TimedEvent>(),
            Schema::Clickstream => self.produce_as::<Click>(),
        }
    }

    fn produce_as<R: TextRecord>(&self) -> Result<String, ProduceError> {
        let lines = read_records::<R>(&self.from)?;
        if lines.is_empty() {
            return Err(ProduceError::Input {
                path: self.from.clone(),
                message: "no records in the input: nothing to produce".into(),
            });
        }
        let settings = KafkaSettings::new(self.brokers.clone());
        create_topic(&settings, &self.topic, self.partitions)?;
        let mut writer = TopicWriter::new(&settings, &self.topic)?;
        for (key, line) in &lines {
            writer.send(key.to_string().as_bytes(), line.as_bytes(), None)?;
        }
        let sent = writer.finish()?;
        Ok(format!(
            "produced {sent} records from {} to topic `{}` ({} partitions) at {}",
            self.from.display(),
            self.topic,
            self.partitions,
            self.brokers
        ))
    }
}

/// Every record line of `path` with its partition key, checked.
fn read_records<R: TextRecord>(path: &Path) -> Result<Vec<(u64, String)>, ProduceError> {
    let fail = |message: String| ProduceError::Input {
        path: path.to_owned(),
        message,
    };
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => TextFormat::Csv,
        Some("jsonl" | "ndjson") => TextFormat::Json,
        _ => {
            return Err(fail(format!(
                "unknown format; accepted: a .csv file (`{}` lines, header optional) or a .jsonl file ({} lines)",
                R::COLUMNS.join(","),
                R::JSON_SHAPE
            )))
        }
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = if index == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        match parse_line::<R>(format, line, index == 0) {
            Ok(Some(record)) => records.push((record.partition_key(), line.trim().to_owned())),
            Ok(None) => {}
            Err(reason) => return Err(fail(format!("line {}: {reason}", index + 1))),
        }
    }
    Ok(records)
}
