//! The engine's errors.

use crate::config::ConfigError;
use crate::sink::SinkError;

/// Why an engine could not start, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The job cannot run with this many workers (e.g. a range partitioner
    /// with the wrong number of bounds).
    #[error("the job cannot run on {workers} workers: {reason}")]
    Job {
        /// Workers configured.
        workers: usize,
        /// What the job said.
        reason: String,
    },
    /// The operating system refused a worker thread.
    #[error("could not start worker thread {worker}: {source}")]
    Spawn {
        /// The worker.
        worker: usize,
        /// The system's error.
        source: std::io::Error,
    },
    /// A worker panicked (in user code or in the engine); the engine shut
    /// down, and the records of unfinished epochs are lost.
    #[error("worker {worker} panicked{}: {message}; the engine shut down",
        epoch.map_or(String::new(), |e| format!(" in epoch {e}")))]
    WorkerPanicked {
        /// The worker.
        worker: usize,
        /// Its open epoch, if known.
        epoch: Option<u64>,
        /// The panic's message.
        message: String,
    },
    /// User code panicked on the batch of `epoch` on `worker` at every
    /// attempt a [`PanicPolicy`](crate::PanicPolicy) allowed; the
    /// engine shut down.
    #[error("user code panicked on the batch of epoch {epoch} on worker {worker}, {attempts} time(s): {message}; the engine shut down")]
    BatchPanicked {
        /// The epoch.
        epoch: u64,
        /// The worker.
        worker: usize,
        /// Attempts made.
        attempts: u32,
        /// The last panic's message.
        message: String,
    },
    /// The dead-letter file could not take quarantined records; the engine
    /// shut down.
    #[error(
        "could not write dead letters of epoch {epoch} to {path}: {message}; the engine shut down"
    )]
    DeadLetters {
        /// The epoch.
        epoch: u64,
        /// The dead-letter file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// The sink refused an epoch's results; the engine shut down.
    #[error("the sink failed at epoch {epoch}: {source}")]
    Sink {
        /// The epoch not delivered.
        epoch: u64,
        /// The sink's error.
        source: SinkError,
    },
    /// The checkpoint could not log an epoch; the engine shut down. The
    /// epoch is replayed when the run resumes.
    #[error("the checkpoint failed at epoch {epoch}: {source}")]
    Checkpoint {
        /// The epoch.
        epoch: u64,
        /// What went wrong.
        source: crate::checkpoint::CheckpointError,
    },
    /// A worker's source cannot go on (a bad message it was told to stop
    /// at, a broker that refused it); the engine shut down. Nothing of the
    /// epoch it was reading was committed.
    #[error("the source of worker {worker} failed in epoch {epoch}: {message}")]
    Source {
        /// The worker whose part failed.
        worker: usize,
        /// The epoch it was reading.
        epoch: u64,
        /// What the source said ([`Source::error`](crate::source::Source::error)).
        message: String,
    },
    /// `producer_for` named a worker the engine does not have.
    #[error("no worker {worker}: the engine has {workers}")]
    NoSuchWorker {
        /// The worker asked for.
        worker: usize,
        /// Workers the engine has.
        workers: usize,
    },
}
