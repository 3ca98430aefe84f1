//! The built-in generator: seeded, deterministic records of `key, value`,
//! keys uniform or Zipf, drawn in the workers in morsels, closed loop or
//! released open-loop at a rate.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::zipf::ZipfTable;
use super::{Poll, Source, SourceSpec};
use crate::config::ConfigError;
use crate::sync::{Arc, AtomicU64, Ordering};

/// The generator's record: a key and a value.
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
pub struct Event {
    /// In `0..keys`.
    pub key: u64,
    /// Drawn from the value distribution.
    pub value: u64,
}

impl crate::log::LogRecord for Event {
    const SCHEMA: &'static str = "microbatch.event.v1(key u64, value u64)";
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

/// The most keys a Zipf generator draws from: its alias tables take 8
/// bytes a key (about 32 while they are built).
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

/// Records per morsel: the unit a generator part claims at a time.
const MORSEL: u64 = 4096;

/// A deterministic generator of [`Event`]s.
///
/// The stream is cut into morsels of 4096 records; morsel `i` is drawn from
/// its own random stream, seeded by (seed, `i`), and the workers claim
/// morsels from a shared counter (one atomic add per morsel). So a faster
/// worker takes more of the work, and the records, as a multiset, are the
/// same for any worker count and any schedule. With a `rate`, record `i`
/// is due `i / rate` seconds after the engine started, and a morsel is
/// claimed only when its first record is due (morsels then hold about a
/// millisecond of records).
#[derive(Debug, Clone)]
pub struct Generator {
    config: GeneratorConfig,
}

/// What the parts of one generator share.
#[derive(Debug)]
struct Claims {
    /// The next morsel to claim.
    next: AtomicU64,
    /// Records per morsel.
    morsel: u64,
}

impl Generator {
    /// A generator with these settings.
    pub fn new(config: GeneratorConfig) -> Self {
        Generator { config }
    }

    /// `workers` parts sharing one stream: together they produce the
    /// stream once. The engine's baselines use them outside the engine.
    pub fn parts(&self, workers: usize) -> Result<Vec<GeneratorPart>, ConfigError> {
        self.config.validate()?;
        let zipf = match self.config.distribution {
            KeyDistribution::Uniform => None,
            KeyDistribution::Zipf(exponent) => {
                Some(Arc::new(ZipfTable::new(self.config.keys, exponent)))
            }
        };
        let morsel = match self.config.rate {
            None => MORSEL,
            Some(rate) => (rate / 1000).clamp(1, MORSEL),
        };
        let claims = Arc::new(Claims {
            next: AtomicU64::new(0),
            morsel,
        });
        Ok((0..workers.max(1))
            .map(|_| GeneratorPart {
                claims: Arc::clone(&claims),
                rng: Xoshiro256PlusPlus::seed_from_u64(0),
                seed: self.config.seed,
                keys: self.config.keys,
                zipf: zipf.clone(),
                values: self.config.values,
                rate: self.config.rate,
                total: self.config.records.unwrap_or(u64::MAX),
                position: 0,
                end: 0,
            })
            .collect())
    }
}

impl SourceSpec<Event> for Generator {
    fn split(self, workers: usize) -> Result<Vec<Box<dyn Source<Event>>>, ConfigError> {
        Ok(self
            .parts(workers)?
            .into_iter()
            .map(|part| Box::new(part) as Box<dyn Source<Event>>)
            .collect())
    }
}

/// One worker's view of a generator: the morsel it is drawing from.
#[derive(Debug, Clone)]
pub struct GeneratorPart {
    claims: Arc<Claims>,
    /// The random stream of the current morsel.
    rng: Xoshiro256PlusPlus,
    seed: u64,
    keys: u64,
    zipf: Option<Arc<ZipfTable>>,
    values: ValueDistribution,
    rate: Option<u64>,
    total: u64,
    /// Index of the next record of the current morsel, and the morsel's end.
    position: u64,
    end: u64,
}

/// A uniform draw from `0..bound` by multiply-shift (Lemire, without the
/// rejection step: the bias is below bound / 2^64).
#[inline(always)]
fn below(rng: &mut Xoshiro256PlusPlus, bound: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(bound)) >> 64) as u64
}

/// What an attempt to claim a morsel found.
enum Claim {
    Claimed,
    NotDue,
    Exhausted,
}

/// Records drawn per pass of [`draw_zipf`]: its list of tail draws stays
/// on the stack (4 KiB).
const ZIPF_PASS: usize = 256;

