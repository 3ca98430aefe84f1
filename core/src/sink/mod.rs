//! Where results go. A [`Sink`] is called on each owner's thread with the
//! rows of its partition of an epoch, then once per epoch when every
//! partition is out, in epoch order.

mod file;

use std::collections::BTreeMap;

pub use file::{FileFormat, FileSink};

#[cfg(feature = "sqlite")]
pub mod sqlite;

use crate::progress::EpochProgress;
use crate::sync::cold::{lock, mpsc, Mutex};
use crate::sync::{Arc, AtomicBool, Ordering};

/// A sink could not take an epoch's results. The engine stops with this
/// error rather than drop them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// A file operation failed (a full disk, a missing directory, …).
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A row could not be encoded.
    #[error("could not encode a row of epoch {epoch}: {message}")]
    Encode {
        /// The epoch.
        epoch: u64,
        /// The encoder's message.
        message: String,
    },
    /// The receiving end of a channel sink was dropped.
    #[error("the receiver of epoch results was dropped; epoch {epoch} has nowhere to go")]
    Disconnected {
        /// The epoch that could not be delivered.
        epoch: u64,
    },
    /// A user sink failed.
    #[error("{0}")]
    Custom(String),
}

/// Receives results.
///
/// Invariant: [`write`](Sink::write) is called once per epoch for each
/// partition that has rows, on that partition's owner thread (so calls for
/// different partitions of one epoch may run at the same time); for a job
/// with [salted keys](crate::job::KeyedJob::salted), once more with those
/// keys' rows, labelled partition 0, on the thread that completes the
/// epoch; and [`epoch_complete`](Sink::epoch_complete) once per epoch
/// after all of them returned, in increasing epoch order, one at a time.
pub trait Sink<Row>: Send + Sync + 'static {
    /// The rows of `partition` of `epoch`. The sink may take them out of
    /// `rows`; what is left is cleared.
    fn write(&self, epoch: u64, partition: usize, rows: &mut Vec<Row>) -> Result<(), SinkError>;

    /// Every partition of `epoch` is written.
    fn epoch_complete(&self, epoch: u64, progress: &EpochProgress) -> Result<(), SinkError> {
        let _ = (epoch, progress);
        Ok(())
    }

    /// The engine will write nothing more: it failed (the cause is
    /// [`Engine::failure`](crate::Engine::failure)), or it shut down. Called
    /// at most once per cause, from any thread, possibly while another
    /// thread is inside `write` or `epoch_complete`; it must not wait for
    /// them. A sink that hands results to a reader lets the reader's
    /// iteration end here.
    fn close(&self) {}
}

/// The rows of epochs not yet complete, gathered from their partitions'
/// [`Sink::write`] calls until [`Sink::epoch_complete`] takes them whole:
/// what a sink that delivers or commits whole epochs keeps. One lock per
/// call, per partition and epoch, never per row.
pub struct Gathering<Row> {
    epochs: Mutex<BTreeMap<u64, Vec<Row>>>,
}

