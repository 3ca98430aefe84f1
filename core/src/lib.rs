//! microbatch: a lock-free, single-node, high-throughput micro-batch stream
//! engine. The engine itself is being built (see the project's issues); for
//! now this crate re-exports its transport, the SPSC ring.

#![deny(missing_docs)]

pub use microbatch_ringbuf as ringbuf;
