//! Runs one profile: starts the engine with the profile's job, source and
//! sink, runs the warm-up and the measured window, and reports.
//!
//! The measured window starts when the warm-up ends: the record-latency
//! histogram, the accepted count and the CPU time are snapshotted then and
//! subtracted from their values at the end; epochs count as measured when
//! they open after the warm-up.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use microbatch::checkpoint::{Checkpoint, CheckpointError};
use microbatch::job::Job;
use microbatch::log::{LogReader, LogSource};
use microbatch::progress::{EpochProgress, SealReason};
use microbatch::sink::sqlite::SqliteSink;
use microbatch::sink::{DiscardSink, FileFormat, FileSink, Sink};
use microbatch::source::{Event, Generator, IterSource, Poll, Source, SourceSpec};
use microbatch::{Engine, EngineBuilder, EngineError};

use super::cpu;
use super::jobs::{sql_values, with_job, Columns, OutputSink, Wanted, WithJob};
use super::profile::{JobKind, OutputKind, Profile, SourceKind, Workload};
use super::report::{EpochLine, EpochsByReason, HotKeyShare, Percentiles, RunReport};

/// How often the runner looks at the engine (progress bar, end of run).
const TICK: Duration = Duration::from_millis(100);
/// The span of one interval of the HdrHistogram log.
const LOG_INTERVAL: Duration = Duration::from_secs(1);
/// Records a producer thread pushes at a time.
const PRODUCER_CHUNK: usize = 4096;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The engine refused its settings or stopped on an error.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The input file cannot be read.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// The output directory or a log cannot be written.
    #[error("{what}: {message}")]
    Output {
        /// The file or directory.
        what: String,
        /// Why.
        message: String,
    },
    /// The command cannot run this profile.
    #[error("{0}")]
    Unsupported(String),
    /// `--checkpoint` cannot be used with this profile.
    #[error("--checkpoint: {0}")]
    CheckpointSetting(String),
    /// The checkpoint directory cannot be opened or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Accepted records are missing from the results: an engine bug.
    #[error("{accepted} records accepted but {in_results} in results: records were lost")]
    Lost {
        /// Accepted.
        accepted: u64,
        /// Counted in results.
        in_results: u64,
    },
}

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
}

/// Watches a run (the CLI's progress bar).
pub trait Observer {
    /// Called about every 100 ms.
    fn tick(&mut self, status: &Status);
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
    /// see [`open_checkpoint`].
    pub checkpoint: Option<PathBuf>,
}

/// Opens `profile`'s checkpoint directory `dir`. Only a record log read
/// by the engine itself (`workload.source = "log"`, no producer threads)
/// can be replayed. The log is cut into epochs by position: replayed at a
/// rate, the records an interval holds (`workload.rate` ×
/// `engine.interval`, at most `engine.max_batch_records`), as when live;
/// at the maximum rate or without an interval, `engine.max_batch_records`
/// records. The interval itself is then not used.
pub fn open_checkpoint(profile: &Profile, dir: &Path) -> Result<Checkpoint, RunError> {
    let workload = &profile.workload;
    let refuse = |message: &str| Err(RunError::CheckpointSetting(message.into()));
    if workload.source != SourceKind::Log {
        return refuse(
            "only a record log can be replayed: set workload.source = \"log\" and workload.path",
        );
    }
    if workload.producers > 0 {
        return refuse(
            "producer threads' records cannot be replayed: set workload.producers = 0 \
             (the engine reads the log itself)",
        );
    }
    let per_epoch = match (
        workload.rate.per_second(),
        profile.engine.interval,
        profile.engine.max_batch_records,
    ) {
        // What an interval holds at the replay rate, as when live.
        (Some(rate), Some(interval), cap) => ((rate as f64 * interval.as_secs_f64()).ceil() as u64)
            .clamp(1, cap.unwrap_or(u64::MAX).max(1)),
        (_, _, Some(records)) => records,
        _ => {
            return refuse(
                "a checkpointed run cuts the log into epochs by position: set \
                 workload.rate with engine.interval (an epoch is then rate × interval \
                 records), or engine.max_batch_records",
            )
        }
    };
    Ok(Checkpoint::open(dir, per_epoch)?)
}

