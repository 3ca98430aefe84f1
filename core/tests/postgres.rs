//! The PostgreSQL sink of a consumer group against a real server
//! (started per test, see `common/postgres.rs`): the claims that fence a
//! partition's old owner, the rows of a fenced partition dropped and
//! those of its new owner committed under the partition's next epoch, a
//! claim kept by its holder, the stop at the topic's end, and the refusal
//! of rows that no position accounts for.

#[path = "common/postgres.rs"]
mod server;

use microbatch::kafka::{key_prefix, tagged_key, Claims, GroupPositions, GroupReport, Held};
use microbatch::postgres::{Column, ColumnType, PostgresSink, Value};
use microbatch::progress::EpochProgress;
use microbatch::sink::Sink;
use server::Postgres;

/// A row of a keyed count: (tagged key, count).
type Row = (u64, u64);

fn values(row: &Row, values: &mut Vec<Value>) -> Result<u64, String> {
    values.push(Value::BigInt(row.1 as i64));
    Ok(row.0)
}

/// One instance: its sink, the positions its source would record, and its
/// report.
fn instance(server: &Postgres) -> (PostgresSink<Row>, GroupPositions, GroupReport) {
    let positions = GroupPositions::new();
    let report = GroupReport::new();
    let sink = PostgresSink::open(
        &server.url,
        "counts",
        "clicks",
        vec![Column::new("count", ColumnType::BigInt)],
        values,
        positions.clone(),
        report.clone(),
    )
    .unwrap();
    (sink, positions, report)
}

/// `counts` rows: (partition, epoch, key, count), in order.
fn rows(server: &Postgres) -> Vec<(i32, i64, i64, i64)> {
    server
        .client()
        .query(
            "SELECT \"partition\", epoch, key, count FROM counts ORDER BY 1, 2, 3",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

fn next_offset(server: &Postgres, partition: i32) -> Option<i64> {
    server
        .client()
        .query_one(
            "SELECT next_offset FROM microbatch_partitions WHERE \"partition\" = $1",
            &[&partition],
        )
        .unwrap()
        .get(0)
}

/// `epoch` of an instance that read `partition` up to `next_offset` under
/// `generation`, with one row per `(key, count)`.
fn commit(
    sink: &PostgresSink<Row>,
    positions: &GroupPositions,
    epoch: u64,
    held: Held,
    keys: &[(u64, u64)],
) -> Result<(), microbatch::sink::SinkError> {
    positions.record(epoch, &[held]);
    let prefix = key_prefix(held.partition, held.generation);
    let mut rows: Vec<Row> = keys
        .iter()
        .map(|&(key, count)| (tagged_key(prefix, key).unwrap(), count))
        .collect();
    sink.write(epoch, 0, &mut rows)?;
    sink.epoch_complete(epoch, &EpochProgress::default())
}

#[test]
fn a_partition_claimed_by_another_instance_commits_only_under_the_new_claim() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let (old, old_positions, old_report) = instance(&server);
    let (new, new_positions, _) = instance(&server);
    let old_claims = old.claims().unwrap();
    let new_claims = new.claims().unwrap();

    let first = old_claims.claim("clicks", 3, "old").unwrap();
    assert_eq!(
        (first.generation, first.next_offset, first.kept),
        (1, None, false)
    );
    let held = |generation, next_offset| Held {
        partition: 3,
        generation,
        next_offset,
    };
    commit(&old, &old_positions, 0, held(1, 10), &[(7, 10)]).unwrap();
    assert_eq!(rows(&server), [(3, 0, 7, 10)]);

    // The old owner reads on (epoch 1, offsets 10..25), but before it
    // commits, the new owner claims the partition: it starts at 10.
    let taken = new_claims.claim("clicks", 3, "new").unwrap();
    assert_eq!(
        (taken.generation, taken.next_offset, taken.kept),
        (2, Some(10), false)
    );
    commit(&old, &old_positions, 1, held(1, 25), &[(7, 15)]).unwrap();
    assert_eq!(
        old_report.seen().fenced,
        1,
        "the old owner's epoch is fenced"
    );
    assert_eq!(
        rows(&server),
        [(3, 0, 7, 10)],
        "and none of its rows are in"
    );
    assert_eq!(next_offset(&server, 3), Some(10));

    // The new owner's epoch over the same records is the partition's
    // epoch 1.
    commit(&new, &new_positions, 0, held(2, 25), &[(7, 15)]).unwrap();
    assert_eq!(rows(&server), [(3, 0, 7, 10), (3, 1, 7, 15)]);
    assert_eq!(next_offset(&server, 3), Some(25));
}

#[test]
fn a_claim_by_its_holder_keeps_the_generation() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let (sink, _, _) = instance(&server);
    let claims = sink.claims().unwrap();
    let first = claims.claim("clicks", 0, "a").unwrap();
    let again = claims.claim("clicks", 0, "a").unwrap();
    assert_eq!((again.generation, again.kept), (first.generation, true));
    let other = claims.claim("clicks", 0, "b").unwrap();
    assert_eq!(
        (other.generation, other.kept),
        (first.generation + 1, false)
    );
    let back = claims.claim("clicks", 0, "a").unwrap();
    assert_eq!((back.generation, back.kept), (first.generation + 2, false));
}

#[test]
fn the_instances_stop_once_every_partition_is_committed_to_its_end() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let (sink, positions, report) = instance(&server);
    // Partition 1 was empty at the start: nothing to wait for.
    let sink = sink.stopping_at(&[(0, 0, 20), (1, 5, 5)]);
    let claims = sink.claims().unwrap();
    let generation = claims.claim("clicks", 0, "a").unwrap().generation;
    let held = |next_offset| Held {
        partition: 0,
        generation,
        next_offset,
    };
    commit(&sink, &positions, 0, held(12), &[(1, 12)]).unwrap();
    assert!(!report.stopped());
    commit(&sink, &positions, 1, held(20), &[(1, 8)]).unwrap();
    assert!(report.stopped());
}

#[test]
fn rows_no_position_accounts_for_are_refused() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let (sink, positions, _) = instance(&server);
    let claims = sink.claims().unwrap();
    let generation = claims.claim("clicks", 0, "a").unwrap().generation;
    positions.record(
        0,
        &[Held {
            partition: 0,
            generation,
            next_offset: 4,
        }],
    );
    // Rows of partition 1, which the epoch did not read.
    let mut rows: Vec<Row> = vec![(tagged_key(key_prefix(1, generation), 9).unwrap(), 4)];
    sink.write(0, 0, &mut rows).unwrap();
    let error = sink
        .epoch_complete(0, &EpochProgress::default())
        .unwrap_err();
    assert!(error.to_string().contains("no position"), "{error}");
    assert_eq!(next_offset(&server, 0), None, "nothing of the epoch is in");
}
