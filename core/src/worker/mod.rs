//! The worker: one thread per core that takes records in, folds them into
//! the open epoch's parts, seals when the clock moves, sends each part to
//! its owner, merges the parts it owns and emits complete epochs.
//!
//! One pass of the loop ([`Worker::run`]), each step in its own file:
//! - `intake`: take up to a chunk from each of its lanes and its source
//!   (and, with nothing of its own, steal), folded by `fold`. Hot path.
//! - `seal`: observe an epoch the clock moved past, or fire a trigger (a
//!   full batch, the interval, shutdown) and advance the clock; sealing
//!   sends each partition's part to its owner through the shuffle.
//! - `owner`: merge the parts of its partition arriving from every worker
//!   and emit each epoch whose parts are all in, oldest first; the last
//!   owner of an epoch completes it (`Runtime::complete_epoch`).
//!
//! The rest runs once per epoch or when idle.

mod fold;
mod intake;
mod owner;
mod seal;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use self::fold::OpenBatch;
use self::owner::Pending;
use crate::config::{IdleStrategy, PlacementPolicy};
use crate::error::EngineError;
use crate::fault::panic_message;
use crate::input::{LaneReader, CHUNK};
use crate::job::{DeferredError, Job, Parts, Placement};
use crate::progress::HotKey;
use crate::runtime::Runtime;
use crate::shuffle::{Endpoint, Message};
use crate::source::Source;
use crate::sync::wait::Idle;
use crate::sync::{Arc, Ordering};

/// The most an idle worker spins (instead of parking) before its epoch's
/// interval runs out, in µs; see [`Worker::due_soon`].
const SPIN_BEFORE_DEADLINE_MICROS: u64 = 1_000;

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

/// One worker thread's state.
///
/// Invariants: worker `p` owns key partition `p` (if `p` < partitions);
/// its open epoch is `open_epoch`, and its batch of that epoch is `open`;
/// the epochs of its partition not yet emitted are `pending`, oldest first,
/// starting at `next_emit`.
pub(crate) struct Worker<R, J: Job<R>> {
    id: usize,
    runtime: Arc<Runtime<R, J>>,
    shuffle: Endpoint<Message<J::Part>>,
    lanes: LaneReader<R>,
    source: Option<Box<dyn Source<R>>>,
    /// The source once it is exhausted or the intake closed: no longer
    /// polled, still told of each epoch sealed (`Source::sealed`).
    spent_source: Option<Box<dyn Source<R>>>,
    source_buffer: Vec<R>,
    /// The open epoch's parts, retained input and arrival marks.
    open: OpenBatch<R, J>,
    /// Emptied parts kept for reuse.
    spare: Vec<J::Part>,
    open_epoch: u64,
    open_records: u64,
    /// Of `open_records`, those taken from other workers' rings.
    open_stolen: u64,
    /// Records of the open batch quarantined as dead letters (not in
    /// `open_records`).
    open_dead: u64,
    open_reduce: Duration,
    /// Time this worker spent waiting (no input, or no room) in the open
    /// batch: spinning, yielding or parked.
    open_idle: Duration,
    /// The most records a ring of this worker held when it came to take,
    /// while the batch was open.
    open_backlog: usize,
    /// The newest event time this worker has folded, and when it last
    /// moved (event-time jobs).
    newest_event: Option<u64>,
    newest_event_at: Instant,
    /// The event-time frontier this owner last finished an epoch at.
    frontier: Option<u64>,
    /// When the open batch opened (this worker's previous seal).
    open_since: Instant,
    /// How the open batch is folded.
    placement: Placement,
    taken_total: u64,
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
    /// The epoch this owner is emitting, while it does: the epoch a panic
    /// in finishing or in the sink belongs to.
    emitting: Option<u64>,
    idle: Idle,
}

