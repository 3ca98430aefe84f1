//! Associative reductions: the [`Aggregator`] trait that user code
//! implements, the built-in `count`, `sum`, `min`, `max`, `mean`, and tuples
//! of aggregators that run together in one pass.

use super::kernels;
use super::value::Value;

/// A user-defined map/reduce step: `init` a state, `update` it with each
/// item, `merge` two states of the same key, `finish` into the output.
///
/// `merge` must be associative and commutative, and `update` must agree
/// with it: folding items into one state or into two merged states gives
/// the same output. The engine updates states on the worker that took the
/// records in and merges them on the key's owner, in any order.
///
/// ```
/// use microbatch::job::Aggregator;
///
/// /// Distinct values of a small domain, as a bit set.
/// struct Distinct;
/// impl Aggregator<u8> for Distinct {
///     type State = [u64; 4];
///     type Output = u32;
///     fn init(&self) -> [u64; 4] { [0; 4] }
///     fn update(&self, state: &mut [u64; 4], item: &u8) {
///         state[usize::from(*item / 64)] |= 1 << (item % 64);
///     }
///     fn merge(&self, state: &mut [u64; 4], other: [u64; 4]) {
///         for (word, other) in state.iter_mut().zip(other) { *word |= other; }
///     }
///     fn finish(&self, state: [u64; 4]) -> u32 {
///         state.iter().map(|word| word.count_ones()).sum()
///     }
/// }
/// let mut state = Distinct.init();
/// Distinct.update_slice(&mut state, &[1, 2, 2, 200]);
/// assert_eq!(Distinct.finish(state), 3);
/// ```
pub trait Aggregator<T>: Send + Sync + 'static {
    /// The running state of one key (or of the whole stream).
    type State: Send + 'static;
    /// What a key's row holds.
    type Output: Send + 'static;

    /// The state of no items.
    fn init(&self) -> Self::State;

    /// Folds one item in. Hot path.
    fn update(&self, state: &mut Self::State, item: &T);

    /// Folds a contiguous run of items in; built-ins override it with a
    /// vectorized kernel. Hot path.
    #[inline]
    fn update_slice(&self, state: &mut Self::State, items: &[T]) {
        for item in items {
            self.update(state, item);
        }
    }

    /// Folds another state of the same key in.
    fn merge(&self, state: &mut Self::State, other: Self::State);

    /// The output of a final state.
    fn finish(&self, state: Self::State) -> Self::Output;
}

/// Counts items. Made by [`count`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

/// Counts items.
pub fn count() -> Count {
    Count
}

impl<T> Aggregator<T> for Count {
    type State = u64;
    type Output = u64;

    fn init(&self) -> u64 {
        0
    }
    #[inline(always)]
    fn update(&self, state: &mut u64, _: &T) {
        *state += 1;
    }
    #[inline(always)]
    fn update_slice(&self, state: &mut u64, items: &[T]) {
        *state += items.len() as u64;
    }
    fn merge(&self, state: &mut u64, other: u64) {
        *state += other;
    }
    fn finish(&self, state: u64) -> u64 {
        state
    }
}

macro_rules! column_aggregator {
    ($(#[$doc:meta])* $name:ident, $make:ident, $identity:ident, $op:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<F>(F);

        $(#[$doc])*
        pub fn $make<T, V: Value, F: Fn(&T) -> V + Send + Sync + 'static>(column: F) -> $name<F> {
            $name(column)
        }

        impl<T, V, F> Aggregator<T> for $name<F>
        where
            V: Value,
            F: Fn(&T) -> V + Send + Sync + 'static,
        {
            type State = V;
            type Output = V;

            fn init(&self) -> V {
                V::$identity
            }
            #[inline(always)]
            fn update(&self, state: &mut V, item: &T) {
                *state = state.$op((self.0)(item));
            }
            #[inline(always)]
            fn update_slice(&self, state: &mut V, items: &[T]) {
                *state = state.$op(kernels::fold(items, V::$identity, &self.0, V::$op));
            }
            fn merge(&self, state: &mut V, other: V) {
                *state = state.$op(other);
            }
            fn finish(&self, state: V) -> V {
                state
            }
        }
    };
}

column_aggregator!(
    /// The sum of a column (wrapping for integers).
    Sum, sum, ZERO, add
);
column_aggregator!(
    /// The least value of a column.
    Min, min, MAX, min_of
);
column_aggregator!(
    /// The greatest value of a column.
    Max, max, MIN, max_of
);

/// The mean of a column, as `f64`. Made by [`mean`].
#[derive(Debug, Clone, Copy)]
pub struct Mean<F>(F);

/// The mean of a column, as `f64`.
pub fn mean<T, V: Value, F: Fn(&T) -> V + Send + Sync + 'static>(column: F) -> Mean<F> {
    Mean(column)
}

