//! Where results go. A [`Sink`] is called on each owner's thread with the
//! rows of its partition of an epoch, then once per epoch when every
//! partition is out, in epoch order.

mod channel;
mod file;

use std::collections::BTreeMap;

#[cfg(feature = "tokio")]
pub(crate) use channel::Handoff;
pub use channel::{ChannelSink, EpochResult};
pub use file::{FileFormat, FileSink};

#[cfg(feature = "sqlite")]
pub mod sqlite;

use crate::progress::EpochProgress;
use crate::sync::cold::{lock, Mutex};
use crate::sync::Arc;

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

/// Whether `name` may name an SQL table or column as it is: letters,
/// digits and `_`, not starting with a digit.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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

    /// Whether this sink commits the job's running totals with each epoch
    /// (with [`stage_state`](Sink::stage_state)), so that a restarted run
    /// resumes from the sink alone
    /// ([`EngineBuilder::resume_from`](crate::EngineBuilder::resume_from)).
    /// The engine then has each owner encode its partition's totals after
    /// every epoch (a job without totals has none to give), and the run's
    /// last epoch closes no window: the run pauses, to be resumed.
    /// Default: no.
    fn keeps_state(&self) -> bool {
        false
    }

    /// The totals of every partition after `epoch`, as the job encoded them
    /// ([`Job::save_totals`](crate::job::Job::save_totals)), for the sink
    /// to commit with the epoch: called just before
    /// [`epoch_complete`](Sink::epoch_complete) when
    /// [`keeps_state`](Sink::keeps_state) and the job keeps totals.
    fn stage_state(&self, epoch: u64, partitions: Vec<Vec<u8>>) -> Result<(), SinkError> {
        let _ = (epoch, partitions);
        Ok(())
    }
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
