//! The shared buffer and the two handles, with the single-item hot path.

use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};

use crossbeam_utils::CachePadded;

use crate::error::{CapacityError, Full};
use crate::sync::wait::{Parker, Unparker};
use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering, SlotAccess};

/// Builds a ring that holds at least `capacity` items and returns its two
/// ends.
///
/// The capacity is rounded up to the next power of two, so that a slot is
/// found with a mask; [`Producer::capacity`] tells the real one. The slots
/// are allocated here, once: no operation of the ring allocates after this.
///
/// # Panics
/// If `capacity` is 0 or too large for memory; [`try_ring`] returns these as
/// a [`CapacityError`] instead.
pub fn ring<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    match try_ring(capacity) {
        Ok(ends) => ends,
        Err(error) => panic!("{error}"),
    }
}

/// Like [`ring`], but a capacity of 0 or one too large for memory is an
/// error.
///
/// ```
/// use microbatch_ringbuf::{try_ring, CapacityError};
/// assert_eq!(try_ring::<u8>(0).unwrap_err(), CapacityError::Zero);
/// let (producer, _consumer) = try_ring::<u64>(1000)?;
/// assert_eq!(producer.capacity(), 1024);
/// # Ok::<(), CapacityError>(())
/// ```
pub fn try_ring<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    let producer_parker = Parker::new();
    let consumer_parker = Parker::new();
    let shared = Arc::new(Shared::new(
        capacity,
        producer_parker.unparker().clone(),
        consumer_parker.unparker().clone(),
    )?);
    let producer = Producer {
        shared: Arc::clone(&shared),
        tail: 0,
        head_cache: 0,
        parker: producer_parker,
    };
    let consumer = Consumer {
        shared,
        head: 0,
        tail_cache: 0,
        parker: consumer_parker,
    };
    Ok((producer, consumer))
}

/// The state both ends share.
///
/// Invariants:
/// - `head` and `tail` count items ever popped and pushed, wrapping; item
///   `i` lives in slot `i & mask`. `tail - head` (wrapping) is the number of
///   items in the ring and never exceeds `mask + 1`.
/// - Slots `[head, tail)` hold initialized items owned by the ring; all
///   other slots are uninitialized. Only the producer writes slots outside
///   that range and only the consumer reads slots inside it.
/// - Only the producer stores `tail` and only the consumer stores `head`,
///   each with `Release` after its slot accesses; each side loads the other
///   index with `Acquire` before touching the slots it uncovers.
pub(crate) struct Shared<T> {
    /// Items ever popped. Written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Items ever pushed. Written only by the producer.
    tail: CachePadded<AtomicUsize>,
    /// Rarely written: parking and abandonment.
    signals: CachePadded<Signals>,
    slots: *mut MaybeUninit<T>,
    mask: usize,
    access: SlotAccess,
    _owns: PhantomData<T>,
}

/// Wake-up hints and abandonment flags. A `*_parked` flag is a hint: a
/// waiter re-checks the ring after raising it and parks with a bounded
/// timeout, so a wake-up missed in a race costs latency, never progress.
pub(crate) struct Signals {
    pub(crate) producer_parked: AtomicBool,
    pub(crate) consumer_parked: AtomicBool,
    pub(crate) producer_gone: AtomicBool,
    pub(crate) consumer_gone: AtomicBool,
    producer_unparker: Unparker,
    consumer_unparker: Unparker,
}

