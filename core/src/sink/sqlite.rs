//! Results into an SQLite table, one transaction per epoch.
//!
//! Each epoch's rows are gathered as its partitions are written; when the
//! epoch is complete, one transaction inserts them and records the epoch in
//! the `microbatch_commits` table. An epoch already recorded there is
//! skipped, so writing an epoch again (a replay) never doubles its rows;
//! a crash before the commit leaves nothing of the epoch.

use std::path::Path;

pub use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};

use super::{valid_name, Gathering, Sink, SinkError};
use crate::engine::Resumption;
use crate::progress::EpochProgress;
use crate::source::{Position, SealedPositions};
use crate::sync::cold::{lock, Mutex};

/// The SQL type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// A 64-bit signed integer (unsigned values above `i64::MAX` are
    /// refused, not wrapped).
    Integer,
    /// A double.
    Real,
    /// Text.
    Text,
}

impl SqlType {
    fn sql(self) -> &'static str {
        match self {
            SqlType::Integer => "INTEGER",
            SqlType::Real => "REAL",
            SqlType::Text => "TEXT",
        }
    }
}

/// One column of the results table, after the `epoch` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name: letters, digits and `_`, not starting with a digit.
    pub name: String,
    /// Its type.
    pub sql_type: SqlType,
    /// Part of the row's key within an epoch.
    pub key: bool,
}

impl Column {
    /// A column.
    pub fn new(name: impl Into<String>, sql_type: SqlType, key: bool) -> Self {
        Column {
            name: name.into(),
            sql_type,
            key,
        }
    }
}

/// Turns a row into its column values, in the order of the columns.
pub type ToValues<Row> = fn(&Row, &mut Vec<SqlValue>) -> Result<(), String>;

/// Writes each epoch's rows to `table` in one transaction.
///
/// ```
/// use microbatch::sink::sqlite::{Column, SqlType, SqliteSink, SqlValue};
///
/// let dir = tempfile::tempdir()?;
/// let sink = SqliteSink::<(u64, u64)>::open(
///     dir.path().join("results.db"),
///     "per_key",
///     vec![Column::new("key", SqlType::Integer, true), Column::new("count", SqlType::Integer, false)],
///     |row, values| {
///         values.push(SqlValue::Integer(i64::try_from(row.0).map_err(|e| e.to_string())?));
///         values.push(SqlValue::Integer(i64::try_from(row.1).map_err(|e| e.to_string())?));
///         Ok(())
///     },
/// )?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteSink<Row> {
    database: EpochDatabase,
    insert: String,
    to_values: ToValues<Row>,
    pending: Gathering<Row>,
}

fn sql_error(action: &'static str, error: rusqlite::Error) -> SinkError {
    SinkError::Custom(format!("SQLite: cannot {action}: {error}"))
}

/// The table that records committed epochs.
pub const COMMITS_TABLE: &str = "microbatch_commits";

/// The table that holds, per results table, source and partition, the
/// source's position after the last committed epoch.
pub const POSITIONS_TABLE: &str = "microbatch_positions";

/// The table that holds, per results table and partition, the running
/// totals after the last committed epoch.
pub const STATE_TABLE: &str = "microbatch_state";

