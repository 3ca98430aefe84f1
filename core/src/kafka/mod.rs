//! Kafka in and out (the `kafka` feature), through librdkafka (the
//! `rdkafka` crate).
//!
//! - [`KafkaSource`]: a topic's partitions spread over the workers, each
//!   partition read by one worker straight into its open batch, every
//!   message decoded by a function of yours. Each part records its
//!   partitions' next offsets at every seal in
//!   [`SealedPositions`](crate::source::SealedPositions), which
//!   an [SQLite sink](crate::sink::sqlite::EpochDatabase::with_positions)
//!   commits in the epoch's transaction: a restarted run starts each
//!   partition at the offsets its sink holds ("storing offsets outside
//!   Kafka"), so every record is in exactly one committed epoch.
//! - [`KafkaSink`]: each epoch's rows produced to a topic in one Kafka
//!   transaction, with the source's offsets committed to the consumer
//!   group in the same transaction, so that a `read_committed` consumer
//!   sees every epoch once.
//! - [`GroupSource`]: the same topic read by several instances as one
//!   consumer group, partitions moving between them as they join and
//!   leave, each partition's epochs fenced by its claim in a shared store
//!   (the [PostgreSQL sink](crate::postgres)).
//! - [`TopicWriter`] and [`create_topic`]: loading a topic, for demos and
//!   tests.
//!
//! What the client forces on the hot path: librdkafka hands out one
//! message at a time from its fetch queue (a lock of its own per message,
//! and its own allocation of the message's envelope, outside Rust's
//! allocator); the engine adds nothing per record beyond the decode. Its
//! prefetch is bounded (`queued.max.messages.kbytes`), so a producer far
//! faster than the engine fills that buffer and the fetcher waits: the
//! partitions are in effect paused while the engine is behind.

mod group;
mod member;
mod reader;
mod sink;
mod source;
mod writer;

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

pub use group::{
    generation_tag, key_prefix, split_key, tagged_key, Claim, Claims, GroupPositions, GroupReport,
    GroupSource, Held, Seen, Tag, KEY_BITS, MAX_PARTITIONS, PARTITION_BITS, TAG_BITS,
};
pub use sink::{KafkaSink, ToMessage};
pub use source::{BadMessages, Decode, EventTime, KafkaSource};
pub use writer::{create_topic, TopicWriter};

/// How long a metadata, watermark or transaction call may wait for the
/// broker.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why Kafka could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// The client or the broker refused a request.
    #[error("Kafka ({brokers}): cannot {action}: {message}")]
    Client {
        /// The bootstrap servers.
        brokers: String,
        /// What was being done.
        action: String,
        /// The client's message.
        message: String,
    },
    /// The topic is missing or does not fit what the run was given.
    #[error("Kafka ({brokers}): topic `{topic}`: {message}")]
    Topic {
        /// The bootstrap servers.
        brokers: String,
        /// The topic.
        topic: String,
        /// What is wrong.
        message: String,
    },
}

/// Where the brokers are, and a client's settings beyond the engine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// The bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// librdkafka settings passed through (`name`, `value`), after the
    /// engine's own, so they win.
    pub client: Vec<(String, String)>,
}

