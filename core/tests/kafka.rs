//! The Kafka source and sink against a real broker (tansu, started per
//! test on its own port; see `common/broker.rs`): every record of a topic
//! in exactly one committed epoch, across restarts that resume from the
//! SQLite sink's positions; bad messages stopped at or set aside; the
//! transactional sink refused, clearly, by a broker without transactions.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::broker::Broker;
use microbatch::job::{self, count, sum};
use microbatch::kafka::{
    create_topic, BadMessages, KafkaSettings, KafkaSink, KafkaSource, TopicWriter,
};
use microbatch::sink::sqlite::{Column, SqlType, SqlValue, SqliteSink};
use microbatch::sink::CollectSink;
use microbatch::source::SealedPositions;
use microbatch::{Engine, EngineError};

type Record = (u64, u64);

fn decode(value: &[u8]) -> Result<Record, String> {
    let text = std::str::from_utf8(value).map_err(|_| "not UTF-8".to_owned())?;
    let (key, value) = text.split_once(',').ok_or("no comma")?;
    let number = |field: &str| {
        field
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("`{field}` is not a number"))
    };
    Ok((number(key)?, number(value)?))
}

/// Records `from..to` as `key,value` messages, keyed so that a key stays
/// in one partition.
fn produce(settings: &KafkaSettings, topic: &str, from: u64, to: u64) {
    let mut writer = TopicWriter::new(settings, topic).unwrap();
    for i in from..to {
        let key = i % 97;
        writer
            .send(
                key.to_string().as_bytes(),
                format!("{key},{}", i % 13).as_bytes(),
                None,
            )
            .unwrap();
    }
    assert_eq!(writer.finish().unwrap(), to - from);
}

fn reference(to: u64) -> BTreeMap<u64, (u64, u64)> {
    let mut totals = BTreeMap::new();
    for i in 0..to {
        let entry = totals.entry(i % 97).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += i % 13;
    }
    totals
}

fn per_key() -> impl microbatch::job::Job<Record, Row = (u64, (u64, u64))> {
    job::records::<Record>()
        .key_by(|r: &Record| r.0)
        .aggregate((count(), sum(|r: &Record| r.1)))
}

fn topic_with(partitions: i32) -> Option<(Broker, KafkaSettings)> {
    let broker = Broker::start()?;
    let settings = KafkaSettings::new(broker.address.clone());
    create_topic(&settings, "records", partitions).unwrap();
    Some((broker, settings))
}

/// Runs the per-key job over `source` on `workers` workers, collecting;
/// how it ended and the per-key totals of its rows.
fn read_all(
    source: KafkaSource<Record>,
    workers: usize,
) -> (Result<(), EngineError>, BTreeMap<u64, (u64, u64)>) {
    let (sink, rows) = CollectSink::new();
    let engine = Engine::builder(per_key(), sink)
        .workers(workers)
        .pin(false)
        .max_batch_records(Some(3000))
        .source(source)
        .start()
        .unwrap();
    let ended = engine.finish().map(|_| ()).map_err(|e| e.error);
    let mut totals: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (_, (key, (count, sum))) in rows.take() {
        let entry = totals.entry(key).or_default();
        entry.0 += count;
        entry.1 += sum;
    }
    (ended, totals)
}

fn records_in(totals: &BTreeMap<u64, (u64, u64)>) -> u64 {
    totals.values().map(|t| t.0).sum()
}

#[test]
fn a_topic_read_to_its_end_gives_every_record_once() {
    let Some((_broker, settings)) = topic_with(3) else {
        return;
    };
    produce(&settings, "records", 0, 20_000);
    let source = KafkaSource::connect(settings.clone(), "records", "test", decode)
        .unwrap()
        .stop_at_end(true);
    let (ended, totals) = read_all(source, 2);
    ended.unwrap();
    assert_eq!(totals, reference(20_000));
}

