//! The SQLite sink: every epoch in one transaction, recorded in the
//! commits table; an epoch written again is skipped, never doubled.
#![cfg(feature = "sqlite")]

use std::collections::HashMap;

use microbatch::job::{self, count, sum};
use microbatch::progress::EpochProgress;
use microbatch::sink::sqlite::{Column, SqlType, SqlValue, SqliteSink, COMMITS_TABLE};
use microbatch::sink::Sink;
use microbatch::{Engine, EngineError};

type Row = (u64, (u64, u64));

fn integer(value: u64) -> Result<SqlValue, String> {
    i64::try_from(value)
        .map(SqlValue::Integer)
        .map_err(|_| format!("{value} exceeds SQLite's INTEGER range"))
}

fn per_key_sink(path: &std::path::Path) -> SqliteSink<Row> {
    SqliteSink::open(
        path,
        "per_key",
        vec![
            Column::new("key", SqlType::Integer, true),
            Column::new("count", SqlType::Integer, false),
            Column::new("sum", SqlType::Integer, false),
        ],
        |row: &Row, values| {
            values.push(integer(row.0)?);
            values.push(integer(row.1 .0)?);
            values.push(integer(row.1 .1)?);
            Ok(())
        },
    )
    .unwrap()
}

fn progress(epoch: u64) -> EpochProgress {
    let mut progress = EpochProgress::default();
    progress.epoch = epoch;
    progress
}

fn totals(path: &std::path::Path) -> (HashMap<u64, (u64, u64)>, u64) {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection
        .prepare("SELECT key, count, sum FROM per_key")
        .unwrap();
    let mut totals: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut rows = 0;
    for row in statement
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .unwrap()
    {
        let (key, n, s) = row.unwrap();
        let total = totals.entry(key as u64).or_default();
        total.0 += n as u64;
        total.1 += s as u64;
        rows += 1;
    }
    (totals, rows)
}

#[test]
fn every_epoch_lands_once_with_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out").join("results.db");
    let records: Vec<(u64, u64)> = (0..200_000u64).map(|i| (i % 101, i % 7)).collect();
    let per_key = job::records::<(u64, u64)>()
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &(u64, u64)| r.1)));
    let engine = Engine::builder(per_key, per_key_sink(&path))
        .workers(2)
        .pin(false)
        .max_batch_records(Some(10_000))
        .start()
        .unwrap();
    let mut producer = engine.producer();
    producer.push_slice(&records).unwrap();
    let summary = engine.shutdown().unwrap();
    assert!(summary.epochs >= 10, "{} epochs", summary.epochs);

    let (got, rows) = totals(&path);
    let mut expected: HashMap<u64, (u64, u64)> = HashMap::new();
    for (key, value) in &records {
        let total = expected.entry(*key).or_default();
        total.0 += 1;
        total.1 += value;
    }
    assert_eq!(got, expected);
    assert_eq!(rows, summary.rows);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let commits: i64 = connection
        .query_row(
            &format!("SELECT COUNT(*) FROM {COMMITS_TABLE} WHERE table_name = 'per_key'"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(commits as u64, summary.epochs);
}

#[test]
fn an_epoch_written_again_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let sink = per_key_sink(&path);
    for _ in 0..2 {
        sink.write(0, 0, &mut vec![(1, (2, 3)), (4, (5, 6))])
            .unwrap();
        sink.write(0, 1, &mut vec![(7, (8, 9))]).unwrap();
        sink.epoch_complete(0, &progress(0)).unwrap();
    }
    // A new sink on the same database (a restart) skips it too.
    let again = per_key_sink(&path);
    again.write(0, 0, &mut vec![(1, (2, 3))]).unwrap();
    again.epoch_complete(0, &progress(0)).unwrap();
    again.write(1, 0, &mut vec![(1, (1, 1))]).unwrap();
    again.epoch_complete(1, &progress(1)).unwrap();
    assert_eq!(again.committed().unwrap(), vec![0, 1]);
    let (totals, rows) = totals(&path);
    assert_eq!(rows, 4);
    assert_eq!(totals[&1], (3, 4));
}

#[test]
fn a_value_sqlite_cannot_hold_stops_the_engine_and_leaves_the_epoch_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.db");
    let per_key = job::records::<(u64, u64)>()
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &(u64, u64)| r.1)));
    let engine = Engine::builder(per_key, per_key_sink(&path))
        .workers(1)
        .pin(false)
        .start()
        .unwrap();
    let mut producer = engine.producer();
    producer.push((1, u64::MAX)).unwrap();
    match engine.shutdown().map_err(|failure| failure.error) {
        Err(EngineError::Sink { epoch: 0, source }) => {
            assert!(source.to_string().contains("INTEGER range"), "{source}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(totals(&path).1, 0, "the failed epoch left no row");
}

#[test]
fn bad_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open = |table: &str, column: &str| {
        SqliteSink::<u64>::open(
            dir.path().join("x.db"),
            table,
            vec![Column::new(column, SqlType::Integer, true)],
            |_, _| Ok(()),
        )
        .err()
        .map(|e| e.to_string())
    };
    assert!(open("per key", "key").unwrap().contains("cannot name"));
    assert!(open("t; DROP TABLE x", "key")
        .unwrap()
        .contains("cannot name"));
    assert!(open("t", "epoch").unwrap().contains("not `epoch`"));
    assert!(open("t", "1key").is_some());
    assert_eq!(open("t", "key"), None);
}
