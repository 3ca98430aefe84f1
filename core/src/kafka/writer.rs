//! Loading a topic: creating it with a partition count, and producing
//! records to it with delivery checked (for `microbatch kafka produce`,
//! demos and tests; not the engine's sink).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::{KafkaError, KafkaSettings, BROKER_TIMEOUT};

/// Creates `topic` with `partitions` partitions (replication 1); a topic
/// that exists already with that many partitions is fine, one with another
/// count is refused.
pub fn create_topic(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = settings
        .config(&[])
        .create()
        .map_err(|e| settings.error("create an admin client", e))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(BROKER_TIMEOUT));
    let results = futures_executor::block_on(admin.create_topics([&new], &options))
        .map_err(|e| settings.error(format!("create topic `{topic}`"), e))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                let found = settings.partitions(topic)?.len();
                if found != partitions as usize {
                    return Err(settings.topic_error(
                        topic,
                        format!("exists with {found} partitions, not {partitions}"),
                    ));
                }
            }
            Err((_, code)) => {
                return Err(settings.error(format!("create topic `{topic}`"), code));
            }
        }
    }
    // The metadata may lag the creation by a moment.
    for _ in 0..50 {
        if settings
            .partitions(topic)
            .is_ok_and(|found| found.len() == partitions as usize)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(settings.topic_error(topic, "was created but its partitions do not show"))
}

/// Sends `record`, waiting for room while the client's queue is full.
pub(crate) fn send_waiting(
    producer: &ThreadedProducer<Deliveries>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), ClientError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((ClientError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// Produces messages to a topic, each acknowledged by the broker before
/// [`finish`](TopicWriter::finish) returns (idempotent producer: a retry
/// is not a duplicate).
pub struct TopicWriter {
    settings: KafkaSettings,
    topic: String,
    producer: ThreadedProducer<Deliveries>,
    sent: u64,
}

/// Counts the messages the broker did not take, keeping the first reason.
#[derive(Default)]
pub(crate) struct Deliveries {
    failed: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Deliveries {
    /// `None` if every delivery so far succeeded, else how many failed and
    /// the first reason.
    pub(crate) fn failures(&self) -> Option<String> {
        let failed = self.failed.load(Ordering::Acquire);
        (failed > 0).then(|| {
            let first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            format!(
                "{failed} messages were not delivered; the first: {}",
                first.as_deref().unwrap_or("(no reason given)")
            )
        })
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::AcqRel);
            let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| error.to_string());
        }
    }
}

impl TopicWriter {
    /// A writer to `topic`.
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self, KafkaError> {
        let producer = settings
            .config(&[
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("batch.num.messages", "50000"),
                ("batch.size", "4000000"),
                ("queue.buffering.max.kbytes", "65536"),
            ])
            .create_with_context(Deliveries::default())
            .map_err(|e| settings.error("create a producer", e))?;
        Ok(TopicWriter {
            settings: settings.clone(),
            topic: topic.to_owned(),
            producer,
            sent: 0,
        })
    }

    /// Sends `value` with `key` (which picks the partition: the same key,
    /// the same partition), or to `partition` if given; waits for room when
    /// the client's queue is full.
    pub fn send(
        &mut self,
        key: &[u8],
        value: &[u8],
        partition: Option<i32>,
    ) -> Result<(), KafkaError> {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(value);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        send_waiting(&self.producer, record).map_err(|error| {
            self.settings
                .error(format!("produce to `{}`", self.topic), error)
        })?;
        self.sent += 1;
        Ok(())
    }

    /// Messages sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Waits until the broker acknowledged every message; fails if any
    /// was refused.
    pub fn finish(self) -> Result<u64, KafkaError> {
        let action = || format!("deliver the messages to `{}`", self.topic);
        self.producer
            .flush(Duration::from_secs(60))
            .map_err(|e| self.settings.error(action(), e))?;
        if let Some(failures) = self.producer.context().failures() {
            return Err(self.settings.error(action(), failures));
        }
        Ok(self.sent)
    }
}
