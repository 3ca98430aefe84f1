//! How a blocking push waits while the ring is full, and how `send`
//! applies the overload policy: one logic for every blocking handle
//! ([`Producer`](super::Producer), [`SharedProducer`](super::SharedProducer)),
//! given its `try_push`.

use std::time::{Duration, Instant};

use super::lane::Lanes;
use super::{Closed, PushError, Sent};
use crate::config::Overload;
use crate::sync::wait::Idle;
use crate::sync::Ordering;

/// Calls `try_push` until it does not report the ring full, waiting
/// (spin, yield, short sleeps) between calls; with a `timeout`, hands the
/// record back as [`PushError::Full`] once it has passed. The clock is
/// read only once the ring is full.
pub(super) fn retry_while_full<R>(
    mut try_push: impl FnMut(R) -> Result<(), PushError<R>>,
    record: R,
    timeout: Option<Duration>,
) -> Result<(), PushError<R>> {
    let mut record = match try_push(record) {
        Err(PushError::Full(back)) => back,
        done => return done,
    };
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let idle = Idle::new();
    loop {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(PushError::Full(record));
        }
        idle.step();
        record = match try_push(record) {
            Err(PushError::Full(back)) => back,
            done => return done,
        };
    }
}

/// [`retry_while_full`] without a timeout: fails only on the close.
pub(super) fn push_waiting<R>(
    try_push: impl FnMut(R) -> Result<(), PushError<R>>,
    record: R,
) -> Result<(), Closed<R>> {
    retry_while_full(try_push, record, None).map_err(|error| Closed(error.into_inner()))
}

/// Pushes `record` by `try_push` as the `overload` policy says when the
/// ring is full: wait, hand it back, or drop it ([`Sent::Shed`], which
/// the caller counts).
pub(super) fn send_by_policy<R>(
    overload: Overload,
    try_push: impl FnMut(R) -> Result<(), PushError<R>>,
    record: R,
) -> Result<Sent, PushError<R>> {
    let timeout = match overload {
        Overload::Block => None,
        Overload::Fail | Overload::DropNewest => Some(Duration::ZERO),
    };
    match retry_while_full(try_push, record, timeout) {
        Ok(()) => Ok(Sent::Accepted),
        Err(PushError::Full(_)) if overload == Overload::DropNewest => Ok(Sent::Shed),
        Err(error) => Err(error),
    }
}

/// Counts a record `send` shed in `lanes`' total. Cold-ish: once per
/// record dropped.
pub(super) fn count_shed<R>(lanes: &Lanes<R>, sent: &Result<Sent, PushError<R>>) {
    if let Ok(Sent::Shed) = sent {
        lanes.shed.fetch_add(1, Ordering::Relaxed);
    }
}
