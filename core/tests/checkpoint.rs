//! Resuming from a checkpoint: a run stopped at any epoch (a failing sink,
//! a shutdown) and started again commits every epoch exactly once, and the
//! committed results equal those of a run never stopped. The crash test
//! with SIGKILL is the CLI's (`bench/tests/crash.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::commits::{write_log, CommitSink, Committed, PER_EPOCH, RECORDS};
use microbatch::checkpoint::Checkpoint;
use microbatch::job::{self, count, sum, Job, OutputMode};
use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
use microbatch::source::{Event, IterSource};
use microbatch::{Engine, EngineError};

const SNAPSHOT_EVERY: u64 = 3;

/// One run of `job` over the log under the checkpoint in `checkpoint`,
/// committing into `committed`; a run at a `rate` is shut down as soon as
/// `stop_after` epochs are committed.
struct Run<Row> {
    log: PathBuf,
    checkpoint: PathBuf,
    committed: Committed<Row>,
    again: Arc<AtomicU64>,
    /// The first epoch each run went through.
    firsts: Mutex<Vec<u64>>,
}

impl<Row: Ord + Send + 'static> Run<Row> {
    fn go<J: Job<Event, Row = Row>>(
        &self,
        job: J,
        fail_at: Option<u64>,
        rate: Option<u64>,
        stop_after: Option<usize>,
    ) -> Result<(), EngineError> {
        let sink = CommitSink::new(&self.committed, &self.again, fail_at);
        let first = Arc::new(AtomicU64::new(u64::MAX));
        let seen = Arc::clone(&first);
        let engine = Engine::builder(job, sink)
            .workers(2)
            .pin(false)
            .interval(None)
            .max_epochs_in_flight(2)
            .source(LogSource::new(LogReader::open(&self.log).unwrap(), rate))
            .checkpoint(
                Checkpoint::open(&self.checkpoint, PER_EPOCH)
                    .unwrap()
                    .snapshot_every(SNAPSHOT_EVERY),
            )
            .on_progress(move |progress| {
                seen.fetch_min(progress.epoch, Ordering::Relaxed);
            })
            .start()?;
        let outcome = self.drive(engine, stop_after);
        self.firsts
            .lock()
            .unwrap()
            .push(first.load(Ordering::Relaxed));
        outcome
    }

    fn drive<J: Job<Event, Row = Row>>(
        &self,
        engine: Engine<Event, J>,
        stop_after: Option<usize>,
    ) -> Result<(), EngineError> {
        match stop_after {
            Some(epochs) => {
                let before = self.committed.lock().unwrap().len();
                while self.committed.lock().unwrap().len() < before + epochs {
                    std::thread::sleep(Duration::from_millis(1));
                }
                engine.shutdown().map(drop).map_err(EngineError::from)
            }
            None => engine.finish().map(drop).map_err(EngineError::from),
        }
    }
}

fn per_epoch() -> impl Job<Event, Row = (u64, (u64, u64))> {
    job::records::<Event>()
        .key_by(|e: &Event| e.key)
        .aggregate((count(), sum(|e: &Event| e.value)))
}

fn running() -> impl Job<Event, Row = (u64, (u64, u64))> {
    job::records::<Event>()
        .key_by(|e: &Event| e.key)
        .aggregate((count(), sum(|e: &Event| e.value)))
        .running(OutputMode::Update)
}

fn snapshotted() -> impl Job<Event, Row = (u64, (u64, u64))> {
    job::records::<Event>()
        .key_by(|e: &Event| e.key)
        .aggregate((count(), sum(|e: &Event| e.value)))
        .running(OutputMode::Update)
        .snapshotted()
}

/// Runs `job` once without a stop, then again in a fresh checkpoint
/// stopped by `stops` (each: fail the sink at an epoch, or shut down at a
/// rate after some epochs), resumed each time; the two commit the same.
/// Returns the first epoch of each resumed run.
fn stopped_and_resumed_equals_uninterrupted<J>(job: impl Fn() -> J, stops: &[Stop]) -> Vec<u64>
where
    J: Job<Event, Row = (u64, (u64, u64))>,
{
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write_log(&log);
    let run = |name: &str| Run {
        log: log.clone(),
        checkpoint: dir.path().join(name),
        committed: Arc::default(),
        again: Arc::default(),
        firsts: Mutex::default(),
    };
    let reference = run("reference");
    reference.go(job(), None, None, None).unwrap();
    let expected = reference.committed.lock().unwrap().clone();
    assert!(expected.len() >= (RECORDS / PER_EPOCH) as usize);
    let counted: u64 = expected.values().flatten().map(|row| row.1 .0).sum();
    assert!(counted >= RECORDS, "every record is in a committed row");

    let stopped = run("stopped");
    for stop in stops {
        match *stop {
            Stop::SinkFailsAt(epoch) => {
                let error = stopped.go(job(), Some(epoch), None, None).unwrap_err();
                assert!(
                    matches!(error, EngineError::Sink { epoch: e, .. } if e == epoch),
                    "{error}"
                );
            }
            Stop::ShutdownAfter(epochs) => {
                stopped
                    .go(job(), None, Some(400_000), Some(epochs))
                    .unwrap();
            }
        }
    }
    stopped.go(job(), None, None, None).unwrap();
    let got = stopped.committed.lock().unwrap().clone();
    assert_eq!(got, expected);
    // Resumed runs start after the last commit: the sink never saw a
    // committed epoch again.
    assert_eq!(stopped.again.load(Ordering::Relaxed), 0);
    let firsts = stopped.firsts.lock().unwrap().clone();
    firsts
}

