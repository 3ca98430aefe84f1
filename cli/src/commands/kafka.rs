//! `microbatch kafka lag`: how far a consumer group's committed epochs
//! are behind each partition's end (see [`KafkaLagArgs`]).
//!
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
    /// Show a consumer group's lag per partition: each partition's end,
    /// the offset after its last committed epoch, and (with `--url`) its
    /// committed epochs and the instance that holds it.
    Lag(KafkaLagArgs),
}

/// `microbatch kafka lag`.
#[derive(clap::Args)]
pub struct KafkaLagArgs {
    /// The bootstrap servers, `host:port[,host:port…]`.
    #[arg(long, default_value = DEFAULT_BROKERS)]
    pub brokers: String,
    /// The topic the group reads.
    #[arg(long)]
    pub topic: String,
    /// The group (`workload.group`): its offsets as committed to Kafka (by
    /// a Kafka output), unless `--url` says where else they are.
    #[arg(long)]
    pub group: String,
    /// The group's PostgreSQL database (`output.url`), which holds the
    /// offsets of a `postgres` output.
    #[arg(long)]
    pub url: Option<String>,
    /// The PostgreSQL results table (`output.table`).
    #[arg(long, default_value = "results")]
    pub table: String,
    /// One JSON object per partition instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One partition's lag.
#[derive(Debug, serde::Serialize)]
struct Lag {
    partition: i32,
    end: i64,
    committed: Option<i64>,
    lag: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    epochs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
}

impl KafkaLagArgs {
    /// The group's lag, as a table (or JSON lines) to print.
    pub fn lag(&self) -> anyhow::Result<String> {
        use anyhow::Context;
        let settings = KafkaSettings::new(self.brokers.clone());
        let marks = settings.watermarks(&self.topic)?;
        // (partition, committed offset, epochs, owner)
        type Stored = (i32, Option<i64>, Option<i64>, Option<String>);
        let stored: Vec<Stored> = match &self.url {
            Some(url) => microbatch::postgres::stored_partitions(url, &self.table, &self.topic)
                .with_context(|| format!("the group's offsets in table `{}`", self.table))?
                .into_iter()
                .map(|p| (p.partition, p.next_offset, Some(p.epochs), Some(p.owner)))
                .collect(),
            None => {
                let (_, positions) = microbatch::kafka::KafkaSink::<()>::resumption(
                    &settings,
                    &self.topic,
                    &self.group,
                )?;
                positions
                    .into_iter()
                    .map(|p| (p.partition, Some(p.next_offset), None, None))
                    .collect()
            }
        };
        let lags: Vec<Lag> = marks
            .iter()
            .map(|&(partition, low, end)| {
                let found = stored.iter().find(|s| s.0 == partition);
                let committed = found.and_then(|s| s.1);
                Lag {
                    partition,
                    end,
                    committed,
                    lag: end - committed.unwrap_or(low).max(low),
                    epochs: found.and_then(|s| s.2),
                    owner: found.and_then(|s| s.3.clone()).filter(|o| !o.is_empty()),
                }
            })
            .collect();
        if self.json {
            let lines: Vec<String> = lags
                .iter()
                .map(|lag| serde_json::to_string(lag).expect("a lag serializes"))
                .collect();
            return Ok(lines.join("\n"));
        }
        let mut out = format!(
            "group `{}` on topic `{}` at {}\n{:>9} {:>12} {:>12} {:>10} {:>7}  owner\n",
            self.group, self.topic, self.brokers, "partition", "end", "committed", "lag", "epochs"
        );
        for lag in &lags {
            let committed = lag.committed.map_or("none".to_owned(), |c| c.to_string());
            let epochs = lag.epochs.map_or("-".to_owned(), |e| e.to_string());
            out.push_str(&format!(
                "{:>9} {:>12} {:>12} {:>10} {:>7}  {}\n",
                lag.partition,
                lag.end,
                committed,
                lag.lag,
                epochs,
                lag.owner.as_deref().unwrap_or("-")
            ));
        }
        let total: i64 = lags.iter().map(|l| l.lag).sum();
        out.push_str(&format!("total lag: {total} records"));
        Ok(out)
    }
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
