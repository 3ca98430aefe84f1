//! `job.late = "dead_letters"`: a windowed job's expired rows (records
//! that came after their window was past its allowed lateness, reduced per
//! window, key and epoch; see `WindowedStream::expired_rows`) appended to
//! the JSON-lines file `engine.dead_letters`, one line each, the epoch
//! first, instead of into the job's output.
//!
//! An epoch's lines are written and synced before the epoch commits, so an
//! epoch whose output is committed has its expired rows on disk. An epoch
//! replayed after a crash writes its lines again (at least once): dedupe
//! by `(epoch, window_start_ms, key)`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use microbatch::sink::SinkError;
use serde::Serialize;

/// The open file of expired rows.
pub struct ExpiredLetters {
    path: PathBuf,
    file: std::sync::Mutex<BufWriter<File>>,
}

/// One line: the epoch, then the row's columns.
#[derive(Serialize)]
struct Line<'a, T> {
    epoch: u64,
    #[serde(flatten)]
    row: &'a T,
}

impl ExpiredLetters {
    /// Opens `path` for appending, creating it if need be.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(ExpiredLetters {
            path: path.to_owned(),
            file: std::sync::Mutex::new(BufWriter::new(file)),
        })
    }

    /// Appends `rows` of `epoch`, one line each. Cold path: once per owner
    /// and epoch that has expired rows.
    pub fn write<T: Serialize>(&self, epoch: u64, rows: &[T]) -> Result<(), SinkError> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        for row in rows {
            let line = serde_json::to_vec(&Line { epoch, row }).map_err(|e| SinkError::Encode {
                epoch,
                message: e.to_string(),
            })?;
            file.write_all(&line)
                .and_then(|()| file.write_all(b"\n"))
                .map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    /// Flushes and syncs what was written, before an epoch commits.
    pub fn sync(&self) -> Result<(), SinkError> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.flush()
            .and_then(|()| file.get_ref().sync_data())
            .map_err(|e| self.failed(e))
    }

    fn failed(&self, error: std::io::Error) -> SinkError {
        SinkError::Custom(format!(
            "the dead-letter file {} (job.late = \"dead_letters\"): {error}",
            self.path.display()
        ))
    }
}
