//! The generic `key,value` jobs (`job.kind = "keyed"` or `"global"`) as a
//! registered case: built by `build.rs`, run over the workload's records
//! (or, with a window, by `windowed.rs`); where their rows go is `output`.

use microbatch::job::Job;
use microbatch::source::Event;

pub use super::build::{
    with_aggregator, with_job, with_job_keyed_by, KeyValue, WithAggregator, WithJob,
};
use super::case::JobCase;
use super::kafka::KafkaFeed;
use super::output::{drive_to_output, Grouped};
use crate::driver::error::RunError;
use crate::driver::feed::EventFeed;
use crate::driver::input::{open_input, Input};
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{JobKind, OutputKind, Profile, SourceKind, WindowKind};

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

impl WithJob<Event> for FromKafka<'_> {
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

impl WithJob<Event> for RunJob<'_> {
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
    use crate::profile::schema::{JobSpec, OutputModeSpec, Reduction};
    use microbatch::job::Parts;

    /// Folds `events` through the job `spec` describes, on one part.
    fn reduce(spec: &JobSpec, events: &[Event]) -> Vec<OutRow> {
        reduce_epochs(spec, &[events])
    }

    /// Folds each of `epochs` in turn on one part, as its owner would;
    /// the last epoch's rows.
    fn reduce_epochs(spec: &JobSpec, epochs: &[&[Event]]) -> Vec<OutRow> {
        struct Fold<'a>(&'a [&'a [Event]], Wanted);
        impl WithJob<Event> for Fold<'_> {
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
