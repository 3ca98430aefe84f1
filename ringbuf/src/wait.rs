//! Blocking variants: wait for room or for an item by spinning briefly,
//! then yielding, then parking with a bounded timeout.
//!
//! The other side unparks a parked waiter when it commits, but it reads the
//! waiter's flag without a fence (the hot path pays one relaxed load), so in
//! a race it can miss the flag: the waiter then wakes by itself after at most
//! [`MAX_PARK`]. On a machine with fewer cores than threads a waiter thus
//! gives its core away instead of starving the side it waits for.

use std::time::Duration;

use crate::error::{Abandoned, Full};
use crate::ring::{Consumer, Producer};
use crate::sync::wait::{Backoff, Parker};
use crate::sync::{AtomicBool, Ordering};

/// The longest a parked waiter sleeps before it looks at the ring again,
/// whether or not it was woken: the bound on the wake-up delay.
pub const MAX_PARK: Duration = Duration::from_micros(100);

/// One waiting step: spin or yield while the backoff allows, then park
/// once, with `parked` raised, unless `ready` says the wait is over.
fn idle(backoff: &Backoff, parker: &Parker, parked: &AtomicBool, ready: impl Fn() -> bool) {
    if !backoff.is_completed() {
        backoff.snooze();
        return;
    }
    parked.store(true, Ordering::SeqCst);
    // Re-check after raising the flag: a commit made before the other side
    // could see the flag is seen here instead.
    if !ready() {
        parker.park_timeout(MAX_PARK);
    }
    parked.store(false, Ordering::Relaxed);
}

impl<T> Producer<T> {
    /// Pushes `value`, waiting while the ring is full. Fails, handing the
    /// item back, only if the [`Consumer`] is dropped while the ring is full.
    ///
    /// ```
    /// let (mut producer, mut consumer) = microbatch_ringbuf::ring::<u64>(2);
    /// let reader = std::thread::spawn(move || (0..100).map(|_| consumer.pop().unwrap()).sum::<u64>());
    /// for i in 0..100 {
    ///     producer.push(i).unwrap();
    /// }
    /// assert_eq!(reader.join().unwrap(), 4950);
    /// ```
    pub fn push(&mut self, value: T) -> Result<(), Abandoned<T>> {
        let backoff = Backoff::new();
        let mut value = value;
        loop {
            match self.try_push(value) {
                Ok(()) => return Ok(()),
                Err(Full(back)) => value = back,
            }
            if self.is_abandoned() {
                return Err(Abandoned(value));
            }
            let signals = self.shared.signals();
            idle(&backoff, &self.parker, &signals.producer_parked, || {
                !self.is_full() || self.is_abandoned()
            });
        }
    }
}

impl<T> Consumer<T> {
    /// Pops the oldest item, waiting while the ring is empty. Returns `None`
    /// only once the [`Producer`] is dropped and every item it pushed has
    /// been popped.
    pub fn pop(&mut self) -> Option<T> {
        let backoff = Backoff::new();
        loop {
            if let Some(value) = self.try_pop() {
                return Some(value);
            }
            if self.is_abandoned() {
                // The producer's last commit happened before it flagged its
                // drop, so a last look sees every item it pushed.
                return self.try_pop();
            }
            let signals = self.shared.signals();
            idle(&backoff, &self.parker, &signals.consumer_parked, || {
                !self.is_empty() || self.is_abandoned()
            });
        }
    }
}
