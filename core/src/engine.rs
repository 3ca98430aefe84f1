//! The engine: configuration in, pinned worker threads, producer handles,
//! progress, and a shutdown that drains everything accepted.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::epoch::EpochClock;
use crate::error::EngineError;
use crate::input::{Intake, Producer};
use crate::job::Job;
use crate::progress::{
    latency_histogram, EpochProgress, HotKey, LatencySummary, PhaseDurations, Progress, SealReason,
    HOT_KEYS_REPORTED,
};
use crate::recovery::{Keeper, PanicPolicy};
use crate::sink::Sink;
use crate::source::{EpochPlan, Source, SourceParts, SourceSpec};
use crate::sync::wait::Idle;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::worker::Worker;
use crate::Config;

/// A callback for each completed epoch's progress.
pub type ProgressListener = Box<dyn Fn(&EpochProgress) + Send + Sync>;

/// A source waiting for the worker count (and, under a checkpoint, the
/// epoch plan) to split itself.
type SplitSource<R> =
    Box<dyn FnOnce(usize, Option<EpochPlan>) -> Result<SourceParts<R>, crate::ConfigError>>;

/// What [`Engine::shutdown`] reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Records the workers took in (from producers and sources).
    pub records_accepted: u64,
    /// Records counted in emitted epoch results: equal to
    /// `records_accepted` after a clean shutdown.
    pub records_in_results: u64,
    /// Of `records_in_results`, those a worker took from another worker's
    /// producer rings (work stealing).
    pub records_stolen: u64,
    /// Epochs emitted.
    pub epochs: u64,
    /// Rows emitted.
    pub rows: u64,
    /// From start to the end of shutdown.
    pub elapsed: Duration,
    /// Record latency over the whole run.
    pub latency: LatencySummary,
    /// Records quarantined in the dead-letter file (see
    /// [`EngineBuilder::on_panic`]): `records_accepted` equals
    /// `records_in_results` plus these after a clean shutdown.
    pub records_dead_lettered: u64,
    /// Workers that ran unpinned.
    pub unpinned: Vec<usize>,
    /// The record-latency histogram (µs) over the whole run, as
    /// [`Engine::latency_histogram`] gives it while the engine runs.
    #[serde(skip)]
    pub latency_histogram: Histogram<u64>,
}

/// What the workers know of one epoch in flight, gathered for its
/// progress report. Slot `e % max_epochs_in_flight` serves epoch `e`: the
/// clock's window guarantees epoch `e - D` is complete before anyone
/// touches the slot for `e`.
pub(crate) struct EpochSlot {
    epoch: u64,
    pub(crate) reason: Option<SealReason>,
    pub(crate) sealed_micros: u64,
    pub(crate) records: Vec<u64>,
    /// How long each worker waited while its batch of the epoch was open.
    pub(crate) waited: Vec<Duration>,
    pub(crate) stolen: u64,
    /// Workers whose batch of the epoch was folded combined.
    pub(crate) combined: usize,
    pub(crate) dead_letters: u64,
    pub(crate) durations: PhaseDurations,
    pub(crate) rows: u64,
    pub(crate) marks: Vec<(u64, u64)>,
    /// Each owner's hottest keys of its partition (keys of different
    /// partitions differ).
    pub(crate) hot_keys: Vec<HotKey>,
    /// Each owner's encoded totals, when the epoch is snapshotted.
    pub(crate) state_parts: Vec<Option<Vec<u8>>>,
    pub(crate) owners_done: usize,
}

impl EpochSlot {
    fn new(workers: usize) -> Self {
        EpochSlot {
            epoch: u64::MAX,
            reason: None,
            sealed_micros: 0,
            records: vec![0; workers],
            waited: vec![Duration::ZERO; workers],
            stolen: 0,
            combined: 0,
            dead_letters: 0,
            durations: PhaseDurations::default(),
            rows: 0,
            marks: Vec::with_capacity(workers * crate::progress::MARKS_PER_WORKER),
            hot_keys: Vec::new(),
            state_parts: (0..workers).map(|_| None).collect(),
            owners_done: 0,
        }
    }

