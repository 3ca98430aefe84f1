//! Mergeable sketches as aggregators, for what a service asks of its
//! traffic beyond counts and sums: latency [`quantiles`] (an HdrHistogram),
//! a [`distinct`] count (HyperLogLog++) and the [`top_k`] values (a
//! Space-Saving summary). Each state merges with another of its kind, so
//! workers fold their own records and the key's owner merges the parts,
//! as for every aggregator.
//!
//! A sketch's state is allocated when a key is first seen in an epoch (a
//! few KiB for an HdrHistogram or a HyperLogLog, `capacity` entries for a
//! top-k): meant for keys of a service (endpoints, tenants), not for a
//! million keys an epoch.

use std::collections::hash_map::DefaultHasher;
use std::hash::{BuildHasherDefault, Hash};

use hashbrown::HashMap;
use hdrhistogram::Histogram;
use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};

use super::aggregate::Aggregator;

/// Quantiles of a column of non-negative integers (latencies in µs, sizes
/// in bytes), within `significant_digits` of the true values.
#[derive(Debug, Clone, Copy)]
pub struct Quantiles<F> {
    column: F,
    significant_digits: u8,
}

/// What [`quantiles`] reports of an epoch (or, running, of all epochs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct QuantileSummary {
    /// Values seen.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

/// Quantiles of `column`, accurate to `significant_digits` (1 to 5; 3
/// keeps values within 0.1 %).
///
/// ```
/// use microbatch::job::{quantiles, Aggregator};
///
/// let latency = quantiles(|micros: &u64| *micros, 3);
/// let mut state = latency.init();
/// for micros in 1..=1000u64 {
///     latency.update(&mut state, &micros);
/// }
/// let summary = latency.finish(state);
/// assert_eq!((summary.count, summary.max), (1000, 1000));
/// assert!((summary.p99 as i64 - 990).abs() <= 1);
/// ```
///
/// # Panics
/// If `significant_digits` is not in 1..=5.
pub fn quantiles<T, F: Fn(&T) -> u64 + Send + Sync + 'static>(
    column: F,
    significant_digits: u8,
) -> Quantiles<F> {
    assert!(
        (1..=5).contains(&significant_digits),
        "quantiles keep 1 to 5 significant digits, not {significant_digits}"
    );
    Quantiles {
        column,
        significant_digits,
    }
}

impl<T, F: Fn(&T) -> u64 + Send + Sync + 'static> Aggregator<T> for Quantiles<F> {
    type State = Histogram<u64>;
    type Output = QuantileSummary;

    fn init(&self) -> Histogram<u64> {
        let mut histogram = Histogram::new(self.significant_digits)
            .expect("1 to 5 significant digits make a histogram");
        histogram.auto(true);
        histogram
    }

    #[inline]
    fn update(&self, state: &mut Histogram<u64>, item: &T) {
        let value = (self.column)(item);
        // The histogram grows to take the value (allocating only when a
        // value is the largest yet by a power of two).
        if state.record(value).is_err() {
            state.saturating_record(value);
        }
    }

    fn merge(&self, state: &mut Histogram<u64>, other: Histogram<u64>) {
        state
            .add(other)
            .expect("histograms that resize themselves take any other");
    }

    fn finish(&self, state: Histogram<u64>) -> QuantileSummary {
        if state.is_empty() {
            return QuantileSummary::default();
        }
        QuantileSummary {
            count: state.len(),
            p50: state.value_at_quantile(0.50),
            p90: state.value_at_quantile(0.90),
            p99: state.value_at_quantile(0.99),
            p999: state.value_at_quantile(0.999),
            max: state.max(),
        }
    }
}

/// The hash every distinct-count state uses, so that states of different
/// workers merge: SipHash with fixed keys.
type SameHash = BuildHasherDefault<DefaultHasher>;

/// The number of distinct values of a column, estimated; see [`distinct`].
#[derive(Debug, Clone, Copy)]
pub struct Distinct<F> {
    column: F,
    precision: u8,
}

/// The number of distinct values of `column`, estimated by HyperLogLog++
/// with 2^`precision` registers (4 to 18): a standard error of about
/// 1.04 / √(2^precision), 0.8 % at 14; exact-ish while small (the sparse
/// representation).
///
/// ```
/// use microbatch::job::{distinct, Aggregator};
///
/// let users = distinct(|user: &u64| *user, 14);
/// let mut state = users.init();
/// for user in (0..20_000u64).map(|i| i % 5_000) {
///     users.update(&mut state, &user);
/// }
/// let estimate = users.finish(state);
/// assert!((estimate as f64 - 5_000.0).abs() < 100.0, "{estimate}");
/// ```
///
/// # Panics
/// If `precision` is not in 4..=18.
pub fn distinct<T, K, F>(column: F, precision: u8) -> Distinct<F>
where
    K: Hash,
    F: Fn(&T) -> K + Send + Sync + 'static,
{
    assert!(
        (4..=18).contains(&precision),
        "a distinct count has a precision of 4 to 18, not {precision}"
    );
    Distinct { column, precision }
}

