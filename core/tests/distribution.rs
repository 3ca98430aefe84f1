//! Where records and keys go: partitioners, placement (combined or
//! partitioned folds), producers placed on the least-loaded worker, work
//! stealing, and the hot keys each epoch reports. Results never depend on
//! any of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use microbatch::job::{self, count, sum, FnPartitioner, Partitioner, RangePartitioner};
use microbatch::sink::{ChannelSink, CollectSink, EpochResult};
use microbatch::source::IterSource;
use microbatch::{Engine, EngineError, PlacementPolicy};

mod common;
use common::{count_and_sum, fold_rows, reference, Record, Row};

/// Runs keys 0..300 through 3 workers with `partitioner`, folding as
/// `placement` says; returns the (partition, key) of every row the sink
/// saw.
fn partitions_of_keys(
    partitioner: impl Partitioner<u64>,
    placement: PlacementPolicy,
) -> Vec<(usize, u64)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = Arc::clone(&seen);
        microbatch::sink::CallbackSink::new(move |_, partition, rows: &[(u64, u64)]| {
            seen.lock()
                .unwrap()
                .extend(rows.iter().map(|r| (partition, r.0)));
        })
    };
    let job = job::records::<u64>()
        .key_by(|v| *v)
        .partition_by(partitioner)
        .aggregate(count());
    Engine::builder(job, sink)
        .workers(3)
        .pin(false)
        .placement(placement)
        .source(IterSource::new(0..300u64))
        .start()
        .unwrap()
        .finish()
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    seen
}

#[test]
fn keys_go_to_the_partition_their_partitioner_names() {
    for placement in [PlacementPolicy::Partitioned, PlacementPolicy::Combined] {
        let by_range = partitions_of_keys(RangePartitioner::new(vec![100, 200]), placement);
        let by_function =
            partitions_of_keys(FnPartitioner(|k: &u64, n| (*k as usize) % n), placement);
        for (seen, expected) in [
            (by_range, (|key| key as usize / 100) as fn(u64) -> usize),
            (by_function, |key| key as usize % 3),
        ] {
            assert_eq!(seen.len(), 300, "{placement:?}");
            for (partition, key) in seen {
                assert_eq!(partition, expected(key), "key {key}, {placement:?}");
            }
        }
    }
}

#[test]
fn a_partition_out_of_range_stops_the_engine_naming_it() {
    for placement in [PlacementPolicy::Partitioned, PlacementPolicy::Combined] {
        let job = job::records::<u64>()
            .key_by(|v| *v)
            .partition_by(FnPartitioner(|k: &u64, n| if *k == 7 { n } else { 0 }))
            .aggregate(count());
        let error = Engine::builder(job, CollectSink::new().0)
            .workers(2)
            .pin(false)
            .placement(placement)
            .source(IterSource::new(0..100u64))
            .start()
            .unwrap()
            .finish()
            .unwrap_err();
        assert!(
            matches!(&error.error, EngineError::WorkerPanicked { message, .. }
                if message.contains("partition 2 of 2")),
            "{placement:?}: {error}"
        );
    }
}

#[test]
fn every_placement_gives_the_same_rows_and_combined_batches_are_counted() {
    let run = |placement| {
        let (sink, results) = ChannelSink::unbounded();
        let summary = Engine::builder(count_and_sum(), sink)
            .workers(2)
            .pin(false)
            .interval(None)
            .max_batch_records(Some(50_000))
            .placement(placement)
            .source(IterSource::new((0..1_000_000u64).map(|i| (i % 100, i))))
            .start()
            .unwrap()
            .finish()
            .unwrap();
        let results: Vec<EpochResult<Row>> = results.try_iter().collect();
        assert_eq!(summary.records_in_results, 1_000_000);
        let combined: usize = results.iter().map(|r| r.progress.combined_batches).sum();
        (
            fold_rows(results.iter().flat_map(|r| r.rows.iter().copied())),
            combined,
            results.len(),
        )
    };
    let (partitioned, none, _) = run(PlacementPolicy::Partitioned);
    let (combined, all, epochs) = run(PlacementPolicy::Combined);
    let (adaptive, _, _) = run(PlacementPolicy::Adaptive);
    assert_eq!(none, 0);
    assert!(all >= epochs, "{all} combined batches in {epochs} epochs");
    assert_eq!(partitioned, combined);
    assert_eq!(partitioned, adaptive);
}

#[test]
fn a_new_producer_goes_to_the_least_loaded_worker() {
    let (sink, _results) = ChannelSink::unbounded();
    let engine = Engine::builder(count_and_sum(), sink)
        .workers(3)
        .pin(false)
        .start()
        .unwrap();
    let first = engine.producer();
    let second = engine.producer();
    let third = engine.producer();
    let mut workers = vec![first.worker(), second.worker(), third.worker()];
    workers.sort_unstable();
    assert_eq!(workers, vec![0, 1, 2], "one handle each");
    // Worker of `second` loses its handle: the next one goes there.
    let freed = second.worker();
    drop(second);
    assert_eq!(engine.producer().worker(), freed);
    // Two handles on one worker: a new one avoids it.
    let crowded = first.worker();
    let _extra = engine.producer_for(crowded).unwrap();
    assert_ne!(engine.producer().worker(), crowded);
    drop((first, third));
    engine.shutdown().unwrap();
}

