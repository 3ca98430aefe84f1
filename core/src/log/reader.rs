//! Reading a record log: the manifest says what the log holds; every
//! segment is memory-mapped and checked against it (name, length, header,
//! log id, index, first record, block digest), every block's header,
//! checksums and archive are checked once when the log is opened, and
//! records are then read in place.
//!
//! Nothing is guessed: a log without a manifest is one whose write did not
//! finish ([`LogError::Incomplete`]), and any damage or mismatch is a
//! [`LogError`] naming the file and, within a segment, the offset.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rkyv::vec::ArchivedVec;

use super::error::LogError;
use super::format::{
    fingerprint, padded, segment_index, u32_at, LogRecord, SegmentHeader, BLOCK_HEADER,
    BLOCK_MAGIC, FORMAT_VERSION, MANIFEST, SEGMENT_HEADER, SEGMENT_MAGIC,
};
use super::manifest::Manifest;
use super::writer::io;

/// Where a record sits in a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The segment's index in the log.
    pub segment: u64,
    /// The block's index in the segment.
    pub block: u64,
    /// The record's index in the block.
    pub record: u64,
}

/// A block found valid when the log was opened.
#[derive(Debug, Clone, Copy)]
struct Block {
    segment: usize,
    block_in_segment: u64,
    payload: usize,
    len: usize,
    records: u64,
    first_record: u64,
}

/// A record log opened for reading. `Sync`: workers read blocks of it at
/// once.
pub struct LogReader<R> {
    dir: PathBuf,
    maps: Vec<(PathBuf, u64, Mmap)>,
    blocks: Vec<Block>,
    records: u64,
    manifest: Manifest,
    /// CRC-32 of the manifest file's bytes.
    manifest_crc: u32,
    _records: PhantomData<fn() -> R>,
}

/// The segment files in `dir`, by index.
fn segment_files(dir: &Path) -> Result<BTreeMap<u64, PathBuf>, LogError> {
    let mut segments = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(io("list the directory", dir))? {
        let entry = entry.map_err(io("list the directory", dir))?;
        if let Some(index) = segment_index(&entry.file_name().to_string_lossy()) {
            segments.insert(index, entry.path());
        }
    }
    Ok(segments)
}

/// Why a directory with segments and no manifest cannot be read: an old
/// format, or a write that did not finish.
fn no_manifest(dir: &Path, first: &Path) -> LogError {
    let mut header = [0u8; 12];
    let version = File::open(first)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut header))
        .ok()
        .filter(|()| header[0..8] == SEGMENT_MAGIC)
        .map(|()| u32_at(&header, 8));
    match version {
        Some(found) if found < FORMAT_VERSION => LogError::OldFormat {
            path: first.to_owned(),
            found,
            expected: FORMAT_VERSION,
        },
        _ => LogError::Incomplete {
            dir: dir.to_owned(),
        },
    }
}

