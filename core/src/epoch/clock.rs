//! The epoch clock: one global epoch counter that every worker reads, that
//! any worker advances with one CAS when its open batch is full or the
//! interval has run out, and that never runs more than `max_in_flight`
//! epochs ahead of the last one fully emitted. The interval an epoch opens
//! with may change between epochs (the adaptive interval,
//! `epoch::interval`).

use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

/// Bits of a packed deadline that hold the time, in µs since the clock
/// started (2^48 µs is about 8.9 years); the 16 bits above hold the low bits
/// of the epoch the deadline belongs to.
const TIME_BITS: u32 = 48;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

/// What [`EpochClock::try_advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// This call moved the clock from the given epoch to the next one.
    Advanced,
    /// Another worker moved it first; `current` is the open epoch now.
    Lost {
        /// The open epoch as this call saw it.
        current: u64,
    },
    /// `max_in_flight` sealed epochs are not yet fully emitted: the caller
    /// waits (draining its inbox) and tries again.
    WindowFull,
}

/// The global epoch and the in-flight window.
///
/// Invariants:
/// - `current` only grows, by one per successful [`try_advance`](Self::try_advance).
/// - Sealed but not finished epochs, `[finished(), current())`, number at
///   most `max_in_flight`: an advance that would exceed it is refused.
/// - The deadline of the open epoch is written by the worker whose CAS
///   opened it, tagged with the epoch; until it is written a reader sees
///   the tag of an older epoch and treats the open epoch as not expired, so
///   a stale deadline never seals an epoch early. A write of an older
///   epoch's deadline that comes after a newer one's (its writer was
///   preempted between its CAS and its store) is dropped: the open epoch's
///   deadline is never replaced by a sealed epoch's.
/// - The same holds for `opened_with`, the interval the open epoch's
///   deadline was computed with.
pub struct EpochClock {
    /// The open epoch: what workers take in now belongs to it.
    current: CachePadded<AtomicU64>,
    /// The open epoch's deadline, packed as (epoch tag, µs since start).
    deadline: CachePadded<AtomicU64>,
    /// The interval the open epoch opened with, packed as (epoch tag, µs).
    opened_with: AtomicU64,
    /// `emitted[w]`: worker `w` has emitted its results of every epoch
    /// below this value.
    emitted: Box<[CachePadded<AtomicU64>]>,
    max_in_flight: u64,
    /// Whether there is a time trigger at all (else epochs are sealed by
    /// count or at shutdown only).
    timed: bool,
    /// The interval the next epoch opens with, µs (≥ 1 when `timed`).
    interval_micros: AtomicU64,
}

fn pack(epoch: u64, micros: u64) -> u64 {
    (epoch << TIME_BITS) | micros.min(TIME_MASK)
}

/// The low bits of `epoch` a packed word carries.
fn tag(epoch: u64) -> u64 {
    epoch & (u64::MAX >> TIME_BITS)
}

/// Stores `packed` (for epoch `epoch`) into `word` unless `word` already
/// holds a newer epoch's value. Tags wrap at 2^16: a tag within 2^15 ahead
/// of `epoch`'s is newer. Once per epoch (cold).
fn store_if_newer(word: &AtomicU64, epoch: u64, packed: u64) {
    let mut seen = word.load(Ordering::Acquire);
    loop {
        let ahead = (seen >> TIME_BITS).wrapping_sub(tag(epoch)) & (u64::MAX >> TIME_BITS);
        if ahead != 0 && ahead < 1 << (63 - TIME_BITS) {
            return;
        }
        match word.compare_exchange_weak(seen, packed, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(now) => seen = now,
        }
    }
}

impl EpochClock {
    /// A clock at epoch 0 for `workers` workers, started at `now_micros`.
    ///
    /// # Panics
    /// If `workers` or `max_in_flight` is 0: the engine's configuration
    /// rejects those before building a clock.
    pub fn new(
        workers: usize,
        max_in_flight: u64,
        interval: Option<Duration>,
        now_micros: u64,
    ) -> Self {
        Self::starting_at(0, workers, max_in_flight, interval, now_micros)
    }

    /// A clock whose first open epoch is `first` (a run resumed from a
    /// checkpoint), otherwise as [`new`](EpochClock::new).
    ///
    /// # Panics
    /// As [`new`](EpochClock::new).
    pub fn starting_at(
        first: u64,
        workers: usize,
        max_in_flight: u64,
        interval: Option<Duration>,
        now_micros: u64,
    ) -> Self {
        assert!(
            workers > 0 && max_in_flight > 0,
            "an epoch clock needs a worker and a window of at least one epoch"
        );
        let interval_micros = interval.map_or(0, micros_of);
        let first_deadline = match interval {
            Some(_) => now_micros.saturating_add(interval_micros),
            None => TIME_MASK,
        };
        EpochClock {
            current: CachePadded::new(AtomicU64::new(first)),
            deadline: CachePadded::new(AtomicU64::new(pack(first, first_deadline))),
            opened_with: AtomicU64::new(pack(first, interval_micros)),
            emitted: (0..workers)
                .map(|_| CachePadded::new(AtomicU64::new(first)))
                .collect(),
            max_in_flight,
            timed: interval.is_some(),
            interval_micros: AtomicU64::new(interval_micros),
        }
    }

