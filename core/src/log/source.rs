//! A record log as a source: the workers claim its blocks from a shared
//! counter (a faster worker takes more) and read them in place, as fast as
//! they go or replayed at a fixed rate.

use super::format::LogRecord;
use super::reader::LogReader;
use crate::config::ConfigError;
use crate::source::{EpochPlan, Poll, Source, SourceParts, SourceSpec};
use crate::sync::{Arc, AtomicUsize, Ordering};

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
    ) -> Result<Vec<LogPart<R>>, ConfigError> {
        if self.rate == Some(0) {
            return Err(ConfigError::new(
                "rate",
                0,
                "at least 1 record per second, or absent for max",
            ));
        }
        let blocks = self.reader.blocks();
        let reader = &self.reader;
        // The first block of `epoch` under `plan`: the first whose first
        // record `i` has `i / records_per_epoch >= epoch`.
        let first_block_of = |plan: EpochPlan, epoch: u64| {
            reader.first_block_from(epoch.saturating_mul(plan.records_per_epoch))
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
            .map(|_| LogPart {
                reader: Arc::clone(&self.reader),
                next: Arc::clone(&next),
                rate: self.rate,
                base_record,
                current: None,
                plan: plan.map(|plan| PartPlan {
                    records_per_epoch: plan.records_per_epoch,
                    epoch: plan.first_epoch,
                }),
            })
            .collect())
    }
}

fn owned_parts<R: LogRecord>(parts: Vec<LogPart<R>>) -> SourceParts<R> {
    parts
        .into_iter()
        .map(|part| Box::new(part) as Box<dyn Source<R>>)
        .collect()
}

impl<R: LogRecord> LogSource<R> {
    /// The log's identity ([`LogReader::identity`]): another log, or this
    /// one with any segment changed, differs.
    fn log_identity(&self) -> Option<String> {
        Some(format!("record log of {}", self.reader.identity()))
    }
}

impl<R: LogRecord> SourceSpec<R> for LogSource<R> {
    fn split(self, workers: usize) -> Result<SourceParts<R>, ConfigError> {
        self.parts(workers, None).map(owned_parts)
    }

    fn identity(&self) -> Option<String> {
        self.log_identity()
    }

