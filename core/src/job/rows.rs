//! Jobs without an aggregation: every item the stages let through is a
//! row of its epoch (a map or a filter, as Nexmark's q0 to q2 are).

use std::marker::PhantomData;

use super::{Job, Parts, Pipe};

/// Each item of the stages `P` over records `R` is a row of the epoch it
/// was folded in; see [`Stream::rows`](super::Stream::rows). Rows carry no
/// order across workers; within a worker's batch they keep the records'.
///
/// ```
/// use microbatch::job;
/// use microbatch::sink::CollectSink;
/// use microbatch::source::IterSource;
/// use microbatch::Engine;
///
/// // The even numbers, doubled.
/// let doubled = job::records::<u64>().filter(|n| n % 2 == 0).map(|n| n * 2).rows();
/// let (sink, rows) = CollectSink::new();
/// let engine = Engine::builder(doubled, sink)
///     .workers(2)
///     .source(IterSource::new(0..10u64))
///     .start()?;
/// engine.finish()?;
/// let mut rows: Vec<u64> = rows.take().into_iter().map(|(_, row)| row).collect();
/// rows.sort();
/// assert_eq!(rows, [0, 4, 8, 12, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RowsJob<R, P> {
    pub(super) pipe: P,
    pub(super) _records: PhantomData<fn(&R)>,
}

impl<R, P> Job<R> for RowsJob<R, P>
where
    R: 'static,
    P: Pipe<R>,
    P::Out: Clone + Send + 'static,
{
    /// The partition's rows of the epoch, in the order folded.
    type Part = Vec<P::Out>;
    type Row = P::Out;
    type Totals = ();

    /// One partition per worker, so that every owner shares the emitting.
    fn partitions(&self, workers: usize) -> usize {
        workers
    }

    fn new_part(&self) -> Vec<P::Out> {
        Vec::new()
    }

    fn new_totals(&self) {}

    // Hot path: per item, one copy into the part (its memory is recycled
    // from epoch to epoch). The run goes to the part holding the fewest
    // rows, which keeps the owners' shares even without a key to hash.
    fn absorb(&self, records: &[R], mut parts: Parts<'_, Vec<P::Out>>) {
        let Some(part) = parts.iter_mut().min_by_key(|part| part.len()) else {
            return;
        };
        self.pipe
            .feed_slice(records, |items| part.extend_from_slice(items));
    }

    fn merge(&self, into: &mut Vec<P::Out>, from: &mut Vec<P::Out>) {
        if into.is_empty() {
            // The emptied part keeps `into`'s old memory for reuse.
            std::mem::swap(into, from);
        } else {
            into.append(from);
        }
    }

    fn finish(&self, part: &mut Vec<P::Out>, rows: &mut Vec<P::Out>) {
        if rows.is_empty() {
            std::mem::swap(part, rows);
        } else {
            rows.append(part);
        }
    }
}
