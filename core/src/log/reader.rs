//! Reading a record log: every segment is memory-mapped, every block's
//! header, checksum and archive are checked once when the log is opened,
//! and records are then read in place.
//!
//! A damaged block at the very end of the last segment (a header or
//! payload cut short, or a checksum that fails on the block that ends the
//! file) is what a crash during a write leaves: it is treated as the end of
//! the log and reported by [`LogReader::torn_tail`]. Any other damage is a
//! [`LogError`] naming the file and the offset.

use std::fs::{self, File};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rkyv::vec::ArchivedVec;

use super::error::LogError;
use super::format::{
    fingerprint, padded, segment_index, u32_at, u64_at, LogRecord, BLOCK_HEADER, BLOCK_MAGIC,
    FORMAT_VERSION, SEGMENT_HEADER, SEGMENT_MAGIC,
};
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

/// The end of a log cut short by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub path: PathBuf,
    /// Where the torn block starts; the log ends there.
    pub offset: u64,
    /// What was found.
    pub reason: String,
}

/// A record log opened for reading. `Sync`: workers read blocks of it at
/// once.
pub struct LogReader<R> {
    dir: PathBuf,
    maps: Vec<(PathBuf, u64, Mmap)>,
    blocks: Vec<Block>,
    records: u64,
    torn: Option<TornTail>,
    _records: PhantomData<fn() -> R>,
}

impl<R: LogRecord> LogReader<R> {
    /// Opens the log in `dir` and checks every block.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LogError> {
        let dir = dir.into();
        let mut segments: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io("list the directory", &dir))? {
            let entry = entry.map_err(io("list the directory", &dir))?;
            if let Some(index) = segment_index(&entry.file_name().to_string_lossy()) {
                segments.push((index, entry.path()));
            }
        }
        if segments.is_empty() {
            return Err(LogError::NoLog { dir });
        }
        segments.sort();
        let mut reader = LogReader {
            dir,
            maps: Vec::with_capacity(segments.len()),
            blocks: Vec::new(),
            records: 0,
            torn: None,
            _records: PhantomData,
        };
        let last = segments.len() - 1;
        for (position, (index, path)) in segments.into_iter().enumerate() {
            let file = File::open(&path).map_err(io("open", &path))?;
            // SAFETY: segments are append-only and never rewritten once
            // closed; the map covers the length the file had when it was
            // opened, and every read below stays within the map. A process
            // that truncates a segment while it is mapped breaks this (the
            // OS would fault the reader): logs are not to be edited in place.
            let map = unsafe { Mmap::map(&file) }.map_err(io("map", &path))?;
            reader.maps.push((path, index, map));
            reader.index_segment(position, position == last)?;
            if reader.torn.is_some() {
                break;
            }
        }
        Ok(reader)
    }

    /// Checks segment `position`'s header and blocks and indexes them.
    fn index_segment(&mut self, position: usize, is_last: bool) -> Result<(), LogError> {
        let (path, _, map) = &self.maps[position];
        let bytes: &[u8] = map;
        if bytes.len() < SEGMENT_HEADER || bytes[0..8] != SEGMENT_MAGIC {
            if is_last
                && bytes.len() < SEGMENT_HEADER
                && SEGMENT_MAGIC.starts_with(&bytes[..bytes.len().min(8)])
            {
                self.torn = Some(TornTail {
                    path: path.clone(),
                    offset: 0,
                    reason: format!("a segment header cut short at {} bytes", bytes.len()),
                });
                return Ok(());
            }
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
        let expected = fingerprint::<R>();
        let found = u64_at(bytes, 16);
        if found != expected {
            return Err(LogError::WrongRecordType {
                path: path.clone(),
                found,
                expected,
                schema: R::SCHEMA,
            });
        }
        let mut offset = SEGMENT_HEADER;
        let mut block_in_segment = 0;
        while offset < bytes.len() {
            match check_block::<R>(bytes, offset) {
                Ok((len, records)) => {
                    self.blocks.push(Block {
                        segment: position,
                        block_in_segment,
                        payload: offset + BLOCK_HEADER,
                        len,
                        records,
                        first_record: self.records,
                    });
                    self.records += records;
                    block_in_segment += 1;
                    offset += BLOCK_HEADER + padded(len);
                }
                Err(Damage::Torn(reason)) if is_last => {
                    self.torn = Some(TornTail {
                        path: path.clone(),
                        offset: offset as u64,
                        reason,
                    });
                    return Ok(());
                }
                Err(Damage::Torn(reason) | Damage::Corrupt(reason)) => {
                    return Err(LogError::Corrupt {
                        path: path.clone(),
                        offset: offset as u64,
                        reason,
                    })
                }
            }
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

    /// The CRC-32 of block `block`'s payload, as its header holds it
    /// (checked when the log was opened).
    pub fn block_checksum(&self, block: usize) -> u32 {
        let found = &self.blocks[block];
        let header = found.payload - BLOCK_HEADER;
        let bytes = &self.maps[found.segment].2[header + 12..header + 16];
        u32::from_le_bytes(bytes.try_into().expect("4 bytes"))
    }

    /// The end cut short by a crash, if the log has one.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn.as_ref()
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

enum Damage {
    /// Cut short at the end of the file: a torn write if this is the end
    /// of the log.
    Torn(String),
    /// Damaged with more data after it.
    Corrupt(String),
}

/// Checks the block at `offset`: header, length, checksum and archive.
/// Returns its payload length and record count.
fn check_block<R: LogRecord>(bytes: &[u8], offset: usize) -> Result<(usize, u64), Damage> {
    let rest = bytes.len() - offset;
    if rest < BLOCK_HEADER {
        return Err(Damage::Torn(format!(
            "a block header cut short at {rest} bytes"
        )));
    }
    if bytes[offset..offset + 4] != BLOCK_MAGIC {
        let all_zero = bytes[offset..].iter().all(|&b| b == 0);
        let reason = "no block magic".to_owned();
        return Err(if all_zero {
            Damage::Torn(format!("{reason}: zeros to the end"))
        } else {
            Damage::Corrupt(reason)
        });
    }
    let len = u32_at(bytes, offset + 4) as usize;
    let records = u64::from(u32_at(bytes, offset + 8));
    let crc = u32_at(bytes, offset + 12);
    let payload = offset + BLOCK_HEADER;
    if payload + padded(len) > bytes.len() {
        return Err(Damage::Torn(format!(
            "a payload of {len} bytes (padded to {}) cut short at {} bytes",
            padded(len),
            bytes.len() - payload
        )));
    }
    let ends_file = payload + padded(len) == bytes.len();
    let data = &bytes[payload..payload + len];
    if crc32fast::hash(data) != crc {
        let reason = "checksum mismatch".to_owned();
        return Err(if ends_file {
            Damage::Torn(reason)
        } else {
            Damage::Corrupt(reason)
        });
    }
    match rkyv::access::<ArchivedVec<R::Archived>, rkyv::rancor::Error>(data) {
        Ok(archived) if archived.len() as u64 == records => Ok((len, records)),
        Ok(archived) => Err(Damage::Corrupt(format!(
            "the header says {records} records, the archive holds {}",
            archived.len()
        ))),
        Err(error) => Err(Damage::Corrupt(format!(
            "the archive does not check: {error}"
        ))),
    }
}
