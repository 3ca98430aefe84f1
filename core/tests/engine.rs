//! The engine against a single-threaded reference, and its invariants:
//! nothing lost or doubled, whole epochs, both triggers, batch mode,
//! shutdown drain, bad configuration, a panicking worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use microbatch::job::{self, count, sum, RangePartitioner};
use microbatch::progress::SealReason;
use microbatch::sink::{ChannelSink, CollectSink, EpochResult, Sink, SinkError};
use microbatch::source::{Generator, GeneratorConfig, IterSource};
use microbatch::{Config, Engine, EngineError, PlacementPolicy, PushError};
use proptest::prelude::*;

mod common;
use common::{count_and_sum, fold_rows, reference, Record, Row};

/// How a producer thread pushes.
#[derive(Debug, Clone, Copy)]
enum PushStyle {
    One,
    Slice,
    Try,
}

#[derive(Debug, Clone)]
struct Workload {
    workers: usize,
    max_batch_records: Option<u64>,
    interval_micros: Option<u64>,
    window: usize,
    ring_capacity: usize,
    work_stealing: bool,
    placement: PlacementPolicy,
    producers: Vec<(PushStyle, Vec<Record>)>,
}

fn placement() -> impl Strategy<Value = PlacementPolicy> {
    prop_oneof![
        Just(PlacementPolicy::Adaptive),
        Just(PlacementPolicy::Partitioned),
        Just(PlacementPolicy::Combined)
    ]
}

fn workload() -> impl Strategy<Value = Workload> {
    let style = prop_oneof![
        Just(PushStyle::One),
        Just(PushStyle::Slice),
        Just(PushStyle::Try)
    ];
    (
        1usize..=3,
        prop::option::of(1u64..3000),
        prop::option::of(50u64..20_000),
        1usize..=4,
        1usize..=1024,
        1u64..500,
        prop::collection::vec((style, 0usize..6000), 1..4),
        (any::<bool>(), placement()),
    )
        .prop_flat_map(
            |(
                workers,
                n,
                interval,
                window,
                capacity,
                keys,
                producers,
                (work_stealing, placement),
            )| {
                let producers: Vec<_> = producers
                    .into_iter()
                    .map(|(style, len)| {
                        (
                            Just(style),
                            prop::collection::vec((0..keys, any::<u64>()), len),
                        )
                    })
                    .collect();
                producers.prop_map(move |producers| Workload {
                    workers,
                    max_batch_records: n,
                    interval_micros: interval,
                    window,
                    ring_capacity: capacity,
                    work_stealing,
                    placement,
                    producers,
                })
            },
        )
}

fn run_workload(workload: &Workload) -> (Vec<EpochResult<Row>>, microbatch::Summary) {
    let (sink, results) = ChannelSink::unbounded();
    let engine = Engine::builder(count_and_sum(), sink)
        .workers(workload.workers)
        .pin(false)
        .max_batch_records(workload.max_batch_records)
        .interval(workload.interval_micros.map(Duration::from_micros))
        .max_epochs_in_flight(workload.window)
        .ring_capacity(workload.ring_capacity)
        .work_stealing(workload.work_stealing)
        .placement(workload.placement)
        .start()
        .unwrap();
    std::thread::scope(|scope| {
        for (style, records) in &workload.producers {
            let mut producer = engine.producer();
            scope.spawn(move || match style {
                PushStyle::One => records.iter().for_each(|r| producer.push(*r).unwrap()),
                PushStyle::Slice => records
                    .chunks(97)
                    .for_each(|chunk| producer.push_slice(chunk).unwrap()),
                PushStyle::Try => {
                    for &record in records {
                        let mut record = record;
                        while let Err(PushError::Full(back)) = producer.try_push(record) {
                            record = back;
                            std::thread::yield_now();
                        }
                    }
                }
            });
        }
    });
    let summary = engine.shutdown().unwrap();
    (results.try_iter().collect(), summary)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_record_lost_or_doubled(workload in workload()) {
        let all: Vec<Record> = workload.producers.iter().flat_map(|p| p.1.iter().copied()).collect();
        let (results, summary) = run_workload(&workload);
        let got = fold_rows(results.iter().flat_map(|r| r.rows.iter().copied()));
        prop_assert_eq!(got, reference(&all));
        prop_assert_eq!(summary.records_accepted, all.len() as u64);
        prop_assert_eq!(summary.records_in_results, all.len() as u64);
        // One result per epoch, in order, none missing.
        let epochs: Vec<u64> = results.iter().map(|r| r.epoch).collect();
        prop_assert_eq!(epochs, (0..results.len() as u64).collect::<Vec<_>>());
        for result in &results {
            // Whole epochs: the rows hold exactly the records the workers
            // sealed into the epoch, and no key twice.
            let in_rows: u64 = result.rows.iter().map(|r| r.1 .0).sum();
            prop_assert_eq!(in_rows, result.progress.records);
            let keys = fold_rows(result.rows.iter().copied()).len();
            prop_assert_eq!(keys, result.rows.len());
            if let Some(limit) = workload.max_batch_records {
                prop_assert!(result.progress.records_per_worker.iter().all(|&r| r <= limit));
            }
        }
    }
}

