//! Where a job's rows go: each group (its window, its key, its
//! reductions) becomes a row of the columns the profile asks for, written
//! nowhere, to per-epoch files or to an SQLite table
//! (`drive_to_output`) or a Kafka topic (`drive_to_kafka`); every job over
//! `key,value` records shares it.

use microbatch::job::{Firing, Job};
use microbatch::kafka::{KafkaSettings, KafkaSink};
use microbatch::sink::sqlite::{Column, SqlType, SqlValue, SqliteSink};
use microbatch::sink::{DiscardSink, FileFormat, FileSink, Sink, SinkError};
use serde::Serialize;

use super::expired::ExpiredLetters;
use crate::driver::checkpoint::{
    checkpoint_of, refuse_another_run, resume_from_database, CommittedBy,
};
use crate::driver::error::RunError;
use crate::driver::feed::Feed;
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{JobSpec, OutputKind, Reduction};

/// The reductions of one group, as every aggregator shape reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// Records.
    pub count: u64,
    /// Sum of values (wrapping).
    pub sum: u64,
    /// Least value, if the shape keeps it.
    pub min: Option<u64>,
    /// Greatest value, if the shape keeps it.
    pub max: Option<u64>,
}

/// An aggregator output that converts to [`Columns`].
pub trait Reduced: Send + 'static {
    /// The columns.
    fn columns(self) -> Columns;
}

impl Reduced for (u64, u64) {
    fn columns(self) -> Columns {
        Columns {
            count: self.0,
            sum: self.1,
            min: None,
            max: None,
        }
    }
}

impl Reduced for (u64, u64, u64, u64) {
    fn columns(self) -> Columns {
        Columns {
            count: self.0,
            sum: self.1,
            min: Some(self.2),
            max: Some(self.3),
        }
    }
}

/// One group of a result: its window (windowed jobs), its key (keyed
/// jobs) and its reductions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grouped {
    /// `[start, end)` in ms of event time.
    pub window: Option<(u64, u64)>,
    /// The key.
    pub key: Option<u64>,
    /// The reductions.
    pub columns: Columns,
    /// When the window's row fired (windowed jobs with an allowed
    /// lateness or in update mode).
    pub firing: Option<Firing>,
}

/// A result row as written to files: the window (windowed jobs), the key
/// (keyed jobs) and the reductions asked for, in the profile's column
/// names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutRow {
    /// The window's first millisecond of event time (windowed jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start_ms: Option<u64>,
    /// The millisecond after the window's last (windowed jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_end_ms: Option<u64>,
    /// The group's key; absent for a global job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<u64>,
    /// Records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Sum of values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<u64>,
    /// Least value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// Greatest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Mean value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// When the window's row fired: `early`, `on_time` or `late`
    /// (windowed jobs with an allowed lateness or in update mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firing: Option<Firing>,
}

/// Which columns a row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    count: bool,
    sum: bool,
    min: bool,
    max: bool,
    mean: bool,
}

impl Wanted {
    /// The columns of `spec`.
    pub fn of(spec: &JobSpec) -> Self {
        Wanted {
            count: spec.wants(Reduction::Count),
            sum: spec.wants(Reduction::Sum),
            min: spec.wants(Reduction::Min),
            max: spec.wants(Reduction::Max),
            mean: spec.wants(Reduction::Mean),
        }
    }

    /// The row of `group`, keeping the wanted columns.
    pub fn row(self, group: Grouped) -> OutRow {
        let Grouped {
            window,
            key,
            columns,
            firing,
        } = group;
        let keep = |wanted: bool, value: Option<u64>| if wanted { value } else { None };
        OutRow {
            window_start_ms: window.map(|(start, _)| start),
            window_end_ms: window.map(|(_, end)| end),
            key,
            count: keep(self.count, Some(columns.count)),
            sum: keep(self.sum, Some(columns.sum)),
            min: keep(self.min, columns.min),
            max: keep(self.max, columns.max),
            mean: (self.mean && columns.count > 0)
                .then(|| columns.sum as f64 / columns.count as f64),
            firing,
        }
    }
}

/// A sink of [`OutRow`]s (files, SQLite) fed with a job's rows. Runs
/// once per partition and epoch, off the hot path.
pub struct OutputSink<Row, S> {
    inner: S,
    wanted: Wanted,
    row: fn(Row) -> Grouped,
    /// Where expired rows go instead of `inner`, if anywhere.
    expired: Option<ExpiredLetters>,
}

impl<Row, S: Sink<OutRow>> OutputSink<Row, S> {
    /// Feeds `inner` with the `wanted` columns of each row.
    pub fn new(inner: S, wanted: Wanted, row: fn(Row) -> Grouped) -> Self {
        OutputSink {
            inner,
            wanted,
            row,
            expired: None,
        }
    }

    /// Sends the rows marked [`Firing::Expired`] to `letters` instead.
    pub fn with_expired(mut self, letters: Option<ExpiredLetters>) -> Self {
        self.expired = letters;
        self
    }
}

