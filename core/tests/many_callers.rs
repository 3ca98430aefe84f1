//! The shared producer: many threads through clones of one handle, each
//! record accepted once or handed back, and a full set of rings reported
//! or shed as the policy says.

use std::time::Duration;

use microbatch::{Engine, Overload, PushError, Sent};

mod common;
use common::{count_and_sum, fold_rows, held_engine, reference, Record};
use microbatch::sink::CollectSink;

/// Long enough that only a hang exceeds it on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn clones_of_a_shared_producer_from_many_threads_count_each_record_once() {
    let (sink, collected) = CollectSink::new();
    let engine = Engine::builder(count_and_sum(), sink)
        .workers(2)
        .pin(false)
        .interval(Some(Duration::from_millis(2)))
        .ring_capacity(256)
        .start()
        .unwrap();
    let shared = engine.shared_producer(2);
    assert_eq!(shared.rings(), 2);
    let records: Vec<Record> = (0..40_000u64).map(|i| (i % 97, i)).collect();
    std::thread::scope(|scope| {
        for part in records.chunks(5_000) {
            let shared = shared.clone();
            scope.spawn(move || {
                for (i, record) in part.iter().enumerate() {
                    // Mix the calls: all of them go through the same rings.
                    match i % 3 {
                        0 => shared.push(*record).unwrap(),
                        1 => shared.push_timeout(*record, PATIENCE).unwrap(),
                        _ => assert_eq!(shared.send(*record).unwrap(), Sent::Accepted),
                    }
                }
            });
        }
    });
    drop(shared);
    let summary = engine.shutdown().unwrap();
    assert_eq!(summary.records_in_results, 40_000);
    let rows = collected.take().into_iter().map(|(_, row)| row);
    assert_eq!(fold_rows(rows), reference(&records));
}

#[test]
fn a_full_shared_producer_hands_records_back_or_sheds_them_as_asked() {
    for overload in [Overload::Fail, Overload::DropNewest] {
        // One worker, stalled in the commit of epoch 0: both rings fill.
        let (builder, release, in_sink) = held_engine(overload);
        let engine = builder.start().unwrap();
        let shared = engine.shared_producer(2);
        for i in 0..100 {
            shared.push((i, 1)).unwrap();
        }
        let stalled = in_sink.recv_timeout(PATIENCE);
        let (mut accepted, mut refused) = (100u64, 0u64);
        for i in 0..1_000 {
            match (overload, shared.send((i, 1))) {
                (_, Ok(Sent::Accepted)) => accepted += 1,
                (Overload::DropNewest, Ok(Sent::Shed)) => refused += 1,
                (Overload::Fail, Err(PushError::Full(back))) => {
                    assert_eq!(back, (i, 1), "the record is handed back");
                    refused += 1;
                }
                (_, other) => panic!("{overload:?}: unexpected {other:?}"),
            }
        }
        let timed_out = shared.push_timeout((7, 7), Duration::from_millis(20));
        release.send(()).unwrap();
        stalled.expect("epoch 0 reaches the sink");
        assert_eq!(timed_out, Err(PushError::Full((7, 7))));
        // Two rings of 64, and what the worker took before it stalled.
        assert!(refused > 0 && accepted <= 100 + 128 + 100, "{accepted}");
        drop(shared);
        let summary = engine.shutdown().unwrap();
        assert_eq!(summary.records_in_results, accepted);
        let shed = if overload == Overload::DropNewest {
            refused
        } else {
            0
        };
        assert_eq!(summary.records_shed, shed);
    }
}

#[test]
fn a_shared_producer_hands_records_back_after_shutdown() {
    let engine = Engine::builder(count_and_sum(), microbatch::sink::DiscardSink)
        .workers(1)
        .pin(false)
        .start()
        .unwrap();
    let shared = engine.shared_producer(3);
    shared.push((1, 1)).unwrap();
    let summary = engine.shutdown().unwrap();
    assert_eq!(summary.records_in_results, 1);
    assert_eq!(shared.try_push((2, 2)), Err(PushError::Closed((2, 2))));
    assert_eq!(shared.push((3, 3)), Err(microbatch::Closed((3, 3))));
    assert_eq!(shared.send((4, 4)), Err(PushError::Closed((4, 4))));
}
