//! Several queries under one checkpoint: each commits its own epochs to
//! its own sink and records them in `DIR/queries/<name>`. A run stopped
//! by any query's failing sink and started again commits, query for
//! query, exactly the rows of a run never stopped, and no sink sees an
//! epoch it committed again: the resumed run starts at the first epoch
//! some query has not committed and folds the others' without output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

mod common;

use common::commits::{write_log, CommitSink, Committed, PER_EPOCH, RECORDS};
use microbatch::checkpoint::Checkpoint;
use microbatch::job::{self, count, sum, Job, OutputMode};
use microbatch::log::{LogReader, LogSource};
use microbatch::queries::{Queries, Query, SchedulerPolicy};
use microbatch::source::Event;
use microbatch::{Engine, EngineError};

type Row = (u64, (u64, u64));

fn per_key() -> impl Job<Event, Row = Row> {
    job::records::<Event>()
        .key_by(|e: &Event| e.key)
        .aggregate((count(), sum(|e: &Event| e.value)))
}

/// A query of the test: its name, its epoch in engine epochs, whether it
/// keeps running totals, its priority.
#[derive(Clone, Copy)]
struct Spec {
    name: &'static str,
    every: u64,
    running: bool,
    priority: i64,
}

/// What one query committed over every run.
struct Output {
    committed: Committed<Row>,
    again: Arc<AtomicU64>,
}

/// Runs of the queries of `specs` under one checkpoint.
struct Runs {
    dir: tempfile::TempDir,
    specs: Vec<Spec>,
    outputs: Vec<Output>,
    /// The first epoch each run went through.
    firsts: Mutex<Vec<u64>>,
}

impl Runs {
    fn new(dir: tempfile::TempDir, specs: &[Spec]) -> Self {
        Runs {
            dir,
            specs: specs.to_vec(),
            outputs: specs
                .iter()
                .map(|_| Output {
                    committed: Arc::default(),
                    again: Arc::default(),
                })
                .collect(),
            firsts: Mutex::default(),
        }
    }

    /// One run to the log's end, under the checkpoint `name` over the log
    /// in `log`, with query `fail.0`'s sink failing at epoch `fail.1`.
    fn go(
        &self,
        log: &std::path::Path,
        name: &str,
        fail: Option<(usize, u64)>,
    ) -> Result<(), EngineError> {
        self.go_until(log, name, fail, None)
    }

