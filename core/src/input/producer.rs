//! The public producer handle: one SPSC ring per handle, read by one
//! worker (see the module docs of `input` for the closing protocol).

use microbatch_ringbuf::{self as ringbuf, Full};

use super::lane::{Lane, Lanes};
use std::time::Duration;

use super::patience::{count_shed, push_waiting, retry_while_full, send_by_policy};
use super::{Closed, PushError};
use crate::sync::wait::Idle;
use crate::sync::{fence, Arc, Ordering};

/// What [`Producer::send`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The record is accepted: it will be in exactly one epoch's result.
    Accepted,
    /// The ring was full and the engine's policy is
    /// [`Overload::DropNewest`](crate::Overload::DropNewest): the record is
    /// dropped and counted in
    /// [`Progress::records_shed`](crate::progress::Progress::records_shed).
    Shed,
}

/// What [`Producer::try_store`] did.
pub(crate) enum Stored<R> {
    /// In the ring, and the engine was open after the store: accepted.
    Accepted,
    /// Not stored: the ring was full or the engine closed.
    Refused(PushError<R>),
    /// In the ring, but the engine closed meanwhile: once the worker has
    /// drained, [`Producer::reclaim_one`] says whether the drain took it.
    RacedClose,
}

/// A handle that pushes records into the engine through its own SPSC ring,
/// read by one worker. Made by [`Engine::producer`](crate::Engine::producer);
/// `Send`, not `Sync`: one thread pushes through it at a time.
///
/// Nothing is dropped: a push either accepts a record (it will be in exactly
/// one epoch result) or hands it back in the error.
pub struct Producer<R> {
    ring: ringbuf::Producer<R>,
    pub(super) lane: Arc<Lane<R>>,
    lanes: Arc<Lanes<R>>,
    worker: usize,
}

impl<R> Producer<R> {
    /// A ring of `capacity` for `worker`, registered with it; `wakes`: the
    /// handle will await room (an async producer), so takers notify it.
    pub(crate) fn attach(
        lanes: Arc<Lanes<R>>,
        worker: usize,
        capacity: usize,
        wakes: bool,
    ) -> Self {
        let (ring, consumer) = ringbuf::ring(capacity);
        let lane = Arc::new(Lane::new(consumer, wakes));
        lanes.register(worker, Arc::clone(&lane));
        Producer {
            ring,
            lane,
            lanes,
            worker,
        }
    }

    /// The worker that reads this handle's ring.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Pushes `record` if the ring has room. Hot path: one ring push, one
    /// fence and two flag loads.
    pub fn try_push(&mut self, record: R) -> Result<(), PushError<R>> {
        match self.try_store(record) {
            Stored::Accepted => Ok(()),
            Stored::Refused(refused) => Err(refused),
            Stored::RacedClose => {
                self.wait_for_drain();
                self.reclaim_one()
            }
        }
    }

    /// Stores `record` in the ring if the engine is open and the ring has
    /// room, then checks that the engine was still open after the store.
    /// Hot path: one ring push, one fence and two flag loads.
    #[inline]
    pub(crate) fn try_store(&mut self, record: R) -> Stored<R> {
        if self.lanes.is_closed() {
            return Stored::Refused(PushError::Closed(record));
        }
        self.stamp();
        if let Err(Full(record)) = self.ring.try_push(record) {
            return Stored::Refused(PushError::Full(record));
        }
        fence(Ordering::SeqCst);
        if self.lanes.closed.load(Ordering::Relaxed) {
            Stored::RacedClose
        } else {
            Stored::Accepted
        }
    }

    /// After [`Stored::RacedClose`] and the worker's drain: `Ok` if the
    /// drain took the record, else the record handed back.
    pub(crate) fn reclaim_one(&mut self) -> Result<(), PushError<R>> {
        match self.reclaim(1).pop() {
            None => Ok(()),
            Some(record) => Err(PushError::Closed(record)),
        }
    }

    /// Whether this handle's worker has finished its final drain.
    pub(crate) fn is_drained(&self) -> bool {
        self.lanes.workers[self.worker]
            .finished
            .load(Ordering::Acquire)
    }

    /// The engine's intake this handle pushes into.
    pub(super) fn lanes(&self) -> &Arc<Lanes<R>> {
        &self.lanes
    }

