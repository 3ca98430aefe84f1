//! The worker loop: take records in from rings and sources, fold them into
//! the open epoch's parts, seal when the clock moves, send each part to its
//! owner, merge the parts it owns and emit complete epochs.
//!
//! Hot path: [`Worker::take_input`] (ring chunk → `Job::absorb`). The rest
//! runs once per epoch or when idle.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{keep_max, Shared};
use crate::epoch::Advance;
use crate::error::EngineError;
use crate::input::{Inputs, CHUNK};
use crate::job::{adaptive_placement, Job, Placement};
use crate::mesh::Endpoint;
use crate::progress::{HotKey, Marks, SealReason};
use crate::recovery::{self, Batch, Keeper, Recovered, Unrecovered};
use crate::source::{Poll, Source};
use crate::sync::wait::Idle;
use crate::sync::Ordering;
use crate::{IdleStrategy, PlacementPolicy};

/// The most an idle worker spins (instead of parking) before its epoch's
/// interval runs out, in µs; see [`Worker::due_soon`].
const SPIN_BEFORE_DEADLINE_MICROS: u64 = 1_000;

/// A part on its way from its sender to the owner of its partition.
pub(crate) struct Message<P> {
    epoch: u64,
    part: P,
}

/// An epoch the owner is gathering parts for.
struct Pending<P> {
    epoch: u64,
    merged: P,
    /// Parts merged so far, out of W.
    parts: usize,
    /// When this worker sealed its own part of the epoch.
    own_seal: Option<Instant>,
    merge_time: Duration,
}

/// Where the worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Taking records in.
    Running,
    /// The engine closed: taking in what is left in the rings.
    Draining,
    /// Nothing more to take in.
    Drained,
}

pub(crate) struct Worker<R, J: Job<R>> {
    id: usize,
    shared: Arc<Shared<R, J>>,
    mesh: Endpoint<Message<J::Part>>,
    inputs: Inputs<R>,
    source: Option<Box<dyn Source<R>>>,
    source_buffer: Vec<R>,
    /// The open epoch's parts, one per partition.
    parts: Vec<J::Part>,
    /// Emptied parts kept for reuse.
    spare: Vec<J::Part>,
    open_epoch: u64,
    open_records: u64,
    /// Of `open_records`, those taken from other workers' rings.
    open_stolen: u64,
    /// Records of the open batch quarantined as dead letters (not in
    /// `open_records`).
    open_dead: u64,
    /// The open batch's retained input, under a panic policy.
    batch: Batch<R>,
    open_reduce: Duration,
    /// Time this worker spent waiting (no input, or no room) in the open
    /// batch: spinning, yielding or parked.
    open_idle: Duration,
    /// When the open batch opened (this worker's previous seal).
    open_since: Instant,
    /// How the open batch is folded.
    placement: Placement,
    taken_total: u64,
    marks: Marks,
    /// Epochs of this worker's partition not yet emitted, oldest first;
    /// empty for a worker that owns no partition.
    pending: VecDeque<Pending<J::Part>>,
    /// The oldest epoch this worker has not emitted.
    next_emit: u64,
    rows: Vec<J::Row>,
    /// The owned partition's running totals, across epochs.
    totals: J::Totals,
    /// The owned partition's hot keys of the epoch being emitted.
    hot_keys: Vec<HotKey>,
    /// Messages that arrived while a send waited for room.
    deferred: Vec<(usize, Message<J::Part>)>,
    phase: Phase,
    /// This worker's drain completed the set: it seals the final epoch.
    seals_final: bool,
    /// A planned source handed out all of the open epoch's records.
    epoch_end: bool,
    idle: Idle,
}

