//! Whole epochs through a channel: [`ChannelSink`] (std's channels), and
//! the hand-off it shares with the tokio feature's channel sink.

use super::{Gathering, Sink, SinkError};
use crate::progress::EpochProgress;
use crate::sync::cold::{lock, mpsc, Mutex};
use crate::sync::{AtomicBool, Ordering};

/// One epoch's whole result, delivered by a [`ChannelSink`].
#[derive(Debug, Clone)]
pub struct EpochResult<Row> {
    /// The epoch.
    pub epoch: u64,
    /// Its rows, from every partition.
    pub rows: Vec<Row>,
    /// Its progress figures.
    pub progress: EpochProgress,
}

/// What a channel sink keeps: the rows of epochs not yet complete, and
/// the sending end `S`, which [`close`](Handoff::close) drops so that the
/// receiver's iteration ends once it has read what was sent.
pub(crate) struct Handoff<Row, S> {
    gathering: Gathering<Row>,
    sender: Mutex<Option<S>>,
    /// `close` was called while a send held `sender`: the sender drops it.
    closed: AtomicBool,
}

impl<Row, S> Handoff<Row, S> {
    pub(crate) fn new(sender: S) -> Self {
        Handoff {
            gathering: Gathering::new(),
            sender: Mutex::new(Some(sender)),
            closed: AtomicBool::new(false),
        }
    }

    /// Gathers a partition's rows.
    pub(crate) fn write(&self, epoch: u64, rows: &mut Vec<Row>) {
        self.gathering.add(epoch, rows);
    }

    /// Sends `epoch` whole by `send`, which says whether the receiver is
    /// still there.
    pub(crate) fn complete(
        &self,
        epoch: u64,
        progress: &EpochProgress,
        send: impl FnOnce(&S, EpochResult<Row>) -> bool,
    ) -> Result<(), SinkError> {
        let result = EpochResult {
            epoch,
            rows: self.gathering.take(epoch),
            progress: progress.clone(),
        };
        let mut sender = lock(&self.sender);
        let sent = sender.as_ref().is_some_and(|sender| send(sender, result));
        if self.closed.load(Ordering::Acquire) {
            sender.take();
        }
        if sent {
            Ok(())
        } else {
            Err(SinkError::Disconnected { epoch })
        }
    }

    /// Drops the sender, now or (if a send in flight holds it, a reader
    /// that does not read) as soon as that send returns. Never waits.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut sender) = self.sender.try_lock() {
            sender.take();
        }
    }
}

/// Gathers each epoch's rows and sends the whole epoch down a channel.
/// Empty epochs are sent too: one message per epoch.
pub struct ChannelSink<Row> {
    handoff: Handoff<Row, Sender<Row>>,
}

enum Sender<Row> {
    Bounded(mpsc::SyncSender<EpochResult<Row>>),
    Unbounded(mpsc::Sender<EpochResult<Row>>),
}

impl<Row: Send + 'static> ChannelSink<Row> {
    /// A sink and its receiver; at most `capacity` epochs wait in the
    /// channel before the engine waits for the receiver (backpressure).
    pub fn bounded(capacity: usize) -> (Self, mpsc::Receiver<EpochResult<Row>>) {
        let (sender, receiver) = mpsc::sync_channel(capacity);
        let handoff = Handoff::new(Sender::Bounded(sender));
        (ChannelSink { handoff }, receiver)
    }

    /// A sink and its receiver, with no bound on the epochs waiting in the
    /// channel: the engine never waits, and memory grows if the receiver
    /// falls behind.
    pub fn unbounded() -> (Self, mpsc::Receiver<EpochResult<Row>>) {
        let (sender, receiver) = mpsc::channel();
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
                Sender::Bounded(sender) => sender.send(result).is_ok(),
                Sender::Unbounded(sender) => sender.send(result).is_ok(),
            })
    }

    fn close(&self) {
        self.handoff.close();
    }
}
