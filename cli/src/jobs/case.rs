//! What a job registered with the CLI answers.

use crate::driver::error::RunError;
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{JobKind, Profile};

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
