//! The async producer (`tokio` feature): a push that awaits room without
//! blocking the runtime's thread, over the pool of rings a shared handle
//! has (see `shared`: a claim is held for one store, never across an
//! await).
//!
//! Waiting for room: each ring's lane has a `Notify` that every taker
//! signals after a chunk leaves the ring, and the close signals too. A
//! push that found every ring full enables its wait on its own ring first,
//! then tries the rings again, then awaits: a chunk taken between the try
//! and the await leaves a stored permit (`notify_one`), so the wake-up is
//! never lost. A woken push that stores its record passes the wake-up on
//! (`notify_one` again), so that one chunk taken wakes every waiter in
//! turn, not only the first. Waiting for the drain after a push raced the
//! close works the same way on the worker's `drained` notify
//! (`notify_waiters`, signalled after `finished` is set).

use std::pin::pin;
use std::time::{Duration, Instant};

use super::producer::{Producer, Sent};
use super::shared::{Attempt, Pool};
use super::{Closed, PushError};
use crate::config::Overload;
use crate::sync::{Arc, Ordering};

/// A `Clone + Send + Sync` handle whose pushes await room instead of
/// blocking: for tokio tasks and request handlers. Made by
/// [`Engine::async_producer`](crate::Engine::async_producer).
///
/// Behind it are a few rings, each a [`Producer`] behind a claim held for
/// one store (as a [`SharedProducer`](crate::SharedProducer)'s). A push
/// tries each ring once, from the clone's own and moving on when one is
/// claimed or full; only when all are full does it await room, on its own
/// ring. The same contract as [`Producer`]: a push that completes either
/// accepted the record or hands it back.
///
/// **Cancellation.** Dropping a push future before it completes drops its
/// record: never accepted, never in a result, not counted. To bound the
/// wait and keep the record, use
/// [`push_timeout`](AsyncProducer::push_timeout) or
/// [`try_push`](AsyncProducer::try_push).
///
/// ```
/// use std::time::Duration;
/// use microbatch::job::{self, count};
/// use microbatch::tokio::ChannelSink;
/// use microbatch::{Engine, Overload, PushError, Sent};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (sink, mut results) = ChannelSink::unbounded();
/// let engine = Engine::builder(job::records::<u32>().key_by(|r| *r).aggregate(count()), sink)
///     .embedded()
///     .overload(Overload::DropNewest)
///     .start()?;
/// let requests = engine.async_producer(1);
/// // A handler's push: shed, not waited for, when the engine is behind.
/// let handler = requests.clone();
/// let sent = tokio::spawn(async move { handler.send(7).await }).await??;
/// assert!(matches!(sent, Sent::Accepted | Sent::Shed));
/// // A bounded wait that keeps the record if it runs out.
/// match requests.push_timeout(8, Duration::from_millis(5)).await {
///     Ok(()) => {}
///     Err(PushError::Full(record)) => assert_eq!(record, 8),
///     Err(PushError::Closed(_)) => unreachable!("the engine runs"),
/// }
/// let summary = engine.shutdown_async().await?;
/// let mut rows = 0;
/// while let Some(epoch) = results.recv().await {
///     rows += epoch.rows.len() as u64;
/// }
/// assert_eq!(rows, summary.rows);
/// # Ok(())
/// # }
/// ```
pub struct AsyncProducer<R> {
    pool: Arc<Pool<R>>,
    /// The ring this clone tries first, and awaits room in.
    home: usize,
}

/// How long a push may wait for room.
#[derive(Clone, Copy)]
enum Patience {
    None,
    Until(Instant),
    Forever,
}

impl<R: Send> AsyncProducer<R> {
    /// A handle over `rings` (not empty), attached with `wakes` set.
    pub(crate) fn new(rings: Vec<Producer<R>>) -> Self {
        AsyncProducer {
            pool: Pool::new(rings),
            home: 0,
        }
    }

    /// How many rings the handle pushes into.
    pub fn rings(&self) -> usize {
        self.pool.rings.len()
    }