impl KafkaSettings {
    /// The brokers at `brokers`, with librdkafka's defaults otherwise.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            client: Vec::new(),
        }
    }

    /// A client configuration with the brokers, `engine`'s settings, then
    /// the pass-through ones.
    pub(crate) fn config(&self, engine: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (name, value) in engine {
            config.set(*name, *value);
        }
        for (name, value) in &self.client {
            config.set(name, value);
        }
        config
    }

    pub(crate) fn error(&self, action: impl Into<String>, error: impl ToString) -> KafkaError {
        KafkaError::Client {
            brokers: self.brokers.clone(),
            action: action.into(),
            message: error.to_string(),
        }
    }

    pub(crate) fn topic_error(&self, topic: &str, message: impl Into<String>) -> KafkaError {
        KafkaError::Topic {
            brokers: self.brokers.clone(),
            topic: topic.to_owned(),
            message: message.into(),
        }
    }

    /// The partitions of `topic`, in order; refused if the topic does not
    /// exist or has none.
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>, KafkaError> {
        let consumer: BaseConsumer = self
            .config(&[])
            .create()
            .map_err(|e| self.error("create a client", e))?;
        self.partitions_with(&consumer, topic)
    }

    pub(crate) fn partitions_with(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
    ) -> Result<Vec<i32>, KafkaError> {
        let metadata = consumer
            .fetch_metadata(Some(topic), BROKER_TIMEOUT)
            .map_err(|e| self.error(format!("read the metadata of topic `{topic}`"), e))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(self.topic_error(topic, "not in the broker's metadata"));
        };
        if let Some(error) = found.error() {
            let error = rdkafka::error::RDKafkaErrorCode::from(error);
            return Err(self.topic_error(topic, format!("{error}; create it first")));
        }
        let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        if partitions.is_empty() {
            return Err(self.topic_error(topic, "has no partitions; create it first"));
        }
        Ok(partitions)
    }

    /// A consumer to look at partitions with: told of each partition's
    /// end, quick to answer.
    fn probe(&self) -> Result<BaseConsumer, KafkaError> {
        self.config(&[
            ("enable.partition.eof", "true"),
            ("group.id", "microbatch-probe"),
            ("fetch.wait.max.ms", "10"),
        ])
        .create()
        .map_err(|e| self.error("create a client", e))
    }

    /// Each partition's offsets `[low, end)` now: its first record still
    /// kept and the offset its next record will get.
    ///
    /// The end is read, not only asked for: the broker's answer to
    /// `ListOffsets` (`high`) is checked by fetching from `high - 1` to
    /// the end of the partition, which costs one batch per partition. A
    /// Kafka broker's `high` is the end already; tansu 0.6 answers the
    /// base offset of the newest batch plus one, short of the end by the
    /// rest of that batch.
    pub fn watermarks(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, KafkaError> {
        let consumer = self.probe()?;
        let mut marks = self
            .partitions_with(&consumer, topic)?
            .into_iter()
            .map(|partition| {
                consumer
                    .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
                    .map(|(low, high)| (partition, low, high))
                    .map_err(|e| {
                        self.error(
                            format!("read the offsets of `{topic}` partition {partition}"),
                            e,
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.read_ends(&consumer, topic, &mut marks)?;
        Ok(marks)
    }

    /// Where to fetch from so that a consumer gets each partition's record
    /// at its `wanted` offset (or the first one after it), for each
    /// `(partition, wanted, low)`: `wanted` itself on a broker that answers
    /// a fetch with the batch holding the offset asked for, as Kafka does.
    /// tansu 0.6 answers with the batches that start at or after it,
    /// skipping the rest of the batch holding `wanted`; there the fetch
    /// starts at that batch, found by asking for ever earlier offsets
    /// (`wanted - 65 536`, `- 16 × 65 536`, … down to `low`), all
    /// partitions at once,
    /// and the reader passes over the records before `wanted`.
    pub(crate) fn fetch_starts(
        &self,
        topic: &str,
        wanted: &[(i32, i64, i64)],
    ) -> Result<Vec<i64>, KafkaError> {
        let consumer = self.probe()?;
        // `None` while a partition's start is not known; the offset asked
        // for in this round.
        let mut starts: Vec<Option<i64>> = vec![None; wanted.len()];
        let mut asked: Vec<i64> = wanted.iter().map(|w| w.1).collect();
        let mut step: i64 = 0;
        while starts.iter().any(Option::is_none) {
            let mut list = rdkafka::TopicPartitionList::new();
            for (index, &(partition, _, _)) in wanted.iter().enumerate() {
                if starts[index].is_none() {
                    list.add_partition_offset(
                        topic,
                        partition,
                        rdkafka::Offset::Offset(asked[index]),
                    )
                    .map_err(|e| self.error("list the partitions to read", e))?;
                }
            }
            consumer
                .assign(&list)
                .map_err(|e| self.error(format!("read the positions of `{topic}`"), e))?;
            let firsts = self.first_offsets(&consumer, topic, wanted, &starts, &asked)?;
            // Large steps: a round trip costs more than re-reading records.
            step = if step == 0 {
                65_536
            } else {
                step.saturating_mul(16)
            };
            for (index, &(_, want, low)) in wanted.iter().enumerate() {
                if starts[index].is_some() {
                    continue;
                }
                let at = asked[index];
                // Nothing from there to the end, or a record at or before
                // the one wanted: fetching from `at` reaches it.
                if firsts[index].is_none_or(|first| first <= want) || at == low {
                    starts[index] = Some(at);
                } else {
                    asked[index] = want.saturating_sub(step).max(low);
                }
            }
        }
        Ok(starts.into_iter().map(|s| s.unwrap_or_default()).collect())
    }

    /// Where to fetch from so that a consumer gets each of `wanted`'s
    /// `(partition, offset)` records first (see
    /// [`fetch_starts`](KafkaSettings::fetch_starts)): the offset itself
    /// at a partition's first kept record or end, or where the broker
    /// needs the fetch to start.
    pub(crate) fn fetch_starts_at(
        &self,
        topic: &str,
        wanted: &[(i32, i64)],
    ) -> Result<Vec<i64>, KafkaError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        // The ends read, not only asked for (see `watermarks`).
        let marks = self.watermarks(topic)?;
        self.fetch_starts_within(topic, &marks, wanted)
    }

    /// [`fetch_starts_at`](KafkaSettings::fetch_starts_at) with each
    /// partition's `(partition, low, end)` known: only an offset inside
    /// the records kept needs asking where its fetch starts.
    pub(crate) fn fetch_starts_within(
        &self,
        topic: &str,
        marks: &[(i32, i64, i64)],
        wanted: &[(i32, i64)],
    ) -> Result<Vec<i64>, KafkaError> {
        let mut starts: Vec<i64> = wanted.iter().map(|w| w.1).collect();
        let mut inside = Vec::new();
        for (index, &(partition, offset)) in wanted.iter().enumerate() {
            let Some(&(_, low, high)) = marks.iter().find(|m| m.0 == partition) else {
                return Err(self.topic_error(topic, format!("has no partition {partition}")));
            };
            if offset > low && offset < high {
                inside.push((index, (partition, offset, low)));
            }
        }
        let asked: Vec<(i32, i64, i64)> = inside.iter().map(|i| i.1).collect();
        for ((index, _), start) in inside.iter().zip(self.fetch_starts(topic, &asked)?) {
            starts[*index] = start;
        }
        Ok(starts)
    }

    /// The offset of the first record each partition still open in
    /// `starts` sent after the assignment at `asked` (`None`: the
    /// partition's end; `i64::MAX`: nothing within 2 s).
    fn first_offsets(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        wanted: &[(i32, i64, i64)],
        starts: &[Option<i64>],
        asked: &[i64],
    ) -> Result<Vec<Option<i64>>, KafkaError> {
        use rdkafka::message::Message;
        let index_of = |partition: i32| wanted.iter().position(|w| w.0 == partition);
        let mut firsts: Vec<Option<Option<i64>>> = starts.iter().map(|s| s.map(|_| None)).collect();
        // A broker that skips the batch holding the offset asked for, with
        // no batch after it, sends nothing and no end either: after this
        // long, the record wanted is taken to be further back.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while firsts.iter().any(Option::is_none) {
            if std::time::Instant::now() > deadline {
                for first in firsts.iter_mut().filter(|f| f.is_none()) {
                    *first = Some(Some(i64::MAX));
                }
                break;
            }
            match consumer.poll(Duration::from_millis(5)) {
                Some(Ok(message)) => {
                    if let Some(index) = index_of(message.partition()) {
                        if firsts[index].is_none() && message.offset() >= asked[index] {
                            firsts[index] = Some(Some(message.offset()));
                        }
                    }
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                    if let Some(index) = index_of(partition) {
                        firsts[index].get_or_insert(None);
                    }
                }
                Some(Err(error)) => {
                    return Err(self.error(format!("read the positions of `{topic}`"), error))
                }
                None => {}
            }
        }
        Ok(firsts.into_iter().map(Option::flatten).collect())
    }

    /// Moves each of `marks`' ends to one past the last record found from
    /// `end - 1` to the partition's end.
    fn read_ends(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        marks: &mut [(i32, i64, i64)],
    ) -> Result<(), KafkaError> {
        let mut probe = rdkafka::TopicPartitionList::new();
        let mut open = 0;
        for &(partition, low, high) in marks.iter() {
            if high > low {
                probe
                    .add_partition_offset(topic, partition, rdkafka::Offset::Offset(high - 1))
                    .map_err(|e| self.error("list the partitions to read", e))?;
                open += 1;
            }
        }
        if open == 0 {
            return Ok(());
        }
        consumer
            .assign(&probe)
            .map_err(|e| self.error(format!("read the ends of `{topic}`"), e))?;
        let deadline = std::time::Instant::now() + BROKER_TIMEOUT;
        while open > 0 {
            if std::time::Instant::now() > deadline {
                return Err(self.error(
                    format!("read the ends of `{topic}`"),
                    "the broker did not say where they are within 10 s",
                ));
            }
            use rdkafka::message::Message;
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    if let Some(mark) = marks.iter_mut().find(|m| m.0 == message.partition()) {
                        mark.2 = mark.2.max(message.offset() + 1);
                    }
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => open -= 1,
                Some(Err(error)) => {
                    return Err(self.error(format!("read the ends of `{topic}`"), error))
                }
                None => {}
            }
        }
        Ok(())
    }
}
