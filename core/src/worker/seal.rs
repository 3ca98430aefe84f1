//! Where an epoch is sealed: a worker fires a trigger (its batch is full,
//! the interval ran out, or shutdown) and advances the epoch clock, or
//! observes that another worker did; either way it seals its open batch as
//! the old epoch, reports the batch's figures to the epoch's slot and sends
//! each partition's part to its owner through the shuffle.

use std::time::{Duration, Instant};

use super::owner::fresh_part;
use super::{Phase, Worker};
use crate::config::PlacementPolicy;
use crate::epoch::clock::Advance;
use crate::epoch::slot::keep_max;
use crate::error::EngineError;
use crate::job::{adaptive_placement, Job, Parts, Placement};
use crate::progress::SealReason;
use crate::shuffle::Message;
use crate::sync::Ordering;

impl<R: Send + 'static, J: Job<R>> Worker<R, J> {
    /// Seals every epoch the clock has moved past.
    pub(super) fn observe_epoch(&mut self, now: u64) -> Result<bool, EngineError> {
        let current = self.runtime.clock.current();
        let moved = self.open_epoch < current;
        while self.open_epoch < current {
            self.seal(now)?;
        }
        Ok(moved)
    }

    /// Advances the clock if this worker's batch is full or the interval
    /// ran out, or, at shutdown, to seal the final epoch.
    pub(super) fn fire_triggers(&mut self, now: u64) -> Result<bool, EngineError> {
        let epoch = self.open_epoch;
        let runtime = &*self.runtime;
        let reason = if self.phase == Phase::Drained {
            if !self.seals_final || runtime.final_epoch.load(Ordering::Acquire) != u64::MAX {
                return Ok(false);
            }
            SealReason::Shutdown
        } else if runtime.planned {
            // The plan's end of the epoch is its only trigger.
            if !(self.epoch_end && self.phase == Phase::Running) {
                return Ok(false);
            }
            SealReason::Count
        } else if runtime
            .config
            .max_batch_records
            .is_some_and(|limit| self.open_records >= limit)
        {
            SealReason::Count
        } else if runtime.clock.interval_expired(epoch, now) {
            SealReason::Interval
        } else {
            return Ok(false);
        };
        // Read before the advance, which records the next epoch's.
        let interval = runtime.clock.interval_of_open(epoch);
        match runtime.clock.try_advance(epoch, now) {
            Advance::Advanced => {
                runtime.with_slot(epoch, |slot| {
                    slot.reason = Some(reason);
                    slot.sealed_micros = now;
                    slot.interval = interval;
                });
                if reason == SealReason::Shutdown {
                    runtime.final_epoch.store(epoch, Ordering::Release);
                }
                self.seal(now)?;
                Ok(true)
            }
            Advance::Lost { .. } => self.observe_epoch(now),
            Advance::WindowFull => Ok(false),
        }
    }

    /// Seals the open epoch: reports its figures, sends each part to its
    /// owner (keeping its own), and opens the next epoch.
    fn seal(&mut self, now: u64) -> Result<(), EngineError> {
        self.take_owed(now);
        if let Some(source) = self.source.as_mut().or(self.spent_source.as_mut()) {
            source.sealed(self.open_epoch);
        }
        if self.open.retained.has_failed() {
            self.recover_batch()?;
        }
        self.open.retained.clear();
        // A combined batch's keys move to their partitions: per key, not
        // per record.
        let started = Instant::now();
        let keys = self.runtime.job.split(Parts::from(&mut self.open.parts));
        if let Some(t) = self
            .runtime
            .job
            .batch_event_time(Parts::from(&mut self.open.parts))
        {
            if self.newest_event < Some(t) {
                self.newest_event = Some(t);
                self.newest_event_at = Instant::now();
            }
        }
        self.open_reduce += started.elapsed();
        self.epoch_end = false;
        let epoch = self.open_epoch;
        self.report_batch(epoch, now, keys);
        self.send_parts(epoch)?;
        self.placement = self
            .runtime
            .job
            .place(Parts::from(&mut self.open.parts), self.placement);
        let frontier = self.runtime.frontier();
        self.runtime
            .job
            .open_batch(Parts::from(&mut self.open.parts), frontier);
        self.open_epoch += 1;
        Ok(())
    }

    /// Puts the sealed batch's figures of `epoch` (which held `keys`
    /// distinct keys) into the epoch's slot, chooses how to fold the next
    /// batch, and resets the open batch's counters.
    fn report_batch(&mut self, epoch: u64, now: u64, keys: usize) {
        let records = std::mem::take(&mut self.open_records);
        let combined = self.placement == Placement::Combined;
        let waited = std::mem::take(&mut self.open_idle);
        let open = std::mem::replace(&mut self.open_since, Instant::now()).elapsed();
        self.placement = self.next_placement(records, keys, waited, open);
        let stolen = std::mem::take(&mut self.open_stolen);
        let dead = std::mem::take(&mut self.open_dead);
        self.taken_total += records + dead;
        self.runtime.taken[self.id].store(self.taken_total, Ordering::Relaxed);
        let reduce = std::mem::take(&mut self.open_reduce);
        let backlog = std::mem::take(&mut self.open_backlog);
        let idle = self
            .runtime
            .job
            .idle_timeout()
            .is_some_and(|timeout| self.newest_event_at.elapsed() > timeout);
        let event_time = (self.newest_event, idle);
        let (id, marks) = (self.id, self.open.arrivals.as_slice());
        self.runtime.with_slot(epoch, |slot| {
            slot.records[id] = records;
            slot.waited[id] = waited;
            slot.stolen += stolen;
            slot.combined += usize::from(combined);
            slot.dead_letters += dead;
            slot.ring_backlog = slot.ring_backlog.max(backlog);
            slot.event_times[id] = event_time;
            keep_max(&mut slot.durations.reduce, reduce);
            slot.marks.extend_from_slice(marks);
            if slot.sealed_micros == 0 {
                slot.sealed_micros = now;
            }
        });
        self.open.arrivals.clear();
    }

    /// Sends each partition's part of `epoch` to its owner and merges its
    /// own; the open batch gets fresh (recycled) parts. Messages that arrive
    /// while a send waits for room are merged after the sends.
    fn send_parts(&mut self, epoch: u64) -> Result<(), EngineError> {
        for partition in 0..self.runtime.partitions {
            let fresh = fresh_part(&mut self.shuffle, &mut self.spare, &self.runtime.job);
            let mut part = std::mem::replace(&mut self.open.parts[partition], fresh);
            // A drained worker's epoch may be the last: it keeps nothing back.
            if self.phase != Phase::Drained {
                let open = &mut self.open.parts[partition];
                self.runtime.job.carry(epoch, &mut part, open);
            }
            if partition == self.id {
                self.accept(epoch, None, part);
            } else {
                let deferred = &mut self.deferred;
                let sent =
                    self.shuffle
                        .send(partition, Message { epoch, part }, |from, message| {
                            deferred.push((from, message));
                        });
                if sent.is_err() && !self.runtime.has_failed() {
                    return Err(EngineError::WorkerPanicked {
                        worker: partition,
                        epoch: None,
                        message: "left the shuffle mesh early".into(),
                    });
                }
            }
        }
        if !self.owns_partition() {
            self.runtime.clock.mark_emitted(self.id, epoch);
        }
        while let Some((from, message)) = self.deferred.pop() {
            self.accept(message.epoch, Some(from), message.part);
        }
        Ok(())
    }

    /// How to fold the next batch, from the one being sealed, which took
    /// `records` records of `keys` distinct keys and was open for `open`,
    /// `idle` of it waiting: the policy's, or under the adaptive one
    /// [`adaptive_placement`]'s choice.
    fn next_placement(
        &self,
        records: u64,
        keys: usize,
        idle: Duration,
        open: Duration,
    ) -> Placement {
        match self.runtime.config.placement {
            PlacementPolicy::Partitioned => return Placement::Partitioned,
            PlacementPolicy::Combined => return Placement::Combined,
            PlacementPolicy::Adaptive => {}
        }
        adaptive_placement(records, keys, idle, open)
    }
}
