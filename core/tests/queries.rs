//! Several queries on one engine, against a simple reference: each
//! query's rows hold every record once, its epochs are its own (every k
//! engine epochs, or by its own count trigger, and the last) and complete
//! in order, whatever the policy, the piece size, the workers or the
//! engine's count trigger.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use microbatch::job::{self, count, sum, Job, OutputMode};
use microbatch::progress::EpochProgress;
use microbatch::queries::{Queries, Query, SchedulerPolicy};
use microbatch::sink::{CollectSink, Sink, SinkError};
use microbatch::{Engine, EngineError};
use proptest::prelude::*;

type Record = (u64, u64);

/// The epochs a sink saw complete, in the order it saw them.
#[derive(Clone, Default)]
struct Completed(Arc<Mutex<Vec<u64>>>);

/// Collects rows and the order of completed epochs.
struct Recording<Row> {
    rows: CollectSink<Row>,
    completed: Completed,
}

impl<Row: Send + 'static> Sink<Row> for Recording<Row> {
    fn write(&self, epoch: u64, partition: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        self.rows.write(epoch, partition, rows)
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        self.completed.0.lock().unwrap().push(epoch);
        Ok(())
    }
}

/// A count of the records per key: the query most tests need.
fn per_key_count() -> impl Job<Record, Row = (u64, u64)> {
    job::records::<Record>().key_by(|r| r.0).aggregate(count())
}

fn reference(records: &[Record]) -> BTreeMap<u64, (u64, u64)> {
    let mut totals = BTreeMap::new();
    for &(key, value) in records {
        let entry = totals.entry(key).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += value;
    }
    totals
}

