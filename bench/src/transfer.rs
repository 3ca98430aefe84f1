//! Moving items between two pinned threads through a queue, for the ring
//! benchmarks: one producer (the calling thread, on core 0) and one consumer
//! (a spawned thread, on core 1), both spinning when full or empty.

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use crate::pin::pin_to_core;

/// An item type to move: built from a sequence number, which the consumer
/// reads back so the transfer cannot be optimized away.
pub trait Item: Copy + Send + 'static {
    /// The item carrying sequence number `seq`.
    fn make(seq: u64) -> Self;
    /// The sequence number it carries.
    fn seq(&self) -> u64;
}

impl Item for u64 {
    #[inline(always)]
    fn make(seq: u64) -> Self {
        seq
    }
    #[inline(always)]
    fn seq(&self) -> u64 {
        *self
    }
}

/// A 32-byte record, the size of a small (key, value, timestamp, …) event.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(32))]
pub struct Rec32(pub [u64; 4]);

impl Item for Rec32 {
    #[inline(always)]
    fn make(seq: u64) -> Self {
        Rec32([seq, seq ^ 1, seq ^ 2, seq ^ 3])
    }
    #[inline(always)]
    fn seq(&self) -> u64 {
        self.0[0]
    }
}

/// Runs `produce` on this thread (pinned to core 0) and `consume` on a new
/// thread (pinned to core 1), starting both together, and returns the time
/// from the start until both are done. `consume` returns a checksum that
/// is passed through `black_box`. A ping-pong is the same with `produce`
/// pinging and `consume` echoing.
pub fn two_threads<P, C>(produce: P, consume: C) -> Duration
where
    P: FnOnce(),
    C: FnOnce() -> u64 + Send + 'static,
{
    pin_to_core(0);
    let start = std::sync::Arc::new(Barrier::new(2));
    let consumer_start = start.clone();
    let consumer = thread::spawn(move || {
        pin_to_core(1);
        consumer_start.wait();
        black_box(consume())
    });
    start.wait();
    let began = Instant::now();
    produce();
    consumer.join().expect("benchmark consumer panicked");
    began.elapsed()
}