// SAFETY: the slots are only reached through the single `Producer` and the
// single `Consumer`, which never touch the same slot concurrently (see the
// invariants of `Shared`); items move between threads, hence `T: Send`.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above; `&Shared` alone gives no access to the items.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn new(
        requested: usize,
        producer_unparker: Unparker,
        consumer_unparker: Unparker,
    ) -> Result<Self, CapacityError> {
        if requested == 0 {
            return Err(CapacityError::Zero);
        }
        let max = max_capacity::<T>();
        let capacity = requested
            .checked_next_power_of_two()
            .filter(|&c| c <= max)
            .ok_or(CapacityError::TooLarge { requested, max })?;
        let slots = Box::<[T]>::new_uninit_slice(capacity);
        Ok(Shared {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            signals: CachePadded::new(Signals {
                producer_parked: AtomicBool::new(false),
                consumer_parked: AtomicBool::new(false),
                producer_gone: AtomicBool::new(false),
                consumer_gone: AtomicBool::new(false),
                producer_unparker,
                consumer_unparker,
            }),
            slots: Box::into_raw(slots).cast::<MaybeUninit<T>>(),
            mask: capacity - 1,
            access: SlotAccess::new(capacity),
            _owns: PhantomData,
        })
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// The slot that item number `index` lives in.
    #[inline(always)]
    pub(crate) fn slot(&self, index: usize) -> *mut T {
        let offset = index & self.mask;
        self.access.touch(offset);
        // SAFETY: `offset <= mask < capacity`, inside the allocation.
        unsafe { self.slots.add(offset).cast::<T>() }
    }

    /// The (at most two) contiguous runs of slots that hold items
    /// `[start, start + n)`, as (first slot, length of the first run, length
    /// of the run that wraps to slot 0). `n` must not exceed the capacity.
    #[inline(always)]
    pub(crate) fn runs(&self, start: usize, n: usize) -> (*mut T, usize, usize) {
        let offset = start & self.mask;
        let first = n.min(self.capacity() - offset);
        self.access.touch_run(start, n, self.mask);
        // SAFETY: `offset < capacity`, inside the allocation.
        let ptr = unsafe { self.slots.add(offset).cast::<T>() };
        (ptr, first, n - first)
    }

    /// The first slot of the buffer, where a wrapping run continues.
    #[inline(always)]
    pub(crate) fn base(&self) -> *mut T {
        self.slots.cast::<T>()
    }

    #[inline(always)]
    pub(crate) fn wake_consumer(&self) {
        if self.signals.consumer_parked.load(Ordering::Relaxed) {
            self.signals.consumer_unparker.unpark();
        }
    }

    #[inline(always)]
    pub(crate) fn wake_producer(&self) {
        if self.signals.producer_parked.load(Ordering::Relaxed) {
            self.signals.producer_unparker.unpark();
        }
    }

    pub(crate) fn signals(&self) -> &Signals {
        &self.signals
    }
}

/// The largest capacity whose slots fit in `isize::MAX` bytes, as a power of
/// two.
fn max_capacity<T>() -> usize {
    let limit = isize::MAX as usize / mem::size_of::<T>().max(1);
    // The largest power of two not above `limit`.
    1usize << (usize::BITS - 1 - limit.leading_zeros())
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both ends are gone: drop the items still in the ring, exactly once.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        let (first, first_len, second_len) = self.runs(head, tail.wrapping_sub(head));
        // SAFETY: items `[head, tail)` are initialized and owned by the ring,
        // and nothing else can reach them any more.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(first, first_len));
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.base(), second_len));
        }
        let slots = std::ptr::slice_from_raw_parts_mut(self.slots, self.capacity());
        // SAFETY: `slots` came from `Box::into_raw` of a boxed slice of this
        // length in `Shared::new`, and is freed only here.
        drop(unsafe { Box::from_raw(slots) });
    }
}

/// The writing end of a ring. There is exactly one per ring; it can move to
/// another thread but not be shared.
pub struct Producer<T> {
    pub(crate) shared: Arc<Shared<T>>,
    /// Items ever pushed: the authoritative value, published to
    /// `shared.tail` on every commit.
    pub(crate) tail: usize,
    /// A copy of `shared.head` for quick access. It can be stale (behind),
    /// which only under-reports the free slots; it is re-read when it says
    /// there is too little room.
    pub(crate) head_cache: usize,
    pub(crate) parker: Parker,
}

/// The reading end of a ring. There is exactly one per ring; it can move to
/// another thread but not be shared.
pub struct Consumer<T> {
    pub(crate) shared: Arc<Shared<T>>,
    /// Items ever popped: the authoritative value, published to
    /// `shared.head` on every commit.
    pub(crate) head: usize,
    /// A copy of `shared.tail` for quick access. It can be stale (behind),
    /// which only under-reports the items; it is re-read when it says there
    /// are too few.
    pub(crate) tail_cache: usize,
    pub(crate) parker: Parker,
}