impl<T, K, F> Aggregator<T> for Distinct<F>
where
    K: Hash + Send + 'static,
    F: Fn(&T) -> K + Send + Sync + 'static,
{
    type State = HyperLogLogPlus<K, SameHash>;
    type Output = u64;

    fn init(&self) -> Self::State {
        HyperLogLogPlus::new(self.precision, SameHash::default())
            .expect("a precision of 4 to 18 is valid")
    }

    #[inline]
    fn update(&self, state: &mut Self::State, item: &T) {
        state.insert(&(self.column)(item));
    }

    fn merge(&self, state: &mut Self::State, other: Self::State) {
        state
            .merge(&other)
            .expect("states of one aggregator share their precision");
    }

    fn finish(&self, mut state: Self::State) -> u64 {
        state.count().round() as u64
    }
}

/// The most frequent values of a column; see [`top_k`].
#[derive(Debug, Clone, Copy)]
pub struct TopK<F> {
    column: F,
    k: usize,
    capacity: usize,
}

/// A Space-Saving summary: at most `capacity` values with their counts
/// and the count each inherited when it took a less frequent value's
/// place (its possible over-count).
#[derive(Debug, Clone)]
pub struct SpaceSaving<V> {
    capacity: usize,
    counts: HashMap<V, (u64, u64)>,
}

impl<V: Hash + Eq + Clone> SpaceSaving<V> {
    fn add(&mut self, value: V, count: u64, error: u64) {
        if let Some(entry) = self.counts.get_mut(&value) {
            entry.0 += count;
            entry.1 += error;
            return;
        }
        if self.counts.len() < self.capacity {
            self.counts.insert(value, (count, error));
            return;
        }
        // Full: the least counted value gives its place, and the newcomer
        // inherits its count as a possible over-count.
        let (least, &(least_count, _)) = self
            .counts
            .iter()
            .min_by_key(|(_, (count, _))| *count)
            .expect("a full summary holds values");
        let least = least.clone();
        self.counts.remove(&least);
        self.counts
            .insert(value, (least_count + count, least_count + error));
    }
}

/// The `k` most frequent values of `column` with their counts, most first,
/// from a Space-Saving summary of `capacity` (at least `k`) values. Over
/// N values, a value seen more than N / `capacity` times is in the
/// summary, and each count is at most N / `capacity` over the true one
/// (twice that after merging summaries); ties are broken by value.
///
/// ```
/// use microbatch::job::{top_k, Aggregator};
///
/// let pages = top_k(|page: &u32| *page, 2, 64);
/// let mut state = pages.init();
/// for page in [7, 7, 7, 3, 3, 9, 1, 7, 3, 5] {
///     pages.update(&mut state, &page);
/// }
/// assert_eq!(pages.finish(state), [(7, 4), (3, 3)]);
/// ```
///
/// # Panics
/// If `k` is 0 or `capacity` is less than `k`.
pub fn top_k<T, V, F>(column: F, k: usize, capacity: usize) -> TopK<F>
where
    V: Hash + Eq + Clone + Ord,
    F: Fn(&T) -> V + Send + Sync + 'static,
{
    assert!(k > 0 && capacity >= k, "top_k needs 0 < k <= capacity");
    TopK {
        column,
        k,
        capacity,
    }
}

