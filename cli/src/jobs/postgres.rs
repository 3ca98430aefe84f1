//! `output.kind = "postgres"`: one instance of a consumer group. Every
//! instance started with the same profile (the same `workload.group`,
//! topic and `output.url`) is a member of the group: Kafka spreads the
//! topic's partitions over the instances' workers, and the library's
//! [`PostgresSink`] commits each partition's epochs fenced by its claim,
//! so the shared table holds every record once whoever read it.
//!
//! Rows are per partition: the job groups by (partition, key), and each
//! row says which partition and which of its epochs it belongs to. A
//! key's total over the run is the sum of its rows.

use std::sync::Arc;

use microbatch::job::Job;
use microbatch::kafka::{
    tagged_key, BadMessages, Decode, GroupPositions, GroupReport, GroupSource, KafkaSettings,
};
use microbatch::postgres::{Column, ColumnType, PostgresSink, Value};
use microbatch::source::Event;
use microbatch::EngineBuilder;

use super::output::{Grouped, OutRow, OutputSink, Wanted};
use crate::driver::checkpoint::checkpoint_of;
use crate::driver::error::RunError;
use crate::driver::feed::{Feed, Producers};
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::Workload;
use crate::text::{decode, BadLines, TextFormat};

/// A consumer group's share of a topic as a run's feed.
struct GroupFeed(Option<GroupSource<Event>>);

impl Feed<Event> for GroupFeed {
    fn attach<J: Job<Event>>(
        &mut self,
        builder: EngineBuilder<Event, J>,
        _: &Workload,
    ) -> EngineBuilder<Event, J> {
        match self.0.take() {
            Some(source) => builder.source(source),
            None => builder,
        }
    }

