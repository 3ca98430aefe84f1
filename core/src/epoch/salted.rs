//! The salted keys' entries of each epoch in flight, merged from every
//! owner (see [`Job::take_salted`]): a salted key's records are spread
//! over every partition, so its rows are finished once, from every owner's
//! share, by the thread that completes the epoch.

use crate::job::Job;
use crate::sync::cold::{lock, Mutex};

/// One merged part per epoch of the window: slot `e % window` serves epoch
/// `e`, and the clock's window keeps epochs `e` and `e + window` from being
/// in flight together, as for the epoch slots.
pub(crate) struct SaltedParts<P> {
    slots: Box<[Mutex<Option<P>>]>,
}

impl<P> SaltedParts<P> {
    pub(crate) fn new(window: usize) -> Self {
        SaltedParts {
            slots: (0..window).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn of(&self, epoch: u64) -> &Mutex<Option<P>> {
        &self.slots[(epoch % self.slots.len() as u64) as usize]
    }

    /// Merges an owner's entries of salted keys of `epoch` into the
    /// epoch's; hands back an emptied part for reuse. Once per owner and
    /// epoch, for a job that salts.
    pub(crate) fn deposit<R, J: Job<R, Part = P>>(
        &self,
        job: &J,
        epoch: u64,
        mut part: P,
    ) -> Option<P> {
        let mut salted = lock(self.of(epoch));
        match salted.as_mut() {
            None => {
                *salted = Some(part);
                None
            }
            Some(merged) => {
                job.merge(merged, &mut part);
                Some(part)
            }
        }
    }

    /// The merged part of `epoch`, if any owner deposited one.
    pub(crate) fn take(&self, epoch: u64) -> Option<P> {
        lock(self.of(epoch)).take()
    }
}
