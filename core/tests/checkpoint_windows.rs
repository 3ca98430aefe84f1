//! A windowed job under a checkpoint: stopped at any epoch and resumed,
//! it commits exactly the rows, epoch for epoch, of a run never stopped:
//! the replay of the committed epochs closes each window where the first
//! run did. So do two jobs run together (`Job::and`): from a snapshot of
//! both, or by replay when one of them cannot be snapshotted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use microbatch::checkpoint::Checkpoint;
use microbatch::job::{
    self, count, sum, Count, Either, Identity, Job, Sum, Window, WindowedJob, Windows,
};
use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
use microbatch::progress::EpochProgress;
use microbatch::queries::{Queries, Query, SchedulerPolicy};
use microbatch::sink::{DiscardSink, Sink, SinkError};
use microbatch::source::TimedEvent;
use microbatch::{Engine, EngineError};

type Row = (Window, u64, (u64, u64));
type Committed = Arc<Mutex<BTreeMap<u64, Vec<Row>>>>;

/// Commits each epoch whole, once; fails at `fail_at` before committing.
struct CommitSink {
    pending: Mutex<BTreeMap<u64, Vec<Row>>>,
    committed: Committed,
    fail_at: Option<u64>,
}

/// A row of a job under test, as the sink commits it.
trait IntoRow: Send + 'static {
    fn into_row(self) -> Row;
}

impl IntoRow for Row {
    fn into_row(self) -> Row {
        self
    }
}

/// A per-epoch count beside windows: the count's rows with an empty window.
impl IntoRow for Either<(u64, u64), Row> {
    fn into_row(self) -> Row {
        match self {
            Either::First((key, n)) => (
                Window {
                    start_ms: 0,
                    end_ms: 0,
                },
                key,
                (n, 0),
            ),
            Either::Second(row) => row,
        }
    }
}

/// Two windowed jobs: the first's rows marked by an odd window end.
impl IntoRow for Either<Row, Row> {
    fn into_row(self) -> Row {
        match self {
            Either::First((window, key, n)) => (
                Window {
                    end_ms: window.end_ms | 1 << 63,
                    ..window
                },
                key,
                n,
            ),
            Either::Second(row) => row,
        }
    }
}

impl<T: IntoRow> Sink<T> for CommitSink {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<T>) -> Result<(), SinkError> {
        self.pending
            .lock()
            .unwrap()
            .entry(epoch)
            .or_default()
            .extend(rows.drain(..).map(IntoRow::into_row));
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        let mut rows = self
            .pending
            .lock()
            .unwrap()
            .remove(&epoch)
            .unwrap_or_default();
        if self.fail_at == Some(epoch) {
            return Err(SinkError::Custom(format!("injected failure at {epoch}")));
        }
        rows.sort();
        let previous = self.committed.lock().unwrap().insert(epoch, rows);
        assert!(previous.is_none(), "epoch {epoch} committed twice");
        Ok(())
    }
}

const RECORDS: u64 = 60_000;
const PER_EPOCH: u64 = 3_000;

/// Records over 6 s of event time, each up to 50 ms behind the newest
/// before it in the log.
fn write_log(dir: &Path) {
    let options = LogOptions {
        block_records: 500,
        ..LogOptions::default()
    };
    let mut writer = LogWriter::create(dir, options).unwrap();
    for i in 0..RECORDS {
        writer
            .append(TimedEvent {
                key: i % 11,
                value: i % 17,
                event_time_ms: event_time(i),
            })
            .unwrap();
    }
    writer.finish().unwrap();
}

/// The event time of record `i`: ten records a millisecond, up to 50 ms
/// late.
fn event_time(i: u64) -> u64 {
    i / 10 + 50 - (i * 7919) % 51
}

/// A column of a record.
type Column = fn(&TimedEvent) -> u64;

/// The job, named so that it can be made `snapshotted` or not.
type Hopping = WindowedJob<TimedEvent, Identity, Column, Column, (Count, Sum<Column>)>;

fn windowed() -> Hopping {
    job::records::<TimedEvent>()
        .event_time(event_time_of as Column)
        .window(Windows::hopping(
            Duration::from_millis(300),
            Duration::from_millis(100),
        ))
        .watermark_delay(Duration::from_millis(50))
        .key_by(key_of as Column)
        .aggregate((count(), sum(value_of as Column)))
}

