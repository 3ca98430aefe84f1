//! Reduction kernels over contiguous slices: tight loops with several
//! independent accumulators, so that the compiler keeps them in vector
//! registers (and may reorder a float sum, which these kernels allow).
//!
//! Hot path: these run over every record of a global reduction.

use super::value::Value;

/// Independent accumulators per kernel: 8 lanes of u64 fill two AVX2
/// registers, so the loop carries no dependency between neighbours.
const LANES: usize = 8;

/// Folds `f` of every item with `op`, starting from `identity`. `op` must
/// be associative and commutative; the order of combination is unspecified.
#[inline(always)]
pub fn fold<T, V: Value>(
    items: &[T],
    identity: V,
    f: impl Fn(&T) -> V,
    op: impl Fn(V, V) -> V,
) -> V {
    let mut lanes = [identity; LANES];
    let mut chunks = items.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, item) in lanes.iter_mut().zip(chunk) {
            *lane = op(*lane, f(item));
        }
    }
    let mut total = chunks
        .remainder()
        .iter()
        .fold(identity, |acc, item| op(acc, f(item)));
    for lane in lanes {
        total = op(total, lane);
    }
    total
}

/// The sum of `values` (wrapping for integers).
///
/// ```
/// assert_eq!(microbatch::internals::kernels::sum(&[1u64, 2, 3]), 6);
/// ```
pub fn sum<V: Value>(values: &[V]) -> V {
    fold(values, V::ZERO, |v| *v, V::add)
}

/// The least of `values`, or `V::MAX` for none.
pub fn min<V: Value>(values: &[V]) -> V {
    fold(values, V::MAX, |v| *v, V::min_of)
}

/// The greatest of `values`, or `V::MIN` for none.
pub fn max<V: Value>(values: &[V]) -> V {
    fold(values, V::MIN, |v| *v, V::max_of)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn kernels_match_a_plain_loop(values in proptest::collection::vec(any::<u64>(), 0..100)) {
            prop_assert_eq!(sum(&values), values.iter().fold(0u64, |a, v| a.wrapping_add(*v)));
            prop_assert_eq!(min(&values), values.iter().copied().min().unwrap_or(u64::MAX));
            prop_assert_eq!(max(&values), values.iter().copied().max().unwrap_or(0));
        }
    }

    #[test]
    fn float_sum_of_integers_is_exact() {
        let values: Vec<f64> = (0..1001).map(f64::from).collect();
        assert_eq!(sum(&values), 500_500.0);
        assert_eq!(min(&values), 0.0);
        assert_eq!(max(&values), 1000.0);
    }
}
