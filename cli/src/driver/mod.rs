//! The driver: runs one profile's job on the engine with its feed of
//! records, watches the warm-up and the measured window, and reports.
//!
//! The steps of `Runner::drive`, each a named function: build the engine
//! (`builder`: settings, progress listener, checkpoint), attach the feed
//! and start, watch it tick by tick (`watch`: progress bar, warm-up
//! snapshot, interval log, end of input), shut down and check that nothing
//! was lost, then report the measured window (`window`).
//!
//! The measured window starts when the warm-up ends: the record-latency
//! histogram, the accepted count and the CPU time are snapshotted then and
//! subtracted from their values at the end; epochs count as measured when
//! they open after the warm-up.

pub mod checkpoint;
pub mod error;
pub mod feed;
pub mod input;
mod interval_log;
mod window;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::serialization::V2DeflateSerializer;
use microbatch::checkpoint::Checkpoint;
use microbatch::job::Job;
use microbatch::progress::EpochProgress;
use microbatch::sink::Sink;
use microbatch::{Engine, EngineBuilder, Summary};
use serde::Serialize;

use self::error::{output_error, RunError};
use self::feed::{Feed, Producers};
use self::interval_log::IntervalLog;
use self::window::{Ending, Snapshot};
use crate::cpu;
use crate::profile::schema::Profile;
use crate::report::{EpochLine, RunReport};

/// How often the runner looks at the engine (progress bar, end of run).
const TICK: Duration = Duration::from_millis(100);

/// What the runner tells whoever watches it, every tick.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// Since the engine started.
    pub elapsed: Duration,
    /// Warm-up plus duration.
    pub planned: Duration,
    /// Still in the warm-up.
    pub warming_up: bool,
    /// Epochs emitted.
    pub epochs: u64,
    /// Records per second taken in since the last tick.
    pub records_per_second: f64,
    /// p99 record latency of the last epoch, µs.
    pub last_p99_micros: u64,
    /// The interval the last epoch opened with (the adaptive interval's
    /// choice under `engine.interval = "auto"`).
    pub last_interval: Option<Duration>,
    /// Under a latency target, what the last epoch said of it.
    pub last_target: Option<microbatch::progress::TargetStatus>,
    /// Records taken in so far.
    pub records_taken: u64,
    /// Records in emitted results so far.
    pub records_in_results: u64,
}

/// Watches a run (the CLI's progress bar, the live page).
pub trait Observer {
    /// Called about every 100 ms.
    fn tick(&mut self, status: &Status);

    /// Whether [`epoch`](Observer::epoch) should be called: the lines cost
    /// the runner's thread a little per epoch, so only if wanted.
    fn wants_epochs(&self) -> bool {
        false
    }

    /// An epoch's line, once it is complete, in order, from the runner's
    /// thread (on its next tick).
    fn epoch(&mut self, line: &EpochLine) {
        let _ = line;
    }

    /// A run ended with this report (each run of a sweep).
    fn run_done(&mut self, report: &RunReport) {
        let _ = report;
    }
}

/// Watches nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn tick(&mut self, _: &Status) {}
}

/// Extra files a run writes as it goes.
#[derive(Debug, Clone, Default)]
pub struct RunFiles {
    /// An HdrHistogram interval log of record latency (µs, one interval a
    /// second, warm-up included and tagged `warmup`).
    pub interval_log: Option<PathBuf>,
    /// A checkpoint directory to resume from and log to (`--checkpoint`):
    /// see [`open_checkpoint`](checkpoint::open_checkpoint).
    pub checkpoint: Option<PathBuf>,
}

/// The report and every epoch's progress (warm-up included).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The summary.
    pub report: RunReport,
    /// Each epoch's progress, in order, in plain units.
    pub epochs: Vec<EpochLine>,
}

/// What every run needs, whatever its records.
pub struct Runner<'a> {
    pub(crate) profile: &'a Profile,
    pub(crate) name: &'a str,
    pub(crate) files: &'a RunFiles,
    pub(crate) observer: &'a mut dyn Observer,
    /// Epochs whose lines the observer has been given.
    epochs_told: usize,
    /// Called once the warm-up is over, when the measured window starts.
    at_warm_up: Option<Box<dyn FnMut() + 'a>>,
}

impl<'a> Runner<'a> {
    /// A run of `profile`, labelled `name`, writing `files`, watched by
    /// `observer`.
    pub(crate) fn new(
        profile: &'a Profile,
        name: &'a str,
        files: &'a RunFiles,
        observer: &'a mut dyn Observer,
    ) -> Self {
        Runner {
            profile,
            name,
            files,
            observer,
            epochs_told: 0,
            at_warm_up: None,
        }
    }

