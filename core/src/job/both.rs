//! Two jobs over one stream (see [`Job::and`]): every record is pushed
//! once and folded into both, each into its own parts; each partition's
//! part is the pair of the two jobs' parts, so both travel to the
//! partition's owner together, and the owner finishes both in the same
//! epoch. The rows say which job made them ([`Either`]).
//!
//! What the two share: the epochs (one interval or count trigger), the
//! partitions (both must have as many), the frontier of event time (the
//! newer of the two jobs' at each seal, so a job without event time leaves
//! the other's alone) and the checkpoint (a snapshot holds both jobs'
//! totals, or neither's if either cannot be snapshotted).

use super::{EpochTime, Job, Parts, Placement};
use crate::progress::HotKey;

/// A row of two jobs run together: which job made it, and the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Either<A, B> {
    /// A row of the first job.
    First(A),
    /// A row of the second job.
    Second(B),
}

/// The jobs `first` and `second` over the same records, made by
/// [`Job::and`].
///
/// ```
/// use std::time::Duration;
/// use microbatch::job::{self, count, Either, Job, Window};
/// use microbatch::sink::CollectSink;
/// use microbatch::source::IterSource;
/// use microbatch::Engine;
///
/// // Per user: clicks per epoch, and sessions of event time (1 s gap).
/// let per_epoch = job::records::<(u64, u64)>().key_by(|c| c.0).aggregate(count());
/// let sessions = job::records::<(u64, u64)>()
///     .event_time(|c| c.1)
///     .session(Duration::from_secs(1))
///     .key_by(|c| c.0)
///     .aggregate(count());
/// let clicks = [(7, 0), (7, 400), (7, 5_000), (8, 100)];
/// let (sink, rows) = CollectSink::new();
/// let engine = Engine::builder(per_epoch.and(sessions), sink)
///     .workers(2)
///     .interval(None) // one epoch: the whole input
///     .source(IterSource::new(clicks))
///     .start()?;
/// engine.finish()?;
/// let mut rows: Vec<_> = rows.take().into_iter().map(|(_, row)| row).collect();
/// rows.sort();
/// let session = |start_ms, end_ms| Window { start_ms, end_ms };
/// assert_eq!(rows, [
///     Either::First((7, 3)),
///     Either::First((8, 1)),
///     Either::Second((session(0, 1_400), 7, 2)),
///     Either::Second((session(100, 1_100), 8, 1)),
///     Either::Second((session(5_000, 6_000), 7, 1)),
/// ]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Both<A, B> {
    first: A,
    second: B,
}

impl<A, B> Both<A, B> {
    pub(super) fn new(first: A, second: B) -> Self {
        Both { first, second }
    }
}

/// What the owner of a partition keeps for two jobs: each job's totals,
/// and each job's rows buffer, reused from epoch to epoch.
pub struct BothTotals<TA, TB, RA, RB> {
    first: TA,
    second: TB,
    first_rows: Vec<RA>,
    second_rows: Vec<RB>,
}

/// A snapshot of both totals: per job, one byte (1 if its totals follow),
/// then the totals' length (8 bytes, little-endian) and bytes.
const SAVED: u8 = 1;

