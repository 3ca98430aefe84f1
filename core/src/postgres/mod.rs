//! PostgreSQL (the `postgres` feature): the shared, transactional sink of
//! instances that read one topic as a Kafka consumer group
//! ([`GroupSource`](crate::kafka::GroupSource)).
//!
//! Two tables, in the database the instances share:
//! - the results table: `partition`, `epoch`, `key`, then the job's
//!   columns, keyed by `(partition, epoch, key)`. A row belongs to one
//!   Kafka partition, and `epoch` counts that partition's commits: epoch
//!   `e` of partition `p` holds the records of `p` between the offsets its
//!   epochs `e - 1` and `e` ended at, whichever instance read them.
//! - [`PARTITIONS_TABLE`]: per results table, topic and partition, the
//!   offset after its last committed epoch, its next epoch, and its
//!   claim: the owner (a worker of an instance) and generation.
//!
//! Each epoch of an instance commits in one transaction: for each
//! partition it read, the partition's row moves on to the epoch's end
//! offset **only if the generation the records were read under is still
//! the partition's** (`UPDATE … WHERE generation = $g`), and only those
//! partitions' rows are copied in. A claim ([`Claims::claim`](crate::kafka::Claims::claim)) raises the
//! generation under a row lock, so it is ordered with every commit: an
//! epoch the old owner commits before the claim is the new owner's
//! starting point; one it tries after is refused, and its rows of that
//! partition dropped (the new owner reads them). Nothing is lost or
//! counted twice across rebalances, crashes and instances cut off from the
//! group.

mod claims;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use postgres::{Client, NoTls};

pub use claims::{stored_partitions, PostgresClaims, StoredPartition};

use crate::kafka::{generation_tag, split_key, GroupPositions, GroupReport};
use crate::progress::EpochProgress;
use crate::sink::{valid_name, Gathering, Sink, SinkError};
use crate::sync::cold::{lock, Mutex};

/// The table of partitions' claims and committed offsets.
pub const PARTITIONS_TABLE: &str = "microbatch_partitions";

/// The SQL type of a results column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `BIGINT` (unsigned values above `i64::MAX` are refused, not
    /// wrapped).
    BigInt,
    /// `DOUBLE PRECISION`.
    Double,
    /// `TEXT`.
    Text,
}

/// One of the job's columns, after `partition`, `epoch` and `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name: letters, digits and `_`, not starting with a digit.
    pub name: String,
    /// Its type.
    pub sql_type: ColumnType,
}

impl Column {
    /// A column.
    pub fn new(name: impl Into<String>, sql_type: ColumnType) -> Self {
        Column {
            name: name.into(),
            sql_type,
        }
    }
}

/// A column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A [`ColumnType::BigInt`].
    BigInt(i64),
    /// A [`ColumnType::Double`].
    Double(f64),
    /// A [`ColumnType::Text`].
    Text(String),
    /// SQL `NULL`.
    Null,
}

/// Turns a row into its columns' values (in the columns' order) and
/// returns its tagged key ([`tagged_key`](crate::kafka::tagged_key)), from
/// which the sink takes its partition and key.
pub type ToValues<Row> = fn(&Row, &mut Vec<Value>) -> Result<u64, String>;

