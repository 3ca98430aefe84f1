//! The engine handle's async side (`tokio` feature): async producers, a
//! shutdown that awaits the workers, and a future for the engine's end.

use std::future::Future;
use std::pin::pin;

use super::{Engine, ShutdownError, Summary};
use crate::input::AsyncProducer;
use crate::job::Job;
use crate::runtime::Runtime;
use crate::sync::{Arc, Ordering};

impl<R: Send + 'static, J: Job<R>> Engine<R, J> {
    /// A `Clone` handle whose pushes await room rather than block, over
    /// `rings` new rings (at least one), each attached to the least-loaded
    /// worker in turn. One ring suits a task; request handlers sharing one
    /// handle contend less with a ring per worker.
    ///
    /// ```
    /// use microbatch::job::{self, count};
    /// use microbatch::tokio::ChannelSink;
    /// use microbatch::Engine;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (sink, mut results) = ChannelSink::bounded(16);
    /// let engine = Engine::builder(job::records::<u32>().key_by(|r| *r % 4).aggregate(count()), sink)
    ///     .embedded()
    ///     .start()?;
    /// let producer = engine.async_producer(1);
    /// for i in 0..1000 {
    ///     producer.push(i).await?;
    /// }
    /// let summary = engine.shutdown_async().await?;
    /// let mut counted = 0;
    /// while let Some(epoch) = results.recv().await {
    ///     counted += epoch.rows.iter().map(|(_, n)| n).sum::<u64>();
    /// }
    /// assert_eq!((summary.records_in_results, counted), (1000, 1000));
    /// # Ok(())
    /// # }
    /// ```
    pub fn async_producer(&self, rings: usize) -> AsyncProducer<R> {
        AsyncProducer::new(self.attach_rings(rings, true))
    }

    /// [`shutdown`](Engine::shutdown) without blocking the runtime's
    /// thread: closes the intake, awaits the workers' last epochs (each
    /// worker's final drain, the last results through the sink), then joins
    /// the returned threads. Dropping the future before it completes drops
    /// the engine, whose drop waits for the workers.
    pub async fn shutdown_async(mut self) -> Result<Summary, ShutdownError> {
        self.runtime.lanes.close();
        let runtime = Arc::clone(&self.runtime);
        until(&runtime, |runtime| {
            (runtime.running.load(Ordering::Acquire) == 0).then_some(())
        })
        .await;
        self.stop()
    }

    /// A future that completes with the cause when the engine fails (a
    /// worker panic, a failing sink or checkpoint), or with `None` once
    /// its workers have returned without a failure (after a shutdown).
    /// `'static`: a task can hold it apart from the engine.
    ///
    /// ```
    /// use microbatch::job::{self, count};
    /// use microbatch::sink::CallbackSink;
    /// use microbatch::Engine;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let failing = CallbackSink::new(|_, _, _: &[(u32, u64)]| panic!("the disk is gone"));
    /// let engine = Engine::builder(job::records::<u32>().key_by(|r| *r).aggregate(count()), failing)
    ///     .embedded()
    ///     .start()?;
    /// let failed = engine.failed();
    /// engine.async_producer(1).push(7).await?;
    /// let cause = failed.await.expect("the sink fails");
    /// assert!(cause.contains("the disk is gone"), "{cause}");
    /// assert!(engine.shutdown_async().await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn failed(&self) -> impl Future<Output = Option<String>> + Send + 'static {
        let runtime = Arc::clone(&self.runtime);
        async move {
            until(&runtime, |runtime| {
                if let Some(cause) = runtime.failure() {
                    Some(Some(cause))
                } else {
                    (runtime.running.load(Ordering::Acquire) == 0).then_some(None)
                }
            })
            .await
        }
    }
}

/// Awaits `runtime.changed` until `check` answers. The wait is enabled
/// before each check, so a change between the check and the await wakes
/// it.
async fn until<R, J: Job<R>, T>(
    runtime: &Runtime<R, J>,
    check: impl Fn(&Runtime<R, J>) -> Option<T>,
) -> T {
    loop {
        let mut changed = pin!(runtime.changed.notified());
        changed.as_mut().enable();
        if let Some(answer) = check(runtime) {
            return answer;
        }
        changed.await;
    }
}