impl<Row> Default for Gathering<Row> {
    fn default() -> Self {
        Gathering {
            epochs: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<Row> Gathering<Row> {
    /// Nothing gathered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves `rows` of `epoch` in.
    pub fn add(&self, epoch: u64, rows: &mut Vec<Row>) {
        let mut epochs = lock(&self.epochs);
        epochs.entry(epoch).or_default().append(rows);
    }

    /// Every row gathered for `epoch` (none if no partition had rows).
    pub fn take(&self, epoch: u64) -> Vec<Row> {
        lock(&self.epochs).remove(&epoch).unwrap_or_default()
    }
}

/// Calls a function with each partition's rows.
///
/// ```
/// use microbatch::sink::CallbackSink;
/// let print = CallbackSink::new(|epoch, partition, rows: &[(u64, u64)]| {
///     println!("epoch {epoch} partition {partition}: {} rows", rows.len());
/// });
/// # let _ = print;
/// ```
pub struct CallbackSink<F>(F);

impl<F> CallbackSink<F> {
    /// A sink calling `f(epoch, partition, rows)`.
    pub fn new<Row>(f: F) -> Self
    where
        F: Fn(u64, usize, &[Row]) + Send + Sync + 'static,
    {
        CallbackSink(f)
    }
}

impl<Row, F> Sink<Row> for CallbackSink<F>
where
    F: Fn(u64, usize, &[Row]) + Send + Sync + 'static,
{
    fn write(&self, epoch: u64, partition: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        (self.0)(epoch, partition, rows);
        Ok(())
    }
}

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

/// Gathers each epoch's rows and sends the whole epoch down a channel.
/// Empty epochs are sent too: one message per epoch.
pub struct ChannelSink<Row> {
    gathering: Gathering<Row>,
    /// Taken (dropped) by [`Sink::close`], which ends the receiver's
    /// iteration once it has read what was sent.
    sender: Mutex<Option<Sender<Row>>>,
    /// `close` was called while a send held `sender`: the sender drops it.
    closed: AtomicBool,
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
        let sink = ChannelSink {
            gathering: Gathering::new(),
            sender: Mutex::new(Some(Sender::Bounded(sender))),
            closed: AtomicBool::new(false),
        };
        (sink, receiver)
    }

    /// A sink and its receiver, with no bound on the epochs waiting in the
    /// channel: the engine never waits, and memory grows if the receiver
    /// falls behind.
    pub fn unbounded() -> (Self, mpsc::Receiver<EpochResult<Row>>) {
        let (sender, receiver) = mpsc::channel();
        let sink = ChannelSink {
            gathering: Gathering::new(),
            sender: Mutex::new(Some(Sender::Unbounded(sender))),
            closed: AtomicBool::new(false),
        };
        (sink, receiver)
    }
}

impl<Row: Send + 'static> Sink<Row> for ChannelSink<Row> {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        self.gathering.add(epoch, rows);
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, progress: &EpochProgress) -> Result<(), SinkError> {
        let rows = self.gathering.take(epoch);
        let result = EpochResult {
            epoch,
            rows,
            progress: progress.clone(),
        };
        let mut sender = lock(&self.sender);
        let sent = match sender.as_ref() {
            Some(Sender::Bounded(sender)) => sender.send(result).is_ok(),
            Some(Sender::Unbounded(sender)) => sender.send(result).is_ok(),
            None => false,
        };
        if self.closed.load(Ordering::Acquire) {
            sender.take();
        }
        if sent {
            Ok(())
        } else {
            Err(SinkError::Disconnected { epoch })
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // A send in flight (a reader that does not read) holds the lock:
        // it drops the sender itself once its send returns.
        if let Ok(mut sender) = self.sender.try_lock() {
            sender.take();
        }
    }
}

/// Collects every row with its epoch, for tests and small jobs.
pub struct CollectSink<Row> {
    rows: Arc<Mutex<Vec<(u64, Row)>>>,
}

/// The reading end of a [`CollectSink`].
#[derive(Clone)]
pub struct Collected<Row> {
    rows: Arc<Mutex<Vec<(u64, Row)>>>,
}

impl<Row: Send + 'static> CollectSink<Row> {
    /// A sink and the handle that reads what it collected.
    pub fn new() -> (Self, Collected<Row>) {
        let rows = Arc::new(Mutex::new(Vec::new()));
        (
            CollectSink {
                rows: Arc::clone(&rows),
            },
            Collected { rows },
        )
    }
}

impl<Row> Collected<Row> {
    /// Takes the `(epoch, row)` pairs collected so far.
    pub fn take(&self) -> Vec<(u64, Row)> {
        std::mem::take(&mut *lock(&self.rows))
    }
}

impl<Row: Send + 'static> Sink<Row> for CollectSink<Row> {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        let mut all = lock(&self.rows);
        all.extend(rows.drain(..).map(|row| (epoch, row)));
        Ok(())
    }
}

/// Drops rows; progress still flows. For benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardSink;

impl<Row> Sink<Row> for DiscardSink {
    fn write(&self, _: u64, _: usize, _: &mut Vec<Row>) -> Result<(), SinkError> {
        Ok(())
    }
}
