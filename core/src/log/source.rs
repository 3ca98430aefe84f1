//! A record log as a source: the workers claim its blocks from a shared
//! counter (a faster worker takes more) and read them in place, as fast as
//! they go or replayed at a fixed rate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::format::LogRecord;
use super::reader::LogReader;
use crate::source::{EpochPlan, Poll, Source, SourceParts, SourceSpec};
use crate::ConfigError;

/// Reads a [`LogReader`]'s records into the engine once.
///
/// With a `rate`, record `i` of the log is due `i / rate` seconds after the
/// engine started (its intended send time, from which its latency counts),
/// so a recorded stream can be replayed at a chosen pace.
///
/// ```
/// use microbatch::job::{self, count};
/// use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
/// use microbatch::sink::DiscardSink;
/// use microbatch::source::Event;
/// use microbatch::Engine;
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = LogWriter::<Event>::create(dir.path(), LogOptions::default())?;
/// for i in 0..50_000 {
///     writer.append(Event { key: i % 7, value: 1 })?;
/// }
/// writer.finish()?;
///
/// let per_key = job::records::<Event>().key_by(|e| e.key).aggregate(count());
/// let engine = Engine::builder(per_key, DiscardSink)
///     .workers(2)
///     .source(LogSource::new(LogReader::open(dir.path())?, None))
///     .start()?;
/// assert_eq!(engine.finish()?.records_in_results, 50_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LogSource<R> {
    reader: Arc<LogReader<R>>,
    rate: Option<u64>,
}

impl<R: LogRecord> LogSource<R> {
    /// The whole of `reader`'s log, at `rate` records/s or as fast as the
    /// workers go (`None`).
    pub fn new(reader: LogReader<R>, rate: Option<u64>) -> Self {
        LogSource {
            reader: Arc::new(reader),
            rate,
        }
    }

    /// The parts, sharing one block counter; `plan`, if any, cuts the
    /// blocks into epochs by position.
    fn parts(
        self,
        workers: usize,
        plan: Option<EpochPlan>,
    ) -> Result<Vec<Box<dyn Source<R>>>, ConfigError> {
        if self.rate == Some(0) {
            return Err(ConfigError::new(
                "rate",
                0,
                "at least 1 record per second, or absent for max",
            ));
        }
        let blocks = self.reader.blocks();
        let reader = &self.reader;
        // The first block of `epoch` under `plan`.
        let first_block_of = |plan: EpochPlan, epoch: u64| {
            partition_point(blocks, |block| {
                reader.block_records(block).1 / plan.records_per_epoch < epoch
            })
        };
        // Blocks before the plan's first epoch were committed before a
        // restart. Replayed at a rate, the first block with output is due
        // at once, and so is every block before it.
        let (first_block, paced_block) = match plan {
            None => (0, 0),
            Some(plan) => (
                first_block_of(plan, plan.first_epoch),
                first_block_of(plan, plan.paced_from),
            ),
        };
        let base_record = if paced_block < blocks {
            reader.block_records(paced_block).1
        } else {
            reader.records()
        };
        let next = Arc::new(AtomicUsize::new(first_block));
        Ok((0..workers)
            .map(|_| {
                Box::new(LogPart {
                    reader: Arc::clone(&self.reader),
                    next: Arc::clone(&next),
                    rate: self.rate,
                    base_record,
                    current: None,
                    plan: plan.map(|plan| PartPlan {
                        records_per_epoch: plan.records_per_epoch,
                        epoch: plan.first_epoch,
                    }),
                }) as Box<dyn Source<R>>
            })
            .collect())
    }
}

/// The first of `0..len` for which `before` is false (`before` holds on a
/// prefix).
fn partition_point(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        if before(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

impl<R: LogRecord> SourceSpec<R> for LogSource<R> {
    fn split(self, workers: usize) -> Result<Vec<Box<dyn Source<R>>>, ConfigError> {
        self.parts(workers, None)
    }

    /// Epoch `e` holds the blocks whose first record's index `i` has
    /// `i / plan.records_per_epoch == e`.
    fn split_planned(
        self,
        workers: usize,
        plan: EpochPlan,
    ) -> Option<Result<SourceParts<R>, ConfigError>> {
        Some(self.parts(workers, Some(plan)))
    }
}

/// A planned part's view of the epochs.
struct PartPlan {
    records_per_epoch: u64,
    /// Its worker's open epoch.
    epoch: u64,
}

/// One worker's part: the block it is reading and how far it got.
struct LogPart<R> {
    reader: Arc<LogReader<R>>,
    next: Arc<AtomicUsize>,
    rate: Option<u64>,
    /// The index of the run's first paced record: with a rate, record `i`
    /// is due `(i - base_record) / rate` seconds after the start (at once
    /// for those before it).
    base_record: u64,
    current: Option<(usize, u64)>,
    plan: Option<PartPlan>,
}

impl<R> LogPart<R> {
    fn due_micros(&self, record: u64) -> Option<u64> {
        let record = record.saturating_sub(self.base_record);
        self.rate.map(|rate| {
            u64::try_from(u128::from(record) * 1_000_000 / u128::from(rate)).unwrap_or(u64::MAX)
        })
    }
}

impl<R: LogRecord> Source<R> for LogPart<R> {
    fn poll(&mut self, now_micros: u64, out: &mut Vec<R>, max: usize) -> Poll {
        let (block, from) = match self.current {
            Some(current) => current,
            None => {
                let claim = self.next.load(Ordering::Relaxed);
                if claim >= self.reader.blocks() {
                    return Poll::Exhausted;
                }
                let (_, first) = self.reader.block_records(claim);
                if let Some(plan) = &self.plan {
                    // Blocks are claimed in order, so every block of the
                    // open epoch is claimed once the next is a later one's.
                    if first / plan.records_per_epoch > plan.epoch {
                        return Poll::EpochEnd;
                    }
                }
                if self.due_micros(first).is_some_and(|due| due > now_micros) {
                    return Poll::Idle;
                }
                // One atomic per block; a lost race just tries again.
                if self
                    .next
                    .compare_exchange(claim, claim + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
                {
                    return Poll::Idle;
                }
                (claim, 0)
            }
        };
        let (records, first) = self.reader.block_records(block);
        let intended = self.due_micros(first + from);
        if intended.is_some_and(|due| due > now_micros) {
            self.current = Some((block, from));
            return Poll::Idle;
        }
        // With a rate, take only what is due; otherwise up to `max`.
        let due_count = match self.rate {
            Some(rate) => {
                let due_until = u128::from(now_micros) * u128::from(rate) / 1_000_000 + 1;
                let index = first + from - self.base_record.min(first + from);
                usize::try_from(due_until.saturating_sub(u128::from(index))).unwrap_or(usize::MAX)
            }
            None => usize::MAX,
        };
        let read = self
            .reader
            .read(block, from, max.min(due_count).max(1), out);
        let next = from + read as u64;
        self.current = (next < records).then_some((block, next));
        Poll::Ready {
            intended_micros: intended,
        }
    }

    /// A planned part finishes its block in the epoch that claimed it (due
    /// or not: the epoch's content is fixed by the plan, not by time).
    fn seal(&mut self, out: &mut Vec<R>) {
        let Some(plan) = &mut self.plan else {
            return;
        };
        plan.epoch += 1;
        if let Some((block, from)) = self.current.take() {
            self.reader.read(block, from, usize::MAX, out);
        }
    }
}
