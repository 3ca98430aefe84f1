//! Sources that run inside the worker threads (no thread of their own):
//! a deterministic seeded [`Generator`] (in `generator`) and its records
//! with event times ([`TimedGenerator`], in `timed`), [`IterSource`]
//! over any `IntoIterator`, and the record log's
//! [`LogSource`](crate::log::LogSource). A [`SourceSpec`] splits itself
//! into one part per worker.

mod generator;
mod positions;
mod timed;
mod zipf;

pub use generator::{
    ArchivedEvent, Event, Generator, GeneratorConfig, GeneratorPart, KeyDistribution,
    ValueDistribution, MAX_ZIPF_KEYS,
};
pub use positions::{Position, SealedPositions};
pub use timed::{ArchivedTimedEvent, TimedEvent, TimedGenerator, TimedPart};

use crate::config::ConfigError;
use crate::sync::cold::{lock, Mutex};
use crate::sync::Arc;

/// What one poll of a source produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Records were appended; `intended_micros` is when the first of them
    /// was due (open-loop sources), or `None` for "now".
    Ready {
        /// Intended send time of the first record, µs since engine start.
        intended_micros: Option<u64>,
    },
    /// Nothing is due yet.
    Idle,
    /// A planned source (see [`EpochPlan`]) has handed out every record of
    /// the caller's open epoch: the epoch may be sealed once the records
    /// already taken are in.
    EpochEnd,
    /// The source will produce nothing more.
    Exhausted,
    /// The source cannot go on: the engine fails with what
    /// [`Source::error`] says, and the records of this poll are dropped
    /// (the epoch they would join is never committed).
    Failed,
}

impl Poll {
    /// Records were appended, the first of them due at `intended_micros`
    /// (µs since the engine started): what an open-loop source returns.
    ///
    /// ```
    /// use microbatch::source::Poll;
    /// assert_eq!(Poll::ready_at(5), Poll::Ready { intended_micros: Some(5) });
    /// ```
    pub fn ready_at(intended_micros: u64) -> Poll {
        Poll::Ready {
            intended_micros: Some(intended_micros),
        }
    }
}

/// One worker's part of a source. Polled by its worker between ring drains.
pub trait Source<R>: Send + 'static {
    /// Appends at most `max` records to `out` (empty on entry). `now_micros`
    /// is the time since the engine started. Hot path.
    fn poll(&mut self, now_micros: u64, out: &mut Vec<R>, max: usize) -> Poll;

    /// Like [`poll`](Source::poll), but may hand the records out in place
    /// (a slice of a memory-mapped log) rather than copy them into
    /// `buffer`; the records are those of the returned slice. The default
    /// polls into `buffer` (cleared first). Hot path: the worker calls
    /// this one.
    fn poll_lent<'a>(
        &'a mut self,
        now_micros: u64,
        buffer: &'a mut Vec<R>,
        max: usize,
    ) -> (Poll, &'a [R]) {
        buffer.clear();
        let poll = self.poll(now_micros, buffer, max);
        (poll, buffer.as_slice())
    }

    /// The worker seals its open epoch: append to `out` the records this
    /// part still owes that epoch (a planned source finishes the block it
    /// started, so that no block spans two epochs). Called once per epoch,
    /// in epoch order. The default owes nothing.
    fn seal(&mut self, out: &mut Vec<R>) {
        let _ = out;
    }

    /// Why the last poll answered [`Poll::Failed`]. The default: no reason
    /// known.
    fn error(&mut self) -> String {
        "the source failed".into()
    }

    /// The worker sealed `epoch`: every record this part handed out so far
    /// is in it or in an earlier epoch. A source whose positions are
    /// committed with the results (a Kafka partition's next offset, see
    /// [`SealedPositions`]) records them here. Called once per sealed
    /// epoch, in order, also after the part was exhausted or the intake
    /// closed, through the worker's final epoch. Once per epoch, off the
    /// hot path. The default does nothing.
    fn sealed(&mut self, epoch: u64) {
        let _ = epoch;
    }
}