/// A record's value, as `values` says.
#[inline(always)]
fn value(rng: &mut Xoshiro256PlusPlus, values: ValueDistribution) -> u64 {
    match values {
        ValueDistribution::Constant(value) => value,
        ValueDistribution::Uniform { min, max } => min + below(rng, (max - min).saturating_add(1)),
    }
}

/// Appends `count` events with uniform keys. Hot path: the caller keeps
/// `rng` in a local so that its state stays in registers across a run.
///
/// With at most 2^32 keys and a value range of at most 2^32 (the usual
/// case), one 64-bit random number draws both: the key from the high half
/// of its 128-bit product with `keys`, the value from its low 32 bits,
/// which the key depends on only at slot edges (a share of `keys / 2^32`).
/// Otherwise each takes a number of its own.
#[inline(always)]
fn draw_uniform(
    rng: &mut Xoshiro256PlusPlus,
    keys: u64,
    values: ValueDistribution,
    out: &mut Vec<Event>,
    count: usize,
) {
    let narrow = |range: u64| range <= 1 << 32;
    match values {
        ValueDistribution::Uniform { min, max }
            if narrow(keys) && narrow((max - min).saturating_add(1)) =>
        {
            let range = (max - min).saturating_add(1);
            out.extend((0..count).map(|_| {
                let random = rng.next_u64();
                Event {
                    key: ((u128::from(random) * u128::from(keys)) >> 64) as u64,
                    value: min + ((u64::from(random as u32) * range) >> 32),
                }
            }))
        }
        _ => out.extend((0..count).map(|_| Event {
            key: below(rng, keys),
            value: value(rng, values),
        })),
    }
}

/// Appends `count` events with Zipf keys, in passes of `ZIPF_PASS`: a
/// pass's first loop draws every record (head keys from the cached head
/// table, and for the others the random number of their tail draw), its
/// second makes the tail draws, whose loads miss the cache, back to back
/// so that the misses overlap. The random numbers are taken in record order
/// (key, tail if any, value), so the stream does not depend on where the
/// passes fall. Hot path, as [`draw_uniform`].
#[inline(always)]
fn draw_zipf(
    rng: &mut Xoshiro256PlusPlus,
    table: &ZipfTable,
    values: ValueDistribution,
    out: &mut Vec<Event>,
    mut count: usize,
) {
    let mut tails = [(0usize, 0u64); ZIPF_PASS];
    while count > 0 {
        let pass = count.min(ZIPF_PASS);
        let start = out.len();
        let mut pending = 0;
        out.extend((0..pass).map(|i| {
            let key = table.head(rng.next_u64()).unwrap_or_else(|| {
                tails[pending] = (start + i, rng.next_u64());
                pending += 1;
                0
            });
            Event {
                key,
                value: value(rng, values),
            }
        }));
        for &(at, random) in &tails[..pending] {
            out[at].key = table.tail(random);
        }
        count -= pass;
    }
}

impl GeneratorPart {
    /// When record `index` is due, in µs since the engine started.
    fn due_micros(&self, index: u64) -> Option<u64> {
        self.rate
            .map(|rate| (u128::from(index) * 1_000_000 / u128::from(rate)) as u64)
    }

    /// Claims the next morsel if it exists and (with a rate) is due.
    fn claim(&mut self, now_micros: u64) -> Claim {
        let claims = &self.claims;
        let mut morsel = claims.next.load(Ordering::Relaxed);
        loop {
            let first = morsel.saturating_mul(claims.morsel);
            if first >= self.total {
                return Claim::Exhausted;
            }
            if self.due_micros(first).is_some_and(|due| due > now_micros) {
                return Claim::NotDue;
            }
            match claims.next.compare_exchange_weak(
                morsel,
                morsel + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.rng = Xoshiro256PlusPlus::seed_from_u64(
                        self.seed ^ (morsel + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    );
                    self.position = first;
                    self.end = (first + claims.morsel).min(self.total);
                    return Claim::Claimed;
                }
                Err(current) => morsel = current,
            }
        }
    }
}

