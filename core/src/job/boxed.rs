//! Boxed jobs: a `Box<dyn Job<R, Part = P, Row = Row, Totals = T>>` is a
//! job, so a service can keep an engine in a struct without naming the
//! job's closure types ([`BoxedJob`]). The engine calls a job once per
//! chunk of records (and per part at a seal), never per record, so the
//! virtual calls cost nothing measurable (`measure boxed`).

use super::{DeferredError, EpochTime, Job, Parts, Placement};
use crate::progress::HotKey;

/// A job behind a box, its closures' types erased; its parts, rows and
/// totals are still named.
///
/// ```
/// use microbatch::job::{self, count, BoxedJob, KeyedPart};
/// use microbatch::sink::DiscardSink;
/// use microbatch::{Engine, Summary};
///
/// /// A service's engine, kept in a struct.
/// struct Service {
///     engine: Engine<(u32, u64), BoxedJob<(u32, u64), KeyedPart<u32, u64>, (u32, u64)>>,
/// }
///
/// let per_key: BoxedJob<(u32, u64), _, _> =
///     Box::new(job::records::<(u32, u64)>().key_by(|r| r.0).aggregate(count()));
/// let service = Service {
///     engine: Engine::builder(per_key, DiscardSink).workers(1).pin(false).start()?,
/// };
/// service.engine.producer().push((7, 1)).unwrap();
/// let summary: Summary = service.engine.shutdown()?;
/// assert_eq!(summary.records_in_results, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type BoxedJob<R, Part, Row, Totals = ()> =
    Box<dyn Job<R, Part = Part, Row = Row, Totals = Totals>>;

impl<R, J: Job<R> + ?Sized> Job<R> for Box<J> {
    type Part = J::Part;
    type Row = J::Row;
    type Totals = J::Totals;

    fn partitions(&self, workers: usize) -> usize {
        (**self).partitions(workers)
    }

    fn check(&self, workers: usize) -> Result<(), String> {
        (**self).check(workers)
    }

    fn new_part(&self) -> Self::Part {
        (**self).new_part()
    }

    fn new_totals(&self) -> Self::Totals {
        (**self).new_totals()
    }

    fn keeps_totals(&self) -> bool {
        (**self).keeps_totals()
    }

    fn save_totals(&self, totals: &Self::Totals, out: &mut Vec<u8>) -> Result<bool, String> {
        (**self).save_totals(totals, out)
    }

    fn load_totals(&self, bytes: &[u8]) -> Result<Self::Totals, String> {
        (**self).load_totals(bytes)
    }

    #[inline]
    fn absorb(&self, records: &[R], parts: Parts<'_, Self::Part>) {
        (**self).absorb(records, parts)
    }

    fn place(&self, parts: Parts<'_, Self::Part>, placement: Placement) -> Placement {
        (**self).place(parts, placement)
    }

    fn split(&self, parts: Parts<'_, Self::Part>) -> usize {
        (**self).split(parts)
    }

    fn merge(&self, into: &mut Self::Part, from: &mut Self::Part) {
        (**self).merge(into, from)
    }

    fn salts(&self) -> bool {
        (**self).salts()
    }

    fn take_salted(&self, part: &mut Self::Part, into: &mut Self::Part) -> bool {
        (**self).take_salted(part, into)
    }

    fn hot_keys(&self, part: &mut Self::Part, out: &mut Vec<HotKey>) {
        (**self).hot_keys(part, out)
    }

    fn finish(&self, part: &mut Self::Part, rows: &mut Vec<Self::Row>) {
        (**self).finish(part, rows)
    }

    fn finish_with_totals(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
    ) {
        (**self).finish_with_totals(part, totals, rows)
    }

    fn finish_at(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
        time: EpochTime,
    ) {
        (**self).finish_at(part, totals, rows, time)
    }

    fn batch_event_time(&self, parts: Parts<'_, Self::Part>) -> Option<u64> {
        (**self).batch_event_time(parts)
    }

    fn idle_timeout(&self) -> Option<std::time::Duration> {
        (**self).idle_timeout()
    }

    fn open_batch(&self, parts: Parts<'_, Self::Part>, frontier: Option<u64>) {
        (**self).open_batch(parts, frontier)
    }

    fn windows_in(&self, rows: &[Self::Row]) -> u64 {
        (**self).windows_in(rows)
    }

    fn open_state(&self, totals: &Self::Totals) -> usize {
        (**self).open_state(totals)
    }

    fn take_late(&self, part: &mut Self::Part) -> u64 {
        (**self).take_late(part)
    }

    fn merge_some(&self, into: &mut Self::Part, from: &mut Self::Part, budget: usize) -> bool {
        (**self).merge_some(into, from, budget)
    }

    fn part_like(&self, like: &Self::Part) -> Self::Part {
        (**self).part_like(like)
    }

    fn finish_some(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
        time: EpochTime,
        budget: usize,
    ) -> bool {
        (**self).finish_some(part, totals, rows, time, budget)
    }

    fn carry(&self, epoch: u64, sealed: &mut Self::Part, open: &mut Self::Part) {
        (**self).carry(epoch, sealed, open)
    }

    fn run_deferred(&self, totals: &mut Self::Totals, owner: usize) -> Result<bool, DeferredError> {
        (**self).run_deferred(totals, owner)
    }

    fn has_deferred(&self, totals: &Self::Totals) -> bool {
        (**self).has_deferred(totals)
    }

    fn carries(&self) -> bool {
        (**self).carries()
    }

    fn check_checkpoint(&self) -> Result<(), String> {
        (**self).check_checkpoint()
    }

    fn restored_frontier(&self, totals: &Self::Totals) -> Option<u64> {
        (**self).restored_frontier(totals)
    }

    fn resume_query_commits(
        &self,
        commits: &crate::checkpoint::QueryCommits,
    ) -> Result<Option<u64>, crate::checkpoint::CheckpointError> {
        (**self).resume_query_commits(commits)
    }
}
