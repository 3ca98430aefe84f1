//! Keyed aggregation: one hash table per key partition, filled in place
//! (the combiner) and merged on the key's owner.

use std::fmt::Debug;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxBuildHasher;

use super::hot::{HotKeySampler, HOT_KEY_MIN_SAMPLES, HOT_KEY_MIN_SHARE, SAMPLE_EVERY};
use super::{Aggregator, Job, Partitioner, Pipe};
use crate::progress::HotKey;

/// The partial aggregates of one key partition: `(key, state)` entries.
/// The hash is not stored: for the integer keys of most jobs FxHash costs
/// one multiply, less than the cache footprint of 8 more bytes an entry.
pub struct KeyedPart<K, S> {
    table: HashTable<(K, S)>,
    /// Sampled key hashes, for the hot-key report.
    sampler: HotKeySampler,
    /// Records until the worker's next sample; used in the worker's first
    /// part only.
    countdown: u32,
}

impl<K, S> KeyedPart<K, S> {
    /// Takes every `(key, state)` out and forgets the samples, keeping the
    /// memory.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (K, S)> + '_ {
        self.sampler.clear();
        self.table.drain()
    }

    /// Distinct keys held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// A keyed aggregation job; see [`super::KeyedStream::aggregate`].
pub struct KeyedJob<R, P, F, Pt, A> {
    pipe: P,
    key: F,
    partitioner: Pt,
    aggregator: A,
    hasher: FxBuildHasher,
    _records: PhantomData<fn(&R)>,
}

impl<R, P, F, Pt, A> KeyedJob<R, P, F, Pt, A> {
    /// The reduction.
    pub(crate) fn aggregator(&self) -> &A {
        &self.aggregator
    }

    pub(super) fn new(pipe: P, key: F, partitioner: Pt, aggregator: A) -> Self {
        KeyedJob {
            pipe,
            key,
            partitioner,
            aggregator,
            hasher: FxBuildHasher,
            _records: PhantomData,
        }
    }
}

impl<R, P, F, K, Pt, A> KeyedJob<R, P, F, Pt, A>
where
    P: Pipe<R>,
    F: Fn(&P::Out) -> K,
    K: Hash,
    Pt: Partitioner<K>,
{
    #[inline(always)]
    fn partition_of(&self, key: &K, hash: u64, partitions: usize) -> usize {
        if partitions == 1 {
            0
        } else {
            self.partitioner.partition(key, hash, partitions)
        }
    }

    /// Counts `record`'s key (if the stages keep it) in its part's
    /// hot-key sampler. Once per [`SAMPLE_EVERY`] records.
    #[inline(never)]
    fn sample<S>(&self, record: &R, parts: &mut [KeyedPart<K, S>]) {
        let partitions = parts.len();
        self.pipe.feed(record, |item| {
            let key = (self.key)(item);
            let hash = self.hasher.hash_one(&key);
            let partition = self.partition_of(&key, hash, partitions);
            if let Some(part) = parts.get_mut(partition) {
                part.sampler.sample(hash);
            }
        });
    }
}

/// Merges `state` into `key`'s entry of `table` (inserting it if the key
/// is new); returns the entry.
#[inline]
pub(crate) fn merge_entry<'t, T, K: Hash + Eq, A: Aggregator<T>>(
    table: &'t mut HashTable<(K, A::State)>,
    hasher: &FxBuildHasher,
    aggregator: &A,
    key: K,
    state: A::State,
) -> &'t (K, A::State) {
    let hash = hasher.hash_one(&key);
    match table.entry(
        hash,
        |entry| entry.0 == key,
        |entry| hasher.hash_one(&entry.0),
    ) {
        Entry::Occupied(entry) => {
            let merged = entry.into_mut();
            aggregator.merge(&mut merged.1, state);
            merged
        }
        Entry::Vacant(entry) => entry.insert((key, state)).into_mut(),
    }
}