pub(crate) fn pg_error(action: &str, error: postgres::Error) -> SinkError {
    let detail = match error.as_db_error() {
        Some(db) => db.message().to_owned(),
        // The client's message names the kind of failure; its cause (the
        // refused connection, the unknown host) is the source's.
        None => match std::error::Error::source(&error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    };
    SinkError::Custom(format!("PostgreSQL: cannot {action}: {detail}"))
}

/// Connects to `url` (`postgresql://user@host:port/database`, or
/// `host=… port=… user=…`) with no TLS.
pub(crate) fn connect(url: &str) -> Result<Client, SinkError> {
    Client::connect(url, NoTls).map_err(|e| pg_error("connect", e))
}

/// Each epoch's rows of a group's instance, with its partitions' offsets,
/// in one transaction fenced by the partitions' claims.
///
/// ```no_run
/// use microbatch::kafka::{split_key, GroupPositions, GroupReport};
/// use microbatch::postgres::{Column, ColumnType, PostgresSink, Value};
///
/// // Rows of a keyed count: (tagged key, count).
/// let sink = PostgresSink::<(u64, u64)>::open(
///     "postgresql://microbatch@127.0.0.1:5432/results",
///     "counts",
///     "clicks",
///     vec![Column::new("count", ColumnType::BigInt)],
///     |row, values| {
///         values.push(Value::BigInt(i64::try_from(row.1).map_err(|e| e.to_string())?));
///         Ok(row.0)
///     },
///     GroupPositions::new(),
///     GroupReport::new(),
/// )?;
/// # Ok::<(), microbatch::sink::SinkError>(())
/// ```
pub struct PostgresSink<Row> {
    client: Mutex<Client>,
    url: String,
    table: String,
    topic: String,
    copy: String,
    to_values: ToValues<Row>,
    pending: Gathering<Row>,
    positions: GroupPositions,
    report: GroupReport,
    /// `(partition, end)`: the run stops once every one is committed to its
    /// end.
    stop_at: Option<Vec<(i32, i64)>>,
}

impl<Row: Send + 'static> PostgresSink<Row> {
    /// Connects to `url` and creates (if missing) the [`PARTITIONS_TABLE`]
    /// and the results table `table` (`partition`, `epoch`, `key`, then
    /// `columns`) of the group reading `topic`; each epoch commits what
    /// `positions` says the instance read.
    pub fn open(
        url: &str,
        table: &str,
        topic: &str,
        columns: Vec<Column>,
        to_values: ToValues<Row>,
        positions: GroupPositions,
        report: GroupReport,
    ) -> Result<Self, SinkError> {
        for name in std::iter::once(table).chain(columns.iter().map(|c| c.name.as_str())) {
            let taken = ["partition", "epoch", "key"].contains(&name) && name != table;
            if !valid_name(name) || taken {
                return Err(SinkError::Custom(format!(
                    "PostgreSQL: `{name}` cannot name a table or column; accepted: letters, digits \
                     and _, not starting with a digit, and not `partition`, `epoch` or `key` for a \
                     column"
                )));
            }
        }
        let mut client = connect(url)?;
        let mut definition = vec![
            "\"partition\" INTEGER NOT NULL".to_owned(),
            "epoch BIGINT NOT NULL".to_owned(),
            "key BIGINT NOT NULL".to_owned(),
        ];
        for column in &columns {
            let sql_type = match column.sql_type {
                ColumnType::BigInt => "BIGINT",
                ColumnType::Double => "DOUBLE PRECISION",
                ColumnType::Text => "TEXT",
            };
            definition.push(format!("{} {sql_type}", column.name));
        }
        definition.push("PRIMARY KEY (\"partition\", epoch, key)".into());
        // Instances start together: the advisory lock keeps their `CREATE
        // TABLE IF NOT EXISTS` from racing (PostgreSQL's are not atomic).
        let ddl = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock(7300435);
             CREATE TABLE IF NOT EXISTS {PARTITIONS_TABLE} (
                 table_name TEXT NOT NULL, topic TEXT NOT NULL, \"partition\" INTEGER NOT NULL,
                 next_offset BIGINT, epoch BIGINT NOT NULL, generation BIGINT NOT NULL,
                 owner TEXT NOT NULL, PRIMARY KEY (table_name, topic, \"partition\"));
             CREATE TABLE IF NOT EXISTS {table} ({});
             COMMIT;",
            definition.join(", ")
        );
        client
            .batch_execute(&ddl)
            .map_err(|e| pg_error("create the tables", e))?;
        let names: Vec<&str> = ["\"partition\"", "epoch", "key"]
            .into_iter()
            .chain(columns.iter().map(|c| c.name.as_str()))
            .collect();
        Ok(PostgresSink {
            client: Mutex::new(client),
            url: url.to_owned(),
            table: table.to_owned(),
            topic: topic.to_owned(),
            copy: format!("COPY {table} ({}) FROM STDIN", names.join(", ")),
            to_values,
            pending: Gathering::new(),
            positions,
            report,
            stop_at: None,
        })
    }

    /// Stops the instance (through its [`GroupReport`]) once every one of
    /// `marks`' partitions (`(partition, low, end)`) is committed up to its
    /// end, by whichever instance: a group's `stop_at_end`.
    pub fn stopping_at(mut self, marks: &[(i32, i64, i64)]) -> Self {
        self.stop_at = Some(
            marks
                .iter()
                .filter(|m| m.2 > m.1)
                .map(|m| (m.0, m.2))
                .collect(),
        );
        self
    }

    /// The claims of this sink's partitions, on a connection of their own
    /// (claims are made on the workers' threads, commits on the
    /// committer's).
    pub fn claims(&self) -> Result<PostgresClaims, SinkError> {
        PostgresClaims::connect(&self.url, &self.table)
    }

    /// Checks whether every partition the run stops at is committed to its
    /// end, and if so tells the workers to stop.
    fn check_stop(&self, client: &mut Client) -> Result<(), SinkError> {
        let Some(stop_at) = &self.stop_at else {
            return Ok(());
        };
        let rows = client
            .query(
                &format!(
                    "SELECT \"partition\", next_offset FROM {PARTITIONS_TABLE} \
                     WHERE table_name = $1 AND topic = $2"
                ),
                &[&self.table, &self.topic],
            )
            .map_err(|e| pg_error("read the partitions' offsets", e))?;
        let stored: BTreeMap<i32, Option<i64>> =
            rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        let done = stop_at.iter().all(|(partition, end)| {
            stored
                .get(partition)
                .copied()
                .flatten()
                .is_some_and(|next| next >= *end)
        });
        if done {
            self.report.stop();
        }
        Ok(())
    }
}

/// One row of the COPY text format.
fn copy_line(line: &mut String, partition: i32, epoch: i64, key: u64, values: &[Value]) {
    let _ = write!(line, "{partition}\t{epoch}\t{key}");
    for value in values {
        line.push('\t');
        match value {
            Value::BigInt(v) => {
                let _ = write!(line, "{v}");
            }
            Value::Double(v) => {
                let _ = write!(line, "{v:?}");
            }
            Value::Text(text) => {
                for c in text.chars() {
                    match c {
                        '\\' => line.push_str("\\\\"),
                        '\t' => line.push_str("\\t"),
                        '\n' => line.push_str("\\n"),
                        '\r' => line.push_str("\\r"),
                        c => line.push(c),
                    }
                }
            }
            Value::Null => line.push_str("\\N"),
        }
    }
    line.push('\n');
}

impl<Row: Send + 'static> Sink<Row> for PostgresSink<Row> {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        self.pending.add(epoch, rows);
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        let rows = self.pending.take(epoch);
        let held = self.positions.take(epoch);
        let mut client = lock(&self.client);
        if held.is_empty() {
            if !rows.is_empty() {
                return Err(SinkError::Custom(format!(
                    "PostgreSQL: epoch {epoch} has {} rows but no partition positions: the \
                     source does not record what it read",
                    rows.len()
                )));
            }
            return self.check_stop(&mut client);
        }
        let mut transaction = client
            .transaction()
            .map_err(|e| pg_error("begin a transaction", e))?;
        // (partition, generation tag) → (generation, the partition's epoch
        // committed now, or None if the claim moved on).
        let mut committed: BTreeMap<(i32, u64), (u64, Option<i64>)> = BTreeMap::new();
        let update = format!(
            "UPDATE {PARTITIONS_TABLE} SET next_offset = $5, epoch = epoch + 1 \
             WHERE table_name = $1 AND topic = $2 AND \"partition\" = $3 AND generation = $4 \
             RETURNING epoch - 1"
        );
        for position in &held {
            let tag = generation_tag(position.generation);
            let generation = i64::try_from(position.generation).unwrap_or(i64::MAX);
            let row = transaction
                .query_opt(
                    &update,
                    &[
                        &self.table,
                        &self.topic,
                        &position.partition,
                        &generation,
                        &position.next_offset,
                    ],
                )
                .map_err(|e| pg_error("move a partition's offset on", e))?;
            let partition_epoch = row.map(|row| row.get::<_, i64>(0));
            if partition_epoch.is_none() {
                self.report.fenced();
                tracing::warn!(
                    target: "microbatch",
                    partition = position.partition,
                    generation = position.generation,
                    "another worker claimed the partition: this epoch's rows of it are dropped"
                );
            }
            let earlier = committed.insert(
                (position.partition, tag),
                (position.generation, partition_epoch),
            );
            if earlier.is_some_and(|(g, _)| g != position.generation) {
                return Err(SinkError::Custom(format!(
                    "PostgreSQL: epoch {epoch} read partition {} under two generations with one \
                     tag; its rows cannot be told apart",
                    position.partition
                )));
            }
        }
        let mut writer = transaction
            .copy_in(&self.copy)
            .map_err(|e| pg_error("copy the rows in", e))?;
        let (mut line, mut values) = (String::new(), Vec::new());
        let io = |error: std::io::Error| {
            SinkError::Custom(format!("PostgreSQL: cannot copy the rows in: {error}"))
        };
        for row in &rows {
            values.clear();
            let tagged = (self.to_values)(row, &mut values)
                .map_err(|message| SinkError::Encode { epoch, message })?;
            let (partition, tag, key) = split_key(tagged);
            let Some(&(_, partition_epoch)) = committed.get(&(partition, tag)) else {
                return Err(SinkError::Custom(format!(
                    "PostgreSQL: epoch {epoch} has rows of partition {partition} (generation tag \
                     {tag}) but no position for them"
                )));
            };
            // Fenced: the partition's new owner reads these records again.
            let Some(partition_epoch) = partition_epoch else {
                continue;
            };
            line.clear();
            copy_line(&mut line, partition, partition_epoch, key, &values);
            writer.write_all(line.as_bytes()).map_err(io)?;
        }
        writer
            .finish()
            .map_err(|e| pg_error("copy the rows in", e))?;
        transaction
            .commit()
            .map_err(|e| pg_error("commit an epoch", e))?;
        self.check_stop(&mut client)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn copy_lines_escape_text_and_write_nulls() {
        let mut line = String::new();
        let values = [
            Value::BigInt(-3),
            Value::Double(0.5),
            Value::Text("a\tb\\c\n".into()),
            Value::Null,
        ];
        copy_line(&mut line, 2, 7, 40, &values);
        assert_eq!(line, "2\t7\t40\t-3\t0.5\ta\\tb\\\\c\\n\t\\N\n");
    }
}
