//! What the engine computes: a [`Job`] folds each worker's records of an
//! epoch into partial aggregates, one per key partition, merges the parts of
//! a partition on its owner and finishes them into rows.
//!
//! Jobs are built from [`records`]: optional [`Stream::filter`],
//! [`Stream::map`] and [`Stream::flat_map`] stages, then either [`Stream::key_by`] and
//! [`KeyedStream::aggregate`] (one row per key per epoch) or
//! [`Stream::aggregate`] (one row per epoch over everything). A keyed job
//! made [`running`](KeyedJob::running) emits each key's totals since the
//! start instead of the epoch's own (update or complete
//! [`OutputMode`]).
//!
//! ```
//! use microbatch::job::{self, count, sum};
//!
//! #[derive(Clone, Copy)]
//! struct Click { user: u32, millis: u64 }
//!
//! // Per user and epoch: the number of clicks of at least 10 ms and their total.
//! let per_user = job::records::<Click>()
//!     .filter(|c| c.millis >= 10)
//!     .key_by(|c| c.user)
//!     .aggregate((count(), sum(|c: &Click| c.millis)));
//! # let _ = per_user;
//! ```

mod aggregate;
mod both;
mod boxed;
mod columns;
mod event_time;
mod firing;
mod global;
pub(crate) mod hot;
#[doc(hidden)]
pub mod kernels;
mod key;
mod keyed;
mod partition;
mod parts;
mod pipe;
pub(crate) mod placement;
mod regroup;
mod rows;
mod running;
mod session;
mod sketch;
mod value;
mod window;
mod window_snapshot;
mod window_stream;
mod windows;

use std::marker::PhantomData;

pub use aggregate::{count, max, mean, min, sum, Aggregator, Count, Max, Mean, Min, Sum};
pub use both::{Both, BothTotals, Either};
pub use boxed::BoxedJob;
pub use columns::Columns;
pub use event_time::EpochTime;
pub use firing::{Append, Emit, Firing, Marked};
pub use global::{GlobalJob, GlobalPart};
pub use key::{ByRef, Key, KeyFn};
pub use keyed::{KeyedJob, KeyedPart};
pub use partition::{FnPartitioner, HashPartitioner, Partitioner, RangePartitioner};
pub use parts::Parts;
pub use pipe::{Filter, FlatMap, Identity, Map, Pipe};
pub(crate) use placement::adaptive_placement;
pub use placement::Placement;
pub use regroup::Regrouped;
pub use rows::RowsJob;
pub use running::{NoSnapshots, OutputMode, RkyvSnapshots, RunningKeyedJob, Totals, TotalsCodec};
pub use session::{
    OpenSessions, Session, SessionJob, SessionKeyedStream, SessionPart, SessionStream,
};
pub use sketch::{
    distinct, quantiles, top_k, Distinct, QuantileSummary, Quantiles, SpaceSaving, TopK,
};
pub use value::Value;
pub use window::{OpenWindows, WindowedJob, WindowedPart};
pub use window_stream::{TimedStream, WholeWindowJob, WindowedKeyedStream, WindowedStream};
pub use windows::{Window, Windows};

/// Deferred work of a job (see [`Job::run_deferred`]) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeferredError {
    /// A query's sink would not take an epoch's rows or its commit.
    #[error("the sink failed at epoch {epoch}: {source}")]
    Sink {
        /// The epoch whose rows were refused.
        epoch: u64,
        /// Why.
        source: crate::sink::SinkError,
    },
    /// Recording a query's commit in the checkpoint failed.
    #[error("the checkpoint failed at epoch {epoch}: {source}")]
    Checkpoint {
        /// The epoch the query committed.
        epoch: u64,
        /// Why.
        source: crate::checkpoint::CheckpointError,
    },
}

