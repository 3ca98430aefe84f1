//! Where a worker's fold puts a batch's records, and the rule by which an
//! adaptive worker chooses it per batch.

use std::time::Duration;

/// Where a worker's fold puts the records of a batch; the worker chooses
/// per batch, and the results are the same either way.
///
/// - `Partitioned`: each record goes to its key's partition as it is
///   folded. Nothing is left to do at the seal: the shortest path from
///   seal to result.
/// - `Combined`: every record goes to the first part, one table of every
///   key the worker meets, and [`Job::split`](super::Job::split) moves the
///   keys to their partitions at the seal. The fold pays no partitioning
///   per record and dense integer keys keep the even spread FxHash gives
///   them in one table, for one move per key at the seal.
///
/// Under [`PlacementPolicy::Adaptive`](crate::PlacementPolicy) (the
/// default) a worker uses `Combined` for its next batch when it waited for
/// input or room for at most [`COMBINE_MAX_IDLE_SHARE`] of the last one's
/// time (the fold is what holds it back, so a faster fold matters more
/// than a short seal) and that batch had at least
/// [`COMBINE_MIN_RECORDS_PER_KEY`] records per key, or
/// [`COMBINE_MIN_RECORDS_PER_KEY_WAITING`] if the worker waited at all;
/// otherwise `Partitioned`, which a fresh part starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Each record into its key's partition.
    #[default]
    Partitioned,
    /// Every record into the first part; keys split at the seal.
    Combined,
}

/// The records per distinct key a batch of a worker that never waited
/// needs for its worker to fold the next batch [`Placement::Combined`]:
/// below it, the move of every key at the seal costs more than the fold
/// saves.
pub const COMBINE_MIN_RECORDS_PER_KEY: u64 = 8;

/// [`COMBINE_MIN_RECORDS_PER_KEY`] for a worker that waited, though for no
/// more than [`COMBINE_MAX_IDLE_SHARE`] of the batch's time. Higher: a
/// worker sharing its core with producer threads gains from a combined
/// fold only with more records per key (measured in `docs/skew.md`).
pub const COMBINE_MIN_RECORDS_PER_KEY_WAITING: u64 = 32;

/// The most of a batch's time its worker may have waited (for input, or
/// for room in the epoch window) and still fold the next batch
/// [`Placement::Combined`]. Not zero: a worker that shares its core with
/// producer threads waits while they run, and is still held back by its
/// fold (how long it waits, and what the combined fold gains there, is
/// measured in `docs/skew.md`). A worker with more slack than this keeps
/// the short seal of `Partitioned`.
pub const COMBINE_MAX_IDLE_SHARE: f64 = 0.5;

/// The placement an adaptive worker gives its next batch, from the batch
/// it seals: `records` records of `keys` distinct keys, over `open` of
/// which it waited for `idle` (see [`Placement`]). Once per batch.
pub(crate) fn adaptive_placement(
    records: u64,
    keys: usize,
    idle: Duration,
    open: Duration,
) -> Placement {
    // A worker that shares its core with producer threads waits while they
    // run, yet its fold is what limits it (see COMBINE_MAX_IDLE_SHARE and
    // COMBINE_MIN_RECORDS_PER_KEY_WAITING).
    let per_key = if idle.is_zero() {
        COMBINE_MIN_RECORDS_PER_KEY
    } else if idle.as_secs_f64() <= COMBINE_MAX_IDLE_SHARE * open.as_secs_f64() {
        COMBINE_MIN_RECORDS_PER_KEY_WAITING
    } else {
        return Placement::Partitioned;
    };
    if records > 0 && records >= per_key.saturating_mul(keys as u64) {
        Placement::Combined
    } else {
        Placement::Partitioned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: Duration = Duration::from_millis(100);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn a_worker_that_never_waited_combines_from_the_lower_bar() {
        let place = |records| adaptive_placement(records, 1000, Duration::ZERO, BATCH);
        assert_eq!(place(8 * 1000), Placement::Combined);
        assert_eq!(place(8 * 1000 - 1), Placement::Partitioned);
    }

    #[test]
    fn a_worker_that_waited_a_little_needs_the_higher_bar() {
        let place = |records| adaptive_placement(records, 1000, ms(10), BATCH);
        assert_eq!(place(10 * 1000), Placement::Partitioned);
        assert_eq!(place(32 * 1000 - 1), Placement::Partitioned);
        assert_eq!(place(32 * 1000), Placement::Combined);
        // Up to half of the batch's time.
        assert_eq!(
            adaptive_placement(1 << 30, 1000, ms(50), BATCH),
            Placement::Combined
        );
    }

    #[test]
    fn a_worker_with_slack_stays_partitioned() {
        assert_eq!(
            adaptive_placement(1 << 30, 1000, ms(51), BATCH),
            Placement::Partitioned
        );
        assert_eq!(
            adaptive_placement(1 << 30, 1000, BATCH, BATCH),
            Placement::Partitioned
        );
    }

    #[test]
    fn an_empty_batch_stays_partitioned() {
        assert_eq!(
            adaptive_placement(0, 0, Duration::ZERO, Duration::ZERO),
            Placement::Partitioned
        );
    }
}
