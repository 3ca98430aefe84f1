//! What one running engine's threads share: the job, the sink, the epoch
//! clock, the producers' lanes, the epoch slots, the completion and the
//! failure. The workers hold it and the [`Engine`](crate::Engine) handle
//! holds it; neither holds the other.

use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::checkpoint::{commit_epoch, Checkpoint, CommitError};
use crate::config::Config;
use crate::epoch::clock::EpochClock;
use crate::epoch::completion::{Completion, Published};
use crate::epoch::interval::IntervalController;
use crate::epoch::salted::SaltedParts;
use crate::epoch::slot::EpochSlot;
use crate::error::EngineError;
use crate::fault::PanicHandler;
use crate::input::Lanes;
use crate::job::Job;
use crate::progress::{EpochProgress, LatencySummary, Progress, TargetStatus};
use crate::sink::Sink;
use crate::sync::cold::{lock, Condvar, Mutex, MutexGuard, OnceLock};
use crate::sync::wait::Idle;
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::telemetry::Telemetry;

/// A callback for each completed epoch's progress.
pub type ProgressListener = Box<dyn Fn(&EpochProgress) + Send + Sync>;

/// Everything the workers and the engine handle share.
///
/// Invariants: `failed` is set once, after `failure` holds the first
/// error; the slots, salted parts and completion serve the epochs of the
/// clock's window (`e % max_epochs_in_flight`).
pub(crate) struct Runtime<R, J: Job<R>> {
    pub(crate) config: Config,
    pub(crate) workers: usize,
    pub(crate) partitions: usize,
    pub(crate) job: J,
    pub(crate) sink: Box<dyn Sink<J::Row>>,
    pub(crate) clock: EpochClock,
    /// The adaptive interval, under a latency target: told each completed
    /// epoch, it sets the clock's interval.
    pub(crate) interval_control: Option<Mutex<IntervalController>>,
    pub(crate) start: Instant,
    pub(crate) lanes: Arc<Lanes<R>>,
    /// Workers that finished their final drain.
    pub(crate) drained: AtomicUsize,
    /// The last epoch, sealed at shutdown; `u64::MAX` until then.
    pub(crate) final_epoch: AtomicU64,
    pub(crate) failed: AtomicBool,
    pub(crate) failure: Mutex<Option<EngineError>>,
    /// The first failure's message, kept after `failure` is taken.
    pub(crate) cause: OnceLock<String>,
    /// The newest event-time frontier an owner finished an epoch at, plus
    /// one (0: none yet): what a worker's next batch counts late by.
    pub(crate) frontier: AtomicU64,
    /// The metric handles, registered at start.
    pub(crate) telemetry: Telemetry,
    /// Worker threads started and not yet returned.
    pub(crate) running: AtomicUsize,
    /// Notified (all waiters) when the engine fails and when a worker
    /// thread returns: what the async shutdown and failure future await.
    #[cfg(feature = "tokio")]
    pub(crate) changed: ::tokio::sync::Notify,
    /// Records taken in so far, per worker.
    pub(crate) taken: Box<[CachePadded<AtomicU64>]>,
    /// Workers whose built-in source is not exhausted.
    pub(crate) sources_active: AtomicUsize,
    /// Threads in [`Engine::wait_for_sources`](crate::Engine::wait_for_sources)
    /// wait on it; notified when the last source ends or the engine fails.
    pub(crate) sources_ended: (Mutex<()>, Condvar),
    pub(crate) pinned: Box<[AtomicBool]>,
    pub(crate) pinning_note: Mutex<Option<String>>,
    pub(crate) slots: Box<[Mutex<EpochSlot>]>,
    pub(crate) salted: SaltedParts<J::Part>,
    pub(crate) completion: Mutex<Completion>,
    /// The completed epochs' totals and latency, for progress readers.
    pub(crate) published: Mutex<Published>,
    pub(crate) listener: Option<ProgressListener>,
    /// The checkpoint this run logs to, if any.
    pub(crate) checkpoint: Option<Checkpoint>,
    /// The panic policy, if any.
    pub(crate) panic_handler: Option<PanicHandler<R>>,
    /// Under a checkpoint, the source's plan cuts the epochs: the count
    /// and interval triggers are off.
    pub(crate) planned: bool,
    /// The first epoch of this run.
    pub(crate) first_epoch: u64,
    /// Epochs up to this one were committed before a restart and are
    /// replayed only to rebuild running totals: no output.
    pub(crate) replay_until: Option<u64>,
}

