//! Keyed aggregation: one hash table per key partition, filled in place
//! (the combiner) and merged on the key's owner.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxBuildHasher;

use super::hot::{HotKeySampler, HOT_KEY_MIN_SAMPLES, HOT_KEY_MIN_SHARE, SAMPLE_EVERY};
use super::key::{Key, KeyFn};
use super::{Aggregator, EpochTime, Job, Partitioner, Parts, Pipe, Placement};
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
    /// The partition the next record of a salted key goes to; used in the
    /// worker's first part only.
    rotation: u32,
    /// In the worker's first part: the batch is folded
    /// [`Placement::Combined`], so this part holds every partition's keys
    /// until [`Job::split`].
    combined: bool,
    /// The bucket of the totals' table the next piece of
    /// [`Job::finish_some`] starts at in complete mode, while an epoch is
    /// finished in pieces; 0 otherwise.
    pub(crate) finished: usize,
}

impl<K, S> KeyedPart<K, S> {
    /// Takes every `(key, state)` out and forgets the samples, keeping the
    /// memory.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (K, S)> + '_ {
        self.sampler.clear();
        self.table.drain()
    }

    /// Takes up to `budget` `(key, state)` entries out, keeping the
    /// memory; the samples are forgotten once the last entry is out.
    pub(crate) fn take_some(&mut self, budget: usize) -> impl Iterator<Item = (K, S)> + '_ {
        if self.table.len() <= budget {
            self.sampler.clear();
        }
        // An `ExtractIf` dropped early keeps what it did not visit.
        self.table.extract_if(|_| true).take(budget)
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
    /// The hashes of the salted keys (see [`KeyedJob::salted`]): a few, so
    /// a scan beats a lookup.
    salted: Box<[u64]>,
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
            salted: Box::new([]),
            _records: PhantomData,
        }
    }

    /// Whether the job salts keys.
    pub(crate) fn salts(&self) -> bool {
        !self.salted.is_empty()
    }
}

