//! Each epoch's rows into a topic in one Kafka transaction, with the
//! source's offsets committed to the consumer group inside it
//! (`send_offsets_to_transaction`): the epoch is in the topic, for a
//! `read_committed` reader, exactly when the group's offsets are past its
//! records. Each committed offset carries the epoch in its metadata
//! (`microbatch epoch N`), so a restarted run knows both where to read and
//! how to number its next epoch ([`KafkaSink::resumption`]).
//!
//! A fixed `transactional.id` per output fences a previous incarnation
//! (a killed run's producer) when the new one calls `init_transactions`:
//! its open transaction is aborted, never half-visible.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::writer::{send_waiting, Deliveries};
use super::{KafkaError, KafkaSettings, BROKER_TIMEOUT};
use crate::engine::Resumption;
use crate::progress::EpochProgress;
use crate::sink::{Gathering, Sink, SinkError};
use crate::source::{Position, SealedPositions};

/// Writes a row of `epoch` as a message: its key into `key` (empty for
/// none) and its value into `value`, both empty on entry.
pub type ToMessage<Row> =
    fn(epoch: u64, row: &Row, key: &mut Vec<u8>, value: &mut Vec<u8>) -> Result<(), String>;

/// The prefix of a committed offset's metadata, before the epoch.
const EPOCH_METADATA: &str = "microbatch epoch ";

/// How long a transaction's commit may take.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The source's offsets the transactions commit, and to which group.
struct Offsets {
    positions: SealedPositions,
    group: ConsumerGroupMetadata,
}

/// Produces each epoch's rows to a topic in one transaction.
pub struct KafkaSink<Row> {
    settings: KafkaSettings,
    topic: String,
    producer: ThreadedProducer<Deliveries>,
    to_message: ToMessage<Row>,
    offsets: Option<Offsets>,
    pending: Gathering<Row>,
}

