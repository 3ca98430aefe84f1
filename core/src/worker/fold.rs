//! The hot path's fold: records taken from a ring or a source go into the
//! open batch's parts, and their arrival is noted for latency.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::fault::{panic_message, quietly, PanicHandler, RetainedBatch};
use crate::job::{Job, Parts};
use crate::progress::ArrivalMarks;

/// What a worker's records of the open epoch go into: one part per key
/// partition, the batch's retained input (under a panic policy) and the
/// arrival marks of its runs of records.
pub(crate) struct OpenBatch<R, J: Job<R>> {
    /// One part per partition; after a seal, fresh (recycled) parts.
    pub(crate) parts: Vec<J::Part>,
    pub(crate) retained: RetainedBatch<R>,
    pub(crate) arrivals: ArrivalMarks,
}

impl<R, J: Job<R>> OpenBatch<R, J> {
    pub(crate) fn new(parts: Vec<J::Part>) -> Self {
        OpenBatch {
            parts,
            retained: RetainedBatch::new(),
            arrivals: ArrivalMarks::new(),
        }
    }

    /// Folds `records` into the parts. Under a panic policy it also keeps
    /// them and catches a panic, after which the parts are suspect: the
    /// rest of the batch is only kept until the policy rebuilds them
    /// (`fault::recover`). Hot path.
    #[inline]
    pub(crate) fn fold(&mut self, job: &J, handler: Option<&PanicHandler<R>>, records: &[R]) {
        let Some(handler) = handler else {
            job.absorb(records, Parts::from(&mut self.parts));
            return;
        };
        handler.retain(records, &mut self.retained);
        if !self.retained.has_failed() {
            let parts = &mut self.parts;
            let folded = quietly(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    job.absorb(records, Parts::from(&mut *parts))
                }))
            });
            if let Err(payload) = folded {
                self.retained.note_panic(panic_message(payload.as_ref()));
            }
        }
    }

    /// Folds a run of `records` that arrived (or was due) at `arrived`, µs
    /// since the engine started. Hot path.
    #[inline]
    pub(crate) fn fold_run(
        &mut self,
        job: &J,
        handler: Option<&PanicHandler<R>>,
        records: &[R],
        arrived: u64,
    ) {
        self.fold(job, handler, records);
        self.arrivals.note(arrived, records.len() as u64);
    }

    /// What a worker's lane reader calls with each run it takes from a
    /// ring and the run's push stamp: the run is folded and counted from
    /// its stamp (no later than `now`), or from `now` if the lane was not
    /// stamped. Hot path.
    #[inline]
    pub(crate) fn ring_runs<'a>(
        &'a mut self,
        job: &'a J,
        handler: Option<&'a PanicHandler<R>>,
        now: u64,
    ) -> impl FnMut(&[R], Option<u64>) + 'a {
        move |records, pushed| {
            if !records.is_empty() {
                let arrived = pushed.map_or(now, |pushed| pushed.min(now));
                self.fold_run(job, handler, records, arrived);
            }
        }
    }
}