impl<Row: Send + 'static> SqliteSink<Row> {
    /// Opens (or creates) the database at `path` and the table `table`
    /// with an `epoch` column followed by `columns`; the primary key is
    /// `epoch` and the key columns.
    pub fn open(
        path: impl AsRef<Path>,
        table: &str,
        columns: Vec<Column>,
        to_values: ToValues<Row>,
    ) -> Result<Self, SinkError> {
        Self::open_keyed(path, table, columns, to_values, true)
    }

    /// As [`open`](SqliteSink::open), with `epoch` in the primary key only
    /// when `epoch_in_key`: rows whose key columns are unique over the
    /// whole run (the windows of an event-time job, each emitted once) are
    /// keyed by those columns alone.
    pub fn open_keyed(
        path: impl AsRef<Path>,
        table: &str,
        columns: Vec<Column>,
        to_values: ToValues<Row>,
        epoch_in_key: bool,
    ) -> Result<Self, SinkError> {
        for name in std::iter::once(table).chain(columns.iter().map(|c| c.name.as_str())) {
            if !valid_name(name) || name == "epoch" && name != table {
                return Err(SinkError::Custom(format!(
                    "SQLite: `{name}` cannot name a table or column; accepted: letters, digits and _, not starting with a digit, and not `epoch` for a column"
                )));
            }
        }
        let database = EpochDatabase::open(path, table)?;
        let mut definition: Vec<String> = vec!["epoch INTEGER NOT NULL".into()];
        definition.extend(
            columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.sql_type.sql())),
        );
        let key: Vec<&str> = epoch_in_key
            .then_some("epoch")
            .into_iter()
            .chain(columns.iter().filter(|c| c.key).map(|c| c.name.as_str()))
            .collect();
        if !key.is_empty() {
            definition.push(format!("PRIMARY KEY ({})", key.join(", ")));
        }
        database.execute_batch(
            &format!(
                "CREATE TABLE IF NOT EXISTS {table} ({});",
                definition.join(", ")
            ),
            "create the table",
        )?;
        let names: Vec<&str> = std::iter::once("epoch")
            .chain(columns.iter().map(|c| c.name.as_str()))
            .collect();
        let holes: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        Ok(SqliteSink {
            database,
            insert: format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                holes.join(", ")
            ),
            to_values,
            pending: Gathering::new(),
        })
    }

    /// A row whose key columns are those of a row already in the table
    /// replaces it (`INSERT OR REPLACE`): for rows that update the ones
    /// before them, such as the late firings of an event-time window.
    pub fn replacing(mut self) -> Self {
        if let Some(rest) = self.insert.strip_prefix("INSERT INTO") {
            self.insert = format!("INSERT OR REPLACE INTO{rest}");
        }
        self
    }

    /// The epochs of this table committed so far, oldest first.
    pub fn committed(&self) -> Result<Vec<u64>, SinkError> {
        self.database.committed()
    }

    /// See [`EpochDatabase::with_positions`].
    pub fn with_positions(mut self, positions: SealedPositions) -> Self {
        self.database = self.database.with_positions(positions);
        self
    }

    /// See [`EpochDatabase::keeping_state`].
    pub fn keeping_state(mut self) -> Self {
        self.database = self.database.keeping_state();
        self
    }

    /// The database the table is in.
    pub fn database(&self) -> &EpochDatabase {
        &self.database
    }
}

/// An SQLite database that takes each epoch's writes once: every epoch in
/// one transaction that also records it, under this database's `name`, in
/// the [`COMMITS_TABLE`]; an epoch recorded before is skipped whole. The
/// building block of an exactly-once SQLite sink ([`SqliteSink`] writes one
/// table with it, the click-stream case three).
///
/// It can also hold what a run needs to resume from the database alone
/// ([`resumption`](EpochDatabase::resumption)): the source's positions
/// after each epoch ([`with_positions`](EpochDatabase::with_positions), in
/// the [`POSITIONS_TABLE`]) and the job's running totals
/// ([`keeping_state`](EpochDatabase::keeping_state), in the
/// [`STATE_TABLE`]), each written in the epoch's transaction.
pub struct EpochDatabase {
    connection: Mutex<Connection>,
    name: String,
    positions: Option<SealedPositions>,
    keeps_state: bool,
    /// The totals staged for the next epoch's commit.
    staged: Mutex<Option<(u64, Vec<Vec<u8>>)>>,
}

impl EpochDatabase {
    /// Opens (or creates) the database at `path` (see [`open_database`]);
    /// its epochs are recorded as `name`'s.
    pub fn open(path: impl AsRef<Path>, name: impl Into<String>) -> Result<Self, SinkError> {
        Ok(EpochDatabase {
            connection: Mutex::new(open_database(path)?),
            name: name.into(),
            positions: None,
            keeps_state: false,
            staged: Mutex::new(None),
        })
    }