impl<T, V, F> Aggregator<T> for Mean<F>
where
    V: Value,
    F: Fn(&T) -> V + Send + Sync + 'static,
{
    /// (sum, count)
    type State = (f64, u64);
    type Output = f64;

    fn init(&self) -> (f64, u64) {
        (0.0, 0)
    }
    #[inline(always)]
    fn update(&self, state: &mut (f64, u64), item: &T) {
        state.0 += (self.0)(item).to_f64();
        state.1 += 1;
    }
    #[inline(always)]
    fn update_slice(&self, state: &mut (f64, u64), items: &[T]) {
        state.0 += kernels::fold(items, 0.0, |item| (self.0)(item).to_f64(), f64::add);
        state.1 += items.len() as u64;
    }
    fn merge(&self, state: &mut (f64, u64), other: (f64, u64)) {
        state.0 += other.0;
        state.1 += other.1;
    }
    fn finish(&self, (sum, count): (f64, u64)) -> f64 {
        sum / count as f64
    }
}

macro_rules! tuple_aggregator {
    ($($a:ident $i:tt),+) => {
        /// Runs the aggregators together; the row holds their outputs in order.
        impl<T, $($a: Aggregator<T>),+> Aggregator<T> for ($($a,)+) {
            type State = ($($a::State,)+);
            type Output = ($($a::Output,)+);

            fn init(&self) -> Self::State {
                ($(self.$i.init(),)+)
            }
            #[inline(always)]
            fn update(&self, state: &mut Self::State, item: &T) {
                $(self.$i.update(&mut state.$i, item);)+
            }
            #[inline(always)]
            fn update_slice(&self, state: &mut Self::State, items: &[T]) {
                $(self.$i.update_slice(&mut state.$i, items);)+
            }
            fn merge(&self, state: &mut Self::State, other: Self::State) {
                $(self.$i.merge(&mut state.$i, other.$i);)+
            }
            fn finish(&self, state: Self::State) -> Self::Output {
                ($(self.$i.finish(state.$i),)+)
            }
        }
    };
}
tuple_aggregator!(A 0);
tuple_aggregator!(A 0, B 1);
tuple_aggregator!(A 0, B 1, C 2);
tuple_aggregator!(A 0, B 1, C 2, D 3);
tuple_aggregator!(A 0, B 1, C 2, D 3, E 4);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn run<T, A: Aggregator<T>>(aggregator: &A, items: &[T], split: usize) -> A::Output {
        let (left, right) = items.split_at(split);
        let mut one = aggregator.init();
        for item in left {
            aggregator.update(&mut one, item);
        }
        let mut two = aggregator.init();
        aggregator.update_slice(&mut two, right);
        aggregator.merge(&mut one, two);
        aggregator.finish(one)
    }

    #[test]
    fn built_ins_agree_split_or_not() {
        let items: Vec<(u64, f64)> = (1..=100).map(|i| (i, i as f64 / 2.0)).collect();
        let all = (
            count(),
            sum(|r: &(u64, f64)| r.0),
            min(|r: &(u64, f64)| r.1),
            max(|r: &(u64, f64)| r.0),
            mean(|r: &(u64, f64)| r.0),
        );
        for split in [0, 1, 37, 100] {
            assert_eq!(run(&all, &items, split), (100, 5050, 0.5, 100, 50.5));
        }
    }

    #[test]
    fn integer_sum_wraps() {
        let items = [u64::MAX, 2];
        assert_eq!(run(&sum(|v: &u64| *v), &items, 1), 1);
    }
}