/// A computation the engine runs on every epoch.
///
/// Partition `p` of `partitions(W)` is owned by worker `p`. Each worker
/// folds its records into one `Part` per partition ([`absorb`](Job::absorb),
/// the hot path); at a seal the parts travel to their owners, which
/// [`merge`](Job::merge) them and [`finish`](Job::finish) the merged part
/// into rows. Parts are recycled: merging and finishing empty a part but
/// keep its memory.
pub trait Job<R>: Send + Sync + 'static {
    /// The partial aggregate of one partition of one epoch.
    type Part: Send + 'static;
    /// One row of a result.
    type Row: Send + 'static;
    /// What the owner of a partition keeps across epochs: the running
    /// totals of a [`RunningKeyedJob`]; `()` for jobs whose rows are each
    /// epoch's own.
    type Totals: Send + 'static;

    /// How many key partitions the job has with `workers` workers.
    fn partitions(&self, workers: usize) -> usize;

    /// Checks, before the engine starts, that the job can run on `workers`
    /// workers; the error says why not.
    fn check(&self, workers: usize) -> Result<(), String> {
        let _ = workers;
        Ok(())
    }

    /// An empty part.
    fn new_part(&self) -> Self::Part;

    /// The totals of a partition before the first epoch.
    fn new_totals(&self) -> Self::Totals;

    /// Whether each epoch's rows depend on earlier epochs (running
    /// totals). A run resumed from a checkpoint then replays every epoch
    /// from the first, without output for the committed ones, to rebuild
    /// the totals. By default false.
    fn keeps_totals(&self) -> bool {
        false
    }

    /// Encodes a partition's `totals` into `out` (empty on entry) for a
    /// checkpoint's state snapshot; `Ok(false)` if this job's totals are
    /// not snapshotted (the default). Every few epochs, on the owner.
    fn save_totals(&self, totals: &Self::Totals, out: &mut Vec<u8>) -> Result<bool, String> {
        let _ = (totals, out);
        Ok(false)
    }

    /// The totals [`save_totals`](Job::save_totals) encoded, checked.
    fn load_totals(&self, bytes: &[u8]) -> Result<Self::Totals, String> {
        let _ = bytes;
        Err("this job's totals are not snapshotted".into())
    }

    /// Folds a run of records into `parts` (one per partition), as the
    /// batch's [`Placement`] says. Hot path.
    fn absorb(&self, records: &[R], parts: Parts<'_, Self::Part>);

    /// Sets how [`absorb`](Job::absorb) places the records of the batch
    /// that `parts` (fresh from the last seal, before any `absorb`) are
    /// about to hold, and returns the placement it will use: a job that
    /// places every record in its partition ignores the request, as by
    /// default.
    fn place(&self, parts: Parts<'_, Self::Part>, placement: Placement) -> Placement {
        let _ = (parts, placement);
        Placement::Partitioned
    }

    /// Seals the batch in `parts`: under [`Placement::Combined`], moves
    /// what `absorb` folded into `parts[0]` for other partitions into
    /// theirs. Returns the distinct keys the batch held (0 if the job has
    /// no keys), for the worker's choice of the next placement.
    fn split(&self, parts: Parts<'_, Self::Part>) -> usize {
        let _ = parts;
        0
    }

    /// Merges `from` into `into`, leaving `from` empty (its memory kept).
    fn merge(&self, into: &mut Self::Part, from: &mut Self::Part);

    /// Whether some keys' records are spread over every partition (see
    /// [`KeyedJob::salted`]). By default none are.
    fn salts(&self) -> bool {
        false
    }

    /// Moves the entries of salted keys out of a merged `part` into `into`
    /// (an empty part), before [`finish`](Job::finish): the engine merges
    /// those from every owner at the end of the epoch and finishes them
    /// once. Returns whether any moved. Once per partition and epoch.
    fn take_salted(&self, part: &mut Self::Part, into: &mut Self::Part) -> bool {
        let _ = (part, into);
        false
    }

    /// Appends the hottest keys of a merged part (before
    /// [`finish`](Job::finish)), most records first, to `out`. Once per
    /// partition and epoch. By default none: jobs without keys have none.
    fn hot_keys(&self, part: &mut Self::Part, out: &mut Vec<crate::progress::HotKey>) {
        let _ = (part, out);
    }

    /// Moves the rows of a merged part into `rows`, leaving `part` empty.
    fn finish(&self, part: &mut Self::Part, rows: &mut Vec<Self::Row>);

    /// What the engine calls on the owner: folds a merged part into the
    /// partition's `totals` and moves the epoch's rows into `rows`. By
    /// default the totals are left alone and the rows are
    /// [`finish`](Job::finish)'s.
    fn finish_with_totals(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
    ) {
        let _ = totals;
        self.finish(part, rows);
    }

    /// What the engine calls on the owner once per partition and epoch:
    /// [`finish_with_totals`](Job::finish_with_totals), told where event
    /// time stands (`time`). An event-time job emits the windows the
    /// watermark closed; by default `time` is not needed.
    fn finish_at(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
        time: EpochTime,
    ) {
        let _ = time;
        self.finish_with_totals(part, totals, rows);
    }

    /// The newest event time (ms) a worker's batch in `parts` folded, at
    /// its seal: the engine keeps each worker's newest and tells every
    /// owner the least of them ([`EpochTime::frontier`]). `None` (the
    /// default): the job has no event time, or the batch had no record.
    fn batch_event_time(&self, parts: Parts<'_, Self::Part>) -> Option<u64> {
        let _ = parts;
        None
    }

    /// How long a worker whose batches bring no new event time still holds
    /// the frontier back; `None` (the default): for as long as it is idle.
    fn idle_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// Tells the parts of a batch about to open where event time stands
    /// (the frontier as of the last epoch emitted), so that records behind
    /// the job's watermark are counted late rather than folded. By default
    /// nothing.
    fn open_batch(&self, parts: Parts<'_, Self::Part>, frontier: Option<u64>) {
        let _ = (parts, frontier);
    }

    /// How many entries of state `totals` holds after an epoch (an
    /// event-time job's open windows), for the progress report. By
    /// default 0.
    fn open_state(&self, totals: &Self::Totals) -> usize {
        let _ = totals;
        0
    }

    /// The event-time frontier `totals` (loaded from a snapshot) were
    /// saved at, so that a resumed run's owners go on from it: a job that
    /// snapshots open windows keeps it. By default `None`.
    fn restored_frontier(&self, totals: &Self::Totals) -> Option<u64> {
        let _ = totals;
        None
    }

    /// How many of an epoch's `rows` are windows (or sessions) that fired,
    /// for the progress report. By default 0.
    fn windows_in(&self, rows: &[Self::Row]) -> u64 {
        let _ = rows;
        0
    }

    /// Takes the count of records a merged `part` dropped as late (behind
    /// the watermark), after [`finish_at`](Job::finish_at). By default 0.
    fn take_late(&self, part: &mut Self::Part) -> u64 {
        let _ = part;
        0
    }

    /// [`merge`](Job::merge) in pieces: moves about `budget` entries of
    /// `from` into `into` and returns whether `from` is now empty. A
    /// scheduler that must not hold an urgent task up behind a long merge
    /// calls it until it returns true (see [`crate::queries`]). By default
    /// the whole merge at once.
    fn merge_some(&self, into: &mut Self::Part, from: &mut Self::Part, budget: usize) -> bool {
        let _ = budget;
        self.merge(into, from);
        true
    }

    /// An empty part with room for what `like` holds: what a scheduler
    /// that keeps `like` gives the worker in its place, so that the
    /// worker's next batch does not grow its part from empty again. By
    /// default [`new_part`](Job::new_part).
    fn part_like(&self, like: &Self::Part) -> Self::Part {
        let _ = like;
        self.new_part()
    }

    /// [`finish_at`](Job::finish_at) in pieces: finishes about `budget`
    /// entries of `part` (or, for running totals in complete mode, of the
    /// totals) into `rows` and returns whether the epoch's rows are all
    /// out. Called again with the same `part` and `totals` until it returns
    /// true. By default the whole finish at once.
    fn finish_some(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
        time: EpochTime,
        budget: usize,
    ) -> bool {
        let _ = budget;
        self.finish_at(part, totals, rows, time);
        true
    }

    /// At a worker's seal of `epoch`, moves what of the `sealed` part (about
    /// to go to its owner) stays in the worker into `open` (the open
    /// batch's fresh part of the same partition): a job of several queries
    /// keeps a query's part until the query's own epoch is due. Called only
    /// when `epoch` cannot be the last. By default nothing stays.
    fn carry(&self, epoch: u64, sealed: &mut Self::Part, open: &mut Self::Part) {
        let _ = (epoch, sealed, open);
    }

    /// Runs one piece of the work this job deferred on `owner` (its
    /// `totals`): a job of several queries queues each query's merge,
    /// finish and sink writes as tasks and runs them here, one piece per
    /// pass of the owner's loop. Returns whether it did any work. By
    /// default there is none.
    fn run_deferred(&self, totals: &mut Self::Totals, owner: usize) -> Result<bool, DeferredError> {
        let _ = (totals, owner);
        Ok(false)
    }

    /// Whether `totals` hold deferred work not yet done: the owner does not
    /// finish before it is. By default none.
    fn has_deferred(&self, totals: &Self::Totals) -> bool {
        let _ = totals;
        false
    }

    /// Whether [`carry`](Job::carry) keeps parts in a worker across
    /// epochs: a batch folded again after a panic (`OnPanic::Retry`,
    /// `DeadLetters`) starts from new parts and would lose them, so the
    /// engine refuses those policies for such a job. By default no.
    fn carries(&self) -> bool {
        false
    }

    /// Checks, before the engine starts, that the job can run under a
    /// checkpoint; the error says why not. By default it can.
    fn check_checkpoint(&self) -> Result<(), String> {
        Ok(())
    }

    /// Under a checkpoint, for a job whose parts commit their epochs to
    /// sinks of their own (several queries, each with its sink): reads
    /// from `commits` where each stopped, keeps `commits` to record each
    /// epoch its sinks commit from now on, folds the epochs one already
    /// committed without output for it, and returns the first epoch the
    /// run must fold. `None` (the default): the engine's commits say.
    /// Once, at start.
    fn resume_query_commits(
        &self,
        commits: &crate::checkpoint::QueryCommits,
    ) -> Result<Option<u64>, crate::checkpoint::CheckpointError> {
        let _ = commits;
        Ok(None)
    }

    /// A second aggregation over this job's rows: each epoch's rows, from
    /// every partition, grouped by `key` and reduced by `aggregator`, one
    /// row `(key, output)` per group per epoch, as Nexmark's q5 counts
    /// bids per auction and window, then takes each window's greatest
    /// count. The first job's rows are not emitted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use microbatch::job::{self, count, max, Job, Window, Windows};
    /// use microbatch::sink::CollectSink;
    /// use microbatch::source::IterSource;
    /// use microbatch::Engine;
    ///
    /// #[derive(Clone, Copy)]
    /// struct Bid { auction: u64, at_ms: u64 }
    ///
    /// // Per 10 s window: the most bids any one auction had.
    /// let hottest = job::records::<Bid>()
    ///     .event_time(|b| b.at_ms)
    ///     .window(Windows::tumbling(Duration::from_secs(10)))
    ///     .key_by(|b| b.auction)
    ///     .aggregate(count())
    ///     .regroup(|(window, _, _)| *window, max(|(_, _, bids): &(Window, u64, u64)| *bids));
    /// // Auction i % 3 bids at i seconds: auction 0 has 4 bids in [0 s, 10 s).
    /// let bids = (0..20u64).map(|i| Bid { auction: i % 3, at_ms: i * 1000 });
    /// let (sink, rows) = CollectSink::new();
    /// let engine = Engine::builder(hottest, sink)
    ///     .workers(2)
    ///     .source(IterSource::new(bids))
    ///     .start()?;
    /// engine.finish()?;
    /// let mut rows: Vec<_> = rows.take().into_iter().map(|(_, row)| row).collect();
    /// rows.sort();
    /// let window = |start_ms| Window { start_ms, end_ms: start_ms + 10_000 };
    /// assert_eq!(rows, [(window(0), 4), (window(10_000), 4)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn regroup<F, K, A>(self, key: F, aggregator: A) -> Regrouped<Self, F, A, K, A::State>
    where
        Self: Sized,
        F: Fn(&Self::Row) -> K + Send + Sync + 'static,
        K: std::hash::Hash + Eq + Send + 'static,
        A: Aggregator<Self::Row>,
    {
        Regrouped::new(self, key, aggregator)
    }

    /// This job and `second` over the same records, each record pushed
    /// once and folded into both, sharing the epochs and partitions; each
    /// row says which job made it. See [`Both`].
    fn and<J: Job<R>>(self, second: J) -> Both<Self, J>
    where
        Self: Sized,
    {
        Both::new(self, second)
    }
}

