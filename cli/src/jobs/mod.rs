//! The jobs the CLI can run, behind one registry: each is a [`JobCase`]
//! registered in [`CASES`] under the `job.kind` values it answers, and
//! knows what a profile for it cannot ask for, how to run it, and whether
//! `compare` can run it. Adding a job is adding a case here.
//!
//! - [`build`]: a profile's `[job]` keys made a job over records of a
//!   type known at compile time, the one generic step.
//! - [`event`]: the generic `key,value` jobs (`keyed`, `global`), with the
//!   reductions a profile names; with a `job.window`, over event-time
//!   windows of timed records (`windowed`). [`output`]: where their rows
//!   go.
//! - [`clickstream`]: the worked case (`clickstream`), its own record
//!   type, generator, job and three-table SQLite sink.
//! - [`nexmark`]: the Nexmark queries (`nexmark`) over Nexmark's events.
//! - `kafka`: a Kafka topic as the feed of the first two, and a Kafka
//!   topic as an output; the sink says where a run resumes.

pub mod build;
pub(crate) mod case;
pub mod clickstream;
pub mod event;
pub mod expired;
pub(crate) mod kafka;
mod morsels;
pub mod nexmark;
pub mod output;
mod postgres;
mod queries;
mod windowed;

pub use self::case::JobCase;
use crate::driver::error::RunError;
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::JobKind;

/// Every job the CLI can run.
pub static CASES: &[&dyn JobCase] = &[
    &event::EventJobs,
    &clickstream::Clickstream,
    &nexmark::Nexmark,
];

/// Runs `runner`'s profile: its `[[queries]]`, or the case of its
/// `job.kind`.
pub fn run_profile(runner: Runner<'_>) -> Result<RunOutcome, RunError> {
    if runner.profile.queries.is_empty() {
        case_of(runner.profile.job.kind).run(runner)
    } else {
        queries::run(runner)
    }
}

/// The case that runs `kind`.
pub fn case_of(kind: JobKind) -> &'static dyn JobCase {
    CASES
        .iter()
        .copied()
        .find(|case| case.kinds().contains(&kind))
        .unwrap_or_else(|| panic!("no job case registered for {kind:?}: add one to CASES"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_kind_has_exactly_one_case() {
        for kind in [
            JobKind::Keyed,
            JobKind::Global,
            JobKind::Clickstream,
            JobKind::Nexmark,
        ] {
            let cases = CASES
                .iter()
                .filter(|case| case.kinds().contains(&kind))
                .count();
            assert_eq!(cases, 1, "{kind:?}");
        }
    }
}
