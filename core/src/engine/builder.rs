//! The builder: settings, the job, the sink, a source, a checkpoint, a
//! panic policy and a progress listener; `EngineBuilder::start` is in
//! `launch`.

use std::marker::PhantomData;
use std::time::Duration;

use crate::checkpoint::Checkpoint;
use crate::config::{Config, ConfigError, IdleStrategy, Overload, PanicPolicy, PlacementPolicy};
use crate::fault::PanicHandler;
use crate::job::Job;
use crate::progress::EpochProgress;
use crate::runtime::ProgressListener;
use crate::sink::Sink;
use crate::source::{EpochPlan, SourceParts, SourceSpec};

/// A source waiting for the worker count (and, under a checkpoint, the
/// epoch plan) to split itself.
type SplitSource<R> =
    Box<dyn FnOnce(usize, Option<EpochPlan>) -> Result<SourceParts<R>, ConfigError>>;

/// Builds an [`Engine`](crate::Engine): settings (a [`Config`], or one at a time), the
/// job, the sink, an optional built-in source and a progress listener.
pub struct EngineBuilder<R, J: Job<R>> {
    pub(super) config: Config,
    pub(super) job: J,
    pub(super) sink: Box<dyn Sink<J::Row>>,
    pub(super) source: Option<SplitSource<R>>,
    /// The source's [`SourceSpec::identity`].
    pub(super) source_identity: Option<String>,
    pub(super) listener: Option<ProgressListener>,
    pub(super) checkpoint: Option<Checkpoint>,
    /// Where a run whose sink holds its progress starts.
    pub(super) resumption: Option<Resumption>,
    /// The panic policy, with its dead-letter file opened (or the error
    /// opening it gave, reported by `start`).
    pub(super) panic_handler: Option<Result<PanicHandler<R>, ConfigError>>,
    /// Labels every metric `engine = name`.
    pub(super) metrics_name: Option<String>,
    pub(super) _records: PhantomData<fn(R)>,
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

    /// Starts from [`Config::embedded`]: unpinned, half the cores, small
    /// producer rings, for an engine inside a service. Later setters change
    /// it further.
    pub fn embedded(self) -> Self {
        self.config(Config::embedded())
    }

    setter!(/// Sets [`Config::workers`].
        workers: usize => with_workers);
    setter!(/// Sets [`Config::pin`].
        pin: bool => with_pin);
    setter!(/// Sets [`Config::interval`]; `None`: no time trigger.
        interval: Option<Duration> => with_interval);
    setter!(/// Sets [`Config::target_latency`]; `Some`: the interval adapts to it.
        target_latency: Option<Duration> => with_target_latency);
    setter!(/// Sets [`Config::max_batch_records`]; `None`: no count trigger.
        max_batch_records: Option<u64> => with_max_batch_records);
    setter!(/// Sets [`Config::ring_capacity`].
        ring_capacity: usize => with_ring_capacity);
    setter!(/// Sets [`Config::max_epochs_in_flight`].
        max_epochs_in_flight: usize => with_max_epochs_in_flight);
    setter!(/// Sets [`Config::idle`].
        idle: IdleStrategy => with_idle);
    setter!(/// Sets [`Config::work_stealing`].
        work_stealing: bool => with_work_stealing);
    setter!(/// Sets [`Config::placement`].
        placement: PlacementPolicy => with_placement);
    setter!(/// Sets [`Config::overload`]: what [`Producer::send`](crate::Producer::send) does
        /// when a producer's ring is full.
        overload: Overload => with_overload);

    /// Adds a built-in source, split across the workers and run inside
    /// them.
    pub fn source<S: SourceSpec<R> + 'static>(mut self, source: S) -> Self {
        self.source_identity = source.identity();
        self.source = Some(Box::new(move |workers, plan| match plan {
            None => source.split(workers),
            Some(plan) => source.split_planned(workers, plan).unwrap_or_else(|| {
                Err(ConfigError::new(
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
    /// Records pushed through [`Engine::producer`](crate::Engine::producer) are not in the log: a
    /// replay does not have them, so a checkpointed run should take its
    /// input from the source only.
    pub fn checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// Resumes a run whose sink holds its progress (the epochs it
    /// committed, the source positions and the running totals it committed
    /// with each, as an SQLite sink does for a Kafka source): the run
    /// numbers its first epoch `resumption.next_epoch` and starts each
    /// partition's running totals from `resumption.totals`. The source
    /// must be started at the positions the sink holds. Not with a
    /// [`checkpoint`](EngineBuilder::checkpoint), which resumes from its
    /// own directory.
    ///
    /// ```
    /// use microbatch::job::{self, count};
    /// use microbatch::sink::CollectSink;
    /// use microbatch::{Engine, Resumption};
    ///
    /// let (sink, rows) = CollectSink::new();
    /// let per_key = job::records::<u64>().key_by(|r| *r).aggregate(count());
    /// let engine = Engine::builder(per_key, sink)
    ///     .embedded()
    ///     .resume_from(Resumption { next_epoch: 7, totals: None })
    ///     .start()?;
    /// engine.producer().push(1).unwrap();
    /// engine.shutdown()?;
    /// assert_eq!(rows.take(), [(7, (1, 1))]);
    /// # Ok::<(), microbatch::EngineError>(())
    /// ```
    pub fn resume_from(mut self, resumption: Resumption) -> Self {
        self.resumption = Some(resumption);
        self
    }

    /// Labels every metric the engine reports `engine = name`, so that
    /// several engines in one process report apart (without a name, two
    /// engines add to the same series).
    ///
    /// ```
    /// use microbatch::job::{self, count};
    /// use microbatch::sink::DiscardSink;
    /// use microbatch::Engine;
    ///
    /// let per_key = job::records::<u64>().key_by(|r| *r).aggregate(count());
    /// let engine = Engine::builder(per_key, DiscardSink)
    ///     .embedded()
    ///     .metrics_name("requests")
    ///     .start()?;
    /// engine.shutdown()?;
    /// # Ok::<(), microbatch::EngineError>(())
    /// ```
    pub fn metrics_name(mut self, name: impl Into<String>) -> Self {
        self.metrics_name = Some(name.into());
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
}

impl<R, J> EngineBuilder<R, J>
where
    R: Clone + serde::Serialize + Send + 'static,
    J: Job<R>,
{
    /// Handles a panic in user code while a worker folds its batch by
    /// `policy` (see [`PanicPolicy`]): retry the batch from
    /// a retained copy of its input, then stop with
    /// [`EngineError::BatchPanicked`](crate::EngineError::BatchPanicked) or quarantine the records that panic
    /// in a dead-letter file. Without a policy the batch is not copied and
    /// a panic stops the engine.
    ///
    /// ```
    /// use microbatch::job::{self, count};
    /// use microbatch::PanicPolicy;
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
        self.panic_handler = Some(PanicHandler::new(policy));
        self
    }
}

/// Where a run resumed from its sink starts (see
/// [`EngineBuilder::resume_from`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resumption {
    /// The first epoch of the run: one past the last epoch the sink
    /// committed.
    pub next_epoch: u64,
    /// Each partition's running totals after the last committed epoch, as
    /// [`Job::save_totals`] encoded them; `None` for a job without totals
    /// or a run with nothing committed.
    pub totals: Option<Vec<Vec<u8>>>,
}
