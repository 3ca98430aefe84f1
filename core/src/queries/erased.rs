//! One query behind a trait object: its job and its sink with their types
//! erased, so that queries of different jobs run side by side. Parts,
//! totals and rows travel as [`Sub`]s, boxes the query downcasts back to
//! its own types; a downcast that fails is a bug of this module, not of
//! the caller, and panics saying so.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::QueriesPart;
use crate::job::{EpochTime, Job, Parts, Placement};
use crate::progress::EpochProgress;
use crate::sink::{Sink, SinkError};

/// A part, the totals or the rows of one query, its type erased.
pub(crate) type Sub = Box<dyn Any + Send>;

/// What the queries' job needs of one query.
pub(crate) trait ErasedQuery<R>: Send + Sync {
    fn partitions(&self, workers: usize) -> usize;
    fn check(&self, workers: usize) -> Result<(), String>;
    fn new_part(&self) -> Sub;
    /// An empty part with room for what `like` holds.
    fn part_like(&self, like: &Sub) -> Sub;
    fn new_totals(&self) -> Sub;
    fn new_rows(&self) -> Sub;
    /// Whether the query's rows depend on every earlier epoch.
    fn keeps_totals(&self) -> bool;
    /// Takes the count of records `part` dropped as late (an event-time
    /// query's).
    fn take_late(&self, part: &mut Sub) -> u64;
    /// Folds `records` into query `q`'s parts of the first `partitions`
    /// of `parts`. Hot path.
    fn absorb(&self, records: &[R], parts: Parts<'_, QueriesPart>, q: usize, partitions: usize);
    fn batch_event_time(
        &self,
        parts: Parts<'_, QueriesPart>,
        q: usize,
        partitions: usize,
    ) -> Option<u64>;
    fn open_batch(
        &self,
        parts: Parts<'_, QueriesPart>,
        q: usize,
        partitions: usize,
        frontier: Option<u64>,
    );
    fn idle_timeout(&self) -> Option<std::time::Duration>;
    fn place(
        &self,
        parts: Parts<'_, QueriesPart>,
        q: usize,
        partitions: usize,
        placement: Placement,
    ) -> Placement;
    fn split(&self, parts: Parts<'_, QueriesPart>, q: usize, partitions: usize) -> usize;
    fn merge_some(&self, into: &mut Sub, from: &mut Sub, budget: usize) -> bool;
    fn finish_some(
        &self,
        part: &mut Sub,
        totals: &mut Sub,
        rows: &mut Sub,
        time: EpochTime,
        budget: usize,
    ) -> bool;
    /// Writes the rows gathered in `rows` (then empty) to the query's
    /// sink, or drops them without `output` (an epoch replayed after a
    /// restart, which the query committed before); how many it wrote.
    fn write(
        &self,
        epoch: u64,
        partition: usize,
        rows: &mut Sub,
        output: bool,
    ) -> Result<u64, SinkError>;
    fn epoch_complete(&self, epoch: u64, progress: &EpochProgress) -> Result<(), SinkError>;
    fn close(&self);
}

/// A query's job `J` and sink `S`.
pub(crate) struct Typed<J, S> {
    pub(crate) job: J,
    pub(crate) sink: S,
}

fn typed<T: 'static>(sub: &mut Sub) -> &mut T {
    sub.downcast_mut()
        .expect("a query's part, totals or rows are of its own job's types")
}

impl<J, S> Typed<J, S> {
    /// Runs `f` on query `q`'s parts of the first `partitions` of `parts`
    /// as a slice of its own part type. The batch's first part lends a
    /// scratch vector (made once, on first use); each query part is
    /// swapped into it and back, also when `f` panics, so the batch's
    /// parts are whole again when this returns or unwinds. Per chunk: two
    /// moves and a downcast per partition.
    fn with_parts<R, T>(
        &self,
        mut parts: Parts<'_, QueriesPart>,
        q: usize,
        partitions: usize,
        f: impl FnOnce(Parts<'_, J::Part>) -> T,
    ) -> T
    where
        J: Job<R>,
    {
        let Some(first) = parts.first_mut() else {
            return f(Parts::from(&mut Vec::new()));
        };
        let mut scratch = first.scratch[q].take().unwrap_or_else(|| {
            let parts: Vec<J::Part> = (0..partitions).map(|_| self.job.new_part()).collect();
            Box::new(parts)
        });
        let own: &mut Vec<J::Part> = typed(&mut scratch);
        let swap_all = |parts: &mut Parts<'_, QueriesPart>, own: &mut Vec<J::Part>| {
            for (p, part) in own.iter_mut().enumerate() {
                std::mem::swap(part, typed(&mut parts[p].subs[q]));
            }
        };
        swap_all(&mut parts, own);
        let outcome = catch_unwind(AssertUnwindSafe(|| f(Parts::from(&mut own[..]))));
        swap_all(&mut parts, own);
        parts[0].scratch[q] = Some(scratch);
        outcome.unwrap_or_else(|panic| resume_unwind(panic))
    }
}

impl<R, J, S> ErasedQuery<R> for Typed<J, S>
where
    R: 'static,
    J: Job<R>,
    S: Sink<J::Row>,
{
    fn partitions(&self, workers: usize) -> usize {
        self.job.partitions(workers)
    }

    fn check(&self, workers: usize) -> Result<(), String> {
        if self.job.salts() {
            return Err("a query's job cannot salt keys: its shares would need \
                 an end-of-epoch merge of their own"
                .into());
        }
        self.job.check(workers)
    }

    fn new_part(&self) -> Sub {
        Box::new(self.job.new_part())
    }

    fn part_like(&self, like: &Sub) -> Sub {
        let like: &J::Part = like
            .downcast_ref()
            .expect("a query's part is of its own job's type");
        Box::new(self.job.part_like(like))
    }

    fn new_totals(&self) -> Sub {
        Box::new(self.job.new_totals())
    }

    fn new_rows(&self) -> Sub {
        Box::new(Vec::<J::Row>::new())
    }

    fn keeps_totals(&self) -> bool {
        self.job.keeps_totals()
    }

    fn take_late(&self, part: &mut Sub) -> u64 {
        self.job.take_late(typed(part))
    }

    #[inline]
    fn absorb(&self, records: &[R], parts: Parts<'_, QueriesPart>, q: usize, partitions: usize) {
        self.with_parts(parts, q, partitions, |own| self.job.absorb(records, own));
    }

    fn batch_event_time(
        &self,
        parts: Parts<'_, QueriesPart>,
        q: usize,
        partitions: usize,
    ) -> Option<u64> {
        self.with_parts(parts, q, partitions, |own| self.job.batch_event_time(own))
    }

    fn open_batch(
        &self,
        parts: Parts<'_, QueriesPart>,
        q: usize,
        partitions: usize,
        frontier: Option<u64>,
    ) {
        self.with_parts(parts, q, partitions, |own| {
            self.job.open_batch(own, frontier)
        });
    }

    fn idle_timeout(&self) -> Option<std::time::Duration> {
        self.job.idle_timeout()
    }

    fn place(
        &self,
        parts: Parts<'_, QueriesPart>,
        q: usize,
        partitions: usize,
        placement: Placement,
    ) -> Placement {
        self.with_parts(parts, q, partitions, |own| self.job.place(own, placement))
    }

    fn split(&self, parts: Parts<'_, QueriesPart>, q: usize, partitions: usize) -> usize {
        self.with_parts(parts, q, partitions, |own| self.job.split(own))
    }

    fn merge_some(&self, into: &mut Sub, from: &mut Sub, budget: usize) -> bool {
        let from: &mut J::Part = typed(from);
        self.job.merge_some(typed(into), from, budget)
    }

    fn finish_some(
        &self,
        part: &mut Sub,
        totals: &mut Sub,
        rows: &mut Sub,
        time: EpochTime,
        budget: usize,
    ) -> bool {
        let (totals, rows): (&mut J::Totals, &mut Vec<J::Row>) = (typed(totals), typed(rows));
        self.job
            .finish_some(typed(part), totals, rows, time, budget)
    }

    fn write(
        &self,
        epoch: u64,
        partition: usize,
        rows: &mut Sub,
        output: bool,
    ) -> Result<u64, SinkError> {
        let rows: &mut Vec<J::Row> = typed(rows);
        if !output {
            rows.clear();
            return Ok(0);
        }
        let count = rows.len() as u64;
        if count > 0 {
            let written = self.sink.write(epoch, partition, rows);
            rows.clear();
            written?;
        }
        Ok(count)
    }

    fn epoch_complete(&self, epoch: u64, progress: &EpochProgress) -> Result<(), SinkError> {
        self.sink.epoch_complete(epoch, progress)
    }

    fn close(&self) {
        self.sink.close();
    }
}
