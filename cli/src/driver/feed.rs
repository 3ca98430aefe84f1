//! How a run's records get into the engine: a built-in source attached
//! before the start (`Feed::attach`), or producer threads started after
//! it (`Feed::spawn`, `Producers`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use microbatch::job::Job;
use microbatch::kafka::KafkaSettings;
use microbatch::log::{LogReader, LogRecord, LogSource};
use microbatch::source::{
    EpochPlan, Event, Generator, IterSource, Poll, Position, SealedPositions, SourceParts,
    SourceSpec,
};
use microbatch::{ConfigError, Engine, EngineBuilder, Resumption};

use super::error::RunError;
use super::input::{split_sources, Input};
use crate::profile::schema::Workload;

/// Records a producer thread pushes at a time.
const PRODUCER_CHUNK: usize = 4096;

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

    /// For a sink that commits the source's positions with each epoch:
    /// the positions the source records from now on at every seal. `None`
    /// (the default): this feed's source has none to commit.
    fn positions(&mut self) -> Option<SealedPositions> {
        None
    }

    /// Starts the run where its sink says it resumes: the epoch after the
    /// sink's last, each partition at its stored position (a Kafka
    /// source). The default has nothing to resume.
    fn resume(&mut self, resumption: Resumption, stored: &[Position]) -> Result<(), RunError> {
        let _ = (resumption, stored);
        Ok(())
    }

    /// The brokers and topic of a Kafka feed.
    fn kafka(&self) -> Option<(&KafkaSettings, &str)> {
        None
    }
}

/// Records from a built-in source `S` in the workers, never from producer
/// threads: the click stream's, the timed generator's.
pub(crate) struct InWorkers<S>(pub(crate) Option<S>);

impl<R: Send + 'static, S: SourceSpec<R> + 'static> Feed<R> for InWorkers<S> {
    fn attach<J: Job<R>>(
        &mut self,
        builder: EngineBuilder<R, J>,
        _: &Workload,
    ) -> EngineBuilder<R, J> {
        match self.0.take() {
            Some(source) => builder.source(source),
            None => builder,
        }
    }

    fn spawn<J: Job<R>>(
        self,
        _: &Engine<R, J>,
        _: &Workload,
        _: Instant,
        _: &Arc<AtomicBool>,
    ) -> Result<Producers, RunError> {
        Ok(Producers::default())
    }
}

/// Records from a generator `G`, a record log of `R`s or records read
/// beforehand (a CSV file), all in the workers: the sources of the click
/// stream and of windowed jobs.
pub(crate) enum GeneratorOrLog<G, R: LogRecord> {
    Generator(G),
    Log(LogSource<R>),
    Records(IterSource<std::vec::IntoIter<R>>),
}

impl<G, R> GeneratorOrLog<G, R>
where
    R: LogRecord,
{
    /// The log at `workload.path`, replayed at `workload.rate`.
    pub(crate) fn log(workload: &Workload) -> Result<Self, RunError> {
        let path = workload.path.clone().unwrap_or_default();
        let reader = LogReader::<R>::open(&path).map_err(|error| RunError::Input {
            path: path.clone(),
            message: error.to_string(),
        })?;
        Ok(GeneratorOrLog::Log(LogSource::new(
            reader,
            workload.rate.per_second(),
        )))
    }
}

impl<G, R> SourceSpec<R> for GeneratorOrLog<G, R>
where
    G: SourceSpec<R>,
    R: LogRecord + Clone,
    LogSource<R>: SourceSpec<R>,
{
    fn split(self, workers: usize) -> Result<SourceParts<R>, ConfigError> {
        match self {
            GeneratorOrLog::Generator(generator) => generator.split(workers),
            GeneratorOrLog::Log(log) => log.split(workers),
            GeneratorOrLog::Records(records) => records.split(workers),
        }
    }

    fn identity(&self) -> Option<String> {
        match self {
            GeneratorOrLog::Generator(generator) => generator.identity(),
            GeneratorOrLog::Log(log) => log.identity(),
            GeneratorOrLog::Records(records) => records.identity(),
        }
    }

    fn split_planned(
        self,
        workers: usize,
        plan: EpochPlan,
    ) -> Option<Result<SourceParts<R>, ConfigError>> {
        match self {
            GeneratorOrLog::Generator(generator) => generator.split_planned(workers, plan),
            GeneratorOrLog::Log(log) => log.split_planned(workers, plan),
            GeneratorOrLog::Records(records) => records.split_planned(workers, plan),
        }
    }
}

/// One feed or another, chosen by the profile: a job's own source, or a
/// Kafka topic.
pub(crate) enum EitherFeed<A, B> {
    /// The job's own source.
    Own(A),
    /// The other (a Kafka topic).
    Other(B),
}

impl<R, A: Feed<R>, B: Feed<R>> Feed<R> for EitherFeed<A, B> {
    fn attach<J: Job<R>>(
        &mut self,
        builder: EngineBuilder<R, J>,
        workload: &Workload,
    ) -> EngineBuilder<R, J> {
        match self {
            EitherFeed::Own(feed) => feed.attach(builder, workload),
            EitherFeed::Other(feed) => feed.attach(builder, workload),
        }
    }

    fn spawn<J: Job<R>>(
        self,
        engine: &Engine<R, J>,
        workload: &Workload,
        started: Instant,
        stop: &Arc<AtomicBool>,
    ) -> Result<Producers, RunError> {
        match self {
            EitherFeed::Own(feed) => feed.spawn(engine, workload, started, stop),
            EitherFeed::Other(feed) => feed.spawn(engine, workload, started, stop),
        }
    }

    fn positions(&mut self) -> Option<SealedPositions> {
        match self {
            EitherFeed::Own(feed) => feed.positions(),
            EitherFeed::Other(feed) => feed.positions(),
        }
    }

    fn resume(&mut self, resumption: Resumption, stored: &[Position]) -> Result<(), RunError> {
        match self {
            EitherFeed::Own(feed) => feed.resume(resumption, stored),
            EitherFeed::Other(feed) => feed.resume(resumption, stored),
        }
    }

    fn kafka(&self) -> Option<(&KafkaSettings, &str)> {
        match self {
            EitherFeed::Own(feed) => feed.kafka(),
            EitherFeed::Other(feed) => feed.kafka(),
        }
    }
}

/// A run's producer threads, and how many of them have not ended.
#[derive(Default)]
pub(crate) struct Producers {
    threads: Vec<JoinHandle<()>>,
    pub(super) running: Arc<AtomicUsize>,
}

impl Producers {
    /// Spawns `body` as a producer thread named `name`.
    pub(crate) fn spawn(
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
    pub(crate) fn all_ended(&self) -> bool {
        self.running.load(Ordering::Acquire) == 0
    }

    /// Waits for every producer thread.
    pub(crate) fn join(self) -> Result<(), RunError> {
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

/// The generic records' input: a built-in source, or producer threads
/// (`workload.producers > 0`).
pub(crate) struct EventFeed(pub(crate) Option<Input>);

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
                    Poll::Exhausted | Poll::Failed => return,
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