    /// Sets the interval the epochs opened from now on get (the adaptive
    /// interval's choice); the open epoch keeps its deadline. No effect
    /// without a time trigger. Once per epoch (cold).
    pub fn set_interval(&self, interval: Duration) {
        if self.timed {
            self.interval_micros
                .store(micros_of(interval), Ordering::Relaxed);
        }
    }

    /// The interval the next epoch opens with; `None` without a time
    /// trigger.
    pub fn interval(&self) -> Option<Duration> {
        self.timed
            .then(|| Duration::from_micros(self.interval_micros.load(Ordering::Relaxed)))
    }

    /// The interval `epoch` opened with, if it is the open epoch and its
    /// opener has recorded it (else `None`, as without a time trigger).
    pub fn interval_of_open(&self, epoch: u64) -> Option<Duration> {
        if !self.timed {
            return None;
        }
        let packed = self.opened_with.load(Ordering::Acquire);
        ((packed >> TIME_BITS) == tag(epoch)).then(|| Duration::from_micros(packed & TIME_MASK))
    }

    /// The open epoch.
    #[inline]
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// Whether `epoch` is the open epoch and its interval has run out at
    /// `now_micros`. Always false without a time trigger.
    #[inline]
    pub fn interval_expired(&self, epoch: u64, now_micros: u64) -> bool {
        if !self.timed {
            return false;
        }
        let packed = self.deadline.load(Ordering::Acquire);
        (packed >> TIME_BITS) == tag(epoch) && now_micros >= packed & TIME_MASK
    }

    /// µs from `now_micros` until `epoch`'s interval runs out (0 if it has);
    /// `None` without a time trigger or if `epoch` is no longer open.
    pub fn micros_until_deadline(&self, epoch: u64, now_micros: u64) -> Option<u64> {
        if !self.timed {
            return None;
        }
        let packed = self.deadline.load(Ordering::Acquire);
        ((packed >> TIME_BITS) == tag(epoch))
            .then(|| (packed & TIME_MASK).saturating_sub(now_micros))
    }