/// The start of a job over records of type `R`.
pub fn records<R>() -> Stream<R, Identity> {
    Stream {
        pipe: Identity,
        _records: PhantomData,
    }
}

/// A stream of items made from records of type `R` by the stages `P`.
pub struct Stream<R, P> {
    pipe: P,
    _records: PhantomData<fn(&R)>,
}

impl<R, P: Pipe<R>> Stream<R, P> {
    /// Replaces each item by the items `function` yields for it: one
    /// record can feed several keys, e.g. a click counted for its user and
    /// for its page. Like every stage, it should be a pure function (see
    /// [`filter`](Stream::filter)).
    ///
    /// ```
    /// use microbatch::job::{self, count};
    ///
    /// #[derive(Clone, Copy)]
    /// struct Click { user: u64, page: u64 }
    ///
    /// #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    /// enum Key { User(u64), Page(u64) }
    ///
    /// // Per epoch: clicks per user and views per page, in one job.
    /// let per_user_and_page = job::records::<Click>()
    ///     .flat_map(|c| [Key::User(c.user), Key::Page(c.page)])
    ///     .key_by(|key| *key)
    ///     .aggregate(count());
    /// # let _ = per_user_and_page;
    /// ```
    pub fn flat_map<F, I>(self, function: F) -> Stream<R, FlatMap<P, F>>
    where
        F: Fn(&P::Out) -> I + Send + Sync + 'static,
        I: IntoIterator,
    {
        Stream {
            pipe: FlatMap {
                inner: self.pipe,
                function,
            },
            _records: PhantomData,
        }
    }

