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

use std::sync::{PoisonError, TryLockError};
use std::time::Instant;

use crossbeam_utils::CachePadded;

use microbatch_ringbuf::{self as ringbuf, Full};

use crate::sync::wait::Idle;
use crate::sync::{
    fence, Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering, Queue,
};

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

/// One producer ring as the workers see it.
pub(crate) struct Lane<R> {
    /// The consumer end. Claimed (`try_lock`, one uncontended CAS, never a
    /// wait) by whoever takes from the ring: its owner each round, a thief,
    /// or at close the producer taking back what is left. A claimed lane is
    /// skipped, never waited for, on the workers' paths.
    ring: Mutex<LaneRing<R>>,
    /// µs since the engine started of the earliest push the worker has not
    /// accounted for, plus one; 0 when none.
    pushed: CachePadded<AtomicU64>,
    /// Its owner dropped it: the producer is gone and the ring is empty.
    retired: AtomicBool,
    /// The last taker left records in the ring. With `pushed`, a thief's
    /// hint that the ring holds records (a producer blocked on a full ring
    /// does not stamp it again until it wakes). Written under the claim,
    /// only when it changes.
    backlog: AtomicBool,
    /// A thief wants records of this ring: until a taker leaves it empty,
    /// takers move their chunks out and give the ring up before folding
    /// them, so that two workers fold the records of one hot ring at once.
    /// Stored only when it changes.
    wanted: AtomicBool,
}

/// What a claim of a lane gives access to.
struct LaneRing<R> {
    consumer: ringbuf::Consumer<R>,
    /// The newest epoch a taker took records of this ring into. A taker
    /// whose open epoch is older skips the ring, so the epochs of one
    /// producer's records never go backwards, whoever takes them.
    epoch: u64,
}

impl<R> Lane<R> {
    /// Claims the ring without waiting; `None` if someone else holds it.
    /// A claim poisoned by a panicking taker is still a consistent ring:
    /// a chunk is committed only after it was absorbed.
    fn try_claim(&self) -> Option<MutexGuard<'_, LaneRing<R>>> {
        match self.ring.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Its producer is gone and everything it pushed is taken.
    fn is_spent(&self, ring: &LaneRing<R>) -> bool {
        ring.consumer.is_abandoned() && ring.consumer.is_empty()
    }

    /// Claims the ring, waiting for a taker holding it (only at close).
    fn claim(&self) -> MutexGuard<'_, LaneRing<R>> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes up to `max` records into `take` if the ring's epoch allows
    /// `epoch`; returns how many. Hot path.
    #[inline]
    fn take_chunk(
        &self,
        ring: &mut LaneRing<R>,
        epoch: u64,
        max: usize,
        take: &mut impl FnMut(&[R], Option<u64>),
    ) -> usize {
        let chunk = ring.consumer.read_chunk_up_to(max.min(CHUNK));
        if chunk.is_empty() {
            self.note_backlog(false);
            return 0;
        }
        ring.epoch = epoch;
        let pushed = self.take_stamp();
        let (first, second) = chunk.as_slices();
        take(first, pushed);
        take(second, pushed);
        let taken = chunk.len();
        chunk.commit_all();
        self.note_backlog(!ring.consumer.is_empty());
        taken
    }

    /// Like [`take_chunk`](Self::take_chunk), but moves the records into
    /// `out` (empty on entry) for the caller to fold once it has given the
    /// claim up; returns their push stamp. A copy of the chunk, paid only
    /// by a thief and by an owner a thief is waiting for.
    fn move_chunk(
        &self,
        ring: &mut LaneRing<R>,
        epoch: u64,
        max: usize,
        out: &mut Vec<R>,
    ) -> Option<u64> {
        let chunk = ring.consumer.read_chunk_up_to(max.min(CHUNK));
        if chunk.is_empty() {
            self.note_backlog(false);
            return None;
        }
        ring.epoch = epoch;
        let pushed = self.take_stamp();
        chunk.move_into(out);
        self.note_backlog(!ring.consumer.is_empty());
        pushed
    }