    fn open(&mut self, epoch: u64) {
        if self.epoch != epoch {
            self.epoch = epoch;
            self.reason = None;
            self.sealed_micros = 0;
            self.records.fill(0);
            self.waited.fill(Duration::ZERO);
            self.stolen = 0;
            self.combined = 0;
            self.dead_letters = 0;
            self.durations = PhaseDurations::default();
            self.rows = 0;
            self.marks.clear();
            self.hot_keys.clear();
            self.state_parts.fill(None);
            self.owners_done = 0;
        }
    }
}

/// Keeps `field` at the larger of itself and `value`.
pub(crate) fn keep_max(field: &mut Duration, value: Duration) {
    *field = (*field).max(value);
}

/// Epoch completion, one epoch at a time in order.
struct Completion {
    next_epoch: u64,
    opened_micros: u64,
    totals: Progress,
    /// Record latency over every completed epoch, µs.
    histogram: Histogram<u64>,
}

/// Everything the workers and the engine handle share.
pub(crate) struct Shared<R, J: Job<R>> {
    pub(crate) config: Config,
    pub(crate) workers: usize,
    pub(crate) partitions: usize,
    pub(crate) job: J,
    pub(crate) sink: Box<dyn Sink<J::Row>>,
    pub(crate) clock: EpochClock,
    start: Instant,
    pub(crate) intake: crate::sync::Arc<Intake<R>>,
    /// Workers that finished their final drain.
    pub(crate) drained: AtomicUsize,
    /// The last epoch, sealed at shutdown; `u64::MAX` until then.
    pub(crate) final_epoch: AtomicU64,
    pub(crate) failed: AtomicBool,
    failure: Mutex<Option<EngineError>>,
    /// Records taken in so far, per worker.
    pub(crate) taken: Box<[CachePadded<AtomicU64>]>,
    /// Workers whose built-in source is not exhausted.
    pub(crate) sources_active: AtomicUsize,
    /// Threads in [`Engine::wait_for_sources`] wait on it; notified when
    /// the last source ends or the engine fails.
    sources_ended: (Mutex<()>, std::sync::Condvar),
    pub(crate) pinned: Box<[AtomicBool]>,
    pinning_note: Mutex<Option<String>>,
    slots: Box<[Mutex<EpochSlot>]>,
    /// The salted keys' entries of the epoch in slot `e % window`, merged
    /// from every owner (see [`Job::take_salted`]).
    salted: Box<[Mutex<Option<J::Part>>]>,
    completion: Mutex<Completion>,
    listener: Option<ProgressListener>,
    /// The checkpoint this run logs to, if any.
    checkpoint: Option<Checkpoint>,
    /// The panic policy, if any.
    pub(crate) keeper: Option<Keeper<R>>,
    /// Under a checkpoint, the source's plan cuts the epochs: the count
    /// and interval triggers are off.
    pub(crate) planned: bool,
    /// The first epoch of this run.
    pub(crate) first_epoch: u64,
    /// Epochs up to this one were committed before a restart and are
    /// replayed only to rebuild running totals: no output.
    pub(crate) replay_until: Option<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<R, J: Job<R>> Shared<R, J> {
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
            *failure = Some(error);
        }
        drop(failure);
        self.failed.store(true, Ordering::Release);
        self.intake.close();
        self.wake_source_waiters();
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

    /// The salted keys' store of `epoch`: the window keeps epochs `e` and
    /// `e + window` from being in flight together, as for the slots.
    fn salted_of(&self, epoch: u64) -> &Mutex<Option<J::Part>> {
        &self.salted[(epoch % self.salted.len() as u64) as usize]
    }

    /// Merges an owner's entries of salted keys of `epoch` into the
    /// epoch's; hands back an emptied part for reuse. Once per owner and
    /// epoch, for a job that salts.
    pub(crate) fn deposit_salted(&self, epoch: u64, mut part: J::Part) -> Option<J::Part> {
        let mut salted = lock(self.salted_of(epoch));
        match salted.as_mut() {
            None => {
                *salted = Some(part);
                None
            }
            Some(merged) => {
                self.job.merge(merged, &mut part);
                Some(part)
            }
        }
    }

