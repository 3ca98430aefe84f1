//! What a run reads of a topic: its partitions, where each starts (the
//! sink's stored positions, fetched from their batch where the broker
//! needs it), where the run stops, its pace, what a bad message does. How
//! one worker reads its share is `reader`: partition `p` of the sorted
//! partitions goes to worker `p mod W`, a consumer of its own with those
//! partitions assigned (no group rebalancing: the assignment is fixed for
//! the run).

use std::path::PathBuf;

use super::{KafkaError, KafkaSettings};
use crate::source::{Position, SealedPositions};

/// Turns a message's value into a record, or says why it is not one.
pub type Decode<R> = fn(&[u8]) -> Result<R, String>;

/// What to do with a message that is not a record (no value, or one the
/// decoder refuses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadMessages {
    /// Stop the run, naming the message's partition and offset; nothing of
    /// its epoch is committed, so a restart meets it again.
    Stop,
    /// Append it to this JSON-lines file (`topic`, `partition`, `offset`,
    /// `reason`, `value`), synced before its epoch commits, and go on.
    /// At least once: an epoch replayed after a crash appends its bad
    /// messages again.
    Skip(PathBuf),
}

/// A topic to read, with where to start each partition and how.
///
/// ```no_run
/// use microbatch::kafka::{KafkaSettings, KafkaSource};
/// use microbatch::source::SealedPositions;
///
/// fn decode(value: &[u8]) -> Result<u64, String> {
///     std::str::from_utf8(value)
///         .ok()
///         .and_then(|text| text.trim().parse().ok())
///         .ok_or_else(|| "not a number".to_owned())
/// }
///
/// let positions = SealedPositions::new("numbers");
/// let source = KafkaSource::connect(KafkaSettings::new("127.0.0.1:9092"), "numbers", "readers", decode)?
///     .recording(positions.clone())
///     .stop_at_end(true);
/// # Ok::<(), microbatch::kafka::KafkaError>(())
/// ```
pub struct KafkaSource<R> {
    pub(super) settings: KafkaSettings,
    pub(super) topic: String,
    pub(super) group: String,
    pub(super) decode: Decode<R>,
    /// Every partition of the topic with its first offset to read.
    pub(super) start: Vec<Position>,
    /// Where each partition's fetch starts (at or before its start: see
    /// `KafkaSettings::fetch_starts`).
    pub(super) fetch_from: Vec<i64>,
    /// Each partition's `(partition, low, end)` when connected.
    pub(super) marks: Vec<(i32, i64, i64)>,
    /// Each partition's end, with `stop_at_end`.
    pub(super) end: Option<Vec<i64>>,
    pub(super) positions: Option<SealedPositions>,
    pub(super) rate: Option<u64>,
    pub(super) bad: BadMessages,
    pub(super) event_time: Option<EventTime<R>>,
}

/// A record's event time, in any unit that grows with it.
pub type EventTime<R> = fn(&R) -> u64;

impl<R> KafkaSource<R> {
    /// The topic's partitions, each read from its first offset, decoded by
    /// `decode`; `group` names the consumers (`group.id`). Fails if the
    /// brokers cannot be reached or the topic does not exist.
    pub fn connect(
        settings: KafkaSettings,
        topic: &str,
        group: &str,
        decode: Decode<R>,
    ) -> Result<Self, KafkaError> {
        let marks = settings.watermarks(topic)?;
        let start: Vec<Position> = marks
            .iter()
            .map(|&(partition, low, _)| Position {
                partition,
                next_offset: low,
            })
            .collect();
        let fetch_from = start.iter().map(|s| s.next_offset).collect();
        Ok(KafkaSource {
            settings,
            topic: topic.to_owned(),
            group: group.to_owned(),
            decode,
            start,
            fetch_from,
            marks,
            end: None,
            positions: None,
            rate: None,
            bad: BadMessages::Stop,
            event_time: None,
        })
    }

    /// Starts each of `stored`'s partitions at its offset (a sink's
    /// positions after its last committed epoch); the others from their
    /// first record. Refused if a partition is not the topic's, or its
    /// offset is past the partition's end or before its first kept record
    /// (the topic was recreated, or retention removed records never read).
    pub fn starting_at(mut self, stored: &[Position]) -> Result<Self, KafkaError> {
        // (index in `start`, partition, offset) of each stored position.
        let mut moved = Vec::new();
        for position in stored {
            let Some(&(_, low, high)) = self.marks.iter().find(|m| m.0 == position.partition)
            else {
                return Err(self.settings.topic_error(
                    &self.topic,
                    format!(
                        "the stored position names partition {}, which the topic does not have: \
                         it was recreated with fewer partitions, or is another topic",
                        position.partition
                    ),
                ));
            };
            let offset = position.next_offset;
            if offset > high || offset < low {
                return Err(self.settings.topic_error(
                    &self.topic,
                    format!(
                        "partition {}: the stored position {offset} is outside the records the \
                         broker keeps ({low} to {high}): the topic was recreated, or retention \
                         removed records this run never read",
                        position.partition
                    ),
                ));
            }
            if let Some(index) = self
                .start
                .iter()
                .position(|s| s.partition == position.partition)
            {
                self.start[index].next_offset = offset;
                moved.push((index, (position.partition, offset)));
            }
        }
        // Where their fetches start (at their batch, for a position inside
        // the kept records).
        let wanted: Vec<(i32, i64)> = moved.iter().map(|m| m.1).collect();
        let starts = self
            .settings
            .fetch_starts_within(&self.topic, &self.marks, &wanted)?;
        for ((index, _), start) in moved.into_iter().zip(starts) {
            self.fetch_from[index] = start;
        }
        Ok(self)
    }

    /// Records each part's positions at every seal into `positions`, for a
    /// sink to commit with the epoch; the sink must take each epoch's
    /// ([`SealedPositions::take`]), or they pile up.
    pub fn recording(mut self, positions: SealedPositions) -> Self {
        self.positions = Some(positions);
        self
    }

    /// With `stop`, the run's input ends when every partition reached the
    /// offset its next record had when the source
    /// [connected](KafkaSource::connect) (Spark's `Trigger.AvailableNow`);
    /// without, the parts follow the topic for as long as the engine runs.
    pub fn stop_at_end(mut self, stop: bool) -> Self {
        self.end = stop.then(|| self.marks.iter().map(|m| m.2).collect());
        self
    }

    /// Caps the records read per second (over all partitions), as Spark's
    /// `maxOffsetsPerTrigger` caps a batch; each record's latency counts
    /// from when the cap let it in.
    pub fn rate(mut self, per_second: Option<u64>) -> Self {
        self.rate = per_second;
        self
    }

    /// What to do with a message that is not a record; [`BadMessages::Stop`]
    /// unless set.
    pub fn bad_messages(mut self, bad: BadMessages) -> Self {
        self.bad = bad;
        self
    }

    /// Reads each worker's partitions in step by `event_time`: the next
    /// records come from the partition read least far in event time, and
    /// while its next records are still being fetched the others wait. So
    /// the records a worker folds are out of event-time order by about a
    /// quantum (512 records) of one partition, whatever the partitions'
    /// rates, and an event-time job's watermark does not pass a partition
    /// that lags. Without it, the partitions are read in step by count.
    pub fn event_time(mut self, event_time: EventTime<R>) -> Self {
        self.event_time = Some(event_time);
        self
    }

    /// The topic's partitions with the offsets they start at.
    pub fn start(&self) -> &[Position] {
        &self.start
    }
}
