//! A producer ring as the workers see it ([`Lane`]), and the registry of
//! every worker's lanes ([`Lanes`]), shared by the producers and workers.

use std::time::Instant;

use crossbeam_utils::CachePadded;
use microbatch_ringbuf as ringbuf;

use super::CHUNK;
use crate::config::Overload;
use crate::sync::{
    Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering, PoisonError, Queue,
    TryLockError,
};

/// One producer ring as the workers see it.
pub(crate) struct Lane<R> {
    /// The consumer end. Claimed (`try_lock`, one uncontended CAS, never a
    /// wait) by whoever takes from the ring: its owner each round, a thief,
    /// or at close the producer taking back what is left. A claimed lane is
    /// skipped, never waited for, on the workers' paths.
    pub(super) ring: Mutex<LaneRing<R>>,
    /// µs since the engine started of the earliest push the worker has not
    /// accounted for, plus one; 0 when none.
    pub(super) pushed: CachePadded<AtomicU64>,
    /// Its owner dropped it: the producer is gone and the ring is empty.
    pub(super) retired: AtomicBool,
    /// The last taker left records in the ring. With `pushed`, a thief's
    /// hint that the ring holds records (a producer blocked on a full ring
    /// does not stamp it again until it wakes). Written under the claim,
    /// only when it changes.
    pub(super) backlog: AtomicBool,
    /// A thief wants records of this ring: until a taker leaves it empty,
    /// takers move their chunks out and give the ring up before folding
    /// them, so that two workers fold the records of one hot ring at once.
    /// Stored only when it changes.
    pub(super) wanted: AtomicBool,
    /// An async producer's wait for room: notified after each chunk taken
    /// from the ring, and at close. `None` for a blocking producer's lane,
    /// whose takers pay nothing for it.
    #[cfg(feature = "tokio")]
    pub(crate) room: Option<::tokio::sync::Notify>,
}

/// What a claim of a lane gives access to.
pub(super) struct LaneRing<R> {
    pub(super) consumer: ringbuf::Consumer<R>,
    /// The newest epoch a taker took records of this ring into. A taker
    /// whose open epoch is older skips the ring, so the epochs of one
    /// producer's records never go backwards, whoever takes them.
    pub(super) epoch: u64,
}

impl<R> Lane<R> {
    /// A lane around the consumer end of a new ring; `wakes`: its producer
    /// awaits room (an async producer), so takers notify it.
    pub(super) fn new(consumer: ringbuf::Consumer<R>, wakes: bool) -> Self {
        #[cfg(not(feature = "tokio"))]
        let _ = wakes;
        Lane {
            ring: Mutex::new(LaneRing { consumer, epoch: 0 }),
            pushed: CachePadded::new(AtomicU64::new(0)),
            retired: AtomicBool::new(false),
            backlog: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
            #[cfg(feature = "tokio")]
            room: wakes.then(::tokio::sync::Notify::new),
        }
    }

    /// Tells an async producer waiting for room that a chunk left the
    /// ring (or that the engine closed). The notification is stored if
    /// nobody waits yet, so a producer that enables its wait and then
    /// finds the ring still full cannot miss it. Once per chunk, only on
    /// an async producer's lane.
    #[inline]
    pub(crate) fn signal_room(&self) {
        #[cfg(feature = "tokio")]
        if let Some(room) = &self.room {
            room.notify_one();
        }
    }

    /// Claims the ring without waiting; `None` if someone else holds it.
    /// A claim poisoned by a panicking taker is still a consistent ring:
    /// a chunk is committed only after it was absorbed.
    pub(super) fn try_claim(&self) -> Option<MutexGuard<'_, LaneRing<R>>> {
        match self.ring.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Its producer is gone and everything it pushed is taken.
    pub(super) fn is_spent(&self, ring: &LaneRing<R>) -> bool {
        ring.consumer.is_abandoned() && ring.consumer.is_empty()
    }

    /// Claims the ring, waiting for a taker holding it (only at close).
    pub(super) fn claim(&self) -> MutexGuard<'_, LaneRing<R>> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes up to `max` records into `take` if the ring's epoch allows
    /// `epoch`; returns how many. Hot path.
    #[inline]
    pub(super) fn take_chunk(
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
        self.signal_room();
        self.note_backlog(!ring.consumer.is_empty());
        taken
    }

    /// Like [`take_chunk`](Self::take_chunk), but moves the records into
    /// `out` (empty on entry) for the caller to fold once it has given the
    /// claim up; returns their push stamp. A copy of the chunk, paid only
    /// by a thief and by an owner a thief is waiting for.
    pub(super) fn move_chunk(
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
        self.signal_room();
        self.note_backlog(!ring.consumer.is_empty());
        pushed
    }