/// Worker 0 is stuck in its first chunk until another worker has reduced
/// records of worker 0's ring: only a steal can release it (the gate gives
/// up after a minute, and then the assertions fail).
#[test]
fn an_idle_worker_steals_from_a_busy_one() {
    // Worker 0 stalls on its first record until another worker has folded
    // one, so the records can only get through if worker 1 steals them.
    // Worker 0 holds the claim on the ring it stalls in; the thief takes
    // from its second ring.
    static OTHERS: AtomicU64 = AtomicU64::new(0);
    let wait_for_thief = || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while OTHERS.load(Ordering::Acquire) == 0 {
            assert!(std::time::Instant::now() < deadline, "nobody stole");
            std::thread::yield_now();
        }
    };
    let job = job::records::<Record>()
        .map(move |r: &Record| {
            if std::thread::current().name() == Some("microbatch-worker-0") {
                wait_for_thief();
            } else {
                OTHERS.fetch_add(1, Ordering::Release);
            }
            *r
        })
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &Record| r.1)));
    let (sink, results) = ChannelSink::unbounded();
    let engine = Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .interval(None)
        .ring_capacity(1 << 16)
        .start()
        .unwrap();
    let records: Vec<Record> = (0..50_000u64).map(|i| (i % 100, i)).collect();
    let (first, second) = records.split_at(records.len() / 2);
    let mut producers = [
        engine.producer_for(0).unwrap(),
        engine.producer_for(0).unwrap(),
    ];
    producers[0].push_slice(first).unwrap();
    producers[1].push_slice(second).unwrap();
    drop(producers);
    // Shutting down stops the stealing: wait until it has happened.
    wait_for_thief();
    let summary = engine.shutdown().unwrap();
    let epochs: Vec<EpochResult<Row>> = results.try_iter().collect();
    assert!(summary.records_stolen > 0, "{summary:?}");
    let stolen: u64 = epochs.iter().map(|e| e.progress.records_stolen).sum();
    assert_eq!(stolen, summary.records_stolen);
    let by_worker_1: u64 = epochs
        .iter()
        .map(|e| e.progress.records_per_worker[1])
        .sum();
    assert_eq!(
        by_worker_1, stolen,
        "worker 1 has no ring: all it took it stole"
    );
    assert_eq!(summary.records_in_results, records.len() as u64);
    let rows = epochs.into_iter().flat_map(|e| e.rows);
    assert_eq!(fold_rows(rows), reference(&records));
}

#[test]
fn without_stealing_a_ring_is_read_by_its_own_worker_only() {
    let (sink, results) = ChannelSink::unbounded();
    let engine = Engine::builder(count_and_sum(), sink)
        .workers(2)
        .pin(false)
        .work_stealing(false)
        .start()
        .unwrap();
    let records: Vec<Record> = (0..200_000u64).map(|i| (i % 1000, i)).collect();
    let mut producer = engine.producer_for(0).unwrap();
    producer.push_slice(&records).unwrap();
    drop(producer);
    let summary = engine.shutdown().unwrap();
    assert_eq!(summary.records_stolen, 0);
    let epochs: Vec<EpochResult<Row>> = results.try_iter().collect();
    let by_worker_1: u64 = epochs
        .iter()
        .map(|e| e.progress.records_per_worker[1])
        .sum();
    assert_eq!(by_worker_1, 0);
    // Worker 1 had nothing to take: it waited, and says so.
    assert!(epochs
        .iter()
        .all(|e| e.progress.waited_per_worker.len() == 2));
    let waited_1: Duration = epochs.iter().map(|e| e.progress.waited_per_worker[1]).sum();
    assert!(waited_1 > Duration::ZERO, "worker 1 never waited");
    let rows = epochs.into_iter().flat_map(|e| e.rows);
    assert_eq!(fold_rows(rows), reference(&records));
}

#[test]
fn an_epoch_reports_its_hottest_keys() {
    // Key 7 takes about half of the records, in no pattern the sampling
    // could alias with; the other half spreads over 1000 keys.
    let records: Vec<Record> = (0..1_000_000u64)
        .map(|i| {
            let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
            if mixed % 100 < 50 {
                (7, i)
            } else {
                (1000 + mixed % 1000, i)
            }
        })
        .collect();
    let hot_records = records.iter().filter(|r| r.0 == 7).count() as u64;
    let (sink, results) = ChannelSink::unbounded();
    let engine = Engine::builder(count_and_sum(), sink)
        .workers(2)
        .pin(false)
        .interval(None)
        .max_batch_records(None)
        .start()
        .unwrap();
    let mut producers = [
        engine.producer_for(0).unwrap(),
        engine.producer_for(1).unwrap(),
    ];
    let (first, second) = records.split_at(records.len() / 2);
    producers[0].push_slice(first).unwrap();
    producers[1].push_slice(second).unwrap();
    drop(producers);
    engine.shutdown().unwrap();
    let epochs: Vec<EpochResult<Row>> = results.try_iter().collect();
    assert_eq!(epochs.len(), 1, "batch mode: one epoch");
    let hot = &epochs[0].progress.hot_keys;
    assert!(!hot.is_empty() && hot.len() <= microbatch::progress::HOT_KEYS_REPORTED);
    assert_eq!(hot[0].key, "7", "{hot:?}");
    // About 490 samples of key 7 (1 record in 1024): a few % of sampling
    // error, and none from the summary (32 slots, 1000 cold keys).
    let estimate = hot[0].records;
    assert!(
        estimate.abs_diff(hot_records) <= hot_records / 5,
        "estimated {estimate}, true {hot_records}"
    );
    assert!(hot.windows(2).all(|w| w[0].records >= w[1].records));
    // A global job has no keys to report.
    let (sink, results) = ChannelSink::unbounded();
    let engine = Engine::builder(job::records::<Record>().aggregate(count()), sink)
        .workers(2)
        .pin(false)
        .source(IterSource::new(records))
        .start()
        .unwrap();
    engine.finish().unwrap();
    assert!(results.try_iter().all(|e| e.progress.hot_keys.is_empty()));
}