impl<Row: Send + 'static, S: Sink<OutRow>> Sink<Row> for OutputSink<Row, S> {
    fn write(&self, epoch: u64, partition: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        let (mut out, mut expired) = (Vec::with_capacity(rows.len()), Vec::new());
        for group in rows.drain(..).map(self.row) {
            let late = self.expired.is_some() && group.firing == Some(Firing::Expired);
            let into = if late { &mut expired } else { &mut out };
            into.push(self.wanted.row(group));
        }
        if let Some(letters) = self.expired.as_ref().filter(|_| !expired.is_empty()) {
            letters.write(epoch, &expired)?;
        }
        if out.is_empty() {
            return Ok(());
        }
        self.inner.write(epoch, partition, &mut out)
    }

    fn epoch_complete(
        &self,
        epoch: u64,
        progress: &microbatch::progress::EpochProgress,
    ) -> Result<(), SinkError> {
        if let Some(letters) = &self.expired {
            letters.sync()?;
        }
        self.inner.epoch_complete(epoch, progress)
    }

    fn keeps_state(&self) -> bool {
        self.inner.keeps_state()
    }

    fn stage_state(&self, epoch: u64, partitions: Vec<Vec<u8>>) -> Result<(), SinkError> {
        self.inner.stage_state(epoch, partitions)
    }
}

impl Wanted {
    /// The SQLite columns of rows with these columns (`key` when `keyed`;
    /// the window's bounds first when `windowed`, which with the key make
    /// the primary key; `firing` last when `marked`).
    pub fn sql_columns(self, keyed: bool, windowed: bool, marked: bool) -> Vec<Column> {
        let mut columns = Vec::new();
        if windowed {
            columns.push(Column::new("window_start_ms", SqlType::Integer, true));
            columns.push(Column::new("window_end_ms", SqlType::Integer, true));
        }
        if keyed {
            columns.push(Column::new("key", SqlType::Integer, true));
        }
        for (wanted, name) in [
            (self.count, "count"),
            (self.sum, "sum"),
            (self.min, "min"),
            (self.max, "max"),
        ] {
            if wanted {
                columns.push(Column::new(name, SqlType::Integer, false));
            }
        }
        if self.mean {
            columns.push(Column::new("mean", SqlType::Real, false));
        }
        if marked {
            columns.push(Column::new("firing", SqlType::Text, false));
        }
        columns
    }
}

/// The values of `row` in the order of [`Wanted::sql_columns`]: each
/// column present, in field order.
pub fn sql_values(row: &OutRow, values: &mut Vec<SqlValue>) -> Result<(), String> {
    let integer = |name: &str, value: u64| {
        i64::try_from(value)
            .map(SqlValue::Integer)
            .map_err(|_| format!("{name} {value} exceeds SQLite's INTEGER range"))
    };
    for (name, value) in [
        ("window_start_ms", row.window_start_ms),
        ("window_end_ms", row.window_end_ms),
        ("key", row.key),
        ("count", row.count),
        ("sum", row.sum),
        ("min", row.min),
        ("max", row.max),
    ] {
        if let Some(value) = value {
            values.push(integer(name, value)?);
        }
    }
    if let Some(mean) = row.mean {
        values.push(SqlValue::Real(mean));
    }
    if let Some(firing) = row.firing {
        values.push(SqlValue::Text(firing.name().to_owned()));
    }
    Ok(())
}