impl<Row: Send + 'static> KafkaSink<Row> {
    /// A transactional producer to `topic` as `transactional_id` (the same
    /// for every run of one output, so that a new run fences the old);
    /// waits for the broker's transaction coordinator. Refused if the
    /// broker does not support transactions.
    pub fn open(
        settings: &KafkaSettings,
        topic: &str,
        transactional_id: &str,
        to_message: ToMessage<Row>,
    ) -> Result<Self, KafkaError> {
        settings.partitions(topic)?;
        let producer: ThreadedProducer<Deliveries> = settings
            .config(&[
                ("transactional.id", transactional_id),
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("transaction.timeout.ms", "60000"),
            ])
            .create_with_context(Deliveries::default())
            .map_err(|e| settings.error("create a transactional producer", e))?;
        producer.init_transactions(BROKER_TIMEOUT).map_err(|e| {
            settings.error(
                format!(
                    "start transactions as `{transactional_id}` (the Kafka sink needs a broker \
                     with transactions: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, \
                     TxnOffsetCommit and EndTxn)"
                ),
                e,
            )
        })?;
        Ok(KafkaSink {
            settings: settings.clone(),
            topic: topic.to_owned(),
            producer,
            to_message,
            offsets: None,
            pending: Gathering::new(),
        })
    }

    /// Commits `positions` (the source's, see
    /// [`KafkaSource::recording`](super::KafkaSource::recording)) to
    /// consumer group `group` in each epoch's transaction.
    pub fn committing_offsets(
        mut self,
        positions: SealedPositions,
        group: &str,
    ) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer = self
            .settings
            .config(&[("group.id", group)])
            .create()
            .map_err(|e| self.settings.error("create a consumer", e))?;
        let group = consumer.group_metadata().ok_or_else(|| {
            self.settings
                .error("read the group's metadata", "none given")
        })?;
        self.offsets = Some(Offsets { positions, group });
        Ok(self)
    }

    /// Where a run whose epochs went to this sink resumes: the offsets
    /// consumer group `group` committed for `source_topic` (partitions
    /// without one start at their first record) and the epoch after the
    /// newest named in their metadata.
    pub fn resumption(
        settings: &KafkaSettings,
        source_topic: &str,
        group: &str,
    ) -> Result<(Resumption, Vec<Position>), KafkaError> {
        let consumer: BaseConsumer = settings
            .config(&[("group.id", group)])
            .create()
            .map_err(|e| settings.error("create a consumer", e))?;
        let mut list = TopicPartitionList::new();
        for partition in settings.partitions_with(&consumer, source_topic)? {
            list.add_partition(source_topic, partition);
        }
        let committed = consumer
            .committed_offsets(list, BROKER_TIMEOUT)
            .map_err(|e| {
                settings.error(format!("read the offsets group `{group}` committed"), e)
            })?;
        let mut positions = Vec::new();
        let mut last_epoch: Option<u64> = None;
        for element in committed.elements() {
            let Offset::Offset(offset) = element.offset() else {
                continue;
            };
            positions.push(Position {
                partition: element.partition(),
                next_offset: offset,
            });
            if let Some(epoch) = element
                .metadata()
                .strip_prefix(EPOCH_METADATA)
                .and_then(|e| e.parse::<u64>().ok())
            {
                last_epoch = last_epoch.max(Some(epoch));
            }
        }
        let resumption = Resumption {
            next_epoch: last_epoch.map_or(0, |e| e + 1),
            totals: None,
        };
        Ok((resumption, positions))
    }

    fn failed(&self, action: &str, error: impl ToString) -> SinkError {
        SinkError::Custom(format!(
            "Kafka ({}): topic `{}`: cannot {action}: {}",
            self.settings.brokers,
            self.topic,
            error.to_string()
        ))
    }

    /// The epoch's rows and offsets in the open transaction.
    fn produce(&self, epoch: u64, rows: &[Row]) -> Result<(), SinkError> {
        let (mut key, mut value) = (Vec::new(), Vec::new());
        for row in rows {
            key.clear();
            value.clear();
            (self.to_message)(epoch, row, &mut key, &mut value)
                .map_err(|message| SinkError::Encode { epoch, message })?;
            let mut record = BaseRecord::to(&self.topic).payload(value.as_slice());
            if !key.is_empty() {
                record = record.key(key.as_slice());
            }
            send_waiting(&self.producer, record).map_err(|e| self.failed("produce a row", e))?;
        }
        if let Some(offsets) = &self.offsets {
            let mut list = TopicPartitionList::new();
            for position in offsets.positions.take(epoch) {
                list.add_partition_offset(
                    offsets.positions.stream(),
                    position.partition,
                    Offset::Offset(position.next_offset),
                )
                .map_err(|e| self.failed("list the offsets", e))?;
            }
            for mut element in list.elements() {
                element.set_metadata(format!("{EPOCH_METADATA}{epoch}"));
            }
            self.producer
                .send_offsets_to_transaction(&list, &offsets.group, BROKER_TIMEOUT)
                .map_err(|e| self.failed("add the source's offsets to the transaction", e))?;
        }
        Ok(())
    }
}

impl<Row: Send + 'static> Sink<Row> for KafkaSink<Row> {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        self.pending.add(epoch, rows);
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        let rows = self.pending.take(epoch);
        self.producer
            .begin_transaction()
            .map_err(|e| self.failed("begin a transaction", e))?;
        let produced = self.produce(epoch, &rows).and_then(|()| {
            self.producer
                .commit_transaction(COMMIT_TIMEOUT)
                .map_err(|e| self.failed(&format!("commit epoch {epoch}"), e))
        });
        if produced.is_err() {
            // Nothing of the epoch becomes visible; the run stops with the
            // error, and a restart redoes the epoch from the committed
            // offsets.
            let _ = self.producer.abort_transaction(BROKER_TIMEOUT);
        }
        produced?;
        if let Some(failures) = self.producer.context().failures() {
            return Err(self.failed(&format!("deliver epoch {epoch}"), failures));
        }
        Ok(())
    }
}