/// The report and every epoch's progress (warm-up included).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The summary.
    pub report: RunReport,
    /// Each epoch's progress, in order, in plain units.
    pub epochs: Vec<EpochLine>,
}

/// Runs `profile`; `name` labels the report.
pub fn run(
    profile: &Profile,
    name: &str,
    files: &RunFiles,
    observer: &mut dyn Observer,
) -> Result<RunOutcome, RunError> {
    if profile.job.kind == JobKind::Clickstream {
        let runner = Runner {
            profile,
            name,
            files,
            observer,
        };
        return super::clickstream::run(runner);
    }
    let input = open_input(&profile.workload)?;
    run_with_input(profile, name, files, observer, input)
}

/// Runs `profile` on `input` instead of the one its workload names, e.g.
/// records generated into memory beforehand so that the run measures the
/// engine without the generator's cost.
pub fn run_with_input(
    profile: &Profile,
    name: &str,
    files: &RunFiles,
    observer: &mut dyn Observer,
    input: Input,
) -> Result<RunOutcome, RunError> {
    let runner = Runner {
        profile,
        name,
        files,
        observer,
    };
    with_job(&profile.job, RunJob { runner, input })
}

/// Where a run's records come from.
pub enum Input {
    /// The seeded generator.
    Generator,
    /// A CSV file's records, read whole before the run.
    Events(Vec<Event>),
    /// A record log, checked when opened and read in place.
    Log(LogReader<Event>),
}

/// Opens the workload's input: reads a CSV file whole, or opens and
/// checks a record log.
pub fn open_input(workload: &Workload) -> Result<Input, RunError> {
    let path = || {
        workload.path.as_deref().ok_or_else(|| RunError::Input {
            path: PathBuf::from("workload.path"),
            message: "a file or log source needs a path".into(),
        })
    };
    Ok(match workload.source {
        SourceKind::Generator => Input::Generator,
        SourceKind::File => Input::Events(read_events(path()?, workload.records)?),
        SourceKind::Log => {
            Input::Log(LogReader::open(path()?).map_err(|error| RunError::Input {
                path: path().map(Path::to_owned).unwrap_or_default(),
                message: error.to_string(),
            })?)
        }
    })
}