    fn spawn<J: Job<Event>>(
        self,
        _: &microbatch::Engine<Event, J>,
        _: &Workload,
        _: std::time::Instant,
        _: &Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Producers, RunError> {
        Ok(Producers::default())
    }
}

fn csv(value: &[u8]) -> Result<Event, String> {
    decode::<Event>(TextFormat::Csv, value)
}

fn json(value: &[u8]) -> Result<Event, String> {
    decode::<Event>(TextFormat::Json, value)
}

/// The record with its partition and generation above its key.
fn tag(mut event: Event, prefix: u64) -> Result<Event, String> {
    event.key = tagged_key(prefix, event.key)?;
    Ok(event)
}

/// The PostgreSQL columns of `wanted`'s rows, after `partition`, `epoch`
/// and `key`.
fn columns(wanted: &Wanted) -> Vec<Column> {
    wanted
        .sql_columns(false, false, false)
        .into_iter()
        .map(|column| {
            let sql_type = match column.sql_type {
                microbatch::sink::sqlite::SqlType::Real => ColumnType::Double,
                microbatch::sink::sqlite::SqlType::Text => ColumnType::Text,
                microbatch::sink::sqlite::SqlType::Integer => ColumnType::BigInt,
            };
            Column::new(column.name, sql_type)
        })
        .collect()
}

/// The values of `row` in the order of [`columns`], and its tagged key.
fn values(row: &OutRow, values: &mut Vec<Value>) -> Result<u64, String> {
    let integer = |name: &str, value: u64| {
        i64::try_from(value)
            .map(Value::BigInt)
            .map_err(|_| format!("{name} {value} exceeds PostgreSQL's BIGINT range"))
    };
    for (name, value) in [
        ("count", row.count),
        ("sum", row.sum),
        ("min", row.min),
        ("max", row.max),
    ] {
        if let Some(value) = value {
            values.push(integer(name, value)?);
        }
    }
    if let Some(mean) = row.mean {
        values.push(Value::Double(mean));
    }
    row.key
        .ok_or_else(|| "a row without a key: the group's sink takes keyed rows".to_owned())
}

/// Runs `job` (a keyed job over `key,value` records) as one instance of
/// the profile's consumer group, into the profile's PostgreSQL table.
pub(crate) fn drive_to_postgres<J: Job<Event>>(
    runner: Runner<'_>,
    job: J,
    row: fn(J::Row) -> Grouped,
) -> Result<RunOutcome, RunError> {
    // The database holds the group's progress: no checkpoint of ours.
    checkpoint_of(&runner)?;
    let profile = runner.profile;
    let workload = &profile.workload;
    let output = &profile.output;
    // Profile::check requires the topic and the URL.
    let topic = workload.topic.clone().unwrap_or_default();
    let url = output.url.clone().unwrap_or_default();
    let fail = |error: microbatch::sink::SinkError| RunError::Output {
        what: format!("PostgreSQL table `{}`", output.table),
        message: error.to_string(),
    };
    let wanted = Wanted::of(&profile.job);
    let positions = GroupPositions::new();
    let report = GroupReport::new();
    let sink = PostgresSink::<OutRow>::open(
        &url,
        &output.table,
        &topic,
        columns(&wanted),
        values,
        positions.clone(),
        report.clone(),
    )
    .map_err(fail)?;
    let claims = Arc::new(sink.claims().map_err(fail)?);
    let decode: Decode<Event> = match workload.format {
        TextFormat::Csv => csv,
        TextFormat::Json => json,
    };
    let bad = match (workload.bad_lines, profile.engine.dead_letters.as_ref()) {
        (BadLines::Skip, Some(path)) => BadMessages::Skip(path.clone()),
        // Profile::check requires the file of skipped messages.
        _ => BadMessages::Stop,
    };
    let settings = KafkaSettings::new(workload.brokers.clone());
    let source = GroupSource::connect(
        settings,
        &topic,
        &workload.group,
        (decode, tag),
        claims,
        positions,
    )?
    .reporting(report.clone())
    .rate(workload.rate.per_second())
    .bad_messages(bad);
    let sink = if workload.stop_at_end {
        sink.stopping_at(source.marks())
    } else {
        sink
    };
    let sink = OutputSink::new(sink, wanted, row);
    let mut outcome = runner.drive(job, sink, None, GroupFeed(Some(source)))?;
    outcome
        .report
        .notes
        .push(group_note(&workload.group, &report));
    Ok(outcome)
}

/// The summary's line on the group: the partitions this instance held, the
/// rebalances, and the commits fenced.
fn group_note(group: &str, report: &GroupReport) -> String {
    let seen = report.seen();
    let list = |partitions: &[i32]| {
        if partitions.is_empty() {
            "none".to_owned()
        } else {
            partitions
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let now: Vec<i32> = seen.held.values().flatten().copied().collect();
    format!(
        "consumer group `{group}`: held partitions {} (at the end: {}); {} rebalances; {} \
         partition commits fenced (another instance had claimed the partition: its new owner \
         read those records again)",
        list(&seen.ever_held),
        list(&now),
        seen.rebalances,
        seen.fenced
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_carries_its_partition_and_a_row_gives_it_back() {
        let prefix = microbatch::kafka::key_prefix(3, 1);
        let event = tag(Event { key: 17, value: 2 }, prefix).unwrap();
        assert_eq!(microbatch::kafka::split_key(event.key), (3, 1, 17));
        assert!(tag(
            Event {
                key: u64::MAX,
                value: 0
            },
            prefix
        )
        .is_err());
        let row = OutRow {
            window_start_ms: None,
            window_end_ms: None,
            key: Some(event.key),
            count: Some(4),
            sum: Some(9),
            min: None,
            max: None,
            mean: Some(2.25),
            firing: None,
        };
        let mut out = Vec::new();
        assert_eq!(values(&row, &mut out), Ok(event.key));
        assert_eq!(
            out,
            [Value::BigInt(4), Value::BigInt(9), Value::Double(2.25)]
        );
    }
}
