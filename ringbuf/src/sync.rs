//! The `sync` facade: the only module that names `std::sync`, `std::thread`
//! or `loom`. Building with `RUSTFLAGS="--cfg loom"` swaps every atomic,
//! `Arc`, yield and park of the crate for loom's model-checked versions.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

/// Spinning, yielding and parking.
#[cfg(not(loom))]
pub(crate) mod wait {
    pub(crate) use crossbeam_utils::sync::{Parker, Unparker};
    pub(crate) use crossbeam_utils::Backoff;
}

/// Under loom a spin or a park is a yield to the model's scheduler, and an
/// unpark does nothing: correctness never depends on a wake-up arriving,
/// only latency does (a waiter re-checks its condition after a bounded park).
#[cfg(loom)]
pub(crate) mod wait {
    use std::time::Duration;

    /// A loom stand-in for `crossbeam_utils::sync::Parker`.
    #[derive(Debug, Default)]
    pub(crate) struct Parker;

    /// A loom stand-in for `crossbeam_utils::sync::Unparker`.
    #[derive(Debug, Clone)]
    pub(crate) struct Unparker;

    impl Parker {
        pub(crate) fn new() -> Self {
            Parker
        }

        pub(crate) fn unparker(&self) -> &Unparker {
            &Unparker
        }

        pub(crate) fn park_timeout(&self, _timeout: Duration) {
            loom::thread::yield_now();
        }
    }

    impl Unparker {
        pub(crate) fn unpark(&self) {}
    }

    /// A loom stand-in for `crossbeam_utils::Backoff`: one yielding step,
    /// then it tells the caller to park.
    #[derive(Debug, Default)]
    pub(crate) struct Backoff {
        step: std::cell::Cell<u32>,
    }

    impl Backoff {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        pub(crate) fn snooze(&self) {
            self.step.set(self.step.get() + 1);
            loom::thread::yield_now();
        }

        pub(crate) fn is_completed(&self) -> bool {
            self.step.get() > 0
        }
    }
}

/// Records slot accesses for loom's causality checker. Outside loom it is a
/// zero-sized no-op, so the data path pays nothing for it.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct SlotAccess;

#[cfg(not(loom))]
impl SlotAccess {
    #[inline(always)]
    pub(crate) fn new(_slots: usize) -> Self {
        SlotAccess
    }

    #[inline(always)]
    pub(crate) fn touch(&self, _slot: usize) {}

    #[inline(always)]
    pub(crate) fn touch_run(&self, _start: usize, _n: usize, _mask: usize) {}
}

/// Under loom: one `UnsafeCell<()>` per slot; touching a slot is a mutable
/// access, so a producer write and a consumer read of the same slot that are
/// not ordered by happens-before make the model fail.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct SlotAccess(Box<[loom::cell::UnsafeCell<()>]>);

#[cfg(loom)]
impl SlotAccess {
    pub(crate) fn new(slots: usize) -> Self {
        SlotAccess(
            (0..slots)
                .map(|_| loom::cell::UnsafeCell::new(()))
                .collect(),
        )
    }

    pub(crate) fn touch(&self, slot: usize) {
        self.0[slot].with_mut(|_| ());
    }

    pub(crate) fn touch_run(&self, start: usize, n: usize, mask: usize) {
        for i in 0..n {
            self.touch(start.wrapping_add(i) & mask);
        }
    }
}