    /// A thief wants records of the ring (see `wanted`).
    #[inline]
    fn want(&self) {
        if !self.wanted.load(Ordering::Relaxed) {
            self.wanted.store(true, Ordering::Relaxed);
        }
    }

    /// The stamp of the records up to the chunk just read, which it
    /// resets: every record in the chunk was stamped for (or its stamp was
    /// taken by the previous taker).
    #[inline]
    fn take_stamp(&self) -> Option<u64> {
        self.pushed.swap(0, Ordering::Relaxed).checked_sub(1)
    }

    /// Whether the taker left records in the ring (a taker that leaves it
    /// empty needs no help with it); stored only when it changes, so that
    /// idle rounds do not write the line.
    #[inline]
    fn note_backlog(&self, backlog: bool) {
        if self.backlog.load(Ordering::Relaxed) != backlog {
            self.backlog.store(backlog, Ordering::Relaxed);
        }
        if !backlog && self.wanted.load(Ordering::Relaxed) {
            self.wanted.store(false, Ordering::Relaxed);
        }
    }
}

/// What one worker shares with the producers attached to it.
pub(crate) struct WorkerIntake<R> {
    /// Rings created since the worker last looked.
    pub(crate) arrivals: Queue<Arc<Lane<R>>>,
    /// The worker has taken its last record and put every consumer end
    /// back into its lane.
    pub(crate) finished: AtomicBool,
    /// Producer handles attached to the worker and not dropped: its load,
    /// for placing new handles.
    pub(crate) producers: AtomicUsize,
}

/// The intake side of an engine, shared by its producers and workers.
pub(crate) struct Intake<R> {
    /// When the engine started: the time base of push stamps.
    start: Instant,
    /// Set once, by shutdown (or by a failing worker).
    pub(crate) closed: AtomicBool,
    pub(crate) workers: Box<[WorkerIntake<R>]>,
    /// Every live lane and its owner, for thieves; changed only when a
    /// producer attaches or a retired lane is dropped (`lanes_version` says when).
    lanes: Mutex<Vec<(usize, Arc<Lane<R>>)>>,
    lanes_version: AtomicU64,
}

impl<R> Intake<R> {
    pub(crate) fn new(workers: usize, start: Instant) -> Self {
        Intake {
            start,
            closed: AtomicBool::new(false),
            workers: (0..workers)
                .map(|_| WorkerIntake {
                    arrivals: Queue::new(),
                    finished: AtomicBool::new(false),
                    producers: AtomicUsize::new(0),
                })
                .collect(),
            lanes: Mutex::new(Vec::new()),
            lanes_version: AtomicU64::new(0),
        }
    }