/// How a checkpointed run cuts a replayable source into epochs: by
/// position, so that a replay after a crash rebuilds every epoch exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochPlan {
    /// Epoch `e` holds the source's units (a log's blocks) whose first
    /// record's index `i` has `i / records_per_epoch == e`: about this
    /// many records, and never a unit split.
    pub records_per_epoch: u64,
    /// The first epoch of this run: units of earlier epochs are skipped
    /// (they were committed before a restart).
    pub first_epoch: u64,
    /// The first epoch with output: a source replayed at a fixed rate
    /// hands out the epochs before it (replayed to rebuild running totals)
    /// at once, and paces from here on.
    pub paced_from: u64,
}

/// One part per worker, as [`SourceSpec`] splits a source.
pub type SourceParts<R> = Vec<Box<dyn Source<R>>>;

/// A source description that splits into one [`Source`] per worker.
pub trait SourceSpec<R> {
    /// The part of each of `workers` workers.
    fn split(self, workers: usize) -> Result<Vec<Box<dyn Source<R>>>, ConfigError>;

    /// What identifies this source's records across runs (a record log:
    /// its schema and its first block's checksum), so that a checkpoint
    /// refuses to resume over another source. `None` (the default): not
    /// checked.
    fn identity(&self) -> Option<String> {
        None
    }

    /// Parts that follow `plan`: each hands out records of its worker's
    /// open epoch only, answers [`Poll::EpochEnd`] once that epoch's
    /// records are all handed out, and finishes its unit at
    /// [`Source::seal`]. `None`: the source cannot be replayed, so it
    /// cannot run under a checkpoint (the default).
    fn split_planned(
        self,
        workers: usize,
        plan: EpochPlan,
    ) -> Option<Result<SourceParts<R>, ConfigError>>
    where
        Self: Sized,
    {
        let _ = (workers, plan);
        None
    }
}

/// Records from any iterator, shared by the workers: each takes the next
/// run of up to 4096 records under a lock (one lock per run, not per
/// record). Which worker gets which record is not deterministic.
pub struct IterSource<I> {
    iter: I,
}

impl<I> IterSource<I> {
    /// A source over `iter`.
    pub fn new(iter: impl IntoIterator<IntoIter = I>) -> Self {
        IterSource {
            iter: iter.into_iter(),
        }
    }
}

impl<I> SourceSpec<I::Item> for IterSource<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    fn split(self, workers: usize) -> Result<Vec<Box<dyn Source<I::Item>>>, ConfigError> {
        let shared = Arc::new(Mutex::new(Some(self.iter)));
        Ok((0..workers)
            .map(|_| Box::new(SharedIter(Arc::clone(&shared))) as Box<dyn Source<I::Item>>)
            .collect())
    }
}

struct SharedIter<I>(Arc<Mutex<Option<I>>>);

impl<I> Source<I::Item> for SharedIter<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    fn poll(&mut self, _: u64, out: &mut Vec<I::Item>, max: usize) -> Poll {
        let mut guard = lock(&self.0);
        let Some(iter) = guard.as_mut() else {
            return Poll::Exhausted;
        };
        out.extend(iter.by_ref().take(max));
        if out.len() < max {
            // Fused from here on, even if the iterator is not.
            *guard = None;
        }
        if out.is_empty() {
            Poll::Exhausted
        } else {
            Poll::Ready {
                intended_micros: None,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn iter_source_hands_out_everything_once() {
        let mut parts = IterSource::new(0..10_000u32).split(2).unwrap();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        let mut exhausted = [false; 2];
        while !exhausted.iter().all(|&e| e) {
            for (w, part) in parts.iter_mut().enumerate() {
                match part.poll(0, &mut out, 333) {
                    Poll::Exhausted => exhausted[w] = true,
                    _ => seen.append(&mut out),
                }
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
    }
}
