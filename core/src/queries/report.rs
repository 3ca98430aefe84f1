//! Each query's completion, in its own epoch order, and what it reports:
//! an epoch of a query is complete when every owner has finished its
//! partition of it; the owner that finishes last tells the query's sink
//! ([`Sink::epoch_complete`](crate::sink::Sink::epoch_complete)) and
//! records the epoch's seal-to-result time; under a checkpoint it then
//! records the commit (`DIR/queries/<name>`). Cold path: once per owner
//! and query epoch, under the query's own lock, so a slow query never
//! waits for another's.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::erased::ErasedQuery;
use super::QuerySpec;
use crate::checkpoint::{CheckpointError, QueryCommits};
use crate::job::DeferredError;
use crate::progress::EpochProgress;
use crate::sync::cold::{lock, Mutex};

/// One query, shared by every owner: its settings, its job and sink, and
/// its completion.
pub(crate) struct QueryShared<R> {
    pub(crate) spec: QuerySpec,
    pub(crate) query: Box<dyn ErasedQuery<R>>,
    completion: Mutex<Completion>,
    /// Under a checkpoint, set once at start.
    resumed: OnceLock<Resumed>,
}

/// Where a query stood in a checkpoint at start, and where its commits go.
struct Resumed {
    commits: QueryCommits,
    /// The last epoch it committed before this run: epochs up to it are
    /// folded again without output.
    committed: Option<u64>,
}

/// The owners' progress through a query's epochs, and its figures.
struct Completion {
    /// Epochs some owner has finished and some has not: owners done, rows
    /// written and records dropped as late so far.
    open: BTreeMap<u64, (usize, u64, u64)>,
    epochs: u64,
    rows: u64,
    late: u64,
    /// Seal to result of each completed epoch, ns.
    seal_to_result: Histogram<u64>,
}

impl<R> QueryShared<R> {
    pub(crate) fn new(spec: QuerySpec, query: Box<dyn ErasedQuery<R>>) -> Self {
        QueryShared {
            spec,
            query,
            completion: Mutex::new(Completion {
                open: BTreeMap::new(),
                epochs: 0,
                rows: 0,
                late: 0,
                // 1 ns to an hour: `saturating_record` clamps, it does not
                // resize.
                seal_to_result: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                    .expect("valid bounds"),
            }),
            resumed: OnceLock::new(),
        }
    }

    /// Reads from `commits` the last epoch this query committed, and
    /// records its commits there from now on; the first epoch it has not
    /// committed.
    pub(crate) fn resume(&self, commits: &QueryCommits) -> Result<u64, CheckpointError> {
        let committed = commits.last(&self.spec.name)?;
        let resumed = Resumed {
            commits: commits.clone(),
            committed,
        };
        self.resumed.set(resumed).map_err(|_| {
            CheckpointError::Unusable(format!(
                "query {:?} was resumed twice: a query runs in one engine",
                self.spec.name
            ))
        })?;
        Ok(committed.map_or(0, |last| last + 1))
    }

    /// Whether `epoch` is the last the query committed before a restart:
    /// one of its epochs ended there.
    pub(crate) fn committed_at(&self, epoch: u64) -> bool {
        self.committed() == Some(epoch)
    }

    /// Whether `epoch`'s rows go to the sink: not when the query
    /// committed it before a restart.
    pub(crate) fn has_output(&self, epoch: u64) -> bool {
        self.committed().is_none_or(|last| epoch > last)
    }

    /// The last epoch the query committed before this run, if any.
    fn committed(&self) -> Option<u64> {
        self.resumed.get().and_then(|resumed| resumed.committed)
    }

    /// One owner of `partitions` finished `epoch`, writing `rows` rows
    /// and dropping `late` records as late; the last one completes the
    /// epoch. An owner finishes a query's
    /// epochs in order, so the last owner of an epoch comes after the
    /// last owner of every earlier one: completions are in epoch order.
    pub(crate) fn owner_finished(
        &self,
        epoch: u64,
        partitions: usize,
        rows: u64,
        late: u64,
        sealed_at: Option<Instant>,
    ) -> Result<(), DeferredError> {
        let mut completion = lock(&self.completion);
        let entry = completion.open.entry(epoch).or_insert((0, 0, 0));
        entry.0 += 1;
        entry.1 += rows;
        entry.2 += late;
        let (done, rows, late) = *entry;
        if done < partitions {
            return Ok(());
        }
        completion.open.remove(&epoch);
        if !self.has_output(epoch) {
            // Replayed: committed before the restart, counted then.
            return Ok(());
        }
        let progress = EpochProgress {
            epoch,
            rows,
            seal_to_result: sealed_at.map(|at| at.elapsed()).unwrap_or_default(),
            ..EpochProgress::default()
        };
        self.query
            .epoch_complete(epoch, &progress)
            .map_err(|source| DeferredError::Sink { epoch, source })?;
        if let Some(resumed) = self.resumed.get() {
            resumed
                .commits
                .commit(&self.spec.name, epoch, rows)
                .map_err(|source| DeferredError::Checkpoint { epoch, source })?;
        }
        // The result is out once the sink has it.
        let waited = sealed_at.map(|at| at.elapsed()).unwrap_or_default();
        completion.epochs += 1;
        completion.rows += rows;
        completion.late += late;
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX).max(1);
        completion.seal_to_result.saturating_record(nanos);
        Ok(())
    }

    /// Forgets the figures so far (not the epochs under way).
    pub(crate) fn restart(&self) {
        let mut completion = lock(&self.completion);
        completion.epochs = 0;
        completion.rows = 0;
        completion.late = 0;
        completion.seal_to_result.reset();
    }

    /// What the query has done so far.
    pub(crate) fn report(&self) -> QueryReport {
        let completion = lock(&self.completion);
        let at = |q: f64| Duration::from_nanos(completion.seal_to_result.value_at_quantile(q));
        QueryReport {
            name: self.spec.name.clone(),
            priority: self.spec.priority,
            every: self.spec.every,
            epochs: completion.epochs,
            rows: completion.rows,
            late_records: completion.late,
            seal_to_result: SealToResult {
                p50: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                p999: at(0.999),
                max: Duration::from_nanos(completion.seal_to_result.max()),
            },
        }
    }
}

/// A query's figures so far ([`QueryReports::now`](super::QueryReports::now)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryReport {
    /// Its name.
    pub name: String,
    /// Its priority.
    pub priority: i64,
    /// Its epoch, in the engine's epochs.
    pub every: u64,
    /// Epochs completed.
    pub epochs: u64,
    /// Rows written to its sink.
    pub rows: u64,
    /// Records an event-time query dropped as late (behind its
    /// watermark), in its completed epochs.
    pub late_records: u64,
    /// From each completed epoch's seal to its sink's
    /// `epoch_complete` returning.
    pub seal_to_result: SealToResult,
}

/// Percentiles of a query's seal-to-result times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SealToResult {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest.
    pub max: Duration,
}
