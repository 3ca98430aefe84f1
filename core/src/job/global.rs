//! Unkeyed reduction: every worker folds its records into one state with a
//! vectorized kernel; worker 0 merges the states of an epoch into one row.

use std::marker::PhantomData;

use super::{Aggregator, Job, Parts, Pipe};

/// One worker's state of a global reduction; `None` until an item came.
pub struct GlobalPart<S> {
    state: Option<S>,
}

/// A global (unkeyed) aggregation job; see [`super::Stream::aggregate`].
pub struct GlobalJob<R, P, A> {
    pipe: P,
    aggregator: A,
    _records: PhantomData<fn(&R)>,
}

impl<R, P, A> GlobalJob<R, P, A> {
    pub(super) fn new(pipe: P, aggregator: A) -> Self {
        GlobalJob {
            pipe,
            aggregator,
            _records: PhantomData,
        }
    }
}

impl<R, P, A> Job<R> for GlobalJob<R, P, A>
where
    R: 'static,
    P: Pipe<R>,
    A: Aggregator<P::Out>,
{
    type Part = GlobalPart<A::State>;
    type Row = A::Output;
    type Totals = ();

    fn partitions(&self, _: usize) -> usize {
        1
    }

    fn new_totals(&self) {}

    fn new_part(&self) -> Self::Part {
        GlobalPart { state: None }
    }

    // Hot path: without stages the aggregator sees the whole slice.
    #[inline]
    fn absorb(&self, records: &[R], mut parts: Parts<'_, Self::Part>) {
        let part = &mut parts[0];
        self.pipe.feed_slice(records, |items| {
            if items.is_empty() {
                return;
            }
            let state = part.state.get_or_insert_with(|| self.aggregator.init());
            self.aggregator.update_slice(state, items);
        });
    }

    fn merge(&self, into: &mut Self::Part, from: &mut Self::Part) {
        if let Some(other) = from.state.take() {
            match &mut into.state {
                Some(state) => self.aggregator.merge(state, other),
                None => into.state = Some(other),
            }
        }
    }

    fn finish(&self, part: &mut Self::Part, rows: &mut Vec<Self::Row>) {
        if let Some(state) = part.state.take() {
            rows.push(self.aggregator.finish(state));
        }
    }
}