impl<R: Send + 'static, J: Job<R>> Worker<R, J> {
    pub(crate) fn new(
        id: usize,
        shared: Arc<Shared<R, J>>,
        mesh: Endpoint<Message<J::Part>>,
        source: Option<Box<dyn Source<R>>>,
        totals: Option<J::Totals>,
    ) -> Self {
        let workers = shared.workers;
        let window = shared.config.max_epochs_in_flight;
        let mut parts: Vec<J::Part> = (0..shared.partitions)
            .map(|_| shared.job.new_part())
            .collect();
        // Adaptive workers start partitioned, knowing nothing of the stream.
        let placement = match shared.config.placement {
            PlacementPolicy::Combined => Placement::Combined,
            _ => Placement::Partitioned,
        };
        let placement = shared.job.place(&mut parts, placement);
        let idle = match shared.config.idle {
            IdleStrategy::Backoff => Idle::new(),
            IdleStrategy::Yield => Idle::yielding(),
        };
        Worker {
            id,
            mesh,
            inputs: Inputs::new(id, crate::sync::Arc::clone(&shared.intake)),
            source_buffer: Vec::with_capacity(if source.is_some() { CHUNK } else { 0 }),
            source,
            parts,
            spare: Vec::with_capacity(2 * workers * (window + 1)),
            open_epoch: shared.first_epoch,
            open_records: 0,
            open_stolen: 0,
            open_dead: 0,
            batch: Batch::new(),
            open_reduce: Duration::ZERO,
            open_idle: Duration::ZERO,
            open_since: Instant::now(),
            placement,
            taken_total: 0,
            marks: Marks::new(),
            pending: VecDeque::with_capacity(window + 1),
            next_emit: shared.first_epoch,
            rows: Vec::new(),
            totals: totals.unwrap_or_else(|| shared.job.new_totals()),
            hot_keys: Vec::new(),
            deferred: Vec::with_capacity(workers * (2 * window + 1)),
            phase: Phase::Running,
            seals_final: false,
            epoch_end: false,
            idle,
            shared,
        }
    }

    fn owns_partition(&self) -> bool {
        self.id < self.shared.partitions
    }

    /// Runs until the final epoch is out, or the engine failed.
    pub(crate) fn run(&mut self) -> Result<(), EngineError> {
        loop {
            if self.shared.has_failed() {
                return Ok(());
            }
            let mut busy = false;
            if self.phase != Phase::Drained {
                busy |= self.take_input()?;
            }
            let now = self.shared.now_micros();
            busy |= self.observe_epoch(now)?;
            busy |= self.fire_triggers(now)?;
            busy |= self.drain_inbox();
            busy |= self.emit_ready()?;
            if self.is_done() {
                return Ok(());
            }
            if busy {
                self.idle.reset();
            } else {
                // Idle path: two clock reads per wait are nothing here.
                let waited = Instant::now();
                if self.inputs.take_missed_claim() || self.due_soon(now) {
                    self.idle.snooze();
                } else {
                    self.idle.step();
                }
                self.open_idle += waited.elapsed();
            }
        }
    }

    /// Whether this idle worker has something due too soon to risk a park,
    /// whose wake-up can come late on a busy or virtual machine: parts of
    /// an epoch it owns and has sealed its own part of, or the end of the
    /// open epoch's interval within a tenth of the interval (at most
    /// [`SPIN_BEFORE_DEADLINE_MICROS`]). Every worker is then awake when
    /// the interval runs out, so the seal and the shuffle are not held up
    /// by a sleeper; spinning costs at most a tenth of the idle time.
    fn due_soon(&self, now: u64) -> bool {
        if self.pending.front().is_some_and(|p| p.own_seal.is_some()) {
            return true;
        }
        let (Some(interval), Some(left)) = (
            self.shared.config.interval,
            self.shared
                .clock
                .micros_until_deadline(self.open_epoch, now),
        ) else {
            return false;
        };
        let margin = (interval.as_micros() / 10).min(u128::from(SPIN_BEFORE_DEADLINE_MICROS));
        u128::from(left) <= margin
    }

    /// Takes up to a chunk from each ring and from the source, within the
    /// open batch's room. Returns whether anything was taken.
    fn take_input(&mut self) -> Result<bool, EngineError> {
        if self.phase == Phase::Running && self.inputs.poll_closed() {
            self.phase = Phase::Draining;
        }
        // A planned source cuts the epochs itself: no per-worker bound.
        let room = match self.shared.config.max_batch_records {
            Some(limit) if !self.shared.planned => limit.saturating_sub(self.open_records),
            _ => u64::MAX,
        };
        let started = Instant::now();
        let now = self.shared.now_micros();
        let epoch = self.open_epoch;
        // Hot path: chunks of the rings folded in place.
        let round = self.inputs.take(
            room,
            epoch,
            absorber(
                &self.shared.job,
                &mut self.parts,
                self.shared.keeper.as_ref(),
                &mut self.batch,
                &mut self.marks,
                now,
            ),
        );
        let mut budget = room - round.records;
        // A draining planned source still hands out the rest of the open
        // epoch, all of it due at once (a replay rate does not hold up the
        // shutdown): the last epoch ends where the plan ends it.
        if self.phase == Phase::Running && budget > 0 {
            self.poll_source(now, now, &mut budget);
        } else if self.shared.planned && self.phase == Phase::Draining && !self.epoch_end {
            self.poll_source(u64::MAX, now, &mut budget);
        }
        if self.phase == Phase::Running
            && budget == room
            && room > 0
            && self.shared.config.work_stealing
            && self.shared.workers > 1
        {
            // Nothing of its own: help a worker whose rings hold records.
            let stolen = self.inputs.steal(
                budget,
                epoch,
                absorber(
                    &self.shared.job,
                    &mut self.parts,
                    self.shared.keeper.as_ref(),
                    &mut self.batch,
                    &mut self.marks,
                    now,
                ),
            );
            budget -= stolen;
            self.open_stolen += stolen;
        }
        let taken = room - budget;
        self.open_records += taken;
        if self.batch.has_failed() {
            self.recover_batch()?;
        }
        if taken > 0 {
            self.open_reduce += started.elapsed();
            // Live count for `Progress::records_taken`: one store to this
            // worker's own cache line per run taken, not per record.
            self.shared.taken[self.id].store(
                self.taken_total + self.open_records + self.open_dead,
                Ordering::Relaxed,
            );
        } else if self.phase == Phase::Draining
            && room > 0
            && !round.skipped
            && (!self.shared.planned || self.source.is_none() || self.epoch_end)
        {
            // Every ring was visited with room to spare and found empty.
            self.finish_intake();
        }
        Ok(taken > 0)
    }

    /// User code panicked on the open batch: rebuild its parts by the
    /// panic policy, or fail. The failure path.
    fn recover_batch(&mut self) -> Result<(), EngineError> {
        let Some(keeper) = self.shared.keeper.as_ref() else {
            return Ok(());
        };
        let (epoch, worker) = (self.open_epoch, self.id);
        // The batch is folded again into new parts, which are partitioned.
        self.placement = Placement::Partitioned;
        match recovery::recover(
            &self.shared.job,
            &mut self.parts,
            keeper,
            &mut self.batch,
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
            Err(Unrecovered::Letters { path, message }) => Err(EngineError::DeadLetters {
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
                recovery::fold(
                    &self.shared.job,
                    &mut self.parts,
                    self.shared.keeper.as_ref(),
                    &mut self.batch,
                    &records[..taken],
                );
                self.marks
                    .note(intended_micros.unwrap_or(now).min(now), taken as u64);
                *budget -= taken as u64;
            }
            Poll::Idle => {}
            Poll::EpochEnd => self.epoch_end = true,
            Poll::Exhausted => {
                self.source = None;
                self.shared.source_ended();
            }
        }
    }

    /// The final drain is done: hand every ring back to its lane (so that a
    /// producer racing with shutdown can take back what it pushed), tell
    /// the producers, and count this worker as drained.
    fn finish_intake(&mut self) {
        self.release_intake();
        self.phase = Phase::Drained;
        if self.source.take().is_some() {
            self.shared.source_ended();
        }
        let drained = self.shared.drained.fetch_add(1, Ordering::AcqRel) + 1;
        self.seals_final = drained == self.shared.workers;
    }

    /// Hands the rings back to the producers; see [`Inputs::release`].
    pub(crate) fn release_intake(&mut self) {
        self.inputs.release();
    }

    /// Seals every epoch the clock has moved past.
    fn observe_epoch(&mut self, now: u64) -> Result<bool, EngineError> {
        let current = self.shared.clock.current();
        let moved = self.open_epoch < current;
        while self.open_epoch < current {
            self.seal(now)?;
        }
        Ok(moved)
    }

    /// Advances the clock if this worker's batch is full or the interval
    /// ran out, or, at shutdown, to seal the final epoch.
    fn fire_triggers(&mut self, now: u64) -> Result<bool, EngineError> {
        let epoch = self.open_epoch;
        let reason = if self.phase == Phase::Drained {
            if !self.seals_final || self.shared.final_epoch.load(Ordering::Acquire) != u64::MAX {
                return Ok(false);
            }
            SealReason::Shutdown
        } else if self.shared.planned {
            // The plan's end of the epoch is its only trigger.
            if !(self.epoch_end && self.phase == Phase::Running) {
                return Ok(false);
            }
            SealReason::Count
        } else if self
            .shared
            .config
            .max_batch_records
            .is_some_and(|limit| self.open_records >= limit)
        {
            SealReason::Count
        } else if self.shared.clock.interval_expired(epoch, now) {
            SealReason::Interval
        } else {
            return Ok(false);
        };
        match self.shared.clock.try_advance(epoch, now) {
            Advance::Advanced => {
                self.shared.with_slot(epoch, |slot| {
                    slot.reason = Some(reason);
                    slot.sealed_micros = now;
                });
                if reason == SealReason::Shutdown {
                    self.shared.final_epoch.store(epoch, Ordering::Release);
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
        if self.batch.has_failed() {
            self.recover_batch()?;
        }
        self.batch.clear();
        // A combined batch's keys move to their partitions: per key, not
        // per record.
        let started = Instant::now();
        let keys = self.shared.job.split(&mut self.parts);
        self.open_reduce += started.elapsed();
        self.epoch_end = false;
        let epoch = self.open_epoch;
        let records = std::mem::take(&mut self.open_records);
        let combined = self.placement == Placement::Combined;
        let waited = std::mem::take(&mut self.open_idle);
        let open = std::mem::replace(&mut self.open_since, Instant::now()).elapsed();
        self.placement = self.next_placement(records, keys, waited, open);
        let stolen = std::mem::take(&mut self.open_stolen);
        let dead = std::mem::take(&mut self.open_dead);
        self.taken_total += records + dead;
        self.shared.taken[self.id].store(self.taken_total, Ordering::Relaxed);
        let reduce = std::mem::take(&mut self.open_reduce);
        let (id, marks) = (self.id, self.marks.as_slice());
        self.shared.with_slot(epoch, |slot| {
            slot.records[id] = records;
            slot.waited[id] = waited;
            slot.stolen += stolen;
            slot.combined += usize::from(combined);
            slot.dead_letters += dead;
            keep_max(&mut slot.durations.reduce, reduce);
            slot.marks.extend_from_slice(marks);
            if slot.sealed_micros == 0 {
                slot.sealed_micros = now;
            }
        });
        self.marks.clear();
        for partition in 0..self.shared.partitions {
            let fresh = fresh_part(&mut self.mesh, &mut self.spare, &self.shared.job);
            let part = std::mem::replace(&mut self.parts[partition], fresh);
            if partition == self.id {
                self.accept(epoch, None, part);
            } else {
                let deferred = &mut self.deferred;
                let sent = self
                    .mesh
                    .send(partition, Message { epoch, part }, |from, message| {
                        deferred.push((from, message));
                    });
                if sent.is_err() && !self.shared.has_failed() {
                    return Err(EngineError::WorkerPanicked {
                        worker: partition,
                        epoch: None,
                        message: "left the shuffle mesh early".into(),
                    });
                }
            }
        }
        if !self.owns_partition() {
            self.shared.clock.mark_emitted(self.id, epoch);
        }
        while let Some((from, message)) = self.deferred.pop() {
            self.accept(message.epoch, Some(from), message.part);
        }
        self.placement = self.shared.job.place(&mut self.parts, self.placement);
        self.open_epoch += 1;
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
        match self.shared.config.placement {
            PlacementPolicy::Partitioned => return Placement::Partitioned,
            PlacementPolicy::Combined => return Placement::Combined,
            PlacementPolicy::Adaptive => {}
        }
        adaptive_placement(records, keys, idle, open)
    }

    /// Folds in what the source owes the epoch being sealed (the rest of a
    /// planned block). Once per epoch.
    fn take_owed(&mut self, now: u64) {
        let Some(source) = self.source.as_mut() else {
            return;
        };
        self.source_buffer.clear();
        source.seal(&mut self.source_buffer);
        if !self.source_buffer.is_empty() {
            let owed = self.source_buffer.len() as u64;
            recovery::fold(
                &self.shared.job,
                &mut self.parts,
                self.shared.keeper.as_ref(),
                &mut self.batch,
                &self.source_buffer,
            );
            self.marks.note(now, owed);
            self.open_records += owed;
        }
    }

    /// Merges a part of `epoch` of this worker's partition, from worker
    /// `from` (`None`: from itself), then recycles the emptied part.
    fn accept(&mut self, epoch: u64, from: Option<usize>, mut part: J::Part) {
        let started = Instant::now();
        let index = (epoch - self.next_emit) as usize;
        while self.pending.len() <= index {
            let epoch = self.next_emit + self.pending.len() as u64;
            let merged = fresh_part(&mut self.mesh, &mut self.spare, &self.shared.job);
            self.pending.push_back(Pending {
                epoch,
                merged,
                parts: 0,
                own_seal: None,
                merge_time: Duration::ZERO,
            });
        }
        let pending = &mut self.pending[index];
        self.shared.job.merge(&mut pending.merged, &mut part);
        pending.parts += 1;
        match from {
            None => pending.own_seal = Some(started),
            Some(_) => pending.merge_time += started.elapsed(),
        }
        let back = match from {
            Some(from) => self
                .mesh
                .give_back(from, Message { epoch, part })
                .err()
                .map(|m| m.part),
            None => Some(part),
        };
        self.spare.extend(back);
    }

    fn drain_inbox(&mut self) -> bool {
        let mut any = false;
        while let Some((from, message)) = self.mesh.try_recv() {
            self.accept(message.epoch, Some(from), message.part);
            any = true;
        }
        any
    }

    /// Emits every epoch of this worker's partition whose parts are all in,
    /// oldest first.
    fn emit_ready(&mut self) -> Result<bool, EngineError> {
        let workers = self.shared.workers;
        let mut any = false;
        while self.pending.front().is_some_and(|p| p.parts == workers) {
            let Some(mut pending) = self.pending.pop_front() else {
                break;
            };
            let epoch = pending.epoch;
            let shuffle_wait = pending.own_seal.map(|t| t.elapsed()).unwrap_or_default();
            self.shared
                .job
                .hot_keys(&mut pending.merged, &mut self.hot_keys);
            if self.shared.job.salts() {
                // Salted keys are finished once, from every owner's share.
                let mut share = fresh_part(&mut self.mesh, &mut self.spare, &self.shared.job);
                if self.shared.job.take_salted(&mut pending.merged, &mut share) {
                    self.spare.extend(self.shared.deposit_salted(epoch, share));
                } else {
                    self.spare.push(share);
                }
            }
            self.shared.job.finish_with_totals(
                &mut pending.merged,
                &mut self.totals,
                &mut self.rows,
            );
            self.spare.push(pending.merged);
            let state = self.save_totals(epoch)?;
            let rows = self.rows.len() as u64;
            let started = Instant::now();
            if !self.shared.has_output(epoch) {
                self.rows.clear();
            } else if rows > 0 {
                self.shared
                    .sink
                    .write(epoch, self.id, &mut self.rows)
                    .map_err(|source| EngineError::Sink { epoch, source })?;
                self.rows.clear();
            }
            let sink_time = started.elapsed();
            let partitions = self.shared.partitions;
            let complete = self.shared.with_slot(epoch, |slot| {
                slot.rows += rows;
                slot.hot_keys.append(&mut self.hot_keys);
                keep_max(&mut slot.durations.shuffle_wait, shuffle_wait);
                keep_max(&mut slot.durations.merge, pending.merge_time);
                keep_max(&mut slot.durations.sink, sink_time);
                slot.state_parts[self.id] = state;
                slot.owners_done += 1;
                slot.owners_done == partitions
            });
            if complete {
                self.shared.complete_epoch(epoch)?;
            }
            self.shared.clock.mark_emitted(self.id, epoch);
            self.next_emit += 1;
            any = true;
        }
        Ok(any)
    }

    /// This partition's totals after `epoch`, encoded, if a snapshot is
    /// due. Every few epochs; it allocates.
    fn save_totals(&mut self, epoch: u64) -> Result<Option<Vec<u8>>, EngineError> {
        if !self.shared.snapshot_due(epoch) {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        match self.shared.job.save_totals(&self.totals, &mut bytes) {
            Ok(true) => Ok(Some(bytes)),
            Ok(false) => Ok(None),
            Err(message) => Err(EngineError::Checkpoint {
                epoch,
                source: crate::checkpoint::CheckpointError::Unusable(format!(
                    "the totals of partition {} cannot be saved: {message}",
                    self.id
                )),
            }),
        }
    }

    /// Whether the final epoch is sealed and, for an owner, emitted.
    fn is_done(&self) -> bool {
        let last = self.shared.final_epoch.load(Ordering::Acquire);
        if last == u64::MAX {
            return false;
        }
        if self.owns_partition() {
            self.next_emit > last
        } else {
            self.open_epoch > last
        }
    }
}

/// Folds runs of records taken from a ring into the open epoch's `parts`
/// (see [`recovery::fold`]) and notes their arrival (the push stamp, or
/// `now`). Hot path.
#[inline]
fn absorber<'a, R, J: Job<R>>(
    job: &'a J,
    parts: &'a mut [J::Part],
    keeper: Option<&'a Keeper<R>>,
    batch: &'a mut Batch<R>,
    marks: &'a mut Marks,
    now: u64,
) -> impl FnMut(&[R], Option<u64>) + 'a {
    move |records, pushed| {
        if !records.is_empty() {
            recovery::fold(job, parts, keeper, batch, records);
            marks.note(
                pushed.map_or(now, |pushed| pushed.min(now)),
                records.len() as u64,
            );
        }
    }
}

/// A recycled part if one came back or is spare, else a new one (only
/// while the pool warms up).
fn fresh_part<R, J: Job<R>>(
    mesh: &mut Endpoint<Message<J::Part>>,
    spare: &mut Vec<J::Part>,
    job: &J,
) -> J::Part {
    if let Some(message) = mesh.reclaim() {
        return message.part;
    }
    spare.pop().unwrap_or_else(|| job.new_part())
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// A worker thread: pin, run, and on any exit hand the rings back so no
/// producer waits forever.
pub(crate) fn thread_main<R: Send + 'static, J: Job<R>>(
    mut worker: Worker<R, J>,
    core: Option<core_affinity::CoreId>,
) {
    let shared = Arc::clone(&worker.shared);
    if let Some(core) = core {
        if core_affinity::set_for_current(core) {
            shared.pinned[worker.id].store(true, Ordering::Release);
        } else {
            shared.note_unpinned(format!(
                "pinning worker {} to core {} failed",
                worker.id, core.id
            ));
        }
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run()));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => shared.fail(error),
        Err(payload) => shared.fail(EngineError::WorkerPanicked {
            worker: worker.id,
            epoch: Some(worker.open_epoch),
            message: panic_message(payload.as_ref()),
        }),
    }
    worker.release_intake();
}
