//! The built-in aggregators over items of a known type, so that their
//! column closures need no type annotation:
//! `.aggregate_with(|c| (c.count(), c.sum(|r| r.1)))` rather than
//! `.aggregate((count(), sum(|r: &(u32, u64)| r.1)))`.

use std::hash::Hash;
use std::marker::PhantomData;

use super::{
    count, distinct, max, mean, min, quantiles, sum, top_k, Count, Distinct, Max, Mean, Min,
    Quantiles, Sum, TopK, Value,
};

/// The built-in aggregators over items of type `T`, handed to the closure
/// of [`Stream::aggregate_with`](super::Stream::aggregate_with) and
/// [`KeyedStream::aggregate_with`](super::KeyedStream::aggregate_with):
/// each method is the function of the same name in [`job`](super), with
/// the column closure's argument known to be `&T`.
///
/// ```
/// use microbatch::job;
///
/// struct Request { endpoint: u16, micros: u64, user: u64 }
///
/// let per_endpoint = job::records::<Request>()
///     .key_by(|r| r.endpoint)
///     .aggregate_with(|c| (c.count(), c.quantiles(|r| r.micros, 3), c.distinct(|r| r.user, 12)));
/// # let _ = per_endpoint;
/// ```
pub struct Columns<T>(PhantomData<fn(&T)>);

impl<T> Columns<T> {
    pub(super) fn new() -> Self {
        Columns(PhantomData)
    }

    /// [`count`](super::count): items.
    pub fn count(&self) -> Count {
        count()
    }

    /// [`sum`](super::sum) of a column.
    pub fn sum<V: Value, F: Fn(&T) -> V + Send + Sync + 'static>(&self, column: F) -> Sum<F> {
        sum(column)
    }

    /// [`min`](super::min) of a column.
    pub fn min<V: Value, F: Fn(&T) -> V + Send + Sync + 'static>(&self, column: F) -> Min<F> {
        min(column)
    }

    /// [`max`](super::max) of a column.
    pub fn max<V: Value, F: Fn(&T) -> V + Send + Sync + 'static>(&self, column: F) -> Max<F> {
        max(column)
    }

    /// [`mean`](super::mean) of a column.
    pub fn mean<V: Value, F: Fn(&T) -> V + Send + Sync + 'static>(&self, column: F) -> Mean<F> {
        mean(column)
    }

    /// [`quantiles`](super::quantiles) of a column.
    pub fn quantiles<F: Fn(&T) -> u64 + Send + Sync + 'static>(
        &self,
        column: F,
        significant_digits: u8,
    ) -> Quantiles<F> {
        quantiles(column, significant_digits)
    }

    /// [`distinct`](super::distinct) values of a column.
    pub fn distinct<K: Hash, F: Fn(&T) -> K + Send + Sync + 'static>(
        &self,
        column: F,
        precision: u8,
    ) -> Distinct<F> {
        distinct(column, precision)
    }

    /// [`top_k`](super::top_k) values of a column.
    pub fn top_k<V, F>(&self, column: F, k: usize, capacity: usize) -> TopK<F>
    where
        V: Hash + Eq + Clone + Ord,
        F: Fn(&T) -> V + Send + Sync + 'static,
    {
        top_k(column, k, capacity)
    }
}
