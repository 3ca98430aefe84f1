//! `microbatch run`: one profile, through the job registry.

use crate::driver::error::RunError;
use crate::driver::input::Input;
use crate::driver::{Observer, RunFiles, RunOutcome, Runner};
use crate::jobs::{event, run_profile};
use crate::profile::schema::{JobKind, Profile};

/// Runs `profile`; `name` labels the report.
pub fn run(
    profile: &Profile,
    name: &str,
    files: &RunFiles,
    observer: &mut dyn Observer,
) -> Result<RunOutcome, RunError> {
    let runner = Runner::new(profile, name, files, observer);
    run_profile(runner)
}

/// Runs `profile`, a generic `key,value` job, on `input` instead of the
/// one its workload names, e.g. records generated into memory beforehand
/// so that the run measures the engine without the generator's cost.
pub fn run_with_input(
    profile: &Profile,
    name: &str,
    files: &RunFiles,
    observer: &mut dyn Observer,
    input: Input,
) -> Result<RunOutcome, RunError> {
    if profile.job.kind == JobKind::Clickstream {
        return Err(RunError::Unsupported(
            "records prepared in memory are `key,value` events; the click-stream job reads clicks"
                .into(),
        ));
    }
    let runner = Runner::new(profile, name, files, observer);
    event::run_with_input(runner, input)
}