impl<R, P, F, K, Pt, A> KeyedJob<R, P, F, Pt, A>
where
    P: Pipe<R>,
    F: KeyFn<P::Out, Key = K>,
    K: Key + Borrow<F::Lookup>,
    Pt: Partitioner<F::Lookup>,
{
    /// Salts `keys`: each record of one of them goes to the next partition
    /// in turn (not to the key's owner), so that every worker folds a
    /// share of it; at the end of each epoch the engine merges the shares
    /// into one row per key, on the thread that completes the epoch.
    ///
    /// When to use it: for an aggregation whose state grows with its input
    /// (collecting values, distinct sets, sketches that keep samples), a
    /// key that takes a large share of the records makes its owner merge
    /// and finish far more than the others every epoch; salting spreads
    /// that work. For the associative reductions that shrink (`count`,
    /// `sum`, `min`, `max`, `mean`) each worker's combiner already folds a
    /// hot key into one entry per epoch, so salting buys nothing there
    /// (see `docs/skew.md`). Salt a few known hot keys: the epoch's hot
    /// keys are in [`EpochProgress::hot_keys`](crate::progress::EpochProgress::hot_keys).
    /// A [`FnPartitioner`](super::FnPartitioner) is the other tool: it
    /// gives a hot key an owner of its own. Not with running totals.
    ///
    /// ```
    /// use microbatch::job::{self, Aggregator};
    /// use microbatch::sink::CollectSink;
    /// use microbatch::source::IterSource;
    /// use microbatch::Engine;
    ///
    /// /// Every value of a key: a state that does not shrink.
    /// #[derive(Clone)]
    /// struct Values;
    /// impl Aggregator<(u64, u64)> for Values {
    ///     type State = Vec<u64>;
    ///     type Output = Vec<u64>;
    ///     fn init(&self) -> Vec<u64> { Vec::new() }
    ///     fn update(&self, state: &mut Vec<u64>, record: &(u64, u64)) { state.push(record.1) }
    ///     fn merge(&self, into: &mut Vec<u64>, from: Vec<u64>) { into.extend(from) }
    ///     fn finish(&self, mut state: Vec<u64>) -> Vec<u64> { state.sort(); state }
    /// }
    ///
    /// // Key 0 is hot: its records are spread over both workers.
    /// let per_key = job::records::<(u64, u64)>()
    ///     .key_by(|r| r.0)
    ///     .aggregate(Values)
    ///     .salted([0u64]);
    /// let (sink, rows) = CollectSink::new();
    /// let engine = Engine::builder(per_key, sink)
    ///     .workers(2)
    ///     .interval(None)
    ///     .source(IterSource::new((0..1000u64).map(|i| (if i % 2 == 0 { 0 } else { i }, i))))
    ///     .start()?;
    /// engine.finish()?;
    /// let rows = rows.take();
    /// let hot: Vec<_> = rows.iter().filter(|(_, (key, _))| *key == 0).collect();
    /// assert_eq!(hot.len(), 1, "one row for the salted key");
    /// assert_eq!(hot[0].1 .1.len(), 500);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn salted(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        let mut hashes: Vec<u64> = keys
            .into_iter()
            .map(|key| self.hasher.hash_one(&key))
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        self.salted = hashes.into_boxed_slice();
        self
    }

    /// Folds `records` into `parts`, each key into the part `choose(key,
    /// hash, partitions)` names. The records go in windows that end where
    /// the next hot-key sample is due; the window's last record is keyed
    /// again for the sample, so the fold loop itself carries nothing for
    /// it. Hot path.
    #[inline(always)]
    fn absorb_by(
        &self,
        records: &[R],
        parts: &mut Parts<'_, KeyedPart<K, A::State>>,
        mut choose: impl FnMut(&F::Lookup, u64, usize) -> usize,
    ) where
        A: Aggregator<P::Out>,
    {
        let partitions = parts.len();
        let mut countdown = parts.first().map_or(SAMPLE_EVERY, |part| part.countdown) as usize;
        let mut rest = records;
        while !rest.is_empty() {
            let (window, after) = rest.split_at(countdown.min(rest.len()));
            for record in window {
                self.pipe.feed(record, |item| {
                    let key = self.key.key(item);
                    let hash = self.hasher.hash_one(F::lookup(&key));
                    let partition = choose(F::lookup(&key), hash, partitions);
                    let Some(part) = parts.get_mut(partition) else {
                        out_of_range(partition, partitions);
                    };
                    upsert::<_, F, _>(
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

    #[inline(always)]
    fn partition_of(&self, key: &F::Lookup, hash: u64, partitions: usize) -> usize {
        if partitions == 1 {
            0
        } else {
            self.partitioner.partition(key, hash, partitions)
        }
    }

    /// Counts `record`'s key (if the stages keep it) in its part's
    /// hot-key sampler. Once per [`SAMPLE_EVERY`] records.
    #[inline(never)]
    fn sample<S>(&self, record: &R, parts: &mut Parts<'_, KeyedPart<K, S>>) {
        let partitions = parts.len();
        self.pipe.feed(record, |item| {
            let key = self.key.key(item);
            let hash = self.hasher.hash_one(F::lookup(&key));
            let partition = self.partition_of(F::lookup(&key), hash, partitions);
            if let Some(part) = parts.get_mut(partition) {
                part.sampler.sample(hash);
            }
        });
    }
}

/// A partitioner's bug: the worker stops with this message.
#[cold]
fn out_of_range(partition: usize, partitions: usize) -> ! {
    panic!("the partitioner put a key in partition {partition} of {partitions}");
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
fn upsert<'a, T, F: KeyFn<T>, A: Aggregator<T>>(
    table: &mut HashTable<(F::Key, A::State)>,
    hasher: &FxBuildHasher,
    aggregator: &A,
    hash: u64,
    key: F::Ref<'a>,
    item: &T,
) {
    // A plain probe for the common hit; the entry API would also look for
    // an insert slot on every probe. A borrowed key is owned only here,
    // when the epoch first sees it.
    let lookup = F::lookup(&key);
    if let Some(entry) = table.find_mut(hash, |entry| entry.0.borrow() == lookup) {
        aggregator.update(&mut entry.1, item);
        return;
    }
    let mut state = aggregator.init();
    aggregator.update(&mut state, item);
    table.insert_unique(hash, (F::own(key), state), |entry| {
        hasher.hash_one(&entry.0)
    });
}

impl<R, P, F, K, Pt, A> Job<R> for KeyedJob<R, P, F, Pt, A>
where
    R: 'static,
    P: Pipe<R>,
    F: KeyFn<P::Out, Key = K>,
    K: Key + Borrow<F::Lookup>,
    Pt: Partitioner<F::Lookup>,
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
            rotation: 0,
            combined: false,
            finished: 0,
        }
    }

    // Hot path: hash once, pick the part (the first one if the batch is
    // combined, else the key's partition's), update in place. A job
    // without salted keys runs loops of its own, without their check.
    #[inline]
    fn absorb(&self, records: &[R], mut parts: Parts<'_, Self::Part>) {
        if self.salted.is_empty() {
            if parts.first().is_some_and(|part| part.combined) {
                self.absorb_by(records, &mut parts, |_, _, _| 0);
            } else {
                self.absorb_by(records, &mut parts, |key, hash, partitions| {
                    self.partition_of(key, hash, partitions)
                });
            }
            return;
        }
        let salted = &*self.salted;
        let mut rotation = parts.first().map_or(0, |part| part.rotation);
        self.absorb_by(records, &mut parts, |key, hash, partitions| {
            if salted.contains(&hash) {
                rotation = rotation.wrapping_add(1);
                rotation as usize % partitions
            } else {
                self.partition_of(key, hash, partitions)
            }
        });
        if let Some(first) = parts.first_mut() {
            first.rotation = rotation;
        }
    }

    fn place(&self, mut parts: Parts<'_, Self::Part>, placement: Placement) -> Placement {
        // Salted keys' records go to every partition in turn as they come.
        let combined =
            placement == Placement::Combined && parts.len() > 1 && self.salted.is_empty();
        if let Some(first) = parts.first_mut() {
            first.combined = combined;
        }
        if combined {
            Placement::Combined
        } else {
            Placement::Partitioned
        }
    }

    fn split(&self, mut parts: Parts<'_, Self::Part>) -> usize {
        let partitions = parts.len();
        let keys = parts.iter().map(KeyedPart::len).sum();
        let Some((first, mut rest)) = parts.split_first_mut() else {
            return keys;
        };
        if !std::mem::take(&mut first.combined) {
            return keys;
        }
        let hasher = &self.hasher;
        // The hash and partition of the entry `extract_if` yields next, as
        // its predicate found them (it yields each entry right after).
        let found = std::cell::Cell::new((0u64, 0usize));
        let moving = first.table.extract_if(|(key, _)| {
            let hash = hasher.hash_one(&*key);
            let partition = self.partition_of((*key).borrow(), hash, partitions);
            found.set((hash, partition));
            partition != 0
        });
        for entry in moving {
            let (hash, partition) = found.get();
            let Some(part) = rest.get_mut(partition.wrapping_sub(1)) else {
                out_of_range(partition, partitions);
            };
            // Nothing was folded into the other parts (see `absorb`): the
            // key is new there.
            part.table
                .insert_unique(hash, entry, |entry| hasher.hash_one(&entry.0));
        }
        keys
    }

    fn salts(&self) -> bool {
        KeyedJob::salts(self)
    }

    fn take_salted(&self, part: &mut Self::Part, into: &mut Self::Part) -> bool {
        let hasher = &self.hasher;
        let mut moved = false;
        for &hash in &*self.salted {
            while let Ok(entry) = part
                .table
                .find_entry(hash, |entry| hasher.hash_one(&entry.0) == hash)
            {
                let ((key, state), _) = entry.remove();
                merge_entry(&mut into.table, hasher, &self.aggregator, key, state);
                moved = true;
            }
        }
        moved
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

    fn merge_some(&self, into: &mut Self::Part, from: &mut Self::Part, budget: usize) -> bool {
        into.sampler.merge(&mut from.sampler);
        if into.table.is_empty() {
            std::mem::swap(&mut into.table, &mut from.table);
            return true;
        }
        // An `ExtractIf` dropped early keeps what it did not visit.
        for (key, state) in from.table.extract_if(|_| true).take(budget) {
            merge_entry(&mut into.table, &self.hasher, &self.aggregator, key, state);
        }
        from.table.is_empty()
    }

    fn part_like(&self, like: &Self::Part) -> Self::Part {
        let mut part = self.new_part();
        // An empty table's reserve allocates; it rehashes nothing.
        let hasher = &self.hasher;
        part.table
            .reserve(like.table.len(), |entry| hasher.hash_one(&entry.0));
        part
    }

    fn finish_some(
        &self,
        part: &mut Self::Part,
        _: &mut (),
        rows: &mut Vec<Self::Row>,
        _: EpochTime,
        budget: usize,
    ) -> bool {
        let entries = part.take_some(budget);
        rows.extend(entries.map(|(key, state)| (key, self.aggregator.finish(state))));
        part.table.is_empty()
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::job::{self, count};

    type Record = (u64, u64);

    #[test]
    fn a_salted_key_goes_to_every_partition_in_turn_and_comes_out_whole() {
        let job = job::records::<Record>()
            .key_by(|r| r.0)
            .aggregate(count())
            .salted([7u64]);
        let mut parts = vec![job.new_part(), job.new_part(), job.new_part()];
        let records: Vec<Record> = (0..300)
            .map(|i| (if i % 3 == 0 { 7 } else { 1000 + i }, 1))
            .collect();
        job.absorb(&records, Parts::from(&mut parts));
        let hash = job.hasher.hash_one(7u64);
        let shares: Vec<u64> = parts
            .iter()
            .map(|part| {
                part.table
                    .find(hash, |entry| entry.0 == 7)
                    .map_or(0, |entry| entry.1)
            })
            .collect();
        assert_eq!(shares.iter().sum::<u64>(), 100);
        assert!(
            shares.iter().all(|&share| share == 33 || share == 34),
            "100 records of key 7, in turn: {shares:?}"
        );

        // Each owner hands its share over; merged, they are the key's count.
        let mut salted = job.new_part();
        for part in &mut parts {
            let mut share = job.new_part();
            assert!(job.take_salted(part, &mut share));
            assert!(part.table.find(hash, |entry| entry.0 == 7).is_none());
            job.merge(&mut salted, &mut share);
        }
        let mut rows = Vec::new();
        job.finish(&mut salted, &mut rows);
        assert_eq!(rows, [(7, 100)]);
        // Other keys stayed with their owners.
        let others: usize = parts.iter().map(KeyedPart::len).sum();
        assert_eq!(others, 200);
    }

    #[test]
    fn salting_and_running_totals_are_refused_together() {
        let job = job::records::<Record>()
            .key_by(|r| r.0)
            .aggregate(count())
            .salted([1u64])
            .running(crate::job::OutputMode::Update);
        assert!(job.check(2).unwrap_err().contains("salted"));
    }

    /// The rows of each part, sorted, emptying the parts.
    fn rows_by_part<J: Job<Record>>(job: &J, parts: &mut [J::Part]) -> Vec<Vec<J::Row>>
    where
        J::Row: Ord,
    {
        parts
            .iter_mut()
            .map(|part| {
                let mut rows = Vec::new();
                job.finish(part, &mut rows);
                rows.sort_unstable();
                rows
            })
            .collect()
    }

    #[test]
    fn a_combined_batch_split_at_the_seal_equals_a_partitioned_one() {
        let job = job::records::<Record>().key_by(|r| r.0).aggregate(count());
        let records: Vec<Record> = (0..5000u64).map(|i| (i * 7919 % 613, i)).collect();
        let fold = |placement| {
            let mut parts = vec![job.new_part(), job.new_part(), job.new_part()];
            assert_eq!(job.place(Parts::from(&mut parts), placement), placement);
            for chunk in records.chunks(1000) {
                job.absorb(chunk, Parts::from(&mut parts));
            }
            if placement == Placement::Combined {
                assert_eq!(parts[0].len(), 613, "every key in the first part");
            }
            assert_eq!(job.split(Parts::from(&mut parts)), 613);
            rows_by_part(&job, &mut parts)
        };
        let partitioned = fold(Placement::Partitioned);
        assert!(partitioned.iter().all(|rows| !rows.is_empty()));
        assert_eq!(fold(Placement::Combined), partitioned);
    }

    #[test]
    fn salted_jobs_and_single_partitions_stay_partitioned() {
        let salted = job::records::<Record>()
            .key_by(|r| r.0)
            .aggregate(count())
            .salted([7u64]);
        let mut parts = vec![salted.new_part(), salted.new_part()];
        assert_eq!(
            salted.place(Parts::from(&mut parts), Placement::Combined),
            Placement::Partitioned
        );
        let plain = job::records::<Record>().key_by(|r| r.0).aggregate(count());
        let mut one = vec![plain.new_part()];
        assert_eq!(
            plain.place(Parts::from(&mut one), Placement::Combined),
            Placement::Partitioned
        );
    }
}
