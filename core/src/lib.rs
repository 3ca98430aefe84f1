//! microbatch: a lock-free, single-node, high-throughput micro-batch stream
//! engine.
//!
//! The engine is being built piece by piece (see the project's issues). What
//! is here now: the transport ([`ringbuf`], re-exported), the [`epoch`]
//! clock that decides batch boundaries, and the shuffle [`mesh`] that
//! carries partial results between workers.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod epoch;
pub mod mesh;
mod sync;

pub use microbatch_ringbuf as ringbuf;
