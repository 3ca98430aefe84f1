//! How a Zipf key is drawn: Walker's alias method over packed tables, a
//! small one for the hottest keys that stays in cache and one for the rest.
//!
//! Each slot of a table holds, in one `u64`, the probability (as a 32-bit
//! threshold) of keeping the slot's own index and the index it gives way
//! to otherwise. A draw takes one 64-bit random number: its product with
//! the table's length picks the slot, its low 32 bits are compared with
//! the threshold. `rand_distr`'s `WeightedAliasIndex` (which this replaced)
//! takes two random numbers, an `f64` draw and two loads from separate
//! arrays, and over 1 M keys nearly every load missed the cache.
//!
//! Exactness: the slot is uniform up to `n / 2^64`, each threshold is the
//! exact keep probability rounded to a multiple of `2^-32`, and a slot
//! whose index is never given away (probability 1) names itself as its
//! alias, so it keeps its index whatever the threshold says.

/// Keys in the head table: 2^16 slots are 512 KiB, which stays in a core's
/// L2 cache beside the hottest keys' table entries. Under Zipf(1.0) over
/// 1 M keys the head serves 81 % of the draws from cache, where one table
/// over every key misses the cache on nearly every draw.
const HEAD_KEYS: u64 = 1 << 16;

/// A Zipf distribution over keys `0..n`, key `k` having weight
/// `(k + 1)^-exponent`, as two alias tables: the head (the `HEAD_KEYS`
/// hottest keys, plus one slot standing for all the others together) and
/// the tail (the others). A draw that lands on the head's stand-in slot
/// draws again from the tail. Built once per generator and shared by its
/// parts; read-only afterwards.
#[derive(Debug, Clone)]
pub(crate) struct ZipfTable {
    /// Keys in the head: `HEAD_KEYS` or all of them, if fewer.
    head_keys: u64,
    head: AliasTable,
    /// The keys from `HEAD_KEYS` on; `None` when the head holds them all.
    tail: Option<AliasTable>,
}

impl ZipfTable {
    /// The table for `keys` keys (1 .. 2^32, so that an index fits a
    /// slot's 32-bit alias) with this exponent (> 0, finite; the caller
    /// validates both: `MAX_ZIPF_KEYS` is far below the bound).
    pub(crate) fn new(keys: u64, exponent: f64) -> ZipfTable {
        ZipfTable::with_head(keys, exponent, HEAD_KEYS)
    }

    /// The table with at most `head_keys` (≥ 1) keys in the head.
    fn with_head(keys: u64, exponent: f64, head_keys: u64) -> ZipfTable {
        assert!((1..1 << 32).contains(&keys), "1 .. 2^32 keys");
        let weight = |key: u64| ((key + 1) as f64).powf(-exponent);
        let head_keys = keys.min(head_keys.max(1));
        let mut head: Vec<f64> = (0..head_keys).map(weight).collect();
        let tail = (keys > head_keys).then(|| {
            let tail: Vec<f64> = (head_keys..keys).map(weight).collect();
            head.push(tail.iter().sum());
            AliasTable::new(&tail)
        });
        ZipfTable {
            head_keys,
            head: AliasTable::new(&head),
            tail,
        }
    }

    /// The head's draw with the 64-bit random number `random`: a key, or
    /// `None` when it lands on the stand-in for the tail and the key is
    /// [`tail`](Self::tail)'s draw with another random number. Hot path: a
    /// multiply, a load (from cache) and a compare.
    #[inline(always)]
    pub(crate) fn head(&self, random: u64) -> Option<u64> {
        let slot = self.head.draw(random);
        (slot != self.head_keys || self.tail.is_none()).then_some(slot)
    }

    /// The tail's draw with `random`: a key from `HEAD_KEYS` on. Called
    /// only after [`head`](Self::head) gave `None`; hot path, but its load
    /// misses the cache, so callers gather several tail draws and make
    /// them together, letting the misses overlap.
    #[inline(always)]
    pub(crate) fn tail(&self, random: u64) -> u64 {
        let tail = self
            .tail
            .as_ref()
            .expect("head gives None only with a tail");
        self.head_keys + tail.draw(random)
    }

    /// The key drawn with the random numbers `next` gives (one, or two for
    /// a key outside the head), in the order the generator draws them.
    #[cfg(all(test, not(loom)))]
    fn key(&self, mut next: impl FnMut() -> u64) -> u64 {
        self.head(next()).unwrap_or_else(|| self.tail(next()))
    }

    /// The probability the tables give `key` (for tests).
    #[cfg(all(test, not(loom)))]
    fn probability(&self, key: u64) -> f64 {
        match &self.tail {
            Some(tail) if key >= self.head_keys => {
                self.head.probability(self.head_keys) * tail.probability(key - self.head_keys)
            }
            _ => self.head.probability(key),
        }
    }
}

/// Walker's alias table over indices `0..n` (n < 2^32).
#[derive(Debug, Clone)]
struct AliasTable {
    /// Slot `i`: `threshold << 32 | alias`. A draw landing on slot `i`
    /// keeps `i` when its low 32 random bits are below `threshold`, else
    /// yields `alias`. A slot that keeps its index with probability 1 names
    /// itself as its alias.
    slots: Box<[u64]>,
}

