//! How a line of text becomes a record: the CLI's record types
//! ([`Schema`]) read from CSV fields or a JSON object ([`TextFormat`]), for
//! `log write`'s lines and the values of Kafka messages, and what to do
//! with a line that is not one ([`BadLines`]).

use microbatch::log::LogRecord;
use microbatch::source::{Event, TimedEvent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::jobs::clickstream::{Click, CSV_HEADER};

/// The record types the CLI reads from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schema {
    /// `key,value`: two unsigned integers (the CLI's generic record).
    #[default]
    Event,
    /// `key,value,event_time_ms`: the generic record with an event time
    /// (ms since the Unix epoch), for windowed jobs.
    Timed,
    /// `user,page,event_time_ms,dwell_ms,action`: the click stream.
    Clickstream,
}

impl Schema {
    /// Its name in profiles and flags.
    pub fn name(self) -> &'static str {
        match self {
            Schema::Event => "event",
            Schema::Timed => "timed",
            Schema::Clickstream => "clickstream",
        }
    }
}

/// What to do with a line (or a message) that is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadLines {
    /// Stop, naming the line (or the message's partition and offset).
    #[default]
    Stop,
    /// Set it aside (`rejects.txt` of an import; a run's dead-letter
    /// file) and go on.
    Skip,
}

/// How a record is written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextFormat {
    /// Comma-separated fields in the schema's column order.
    #[default]
    Csv,
    /// A JSON object with the schema's field names.
    Json,
}

/// The most CSV fields a line may have (the click stream has five).
const MAX_FIELDS: usize = 8;

/// Parses one line of `format`; `Ok(None)` for a line to pass over (blank,
/// or, when `first`, the CSV header). Allocates nothing for a CSV line.
pub fn parse_line<R: TextRecord>(
    format: TextFormat,
    line: &str,
    first: bool,
) -> Result<Option<R>, String> {
    let text = line.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match format {
        TextFormat::Csv => {
            let mut fields = [""; MAX_FIELDS];
            let mut count = 0;
            for field in text.split(',') {
                if count == MAX_FIELDS {
                    return Err(format!(
                        "more than {MAX_FIELDS} fields; expected {} ({})",
                        R::COLUMNS.len(),
                        R::COLUMNS.join(",")
                    ));
                }
                fields[count] = field.trim();
                count += 1;
            }
            let fields = &fields[..count];
            if first && fields == R::COLUMNS {
                return Ok(None);
            }
            R::from_fields(fields).map(Some)
        }
        TextFormat::Json => serde_json::from_str::<R>(text)
            .map(Some)
            .map_err(|error| format!("not a {} object: {error}", R::JSON_SHAPE)),
    }
}

/// One record from a message's value, as [`parse_line`] reads a line; a
/// blank value or a CSV header is not a record. Hot path of a Kafka
/// source: nothing allocated for CSV.
pub fn decode<R: TextRecord>(format: TextFormat, value: &[u8]) -> Result<R, String> {
    let text = std::str::from_utf8(value).map_err(|_| "the value is not UTF-8 text".to_owned())?;
    match parse_line::<R>(format, text, true)? {
        Some(record) => Ok(record),
        None if text.trim().is_empty() => Err("the value is empty".into()),
        None => Err(format!(
            "the value is the CSV header `{}`, not a record",
            text.trim()
        )),
    }
}

/// A record type that can be read from text: a log import's lines, a
/// Kafka message's value.
pub trait TextRecord: LogRecord + DeserializeOwned {
    /// The CSV columns, in order (a first line equal to them is a header).
    const COLUMNS: &'static [&'static str];
    /// What a JSON line looks like, for error messages.
    const JSON_SHAPE: &'static str;
    /// One CSV line's fields, trimmed.
    fn from_fields(fields: &[&str]) -> Result<Self, String>;
    /// What keeps the record's order with its kind (the key, the user):
    /// records with the same one go to the same Kafka partition.
    fn partition_key(&self) -> u64;
    /// The record's event time, if it has one (ms).
    const EVENT_TIME: Option<fn(&Self) -> u64>;
}

impl TextRecord for Event {
    const COLUMNS: &'static [&'static str] = &["key", "value"];
    const JSON_SHAPE: &'static str = "{\"key\":…,\"value\":…}";

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        if fields.len() != 2 {
            return Err(format!("{} fields; expected 2 (key,value)", fields.len()));
        }
        let number = |name: &str, field: &str| {
            field
                .parse::<u64>()
                .map_err(|_| format!("{name} `{field}` is not an unsigned 64-bit integer"))
        };
        Ok(Event {
            key: number("key", fields[0])?,
            value: number("value", fields[1])?,
        })
    }

    fn partition_key(&self) -> u64 {
        self.key
    }

    const EVENT_TIME: Option<fn(&Self) -> u64> = None;
}

impl TextRecord for TimedEvent {
    const COLUMNS: &'static [&'static str] = &["key", "value", "event_time_ms"];
    const JSON_SHAPE: &'static str = "{\"key\":…,\"value\":…,\"event_time_ms\":…}";

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        if fields.len() != 3 {
            return Err(format!(
                "{} fields; expected 3 (key,value,event_time_ms)",
                fields.len()
            ));
        }
        let number = |name: &str, field: &str| {
            field
                .parse::<u64>()
                .map_err(|_| format!("{name} `{field}` is not an unsigned 64-bit integer"))
        };
        Ok(TimedEvent {
            key: number("key", fields[0])?,
            value: number("value", fields[1])?,
            event_time_ms: number("event_time_ms", fields[2])?,
        })
    }

    fn partition_key(&self) -> u64 {
        self.key
    }

    const EVENT_TIME: Option<fn(&Self) -> u64> = Some(|event| event.event_time_ms);
}

impl TextRecord for Click {
    const COLUMNS: &'static [&'static str] = &CSV_HEADER;
    const JSON_SHAPE: &'static str =
        "{\"user\":…,\"page\":…,\"event_time_ms\":…,\"dwell_ms\":…,\"action\":\"view\"}";

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        Click::from_csv_fields(fields)
    }

    fn partition_key(&self) -> u64 {
        self.user
    }

    const EVENT_TIME: Option<fn(&Self) -> u64> = Some(|click| click.event_time_ms);
}
