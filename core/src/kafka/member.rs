//! One worker of an instance in a consumer group: a member of the group
//! with a consumer of its own. When the group assigns it partitions it
//! claims each ([`Claims`]) and starts it at the offset after the
//! partition's last committed epoch (or where it was, if it held the
//! partition already); when the group revokes them it stops reading them.
//! At each seal it records what it read of each partition, under which
//! generation. Hot path: [`Member::poll`](Source::poll).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::group::{
    key_prefix, Claim, Claims, GroupPositions, GroupReport, GroupSource, Held, Tag,
};
use super::reader::{fatal, reject, Pace, Rejects};
use super::source::Decode;
use super::KafkaError;
use crate::config::ConfigError;
use crate::source::{Poll, Source, SourceParts, SourceSpec};
use crate::sync::cold::{lock, Mutex};
use crate::sync::Arc;

/// One consumer per worker, each a member of the group.
impl<R: Send + 'static> SourceSpec<R> for GroupSource<R> {
    fn split(self, workers: usize) -> Result<SourceParts<R>, ConfigError> {
        let mut parts: SourceParts<R> = Vec::with_capacity(workers);
        for worker in 0..workers {
            let part = Member::join(&self, worker, workers).map_err(|error| {
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

/// What a rebalance changed, for the worker to apply after its poll.
#[derive(Debug, Default)]
struct Changes {
    assigned: Vec<(i32, Claim)>,
    revoked: Vec<i32>,
    /// A claim that failed: the run stops.
    failure: Option<String>,
}

/// The consumer's context: serves the group's rebalances inside the
/// worker's own poll (librdkafka calls back on the polling thread).
struct Membership {
    settings: super::KafkaSettings,
    topic: String,
    owner: String,
    claims: Arc<dyn Claims>,
    changes: Mutex<Changes>,
    changed: AtomicBool,
}

impl ClientContext for Membership {}

impl ConsumerContext for Membership {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        let outcome = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let claimed = self.claim(&partitions, tpl);
                lock(&self.changes).assigned.extend(claimed);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                lock(&self.changes).revoked.extend(&partitions);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(target: "microbatch", error = ?other, "Kafka group rebalance");
                consumer.unassign()
            }
        };
        if let Err(error) = outcome {
            self.fail(format!("cannot take the group's assignment: {error}"));
        }
        self.changed.store(true, Ordering::Release);
    }
}

impl Membership {
    /// Claims `partitions` and sets where `tpl` fetches each from: after
    /// its last committed epoch, from the start of the batch holding that
    /// offset where the broker needs it (the worker passes over the
    /// records before it).
    fn claim(&self, partitions: &[i32], tpl: &mut TopicPartitionList) -> Vec<(i32, Claim)> {
        let mut claimed = Vec::with_capacity(partitions.len());
        for &partition in partitions {
            match self.claims.claim(&self.topic, partition, &self.owner) {
                Ok(claim) => claimed.push((partition, claim)),
                Err(message) => self.fail(format!(
                    "cannot claim `{}` partition {partition}: {message}",
                    self.topic
                )),
            }
        }
        let wanted: Vec<(i32, i64)> = claimed
            .iter()
            .filter_map(|(partition, claim)| claim.next_offset.map(|offset| (*partition, offset)))
            .collect();
        let starts = match self.settings.fetch_starts_at(&self.topic, &wanted) {
            Ok(starts) => starts,
            Err(error) => {
                self.fail(error.to_string());
                return claimed;
            }
        };
        for (partition, _) in &claimed {
            let offset = wanted
                .iter()
                .zip(&starts)
                .find(|((p, _), _)| p == partition)
                .map_or(Offset::Beginning, |(_, start)| Offset::Offset(*start));
            if let Err(error) = tpl.set_partition_offset(&self.topic, *partition, offset) {
                self.fail(format!("cannot start partition {partition}: {error}"));
            }
        }
        claimed
    }

    fn fail(&self, message: String) {
        lock(&self.changes).failure.get_or_insert(message);
    }
}

/// What a worker read of one partition under one generation.
#[derive(Debug, Clone, Copy)]
struct Reading {
    partition: i32,
    generation: u64,
    prefix: u64,
    next_offset: i64,
    /// Read from (records or bad messages) since the last seal.
    moved: bool,
    /// The position a gap after it was checked at (see `Member::refetch`).
    gap_checked: Option<i64>,
    /// Assigned to this worker now.
    active: bool,
}

/// A worker's membership in the group and what it read.
pub(super) struct Member<R> {
    consumer: BaseConsumer<Membership>,
    settings: super::KafkaSettings,
    worker: usize,
    topic: String,
    decode: Decode<R>,
    tag: Tag<R>,
    /// Every partition this worker read under a generation still its own,
    /// and those revoked but not yet recorded.
    readings: Vec<Reading>,
    positions: GroupPositions,
    report: GroupReport,
    pace: Option<Pace>,
    rejects: Option<Rejects>,
    failure: Option<String>,
    sealed: Vec<Held>,
}

impl<R> Member<R> {
    /// Worker `worker` of `workers` joins the group of `spec`.
    pub(super) fn join(
        spec: &GroupSource<R>,
        worker: usize,
        workers: usize,
    ) -> Result<Self, KafkaError> {
        let settings = &spec.settings;
        let membership = Membership {
            settings: settings.clone(),
            topic: spec.topic.clone(),
            owner: format!("{} worker {worker}", spec.instance),
            claims: Arc::clone(&spec.claims),
            changes: Mutex::new(Changes::default()),
            changed: AtomicBool::new(false),
        };
        // As in a fixed assignment's reader (bounded prefetch, offsets the
        // sink's business), plus the group's membership: a member that
        // stops heartbeating is out after 6 s (Kafka's least session
        // timeout), and cooperative rebalancing moves only the partitions
        // that change owner.
        let consumer: BaseConsumer<Membership> = settings
            .config(&[
                ("group.id", &spec.group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                ("queued.min.messages", "100000"),
                ("queued.max.messages.kbytes", "4096"),
                ("fetch.max.bytes", "1048576"),
                ("max.partition.fetch.bytes", "1048576"),
                ("fetch.wait.max.ms", "10"),
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "1000"),
                ("partition.assignment.strategy", "cooperative-sticky"),
            ])
            .create_with_context(membership)
            .map_err(|e| settings.error("create a consumer", e))?;
        consumer
            .subscribe(&[&spec.topic])
            .map_err(|e| settings.error(format!("join group `{}`", spec.group), e))?;
        spec.report.update(|seen| {
            seen.held.insert(worker, Vec::new());
        });
        Ok(Member {
            consumer,
            settings: settings.clone(),
            worker,
            topic: spec.topic.clone(),
            decode: spec.decode,
            tag: spec.tag,
            readings: Vec::new(),
            positions: spec.positions.clone(),
            report: spec.report.clone(),
            pace: spec.rate.map(|rate| Pace {
                per_second: rate as f64 / workers as f64,
                taken: 0,
            }),
            rejects: Rejects::of(&spec.bad),
            failure: None,
            sealed: Vec::new(),
        })
    }
}

/// Applies what the last rebalance changed to `worker`'s `readings`, or
/// says why the run stops. Cold path.
fn apply_changes(
    changes: Changes,
    worker: usize,
    readings: &mut Vec<Reading>,
    report: &GroupReport,
) -> Result<(), String> {
    if let Some(failure) = changes.failure {
        return Err(failure);
    }
    for partition in &changes.revoked {
        for reading in readings.iter_mut().filter(|r| r.partition == *partition) {
            reading.active = false;
        }
    }
    for (partition, claim) in &changes.assigned {
        let same = readings
            .iter()
            .position(|r| r.partition == *partition && r.generation == claim.generation);
        match same {
            // Held already under this generation: reads on from where it
            // is, passing over what the fetch from the committed offset
            // gives again.
            Some(index) if claim.kept => readings[index].active = true,
            _ => {
                // Readings under older generations are fenced: what they
                // read is dropped at their commit.
                readings.retain(|r| r.partition != *partition || r.moved);
                for r in readings.iter_mut().filter(|r| r.partition == *partition) {
                    r.active = false;
                }
                readings.push(Reading {
                    partition: *partition,
                    generation: claim.generation,
                    prefix: key_prefix(*partition, claim.generation),
                    next_offset: claim.next_offset.unwrap_or(0),
                    moved: false,
                    active: true,
                    gap_checked: None,
                });
            }
        }
    }
    let held: Vec<i32> = readings
        .iter()
        .filter(|r| r.active)
        .map(|r| r.partition)
        .collect();
    let rebalances = (!changes.assigned.is_empty()) as u64 + (!changes.revoked.is_empty()) as u64;
    report.update(|seen| {
        for partition in &held {
            if !seen.ever_held.contains(partition) {
                seen.ever_held.push(*partition);
                seen.ever_held.sort_unstable();
            }
        }
        seen.held.insert(worker, held);
        seen.rebalances += rebalances;
    });
    Ok(())
}

impl<R> Member<R> {
    /// Fetches `slot`'s partition again so that its record at the
    /// reading's position comes first, if there is one. Cold path: once
    /// per gap.
    fn refetch(&mut self, slot: usize) -> Result<(), String> {
        let reading = &mut self.readings[slot];
        let wanted = [(reading.partition, reading.next_offset)];
        let start = self
            .settings
            .fetch_starts_at(&self.topic, &wanted)
            .map_err(|e| e.to_string())?[0];
        reading.gap_checked = Some(reading.next_offset);
        self.consumer
            .seek(
                &self.topic,
                reading.partition,
                Offset::Offset(start),
                super::BROKER_TIMEOUT,
            )
            .map_err(|error| {
                format!(
                    "topic `{}`: cannot fetch partition {} again from {start}: {error}",
                    self.topic, reading.partition
                )
            })
    }
}

impl<R: Send + 'static> Source<R> for Member<R> {
    fn poll(&mut self, now_micros: u64, out: &mut Vec<R>, max: usize) -> Poll {
        if self.report.stopped() {
            return Poll::Exhausted;
        }
        let Some((limit, intended)) = Pace::limit(self.pace.as_ref(), now_micros, max) else {
            return Poll::Idle;
        };
        let mut slot = 0;
        // Hot path: one message at a time from librdkafka's queue; a
        // rebalance (rare) is served inside the consumer's poll and
        // applied before the next message is looked at.
        while out.len() < limit {
            let message = self.consumer.poll(Duration::ZERO);
            let context = self.consumer.context();
            if context.changed.swap(false, Ordering::AcqRel) {
                let changes = std::mem::take(&mut *lock(&context.changes));
                if let Err(failure) =
                    apply_changes(changes, self.worker, &mut self.readings, &self.report)
                {
                    self.failure = Some(failure);
                    return Poll::Failed;
                }
            }
            let message = match message {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(ClientError::PartitionEOF(_))) => continue,
                Some(Err(error)) => {
                    if let Some(reason) = fatal(&error) {
                        self.failure = Some(format!("topic `{}`: {reason}", self.topic));
                        return Poll::Failed;
                    }
                    tracing::warn!(target: "microbatch", %error, "Kafka consumer");
                    break;
                }
            };
            let partition = message.partition();
            if self
                .readings
                .get(slot)
                .is_none_or(|r| r.partition != partition || !r.active)
            {
                match self
                    .readings
                    .iter()
                    .position(|r| r.partition == partition && r.active)
                {
                    Some(found) => slot = found,
                    // Fetched before its revocation: not this worker's.
                    None => continue,
                }
            }
            let offset = message.offset();
            let reading = self.readings[slot];
            if offset < reading.next_offset {
                // Read already under this generation (a fetch from the
                // committed offset after a rebalance kept the partition).
                continue;
            }
            if offset > reading.next_offset && reading.gap_checked != Some(reading.next_offset) {
                // A gap: real (a transaction marker, a compacted record),
                // or a broker that skipped the rest of a batch because a
                // fetch restarted inside it (tansu 0.6 does, when librdkafka
                // refetches from the worker's position after a
                // rebalance). Fetched again from where the broker needs
                // it, once per position: a gap met again is real.
                drop(message);
                if let Err(failure) = self.refetch(slot) {
                    self.failure = Some(failure);
                    return Poll::Failed;
                }
                continue;
            }
            let decoded = match message.payload() {
                Some(value) => (self.decode)(value)
                    .and_then(|record| (self.tag)(record, reading.prefix))
                    .map_err(|reason| (reason, value.to_vec())),
                None => Err(("the message has no value".to_owned(), Vec::new())),
            };
            drop(message);
            match decoded {
                Ok(record) => out.push(record),
                Err((reason, value)) => {
                    let rejects = self.rejects.as_mut();
                    if let Err(failure) =
                        reject(rejects, &self.topic, partition, offset, &reason, &value)
                    {
                        self.failure = Some(failure);
                        return Poll::Failed;
                    }
                }
            }
            let reading = &mut self.readings[slot];
            reading.next_offset = offset + 1;
            reading.moved = true;
        }
        if let Some(pace) = &mut self.pace {
            pace.taken += out.len() as u64;
        }
        if out.is_empty() {
            Poll::Idle
        } else {
            Poll::Ready {
                intended_micros: intended,
            }
        }
    }

    fn error(&mut self) -> String {
        self.failure
            .take()
            .unwrap_or_else(|| "the Kafka group's source failed".into())
    }

    fn sealed(&mut self, epoch: u64) {
        if let Some(rejects) = self.rejects.as_mut() {
            rejects.sync();
        }
        self.sealed.clear();
        for reading in self.readings.iter_mut().filter(|r| r.moved) {
            self.sealed.push(Held {
                partition: reading.partition,
                generation: reading.generation,
                next_offset: reading.next_offset,
            });
            reading.moved = false;
        }
        // Revoked and recorded: nothing more of them to commit. A reading
        // kept while revoked resumes if the claim keeps its generation.
        if !self.sealed.is_empty() {
            self.positions.record(epoch, &self.sealed);
        }
    }
}