#[test]
fn count_trigger_seals_batches_of_at_most_n() {
    let records: Vec<Record> = (0..20_000).map(|i| (i % 10, i)).collect();
    let workload = Workload {
        workers: 2,
        max_batch_records: Some(500),
        interval_micros: None,
        window: 2,
        ring_capacity: 4096,
        work_stealing: true,
        placement: PlacementPolicy::Combined,
        producers: vec![(PushStyle::Slice, records.clone())],
    };
    let (results, _) = run_workload(&workload);
    // Each of the 2 workers (one reading the ring, one stealing from it)
    // takes at most 500 records into an epoch.
    assert!(
        results.len() >= 20_000 / (2 * 500),
        "{} epochs",
        results.len()
    );
    let (last, sealed_by_count) = results.split_last().unwrap();
    assert_eq!(last.progress.seal_reason, SealReason::Shutdown);
    for result in sealed_by_count {
        assert_eq!(result.progress.seal_reason, SealReason::Count);
        assert!(result.progress.records_per_worker.iter().all(|&r| r <= 500));
    }
    assert_eq!(
        fold_rows(results.into_iter().flat_map(|r| r.rows)),
        reference(&records)
    );
}

/// 2 000 generated records over 50 keys at `per_second`, and a job that
/// counts them per key.
fn paced_count(
    per_second: u64,
) -> (
    Generator,
    impl job::Job<microbatch::source::Event, Row = (u64, u64)>,
) {
    let generator = Generator::new(GeneratorConfig {
        keys: 50,
        rate: Some(per_second),
        records: Some(2_000),
        ..GeneratorConfig::default()
    });
    let job = job::records::<microbatch::source::Event>()
        .key_by(|e| e.key)
        .aggregate(count());
    (generator, job)
}

#[test]
fn waiting_for_sources_times_out_while_they_run_and_returns_when_they_end() {
    // 2 000 records at 4 000 a second: the source runs for at least
    // 500 ms, so a 1 ms wait right after the start ends by its timeout.
    let (generator, job) = paced_count(4_000);
    let engine = Engine::builder(job, CollectSink::new().0)
        .workers(2)
        .pin(false)
        .source(generator)
        .start()
        .unwrap();
    assert!(!engine.wait_for_sources(Duration::from_millis(1)));
    assert!(!engine.sources_exhausted());
    // Woken by the last source's end, long before this timeout.
    assert!(engine.wait_for_sources(Duration::from_secs(600)));
    assert_eq!(engine.shutdown().unwrap().records_in_results, 2_000);
}