impl<R: Send + 'static, J: Job<R>> Worker<R, J> {
    pub(crate) fn new(
        id: usize,
        runtime: Arc<Runtime<R, J>>,
        shuffle: Endpoint<Message<J::Part>>,
        source: Option<Box<dyn Source<R>>>,
        totals: Option<J::Totals>,
    ) -> Self {
        let workers = runtime.workers;
        let window = runtime.config.max_epochs_in_flight;
        let mut parts: Vec<J::Part> = (0..runtime.partitions)
            .map(|_| runtime.job.new_part())
            .collect();
        // Adaptive workers start partitioned, knowing nothing of the stream.
        let placement = match runtime.config.placement {
            PlacementPolicy::Combined => Placement::Combined,
            _ => Placement::Partitioned,
        };
        let placement = runtime.job.place(Parts::from(&mut parts), placement);
        // A run resumed from a snapshot of open windows goes on from the
        // frontier it was saved at; a fresh one knows none yet.
        let frontier = totals
            .as_ref()
            .and_then(|totals| runtime.job.restored_frontier(totals));
        if let Some(frontier) = frontier {
            runtime.frontier.fetch_max(frontier + 1, Ordering::AcqRel);
        }
        runtime.job.open_batch(Parts::from(&mut parts), frontier);
        let idle = match runtime.config.idle {
            IdleStrategy::Backoff => Idle::new(),
            IdleStrategy::Yield => Idle::yielding(),
        };
        Worker {
            id,
            shuffle,
            lanes: LaneReader::new(id, Arc::clone(&runtime.lanes)),
            source_buffer: Vec::with_capacity(if source.is_some() { CHUNK } else { 0 }),
            source,
            spent_source: None,
            open: OpenBatch::new(parts),
            spare: Vec::with_capacity(2 * workers * (window + 1)),
            open_epoch: runtime.first_epoch,
            open_records: 0,
            open_stolen: 0,
            open_dead: 0,
            open_reduce: Duration::ZERO,
            open_idle: Duration::ZERO,
            open_backlog: 0,
            newest_event: None,
            newest_event_at: Instant::now(),
            frontier,
            open_since: Instant::now(),
            placement,
            taken_total: 0,
            pending: VecDeque::with_capacity(window + 1),
            next_emit: runtime.first_epoch,
            rows: Vec::new(),
            totals: totals.unwrap_or_else(|| runtime.job.new_totals()),
            hot_keys: Vec::new(),
            deferred: Vec::with_capacity(workers * (2 * window + 1)),
            phase: Phase::Running,
            seals_final: false,
            epoch_end: false,
            emitting: None,
            idle,
            runtime,
        }
    }

    fn owns_partition(&self) -> bool {
        self.id < self.runtime.partitions
    }

    /// Runs until the final epoch is out, or the engine failed.
    pub(crate) fn run(&mut self) -> Result<(), EngineError> {
        loop {
            if self.runtime.has_failed() {
                return Ok(());
            }
            let mut busy = false;
            if self.phase != Phase::Drained {
                busy |= self.take_input()?;
            }
            let now = self.runtime.now_micros();
            busy |= self.observe_epoch(now)?;
            busy |= self.fire_triggers(now)?;
            busy |= self.drain_inbox();
            busy |= self.emit_ready()?;
            busy |= self.run_deferred()?;
            if self.is_done() {
                return Ok(());
            }
            if busy {
                self.idle.reset();
            } else {
                // Idle path: two clock reads per wait are nothing here.
                let waited = Instant::now();
                if self.lanes.take_missed_claim() || self.due_soon(now) {
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
            self.runtime.clock.interval(),
            self.runtime
                .clock
                .micros_until_deadline(self.open_epoch, now),
        ) else {
            return false;
        };
        let margin = (interval.as_micros() / 10).min(u128::from(SPIN_BEFORE_DEADLINE_MICROS));
        u128::from(left) <= margin
    }

    /// One piece of the work the job deferred on this owner (see
    /// [`Job::run_deferred`]); whether there was any.
    fn run_deferred(&mut self) -> Result<bool, EngineError> {
        if !self.owns_partition() {
            return Ok(false);
        }
        self.runtime
            .job
            .run_deferred(&mut self.totals, self.id)
            .map_err(|failed| match failed {
                DeferredError::Sink { epoch, source } => EngineError::Sink { epoch, source },
                DeferredError::Checkpoint { epoch, source } => {
                    EngineError::Checkpoint { epoch, source }
                }
            })
    }

    /// Whether the final epoch is sealed and, for an owner, emitted, with
    /// none of the job's deferred work left.
    fn is_done(&self) -> bool {
        let last = self.runtime.final_epoch.load(Ordering::Acquire);
        if last == u64::MAX {
            return false;
        }
        if self.owns_partition() {
            self.next_emit > last && !self.runtime.job.has_deferred(&self.totals)
        } else {
            self.open_epoch > last
        }
    }
}

/// A worker thread: pin, run, and on any exit hand the rings back so no
/// producer waits forever.
pub(crate) fn thread_main<R: Send + 'static, J: Job<R>>(
    mut worker: Worker<R, J>,
    core: Option<core_affinity::CoreId>,
) {
    let runtime = Arc::clone(&worker.runtime);
    if let Some(core) = core {
        if core_affinity::set_for_current(core) {
            runtime.pinned[worker.id].store(true, Ordering::Release);
        } else {
            runtime.note_unpinned(format!(
                "pinning worker {} to core {} failed",
                worker.id, core.id
            ));
        }
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run()));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => runtime.fail(error),
        Err(payload) => runtime.fail(EngineError::WorkerPanicked {
            worker: worker.id,
            epoch: Some(worker.emitting.unwrap_or(worker.open_epoch)),
            message: panic_message(payload.as_ref()),
        }),
    }
    worker.release_intake();
    drop(worker);
    runtime.worker_returned();
}
