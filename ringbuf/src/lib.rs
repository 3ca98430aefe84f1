//! A bounded, lock-free single-producer single-consumer ring buffer: the
//! transport of microbatch, from producers to pinned workers and between
//! workers.
//!
//! # Contract
//! - [`ring`] allocates once; no operation allocates, locks or makes a
//!   system call afterwards, except the blocking [`Producer::push`] and
//!   [`Consumer::pop`] once they decide to park, and a commit that finds
//!   the other side parked in one of them (it wakes it: one system call).
//!   A side that never blocks costs its peer one relaxed load per commit.
//! - [`Producer::try_push`], [`Consumer::try_pop`], the slice and chunk
//!   operations are wait-free: a bounded number of steps whatever the other
//!   side does.
//! - Items come out in the order they went in, each exactly once. An item
//!   the ring cannot take is handed back ([`Full`], [`Abandoned`]); items
//!   left in the ring are dropped exactly once, when both ends are gone.
//! - The two indices sit on separate cache lines, and each side keeps a
//!   copy of the other's index that it re-reads only when the copy says
//!   full (producer) or empty (consumer).
//! - Capacity is rounded up to a power of two (a slot is found with a mask).
//!
//! ```
//! use microbatch_ringbuf::{ring, Full};
//!
//! let (mut producer, mut consumer) = ring::<u64>(2);
//! producer.try_push(1).unwrap();
//! producer.try_push(2).unwrap();
//! // Full: the value comes back.
//! assert_eq!(producer.try_push(3), Err(Full(3)));
//! assert_eq!(consumer.try_pop(), Some(1));
//! producer.try_push(3).unwrap();
//! assert_eq!(consumer.try_pop(), Some(2));
//! assert_eq!(consumer.try_pop(), Some(3));
//! assert_eq!(consumer.try_pop(), None);
//! ```
//!
//! # Batches
//! For `Copy` items, [`Producer::push_slice`] and [`Consumer::pop_slice`]
//! move a whole slice with one copy per contiguous run and a single index
//! update. For any type, [`Producer::write_chunk_uninit`] and
//! [`Consumer::read_chunk`] expose the slots themselves, so a consumer can
//! reduce items where they lie and free them all at once.
//!
//! # Model checking
//! Atomics and threads come from the `sync` module, which switches to loom
//! under `RUSTFLAGS="--cfg loom"`; the models live in the workspace's
//! `loom-tests` crate.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod chunks;
mod error;
mod ring;
mod slice;
mod sync;
mod wait;

pub use chunks::{ReadChunk, ReadChunkIntoIter, WriteChunkUninit};
pub use error::{Abandoned, CapacityError, Full, TooFewSlots};
pub use ring::{ring, try_ring, Consumer, Producer};
pub use wait::MAX_PARK;