    /// A thief wants records of the ring (see `wanted`).
    #[inline]
    pub(super) fn want(&self) {
        if !self.wanted.load(Ordering::Relaxed) {
            self.wanted.store(true, Ordering::Relaxed);
        }
    }

    /// The stamp of the records up to the chunk just read, which it
    /// resets: every record in the chunk was stamped for (or its stamp was
    /// taken by the previous taker).
    #[inline]
    pub(super) fn take_stamp(&self) -> Option<u64> {
        self.pushed.swap(0, Ordering::Relaxed).checked_sub(1)
    }

    /// Whether the taker left records in the ring (a taker that leaves it
    /// empty needs no help with it); stored only when it changes, so that
    /// idle rounds do not write the line.
    #[inline]
    pub(super) fn note_backlog(&self, backlog: bool) {
        if self.backlog.load(Ordering::Relaxed) != backlog {
            self.backlog.store(backlog, Ordering::Relaxed);
        }
        if !backlog && self.wanted.load(Ordering::Relaxed) {
            self.wanted.store(false, Ordering::Relaxed);
        }
    }
}

/// What one worker shares with the producers attached to it.
pub(crate) struct WorkerLanes<R> {
    /// Rings created since the worker last looked.
    pub(crate) arrivals: Queue<Arc<Lane<R>>>,
    /// The worker has taken its last record and put every consumer end
    /// back into its lane.
    pub(crate) finished: AtomicBool,
    /// Producer handles attached to the worker and not dropped: its load,
    /// for placing new handles.
    pub(crate) producers: AtomicUsize,
    /// Notified once `finished` is set: an async producer whose push raced
    /// the close awaits it before taking its record back.
    #[cfg(feature = "tokio")]
    pub(crate) drained: ::tokio::sync::Notify,
}

/// The intake side of an engine, shared by its producers and workers.
pub(crate) struct Lanes<R> {
    /// When the engine started: the time base of push stamps.
    pub(super) start: Instant,
    /// Set once, by shutdown (or by a failing worker).
    pub(crate) closed: AtomicBool,
    pub(crate) workers: Box<[WorkerLanes<R>]>,
    /// Every live lane and its owner, for thieves; changed only when a
    /// producer attaches or a retired lane is dropped (`lanes_version` says when).
    pub(super) all: Mutex<Vec<(usize, Arc<Lane<R>>)>>,
    /// What `Producer::send` does with a record when its ring is full.
    pub(super) overload: Overload,
    /// Records `Producer::send` dropped under `Overload::DropNewest`.
    pub(crate) shed: CachePadded<AtomicU64>,
    pub(super) version: AtomicU64,
}

impl<R> Lanes<R> {
    pub(crate) fn new(workers: usize, start: Instant, overload: Overload) -> Self {
        Lanes {
            start,
            closed: AtomicBool::new(false),
            workers: (0..workers)
                .map(|_| WorkerLanes {
                    arrivals: Queue::new(),
                    finished: AtomicBool::new(false),
                    producers: AtomicUsize::new(0),
                    #[cfg(feature = "tokio")]
                    drained: ::tokio::sync::Notify::new(),
                })
                .collect(),
            all: Mutex::new(Vec::new()),
            overload,
            shed: CachePadded::new(AtomicU64::new(0)),
            version: AtomicU64::new(0),
        }
    }

    /// Registers a new producer's `lane` with `worker`: in the thieves'
    /// list, and in the worker's arrivals, which it adopts on its next
    /// round. Cold: once per producer handle.
    #[cold]
    pub(super) fn register(&self, worker: usize, lane: Arc<Lane<R>>) {
        {
            let mut all = self.all.lock().unwrap_or_else(PoisonError::into_inner);
            all.push((worker, Arc::clone(&lane)));
            self.version.fetch_add(1, Ordering::Release);
        }
        let worker = &self.workers[worker];
        worker.arrivals.push(lane);
        worker.producers.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops retired lanes from the thieves' list, so that their rings are
    /// freed once every thief has refreshed its list. Cold: once per
    /// producer handle dropped.
    #[cold]
    pub(super) fn forget_retired(&self) {
        let mut lanes = self.all.lock().unwrap_or_else(PoisonError::into_inner);
        lanes.retain(|(_, lane)| !lane.retired.load(Ordering::Relaxed));
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Closes the intake: every push from now on returns `Closed`, and
    /// async producers waiting for room wake to see it. Cold: once.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        #[cfg(feature = "tokio")]
        for (_, lane) in self
            .all
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            lane.signal_room();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