    /// The salted keys' rows of `epoch`, merged from every owner, into the
    /// sink (one more `write`, labelled partition 0). On the thread that
    /// completes the epoch, before the epoch's commit.
    fn write_salted(&self, epoch: u64) -> Result<(), EngineError> {
        let Some(mut merged) = lock(self.salted_of(epoch)).take() else {
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

    /// An owner finished the last partition of `epoch`: reports it, in
    /// epoch order.
    pub(crate) fn complete_epoch(&self, epoch: u64) -> Result<(), EngineError> {
        let idle = Idle::new();
        let mut completion = loop {
            let completion = lock(&self.completion);
            if completion.next_epoch == epoch {
                break completion;
            }
            drop(completion);
            if self.has_failed() {
                return Ok(());
            }
            idle.step();
        };
        self.write_salted(epoch)?;
        let now = self.now_micros();
        let completion = &mut *completion;
        let (progress, marks) = self.with_slot(epoch, |slot| {
            let records: u64 = slot.records.iter().sum();
            let opened = Duration::from_micros(completion.opened_micros);
            let sealed_micros = slot.sealed_micros.max(completion.opened_micros);
            let sealed = Duration::from_micros(sealed_micros);
            let completed = Duration::from_micros(now.max(sealed_micros));
            let rate = |span: Duration| {
                if span.is_zero() {
                    0.0
                } else {
                    records as f64 / span.as_secs_f64()
                }
            };
            let progress = EpochProgress {
                epoch,
                seal_reason: slot.reason.unwrap_or(SealReason::Shutdown),
                records,
                records_per_worker: slot.records.clone(),
                waited_per_worker: slot.waited.clone(),
                records_stolen: slot.stolen,
                combined_batches: slot.combined,
                dead_letters: slot.dead_letters,
                rows: slot.rows,
                opened,
                sealed,
                completed,
                input_rate: rate(sealed.saturating_sub(opened)),
                processing_rate: rate(completed.saturating_sub(opened)),
                durations: slot.durations,
                seal_to_result: completed.saturating_sub(sealed),
                latency: LatencySummary::default(),
                hot_keys: {
                    let mut hot = std::mem::take(&mut slot.hot_keys);
                    hot.sort_by(|a, b| b.records.cmp(&a.records).then_with(|| a.key.cmp(&b.key)));
                    hot.truncate(HOT_KEYS_REPORTED);
                    hot
                },
            };
            (progress, std::mem::take(&mut slot.marks))
        });
        // Latency as of now, when the rows are complete: what the sink's
        // copy of the progress says.
        let mut runs = marks;
        for run in &mut runs {
            run.0 = now.saturating_sub(run.0).max(1);
        }
        let mut progress = progress;
        progress.latency = LatencySummary::of_runs(&mut runs);

        // Under a checkpoint: the offsets are durable before the sink
        // commits, the commit file after.
        if self.has_output(epoch) {
            let checkpoint_failed = |source| EngineError::Checkpoint { epoch, source };
            if let Some(checkpoint) = &self.checkpoint {
                checkpoint
                    .write_offsets(epoch, progress.records)
                    .map_err(checkpoint_failed)?;
                let parts: Option<Vec<Vec<u8>>> = self.with_slot(epoch, |slot| {
                    slot.state_parts[..self.partitions]
                        .iter_mut()
                        .map(Option::take)
                        .collect()
                });
                if let Some(parts) = parts {
                    checkpoint
                        .write_state(epoch, &parts)
                        .map_err(checkpoint_failed)?;
                }
            }
            self.sink
                .epoch_complete(epoch, &progress)
                .map_err(|source| EngineError::Sink { epoch, source })?;
            if let Some(checkpoint) = &self.checkpoint {
                checkpoint
                    .write_commit(epoch, progress.rows)
                    .map_err(checkpoint_failed)?;
            }
        }

        // The result is out once the sink (and the checkpoint) committed
        // it: completion and latency count to then.
        let committed = self.now_micros().max(now);
        let late = committed - now;
        progress.completed += Duration::from_micros(late);
        progress.seal_to_result = progress.completed.saturating_sub(progress.sealed);
        let span = progress.completed.saturating_sub(progress.opened);
        if !span.is_zero() {
            progress.processing_rate = progress.records as f64 / span.as_secs_f64();
        }
        keep_max(&mut progress.durations.sink, Duration::from_micros(late));
        for run in &mut runs {
            run.0 += late;
            // Saturates at the histogram's bound rather than failing.
            completion.histogram.saturating_record_n(run.0, run.1);
        }
        progress.latency = LatencySummary::of_runs(&mut runs);
        // The buffer goes back to the slot: no allocation per epoch.
        self.with_slot(epoch, |slot| {
            runs.clear();
            slot.marks = runs;
        });
        if let Some(listener) = &self.listener {
            listener(&progress);
        }
        let totals = &mut completion.totals;
        totals.epochs_completed += 1;
        totals.records_in_results += progress.records;
        totals.records_stolen += progress.records_stolen;
        totals.dead_letters += progress.dead_letters;
        totals.rows += progress.rows;
        completion.opened_micros = progress.sealed.as_micros() as u64;
        totals.last = Some(progress);
        completion.next_epoch += 1;
        Ok(())
    }

    /// Whether the owners snapshot their totals after `epoch`.
    pub(crate) fn snapshot_due(&self, epoch: u64) -> bool {
        self.checkpoint
            .as_ref()
            .is_some_and(|checkpoint| checkpoint.snapshot_due(epoch))
            && self.has_output(epoch)
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

    fn progress(&self) -> Progress {
        let completion = lock(&self.completion);
        let mut progress = completion.totals.clone();
        progress.latency = LatencySummary::of(&completion.histogram);
        drop(completion);
        progress.records_taken = self.taken.iter().map(|t| t.load(Ordering::Relaxed)).sum();
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
        lock(&self.pinning_note).get_or_insert(note);
    }
}

/// Builds an [`Engine`]: settings (a [`Config`], or one at a time), the
/// job, the sink, an optional built-in source and a progress listener.
pub struct EngineBuilder<R, J: Job<R>> {
    config: Config,
    job: J,
    sink: Box<dyn Sink<J::Row>>,
    source: Option<SplitSource<R>>,
    /// The source's [`SourceSpec::identity`].
    source_identity: Option<String>,
    listener: Option<ProgressListener>,
    checkpoint: Option<Checkpoint>,
    keeper: Option<Result<Keeper<R>, crate::ConfigError>>,
    _records: PhantomData<fn(R)>,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $t:ty => $with:ident) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $t) -> Self {
            self.config = self.config.$with(value);
            self
        }
    };
}