    /// Each epoch's transaction also records where `positions`' source
    /// stood after the epoch, one row per partition, replacing the one
    /// before: a run restarted from the database starts each partition
    /// there ([`stored_positions`](EpochDatabase::stored_positions)).
    pub fn with_positions(mut self, positions: SealedPositions) -> Self {
        self.positions = Some(positions);
        self
    }

    /// Each epoch's transaction also stores the running totals staged for
    /// it ([`Sink::stage_state`]), replacing the ones before.
    pub fn keeping_state(mut self) -> Self {
        self.keeps_state = true;
        self
    }

    /// Whether [`keeping_state`](EpochDatabase::keeping_state) was asked.
    pub fn keeps_state(&self) -> bool {
        self.keeps_state
    }

    /// Keeps `partitions`' totals after `epoch` for its commit.
    pub fn stage_state(&self, epoch: u64, partitions: Vec<Vec<u8>>) {
        *lock(&self.staged) = Some((epoch, partitions));
    }

    /// The positions of source `stream` after the last committed epoch, by
    /// partition (none before the first commit).
    pub fn stored_positions(&self, stream: &str) -> Result<Vec<Position>, SinkError> {
        let connection = lock(&self.connection);
        let mut statement = connection
            .prepare(&format!(
                "SELECT partition, next_offset FROM {POSITIONS_TABLE} \
                 WHERE table_name = ?1 AND stream = ?2 ORDER BY partition"
            ))
            .map_err(|e| sql_error("read the positions", e))?;
        let positions = statement
            .query_map(params![self.name, stream], |row| {
                Ok(Position {
                    partition: row.get(0)?,
                    next_offset: row.get(1)?,
                })
            })
            .map_err(|e| sql_error("read the positions", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| sql_error("read the positions", e))?;
        Ok(positions)
    }

    /// Where a run resumed from this database starts: after its last
    /// committed epoch, with the totals stored with it (if it keeps them).
    /// A stored state whose epoch is not the last committed one is refused.
    pub fn resumption(&self) -> Result<Resumption, SinkError> {
        let last = self.committed()?.last().copied();
        let connection = lock(&self.connection);
        let mut statement = connection
            .prepare(&format!(
                "SELECT partition, epoch, totals FROM {STATE_TABLE} \
                 WHERE table_name = ?1 ORDER BY partition"
            ))
            .map_err(|e| sql_error("read the state", e))?;
        let rows = statement
            .query_map(params![self.name], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(|e| sql_error("read the state", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| sql_error("read the state", e))?;
        let mut totals = Vec::with_capacity(rows.len());
        for (index, (partition, epoch, bytes)) in rows.into_iter().enumerate() {
            if partition != index as i64 || Some(epoch as u64) != last {
                return Err(SinkError::Custom(format!(
                    "SQLite: the state of `{}` (partition {partition}, epoch {epoch}) does not match \
                     its last committed epoch ({}): the database was edited",
                    self.name,
                    last.map_or("none".to_owned(), |e| e.to_string())
                )));
            }
            totals.push(bytes);
        }
        Ok(Resumption {
            next_epoch: last.map_or(0, |last| last + 1),
            totals: (!totals.is_empty()).then_some(totals),
        })
    }

    /// Runs `sql` (e.g. the schema's `CREATE TABLE IF NOT EXISTS`); the
    /// error says it could not `action`.
    pub fn execute_batch(&self, sql: &str, action: &'static str) -> Result<(), SinkError> {
        lock(&self.connection)
            .execute_batch(sql)
            .map_err(|e| sql_error(action, e))
    }

    /// The epochs committed so far, oldest first.
    pub fn committed(&self) -> Result<Vec<u64>, SinkError> {
        committed_epochs(&lock(&self.connection), &self.name)
    }

    /// Writes `epoch` (`rows` rows) with `write` in one transaction that
    /// records the epoch as committed, unless it was committed before: a
    /// replayed epoch changes nothing, and a crash before the commit leaves
    /// nothing of it.
    pub fn commit_epoch(
        &self,
        epoch: u64,
        rows: usize,
        write: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), SinkError>,
    ) -> Result<(), SinkError> {
        let positions = self.positions.as_ref().map(|p| (p.stream(), p.take(epoch)));
        let staged = lock(&self.staged).take();
        let mut connection = lock(&self.connection);
        let transaction = connection
            .transaction()
            .map_err(|e| sql_error("begin a transaction", e))?;
        if is_committed(&transaction, &self.name, epoch)? {
            // Committed before (a replay): writing it again would double it.
            return Ok(());
        }
        write(&transaction)?;
        if let Some((stream, positions)) = positions {
            self.record_positions(&transaction, epoch, stream, &positions)?;
        }
        // The engine stages the totals of a job that keeps them just before
        // the epoch's commit (and fails the epoch if it cannot): a job
        // without totals stages none.
        if let Some((_, partitions)) = staged.filter(|(staged, _)| *staged == epoch) {
            self.record_state(&transaction, epoch, &partitions)?;
        }
        record_commit(&transaction, &self.name, epoch, rows)?;
        transaction.commit().map_err(|e| sql_error("commit", e))
    }

    fn record_positions(
        &self,
        transaction: &rusqlite::Transaction<'_>,
        epoch: u64,
        stream: &str,
        positions: &[Position],
    ) -> Result<(), SinkError> {
        let mut upsert = transaction
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO {POSITIONS_TABLE} \
                 (table_name, stream, partition, next_offset, epoch) VALUES (?1, ?2, ?3, ?4, ?5)"
            ))
            .map_err(|e| sql_error("record the positions", e))?;
        for position in positions {
            upsert
                .execute(params![
                    self.name,
                    stream,
                    position.partition,
                    position.next_offset,
                    epoch_value(epoch)?
                ])
                .map_err(|e| sql_error("record the positions", e))?;
        }
        Ok(())
    }