impl<R, J: Job<R>> Runtime<R, J> {
    /// µs since the engine started.
    #[inline]
    pub(crate) fn now_micros(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Runs `f` on the progress slot of `epoch`.
    pub(crate) fn with_slot<T>(&self, epoch: u64, f: impl FnOnce(&mut EpochSlot) -> T) -> T {
        let index = (epoch % self.slots.len() as u64) as usize;
        let mut slot = lock(&self.slots[index]);
        slot.open(epoch);
        f(&mut slot)
    }

    /// Records the first failure and closes the engine: producers get
    /// `Closed`, workers stop.
    pub(crate) fn fail(&self, error: EngineError) {
        let mut failure = lock(&self.failure);
        if failure.is_none() {
            tracing::error!(target: "microbatch", error = %error, "the engine failed; it stops taking records");
            let _ = self.cause.set(error.to_string());
            *failure = Some(error);
        }
        drop(failure);
        self.failed.store(true, Ordering::Release);
        self.lanes.close();
        self.sink.close();
        self.wake_source_waiters();
        #[cfg(feature = "tokio")]
        self.changed.notify_waiters();
    }

    /// The newest event-time frontier an epoch was finished at.
    pub(crate) fn frontier(&self) -> Option<u64> {
        self.frontier.load(Ordering::Acquire).checked_sub(1)
    }

    /// The first failure's message, if the engine failed.
    pub(crate) fn failure(&self) -> Option<String> {
        self.cause.get().cloned()
    }

    /// A worker thread returns (after its final drain or its failure).
    pub(crate) fn worker_returned(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
        #[cfg(feature = "tokio")]
        self.changed.notify_waiters();
    }

    /// A worker's built-in source is exhausted (or dropped at the drain).
    pub(crate) fn source_ended(&self) {
        if self.sources_active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.wake_source_waiters();
        }
    }

    /// Cold path: once per source, or on failure.
    fn wake_source_waiters(&self) {
        let (mutex, ended) = &self.sources_ended;
        // Taken so that a waiter is either before its check or asleep.
        let _guard = lock(mutex);
        ended.notify_all();
    }

    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// An owner finished the last partition of `epoch`: completes it, in
    /// epoch order. The steps: wait for the epoch's turn, write the salted
    /// keys' rows, gather the progress, commit (checkpoint and sink),
    /// stamp the commit time, tell the listener, count it in the totals.
    pub(crate) fn complete_epoch(&self, epoch: u64) -> Result<(), EngineError> {
        let Some(mut completion) = self.wait_for_turn(epoch) else {
            return Ok(());
        };
        self.write_salted(epoch)?;
        let now = self.now_micros();
        let (mut progress, mut runs) =
            self.with_slot(epoch, |slot| completion.gather(epoch, slot, now));
        if self.has_output(epoch) {
            self.commit(&progress)?;
        }
        let committed = self.now_micros().max(now);
        completion.stamp_committed(
            &mut lock(&self.published).histogram,
            &mut progress,
            &mut runs,
            now,
            committed,
        );
        self.adapt_interval(&mut progress);
        self.telemetry.epoch_completed(
            &progress,
            &runs,
            self.records_taken(),
            self.lanes.shed.load(Ordering::Relaxed),
        );
        // The buffer goes back to the slot: no allocation per epoch.
        self.with_slot(epoch, |slot| {
            runs.clear();
            slot.marks = runs;
        });
        if let Some(listener) = &self.listener {
            listener(&progress);
        }
        completion.account(&mut lock(&self.published).totals, progress);
        Ok(())
    }

    /// Under a latency target, tells the adaptive interval the completed
    /// epoch's latency and sets the interval the next epochs open with;
    /// notes in `progress` what its latency says of the target.
    fn adapt_interval(&self, progress: &mut EpochProgress) {
        if progress.interval.is_none() {
            // Its sealer raced the opener's record of it (rare): the
            // interval in force now is the best guess.
            progress.interval = self.clock.interval();
        }
        let Some(control) = &self.interval_control else {
            return;
        };
        let mut control = lock(control);
        let span = progress.sealed.saturating_sub(progress.opened);
        let p99 = (progress.latency.records > 0)
            .then(|| Duration::from_micros(progress.latency.p99_micros));
        let was_unreachable = control.is_unreachable();
        let status = control.observe(span, p99);
        progress.target = Some(status);
        // Said once per change, in the log.
        let unreachable = status == TargetStatus::Unreachable;
        if unreachable && !was_unreachable {
            tracing::warn!(
                target: "microbatch",
                epoch = progress.epoch,
                target_latency = ?self.config.target_latency,
                "the latency target cannot be met at this load: the interval is held at its largest until the load falls"
            );
        } else if !unreachable && was_unreachable {
            tracing::info!(target: "microbatch", epoch = progress.epoch, "the latency target is within reach again");
        }
        self.clock.set_interval(control.interval());
    }