impl Source<Event> for GeneratorPart {
    fn poll(&mut self, now_micros: u64, out: &mut Vec<Event>, max: usize) -> Poll {
        let mut intended_micros = None;
        while out.len() < max {
            if self.position == self.end {
                match self.claim(now_micros) {
                    Claim::Claimed => {}
                    Claim::NotDue => break,
                    Claim::Exhausted if out.is_empty() => return Poll::Exhausted,
                    Claim::Exhausted => break,
                }
            }
            if intended_micros.is_none() {
                intended_micros = self.due_micros(self.position);
            }
            let count = (self.end - self.position).min((max - out.len()) as u64);
            let mut rng = self.rng.clone();
            match self.zipf.as_deref() {
                None => draw_uniform(&mut rng, self.keys, self.values, out, count as usize),
                Some(table) => draw_zipf(&mut rng, table, self.values, out, count as usize),
            }
            self.rng = rng;
            self.position += count;
        }
        if out.is_empty() {
            Poll::Idle
        } else {
            Poll::Ready { intended_micros }
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

    /// Polls the parts round robin, `max` at a time, until all are exhausted.
    fn drain_all(parts: &mut [GeneratorPart], max: usize) -> Vec<Event> {
        let mut all = Vec::new();
        let mut out = Vec::new();
        let mut live = parts.len();
        while live > 0 {
            live = 0;
            for part in parts.iter_mut() {
                if let Poll::Ready { .. } = part.poll(0, &mut out, max) {
                    all.append(&mut out);
                    live += 1;
                }
            }
        }
        all.sort_unstable_by_key(|e| (e.key, e.value));
        all
    }

    #[test]
    fn generator_records_are_the_same_for_any_split() {
        // Zipf over more keys than its head table holds: tail draws happen
        // in the second half of a pass, whose boundaries move with `max`.
        for (keys, distribution) in [
            (10, KeyDistribution::Uniform),
            (300_000, KeyDistribution::Zipf(1.0)),
        ] {
            let config = GeneratorConfig {
                records: Some(10_001),
                keys,
                distribution,
                ..GeneratorConfig::default()
            };
            let generator = Generator::new(config);
            let one = drain_all(&mut generator.parts(1).unwrap(), 4096);
            let three = drain_all(&mut generator.parts(3).unwrap(), 333);
            assert_eq!(one.len(), 10_001);
            assert_eq!(one, three);
            assert!(one.iter().all(|e| e.key < keys && e.value <= 1000));
            let other_seed = Generator::new(GeneratorConfig {
                seed: 7,
                ..generator.config.clone()
            });
            assert_ne!(drain_all(&mut other_seed.parts(1).unwrap(), 4096), one);
        }
    }

    /// Key and value come from one random number: every (key, value) pair
    /// still turns up as often as independent uniform draws would make it.
    #[test]
    fn uniform_keys_and_values_are_independent() {
        let config = GeneratorConfig {
            records: Some(1_000_000),
            keys: 10,
            values: ValueDistribution::Uniform { min: 5, max: 14 },
            ..GeneratorConfig::default()
        };
        let mut counts = [[0u32; 10]; 10];
        for e in drain_all(&mut Generator::new(config).parts(2).unwrap(), 4096) {
            counts[e.key as usize][(e.value - 5) as usize] += 1;
        }
        // Each cell expects 10 000, with a standard deviation just under 100.
        for (key, row) in counts.iter().enumerate() {
            for (value, &count) in row.iter().enumerate() {
                assert!(
                    count.abs_diff(10_000) < 500,
                    "key {key}, value {value}: {count}"
                );
            }
        }
    }

    #[test]
    fn zipf_key_zero_is_hottest() {
        let config = GeneratorConfig {
            records: Some(20_000),
            keys: 100,
            distribution: KeyDistribution::Zipf(1.2),
            ..GeneratorConfig::default()
        };
        let events = drain(&mut Generator::new(config).parts(1).unwrap()[0]);
        let zeros = events.iter().filter(|e| e.key == 0).count();
        let fifties = events.iter().filter(|e| e.key == 50).count();
        assert!(zeros > 20 * fifties.max(1), "{zeros} vs {fifties}");
    }

    #[test]
    fn open_loop_rate_releases_records_when_due() {
        let config = GeneratorConfig {
            rate: Some(1000), // one record per ms, one record per morsel
            ..GeneratorConfig::default()
        };
        let mut part = Generator::new(config).parts(1).unwrap().remove(0);
        let mut out = Vec::new();
        assert_eq!(part.poll(0, &mut out, 100), Poll::ready_at(0));
        assert_eq!(out.len(), 1);
        out.clear();
        assert_eq!(part.poll(500, &mut out, 100), Poll::Idle);
        assert_eq!(part.poll(10_000, &mut out, 100), Poll::ready_at(1000));
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
}
