//! Running aggregates: a keyed job whose rows carry each key's totals
//! since the engine started, not the epoch's alone (Spark's update and
//! complete output modes).
//!
//! The owner of a key partition keeps the partition's totals across
//! epochs (one table, created when the engine starts); at each epoch it
//! merges the epoch's merged part into them and emits rows from them.
//!
//! Under a [checkpoint](crate::checkpoint), the totals of a
//! [snapshotted](RunningKeyedJob::snapshotted) job are saved with rkyv
//! every few epochs and restored when the run resumes; without snapshots
//! a resumed run rebuilds them by replaying the log from its first epoch.

use std::fmt::Debug;

use hashbrown::hash_table::HashTable;
use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor::Error;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use rustc_hash::FxBuildHasher;

use super::key::{Key, KeyFn};
use super::keyed::merge_entry;
use super::{Aggregator, EpochTime, Job, KeyedJob, KeyedPart, Partitioner, Parts, Pipe, Placement};
use crate::progress::HotKey;

/// Which rows an epoch of a running aggregation emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// The keys the epoch updated, each with its totals since the start
    /// (Spark's update mode).
    #[default]
    Update,
    /// Every key seen since the start, with its totals, every epoch
    /// (Spark's complete mode). Rows per epoch grow with the key count.
    Complete,
}

/// A keyed aggregation whose rows are running totals; see
/// [`KeyedJob::running`]. `C` says how its totals are snapshotted:
/// [`NoSnapshots`] or, after [`snapshotted`](RunningKeyedJob::snapshotted),
/// [`RkyvSnapshots`].
pub struct RunningKeyedJob<J, C = NoSnapshots> {
    epoch_job: J,
    mode: OutputMode,
    hasher: FxBuildHasher,
    codec: C,
}

/// How a partition's totals, `(key, state)` entries, are saved in and
/// loaded from a checkpoint's state snapshot.
pub trait TotalsCodec<K, S>: Send + Sync + 'static {
    /// Encodes `entries` into `out` (empty on entry); `Ok(false)` if this
    /// codec does not snapshot.
    fn save<'a>(
        &self,
        entries: impl Iterator<Item = &'a (K, S)>,
        out: &mut Vec<u8>,
    ) -> Result<bool, String>
    where
        K: 'a,
        S: 'a;

    /// As [`save`](TotalsCodec::save), of entries the caller has gathered
    /// into a vector of its own (a job whose table does not hold them in
    /// this shape), so that a codec need not copy them again. By default
    /// through `save`.
    fn save_owned(&self, entries: Vec<(K, S)>, out: &mut Vec<u8>) -> Result<bool, String> {
        self.save(entries.iter(), out)
    }

    /// The entries `save` encoded, checked.
    fn load(&self, bytes: &[u8]) -> Result<Vec<(K, S)>, String>;

    /// Whether `save` writes anything: `false` lets a job skip gathering
    /// its entries. By default true.
    fn snapshots(&self) -> bool {
        true
    }

    /// A copy of an entry for `save`, for a job whose states need not be
    /// `Clone` unless snapshotted; `None` by default (no copy is made).
    fn copied(&self, key: &K, value: &S) -> Option<(K, S)> {
        let _ = (key, value);
        None
    }
}

/// Totals that are not snapshotted: a resumed run replays from the first
/// epoch to rebuild them.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSnapshots;

impl<K, S> TotalsCodec<K, S> for NoSnapshots {
    fn save<'a>(&self, _: impl Iterator<Item = &'a (K, S)>, _: &mut Vec<u8>) -> Result<bool, String>
    where
        K: 'a,
        S: 'a,
    {
        Ok(false)
    }

    fn load(&self, _: &[u8]) -> Result<Vec<(K, S)>, String> {
        Err("this job's totals are not snapshotted".into())
    }

    fn snapshots(&self) -> bool {
        false
    }
}

/// Totals saved as an rkyv archive of their entries, checked when loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct RkyvSnapshots;

