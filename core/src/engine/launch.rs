//! Start-up, in three steps: [`validate`] the settings and the job,
//! [`resume`] from the checkpoint (where the run starts, the totals it
//! starts with), [`spawn`] the runtime and one worker thread per core.

use std::time::Instant;

use crossbeam_utils::CachePadded;

use super::builder::{EngineBuilder, Resumption};
use super::Engine;
use crate::checkpoint::{
    restore_totals, resume_plan, Checkpoint, CheckpointError, QueryCommits, StateSnapshot,
};
use crate::config::{Config, ConfigError, OnPanic};
use crate::epoch::clock::EpochClock;
use crate::epoch::completion::{Completion, Published};
use crate::epoch::interval::IntervalController;
use crate::epoch::salted::SaltedParts;
use crate::epoch::slot::EpochSlot;
use crate::error::EngineError;
use crate::fault::PanicHandler;
use crate::input::Lanes;
use crate::job::Job;
use crate::runtime::Runtime;
use crate::source::{EpochPlan, Source};
use crate::sync::cold::{Mutex, OnceLock, ThreadBuilder};
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::telemetry::Telemetry;
use crate::worker::{thread_main, Worker};

/// Where the run starts, as [`resume`] finds it.
struct Start<T> {
    /// The epoch plan under a checkpoint.
    plan: Option<EpochPlan>,
    /// Each partition's running totals, restored from a snapshot.
    totals: Vec<Option<T>>,
    first_epoch: u64,
    /// See `Runtime::replay_until`.
    replay_until: Option<u64>,
}

/// Checks the settings and the job before anything is built; returns the
/// job's partition count.
fn validate<R, J: Job<R>>(
    config: &Config,
    job: &J,
    checkpoint: Option<&Checkpoint>,
    has_source: bool,
) -> Result<usize, EngineError> {
    if let (Some(_), Some(target)) = (checkpoint, config.target_latency) {
        return Err(ConfigError::new(
            "target_latency",
            format!("{target:?}"),
            "none under a checkpoint: its epochs are cut by log position",
        )
        .into());
    }
    config.validate()?;
    let workers = config.workers;
    job.check(workers)
        .map_err(|reason| EngineError::Job { workers, reason })?;
    let partitions = job.partitions(workers);
    if !(1..=workers).contains(&partitions) {
        return Err(EngineError::Job {
            workers,
            reason: format!("a job needs between 1 and {workers} partitions, not {partitions}"),
        });
    }
    if checkpoint.is_some() {
        job.check_checkpoint()
            .map_err(|reason| EngineError::Job { workers, reason })?;
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
    }
    Ok(partitions)
}

/// Binds the checkpoint to the source and finds where the run starts: the
/// epoch plan, the snapshot of running totals, and the committed epochs a
/// job with totals replays without output.
fn resume<R, J: Job<R>>(
    checkpoint: Option<&mut Checkpoint>,
    resumption: Option<Resumption>,
    source_identity: Option<&str>,
    job: &J,
    partitions: usize,
) -> Result<Start<J::Totals>, EngineError> {
    let Some(checkpoint) = checkpoint else {
        return match resumption {
            Some(resumption) => resume_from_sink(resumption, job, partitions),
            None => Ok(Start {
                plan: None,
                totals: Vec::new(),
                first_epoch: 0,
                replay_until: None,
            }),
        };
    };
    if resumption.is_some() {
        return Err(ConfigError::new(
            "resume_from",
            "with a checkpoint",
            "one of the two: a checkpoint resumes from its own directory",
        )
        .into());
    }
    let failed = |epoch| move |source| EngineError::Checkpoint { epoch, source };
    checkpoint
        .bind_source(source_identity)
        .map_err(failed(checkpoint.next_epoch()))?;
    let (mut plan, restored): (EpochPlan, Option<StateSnapshot>) =
        resume_plan(checkpoint, job, partitions).map_err(failed(checkpoint.next_epoch()))?;
    let totals = match &restored {
        None => Vec::new(),
        Some(state) => restore_totals(job, state, partitions).map_err(failed(state.epoch))?,
    };
    // Several queries commit on their own: the run starts at the first
    // epoch one of them has not committed, and the ones that did fold it
    // without output.
    let commits = QueryCommits::of(checkpoint);
    if let Some(first) = job
        .resume_query_commits(&commits)
        .map_err(failed(checkpoint.next_epoch()))?
    {
        plan.first_epoch = plan.first_epoch.min(first);
    }
    let first_epoch = plan.first_epoch;
    let replay_until = checkpoint
        .last_committed()
        .filter(|&last| last >= first_epoch);
    Ok(Start {
        plan: Some(plan),
        totals,
        first_epoch,
        replay_until,
    })
}

