//! The owner side of a partition: merging the parts of each epoch that
//! arrive from every worker (its own included), and emitting each epoch
//! whose parts are all in, oldest first, to the sink; the owner that emits
//! an epoch's last partition completes the epoch.

use std::time::{Duration, Instant};

use super::Worker;
use crate::checkpoint::CheckpointError;
use crate::epoch::slot::keep_max;
use crate::error::EngineError;
use crate::job::{EpochTime, Job};
use crate::shuffle::{Endpoint, Message};
use crate::sync::Ordering;

/// An epoch the owner is gathering parts for.
pub(super) struct Pending<P> {
    epoch: u64,
    merged: P,
    /// Parts merged so far, out of W.
    parts: usize,
    /// When this worker sealed its own part of the epoch.
    pub(super) own_seal: Option<Instant>,
    merge_time: Duration,
}

impl<R: Send + 'static, J: Job<R>> Worker<R, J> {
    /// Merges a part of `epoch` of this worker's partition, from worker
    /// `from` (`None`: from itself), then recycles the emptied part.
    pub(super) fn accept(&mut self, epoch: u64, from: Option<usize>, mut part: J::Part) {
        let started = Instant::now();
        let index = (epoch - self.next_emit) as usize;
        while self.pending.len() <= index {
            let epoch = self.next_emit + self.pending.len() as u64;
            let merged = fresh_part(&mut self.shuffle, &mut self.spare, &self.runtime.job);
            self.pending.push_back(Pending {
                epoch,
                merged,
                parts: 0,
                own_seal: None,
                merge_time: Duration::ZERO,
            });
        }
        let pending = &mut self.pending[index];
        self.runtime.job.merge(&mut pending.merged, &mut part);
        pending.parts += 1;
        match from {
            None => pending.own_seal = Some(started),
            Some(_) => pending.merge_time += started.elapsed(),
        }
        let back = match from {
            Some(from) => self
                .shuffle
                .give_back(from, Message { epoch, part })
                .err()
                .map(|m| m.part),
            None => Some(part),
        };
        self.spare.extend(back);
    }

    /// Merges every part waiting in this worker's inboxes.
    pub(super) fn drain_inbox(&mut self) -> bool {
        let mut any = false;
        while let Some((from, message)) = self.shuffle.try_recv() {
            self.accept(message.epoch, Some(from), message.part);
            any = true;
        }
        any
    }

    /// Emits every epoch of this worker's partition whose parts are all in,
    /// oldest first.
    pub(super) fn emit_ready(&mut self) -> Result<bool, EngineError> {
        let workers = self.runtime.workers;
        let mut any = false;
        while self.pending.front().is_some_and(|p| p.parts == workers) {
            let Some(pending) = self.pending.pop_front() else {
                break;
            };
            self.emit(pending)?;
            any = true;
        }
        Ok(any)
    }

    /// Finishes a complete epoch of this worker's partition into rows,
    /// writes them to the sink, reports to the epoch's slot and, as the
    /// epoch's last owner, completes the epoch.
    fn emit(&mut self, mut pending: Pending<J::Part>) -> Result<(), EngineError> {
        let epoch = pending.epoch;
        self.emitting = Some(epoch);
        let time = self.epoch_time(epoch);
        let runtime = &*self.runtime;
        let shuffle_wait = pending.own_seal.map(|t| t.elapsed()).unwrap_or_default();
        runtime
            .job
            .hot_keys(&mut pending.merged, &mut self.hot_keys);
        if runtime.job.salts() {
            // Salted keys are finished once, from every owner's share.
            let mut share = fresh_part(&mut self.shuffle, &mut self.spare, &runtime.job);
            if runtime.job.take_salted(&mut pending.merged, &mut share) {
                self.spare
                    .extend(runtime.salted.deposit(&runtime.job, epoch, share));
            } else {
                self.spare.push(share);
            }
        }
        runtime
            .job
            .finish_at(&mut pending.merged, &mut self.totals, &mut self.rows, time);
        let late = runtime.job.take_late(&mut pending.merged);
        let open = runtime.job.open_state(&self.totals);
        self.spare.push(pending.merged);
        let state = self.save_totals(epoch)?;
        let runtime = &*self.runtime;
        let mut rows = self.rows.len() as u64;
        let mut windows = runtime.job.windows_in(&self.rows);
        let started = Instant::now();
        if !runtime.has_output(epoch) {
            // A replayed epoch, committed before the restart: its rows
            // rebuild the totals and go nowhere, so they are not counted.
            self.rows.clear();
            (rows, windows) = (0, 0);
        } else if rows > 0 {
            runtime
                .sink
                .write(epoch, self.id, &mut self.rows)
                .map_err(|source| EngineError::Sink { epoch, source })?;
            self.rows.clear();
        }
        let sink_time = started.elapsed();
        let partitions = runtime.partitions;
        let complete = runtime.with_slot(epoch, |slot| {
            slot.rows += rows;
            slot.late_records += late;
            slot.open_windows += open;
            slot.windows_emitted += windows;
            slot.frontier = time.frontier;
            slot.hot_keys.append(&mut self.hot_keys);
            keep_max(&mut slot.durations.shuffle_wait, shuffle_wait);
            keep_max(&mut slot.durations.merge, pending.merge_time);
            keep_max(&mut slot.durations.sink, sink_time);
            slot.state_parts[self.id] = state;
            slot.owners_done += 1;
            slot.owners_done == partitions
        });
        if complete {
            runtime.complete_epoch(epoch)?;
        }
        runtime.clock.mark_emitted(self.id, epoch);
        self.next_emit += 1;
        self.emitting = None;
        Ok(())
    }

    /// Where event time stands for `epoch`: the least newest event time
    /// over the workers that are not idle (all of them if every one is),
    /// `None` while one of those has folded none; never back from what
    /// this owner finished the last epoch at. Every owner reads the same
    /// figures from the epoch's slot, so all finish it at the same
    /// frontier. Once per partition and epoch.
    ///
    /// Under a checkpoint the epochs are prefixes of one log, cut by
    /// position, but which worker reads which block of an epoch is not
    /// fixed: the frontier is then the newest event time over every
    /// worker, the same in a replay as in the first run, so a resumed
    /// run closes each window in the epoch the first run did.
    fn epoch_time(&mut self, epoch: u64) -> EpochTime {
        let runtime = &*self.runtime;
        let planned = runtime.planned;
        let (frontier, sealed, records) = runtime.with_slot(epoch, |slot| {
            let times = &slot.event_times;
            let active = times.iter().filter(|(_, idle)| !idle);
            let frontier = if planned || times.iter().all(|(_, idle)| *idle) {
                times.iter().filter_map(|(newest, _)| *newest).max()
            } else {
                active.map(|(newest, _)| *newest).min().flatten()
            };
            (frontier, slot.sealed_micros, slot.records.iter().sum())
        });
        self.frontier = self.frontier.max(frontier);
        if let Some(frontier) = self.frontier {
            runtime.frontier.fetch_max(frontier + 1, Ordering::AcqRel);
        }
        // A run whose sink keeps the open windows with its epochs pauses at
        // its end, to be resumed: its windows stay open, as they would in a
        // run never stopped.
        let closes_all =
            runtime.final_epoch.load(Ordering::Acquire) == epoch && !runtime.sink.keeps_state();
        EpochTime {
            frontier: self.frontier,
            last: closes_all,
            epoch,
            partitions: runtime.partitions,
            partition: self.id,
            sealed_at: Some(runtime.start + Duration::from_micros(sealed)),
            records,
        }
    }

    /// This partition's totals after `epoch`, encoded, if a snapshot is
    /// due. Every few epochs; it allocates.
    fn save_totals(&mut self, epoch: u64) -> Result<Option<Vec<u8>>, EngineError> {
        if !self.runtime.snapshot_due(epoch) {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        match self.runtime.job.save_totals(&self.totals, &mut bytes) {
            Ok(true) => Ok(Some(bytes)),
            Ok(false) => Ok(None),
            Err(message) => Err(EngineError::Checkpoint {
                epoch,
                source: CheckpointError::Unusable(format!(
                    "the totals of partition {} cannot be saved: {message}",
                    self.id
                )),
            }),
        }
    }
}

/// A recycled part if one came back or is spare, else a new one (only
/// while the pool warms up).
pub(super) fn fresh_part<R, J: Job<R>>(
    shuffle: &mut Endpoint<Message<J::Part>>,
    spare: &mut Vec<J::Part>,
    job: &J,
) -> J::Part {
    if let Some(message) = shuffle.reclaim() {
        return message.part;
    }
    spare.pop().unwrap_or_else(|| job.new_part())
}
