//! Which worker owns a key: by hash (the default), by range, or by a user
//! function.

/// Maps a key to one of `partitions` owners (partition `p` is owned by
/// worker `p`).
///
/// A result outside `0..partitions` is a bug in the partitioner: the worker
/// that met it stops with an error naming the key's partition.
pub trait Partitioner<K: ?Sized>: Send + Sync + 'static {
    /// The partition of `key`, whose 64-bit hash is `hash`. Hot path.
    fn partition(&self, key: &K, hash: u64, partitions: usize) -> usize;

    /// Checks, before the engine starts, that this partitioner can serve
    /// `partitions` partitions; the error says why not.
    fn check(&self, partitions: usize) -> Result<(), String> {
        let _ = partitions;
        Ok(())
    }
}

/// Spreads keys by their hash. Uses hash bits 24..56, which the hash
/// tables index with neither their bucket bits (the low ones) nor their tag
/// (the top seven), so each owner's table stays evenly filled.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashPartitioner;

impl<K: ?Sized> Partitioner<K> for HashPartitioner {
    #[inline(always)]
    fn partition(&self, _: &K, hash: u64, partitions: usize) -> usize {
        let bits = (hash >> 24) & 0xFFFF_FFFF;
        ((bits * partitions as u64) >> 32) as usize
    }
}

/// Splits an ordered key space at the given bounds: partition `i` holds the
/// keys `k` with `bounds[i-1] <= k < bounds[i]`. Needs exactly
/// `partitions - 1` ascending bounds.
///
/// ```
/// use microbatch::job::{Partitioner, RangePartitioner};
/// let by_range = RangePartitioner::new(vec![100u64, 200]);
/// assert_eq!(by_range.partition(&150, 0, 3), 1);
/// assert!(by_range.check(2).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct RangePartitioner<K> {
    bounds: Vec<K>,
}

impl<K: Ord> RangePartitioner<K> {
    /// A partitioner splitting at `bounds`.
    pub fn new(bounds: Vec<K>) -> Self {
        RangePartitioner { bounds }
    }
}

impl<K: Ord + Send + Sync + std::fmt::Debug + 'static> Partitioner<K> for RangePartitioner<K> {
    #[inline]
    fn partition(&self, key: &K, _: u64, _: usize) -> usize {
        self.bounds.partition_point(|bound| bound <= key)
    }

    fn check(&self, partitions: usize) -> Result<(), String> {
        if self.bounds.len() + 1 != partitions {
            return Err(format!(
                "{} range bounds make {} partitions, but the job has {partitions}",
                self.bounds.len(),
                self.bounds.len() + 1
            ));
        }
        if let Some(pair) = self.bounds.windows(2).find(|pair| pair[0] >= pair[1]) {
            return Err(format!(
                "range bounds must ascend strictly; {:?} is followed by {:?}",
                pair[0], pair[1]
            ));
        }
        Ok(())
    }
}

/// A user function `(key, partitions) -> partition`.
///
/// When to use one: every key's partials meet on its owner, which merges
/// one partial per worker and key each epoch. For the built-in reductions
/// that is cheap whatever a key's traffic (the workers have already folded
/// it), and the hash partitioner is right. A user [`Aggregator`] whose
/// state grows with its input (collected values, distinct sets) makes the
/// owner of a hot key do work in proportion to the key's traffic; giving
/// a known hot key an owner to itself keeps the other keys' owners
/// unaffected. (The per-epoch hot-key report,
/// [`EpochProgress::hot_keys`](crate::progress::EpochProgress::hot_keys),
/// says which keys those are.)
///
/// ```
/// use microbatch::job::{self, count, FnPartitioner, Partitioner};
///
/// // Key 0 is hot: worker 0 owns it alone, the other keys go to 1.. .
/// let hot_alone = FnPartitioner(|key: &u64, partitions: usize| {
///     if *key == 0 || partitions == 1 {
///         0
///     } else {
///         1 + (*key % (partitions as u64 - 1)) as usize
///     }
/// });
/// assert_eq!(hot_alone.partition(&0, 0, 4), 0);
/// assert!((1..4).contains(&hot_alone.partition(&7, 0, 4)));
/// let per_key = job::records::<(u64, u64)>()
///     .key_by(|r| r.0)
///     .partition_by(hot_alone)
///     .aggregate(count());
/// # let _ = per_key;
/// ```
///
/// [`Aggregator`]: crate::job::Aggregator
#[derive(Debug, Clone, Copy)]
pub struct FnPartitioner<F>(pub F);

impl<K: ?Sized, F> Partitioner<K> for FnPartitioner<F>
where
    F: Fn(&K, usize) -> usize + Send + Sync + 'static,
{
    #[inline]
    fn partition(&self, key: &K, _: u64, partitions: usize) -> usize {
        (self.0)(key, partitions)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn hash_partitions_stay_in_range_and_spread() {
        let mut counts = [0u32; 3];
        for i in 0..30_000u64 {
            let hash = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            counts[Partitioner::<u64>::partition(&HashPartitioner, &i, hash, 3)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn range_bounds_are_checked() {
        assert!(RangePartitioner::new(vec![1u32, 1])
            .check(3)
            .unwrap_err()
            .contains("ascend"));
        let by_range = RangePartitioner::new(vec![10u32]);
        assert_eq!(by_range.partition(&9, 0, 2), 0);
        assert_eq!(by_range.partition(&10, 0, 2), 1);
    }
}
