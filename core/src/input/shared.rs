//! Handles for many callers over a few rings: the pool of claimed
//! [`Producer`] rings, and [`SharedProducer`], its blocking face (the
//! async one is `awaiting`).
//!
//! A claim is held only for one attempt to store a record (a flag check,
//! a ring push, a fence and a flag load), never while waiting, so callers
//! of one ring are serialized per record. That is what makes the close
//! race safe with a shared ring: a caller that stored a record and then
//! saw the engine closed releases the claim, and every later caller of the
//! ring sees the close before storing, so the ring holds at most one such
//! record, the one that caller takes back (or learns was taken) once the
//! worker has drained.

use std::time::Duration;

use crossbeam_utils::CachePadded;

#[cfg(feature = "tokio")]
use super::lane::Lane;
use super::lane::Lanes;
use super::patience::{count_shed, push_waiting, retry_while_full, send_by_policy};
use super::producer::{Producer, Sent, Stored};
use super::{Closed, PushError};
use crate::sync::wait::Idle;
use crate::sync::{Arc, AtomicUsize, Mutex, MutexGuard, Ordering, PoisonError, TryLockError};

/// The rings behind a shared or async handle, shared by every clone.
pub(super) struct Pool<R> {
    pub(super) rings: Box<[CachePadded<Ring<R>>]>,
    /// The engine's intake: its overload policy, shed counter and the
    /// workers' drain signals.
    pub(super) lanes: Arc<Lanes<R>>,
    /// Clones made: spreads their first rings.
    clones: AtomicUsize,
}

pub(super) struct Ring<R> {
    producer: Mutex<Producer<R>>,
    /// The ring's lane, whose `room` its takers notify (async handles).
    #[cfg(feature = "tokio")]
    pub(super) lane: Arc<Lane<R>>,
    /// The worker that reads the ring.
    pub(super) worker: usize,
}

/// What one pass over the rings did with a record.
pub(super) enum Attempt<R> {
    Accepted,
    /// Every ring was full: the record, handed back.
    Full(R),
    /// The engine is closed: the record, handed back.
    Closed(R),
    /// The record went into ring `ring` as the engine closed: once its
    /// worker has drained, [`Pool::reclaim`] says whether it was taken.
    Raced {
        ring: usize,
    },
}

impl<R> Pool<R> {
    /// A pool of `rings` (not empty); the first clone's first ring is 0.
    pub(super) fn new(rings: Vec<Producer<R>>) -> Arc<Self> {
        assert!(!rings.is_empty(), "a shared handle needs a ring");
        let lanes = Arc::clone(rings[0].lanes());
        Arc::new(Pool {
            rings: rings
                .into_iter()
                .map(|producer| {
                    CachePadded::new(Ring {
                        #[cfg(feature = "tokio")]
                        lane: Arc::clone(&producer.lane),
                        worker: producer.worker(),
                        producer: Mutex::new(producer),
                    })
                })
                .collect(),
            lanes,
            clones: AtomicUsize::new(1),
        })
    }

    /// The first ring of a new clone.
    pub(super) fn next_home(&self) -> usize {
        self.clones.fetch_add(1, Ordering::Relaxed) % self.rings.len()
    }

    /// Tries each ring once from `home`, claiming without waiting and
    /// moving on from a claimed or full ring; if every ring with possible
    /// room was claimed, waits for `home`'s claim (held for one store).
    /// Hot path: a claim, a ring push, a fence and two flag loads.
    pub(super) fn attempt(&self, record: R, home: usize) -> Attempt<R> {
        let mut record = record;
        let mut claimed = false;
        let rings = self.rings.len();
        let mut index = home;
        for _ in 0..rings {
            let this = index;
            // The next ring, without a division per push.
            index = if index + 1 == rings { 0 } else { index + 1 };
            let index = this;
            let mut producer = match self.rings[index].producer.try_lock() {
                Ok(producer) => producer,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    claimed = true;
                    continue;
                }
            };
            match producer.try_store(record) {
                Stored::Refused(PushError::Full(back)) => record = back,
                stored => return Self::outcome(stored, index),
            }
        }
        if !claimed {
            return Attempt::Full(record);
        }
        match self.claim(home).try_store(record) {
            Stored::Refused(PushError::Full(back)) => Attempt::Full(back),
            stored => Self::outcome(stored, home),
        }
    }

    fn outcome(stored: Stored<R>, ring: usize) -> Attempt<R> {
        match stored {
            Stored::Accepted => Attempt::Accepted,
            Stored::Refused(PushError::Full(back)) => Attempt::Full(back),
            Stored::Refused(PushError::Closed(back)) => Attempt::Closed(back),
            Stored::RacedClose => Attempt::Raced { ring },
        }
    }

    /// Whether the worker of `ring` has finished its final drain.
    pub(super) fn is_drained(&self, ring: usize) -> bool {
        self.lanes.workers[self.rings[ring].worker]
            .finished
            .load(Ordering::Acquire)
    }

    /// After [`Attempt::Raced`] and the drain: `Ok` if the worker took
    /// the record, else the record handed back.
    pub(super) fn reclaim(&self, ring: usize) -> Result<(), PushError<R>> {
        self.claim(ring).reclaim_one()
    }

    /// Claims `ring`, waiting for its holder (who holds it for one store).
    fn claim(&self, ring: usize) -> MutexGuard<'_, Producer<R>> {
        self.rings[ring]
            .producer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle many threads push through at once: `Clone`, `Send` and