impl<R, A, B> Job<R> for Both<A, B>
where
    A: Job<R>,
    B: Job<R>,
{
    type Part = (A::Part, B::Part);
    type Row = Either<A::Row, B::Row>;
    type Totals = BothTotals<A::Totals, B::Totals, A::Row, B::Row>;

    fn partitions(&self, workers: usize) -> usize {
        self.first.partitions(workers)
    }

    fn check(&self, workers: usize) -> Result<(), String> {
        let (first, second) = (
            self.first.partitions(workers),
            self.second.partitions(workers),
        );
        if first != second {
            return Err(format!(
                "two jobs run together must have as many partitions, but with {workers} \
                 workers the first has {first} and the second {second} (a global job has one, \
                 a keyed job one per worker)"
            ));
        }
        self.first.check(workers)?;
        self.second.check(workers)
    }

    fn new_part(&self) -> Self::Part {
        (self.first.new_part(), self.second.new_part())
    }

    fn new_totals(&self) -> Self::Totals {
        BothTotals {
            first: self.first.new_totals(),
            second: self.second.new_totals(),
            first_rows: Vec::new(),
            second_rows: Vec::new(),
        }
    }

    fn keeps_totals(&self) -> bool {
        self.first.keeps_totals() || self.second.keeps_totals()
    }

    fn save_totals(&self, totals: &Self::Totals, out: &mut Vec<u8>) -> Result<bool, String> {
        // A job that keeps totals but cannot snapshot them makes a resumed
        // run replay from the first epoch: then neither job's are saved.
        let mut side = Vec::new();
        let first = self.first.save_totals(&totals.first, &mut side)?;
        if !first && self.first.keeps_totals() {
            return Ok(false);
        }
        put_side(out, first.then_some(&side[..]));
        side.clear();
        let second = self.second.save_totals(&totals.second, &mut side)?;
        if !second && self.second.keeps_totals() {
            out.clear();
            return Ok(false);
        }
        put_side(out, second.then_some(&side[..]));
        if !(first || second) {
            // Neither job has totals to save: no snapshot.
            out.clear();
        }
        Ok(first || second)
    }

    fn load_totals(&self, bytes: &[u8]) -> Result<Self::Totals, String> {
        let (first, rest) = take_side(bytes)?;
        let (second, rest) = take_side(rest)?;
        if !rest.is_empty() {
            return Err(format!(
                "{} bytes after both jobs' totals in the snapshot",
                rest.len()
            ));
        }
        let mut totals = self.new_totals();
        if let Some(first) = first {
            totals.first = self.first.load_totals(first)?;
        }
        if let Some(second) = second {
            totals.second = self.second.load_totals(second)?;
        }
        Ok(totals)
    }

    // Hot path: each job's own fold, over the same records.
    #[inline]
    fn absorb(&self, records: &[R], mut parts: Parts<'_, Self::Part>) {
        self.first.absorb(records, parts.firsts());
        self.second.absorb(records, parts.seconds());
    }

    fn place(&self, mut parts: Parts<'_, Self::Part>, placement: Placement) -> Placement {
        let first = self.first.place(parts.firsts(), placement);
        let second = self.second.place(parts.seconds(), placement);
        if first == second {
            first
        } else {
            // One of the two combines: the batch is combined in part.
            Placement::Combined
        }
    }

    fn split(&self, mut parts: Parts<'_, Self::Part>) -> usize {
        self.first.split(parts.firsts()) + self.second.split(parts.seconds())
    }

    fn merge(&self, into: &mut Self::Part, from: &mut Self::Part) {
        self.first.merge(&mut into.0, &mut from.0);
        self.second.merge(&mut into.1, &mut from.1);
    }

    fn salts(&self) -> bool {
        self.first.salts() || self.second.salts()
    }

    fn take_salted(&self, part: &mut Self::Part, into: &mut Self::Part) -> bool {
        let first = self.first.take_salted(&mut part.0, &mut into.0);
        let second = self.second.take_salted(&mut part.1, &mut into.1);
        first || second
    }

    fn hot_keys(&self, part: &mut Self::Part, out: &mut Vec<HotKey>) {
        self.first.hot_keys(&mut part.0, out);
        self.second.hot_keys(&mut part.1, out);
    }

    fn finish(&self, part: &mut Self::Part, rows: &mut Vec<Self::Row>) {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        self.first.finish(&mut part.0, &mut first);
        self.second.finish(&mut part.1, &mut second);
        rows.extend(first.into_iter().map(Either::First));
        rows.extend(second.into_iter().map(Either::Second));
    }

    fn finish_with_totals(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
    ) {
        self.first
            .finish_with_totals(&mut part.0, &mut totals.first, &mut totals.first_rows);
        self.second
            .finish_with_totals(&mut part.1, &mut totals.second, &mut totals.second_rows);
        totals.drain_into(rows);
    }

    fn finish_at(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
        time: EpochTime,
    ) {
        self.first
            .finish_at(&mut part.0, &mut totals.first, &mut totals.first_rows, time);
        self.second.finish_at(
            &mut part.1,
            &mut totals.second,
            &mut totals.second_rows,
            time,
        );
        totals.drain_into(rows);
    }

    fn batch_event_time(&self, mut parts: Parts<'_, Self::Part>) -> Option<u64> {
        let first = self.first.batch_event_time(parts.firsts());
        first.max(self.second.batch_event_time(parts.seconds()))
    }

    fn idle_timeout(&self) -> Option<std::time::Duration> {
        match (self.first.idle_timeout(), self.second.idle_timeout()) {
            (Some(first), Some(second)) => Some(first.min(second)),
            (first, second) => first.or(second),
        }
    }

    fn open_batch(&self, mut parts: Parts<'_, Self::Part>, frontier: Option<u64>) {
        self.first.open_batch(parts.firsts(), frontier);
        self.second.open_batch(parts.seconds(), frontier);
    }

    // Cold path: once per row an owner emits.
    fn windows_in(&self, rows: &[Self::Row]) -> u64 {
        rows.iter()
            .map(|row| match row {
                Either::First(row) => self.first.windows_in(std::slice::from_ref(row)),
                Either::Second(row) => self.second.windows_in(std::slice::from_ref(row)),
            })
            .sum()
    }

    fn open_state(&self, totals: &Self::Totals) -> usize {
        self.first.open_state(&totals.first) + self.second.open_state(&totals.second)
    }

    fn restored_frontier(&self, totals: &Self::Totals) -> Option<u64> {
        let first = self.first.restored_frontier(&totals.first);
        first.max(self.second.restored_frontier(&totals.second))
    }

    fn take_late(&self, part: &mut Self::Part) -> u64 {
        self.first.take_late(&mut part.0) + self.second.take_late(&mut part.1)
    }
}

impl<TA, TB, RA, RB> BothTotals<TA, TB, RA, RB> {
    /// Moves both jobs' rows of the epoch into `rows`, the first job's
    /// first; the buffers keep their memory.
    fn drain_into(&mut self, rows: &mut Vec<Either<RA, RB>>) {
        rows.extend(self.first_rows.drain(..).map(Either::First));
        rows.extend(self.second_rows.drain(..).map(Either::Second));
    }
}

/// Appends one job's saved totals (or that it saved none) to `out`.
fn put_side(out: &mut Vec<u8>, saved: Option<&[u8]>) {
    match saved {
        Some(bytes) => {
            out.push(SAVED);
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.push(0),
    }
}

/// One job's saved totals from the front of `bytes`, and the rest.
fn take_side(bytes: &[u8]) -> Result<(Option<&[u8]>, &[u8]), String> {
    let truncated = || "the snapshot of two jobs' totals is cut short".to_string();
    let (&flag, rest) = bytes.split_first().ok_or_else(truncated)?;
    match flag {
        0 => Ok((None, rest)),
        SAVED => {
            let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(truncated)?;
            let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| truncated())?;
            if rest.len() < len {
                return Err(truncated());
            }
            let (side, rest) = rest.split_at(len);
            Ok((Some(side), rest))
        }
        other => Err(format!(
            "the snapshot of two jobs' totals has an unknown side marker {other}"
        )),
    }
}
