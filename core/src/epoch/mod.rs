//! Epochs: how the stream is cut into batches and how a batch's result is
//! completed.
//!
//! - `clock`: the global epoch counter and its in-flight window. A worker
//!   whose batch is full, or that sees the interval run out, advances it
//!   with one CAS; every worker that sees the new epoch seals its open batch
//!   as the old one (see `worker::seal`).
//! - `slot`: what the workers report of an epoch in flight, gathered for
//!   its progress, one slot per epoch of the window.
//! - `salted`: the salted keys' entries of an epoch, merged from every
//!   owner.
//! - `interval`: the adaptive interval, which interval the next epoch
//!   opens with under a latency target.
//! - `completion`: epochs complete one at a time, in order: progress,
//!   latency, totals.

pub(crate) mod clock;
pub(crate) mod completion;
pub(crate) mod interval;
pub(crate) mod salted;
pub(crate) mod slot;
