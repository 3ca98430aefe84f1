//! The engine handle: producers, progress, and a shutdown that drains
//! everything accepted. Start-up is in `launch` (validate, resume, spawn),
//! the builder in `builder`; what the handle shares with the workers is the
//! `Runtime`.

#[cfg(feature = "tokio")]
mod awaiting;
mod builder;
mod launch;

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

pub use self::builder::{EngineBuilder, Resumption};
use crate::config::Config;
use crate::error::EngineError;
use crate::fault::panic_message;
use crate::input::{Producer, SharedProducer};
use crate::job::Job;
use crate::progress::{LatencySummary, Progress};
use crate::runtime::Runtime;
use crate::sink::Sink;
use crate::sync::cold::{lock, JoinHandle};
use crate::sync::{Arc, Ordering, PoisonError};

/// What [`Engine::shutdown`] reports. Its `Debug` form shows the latency
/// histogram by its count and largest value, not its every bucket (an
/// `unwrap` of a failed shutdown prints a line, not pages).
#[derive(Clone, PartialEq, Serialize)]
#[non_exhaustive]
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
    /// Records an event-time job dropped as late, behind its watermark:
    /// counted in `records_in_results` (taken in an epoch that completed)
    /// but in no row; see
    /// [`EpochProgress::late_records`](crate::progress::EpochProgress::late_records).
    pub late_records: u64,
    /// The most windows an event-time job held open after an epoch.
    pub open_windows_max: usize,
    /// Windows (or sessions) an event-time job emitted, each firing once
    /// (a window fired on time and again late counts twice).
    pub windows_emitted: u64,
    /// Records [`Producer::send`](crate::Producer::send) dropped under
    /// [`Overload::DropNewest`](crate::Overload::DropNewest): never
    /// accepted.
    pub records_shed: u64,
    /// Workers that ran unpinned.
    pub unpinned: Vec<usize>,
    /// The record-latency histogram (µs) over the whole run, as
    /// [`Engine::latency_histogram`] gives it while the engine runs.
    #[serde(skip)]
    pub latency_histogram: Histogram<u64>,
}

impl std::fmt::Debug for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let histogram = &self.latency_histogram;
        f.debug_struct("Summary")
            .field("records_accepted", &self.records_accepted)
            .field("records_in_results", &self.records_in_results)
            .field("records_stolen", &self.records_stolen)
            .field("epochs", &self.epochs)
            .field("rows", &self.rows)
            .field("elapsed", &self.elapsed)
            .field("latency", &self.latency)
            .field("records_dead_lettered", &self.records_dead_lettered)
            .field("late_records", &self.late_records)
            .field("open_windows_max", &self.open_windows_max)
            .field("windows_emitted", &self.windows_emitted)
            .field("records_shed", &self.records_shed)
            .field("unpinned", &self.unpinned)
            .field(
                "latency_histogram",
                &format_args!(
                    "Histogram {{ len: {}, max: {} }}",
                    histogram.len(),
                    histogram.max()
                ),
            )
            .finish()
    }
}