    fn record_state(
        &self,
        transaction: &rusqlite::Transaction<'_>,
        epoch: u64,
        partitions: &[Vec<u8>],
    ) -> Result<(), SinkError> {
        transaction
            .execute(
                &format!("DELETE FROM {STATE_TABLE} WHERE table_name = ?1"),
                params![self.name],
            )
            .map_err(|e| sql_error("replace the state", e))?;
        let mut insert = transaction
            .prepare_cached(&format!(
                "INSERT INTO {STATE_TABLE} (table_name, partition, epoch, totals) VALUES (?1, ?2, ?3, ?4)"
            ))
            .map_err(|e| sql_error("store the state", e))?;
        for (partition, totals) in partitions.iter().enumerate() {
            insert
                .execute(params![
                    self.name,
                    partition as i64,
                    epoch_value(epoch)?,
                    totals
                ])
                .map_err(|e| sql_error("store the state", e))?;
        }
        Ok(())
    }
}

/// Opens (or creates) the database at `path` (and its directory) for a
/// sink: write-ahead logging, a 10 s busy timeout, and the
/// [`COMMITS_TABLE`] where each epoch is recorded in the transaction that
/// writes it. The building block of an exactly-once sink of your own, as
/// the click-stream case's three-table sink.
pub fn open_database(path: impl AsRef<Path>) -> Result<Connection, SinkError> {
    let path = path.as_ref();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| SinkError::Io {
            action: "create the directory of",
            path: path.to_owned(),
            source,
        })?;
    }
    let connection = Connection::open(path).map_err(|e| sql_error("open the database", e))?;
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| sql_error("switch to WAL mode", e))?;
    connection
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| sql_error("set a busy timeout", e))?;
    connection
        .execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {COMMITS_TABLE} (
                 table_name TEXT NOT NULL, epoch INTEGER NOT NULL, rows INTEGER NOT NULL,
                 PRIMARY KEY (table_name, epoch));"
        ))
        .map_err(|e| sql_error("create the commits table", e))?;
    connection
        .execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} (
                 table_name TEXT NOT NULL, stream TEXT NOT NULL, partition INTEGER NOT NULL,
                 next_offset INTEGER NOT NULL, epoch INTEGER NOT NULL,
                 PRIMARY KEY (table_name, stream, partition));
             CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
                 table_name TEXT NOT NULL, partition INTEGER NOT NULL, epoch INTEGER NOT NULL,
                 totals BLOB NOT NULL, PRIMARY KEY (table_name, partition));"
        ))
        .map_err(|e| sql_error("create the positions and state tables", e))?;
    Ok(connection)
}

