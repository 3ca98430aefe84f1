//! The record log: an append-only, segmented file format of rkyv-archived
//! blocks of records, a replayable source for the engine.
//!
//! - [`LogWriter`] gathers records into blocks (4096 by default), archives
//!   each with rkyv, and appends it with its checksums to the current
//!   segment; segments roll at 64 MiB; [`LogWriter::finish`] syncs them and
//!   writes the [`Manifest`] last, which makes the log complete.
//! - [`LogReader`] checks the directory and every segment against the
//!   manifest, maps every segment, checks each block once (header and
//!   payload checksums, rkyv validation) and then reads records in place.
//!   A log without a manifest (a write that did not finish), and any damage
//!   or mismatch, is an error that names the file and the offset.
//! - [`LogSource`] feeds a log to the engine: the workers claim blocks,
//!   at full speed or at a fixed replay rate.
//!
//! The format is in [`format`](mod@format).

mod error;
pub mod format;
mod manifest;
mod reader;
mod source;
mod writer;

pub use error::LogError;
pub use format::LogRecord;
pub use manifest::{Manifest, SegmentEntry};
pub use reader::{LogReader, Position};
pub use source::{ArchivedLogSource, LogSource};
pub use writer::{LogOptions, LogSummary, LogWriter};