    /// Pushes `record`, awaiting room while the rings are full. Fails only
    /// when the engine shuts down, handing the record back. Not
    /// cancel-safe (see the type's docs).
    pub async fn push(&self, record: R) -> Result<(), Closed<R>> {
        self.store(record, Patience::Forever)
            .await
            .map_err(|error| Closed(error.into_inner()))
    }

    /// Pushes `record` if a ring has room; [`PushError::Full`] hands it
    /// back when every ring is full. Awaits only when the engine closes
    /// during the call: the worker's final drain, to learn whether it took
    /// the record.
    pub async fn try_push(&self, record: R) -> Result<(), PushError<R>> {
        self.store(record, Patience::None).await
    }

    /// Pushes `record`, awaiting room for up to `timeout`;
    /// [`PushError::Full`] hands it back if the rings stayed full that
    /// long. Uses tokio's timer: the runtime needs it enabled
    /// (`enable_time`, or `enable_all`).
    pub async fn push_timeout(&self, record: R, timeout: Duration) -> Result<(), PushError<R>> {
        self.store(record, Patience::Until(Instant::now() + timeout))
            .await
    }

    /// Pushes `record` as the engine's [`Overload`] policy says when the
    /// rings are full: await room (`Block`), hand it back (`Fail`, as
    /// [`PushError::Full`]) or drop and count it (`DropNewest`,
    /// [`Sent::Shed`]).
    pub async fn send(&self, record: R) -> Result<Sent, PushError<R>> {
        match self.pool.lanes.overload {
            Overload::Block => self.store(record, Patience::Forever).await,
            Overload::Fail => self.store(record, Patience::None).await,
            Overload::DropNewest => match self.store(record, Patience::None).await {
                Err(PushError::Full(_)) => {
                    self.pool.lanes.shed.fetch_add(1, Ordering::Relaxed);
                    return Ok(Sent::Shed);
                }
                done => done,
            },
        }
        .map(|()| Sent::Accepted)
    }

    /// A pass over the rings; while they are full and `patience` allows,
    /// awaits room in the clone's own ring and tries again.
    async fn store(&self, record: R, patience: Patience) -> Result<(), PushError<R>> {
        let mut record = match self.pool.attempt(record, self.home) {
            Attempt::Full(back) => back,
            done => return self.settle(done).await,
        };
        let room = self.pool.rings[self.home]
            .lane
            .room
            .as_ref()
            .expect("an async producer's lanes wake it");
        loop {
            let mut wait = pin!(room.notified());
            wait.as_mut().enable();
            record = match self.pool.attempt(record, self.home) {
                Attempt::Full(back) => back,
                done => return self.settle(done).await,
            };
            match patience {
                Patience::None => return Err(PushError::Full(record)),
                Patience::Forever => wait.await,
                Patience::Until(deadline) => {
                    let deadline = ::tokio::time::Instant::from_std(deadline);
                    if ::tokio::time::timeout_at(deadline, wait).await.is_err() {
                        return Err(PushError::Full(record));
                    }
                }
            }
            // Woken: the next waiter's turn comes after this push.
            record = match self.pool.attempt(record, self.home) {
                Attempt::Full(back) => back,
                done => {
                    room.notify_one();
                    return self.settle(done).await;
                }
            };
        }
    }

    /// What an attempt that did not find the rings full means; after a
    /// push raced the close, awaits the ring's worker's final drain, then
    /// takes the record back unless the drain took it (cold).
    async fn settle(&self, attempt: Attempt<R>) -> Result<(), PushError<R>> {
        let ring = match attempt {
            Attempt::Accepted => return Ok(()),
            Attempt::Full(back) => return Err(PushError::Full(back)),
            Attempt::Closed(back) => return Err(PushError::Closed(back)),
            Attempt::Raced { ring } => ring,
        };
        let worker = self.pool.rings[ring].worker;
        let drained = &self.pool.lanes.workers[worker].drained;
        loop {
            let mut wait = pin!(drained.notified());
            wait.as_mut().enable();
            if self.pool.is_drained(ring) {
                return self.pool.reclaim(ring);
            }
            wait.await;
        }
    }
}