    /// The completion, once it is `epoch`'s turn; `None` if the engine
    /// failed meanwhile.
    fn wait_for_turn(&self, epoch: u64) -> Option<MutexGuard<'_, Completion>> {
        let idle = Idle::new();
        loop {
            let completion = lock(&self.completion);
            if completion.next_epoch == epoch {
                return Some(completion);
            }
            drop(completion);
            if self.has_failed() {
                return None;
            }
            idle.step();
        }
    }

    /// The salted keys' rows of `epoch`, merged from every owner, into the
    /// sink (one more `write`, labelled partition 0), before the epoch's
    /// commit.
    fn write_salted(&self, epoch: u64) -> Result<(), EngineError> {
        let Some(mut merged) = self.salted.take(epoch) else {
            return Ok(());
        };
        let mut rows = Vec::new();
        self.job.finish(&mut merged, &mut rows);
        let count = rows.len() as u64;
        if count > 0 && self.has_output(epoch) {
            self.sink
                .write(epoch, 0, &mut rows)
                .map_err(|source| EngineError::Sink { epoch, source })?;
        }
        self.with_slot(epoch, |slot| slot.rows += count);
        Ok(())
    }

    /// Commits the epoch of `progress` by the commit protocol
    /// (`checkpoint::commit`), with the owners' state snapshot if one was
    /// taken.
    fn commit(&self, progress: &EpochProgress) -> Result<(), EngineError> {
        let epoch = progress.epoch;
        let state = || {
            self.with_slot(epoch, |slot| {
                slot.state_parts[..self.partitions]
                    .iter_mut()
                    .map(Option::take)
                    .collect()
            })
        };
        commit_epoch(
            self.checkpoint.as_ref(),
            &*self.sink,
            progress,
            self.sink_takes_totals(),
            state,
        )
        .map_err(|error| match error {
            CommitError::Checkpoint(source) => EngineError::Checkpoint { epoch, source },
            CommitError::Sink(source) => EngineError::Sink { epoch, source },
        })
    }

    /// Whether the owners snapshot their totals after `epoch`: when the
    /// checkpoint's snapshot is due, or after every epoch for a sink that
    /// commits them with its epochs.
    pub(crate) fn snapshot_due(&self, epoch: u64) -> bool {
        let checkpoint_due = self
            .checkpoint
            .as_ref()
            .is_some_and(|checkpoint| checkpoint.snapshot_due(epoch));
        (checkpoint_due || self.sink_takes_totals()) && self.has_output(epoch)
    }

    /// Whether the sink commits the job's running totals with each epoch:
    /// it keeps state and the job has totals to give.
    pub(crate) fn sink_takes_totals(&self) -> bool {
        self.sink.keeps_state() && self.job.keeps_totals()
    }

    /// Whether `epoch`'s results go to the sink. Not for an epoch
    /// committed before a restart (replayed to rebuild running totals),
    /// nor for an empty last epoch of a planned run (nothing was left of
    /// the log; the next run starts with that epoch).
    pub(crate) fn has_output(&self, epoch: u64) -> bool {
        if self.replay_until.is_some_and(|last| epoch <= last) {
            return false;
        }
        if self.planned && self.final_epoch.load(Ordering::Acquire) == epoch {
            let records: u64 = self.with_slot(epoch, |slot| slot.records.iter().sum());
            return records > 0;
        }
        true
    }

    /// Records the workers took in so far.
    fn records_taken(&self) -> u64 {
        self.taken.iter().map(|t| t.load(Ordering::Relaxed)).sum()
    }

    /// Totals so far, with the last completed epoch.
    pub(crate) fn progress(&self) -> Progress {
        let published = lock(&self.published);
        let mut progress = published.totals.clone();
        progress.latency = LatencySummary::of(&published.histogram);
        drop(published);
        progress.records_taken = self.records_taken();
        progress.records_shed = self.lanes.shed.load(Ordering::Relaxed);
        progress.unpinned = self.unpinned();
        progress.pinning_note = lock(&self.pinning_note).clone();
        progress
    }

    fn unpinned(&self) -> Vec<usize> {
        if !self.config.pin {
            return Vec::new();
        }
        (0..self.workers)
            .filter(|&w| !self.pinned[w].load(Ordering::Acquire))
            .collect()
    }

    pub(crate) fn note_unpinned(&self, note: String) {
        tracing::warn!(target: "microbatch", %note, "a worker runs unpinned");
        lock(&self.pinning_note).get_or_insert(note);
    }

    /// How long the engine has run.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
