//! Where a run under a checkpoint starts, and the totals it starts with.

use super::{Checkpoint, CheckpointError, StateSnapshot};
use crate::job::Job;
use crate::source::EpochPlan;

/// Where a run under `checkpoint` starts, and the snapshot of running
/// totals it starts from, if any. A job with totals resumes after its last
/// snapshot (or from the first epoch) and replays what was committed
/// since; other jobs start after the last commit.
pub(crate) fn resume_plan<R, J: Job<R>>(
    checkpoint: &Checkpoint,
    job: &J,
    partitions: usize,
) -> Result<(EpochPlan, Option<StateSnapshot>), CheckpointError> {
    let mut restored = None;
    let first_epoch = if job.keeps_totals() {
        restored = checkpoint.latest_state(partitions)?;
        restored.as_ref().map_or(0, |state| state.epoch + 1)
    } else {
        checkpoint.next_epoch()
    };
    let plan = EpochPlan {
        records_per_epoch: checkpoint.records_per_epoch(),
        first_epoch,
        paced_from: checkpoint.next_epoch(),
    };
    Ok((plan, restored))
}

/// Each partition's totals, loaded from `state`.
pub(crate) fn restore_totals<R, J: Job<R>>(
    job: &J,
    state: &StateSnapshot,
    partitions: usize,
) -> Result<Vec<Option<J::Totals>>, CheckpointError> {
    (0..partitions)
        .map(|partition| {
            job.load_totals(state.part(partition))
                .map(Some)
                .map_err(|message| CheckpointError::Corrupt {
                    path: state.path().to_owned(),
                    message: format!("partition {partition}: {message}"),
                })
        })
        .collect()
}
