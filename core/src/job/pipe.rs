//! The per-record stages before a reduction: `filter`, `map` and
//! `flat_map`, composed at compile time into one inlined function per job.

/// A chain of stages that turns one input record into items for the
/// reduction (zero or one, or any number after a `flat_map`), by
/// reference: nothing is cloned or boxed.
pub trait Pipe<R>: Send + Sync + 'static {
    /// What the chain hands to the next stage.
    type Out;

    /// Feeds `record` through the chain, calling `next` with what comes out.
    fn feed<F: FnMut(&Self::Out)>(&self, record: &R, next: F);

    /// Feeds a run of records: the identity hands the whole slice on, so a
    /// reduction without stages sees contiguous memory it can vectorize.
    fn feed_slice<F: FnMut(&[Self::Out])>(&self, records: &[R], mut next: F) {
        for record in records {
            self.feed(record, |item| next(std::slice::from_ref(item)));
        }
    }
}

/// The empty chain: records pass unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl<R> Pipe<R> for Identity {
    type Out = R;

    #[inline(always)]
    fn feed<F: FnMut(&R)>(&self, record: &R, mut next: F) {
        next(record)
    }

    #[inline(always)]
    fn feed_slice<F: FnMut(&[R])>(&self, records: &[R], mut next: F) {
        next(records)
    }
}

/// Keeps the items for which the predicate holds.
#[derive(Debug, Clone, Copy)]
pub struct Filter<P, F> {
    pub(crate) inner: P,
    pub(crate) predicate: F,
}

impl<R, P, F> Pipe<R> for Filter<P, F>
where
    P: Pipe<R>,
    F: Fn(&P::Out) -> bool + Send + Sync + 'static,
{
    type Out = P::Out;

    #[inline(always)]
    fn feed<N: FnMut(&P::Out)>(&self, record: &R, mut next: N) {
        self.inner.feed(record, |item| {
            if (self.predicate)(item) {
                next(item)
            }
        })
    }
}

/// Replaces each item by a function of it.
#[derive(Debug, Clone, Copy)]
pub struct Map<P, F> {
    pub(crate) inner: P,
    pub(crate) function: F,
}

impl<R, P, F, T> Pipe<R> for Map<P, F>
where
    P: Pipe<R>,
    F: Fn(&P::Out) -> T + Send + Sync + 'static,
{
    type Out = T;

    #[inline(always)]
    fn feed<N: FnMut(&T)>(&self, record: &R, mut next: N) {
        self.inner.feed(record, |item| next(&(self.function)(item)))
    }
}

/// Replaces each item by the items a function of it yields (an array, an
/// `Option`, ...: any `IntoIterator`, nothing allocated unless it does).
#[derive(Debug, Clone, Copy)]
pub struct FlatMap<P, F> {
    pub(crate) inner: P,
    pub(crate) function: F,
}

impl<R, P, F, I> Pipe<R> for FlatMap<P, F>
where
    P: Pipe<R>,
    F: Fn(&P::Out) -> I + Send + Sync + 'static,
    I: IntoIterator,
{
    type Out = I::Item;

    #[inline(always)]
    fn feed<N: FnMut(&I::Item)>(&self, record: &R, mut next: N) {
        self.inner.feed(record, |item| {
            for out in (self.function)(item) {
                next(&out)
            }
        })
    }
}