    /// Keeps the items for which `predicate` holds.
    ///
    /// Stages should be pure functions of their item: a keyed job runs
    /// them a second time on one record in
    /// [`SAMPLE_EVERY`](crate::progress::SAMPLE_EVERY) to sample hot keys.
    pub fn filter<F>(self, predicate: F) -> Stream<R, Filter<P, F>>
    where
        F: Fn(&P::Out) -> bool + Send + Sync + 'static,
    {
        Stream {
            pipe: Filter {
                inner: self.pipe,
                predicate,
            },
            _records: PhantomData,
        }
    }

    /// Replaces each item by `function` of it. Like every stage, it should
    /// be a pure function (see [`filter`](Stream::filter)).
    pub fn map<F, T>(self, function: F) -> Stream<R, Map<P, F>>
    where
        F: Fn(&P::Out) -> T + Send + Sync + 'static,
    {
        Stream {
            pipe: Map {
                inner: self.pipe,
                function,
            },
            _records: PhantomData,
        }
    }

    /// Groups items by `key`; keys are spread over the workers by hash
    /// unless [`KeyedStream::partition_by`] says otherwise. The key is
    /// made per item; to group by a field the item owns (a `String`), use
    /// [`key_by_ref`](Stream::key_by_ref), which owns a key only when an
    /// epoch first sees it.
    ///
    /// A key is [`Key`]: `Hash + Eq + Debug + Send + 'static` (`Debug`
    /// because hot keys are named in the progress reports).
    pub fn key_by<F, K>(self, key: F) -> KeyedStream<R, P, F, HashPartitioner>
    where
        F: Fn(&P::Out) -> K + Send + Sync + 'static,
        K: Key,
    {
        KeyedStream {
            pipe: self.pipe,
            key,
            partitioner: HashPartitioner,
            _records: PhantomData,
        }
    }