    /// Drops retired lanes from the thieves' list, so that their rings are
    /// freed once every thief has refreshed its list. Cold: once per
    /// producer handle dropped.
    #[cold]
    fn forget_retired(&self) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes.retain(|(_, lane)| !lane.retired.load(Ordering::Relaxed));
        self.lanes_version.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A handle that pushes records into the engine through its own SPSC ring,
/// read by one worker. Made by [`Engine::producer`](crate::Engine::producer);
/// `Send`, not `Sync`: one thread pushes through it at a time.
///
/// Nothing is dropped: a push either accepts a record (it will be in exactly
/// one epoch result) or hands it back in the error.
pub struct Producer<R> {
    ring: ringbuf::Producer<R>,
    lane: Arc<Lane<R>>,
    intake: Arc<Intake<R>>,
    worker: usize,
}

impl<R> Producer<R> {
    /// A ring of `capacity` for `worker`, registered with it.
    pub(crate) fn attach(intake: Arc<Intake<R>>, worker: usize, capacity: usize) -> Self {
        let (ring, consumer) = ringbuf::ring(capacity);
        let lane = Arc::new(Lane {
            ring: Mutex::new(LaneRing { consumer, epoch: 0 }),
            pushed: CachePadded::new(AtomicU64::new(0)),
            retired: AtomicBool::new(false),
            backlog: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
        });
        {
            let mut lanes = intake.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            lanes.push((worker, Arc::clone(&lane)));
            intake.lanes_version.fetch_add(1, Ordering::Release);
        }
        intake.workers[worker].arrivals.push(Arc::clone(&lane));
        intake.workers[worker]
            .producers
            .fetch_add(1, Ordering::Relaxed);
        Producer {
            ring,
            lane,
            intake,
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
        if self.intake.is_closed() {
            return Err(PushError::Closed(record));
        }
        self.stamp();
        self.ring
            .try_push(record)
            .map_err(|Full(r)| PushError::Full(r))?;
        match self.confirm(1).pop() {
            None => Ok(()),
            Some(record) => Err(PushError::Closed(record)),
        }
    }

    /// Pushes `record`, waiting (spin, yield, short sleeps) while the ring
    /// is full. Fails only when the engine shuts down.
    pub fn push(&mut self, record: R) -> Result<(), Closed<R>> {
        let mut record = record;
        let idle = Idle::new();
        loop {
            match self.try_push(record) {
                Ok(()) => return Ok(()),
                Err(PushError::Closed(back)) => return Err(Closed(back)),
                Err(PushError::Full(back)) => record = back,
            }
            idle.step();
        }
    }

    /// After records were stored in the ring: if the engine closed, wait
    /// for the worker's final drain and take back what it left of the last
    /// `pushed` records (the newest ones), oldest first.
    #[cold]
    fn recover(&mut self, pushed: usize) -> Vec<R> {
        let finished = &self.intake.workers[self.worker].finished;
        let idle = Idle::new();
        while !finished.load(Ordering::Acquire) {
            idle.step();
        }
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
                u64::try_from(self.intake.start.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
            self.lane.pushed.store(micros + 1, Ordering::Relaxed);
        }
    }

    /// The check after a store: empty if the records are accepted.
    #[inline]
    fn confirm(&mut self, pushed: usize) -> Vec<R> {
        fence(Ordering::SeqCst);
        if self.intake.closed.load(Ordering::Relaxed) {
            self.recover(pushed)
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
            if self.intake.is_closed() {
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
}

/// One worker's side of the intake: the rings it reads, the rings it may
/// steal from, and its half of the closing protocol (see the module docs).
pub(crate) struct Inputs<R> {
    id: usize,
    intake: Arc<Intake<R>>,
    lanes: Vec<Arc<Lane<R>>>,
    /// The engine closed and this worker has fenced: every accepted push
    /// is visible to it.
    closing: bool,
    /// Other workers' lanes as of `victims_version`, for stealing.
    victims: Vec<Arc<Lane<R>>>,
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

impl<R> Inputs<R> {
    pub(crate) fn new(id: usize, intake: Arc<Intake<R>>) -> Self {
        Inputs {
            id,
            intake,
            lanes: Vec::new(),
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
        if !self.closing && self.intake.is_closed() {
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
        while let Some(lane) = self.intake.workers[self.id].arrivals.pop() {
            self.lanes.push(lane);
        }
        let mut round = Round {
            records: 0,
            skipped: false,
        };
        let mut index = 0;
        while index < self.lanes.len() && round.records < budget {
            let lane = &self.lanes[index];
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
        let lane = self.lanes.swap_remove(index);
        lane.retired.store(true, Ordering::Relaxed);
        self.intake.forget_retired();
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
        let version = self.intake.lanes_version.load(Ordering::Acquire);
        if version != self.victims_version {
            let lanes = self
                .intake
                .lanes
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
            if self.intake.is_closed() {
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
        self.lanes.clear();
        self.victims.clear();
        self.intake.workers[self.id]
            .finished
            .store(true, Ordering::Release);
    }
}

impl<R> Drop for Producer<R> {
    fn drop(&mut self) {
        self.intake.workers[self.worker]
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

/// Loom models of the closing protocol: a push racing with shutdown is
/// either taken by the worker's final drain or handed back, never both,
/// never neither.
#[cfg(all(test, loom))]
mod model {
    use super::*;

    /// The worker side: drain until closed and empty, then release.
    fn drain_until_closed(mut inputs: Inputs<u32>) -> Vec<u32> {
        let mut taken = Vec::new();
        loop {
            let closed = inputs.poll_closed();
            let round = inputs.take(u64::MAX, 0, |records, _| taken.extend_from_slice(records));
            if closed && round.records == 0 && !round.skipped {
                inputs.release();
                return taken;
            }
            loom::thread::yield_now();
        }
    }

    #[test]
    fn push_racing_close_is_taken_or_handed_back() {
        loom::model(|| {
            let intake = Arc::new(Intake::new(1, Instant::now()));
            let mut producer = Producer::attach(Arc::clone(&intake), 0, 2);
            let worker = loom::thread::spawn({
                let inputs = Inputs::new(0, Arc::clone(&intake));
                move || drain_until_closed(inputs)
            });
            let pusher = loom::thread::spawn(move || producer.try_push(7));
            intake.close();
            let pushed = pusher.join().unwrap();
            let taken = worker.join().unwrap();
            match pushed {
                Ok(()) => assert_eq!(taken, [7], "an accepted record is taken"),
                Err(PushError::Closed(7)) => {
                    assert!(taken.is_empty(), "a record handed back is not taken")
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        });
    }

    #[test]
    fn slice_racing_close_hands_back_a_suffix() {
        loom::model(|| {
            let intake = Arc::new(Intake::new(1, Instant::now()));
            let mut producer = Producer::attach(Arc::clone(&intake), 0, 1);
            let worker = loom::thread::spawn({
                let inputs = Inputs::new(0, Arc::clone(&intake));
                move || drain_until_closed(inputs)
            });
            let pusher = loom::thread::spawn(move || match producer.push_slice(&[1, 2]) {
                Ok(()) => Vec::new(),
                Err(Closed(back)) => back.to_vec(),
            });
            intake.close();
            let back = pusher.join().unwrap();
            let mut taken = worker.join().unwrap();
            taken.extend(back);
            assert_eq!(taken, [1, 2], "every record once, in order");
        });
    }

    /// A thief steals while a push races with the close and the owner's
    /// final drain (run by the closing thread, so no thread spins waiting
    /// for the close): every record is taken by exactly one worker or
    /// handed back, never both, never neither.
    #[test]
    fn steal_racing_close_and_final_drain_takes_each_record_once() {
        loom::model(|| {
            let intake = Arc::new(Intake::new(2, Instant::now()));
            let mut producer = Producer::attach(Arc::clone(&intake), 0, 1);
            let thief = loom::thread::spawn({
                let mut inputs = Inputs::new(1, Arc::clone(&intake));
                move || {
                    let mut stolen = Vec::new();
                    // Two attempts, as a thief with nothing of its own
                    // makes between other work.
                    for _ in 0..2 {
                        if inputs.poll_closed() {
                            break;
                        }
                        // Room for one record: a thief takes a ring's
                        // records once they fill its room or a chunk.
                        inputs.steal(1, 0, |records, _| stolen.extend_from_slice(records));
                    }
                    inputs.release();
                    stolen
                }
            });
            let pusher = loom::thread::spawn(move || match producer.try_push(7) {
                Ok(()) => Vec::new(),
                Err(PushError::Closed(back)) => vec![back],
                Err(PushError::Full(_)) => unreachable!("the ring has room"),
            });
            intake.close();
            let mut all = drain_until_closed(Inputs::new(0, Arc::clone(&intake)));
            all.extend(thief.join().unwrap());
            all.extend(pusher.join().unwrap());
            assert_eq!(all, [7], "the record once");
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_run_counts_from_the_earliest_push_not_yet_accounted_for() {
        // An engine "started" 10 s ago: push stamps read about 10 s.
        let start = Instant::now() - Duration::from_secs(10);
        let intake = Arc::new(Intake::<u32>::new(1, start));
        let mut producer = Producer::attach(Arc::clone(&intake), 0, 64);
        let mut inputs = Inputs::new(0, Arc::clone(&intake));
        let mut runs: Vec<(usize, Option<u64>)> = Vec::new();

        producer.try_push(1).unwrap();
        let first = producer.lane.pushed.load(Ordering::Relaxed);
        producer.try_push(2).unwrap();
        // A later push keeps the earlier stamp.
        assert_eq!(producer.lane.pushed.load(Ordering::Relaxed), first);
        inputs.take(u64::MAX, 0, |records, pushed| {
            if !records.is_empty() {
                runs.push((records.len(), pushed))
            }
        });
        assert_eq!(runs.len(), 1);
        let (count, pushed) = runs[0];
        assert_eq!(count, 2);
        assert_eq!(pushed, Some(first - 1));
        assert!(pushed.unwrap() >= 10_000_000, "{pushed:?}");
        // Taken: the stamp is cleared, and the next push stamps anew.
        assert_eq!(producer.lane.pushed.load(Ordering::Relaxed), 0);
        producer.push_slice(&[3, 4]).unwrap();
        let second = producer.lane.pushed.load(Ordering::Relaxed);
        assert!(second >= first);
        runs.clear();
        inputs.take(u64::MAX, 0, |records, pushed| {
            if !records.is_empty() {
                runs.push((records.len(), pushed))
            }
        });
        assert_eq!(runs, vec![(2, Some(second - 1))]);
    }

    #[test]
    fn a_thief_takes_from_other_rings_and_the_owner_does_not_go_back_an_epoch() {
        let intake = Arc::new(Intake::<u32>::new(2, Instant::now()));
        let mut producer = Producer::attach(Arc::clone(&intake), 0, 64);
        let mut owner = Inputs::new(0, Arc::clone(&intake));
        let mut thief = Inputs::new(1, Arc::clone(&intake));
        let collect = |inputs: &mut Inputs<u32>, epoch| {
            let mut got = Vec::new();
            let round = inputs.take(u64::MAX, epoch, |r, _| got.extend_from_slice(r));
            (got, round.skipped)
        };

        producer.push_slice(&[1, 2, 3]).unwrap();
        // A worker never steals from its own rings.
        assert_eq!(owner.steal(u64::MAX, 0, |_, _| panic!("own ring")), 0);
        let mut stolen = Vec::new();
        assert_eq!(thief.steal(2, 1, |r, _| stolen.extend_from_slice(r)), 2);
        assert_eq!(stolen, [1, 2], "a chunk within the budget, in order");

        // The owner is still in epoch 0: it leaves the ring alone until it
        // opens epoch 1, and says it did not look.
        assert_eq!(collect(&mut owner, 0), (vec![], true));
        assert_eq!(collect(&mut owner, 1), (vec![3], false));
        // Nothing pending: a thief finds nothing.
        assert_eq!(thief.steal(u64::MAX, 1, |_, _| panic!("empty")), 0);
        // After the close a thief takes nothing.
        producer.push_slice(&[4]).unwrap();
        intake.close();
        assert_eq!(thief.steal(u64::MAX, 1, |_, _| panic!("closed")), 0);
        assert_eq!(collect(&mut owner, 1), (vec![4], false));
    }

    #[test]
    fn a_thief_leaves_a_ring_that_holds_less_than_a_chunk_to_its_owner() {
        let intake = Arc::new(Intake::<u32>::new(2, Instant::now()));
        let mut producer = Producer::attach(Arc::clone(&intake), 0, 2 * CHUNK);
        let mut thief = Inputs::new(1, Arc::clone(&intake));
        let records: Vec<u32> = (0..CHUNK as u32).collect();
        producer.push_slice(&records[1..]).unwrap();
        assert_eq!(
            thief.steal(u64::MAX, 0, |_, _| panic!("the owner keeps up")),
            0
        );
        assert!(!thief.take_missed_claim(), "not claimed: too little");
        producer.push_slice(&records[..1]).unwrap();
        let mut stolen = Vec::new();
        let taken = thief.steal(u64::MAX, 0, |r, _| stolen.extend_from_slice(r));
        assert_eq!(taken, CHUNK as u64);
        assert_eq!(stolen.len(), CHUNK);
    }

    #[test]
    fn a_thief_without_room_takes_nothing_and_leaves_the_rings_hints() {
        let intake = Arc::new(Intake::<u32>::new(2, Instant::now()));
        let mut producer = Producer::attach(Arc::clone(&intake), 0, 4 * CHUNK);
        let mut thief = Inputs::new(1, Arc::clone(&intake));
        let records: Vec<u32> = (0..2 * CHUNK as u32).collect();
        producer.push_slice(&records).unwrap();
        assert_eq!(thief.steal(u64::MAX, 0, |_, _| {}), CHUNK as u64);
        let lane = &producer.lane;
        assert!(lane.backlog.load(Ordering::Relaxed), "a chunk is left");
        assert!(lane.wanted.load(Ordering::Relaxed));
        assert_eq!(thief.steal(0, 0, |_, _| panic!("no room")), 0);
        assert!(lane.backlog.load(Ordering::Relaxed), "still a chunk left");
        assert!(lane.wanted.load(Ordering::Relaxed), "still wanted");
    }

    #[test]
    fn a_taker_folds_outside_the_claim_while_a_thief_wants_the_ring() {
        let intake = Arc::new(Intake::<u32>::new(2, Instant::now()));
        let mut producer = Producer::attach(Arc::clone(&intake), 0, 4 * CHUNK);
        let mut owner = Inputs::new(0, Arc::clone(&intake));
        let mut thief = Inputs::new(1, Arc::clone(&intake));
        let records: Vec<u32> = (0..3 * CHUNK as u32).collect();
        producer.push_slice(&records).unwrap();
        let lane = Arc::clone(&producer.lane);
        // The owner holds the ring: the thief misses it and says so.
        let claim = lane.try_claim().unwrap();
        assert_eq!(thief.steal(u64::MAX, 0, |_, _| panic!("claimed")), 0);
        assert!(thief.take_missed_claim());
        assert!(!thief.take_missed_claim(), "said once");
        drop(claim);
        // While the ring holds more than the owner takes, it folds each
        // chunk after giving the ring up, so a thief could take the next.
        let mut taken = Vec::new();
        let mut fold = |r: &[u32], _| {
            assert!(lane.try_claim().is_some(), "folded under the claim");
            taken.extend_from_slice(r);
        };
        assert_eq!(owner.take(u64::MAX, 0, &mut fold).records, CHUNK as u64);
        assert_eq!(owner.take(u64::MAX, 0, &mut fold).records, CHUNK as u64);
        // The thief's chunk comes between, in order.
        let mut stolen = Vec::new();
        thief.steal(u64::MAX, 0, |r, _| stolen.extend_from_slice(r));
        assert_eq!(owner.take(u64::MAX, 0, &mut fold).records, 0);
        assert_eq!(taken, records[..2 * CHUNK]);
        assert_eq!(stolen, records[2 * CHUNK..]);
        // Emptied: no thief wants it any more, and the owner folds in place.
        producer.push_slice(&records[..2]).unwrap();
        let mut in_place = 0;
        owner.take(u64::MAX, 0, |r, _| {
            assert!(lane.try_claim().is_none(), "in place, under the claim");
            in_place += r.len();
        });
        assert_eq!(in_place, 2);
    }

    #[test]
    fn a_drained_ring_of_a_dropped_producer_leaves_the_thieves_list() {
        let intake = Arc::new(Intake::<u32>::new(2, Instant::now()));
        let mut owner = Inputs::new(0, Arc::clone(&intake));
        let mut thief = Inputs::new(1, Arc::clone(&intake));
        let mut producer = Producer::attach(Arc::clone(&intake), 0, 64);
        let _other = Producer::attach(Arc::clone(&intake), 0, 64);
        producer.push_slice(&[1, 2]).unwrap();
        assert_eq!(thief.steal(1, 0, |_, _| {}), 1);
        assert_eq!(thief.victims.len(), 2);
        drop(producer);
        let mut got = Vec::new();
        owner.take(u64::MAX, 0, |r, _| got.extend_from_slice(r));
        assert_eq!(got, [2], "the rest is taken before the ring retires");
        owner.take(u64::MAX, 0, |_, _| {});
        assert_eq!(
            owner.lanes.len(),
            1,
            "the empty ring of the dropped producer retired"
        );
        assert_eq!(intake.lanes.lock().unwrap().len(), 1);
        // The thief's next attempt refreshes its list: the ring is freed.
        assert_eq!(thief.steal(u64::MAX, 0, |_, _| {}), 0);
        assert_eq!(thief.victims.len(), 1);
    }
}
