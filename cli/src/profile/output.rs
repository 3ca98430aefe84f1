//! The `[output]` section: where a job's (or a query's) rows go.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where rows go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Rows are dropped (measures the engine alone).
    #[default]
    None,
    /// One CSV file per epoch.
    Csv,
    /// One JSON-lines file per epoch.
    Jsonl,
    /// Rows into an SQLite table, one transaction per epoch.
    Sqlite,
    /// Rows as JSON objects into a Kafka topic (`topic` at `brokers`), one
    /// transaction per epoch with the source's offsets.
    Kafka,
    /// Rows into a PostgreSQL table (`table` at `url`) shared by the
    /// instances of one Kafka consumer group, one transaction per epoch
    /// with the partitions' offsets.
    Postgres,
}

/// The `[output]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSpec {
    /// `none` (default), `csv`, `jsonl` or `sqlite` (also accepted under
    /// the key `sink`).
    #[serde(alias = "sink")]
    pub kind: OutputKind,
    /// The directory of the epoch files (`csv`, `jsonl`; default
    /// `results/output`) or the database file (`sqlite`; default
    /// `results/output.db`).
    pub path: Option<PathBuf>,
    /// The SQLite or PostgreSQL table. Default `results`.
    pub table: String,
    /// A `kafka` output's bootstrap servers; default the source's.
    pub brokers: Option<String>,
    /// A `kafka` output's topic.
    pub topic: Option<String>,
    /// A `postgres` output's database: `postgresql://user@host:port/db`.
    pub url: Option<String>,
}

impl Default for OutputSpec {
    fn default() -> Self {
        OutputSpec {
            kind: OutputKind::None,
            path: None,
            table: "results".into(),
            brokers: None,
            topic: None,
            url: None,
        }
    }
}

impl OutputSpec {
    /// Where the output goes.
    pub fn path(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(|| match self.kind {
            OutputKind::Sqlite => PathBuf::from("results/output.db"),
            _ => PathBuf::from("results/output"),
        })
    }
}