fn event_time_of(e: &TimedEvent) -> u64 {
    e.event_time_ms
}

fn key_of(e: &TimedEvent) -> u64 {
    e.key
}

fn value_of(e: &TimedEvent) -> u64 {
    e.value
}

/// How the open windows survive a stop: rebuilt by replaying from the
/// first epoch, or loaded from a snapshot taken every other epoch.
#[derive(Clone, Copy, PartialEq)]
enum Resume {
    Replay,
    Snapshot,
    /// The snapshotted windows behind a `Box` (`BoxedJob`), which must
    /// forward every hook, the restored frontier among them.
    BoxedSnapshot,
    /// Session windows (of a 1 ms gap), snapshotted.
    SessionSnapshot,
    /// A per-epoch count (no totals) and the sessions, from a snapshot.
    TwoJobsSnapshot,
    /// The windows (not snapshotted) and the sessions (snapshotted): a
    /// snapshot of both cannot be taken, so a resume replays.
    TwoJobsReplay,
    /// The windows as one of two queries on one engine, into its own sink
    /// (the other a per-key count): a query's totals are not snapshotted,
    /// so a resume replays, the windows' output only from its last commit.
    Queries,
}

fn sessions() -> impl Job<TimedEvent, Row = Row> {
    job::records::<TimedEvent>()
        .event_time(event_time_of)
        .session(Duration::from_millis(1))
        .watermark_delay(Duration::from_millis(50))
        .key_by(key_of)
        .aggregate((count(), sum(value_of)))
        .snapshotted()
}

/// Runs the job over `log` under `checkpoint`; returns the records the
/// run read.
fn go(
    resume: Resume,
    log: &Path,
    checkpoint: &Path,
    committed: &Committed,
    fail_at: Option<u64>,
) -> Result<u64, EngineError> {
    match resume {
        Resume::Replay => run(windowed(), log, checkpoint, committed, fail_at),
        Resume::Snapshot => run(
            windowed().snapshotted(),
            log,
            checkpoint,
            committed,
            fail_at,
        ),
        Resume::BoxedSnapshot => run(
            Box::new(windowed().snapshotted()),
            log,
            checkpoint,
            committed,
            fail_at,
        ),
        Resume::SessionSnapshot => run(sessions(), log, checkpoint, committed, fail_at),
        Resume::TwoJobsSnapshot => {
            let per_epoch = job::records::<TimedEvent>()
                .key_by(key_of)
                .aggregate(count());
            let both = per_epoch.and(sessions());
            run(both, log, checkpoint, committed, fail_at)
        }
        Resume::TwoJobsReplay => {
            let both = windowed().and(sessions());
            run(both, log, checkpoint, committed, fail_at)
        }
        Resume::Queries => {
            let windows = CommitSink {
                pending: Mutex::default(),
                committed: Arc::clone(committed),
                fail_at,
            };
            let per_key = job::records::<TimedEvent>()
                .key_by(key_of)
                .aggregate(count());
            let (job, sink) = Queries::new(SchedulerPolicy::Priority)
                .query(Query::new("windows", windowed(), windows))
                .query(Query::new("per_key", per_key, DiscardSink).priority(5))
                .build();
            start(job, sink, log, checkpoint)
        }
    }
}

fn run<J: Job<TimedEvent>>(
    job: J,
    log: &Path,
    checkpoint: &Path,
    committed: &Committed,
    fail_at: Option<u64>,
) -> Result<u64, EngineError>
where
    J::Row: IntoRow,
{
    let sink = CommitSink {
        pending: Mutex::default(),
        committed: Arc::clone(committed),
        fail_at,
    };
    start(job, sink, log, checkpoint)
}

/// Runs `job` into `sink` over `log` under `checkpoint` to the log's end;
/// the records it read.
fn start<J: Job<TimedEvent>, S: Sink<J::Row>>(
    job: J,
    sink: S,
    log: &Path,
    checkpoint: &Path,
) -> Result<u64, EngineError> {
    Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .interval(None)
        .max_epochs_in_flight(2)
        .source(LogSource::new(LogReader::open(log).unwrap(), None))
        .checkpoint(
            Checkpoint::open(checkpoint, PER_EPOCH)
                .unwrap()
                .snapshot_every(2),
        )
        .start()?
        .finish()
        .map(|summary| summary.records_accepted)
        .map_err(EngineError::from)
}