impl<R: Send + 'static, J: Job<R>> EngineBuilder<R, J> {
    /// Replaces all settings.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    setter!(/// Sets [`Config::workers`].
        workers: usize => with_workers);
    setter!(/// Sets [`Config::pin`].
        pin: bool => with_pin);
    setter!(/// Sets [`Config::interval`]; `None`: no time trigger.
        interval: Option<Duration> => with_interval);
    setter!(/// Sets [`Config::max_batch_records`]; `None`: no count trigger.
        max_batch_records: Option<u64> => with_max_batch_records);
    setter!(/// Sets [`Config::ring_capacity`].
        ring_capacity: usize => with_ring_capacity);
    setter!(/// Sets [`Config::max_epochs_in_flight`].
        max_epochs_in_flight: usize => with_max_epochs_in_flight);
    setter!(/// Sets [`Config::idle`].
        idle: crate::IdleStrategy => with_idle);
    setter!(/// Sets [`Config::work_stealing`].
        work_stealing: bool => with_work_stealing);
    setter!(/// Sets [`Config::placement`].
        placement: crate::PlacementPolicy => with_placement);

    /// Adds a built-in source, split across the workers and run inside
    /// them.
    pub fn source<S: SourceSpec<R> + 'static>(mut self, source: S) -> Self {
        self.source_identity = source.identity();
        self.source = Some(Box::new(move |workers, plan| match plan {
            None => source.split(workers),
            Some(plan) => source.split_planned(workers, plan).unwrap_or_else(|| {
                Err(crate::ConfigError::new(
                    "checkpoint",
                    "with this source",
                    "a replayable source (a record log)",
                ))
            }),
        }));
        self
    }

    /// Runs under `checkpoint` (see [`checkpoint`](crate::checkpoint)):
    /// the source, which must be replayable (a
    /// [`LogSource`](crate::log::LogSource)), is cut into epochs by
    /// position, [`Checkpoint::records_per_epoch`] records each, so the
    /// count and interval triggers are off and [`Config::interval`] must
    /// be `None`. The run starts after the checkpoint's last committed
    /// epoch (at epoch 0 for a job with running totals, replaying the
    /// committed epochs without output), and logs each epoch's offsets
    /// before its results go out and its commit after.
    ///
    /// Records pushed through [`Engine::producer`] are not in the log: a
    /// replay does not have them, so a checkpointed run should take its
    /// input from the source only.
    pub fn checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// Calls `listener` with each completed epoch's progress, in order.
    pub fn on_progress(
        mut self,
        listener: impl Fn(&EpochProgress) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Checks the settings, the job and the source, then starts the
    /// workers.
    pub fn start(self) -> Result<Engine<R, J>, EngineError> {
        Engine::launch(self)
    }
}