/// `Sync`. Made by [`Engine::shared_producer`](crate::Engine::shared_producer).
///
/// Behind it are a few rings, each a [`Producer`] behind a claim. A push
/// claims one without waiting (`try_lock`, one uncontended CAS), starting
/// from the clone's own ring and moving on to the next when one is claimed
/// by another caller or full; it waits for a claim only when every ring is
/// claimed, and a claim is held for one store. So a push costs a dedicated
/// producer's push plus a claim and its release (see `docs/embedding.md`
/// for the figures), and a clone costs an `Arc` clone: no ring, no
/// registration with a worker.
///
/// The same contract as [`Producer`]: a push either accepts a record (in
/// exactly one epoch's result) or hands it back. One caller's records keep
/// their order only within one ring: records pushed by one thread may land
/// in two rings, so in two epochs out of order, when its ring was claimed
/// or full.
pub struct SharedProducer<R> {
    pool: Arc<Pool<R>>,
    /// The ring this clone tries first.
    home: usize,
}

impl<R> SharedProducer<R> {
    /// A handle over `rings` (not empty).
    pub(crate) fn new(rings: Vec<Producer<R>>) -> Self {
        SharedProducer {
            pool: Pool::new(rings),
            home: 0,
        }
    }

    /// How many rings the handle pushes into.
    pub fn rings(&self) -> usize {
        self.pool.rings.len()
    }

    /// Pushes `record` into a ring with room, trying each once; never
    /// waits for room. [`PushError::Full`] hands the record back when
    /// every ring is full.
    pub fn try_push(&self, record: R) -> Result<(), PushError<R>> {
        match self.pool.attempt(record, self.home) {
            Attempt::Accepted => Ok(()),
            Attempt::Full(back) => Err(PushError::Full(back)),
            Attempt::Closed(back) => Err(PushError::Closed(back)),
            Attempt::Raced { ring } => {
                let idle = Idle::new();
                while !self.pool.is_drained(ring) {
                    idle.step();
                }
                self.pool.reclaim(ring)
            }
        }
    }

    /// Pushes `record`, waiting (spin, yield, short sleeps) while every
    /// ring is full. Fails only when the engine shuts down.
    pub fn push(&self, record: R) -> Result<(), Closed<R>> {
        push_waiting(|record| self.try_push(record), record)
    }

    /// Pushes `record`, waiting up to `timeout` while every ring is full;
    /// [`PushError::Full`] hands it back if they stayed full that long.
    pub fn push_timeout(&self, record: R, timeout: Duration) -> Result<(), PushError<R>> {
        retry_while_full(|record| self.try_push(record), record, Some(timeout))
    }

    /// Pushes `record` as the engine's [`Overload`](crate::Overload) policy
    /// says when every ring is full, as [`Producer::send`] does.
    pub fn send(&self, record: R) -> Result<Sent, PushError<R>> {
        let sent = send_by_policy(
            self.pool.lanes.overload,
            |record| self.try_push(record),
            record,
        );
        count_shed(&self.pool.lanes, &sent);
        sent
    }
}

impl<R> Clone for SharedProducer<R> {
    /// Another handle on the same rings, trying the next ring first.
    fn clone(&self) -> Self {
        SharedProducer {
            pool: Arc::clone(&self.pool),
            home: self.pool.next_home(),
        }
    }
}

impl<R> std::fmt::Debug for SharedProducer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedProducer")
            .field("rings", &self.pool.rings.len())
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}