    /// Calls `then` once the warm-up is over (at the start without one).
    pub(crate) fn at_warm_up(mut self, then: impl FnMut() + 'a) -> Self {
        self.at_warm_up = Some(Box::new(then));
        self
    }
}

/// Every epoch's progress, as the engine's listener hands it over.
type EpochRecord = Arc<Mutex<Vec<EpochProgress>>>;

/// Whether the built-in source and every producer thread are done.
fn input_done<R: Send + 'static, J: Job<R>>(engine: &Engine<R, J>, producers: &Producers) -> bool {
    engine.sources_exhausted() && producers.all_ended()
}

impl Runner<'_> {
    /// Runs `job` into `sink` with the records of `feed`, under
    /// `checkpoint` if any, and reports.
    pub(crate) fn drive<R: Clone + Serialize + Send + 'static, J: Job<R>, F: Feed<R>>(
        mut self,
        job: J,
        sink: impl Sink<J::Row>,
        checkpoint: Option<Checkpoint>,
        mut feed: F,
    ) -> Result<RunOutcome, RunError> {
        let workload = &self.profile.workload;
        let epochs = EpochRecord::default();
        let planned_epoch = checkpoint.as_ref().map(Checkpoint::records_per_epoch);
        let checkpoint_note = checkpoint.as_ref().map(window::checkpoint_note);
        let builder = self.builder(job, sink, checkpoint, &epochs);
        let builder = feed.attach(builder, workload);
        // Set-up (the sources' tables, the workers, the shuffle) is not
        // part of the run: the clock starts once the engine runs.
        let setting_up = Instant::now();
        let engine = builder.start()?;
        let set_up = setting_up.elapsed();
        let started = Instant::now();
        let cpu_start = cpu::process_time();
        let stop = Arc::new(AtomicBool::new(false));
        let producers = feed.spawn(&engine, workload, started, &stop)?;

        let mut log_file = match &self.files.interval_log {
            Some(path) => Some((
                path.as_path(),
                BufWriter::new(
                    File::create(path).map_err(|error| output_error(path, error.to_string()))?,
                ),
            )),
            None => None,
        };
        let mut serializer = V2DeflateSerializer::new();
        let mut log = match &mut log_file {
            Some((path, file)) => Some(IntervalLog::begin(path, file, &mut serializer, self.name)?),
            None => None,
        };
        let snapshot = self.watch(&engine, &producers, started, cpu_start, &mut log, &epochs)?;
        stop.store(true, Ordering::Release);
        producers.join()?;
        let summary = engine.shutdown()?;
        let ending = Ending {
            started,
            ended: Instant::now(),
            cpu: cpu::process_time(),
            planned_epoch,
            checkpoint_note,
            set_up,
        };
        if let Some(log) = &mut log {
            log.write(
                &summary.latency_histogram,
                started.elapsed(),
                self.profile.run.warmup,
            )?;
        }
        drop(log);
        if let Some((path, mut file)) = log_file {
            file.flush()
                .map_err(|error| output_error(path, error.to_string()))?;
        }
        check_nothing_lost(&summary)?;
        let epochs = std::mem::take(&mut *epochs.lock().unwrap_or_else(PoisonError::into_inner));
        let outcome = self.report(&summary, snapshot, epochs, ending);
        if self.observer.wants_epochs() {
            // The epochs completed after the last tick, the shutdown's last.
            for line in outcome.epochs.iter().skip(self.epochs_told) {
                self.observer.epoch(line);
            }
        }
        self.observer.run_done(&outcome.report);
        Ok(outcome)
    }

    /// The engine's builder: the profile's settings, a listener that
    /// records every epoch's progress, and the checkpoint, whose log
    /// positions cut the epochs instead of the clock.
    fn builder<R: Clone + Serialize + Send + 'static, J: Job<R>>(
        &self,
        job: J,
        sink: impl Sink<J::Row>,
        checkpoint: Option<Checkpoint>,
        epochs: &EpochRecord,
    ) -> EngineBuilder<R, J> {
        let listener = Arc::clone(epochs);
        let builder = Engine::builder(job, sink)
            .config(self.profile.engine_config())
            .on_progress(move |progress| {
                listener
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(progress.clone())
            });
        // The profile's panic policy (engine.on_panic), which needs the
        // record type's bounds the engine's start does not have.
        let builder = match self.profile.engine.panic_policy() {
            Some(policy) => builder.on_panic(policy),
            None => builder,
        };
        match checkpoint {
            Some(checkpoint) => builder.interval(None).checkpoint(checkpoint),
            None => builder,
        }
    }

    /// Watches the running engine until the planned time is up, the input
    /// ran out or the engine failed: ticks the observer, snapshots the
    /// figures when the warm-up ends, writes the interval log. Returns the
    /// warm-up snapshot, if the warm-up ended.
    fn watch<R: Send + 'static, J: Job<R>>(
        &mut self,
        engine: &Engine<R, J>,
        producers: &Producers,
        started: Instant,
        cpu_start: Option<Duration>,
        log: &mut Option<IntervalLog<'_>>,
        epochs: &EpochRecord,
    ) -> Result<Option<Snapshot>, RunError> {
        let run = &self.profile.run;
        let planned = run.warmup + run.duration;
        // Without a warm-up, the measured window is the whole run.
        let mut snapshot = run
            .warmup
            .is_zero()
            .then(|| Snapshot::at_start(started, &engine.latency_histogram(), cpu_start));
        let mut last_tick = (Instant::now(), 0u64);
        loop {
            let next = (started.elapsed() + TICK).min(planned);
            // Until the next tick, but a finite input that ends is seen
            // at once, so that its run's time is its own. Blocked, not
            // polling: a wake-up takes a core from a worker.
            while started.elapsed() < next && !input_done(engine, producers) {
                let left = next.saturating_sub(started.elapsed());
                if engine.sources_exhausted() {
                    // Producer threads wake this thread as they end.
                    std::thread::park_timeout(left);
                } else {
                    engine.wait_for_sources(left);
                }
            }
            let elapsed = started.elapsed();
            if snapshot.is_none() && elapsed >= run.warmup {
                snapshot = Some(Snapshot::now(engine, elapsed));
                if let Some(then) = self.at_warm_up.as_mut() {
                    then();
                }
            }
            if let Some(log) = log {
                if elapsed >= log.next {
                    log.write(&engine.latency_histogram(), elapsed, run.warmup)?;
                }
            }
            let progress = engine.progress();
            let now = Instant::now();
            let seconds = now.duration_since(last_tick.0).as_secs_f64().max(1e-9);
            self.observer.tick(&Status {
                elapsed,
                planned,
                warming_up: snapshot.is_none(),
                epochs: progress.epochs_completed,
                records_per_second: progress.records_taken.saturating_sub(last_tick.1) as f64
                    / seconds,
                last_p99_micros: progress
                    .last
                    .as_ref()
                    .map_or(0, |last| last.latency.p99_micros),
                last_interval: progress.last.as_ref().and_then(|last| last.interval),
                last_target: progress.last.as_ref().and_then(|last| last.target),
                records_taken: progress.records_taken,
                records_in_results: progress.records_in_results,
            });
            if self.observer.wants_epochs() {
                self.tell_epochs(epochs);
            }
            last_tick = (now, progress.records_taken);
            if elapsed >= planned || input_done(engine, producers) || engine.has_failed() {
                return Ok(snapshot);
            }
        }
    }

    /// Hands the observer the lines of the epochs completed since it was
    /// last told. Off the engine's threads: the listener only stored them.
    fn tell_epochs(&mut self, epochs: &EpochRecord) {
        let warmup = self.profile.run.warmup;
        // A copy under the lock, the lines outside it: the engine's
        // listener takes the same lock as each epoch completes.
        let new: Vec<EpochProgress> = {
            let epochs = epochs.lock().unwrap_or_else(PoisonError::into_inner);
            epochs.get(self.epochs_told..).unwrap_or_default().to_vec()
        };
        self.epochs_told += new.len();
        for epoch in &new {
            self.observer.epoch(&EpochLine::of(epoch, warmup));
        }
    }

    /// The report of the measured window and every epoch's line.
    fn report(
        &self,
        summary: &Summary,
        snapshot: Option<Snapshot>,
        epochs: Vec<EpochProgress>,
        ending: Ending,
    ) -> RunOutcome {
        let (report, since_start): (RunReport, Duration) =
            window::report(self.profile, self.name, summary, snapshot, &epochs, ending);
        let epochs = epochs
            .iter()
            .map(|epoch| EpochLine::of(epoch, since_start))
            .collect();
        RunOutcome { report, epochs }
    }
}

/// Fails the run if accepted records are missing from the results (and
/// from the dead-letter file).
fn check_nothing_lost(summary: &Summary) -> Result<(), RunError> {
    if summary.records_accepted != summary.records_in_results + summary.records_dead_lettered {
        return Err(RunError::Lost {
            accepted: summary.records_accepted,
            in_results: summary.records_in_results,
        });
    }
    Ok(())
}