impl<R: LogRecord> LogReader<R> {
    /// Opens the complete log in `dir` and checks every segment against
    /// its manifest and every block.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LogError> {
        let dir = dir.into();
        let mut files = segment_files(&dir)?;
        let Some((manifest, manifest_crc)) = Manifest::read(&dir)? else {
            return Err(match files.values().next() {
                None => LogError::NoLog { dir },
                Some(first) => no_manifest(&dir, first),
            });
        };
        let manifest_path = dir.join(MANIFEST);
        let expected = fingerprint::<R>();
        if manifest.fingerprint != expected {
            return Err(LogError::WrongRecordType {
                path: manifest_path,
                found: manifest.fingerprint,
                expected,
                schema: R::SCHEMA,
            });
        }
        let mut reader = LogReader {
            maps: Vec::with_capacity(manifest.segments.len()),
            blocks: Vec::new(),
            records: 0,
            manifest_crc,
            manifest: manifest.clone(),
            _records: PhantomData,
            dir,
        };
        for (position, entry) in manifest.segments.iter().enumerate() {
            let index = position as u64;
            let path = reader.dir.join(&entry.name);
            if segment_index(&entry.name) != Some(index) {
                return Err(LogError::BadManifest {
                    path: manifest_path,
                    reason: format!("segment {position} is named `{}`", entry.name),
                });
            }
            if files.remove(&index).is_none() {
                return Err(LogError::Mismatch {
                    path,
                    reason: "the segment is missing".into(),
                });
            }
            let file = File::open(&path).map_err(io("open", &path))?;
            let len = file
                .metadata()
                .map_err(io("read the size of", &path))?
                .len();
            if len != entry.bytes {
                return Err(LogError::Mismatch {
                    path,
                    reason: format!("{len} bytes, the manifest says {}", entry.bytes),
                });
            }
            // SAFETY: segments are append-only and never rewritten once
            // closed; the map covers the length the file had when it was
            // opened, and every read below stays within the map. A process
            // that truncates a segment while it is mapped breaks this (the
            // OS would fault the reader): logs are not to be edited in place.
            let map = unsafe { Mmap::map(&file) }.map_err(io("map", &path))?;
            reader.maps.push((path, index, map));
            reader.index_segment(position)?;
        }
        if let Some(extra) = files.into_values().next() {
            return Err(LogError::Mismatch {
                path: extra,
                reason: "the manifest lists no such segment".into(),
            });
        }
        Ok(reader)
    }

    /// Checks segment `position`'s header and blocks against the manifest
    /// and indexes them.
    fn index_segment(&mut self, position: usize) -> Result<(), LogError> {
        let (path, index, map) = &self.maps[position];
        let entry = &self.manifest.segments[position];
        let bytes: &[u8] = map;
        if bytes.len() < 12 || bytes[0..8] != SEGMENT_MAGIC {
            return Err(LogError::BadMagic { path: path.clone() });
        }
        let version = u32_at(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(LogError::WrongVersion {
                path: path.clone(),
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let corrupt = |offset: usize, reason: String| LogError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            reason,
        };
        let mismatch = |reason: String| LogError::Mismatch {
            path: path.clone(),
            reason,
        };
        let header = SegmentHeader::decode(bytes).map_err(|reason| corrupt(0, reason))?;
        if header.log_id != self.manifest.log_id {
            return Err(mismatch(format!(
                "it belongs to log {:016x}, the manifest to log {:016x}",
                header.log_id, self.manifest.log_id
            )));
        }
        if header.index != *index {
            return Err(mismatch(format!(
                "its header says segment {}, its name segment {index}",
                header.index
            )));
        }
        if header.first_record != self.records {
            return Err(mismatch(format!(
                "it starts at record {}, the segments before it end at {}",
                header.first_record, self.records
            )));
        }
        let mut offset = SEGMENT_HEADER;
        let mut block_in_segment = 0;
        let mut records = 0;
        let mut digest = crc32fast::Hasher::new();
        while offset < bytes.len() {
            let (len, count) =
                check_block::<R>(bytes, offset).map_err(|reason| corrupt(offset, reason))?;
            digest.update(&bytes[offset..offset + BLOCK_HEADER]);
            self.blocks.push(Block {
                segment: position,
                block_in_segment,
                payload: offset + BLOCK_HEADER,
                len,
                records: count,
                first_record: self.records,
            });
            self.records += count;
            records += count;
            block_in_segment += 1;
            offset += BLOCK_HEADER + padded(len);
        }
        if block_in_segment != entry.blocks || records != entry.records {
            return Err(mismatch(format!(
                "{records} records in {block_in_segment} blocks, the manifest says {} in {}",
                entry.records, entry.blocks
            )));
        }
        if digest.finalize() != entry.digest {
            return Err(mismatch(
                "its blocks are not the ones the manifest lists (digest differs)".into(),
            ));
        }
        Ok(())
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records in the log (up to a torn tail).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Valid blocks in the log.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Segment files read.
    pub fn segments(&self) -> usize {
        self.maps.len()
    }

    /// Records in block `block`, and the index in the log of its first.
    pub fn block_records(&self, block: usize) -> (u64, u64) {
        let block = &self.blocks[block];
        (block.records, block.first_record)
    }

    /// The first block whose first record's index is at least `record`
    /// (`blocks()` if none is).
    pub fn first_block_from(&self, record: u64) -> usize {
        self.blocks
            .partition_point(|block| block.first_record < record)
    }

    /// The log's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// What identifies this log's content: its id, its record type, its
    /// size and the checksum of its manifest (which holds every segment's
    /// digest of block checksums). A checkpoint binds it, so a resumed run
    /// reads the same records.
    pub fn identity(&self) -> String {
        format!(
            "{}; log {:016x}: {} records in {} blocks, manifest {:08x}",
            R::SCHEMA,
            self.manifest.log_id,
            self.records,
            self.blocks.len(),
            self.manifest_crc
        )
    }

    /// Where record `record` of block `block` sits.
    pub fn position(&self, block: usize, record: u64) -> Position {
        let found = &self.blocks[block];
        Position {
            segment: self.maps[found.segment].1,
            block: found.block_in_segment,
            record,
        }
    }

    /// The archived records of block `block`, in place. Hot path of the
    /// log source: no check, no copy.
    pub fn archived(&self, block: usize) -> &ArchivedVec<R::Archived> {
        let found = &self.blocks[block];
        let bytes = &self.maps[found.segment].2[found.payload..found.payload + found.len];
        // SAFETY: `check_block` validated exactly these bytes as an
        // `ArchivedVec<R::Archived>` (rkyv's checked access, which checks
        // bounds, alignment and every record) when the log was opened, and
        // the map they live in is read-only and lives as long as `self`.
        unsafe { rkyv::access_unchecked::<ArchivedVec<R::Archived>>(bytes) }
    }

    /// Appends records `from..from + max` of block `block` (clamped to the
    /// block) to `out`, turned back into `R`. Returns how many.
    pub fn read(&self, block: usize, from: u64, max: usize, out: &mut Vec<R>) -> usize {
        let archived = self.archived(block);
        let from = (from as usize).min(archived.len());
        let to = from.saturating_add(max).min(archived.len());
        let mut pool = rkyv::de::Pool::new();
        for record in &archived[from..to] {
            let record =
                rkyv::api::deserialize_using::<R, _, rkyv::rancor::Error>(record, &mut pool)
                    .expect("a validated record of a plain type deserializes");
            out.push(record);
        }
        to - from
    }
}

/// Checks the block at `offset`: header and its checksum, length,
/// payload checksum and archive. Returns its payload length and record
/// count, or what is wrong.
fn check_block<R: LogRecord>(bytes: &[u8], offset: usize) -> Result<(usize, u64), String> {
    let rest = bytes.len() - offset;
    if rest < BLOCK_HEADER {
        return Err(format!("a block header cut short at {rest} bytes"));
    }
    if bytes[offset..offset + 4] != BLOCK_MAGIC {
        return Err("no block magic".into());
    }
    if crc32fast::hash(&bytes[offset..offset + 16]) != u32_at(bytes, offset + 16) {
        return Err("the block header's checksum fails".into());
    }
    let len = u32_at(bytes, offset + 4) as usize;
    let records = u64::from(u32_at(bytes, offset + 8));
    let crc = u32_at(bytes, offset + 12);
    let payload = offset + BLOCK_HEADER;
    if payload + padded(len) > bytes.len() {
        return Err(format!(
            "a payload of {len} bytes (padded to {}) cut short at {} bytes",
            padded(len),
            bytes.len() - payload
        ));
    }
    let data = &bytes[payload..payload + len];
    if crc32fast::hash(data) != crc {
        return Err("the payload's checksum fails".into());
    }
    match rkyv::access::<ArchivedVec<R::Archived>, rkyv::rancor::Error>(data) {
        Ok(archived) if archived.len() as u64 == records => Ok((len, records)),
        Ok(archived) => Err(format!(
            "the header says {records} records, the archive holds {}",
            archived.len()
        )),
        Err(error) => Err(format!("the archive does not check: {error}")),
    }
}
