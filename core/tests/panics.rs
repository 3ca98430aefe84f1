//! Panic policies: a panic in user code while a worker folds its batch is
//! retried from the batch's retained input, then fails the engine with an
//! error naming the epoch, the worker and the panic, or bisects the batch
//! to put exactly the records that panic in the dead-letter file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use microbatch::job::{self, count, sum, Job};
use microbatch::sink::CollectSink;
use microbatch::source::IterSource;
use microbatch::PanicPolicy;
use microbatch::{Engine, EngineError, Summary};
use proptest::prelude::*;

type Record = (u64, u64);
type Row = (u64, (u64, u64));
/// Count and sum per key.
type PerKey = BTreeMap<u64, (u64, u64)>;

/// Per key, count and sum of the values; `check` runs on every record
/// first (and may panic).
fn checked(check: impl Fn(&Record) + Send + Sync + 'static) -> impl Job<Record, Row = Row> {
    job::records::<Record>()
        .map(move |r: &Record| {
            check(r);
            *r
        })
        .key_by(|r: &Record| r.0)
        .aggregate((count(), sum(|r: &Record| r.1)))
}

/// Runs `job` over `records` with `policy`; the summary and the summed
/// rows per key.
fn run(
    job: impl Job<Record, Row = Row>,
    records: Vec<Record>,
    workers: usize,
    max_batch: Option<u64>,
    policy: PanicPolicy,
) -> Result<(Summary, PerKey), EngineError> {
    let (sink, collected) = CollectSink::new();
    let engine = Engine::builder(job, sink)
        .workers(workers)
        .pin(false)
        .max_batch_records(max_batch)
        .on_panic(policy)
        .source(IterSource::new(records))
        .start()?;
    let summary = engine.finish()?;
    let mut per_key = BTreeMap::new();
    for (_, (key, (count, sum))) in collected.take() {
        let entry: &mut (u64, u64) = per_key.entry(key).or_default();
        entry.0 += count;
        entry.1 += sum;
    }
    Ok((summary, per_key))
}

/// The single-threaded answer without the `poison` values.
fn reference(records: &[Record], poison: &BTreeSet<u64>) -> PerKey {
    let mut per_key = BTreeMap::new();
    for &(key, value) in records.iter().filter(|r| !poison.contains(&r.1)) {
        let entry: &mut (u64, u64) = per_key.entry(key).or_default();
        entry.0 += 1;
        entry.1 += value;
    }
    per_key
}

/// The records in a dead-letter file, each with its epoch.
fn dead_letters(path: &Path) -> Vec<(u64, Record, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let letter: serde_json::Value = serde_json::from_str(line).unwrap();
            let record = &letter["record"];
            (
                letter["epoch"].as_u64().unwrap(),
                (record[0].as_u64().unwrap(), record[1].as_u64().unwrap()),
                letter["panic"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn records(n: u64) -> Vec<Record> {
    (0..n).map(|i| (i % 13, i)).collect()
}

#[test]
fn retries_then_an_error_naming_the_epoch_the_worker_and_the_panic() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&attempts);
    let job = checked(move |r| {
        if r.1 == 4242 {
            seen.fetch_add(1, Ordering::Relaxed);
            panic!("value 4242 is cursed");
        }
    });
    let policy = PanicPolicy {
        retries: 2,
        dead_letters: None,
    };
    match run(job, records(10_000), 2, None, policy) {
        Err(EngineError::BatchPanicked {
            epoch,
            attempts: made,
            message,
            ..
        }) => {
            assert_eq!(epoch, 0, "batch mode has one epoch");
            assert_eq!(made, 3);
            assert!(message.contains("value 4242 is cursed"), "{message}");
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("the run succeeded"),
    }
    assert_eq!(
        attempts.load(Ordering::Relaxed),
        3,
        "one fold and two retries"
    );
}

#[test]
fn a_panic_that_passes_is_retried_and_nothing_is_lost() {
    let failed_once = Arc::new(AtomicBool::new(false));
    let job = checked(move |r| {
        if r.1 == 777 && !failed_once.swap(true, Ordering::Relaxed) {
            panic!("a flaky lookup");
        }
    });
    let policy = PanicPolicy {
        retries: 1,
        dead_letters: None,
    };
    let input = records(50_000);
    let (summary, per_key) = run(job, input.clone(), 2, Some(5_000), policy).unwrap();
    assert_eq!(summary.records_dead_lettered, 0);
    assert_eq!(summary.records_in_results, 50_000);
    assert_eq!(per_key, reference(&input, &BTreeSet::new()));
}

#[test]
fn a_dead_letter_file_that_cannot_be_opened_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let policy = PanicPolicy {
        retries: 0,
        dead_letters: Some(dir.path().join("missing").join("dead.jsonl")),
    };
    match run(checked(|_| {}), records(10), 1, None, policy) {
        Err(EngineError::Config(error)) => assert_eq!(error.setting, "dead_letters"),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("the run started"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Bisecting quarantines exactly the records that panic, each once,
    /// and the results equal a reference over the others.
    #[test]
    fn dead_letters_hold_exactly_the_records_that_panic(
        n in 1_000u64..40_000,
        poison in proptest::collection::btree_set(0u64..40_000, 0..12),
        workers in 1usize..=3,
        max_batch in proptest::option::of(500u64..20_000),
        retries in 0u32..2,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let letters = dir.path().join("dead.jsonl");
        let poison: BTreeSet<u64> = poison.into_iter().filter(|&v| v < n).collect();
        let bad = poison.clone();
        let job = checked(move |r| {
            if bad.contains(&r.1) {
                panic!("poison {}", r.1);
            }
        });
        let input = records(n);
        let policy = PanicPolicy { retries, dead_letters: Some(letters.clone()) };
        let (summary, per_key) = run(job, input.clone(), workers, max_batch, policy).unwrap();

        let quarantined = dead_letters(&letters);
        let values: BTreeSet<u64> = quarantined.iter().map(|(_, r, _)| r.1).collect();
        prop_assert_eq!(quarantined.len(), poison.len(), "each once");
        prop_assert_eq!(&values, &poison);
        for (_, record, panic) in &quarantined {
            prop_assert_eq!(panic, &format!("poison {}", record.1));
        }
        prop_assert_eq!(summary.records_dead_lettered, poison.len() as u64);
        prop_assert_eq!(
            summary.records_accepted,
            summary.records_in_results + summary.records_dead_lettered
        );
        prop_assert_eq!(per_key, reference(&input, &poison));
    }
}
