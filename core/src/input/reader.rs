//! A worker's side of the input: the lanes it reads, the lanes it may steal
//! from, and its half of the closing protocol (see the module docs of
//! `input`).

use super::lane::{Lane, Lanes};
use super::CHUNK;
use crate::sync::{fence, Arc, Ordering, PoisonError};

/// Folds a chunk moved out of a ring (see [`Lane::move_chunk`]) into
/// `take` and empties `moved`; returns how many records it held.
fn fold_moved<R>(
    moved: &mut Vec<R>,
    pushed: Option<u64>,
    take: &mut impl FnMut(&[R], Option<u64>),
) -> usize {
    take(moved, pushed);
    let taken = moved.len();
    moved.clear();
    taken
}

/// What one round over a worker's rings did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Round {
    /// Records taken.
    pub(crate) records: u64,
    /// Some ring was not looked into: claimed by a thief, or holding
    /// records of a newer epoch than the taker's. Nothing can be concluded
    /// about it being empty.
    pub(crate) skipped: bool,
    /// The most records one of the rings held when the round came to it:
    /// how far the producers are ahead.
    pub(crate) backlog: usize,
}

/// One worker's side of the lanes: the rings it reads, the rings it may
/// steal from, and its half of the closing protocol (see the module docs).
pub(crate) struct LaneReader<R> {
    id: usize,
    lanes: Arc<Lanes<R>>,
    /// The lanes of this worker's own producers.
    pub(super) own: Vec<Arc<Lane<R>>>,
    /// The engine closed and this worker has fenced: every accepted push
    /// is visible to it.
    closing: bool,
    /// Other workers' lanes as of `victims_version`, for stealing.
    pub(super) victims: Vec<Arc<Lane<R>>>,
    victims_version: u64,
    /// Where the next steal starts looking, so thieves spread over lanes.
    next_victim: usize,
    /// A chunk moved out of a ring, to be folded after the claim is given
    /// up; empty between takes. Grows once, to a chunk.
    moved: Vec<R>,
    /// The last steal found a ring with records claimed by another taker,
    /// which gives it up within a chunk's fold.
    missed_claim: bool,
}

impl<R> LaneReader<R> {
    pub(crate) fn new(id: usize, lanes: Arc<Lanes<R>>) -> Self {
        LaneReader {
            id,
            lanes,
            own: Vec::new(),
            closing: false,
            victims: Vec::new(),
            victims_version: u64::MAX,
            next_victim: 0,
            moved: Vec::new(),
            missed_claim: false,
        }
    }

    /// Whether the engine closed. The first time it says so, it fences:
    /// this pairs with the fence after each push, so every push that saw
    /// the engine open is visible from here on.
    pub(crate) fn poll_closed(&mut self) -> bool {
        if !self.closing && self.lanes.is_closed() {
            fence(Ordering::SeqCst);
            self.closing = true;
        }
        self.closing
    }

    /// Takes up to `budget` records into the open `epoch`, a chunk per
    /// ring at most, into `take` (called with contiguous runs, and with the
    /// µs since the engine started of the earliest push not yet accounted
    /// for, if the lane was stamped); first adopts the rings created since
    /// the last call and drops those whose producer left and that are
    /// empty. Hot path: per ring, one claim (an uncontended CAS) and one
    /// chunk read.
    #[inline]
    pub(crate) fn take(
        &mut self,
        budget: u64,
        epoch: u64,
        mut take: impl FnMut(&[R], Option<u64>),
    ) -> Round {
        while let Some(lane) = self.lanes.workers[self.id].arrivals.pop() {
            self.own.push(lane);
        }
        let mut round = Round {
            records: 0,
            skipped: false,
            backlog: 0,
        };
        let mut index = 0;
        while index < self.own.len() && round.records < budget {
            let lane = &self.own[index];
            let Some(mut ring) = lane.try_claim() else {
                round.skipped = true;
                index += 1;
                continue;
            };
            if ring.epoch > epoch {
                // A thief took newer records of this ring: this worker
                // seals its open epoch first.
                round.skipped = true;
                index += 1;
                continue;
            }
            round.backlog = round.backlog.max(ring.consumer.len());
            let max = usize::try_from(budget - round.records).unwrap_or(usize::MAX);
            let taken = if lane.wanted.load(Ordering::Relaxed) {
                // A thief helps with this ring: fold after giving it up.
                let pushed = lane.move_chunk(&mut ring, epoch, max, &mut self.moved);
                let retire = self.moved.is_empty() && lane.is_spent(&ring);
                drop(ring);
                if retire {
                    self.retire(index);
                    continue;
                }
                fold_moved(&mut self.moved, pushed, &mut take)
            } else {
                let taken = lane.take_chunk(&mut ring, epoch, max, &mut take);
                if taken == 0 && lane.is_spent(&ring) {
                    drop(ring);
                    self.retire(index);
                    continue;
                }
                taken
            };
            round.records += taken as u64;
            index += 1;
        }
        round
    }