/// Folds `item` into `table` under `key`, whose hash is `hash`.
#[inline(always)]
fn upsert<T, K: Hash + Eq, A: Aggregator<T>>(
    table: &mut HashTable<(K, A::State)>,
    hasher: &FxBuildHasher,
    aggregator: &A,
    hash: u64,
    key: K,
    item: &T,
) {
    match table.entry(
        hash,
        |entry| entry.0 == key,
        |entry| hasher.hash_one(&entry.0),
    ) {
        Entry::Occupied(mut entry) => aggregator.update(&mut entry.get_mut().1, item),
        Entry::Vacant(entry) => {
            let mut state = aggregator.init();
            aggregator.update(&mut state, item);
            entry.insert((key, state));
        }
    }
}

impl<R, P, F, K, Pt, A> Job<R> for KeyedJob<R, P, F, Pt, A>
where
    R: 'static,
    P: Pipe<R>,
    F: Fn(&P::Out) -> K + Send + Sync + 'static,
    K: Hash + Eq + Debug + Send + 'static,
    Pt: Partitioner<K>,
    A: Aggregator<P::Out>,
{
    type Part = KeyedPart<K, A::State>;
    type Row = (K, A::Output);
    type Totals = ();

    fn partitions(&self, workers: usize) -> usize {
        workers
    }

    fn check(&self, workers: usize) -> Result<(), String> {
        self.partitioner.check(workers)
    }

    fn new_totals(&self) {}

    fn new_part(&self) -> Self::Part {
        KeyedPart {
            table: HashTable::new(),
            sampler: HotKeySampler::default(),
            countdown: SAMPLE_EVERY,
        }
    }

    // Hot path: hash once, pick the owner's table, update in place. The
    // records go in windows that end where the next hot-key sample is
    // due; the window's last record is keyed again for the sample, so the
    // fold loop itself carries nothing for it.
    #[inline]
    fn absorb(&self, records: &[R], parts: &mut [Self::Part]) {
        let partitions = parts.len();
        let mut countdown = parts.first().map_or(SAMPLE_EVERY, |part| part.countdown) as usize;
        let mut rest = records;
        while !rest.is_empty() {
            let (window, after) = rest.split_at(countdown.min(rest.len()));
            for record in window {
                self.pipe.feed(record, |item| {
                    let key = (self.key)(item);
                    let hash = self.hasher.hash_one(&key);
                    let partition = self.partition_of(&key, hash, partitions);
                    let Some(part) = parts.get_mut(partition) else {
                        panic!(
                            "the partitioner put a key in partition {partition} of {partitions}"
                        );
                    };
                    upsert(
                        &mut part.table,
                        &self.hasher,
                        &self.aggregator,
                        hash,
                        key,
                        item,
                    );
                });
            }
            countdown -= window.len();
            if countdown == 0 {
                countdown = SAMPLE_EVERY as usize;
                if let Some(record) = window.last() {
                    self.sample(record, parts);
                }
            }
            rest = after;
        }
        if let Some(first) = parts.first_mut() {
            first.countdown = countdown as u32;
        }
    }

    fn merge(&self, into: &mut Self::Part, from: &mut Self::Part) {
        into.sampler.merge(&mut from.sampler);
        if into.table.is_empty() {
            std::mem::swap(&mut into.table, &mut from.table);
            return;
        }
        for (key, state) in from.table.drain() {
            merge_entry(&mut into.table, &self.hasher, &self.aggregator, key, state);
        }
    }

    fn hot_keys(&self, part: &mut Self::Part, out: &mut Vec<HotKey>) {
        let hasher = &self.hasher;
        let least =
            (part.sampler.samples() as f64 * HOT_KEY_MIN_SHARE).max(f64::from(HOT_KEY_MIN_SAMPLES));
        for slot in part.sampler.hottest() {
            let (hash, samples) = (slot.hash, slot.sure());
            if f64::from(samples) < least {
                break;
            }
            // Every sampled key is in the merged table, which holds every
            // key of the partition's epoch.
            if let Some((key, _)) = part
                .table
                .find(hash, |entry| hasher.hash_one(&entry.0) == hash)
            {
                out.push(HotKey {
                    key: format!("{key:?}"),
                    records: u64::from(samples) * u64::from(SAMPLE_EVERY),
                });
            }
        }
    }

    fn finish(&self, part: &mut Self::Part, rows: &mut Vec<Self::Row>) {
        rows.extend(
            part.drain()
                .map(|(key, state)| (key, self.aggregator.finish(state))),
        );
    }
}
