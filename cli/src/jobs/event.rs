//! From a profile's `[job]` to an engine job, and from the job's rows to
//! the rows a user reads.
//!
//! A job's state is fixed at compile time, so the reductions a profile asks
//! for are served by one of two aggregators: `(count, sum)` when only
//! count, sum and mean are asked for (16-byte state), and
//! `(count, sum, min, max)` otherwise. The rows carry only the columns
//! asked for.

use microbatch::job::{
    self, count, max, min, sum, Aggregator, Job, OutputMode, RkyvSnapshots, TotalsCodec,
};
use microbatch::sink::sqlite::{Column, SqlType, SqlValue};
use microbatch::sink::{Sink, SinkError};
use microbatch::source::Event;
use serde::Serialize;

use microbatch::sink::sqlite::SqliteSink;
use microbatch::sink::{DiscardSink, FileFormat, FileSink};

use super::case::JobCase;
use crate::driver::checkpoint::{checkpoint_of, refuse_another_run};
use crate::driver::error::RunError;
use crate::driver::feed::{EventFeed, Feed};
use crate::driver::input::{open_input, Input};
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{
    JobKind, JobSpec, OutputKind, OutputModeSpec, Profile, Reduction, WindowKind,
};

/// The value column of an [`Event`].
fn value_of(event: &Event) -> u64 {
    event.value
}

/// The key column of an [`Event`].
fn key_of(event: &Event) -> u64 {
    event.key
}

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

/// Something to do with the aggregator a [`JobSpec`] needs: the one
/// generic step between a profile and monomorphized engine code.
pub trait WithAggregator {
    /// What it gives back.
    type Out;
    /// Does it with `aggregator`.
    fn with<A>(self, aggregator: A) -> Self::Out
    where
        A: Aggregator<Event> + Clone,
        A::State: Clone,
        A::Output: Reduced,
        RkyvSnapshots: TotalsCodec<u64, A::State>;
}

/// Calls `action` with the aggregator `spec` needs.
pub fn with_aggregator<W: WithAggregator>(spec: &JobSpec, action: W) -> W::Out {
    let needs_min_max = spec.wants(Reduction::Min) || spec.wants(Reduction::Max);
    // The function item itself (zero-sized, `Copy`), not a pointer to it:
    // the reductions then inline it instead of calling through a pointer
    // for every record.
    let value = value_of;
    if needs_min_max {
        action.with((count(), sum(value), min(value), max(value)))
    } else {
        action.with((count(), sum(value)))
    }
}

/// Something to do with the engine job a [`JobSpec`] describes.
pub trait WithJob {
    /// What it gives back.
    type Out;
    /// Does it with `job`, whose rows `row` turns into groups.
    fn with<J: Job<Event>>(self, job: J, row: fn(J::Row) -> Grouped) -> Self::Out;
}

/// Calls `action` with the job `spec` describes.
pub fn with_job<W: WithJob>(spec: &JobSpec, action: W) -> W::Out {
    struct Build<W>(JobKind, OutputModeSpec, W);
    impl<W: WithJob> WithAggregator for Build<W> {
        type Out = W::Out;
        fn with<A>(self, aggregator: A) -> W::Out
        where
            A: Aggregator<Event> + Clone,
            A::State: Clone,
            A::Output: Reduced,
            RkyvSnapshots: TotalsCodec<u64, A::State>,
        {
            let keyed = job::records::<Event>().key_by(key_of);
            let keyed_row = |(key, output): (u64, A::Output)| Grouped {
                window: None,
                key: Some(key),
                columns: output.columns(),
            };
            match (self.0, self.1) {
                (JobKind::Keyed, OutputModeSpec::Epoch) => {
                    self.2.with(keyed.aggregate(aggregator), keyed_row)
                }
                (JobKind::Keyed, OutputModeSpec::Update) => self.2.with(
                    keyed
                        .aggregate(aggregator)
                        .running(OutputMode::Update)
                        .snapshotted(),
                    keyed_row,
                ),
                (JobKind::Keyed, OutputModeSpec::Complete) => self.2.with(
                    keyed
                        .aggregate(aggregator)
                        .running(OutputMode::Complete)
                        .snapshotted(),
                    keyed_row,
                ),
                // Profile::check sends windowed jobs (the only ones in
                // append mode) to `windowed`, the click stream elsewhere.
                (JobKind::Keyed, OutputModeSpec::Append) | (JobKind::Clickstream, _) => {
                    unreachable!("the registry hands only unwindowed keyed and global jobs here")
                }
                // Profile::check refuses running totals of a global job.
                (JobKind::Global, _) => self.2.with(
                    job::records::<Event>().aggregate(aggregator),
                    |output: A::Output| Grouped {
                        window: None,
                        key: None,
                        columns: output.columns(),
                    },
                ),
            }
        }
    }
    with_aggregator(spec, Build(spec.kind, spec.output_mode, action))
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
        }
    }
}

