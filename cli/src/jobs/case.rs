//! What a job registered with the CLI answers.

use crate::driver::error::RunError;
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{JobKind, OutputKind, Profile};

/// A job the CLI can run.
pub trait JobCase: Sync {
    /// The `job.kind` values this case runs.
    fn kinds(&self) -> &'static [JobKind];

    /// What a profile for this job cannot ask for, beyond the checks every
    /// profile gets: the dotted key and what is accepted.
    fn check(&self, profile: &Profile) -> Result<(), (String, String)>;

    /// Runs the profile of `runner` (already checked).
    fn run(&self, runner: Runner<'_>) -> Result<RunOutcome, RunError>;

    /// Whether `microbatch compare` can run it: the four designs compare
    /// the generic `key,value` job. `None` if it can; otherwise why not.
    fn not_comparable(&self) -> Option<&'static str>;
}

/// Refuses producer threads for a job that reads its records in the
/// workers: `why` says so ("the click-stream job reads its clicks in the
/// workers").
pub(crate) fn no_producers(profile: &Profile, why: &str) -> Result<(), (String, String)> {
    let producers = profile.workload.producers;
    if producers == 0 {
        return Ok(());
    }
    Err((
        "workload.producers".into(),
        format!("{producers}, but {why}; accepted: 0"),
    ))
}

/// Refuses every output but SQLite or none for a job whose rows only an
/// SQLite sink of its own takes: `what` says what it writes.
pub(crate) fn sqlite_or_none(profile: &Profile, what: &str) -> Result<(), (String, String)> {
    let kind = profile.output.kind;
    if matches!(kind, OutputKind::None | OutputKind::Sqlite) {
        return Ok(());
    }
    Err((
        "output.kind".into(),
        format!("{kind:?}, but {what}; accepted: \"sqlite\" or \"none\"").to_lowercase(),
    ))
}