impl<R, J> EngineBuilder<R, J>
where
    R: Clone + serde::Serialize + Send + 'static,
    J: Job<R>,
{
    /// Handles a panic in user code while a worker folds its batch by
    /// `policy` (see [`recovery`](crate::recovery)): retry the batch from
    /// a retained copy of its input, then stop with
    /// [`EngineError::BatchPanicked`] or quarantine the records that panic
    /// in a dead-letter file. Without a policy the batch is not copied and
    /// a panic stops the engine.
    ///
    /// ```
    /// use microbatch::job::{self, count};
    /// use microbatch::recovery::PanicPolicy;
    /// use microbatch::sink::CollectSink;
    /// use microbatch::source::IterSource;
    /// use microbatch::Engine;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let letters = dir.path().join("dead.jsonl");
    /// let per_key = job::records::<(u64, u64)>()
    ///     .map(|r: &(u64, u64)| {
    ///         assert_ne!(r.1, 7, "value 7 is malformed");
    ///         *r
    ///     })
    ///     .key_by(|r| r.0)
    ///     .aggregate(count());
    /// let (sink, _rows) = CollectSink::new();
    /// let engine = Engine::builder(per_key, sink)
    ///     .on_panic(PanicPolicy { retries: 1, dead_letters: Some(letters.clone()) })
    ///     .source(IterSource::new((0..100u64).map(|i| (i % 3, i))))
    ///     .start()?;
    /// let summary = engine.finish()?;
    /// assert_eq!(summary.records_dead_lettered, 1);
    /// assert_eq!(summary.records_in_results, 99);
    /// assert!(std::fs::read_to_string(&letters)?.contains("value 7 is malformed"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_panic(mut self, policy: PanicPolicy) -> Self {
        self.keeper = Some(Keeper::new(policy));
        self
    }
}

/// A running engine. See the crate docs for an example.
///
/// Dropping it shuts it down (and discards the summary); call
/// [`shutdown`](Engine::shutdown) to get the summary and any error.
pub struct Engine<R, J: Job<R>> {
    shared: Arc<Shared<R, J>>,
    threads: Vec<JoinHandle<()>>,
}

