//! One worker's share of a topic: its partitions, each with its own
//! queue of fetched messages, read in step (a quantum at a time from the
//! one read least far), decoded, paced, and their positions recorded at
//! each seal. Hot path: [`Part::poll`](Source::poll).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::source::{BadMessages, Decode, EventTime, KafkaSource};
use super::KafkaError;
use crate::config::ConfigError;
use crate::source::{Poll, Position, SealedPositions, Source, SourceParts, SourceSpec};

/// How a part paces itself at a capped rate.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    pub(super) per_second: f64,
    pub(super) taken: u64,
}

impl Pace {
    /// Records due by `now_micros`, less those taken.
    pub(super) fn allowed(&self, now_micros: u64) -> u64 {
        let due = (now_micros as f64 * self.per_second / 1e6) as u64 + 1;
        due.saturating_sub(self.taken)
    }

    /// How many records a poll at `now_micros` may take (at most `max`)
    /// and when the first was due, at `pace` (or uncapped); `None` when
    /// none is due.
    pub(super) fn limit(
        pace: Option<&Pace>,
        now_micros: u64,
        max: usize,
    ) -> Option<(usize, Option<u64>)> {
        match pace {
            Some(pace) => {
                let allowed = pace.allowed(now_micros).min(max as u64) as usize;
                (allowed > 0).then(|| (allowed, Some(pace.next_due())))
            }
            None => Some((max, None)),
        }
    }

    /// When the next record was due, µs since the start.
    pub(super) fn next_due(&self) -> u64 {
        (self.taken as f64 * 1e6 / self.per_second) as u64
    }
}

/// Partition `p` of the topic's sorted partitions goes to worker `p mod W`.
impl<R: Send + 'static> SourceSpec<R> for KafkaSource<R> {
    fn split(self, workers: usize) -> Result<SourceParts<R>, ConfigError> {
        let readers = workers.min(self.start.len()).max(1);
        let mut parts: SourceParts<R> = Vec::with_capacity(workers);
        for worker in 0..workers {
            let mine: Vec<usize> = (worker..self.start.len()).step_by(workers).collect();
            if mine.is_empty() {
                parts.push(Box::new(Idle));
                continue;
            }
            let part = Part::open(&self, &mine, readers).map_err(|error| {
                ConfigError::new(
                    "workload.brokers",
                    &self.settings.brokers,
                    error.to_string(),
                )
            })?;
            parts.push(Box::new(part));
        }
        Ok(parts)
    }
}

/// The part of a worker with no partition: it has nothing to read.
pub(super) struct Idle;

impl<R> Source<R> for Idle {
    fn poll(&mut self, _: u64, _: &mut Vec<R>, _: usize) -> Poll {
        Poll::Exhausted
    }
}

/// Where a file of bad messages is written.
pub(super) struct Rejects {
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Rejects {
    /// The file of bad messages `bad` asks for (`None`: stop at one).
    pub(super) fn of(bad: &BadMessages) -> Option<Rejects> {
        match bad {
            BadMessages::Stop => None,
            BadMessages::Skip(path) => Some(Rejects {
                path: path.clone(),
                file: None,
            }),
        }
    }

    /// Appends the message at `partition`, `offset` of `topic`.
    pub(super) fn write(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        reason: &str,
        value: &[u8],
    ) -> Result<(), String> {
        let path = &self.path;
        let failed = |error: std::io::Error| {
            format!(
                "cannot write the bad message at partition {partition} offset {offset} to {}: {error}",
                path.display()
            )
        };
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let file = File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(failed)?;
                self.file.insert(BufWriter::new(file))
            }
        };
        let line = serde_json::json!({
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "reason": reason,
            "value": String::from_utf8_lossy(value),
        });
        serde_json::to_writer(&mut *file, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| file.write_all(b"\n"))
            .map_err(failed)
    }

    /// The bad messages so far on disk, before their epoch can commit.
    pub(super) fn sync(&mut self) {
        if let Some(file) = self.file.as_mut() {
            if let Err(error) = file.flush().and_then(|()| file.get_ref().sync_data()) {
                tracing::error!(target: "microbatch", %error, "the file of bad Kafka messages");
            }
        }
    }
}