/// Reads a CSV file with the header `key,value` (at most `limit` records).
pub fn read_events(path: &Path, limit: Option<u64>) -> Result<Vec<Event>, RunError> {
    let fail = |message: String| RunError::Input {
        path: path.to_owned(),
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|error| fail(error.to_string()))?;
    let headers = reader.headers().map_err(|error| fail(error.to_string()))?;
    if headers.iter().map(str::trim).collect::<Vec<_>>() != ["key", "value"] {
        return Err(fail(format!(
            "the header is `{}`; accepted: `key,value` followed by rows of two unsigned integers",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    }
    let mut events = Vec::new();
    for row in reader.deserialize::<Event>() {
        if limit.is_some_and(|limit| events.len() as u64 >= limit) {
            break;
        }
        events.push(row.map_err(|error| fail(error.to_string()))?);
    }
    if events.is_empty() {
        return Err(fail("no records after the header".into()));
    }
    Ok(events)
}

/// What every run needs, whatever its records.
pub(crate) struct Runner<'a> {
    pub(crate) profile: &'a Profile,
    pub(crate) name: &'a str,
    pub(crate) files: &'a RunFiles,
    pub(crate) observer: &'a mut dyn Observer,
}

/// A run of the CLI's generic `key,value` records.
struct RunJob<'a> {
    runner: Runner<'a>,
    input: Input,
}

/// How a run's records get into the engine: a built-in source attached
/// before the start, or producer threads started after it.
pub(crate) trait Feed<R>: Sized {
    /// Attaches the built-in source, if the records come from one.
    fn attach<J: Job<R>>(
        &mut self,
        builder: EngineBuilder<R, J>,
        workload: &Workload,
    ) -> EngineBuilder<R, J>;

    /// Starts the producer threads, if the records come from them.
    fn spawn<J: Job<R>>(
        self,
        engine: &Engine<R, J>,
        workload: &Workload,
        started: Instant,
        stop: &Arc<AtomicBool>,
    ) -> Result<Producers, RunError>;
}

/// A run's producer threads, and how many of them have not ended.
#[derive(Default)]
pub(crate) struct Producers {
    threads: Vec<JoinHandle<()>>,
    running: Arc<AtomicUsize>,
}

impl Producers {
    /// Spawns `body` as a producer thread named `name`.
    fn spawn(
        &mut self,
        name: String,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), RunError> {
        let exit = ProducerExit::new(&self.running);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let _exit = exit;
                body();
            })
            .map_err(|error| RunError::Input {
                path: PathBuf::from("(producer thread)"),
                message: format!("cannot start a producer thread: {error}"),
            })?;
        self.threads.push(thread);
        Ok(())
    }

    /// Every producer thread has ended (or none ran). Counted as each
    /// thread's body ends, not when the thread is reaped: the runner,
    /// woken by a thread's end, sees it at once.
    fn all_ended(&self) -> bool {
        self.running.load(Ordering::Acquire) == 0
    }

    /// Waits for every producer thread.
    fn join(self) -> Result<(), RunError> {
        for thread in self.threads {
            thread.join().map_err(|_| RunError::Input {
                path: PathBuf::from("(producer thread)"),
                message: "a producer thread panicked".into(),
            })?;
        }
        Ok(())
    }
}

/// Counts a producer thread as running until it ends, however it ends,
/// then wakes the runner's thread (parked until the next tick).
struct ProducerExit {
    running: Arc<AtomicUsize>,
    runner: std::thread::Thread,
}

impl ProducerExit {
    fn new(running: &Arc<AtomicUsize>) -> Self {
        running.fetch_add(1, Ordering::AcqRel);
        ProducerExit {
            running: Arc::clone(running),
            runner: std::thread::current(),
        }
    }
}

impl Drop for ProducerExit {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
        self.runner.unpark();
    }
}

/// Per worker, the sum over `epochs` of the figure `of` gives per worker.
fn per_worker_sums<T: Copy + Default + std::ops::AddAssign>(
    epochs: &[&EpochProgress],
    workers: usize,
    of: impl Fn(&EpochProgress) -> &[T],
) -> Vec<T> {
    let mut sums = vec![T::default(); workers];
    for epoch in epochs {
        for (sum, value) in sums.iter_mut().zip(of(epoch)) {
            *sum += *value;
        }
    }
    sums
}

/// The generic records' input: a built-in source, or producer threads
/// (`workload.producers > 0`).
struct EventFeed(Option<Input>);

impl Feed<Event> for EventFeed {
    fn attach<J: Job<Event>>(
        &mut self,
        builder: EngineBuilder<Event, J>,
        workload: &Workload,
    ) -> EngineBuilder<Event, J> {
        if workload.producers > 0 {
            return builder;
        }
        match self.0.take() {
            Some(Input::Generator) => builder.source(Generator::new(workload.generator())),
            Some(Input::Events(events)) => builder.source(IterSource::new(events)),
            Some(Input::Log(reader)) => {
                builder.source(LogSource::new(reader, workload.rate.per_second()))
            }
            None => builder,
        }
    }

    fn spawn<J: Job<Event>>(
        self,
        engine: &Engine<Event, J>,
        workload: &Workload,
        started: Instant,
        stop: &Arc<AtomicBool>,
    ) -> Result<Producers, RunError> {
        match self.0 {
            Some(input) if workload.producers > 0 => {
                spawn_producers(engine, workload, input, started, stop)
            }
            _ => Ok(Producers::default()),
        }
    }
}

