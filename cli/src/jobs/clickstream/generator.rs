//! A seeded generator of realistic click streams: Zipf-skewed users,
//! sessions of related pages, exponential dwell times.

use microbatch::source::{SourceParts, SourceSpec};
use microbatch::ConfigError;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::{Deserialize, Serialize};

use super::click::{Action, Click};
use crate::jobs::morsels::{self, Morsels, MORSEL};
/// Event times advance at this pace when the generator runs at full speed.
const NOMINAL_RATE: u64 = 100_000;

/// Settings of the click generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickConfig {
    /// Distinct users; user `u` (from 0) is drawn with probability ∝
    /// 1 / (u + 1)^`user_skew`. Default 1 000 000.
    pub users: u64,
    /// The Zipf exponent of users; 0 draws them uniformly. Default 1.0.
    pub user_skew: f64,
    /// Distinct pages (Zipf 1.0: a few are popular). Default 10 000.
    pub pages: u64,
    /// Mean events of a session (geometric). Default 8.
    pub mean_session: f64,
    /// Mean dwell time on a page, ms (exponential, capped at 10 min).
    /// Default 20 000.
    pub mean_dwell_ms: u64,
    /// Events per second, open loop (each event is due `i / rate` s after
    /// the start); `None`: as fast as the workers go.
    pub rate: Option<u64>,
    /// Events in all; `None`: until shutdown.
    pub events: Option<u64>,
    /// Event time of the first event, ms since the Unix epoch; event `i`
    /// happens `i / rate` s later (`rate` or 100 000/s).
    pub start_ms: u64,
    /// Seed; the stream is the same for any worker count.
    pub seed: u64,
}

impl Default for ClickConfig {
    fn default() -> Self {
        ClickConfig {
            users: 1_000_000,
            user_skew: 1.0,
            pages: 10_000,
            mean_session: 8.0,
            mean_dwell_ms: 20_000,
            rate: None,
            events: None,
            start_ms: 1_764_115_200_000, // 2025-11-26T00:00:00Z
            seed: 7,
        }
    }
}

impl ClickConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.users == 0 {
            return Err(ConfigError::new("users", 0, "at least 1"));
        }
        if self.pages == 0 {
            return Err(ConfigError::new("pages", 0, "at least 1"));
        }
        if !(self.user_skew >= 0.0 && self.user_skew.is_finite()) {
            return Err(ConfigError::new(
                "user_skew",
                self.user_skew,
                "a Zipf exponent of at least 0 (0: uniform users)",
            ));
        }
        if !(self.mean_session >= 1.0 && self.mean_session.is_finite()) {
            return Err(ConfigError::new(
                "mean_session",
                self.mean_session,
                "at least 1 event",
            ));
        }
        if self.rate == Some(0) {
            return Err(ConfigError::new(
                "rate",
                0,
                "at least 1 event per second, or absent for max",
            ));
        }
        Ok(())
    }
}

/// The click generator, split across the workers like
/// [`Generator`](microbatch::source::Generator): morsel `i` of 4096 events
/// is drawn from its own random stream seeded by (seed, `i`), so the
/// stream is the same for any worker count. Sessions are cut at morsel
/// ends.
#[derive(Debug, Clone)]
pub struct ClickGenerator {
    config: ClickConfig,
}

/// What one part draws with.
#[derive(Debug)]
struct Draw {
    config: ClickConfig,
    users: Zipf<f64>,
    pages: Zipf<f64>,
}

impl ClickGenerator {
    /// A generator with these settings.
    pub fn new(config: ClickConfig) -> Self {
        ClickGenerator { config }
    }

    /// Every event, drawn on this thread (for tests and baselines).
    pub fn events(&self) -> Result<Vec<Click>, ConfigError> {
        let total = self.config.events.ok_or_else(|| {
            ConfigError::new("events", "none", "a number, to draw them all at once")
        })?;
        let mut out = Vec::with_capacity(total as usize);
        morsels::draw_all(&self.draw()?, |morsel| out.extend_from_slice(morsel));
        Ok(out)
    }