/// A message that is not a record, from `partition` at `offset` of
/// `topic`: the run stops (`Err`), or it goes to `rejects`.
pub(super) fn reject(
    rejects: Option<&mut Rejects>,
    topic: &str,
    partition: i32,
    offset: i64,
    reason: &str,
    value: &[u8],
) -> Result<(), String> {
    match rejects {
        Some(rejects) => rejects.write(topic, partition, offset, reason, value),
        None => Err(format!(
            "topic `{topic}` partition {partition} offset {offset}: {reason}"
        )),
    }
}

/// One worker's partitions.
pub(super) struct Part<R> {
    /// Serves the client's events and errors; each partition's messages
    /// come from its own queue, `queues[slot]`.
    consumer: Arc<BaseConsumer>,
    queues: Vec<PartitionQueue<DefaultConsumerContext>>,
    /// The event time of a record, to read the partitions in step by it.
    event_time: Option<EventTime<R>>,
    topic: String,
    decode: Decode<R>,
    /// Each assigned partition's next offset, and (with `stop_at_end`)
    /// its end and whether it reached it.
    partitions: Vec<Assigned>,
    positions: Option<SealedPositions>,
    pace: Option<Pace>,
    rejects: Option<Rejects>,
    /// Why the last poll failed.
    failure: Option<String>,
    sealed: Vec<Position>,
}

#[derive(Debug, Clone, Copy)]
struct Assigned {
    partition: i32,
    next_offset: i64,
    end: Option<i64>,
    done: bool,
    /// How far it was read: the newest event time taken, or (without an
    /// event time) the records taken.
    progress: u64,
    /// Its last word was the end of the partition (no message since): it
    /// is caught up, and the others need not wait for it.
    caught_up: bool,
}