#[test]
fn interval_trigger_seals_while_records_flow() {
    // 2 000 records at 20 000 a second take at least 100 ms of wall time,
    // whatever the machine's load: 5 ms intervals must run out meanwhile.
    let (generator, job) = paced_count(20_000);
    let (sink, results) = ChannelSink::unbounded();
    let engine = Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .interval(Some(Duration::from_millis(5)))
        .max_batch_records(None)
        .source(generator)
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    let results: Vec<_> = results.try_iter().collect();
    let reasons: Vec<_> = results.iter().map(|r| r.progress.seal_reason).collect();
    assert!(
        reasons
            .iter()
            .filter(|r| **r == SealReason::Interval)
            .count()
            >= 1,
        "{reasons:?}"
    );
    assert!(!reasons.contains(&SealReason::Count));
    assert_eq!(summary.records_accepted, 2_000);
    let counted: u64 = results.iter().flat_map(|r| &r.rows).map(|r| r.1).sum();
    assert_eq!(counted, 2_000);
    assert!(summary.latency.records == 2_000 && summary.latency.max_micros > 0);
}

#[test]
fn batch_mode_is_one_epoch_sealed_at_shutdown() {
    let records: Vec<Record> = (0..50_000).map(|i| (i % 1000, i)).collect();
    let (sink, results) = ChannelSink::bounded(16);
    let config = Config::default()
        .with_workers(2)
        .with_pin(false)
        .with_interval(None)
        .with_max_batch_records(None);
    assert!(config.is_batch_mode());
    let engine = Engine::builder(count_and_sum(), sink)
        .config(config)
        .source(IterSource::new(records.clone()))
        .start()
        .unwrap();
    while !engine.sources_exhausted() {
        std::thread::yield_now();
    }
    // Taken counts are live, before any epoch is sealed.
    assert_eq!(engine.progress().records_taken, 50_000);
    assert_eq!(engine.progress().epochs_completed, 0);
    let summary = engine.finish().unwrap();
    let results: Vec<_> = results.try_iter().collect();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].progress.seal_reason, SealReason::Shutdown);
    assert_eq!(results[0].progress.records, 50_000);
    assert_eq!(summary.epochs, 1);
    assert_eq!(
        fold_rows(results.into_iter().flat_map(|r| r.rows)),
        reference(&records)
    );
}

#[test]
fn shutdown_drains_full_rings() {
    // The rings hold everything pushed; shutdown comes before the workers
    // could have taken most of it.
    let records: Vec<Record> = (0..200_000).map(|i| (i % 7, 1)).collect();
    let (sink, collected) = CollectSink::new();
    let engine = Engine::builder(count_and_sum(), sink)
        .workers(2)
        .pin(false)
        .ring_capacity(1 << 18)
        .start()
        .unwrap();
    for chunk in records.chunks(50_000) {
        engine.producer().push_slice(chunk).unwrap();
    }
    let summary = engine.shutdown().unwrap();
    assert_eq!(summary.records_accepted, 200_000);
    assert_eq!(summary.records_in_results, 200_000);
    let rows = collected.take().into_iter().map(|(_, row)| row);
    assert_eq!(fold_rows(rows), reference(&records));
}

#[test]
fn pushes_racing_shutdown_are_accepted_or_handed_back() {
    let (sink, collected) = CollectSink::new();
    let engine = Engine::builder(count_and_sum(), sink)
        .workers(2)
        .pin(false)
        .ring_capacity(64)
        .start()
        .unwrap();
    let pushed = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let mut producer = engine.producer();
            let pushed = Arc::clone(&pushed);
            std::thread::spawn(move || {
                let (mut accepted, mut handed_back) = (0u64, None);
                for i in 0u64.. {
                    let record = (t, i);
                    let outcome = if i % 2 == 0 {
                        producer.push(record).map_err(|c| c.0)
                    } else {
                        producer.push_slice(&[record]).map_err(|c| c.0[0])
                    };
                    match outcome {
                        Ok(()) => {
                            accepted += 1;
                            pushed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(back) => {
                            handed_back = Some(back);
                            break;
                        }
                    }
                }
                assert_eq!(
                    handed_back,
                    Some((t, accepted)),
                    "the record handed back is the one pushed"
                );
                accepted
            })
        })
        .collect();
    while pushed.load(Ordering::Relaxed) < 30_000 {
        std::thread::yield_now();
    }
    let summary = engine.shutdown().unwrap();
    let accepted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(summary.records_accepted, accepted);
    assert_eq!(summary.records_in_results, accepted);
    let counted: u64 = collected.take().iter().map(|(_, row)| row.1 .0).sum();
    assert_eq!(counted, accepted);
}

