//! Producer handles: the service's threads push records into SPSC rings,
//! one ring per handle, each read by one worker.
//!
//! Closing without losing a record: a push stores the record (the ring's
//! tail), then a `SeqCst` fence, then reads the engine's `closed` flag;
//! shutdown stores `closed`, and each worker fences before its final drain.
//! So a push that saw the engine open after its fence is seen by that final
//! drain, and a push that saw it closed waits until its worker has finished
//! draining, then takes back whatever of its own is still in the ring and
//! returns it as [`Closed`]. Every record is either taken by a worker (and
//! in exactly one result) or handed back.
//!
//! Work stealing: a ring's consumer end sits in its lane behind a claim
//! (`try_lock`: one uncontended CAS, never a wait on a worker's path).
//! Its owner claims it for each chunk and folds the chunk in place. A
//! worker with nothing of its own claims other workers' rings that hold at
//! least a chunk (less, and the owner keeps up: taking it would only idle
//! the owner) and takes a chunk into its own open epoch. A thief moves its
//! chunk out and gives the ring up before folding it, and once a thief has
//! wanted a ring, every taker does the same until one leaves the ring
//! empty: so two workers fold one hot ring's records at once, each claim
//! held for a copy rather than a fold, and the copy is paid only then. A
//! record leaves a ring under a claim, so it is taken once whoever takes
//! it. Each ring remembers the newest epoch taken from it and a taker with
//! an older open epoch skips it, so one producer's records never go back
//! an epoch.
//!
//! Record latency from the push: before pushing into an empty-stamped
//! lane, a producer stamps the lane with the time; a worker that takes a
//! run from the lane swaps the stamp out and counts the run's latency from
//! it. The stamp is the earliest push the worker has not yet accounted
//! for, so a run's latency is never under-reported by more than the time
//! from a push to the worker's next round (a record pushed between a
//! worker's read of the ring and its swap of the stamp is counted from
//! that next round).
//!
//! The pieces: `lane` (a producer ring as the workers see it, and the
//! registry of every worker's lanes), `producer` (the public handle),
//! `shared` (a `Clone` handle over a few rings, for many callers),
//! `awaiting` (the async handle, with the `tokio` feature) and `reader` (a
//! worker's side: taking from its own lanes, stealing from others', its
//! half of the closing protocol).

#[cfg(feature = "tokio")]
mod awaiting;
mod lane;
mod patience;
mod producer;
mod reader;
mod shared;

#[cfg(feature = "tokio")]
pub use awaiting::AsyncProducer;
pub(crate) use lane::Lanes;
pub use producer::{Producer, Sent};
pub(crate) use reader::LaneReader;
pub use shared::SharedProducer;

/// Records taken from one ring per visit: enough to amortize the visit,
/// small enough to keep the other rings and the clock served.
pub(crate) const CHUNK: usize = 4096;

/// The engine is shut down (or shutting down): the record(s) are handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the engine is shut down; the records are handed back")]
pub struct Closed<T>(pub T);

/// Why [`Producer::try_push`] did not take a record; it is handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError<T> {
    /// The ring is full: the worker is behind. Retry, or use [`Producer::push`].
    #[error("the producer's ring is full; the record is handed back")]
    Full(T),
    /// The engine is shut down.
    #[error("the engine is shut down; the record is handed back")]
    Closed(T),
}

impl<T> PushError<T> {
    /// The record handed back.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(record) | PushError::Closed(record) => record,
        }
    }
}

#[cfg(all(test, loom))]
mod model;
#[cfg(all(test, not(loom)))]
mod tests;
