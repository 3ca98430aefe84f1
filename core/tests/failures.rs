//! How a service embedding the engine sees its failures: a channel
//! reader's iteration ends and the cause is reachable; progress answers
//! while the sink is slow; a failed shutdown still says what was done; a
//! panic names the epoch it happened in; panic policies come from the
//! settings.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use microbatch::job::{self, count};
use microbatch::progress::EpochProgress;
use microbatch::sink::{ChannelSink, Sink, SinkError};
use microbatch::source::IterSource;
use microbatch::{Config, ConfigError, Engine, EngineError, OnPanic};

mod common;
use common::{count_and_sum, held_engine, HeldSink, Row};

/// Long enough that only a hang exceeds it on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn after_a_failure_the_channel_reader_ends_and_the_cause_is_reachable() {
    let unlucky = job::records::<u64>()
        .map(|v: &u64| {
            assert_ne!(*v, 500, "record 500 is unlucky");
            *v
        })
        .key_by(|v| *v % 7)
        .aggregate(count());
    let (sink, results) = ChannelSink::bounded(4);
    let engine = Engine::builder(unlucky, sink)
        .workers(2)
        .pin(false)
        .source(IterSource::new(0..1000u64))
        .start()
        .unwrap();
    // The reader drains what came and then sees the channel end, with no
    // call to shutdown.
    loop {
        match results.recv_timeout(PATIENCE) {
            Ok(_) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the reader waits forever"),
        }
    }
    let failure = engine.failure().expect("the engine failed");
    assert!(failure.contains("record 500 is unlucky"), "{failure}");
    let error = engine.shutdown().unwrap_err();
    assert!(
        matches!(error.error, EngineError::WorkerPanicked { .. }),
        "{error}"
    );
}

/// A sink whose commit of epoch 0 waits until it is let go.
#[test]
fn progress_answers_while_the_sink_is_slow() {
    let (release, held) = mpsc::channel();
    let (entered, in_sink) = mpsc::channel();
    let sink = HeldSink {
        release: Mutex::new(held),
        entered: Mutex::new(entered),
    };
    let engine = Arc::new(
        Engine::builder(count_and_sum(), sink)
            .workers(2)
            .pin(false)
            .interval(Some(Duration::from_millis(5)))
            .start()
            .unwrap(),
    );
    engine.producer().push((1, 1)).unwrap();
    in_sink
        .recv_timeout(PATIENCE)
        .expect("epoch 0 reaches the sink");
    // The sink holds epoch 0's commit; progress must not wait for it.
    let (answered, answer) = mpsc::channel();
    let asking = Arc::clone(&engine);
    let asker = std::thread::spawn(move || {
        let _ = answered.send(asking.progress().epochs_completed);
    });
    let completed = answer
        .recv_timeout(PATIENCE)
        .expect("progress answers while the sink is busy");
    assert_eq!(completed, 0);
    asker.join().unwrap();
    release.send(()).unwrap();
    let engine = Arc::into_inner(engine).expect("the only handle");
    assert_eq!(engine.shutdown().unwrap().records_in_results, 1);
}

/// 10 000 records over 10 keys into `sink`, on `workers` workers, in
/// epochs of 1000 records per worker; the run's end.
fn epochs_of_1000_into(
    sink: impl Sink<Row>,
    workers: usize,
) -> Result<microbatch::Summary, microbatch::ShutdownError> {
    let records: Vec<(u64, u64)> = (0..10_000).map(|i| (i % 10, 1)).collect();
    Engine::builder(count_and_sum(), sink)
        .workers(workers)
        .pin(false)
        .interval(None)
        .max_batch_records(Some(1000))
        .source(IterSource::new(records))
        .start()
        .unwrap()
        .finish()
}

/// Fails from epoch `from` on.
struct FailsFrom(u64);

impl Sink<Row> for FailsFrom {
    fn write(&self, epoch: u64, _: usize, _: &mut Vec<Row>) -> Result<(), SinkError> {
        if epoch >= self.0 {
            return Err(SinkError::Custom(format!("no room for epoch {epoch}")));
        }
        Ok(())
    }
}