#[test]
fn pushes_after_shutdown_are_handed_back() {
    let engine = Engine::builder(count_and_sum(), CollectSink::new().0)
        .workers(1)
        .pin(false)
        .start()
        .unwrap();
    let mut producer = engine.producer();
    producer.push((1, 1)).unwrap();
    let summary = engine.shutdown().unwrap();
    assert_eq!(summary.records_in_results, 1);
    assert_eq!(producer.push((2, 2)).unwrap_err().0, (2, 2));
    assert_eq!(
        producer.try_push((3, 3)).unwrap_err(),
        PushError::Closed((3, 3))
    );
    assert_eq!(
        producer.push_slice(&[(4, 4), (5, 5)]).unwrap_err().0,
        &[(4, 4), (5, 5)]
    );
}

#[test]
fn bad_settings_and_jobs_are_typed_errors() {
    let start = |config: Config| {
        Engine::builder(count_and_sum(), CollectSink::new().0)
            .config(config)
            .start()
            .map(drop)
            .unwrap_err()
    };
    let setting = |error: EngineError| match error {
        EngineError::Config(e) => e.setting,
        other => panic!("not a config error: {other}"),
    };
    assert_eq!(setting(start(Config::default().with_workers(0))), "workers");
    assert_eq!(
        setting(start(Config::default().with_ring_capacity(0))),
        "ring_capacity"
    );
    assert_eq!(
        setting(start(Config::default().with_interval(Some(Duration::ZERO)))),
        "interval"
    );

    let ranged = job::records::<Record>()
        .key_by(|r| r.0)
        .partition_by(RangePartitioner::new(vec![10, 20]))
        .aggregate(count());
    let error = Engine::builder(ranged, CollectSink::new().0)
        .workers(2)
        .start()
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::Job { workers: 2, .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("2 range bounds make 3 partitions"),
        "{error}"
    );

    let engine = Engine::builder(count_and_sum(), CollectSink::new().0)
        .workers(2)
        .pin(false)
        .start()
        .unwrap();
    assert!(matches!(
        engine.producer_for(2),
        Err(EngineError::NoSuchWorker {
            worker: 2,
            workers: 2
        })
    ));
}

#[test]
fn a_panicking_worker_stops_the_engine_with_its_name_and_reason() {
    let job = job::records::<Record>()
        .map(|r: &Record| {
            assert!(r.1 != 13, "record 13 is unlucky");
            *r
        })
        .key_by(|r| r.0)
        .aggregate(count());
    // Without stealing, record 13 can only reach worker 1.
    let engine = Engine::builder(job, CollectSink::new().0)
        .workers(2)
        .pin(false)
        .work_stealing(false)
        .start()
        .unwrap();
    let mut producer = engine.producer_for(1).unwrap();
    // The producer pushes until the engine closes; it must not hang.
    let pushing = std::thread::spawn(move || {
        for i in 0.. {
            if producer.push((i, i)).is_err() {
                return i;
            }
        }
        unreachable!()
    });
    assert!(pushing.join().unwrap() >= 13);
    match engine.shutdown().unwrap_err().error {
        EngineError::WorkerPanicked {
            worker,
            epoch,
            message,
        } => {
            assert_eq!(worker, 1);
            assert!(epoch.is_some(), "a worker's panic names its open epoch");
            assert!(message.contains("record 13 is unlucky"), "{message}");
        }
        other => panic!("unexpected error: {other}"),
    }
}

