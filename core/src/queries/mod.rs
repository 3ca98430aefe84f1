//! Several queries on one engine: one input, each record pushed once and
//! folded into every query; each query with its own job, sink, epoch (a
//! multiple of the engine's), priority and in-flight bound; the work after
//! each seal scheduled per owner by a [`SchedulerPolicy`].
//!
//! ```
//! use microbatch::job::{self, count, sum, OutputMode};
//! use microbatch::queries::{Queries, Query, SchedulerPolicy};
//! use microbatch::sink::CollectSink;
//! use microbatch::Engine;
//!
//! // Per endpoint, every epoch, urgent; per user, running totals every 10 epochs.
//! let (alerts, alert_rows) = CollectSink::new();
//! let (dashboard, dashboard_rows) = CollectSink::new();
//! let per_endpoint = job::records::<(u32, u64)>().key_by(|r| r.0 % 4).aggregate(count());
//! let per_user = job::records::<(u32, u64)>()
//!     .key_by(|r| r.0)
//!     .aggregate(sum(|r: &(u32, u64)| r.1))
//!     .running(OutputMode::Complete);
//! let (job, sink) = Queries::new(SchedulerPolicy::Priority)
//!     .query(Query::new("alerts", per_endpoint, alerts).priority(10))
//!     .query(Query::new("dashboard", per_user, dashboard).every(10))
//!     .build();
//! let reports = job.reports();
//! let engine = Engine::builder(job, sink).workers(2).pin(false).start()?;
//! let mut producer = engine.producer();
//! for user in 0..100u32 {
//!     producer.push((user, 1)).unwrap();
//! }
//! engine.shutdown()?;
//! let counted: u64 = alert_rows.take().iter().map(|(_, (_, n))| n).sum();
//! assert_eq!(counted, 100);
//! // The last epoch is due for every query: each user's total is out.
//! let rows = dashboard_rows.take();
//! let last = rows.iter().map(|(epoch, _)| *epoch).max();
//! assert_eq!(rows.iter().filter(|(epoch, _)| Some(*epoch) == last).count(), 100);
//! assert_eq!(reports.now()[0].name, "alerts");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! How it runs: the queries' job ([`QueriesJob`]) is one engine job whose
//! part holds a part of each query. A worker folds each chunk into every
//! query (`erased.rs`), and at a seal keeps back the parts of the queries
//! whose own epoch is not due ([`Job::carry`]). An owner does not merge or
//! finish at once: it queues each due query's epoch as a task
//! (`task.rs`) and runs one piece of the task the policy picks
//! (`schedule.rs`) per pass of its loop ([`Job::run_deferred`]). A query's
//! epoch completes, in its own order, when its last owner is done
//! (`report.rs`), so a slow query holds up none of the others' results.
//!
//! Under a checkpoint each query records the epochs its sink committed
//! (`DIR/queries/<name>`, [`QueryCommits`]); a resumed run starts at the
//! earliest epoch some query has not committed (the first, beside a query
//! with running totals, which are not snapshotted yet) and each query
//! folds what it committed again without output
//! ([`Job::resume_query_commits`]).
//!
//! Not yet: snapshots of a query's totals, salted keys in a query, adding
//! a query to a running engine (the workers' parts are built at start: it
//! would take a query slot the workers fill from the next seal on, and a
//! first epoch of its own).

mod erased;
mod report;
mod schedule;
mod task;

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use self::erased::{ErasedQuery, Sub, Typed};
use self::report::QueryShared;
pub use self::report::{QueryReport, SealToResult};
pub use self::schedule::SchedulerPolicy;
pub use self::task::OwnerQueries;
use crate::checkpoint::{CheckpointError, QueryCommits};
use crate::job::{DeferredError, EpochTime, Job, Parts, Placement};
use crate::sink::{Sink, SinkError};
use crate::sync::Arc;