    /// Drops the lane at `index`, which [`Lane::is_spent`].
    fn retire(&mut self, index: usize) {
        let lane = self.own.swap_remove(index);
        lane.retired.store(true, Ordering::Relaxed);
        self.lanes.forget_retired();
    }

    /// Takes one chunk of `budget` records, or of a whole chunk if that is
    /// less, into the open `epoch` from another worker's ring that holds
    /// that many, or nothing. Runs only when this worker found nothing of
    /// its own: not a hot path.
    ///
    /// Exactly once holds whoever claims first (a record leaves the ring
    /// under a claim, once); the caller steals only before it has seen the
    /// close, so stolen records are in an epoch it has yet to seal. Once
    /// the engine is closed a thief leaves the rings to their owners'
    /// final drains, which then need not wait for it.
    pub(crate) fn steal(
        &mut self,
        budget: u64,
        epoch: u64,
        mut take: impl FnMut(&[R], Option<u64>),
    ) -> u64 {
        let version = self.lanes.version.load(Ordering::Acquire);
        if version != self.victims_version {
            let lanes = self
                .lanes
                .all
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.victims.clear();
            self.victims.extend(
                lanes
                    .iter()
                    .filter(|(owner, _)| *owner != self.id)
                    .map(|(_, lane)| Arc::clone(lane)),
            );
            self.victims_version = version;
        }
        let count = self.victims.len();
        let max = usize::try_from(budget).unwrap_or(usize::MAX);
        if max == 0 {
            // No room: an empty read would clear the rings' hints.
            return 0;
        }
        for offset in 0..count {
            let lane = &self.victims[(self.next_victim + offset) % count];
            let maybe_records =
                lane.pushed.load(Ordering::Relaxed) != 0 || lane.backlog.load(Ordering::Relaxed);
            if !maybe_records || lane.retired.load(Ordering::Relaxed) {
                continue;
            }
            let Some(mut ring) = lane.try_claim() else {
                // Its taker gives it up before folding its next chunk.
                lane.want();
                self.missed_claim = true;
                continue;
            };
            if self.lanes.is_closed() {
                return 0;
            }
            if ring.epoch > epoch {
                continue;
            }
            if ring.consumer.len() < max.min(CHUNK) {
                // Less than a chunk waits: the owner keeps up with this
                // ring, and taking its records would only idle it.
                continue;
            }
            // Folded after the claim is given up, so that the owner (or
            // another thief) takes the next chunk meanwhile.
            let pushed = lane.move_chunk(&mut ring, epoch, max, &mut self.moved);
            if !ring.consumer.is_empty() {
                lane.want();
            }
            drop(ring);
            if !self.moved.is_empty() {
                self.next_victim = (self.next_victim + offset + 1) % count;
                return fold_moved(&mut self.moved, pushed, &mut take) as u64;
            }
        }
        0
    }

    /// Whether a [`steal`](Self::steal) since the last call found a ring
    /// with records claimed by another taker: worth another try within
    /// microseconds, not after a sleep.
    pub(crate) fn take_missed_claim(&mut self) -> bool {
        std::mem::take(&mut self.missed_claim)
    }

    /// Tells the producers this worker takes no more from its rings: a
    /// producer whose push raced with the close takes back what is left.
    /// Idempotent; also runs when the worker stops on a failure.
    pub(crate) fn release(&mut self) {
        self.own.clear();
        self.victims.clear();
        let lanes = &self.lanes.workers[self.id];
        lanes.finished.store(true, Ordering::Release);
        #[cfg(feature = "tokio")]
        lanes.drained.notify_waiters();
    }
}
