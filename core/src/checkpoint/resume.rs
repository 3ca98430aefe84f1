//! Where a run under a checkpoint starts, and the totals it starts with.

use super::{Checkpoint, CheckpointError, StateSnapshot};
use crate::error::EngineError;
use crate::job::Job;
use crate::source::EpochPlan;
use crate::{Config, ConfigError};

/// Where a run under `checkpoint` starts, and the snapshot of running
/// totals it starts from, if any. A job with totals resumes after its last
/// snapshot (or from the first epoch) and replays what was committed
/// since; other jobs start after the last commit.
pub(crate) fn resume_plan<R, J: Job<R>>(
    checkpoint: &Checkpoint,
    job: &J,
    config: &Config,
    partitions: usize,
    has_source: bool,
) -> Result<(EpochPlan, Option<StateSnapshot>), EngineError> {
    if let Some(interval) = config.interval {
        return Err(ConfigError::new(
            "interval",
            format!("{interval:?}"),
            "none under a checkpoint: its epochs are cut by log position",
        )
        .into());
    }
    if !has_source {
        return Err(ConfigError::new(
            "checkpoint",
            "without a source",
            "a replayable source (a record log)",
        )
        .into());
    }
    let mut restored = None;
    let first_epoch = if job.keeps_totals() {
        restored =
            checkpoint
                .latest_state(partitions)
                .map_err(|source| EngineError::Checkpoint {
                    epoch: checkpoint.next_epoch(),
                    source,
                })?;
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
) -> Result<Vec<Option<J::Totals>>, EngineError> {
    (0..partitions)
        .map(|partition| {
            job.load_totals(state.part(partition))
                .map(Some)
                .map_err(|message| EngineError::Checkpoint {
                    epoch: state.epoch,
                    source: CheckpointError::Corrupt {
                        path: state.path().to_owned(),
                        message: format!("partition {partition}: {message}"),
                    },
                })
        })
        .collect()
}