impl<R> Clone for AsyncProducer<R> {
    /// Another handle on the same rings, trying the next ring first.
    fn clone(&self) -> Self {
        AsyncProducer {
            pool: Arc::clone(&self.pool),
            home: self.pool.next_home(),
        }
    }
}

impl<R> std::fmt::Debug for AsyncProducer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncProducer")
            .field("rings", &self.pool.rings.len())
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::input::{LaneReader, Lanes};

    fn one_ring() -> (Arc<Lanes<u32>>, AsyncProducer<u32>, LaneReader<u32>) {
        let lanes = Arc::new(Lanes::new(1, Instant::now(), Overload::Block));
        let producer = Producer::attach(Arc::clone(&lanes), 0, 2, true);
        let reader = LaneReader::new(0, Arc::clone(&lanes));
        (lanes, AsyncProducer::new(vec![producer]), reader)
    }

    fn runtime() -> ::tokio::runtime::Runtime {
        ::tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// Stores `record` as a push does, then closes the engine: the state a
    /// push that raced the close is in; then settles it in a task.
    fn race(
        lanes: &Arc<Lanes<u32>>,
        producer: &AsyncProducer<u32>,
        record: u32,
    ) -> ::tokio::task::JoinHandle<Result<(), PushError<u32>>> {
        assert!(matches!(
            producer.pool.attempt(record, 0),
            Attempt::Accepted
        ));
        lanes.close();
        let producer = producer.clone();
        ::tokio::spawn(async move { producer.settle(Attempt::Raced { ring: 0 }).await })
    }

    #[test]
    fn a_push_that_raced_the_close_awaits_the_drain_then_learns_its_fate() {
        runtime().block_on(async {
            // The worker's final drain took the record: accepted.
            let (lanes, producer, mut reader) = one_ring();
            let settling = race(&lanes, &producer, 1);
            ::tokio::task::yield_now().await;
            assert!(!settling.is_finished(), "it awaits the drain");
            let mut taken = Vec::new();
            assert!(reader.poll_closed());
            reader.take(u64::MAX, 0, |r, _| taken.extend_from_slice(r));
            reader.release();
            assert_eq!(settling.await.unwrap(), Ok(()));
            assert_eq!(taken, [1]);

            // The worker stopped (a failure) without taking it: handed back.
            let (lanes, producer, mut reader) = one_ring();
            let settling = race(&lanes, &producer, 2);
            ::tokio::task::yield_now().await;
            assert!(!settling.is_finished(), "it awaits the drain");
            reader.release();
            assert_eq!(settling.await.unwrap(), Err(PushError::Closed(2)));
        });
    }

    #[test]
    fn a_push_awaiting_room_wakes_when_a_chunk_leaves_or_the_engine_closes() {
        runtime().block_on(async {
            let (lanes, producer, mut reader) = one_ring();
            producer.push(1).await.unwrap();
            producer.push(2).await.unwrap();
            let waiting = ::tokio::spawn({
                let producer = producer.clone();
                async move { producer.push(3).await }
            });
            ::tokio::task::yield_now().await;
            assert!(!waiting.is_finished(), "the ring of two is full");
            let mut taken = Vec::new();
            reader.take(u64::MAX, 0, |r, _| taken.extend_from_slice(r));
            assert_eq!(waiting.await.unwrap(), Ok(()));
            assert_eq!(taken, [1, 2]);

            producer.push(4).await.unwrap();
            let waiting = ::tokio::spawn({
                let producer = producer.clone();
                async move { producer.push(5).await }
            });
            ::tokio::task::yield_now().await;
            assert!(!waiting.is_finished(), "full again");
            lanes.close();
            assert_eq!(waiting.await.unwrap(), Err(Closed(5)));
        });
    }
}
