//! microbatch: a lock-free, single-node, high-throughput micro-batch stream
//! engine.
//!
//! Records pushed through [`Producer`] handles (or made by a built-in
//! [`source`]) flow through SPSC rings to worker threads, one per core. The
//! stream is cut into epochs by time (`interval`) or by size
//! (`max_batch_records`), whichever comes first; each worker folds its
//! records into partial aggregates, the parts travel through the shuffle
//! (`shuffle`) to the worker owning their keys, and each epoch's result goes to
//! a [`sink`] with its [`progress`] figures. A [`log`] keeps records in a
//! replayable, checksummed file format that the engine reads as a source.
//!
//! The contract:
//! - Nothing lost, nothing doubled: a push either accepts a record, which
//!   then appears in exactly one epoch's result, or hands it back
//!   ([`PushError`], [`Closed`]). [`Engine::shutdown`] drains everything
//!   accepted.
//! - An epoch's result is emitted only once every worker sealed the epoch,
//!   and epochs complete in order.
//! - Bounded memory: bounded rings, at most `max_epochs_in_flight` epochs in
//!   flight, buffers recycled; no allocation, lock or syscall per record.
//! - A panic in a worker, or a failing sink, shuts the engine down with an
//!   [`EngineError`] naming it; no producer or caller hangs.
//!
//! ```
//! use std::time::Duration;
//! use microbatch::job::{self, count, sum};
//! use microbatch::sink::ChannelSink;
//! use microbatch::Engine;
//!
//! // Per key and epoch: how many records, and the sum of their values.
//! let job = job::records::<(u32, u64)>()
//!     .key_by(|r| r.0)
//!     .aggregate((count(), sum(|r: &(u32, u64)| r.1)));
//! let (sink, results) = ChannelSink::bounded(64);
//! let engine = Engine::builder(job, sink)
//!     .workers(2)
//!     .interval(Some(Duration::from_millis(10)))
//!     .start()?;
//!
//! let mut producer = engine.producer();
//! for i in 0..1000 {
//!     producer.push((i % 10, 1)).expect("the engine is running");
//! }
//! let summary = engine.shutdown()?;
//! assert_eq!(summary.records_in_results, 1000);
//!
//! let counted: u64 = results.try_iter().flat_map(|epoch| epoch.rows).map(|row| row.1 .0).sum();
//! assert_eq!(counted, 1000);
//! # Ok::<(), microbatch::EngineError>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod checkpoint;
mod config;
mod durable;
mod engine;
mod epoch;
mod error;
mod fault;
mod input;
pub mod job;
#[cfg(all(feature = "kafka", not(loom)))]
pub mod kafka;
pub mod log;
#[cfg(all(feature = "postgres", not(loom)))]
pub mod postgres;
pub mod progress;
pub mod queries;
mod runtime;
mod shuffle;
pub mod sink;
pub mod source;
mod sync;
mod telemetry;
#[cfg(feature = "tokio")]
pub mod tokio;
mod worker;

pub use config::{
    Config, ConfigError, IdleStrategy, OnPanic, Overload, PanicPolicy, PlacementPolicy,
    MIN_AUTO_INTERVAL,
};
pub use engine::{Engine, EngineBuilder, Resumption, ShutdownError, Summary};
pub use error::EngineError;
pub use input::{Closed, Producer, PushError, Sent, SharedProducer};
pub use runtime::ProgressListener;

/// The engine's building blocks, for its loom models and benchmarks: the
/// epoch clock, the shuffle mesh, the reduction kernels and the placement
/// thresholds. Not part of the public API: no stability promise.
#[doc(hidden)]
pub mod internals {
    pub use crate::epoch::clock::{Advance, EpochClock};
    pub use crate::job::kernels;
    pub use crate::job::placement::{
        COMBINE_MAX_IDLE_SHARE, COMBINE_MIN_RECORDS_PER_KEY, COMBINE_MIN_RECORDS_PER_KEY_WAITING,
    };
    pub use crate::shuffle::{mesh, Disconnected, Endpoint};
}