    /// Epoch `e` holds the blocks whose first record's index `i` has
    /// `i / plan.records_per_epoch == e`.
    fn split_planned(
        self,
        workers: usize,
        plan: EpochPlan,
    ) -> Option<Result<SourceParts<R>, ConfigError>> {
        Some(self.parts(workers, Some(plan)).map(owned_parts))
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

/// What a part hands out next.
enum Step {
    /// Records `from..from + count` of `block`; the first was due at
    /// `intended` (with a rate).
    Records {
        block: usize,
        from: u64,
        count: usize,
        intended: Option<u64>,
    },
    /// Nothing now: [`Poll::Idle`], [`Poll::EpochEnd`] or [`Poll::Exhausted`].
    Nothing(Poll),
}

impl<R: LogRecord> LogPart<R> {
    /// The next run of at most `max` records, which the part then counts
    /// as handed out. Hot path: one atomic per block claimed.
    fn step(&mut self, now_micros: u64, max: usize) -> Step {
        let (block, from) = match self.current {
            Some(current) => current,
            None => {
                let claim = self.next.load(Ordering::Relaxed);
                if claim >= self.reader.blocks() {
                    return Step::Nothing(Poll::Exhausted);
                }
                let (_, first) = self.reader.block_records(claim);
                if let Some(plan) = &self.plan {
                    // Blocks are claimed in order, so every block of the
                    // open epoch is claimed once the next is a later one's.
                    if first / plan.records_per_epoch > plan.epoch {
                        return Step::Nothing(Poll::EpochEnd);
                    }
                }
                if self.due_micros(first).is_some_and(|due| due > now_micros) {
                    return Step::Nothing(Poll::Idle);
                }
                // One atomic per block; a lost race just tries again.
                if self
                    .next
                    .compare_exchange(claim, claim + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
                {
                    return Step::Nothing(Poll::Idle);
                }
                (claim, 0)
            }
        };
        let (records, first) = self.reader.block_records(block);
        let intended = self.due_micros(first + from);
        if intended.is_some_and(|due| due > now_micros) {
            self.current = Some((block, from));
            return Step::Nothing(Poll::Idle);
        }
        // With a rate, take only what is due, and only once a
        // millisecond's worth is (or the block's rest): a worker then
        // waits in its backoff between runs instead of spinning on a
        // record at a time. Otherwise up to `max`.
        let left = usize::try_from(records - from).unwrap_or(usize::MAX);
        let due_count = match self.rate {
            Some(rate) => {
                let due_until = u128::from(now_micros) * u128::from(rate) / 1_000_000 + 1;
                let index = first + from - self.base_record.min(first + from);
                let due = usize::try_from(due_until.saturating_sub(u128::from(index)))
                    .unwrap_or(usize::MAX);
                let run = usize::try_from(rate / 1000).unwrap_or(usize::MAX).max(1);
                if due < run.min(left).min(max) {
                    self.current = Some((block, from));
                    return Step::Nothing(Poll::Idle);
                }
                due
            }
            None => usize::MAX,
        };
        let count = max.min(due_count).max(1).min(left);
        let next = from + count as u64;
        self.current = (next < records).then_some((block, next));
        Step::Records {
            block,
            from,
            count,
            intended,
        }
    }

    /// At the seal of a planned part's epoch: the rest of the block it
    /// started, which belongs to that epoch (due or not: the epoch's
    /// content is fixed by the plan, not by time).
    fn owed(&mut self) -> Option<(usize, u64)> {
        let plan = self.plan.as_mut()?;
        plan.epoch += 1;
        self.current.take()
    }
}

impl<R: LogRecord> Source<R> for LogPart<R> {
    fn poll(&mut self, now_micros: u64, out: &mut Vec<R>, max: usize) -> Poll {
        match self.step(now_micros, max) {
            Step::Records {
                block,
                from,
                count,
                intended,
            } => {
                self.reader.read(block, from, count, out);
                Poll::Ready {
                    intended_micros: intended,
                }
            }
            Step::Nothing(poll) => poll,
        }
    }

    fn seal(&mut self, out: &mut Vec<R>) {
        if let Some((block, from)) = self.owed() {
            self.reader.read(block, from, usize::MAX, out);
        }
    }
}

/// A record log's archived records as the engine's records, lent in place
/// from the log's memory map: a job over `R::Archived` folds them without
/// turning them back into `R` and without copying them. See
/// [`LogSource::archived`].
pub struct ArchivedLogSource<R>(LogSource<R>);

impl<R: LogRecord> LogSource<R> {
    /// The log's records in their archived form (`R::Archived`, e.g.
    /// `ArchivedEvent`, whose fields read with `to_native()`), lent to the
    /// job in place: no deserializing, no copy. The archived type must be
    /// `Copy` (`#[rkyv(derive(Clone, Copy))]`) for the engine to keep a
    /// record when it must (a panic policy, the rest of a block at a seal).
    ///
    /// ```
    /// use microbatch::job::{self, count, sum};
    /// use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
    /// use microbatch::sink::CollectSink;
    /// use microbatch::source::{ArchivedEvent, Event};
    /// use microbatch::Engine;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = LogWriter::<Event>::create(dir.path(), LogOptions::default())?;
    /// for i in 0..10_000 {
    ///     writer.append(Event { key: i % 3, value: 2 })?;
    /// }
    /// writer.finish()?;
    ///
    /// let per_key = job::records::<ArchivedEvent>()
    ///     .key_by(|e| e.key.to_native())
    ///     .aggregate((count(), sum(|e: &ArchivedEvent| e.value.to_native())));
    /// let (sink, rows) = CollectSink::new();
    /// let engine = Engine::builder(per_key, sink)
    ///     .source(LogSource::new(LogReader::<Event>::open(dir.path())?, None).archived())
    ///     .start()?;
    /// engine.finish()?;
    /// let total: u64 = rows.take().iter().map(|(_, (_, (_, sum)))| sum).sum();
    /// assert_eq!(total, 20_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn archived(self) -> ArchivedLogSource<R> {
        ArchivedLogSource(self)
    }
}

/// A part lending archived records.
struct ArchivedPart<R>(LogPart<R>);

fn archived_parts<R>(parts: Vec<LogPart<R>>) -> SourceParts<R::Archived>
where
    R: LogRecord,
    R::Archived: Copy + Send + 'static,
{
    parts
        .into_iter()
        .map(|part| Box::new(ArchivedPart(part)) as Box<dyn Source<R::Archived>>)
        .collect()
}

impl<R> SourceSpec<R::Archived> for ArchivedLogSource<R>
where
    R: LogRecord,
    R::Archived: Copy + Send + 'static,
{
    fn split(self, workers: usize) -> Result<SourceParts<R::Archived>, ConfigError> {
        self.0.parts(workers, None).map(archived_parts)
    }

    fn identity(&self) -> Option<String> {
        self.0.log_identity()
    }

    fn split_planned(
        self,
        workers: usize,
        plan: EpochPlan,
    ) -> Option<Result<SourceParts<R::Archived>, ConfigError>> {
        Some(self.0.parts(workers, Some(plan)).map(archived_parts))
    }
}

impl<R> Source<R::Archived> for ArchivedPart<R>
where
    R: LogRecord,
    R::Archived: Copy + Send + 'static,
{
    fn poll(&mut self, now_micros: u64, out: &mut Vec<R::Archived>, max: usize) -> Poll {
        let (poll, records) = self.lend(now_micros, max);
        out.extend_from_slice(records);
        poll
    }

    fn poll_lent<'a>(
        &'a mut self,
        now_micros: u64,
        _: &'a mut Vec<R::Archived>,
        max: usize,
    ) -> (Poll, &'a [R::Archived]) {
        self.lend(now_micros, max)
    }

    fn seal(&mut self, out: &mut Vec<R::Archived>) {
        if let Some((block, from)) = self.0.owed() {
            out.extend_from_slice(&self.0.reader.archived(block)[from as usize..]);
        }
    }
}

impl<R: LogRecord> ArchivedPart<R> {
    /// The next run, in place in the log's map. Hot path.
    fn lend(&mut self, now_micros: u64, max: usize) -> (Poll, &[R::Archived]) {
        match self.0.step(now_micros, max) {
            Step::Records {
                block,
                from,
                count,
                intended,
            } => {
                let from = from as usize;
                let records = &self.0.reader.archived(block)[from..from + count];
                (
                    Poll::Ready {
                        intended_micros: intended,
                    },
                    records,
                )
            }
            Step::Nothing(poll) => (poll, &[]),
        }
    }
}
