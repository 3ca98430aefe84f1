//! Several instances reading one topic as one consumer group: Kafka's
//! group protocol spreads the partitions over every instance's workers and
//! moves them when an instance joins, leaves or dies.
//!
//! What keeps a moved partition exact is its **claim** in a store shared
//! by the instances ([`Claims`], kept by the
//! [PostgreSQL sink](crate::postgres)): a worker that is assigned a
//! partition claims it, which reads the offset after the partition's last
//! committed epoch and, when another worker held it, raises its
//! **generation**. Each epoch's rows of a partition are committed only
//! under the generation they were read with, so a worker that lost a
//! partition (revoked, or taken from it while it was cut off) can commit
//! none of what it read of it afterwards: its rows of that partition are
//! dropped, and the new owner reads them again from the committed offset.
//!
//! So that a partition's rows never mix generations, a record's key
//! carries its partition and a tag of its generation ([`key_prefix`]):
//! the job groups by `(partition, generation, key)`, and the sink splits
//! the rows back ([`split_key`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::source::{BadMessages, Decode};
use super::{KafkaError, KafkaSettings};
use crate::sync::cold::{lock, Mutex};
use crate::sync::Arc;

/// Bits of a tagged key that hold the partition.
pub const PARTITION_BITS: u32 = 12;
/// Bits of a tagged key that hold the generation's tag.
pub const TAG_BITS: u32 = 8;
/// Bits of a tagged key left for the record's own key: keys of a group's
/// run must be below `2^44`.
pub const KEY_BITS: u32 = 64 - PARTITION_BITS - TAG_BITS;

/// The most partitions a group's topic may have.
pub const MAX_PARTITIONS: i32 = 1 << PARTITION_BITS;

/// The tag of `generation` in a key.
pub fn generation_tag(generation: u64) -> u64 {
    generation & ((1 << TAG_BITS) - 1)
}

/// The bits a record of `partition` read under `generation` carries above
/// its key (`partition` below [`MAX_PARTITIONS`]).
pub fn key_prefix(partition: i32, generation: u64) -> u64 {
    ((partition as u64) << (TAG_BITS + KEY_BITS)) | (generation_tag(generation) << KEY_BITS)
}

/// `key` with `prefix` above it; refused if the key needs the prefix's
/// bits.
///
/// ```
/// use microbatch::kafka::{key_prefix, split_key, tagged_key};
/// let tagged = tagged_key(key_prefix(5, 3), 42).unwrap();
/// assert_eq!(split_key(tagged), (5, 3, 42));
/// assert!(tagged_key(key_prefix(0, 0), 1 << 44).is_err());
/// ```
pub fn tagged_key(prefix: u64, key: u64) -> Result<u64, String> {
    if key >> KEY_BITS != 0 {
        return Err(format!(
            "key {key} is too large for a consumer group's run: its keys must be below 2^{KEY_BITS} \
             (the bits above carry the partition)"
        ));
    }
    Ok(prefix | key)
}

/// A tagged key's `(partition, generation tag, key)`.
pub fn split_key(tagged: u64) -> (i32, u64, u64) {
    let partition = (tagged >> (TAG_BITS + KEY_BITS)) as i32;
    let tag = (tagged >> KEY_BITS) & ((1 << TAG_BITS) - 1);
    (partition, tag, tagged & ((1 << KEY_BITS) - 1))
}

/// Puts a key prefix ([`key_prefix`]) into a decoded record's key, or says
/// why it cannot ([`tagged_key`]'s refusal).
pub type Tag<R> = fn(R, u64) -> Result<R, String>;

/// A partition as a claim found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The generation the claimer reads it under from now on.
    pub generation: u64,
    /// The offset after its last committed epoch (`None`: nothing
    /// committed yet, read from the first record kept).
    pub next_offset: Option<i64>,
    /// The claimer held it already (under this generation), with no other
    /// claim between: it reads on from where it is.
    pub kept: bool,
}

/// Where the instances of a group record who holds each partition, and
/// where its committed epochs end.
pub trait Claims: Send + Sync + 'static {
    /// Takes `partition` of `topic` for `owner`: the same generation if
    /// `owner` held it last, the next one otherwise. Atomic with respect
    /// to commits: a commit under the old generation after the claim is
    /// refused.
    fn claim(&self, topic: &str, partition: i32, owner: &str) -> Result<Claim, String>;
}

/// A partition as one worker left it at a seal: read up to `next_offset`
/// under `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The partition.
    pub partition: i32,
    /// The generation the records were read under.
    pub generation: u64,
    /// The offset of its next record.
    pub next_offset: i64,
}

/// The partitions each sealed epoch read, with their generations, for the
/// sink that commits them. Cold path: a lock per worker and epoch.
#[derive(Debug, Clone, Default)]
pub struct GroupPositions {
    epochs: Arc<Mutex<BTreeMap<u64, Vec<Held>>>>,
}

impl GroupPositions {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A worker read `held` in `epoch`.
    pub fn record(&self, epoch: u64, held: &[Held]) {
        lock(&self.epochs)
            .entry(epoch)
            .or_default()
            .extend_from_slice(held);
    }

    /// What `epoch` (and any earlier epoch not taken) read, one entry per
    /// partition and generation, at its furthest offset.
    pub fn take(&self, epoch: u64) -> Vec<Held> {
        let mut epochs = lock(&self.epochs);
        let later = epochs.split_off(&(epoch + 1));
        let done = std::mem::replace(&mut *epochs, later);
        drop(epochs);
        let mut furthest: BTreeMap<(i32, u64), i64> = BTreeMap::new();
        for held in done.into_values().flatten() {
            let end = furthest
                .entry((held.partition, held.generation))
                .or_insert(held.next_offset);
            *end = (*end).max(held.next_offset);
        }
        furthest
            .into_iter()
            .map(|((partition, generation), next_offset)| Held {
                partition,
                generation,
                next_offset,
            })
            .collect()
    }
}

