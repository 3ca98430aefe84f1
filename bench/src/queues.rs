//! The bounded SPSC-capable queues the ring benchmarks compare, behind one
//! small trait so that each benchmark loop is written once and
//! monomorphized per queue (no dynamic dispatch on the measured path).

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

/// A bounded queue with one producer end and one consumer end.
pub trait Queue<T: Send + 'static> {
    /// The producer end.
    type Tx: Send + 'static;
    /// The consumer end.
    type Rx: Send + 'static;
    /// A queue holding at least `capacity` items.
    fn with_capacity(capacity: usize) -> (Self::Tx, Self::Rx);
    /// Pushes or hands the item back when full.
    fn try_push(tx: &mut Self::Tx, item: T) -> Result<(), T>;
    /// Pops the oldest item, if any.
    fn try_pop(rx: &mut Self::Rx) -> Option<T>;
}

/// microbatch's ring.
pub struct Microbatch;

/// `rtrb::RingBuffer`, the reference SPSC ring.
pub struct Rtrb;

/// `crossbeam_queue::ArrayQueue`, a bounded MPMC queue.
pub struct CrossbeamArrayQueue;

impl<T: Send + 'static> Queue<T> for Microbatch {
    type Tx = microbatch_ringbuf::Producer<T>;
    type Rx = microbatch_ringbuf::Consumer<T>;

    fn with_capacity(capacity: usize) -> (Self::Tx, Self::Rx) {
        microbatch_ringbuf::ring(capacity)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, item: T) -> Result<(), T> {
        tx.try_push(item)
            .map_err(microbatch_ringbuf::Full::into_inner)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<T> {
        rx.try_pop()
    }
}

impl<T: Send + 'static> Queue<T> for Rtrb {
    type Tx = rtrb::Producer<T>;
    type Rx = rtrb::Consumer<T>;

    fn with_capacity(capacity: usize) -> (Self::Tx, Self::Rx) {
        rtrb::RingBuffer::new(capacity)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, item: T) -> Result<(), T> {
        tx.push(item).map_err(|rtrb::PushError::Full(back)| back)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<T> {
        rx.pop().ok()
    }
}

impl<T: Send + 'static> Queue<T> for CrossbeamArrayQueue {
    type Tx = Arc<ArrayQueue<T>>;
    type Rx = Arc<ArrayQueue<T>>;

    fn with_capacity(capacity: usize) -> (Self::Tx, Self::Rx) {
        let queue = Arc::new(ArrayQueue::new(capacity));
        (queue.clone(), queue)
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx, item: T) -> Result<(), T> {
        tx.push(item)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx) -> Option<T> {
        rx.pop()
    }
}

/// Pushes `item`, spinning while the queue is full.
#[inline(always)]
pub fn push_spinning<T: Send + 'static, Q: Queue<T>>(tx: &mut Q::Tx, item: T) {
    let mut item = item;
    while let Err(back) = Q::try_push(tx, item) {
        item = back;
        std::hint::spin_loop();
    }
}

/// Pops one item, spinning while the queue is empty.
#[inline(always)]
pub fn pop_spinning<T: Send + 'static, Q: Queue<T>>(rx: &mut Q::Rx) -> T {
    loop {
        if let Some(item) = Q::try_pop(rx) {
            return item;
        }
        std::hint::spin_loop();
    }
}

/// A queue that moves `Copy` items a slice at a time.
pub trait SliceQueue<T: Copy + Send + 'static>: Queue<T> {
    /// Copies as many items from the front of `items` as fit; returns how many.
    fn push_slice(tx: &mut Self::Tx, items: &[T]) -> usize;
    /// Moves as many items into the front of `out` as there are; returns how many.
    fn pop_slice(rx: &mut Self::Rx, out: &mut [T]) -> usize;
}

impl<T: Copy + Send + 'static> SliceQueue<T> for Microbatch {
    #[inline(always)]
    fn push_slice(tx: &mut Self::Tx, items: &[T]) -> usize {
        tx.push_slice(items)
    }
    #[inline(always)]
    fn pop_slice(rx: &mut Self::Rx, out: &mut [T]) -> usize {
        rx.pop_slice(out)
    }
}

/// rtrb's slice operations, built on its chunk API.
impl<T: Copy + Send + 'static> SliceQueue<T> for Rtrb {
    #[inline(always)]
    fn push_slice(tx: &mut Self::Tx, items: &[T]) -> usize {
        tx.push_partial_slice(items).0.len()
    }
    #[inline(always)]
    fn pop_slice(rx: &mut Self::Rx, out: &mut [T]) -> usize {
        rx.pop_partial_slice(out).0.len()
    }
}
