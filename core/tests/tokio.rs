//! The tokio side of the engine: pushes that await room without blocking
//! the runtime's thread, records handed back at shutdown, results read
//! with `.await`, and a future for the engine's failure.

#![cfg(feature = "tokio")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use microbatch::job::{self, count};
use microbatch::sink::CallbackSink;
use microbatch::tokio::ChannelSink;
use microbatch::{Closed, Engine, Overload, PushError, Sent};

mod common;
use common::{count_and_sum, fold_rows, held_engine, reference, Record};

/// Long enough that only a hang exceeds it on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `test` on a one-thread runtime in a thread of its own, and fails
/// (rather than hangs) if it does not finish within `PATIENCE`: a push
/// that blocked the runtime's only thread would stall it.
fn on_one_thread<F>(test: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    let (done, finished) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(test());
        let _ = done.send(());
    });
    let outcome = finished.recv_timeout(PATIENCE);
    if outcome.is_err() && runner.is_finished() {
        // The test panicked: show its message.
        runner.join().unwrap();
    }
    outcome.expect("the test finishes: no push blocked the runtime's thread");
}

/// A started [`held_engine`].
fn held(
    overload: Overload,
) -> (
    Engine<Record, impl microbatch::job::Job<Record>>,
    mpsc::Sender<()>,
    mpsc::Receiver<()>,
) {
    let (builder, release, in_sink) = held_engine(overload);
    (builder.start().unwrap(), release, in_sink)
}