impl<K, S> TotalsCodec<K, S> for RkyvSnapshots
where
    K: Clone,
    S: Clone,
    Vec<(K, S)>:
        Archive + for<'b> RkyvSerialize<HighSerializer<AlignedVec, ArenaHandle<'b>, Error>>,
    <Vec<(K, S)> as Archive>::Archived: for<'b> CheckBytes<HighValidator<'b, Error>>
        + RkyvDeserialize<Vec<(K, S)>, HighDeserializer<Error>>,
{
    fn save<'a>(
        &self,
        entries: impl Iterator<Item = &'a (K, S)>,
        out: &mut Vec<u8>,
    ) -> Result<bool, String>
    where
        K: 'a,
        S: 'a,
    {
        self.save_owned(entries.cloned().collect(), out)
    }

    fn save_owned(&self, entries: Vec<(K, S)>, out: &mut Vec<u8>) -> Result<bool, String> {
        let bytes = rkyv::to_bytes::<Error>(&entries).map_err(|e| e.to_string())?;
        out.extend_from_slice(&bytes);
        Ok(true)
    }

    fn copied(&self, key: &K, value: &S) -> Option<(K, S)> {
        Some((key.clone(), value.clone()))
    }

    fn load(&self, bytes: &[u8]) -> Result<Vec<(K, S)>, String> {
        // rkyv reads from aligned memory: a snapshot's parts are (in a
        // page-aligned map); other bytes are copied first.
        if (bytes.as_ptr() as usize).is_multiple_of(16) {
            return rkyv::from_bytes::<Vec<(K, S)>, Error>(bytes).map_err(|e| e.to_string());
        }
        let mut aligned = AlignedVec::<16>::new();
        aligned.extend_from_slice(bytes);
        rkyv::from_bytes::<Vec<(K, S)>, Error>(&aligned).map_err(|e| e.to_string())
    }
}

/// One owner's totals since the start: `(key, state)` entries.
pub struct Totals<K, S> {
    table: HashTable<(K, S)>,
}

