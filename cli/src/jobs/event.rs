//! From a profile's `[job]` to an engine job over `key,value` records;
//! where its rows go is `output`.
//!
//! A job's state is fixed at compile time, so the reductions a profile asks
//! for are served by one of two aggregators: `(count, sum)` when only
//! count, sum and mean are asked for (16-byte state), and
//! `(count, sum, min, max)` otherwise. The rows carry only the columns
//! asked for.

use microbatch::job::{
    self, count, max, min, sum, Aggregator, Job, OutputMode, RkyvSnapshots, TotalsCodec,
};
use microbatch::source::Event;

use super::case::JobCase;
use super::kafka::KafkaFeed;
use super::output::{drive_to_output, Grouped, Reduced};
use crate::driver::error::RunError;
use crate::driver::feed::EventFeed;
use crate::driver::input::{open_input, Input};
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{
    JobKind, JobSpec, OutputKind, OutputModeSpec, Profile, Reduction, SourceKind, WindowKind,
};

/// The value column of an [`Event`].
fn value_of(event: &Event) -> u64 {
    event.value
}

/// The key column of an [`Event`].
fn key_of(event: &Event) -> u64 {
    event.key
}

/// Something to do with the aggregator a [`JobSpec`] needs: the one
/// generic step between a profile and monomorphized engine code.
pub trait WithAggregator {
    /// What it gives back.
    type Out;
    /// Does it with `aggregator`.
    fn with<A>(self, aggregator: A) -> Self::Out
    where
        A: Aggregator<Event> + Clone,
        A::State: Clone,
        A::Output: Reduced,
        RkyvSnapshots: TotalsCodec<u64, A::State>;
}

/// Calls `action` with the aggregator `spec` needs.
pub fn with_aggregator<W: WithAggregator>(spec: &JobSpec, action: W) -> W::Out {
    let needs_min_max = spec.wants(Reduction::Min) || spec.wants(Reduction::Max);
    // The function item itself (zero-sized, `Copy`), not a pointer to it:
    // the reductions then inline it instead of calling through a pointer
    // for every record.
    let value = value_of;
    if needs_min_max {
        action.with((count(), sum(value), min(value), max(value)))
    } else {
        action.with((count(), sum(value)))
    }
}

/// Something to do with the engine job a [`JobSpec`] describes.
pub trait WithJob {
    /// What it gives back.
    type Out;
    /// Does it with `job`, whose rows `row` turns into groups.
    fn with<J: Job<Event>>(self, job: J, row: fn(J::Row) -> Grouped) -> Self::Out;
}

/// Calls `action` with the job `spec` describes.
pub fn with_job<W: WithJob>(spec: &JobSpec, action: W) -> W::Out {
    with_job_keyed_by(spec, key_of, action)
}

/// Calls `action` with the job `spec` describes, its records keyed by
/// `key` (a keyed job's).
pub fn with_job_keyed_by<W, K>(spec: &JobSpec, key: K, action: W) -> W::Out
where
    W: WithJob,
    K: Fn(&Event) -> u64 + Copy + Send + Sync + 'static,
{
    struct Build<W, K>(JobKind, OutputModeSpec, W, K);
    impl<W, K> WithAggregator for Build<W, K>
    where
        W: WithJob,
        K: Fn(&Event) -> u64 + Copy + Send + Sync + 'static,
    {
        type Out = W::Out;
        fn with<A>(self, aggregator: A) -> W::Out
        where
            A: Aggregator<Event> + Clone,
            A::State: Clone,
            A::Output: Reduced,
            RkyvSnapshots: TotalsCodec<u64, A::State>,
        {
            let keyed = job::records::<Event>().key_by(self.3);
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
                    job::records::<Event>().aggregate(aggregator),
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

/// The generic `key,value` jobs: `job.kind = "keyed"` or `"global"`.
pub struct EventJobs;

impl JobCase for EventJobs {
    fn kinds(&self) -> &'static [JobKind] {
        &[JobKind::Keyed, JobKind::Global]
    }

    fn check(&self, _: &Profile) -> Result<(), (String, String)> {
        Ok(())
    }

    fn run(&self, runner: Runner<'_>) -> Result<RunOutcome, RunError> {
        if runner.profile.job.window != WindowKind::None {
            return super::windowed::run(runner);
        }
        if runner.profile.workload.source == SourceKind::Kafka {
            return with_job(&runner.profile.job, FromKafka(runner));
        }
        let input = open_input(&runner.profile.workload)?;
        run_with_input(runner, input)
    }

    fn not_comparable(&self) -> Option<&'static str> {
        None
    }
}

/// Runs the event job of `runner`'s profile over `input` (the workload's,
/// or records prepared beforehand).
pub(crate) fn run_with_input(runner: Runner<'_>, input: Input) -> Result<RunOutcome, RunError> {
    let profile = runner.profile;
    with_job(&profile.job, RunJob { runner, input })
}

/// A run of the CLI's generic `key,value` records from a Kafka topic.
struct FromKafka<'a>(Runner<'a>);