/// Runs `job` fed by `feed` into the profile's output: nowhere, per-epoch
/// files, or an SQLite table, each row the `wanted` columns of `row`'s
/// group (with `key` when `keyed`, the window's bounds when `windowed`).
pub(crate) fn drive_to_output<R, J, F>(
    runner: Runner<'_>,
    job: J,
    mut feed: F,
    row: fn(J::Row) -> Grouped,
    keyed: bool,
    windowed: bool,
) -> Result<RunOutcome, RunError>
where
    R: Clone + Serialize + Send + 'static,
    J: Job<R>,
    F: Feed<R>,
{
    let output = &runner.profile.output;
    let path = output.path();
    let fail = |message: String| RunError::Output {
        what: path.display().to_string(),
        message,
    };
    let wanted = Wanted::of(&runner.profile.job);
    let checkpoint = checkpoint_of(&runner)?;
    let earlier_run = |epochs: Vec<u64>, place: String| {
        refuse_another_run(
            checkpoint.as_ref().map(CommittedBy::run),
            &epochs,
            &place,
            &path,
        )
    };
    // `job.late = "dead_letters"`: expired rows to `engine.dead_letters`.
    let expired = || match runner.profile.late_letters() {
        Some(letters) => {
            ExpiredLetters::open(letters)
                .map(Some)
                .map_err(|error| RunError::Output {
                    what: letters.display().to_string(),
                    message: error.to_string(),
                })
        }
        None => Ok(None),
    };
    let files = |format| {
        let sink = FileSink::new(&path, format).map_err(|error| fail(error.to_string()))?;
        let committed = sink.committed().map_err(|error| fail(error.to_string()))?;
        earlier_run(committed, "the directory".into())?;
        Ok::<_, RunError>(sink)
    };
    match output.kind {
        OutputKind::None => match expired()? {
            Some(letters) => {
                let sink = OutputSink::new(DiscardSink, wanted, row).with_expired(Some(letters));
                runner.drive(job, sink, checkpoint, feed)
            }
            None => runner.drive(job, DiscardSink, checkpoint, feed),
        },
        OutputKind::Csv => {
            let sink = OutputSink::new(files(FileFormat::Csv)?, wanted, row);
            runner.drive(job, sink.with_expired(expired()?), checkpoint, feed)
        }
        OutputKind::Jsonl => {
            let sink = OutputSink::new(files(FileFormat::JsonLines)?, wanted, row);
            runner.drive(job, sink.with_expired(expired()?), checkpoint, feed)
        }
        OutputKind::Sqlite => {
            let marked = runner.profile.job.marks_firings();
            let columns = wanted.sql_columns(keyed, windowed, marked);
            // A window's bounds and key alone key it: it goes out once, or
            // each of its later rows replaces the one before.
            let database =
                SqliteSink::open_keyed(&path, &output.table, columns, sql_values, !windowed)
                    .map_err(|error| fail(error.to_string()))?;
            let database = if marked {
                database.replacing()
            } else {
                database
            };
            let database = match feed.positions() {
                // The database holds the source's positions (and the
                // totals): the run resumes from it.
                Some(positions) => {
                    let database = database.with_positions(positions);
                    let database = if job.keeps_totals() {
                        database.keeping_state()
                    } else {
                        database
                    };
                    resume_from_database(&mut feed, database.database(), &path)?;
                    database
                }
                None => {
                    let committed = database
                        .committed()
                        .map_err(|error| fail(error.to_string()))?;
                    earlier_run(committed, format!("table `{}`", output.table))?;
                    database
                }
            };
            let sink = OutputSink::new(database, wanted, row).with_expired(expired()?);
            runner.drive(job, sink, checkpoint, feed)
        }
        OutputKind::Kafka => drive_to_kafka(runner, job, feed, row),
        OutputKind::Postgres => Err(RunError::Unsupported(
            "output.kind = \"postgres\" takes a keyed job over `key,value` records from a Kafka \
             consumer group"
                .into(),
        )),
    }
}

/// One Kafka message of an output row: the epoch, then the row's columns.
#[derive(Serialize)]
struct Message<'a> {
    epoch: u64,
    #[serde(flatten)]
    row: &'a OutRow,
}

fn to_message(
    epoch: u64,
    row: &OutRow,
    key: &mut Vec<u8>,
    value: &mut Vec<u8>,
) -> Result<(), String> {
    if let Some(k) = row.key {
        key.extend_from_slice(k.to_string().as_bytes());
    }
    serde_json::to_writer(value, &Message { epoch, row }).map_err(|e| e.to_string())
}

/// Runs `job` fed by `feed` (a Kafka topic) into `output.topic`: each
/// epoch's rows (the `wanted` columns of `row`'s groups, with the epoch)
/// as JSON messages in one transaction with the source's offsets,
/// committed to `workload.group`. The run resumes after the epoch the
/// group's offsets name.
pub(crate) fn drive_to_kafka<R, J, F>(
    runner: Runner<'_>,
    job: J,
    mut feed: F,
    row: fn(J::Row) -> Grouped,
) -> Result<RunOutcome, RunError>
where
    R: Clone + Serialize + Send + 'static,
    J: Job<R>,
    F: Feed<R>,
{
    let profile = runner.profile;
    let Some((source_settings, source_topic)) = feed.kafka() else {
        return Err(RunError::Unsupported(
            "output.kind = \"kafka\" commits a Kafka source's offsets with each epoch; \
             accepted: workload.source = \"kafka\""
                .into(),
        ));
    };
    let source_settings = source_settings.clone();
    let source_topic = source_topic.to_owned();
    let output = &profile.output;
    let brokers = output
        .brokers
        .clone()
        .unwrap_or_else(|| profile.workload.brokers.clone());
    let settings = KafkaSettings::new(brokers);
    // Profile::check requires the output topic.
    let topic = output.topic.clone().unwrap_or_default();
    let group = &profile.workload.group;
    let (resumption, stored) =
        KafkaSink::<OutRow>::resumption(&source_settings, &source_topic, group)?;
    // A Kafka feed always hands its positions to the sink that commits them.
    let Some(positions) = feed.positions() else {
        return Err(RunError::Unsupported(
            "output.kind = \"kafka\" needs a source whose positions it can commit".into(),
        ));
    };
    feed.resume(resumption, &stored)?;
    let transactional_id = format!("microbatch-{group}-{topic}");
    let sink = KafkaSink::open(&settings, &topic, &transactional_id, to_message)?
        .committing_offsets(positions, group)?;
    let wanted = Wanted::of(&profile.job);
    let sink = OutputSink::new(sink, wanted, row);
    runner.drive(job, sink, None, feed)
}