    /// Groups items by a key borrowed from the item (`|r| r.path.as_str()`):
    /// the fold hashes and compares the borrowed key and owns it
    /// (`to_owned`, e.g. a `String` from a `&str`) only when the epoch
    /// first sees it, not per item. Rows carry the owned key.
    ///
    /// ```
    /// use microbatch::job::{self, count};
    /// use microbatch::sink::CollectSink;
    /// use microbatch::source::IterSource;
    /// use microbatch::Engine;
    ///
    /// struct Request { path: String, micros: u64 }
    ///
    /// let per_path = job::records::<Request>()
    ///     .key_by_ref(|r| r.path.as_str())
    ///     .aggregate(count());
    /// let (sink, rows) = CollectSink::new();
    /// let requests = (0..100u64).map(|i| Request { path: format!("/p{}", i % 3), micros: i });
    /// let engine = Engine::builder(per_path, sink)
    ///     .workers(2)
    ///     .interval(None)
    ///     .source(IterSource::new(requests))
    ///     .start()?;
    /// engine.finish()?;
    /// let mut rows: Vec<(String, u64)> = rows.take().into_iter().map(|(_, row)| row).collect();
    /// rows.sort();
    /// assert_eq!(rows, [("/p0".into(), 34), ("/p1".into(), 33), ("/p2".into(), 33)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key_by_ref<G, Q>(self, key: G) -> KeyedStream<R, P, ByRef<G>, HashPartitioner>
    where
        G: for<'a> Fn(&'a P::Out) -> &'a Q + Send + Sync + 'static,
        Q: ?Sized + std::hash::Hash + Eq + ToOwned + 'static,
        Q::Owned: Key,
    {
        KeyedStream {
            pipe: self.pipe,
            key: ByRef(key),
            partitioner: HashPartitioner,
            _records: PhantomData,
        }
    }

    /// Gives each item an event time, in ms since the Unix epoch, for
    /// windows over event time rather than over epochs (see
    /// [`TimedStream::window`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use microbatch::job::{self, count, Window, Windows};
    /// use microbatch::sink::CollectSink;
    /// use microbatch::source::IterSource;
    /// use microbatch::Engine;
    ///
    /// #[derive(Clone, Copy)]
    /// struct Click { user: u32, at_ms: u64 }
    ///
    /// // Clicks per user in 10 s windows; events up to 2 s out of order.
    /// let per_user = job::records::<Click>()
    ///     .event_time(|c| c.at_ms)
    ///     .window(Windows::tumbling(Duration::from_secs(10)))
    ///     .watermark_delay(Duration::from_secs(2))
    ///     .key_by(|c| c.user)
    ///     .aggregate(count());
    /// let clicks = (0..100u64).map(|i| Click { user: (i % 2) as u32, at_ms: i * 250 });
    /// let (sink, rows) = CollectSink::new();
    /// let engine = Engine::builder(per_user, sink)
    ///     .workers(2)
    ///     .interval(Some(Duration::from_millis(1)))
    ///     .source(IterSource::new(clicks))
    ///     .start()?;
    /// assert_eq!(engine.finish()?.late_records, 0);
    /// let mut rows: Vec<_> = rows.take().into_iter().map(|(_, row)| row).collect();
    /// rows.sort();
    /// let first = Window { start_ms: 0, end_ms: 10_000 };
    /// assert_eq!(rows[0], (first, 0, 20));
    /// assert_eq!(rows.len(), 6, "three windows of 10 s, two users each");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn event_time<E>(self, time: E) -> TimedStream<R, P, E>
    where
        E: Fn(&P::Out) -> u64 + Send + Sync + 'static,
    {
        TimedStream {
            pipe: self.pipe,
            time,
            _records: PhantomData,
        }
    }

    /// Emits every item as a row of its epoch, with no aggregation: a
    /// map or a filter over the stream. Each owner emits a share of the
    /// epoch's rows.
    /// See [`RowsJob`] for an example.
    pub fn rows(self) -> RowsJob<R, P>
    where
        P::Out: Clone,
    {
        RowsJob {
            pipe: self.pipe,
            _records: PhantomData,
        }
    }

    /// Reduces every item of an epoch to one row, on worker 0.
    pub fn aggregate<A: Aggregator<P::Out>>(self, aggregator: A) -> GlobalJob<R, P, A> {
        GlobalJob::new(self.pipe, aggregator)
    }

    /// [`aggregate`](Stream::aggregate) with the aggregator built from
    /// [`Columns`], whose column closures need no type annotation.
    pub fn aggregate_with<A: Aggregator<P::Out>>(
        self,
        build: impl FnOnce(Columns<P::Out>) -> A,
    ) -> GlobalJob<R, P, A> {
        self.aggregate(build(Columns::new()))
    }
}

