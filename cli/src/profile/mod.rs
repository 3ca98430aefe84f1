//! Experiment profiles: one TOML file describes a whole experiment.
//!
//! ```toml
//! [engine]            # microbatch::Config: workers, pin, interval, ...
//! interval = "100ms"
//! [workload]          # what goes in: generator or file, rate, producers
//! keys = 100000
//! rate = "max"
//! [job]               # keyed or global; the reductions; event-time windows
//! kind = "keyed"
//! reductions = ["count", "sum"]
//! window = "none"     # or "tumbling" / "hopping", with window_size, ...
//! [run]               # warm-up, then the measured duration
//! duration = "10s"
//! [output]            # none, csv, jsonl (a directory) or sqlite (a file)
//! kind = "none"
//! ```
//!
//! Every section and key is optional (the defaults are the engine's and
//! those below); unknown keys and bad values are refused with the file, the
//! dotted key and what is accepted. `--set section.key=value` overrides any
//! key before the profile is checked.

//!
//! The structs are in `schema`, reading and checking in `load`, the
//! window keys' checks in `windows`, the Kafka keys' in `kafka`.

mod kafka;
mod load;
mod output;
mod queries;
pub mod schema;
mod windows;

use std::path::PathBuf;

pub use load::apply_override;
pub use schema::*;

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file cannot be read.
    #[error("{path}: cannot read the profile: {source}")]
    Read {
        /// The profile.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path is not a profile file: not a regular file, too large, or
    /// not text.
    #[error("{path}: not a profile: {reason}")]
    NotAProfile {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not TOML.
    #[error("{path}: not valid TOML: {message}")]
    Syntax {
        /// The profile.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A `--set` override is malformed.
    #[error("--set {assignment}: {reason}")]
    Override {
        /// The override as given.
        assignment: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key is unknown or its value has the wrong type or form.
    #[error("{path}: {key}: {message}")]
    Key {
        /// The profile.
        path: PathBuf,
        /// The dotted key, e.g. `engine.interval`.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}
