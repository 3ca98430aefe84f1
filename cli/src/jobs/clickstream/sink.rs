//! The click-stream results in SQLite: `user_stats` and `page_stats` per
//! epoch, `user_totals` since the start and `user_sessions` as they close,
//! all of an epoch in one transaction that also records the epoch as
//! committed, so an epoch written again (a replay after a crash) changes
//! nothing.

use std::path::Path;

use microbatch::job::{Either, Window};
use microbatch::progress::EpochProgress;
use microbatch::sink::sqlite::EpochDatabase;
use microbatch::sink::{Gathering, Sink, SinkError};
use microbatch::source::SealedPositions;
use rusqlite::params;

use super::job::{CaseRow, Subject};

/// The name under which this sink's epochs are recorded in
/// `microbatch_commits`.
pub const COMMITS_NAME: &str = "clickstream";

/// The tables, created on first use.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS user_stats (
    epoch INTEGER NOT NULL, user INTEGER NOT NULL, clicks INTEGER NOT NULL,
    dwell_ms_sum INTEGER NOT NULL, dwell_ms_mean REAL NOT NULL,
    PRIMARY KEY (epoch, user));
CREATE TABLE IF NOT EXISTS page_stats (
    epoch INTEGER NOT NULL, page INTEGER NOT NULL, views INTEGER NOT NULL,
    PRIMARY KEY (epoch, page));
CREATE TABLE IF NOT EXISTS user_totals (
    user INTEGER PRIMARY KEY, clicks INTEGER NOT NULL, dwell_ms_sum INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS user_sessions (
    epoch INTEGER NOT NULL, user INTEGER NOT NULL,
    session_start_ms INTEGER NOT NULL, session_end_ms INTEGER NOT NULL,
    clicks INTEGER NOT NULL, dwell_ms_sum INTEGER NOT NULL,
    PRIMARY KEY (user, session_start_ms));
";

/// Writes the click-stream job's rows into `user_stats`, `page_stats`,
/// `user_totals` (running totals, updated in the epoch's transaction) and
/// `user_sessions` (each session once, in the epoch that closed it: its
/// first click, its last plus the gap, its clicks and dwell time).
pub struct ClickstreamSink {
    database: EpochDatabase,
    pending: Gathering<CaseRow>,
}

fn sql(action: &'static str) -> impl FnOnce(rusqlite::Error) -> SinkError {
    move |error| SinkError::Custom(format!("SQLite: could not {action}: {error}"))
}

/// An SQLite integer: the ids and sums stay below 2^63.
fn integer(epoch: u64, name: &str, value: u64) -> Result<i64, SinkError> {
    i64::try_from(value).map_err(|_| SinkError::Encode {
        epoch,
        message: format!("{name} {value} exceeds SQLite's INTEGER range"),
    })
}

impl ClickstreamSink {
    /// Opens (or creates) the database at `path` and its tables.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        let database = EpochDatabase::open(path, COMMITS_NAME)?;
        database.execute_batch(SCHEMA, "create the tables")?;
        Ok(ClickstreamSink {
            database,
            pending: Gathering::new(),
        })
    }

    /// The epochs committed so far, oldest first.
    pub fn committed(&self) -> Result<Vec<u64>, SinkError> {
        self.database.committed()
    }

    /// Each epoch's transaction also records the source's `positions` and
    /// the open sessions (the job's running totals), so a run resumes from
    /// the database alone (a Kafka source).
    pub fn with_positions(mut self, positions: SealedPositions) -> Self {
        self.database = self.database.with_positions(positions).keeping_state();
        self
    }

    /// The database the tables are in.
    pub fn database(&self) -> &EpochDatabase {
        &self.database
    }
}

impl Sink<CaseRow> for ClickstreamSink {
    fn keeps_state(&self) -> bool {
        self.database.keeps_state()
    }

    fn stage_state(&self, epoch: u64, partitions: Vec<Vec<u8>>) -> Result<(), SinkError> {
        self.database.stage_state(epoch, partitions);
        Ok(())
    }

    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<CaseRow>) -> Result<(), SinkError> {
        self.pending.add(epoch, rows);
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        let rows = self.pending.take(epoch);
        let epoch_value = integer(epoch, "epoch", epoch)?;
        self.database
            .commit_epoch(epoch, rows.len(), |transaction| {
                let mut user = transaction
                    .prepare_cached(
                        "INSERT INTO user_stats (epoch, user, clicks, dwell_ms_sum, dwell_ms_mean)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(sql("prepare an insert"))?;
                let mut total = transaction
                    .prepare_cached(
                        "INSERT INTO user_totals (user, clicks, dwell_ms_sum) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user) DO UPDATE SET
                         clicks = clicks + excluded.clicks,
                         dwell_ms_sum = dwell_ms_sum + excluded.dwell_ms_sum",
                    )
                    .map_err(sql("prepare an upsert"))?;
                let mut page = transaction
                    .prepare_cached(
                        "INSERT INTO page_stats (epoch, page, views) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(sql("prepare an insert"))?;
                let mut session = transaction
                    .prepare_cached(
                        "INSERT INTO user_sessions
                         (epoch, user, session_start_ms, session_end_ms, clicks, dwell_ms_sum)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(sql("prepare an insert"))?;
                for row in &rows {
                    let (subject, (events, dwell)) = match row {
                        Either::First(stats) => stats,
                        Either::Second((window, id, (clicks, dwell))) => {
                            let Window { start_ms, end_ms } = *window;
                            session
                                .execute(params![
                                    epoch_value,
                                    integer(epoch, "user", *id)?,
                                    integer(epoch, "a session start", start_ms)?,
                                    integer(epoch, "a session end", end_ms)?,
                                    integer(epoch, "a count", *clicks)?,
                                    integer(epoch, "a dwell sum", *dwell)?,
                                ])
                                .map_err(sql("insert into user_sessions"))?;
                            continue;
                        }
                    };
                    let (events_value, dwell_value) = (
                        integer(epoch, "a count", *events)?,
                        integer(epoch, "a dwell sum", *dwell)?,
                    );
                    match *subject {
                        Subject::User(id) => {
                            let id = integer(epoch, "user", id)?;
                            let mean = *dwell as f64 / (*events).max(1) as f64;
                            user.execute(params![epoch_value, id, events_value, dwell_value, mean])
                                .map_err(sql("insert into user_stats"))?;
                            total
                                .execute(params![id, events_value, dwell_value])
                                .map_err(sql("update user_totals"))?;
                        }
                        Subject::Page(id) => {
                            let id = integer(epoch, "page", id)?;
                            page.execute(params![epoch_value, id, events_value])
                                .map_err(sql("insert into page_stats"))?;
                        }
                    }
                }
                Ok(())
            })
    }
}