impl<R: Send + 'static, J: Job<R>> Engine<R, J> {
    /// A builder with the default [`Config`], running `job` into `sink`.
    pub fn builder(job: J, sink: impl Sink<J::Row>) -> EngineBuilder<R, J> {
        EngineBuilder {
            config: Config::default(),
            job,
            sink: Box::new(sink),
            source: None,
            source_identity: None,
            listener: None,
            checkpoint: None,
            keeper: None,
            _records: PhantomData,
        }
    }

    fn launch(builder: EngineBuilder<R, J>) -> Result<Self, EngineError> {
        let config = builder.config;
        config.validate()?;
        let workers = config.workers;
        builder
            .job
            .check(workers)
            .map_err(|reason| EngineError::Job { workers, reason })?;
        let partitions = builder.job.partitions(workers);
        if !(1..=workers).contains(&partitions) {
            return Err(EngineError::Job {
                workers,
                reason: format!("a job needs between 1 and {workers} partitions, not {partitions}"),
            });
        }
        let keeper = builder.keeper.transpose()?;
        let mut checkpoint = builder.checkpoint;
        if let Some(checkpoint) = checkpoint.as_mut() {
            checkpoint
                .bind_source(builder.source_identity.as_deref())
                .map_err(|source| EngineError::Checkpoint {
                    epoch: checkpoint.next_epoch(),
                    source,
                })?;
        }
        let (plan, restored) = match &checkpoint {
            None => (None, None),
            Some(checkpoint) => {
                let (plan, restored) = crate::checkpoint::resume_plan(
                    checkpoint,
                    &builder.job,
                    &config,
                    partitions,
                    builder.source.is_some(),
                )?;
                (Some(plan), restored)
            }
        };
        let first_epoch = plan.map_or(0, |plan| plan.first_epoch);
        let replay_until = checkpoint
            .as_ref()
            .and_then(Checkpoint::last_committed)
            .filter(|&last| last >= first_epoch);
        let mut totals = match &restored {
            None => Vec::new(),
            Some(state) => crate::checkpoint::restore_totals(&builder.job, state, partitions)?,
        };
        let mut sources: Vec<Option<Box<dyn Source<R>>>> = match builder.source {
            Some(split) => split(workers, plan)?.into_iter().map(Some).collect(),
            None => (0..workers).map(|_| None).collect(),
        };
        let window = config.max_epochs_in_flight;
        // A sender is at most `window` epochs ahead of an owner, so these
        // rings never fill; the margin is for the buffer-return rings.
        let mesh = crate::mesh::mesh(workers, 2 * window).map_err(|e| {
            crate::ConfigError::new(
                "max_epochs_in_flight",
                window,
                format!("a mesh that fits in memory ({e})"),
            )
        })?;
        let start = Instant::now();
        let shared = Arc::new(Shared {
            clock: EpochClock::starting_at(first_epoch, workers, window as u64, config.interval, 0),
            workers,
            partitions,
            job: builder.job,
            sink: builder.sink,
            start,
            intake: crate::sync::Arc::new(Intake::new(workers, start)),
            drained: AtomicUsize::new(0),
            final_epoch: AtomicU64::new(u64::MAX),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            taken: (0..workers)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            sources_active: AtomicUsize::new(sources.iter().flatten().count()),
            sources_ended: Default::default(),
            pinned: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            pinning_note: Mutex::new(None),
            slots: (0..window)
                .map(|_| Mutex::new(EpochSlot::new(workers)))
                .collect(),
            salted: (0..window).map(|_| Mutex::new(None)).collect(),
            completion: Mutex::new(Completion {
                next_epoch: first_epoch,
                opened_micros: 0,
                totals: Progress::default(),
                histogram: latency_histogram(),
            }),
            listener: builder.listener,
            keeper,
            planned: checkpoint.is_some(),
            checkpoint,
            first_epoch,
            replay_until,
            config,
        });
        // Read the core list once, before any thread is pinned: it answers
        // from the calling thread's affinity mask.
        let cores = if shared.config.pin {
            match core_affinity::get_core_ids() {
                Some(cores) if cores.len() >= workers => Some(cores),
                Some(cores) => {
                    shared.note_unpinned(format!(
                        "{} cores available for {workers} workers; running unpinned",
                        cores.len()
                    ));
                    None
                }
                None => {
                    shared.note_unpinned("the core list is unavailable; running unpinned".into());
                    None
                }
            }
        } else {
            None
        };
        let mut engine = Engine {
            shared: Arc::clone(&shared),
            threads: Vec::with_capacity(workers),
        };
        for (id, endpoint) in mesh.into_iter().enumerate() {
            let core = cores.as_ref().map(|cores| cores[id]);
            let totals = totals.get_mut(id).and_then(Option::take);
            let worker = Worker::new(
                id,
                Arc::clone(&shared),
                endpoint,
                sources[id].take(),
                totals,
            );
            let spawned = std::thread::Builder::new()
                .name(format!("microbatch-worker-{id}"))
                .spawn(move || crate::worker::thread_main(worker, core));
            match spawned {
                Ok(handle) => engine.threads.push(handle),
                Err(source) => {
                    shared.fail(EngineError::Spawn { worker: id, source });
                    return Err(engine
                        .stop()
                        .expect_err("a failed engine reports its failure"));
                }
            }
        }
        Ok(engine)
    }

    /// A handle pushing into a new ring attached to the least-loaded
    /// worker: the one with the fewest live handles, then the fewest
    /// records taken so far (two handles made at the same moment may pick
    /// the same worker). Handles can be made while the engine runs; after
    /// shutdown their pushes return `Closed`.
    pub fn producer(&self) -> Producer<R> {
        let intake = &self.shared.intake;
        let worker = (0..self.shared.workers)
            .min_by_key(|&w| {
                (
                    intake.workers[w].producers.load(Ordering::Relaxed),
                    self.shared.taken[w].load(Ordering::Relaxed),
                )
            })
            .unwrap_or(0);
        Producer::attach(
            self.shared.intake.clone(),
            worker,
            self.shared.config.ring_capacity,
        )
    }

    /// A handle pushing into a new ring attached to `worker`.
    pub fn producer_for(&self, worker: usize) -> Result<Producer<R>, EngineError> {
        if worker >= self.shared.workers {
            return Err(EngineError::NoSuchWorker {
                worker,
                workers: self.shared.workers,
            });
        }
        Ok(Producer::attach(
            self.shared.intake.clone(),
            worker,
            self.shared.config.ring_capacity,
        ))
    }

    /// The settings the engine runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Totals so far and the last completed epoch's progress.
    pub fn progress(&self) -> Progress {
        self.shared.progress()
    }

    /// A copy of the record-latency histogram (µs) over every completed
    /// epoch so far.
    pub fn latency_histogram(&self) -> Histogram<u64> {
        lock(&self.shared.completion).histogram.clone()
    }

    /// Whether the engine stopped on an error (a worker panic, a failing
    /// sink); [`shutdown`](Engine::shutdown) returns that error.
    pub fn has_failed(&self) -> bool {
        self.shared.has_failed()
    }

    /// Whether every built-in source is exhausted (true when the engine has
    /// none). Producers are not counted: the caller knows its own.
    pub fn sources_exhausted(&self) -> bool {
        self.shared.sources_active.load(Ordering::Acquire) == 0
    }

    /// Blocks (without polling) until every built-in source is exhausted,
    /// the engine failed, or `timeout` passed; returns whether the sources
    /// are exhausted.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use microbatch::{job::{self, count}, sink::DiscardSink, source::IterSource, Engine};
    /// let engine = Engine::builder(job::records::<u64>().key_by(|v| *v).aggregate(count()), DiscardSink)
    ///     .workers(1)
    ///     .source(IterSource::new(0..1000u64))
    ///     .start()?;
    /// while !engine.wait_for_sources(Duration::from_millis(100)) {
    ///     // Report progress, check a deadline...
    /// }
    /// assert_eq!(engine.shutdown()?.records_in_results, 1000);
    /// # Ok::<(), microbatch::EngineError>(())
    /// ```
    pub fn wait_for_sources(&self, timeout: Duration) -> bool {
        let shared = &self.shared;
        let (mutex, ended) = &shared.sources_ended;
        let _guard = ended
            .wait_timeout_while(lock(mutex), timeout, |_| {
                shared.sources_active.load(Ordering::Acquire) > 0 && !shared.has_failed()
            })
            .unwrap_or_else(PoisonError::into_inner);
        self.sources_exhausted()
    }

    /// Waits until every built-in source is exhausted (or the engine
    /// failed), then shuts down.
    pub fn finish(self) -> Result<Summary, EngineError> {
        while !self.wait_for_sources(Duration::from_secs(1)) && !self.shared.has_failed() {}
        self.shutdown()
    }

    /// Stops taking records, seals the open epoch, drains every ring,
    /// emits the last results and joins the workers.
    pub fn shutdown(mut self) -> Result<Summary, EngineError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<Summary, EngineError> {
        self.shared.intake.close();
        for (worker, handle) in self.threads.drain(..).enumerate() {
            if let Err(payload) = handle.join() {
                self.shared.fail(EngineError::WorkerPanicked {
                    worker,
                    epoch: None,
                    message: crate::worker::panic_message(payload.as_ref()),
                });
            }
        }
        if let Some(error) = lock(&self.shared.failure).take() {
            return Err(error);
        }
        let progress = self.shared.progress();
        Ok(Summary {
            records_accepted: progress.records_taken,
            records_in_results: progress.records_in_results,
            records_stolen: progress.records_stolen,
            records_dead_lettered: progress.dead_letters,
            epochs: progress.epochs_completed,
            rows: progress.rows,
            elapsed: self.shared.start.elapsed(),
            latency: progress.latency,
            unpinned: progress.unpinned,
            latency_histogram: lock(&self.shared.completion).histogram.clone(),
        })
    }
}

impl<R, J: Job<R>> Drop for Engine<R, J> {
    fn drop(&mut self) {
        self.shared.intake.close();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl<R, J: Job<R>> std::fmt::Debug for Engine<R, J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.shared.workers)
            .field("clock", &self.shared.clock)
            .finish_non_exhaustive()
    }
}
