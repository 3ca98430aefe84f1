//! Sources that run inside the worker threads (no thread of their own):
//! a deterministic seeded [`Generator`] and [`IterSource`] over any
//! `IntoIterator`. A [`SourceSpec`] splits itself into one part per worker.

use std::sync::{Arc, Mutex, PoisonError};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rand_distr::weighted::WeightedAliasIndex;
use rand_distr::Distribution;
use serde::{Deserialize, Serialize};

use crate::ConfigError;

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
    /// The source will produce nothing more.
    Exhausted,
}

/// One worker's part of a source. Polled by its worker between ring drains.
pub trait Source<R>: Send + 'static {
    /// Appends at most `max` records to `out` (empty on entry). `now_micros`
    /// is the time since the engine started. Hot path.
    fn poll(&mut self, now_micros: u64, out: &mut Vec<R>, max: usize) -> Poll;
}

/// A source description that splits into one [`Source`] per worker.
pub trait SourceSpec<R> {
    /// The part of each of `workers` workers.
    fn split(self, workers: usize) -> Result<Vec<Box<dyn Source<R>>>, ConfigError>;
}

/// The generator's record: a key and a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Event {
    /// In `0..keys`.
    pub key: u64,
    /// Drawn from the value distribution.
    pub value: u64,
}

/// How the generator draws keys from `0..keys`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyDistribution {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// Key `k` with probability ∝ 1 / (k + 1)^exponent (`exponent` > 0);
    /// key 0 is the hottest.
    Zipf(f64),
}

/// How the generator draws values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ValueDistribution {
    /// Always this value.
    Constant(u64),
    /// Uniform in `min..=max`.
    Uniform {
        /// Least value.
        min: u64,
        /// Greatest value.
        max: u64,
    },
}

impl Default for ValueDistribution {
    fn default() -> Self {
        ValueDistribution::Uniform { min: 0, max: 1000 }
    }
}

/// The most keys a Zipf generator draws from: its alias table takes 12
/// bytes a key.
pub const MAX_ZIPF_KEYS: u64 = 1 << 26;

/// Settings of the seeded generator; a profile's `[workload]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Distinct keys. Default: 100 000.
    pub keys: u64,
    /// Key distribution. Default: uniform.
    pub distribution: KeyDistribution,
    /// Value distribution. Default: uniform in 0..=1000.
    pub values: ValueDistribution,
    /// Records per second over all workers, open loop (each record has an
    /// intended send time; latency counts from it). `None`: as fast as the
    /// workers go.
    pub rate: Option<u64>,
    /// Total records over all workers; `None`: until shutdown.
    pub records: Option<u64>,
    /// Seed; worker `w` uses a stream derived from it and `w`.
    pub seed: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            keys: 100_000,
            distribution: KeyDistribution::Uniform,
            values: ValueDistribution::default(),
            rate: None,
            records: None,
            seed: 42,
        }
    }
}

impl GeneratorConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.keys == 0 {
            return Err(ConfigError::new("keys", 0, "at least 1"));
        }
        if let KeyDistribution::Zipf(exponent) = self.distribution {
            if !(exponent > 0.0 && exponent.is_finite()) {
                return Err(ConfigError::new(
                    "distribution",
                    exponent,
                    "a Zipf exponent above 0",
                ));
            }
            if self.keys > MAX_ZIPF_KEYS {
                return Err(ConfigError::new(
                    "keys",
                    self.keys,
                    format!("at most {MAX_ZIPF_KEYS} with a Zipf distribution"),
                ));
            }
        }
        if let ValueDistribution::Uniform { min, max } = self.values {
            if min > max {
                return Err(ConfigError::new("values", (min, max), "min <= max"));
            }
        }
        if self.rate == Some(0) {
            return Err(ConfigError::new(
                "rate",
                0,
                "at least 1 record per second, or absent for max",
            ));
        }
        Ok(())
    }
}

/// A deterministic generator of [`Event`]s: for a given seed and worker
/// count, every run produces the same records in each worker.
#[derive(Debug, Clone)]
pub struct Generator {
    config: GeneratorConfig,
}

impl Generator {
    /// A generator with these settings.
    pub fn new(config: GeneratorConfig) -> Self {
        Generator { config }
    }

    /// The part of worker `worker` of `workers`, usable on its own (the
    /// engine's baselines generate the same records with it).
    pub fn part(&self, worker: usize, workers: usize) -> Result<GeneratorPart, ConfigError> {
        self.config.validate()?;
        let zipf = match self.config.distribution {
            KeyDistribution::Uniform => None,
            KeyDistribution::Zipf(exponent) => {
                Some(Arc::new(zipf_table(self.config.keys, exponent)?))
            }
        };
        Ok(self.part_with(worker, workers, zipf))
    }