impl AliasTable {
    /// The table drawing index `i` with probability `weights[i] / sum`.
    fn new(weights: &[f64]) -> AliasTable {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        // Vose's construction: scale the weights to a mean of 1, then pair
        // each slot below 1 with one above, which fills the slot's rest.
        let mut keep: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| keep[i as usize] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            alias[s as usize] = l;
            let rest = keep[l as usize] - (1.0 - keep[s as usize]);
            keep[l as usize] = rest;
            if rest < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left on either list is 1 up to rounding: it keeps its index.
        for i in small.into_iter().chain(large) {
            keep[i as usize] = 1.0;
            alias[i as usize] = i;
        }
        let slots = keep
            .iter()
            .zip(&alias)
            .map(|(&keep, &alias)| {
                let threshold = (keep.clamp(0.0, 1.0) * 4_294_967_296.0)
                    .round()
                    .min(f64::from(u32::MAX));
                ((threshold as u64) << 32) | u64::from(alias)
            })
            .collect();
        AliasTable { slots }
    }

    /// The index `random` draws: its product with `n` picks the slot (the
    /// high half of the 128-bit product, uniform up to `n / 2^64`), its low
    /// 32 bits decide between the slot and its alias (nearly independent of
    /// the slot for `n` ≤ 2^32).
    #[inline(always)]
    fn draw(&self, random: u64) -> u64 {
        let n = self.slots.len() as u64;
        let slot = ((u128::from(random) * u128::from(n)) >> 64) as usize;
        let packed = self.slots[slot];
        if (random as u32) < (packed >> 32) as u32 {
            slot as u64
        } else {
            packed & 0xFFFF_FFFF
        }
    }

    /// The probability the table gives `index`, from its slots.
    #[cfg(all(test, not(loom)))]
    fn probability(&self, index: u64) -> f64 {
        let n = self.slots.len() as f64;
        let mut p = 0.0;
        for (i, &packed) in self.slots.iter().enumerate() {
            let keep = (packed >> 32) as f64 / 4_294_967_296.0;
            let alias = packed & 0xFFFF_FFFF;
            if i as u64 == index {
                p += if alias == index { 1.0 } else { keep } / n;
            } else if alias == index {
                p += (1.0 - keep) / n;
            }
        }
        p
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(keys: u64, exponent: f64) -> Vec<f64> {
        let weights: Vec<f64> = (1..=keys).map(|r| (r as f64).powf(-exponent)).collect();
        let total: f64 = weights.iter().sum();
        weights.into_iter().map(|w| w / total).collect()
    }

    proptest! {
        /// The table's probability of every key is the Zipf pmf, up to the
        /// 2^-32 rounding of each threshold.
        #[test]
        fn table_probabilities_are_the_zipf_pmf(
            keys in 1u64..400,
            exponent in 0.1f64..3.0,
            head_keys in 1u64..500,
        ) {
            let table = ZipfTable::with_head(keys, exponent, head_keys);
            for (key, p) in exact(keys, exponent).into_iter().enumerate() {
                let got = table.probability(key as u64);
                prop_assert!((got - p).abs() < 1e-8, "key {key}: {got} vs {p}");
            }
        }

        /// Every draw is a key, whatever the random number.
        #[test]
        fn draws_are_keys(keys in 1u64..10_000, head_keys in 1u64..100, first: u64, second: u64) {
            let table = ZipfTable::with_head(keys, 1.0, head_keys);
            let mut random = [first, second].into_iter();
            prop_assert!(table.key(|| random.next().unwrap()) < keys);
        }
    }

    /// An exponent so steep that every weight but key 0's underflows to
    /// zero (the tail's total too) still gives a table: key 0 always.
    #[test]
    fn underflowing_weights_leave_key_zero() {
        let table = ZipfTable::with_head(1000, 2000.0, 10);
        assert!((table.probability(0) - 1.0).abs() < 1e-12);
        for random in [0, 1, u64::MAX / 3, u64::MAX / 2, u64::MAX] {
            assert_eq!(table.key(|| random), 0);
        }
    }

    /// Draws from a well-mixed fixed sequence match the pmf, head and tail:
    /// the slot and threshold parts of each number are used as the tables
    /// mean them.
    #[test]
    fn draws_follow_the_pmf() {
        let (keys, exponent) = (50u64, 1.0);
        let table = ZipfTable::with_head(keys, exponent, 20);
        let draws = 1u64 << 22;
        let mut counts = vec![0u64; keys as usize];
        let mut state = 0u64;
        // splitmix64
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        for _ in 0..draws {
            counts[table.key(&mut next) as usize] += 1;
        }
        for (key, p) in exact(keys, exponent).into_iter().enumerate() {
            let expected = p * draws as f64;
            let sigma = (expected * (1.0 - p)).sqrt();
            let got = counts[key] as f64;
            assert!(
                (got - expected).abs() < 5.0 * sigma,
                "key {key}: {got} vs {expected}"
            );
        }
    }
}
