//! The Nexmark generator in the workers: the `nexmark` crate's
//! `EventGenerator`, cut into morsels of 4096 events that the workers
//! claim in turn (`jobs::morsels`). Event `i` is a function of `i` alone
//! (the crate seeds each event by its number), so the stream is the same
//! for any worker count, and the same as `nexmark generate` writes.
//!
//! The crate builds every event with its text (names, channel, URL,
//! `extra`): a `String` or more per event, allocated and dropped as the
//! event is copied into a [`NexEvent`]. That is the generator's cost, not
//! the engine's: measure the queries from a log.

use microbatch::source::{SourceParts, SourceSpec};
use microbatch::ConfigError;
use nexmark::config::NexmarkConfig;
use nexmark::EventGenerator;

use super::event::NexEvent;
use crate::jobs::morsels::{self, Morsels, MORSEL};

/// Event time advances as if this many events came per second, when no
/// rate is set: the Flink Nexmark suite's 10 M/s, so 10 s of event time is
/// 100 M events.
pub const NOMINAL_RATE: u64 = 10_000_000;

/// Settings of the Nexmark generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexmarkSettings {
    /// Events per second of event time, and, if `paced`, of wall time.
    pub rate: u64,
    /// Whether the workers hand out each event when it is due (open
    /// loop), or as fast as they go.
    pub paced: bool,
    /// Events in all; `None`: until shutdown.
    pub events: Option<u64>,
    /// The first event's time, ms since the Unix epoch.
    pub start_ms: u64,
}

impl Default for NexmarkSettings {
    fn default() -> Self {
        NexmarkSettings {
            rate: NOMINAL_RATE,
            paced: false,
            events: None,
            start_ms: 1_764_115_200_000, // 2025-11-26T00:00:00Z
        }
    }
}

/// The Nexmark generator, as a source split over the workers.
#[derive(Debug, Clone)]
pub struct NexmarkGenerator {
    settings: NexmarkSettings,
}

/// What the parts draw with.
struct Draw {
    settings: NexmarkSettings,
    generator: EventGenerator,
}

impl NexmarkGenerator {
    /// A generator with these settings.
    pub fn new(settings: NexmarkSettings) -> Self {
        NexmarkGenerator { settings }
    }

    /// Every event, in order, to `each` a morsel at a time (for writing a
    /// log and for tests); the events must be bounded.
    pub fn for_each(&self, each: impl FnMut(&[NexEvent])) -> Result<(), ConfigError> {
        if self.settings.events.is_none() {
            return Err(ConfigError::new(
                "events",
                "none",
                "a number, to draw them all at once",
            ));
        }
        morsels::draw_all(&self.draw()?, each);
        Ok(())
    }

    fn draw(&self) -> Result<Draw, ConfigError> {
        let settings = self.settings.clone();
        if settings.rate == 0 {
            return Err(ConfigError::new("rate", 0, "at least 1 event per second"));
        }
        let rate = usize::try_from(settings.rate)
            .map_err(|_| ConfigError::new("rate", settings.rate, "at most usize::MAX"))?;
        let config = NexmarkConfig {
            first_rate: rate,
            next_rate: rate,
            base_time: settings.start_ms,
            ..NexmarkConfig::default()
        };
        Ok(Draw {
            settings,
            generator: EventGenerator::new(config),
        })
    }
}

impl Morsels for Draw {
    type Record = NexEvent;

    fn total(&self) -> u64 {
        self.settings.events.unwrap_or(u64::MAX)
    }

    fn rate(&self) -> Option<u64> {
        self.settings.paced.then_some(self.settings.rate)
    }

    fn draw(&self, index: u64, out: &mut Vec<NexEvent>) {
        let first = index * MORSEL;
        let end = (first + MORSEL).min(self.total());
        // Cloning the generator copies its tables (a few dozen strings):
        // once per morsel.
        let events = self.generator.clone().with_offset(first);
        out.extend(
            events
                .take((end - first) as usize)
                .map(|e| NexEvent::from(&e)),
        );
    }
}

impl SourceSpec<NexEvent> for NexmarkGenerator {
    fn split(self, workers: usize) -> Result<SourceParts<NexEvent>, ConfigError> {
        Ok(morsels::split(self.draw()?, workers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(events: u64) -> NexmarkSettings {
        NexmarkSettings {
            events: Some(events),
            ..NexmarkSettings::default()
        }
    }

    #[test]
    fn the_stream_is_nexmarks_for_any_worker_count() {
        let mut expected = Vec::new();
        NexmarkGenerator::new(settings(10_000))
            .for_each(|events| expected.extend_from_slice(events))
            .unwrap();
        let config = NexmarkConfig {
            first_rate: NOMINAL_RATE as usize,
            next_rate: NOMINAL_RATE as usize,
            base_time: NexmarkSettings::default().start_ms,
            ..NexmarkConfig::default()
        };
        let straight: Vec<NexEvent> = EventGenerator::new(config)
            .take(10_000)
            .map(|e| NexEvent::from(&e))
            .collect();
        assert_eq!(expected, straight);
        let bids = expected.iter().filter(|e| e.bid().is_some()).count();
        assert_eq!(bids, 10_000 * 46 / 50, "46 bids in every 50 events");
        for workers in [1, 3] {
            let mut got = morsels::poll_all(
                NexmarkGenerator::new(settings(10_000))
                    .split(workers)
                    .unwrap(),
            );
            let key = |e: &NexEvent| (e.date_time(), format!("{e:?}"));
            got.sort_by_key(key);
            let mut sorted = expected.clone();
            sorted.sort_by_key(key);
            assert_eq!(got, sorted, "{workers} workers");
        }
    }

    #[test]
    fn a_zero_rate_is_named() {
        let bad = NexmarkSettings {
            rate: 0,
            ..settings(1)
        };
        let error = NexmarkGenerator::new(bad).split(1).err().unwrap();
        assert_eq!(error.setting, "rate");
    }
}