    fn draw(&self) -> Result<Draw, ConfigError> {
        let config = self.config.clone();
        config.validate()?;
        let users = Zipf::new(config.users as f64, config.user_skew)
            .map_err(|e| ConfigError::new("users", config.users, format!("a Zipf table ({e})")))?;
        let pages = Zipf::new(config.pages as f64, 1.0)
            .map_err(|e| ConfigError::new("pages", config.pages, format!("a Zipf table ({e})")))?;
        Ok(Draw {
            config,
            users,
            pages,
        })
    }
}

impl Morsels for Draw {
    type Record = Click;

    fn total(&self) -> u64 {
        self.config.events.unwrap_or(u64::MAX)
    }

    fn rate(&self) -> Option<u64> {
        self.config.rate
    }

    fn draw(&self, index: u64, out: &mut Vec<Click>) {
        let first = index * MORSEL;
        let end = (first + MORSEL).min(self.total());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(
            self.config.seed ^ (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let pace = self.config.rate.unwrap_or(NOMINAL_RATE);
        let unit =
            |rng: &mut Xoshiro256PlusPlus| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let end_session = 1.0 / self.config.mean_session;
        let mut position = first;
        while position < end {
            let user = self.users.sample(&mut rng) as u64 - 1;
            let mut page = self.pages.sample(&mut rng) as u64 - 1;
            let mut step = 0;
            loop {
                let dwell = -(1.0 - unit(&mut rng)).ln() * self.config.mean_dwell_ms as f64;
                let last = position + 1 == end || unit(&mut rng) < end_session;
                let action = match (step, last) {
                    (0, _) => Action::View,
                    (_, true) if unit(&mut rng) < 0.3 => Action::Purchase,
                    _ if unit(&mut rng) < 0.1 => Action::AddToCart,
                    _ => Action::Click,
                };
                out.push(Click {
                    user,
                    page,
                    event_time_ms: self.config.start_ms
                        + (u128::from(position) * 1000 / u128::from(pace)) as u64,
                    dwell_ms: dwell.min(600_000.0) as u32,
                    action,
                });
                position += 1;
                step += 1;
                if last {
                    break;
                }
                // Most next pages are related to this one; some are popular.
                page = if unit(&mut rng) < 0.7 {
                    (page + 1 + rng.next_u64() % 10) % self.config.pages
                } else {
                    self.pages.sample(&mut rng) as u64 - 1
                };
            }
        }
    }
}

impl SourceSpec<Click> for ClickGenerator {
    fn split(self, workers: usize) -> Result<SourceParts<Click>, ConfigError> {
        Ok(morsels::split(self.draw()?, workers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(events: u64) -> ClickConfig {
        ClickConfig {
            users: 1000,
            events: Some(events),
            ..ClickConfig::default()
        }
    }

    #[test]
    fn the_stream_is_the_same_for_any_worker_count() {
        let expected = ClickGenerator::new(config(20_000)).events().unwrap();
        assert_eq!(expected.len(), 20_000);
        for workers in [1, 3] {
            let got =
                morsels::poll_all(ClickGenerator::new(config(20_000)).split(workers).unwrap());
            let key = |c: &Click| (c.event_time_ms, c.user, c.page, c.dwell_ms);
            let mut got_sorted = got.clone();
            got_sorted.sort_by_key(key);
            let mut expected_sorted = expected.clone();
            expected_sorted.sort_by_key(key);
            assert_eq!(got_sorted, expected_sorted, "{workers} workers");
        }
    }

    #[test]
    fn users_are_skewed_sessions_start_with_a_view_and_times_advance() {
        let events = ClickGenerator::new(config(50_000)).events().unwrap();
        let top = events.iter().filter(|c| c.user == 0).count();
        let middle = events.iter().filter(|c| c.user == 500).count();
        assert!(
            top > 20 * middle.max(1),
            "user 0: {top}, user 500: {middle}"
        );
        assert_eq!(events[0].action, Action::View);
        assert!(events
            .windows(2)
            .all(|w| w[0].event_time_ms <= w[1].event_time_ms));
        assert!(events.iter().any(|c| c.action == Action::Purchase));
        let mean_dwell =
            events.iter().map(|c| u64::from(c.dwell_ms)).sum::<u64>() / events.len() as u64;
        assert!((15_000..25_000).contains(&mean_dwell), "{mean_dwell}");
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = ClickConfig {
            users: 0,
            ..ClickConfig::default()
        };
        assert_eq!(
            ClickGenerator::new(bad).split(1).err().unwrap().setting,
            "users"
        );
    }
}
