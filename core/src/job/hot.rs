//! Hot-key detection: every [`SAMPLE_EVERY`]-th record a worker folds is
//! sampled into its part's Space-Saving summary of [`HOT_KEY_SLOTS`] key
//! hashes; the owner merges the summaries of an epoch's parts with the
//! parts and reports the keys that hold the most samples, if they hold at
//! least [`HOT_KEY_MIN_SHARE`] of them and [`HOT_KEY_MIN_SAMPLES`].
//!
//! Cost: a worker folds its records in windows that end where a sample
//! is due and keys the window's last record again for the sample (the
//! job's stages, `filter`, `map` or `flat_map`, run on it a second time), so the fold
//! loop carries nothing for it (`cargo bench -p microbatch-bench --bench
//! hash_aggregation` compares it with the fold without sampling).
//!
//! Each slot keeps, besides its count, the count it inherited when it
//! took the slot of a less sampled key (its possible over-count); the
//! report ranks keys by count minus that, a lower bound of the key's
//! true sample count, so a key of the long tail that just took a slot
//! does not look hot.
//!
//! Bounds, for N samples of a partition's records (over all its parts):
//! a key with more than 2N/[`HOT_KEY_SLOTS`] of them is held, and a held
//! key's count is within 2N/[`HOT_KEY_SLOTS`] of its true sample count
//! (one N/slots for Space-Saving itself, one for merging summaries, which
//! forgets a key a part did not hold). A sample count times
//! [`SAMPLE_EVERY`] estimates the key's records; in an epoch of few
//! records the estimate is coarse.

/// One record in this many is sampled, per worker.
pub const SAMPLE_EVERY: u32 = 1024;

/// Keys a summary keeps.
pub const HOT_KEY_SLOTS: usize = 32;

/// The least share of a partition's samples a key must surely hold to be
/// reported hot: under it, a key is one of many (uniform keys report
/// none).
pub const HOT_KEY_MIN_SHARE: f64 = 0.01;

/// The fewest samples a key must surely hold to be reported hot: in an
/// epoch of few samples, a key sampled once or twice is chance.
pub const HOT_KEY_MIN_SAMPLES: u32 = 8;

/// A Space-Saving summary of sampled key hashes.
#[derive(Debug, Clone)]
pub(crate) struct HotKeySampler {
    /// The first `len` in use.
    slots: [Slot; HOT_KEY_SLOTS],
    len: usize,
}

/// One held key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The key's hash.
    pub(crate) hash: u64,
    /// Samples counted for it, inherited ones included.
    pub(crate) count: u32,
    /// Of `count`, those inherited from keys whose slots it took.
    pub(crate) inherited: u32,
}

impl Slot {
    /// Samples that were surely the key's (as far as merging kept them).
    pub(crate) fn sure(&self) -> u32 {
        self.count - self.inherited
    }
}

impl Default for HotKeySampler {
    fn default() -> Self {
        HotKeySampler {
            slots: [Slot::default(); HOT_KEY_SLOTS],
            len: 0,
        }
    }
}

impl HotKeySampler {
    /// Counts one sample of the key hashed `hash`.
    #[inline(never)]
    pub(crate) fn sample(&mut self, hash: u64) {
        self.add(Slot {
            hash,
            count: 1,
            inherited: 0,
        });
    }

    /// Adds `new`'s samples: to its key's slot, else to a free slot,
    /// else in place of the key with the fewest samples, whose count it
    /// inherits (so no held key is under-counted). One pass over the slots.
    #[inline]
    fn add(&mut self, new: Slot) {
        let (mut least, mut floor) = (0, u32::MAX);
        for (i, slot) in self.slots[..self.len].iter_mut().enumerate() {
            if slot.hash == new.hash {
                slot.count = slot.count.saturating_add(new.count);
                slot.inherited = slot.inherited.saturating_add(new.inherited);
                return;
            }
            if slot.count < floor {
                (least, floor) = (i, slot.count);
            }
        }
        if self.len < HOT_KEY_SLOTS {
            self.slots[self.len] = new;
            self.len += 1;
        } else {
            self.slots[least] = Slot {
                hash: new.hash,
                count: floor.saturating_add(new.count),
                inherited: floor.saturating_add(new.inherited),
            };
        }
    }

    /// Folds `other`'s samples into this summary and empties `other`.
    pub(crate) fn merge(&mut self, other: &mut HotKeySampler) {
        for &slot in &other.slots[..other.len] {
            self.add(slot);
        }
        other.clear();
    }

    /// Samples taken (or merged in) since the last clear: the sum of the
    /// counts, which Space-Saving keeps.
    pub(crate) fn samples(&self) -> u64 {
        self.slots[..self.len]
            .iter()
            .map(|slot| u64::from(slot.count))
            .sum()
    }

    /// Forgets the samples.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// The held keys, most surely sampled first.
    pub(crate) fn hottest(&mut self) -> &[Slot] {
        let used = &mut self.slots[..self.len];
        used.sort_unstable_by(|a, b| b.sure().cmp(&a.sure()).then(a.hash.cmp(&b.hash)));
        used
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Against exact counts of the samples: a key with more than
        /// 2/HOT_KEY_SLOTS of them is held, a held key's count is within
        /// 2/HOT_KEY_SLOTS of them of its true count.
        #[test]
        fn holds_every_frequent_key_within_the_bound(
            keys in prop::collection::vec(prop_oneof![3 => 0u64..3, 1 => 0u64..1000], 1..4000),
            split in 0usize..4000,
        ) {
            // Two parts, merged, as an owner sees them.
            let split = split.min(keys.len());
            let (mut a, mut b) = (HotKeySampler::default(), HotKeySampler::default());
            let mut exact: HashMap<u64, u32> = HashMap::new();
            for (i, &key) in keys.iter().enumerate() {
                let part = if i < split { &mut a } else { &mut b };
                part.sample(key);
                *exact.entry(key).or_default() += 1;
            }
            prop_assert_eq!(a.samples() + b.samples(), keys.len() as u64);
            a.merge(&mut b);
            prop_assert_eq!(b.len, 0);
            let total = i64::from(exact.values().sum::<u32>());
            let bound = 2 * total / HOT_KEY_SLOTS as i64;
            let held: HashMap<u64, Slot> = a.hottest().iter().map(|s| (s.hash, *s)).collect();
            for (key, &count) in &exact {
                if i64::from(count) > bound {
                    prop_assert!(held.contains_key(key), "{key} ({count} of {total}) not held");
                }
            }
            for (key, slot) in &held {
                let truth = i64::from(exact.get(key).copied().unwrap_or(0));
                let (count, sure) = (i64::from(slot.count), i64::from(slot.sure()));
                prop_assert!((count - truth).abs() <= bound, "{key}: {count} vs {truth}");
                prop_assert!(sure <= truth, "{key}: surely {sure}, truly {truth}");
                prop_assert!(sure >= 0 && sure <= count);
            }
            let sure: Vec<u32> = a.hottest().iter().map(Slot::sure).collect();
            prop_assert!(sure.windows(2).all(|w| w[0] >= w[1]));
        }
    }
}
