//! The commit protocol of one epoch, on the thread that completes it:
//!
//! 1. under a checkpoint, `offsets/<e>` (where the epoch lies in the log)
//!    and, when one is due, `state/<e>.rkyv` (the running totals) are made
//!    durable;
//! 2. the sink commits the epoch ([`Sink::epoch_complete`]), after being
//!    handed the running totals if it keeps them with its epochs
//!    ([`Sink::stage_state`]);
//! 3. under a checkpoint, `commits/<e>` is made durable.
//!
//! A crash before 2 replays the epoch from its offsets; a crash between 2
//! and 3 writes it again, which the idempotent sinks skip (they record the
//! epochs they committed); after 3 the epoch is never replayed for output.

use super::{Checkpoint, CheckpointError};
use crate::progress::EpochProgress;
use crate::sink::{Sink, SinkError};

/// Which step of [`commit_epoch`] failed.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// Writing the offsets, the state or the commit file.
    Checkpoint(CheckpointError),
    /// The sink's commit.
    Sink(SinkError),
}

/// Commits `progress.epoch` through `sink` and, if there is one, the
/// `checkpoint`, in the protocol's order. `state` gives the owners'
/// encoded totals when a snapshot of the epoch is due (under a checkpoint
/// every few epochs; every epoch for a sink that
/// [keeps state](Sink::keeps_state) of a job with totals,
/// `sink_takes_totals`, which stages them before its commit).
pub(crate) fn commit_epoch<Row: Send + 'static>(
    checkpoint: Option<&Checkpoint>,
    sink: &dyn Sink<Row>,
    progress: &EpochProgress,
    sink_takes_totals: bool,
    state: impl FnOnce() -> Option<Vec<Vec<u8>>>,
) -> Result<(), CommitError> {
    let epoch = progress.epoch;
    let parts = if checkpoint.is_some() || sink_takes_totals {
        state()
    } else {
        None
    };
    if let Some(checkpoint) = checkpoint {
        checkpoint
            .write_offsets(epoch, progress.records)
            .map_err(CommitError::Checkpoint)?;
        if let Some(parts) = &parts {
            checkpoint
                .write_state(epoch, parts)
                .map_err(CommitError::Checkpoint)?;
        }
    }
    if sink_takes_totals {
        let Some(parts) = parts else {
            return Err(CommitError::Sink(SinkError::Custom(format!(
                "the job's running totals after epoch {epoch} were not encoded \
                 (its totals are not snapshotted), so the sink cannot commit them with the epoch"
            ))));
        };
        sink.stage_state(epoch, parts).map_err(CommitError::Sink)?;
    }
    sink.epoch_complete(epoch, progress)
        .map_err(CommitError::Sink)?;
    if let Some(checkpoint) = checkpoint {
        checkpoint
            .write_commit(epoch, progress.rows)
            .map_err(CommitError::Checkpoint)?;
    }
    Ok(())
}
