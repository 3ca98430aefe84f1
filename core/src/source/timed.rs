//! Records with an event time: [`TimedEvent`], and [`TimedGenerator`],
//! the seeded generator whose records each carry an event time up to a
//! `disorder` behind the time they were made, for event-time windows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{Event, Generator, GeneratorConfig, GeneratorPart, Poll, Source, SourceSpec};
use crate::config::ConfigError;

/// A key, a value and an event time: ms since the Unix epoch.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, Clone, Copy, PartialEq, Eq))]
pub struct TimedEvent {
    /// In `0..keys`.
    pub key: u64,
    /// Drawn from the value distribution.
    pub value: u64,
    /// When it happened, ms since the Unix epoch.
    pub event_time_ms: u64,
}

impl crate::log::LogRecord for TimedEvent {
    const SCHEMA: &'static str = "microbatch.timed_event.v1(key u64, value u64, event_time_ms u64)";
}

/// The [`Generator`]'s records, each with an event time: the time it was
/// made (its due time at a rate, else when it was drawn; ms since the Unix
/// epoch, from the wall clock read once when the generator is split) less
/// a uniform draw in `0..=disorder`. So no record is more than `disorder`
/// behind one made before it: a watermark delay of `disorder` makes none
/// late.
///
/// ```
/// use std::time::Duration;
/// use microbatch::job::{self, count, Windows};
/// use microbatch::sink::CollectSink;
/// use microbatch::source::{GeneratorConfig, TimedEvent, TimedGenerator};
/// use microbatch::Engine;
///
/// let records = GeneratorConfig { keys: 10, records: Some(100_000), ..GeneratorConfig::default() };
/// let per_key = job::records::<TimedEvent>()
///     .event_time(|e| e.event_time_ms)
///     .window(Windows::tumbling(Duration::from_millis(100)))
///     .watermark_delay(Duration::from_millis(20))
///     .key_by(|e| e.key)
///     .aggregate(count());
/// let (sink, rows) = CollectSink::new();
/// let engine = Engine::builder(per_key, sink)
///     .workers(2)
///     .source(TimedGenerator::new(records, Duration::from_millis(20)))
///     .start()?;
/// let summary = engine.finish()?;
/// assert_eq!(summary.late_records, 0);
/// let counted: u64 = rows.take().into_iter().map(|(_, (_, _, n))| n).sum();
/// assert_eq!(counted, 100_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TimedGenerator {
    generator: Generator,
    seed: u64,
    disorder_ms: u64,
    start_ms: Option<u64>,
}

impl TimedGenerator {
    /// The generator of `config`, its records up to `disorder` out of
    /// order in event time.
    pub fn new(config: GeneratorConfig, disorder: Duration) -> Self {
        TimedGenerator {
            seed: config.seed,
            disorder_ms: disorder.as_millis() as u64,
            generator: Generator::new(config),
            start_ms: None,
        }
    }

    /// Event times counted from `unix_ms` (ms since the Unix epoch) at the
    /// engine's start, instead of the wall clock when the generator is
    /// split: a run whose event times (at a rate) are the same every time.
    pub fn starting_at(mut self, unix_ms: u64) -> Self {
        self.start_ms = Some(unix_ms);
        self
    }

    /// `workers` parts sharing one stream, as [`Generator::parts`].
    pub fn parts(&self, workers: usize) -> Result<Vec<TimedPart>, ConfigError> {
        let start_ms = self.start_ms.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64)
        });
        Ok(self
            .generator
            .parts(workers)?
            .into_iter()
            .enumerate()
            .map(|(worker, part)| TimedPart {
                part,
                buffer: Vec::new(),
                rng: Xoshiro256PlusPlus::seed_from_u64(
                    self.seed ^ (worker as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
                ),
                start_ms,
                disorder_ms: self.disorder_ms,
            })
            .collect())
    }
}

impl SourceSpec<TimedEvent> for TimedGenerator {
    fn split(self, workers: usize) -> Result<Vec<Box<dyn Source<TimedEvent>>>, ConfigError> {
        Ok(self
            .parts(workers)?
            .into_iter()
            .map(|part| Box::new(part) as Box<dyn Source<TimedEvent>>)
            .collect())
    }
}

/// One worker's part of a [`TimedGenerator`].
#[derive(Debug, Clone)]
pub struct TimedPart {
    part: GeneratorPart,
    /// The generator's records of the current poll, before their times.
    buffer: Vec<Event>,
    /// Draws the disorder.
    rng: Xoshiro256PlusPlus,
    start_ms: u64,
    disorder_ms: u64,
}

impl Source<TimedEvent> for TimedPart {
    fn poll(&mut self, now_micros: u64, out: &mut Vec<TimedEvent>, max: usize) -> Poll {
        self.buffer.clear();
        let room = max.saturating_sub(out.len());
        let poll = self.part.poll(now_micros, &mut self.buffer, room);
        let Poll::Ready { intended_micros } = poll else {
            return poll;
        };
        // One time for the poll's records, and each is due (at a rate)
        // within about a millisecond of the first.
        let made_ms = self.start_ms + intended_micros.unwrap_or(now_micros) / 1000;
        let span = self.disorder_ms + 1;
        let rng = &mut self.rng;
        out.extend(self.buffer.drain(..).map(|event| {
            let behind = ((u128::from(rng.next_u64()) * u128::from(span)) >> 64) as u64;
            TimedEvent {
                key: event.key,
                value: event.value,
                event_time_ms: made_ms.saturating_sub(behind),
            }
        }));
        poll
    }
}
