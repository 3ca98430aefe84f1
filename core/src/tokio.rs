//! The engine in a tokio service (the `tokio` feature): pushes that await
//! room, results read with `.await`, an async shutdown, and a future for
//! the engine's failure. The engine's workers stay its own threads; only
//! the calls a task makes are async.
//!
//! - [`AsyncProducer`], from [`Engine::async_producer`](crate::Engine::async_producer):
//!   `push(r).await` waits for room without blocking the runtime's thread;
//!   `try_push`, `push_timeout` and `send` (the [`Overload`](crate::Overload)
//!   policy) bound the wait. Every push hands its record back on
//!   [`Closed`](crate::Closed).
//! - [`ChannelSink`]: each epoch's whole result through a tokio channel,
//!   read with `recv().await` (or as a stream through
//!   `tokio_stream::wrappers::ReceiverStream`).
//! - [`Engine::shutdown_async`](crate::Engine::shutdown_async) and
//!   [`Engine::failed`](crate::Engine::failed).
//!
//! The synchronous calls that wait ([`Engine::shutdown`](crate::Engine::shutdown),
//! [`Producer::push`](crate::Producer::push)) block the thread that calls
//! them: on a runtime thread they stall its other tasks, and a shutdown
//! there can deadlock with a task that reads a bounded `ChannelSink`.
//! `core/examples/tokio_service.rs` is a service built on these.

pub use crate::input::AsyncProducer;

use ::tokio::sync::mpsc;

use crate::progress::EpochProgress;
use crate::sink::{EpochResult, Handoff, Sink, SinkError};

/// Gathers each epoch's rows and sends the whole epoch down a tokio
/// channel, one message per epoch (empty epochs too): the async twin of
/// [`sink::ChannelSink`](crate::sink::ChannelSink).
///
/// The engine's worker sends with `blocking_send`, on its own thread,
/// never a runtime's: a bounded channel that fills holds the engine back
/// (backpressure up to the producers), never the runtime. The receiver's
/// `recv` returns `None` once the engine has shut down or failed and every
/// epoch sent has been read.
pub struct ChannelSink<Row> {
    handoff: Handoff<Row, Sender<Row>>,
}

enum Sender<Row> {
    Bounded(mpsc::Sender<EpochResult<Row>>),
    Unbounded(mpsc::UnboundedSender<EpochResult<Row>>),
}

impl<Row: Send + 'static> ChannelSink<Row> {
    /// A sink and its receiver; at most `capacity` epochs (at least one)
    /// wait in the channel before the engine waits for the receiver.
    pub fn bounded(capacity: usize) -> (Self, mpsc::Receiver<EpochResult<Row>>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let handoff = Handoff::new(Sender::Bounded(sender));
        (ChannelSink { handoff }, receiver)
    }

    /// A sink and its receiver, with no bound on the epochs waiting: the
    /// engine never waits, and memory grows if the receiver falls behind.
    pub fn unbounded() -> (Self, mpsc::UnboundedReceiver<EpochResult<Row>>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let handoff = Handoff::new(Sender::Unbounded(sender));
        (ChannelSink { handoff }, receiver)
    }
}

impl<Row: Send + 'static> Sink<Row> for ChannelSink<Row> {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        self.handoff.write(epoch, rows);
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, progress: &EpochProgress) -> Result<(), SinkError> {
        self.handoff
            .complete(epoch, progress, |sender, result| match sender {
                Sender::Bounded(sender) => sender.blocking_send(result).is_ok(),
                Sender::Unbounded(sender) => sender.send(result).is_ok(),
            })
    }

    fn close(&self) {
        self.handoff.close();
    }
}
