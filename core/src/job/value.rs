//! The numeric column values the built-in aggregators and kernels reduce.

/// A numeric column value: the integer and float primitives.
///
/// Integer sums wrap on overflow (as Spark's `sum` of longs does outside
/// ANSI mode); widen the column in a `map` if that matters.
pub trait Value: Copy + PartialOrd + Send + Sync + std::fmt::Debug + 'static {
    /// The sum of nothing.
    const ZERO: Self;
    /// The least value: the max of nothing.
    const MIN: Self;
    /// The greatest value: the min of nothing.
    const MAX: Self;
    /// `self + other`, wrapping for integers.
    fn add(self, other: Self) -> Self;
    /// The lesser of the two.
    fn min_of(self, other: Self) -> Self;
    /// The greater of the two.
    fn max_of(self, other: Self) -> Self;
    /// As a float, for means.
    fn to_f64(self) -> f64;
}

macro_rules! integer_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            const ZERO: Self = 0;
            const MIN: Self = <$t>::MIN;
            const MAX: Self = <$t>::MAX;
            #[inline(always)]
            fn add(self, other: Self) -> Self { self.wrapping_add(other) }
            #[inline(always)]
            fn min_of(self, other: Self) -> Self { Ord::min(self, other) }
            #[inline(always)]
            fn max_of(self, other: Self) -> Self { Ord::max(self, other) }
            #[inline(always)]
            fn to_f64(self) -> f64 { self as f64 }
        }
    )*};
}
integer_value!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

macro_rules! float_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            const ZERO: Self = 0.0;
            const MIN: Self = <$t>::NEG_INFINITY;
            const MAX: Self = <$t>::INFINITY;
            #[inline(always)]
            fn add(self, other: Self) -> Self { self + other }
            #[inline(always)]
            fn min_of(self, other: Self) -> Self { if other < self { other } else { self } }
            #[inline(always)]
            fn max_of(self, other: Self) -> Self { if other > self { other } else { self } }
            #[inline(always)]
            fn to_f64(self) -> f64 { self as f64 }
        }
    )*};
}
float_value!(f32, f64);
