//! A worker's intake: taking records from its lanes and its source into
//! the open batch, stealing when it has nothing of its own, and the final
//! drain at shutdown. Hot path: [`Worker::take_input`].

use std::time::Instant;

use super::{Phase, Worker};
use crate::error::EngineError;
use crate::fault::{self, Recovered, Unrecovered};
use crate::input::CHUNK;
use crate::job::{Job, Placement};
use crate::source::Poll;
use crate::sync::Ordering;

impl<R: Send + 'static, J: Job<R>> Worker<R, J> {
    /// Takes up to a chunk from each ring and from the source, within the
    /// open batch's room. Returns whether anything was taken.
    pub(super) fn take_input(&mut self) -> Result<bool, EngineError> {
        if self.phase == Phase::Running && self.lanes.poll_closed() {
            self.phase = Phase::Draining;
        }
        let planned = self.runtime.planned;
        // A planned source cuts the epochs itself: no per-worker bound.
        let room = match self.runtime.config.max_batch_records {
            Some(limit) if !planned => limit.saturating_sub(self.open_records),
            _ => u64::MAX,
        };
        let started = Instant::now();
        let now = self.runtime.now_micros();
        let epoch = self.open_epoch;
        // Hot path: chunks of the rings folded in place.
        let round = self.lanes.take(
            room,
            epoch,
            self.open
                .ring_runs(&self.runtime.job, self.runtime.panic_handler.as_ref(), now),
        );
        self.open_backlog = self.open_backlog.max(round.backlog);
        let mut budget = room - round.records;
        // A draining planned source still hands out the rest of the open
        // epoch, all of it due at once (a replay rate does not hold up the
        // shutdown): the last epoch ends where the plan ends it.
        if self.phase == Phase::Running && budget > 0 {
            self.poll_source(now, now, &mut budget);
        } else if planned && self.phase == Phase::Draining && !self.epoch_end {
            self.poll_source(u64::MAX, now, &mut budget);
        }
        let runtime = &*self.runtime;
        let handler = runtime.panic_handler.as_ref();
        if self.phase == Phase::Running
            && budget == room
            && room > 0
            && runtime.config.work_stealing
            && runtime.workers > 1
        {
            // Nothing of its own: help a worker whose rings hold records.
            let stolen = self.lanes.steal(
                budget,
                epoch,
                self.open.ring_runs(&runtime.job, handler, now),
            );
            budget -= stolen;
            self.open_stolen += stolen;
        }
        let taken = room - budget;
        self.open_records += taken;
        if self.open.retained.has_failed() {
            self.recover_batch()?;
        }
        if taken > 0 {
            self.open_reduce += started.elapsed();
            // Live count for `Progress::records_taken`: one store to this
            // worker's own cache line per run taken, not per record.
            self.runtime.taken[self.id].store(
                self.taken_total + self.open_records + self.open_dead,
                Ordering::Relaxed,
            );
        } else if self.phase == Phase::Draining
            && room > 0
            && !round.skipped
            && (!self.runtime.planned || self.source.is_none() || self.epoch_end)
        {
            // Every ring was visited with room to spare and found empty.
            self.finish_intake();
        }
        Ok(taken > 0)
    }

    /// User code panicked on the open batch: rebuild its parts by the
    /// panic policy, or fail. The failure path.
    pub(super) fn recover_batch(&mut self) -> Result<(), EngineError> {
        let Some(handler) = self.runtime.panic_handler.as_ref() else {
            return Ok(());
        };
        let (epoch, worker) = (self.open_epoch, self.id);
        // The batch is folded again into new parts, which are partitioned.
        self.placement = Placement::Partitioned;
        let open = &mut self.open;
        match fault::recover(
            &self.runtime.job,
            &mut open.parts,
            handler,
            &mut open.retained,
            epoch,
            worker,
        ) {
            Ok(Recovered::Retried) => Ok(()),
            Ok(Recovered::Quarantined(records)) => {
                self.open_records -= records;
                self.open_dead += records;
                Ok(())
            }
            Err(Unrecovered::Panicked { attempts, message }) => Err(EngineError::BatchPanicked {
                epoch,
                worker,
                attempts,
                message,
            }),
            Err(Unrecovered::DeadLetters { path, message }) => Err(EngineError::DeadLetters {
                epoch,
                path,
                message,
            }),
        }
    }

    /// Polls the source as if it were `due_now` (µs since the start; later
    /// than `now` to take records before they are due).
    fn poll_source(&mut self, due_now: u64, now: u64, budget: &mut u64) {
        let Some(source) = self.source.as_mut() else {
            return;
        };
        let max = CHUNK.min(*budget as usize);
        // Hot path: a log source lends its records in place.
        let (poll, records) = source.poll_lent(due_now, &mut self.source_buffer, max);
        match poll {
            Poll::Ready { intended_micros } => {
                let taken = records.len().min(max);
                self.open.fold_run(
                    &self.runtime.job,
                    self.runtime.panic_handler.as_ref(),
                    &records[..taken],
                    intended_micros.unwrap_or(now).min(now),
                );
                *budget -= taken as u64;
            }
            Poll::Idle => {}
            Poll::EpochEnd => self.epoch_end = true,
            Poll::Exhausted => {
                self.spent_source = self.source.take();
                self.runtime.source_ended();
            }
            Poll::Failed => {
                let message = source.error();
                self.source = None;
                self.runtime.source_ended();
                self.runtime.fail(EngineError::Source {
                    worker: self.id,
                    epoch: self.open_epoch,
                    message,
                });
            }
        }
    }

    /// Folds in what the source owes the epoch being sealed (the rest of a
    /// planned block). Once per epoch.
    pub(super) fn take_owed(&mut self, now: u64) {
        let Some(source) = self.source.as_mut() else {
            return;
        };
        self.source_buffer.clear();
        source.seal(&mut self.source_buffer);
        if !self.source_buffer.is_empty() {
            let owed = self.source_buffer.len() as u64;
            self.open.fold_run(
                &self.runtime.job,
                self.runtime.panic_handler.as_ref(),
                &self.source_buffer,
                now,
            );
            self.open_records += owed;
        }
    }

    /// The final drain is done: hand every ring back to its lane (so that a
    /// producer racing with shutdown can take back what it pushed), tell
    /// the producers, and count this worker as drained.
    fn finish_intake(&mut self) {
        self.release_intake();
        self.phase = Phase::Drained;
        if let Some(source) = self.source.take() {
            self.spent_source = Some(source);
            self.runtime.source_ended();
        }
        let drained = self.runtime.drained.fetch_add(1, Ordering::AcqRel) + 1;
        self.seals_final = drained == self.runtime.workers;
    }

    /// Hands the rings back to the producers; see [`LaneReader::release`](crate::input::LaneReader::release).
    pub(super) fn release_intake(&mut self) {
        self.lanes.release();
    }
}