struct FailingSink;

impl Sink<Row> for FailingSink {
    fn write(&self, epoch: u64, _: usize, _: &mut Vec<Row>) -> Result<(), SinkError> {
        Err(SinkError::Custom(format!("no room for epoch {epoch}")))
    }
}

#[test]
fn a_failing_sink_stops_the_engine_with_its_error() {
    let engine = Engine::builder(count_and_sum(), FailingSink)
        .workers(2)
        .pin(false)
        .start()
        .unwrap();
    engine.producer().push((1, 1)).unwrap();
    match engine.shutdown().unwrap_err().error {
        EngineError::Sink { epoch: 0, source } => assert!(source.to_string().contains("no room")),
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn global_reduction_over_a_filtered_column() {
    let total = job::records::<u64>()
        .filter(|v| v % 3 == 0)
        .aggregate((count(), sum(|v: &u64| *v)));
    let (sink, collected) = CollectSink::new();
    let engine = Engine::builder(total, sink)
        .workers(2)
        .pin(false)
        .max_batch_records(Some(10_000))
        .source(IterSource::new(0..100_000u64))
        .start()
        .unwrap();
    engine.finish().unwrap();
    let rows: Vec<(u64, u64)> = collected.take().into_iter().map(|(_, row)| row).collect();
    let (c, s) = rows.iter().fold((0, 0), |a, r| (a.0 + r.0, a.1 + r.1));
    assert_eq!(
        (c, s),
        (33_334, (0..100_000u64).filter(|v| v % 3 == 0).sum())
    );
}

#[test]
fn progress_listener_sees_every_epoch_in_order() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener_seen = Arc::clone(&seen);
    let engine = Engine::builder(count_and_sum(), CollectSink::new().0)
        .workers(2)
        .pin(false)
        .max_batch_records(Some(1000))
        .on_progress(move |p| listener_seen.lock().unwrap().push((p.epoch, p.records)))
        .source(IterSource::new((0..10_000u64).map(|i| (i, i))))
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    let seen = seen.lock().unwrap();
    let epochs: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(epochs, (0..summary.epochs).collect::<Vec<_>>());
    assert_eq!(seen.iter().map(|s| s.1).sum::<u64>(), 10_000);
}

#[test]
fn running_totals_end_at_the_totals_of_every_record() {
    use microbatch::job::OutputMode;
    let records: Vec<Record> = (0..20_000u64).map(|i| (i % 100, i)).collect();
    for mode in [OutputMode::Update, OutputMode::Complete] {
        let job = job::records::<Record>()
            .key_by(|r| r.0)
            .aggregate((count(), sum(|r: &Record| r.1)))
            .running(mode);
        let (sink, results) = ChannelSink::unbounded();
        let engine = Engine::builder(job, sink)
            .workers(2)
            .pin(false)
            .interval(None)
            .max_batch_records(Some(500))
            .start()
            .unwrap();
        let mut producer = engine.producer();
        producer.push_slice(&records).unwrap();
        drop(producer);
        engine.shutdown().unwrap();
        let epochs: Vec<EpochResult<Row>> = results.try_iter().collect();
        assert!(epochs.len() >= 10, "{} epochs", epochs.len());
        // Per key, its rows in epoch order: totals only grow, and the
        // last is the total over every record.
        let mut last: HashMap<u64, (u64, u64)> = HashMap::new();
        let mut keys_seen = 0;
        for epoch in &epochs {
            let mut in_epoch = 0;
            for &(key, total) in &epoch.rows {
                in_epoch += 1;
                if let Some(before) = last.insert(key, total) {
                    assert!(
                        total.0 >= before.0 && total.1 >= before.1,
                        "{key}: {before:?} then {total:?}"
                    );
                    if mode == OutputMode::Update {
                        assert!(total.0 > before.0, "{key}: an update row without records");
                    }
                }
            }
            keys_seen = keys_seen.max(last.len());
            if mode == OutputMode::Complete {
                assert_eq!(in_epoch, keys_seen, "complete mode: every key seen so far");
            }
        }
        assert_eq!(last, reference(&records), "{mode:?}");
    }
}

#[test]
fn flat_map_feeds_each_record_to_several_keys() {
    // A record (user, page) counts once for its user and once for its page.
    let records: Vec<Record> = (0..50_000u64).map(|i| (i % 97, 1000 + i % 13)).collect();
    let job = job::records::<Record>()
        .flat_map(|&(user, page)| [user, page])
        .key_by(|key| *key)
        .aggregate(count());
    let (sink, results) = ChannelSink::unbounded();
    let engine = Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .interval(Some(Duration::from_millis(2)))
        .source(IterSource::new(records.clone()))
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    assert_eq!(summary.records_in_results, records.len() as u64);
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for epoch in results.try_iter() {
        for (key, n) in epoch.rows {
            *counts.entry(key).or_default() += n;
        }
    }
    let mut expected: HashMap<u64, u64> = HashMap::new();
    for &(user, page) in &records {
        *expected.entry(user).or_default() += 1;
        *expected.entry(page).or_default() += 1;
    }
    assert_eq!(counts, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A key borrowed from the record (`key_by_ref`) groups, partitions
    /// and counts as the same key made per record (`key_by`) does, and as
    /// a single-threaded fold over the records.
    #[test]
    fn a_borrowed_key_groups_as_the_owned_one(
        records in prop::collection::vec(("[a-e]{0,3}", 0u64..1000), 0..400),
        workers in 1usize..4,
        by_partitioner in any::<bool>(),
    ) {
        let records: Vec<(String, u64)> = records;
        let mut expected: HashMap<String, (u64, u64)> = HashMap::new();
        for (path, value) in &records {
            let entry = expected.entry(path.clone()).or_default();
            entry.0 += 1;
            entry.1 += value;
        }
        let stream = job::records::<(String, u64)>;
        let first_byte = |key: &str, partitions: usize| {
            key.bytes().next().map_or(0, usize::from) % partitions
        };
        let borrowed = if by_partitioner {
            per_path(
                stream()
                    .key_by_ref(|r| r.0.as_str())
                    .partition_by(job::FnPartitioner(first_byte))
                    .aggregate_with(|c| (c.count(), c.sum(|r| r.1))),
                workers,
                &records,
            )
        } else {
            per_path(
                stream()
                    .key_by_ref(|r| r.0.as_str())
                    .aggregate_with(|c| (c.count(), c.sum(|r| r.1))),
                workers,
                &records,
            )
        };
        let owned = per_path(
            stream()
                .key_by(|r| r.0.clone())
                .aggregate_with(|c| (c.count(), c.sum(|r| r.1))),
            workers,
            &records,
        );
        prop_assert_eq!(&borrowed, &expected);
        prop_assert_eq!(&owned, &expected);
    }
}

/// Runs a per-path count and sum over `records`; the rows folded over the
/// epochs.
fn per_path<J>(job: J, workers: usize, records: &[(String, u64)]) -> HashMap<String, (u64, u64)>
where
    J: microbatch::job::Job<(String, u64), Row = (String, (u64, u64))>,
{
    let (sink, rows) = CollectSink::new();
    let summary = Engine::builder(job, sink)
        .workers(workers)
        .pin(false)
        .interval(None)
        .max_batch_records(Some(64))
        .source(IterSource::new(records.to_vec()))
        .start()
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(summary.records_in_results, records.len() as u64);
    let mut folded: HashMap<String, (u64, u64)> = HashMap::new();
    for (_, (key, (n, total))) in rows.take() {
        let entry = folded.entry(key).or_default();
        entry.0 += n;
        entry.1 += total;
    }
    folded
}