/// What an instance saw of its group: the partitions each worker holds,
/// the rebalances, and the partitions' rows dropped because another
/// instance had claimed them. Cold path.
#[derive(Debug, Clone, Default)]
pub struct GroupReport {
    shared: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

/// A [`GroupReport`]'s contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Each worker's partitions now.
    pub held: BTreeMap<usize, Vec<i32>>,
    /// Every partition this instance held at some point.
    pub ever_held: Vec<i32>,
    /// Assignments and revocations, over all workers.
    pub rebalances: u64,
    /// Commits of a partition refused because another worker had claimed
    /// it since (its rows of that epoch were dropped; the new owner reads
    /// them again).
    pub fenced: u64,
}

impl GroupReport {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// What was seen so far.
    pub fn seen(&self) -> Seen {
        lock(&self.shared).clone()
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut Seen)) {
        change(&mut lock(&self.shared));
    }

    /// Counts a commit refused for want of the claim.
    pub fn fenced(&self) {
        self.update(|seen| seen.fenced += 1);
    }

    /// Tells the instance's workers to stop reading: every partition's
    /// committed epochs reached the end the run stops at.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether [`stop`](GroupReport::stop) was called.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// A topic read by the workers of every instance in `group`, each
/// partition claimed in `claims` when assigned.
pub struct GroupSource<R> {
    pub(super) settings: KafkaSettings,
    pub(super) topic: String,
    pub(super) group: String,
    pub(super) decode: Decode<R>,
    pub(super) tag: Tag<R>,
    pub(super) claims: Arc<dyn Claims>,
    pub(super) positions: GroupPositions,
    pub(super) report: GroupReport,
    pub(super) rate: Option<u64>,
    pub(super) bad: BadMessages,
    /// Each partition's `(partition, low, end)` when connected.
    pub(super) marks: Vec<(i32, i64, i64)>,
    /// Who this instance is, in the claims.
    pub(super) instance: String,
}

impl<R> GroupSource<R> {
    /// Joins `group` over `topic` (which must exist, with at most
    /// [`MAX_PARTITIONS`] partitions): each record decoded by `decode`, its
    /// key tagged by `tag`, its partitions claimed in `claims`, and what
    /// each epoch read recorded in `positions`.
    pub fn connect(
        settings: KafkaSettings,
        topic: &str,
        group: &str,
        codec: (Decode<R>, Tag<R>),
        claims: Arc<dyn Claims>,
        positions: GroupPositions,
    ) -> Result<Self, KafkaError> {
        let marks = settings.watermarks(topic)?;
        if let Some(&(partition, _, _)) = marks.iter().find(|m| m.0 >= MAX_PARTITIONS) {
            return Err(settings.topic_error(
                topic,
                format!(
                    "has partition {partition}; a consumer group's run reads at most \
                     {MAX_PARTITIONS} partitions"
                ),
            ));
        }
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "host".into());
        Ok(GroupSource {
            settings,
            topic: topic.to_owned(),
            group: group.to_owned(),
            decode: codec.0,
            tag: codec.1,
            claims,
            positions,
            report: GroupReport::new(),
            rate: None,
            bad: BadMessages::Stop,
            marks,
            instance: format!("{host} pid {} at {started}", std::process::id()),
        })
    }

    /// Shares `report` (that of the sink) instead of a report of its own.
    pub fn reporting(mut self, report: GroupReport) -> Self {
        self.report = report;
        self
    }

    /// Caps the records this instance reads per second, split evenly over
    /// its workers.
    pub fn rate(mut self, per_second: Option<u64>) -> Self {
        self.rate = per_second;
        self
    }

    /// What to do with a message that is not a record.
    pub fn bad_messages(mut self, bad: BadMessages) -> Self {
        self.bad = bad;
        self
    }

    /// What this instance sees of the group, shared with the sink (which
    /// counts fenced commits and says when to stop).
    pub fn report(&self) -> GroupReport {
        self.report.clone()
    }

    /// Each partition's `(partition, low, end)` when connected: where a run
    /// that stops at the end stops.
    pub fn marks(&self) -> &[(i32, i64, i64)] {
        &self.marks
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_key_gives_back_its_partition_tag_and_key() {
        for (partition, generation, key) in [(0, 0, 0), (4095, 255, (1 << 44) - 1), (7, 258, 99)] {
            let tagged = tagged_key(key_prefix(partition, generation), key).unwrap();
            assert_eq!(split_key(tagged), (partition, generation % 256, key));
        }
        assert!(tagged_key(0, u64::MAX).is_err());
    }

    #[test]
    fn positions_keep_each_generation_apart_at_its_furthest_offset() {
        let positions = GroupPositions::new();
        let held = |partition, generation, next_offset| Held {
            partition,
            generation,
            next_offset,
        };
        positions.record(0, &[held(1, 1, 10), held(2, 1, 5)]);
        positions.record(0, &[held(1, 2, 4)]);
        positions.record(1, &[held(1, 2, 9)]);
        positions.record(0, &[held(2, 1, 7)]);
        assert_eq!(
            positions.take(0),
            [held(1, 1, 10), held(1, 2, 4), held(2, 1, 7)]
        );
        assert_eq!(positions.take(1), [held(1, 2, 9)]);
        assert!(positions.take(2).is_empty());
    }
}