enum Stop {
    SinkFailsAt(u64),
    ShutdownAfter(usize),
}

#[test]
fn a_run_stopped_at_any_epoch_resumes_to_the_uninterrupted_result() {
    stopped_and_resumed_equals_uninterrupted(
        per_epoch,
        &[
            Stop::SinkFailsAt(0),
            Stop::SinkFailsAt(3),
            Stop::ShutdownAfter(1),
            Stop::SinkFailsAt(6),
            Stop::ShutdownAfter(2),
        ],
    );
}

#[test]
fn running_totals_are_rebuilt_by_replaying_committed_epochs_without_output() {
    let firsts = stopped_and_resumed_equals_uninterrupted(
        running,
        &[
            Stop::SinkFailsAt(2),
            Stop::ShutdownAfter(2),
            Stop::SinkFailsAt(7),
        ],
    );
    assert!(firsts.iter().all(|&first| first == 0), "{firsts:?}");
}

#[test]
fn snapshotted_totals_resume_after_the_last_snapshot() {
    let firsts = stopped_and_resumed_equals_uninterrupted(
        snapshotted,
        &[
            Stop::SinkFailsAt(4),
            Stop::ShutdownAfter(2),
            Stop::SinkFailsAt(8),
        ],
    );
    // Failing at epoch 4 leaves the snapshot after epoch 2; at 8, the one
    // after epoch 5 (snapshots every 3 epochs).
    assert_eq!(firsts[0], 0);
    assert_eq!(firsts[1], 3);
    assert!(firsts[2] >= 3, "{firsts:?}");
    assert_eq!(firsts[3], 6);
}

#[test]
fn a_checkpoint_refuses_what_it_cannot_replay() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write_log(&log);
    let checkpoint = || Checkpoint::open(dir.path().join("cp"), PER_EPOCH).unwrap();
    let setting = |result: Result<Engine<Event, _>, EngineError>| match result {
        Err(EngineError::Config(error)) => error.setting,
        Err(other) => panic!("not a config error: {other}"),
        Ok(_) => panic!("started"),
    };
    let sink = || microbatch::sink::DiscardSink;

    let with_interval = Engine::builder(per_epoch(), sink())
        .interval(Some(Duration::from_millis(100)))
        .source(LogSource::new(LogReader::open(&log).unwrap(), None))
        .checkpoint(checkpoint())
        .start();
    assert_eq!(setting(with_interval), "interval");

    let without_source = Engine::builder(per_epoch(), sink())
        .interval(None)
        .checkpoint(checkpoint())
        .start();
    assert_eq!(setting(without_source), "checkpoint");

    // Another log under the same checkpoint: refused, not resumed at
    // positions that mean nothing there.
    Engine::builder(per_epoch(), sink())
        .interval(None)
        .source(LogSource::new(LogReader::open(&log).unwrap(), None))
        .checkpoint(checkpoint())
        .start()
        .unwrap()
        .finish()
        .unwrap();
    let other = dir.path().join("other");
    let mut writer = LogWriter::create(&other, LogOptions::default()).unwrap();
    writer.append(Event { key: 1, value: 1 }).unwrap();
    writer.finish().unwrap();
    match Engine::builder(per_epoch(), sink())
        .interval(None)
        .source(LogSource::new(LogReader::open(&other).unwrap(), None))
        .checkpoint(checkpoint())
        .start()
    {
        Err(EngineError::Checkpoint { source, .. }) => {
            assert!(source.to_string().contains("source"), "{source}")
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("resumed over another log"),
    }

    let not_replayable = Engine::builder(per_epoch(), sink())
        .interval(None)
        .source(IterSource::new(vec![Event { key: 1, value: 1 }]))
        .checkpoint(checkpoint())
        .start();
    assert_eq!(setting(not_replayable), "checkpoint");
}

#[test]
fn a_shutdown_completes_the_open_epoch_of_the_plan_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write_log(&log);
    let reference = Run {
        log: log.clone(),
        checkpoint: dir.path().join("reference"),
        committed: Arc::default(),
        again: Arc::default(),
        firsts: Mutex::default(),
    };
    reference.go(per_epoch(), None, None, None).unwrap();

    // At 100 records/s, epoch 0 would take 100 s to come due.
    let (sink, collected) = microbatch::sink::CollectSink::new();
    let engine = Engine::builder(per_epoch(), sink)
        .workers(2)
        .pin(false)
        .interval(None)
        .source(LogSource::new(LogReader::open(&log).unwrap(), Some(100)))
        .checkpoint(Checkpoint::open(dir.path().join("slow"), PER_EPOCH).unwrap())
        .start()
        .unwrap();
    while engine.progress().records_taken == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let summary = engine.shutdown().unwrap();
    assert_eq!(summary.epochs, 1);
    let mut rows: Vec<_> = collected.take().into_iter().map(|(_, row)| row).collect();
    rows.sort();
    assert_eq!(rows, reference.committed.lock().unwrap()[&0]);
}