/// Entries a task merges or finishes per piece: about a tenth of a
/// millisecond of work for small states.
pub const DEFAULT_PIECE: usize = 16 * 1024;

/// A query's settings.
#[derive(Debug, Clone)]
pub(crate) struct QuerySpec {
    pub(crate) name: String,
    pub(crate) priority: i64,
    pub(crate) every: u64,
    /// The query's own count trigger, instead of `every`.
    pub(crate) records: Option<u64>,
    pub(crate) latency_budget: Duration,
    pub(crate) max_epochs_in_flight: usize,
}

/// One query: a job, the sink of its rows, and how it is scheduled.
///
/// Its sink's [`write`](Sink::write) may be called several times per
/// epoch and partition (once per piece of the epoch's finish), and its
/// [`epoch_complete`](Sink::epoch_complete) once per epoch of the query
/// (every [`every`](Query::every) engine epochs, and the last), in order.
pub struct Query<R> {
    spec: QuerySpec,
    query: Box<dyn ErasedQuery<R>>,
}

impl<R: 'static> Query<R> {
    /// A query named `name` running `job` into `sink`: every engine epoch,
    /// priority 0, no latency budget, 2 epochs in flight per owner.
    pub fn new<J, S>(name: impl Into<String>, job: J, sink: S) -> Self
    where
        J: Job<R>,
        S: Sink<J::Row>,
    {
        Query {
            spec: QuerySpec {
                name: name.into(),
                priority: 0,
                every: 1,
                records: None,
                latency_budget: Duration::ZERO,
                max_epochs_in_flight: 2,
            },
            query: Box::new(Typed { job, sink }),
        }
    }

    /// Higher runs first under [`SchedulerPolicy::Priority`].
    pub fn priority(mut self, priority: i64) -> Self {
        self.spec.priority = priority;
        self
    }

    /// The query's epoch is `engine_epochs` of the engine's (at least 1):
    /// its workers fold that many before its parts move. The engine's last
    /// epoch ends every query's.
    pub fn every(mut self, engine_epochs: u64) -> Self {
        self.spec.every = engine_epochs;
        self
    }

    /// The query's epoch ends with the first engine epoch that brings the
    /// records folded since its last to `records` or more (at least 1):
    /// its own count trigger, instead of [`every`](Query::every). Its
    /// epochs are made of the engine's, so one holds from `records` to
    /// `records` plus one engine epoch's (the engine's
    /// `max_batch_records` bounds that); the engine's last epoch ends it
    /// too. Its workers send their parts every engine epoch; its owners
    /// keep them until the count is reached.
    pub fn max_batch_records(mut self, records: u64) -> Self {
        self.spec.records = Some(records);
        self
    }

    /// How long after its seal an epoch's result is due: its deadline,
    /// which orders tasks of equal priority. Default 0 (the seal itself).
    pub fn latency_budget(mut self, budget: Duration) -> Self {
        self.spec.latency_budget = budget;
        self
    }

    /// How many of the query's epochs may wait per owner before the
    /// oldest runs to its end at once, holding the owner (and the input)
    /// back. At least 1.
    pub fn max_epochs_in_flight(mut self, epochs: usize) -> Self {
        self.spec.max_epochs_in_flight = epochs;
        self
    }
}

/// The queries of one engine, before it starts.
pub struct Queries<R> {
    queries: Vec<Query<R>>,
    policy: SchedulerPolicy,
    piece: usize,
}