fn policies() -> impl Strategy<Value = SchedulerPolicy> {
    prop_oneof![
        Just(SchedulerPolicy::Priority),
        Just(SchedulerPolicy::Fifo),
        Just(SchedulerPolicy::RoundRobin),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn each_query_holds_every_record_once_in_its_own_epochs(
        records in proptest::collection::vec((0u64..40, 0u64..100), 0..3000),
        every in 1u64..5,
        workers in 1usize..4,
        piece in prop_oneof![Just(1usize), Just(7), Just(100_000)],
        batch in 50u64..400,
        policy in policies(),
        trigger in 1u64..1500,
    ) {
        let (per_epoch, per_epoch_rows) = CollectSink::new();
        let per_epoch_done = Completed::default();
        let (running, running_rows) = CollectSink::new();
        let running_done = Completed::default();
        let (counted, counted_rows) = CollectSink::new();
        let counted_done = Completed::default();
        let value = |r: &Record| r.1;
        let per_epoch_job = job::records::<Record>().key_by(|r| r.0).aggregate((count(), sum(value)));
        let running_job = job::records::<Record>()
            .key_by(|r| r.0)
            .aggregate((count(), sum(value)))
            .running(OutputMode::Complete);
        let (job, sink) = Queries::new(policy)
            .piece(piece)
            .query(
                Query::new("per_epoch", per_epoch_job, Recording { rows: per_epoch, completed: per_epoch_done.clone() })
                    .priority(5),
            )
            .query(
                Query::new("running", running_job, Recording { rows: running, completed: running_done.clone() })
                    .every(every)
                    .max_epochs_in_flight(1),
            )
            .query(
                Query::new("counted", per_key_count(), Recording { rows: counted, completed: counted_done.clone() })
                    .max_batch_records(trigger)
                    .priority(1),
            )
            .build();
        let reports = job.reports();
        let epoch_records = Arc::new(Mutex::new(BTreeMap::new()));
        let seen = Arc::clone(&epoch_records);
        let engine = Engine::builder(job, sink)
            .workers(workers)
            .pin(false)
            .max_batch_records(Some(batch))
            .on_progress(move |progress| {
                seen.lock().unwrap().insert(progress.epoch, progress.records);
            })
            .start()
            .unwrap();
        let mut producer = engine.producer();
        for &record in &records {
            producer.push(record).unwrap();
        }
        drop(producer);
        let summary = engine.shutdown().unwrap();
        let last = summary.epochs.checked_sub(1);

        // The per-epoch query: every record in exactly one row's count.
        let mut got = BTreeMap::new();
        for (_, (key, (n, total))) in per_epoch_rows.take() {
            let entry = got.entry(key).or_insert((0, 0));
            entry.0 += n;
            entry.1 += total;
        }
        let want = reference(&records);
        prop_assert_eq!(&got, &want);
        let done = per_epoch_done.0.lock().unwrap().clone();
        prop_assert_eq!(done, (0..summary.epochs).collect::<Vec<_>>());

        // The running query: its own epochs, in order; its last epoch's
        // rows are the totals of everything.
        let done = running_done.0.lock().unwrap().clone();
        let own: Vec<u64> = (0..summary.epochs)
            .filter(|e| (e + 1).is_multiple_of(every) || Some(*e) == last)
            .collect();
        prop_assert_eq!(&done, &own);
        let rows = running_rows.take();
        let final_rows: BTreeMap<u64, (u64, u64)> = rows
            .iter()
            .filter(|(epoch, _)| Some(*epoch) == last)
            .map(|(_, row)| *row)
            .collect();
        prop_assert_eq!(&final_rows, &want);
        prop_assert!(rows.iter().all(|(epoch, _)| own.contains(epoch)));

        // The count-triggered query: an epoch ends with the first engine
        // epoch that brings it to `trigger` records, and with the last.
        let mut counted_own = Vec::new();
        let mut since = 0;
        for (&epoch, &records) in epoch_records.lock().unwrap().iter() {
            since += records;
            if since >= trigger || Some(epoch) == last {
                counted_own.push(epoch);
                since = 0;
            }
        }
        let done = counted_done.0.lock().unwrap().clone();
        prop_assert_eq!(&done, &counted_own);
        let mut counts = BTreeMap::new();
        for (epoch, (key, n)) in counted_rows.take() {
            prop_assert!(counted_own.contains(&epoch));
            *counts.entry(key).or_insert(0) += n;
        }
        let want_counts: BTreeMap<u64, u64> = want.iter().map(|(k, (n, _))| (*k, *n)).collect();
        prop_assert_eq!(counts, want_counts);

        let reports = reports.now();
        prop_assert_eq!(reports[0].epochs, summary.epochs);
        prop_assert_eq!(reports[1].epochs, own.len() as u64);
        prop_assert_eq!(reports[1].rows, rows.len() as u64);
        prop_assert_eq!(reports[2].epochs, counted_own.len() as u64);
    }
}

#[test]
fn a_query_whose_sink_fails_stops_the_engine_naming_the_epoch() {
    struct Refusing;
    impl Sink<(u64, u64)> for Refusing {
        fn write(&self, _: u64, _: usize, _: &mut Vec<(u64, u64)>) -> Result<(), SinkError> {
            Err(SinkError::Custom("the disk is full".into()))
        }
    }
    let (fine, _) = CollectSink::new();
    let (job, sink) = Queries::new(SchedulerPolicy::Priority)
        .query(Query::new("fine", per_key_count(), fine))
        .query(Query::new("refusing", per_key_count(), Refusing))
        .build();
    let engine = Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .start()
        .unwrap();
    engine.producer().push((1, 1)).unwrap();
    let error = engine.shutdown().unwrap_err();
    let message = error.to_string();
    assert!(message.contains("the disk is full"), "{message}");
    assert!(
        matches!(error.error, EngineError::Sink { .. }),
        "{:?}",
        error.error
    );
}

#[test]
fn queries_are_checked_before_the_engine_starts() {
    let query = |name: &str| {
        let (rows, _) = CollectSink::new();
        Query::new(name, per_key_count(), rows)
    };
    let refusal = |queries: Queries<Record>| {
        let (job, sink) = queries.build();
        match Engine::builder(job, sink).workers(1).pin(false).start() {
            Ok(_) => panic!("started"),
            Err(error) => error.to_string(),
        }
    };
    let twice = Queries::new(SchedulerPolicy::Fifo)
        .query(query("a"))
        .query(query("a"));
    assert!(refusal(twice).contains("two queries are named \"a\""));
    let never = Queries::new(SchedulerPolicy::Fifo).query(query("a").every(0));
    assert!(refusal(never).contains("at least 1"));
    assert!(refusal(Queries::new(SchedulerPolicy::Fifo)).contains("no queries"));
}

#[test]
fn a_query_every_k_epochs_reports_each_of_its_epochs() {
    let (rows, collected) = CollectSink::new();
    let (job, sink) = Queries::new(SchedulerPolicy::Priority)
        .query(
            Query::new("slow", per_key_count(), rows)
                .every(3)
                .latency_budget(Duration::from_millis(50)),
        )
        .build();
    let reports = job.reports();
    let engine = Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .max_batch_records(Some(10))
        .start()
        .unwrap();
    let mut producer = engine.producer();
    for i in 0..1000u64 {
        producer.push((i % 5, i)).unwrap();
    }
    drop(producer);
    engine.shutdown().unwrap();
    let counted: u64 = collected.take().iter().map(|(_, (_, n))| n).sum();
    assert_eq!(counted, 1000);
    let report = &reports.now()[0];
    assert_eq!((report.name.as_str(), report.every), ("slow", 3));
    assert!(report.epochs >= 1);
    assert!(report.seal_to_result.max >= report.seal_to_result.p50);
}

#[test]
fn a_panic_policy_is_refused_for_queries_that_keep_parts_across_epochs() {
    let (rows, _) = CollectSink::new();
    let (job, sink) = Queries::new(SchedulerPolicy::Priority)
        .query(Query::new("slow", per_key_count(), rows).every(2))
        .build();
    let policy = microbatch::PanicPolicy {
        retries: 1,
        dead_letters: None,
    };
    let refused = Engine::builder(job, sink)
        .workers(1)
        .pin(false)
        .on_panic(policy)
        .start();
    let message = refused
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("on_panic") && message.contains("every"),
        "{message}"
    );
}

