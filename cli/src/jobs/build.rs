//! From a profile's `[job]` to monomorphized engine code: the one generic
//! step (`WithAggregator`, `WithJob`) between the keys a profile names and
//! a job over records of a type known at compile time (`KeyValue`:
//! `key,value` records, or timed ones). `event.rs` and `windowed.rs` run
//! what is built here; `queries.rs` builds several.
//!
//! A job's state is fixed at compile time, so the reductions a profile asks
//! for are served by one of two aggregators: `(count, sum)` when only
//! count, sum and mean are asked for (16-byte state), and
//! `(count, sum, min, max)` otherwise. The rows carry only the columns
//! asked for.

use microbatch::job::{
    self, count, max, min, sum, Aggregator, Job, OutputMode, RkyvSnapshots, TotalsCodec,
};
use microbatch::source::{Event, TimedEvent};

use super::output::{Grouped, Reduced};
use crate::profile::schema::{JobKind, JobSpec, OutputModeSpec, Reduction};

/// A record the generic jobs fold: a key and a value (and, for the
/// event-time ones, an event time: [`TimedEvent`]).
pub trait KeyValue: Copy + Send + Sync + 'static {
    /// The key column.
    fn key(&self) -> u64;
    /// The value column.
    fn value(&self) -> u64;
}

impl KeyValue for Event {
    fn key(&self) -> u64 {
        self.key
    }
    fn value(&self) -> u64 {
        self.value
    }
}

impl KeyValue for TimedEvent {
    fn key(&self) -> u64 {
        self.key
    }
    fn value(&self) -> u64 {
        self.value
    }
}

/// The value column of a record.
pub(crate) fn value_of<R: KeyValue>(record: &R) -> u64 {
    record.value()
}

/// The key column of a record.
fn key_of<R: KeyValue>(record: &R) -> u64 {
    record.key()
}

/// Something to do with the aggregator a [`JobSpec`] needs over records
/// `R`: the one generic step between a profile and monomorphized engine
/// code.
pub trait WithAggregator<R> {
    /// What it gives back.
    type Out;
    /// Does it with `aggregator`.
    fn with<A>(self, aggregator: A) -> Self::Out
    where
        A: Aggregator<R> + Clone,
        A::State: Clone,
        A::Output: Reduced,
        RkyvSnapshots: TotalsCodec<u64, A::State>;
}

/// Calls `action` with the aggregator `spec` needs.
pub fn with_aggregator<R: KeyValue, W: WithAggregator<R>>(spec: &JobSpec, action: W) -> W::Out {
    let needs_min_max = spec.wants(Reduction::Min) || spec.wants(Reduction::Max);
    // The function item itself (zero-sized, `Copy`), not a pointer to it:
    // the reductions then inline it instead of calling through a pointer
    // for every record.
    let value = value_of::<R>;
    if needs_min_max {
        action.with((count(), sum(value), min(value), max(value)))
    } else {
        action.with((count(), sum(value)))
    }
}

/// Something to do with the engine job a [`JobSpec`] describes, over
/// records `R`.
pub trait WithJob<R> {
    /// What it gives back.
    type Out;
    /// Does it with `job`, whose rows `row` turns into groups.
    fn with<J: Job<R>>(self, job: J, row: fn(J::Row) -> Grouped) -> Self::Out;
}

/// Calls `action` with the job `spec` describes.
pub fn with_job<R: KeyValue, W: WithJob<R>>(spec: &JobSpec, action: W) -> W::Out {
    with_job_keyed_by(spec, key_of::<R>, action)
}

/// Calls `action` with the job `spec` describes, its records keyed by
/// `key` (a keyed job's). An unwindowed job: `windowed.rs` builds the
/// others.
pub fn with_job_keyed_by<R, W, K>(spec: &JobSpec, key: K, action: W) -> W::Out
where
    R: KeyValue,
    W: WithJob<R>,
    K: Fn(&R) -> u64 + Copy + Send + Sync + 'static,
{
    struct Build<W, K>(JobKind, OutputModeSpec, W, K);
    impl<R, W, K> WithAggregator<R> for Build<W, K>
    where
        R: KeyValue,
        W: WithJob<R>,
        K: Fn(&R) -> u64 + Copy + Send + Sync + 'static,
    {
        type Out = W::Out;
        fn with<A>(self, aggregator: A) -> W::Out
        where
            A: Aggregator<R> + Clone,
            A::State: Clone,
            A::Output: Reduced,
            RkyvSnapshots: TotalsCodec<u64, A::State>,
        {
            let keyed = job::records::<R>().key_by(self.3);
            let keyed_row = |(key, output): (u64, A::Output)| Grouped {
                window: None,
                key: Some(key),
                columns: output.columns(),
                firing: None,
            };
            match (self.0, self.1) {
                (JobKind::Keyed, OutputModeSpec::Epoch) => {
                    self.2.with(keyed.aggregate(aggregator), keyed_row)
                }
                (JobKind::Keyed, OutputModeSpec::Update) => self.2.with(
                    keyed
                        .aggregate(aggregator)
                        .running(OutputMode::Update)
                        .snapshotted(),
                    keyed_row,
                ),
                (JobKind::Keyed, OutputModeSpec::Complete) => self.2.with(
                    keyed
                        .aggregate(aggregator)
                        .running(OutputMode::Complete)
                        .snapshotted(),
                    keyed_row,
                ),
                // Profile::check sends windowed jobs (the only ones in
                // append mode) to `windowed`, the click stream and Nexmark
                // elsewhere.
                (JobKind::Keyed, OutputModeSpec::Append)
                | (JobKind::Clickstream | JobKind::Nexmark, _) => {
                    unreachable!("the registry hands only unwindowed keyed and global jobs here")
                }
                // Profile::check refuses running totals of a global job.
                (JobKind::Global, _) => self.2.with(
                    job::records::<R>().aggregate(aggregator),
                    |output: A::Output| Grouped {
                        window: None,
                        key: None,
                        columns: output.columns(),
                        firing: None,
                    },
                ),
            }
        }
    }
    with_aggregator(spec, Build(spec.kind, spec.output_mode, action, key))
}
