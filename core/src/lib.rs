//! microbatch: a lock-free, single-node, high-throughput micro-batch stream
//! engine.
//!
//! Being built piece by piece (see the project's issues). What is here: the
//! transport ([`ringbuf`], re-exported), the [`epoch`] clock, the shuffle
//! [`mesh`], the engine's [`Config`], and the [`job`]s it will run.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod config;
pub mod epoch;
pub mod job;
pub mod mesh;
mod sync;

pub use config::{Config, ConfigError, IdleStrategy};

pub use microbatch_ringbuf as ringbuf;