/// Where a run resumed from its sink starts: its first epoch, and each
/// partition's totals decoded from the sink's.
fn resume_from_sink<R, J: Job<R>>(
    resumption: Resumption,
    job: &J,
    partitions: usize,
) -> Result<Start<J::Totals>, EngineError> {
    let Resumption { next_epoch, totals } = resumption;
    let unusable = |message: String| EngineError::Checkpoint {
        epoch: next_epoch,
        source: CheckpointError::Unusable(message),
    };
    let totals = match totals {
        Some(_) if !job.keeps_totals() => {
            return Err(unusable(
                "the sink holds running totals, but this job keeps none: \
                 it was written by another job"
                    .into(),
            ))
        }
        None if job.keeps_totals() && next_epoch > 0 => {
            return Err(unusable(format!(
                "the sink committed epochs up to {} without this job's running totals: \
                 it was written by another job, or its state was removed",
                next_epoch - 1
            )))
        }
        None => Vec::new(),
        Some(parts) if parts.len() != partitions => {
            return Err(unusable(format!(
                "the sink's running totals have {} partitions, this run {partitions}: \
                 resume with the workers it was written with",
                parts.len()
            )))
        }
        Some(parts) => parts
            .iter()
            .enumerate()
            .map(|(partition, bytes)| {
                job.load_totals(bytes).map(Some).map_err(|message| {
                    unusable(format!(
                        "the sink's running totals of partition {partition} cannot be read: {message}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Start {
        plan: None,
        totals,
        first_epoch: next_epoch,
        replay_until: None,
    })
}

/// Builds the runtime and starts one worker thread per core, each with its
/// endpoint of the shuffle, its share of the source and its partition's
/// restored totals.
fn spawn<R: Send + 'static, J: Job<R>>(
    builder: EngineBuilder<R, J>,
    partitions: usize,
    panic_handler: Option<PanicHandler<R>>,
    mut start: Start<J::Totals>,
) -> Result<Engine<R, J>, EngineError> {
    let EngineBuilder {
        config,
        job,
        sink,
        source,
        listener,
        checkpoint,
        metrics_name,
        ..
    } = builder;
    let workers = config.workers;
    let mut sources: Vec<Option<Box<dyn Source<R>>>> = match source {
        Some(split) => split(workers, start.plan)?.into_iter().map(Some).collect(),
        None => (0..workers).map(|_| None).collect(),
    };
    let window = config.max_epochs_in_flight;
    // A sender is at most `window` epochs ahead of an owner, so these
    // rings never fill; the margin is for the buffer-return rings.
    let shuffle = crate::shuffle::mesh(workers, 2 * window).map_err(|e| {
        ConfigError::new(
            "max_epochs_in_flight",
            window,
            format!("a mesh that fits in memory ({e})"),
        )
    })?;
    let started = Instant::now();
    let interval_control = config
        .target_latency
        .zip(config.interval)
        .map(|(target, start)| IntervalController::new(target, start));
    let runtime = Arc::new(Runtime {
        clock: EpochClock::starting_at(
            start.first_epoch,
            workers,
            window as u64,
            interval_control
                .as_ref()
                .map(IntervalController::interval)
                .or(config.interval),
            0,
        ),
        interval_control: interval_control.map(Mutex::new),
        workers,
        partitions,
        job,
        sink,
        start: started,
        lanes: Arc::new(Lanes::new(workers, started, config.overload)),
        drained: AtomicUsize::new(0),
        final_epoch: AtomicU64::new(u64::MAX),
        failed: AtomicBool::new(false),
        failure: Mutex::new(None),
        cause: OnceLock::new(),
        frontier: AtomicU64::new(0),
        telemetry: Telemetry::register(workers, config.ring_capacity, metrics_name.as_deref()),
        running: AtomicUsize::new(0),
        #[cfg(feature = "tokio")]
        changed: ::tokio::sync::Notify::new(),
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
        salted: SaltedParts::new(window),
        completion: Mutex::new(Completion::new(start.first_epoch)),
        published: Mutex::new(Published::new()),
        listener,
        panic_handler,
        planned: checkpoint.is_some(),
        checkpoint,
        first_epoch: start.first_epoch,
        replay_until: start.replay_until,
        config,
    });
    let cores = cores_for(&runtime);
    let mut engine = Engine {
        runtime: Arc::clone(&runtime),
        threads: Vec::with_capacity(workers),
    };
    for (id, endpoint) in shuffle.into_iter().enumerate() {
        let core = cores.as_ref().map(|cores| cores[id]);
        let totals = start.totals.get_mut(id).and_then(Option::take);
        let worker = Worker::new(
            id,
            Arc::clone(&runtime),
            endpoint,
            sources[id].take(),
            totals,
        );
        // Counted before the thread can return, uncounted if it never ran.
        runtime.running.fetch_add(1, Ordering::AcqRel);
        let spawned = ThreadBuilder::new()
            .name(format!("microbatch-worker-{id}"))
            .spawn(move || thread_main(worker, core));
        match spawned {
            Ok(handle) => engine.threads.push(handle),
            Err(source) => {
                runtime.running.fetch_sub(1, Ordering::AcqRel);
                runtime.fail(EngineError::Spawn { worker: id, source });
                return Err(engine
                    .stop()
                    .expect_err("a failed engine reports its failure")
                    .error);
            }
        }
    }
    let config = &runtime.config;
    tracing::info!(
        target: "microbatch",
        workers,
        pin = config.pin,
        interval = ?config.interval,
        max_batch_records = ?config.max_batch_records,
        ring_capacity = config.ring_capacity,
        first_epoch = runtime.first_epoch,
        "the engine started"
    );
    Ok(engine)
}

/// The cores to pin the workers to, or `None` (with a note why) to run
/// them unpinned. Read once, before any thread is pinned: the list answers
/// from the calling thread's affinity mask.
fn cores_for<R, J: Job<R>>(runtime: &Runtime<R, J>) -> Option<Vec<core_affinity::CoreId>> {
    if !runtime.config.pin {
        return None;
    }
    let workers = runtime.workers;
    match core_affinity::get_core_ids() {
        Some(cores) if cores.len() >= workers => Some(cores),
        Some(cores) => {
            runtime.note_unpinned(format!(
                "{} cores available for {workers} workers; running unpinned",
                cores.len()
            ));
            None
        }
        None => {
            runtime.note_unpinned("the core list is unavailable; running unpinned".into());
            None
        }
    }
}

impl<R: Send + 'static, J: Job<R>> EngineBuilder<R, J> {
    /// Checks the settings, the job and the source, then starts the
    /// workers (`validate`, `resume`, `spawn`).
    pub fn start(mut self) -> Result<Engine<R, J>, EngineError> {
        let partitions = validate(
            &self.config,
            &self.job,
            self.checkpoint.as_ref(),
            self.source.is_some(),
        )?;
        let panic_handler = self.panic_handler.take().transpose()?;
        if panic_handler.is_none() && self.config.on_panic != OnPanic::Stop {
            return Err(ConfigError::new(
                "on_panic",
                format!("{:?}", self.config.on_panic).to_lowercase(),
                "\"stop\" unless the builder is given on_panic(config.panic_policy()), \
                 which needs records that are Clone and Serialize",
            )
            .into());
        }
        if panic_handler.is_some() && self.job.carries() {
            return Err(ConfigError::new(
                "on_panic",
                format!("{:?}", self.config.on_panic).to_lowercase(),
                "\"stop\" for a job that keeps parts across epochs (a query with `every` > 1): \
                 a batch folded again after a panic starts from new parts and would lose them",
            )
            .into());
        }
        let start = resume(
            self.checkpoint.as_mut(),
            self.resumption.take(),
            self.source_identity.as_deref(),
            &self.job,
            partitions,
        )?;
        spawn(self, partitions, panic_handler, start)
    }
}