/// A sink of [`OutRow`]s (files, SQLite) fed with a job's rows. Runs
/// once per partition and epoch, off the hot path.
pub struct OutputSink<Row, S> {
    inner: S,
    wanted: Wanted,
    row: fn(Row) -> Grouped,
}

impl<Row, S: Sink<OutRow>> OutputSink<Row, S> {
    /// Feeds `inner` with the `wanted` columns of each row.
    pub fn new(inner: S, wanted: Wanted, row: fn(Row) -> Grouped) -> Self {
        OutputSink { inner, wanted, row }
    }
}

impl<Row: Send + 'static, S: Sink<OutRow>> Sink<Row> for OutputSink<Row, S> {
    fn write(&self, epoch: u64, partition: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        let mut out: Vec<OutRow> = rows
            .drain(..)
            .map(|row| self.wanted.row((self.row)(row)))
            .collect();
        self.inner.write(epoch, partition, &mut out)
    }

    fn epoch_complete(
        &self,
        epoch: u64,
        progress: &microbatch::progress::EpochProgress,
    ) -> Result<(), SinkError> {
        self.inner.epoch_complete(epoch, progress)
    }
}

impl Wanted {
    /// The SQLite columns of rows with these columns (`key` when `keyed`;
    /// the window's bounds first when `windowed`, which with the key make
    /// the primary key).
    pub fn sql_columns(self, keyed: bool, windowed: bool) -> Vec<Column> {
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
    Ok(())
}

/// The generic `key,value` jobs: `job.kind = "keyed"` or `"global"`.
pub struct EventJobs;

impl JobCase for EventJobs {
    fn kinds(&self) -> &'static [JobKind] {
        &[JobKind::Keyed, JobKind::Global]
    }

    fn check(&self, _: &Profile) -> Result<(), (String, String)> {
        Ok(())
    }

    fn run(&self, runner: Runner<'_>) -> Result<RunOutcome, RunError> {
        if runner.profile.job.window != WindowKind::None {
            return super::windowed::run(runner);
        }
        let input = open_input(&runner.profile.workload)?;
        run_with_input(runner, input)
    }

    fn not_comparable(&self) -> Option<&'static str> {
        None
    }
}

/// Runs the event job of `runner`'s profile over `input` (the workload's,
/// or records prepared beforehand).
pub(crate) fn run_with_input(runner: Runner<'_>, input: Input) -> Result<RunOutcome, RunError> {
    let profile = runner.profile;
    with_job(&profile.job, RunJob { runner, input })
}

/// A run of the CLI's generic `key,value` records.
struct RunJob<'a> {
    runner: Runner<'a>,
    input: Input,
}

impl WithJob for RunJob<'_> {
    type Out = Result<RunOutcome, RunError>;

    fn with<J: Job<Event>>(self, job: J, row: fn(J::Row) -> Grouped) -> Self::Out {
        let RunJob { runner, input } = self;
        let keyed = runner.profile.job.kind == JobKind::Keyed;
        drive_to_output(runner, job, EventFeed(Some(input)), row, keyed, false)
    }
}