    /// [`go`](Runs::go), or with `stop_after`, a run at a pace shut down
    /// once the first query committed that many more epochs.
    fn go_until(
        &self,
        log: &std::path::Path,
        name: &str,
        fail: Option<(usize, u64)>,
        stop_after: Option<usize>,
    ) -> Result<(), EngineError> {
        let mut queries = Queries::new(SchedulerPolicy::Priority).piece(16);
        for (q, (spec, output)) in self.specs.iter().zip(&self.outputs).enumerate() {
            let fail_at = fail
                .filter(|(which, _)| *which == q)
                .map(|(_, epoch)| epoch);
            let sink = CommitSink::new(&output.committed, &output.again, fail_at);
            let query = if spec.running {
                let running = job::records::<Event>()
                    .key_by(|e: &Event| e.key)
                    .aggregate((count(), sum(|e: &Event| e.value)))
                    .running(OutputMode::Update);
                Query::new(spec.name, running, sink)
            } else {
                Query::new(spec.name, per_key(), sink)
            };
            queries = queries.query(query.every(spec.every).priority(spec.priority));
        }
        let (job, sink) = queries.build();
        let first = Arc::new(AtomicU64::new(u64::MAX));
        let seen = Arc::clone(&first);
        let started = Engine::builder(job, sink)
            .workers(2)
            .pin(false)
            .interval(None)
            .max_epochs_in_flight(2)
            .source(LogSource::new(
                LogReader::open(log).unwrap(),
                stop_after.map(|_| 200_000),
            ))
            .checkpoint(Checkpoint::open(self.dir.path().join(name), PER_EPOCH).unwrap())
            .on_progress(move |progress| {
                seen.fetch_min(progress.epoch, Ordering::Relaxed);
            })
            .start();
        let outcome = started.and_then(|engine| {
            let ended = match stop_after {
                Some(epochs) => {
                    let committed = || self.outputs[0].committed.lock().unwrap().len();
                    let before = committed();
                    while committed() < before + epochs {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    engine.shutdown()
                }
                None => engine.finish(),
            };
            ended.map(drop).map_err(EngineError::from)
        });
        self.firsts
            .lock()
            .unwrap()
            .push(first.load(Ordering::Relaxed));
        outcome
    }
}

/// The engine's last epoch over the log.
const LAST_EPOCH: u64 = RECORDS / PER_EPOCH - 1;

/// Runs `specs` once never stopped, and once stopped by each of `fails`
/// and resumed: `(q, ahead)` fails query `q`'s sink at its epoch `ahead`
/// past the first it has not committed (skipped if past the log's end:
/// the query may have run ahead of the others). Each query commits the
/// same in both, no sink sees an epoch twice. Returns the first epoch of
/// each resumed run.
fn stopped_and_resumed_equals_uninterrupted(specs: &[Spec], fails: &[(usize, u64)]) -> Vec<u64> {
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("log");
    write_log(&log);
    let reference = Runs::new(tempfile::tempdir().unwrap(), specs);
    reference.go(&log, "reference", None).unwrap();
    let stopped = Runs::new(tempfile::tempdir().unwrap(), specs);
    let mut failed = 0;
    for &(q, ahead) in fails {
        let every = specs[q].every;
        let committed = stopped.outputs[q].committed.lock().unwrap();
        let next = committed.keys().next_back().map_or(0, |last| last + 1);
        drop(committed);
        // The query's epochs end at engine epochs `e` with `(e + 1) % every == 0`.
        let epoch = ((next + 1).div_ceil(every) + ahead) * every - 1;
        if epoch > LAST_EPOCH {
            continue;
        }
        let error = stopped.go(&log, "stopped", Some((q, epoch))).unwrap_err();
        assert!(
            matches!(error, EngineError::Sink { epoch: e, .. } if e == epoch),
            "{error}"
        );
        failed += 1;
    }
    assert!(
        failed >= 2,
        "only {failed} of the stops fell within the log"
    );
    stopped.go(&log, "stopped", None).unwrap();
    for (q, spec) in specs.iter().enumerate() {
        let expected = reference.outputs[q].committed.lock().unwrap().clone();
        let epochs = RECORDS / PER_EPOCH;
        assert!(
            expected.len() as u64 >= epochs / spec.every,
            "{}",
            spec.name
        );
        if !spec.running {
            let counted: u64 = expected.values().flatten().map(|row| row.1 .0).sum();
            assert_eq!(counted, RECORDS, "{}: every record once", spec.name);
        }
        let got = stopped.outputs[q].committed.lock().unwrap().clone();
        assert_eq!(got, expected, "{}", spec.name);
        let again = stopped.outputs[q].again.load(Ordering::Relaxed);
        assert_eq!(
            again, 0,
            "{}: a committed epoch was written again",
            spec.name
        );
    }
    let firsts = stopped.firsts.lock().unwrap().clone();
    firsts[1..].to_vec()
}

const EACH: Spec = Spec {
    name: "each",
    every: 1,
    running: false,
    priority: 10,
};
const EVERY_THREE: Spec = Spec {
    name: "every-3",
    every: 3,
    running: false,
    priority: 0,
};

#[test]
fn each_query_resumes_after_its_own_last_commit() {
    // "every-3" commits epochs 2, 5, 8 and 9 (the last); "each" every epoch.
    let firsts = stopped_and_resumed_equals_uninterrupted(
        &[EACH, EVERY_THREE],
        &[(1, 1), (0, 0), (1, 0), (0, 0)],
    );
    // Failing "every-3" at 5 leaves its last commit at 2, "each" (ahead
    // by priority) at 5 or later: the next run starts at 3, folding 3 to
    // 5 again without output for "each".
    assert_eq!(firsts[0], 3);
    // Later runs start after the last commit of one of them, never from
    // the first epoch.
    assert!(firsts.iter().all(|&first| first >= 3), "{firsts:?}");
}

#[test]
fn a_query_with_running_totals_replays_from_the_first_epoch() {
    let running = Spec {
        name: "running",
        every: 2,
        running: true,
        priority: 5,
    };
    let firsts = stopped_and_resumed_equals_uninterrupted(
        &[EACH, EVERY_THREE, running],
        &[(2, 1), (0, 0), (1, 0)],
    );
    assert!(firsts.iter().all(|&first| first == 0), "{firsts:?}");
}

#[test]
fn a_shutdown_mid_log_ends_each_query_epoch_and_a_replay_keeps_it_ended() {
    // The shutdown ends every query's epoch where it stops, out of step
    // with "every-3"'s; the running query makes each later run replay
    // from the first epoch, where "every-3" must end its epoch again.
    let running = Spec {
        name: "running",
        every: 2,
        running: true,
        priority: 5,
    };
    let specs = [EACH, EVERY_THREE, running];
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("log");
    write_log(&log);
    let runs = Runs::new(tempfile::tempdir().unwrap(), &specs);
    runs.go_until(&log, "cp", None, Some(4)).unwrap();
    let stopped_at = *runs.outputs[1]
        .committed
        .lock()
        .unwrap()
        .keys()
        .next_back()
        .unwrap();
    runs.go(&log, "cp", Some((2, LAST_EPOCH))).unwrap_err();
    runs.go(&log, "cp", None).unwrap();
    assert!(
        stopped_at < LAST_EPOCH,
        "the shutdown came after the log's end"
    );
    // Each record once in each per-epoch query's rows, whatever the
    // grouping; the running query's last rows hold the totals of all.
    let mut want = std::collections::BTreeMap::new();
    for i in 0..RECORDS {
        let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
        let entry = want.entry(key).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += i % 7;
    }
    for (q, spec) in specs.iter().enumerate() {
        let committed = runs.outputs[q].committed.lock().unwrap();
        let mut got = std::collections::BTreeMap::new();
        if spec.running {
            for (key, totals) in committed.values().flatten() {
                got.insert(*key, *totals);
            }
        } else {
            for (key, (n, total)) in committed.values().flatten() {
                let entry = got.entry(*key).or_insert((0, 0));
                entry.0 += n;
                entry.1 += total;
            }
        }
        assert_eq!(got, want, "{}", spec.name);
        assert_eq!(
            runs.outputs[q].again.load(Ordering::Relaxed),
            0,
            "{}",
            spec.name
        );
    }
    // "every-3" ended an epoch where the shutdown came, and went on from
    // there in its own step.
    let every_three: Vec<u64> = runs.outputs[1]
        .committed
        .lock()
        .unwrap()
        .keys()
        .copied()
        .collect();
    assert!(every_three.contains(&stopped_at), "{every_three:?}");
}

#[test]
fn a_query_name_that_cannot_name_a_file_is_refused_at_start() {
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("log");
    write_log(&log);
    let runs = Runs::new(
        tempfile::tempdir().unwrap(),
        &[Spec {
            name: "../escape",
            ..EACH
        }],
    );
    let error = runs.go(&log, "cp", None).unwrap_err();
    assert!(matches!(error, EngineError::Checkpoint { .. }), "{error}");
    assert!(
        error.to_string().contains("cannot name its file"),
        "{error}"
    );
    assert!(runs.outputs[0].committed.lock().unwrap().is_empty());
}
