//! Keyed aggregation: one hash table per key partition, filled in place
//! (the combiner) and merged on the key's owner.

use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxBuildHasher;

use super::{Aggregator, Job, Partitioner, Pipe};

/// The partial aggregates of one key partition: `(key, state)` entries.
/// The hash is not stored: for the integer keys of most jobs FxHash costs
/// one multiply, less than the cache footprint of 8 more bytes an entry.
pub struct KeyedPart<K, S> {
    table: HashTable<(K, S)>,
}

impl<K, S> KeyedPart<K, S> {
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
    K: Hash + Eq + Send + 'static,
    Pt: Partitioner<K>,
    A: Aggregator<P::Out>,
{
    type Part = KeyedPart<K, A::State>;
    type Row = (K, A::Output);

    fn partitions(&self, workers: usize) -> usize {
        workers
    }

    fn check(&self, workers: usize) -> Result<(), String> {
        self.partitioner.check(workers)
    }

    fn new_part(&self) -> Self::Part {
        KeyedPart {
            table: HashTable::new(),
        }
    }

    // Hot path: hash once, pick the owner's table, update in place.
    #[inline]
    fn absorb(&self, records: &[R], parts: &mut [Self::Part]) {
        let partitions = parts.len();
        for record in records {
            self.pipe.feed(record, |item| {
                let key = (self.key)(item);
                let hash = self.hasher.hash_one(&key);
                let partition = if partitions == 1 {
                    0
                } else {
                    self.partitioner.partition(&key, hash, partitions)
                };
                let Some(part) = parts.get_mut(partition) else {
                    panic!("the partitioner put a key in partition {partition} of {partitions}");
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
    }

    fn merge(&self, into: &mut Self::Part, from: &mut Self::Part) {
        if into.table.is_empty() {
            std::mem::swap(into, from);
            return;
        }
        let hasher = &self.hasher;
        for (key, state) in from.table.drain() {
            let hash = hasher.hash_one(&key);
            let entry = into.table.entry(
                hash,
                |entry| entry.0 == key,
                |entry| hasher.hash_one(&entry.0),
            );
            match entry {
                Entry::Occupied(mut entry) => self.aggregator.merge(&mut entry.get_mut().1, state),
                Entry::Vacant(entry) => {
                    entry.insert((key, state));
                }
            }
        }
    }

    fn finish(&self, part: &mut Self::Part, rows: &mut Vec<Self::Row>) {
        rows.extend(
            part.table
                .drain()
                .map(|(key, state)| (key, self.aggregator.finish(state))),
        );
    }
}