impl<R: 'static> Queries<R> {
    /// No queries yet, scheduled by `policy`.
    pub fn new(policy: SchedulerPolicy) -> Self {
        Queries {
            queries: Vec::new(),
            policy,
            piece: DEFAULT_PIECE,
        }
    }

    /// Adds `query`.
    pub fn query(mut self, query: Query<R>) -> Self {
        self.queries.push(query);
        self
    }

    /// Entries merged or finished per piece of a task (default
    /// [`DEFAULT_PIECE`]); at least 1.
    pub fn piece(mut self, entries: usize) -> Self {
        self.piece = entries;
        self
    }

    /// The engine's job and its sink (which writes nothing itself: each
    /// query writes to its own; closing it closes theirs).
    pub fn build(self) -> (QueriesJob<R>, QueriesSink<R>) {
        let shared = Arc::new(Shared {
            queries: self
                .queries
                .into_iter()
                .map(|q| QueryShared::new(q.spec, q.query))
                .collect(),
            policy: self.policy,
            piece: self.piece,
            partitions: OnceLock::new(),
        });
        (
            QueriesJob {
                shared: Arc::clone(&shared),
            },
            QueriesSink { shared },
        )
    }
}

/// What the queries' job and sink share.
struct Shared<R> {
    queries: Vec<QueryShared<R>>,
    policy: SchedulerPolicy,
    piece: usize,
    /// Each query's partitions, fixed when the engine asks for the job's.
    partitions: OnceLock<Vec<usize>>,
}

impl<R> Shared<R> {
    fn partitions_of(&self, q: usize) -> usize {
        self.partitions.get().map_or(1, |all| all[q])
    }

    /// Whether query `q`'s workers send their parts at the seal of engine
    /// epoch `epoch` (or keep them back): at the end of each of its epochs
    /// of `every` engine epochs, at every seal for a count-triggered
    /// query, and at the epoch a resumed query last committed, which ended
    /// one of its epochs in the run before.
    fn sends(&self, q: usize, epoch: u64) -> bool {
        let query = &self.queries[q];
        query.spec.records.is_some()
            || (epoch + 1).is_multiple_of(query.spec.every)
            || query.committed_at(epoch)
    }
}

/// The engine's job of several queries ([`Queries::build`]).
pub struct QueriesJob<R> {
    shared: Arc<Shared<R>>,
}