impl<T> Producer<T> {
    /// Pushes `value` if there is a free slot, else hands it back in
    /// [`Full`]. Wait-free.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), Full<T>> {
        // Hot path: one store of our index; the consumer's index is re-read
        // only when the cached copy says full.
        if self.free_slots(1) == 0 {
            return Err(Full(value));
        }
        // SAFETY: slot `tail` is free (`free_slots` ≥ 1), so it holds no item
        // and the consumer does not read it until `tail` is published.
        unsafe { self.shared.slot(self.tail).write(value) };
        self.commit(1);
        Ok(())
    }

    /// Free slots, re-reading the consumer's index only if the cached one
    /// shows fewer than `wanted`.
    #[inline(always)]
    pub(crate) fn free_slots(&mut self, wanted: usize) -> usize {
        let capacity = self.shared.capacity();
        let free = capacity - self.tail.wrapping_sub(self.head_cache);
        if free >= wanted {
            return free;
        }
        self.head_cache = self.shared.head.load(Ordering::Acquire);
        capacity - self.tail.wrapping_sub(self.head_cache)
    }

    /// Publishes `n` slots written after `tail`.
    #[inline(always)]
    pub(crate) fn commit(&mut self, n: usize) {
        self.tail = self.tail.wrapping_add(n);
        self.shared.tail.store(self.tail, Ordering::Release);
        self.shared.wake_consumer();
    }

    /// The number of free slots right now (a fresh look at the consumer's
    /// index). The consumer may free more at any moment, never fewer.
    pub fn slots(&self) -> usize {
        self.capacity() - self.len()
    }

    /// The number of items in the ring right now. The consumer may take
    /// some at any moment, so this is an upper bound.
    pub fn len(&self) -> usize {
        self.tail
            .wrapping_sub(self.shared.head.load(Ordering::Acquire))
    }

    /// Whether the ring holds no item right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring has no free slot right now.
    pub fn is_full(&self) -> bool {
        self.slots() == 0
    }

    /// How many items the ring holds when full (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Whether the [`Consumer`] was dropped: then nothing will ever pop.
    pub fn is_abandoned(&self) -> bool {
        self.shared.signals.consumer_gone.load(Ordering::Acquire)
    }
}

impl<T> Consumer<T> {
    /// Pops the oldest item, or `None` if the ring is empty. Wait-free.
    #[inline]
    pub fn try_pop(&mut self) -> Option<T> {
        // Hot path: one store of our index; the producer's index is re-read
        // only when the cached copy says empty.
        if self.available(1) == 0 {
            return None;
        }
        // SAFETY: item `head` is initialized (`available` ≥ 1) and the
        // producer does not write its slot until `head` is published past it.
        let value = unsafe { self.shared.slot(self.head).read() };
        self.commit(1);
        Some(value)
    }

    /// Items ready to pop, re-reading the producer's index only if the
    /// cached one shows fewer than `wanted`.
    #[inline(always)]
    pub(crate) fn available(&mut self, wanted: usize) -> usize {
        let ready = self.tail_cache.wrapping_sub(self.head);
        if ready >= wanted {
            return ready;
        }
        self.tail_cache = self.shared.tail.load(Ordering::Acquire);
        self.tail_cache.wrapping_sub(self.head)
    }

    /// Frees `n` slots after `head` whose items were moved out or dropped.
    #[inline(always)]
    pub(crate) fn commit(&mut self, n: usize) {
        self.head = self.head.wrapping_add(n);
        self.shared.head.store(self.head, Ordering::Release);
        self.shared.wake_producer();
    }

    /// A reference to the oldest item without popping it.
    pub fn peek(&mut self) -> Option<&T> {
        if self.available(1) == 0 {
            return None;
        }
        // SAFETY: item `head` is initialized and stays in place until this
        // consumer (borrowed for the reference's lifetime) commits past it.
        Some(unsafe { &*self.shared.slot(self.head) })
    }

    /// The number of items in the ring right now. The producer may add some
    /// at any moment, so this is a lower bound.
    pub fn len(&self) -> usize {
        self.shared
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head)
    }

    /// Whether the ring holds no item right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of free slots right now: an upper bound, as the producer
    /// may fill some at any moment.
    pub fn slots(&self) -> usize {
        self.capacity() - self.len()
    }

    /// How many items the ring holds when full (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Whether the [`Producer`] was dropped: then no item will ever arrive
    /// beyond those already in the ring.
    pub fn is_abandoned(&self) -> bool {
        self.shared.signals.producer_gone.load(Ordering::Acquire)
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        let signals = self.shared.signals();
        signals.producer_gone.store(true, Ordering::Release);
        // A consumer blocked in `pop` must see the abandonment now.
        signals.consumer_unparker.unpark();
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        let signals = self.shared.signals();
        signals.consumer_gone.store(true, Ordering::Release);
        // A producer blocked in `push` must see the abandonment now.
        signals.producer_unparker.unpark();
    }
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("is_abandoned", &self.is_abandoned())
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("is_abandoned", &self.is_abandoned())
            .finish_non_exhaustive()
    }
}
