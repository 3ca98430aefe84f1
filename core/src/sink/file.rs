//! One file per epoch, CSV or JSON lines: each partition's rows are encoded
//! on its owner's thread; when the epoch is complete the file is written
//! under a temporary name, synced, and renamed to `epoch-<epoch>.<ext>`, so
//! a reader never sees a partial file; then an empty success marker
//! `epoch-<epoch>.ok` is written the same way and the directory synced. An
//! epoch whose marker exists is committed: writing it again (a replay)
//! leaves it as it is. An epoch file without its marker (a crash between
//! the two) is replaced whole.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use super::{Sink, SinkError};
use crate::durable::{create_dir, sync_dir, write_atomically, IoFailure};
use crate::progress::EpochProgress;
use crate::sync::cold::{lock, Mutex};

/// The encoding of a [`FileSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Comma-separated; tuples are flattened into columns. Rows that are
    /// structs get one header row of their field names; tuples get none.
    Csv,
    /// One JSON value per line (a row `(k, (a, b))` is `[k,[a,b]]`).
    JsonLines,
}

impl FileFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::JsonLines => "jsonl",
        }
    }
}

/// Writes each epoch to `<dir>/epoch-<epoch, 20 digits>.<csv|jsonl>`.
pub struct FileSink {
    dir: PathBuf,
    format: FileFormat,
    /// Encoded partitions of epochs not yet complete.
    pending: Mutex<BTreeMap<u64, Vec<u8>>>,
}

impl FileSink {
    /// A sink writing into `dir`, which is created if missing.
    pub fn new(dir: impl Into<PathBuf>, format: FileFormat) -> Result<Self, SinkError> {
        let dir = dir.into();
        create_dir(&dir)?;
        Ok(FileSink {
            dir,
            format,
            pending: Mutex::new(BTreeMap::new()),
        })
    }

    /// The success marker of `epoch`: present once the epoch is committed.
    pub fn marker_of(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:020}.ok"))
    }

    /// The epochs committed in the directory (their markers exist), oldest
    /// first.
    pub fn committed(&self) -> Result<Vec<u64>, SinkError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| SinkError::Io {
            action: "list",
            path: self.dir.clone(),
            source,
        })?;
        let mut epochs: Vec<u64> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_prefix("epoch-")?
                    .strip_suffix(".ok")?
                    .parse()
                    .ok()
            })
            .collect();
        epochs.sort_unstable();
        Ok(epochs)
    }

    /// Whether `epoch` is committed (its marker exists).
    pub fn is_committed(&self, epoch: u64) -> bool {
        self.marker_of(epoch).exists()
    }

    /// The final path of `epoch`'s file.
    pub fn path_of(&self, epoch: u64) -> PathBuf {
        self.dir
            .join(format!("epoch-{epoch:020}.{}", self.format.extension()))
    }

    /// Encodes `rows`; returns the bytes and the length of their leading
    /// header line (CSV of struct rows), which only an epoch's first
    /// non-empty partition keeps.
    fn encode<Row: Serialize>(
        &self,
        epoch: u64,
        rows: &[Row],
    ) -> Result<(Vec<u8>, usize), SinkError> {
        let encode_error = |message: String| SinkError::Encode { epoch, message };
        match self.format {
            FileFormat::Csv => {
                let csv = |headers: bool, rows: &[Row]| {
                    let mut writer = csv::WriterBuilder::new()
                        .has_headers(headers)
                        .from_writer(Vec::new());
                    for row in rows {
                        writer
                            .serialize(row)
                            .map_err(|e| encode_error(e.to_string()))?;
                    }
                    writer.into_inner().map_err(|e| encode_error(e.to_string()))
                };
                let bytes = csv(true, rows)?;
                let header = match rows.first() {
                    Some(first) => {
                        csv(true, std::slice::from_ref(first))?.len()
                            - csv(false, std::slice::from_ref(first))?.len()
                    }
                    None => 0,
                };
                Ok((bytes, header))
            }
            FileFormat::JsonLines => {
                let mut bytes = Vec::new();
                for row in rows {
                    serde_json::to_writer(&mut bytes, row)
                        .map_err(|e| encode_error(e.to_string()))?;
                    bytes.push(b'\n');
                }
                Ok((bytes, 0))
            }
        }
    }
}

impl From<IoFailure> for SinkError {
    fn from(failure: IoFailure) -> Self {
        SinkError::Io {
            action: failure.action,
            path: failure.path,
            source: failure.source,
        }
    }
}

impl<Row: Serialize> Sink<Row> for FileSink {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        let (bytes, header) = self.encode(epoch, rows)?;
        let mut pending = lock(&self.pending);
        let file = pending.entry(epoch).or_default();
        let keep_from = if file.is_empty() { 0 } else { header };
        file.extend_from_slice(&bytes[keep_from..]);
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        let bytes = lock(&self.pending).remove(&epoch).unwrap_or_default();
        if self.is_committed(epoch) {
            // Committed before (a replay): writing it again would change
            // what readers may already have taken.
            return Ok(());
        }
        write_atomically(&self.dir, &self.path_of(epoch), &bytes)?;
        write_atomically(&self.dir, &self.marker_of(epoch), &[])?;
        Ok(sync_dir(&self.dir)?)
    }
}