#[test]
fn a_push_into_a_full_ring_awaits_room_while_the_runtime_runs_other_tasks() {
    on_one_thread(|| async {
        let (engine, release, in_sink) = held(Overload::Block);
        let producer = engine.async_producer(1);
        let pushed = Arc::new(AtomicU64::new(0));
        let pusher = tokio::spawn({
            let (producer, pushed) = (producer.clone(), Arc::clone(&pushed));
            async move {
                for i in 0..5_000u64 {
                    producer.push((i % 10, 1)).await.unwrap();
                    pushed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        // The pusher runs into the held sink and awaits room; this task
        // still runs, on the same thread, and lets the sink go.
        while in_sink.try_recv().is_err() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let stuck_at = pushed.load(Ordering::Relaxed);
        assert!(stuck_at < 5_000, "the pusher waits for room");
        assert!(!pusher.is_finished());
        release.send(()).unwrap();
        pusher.await.unwrap();
        let summary = engine.shutdown_async().await.unwrap();
        assert_eq!(summary.records_in_results, 5_000);
    });
}

#[test]
fn try_push_push_timeout_and_send_bound_the_wait_as_asked() {
    for overload in [Overload::Fail, Overload::DropNewest] {
        on_one_thread(move || async move {
            let (engine, release, in_sink) = held(overload);
            let producer = engine.async_producer(2);
            for i in 0..100 {
                producer.push((i, 1)).await.unwrap();
            }
            while in_sink.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let (mut accepted, mut refused) = (100u64, 0u64);
            for i in 0..1_000 {
                match (overload, producer.send((i, 1)).await) {
                    (_, Ok(Sent::Accepted)) => accepted += 1,
                    (Overload::DropNewest, Ok(Sent::Shed)) => refused += 1,
                    (Overload::Fail, Err(PushError::Full(back))) => {
                        assert_eq!(back, (i, 1));
                        refused += 1;
                    }
                    (_, other) => panic!("{overload:?}: unexpected {other:?}"),
                }
            }
            let tried = producer.try_push((5, 5)).await;
            let timed = producer
                .push_timeout((6, 6), Duration::from_millis(20))
                .await;
            release.send(()).unwrap();
            assert_eq!(tried, Err(PushError::Full((5, 5))));
            assert_eq!(timed, Err(PushError::Full((6, 6))));
            assert!(refused > 0);
            drop(producer);
            let summary = engine.shutdown_async().await.unwrap();
            assert_eq!(summary.records_in_results, accepted);
            let shed = if overload == Overload::DropNewest {
                refused
            } else {
                0
            };
            assert_eq!(summary.records_shed, shed);
        });
    }
}

#[test]
fn pushes_racing_an_async_shutdown_are_each_accepted_once_or_handed_back() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        for round in 0..20u64 {
            let (sink, mut results) = ChannelSink::unbounded();
            let engine = Engine::builder(count_and_sum(), sink)
                .workers(2)
                .pin(false)
                .interval(Some(Duration::from_millis(1)))
                .ring_capacity(64)
                .start()
                .unwrap();
            let producer = engine.async_producer(2);
            let tasks: Vec<_> = (0..4u64)
                .map(|task| {
                    let producer = producer.clone();
                    tokio::spawn(async move {
                        let mut accepted = Vec::new();
                        for i in 0.. {
                            let record = (task * 1_000_000 + i, 1);
                            match producer.push(record).await {
                                Ok(()) => accepted.push(record),
                                Err(Closed(back)) => {
                                    assert_eq!(back, record);
                                    return accepted;
                                }
                            }
                        }
                        unreachable!()
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_micros(200 * round)).await;
            let summary = engine.shutdown_async().await.unwrap();
            let mut accepted: Vec<Record> = Vec::new();
            for task in tasks {
                accepted.extend(task.await.unwrap());
            }
            let mut rows = Vec::new();
            while let Some(epoch) = results.recv().await {
                rows.extend(epoch.rows);
            }
            assert_eq!(summary.records_in_results, accepted.len() as u64);
            assert_eq!(fold_rows(rows), reference(&accepted), "round {round}");
        }
    });
}

#[test]
fn the_failure_future_carries_the_cause_or_ends_with_a_clean_shutdown() {
    on_one_thread(|| async {
        let failing = CallbackSink::new(|_, _, _: &[(u64, u64)]| panic!("the disk is gone"));
        let engine = Engine::builder(
            job::records::<u64>().key_by(|v| *v).aggregate(count()),
            failing,
        )
        .workers(1)
        .pin(false)
        .start()
        .unwrap();
        let failed = tokio::spawn(engine.failed());
        engine.async_producer(1).push(1).await.unwrap();
        let cause = failed.await.unwrap().expect("the engine fails");
        assert!(cause.contains("the disk is gone"), "{cause}");
        let error = engine.shutdown_async().await.unwrap_err();
        assert!(error.to_string().contains("the disk is gone"), "{error}");

        let (sink, results) = ChannelSink::<(u64, u64)>::bounded(4);
        let engine = Engine::builder(
            job::records::<u64>().key_by(|v| *v).aggregate(count()),
            sink,
        )
        .workers(1)
        .pin(false)
        .start()
        .unwrap();
        let failed = tokio::spawn(engine.failed());
        engine.async_producer(1).push(1).await.unwrap();
        let summary = engine.shutdown_async().await.unwrap();
        assert_eq!(summary.records_in_results, 1);
        assert_eq!(
            failed.await.unwrap(),
            None,
            "a clean shutdown ends the wait"
        );
        drop(results);
    });
}

#[test]
fn a_dropped_receiver_fails_the_engine_with_a_clear_message() {
    on_one_thread(|| async {
        let (sink, results) = ChannelSink::<(u64, u64)>::bounded(1);
        let engine = Engine::builder(
            job::records::<u64>().key_by(|v| *v).aggregate(count()),
            sink,
        )
        .workers(1)
        .pin(false)
        .interval(Some(Duration::from_millis(1)))
        .start()
        .unwrap();
        let failed = engine.failed();
        drop(results);
        engine.async_producer(1).push(1).await.unwrap();
        let cause = failed.await.expect("the engine fails");
        assert!(
            cause.contains("receiver of epoch results was dropped"),
            "{cause}"
        );
        assert!(engine.shutdown_async().await.is_err());
    });
}