/// A stream grouped by key.
pub struct KeyedStream<R, P, F, Pt> {
    pipe: P,
    key: F,
    partitioner: Pt,
    _records: PhantomData<fn(&R)>,
}

impl<R, P: Pipe<R>, F: KeyFn<P::Out>, Pt> KeyedStream<R, P, F, Pt> {
    /// Assigns keys to workers with `partitioner` instead of by hash. A
    /// [`key_by_ref`](Stream::key_by_ref) key is partitioned by its
    /// borrowed form (`str` for a `String`).
    pub fn partition_by<Q: Partitioner<F::Lookup>>(
        self,
        partitioner: Q,
    ) -> KeyedStream<R, P, F, Q> {
        KeyedStream {
            pipe: self.pipe,
            key: self.key,
            partitioner,
            _records: PhantomData,
        }
    }

    /// Reduces the items of each key in each epoch to one row `(key, output)`.
    pub fn aggregate<A>(self, aggregator: A) -> KeyedJob<R, P, F, Pt, A>
    where
        A: Aggregator<P::Out>,
        Pt: Partitioner<F::Lookup>,
    {
        KeyedJob::new(self.pipe, self.key, self.partitioner, aggregator)
    }

    /// [`aggregate`](KeyedStream::aggregate) with the aggregator built
    /// from [`Columns`], whose column closures need no type annotation:
    /// `.aggregate_with(|c| (c.count(), c.sum(|r| r.1)))`.
    pub fn aggregate_with<A>(
        self,
        build: impl FnOnce(Columns<P::Out>) -> A,
    ) -> KeyedJob<R, P, F, Pt, A>
    where
        A: Aggregator<P::Out>,
        Pt: Partitioner<F::Lookup>,
    {
        self.aggregate(build(Columns::new()))
    }
}