impl<R> QueriesJob<R> {
    /// A handle on each query's figures, readable while the engine runs.
    pub fn reports(&self) -> QueryReports<R> {
        QueryReports {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Reads each query's figures ([`QueriesJob::reports`]).
pub struct QueryReports<R> {
    shared: Arc<Shared<R>>,
}

impl<R> Clone for QueryReports<R> {
    fn clone(&self) -> Self {
        QueryReports {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R> QueryReports<R> {
    /// Each query's figures now, in the order they were added: since the
    /// start, or since the last [`restart`](QueryReports::restart).
    pub fn now(&self) -> Vec<QueryReport> {
        self.shared
            .queries
            .iter()
            .map(QueryShared::report)
            .collect()
    }

    /// Forgets every query's figures so far: what follows counts from now,
    /// as a measured window after a warm-up does.
    pub fn restart(&self) {
        for query in &self.shared.queries {
            query.restart();
        }
    }
}

/// The engine's sink beside a [`QueriesJob`]: its job has no rows of its
/// own; closing it closes every query's sink.
pub struct QueriesSink<R> {
    shared: Arc<Shared<R>>,
}

impl<R: 'static> Sink<Infallible> for QueriesSink<R> {
    fn write(&self, _: u64, _: usize, _: &mut Vec<Infallible>) -> Result<(), SinkError> {
        Ok(())
    }

    fn close(&self) {
        for shared in &self.shared.queries {
            shared.query.close();
        }
    }
}

/// One partition's part of every query.
pub struct QueriesPart {
    /// Each query's part of the partition.
    subs: Vec<Sub>,
    /// Whether `subs[q]` went out with the seal (false: it was kept back,
    /// and this is an empty one in its place).
    sent: Vec<bool>,
    /// On an owner: the parts of each query that came in for the epoch.
    held: Vec<Vec<Sub>>,
    /// Lent by a batch's first part to fold each query (`erased.rs`).
    scratch: Vec<Option<Sub>>,
}

impl<R: 'static> Job<R> for QueriesJob<R> {
    type Part = QueriesPart;
    type Row = Infallible;
    type Totals = OwnerQueries;

    fn partitions(&self, workers: usize) -> usize {
        let each = self.shared.partitions.get_or_init(|| {
            let queries = &self.shared.queries;
            queries
                .iter()
                .map(|q| q.query.partitions(workers))
                .collect()
        });
        each.iter().copied().max().unwrap_or(1)
    }

    fn check(&self, workers: usize) -> Result<(), String> {
        let queries = &self.shared.queries;
        if queries.is_empty() {
            return Err("no queries: add at least one".into());
        }
        if self.shared.piece == 0 {
            return Err("a piece of 0 entries never ends a task: at least 1".into());
        }
        for (i, shared) in queries.iter().enumerate() {
            let spec = &shared.spec;
            let name = &spec.name;
            if queries[..i].iter().any(|other| other.spec.name == *name) {
                return Err(format!("two queries are named {name:?}: names must differ"));
            }
            if spec.every == 0 || spec.max_epochs_in_flight == 0 || spec.records == Some(0) {
                return Err(format!(
                    "query {name:?}: `every`, `max_batch_records` and `max_epochs_in_flight` \
                     must be at least 1"
                ));
            }
            if spec.every > 1 && spec.records.is_some() {
                return Err(format!(
                    "query {name:?}: an epoch of `every` engine epochs or of \
                     `max_batch_records` records, not both"
                ));
            }
            shared
                .query
                .check(workers)
                .map_err(|reason| format!("query {name:?}: {reason}"))?;
        }
        Ok(())
    }

    fn carries(&self) -> bool {
        self.shared.queries.iter().any(|q| q.spec.every > 1)
    }

    /// Each query resumes after its own last commit; the run starts at
    /// the earliest of them, or at the first epoch if a query's rows
    /// depend on every earlier epoch (its totals are not snapshotted
    /// yet, so they are rebuilt by folding the log again).
    fn resume_query_commits(&self, commits: &QueryCommits) -> Result<Option<u64>, CheckpointError> {
        let mut first = u64::MAX;
        for shared in &self.shared.queries {
            let own = shared.resume(commits)?;
            first = first.min(if shared.query.keeps_totals() { 0 } else { own });
        }
        Ok(Some(first))
    }

    fn new_part(&self) -> QueriesPart {
        let queries = &self.shared.queries;
        QueriesPart {
            subs: queries.iter().map(|q| q.query.new_part()).collect(),
            sent: vec![true; queries.len()],
            held: queries.iter().map(|_| Vec::new()).collect(),
            scratch: queries.iter().map(|_| None).collect(),
        }
    }

    fn new_totals(&self) -> OwnerQueries {
        OwnerQueries::new(&self.shared.queries)
    }

    // Hot path: one virtual call per query and chunk.
    fn absorb(&self, records: &[R], mut parts: Parts<'_, QueriesPart>) {
        for (q, shared) in self.shared.queries.iter().enumerate() {
            let partitions = self.shared.partitions_of(q);
            shared
                .query
                .absorb(records, parts.reborrow(), q, partitions);
        }
    }

    /// Keeps back the parts of the queries not due; a due query's part
    /// in the open batch starts with room for what the sealed one held,
    /// so that a table that grew to a million keys does not grow again
    /// from empty, rehashing on the worker's hot path. Once per partition
    /// and epoch.
    /// Combined only when every query's epoch is the engine's: a combined
    /// batch's split moves each key into a partition's part as a new
    /// entry, which a part kept back across epochs may already hold.
    fn place(&self, mut parts: Parts<'_, QueriesPart>, placement: Placement) -> Placement {
        let queries = &self.shared.queries;
        let placement = if queries.iter().all(|q| q.spec.every == 1) {
            placement
        } else {
            Placement::Partitioned
        };
        let mut placed = Placement::Partitioned;
        for (q, shared) in queries.iter().enumerate() {
            let partitions = self.shared.partitions_of(q);
            let own = shared
                .query
                .place(parts.reborrow(), q, partitions, placement);
            if own == Placement::Combined {
                placed = Placement::Combined;
            }
        }
        placed
    }

    /// The most keys any query's batch held.
    fn split(&self, mut parts: Parts<'_, QueriesPart>) -> usize {
        let queries = &self.shared.queries;
        (0..queries.len())
            .map(|q| {
                let partitions = self.shared.partitions_of(q);
                queries[q].query.split(parts.reborrow(), q, partitions)
            })
            .max()
            .unwrap_or(0)
    }

    fn carry(&self, epoch: u64, sealed: &mut QueriesPart, open: &mut QueriesPart) {
        for (q, shared) in self.shared.queries.iter().enumerate() {
            if self.shared.sends(q, epoch) {
                open.subs[q] = shared.query.part_like(&sealed.subs[q]);
            } else {
                std::mem::swap(&mut sealed.subs[q], &mut open.subs[q]);
                sealed.sent[q] = false;
            }
        }
    }

    /// Moves the parts that came out of `from` into `into`'s held parts,
    /// to be merged by the query's task; `from` goes back to its worker
    /// with empty parts in their place.
    fn merge(&self, into: &mut QueriesPart, from: &mut QueriesPart) {
        for (q, shared) in self.shared.queries.iter().enumerate() {
            if std::mem::replace(&mut from.sent[q], true) {
                let part = std::mem::replace(&mut from.subs[q], shared.query.new_part());
                into.held[q].push(part);
            }
        }
    }

    fn finish(&self, part: &mut QueriesPart, _: &mut Vec<Infallible>) {
        for held in &mut part.held {
            held.clear();
        }
    }

    /// Queues a task for each query due at this epoch on this owner.
    fn finish_at(
        &self,
        part: &mut QueriesPart,
        totals: &mut OwnerQueries,
        _: &mut Vec<Infallible>,
        time: EpochTime,
    ) {
        let shared = &self.shared;
        for (q, query) in shared.queries.iter().enumerate() {
            let held = std::mem::take(&mut part.held[q]);
            let partitions = shared.partitions_of(q);
            if time.partition >= partitions {
                continue;
            }
            let ends = time.last
                || shared.sends(q, time.epoch) && query.spec.records.is_none()
                || query.committed_at(time.epoch);
            if !totals.counts_to_due(q, time.records, query.spec.records, ends) {
                totals.keep_early(q, held);
                continue;
            }
            let own_time = EpochTime { partitions, ..time };
            totals.queue(query, q, own_time, held, shared.piece);
        }
    }

    fn batch_event_time(&self, mut parts: Parts<'_, QueriesPart>) -> Option<u64> {
        let shared = &self.shared;
        (0..shared.queries.len())
            .filter_map(|q| {
                let partitions = shared.partitions_of(q);
                let query = &shared.queries[q].query;
                query.batch_event_time(parts.reborrow(), q, partitions)
            })
            .max()
    }

    fn idle_timeout(&self) -> Option<Duration> {
        let queries = &self.shared.queries;
        queries.iter().filter_map(|q| q.query.idle_timeout()).min()
    }

    fn open_batch(&self, mut parts: Parts<'_, QueriesPart>, frontier: Option<u64>) {
        for (q, shared) in self.shared.queries.iter().enumerate() {
            let partitions = self.shared.partitions_of(q);
            shared
                .query
                .open_batch(parts.reborrow(), q, partitions, frontier);
        }
    }

    fn run_deferred(&self, totals: &mut OwnerQueries, _: usize) -> Result<bool, DeferredError> {
        let shared = &self.shared;
        totals.run_piece(&shared.queries, shared.policy, shared.piece)
    }

    fn has_deferred(&self, totals: &OwnerQueries) -> bool {
        totals.has_work()
    }
}
