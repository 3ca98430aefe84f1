//! The `sync` facade of the engine: the only module that names
//! `std::sync::atomic`, `std::thread` or `loom`. Building with
//! `RUSTFLAGS="--cfg loom"` swaps them for loom's model-checked versions.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

/// Waiting without starving the thread waited for.
pub(crate) mod wait {
    use std::time::Duration;

    /// The longest an idle engine thread sleeps before it looks again.
    pub(crate) const MAX_IDLE_PARK: Duration = Duration::from_micros(50);

    /// Spin, then yield, then sleep up to [`MAX_IDLE_PARK`] per step: a
    /// waiting thread gives its core away on a machine with fewer cores than
    /// threads, and still re-checks its condition within a bounded delay.
    #[derive(Debug, Default)]
    pub(crate) struct Idle {
        #[cfg(not(loom))]
        backoff: crossbeam_utils::Backoff,
    }

    impl Idle {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        /// One waiting step.
        #[cfg(not(loom))]
        pub(crate) fn step(&self) {
            if self.backoff.is_completed() {
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

        /// The condition changed: start again from spinning.
        pub(crate) fn reset(&mut self) {
            *self = Self::new();
        }
    }
}