    /// Pushes `record`, waiting up to `timeout` (spin, yield, short sleeps)
    /// for room; [`PushError::Full`] hands it back if the ring stayed full
    /// that long. For a service that bounds its own latency.
    pub fn push_timeout(&mut self, record: R, timeout: Duration) -> Result<(), PushError<R>> {
        retry_while_full(|record| self.try_push(record), record, Some(timeout))
    }

    /// Pushes `record` as the engine's [`Overload`](crate::Overload) policy
    /// says when the ring is full: wait (`Block`), hand it back
    /// (`Fail`, as [`PushError::Full`]), or drop and count it
    /// (`DropNewest`, [`Sent::Shed`]). [`PushError::Closed`] hands it back
    /// once the engine shuts down.
    pub fn send(&mut self, record: R) -> Result<Sent, PushError<R>> {
        let sent = send_by_policy(self.lanes.overload, |record| self.try_push(record), record);
        count_shed(&self.lanes, &sent);
        sent
    }

    /// Pushes `record`, waiting (spin, yield, short sleeps) while the ring
    /// is full. Fails only when the engine shuts down.
    pub fn push(&mut self, record: R) -> Result<(), Closed<R>> {
        push_waiting(|record| self.try_push(record), record)
    }

    /// Waits (spin, yield, short sleeps) for the worker's final drain,
    /// after a push raced the close.
    #[cold]
    fn wait_for_drain(&self) {
        let idle = Idle::new();
        while !self.is_drained() {
            idle.step();
        }
    }

    /// After the worker's final drain: takes back what it left of the last
    /// `pushed` records stored (the newest ones), oldest first.
    #[cold]
    fn reclaim(&mut self, pushed: usize) -> Vec<R> {
        debug_assert!(self.is_drained());
        let mut back = Vec::new();
        {
            let mut ring = self.lane.claim();
            while let Some(record) = ring.consumer.try_pop() {
                back.push(record);
            }
        }
        // After a clean drain only this call's records can be left. More
        // are left only if the worker failed mid-chunk: those were accepted
        // by an engine that reports its failure, and are not this call's.
        let stranded = back.len().saturating_sub(pushed);
        back.drain(..stranded);
        back
    }

    /// Stamps the lane with now unless an earlier push not yet accounted
    /// for stamped it: one relaxed load per push, a clock read only when the
    /// worker has taken the last stamp. Hot path.
    #[inline]
    fn stamp(&self) {
        if self.lane.pushed.load(Ordering::Relaxed) == 0 {
            let micros =
                u64::try_from(self.lanes.start.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
            self.lane.pushed.store(micros + 1, Ordering::Relaxed);
        }
    }

    /// The check after a store: empty if the records are accepted.
    #[inline]
    fn confirm(&mut self, pushed: usize) -> Vec<R> {
        fence(Ordering::SeqCst);
        if self.lanes.closed.load(Ordering::Relaxed) {
            self.wait_for_drain();
            self.reclaim(pushed)
        } else {
            Vec::new()
        }
    }
}

impl<R: Copy> Producer<R> {
    /// Pushes all of `records`, as many at a time as the ring has room for,
    /// waiting while it is full. On shutdown, the records not accepted (a
    /// suffix of `records`) are handed back.
    pub fn push_slice<'a>(&mut self, records: &'a [R]) -> Result<(), Closed<&'a [R]>> {
        let mut done = 0;
        let mut idle = Idle::new();
        while done < records.len() {
            if self.lanes.is_closed() {
                return Err(Closed(&records[done..]));
            }
            self.stamp();
            let pushed = self.ring.push_slice(&records[done..]);
            if pushed == 0 {
                idle.step();
                continue;
            }
            idle.reset();
            done += pushed;
            let back = self.confirm(pushed).len();
            if back > 0 {
                return Err(Closed(&records[done - back..]));
            }
        }
        Ok(())
    }
}

impl<R> Drop for Producer<R> {
    fn drop(&mut self) {
        self.lanes.workers[self.worker]
            .producers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl<R> std::fmt::Debug for Producer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("worker", &self.worker)
            .field("queued", &self.ring.len())
            .finish_non_exhaustive()
    }
}