/// The epochs recorded for `name` in the [`COMMITS_TABLE`], oldest first.
pub fn committed_epochs(connection: &Connection, name: &str) -> Result<Vec<u64>, SinkError> {
    let mut statement = connection
        .prepare(&format!(
            "SELECT epoch FROM {COMMITS_TABLE} WHERE table_name = ?1 ORDER BY epoch"
        ))
        .map_err(|e| sql_error("read the commits", e))?;
    let epochs = statement
        .query_map(params![name], |row| row.get::<_, i64>(0))
        .map_err(|e| sql_error("read the commits", e))?
        .map(|epoch| epoch.map(|e| e as u64))
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|e| sql_error("read the commits", e))?;
    Ok(epochs)
}

/// `epoch` as an SQLite integer.
fn epoch_value(epoch: u64) -> Result<i64, SinkError> {
    i64::try_from(epoch).map_err(|_| SinkError::Encode {
        epoch,
        message: "the epoch exceeds SQLite's INTEGER range".into(),
    })
}

/// Whether `epoch` of `name` is recorded as committed; call it inside the
/// epoch's transaction, before writing.
pub fn is_committed(connection: &Connection, name: &str, epoch: u64) -> Result<bool, SinkError> {
    let done: Option<i64> = connection
        .query_row(
            &format!("SELECT rows FROM {COMMITS_TABLE} WHERE table_name = ?1 AND epoch = ?2"),
            params![name, epoch_value(epoch)?],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| sql_error("read the commits", e))?;
    Ok(done.is_some())
}

/// Records `epoch` of `name` (with its row count) as committed; call it
/// inside the epoch's transaction, after writing its rows.
pub fn record_commit(
    connection: &Connection,
    name: &str,
    epoch: u64,
    rows: usize,
) -> Result<(), SinkError> {
    connection
        .execute(
            &format!("INSERT INTO {COMMITS_TABLE} (table_name, epoch, rows) VALUES (?1, ?2, ?3)"),
            params![name, epoch_value(epoch)?, rows as i64],
        )
        .map_err(|e| sql_error("record the commit", e))?;
    Ok(())
}

impl<Row: Send + 'static> Sink<Row> for SqliteSink<Row> {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        self.pending.add(epoch, rows);
        Ok(())
    }

    fn keeps_state(&self) -> bool {
        self.database.keeps_state()
    }

    fn stage_state(&self, epoch: u64, partitions: Vec<Vec<u8>>) -> Result<(), SinkError> {
        self.database.stage_state(epoch, partitions);
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        let rows = self.pending.take(epoch);
        let epoch_value = epoch_value(epoch)?;
        self.database
            .commit_epoch(epoch, rows.len(), |transaction| {
                let mut insert = transaction
                    .prepare_cached(&self.insert)
                    .map_err(|e| sql_error("prepare the insert", e))?;
                let mut values = Vec::new();
                for row in &rows {
                    values.clear();
                    values.push(SqlValue::Integer(epoch_value));
                    (self.to_values)(row, &mut values)
                        .map_err(|message| SinkError::Encode { epoch, message })?;
                    insert
                        .execute(rusqlite::params_from_iter(values.iter()))
                        .map_err(|e| sql_error("insert a row", e))?;
                }
                Ok(())
            })
    }
}
