//! The `sync` facade of the engine: the only module that names
//! `std::sync`, `std::thread` or `loom`. Building with
//! `RUSTFLAGS="--cfg loom"` swaps the modelled primitives (atomics, `Arc`,
//! the lane claims' `Mutex`, [`Queue`]) for loom's model-checked versions.
//! The [`cold`] ones stay std's under loom: no model drives the paths that
//! use them.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

/// What a lock call can report: std's types, also for loom's locks.
pub(crate) use std::sync::{PoisonError, TryLockError};

/// Locks, channels and threads of the cold paths (start-up, epoch
/// completion, progress, sinks, waiting for sources, the dead-letter file):
/// always std's. None of them is on a path a loom model drives, and none is
/// taken per record.
pub(crate) mod cold {
    pub(crate) use std::sync::mpsc;
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, Once, OnceLock};
    pub(crate) use std::thread::{available_parallelism, Builder as ThreadBuilder, JoinHandle};

    use super::PoisonError;

    /// Locks `mutex`, taking over a lock poisoned by a panicking holder: every
    /// cold-path lock guards state that a panic leaves consistent (the engine
    /// records the panic as its failure).
    pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A lock-free multi-producer queue (crossbeam's `SegQueue`); under loom, a
/// loom mutex around a `VecDeque`, whose orderings loom can follow.
pub(crate) struct Queue<T> {
    #[cfg(not(loom))]
    inner: crossbeam_queue::SegQueue<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<std::collections::VecDeque<T>>,
}

impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        Queue {
            inner: Default::default(),
        }
    }

    pub(crate) fn push(&self, item: T) {
        #[cfg(not(loom))]
        self.inner.push(item);
        #[cfg(loom)]
        self.inner.lock().unwrap().push_back(item);
    }

    pub(crate) fn pop(&self) -> Option<T> {
        #[cfg(not(loom))]
        return self.inner.pop();
        #[cfg(loom)]
        return self.inner.lock().unwrap().pop_front();
    }
}

/// Waiting without starving the thread waited for.
pub(crate) mod wait {
    use std::time::Duration;

    /// The longest an idle engine thread sleeps before it looks again.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) const MAX_IDLE_PARK: Duration = Duration::from_micros(50);

    /// Spin, then yield, then sleep up to [`MAX_IDLE_PARK`] per step: a
    /// waiting thread gives its core away on a machine with fewer cores than
    /// threads, and still re-checks its condition within a bounded delay.
    #[derive(Debug, Default)]
    pub(crate) struct Idle {
        #[cfg(not(loom))]
        backoff: crossbeam_utils::Backoff,
        /// Never sleep: keep yielding once spinning is done.
        #[cfg_attr(loom, allow(dead_code))]
        never_sleep: bool,
    }

    impl Idle {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        /// A waiter that spins, then yields, and never sleeps.
        pub(crate) fn yielding() -> Self {
            Idle {
                #[cfg(not(loom))]
                backoff: crossbeam_utils::Backoff::new(),
                never_sleep: true,
            }
        }

        /// One waiting step.
        #[cfg(not(loom))]
        pub(crate) fn step(&self) {
            if self.backoff.is_completed() && !self.never_sleep {
                std::thread::park_timeout(MAX_IDLE_PARK);
            } else {
                self.backoff.snooze();
            }
        }

        /// One waiting step: under loom, a yield to the model's scheduler.
        #[cfg(loom)]
        pub(crate) fn step(&self) {
            loom::thread::yield_now();
        }

        /// One waiting step that never sleeps (spin, then yield): for a
        /// wait whose end is due within a park's wake-up delay.
        #[cfg(not(loom))]
        pub(crate) fn snooze(&self) {
            self.backoff.snooze();
        }

        /// One waiting step that never sleeps: under loom, a yield.
        #[cfg(loom)]
        pub(crate) fn snooze(&self) {
            loom::thread::yield_now();
        }

        /// The condition changed: start again from spinning.
        pub(crate) fn reset(&mut self) {
            #[cfg(not(loom))]
            self.backoff.reset();
        }
    }
}
