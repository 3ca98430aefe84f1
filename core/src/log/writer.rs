//! Writing a record log: records are gathered into blocks, each block is
//! archived with rkyv and appended with its checksums, segments roll at a
//! size limit, and `finish` syncs every segment and then writes the
//! manifest, which makes the log complete. A writer dropped or failed
//! before `finish` leaves no manifest: readers refuse what it wrote.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use super::error::LogError;
use super::format::{
    block_header, fingerprint, padded, segment_index, segment_name, LogRecord, SegmentHeader,
    ALIGN, BLOCK_HEADER, FORMAT_VERSION, MANIFEST, SEGMENT_HEADER,
};
use super::manifest::{Manifest, SegmentEntry};

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
    log_id: u64,
    segment: Option<OpenSegment>,
    /// The closed segments, as the manifest will list them.
    closed: Vec<SegmentEntry>,
    block: Vec<R>,
    summary: LogSummary,
    _records: PhantomData<R>,
}

/// The segment being written.
struct OpenSegment {
    path: PathBuf,
    file: BufWriter<File>,
    entry: SegmentEntry,
    /// CRC-32 over the block headers so far: the entry's digest.
    digest: crc32fast::Hasher,
}

/// A log id: different for every log written, from the time, the process
/// and std's randomly keyed hasher.
fn new_log_id(dir: &Path) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    std::time::SystemTime::now().hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    dir.hash(&mut hasher);
    hasher.finish()
}

impl<R: LogRecord> LogWriter<R> {
    /// Starts a log in `dir` (created if missing; it must hold no log, not
    /// even an unfinished one).
    pub fn create(dir: impl Into<PathBuf>, options: LogOptions) -> Result<Self, LogError> {
        let dir = dir.into();
        if options.block_records == 0 || options.block_records > u32::MAX as usize {
            return Err(LogError::Options(format!(
                "block_records = {}; accepted: 1..={}",
                options.block_records,
                u32::MAX
            )));
        }
        if options.segment_bytes == 0 {
            return Err(LogError::Options(
                "segment_bytes = 0; accepted: at least 1 (a segment holds at least one block)"
                    .into(),
            ));
        }
        fs::create_dir_all(&dir).map_err(io("create the directory", &dir))?;
        for entry in fs::read_dir(&dir).map_err(io("list the directory", &dir))? {
            let entry = entry.map_err(io("list the directory", &dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if segment_index(&name).is_some() || name == MANIFEST {
                return Err(LogError::NotEmpty { dir });
            }
        }
        Ok(LogWriter {
            log_id: new_log_id(&dir),
            dir,
            options,
            fingerprint: fingerprint::<R>(),
            segment: None,
            closed: Vec::new(),
            block: Vec::with_capacity(options.block_records),
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

    /// Records appended so far.
    pub fn records(&self) -> u64 {
        self.summary.records + self.block.len() as u64
    }

    /// Writes the records gathered so far as a block and flushes the file
    /// (without syncing it).
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.write_block()?;
        if let Some(segment) = &mut self.segment {
            segment.file.flush().map_err(io("write", &segment.path))?;
        }
        Ok(())
    }

    /// Writes the last block, syncs the segment, then writes the manifest
    /// (synced, with the directory): from then on the log is complete.
    /// Reports what was written.
    pub fn finish(mut self) -> Result<LogSummary, LogError> {
        self.write_block()?;
        self.close_segment()?;
        Manifest {
            format_version: FORMAT_VERSION,
            log_id: self.log_id,
            schema: R::SCHEMA.to_owned(),
            fingerprint: self.fingerprint,
            records: self.summary.records,
            blocks: self.summary.blocks,
            segments: std::mem::take(&mut self.closed),
        }
        .write(&self.dir)?;
        Ok(self.summary)
    }

    fn write_block(&mut self) -> Result<(), LogError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&self.block)
            .map_err(|error| LogError::Archive(error.to_string()))?;
        let block_len = (BLOCK_HEADER + padded(payload.len())) as u64;
        let full = self.segment.as_ref().is_some_and(|segment| {
            let len = segment.entry.bytes;
            len > SEGMENT_HEADER as u64 && len + block_len > self.options.segment_bytes
        });
        if full {
            self.close_segment()?;
        }
        if self.segment.is_none() {
            self.open_segment()?;
        }
        let segment = self.segment.as_mut().expect("a segment is open");
        let records = self.block.len() as u64;
        let header = block_header(&payload, records as u32);
        let padding = [0u8; ALIGN];
        segment
            .file
            .write_all(&header)
            .and_then(|()| segment.file.write_all(&payload))
            .and_then(|()| {
                segment
                    .file
                    .write_all(&padding[..padded(payload.len()) - payload.len()])
            })
            .map_err(io("write", &segment.path))?;
        segment.digest.update(&header);
        segment.entry.bytes += block_len;
        segment.entry.blocks += 1;
        segment.entry.records += records;
        self.summary.blocks += 1;
        self.summary.records += records;
        self.block.clear();
        Ok(())
    }

    fn open_segment(&mut self) -> Result<(), LogError> {
        let index = self.closed.len() as u64;
        let name = segment_name(index);
        let path = self.dir.join(&name);
        let file = File::create_new(&path).map_err(io("create", &path))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        let header = SegmentHeader {
            fingerprint: self.fingerprint,
            log_id: self.log_id,
            index,
            first_record: self.summary.records,
        };
        file.write_all(&header.encode())
            .map_err(io("write", &path))?;
        self.summary.segments += 1;
        self.segment = Some(OpenSegment {
            path,
            file,
            entry: SegmentEntry {
                name,
                bytes: SEGMENT_HEADER as u64,
                records: 0,
                blocks: 0,
                digest: 0,
            },
            digest: crc32fast::Hasher::new(),
        });
        Ok(())
    }

    fn close_segment(&mut self) -> Result<(), LogError> {
        if let Some(segment) = self.segment.take() {
            let OpenSegment {
                path,
                file,
                mut entry,
                digest,
            } = segment;
            let file = file.into_inner().map_err(|error| LogError::Io {
                action: "write",
                path: path.clone(),
                source: error.into_error(),
            })?;
            file.sync_all().map_err(io("sync", &path))?;
            entry.digest = digest.finalize();
            self.closed.push(entry);
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