/// Runs `job` fed by `feed` into the profile's output: nowhere, per-epoch
/// files, or an SQLite table, each row the `wanted` columns of `row`'s
/// group (with `key` when `keyed`, the window's bounds when `windowed`).
pub(crate) fn drive_to_output<R, J, F>(
    runner: Runner<'_>,
    job: J,
    feed: F,
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
        refuse_another_run(checkpoint.as_ref(), &epochs, &place, &path)
    };
    let files = |format| {
        let sink = FileSink::new(&path, format).map_err(|error| fail(error.to_string()))?;
        let committed = sink.committed().map_err(|error| fail(error.to_string()))?;
        earlier_run(committed, "the directory".into())?;
        Ok::<_, RunError>(sink)
    };
    match output.kind {
        OutputKind::None => runner.drive(job, DiscardSink, checkpoint, feed),
        OutputKind::Csv => {
            let sink = OutputSink::new(files(FileFormat::Csv)?, wanted, row);
            runner.drive(job, sink, checkpoint, feed)
        }
        OutputKind::Jsonl => {
            let sink = OutputSink::new(files(FileFormat::JsonLines)?, wanted, row);
            runner.drive(job, sink, checkpoint, feed)
        }
        OutputKind::Sqlite => {
            let columns = wanted.sql_columns(keyed, windowed);
            let database = SqliteSink::open(&path, &output.table, columns, sql_values)
                .map_err(|error| fail(error.to_string()))?;
            let committed = database
                .committed()
                .map_err(|error| fail(error.to_string()))?;
            earlier_run(committed, format!("table `{}`", output.table))?;
            runner.drive(
                job,
                OutputSink::new(database, wanted, row),
                checkpoint,
                feed,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Folds `events` through the job `spec` describes, on one part.
    fn reduce(spec: &JobSpec, events: &[Event]) -> Vec<OutRow> {
        reduce_epochs(spec, &[events])
    }

    /// Folds each of `epochs` in turn on one part, as its owner would;
    /// the last epoch's rows.
    fn reduce_epochs(spec: &JobSpec, epochs: &[&[Event]]) -> Vec<OutRow> {
        struct Fold<'a>(&'a [&'a [Event]], Wanted);
        impl WithJob for Fold<'_> {
            type Out = Vec<OutRow>;
            fn with<J: Job<Event>>(self, job: J, row: fn(J::Row) -> Grouped) -> Vec<OutRow> {
                let mut totals = job.new_totals();
                let mut rows = Vec::new();
                for events in self.0 {
                    let mut parts: Vec<J::Part> =
                        (0..job.partitions(1)).map(|_| job.new_part()).collect();
                    job.absorb(events, &mut parts);
                    rows.clear();
                    for part in &mut parts {
                        job.finish_with_totals(part, &mut totals, &mut rows);
                    }
                }
                let mut out: Vec<OutRow> = rows.into_iter().map(|r| self.1.row(row(r))).collect();
                out.sort_by_key(|r| r.key);
                out
            }
        }
        with_job(spec, Fold(epochs, Wanted::of(spec)))
    }

    fn events() -> Vec<Event> {
        [(1, 10), (2, 5), (1, 30), (2, 7), (1, 2)]
            .into_iter()
            .map(|(key, value)| Event { key, value })
            .collect()
    }

    #[test]
    fn keyed_rows_carry_the_key_and_the_columns_asked_for() {
        let spec = JobSpec {
            kind: JobKind::Keyed,
            reductions: vec![Reduction::Count, Reduction::Mean, Reduction::Max],
            output_mode: OutputModeSpec::Epoch,
            ..JobSpec::default()
        };
        let rows = reduce(&spec, &events());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].key, Some(1));
        assert_eq!(rows[0].count, Some(3));
        assert_eq!(rows[0].mean, Some(14.0));
        assert_eq!(rows[0].max, Some(30));
        assert_eq!((rows[0].sum, rows[0].min), (None, None));
        assert_eq!(rows[1].max, Some(7));
    }

    #[test]
    fn running_modes_carry_totals_since_the_start() {
        let events = events();
        let later = [Event { key: 1, value: 8 }];
        let epochs: [&[Event]; 2] = [&events, &later];
        let spec = |output_mode| JobSpec {
            kind: JobKind::Keyed,
            reductions: vec![Reduction::Count, Reduction::Sum],
            output_mode,
            ..JobSpec::default()
        };
        let counts = |rows: Vec<OutRow>| -> Vec<(Option<u64>, Option<u64>, Option<u64>)> {
            rows.into_iter().map(|r| (r.key, r.count, r.sum)).collect()
        };
        assert_eq!(
            counts(reduce_epochs(&spec(OutputModeSpec::Epoch), &epochs)),
            [(Some(1), Some(1), Some(8))]
        );
        assert_eq!(
            counts(reduce_epochs(&spec(OutputModeSpec::Update), &epochs)),
            [(Some(1), Some(4), Some(50))]
        );
        assert_eq!(
            counts(reduce_epochs(&spec(OutputModeSpec::Complete), &epochs)),
            [(Some(1), Some(4), Some(50)), (Some(2), Some(2), Some(12))]
        );
    }

    #[test]
    fn a_global_row_has_no_key() {
        let spec = JobSpec {
            kind: JobKind::Global,
            reductions: vec![Reduction::Sum, Reduction::Min],
            output_mode: OutputModeSpec::Epoch,
            ..JobSpec::default()
        };
        let rows = reduce(&spec, &events());
        assert_eq!(
            rows,
            vec![OutRow {
                window_start_ms: None,
                window_end_ms: None,
                key: None,
                count: None,
                sum: Some(54),
                min: Some(2),
                max: None,
                mean: None
            }]
        );
    }
}