impl<T, V, F> Aggregator<T> for TopK<F>
where
    V: Hash + Eq + Clone + Ord + Send + 'static,
    F: Fn(&T) -> V + Send + Sync + 'static,
{
    type State = SpaceSaving<V>;
    type Output = Vec<(V, u64)>;

    fn init(&self) -> SpaceSaving<V> {
        SpaceSaving {
            capacity: self.capacity,
            counts: HashMap::new(),
        }
    }

    #[inline]
    fn update(&self, state: &mut SpaceSaving<V>, item: &T) {
        state.add((self.column)(item), 1, 0);
    }

    /// The mergeable summaries' merge: a value one summary does not hold
    /// may have been seen there up to that summary's least count (if it
    /// is full), so it is credited that much; then the `capacity` most
    /// counted values are kept. Counts stay at or over the true ones.
    fn merge(&self, state: &mut SpaceSaving<V>, other: SpaceSaving<V>) {
        let floor = |summary: &SpaceSaving<V>| {
            if summary.counts.len() < summary.capacity {
                0
            } else {
                summary
                    .counts
                    .values()
                    .map(|(count, _)| *count)
                    .min()
                    .unwrap_or(0)
            }
        };
        let (mine, theirs) = (floor(state), floor(&other));
        for (count, error) in state.counts.values_mut() {
            *count += theirs;
            *error += theirs;
        }
        for (value, (count, error)) in other.counts {
            match state.counts.get_mut(&value) {
                // Held by both: credited `theirs` above, which its own
                // count in the other summary replaces.
                Some(entry) => {
                    entry.0 = entry.0 - theirs + count;
                    entry.1 = entry.1 - theirs + error;
                }
                None => {
                    state.counts.insert(value, (count + mine, error + mine));
                }
            }
        }
        if state.counts.len() > state.capacity {
            let mut entries: Vec<(V, (u64, u64))> = state.counts.drain().collect();
            entries.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
            entries.truncate(state.capacity);
            state.counts.extend(entries);
        }
    }

    fn finish(&self, state: SpaceSaving<V>) -> Vec<(V, u64)> {
        let mut values: Vec<(V, u64)> = state
            .counts
            .into_iter()
            .map(|(value, (count, _))| (value, count))
            .collect();
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        values.truncate(self.k);
        values
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Folds `values` in `parts` parts and merges them, as workers and an
    /// owner do.
    fn fold_in_parts<T, A: Aggregator<T>>(aggregator: &A, values: &[T], parts: usize) -> A::Output {
        let mut states: Vec<A::State> = (0..parts).map(|_| aggregator.init()).collect();
        for (i, value) in values.iter().enumerate() {
            aggregator.update(&mut states[i % parts], value);
        }
        let mut merged = states.pop().expect("a part");
        for state in states {
            aggregator.merge(&mut merged, state);
        }
        aggregator.finish(merged)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn quantiles_are_within_their_precision_of_the_exact_ones(
            values in proptest::collection::vec(0..1_000_000u64, 1..2000),
            parts in 1..4usize,
        ) {
            let summary = fold_in_parts(&quantiles(|v: &u64| *v, 3), &values, parts);
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let exact = |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
            prop_assert_eq!(summary.count, values.len() as u64);
            for (got, q) in [(summary.p50, 0.5), (summary.p90, 0.9), (summary.p99, 0.99)] {
                let want = exact(q) as f64;
                prop_assert!((got as f64 - want).abs() <= want * 1e-3 + 1.0, "q {}: {} vs {}", q, got, want);
            }
            let max = *sorted.last().unwrap() as f64;
            prop_assert!((summary.max as f64 - max).abs() <= max * 1e-3 + 1.0);
        }

        #[test]
        fn a_distinct_count_is_within_a_few_percent(
            distinct_values in 1..40_000u64,
            repeats in 1..4u64,
            parts in 1..4usize,
        ) {
            let values: Vec<u64> = (0..distinct_values * repeats).map(|i| (i % distinct_values) * 7919).collect();
            let estimate = fold_in_parts(&distinct(|v: &u64| *v, 14), &values, parts) as f64;
            let exact = distinct_values as f64;
            // Six standard errors at precision 14 (0.8 %), and exact-ish
            // while the sparse representation holds.
            prop_assert!((estimate - exact).abs() <= exact * 0.05 + 2.0, "{} vs {}", estimate, exact);
        }

        #[test]
        fn the_top_values_and_their_counts_are_within_the_bound(
            values in proptest::collection::vec((0..200u32).prop_map(|v| v * v / 200), 1..3000),
            parts in 1..4usize,
        ) {
            let capacity = 64;
            let top = fold_in_parts(&top_k(|v: &u32| *v, 5, capacity), &values, parts);
            let mut exact: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
            for v in &values {
                *exact.entry(*v).or_default() += 1;
            }
            let bound = 2 * values.len() as u64 / capacity as u64;
            for (value, count) in &top {
                let truth = exact[value];
                prop_assert!(*count >= truth && *count <= truth + bound, "{}: {} vs {}", value, count, truth);
            }
            // Every value seen more than the bound is among the top if it
            // beats the fifth reported count.
            let fifth = top.last().map_or(0, |t| t.1);
            for (value, &truth) in &exact {
                if truth > bound && truth > fifth {
                    prop_assert!(top.iter().any(|(v, _)| v == value), "{} ({}) missing", value, truth);
                }
            }
        }
    }
}