#[test]
fn a_failed_shutdown_carries_the_summary_so_far() {
    // One worker: each epoch completes before the next is written.
    let failure = epochs_of_1000_into(FailsFrom(2), 1).unwrap_err();
    assert!(
        matches!(failure.error, EngineError::Sink { epoch: 2, .. }),
        "{failure}"
    );
    assert_eq!(failure.summary.epochs, 2, "epochs 0 and 1 were emitted");
    assert_eq!(failure.summary.records_in_results, 2000);
    assert!(failure.summary.records_accepted >= failure.summary.records_in_results);
    assert!(
        failure.to_string().contains("records accepted"),
        "{failure}"
    );
    // The Debug form an unwrap prints shows the histogram in a few words.
    let debug = format!("{failure:?}");
    assert!(
        debug.contains("latency_histogram: Histogram { len: "),
        "{debug}"
    );
    assert!(debug.len() < 2_000, "{} bytes of Debug", debug.len());
}

/// Panics when it commits epoch 1.
struct PanicsAtOne;

impl Sink<Row> for PanicsAtOne {
    fn write(&self, _: u64, _: usize, _: &mut Vec<Row>) -> Result<(), SinkError> {
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        assert_ne!(epoch, 1, "sink bug at epoch {epoch}");
        Ok(())
    }
}

#[test]
fn a_panicking_sink_is_reported_in_the_epoch_it_was_given() {
    match epochs_of_1000_into(PanicsAtOne, 2).unwrap_err().error {
        EngineError::WorkerPanicked {
            epoch: Some(epoch),
            message,
            ..
        } => {
            assert_eq!(epoch, 1, "{message}");
            assert!(message.contains("sink bug at epoch 1"), "{message}");
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn a_panic_policy_in_the_settings_needs_the_builders_policy() {
    let mut config = Config::default().with_workers(1).with_pin(false);
    config.on_panic = OnPanic::DeadLetters;
    let missing = config.validate().unwrap_err();
    assert_eq!(missing.setting, "dead_letters");
    let dir = tempfile::tempdir().unwrap();
    config.dead_letters = Some(dir.path().join("dead.jsonl"));
    config.validate().unwrap();
    let policy = config.panic_policy().unwrap();
    assert_eq!(policy.retries, 2);
    // Without it, the builder cannot honour the setting: refused.
    let refused = Engine::builder(count_and_sum(), microbatch::sink::DiscardSink)
        .config(config.clone())
        .start()
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            EngineError::Config(ConfigError {
                setting: "on_panic",
                ..
            })
        ),
        "{refused}"
    );
    let engine = Engine::builder(count_and_sum(), microbatch::sink::DiscardSink)
        .config(config)
        .on_panic(policy)
        .start()
        .unwrap();
    engine.shutdown().unwrap();
}

#[test]
fn a_service_sheds_load_instead_of_waiting_when_it_asks_to() {
    // One worker, which stalls in the sink's commit of epoch 0: its ring
    // fills, and what does not fit is shed, not waited for.
    let backlog = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::clone(&backlog);
    let (builder, release, in_sink) = held_engine(microbatch::Overload::DropNewest);
    let engine = builder
        .on_progress(move |epoch| {
            most.fetch_max(epoch.ring_backlog, std::sync::atomic::Ordering::Relaxed);
        })
        .start()
        .unwrap();
    let mut producer = engine.producer();
    for i in 0..100 {
        producer.push((i, 1)).unwrap();
    }
    let stalled = in_sink.recv_timeout(PATIENCE);
    let mut shed = 0;
    for i in 0..10_000 {
        if producer.send((i, 1)).unwrap() == microbatch::Sent::Shed {
            shed += 1;
        }
    }
    let shed_so_far = engine.progress().records_shed;
    // Let the sink go before any assertion: a failed one must not leave
    // the worker stalled forever.
    release.send(()).unwrap();
    drop(producer);
    let summary = engine.shutdown().unwrap();
    stalled.expect("epoch 0 reaches the sink");
    assert!(shed > 0, "a stalled engine sheds");
    assert_eq!(shed_so_far, shed);
    assert_eq!(summary.records_shed, shed);
    assert_eq!(
        summary.records_in_results + shed,
        10_100,
        "every record is in or shed, once"
    );
    // The worker came back to a full ring: the progress says so.
    assert_eq!(backlog.load(std::sync::atomic::Ordering::Relaxed), 64);
}