impl<K, S> Totals<K, S> {
    /// Distinct keys held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

impl<R, P, F, Pt, A> KeyedJob<R, P, F, Pt, A> {
    /// Emits running totals per key instead of each epoch's own, in
    /// `mode`. Needs keys and states that can be cloned: a key sits in
    /// the totals and in its row, a state is finished from a copy. The
    /// totals hold every key seen since the start, in memory, on its
    /// owner. Under a checkpoint, a resumed run rebuilds them by replay,
    /// or, [`snapshotted`](RunningKeyedJob::snapshotted), loads the last
    /// snapshot.
    ///
    /// ```
    /// use microbatch::job::{self, count, sum, OutputMode};
    ///
    /// // Per user: clicks and dwell time since the start, for the users
    /// // active in each epoch.
    /// let totals = job::records::<(u32, u64)>()
    ///     .key_by(|click| click.0)
    ///     .aggregate((count(), sum(|click: &(u32, u64)| click.1)))
    ///     .running(OutputMode::Update);
    /// # let _ = totals;
    /// ```
    pub fn running(self, mode: OutputMode) -> RunningKeyedJob<Self> {
        RunningKeyedJob {
            epoch_job: self,
            mode,
            hasher: FxBuildHasher,
            codec: NoSnapshots,
        }
    }
}

impl<R, P, F, K, Pt, A, C> RunningKeyedJob<KeyedJob<R, P, F, Pt, A>, C>
where
    P: Pipe<R>,
    F: KeyFn<P::Out, Key = K>,
    K: Key + Clone + std::borrow::Borrow<F::Lookup>,
    A: Aggregator<P::Out>,
    A::State: Clone,
{
    /// Folds an epoch's `entries` into the totals; in update mode each
    /// updated key's total is a row.
    fn fold_into_totals(
        &self,
        entries: impl Iterator<Item = (K, A::State)>,
        totals: &mut Totals<K, A::State>,
        rows: &mut Vec<(K, A::Output)>,
    ) {
        let aggregator = self.epoch_job.aggregator();
        for (key, state) in entries {
            let total = merge_entry(&mut totals.table, &self.hasher, aggregator, key, state);
            if self.mode == OutputMode::Update {
                rows.push((total.0.clone(), aggregator.finish(total.1.clone())));
            }
        }
    }

    /// The rows of about `budget` totals, from bucket `from` of the
    /// totals' table on; the bucket to go on from, the table's bucket count
    /// when every row is out. A piece costs its rows and the empty buckets
    /// between them, never a walk from the first bucket again.
    fn complete_rows(
        &self,
        totals: &Totals<K, A::State>,
        from: usize,
        budget: usize,
        rows: &mut Vec<(K, A::Output)>,
    ) -> usize {
        let aggregator = self.epoch_job.aggregator();
        let table = &totals.table;
        if from == 0 && budget >= table.len() {
            rows.extend(
                table
                    .iter()
                    .map(|(key, total)| (key.clone(), aggregator.finish(total.clone()))),
            );
            return table.num_buckets();
        }
        let mut bucket = from;
        let mut emitted = 0;
        while emitted < budget && bucket < table.num_buckets() {
            if let Some((key, total)) = table.get_bucket(bucket) {
                rows.push((key.clone(), aggregator.finish(total.clone())));
                emitted += 1;
            }
            bucket += 1;
        }
        bucket
    }
}

impl<J> RunningKeyedJob<J> {
    /// Snapshots the totals with rkyv under a checkpoint (keys and states
    /// must be rkyv-archivable: the built-in aggregators' states are), so
    /// that a resumed run starts from the last snapshot instead of the
    /// first epoch. See [`Checkpoint::snapshot_every`](crate::checkpoint::Checkpoint::snapshot_every).
    pub fn snapshotted(self) -> RunningKeyedJob<J, RkyvSnapshots> {
        RunningKeyedJob {
            epoch_job: self.epoch_job,
            mode: self.mode,
            hasher: self.hasher,
            codec: RkyvSnapshots,
        }
    }
}

impl<R, P, F, K, Pt, A, C> Job<R> for RunningKeyedJob<KeyedJob<R, P, F, Pt, A>, C>
where
    C: TotalsCodec<K, A::State>,
    R: 'static,
    P: Pipe<R>,
    F: KeyFn<P::Out, Key = K>,
    K: Key + Clone + std::borrow::Borrow<F::Lookup>,
    Pt: Partitioner<F::Lookup>,
    A: Aggregator<P::Out>,
    A::State: Clone,
{
    type Part = KeyedPart<K, A::State>;
    type Row = (K, A::Output);
    type Totals = Totals<K, A::State>;

    fn partitions(&self, workers: usize) -> usize {
        self.epoch_job.partitions(workers)
    }

    fn check(&self, workers: usize) -> Result<(), String> {
        if self.epoch_job.salts() {
            return Err(
                "salted keys and running totals do not go together: a salted key's \
                 shares are merged after the owners' totals are updated"
                    .into(),
            );
        }
        self.epoch_job.check(workers)
    }

    fn new_part(&self) -> Self::Part {
        self.epoch_job.new_part()
    }

    fn keeps_totals(&self) -> bool {
        true
    }

    fn new_totals(&self) -> Self::Totals {
        Totals {
            table: HashTable::new(),
        }
    }

    fn save_totals(&self, totals: &Self::Totals, out: &mut Vec<u8>) -> Result<bool, String> {
        self.codec.save(totals.table.iter(), out)
    }

    fn load_totals(&self, bytes: &[u8]) -> Result<Self::Totals, String> {
        let mut totals = self.new_totals();
        let aggregator = self.epoch_job.aggregator();
        for (key, state) in self.codec.load(bytes)? {
            merge_entry(&mut totals.table, &self.hasher, aggregator, key, state);
        }
        Ok(totals)
    }

    #[inline]
    fn absorb(&self, records: &[R], parts: Parts<'_, Self::Part>) {
        self.epoch_job.absorb(records, parts);
    }

    fn place(&self, parts: Parts<'_, Self::Part>, placement: Placement) -> Placement {
        self.epoch_job.place(parts, placement)
    }

    fn split(&self, parts: Parts<'_, Self::Part>) -> usize {
        self.epoch_job.split(parts)
    }

    fn merge(&self, into: &mut Self::Part, from: &mut Self::Part) {
        self.epoch_job.merge(into, from);
    }

    fn hot_keys(&self, part: &mut Self::Part, out: &mut Vec<HotKey>) {
        self.epoch_job.hot_keys(part, out);
    }

    /// The epoch's own rows, without totals (the engine calls
    /// [`finish_with_totals`](Job::finish_with_totals)).
    fn finish(&self, part: &mut Self::Part, rows: &mut Vec<Self::Row>) {
        self.epoch_job.finish(part, rows);
    }

    fn finish_with_totals(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
    ) {
        self.fold_into_totals(part.drain(), totals, rows);
        if self.mode == OutputMode::Complete {
            self.complete_rows(totals, 0, usize::MAX, rows);
        }
    }

    fn merge_some(&self, into: &mut Self::Part, from: &mut Self::Part, budget: usize) -> bool {
        self.epoch_job.merge_some(into, from, budget)
    }

    fn part_like(&self, like: &Self::Part) -> Self::Part {
        self.epoch_job.part_like(like)
    }

    /// The epoch's entries into the totals first, `budget` at a time; in
    /// complete mode then the totals' rows, `budget` at a time, from the
    /// bucket where the last piece stopped (`KeyedPart::finished`: the
    /// totals do not change between the pieces, since only this epoch's
    /// finish touches them).
    fn finish_some(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
        _: EpochTime,
        budget: usize,
    ) -> bool {
        if !part.is_empty() {
            let entries = part.take_some(budget);
            self.fold_into_totals(entries, totals, rows);
            return part.is_empty() && self.mode != OutputMode::Complete;
        }
        if self.mode != OutputMode::Complete {
            return true;
        }
        part.finished = self.complete_rows(totals, part.finished, budget, rows);
        if part.finished < totals.table.num_buckets() {
            return false;
        }
        part.finished = 0;
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::job::{self, count, sum};

    type Record = (u64, u64);
    type Row = (u64, (u64, u64));

    /// One epoch on one partition, as an owner finishes it.
    fn epoch<J: Job<Record, Row = Row>>(
        job: &J,
        totals: &mut J::Totals,
        records: &[Record],
    ) -> Vec<Row> {
        let mut parts = vec![job.new_part()];
        job.absorb(records, Parts::from(&mut parts));
        let mut rows = Vec::new();
        job.finish_with_totals(&mut parts[0], totals, &mut rows);
        rows.sort_unstable();
        rows
    }

    fn totals_job(mode: OutputMode) -> impl Job<Record, Row = Row> {
        job::records::<Record>()
            .key_by(|r| r.0)
            .aggregate((count(), sum(|r: &Record| r.1)))
            .running(mode)
    }

    #[test]
    fn update_mode_emits_the_updated_keys_with_their_totals() {
        let job = totals_job(OutputMode::Update);
        let mut totals = job.new_totals();
        assert_eq!(
            epoch(&job, &mut totals, &[(1, 10), (2, 5), (1, 1)]),
            [(1, (2, 11)), (2, (1, 5))]
        );
        assert_eq!(epoch(&job, &mut totals, &[(1, 4)]), [(1, (3, 15))]);
        assert_eq!(epoch(&job, &mut totals, &[]), []);
        assert_eq!(epoch(&job, &mut totals, &[(3, 7)]), [(3, (1, 7))]);
    }

    #[test]
    fn complete_mode_emits_every_key_every_epoch() {
        let job = totals_job(OutputMode::Complete);
        let mut totals = job.new_totals();
        assert_eq!(
            epoch(&job, &mut totals, &[(1, 10), (2, 5)]),
            [(1, (1, 10)), (2, (1, 5))]
        );
        assert_eq!(
            epoch(&job, &mut totals, &[(1, 4)]),
            [(1, (2, 14)), (2, (1, 5))]
        );
        assert_eq!(epoch(&job, &mut totals, &[]), [(1, (2, 14)), (2, (1, 5))]);
    }

    #[test]
    fn complete_mode_in_pieces_emits_each_key_once_from_where_it_stopped() {
        let job = totals_job(OutputMode::Complete);
        let records: Vec<Record> = (0..1000).map(|k| (k * 7, k)).collect();
        let mut whole_totals = job.new_totals();
        let whole = epoch(&job, &mut whole_totals, &records);
        for budget in [1, 3, 64, 999, 1000, 5000] {
            let mut totals = job.new_totals();
            let mut parts = vec![job.new_part()];
            job.absorb(&records, Parts::from(&mut parts));
            let mut rows = Vec::new();
            let mut pieces = 0;
            while !job.finish_some(
                &mut parts[0],
                &mut totals,
                &mut rows,
                EpochTime::default(),
                budget,
            ) {
                pieces += 1;
                assert!(pieces < 10_000, "budget {budget}: the finish never ends");
            }
            rows.sort_unstable();
            assert_eq!(rows, whole, "budget {budget}");
        }
    }

    #[test]
    fn a_per_epoch_job_keeps_no_totals() {
        let job = job::records::<Record>()
            .key_by(|r| r.0)
            .aggregate((count(), sum(|r: &Record| r.1)));
        job.new_totals();
        assert_eq!(epoch(&job, &mut (), &[(1, 10)]), [(1, (1, 10))]);
        assert_eq!(epoch(&job, &mut (), &[(1, 4)]), [(1, (1, 4))]);
    }
}
