//! Writing a record log: records are gathered into blocks, each block is
//! archived with rkyv and appended with its checksum, segments roll at a
//! size limit, and `finish` syncs the data and the directory.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use super::error::LogError;
use super::format::{
    block_header, fingerprint, padded, segment_header, segment_index, segment_name, LogRecord,
    ALIGN, SEGMENT_HEADER,
};

/// How a log is cut into blocks and segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Records per block (the unit of checksums, validation and of the
    /// work the workers claim). Default 4096.
    pub block_records: usize,
    /// A segment is closed once it reaches this size. Default 64 MiB.
    pub segment_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            block_records: 4096,
            segment_bytes: 64 << 20,
        }
    }
}

/// What a finished writer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogSummary {
    /// Segment files.
    pub segments: u64,
    /// Blocks.
    pub blocks: u64,
    /// Records.
    pub records: u64,
}

/// Appends records of type `R` to a new log in a directory.
///
/// ```
/// use microbatch::log::{LogOptions, LogReader, LogWriter};
/// use microbatch::source::Event;
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = LogWriter::<Event>::create(dir.path(), LogOptions::default())?;
/// for i in 0..10_000 {
///     writer.append(Event { key: i % 10, value: i })?;
/// }
/// let written = writer.finish()?;
/// assert_eq!(written.records, 10_000);
///
/// let reader = LogReader::<Event>::open(dir.path())?;
/// assert_eq!(reader.records(), 10_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LogWriter<R> {
    dir: PathBuf,
    options: LogOptions,
    fingerprint: u64,
    segment: Option<(PathBuf, BufWriter<File>, u64)>,
    next_segment: u64,
    block: Vec<R>,
    summary: LogSummary,
    _records: PhantomData<R>,
}

impl<R: LogRecord> LogWriter<R> {
    /// Starts a log in `dir` (created if missing; it must hold no log).
    pub fn create(dir: impl Into<PathBuf>, options: LogOptions) -> Result<Self, LogError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io("create the directory", &dir))?;
        for entry in fs::read_dir(&dir).map_err(io("list the directory", &dir))? {
            let entry = entry.map_err(io("list the directory", &dir))?;
            if segment_index(&entry.file_name().to_string_lossy()).is_some() {
                return Err(LogError::NotEmpty { dir });
            }
        }
        Ok(LogWriter {
            dir,
            options: LogOptions {
                block_records: options.block_records.max(1),
                segment_bytes: options.segment_bytes.max(1),
            },
            fingerprint: fingerprint::<R>(),
            segment: None,
            next_segment: 0,
            block: Vec::with_capacity(options.block_records.max(1)),
            summary: LogSummary::default(),
            _records: PhantomData,
        })
    }

    /// Appends one record; a full block is archived and written.
    pub fn append(&mut self, record: R) -> Result<(), LogError> {
        self.block.push(record);
        if self.block.len() >= self.options.block_records {
            self.write_block()?;
        }
        Ok(())
    }

    /// Writes the records gathered so far as a block and flushes the file
    /// (without syncing it).
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.write_block()?;
        if let Some((path, file, _)) = &mut self.segment {
            file.flush().map_err(io("write", path))?;
        }
        Ok(())
    }

    /// Writes the last block, syncs the segment and the directory, and
    /// reports what was written.
    pub fn finish(mut self) -> Result<LogSummary, LogError> {
        self.write_block()?;
        self.close_segment()?;
        let dir = File::open(&self.dir).map_err(io("open the directory", &self.dir))?;
        dir.sync_all()
            .map_err(io("sync the directory", &self.dir))?;
        Ok(self.summary)
    }

    fn write_block(&mut self) -> Result<(), LogError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&self.block)
            .map_err(|error| LogError::Archive(error.to_string()))?;
        let block_len = (super::format::BLOCK_HEADER + padded(payload.len())) as u64;
        let full = self.segment.as_ref().is_some_and(|(_, _, len)| {
            *len > SEGMENT_HEADER as u64 && len + block_len > self.options.segment_bytes
        });
        if full {
            self.close_segment()?;
        }
        if self.segment.is_none() {
            self.open_segment()?;
        }
        let (path, file, len) = self.segment.as_mut().expect("a segment is open");
        let header = block_header(&payload, self.block.len() as u32);
        let padding = [0u8; ALIGN];
        file.write_all(&header)
            .and_then(|()| file.write_all(&payload))
            .and_then(|()| file.write_all(&padding[..padded(payload.len()) - payload.len()]))
            .map_err(io("write", path))?;
        *len += block_len;
        self.summary.blocks += 1;
        self.summary.records += self.block.len() as u64;
        self.block.clear();
        Ok(())
    }

    fn open_segment(&mut self) -> Result<(), LogError> {
        let path = self.dir.join(segment_name(self.next_segment));
        let file = File::create_new(&path).map_err(io("create", &path))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        file.write_all(&segment_header(self.fingerprint))
            .map_err(io("write", &path))?;
        self.next_segment += 1;
        self.summary.segments += 1;
        self.segment = Some((path, file, SEGMENT_HEADER as u64));
        Ok(())
    }

    fn close_segment(&mut self) -> Result<(), LogError> {
        if let Some((path, file, _)) = self.segment.take() {
            let file = file.into_inner().map_err(|error| LogError::Io {
                action: "write",
                path: path.clone(),
                source: error.into_error(),
            })?;
            file.sync_all().map_err(io("sync", &path))?;
        }
        Ok(())
    }
}

pub(super) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_owned();
    move |source| LogError::Io {
        action,
        path,
        source,
    }
}
