//! In-worker generators cut into morsels: the workers claim morsel after
//! morsel from one counter (one atomic per morsel, so they stay even), and
//! morsel `i` is always the same records, so the stream is the same for
//! any worker count. Open-loop pacing at a rate: record `i` is due
//! `i / rate` s after the start. The click-stream and Nexmark generators
//! are both this.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use microbatch::source::{Poll, Source, SourceParts};

/// Records per morsel: the unit a worker claims and draws at once.
pub(crate) const MORSEL: u64 = 4096;

/// What a morsel generator draws.
pub(crate) trait Morsels: Send + Sync + 'static {
    /// The records drawn.
    type Record: Copy + Send + 'static;

    /// Records in all; `u64::MAX`: until shutdown.
    fn total(&self) -> u64;

    /// Records per second, open loop; `None`: as fast as the workers go.
    fn rate(&self) -> Option<u64>;

    /// Draws morsel `index` (records `index × MORSEL` up to the next
    /// morsel or `total`) into `out`, empty on entry.
    fn draw(&self, index: u64, out: &mut Vec<Self::Record>);

    /// When record `index` is due, µs after the start.
    fn due_micros(&self, index: u64) -> Option<u64> {
        self.rate()
            .map(|rate| (u128::from(index) * 1_000_000 / u128::from(rate)) as u64)
    }
}

/// Every record of `morsels`, drawn on this thread (for tests, baselines
/// and writing a log); `total` must be bounded.
pub(crate) fn draw_all<M: Morsels>(morsels: &M, mut each: impl FnMut(&[M::Record])) {
    let mut morsel = Vec::with_capacity(MORSEL as usize);
    for index in 0..morsels.total().div_ceil(MORSEL) {
        morsel.clear();
        morsels.draw(index, &mut morsel);
        each(&morsel);
    }
}

/// One part per worker, sharing the morsel counter.
pub(crate) fn split<M: Morsels>(morsels: M, workers: usize) -> SourceParts<M::Record> {
    let shared = Arc::new(Shared {
        morsels,
        next: AtomicU64::new(0),
    });
    (0..workers.max(1))
        .map(|_| {
            Box::new(MorselPart {
                shared: Arc::clone(&shared),
                morsel: Vec::with_capacity(MORSEL as usize),
                first: 0,
                served: 0,
            }) as Box<dyn Source<M::Record>>
        })
        .collect()
}

struct Shared<M> {
    morsels: M,
    /// The next morsel to claim.
    next: AtomicU64,
}

/// One worker's part: the morsel it drew and how much of it is served.
struct MorselPart<M: Morsels> {
    shared: Arc<Shared<M>>,
    morsel: Vec<M::Record>,
    /// Index of the morsel's first record.
    first: u64,
    served: usize,
}

impl<M: Morsels> Source<M::Record> for MorselPart<M> {
    // Hot path: a copy of the morsel's records; a draw every MORSEL.
    fn poll(&mut self, now_micros: u64, out: &mut Vec<M::Record>, max: usize) -> Poll {
        let morsels = &self.shared.morsels;
        if self.served == self.morsel.len() {
            let next = &self.shared.next;
            let index = next.load(Ordering::Relaxed);
            let first = index.saturating_mul(MORSEL);
            if first >= morsels.total() {
                return Poll::Exhausted;
            }
            if morsels
                .due_micros(first)
                .is_some_and(|due| due > now_micros)
            {
                return Poll::Idle;
            }
            // One atomic per morsel; a lost race tries again next poll.
            if next
                .compare_exchange(index, index + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                return Poll::Idle;
            }
            self.morsel.clear();
            morsels.draw(index, &mut self.morsel);
            self.first = first;
            self.served = 0;
        }
        let position = self.first + self.served as u64;
        let due = match morsels.rate() {
            Some(rate) => {
                let due_until = (u128::from(now_micros) * u128::from(rate) / 1_000_000 + 1) as u64;
                due_until.saturating_sub(position) as usize
            }
            None => usize::MAX,
        };
        // Only once a millisecond's worth is due (or the morsel's rest), so
        // that the worker waits in its backoff between runs instead of
        // spinning on a record at a time.
        let left = self.morsel.len() - self.served;
        let run = morsels.rate().map_or(1, |rate| {
            usize::try_from(rate / 1000).unwrap_or(usize::MAX).max(1)
        });
        if due < run.min(left).min(max) {
            return Poll::Idle;
        }
        let count = left.min(max).min(due);
        out.extend_from_slice(&self.morsel[self.served..self.served + count]);
        self.served += count;
        Poll::Ready {
            intended_micros: morsels.due_micros(position),
        }
    }
}

/// Every record of `parts`, polled in turn at time 0 until each is
/// exhausted (for tests of a generator's parts).
#[cfg(test)]
pub(crate) fn poll_all<R: Copy + 'static>(mut parts: SourceParts<R>) -> Vec<R> {
    let mut got = Vec::new();
    let mut chunk = Vec::new();
    let mut done = vec![false; parts.len()];
    while done.iter().any(|d| !d) {
        for (w, part) in parts.iter_mut().enumerate() {
            chunk.clear();
            if let Poll::Exhausted = part.poll(0, &mut chunk, 1000) {
                done[w] = true;
            }
            got.extend_from_slice(&chunk);
        }
    }
    got
}