/// The per-key totals of `table` in `database`, summed over its epochs,
/// and whether any (epoch, key) is there twice.
fn table_totals(database: &Path, table: &str, column: &str) -> BTreeMap<u64, (u64, u64)> {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut statement = connection
        .prepare(&format!(
            "SELECT key, {column}(count), {column}(sum) FROM {table} GROUP BY key"
        ))
        .unwrap();
    let rows = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

fn sqlite_sink(database: &Path) -> SqliteSink<(u64, (u64, u64))> {
    SqliteSink::open(
        database,
        "per_key",
        vec![
            Column::new("key", SqlType::Integer, true),
            Column::new("count", SqlType::Integer, false),
            Column::new("sum", SqlType::Integer, false),
        ],
        |row: &(u64, (u64, u64)), values: &mut Vec<SqlValue>| {
            for value in [row.0, row.1 .0, row.1 .1] {
                values.push(SqlValue::Integer(value as i64));
            }
            Ok(())
        },
    )
    .unwrap()
}

/// One run to the topic's end into `database`, resumed from what the
/// database holds; the epochs it committed.
fn run_into<J>(settings: &KafkaSettings, database: &Path, job: J, state: bool) -> Vec<u64>
where
    J: microbatch::job::Job<Record, Row = (u64, (u64, u64))>,
{
    let positions = SealedPositions::new("records");
    let mut sink = sqlite_sink(database).with_positions(positions.clone());
    if state {
        sink = sink.keeping_state();
    }
    let resumption = sink.database().resumption().unwrap();
    let stored = sink.database().stored_positions("records").unwrap();
    let before = sink.committed().unwrap().len();
    let source = KafkaSource::connect(settings.clone(), "records", "test", decode)
        .unwrap()
        .starting_at(&stored)
        .unwrap()
        .recording(positions)
        .stop_at_end(true);
    let engine = Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .max_batch_records(Some(2500))
        .resume_from(resumption)
        .source(source)
        .start()
        .unwrap();
    engine.finish().unwrap();
    let committed = sqlite_sink(database).committed().unwrap();
    committed[before..].to_vec()
}

#[test]
fn a_restart_resumes_at_the_offsets_committed_with_the_rows() {
    let Some((_broker, settings)) = topic_with(3) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("out.db");
    produce(&settings, "records", 0, 10_000);
    let first = run_into(&settings, &database, per_key(), false);
    assert!(!first.is_empty());
    assert_eq!(table_totals(&database, "per_key", "SUM"), reference(10_000));
    produce(&settings, "records", 10_000, 25_000);
    let second = run_into(&settings, &database, per_key(), false);
    assert!(
        second.first() > first.last(),
        "the second run numbers its epochs after the first's: {first:?} then {second:?}"
    );
    assert_eq!(table_totals(&database, "per_key", "SUM"), reference(25_000));
    // Nothing new: a third run reads nothing and changes no total.
    let third = run_into(&settings, &database, per_key(), false);
    assert!(third.first().is_none_or(|&e| Some(&e) > second.last()));
    assert_eq!(table_totals(&database, "per_key", "SUM"), reference(25_000));
}

#[test]
fn running_totals_resume_from_the_state_committed_with_the_rows() {
    let Some((_broker, settings)) = topic_with(2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("out.db");
    let running = || {
        job::records::<Record>()
            .key_by(|r: &Record| r.0)
            .aggregate((count(), sum(|r: &Record| r.1)))
            .running(microbatch::job::OutputMode::Update)
            .snapshotted()
    };
    produce(&settings, "records", 0, 8_000);
    run_into(&settings, &database, running(), true);
    produce(&settings, "records", 8_000, 20_000);
    run_into(&settings, &database, running(), true);
    // Update mode: each key's newest row holds its totals since the start.
    assert_eq!(table_totals(&database, "per_key", "MAX"), reference(20_000));
}

#[test]
fn a_bad_message_stops_the_run_with_its_partition_and_offset() {
    let Some((_broker, settings)) = topic_with(1) else {
        return;
    };
    produce(&settings, "records", 0, 100);
    let mut writer = TopicWriter::new(&settings, "records").unwrap();
    writer.send(b"k", b"seven,eleven", None).unwrap();
    writer.finish().unwrap();
    produce(&settings, "records", 100, 200);
    let run = |bad: BadMessages| {
        let source = KafkaSource::connect(settings.clone(), "records", "test", decode)
            .unwrap()
            .stop_at_end(true)
            .bad_messages(bad);
        let (ended, totals) = read_all(source, 1);
        (ended, records_in(&totals))
    };
    let (ended, counted) = run(BadMessages::Stop);
    let error = ended.expect_err("a bad message stops the run");
    let EngineError::Source { message, .. } = &error else {
        panic!("not a source error: {error}");
    };
    assert!(
        message.contains("partition 0 offset 100") && message.contains("`seven` is not a number"),
        "{message}"
    );
    assert!(counted < 200, "the failed epoch is not emitted whole");

    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("bad.jsonl");
    let (ended, counted) = run(BadMessages::Skip(rejects.clone()));
    ended.unwrap();
    assert_eq!(counted, 200, "every good record is counted");
    let lines = std::fs::read_to_string(&rejects).unwrap();
    let line: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
    assert_eq!(line["offset"], 100);
    assert_eq!(line["value"], "seven,eleven");
}

fn to_message(
    epoch: u64,
    row: &(u64, (u64, u64)),
    key: &mut Vec<u8>,
    value: &mut Vec<u8>,
) -> Result<(), String> {
    key.extend_from_slice(row.0.to_string().as_bytes());
    value.extend_from_slice(format!("{epoch},{},{},{}", row.0, row.1 .0, row.1 .1).as_bytes());
    Ok(())
}

/// Every message of `topic` a `read_committed` consumer sees, as
/// `(epoch, key, count, sum)`.
fn read_committed(settings: &KafkaSettings, topic: &str) -> Vec<(u64, u64, u64, u64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", "reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&list).unwrap();
    let mut rows = Vec::new();
    loop {
        match consumer.poll(std::time::Duration::from_secs(10)) {
            Some(Ok(message)) => {
                let text = std::str::from_utf8(message.payload().unwrap()).unwrap();
                let f: Vec<u64> = text.split(',').map(|f| f.parse().unwrap()).collect();
                rows.push((f[0], f[1], f[2], f[3]));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => return rows,
            Some(Err(error)) => panic!("{error}"),
        }
    }
}

#[test]
fn the_kafka_sink_commits_each_epoch_with_the_source_offsets() {
    let Some((_broker, settings)) = topic_with(2) else {
        return;
    };
    create_topic(&settings, "results", 1).unwrap();
    produce(&settings, "records", 0, 6_000);
    let run = || {
        let (resumption, stored) =
            KafkaSink::<(u64, (u64, u64))>::resumption(&settings, "records", "counters").unwrap();
        let positions = SealedPositions::new("records");
        let sink = KafkaSink::open(&settings, "results", "counters-results", to_message)
            .unwrap()
            .committing_offsets(positions.clone(), "counters")
            .unwrap();
        let source = KafkaSource::connect(settings.clone(), "records", "counters", decode)
            .unwrap()
            .starting_at(&stored)
            .unwrap()
            .recording(positions)
            .stop_at_end(true);
        let engine = Engine::builder(per_key(), sink)
            .workers(2)
            .pin(false)
            .max_batch_records(Some(2000))
            .resume_from(resumption.clone())
            .source(source)
            .start()
            .unwrap();
        engine
            .finish()
            .map(|_| resumption)
            .map_err(|e| e.error.to_string())
    };
    match run() {
        Ok(resumption) => assert_eq!(resumption.next_epoch, 0),
        Err(message) => {
            // tansu 0.6 takes InitProducerId and the transaction's records
            // but not EndTxn: the first commit fails, and says why.
            assert!(
                message.contains("cannot commit epoch 0") && message.contains("EndTxn"),
                "{message}"
            );
            eprintln!("the broker cannot commit transactions: {message}");
            return;
        }
    }
    produce(&settings, "records", 6_000, 9_000);
    let second = run().unwrap();
    assert!(
        second.next_epoch > 0,
        "the second run starts after the epochs the first committed"
    );
    let rows = read_committed(&settings, "results");
    let mut totals: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (epoch, key, count, sum) in rows {
        assert!(seen.insert((epoch, key)), "epoch {epoch} key {key} twice");
        let entry = totals.entry(key).or_default();
        entry.0 += count;
        entry.1 += sum;
    }
    assert_eq!(totals, reference(9_000));
}

#[test]
fn a_position_inside_a_batch_resumes_at_its_record() {
    let Some((_broker, settings)) = topic_with(1) else {
        return;
    };
    // One batch (the writer lingers): a position inside it.
    produce(&settings, "records", 0, 1_000);
    let source = KafkaSource::connect(settings.clone(), "records", "test", decode)
        .unwrap()
        .starting_at(&[microbatch::source::Position {
            partition: 0,
            next_offset: 300,
        }])
        .unwrap()
        .stop_at_end(true);
    let (ended, totals) = read_all(source, 1);
    ended.unwrap();
    let counted = records_in(&totals);
    assert_eq!(counted, 700, "the records from offset 300 on, each once");
}