/// Opens `--checkpoint DIR`, if given.
pub(crate) fn checkpoint_of(runner: &Runner<'_>) -> Result<Option<Checkpoint>, RunError> {
    match &runner.files.checkpoint {
        Some(dir) => Ok(Some(open_checkpoint(runner.profile, dir)?)),
        None => Ok(None),
    }
}

/// Refuses an output place (`place` at `path`) holding epochs of another
/// run. A run starts at epoch 0, or after its checkpoint's last commit
/// (the sink may be one epoch ahead: a crash between the two commits); a
/// place holding later epochs belongs to another run, whose epochs would
/// silently be kept.
pub(crate) fn refuse_another_run(
    checkpoint: Option<&Checkpoint>,
    committed: &[u64],
    place: &str,
    path: &Path,
) -> Result<(), RunError> {
    let next_epoch = checkpoint.map_or(0, Checkpoint::next_epoch);
    match committed.last() {
        Some(&last) if last > next_epoch || checkpoint.is_none() => Err(RunError::Output {
            what: path.display().to_string(),
            message: format!(
                "{place} already holds {} committed epochs (up to {last}) of another run; \
                 write somewhere else (--set output.path=… or output.table=…), \
                 or resume that run with its --checkpoint DIR",
                committed.len()
            ),
        }),
        _ => Ok(()),
    }
}

impl WithJob for RunJob<'_> {
    type Out = Result<RunOutcome, RunError>;

    fn with<J: Job<Event>>(self, job: J, row: fn(J::Row) -> (Option<u64>, Columns)) -> Self::Out {
        let RunJob { runner, input } = self;
        let feed = EventFeed(Some(input));
        let output = &runner.profile.output;
        let path = output.path();
        let fail = |message: String| RunError::Output {
            what: path.display().to_string(),
            message,
        };
        let wanted = Wanted::of(&runner.profile.job);
        let checkpoint = checkpoint_of(&runner)?;
        let earlier_run = |epochs: Vec<u64>, place: String| {
            refuse_another_run(checkpoint.as_ref(), &epochs, &place, &path)
        };
        let files = |format| {
            let sink = FileSink::new(&path, format).map_err(|error| fail(error.to_string()))?;
            let committed = sink.committed().map_err(|error| fail(error.to_string()))?;
            earlier_run(committed, "the directory".into())?;
            Ok::<_, RunError>(sink)
        };
        match output.kind {
            OutputKind::None => runner.drive(job, DiscardSink, checkpoint, feed),
            OutputKind::Csv => {
                let sink = OutputSink::new(files(FileFormat::Csv)?, wanted, row);
                runner.drive(job, sink, checkpoint, feed)
            }
            OutputKind::Jsonl => {
                let sink = OutputSink::new(files(FileFormat::JsonLines)?, wanted, row);
                runner.drive(job, sink, checkpoint, feed)
            }
            OutputKind::Sqlite => {
                let keyed = runner.profile.job.kind == JobKind::Keyed;
                let database =
                    SqliteSink::open(&path, &output.table, wanted.sql_columns(keyed), sql_values)
                        .map_err(|error| fail(error.to_string()))?;
                let committed = database
                    .committed()
                    .map_err(|error| fail(error.to_string()))?;
                earlier_run(committed, format!("table `{}`", output.table))?;
                runner.drive(
                    job,
                    OutputSink::new(database, wanted, row),
                    checkpoint,
                    feed,
                )
            }
        }
    }
}

/// Whether the built-in source and every producer thread are done.
fn input_done<R: Send + 'static, J: Job<R>>(engine: &Engine<R, J>, producers: &Producers) -> bool {
    engine.sources_exhausted() && producers.all_ended()
}

/// What is known when the warm-up ends.
struct Snapshot {
    at: Instant,
    since_start: Duration,
    records: u64,
    latency: Histogram<u64>,
    cpu: Option<Duration>,
}

