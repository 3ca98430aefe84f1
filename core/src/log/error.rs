//! What can go wrong with a record log.

use std::path::PathBuf;

/// A record log cannot be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A file operation failed.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A new log's directory already holds segments or a manifest.
    #[error("{dir}: already holds a record log (or the start of one); write a new log into an empty directory")]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory holds no segment.
    #[error("{dir}: no record log here (no segment-*.mblog files)")]
    NoLog {
        /// The directory.
        dir: PathBuf,
    },
    /// A segment does not start with the log's magic bytes.
    #[error("{path}: offset 0: not a microbatch record log segment (bad magic)")]
    BadMagic {
        /// The segment.
        path: PathBuf,
    },
    /// A segment of another format version.
    #[error("{path}: offset 8: format version {found}; this build reads version {expected}")]
    WrongVersion {
        /// The segment.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// A segment of another record type.
    #[error("{path}: offset 16: holds records of another type (fingerprint {found:#018x}, expected {expected:#018x} for `{schema}`)")]
    WrongRecordType {
        /// The segment.
        path: PathBuf,
        /// Its fingerprint.
        found: u64,
        /// The reader's.
        expected: u64,
        /// The reader's schema name.
        schema: &'static str,
    },
    /// A block is damaged where a torn write cannot explain it.
    #[error("{path}: offset {offset}: corrupt block: {reason}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where the block starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record cannot be archived.
    #[error("cannot archive a block of records: {0}")]
    Archive(String),
    /// The options a log is written with are out of range.
    #[error("record log options: {0}")]
    Options(String),
    /// The directory holds segments but no manifest: the write of the log
    /// did not finish (it was interrupted, or the disk filled up).
    #[error("{dir}: an incomplete record log (no manifest: its write did not finish); write it again from its source")]
    Incomplete {
        /// The directory.
        dir: PathBuf,
    },
    /// A log of an older format, without a manifest.
    #[error("{path}: a record log of format version {found}; this build reads version {expected}: write it again from its source with `microbatch log write`")]
    OldFormat {
        /// Its first segment.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// The manifest cannot be read, or contradicts itself.
    #[error("{path}: {reason}")]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A segment does not match the manifest: missing, extra, renamed,
    /// reordered, cut short, extended, or from another log.
    #[error("{path}: does not match the log's manifest: {reason}")]
    Mismatch {
        /// The segment (or the directory, for a missing one).
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}