impl WithJob for FromKafka<'_> {
    type Out = Result<RunOutcome, RunError>;

    fn with<J: Job<Event>>(self, job: J, row: fn(J::Row) -> Grouped) -> Self::Out {
        let runner = self.0;
        if runner.profile.output.kind == OutputKind::Postgres {
            return super::postgres::drive_to_postgres(runner, job, row);
        }
        let feed = KafkaFeed::<Event>::connect(&runner)?;
        let keyed = runner.profile.job.kind == JobKind::Keyed;
        drive_to_output(runner, job, feed, row, keyed, false)
    }
}

/// A run of the CLI's generic `key,value` records.
struct RunJob<'a> {
    runner: Runner<'a>,
    input: Input,
}

impl WithJob for RunJob<'_> {
    type Out = Result<RunOutcome, RunError>;

    fn with<J: Job<Event>>(self, job: J, row: fn(J::Row) -> Grouped) -> Self::Out {
        let RunJob { runner, input } = self;
        let keyed = runner.profile.job.kind == JobKind::Keyed;
        drive_to_output(runner, job, EventFeed(Some(input)), row, keyed, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::output::{OutRow, Wanted};
    use microbatch::job::Parts;

    /// Folds `events` through the job `spec` describes, on one part.
    fn reduce(spec: &JobSpec, events: &[Event]) -> Vec<OutRow> {
        reduce_epochs(spec, &[events])
    }

    /// Folds each of `epochs` in turn on one part, as its owner would;
    /// the last epoch's rows.
    fn reduce_epochs(spec: &JobSpec, epochs: &[&[Event]]) -> Vec<OutRow> {
        struct Fold<'a>(&'a [&'a [Event]], Wanted);
        impl WithJob for Fold<'_> {
            type Out = Vec<OutRow>;
            fn with<J: Job<Event>>(self, job: J, row: fn(J::Row) -> Grouped) -> Vec<OutRow> {
                let mut totals = job.new_totals();
                let mut rows = Vec::new();
                for events in self.0 {
                    let mut parts: Vec<J::Part> =
                        (0..job.partitions(1)).map(|_| job.new_part()).collect();
                    job.absorb(events, Parts::from(&mut parts));
                    rows.clear();
                    for part in &mut parts {
                        job.finish_with_totals(part, &mut totals, &mut rows);
                    }
                }
                let mut out: Vec<OutRow> = rows.into_iter().map(|r| self.1.row(row(r))).collect();
                out.sort_by_key(|r| r.key);
                out
            }
        }
        with_job(spec, Fold(epochs, Wanted::of(spec)))
    }

    fn events() -> Vec<Event> {
        [(1, 10), (2, 5), (1, 30), (2, 7), (1, 2)]
            .into_iter()
            .map(|(key, value)| Event { key, value })
            .collect()
    }

    #[test]
    fn keyed_rows_carry_the_key_and_the_columns_asked_for() {
        let spec = JobSpec {
            kind: JobKind::Keyed,
            reductions: vec![Reduction::Count, Reduction::Mean, Reduction::Max],
            output_mode: OutputModeSpec::Epoch,
            ..JobSpec::default()
        };
        let rows = reduce(&spec, &events());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].key, Some(1));
        assert_eq!(rows[0].count, Some(3));
        assert_eq!(rows[0].mean, Some(14.0));
        assert_eq!(rows[0].max, Some(30));
        assert_eq!((rows[0].sum, rows[0].min), (None, None));
        assert_eq!(rows[1].max, Some(7));
    }

    #[test]
    fn running_modes_carry_totals_since_the_start() {
        let events = events();
        let later = [Event { key: 1, value: 8 }];
        let epochs: [&[Event]; 2] = [&events, &later];
        let spec = |output_mode| JobSpec {
            kind: JobKind::Keyed,
            reductions: vec![Reduction::Count, Reduction::Sum],
            output_mode,
            ..JobSpec::default()
        };
        let counts = |rows: Vec<OutRow>| -> Vec<(Option<u64>, Option<u64>, Option<u64>)> {
            rows.into_iter().map(|r| (r.key, r.count, r.sum)).collect()
        };
        assert_eq!(
            counts(reduce_epochs(&spec(OutputModeSpec::Epoch), &epochs)),
            [(Some(1), Some(1), Some(8))]
        );
        assert_eq!(
            counts(reduce_epochs(&spec(OutputModeSpec::Update), &epochs)),
            [(Some(1), Some(4), Some(50))]
        );
        assert_eq!(
            counts(reduce_epochs(&spec(OutputModeSpec::Complete), &epochs)),
            [(Some(1), Some(4), Some(50)), (Some(2), Some(2), Some(12))]
        );
    }

    #[test]
    fn a_global_row_has_no_key() {
        let spec = JobSpec {
            kind: JobKind::Global,
            reductions: vec![Reduction::Sum, Reduction::Min],
            output_mode: OutputModeSpec::Epoch,
            ..JobSpec::default()
        };
        let rows = reduce(&spec, &events());
        assert_eq!(
            rows,
            vec![OutRow {
                window_start_ms: None,
                window_end_ms: None,
                key: None,
                count: None,
                sum: Some(54),
                min: Some(2),
                max: None,
                mean: None,
                firing: None,
            }]
        );
    }
}