impl Runner<'_> {
    /// Runs `job` into `sink` with the records of `feed`, under
    /// `checkpoint` if any, and reports.
    pub(crate) fn drive<R: Send + 'static, J: Job<R>, F: Feed<R>>(
        self,
        job: J,
        sink: impl Sink<J::Row>,
        checkpoint: Option<Checkpoint>,
        mut feed: F,
    ) -> Result<RunOutcome, RunError> {
        let profile = self.profile;
        let workload = &profile.workload;
        let epochs = Arc::new(Mutex::new(Vec::<EpochProgress>::new()));
        let listener = Arc::clone(&epochs);
        let mut builder = Engine::builder(job, sink)
            .config(profile.engine.clone())
            .on_progress(move |progress| {
                listener
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(progress.clone())
            });
        let mut checkpoint_note = None;
        let planned_epoch = checkpoint.as_ref().map(Checkpoint::records_per_epoch);
        if let Some(checkpoint) = checkpoint {
            checkpoint_note = Some(format!(
                "checkpoint {}: epochs of {} log records{}",
                checkpoint.dir().display(),
                checkpoint.records_per_epoch(),
                checkpoint
                    .last_committed()
                    .map_or(String::new(), |last| format!(
                        "; resumed after epoch {last}"
                    ))
            ));
            // The log's positions cut the epochs, not the clock.
            builder = builder.interval(None).checkpoint(checkpoint);
        }
        builder = feed.attach(builder, workload);
        let started = Instant::now();
        let cpu_start = cpu::process_time();
        let engine = builder.start()?;
        let stop = Arc::new(AtomicBool::new(false));
        let producers = feed.spawn(&engine, workload, started, &stop)?;

        let mut log_file = match &self.files.interval_log {
            Some(path) => Some((
                path.as_path(),
                BufWriter::new(
                    File::create(path).map_err(|error| log_error(path, error.to_string()))?,
                ),
            )),
            None => None,
        };
        let mut serializer = V2DeflateSerializer::new();
        let mut log = match &mut log_file {
            Some((path, file)) => Some(IntervalLog::begin(path, file, &mut serializer, self.name)?),
            None => None,
        };
        let planned = profile.run.warmup + profile.run.duration;
        // Without a warm-up, the measured window is the whole run.
        let mut snapshot: Option<Snapshot> = profile.run.warmup.is_zero().then(|| Snapshot {
            at: started,
            since_start: Duration::ZERO,
            records: 0,
            latency: Histogram::new_from(&engine.latency_histogram()),
            cpu: cpu_start,
        });
        let mut last_tick = (Instant::now(), 0u64);
        loop {
            let elapsed = started.elapsed();
            let next = (elapsed + TICK).min(planned);
            // Until the next tick, but a finite input that ends is seen
            // at once, so that its run's time is its own. Blocked, not
            // polling: a wake-up takes a core from a worker.
            while started.elapsed() < next && !input_done(&engine, &producers) {
                let left = next.saturating_sub(started.elapsed());
                if engine.sources_exhausted() {
                    // Producer threads wake this thread as they end.
                    std::thread::park_timeout(left);
                } else {
                    engine.wait_for_sources(left);
                }
            }
            let elapsed = started.elapsed();
            if snapshot.is_none() && elapsed >= profile.run.warmup {
                snapshot = Some(Snapshot {
                    at: Instant::now(),
                    since_start: elapsed,
                    records: engine.progress().records_taken,
                    latency: engine.latency_histogram(),
                    cpu: cpu::process_time(),
                });
            }
            if let Some(log) = &mut log {
                if elapsed >= log.next {
                    log.write(&engine.latency_histogram(), elapsed, profile.run.warmup)?;
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
            });
            last_tick = (now, progress.records_taken);
            if elapsed >= planned || input_done(&engine, &producers) || engine.has_failed() {
                break;
            }
        }
        stop.store(true, Ordering::Release);
        producers.join()?;
        let summary = engine.shutdown()?;
        let ended = Instant::now();
        let cpu_end = cpu::process_time();
        if let Some(log) = &mut log {
            log.write(
                &summary.latency_histogram,
                started.elapsed(),
                profile.run.warmup,
            )?;
        }
        drop(log);
        if let Some((path, mut file)) = log_file {
            file.flush()
                .map_err(|error| log_error(path, error.to_string()))?;
        }
        if summary.records_accepted != summary.records_in_results + summary.records_dead_lettered {
            return Err(RunError::Lost {
                accepted: summary.records_accepted,
                in_results: summary.records_in_results,
            });
        }

        let mut notes: Vec<String> = checkpoint_note.into_iter().collect();
        let snapshot = snapshot.unwrap_or_else(|| {
            notes.push(format!(
                "the input ran out after {:.2} s, within the {:.1} s warm-up: the figures cover the whole run",
                started.elapsed().as_secs_f64(),
                profile.run.warmup.as_secs_f64()
            ));
            Snapshot {
                at: started,
                since_start: Duration::ZERO,
                records: 0,
                latency: Histogram::new_from(&summary.latency_histogram),
                cpu: Some(Duration::ZERO),
            }
        });
        if workload.producers > 0 {
            notes.push(
                "records come from producer threads: record latency counts from each record's push \
                 into its ring (a producer pushes a record once it is due)"
                    .into(),
            );
        }
        let mut latency = summary.latency_histogram.clone();
        latency
            .subtract(&snapshot.latency)
            .expect("a later copy of the same histogram holds every earlier count");
        let epochs = std::mem::take(&mut *epochs.lock().unwrap_or_else(PoisonError::into_inner));
        let measured: Vec<&EpochProgress> = epochs
            .iter()
            .filter(|epoch| epoch.opened >= snapshot.since_start)
            .collect();
        let mut by_reason = EpochsByReason::default();
        for epoch in &measured {
            match epoch.seal_reason {
                SealReason::Interval => by_reason.interval += 1,
                SealReason::Count => by_reason.count += 1,
                SealReason::Shutdown => by_reason.shutdown += 1,
            }
        }
        let seal_to_result: Vec<Duration> =
            measured.iter().map(|epoch| epoch.seal_to_result).collect();
        let elapsed_s = ended.duration_since(snapshot.at).as_secs_f64();
        let records_measured = summary.records_accepted - snapshot.records;
        let config = &profile.engine;
        let report = RunReport {
            profile: self.name.to_owned(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            workers: config.workers,
            pinned: config.pin && summary.unpinned.is_empty(),
            pinning_note: if !config.pin {
                Some("pin = false".into())
            } else if !summary.unpinned.is_empty() {
                Some(format!("workers {:?} ran unpinned", summary.unpinned))
            } else {
                None
            },
            // Under a checkpoint, the log's positions cut the epochs.
            interval_ms: config
                .interval
                .filter(|_| planned_epoch.is_none())
                .map(|interval| interval.as_secs_f64() * 1e3),
            max_batch_records: planned_epoch.or(config.max_batch_records),
            offered_rate_rps: workload.rate.per_second(),
            producers: workload.producers,
            warmup_s: snapshot.since_start.as_secs_f64(),
            records_in: summary.records_accepted,
            records_out: summary.records_in_results,
            records_measured,
            elapsed_s,
            throughput_rps: records_measured as f64 / elapsed_s.max(1e-9),
            record_latency_ns: Percentiles::of_micros(&latency),
            seal_to_result_ns: Percentiles::of_durations(&seal_to_result),
            epochs: summary.epochs,
            epochs_measured: measured.len() as u64,
            epochs_by_reason: by_reason,
            records_per_worker: per_worker_sums(&measured, config.workers, |epoch| {
                &epoch.records_per_worker
            }),
            waited_share_per_worker: per_worker_sums(&measured, config.workers, |epoch| {
                &epoch.waited_per_worker
            })
            .iter()
            .map(|waited| (waited.as_secs_f64() / elapsed_s.max(1e-9)).min(1.0))
            .collect(),
            work_stealing: config.work_stealing,
            records_stolen: measured.iter().map(|epoch| epoch.records_stolen).sum(),
            placement: config.placement,
            batches_combined: measured
                .iter()
                .map(|epoch| epoch.combined_batches as u64)
                .sum(),
            hot_keys: HotKeyShare::over(measured.iter().copied()),
            cpu_s: match (snapshot.cpu, cpu_end) {
                (Some(start), Some(end)) => Some(end.saturating_sub(start).as_secs_f64()),
                _ => None,
            },
            first_result_s: epochs.first().map(|epoch| epoch.completed.as_secs_f64()),
            peak_memory_bytes: cpu::peak_memory(),
            notes,
        };
        let epochs = epochs
            .iter()
            .map(|epoch| EpochLine::of(epoch, snapshot.since_start))
            .collect();
        Ok(RunOutcome { report, epochs })
    }
}