impl<R> Part<R> {
    /// A consumer of `spec`'s partitions at the indices `mine`; at a capped
    /// rate, a `1 / readers` share of it.
    pub(super) fn open(
        spec: &KafkaSource<R>,
        mine: &[usize],
        readers: usize,
    ) -> Result<Self, KafkaError> {
        let settings = &spec.settings;
        // The prefetch is bounded (at most 100 000 messages or 4 MiB of
        // values per partition, fetches of 1 MiB) so that a topic far ahead
        // of the engine waits in the broker, not in memory; fewer queued
        // messages starve the workers (measured: 0.19 against 3.0 M/s with
        // 20 000). Offsets are the sink's business, never auto-committed;
        // an offset out of range is an error, not a silent jump.
        let consumer: Arc<BaseConsumer> = settings
            .config(&[
                ("group.id", &spec.group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "error"),
                ("enable.partition.eof", "true"),
                ("queued.min.messages", "100000"),
                ("queued.max.messages.kbytes", "4096"),
                ("fetch.max.bytes", "1048576"),
                ("max.partition.fetch.bytes", "1048576"),
                ("fetch.wait.max.ms", "10"),
            ])
            .create()
            .map(Arc::new)
            .map_err(|e| settings.error("create a consumer", e))?;
        let mut assignment = TopicPartitionList::new();
        let mut partitions = Vec::with_capacity(mine.len());
        for &index in mine {
            let start = spec.start[index];
            let end = spec.end.as_ref().map(|end| end[index]);
            assignment
                .add_partition_offset(
                    &spec.topic,
                    start.partition,
                    Offset::Offset(spec.fetch_from[index]),
                )
                .map_err(|e| settings.error("assign a partition", e))?;
            partitions.push(Assigned {
                partition: start.partition,
                next_offset: start.next_offset,
                end,
                done: end.is_some_and(|end| start.next_offset >= end),
                progress: 0,
                caught_up: false,
            });
        }
        // Split before the assignment, so that no message reaches the
        // consumer's own queue.
        let queues = partitions
            .iter()
            .map(|assigned| {
                consumer
                    .split_partition_queue(&spec.topic, assigned.partition)
                    .ok_or_else(|| {
                        settings.error(
                            format!("read `{}` partition {}", spec.topic, assigned.partition),
                            "no queue of its own",
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        consumer
            .assign(&assignment)
            .map_err(|e| settings.error(format!("assign partitions of `{}`", spec.topic), e))?;
        Ok(Part {
            consumer,
            queues,
            event_time: spec.event_time,
            topic: spec.topic.clone(),
            decode: spec.decode,
            partitions,
            positions: spec.positions.clone(),
            pace: spec.rate.map(|rate| Pace {
                per_second: rate as f64 / readers as f64,
                taken: 0,
            }),
            rejects: Rejects::of(&spec.bad),
            failure: None,
            sealed: Vec::with_capacity(mine.len()),
        })
    }

    fn all_done(&self) -> bool {
        self.partitions.iter().all(|p| p.done)
    }

    /// Marks `slot`'s partition done and stops fetching it.
    fn finish(&mut self, slot: usize) {
        let assigned = &mut self.partitions[slot];
        if assigned.done {
            return;
        }
        assigned.done = true;
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, assigned.partition);
        // Best effort: a message fetched after the end is passed over anyway.
        let _ = self.consumer.pause(&list);
    }
}

/// What one look at a partition's queue found.
enum Step {
    /// A record went out, or a bad message was set aside.
    Took,
    /// A record from before the partition's position, passed over.
    Passed,
    /// Nothing there now (or the partition is done).
    Empty,
    /// The source cannot go on (`Part::failure` says why).
    Failed,
}

/// Records a part takes from one partition before it looks again for the
/// one read least far (see [`KafkaSource::event_time`]).
const QUANTUM: usize = 512;

impl<R: Send + 'static> Part<R> {
    /// One message of `slot`'s partition into `out`. Hot path.
    fn take_one(&mut self, slot: usize, out: &mut Vec<R>) -> Step {
        let message = match self.queues[slot].poll(Duration::ZERO) {
            None => return Step::Empty,
            Some(Ok(message)) => message,
            Some(Err(ClientError::PartitionEOF(_))) => {
                self.partitions[slot].caught_up = true;
                if self.partitions[slot].end.is_some() {
                    // Everything there was at the start is read (the end
                    // may be a transaction marker).
                    self.finish(slot);
                }
                return Step::Empty;
            }
            Some(Err(error)) => return self.client_error(&error),
        };
        let offset = message.offset();
        self.partitions[slot].caught_up = false;
        let assigned = self.partitions[slot];
        if offset < assigned.next_offset {
            // Before the position (a fetch that started at its batch): in
            // an earlier epoch already.
            return Step::Passed;
        }
        if assigned.done || assigned.end.is_some_and(|end| offset >= end) {
            // Past the end this run stops at: left for the next run.
            drop(message);
            self.finish(slot);
            return Step::Empty;
        }
        let decoded = match message.payload() {
            Some(value) => (self.decode)(value).map_err(|reason| (reason, value.to_vec())),
            None => Err(("the message has no value".to_owned(), Vec::new())),
        };
        drop(message);
        match decoded {
            Ok(record) => {
                let progress = match self.event_time {
                    Some(event_time) => event_time(&record),
                    None => self.partitions[slot].progress + 1,
                };
                let assigned = &mut self.partitions[slot];
                assigned.progress = assigned.progress.max(progress);
                out.push(record);
            }
            Err((reason, value)) => {
                let rejects = self.rejects.as_mut();
                if let Err(failure) = reject(
                    rejects,
                    &self.topic,
                    assigned.partition,
                    offset,
                    &reason,
                    &value,
                ) {
                    self.failure = Some(failure);
                    return Step::Failed;
                }
            }
        }
        let assigned = &mut self.partitions[slot];
        assigned.next_offset = offset + 1;
        if assigned.end.is_some_and(|end| offset + 1 >= end) {
            self.finish(slot);
        }
        Step::Took
    }

    /// The partition read least far of those not done and not caught up.
    fn least_read(&self) -> Option<usize> {
        self.partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.done && !p.caught_up)
            .min_by_key(|(_, p)| p.progress)
            .map(|(slot, _)| slot)
    }

    /// Up to a quantum of `slot`'s records into `out` (no more than
    /// `limit` in it): how many messages were taken or passed over, or
    /// `Err` if the source failed.
    fn take_quantum(&mut self, slot: usize, out: &mut Vec<R>, limit: usize) -> Result<usize, ()> {
        let mut taken = 0;
        while taken < QUANTUM && out.len() < limit && !self.partitions[slot].done {
            match self.take_one(slot, out) {
                Step::Took | Step::Passed => taken += 1,
                Step::Empty => break,
                Step::Failed => return Err(()),
            }
        }
        Ok(taken)
    }

    /// An error the client reported: the run stops at a fatal one;
    /// librdkafka retries the others (a broker restarting, a connection
    /// lost), which are logged.
    fn client_error(&mut self, error: &ClientError) -> Step {
        if let Some(reason) = fatal(error) {
            self.failure = Some(format!("topic `{}`: {reason}", self.topic));
            return Step::Failed;
        }
        tracing::warn!(target: "microbatch", %error, "Kafka consumer");
        Step::Empty
    }
}

impl<R: Send + 'static> Source<R> for Part<R> {
    fn poll(&mut self, now_micros: u64, out: &mut Vec<R>, max: usize) -> Poll {
        if self.all_done() {
            return Poll::Exhausted;
        }
        let Some((limit, intended)) = Pace::limit(self.pace.as_ref(), now_micros, max) else {
            return Poll::Idle;
        };
        // The consumer's own queue carries its errors, the partitions'
        // queues the messages.
        if let Some(Err(error)) = self.consumer.poll(Duration::ZERO) {
            if let Step::Failed = self.client_error(&error) {
                return Poll::Failed;
            }
        }
        // Hot path: a quantum at a time from the partition read least far,
        // one message at a time from librdkafka's queues.
        while out.len() < limit {
            match self.least_read() {
                Some(slot) => match self.take_quantum(slot, out, limit) {
                    // Its records are on their way: the others wait.
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(()) => return Poll::Failed,
                },
                None => {
                    // Every partition caught up: whatever came since.
                    let mut took = 0;
                    for slot in 0..self.partitions.len() {
                        match self.take_quantum(slot, out, limit) {
                            Ok(n) => took += n,
                            Err(()) => return Poll::Failed,
                        }
                    }
                    if took == 0 {
                        break;
                    }
                }
            }
        }
        if let Some(pace) = &mut self.pace {
            pace.taken += out.len() as u64;
        }
        if !out.is_empty() {
            Poll::Ready {
                intended_micros: intended,
            }
        } else if self.all_done() {
            Poll::Exhausted
        } else {
            Poll::Idle
        }
    }

    fn error(&mut self) -> String {
        self.failure
            .take()
            .unwrap_or_else(|| "the Kafka source failed".into())
    }

    fn sealed(&mut self, epoch: u64) {
        if let Some(rejects) = self.rejects.as_mut() {
            rejects.sync();
        }
        let Some(positions) = &self.positions else {
            return;
        };
        self.sealed.clear();
        self.sealed
            .extend(self.partitions.iter().map(|assigned| Position {
                partition: assigned.partition,
                next_offset: assigned.next_offset,
            }));
        positions.record(epoch, &self.sealed);
    }
}

/// The consumer errors a run cannot get past: `Some(why)`.
pub(super) fn fatal(error: &ClientError) -> Option<String> {
    let code = error.rdkafka_error_code()?;
    match code {
        RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange => Some(format!(
            "{error}: a partition's position is outside the records the broker keeps"
        )),
        RDKafkaErrorCode::UnknownTopicOrPartition
        | RDKafkaErrorCode::UnknownTopic
        | RDKafkaErrorCode::UnknownPartition
        | RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::GroupAuthorizationFailed
        | RDKafkaErrorCode::Fatal => Some(error.to_string()),
        _ => None,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_paced_part_takes_what_is_due_and_says_when_it_was() {
        let mut pace = Pace {
            per_second: 1000.0,
            taken: 0,
        };
        assert_eq!(pace.allowed(0), 1);
        assert_eq!(pace.allowed(10_000), 11, "10 ms at 1000/s, and the first");
        pace.taken = 11;
        assert_eq!(pace.allowed(10_000), 0);
        assert_eq!(pace.next_due(), 11_000);
    }
}