    fn part_with(
        &self,
        worker: usize,
        workers: usize,
        zipf: Option<Arc<WeightedAliasIndex<f64>>>,
    ) -> GeneratorPart {
        let config = &self.config;
        let share = |total: u64| {
            total / workers as u64 + u64::from((worker as u64) < total % workers as u64)
        };
        let seed = config.seed ^ (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        GeneratorPart {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            keys: config.keys,
            zipf,
            values: config.values,
            micros_per_record: config.rate.map(|rate| workers as f64 * 1e6 / rate as f64),
            remaining: config.records.map(share).unwrap_or(u64::MAX),
            produced: 0,
            start_micros: None,
        }
    }
}

fn zipf_table(keys: u64, exponent: f64) -> Result<WeightedAliasIndex<f64>, ConfigError> {
    let weights = (1..=keys)
        .map(|rank| (rank as f64).powf(-exponent))
        .collect();
    WeightedAliasIndex::new(weights).map_err(|e| {
        ConfigError::new(
            "distribution",
            exponent,
            format!("a usable Zipf table ({e})"),
        )
    })
}

impl SourceSpec<Event> for Generator {
    fn split(self, workers: usize) -> Result<Vec<Box<dyn Source<Event>>>, ConfigError> {
        let first = self.part(0, workers)?;
        let zipf = first.zipf.clone();
        let mut parts: Vec<Box<dyn Source<Event>>> = vec![Box::new(first)];
        for worker in 1..workers {
            parts.push(Box::new(self.part_with(worker, workers, zipf.clone())));
        }
        Ok(parts)
    }
}

/// One worker's generator.
#[derive(Debug, Clone)]
pub struct GeneratorPart {
    rng: Xoshiro256PlusPlus,
    keys: u64,
    zipf: Option<Arc<WeightedAliasIndex<f64>>>,
    values: ValueDistribution,
    /// `None`: no rate limit.
    micros_per_record: Option<f64>,
    remaining: u64,
    produced: u64,
    /// When the first poll came: the open-loop schedule starts there.
    start_micros: Option<u64>,
}

/// A uniform draw from `0..bound` by multiply-shift (Lemire, without the
/// rejection step: the bias is below bound / 2^64).
#[inline(always)]
fn below(rng: &mut Xoshiro256PlusPlus, bound: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(bound)) >> 64) as u64
}

impl GeneratorPart {
    /// The next event. Hot path.
    #[inline]
    pub fn next_event(&mut self) -> Event {
        let key = match &self.zipf {
            None => below(&mut self.rng, self.keys),
            Some(table) => table.sample(&mut self.rng) as u64,
        };
        let value = match self.values {
            ValueDistribution::Constant(value) => value,
            ValueDistribution::Uniform { min, max } => {
                min + below(&mut self.rng, (max - min).saturating_add(1))
            }
        };
        Event { key, value }
    }
}

impl Source<Event> for GeneratorPart {
    fn poll(&mut self, now_micros: u64, out: &mut Vec<Event>, max: usize) -> Poll {
        if self.remaining == 0 {
            return Poll::Exhausted;
        }
        let start = *self.start_micros.get_or_insert(now_micros);
        let (count, intended_micros) = match self.micros_per_record {
            None => (max as u64, None),
            Some(period) => {
                let due = ((now_micros - start) as f64 / period) as u64 + 1;
                let intended = start + (self.produced as f64 * period) as u64;
                (
                    due.saturating_sub(self.produced).min(max as u64),
                    Some(intended),
                )
            }
        };
        let count = count.min(self.remaining);
        if count == 0 {
            return Poll::Idle;
        }
        out.extend((0..count).map(|_| self.next_event()));
        self.produced += count;
        self.remaining -= count;
        Poll::Ready { intended_micros }
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
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
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

    fn drain(part: &mut GeneratorPart) -> Vec<Event> {
        let mut all = Vec::new();
        let mut out = Vec::new();
        while let Poll::Ready { .. } = part.poll(0, &mut out, 7) {
            all.append(&mut out);
        }
        all
    }

    #[test]
    fn generator_is_deterministic_and_split_exactly() {
        let config = GeneratorConfig {
            records: Some(101),
            keys: 10,
            ..GeneratorConfig::default()
        };
        let generator = Generator::new(config);
        let a: Vec<_> = (0..3)
            .map(|w| drain(&mut generator.part(w, 3).unwrap()))
            .collect();
        let b: Vec<_> = (0..3)
            .map(|w| drain(&mut generator.part(w, 3).unwrap()))
            .collect();
        assert_eq!(a, b);
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), [34, 34, 33]);
        assert!(a.concat().iter().all(|e| e.key < 10 && e.value <= 1000));
    }

    #[test]
    fn zipf_key_zero_is_hottest() {
        let config = GeneratorConfig {
            records: Some(20_000),
            keys: 100,
            distribution: KeyDistribution::Zipf(1.2),
            ..GeneratorConfig::default()
        };
        let events = drain(&mut Generator::new(config).part(0, 1).unwrap());
        let zeros = events.iter().filter(|e| e.key == 0).count();
        let fifties = events.iter().filter(|e| e.key == 50).count();
        assert!(zeros > 20 * fifties.max(1), "{zeros} vs {fifties}");
    }

    #[test]
    fn open_loop_rate_releases_records_when_due() {
        let config = GeneratorConfig {
            rate: Some(1000), // 1 record per ms over one worker
            ..GeneratorConfig::default()
        };
        let mut part = Generator::new(config).part(0, 1).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            part.poll(0, &mut out, 100),
            Poll::Ready {
                intended_micros: Some(0)
            }
        );
        assert_eq!(out.len(), 1);
        out.clear();
        assert_eq!(part.poll(500, &mut out, 100), Poll::Idle);
        assert_eq!(
            part.poll(10_000, &mut out, 100),
            Poll::Ready {
                intended_micros: Some(1000)
            }
        );
        assert_eq!(out.len(), 10, "records due at 1, 2, … 10 ms");
    }

    #[test]
    fn bad_generator_settings_are_named() {
        let bad = |config: GeneratorConfig| config.validate().unwrap_err().setting;
        assert_eq!(
            bad(GeneratorConfig {
                keys: 0,
                ..Default::default()
            }),
            "keys"
        );
        assert_eq!(
            bad(GeneratorConfig {
                rate: Some(0),
                ..Default::default()
            }),
            "rate"
        );
        assert_eq!(
            bad(GeneratorConfig {
                distribution: KeyDistribution::Zipf(-1.0),
                ..Default::default()
            }),
            "distribution"
        );
    }

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