/// Starts `workload.producers` threads pushing the generator's records (or
/// `input`'s) through their own producer handles until `stop`.
fn spawn_producers<J: Job<Event>>(
    engine: &Engine<Event, J>,
    workload: &Workload,
    input: Input,
    started: Instant,
    stop: &Arc<AtomicBool>,
) -> Result<Producers, RunError> {
    let count = workload.producers;
    let sources = split_sources(workload, input, count)?;
    let mut producers = Producers::default();
    for (index, mut source) in sources.into_iter().enumerate() {
        // With a hot-worker share, each producer's own handle goes to a
        // worker other than 0, and a second handle to worker 0 takes that
        // share of the chunks (an even, deterministic interleaving): worker
        // 0 gets exactly the share.
        let workers = engine.config().workers;
        let mut producer = match workload.hot_worker_share {
            Some(_) if workers > 1 => engine.producer_for(1 + index % (workers - 1))?,
            _ => engine.producer(),
        };
        let mut hot = match workload.hot_worker_share {
            Some(share) => Some((engine.producer_for(0)?, share, 0.0f64)),
            None => None,
        };
        let stop = Arc::clone(stop);
        producers.spawn(format!("producer-{index}"), move || {
            let mut buffer = Vec::with_capacity(PRODUCER_CHUNK);
            while !stop.load(Ordering::Acquire) {
                let now = started.elapsed().as_micros() as u64;
                // Records in memory or in a mapped log are lent in
                // place and copied once, into the ring.
                let (poll, chunk) = source.poll_lent(now, &mut buffer, PRODUCER_CHUNK);
                match poll {
                    Poll::Exhausted => return,
                    Poll::Idle | Poll::EpochEnd => std::thread::sleep(Duration::from_micros(50)),
                    Poll::Ready { .. } => {
                        let target = match &mut hot {
                            Some((hot, share, credit)) => {
                                *credit += *share;
                                if *credit >= 1.0 {
                                    *credit -= 1.0;
                                    hot
                                } else {
                                    &mut producer
                                }
                            }
                            None => &mut producer,
                        };
                        if target.push_slice(chunk).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
    }
    Ok(producers)
}

/// `count` record sources: parts of the workload's generator, shares of a
/// file's records in order, or parts of a record log.
pub(crate) fn split_sources(
    workload: &Workload,
    input: Input,
    count: usize,
) -> Result<Vec<Box<dyn Source<Event>>>, RunError> {
    Ok(match input {
        Input::Generator => Generator::new(workload.generator())
            .parts(count)
            .map_err(EngineError::from)?
            .into_iter()
            .map(|part| Box::new(part) as Box<dyn Source<Event>>)
            .collect(),
        Input::Events(events) => {
            // Shared, not copied: the producers start while the engine
            // runs, and a copy of the input would count against it.
            let share = events.len().div_ceil(count.max(1));
            let events = Arc::new(events);
            (0..count)
                .map(|i| {
                    let start = (i * share).min(events.len());
                    let end = (start + share).min(events.len());
                    Box::new(Chunks {
                        events: Arc::clone(&events),
                        next: start,
                        end,
                    }) as Box<dyn Source<Event>>
                })
                .collect()
        }
        Input::Log(reader) => LogSource::new(reader, workload.rate.per_second())
            .split(count)
            .map_err(EngineError::from)?,
    })
}

/// A share of a file's records, `events[next..end]`, as a source.
struct Chunks {
    events: Arc<Vec<Event>>,
    next: usize,
    end: usize,
}

impl Source<Event> for Chunks {
    fn poll(&mut self, now: u64, out: &mut Vec<Event>, max: usize) -> Poll {
        let mut unused = Vec::new();
        let (poll, records) = self.poll_lent(now, &mut unused, max);
        out.extend_from_slice(records);
        poll
    }

    fn poll_lent<'a>(
        &'a mut self,
        _: u64,
        _: &'a mut Vec<Event>,
        max: usize,
    ) -> (Poll, &'a [Event]) {
        let from = self.next;
        self.next = self.end.min(from.saturating_add(max));
        let records = &self.events[from..self.next];
        if records.is_empty() {
            (Poll::Exhausted, records)
        } else {
            let ready = Poll::Ready {
                intended_micros: None,
            };
            (ready, records)
        }
    }
}

/// An HdrHistogram interval log of record latency: one histogram of the
/// records whose epochs completed in each second.
struct IntervalLog<'a> {
    path: &'a Path,
    writer: IntervalLogWriter<'a, 'a, BufWriter<File>, V2DeflateSerializer>,
    previous: Option<Histogram<u64>>,
    written_until: Duration,
    next: Duration,
}

fn log_error(path: &Path, message: String) -> RunError {
    RunError::Output {
        what: path.display().to_string(),
        message,
    }
}

impl<'a> IntervalLog<'a> {
    fn begin(
        path: &'a Path,
        file: &'a mut BufWriter<File>,
        serializer: &'a mut V2DeflateSerializer,
        name: &str,
    ) -> Result<Self, RunError> {
        let now = SystemTime::now();
        let writer = IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "microbatch run of {name}: record latency in microseconds; intervals tagged warmup are left out of the summary"
            ))
            .with_start_time(now)
            .with_base_time(now)
            .with_max_value_divisor(1000.0)
            .begin_log_with(file, serializer)
            .map_err(|error| log_error(path, error.to_string()))?;
        Ok(IntervalLog {
            path,
            writer,
            previous: None,
            written_until: Duration::ZERO,
            next: LOG_INTERVAL,
        })
    }

    /// Writes the counts `total` gained since the last call.
    fn write(
        &mut self,
        total: &Histogram<u64>,
        now: Duration,
        warmup: Duration,
    ) -> Result<(), RunError> {
        let mut interval = total.clone();
        if let Some(previous) = &self.previous {
            interval
                .subtract(previous)
                .expect("a later copy of the same histogram holds every earlier count");
        }
        let tag = if self.written_until < warmup {
            Tag::new("warmup")
        } else {
            None
        };
        self.writer
            .write_histogram(&interval, self.written_until, now - self.written_until, tag)
            .map_err(|error| log_error(self.path, format!("{error:?}")))?;
        self.previous = Some(total.clone());
        self.written_until = now;
        self.next = now + LOG_INTERVAL;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn producers_count_as_ended_when_their_body_ends_however_it_ends() {
        let mut producers = Producers::default();
        assert!(producers.all_ended(), "none ran");
        let (go, wait) = mpsc::channel::<()>();
        producers
            .spawn("producer-test".into(), move || {
                let _ = wait.recv();
            })
            .unwrap();
        producers
            .spawn("producer-panics".into(), || panic!("a failing producer"))
            .unwrap();
        assert!(!producers.all_ended(), "one still waits");
        go.send(()).unwrap();
        let running = Arc::clone(&producers.running);
        assert!(producers.join().is_err(), "the panic is reported");
        assert_eq!(running.load(Ordering::Acquire), 0, "both counted out");
    }
}