    /// Seals epoch `from` for everyone by opening `from + 1`, if `from` is
    /// still the open epoch and the window has room. One CAS.
    pub fn try_advance(&self, from: u64, now_micros: u64) -> Advance {
        if from + 1 - self.finished().min(from + 1) > self.max_in_flight {
            return Advance::WindowFull;
        }
        match self
            .current
            .compare_exchange(from, from + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                if self.timed {
                    let interval = self.interval_micros.load(Ordering::Relaxed);
                    let deadline = now_micros.saturating_add(interval);
                    store_if_newer(&self.opened_with, from + 1, pack(from + 1, interval));
                    store_if_newer(&self.deadline, from + 1, pack(from + 1, deadline));
                }
                Advance::Advanced
            }
            Err(current) => Advance::Lost { current },
        }
    }

    /// Records that `worker` has emitted its results of every epoch up to
    /// and including `epoch`.
    pub fn mark_emitted(&self, worker: usize, epoch: u64) {
        let slot = &self.emitted[worker];
        debug_assert!(
            slot.load(Ordering::Relaxed) <= epoch + 1,
            "emitted epochs only grow"
        );
        slot.store(epoch + 1, Ordering::Release);
    }

    /// Every epoch below this has been emitted by every worker.
    pub fn finished(&self) -> u64 {
        self.emitted
            .iter()
            .map(|e| e.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// The most sealed epochs that may be unfinished at once.
    pub fn max_in_flight(&self) -> u64 {
        self.max_in_flight
    }
}

/// A time trigger's interval in µs: at least 1, at most what a packed word
/// holds.
fn micros_of(interval: Duration) -> u64 {
    u64::try_from(interval.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, TIME_MASK)
}

impl std::fmt::Debug for EpochClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochClock")
            .field("current", &self.current())
            .field("finished", &self.finished())
            .field("max_in_flight", &self.max_in_flight)
            .field("interval", &self.interval())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    #[test]
    fn advance_moves_one_epoch_and_resets_the_deadline() {
        let clock = EpochClock::new(2, 4, Some(Duration::from_millis(100)), 0);
        assert!(!clock.interval_expired(0, 99 * MS));
        assert!(clock.interval_expired(0, 100 * MS));
        assert_eq!(clock.try_advance(0, 40 * MS), Advance::Advanced);
        assert_eq!(clock.current(), 1);
        // Epoch 1 opened at 40 ms: its deadline is 140 ms, and epoch 0 is
        // no longer open, so its deadline no longer counts.
        assert!(!clock.interval_expired(1, 139 * MS));
        assert!(clock.interval_expired(1, 140 * MS));
        assert!(!clock.interval_expired(0, 1_000 * MS));
        assert_eq!(clock.try_advance(0, 50 * MS), Advance::Lost { current: 1 });
    }

    #[test]
    fn window_refuses_more_than_max_in_flight_unfinished_epochs() {
        let clock = EpochClock::new(2, 2, None, 0);
        assert_eq!(clock.try_advance(0, 0), Advance::Advanced);
        assert_eq!(clock.try_advance(1, 0), Advance::Advanced);
        assert_eq!(clock.try_advance(2, 0), Advance::WindowFull);
        // One worker alone does not finish an epoch.
        clock.mark_emitted(0, 0);
        assert_eq!(clock.finished(), 0);
        assert_eq!(clock.try_advance(2, 0), Advance::WindowFull);
        clock.mark_emitted(1, 0);
        assert_eq!(clock.finished(), 1);
        assert_eq!(clock.try_advance(2, 0), Advance::Advanced);
        assert_eq!(clock.current(), 3);
    }

    #[test]
    fn without_interval_nothing_expires() {
        let clock = EpochClock::new(1, 1, None, 0);
        assert!(!clock.interval_expired(0, u64::MAX));
        assert_eq!(clock.micros_until_deadline(0, 0), None);
    }

    #[test]
    fn time_to_the_deadline_counts_down_for_the_open_epoch_only() {
        let clock = EpochClock::new(2, 4, Some(Duration::from_millis(100)), 0);
        assert_eq!(clock.micros_until_deadline(0, 0), Some(100 * MS));
        assert_eq!(clock.micros_until_deadline(0, 99 * MS), Some(MS));
        assert_eq!(clock.micros_until_deadline(0, 150 * MS), Some(0));
        assert_eq!(clock.try_advance(0, 40 * MS), Advance::Advanced);
        assert_eq!(clock.micros_until_deadline(0, 40 * MS), None);
        assert_eq!(clock.micros_until_deadline(1, 40 * MS), Some(100 * MS));
    }

    #[test]
    fn a_new_interval_applies_from_the_next_epoch_opened() {
        let clock = EpochClock::new(1, 4, Some(Duration::from_millis(100)), 0);
        assert_eq!(clock.interval_of_open(0), Some(Duration::from_millis(100)));
        clock.set_interval(Duration::from_millis(7));
        assert_eq!(clock.interval(), Some(Duration::from_millis(7)));
        // The open epoch keeps its deadline.
        assert!(!clock.interval_expired(0, 99 * MS));
        assert_eq!(clock.try_advance(0, 100 * MS), Advance::Advanced);
        assert_eq!(clock.interval_of_open(1), Some(Duration::from_millis(7)));
        assert_eq!(clock.interval_of_open(0), None);
        assert!(!clock.interval_expired(1, 106 * MS));
        assert!(clock.interval_expired(1, 107 * MS));
        let untimed = EpochClock::new(1, 4, None, 0);
        untimed.set_interval(Duration::from_millis(7));
        assert_eq!(
            (untimed.interval(), untimed.interval_of_open(0)),
            (None, None)
        );
    }

    #[test]
    fn a_late_store_of_a_sealed_epochs_deadline_is_dropped() {
        let clock = EpochClock::new(1, 8, Some(Duration::from_millis(10)), 0);
        // Epoch 3 is open with its deadline written; a preempted opener of
        // epoch 2 stores its deadline only now.
        store_if_newer(&clock.deadline, 3, pack(3, 50 * MS));
        store_if_newer(&clock.deadline, 2, pack(2, 40 * MS));
        assert_eq!(clock.deadline.load(Ordering::Relaxed), pack(3, 50 * MS));
        // Across the tag's wrap, epoch 2^16 (tag 0) is newer than 2^16 - 1.
        let word = AtomicU64::new(pack((1 << 16) - 2, 0));
        store_if_newer(&word, (1 << 16) - 1, pack((1 << 16) - 1, MS));
        store_if_newer(&word, 1 << 16, pack(1 << 16, 2 * MS));
        assert_eq!(word.load(Ordering::Relaxed), pack(1 << 16, 2 * MS));
        store_if_newer(&word, (1 << 16) - 1, pack((1 << 16) - 1, MS));
        assert_eq!(word.load(Ordering::Relaxed), pack(1 << 16, 2 * MS));
    }

    #[test]
    fn deadline_tag_survives_many_epochs() {
        let clock = EpochClock::new(1, 1, Some(Duration::from_micros(1)), 0);
        for epoch in 0..70_000u64 {
            assert!(clock.interval_expired(epoch, epoch + 1));
            assert_eq!(clock.try_advance(epoch, epoch), Advance::Advanced);
            clock.mark_emitted(0, epoch);
            assert!(
                !clock.interval_expired(epoch, u64::MAX >> 20),
                "sealed epoch {epoch} never expires again"
            );
        }
    }
}
