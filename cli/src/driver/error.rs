//! Why a run failed.

use std::path::PathBuf;

use microbatch::checkpoint::CheckpointError;
use microbatch::EngineError;

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
    /// Kafka refused the source or the sink.
    #[error(transparent)]
    Kafka(#[from] microbatch::kafka::KafkaError),
    /// Accepted records are missing from the results: an engine bug.
    #[error("{accepted} records accepted but {in_results} in results: records were lost")]
    Lost {
        /// Accepted.
        accepted: u64,
        /// Counted in results.
        in_results: u64,
    },
}

impl From<microbatch::ShutdownError> for RunError {
    fn from(failure: microbatch::ShutdownError) -> Self {
        RunError::Engine(failure.error)
    }
}

/// A log or output file at `path` cannot be written: `message` says why.
pub(crate) fn output_error(path: &std::path::Path, message: String) -> RunError {
    RunError::Output {
        what: path.display().to_string(),
        message,
    }
}