#[test]
fn a_windowed_run_stopped_at_any_epoch_resumes_to_the_uninterrupted_rows() {
    stopped_and_resumed(Resume::Replay);
}

#[test]
fn a_snapshotted_windowed_run_resumes_from_its_snapshot_to_the_same_rows() {
    stopped_and_resumed(Resume::Snapshot);
}

#[test]
fn a_boxed_snapshotted_windowed_run_resumes_from_its_snapshot_to_the_same_rows() {
    stopped_and_resumed(Resume::BoxedSnapshot);
}

#[test]
fn a_snapshotted_session_run_resumes_from_its_snapshot_to_the_same_rows() {
    stopped_and_resumed(Resume::SessionSnapshot);
}

#[test]
fn two_jobs_resume_from_a_snapshot_of_both_to_the_same_rows() {
    stopped_and_resumed(Resume::TwoJobsSnapshot);
}

#[test]
fn two_jobs_of_which_one_cannot_be_snapshotted_replay_to_the_same_rows() {
    stopped_and_resumed(Resume::TwoJobsReplay);
}

#[test]
fn a_windowed_query_resumes_to_the_rows_of_the_job_run_alone() {
    stopped_and_resumed(Resume::Queries);
    // And beside another query its rows are the job's own, epoch for epoch.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write_log(&log);
    let (alone, queried): (Committed, Committed) = (Arc::default(), Arc::default());
    go(
        Resume::Replay,
        &log,
        &dir.path().join("alone"),
        &alone,
        None,
    )
    .unwrap();
    go(
        Resume::Queries,
        &log,
        &dir.path().join("queried"),
        &queried,
        None,
    )
    .unwrap();
    assert_eq!(*queried.lock().unwrap(), *alone.lock().unwrap());
}

fn stopped_and_resumed(resume: Resume) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write_log(&log);
    let reference: Committed = Arc::default();
    go(
        resume,
        &log,
        &dir.path().join("reference"),
        &reference,
        None,
    )
    .unwrap();
    let expected = reference.lock().unwrap().clone();
    let counted: u64 = expected.values().flatten().map(|row| row.2 .0).sum();
    // Each record is in three windows, fewer near time 0; in one session.
    let in_windows: u64 = (0..RECORDS).map(|i| (event_time(i) / 100 + 1).min(3)).sum();
    let windows_per_record: u64 = match resume {
        Resume::SessionSnapshot => RECORDS,
        // Once in its epoch's count, once in its session.
        Resume::TwoJobsSnapshot => 2 * RECORDS,
        Resume::TwoJobsReplay => in_windows + RECORDS,
        Resume::Replay | Resume::Snapshot | Resume::BoxedSnapshot | Resume::Queries => in_windows,
    };
    assert_eq!(
        counted, windows_per_record,
        "each record in each of its windows"
    );
    assert!(
        expected.values().filter(|rows| !rows.is_empty()).count() > 5,
        "windows go out over the run, not all at its end"
    );

    let stopped: Committed = Arc::default();
    let checkpoint = dir.path().join("stopped");
    for fail_at in [0, 4, 5, 11] {
        let error = go(resume, &log, &checkpoint, &stopped, Some(fail_at)).unwrap_err();
        assert!(
            matches!(error, EngineError::Sink { epoch, .. } if epoch == fail_at),
            "{error}"
        );
    }
    let read = go(resume, &log, &checkpoint, &stopped, None).unwrap();
    assert_eq!(*stopped.lock().unwrap(), expected);
    // The last start commits from epoch 11 on (the stop at 11 failed it):
    // a replay reads the log from its start, a snapshot (after every other
    // epoch: 1, 3, …, 9) from epoch 10.
    let from = match resume {
        Resume::Replay | Resume::TwoJobsReplay | Resume::Queries => 0,
        Resume::Snapshot
        | Resume::BoxedSnapshot
        | Resume::SessionSnapshot
        | Resume::TwoJobsSnapshot => 10 * PER_EPOCH,
    };
    assert_eq!(read, RECORDS - from, "where the last start read from");
}