/// A running engine. See the crate docs for an example.
///
/// Dropping it shuts it down (and discards the summary); call
/// [`shutdown`](Engine::shutdown) to get the summary and any error.
pub struct Engine<R, J: Job<R>> {
    runtime: Arc<Runtime<R, J>>,
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
            resumption: None,
            panic_handler: None,
            metrics_name: None,
            _records: std::marker::PhantomData,
        }
    }

    /// A handle pushing into a new ring attached to the least-loaded
    /// worker: the one with the fewest live handles, then the fewest
    /// records taken so far (two handles made at the same moment may pick
    /// the same worker). Handles can be made while the engine runs; after
    /// shutdown their pushes return `Closed`.
    ///
    /// Each handle owns a ring of [`Config::ring_capacity`] records (see
    /// `docs/embedding.md` for the memory): one per long-lived thread, not
    /// per request. Many short-lived callers share a
    /// [`shared_producer`](Engine::shared_producer).
    pub fn producer(&self) -> Producer<R> {
        self.attach(self.least_loaded_worker(), false)
    }

    /// A handle pushing into a new ring attached to `worker`.
    pub fn producer_for(&self, worker: usize) -> Result<Producer<R>, EngineError> {
        if worker >= self.runtime.workers {
            return Err(EngineError::NoSuchWorker {
                worker,
                workers: self.runtime.workers,
            });
        }
        Ok(self.attach(worker, false))
    }

    /// A `Clone + Sync` handle for many callers (request handlers, short
    /// tasks), pushing into `rings` rings (at least one), each a
    /// [`producer`](Engine::producer) attached to the least-loaded worker
    /// in turn. A clone costs an `Arc` clone and no memory of its own; the
    /// rings are freed when the last clone is dropped.
    ///
    /// ```
    /// use microbatch::job::{self, count};
    /// use microbatch::sink::DiscardSink;
    /// use microbatch::Engine;
    ///
    /// let engine = Engine::builder(job::records::<u32>().key_by(|r| *r).aggregate(count()), DiscardSink)
    ///     .embedded()
    ///     .start()?;
    /// let shared = engine.shared_producer(2);
    /// std::thread::scope(|scope| {
    ///     for caller in 0..8u32 {
    ///         let shared = shared.clone();
    ///         scope.spawn(move || shared.push(caller).expect("the engine runs"));
    ///     }
    /// });
    /// assert_eq!(engine.shutdown()?.records_in_results, 8);
    /// # Ok::<(), microbatch::EngineError>(())
    /// ```
    pub fn shared_producer(&self, rings: usize) -> SharedProducer<R> {
        SharedProducer::new(self.attach_rings(rings, false))
    }

    /// `rings` (at least one) new producer rings, each attached to the
    /// least-loaded worker when it is made.
    pub(crate) fn attach_rings(&self, rings: usize, wakes: bool) -> Vec<Producer<R>> {
        (0..rings.max(1))
            .map(|_| self.attach(self.least_loaded_worker(), wakes))
            .collect()
    }

    /// The worker with the fewest live handles, then the fewest records
    /// taken so far.
    fn least_loaded_worker(&self) -> usize {
        let lanes = &self.runtime.lanes;
        (0..self.runtime.workers)
            .min_by_key(|&w| {
                (
                    lanes.workers[w].producers.load(Ordering::Relaxed),
                    self.runtime.taken[w].load(Ordering::Relaxed),
                )
            })
            .unwrap_or(0)
    }

    /// A new ring attached to `worker`; `wakes`: an async producer's.
    fn attach(&self, worker: usize, wakes: bool) -> Producer<R> {
        Producer::attach(
            Arc::clone(&self.runtime.lanes),
            worker,
            self.runtime.config.ring_capacity,
            wakes,
        )
    }

    /// The settings the engine runs with.
    pub fn config(&self) -> &Config {
        &self.runtime.config
    }

    /// Totals so far and the last completed epoch's progress.
    pub fn progress(&self) -> Progress {
        self.runtime.progress()
    }

    /// A copy of the record-latency histogram (µs) over every completed
    /// epoch so far.
    pub fn latency_histogram(&self) -> Histogram<u64> {
        lock(&self.runtime.published).histogram.clone()
    }

    /// Whether the engine stopped on an error (a worker panic, a failing
    /// sink); [`shutdown`](Engine::shutdown) returns that error.
    pub fn has_failed(&self) -> bool {
        self.runtime.has_failed()
    }

    /// Whether every built-in source is exhausted (true when the engine has
    /// none). Producers are not counted: the caller knows its own.
    pub fn sources_exhausted(&self) -> bool {
        self.runtime.sources_active.load(Ordering::Acquire) == 0
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
        let runtime = &self.runtime;
        let (mutex, ended) = &runtime.sources_ended;
        let _guard = ended
            .wait_timeout_while(lock(mutex), timeout, |_| {
                runtime.sources_active.load(Ordering::Acquire) > 0 && !runtime.has_failed()
            })
            .unwrap_or_else(PoisonError::into_inner);
        self.sources_exhausted()
    }

    /// Why the engine failed, once it has (a worker panic, a failing sink
    /// or checkpoint); `None` while it runs. Producers only see `Closed`,
    /// and a [`ChannelSink`](crate::sink::ChannelSink)'s reader only sees
    /// its iteration end: this says why.
    pub fn failure(&self) -> Option<String> {
        self.runtime.failure()
    }

    /// Waits until every built-in source is exhausted (or the engine
    /// failed), then shuts down.
    pub fn finish(self) -> Result<Summary, ShutdownError> {
        while !self.wait_for_sources(Duration::from_secs(1)) && !self.runtime.has_failed() {}
        self.shutdown()
    }

    /// Stops taking records, seals the open epoch, drains every ring,
    /// emits the last results and joins the workers. On a failure the
    /// error carries the summary of what was done up to it.
    pub fn shutdown(mut self) -> Result<Summary, ShutdownError> {
        self.stop()
    }

    pub(super) fn stop(&mut self) -> Result<Summary, ShutdownError> {
        self.runtime.lanes.close();
        for (worker, handle) in self.threads.drain(..).enumerate() {
            if let Err(payload) = handle.join() {
                self.runtime.fail(EngineError::WorkerPanicked {
                    worker,
                    epoch: None,
                    message: panic_message(payload.as_ref()),
                });
            }
        }
        self.runtime.sink.close();
        let summary = self.summary();
        tracing::info!(
            target: "microbatch",
            records_in_results = summary.records_in_results,
            epochs = summary.epochs,
            records_shed = summary.records_shed,
            elapsed = ?summary.elapsed,
            "the engine shut down"
        );
        match lock(&self.runtime.failure).take() {
            Some(error) => Err(ShutdownError {
                error,
                summary: Box::new(summary),
            }),
            None => Ok(summary),
        }
    }

    /// The figures so far, as a summary.
    fn summary(&self) -> Summary {
        let progress = self.runtime.progress();
        Summary {
            records_accepted: progress.records_taken,
            records_in_results: progress.records_in_results,
            records_stolen: progress.records_stolen,
            records_dead_lettered: progress.dead_letters,
            late_records: progress.late_records,
            open_windows_max: progress.open_windows_max,
            windows_emitted: progress.windows_emitted,
            records_shed: progress.records_shed,
            epochs: progress.epochs_completed,
            rows: progress.rows,
            elapsed: self.runtime.elapsed(),
            latency: progress.latency,
            unpinned: progress.unpinned,
            latency_histogram: lock(&self.runtime.published).histogram.clone(),
        }
    }
}

/// Why [`Engine::shutdown`] (or [`Engine::finish`]) failed, with the
/// summary of what the engine did up to the failure: records accepted and
/// in results, epochs and rows emitted.
///
/// It converts into its [`EngineError`], so `?` works in a function that
/// returns `Result<_, EngineError>`.
#[derive(Debug)]
#[non_exhaustive]
pub struct ShutdownError {
    /// What went wrong.
    pub error: EngineError,
    /// The figures up to the failure.
    pub summary: Box<Summary>,
}

impl std::fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} records accepted, {} in results of {} epochs)",
            self.error,
            self.summary.records_accepted,
            self.summary.records_in_results,
            self.summary.epochs
        )
    }
}

impl std::error::Error for ShutdownError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<ShutdownError> for EngineError {
    fn from(failure: ShutdownError) -> Self {
        failure.error
    }
}

impl<R, J: Job<R>> Drop for Engine<R, J> {
    fn drop(&mut self) {
        self.runtime.lanes.close();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl<R, J: Job<R>> std::fmt::Debug for Engine<R, J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.runtime.workers)
            .field("clock", &self.runtime.clock)
            .finish_non_exhaustive()
    }
}