#[test]
fn an_event_time_query_counts_its_late_records_in_its_report() {
    // Events every 100 ms for 10 s over three keys, then one from t = 0:
    // by then the watermark is seconds past its 1 s window.
    type Timed = (u64, u64, u64);
    let mut records: Vec<Timed> = (0..100u64).map(|i| (i % 3, 1, i * 100)).collect();
    records.push((0, 1000, 0));
    let (windowed_rows, windows) = CollectSink::new();
    let (counted_rows, counts) = CollectSink::new();
    let windowed = job::records::<Timed>()
        .event_time(|r| r.2)
        .window(microbatch::job::Windows::tumbling(Duration::from_secs(1)))
        .key_by(|r| r.0)
        .aggregate(count());
    let per_key = job::records::<Timed>().key_by(|r| r.0).aggregate(count());
    let (job, sink) = Queries::new(SchedulerPolicy::Priority)
        .query(Query::new("windows", windowed, windowed_rows))
        .query(Query::new("per_key", per_key, counted_rows))
        .build();
    let reports = job.reports();
    Engine::builder(job, sink)
        .workers(1)
        .pin(false)
        .interval(None)
        .max_batch_records(Some(10))
        .source(microbatch::source::IterSource::new(records))
        .start()
        .unwrap()
        .finish()
        .unwrap();
    let reports = reports.now();
    assert_eq!(reports[0].late_records, 1, "{:?}", reports[0]);
    assert_eq!(reports[1].late_records, 0, "{:?}", reports[1]);
    // The late record is in no window; the other query counts it.
    let in_windows: u64 = windows.take().iter().map(|(_, (_, _, n))| n).sum();
    assert_eq!(in_windows, 100);
    let counted: u64 = counts.take().iter().map(|(_, (_, n))| n).sum();
    assert_eq!(counted, 101);
}
