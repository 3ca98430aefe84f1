//! The record log: an append-only, segmented file format of rkyv-archived
//! blocks of records, a replayable source for the engine.
//!
//! - [`LogWriter`] gathers records into blocks (4096 by default), archives
//!   each with rkyv, and appends it with a CRC-32 to the current segment;
//!   segments roll at 64 MiB; [`LogWriter::finish`] syncs.
//! - [`LogReader`] maps every segment, checks each block once (header,
//!   checksum, rkyv validation) and then reads records in place. A block
//!   cut short at the end of the last segment is a torn tail left by a
//!   crash and ends the log; any other damage is an error that names the
//!   file and the offset.
//! - [`LogSource`] feeds a log to the engine: the workers claim blocks,
//!   at full speed or at a fixed replay rate.
//!
//! The format is in [`format`](mod@format).

mod error;
pub mod format;
mod reader;
mod source;
mod writer;

pub use error::LogError;
pub use format::LogRecord;
pub use reader::{LogReader, Position, TornTail};
pub use source::{ArchivedLogSource, LogSource};
pub use writer::{LogOptions, LogSummary, LogWriter};
