//! Errors of the ring. Every error that is about an item carries it back:
//! nothing handed to the ring is ever silently dropped.

use std::fmt;

/// [`Producer::try_push`](crate::Producer::try_push) found the ring full;
/// the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ring is full: pop items or retry later; the item is handed back")]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// The item that could not be pushed.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

/// A blocking [`Producer::push`](crate::Producer::push) could not complete
/// because the [`Consumer`](crate::Consumer) was dropped while the ring was
/// full; the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the consumer was dropped while the ring was full; the item is handed back")]
pub struct Abandoned<T>(pub T);

impl<T> Abandoned<T> {
    /// The item that could not be pushed.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Abandoned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Abandoned(..)")
    }
}

/// A chunk of exactly the requested size is not available right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{requested} slots or items requested, only {available} available now")]
pub struct TooFewSlots {
    /// How many slots (write chunk) or items (read chunk) were asked for.
    pub requested: usize,
    /// How many there were when the ring was looked at.
    pub available: usize,
}

/// The ring cannot be built with the requested capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    /// A capacity of zero was requested; the smallest ring holds 1 item.
    #[error("ring capacity must be at least 1")]
    Zero,
    /// The capacity, rounded up to a power of two, does not fit in memory.
    #[error(
        "ring capacity {requested} is too large: rounded up to a power of two it must be at most {max} for this item type"
    )]
    TooLarge {
        /// The capacity asked for.
        requested: usize,
        /// The largest capacity accepted for this item type.
        max: usize,
    },
}
