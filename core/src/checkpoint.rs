//! The checkpoint directory, modelled on Spark's: what a run needs to be
//! resumed after a crash with every epoch exactly as it would have been.
//!
//! ```text
//! DIR/metadata        the epoch plan: records per epoch (JSON)
//! DIR/offsets/<e>     the log positions of epoch e, written before its
//!                     results go to the sink
//! DIR/commits/<e>     written after the sink committed epoch e
//! DIR/state/<e>.rkyv  the running totals after epoch e, every few epochs,
//!                     for jobs that snapshot them
//! ```
//!
//! A checkpointed run cuts its source by position (see
//! [`EpochPlan`](crate::source::EpochPlan)): epoch `e` holds the log's
//! blocks whose first record's index `i` has `i / records_per_epoch == e`.
//! So the epochs do not depend on timing, and a resumed run rebuilds any
//! epoch exactly. Resuming starts at the epoch after the last commit; a
//! job with running totals starts at epoch 0 instead and replays the
//! committed epochs without output, to rebuild its totals, or, if its
//! totals are [snapshotted](crate::job::RunningKeyedJob::snapshotted), at
//! the epoch after the last snapshot (a `state/<e>.rkyv` whose epoch is
//! committed), replaying from there. An epoch whose
//! results reached the sink but whose commit file did not (a crash in
//! between) is written again, which the idempotent sinks
//! ([`FileSink`](crate::sink::FileSink), the SQLite sink) skip.
//!
//! Every file is written to a temporary name, synced, renamed and the
//! directory synced: two small synced writes per epoch, on the thread that
//! completes the epoch, off the records' path.
//!
//! ```
//! use microbatch::checkpoint::Checkpoint;
//! use microbatch::job::{self, count};
//! use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
//! use microbatch::sink::CollectSink;
//! use microbatch::source::Event;
//! use microbatch::Engine;
//!
//! let log_dir = tempfile::tempdir()?;
//! let mut writer = LogWriter::<Event>::create(log_dir.path(), LogOptions::default())?;
//! for i in 0..20_000 {
//!     writer.append(Event { key: i % 3, value: 1 })?;
//! }
//! writer.finish()?;
//!
//! let checkpoint_dir = tempfile::tempdir()?;
//! let run = || -> Result<u64, Box<dyn std::error::Error>> {
//!     let (sink, collected) = CollectSink::new();
//!     let per_key = job::records::<Event>().key_by(|e| e.key).aggregate(count());
//!     let engine = Engine::builder(per_key, sink)
//!         .workers(2)
//!         .interval(None)
//!         .source(LogSource::new(LogReader::open(log_dir.path())?, None))
//!         .checkpoint(Checkpoint::open(checkpoint_dir.path(), 8192)?)
//!         .start()?;
//!     engine.finish()?;
//!     Ok(collected.take().len() as u64)
//! };
//! assert_eq!(run()?, 9); // 3 epochs (blocks 0-1, 2-3 and 4 of 4096 records), 3 keys each
//! // Everything is committed: a second run has nothing to do.
//! assert_eq!(run()?, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use serde::{Deserialize, Serialize};

use crate::durable::{create_dir, sync_dir, write_atomically, IoFailure};

/// The version of the directory's layout, in its metadata.
pub const FORMAT_VERSION: u32 = 1;

/// Why a checkpoint directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file operation failed (a full disk, no permission, …).
    #[error("checkpoint: could not {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The directory was made for a different plan.
    #[error(
        "checkpoint {path} was made with {setting} = {found}, not {wanted}; \
         resume with {found} or start a new checkpoint directory"
    )]
    Mismatch {
        /// The metadata file.
        path: PathBuf,
        /// The setting that differs.
        setting: &'static str,
        /// What the checkpoint holds.
        found: String,
        /// What this run asked for.
        wanted: String,
    },
    /// A file of the checkpoint cannot be read as one.
    #[error("checkpoint: {path} is not a checkpoint file: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A setting cannot be checkpointed.
    #[error("checkpoint: {0}")]
    Unusable(String),
}

impl From<IoFailure> for CheckpointError {
    fn from(failure: IoFailure) -> Self {
        CheckpointError::Io {
            action: failure.action,
            path: failure.path,
            source: failure.source,
        }
    }
}

/// `DIR/metadata`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Metadata {
    format_version: u32,
    records_per_epoch: u64,
}

/// `DIR/offsets/<epoch>`: where epoch `epoch` lies in the log.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Offsets {
    /// The epoch.
    pub epoch: u64,
    /// The epoch holds the blocks whose first record's index is in
    /// `first_record..end_record`.
    pub first_record: u64,
    /// See `first_record`.
    pub end_record: u64,
    /// Records the epoch held.
    pub records: u64,
}

/// `DIR/commits/<epoch>`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Commit {
    epoch: u64,
    rows: u64,
}

/// An open checkpoint directory. Give it to
/// [`EngineBuilder::checkpoint`](crate::EngineBuilder::checkpoint).
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    records_per_epoch: u64,
    last_committed: Option<u64>,
    snapshot_every: u64,
}

/// Snapshots are taken after every this many epochs by default.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10;

/// First bytes of a state snapshot.
const STATE_MAGIC: [u8; 8] = *b"MBSTATE\0";
/// The state snapshot layout this build reads and writes.
const STATE_VERSION: u32 = 1;
/// Magic, version, partitions, epoch.
const STATE_HEADER: usize = 24;
/// Per partition: offset, length, CRC-32, padding.
const STATE_ENTRY: usize = 24;
/// Alignment of each partition's bytes (rkyv reads them in place).
const STATE_ALIGN: usize = 16;

/// A state snapshot read back: each partition's encoded totals, in a
/// read-only map of `state/<epoch>.rkyv`.
#[derive(Debug)]
pub struct StateSnapshot {
    /// The epoch after which the totals were saved.
    pub epoch: u64,
    path: PathBuf,
    map: Mmap,
    parts: Vec<Range<usize>>,
}

impl StateSnapshot {
    /// Partition `partition`'s bytes, checked against their checksum when
    /// the snapshot was opened.
    pub fn part(&self, partition: usize) -> &[u8] {
        &self.map[self.parts[partition].clone()]
    }

    /// The snapshot's file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Checkpoint {
    /// Opens `dir`, creating it (with a plan of `records_per_epoch` records
    /// per epoch) if it holds no checkpoint yet. An existing checkpoint
    /// must have the same plan: the epochs it committed are cut by it.
    pub fn open(dir: impl Into<PathBuf>, records_per_epoch: u64) -> Result<Self, CheckpointError> {
        let dir = dir.into();
        if records_per_epoch == 0 {
            return Err(CheckpointError::Unusable(
                "records per epoch must be at least 1".into(),
            ));
        }
        let wanted = Metadata {
            format_version: FORMAT_VERSION,
            records_per_epoch,
        };
        let metadata_path = dir.join("metadata");
        match fs::read(&metadata_path) {
            Ok(bytes) => {
                let found: Metadata =
                    serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Corrupt {
                        path: metadata_path.clone(),
                        message: e.to_string(),
                    })?;
                let mismatch = |setting, found: u64, wanted: u64| CheckpointError::Mismatch {
                    path: metadata_path.clone(),
                    setting,
                    found: found.to_string(),
                    wanted: wanted.to_string(),
                };
                if found.format_version != FORMAT_VERSION {
                    return Err(mismatch(
                        "format_version",
                        found.format_version.into(),
                        FORMAT_VERSION.into(),
                    ));
                }
                if found.records_per_epoch != records_per_epoch {
                    return Err(mismatch(
                        "records_per_epoch",
                        found.records_per_epoch,
                        records_per_epoch,
                    ));
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                create_dir(&dir)?;
                let bytes = serde_json::to_vec(&wanted).expect("plain metadata encodes");
                write_atomically(&dir, &metadata_path, &bytes)?;
                sync_dir(&dir)?;
            }
            Err(source) => {
                return Err(CheckpointError::Io {
                    action: "read",
                    path: metadata_path,
                    source,
                })
            }
        }
        for sub in ["offsets", "commits"] {
            create_dir(&dir.join(sub))?;
        }
        let last_committed = last_epoch_in(&dir.join("commits"))?;
        Ok(Checkpoint {
            dir,
            records_per_epoch,
            last_committed,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
        })
    }

    /// Snapshots running totals (of a job that saves them) after every
    /// `epochs` epochs; 0: never. Default [`DEFAULT_SNAPSHOT_EVERY`]. A
    /// snapshot costs a copy of the totals on each owner and one synced
    /// file; a resumed run replays at most this many epochs.
    pub fn snapshot_every(mut self, epochs: u64) -> Self {
        self.snapshot_every = epochs;
        self
    }

    /// Whether the totals are snapshotted after `epoch`.
    pub(crate) fn snapshot_due(&self, epoch: u64) -> bool {
        self.snapshot_every > 0 && (epoch + 1) % self.snapshot_every == 0
    }

    fn state_path(&self, epoch: u64) -> PathBuf {
        self.dir.join("state").join(format!("{epoch}.rkyv"))
    }

    /// Saves every partition's encoded totals after `epoch`, before the
    /// epoch's commit, and removes all but the newest two snapshots.
    pub(crate) fn write_state(&self, epoch: u64, parts: &[Vec<u8>]) -> Result<(), CheckpointError> {
        let table = STATE_HEADER + parts.len() * STATE_ENTRY;
        let mut bytes = Vec::with_capacity(table + parts.iter().map(Vec::len).sum::<usize>());
        bytes.extend_from_slice(&STATE_MAGIC);
        bytes.extend_from_slice(&STATE_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(parts.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&epoch.to_le_bytes());
        let mut offset = table.next_multiple_of(STATE_ALIGN);
        for part in parts {
            bytes.extend_from_slice(&(offset as u64).to_le_bytes());
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(part).to_le_bytes());
            bytes.extend_from_slice(&[0; 4]);
            offset = (offset + part.len()).next_multiple_of(STATE_ALIGN);
        }
        for part in parts {
            bytes.resize(bytes.len().next_multiple_of(STATE_ALIGN), 0);
            bytes.extend_from_slice(part);
        }
        let dir = self.dir.join("state");
        create_dir(&dir)?;
        write_atomically(&dir, &self.state_path(epoch), &bytes)?;
        sync_dir(&dir)?;
        let mut older = epochs_in(&dir, ".rkyv")?;
        older.retain(|&e| e < epoch);
        older.sort_unstable();
        for old in older.iter().rev().skip(1) {
            let path = self.state_path(*old);
            fs::remove_file(&path).map_err(|source| CheckpointError::Io {
                action: "remove",
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// The newest snapshot of committed state with `partitions` parts, if
    /// any. A snapshot of another partition count (another worker count)
    /// cannot be used and is passed over.
    pub fn latest_state(
        &self,
        partitions: usize,
    ) -> Result<Option<StateSnapshot>, CheckpointError> {
        let Some(committed) = self.last_committed else {
            return Ok(None);
        };
        let dir = self.dir.join("state");
        if !dir.exists() {
            return Ok(None);
        }
        let mut epochs = epochs_in(&dir, ".rkyv")?;
        epochs.retain(|&e| e <= committed);
        epochs.sort_unstable();
        for epoch in epochs.into_iter().rev() {
            let snapshot = self.open_state(epoch)?;
            if snapshot.parts.len() == partitions {
                return Ok(Some(snapshot));
            }
        }
        Ok(None)
    }

    fn open_state(&self, epoch: u64) -> Result<StateSnapshot, CheckpointError> {
        let path = self.state_path(epoch);
        let corrupt = |message: String| CheckpointError::Corrupt {
            path: path.clone(),
            message,
        };
        let file = fs::File::open(&path).map_err(|source| CheckpointError::Io {
            action: "open",
            path: path.clone(),
            source,
        })?;
        // SAFETY: the map is read-only, and a snapshot is only ever
        // written whole under a temporary name and renamed into place,
        // never changed in place; a process truncating it while mapped
        // would break this (the OS would fault the reader).
        let map = unsafe { Mmap::map(&file) }.map_err(|source| CheckpointError::Io {
            action: "map",
            path: path.clone(),
            source,
        })?;
        let u32_at = |at: usize| u32::from_le_bytes(map[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(map[at..at + 8].try_into().expect("8 bytes"));
        if map.len() < STATE_HEADER || map[..8] != STATE_MAGIC {
            return Err(corrupt("not a state snapshot (bad magic)".into()));
        }
        if u32_at(8) != STATE_VERSION {
            return Err(corrupt(format!(
                "snapshot version {}, this build reads {STATE_VERSION}",
                u32_at(8)
            )));
        }
        let partitions = u32_at(12) as usize;
        if u64_at(16) != epoch {
            return Err(corrupt(format!("holds epoch {}, not {epoch}", u64_at(16))));
        }
        if map.len() < STATE_HEADER + partitions * STATE_ENTRY {
            return Err(corrupt("cut short in its table of partitions".into()));
        }
        let mut parts = Vec::with_capacity(partitions);
        for partition in 0..partitions {
            let entry = STATE_HEADER + partition * STATE_ENTRY;
            let (offset, len) = (u64_at(entry) as usize, u64_at(entry + 8) as usize);
            let range = offset..offset.saturating_add(len);
            if range.end > map.len() || offset % STATE_ALIGN != 0 {
                return Err(corrupt(format!(
                    "partition {partition} lies outside the file"
                )));
            }
            if crc32fast::hash(&map[range.clone()]) != u32_at(entry + 16) {
                return Err(corrupt(format!("partition {partition} fails its checksum")));
            }
            parts.push(range);
        }
        Ok(StateSnapshot {
            epoch,
            path,
            map,
            parts,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records per epoch of the plan.
    pub fn records_per_epoch(&self) -> u64 {
        self.records_per_epoch
    }

    /// The last epoch committed when the directory was opened.
    pub fn last_committed(&self) -> Option<u64> {
        self.last_committed
    }

    /// The first epoch not committed when the directory was opened.
    pub fn next_epoch(&self) -> u64 {
        self.last_committed.map_or(0, |last| last + 1)
    }

    /// The logged offsets of `epoch`, if it got that far.
    pub fn offsets(&self, epoch: u64) -> Result<Option<Offsets>, CheckpointError> {
        let path = self.dir.join("offsets").join(epoch.to_string());
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| CheckpointError::Corrupt {
                        path,
                        message: e.to_string(),
                    })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CheckpointError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Logs where `epoch` lies, before its results go out. Once per epoch.
    pub(crate) fn write_offsets(&self, epoch: u64, records: u64) -> Result<(), CheckpointError> {
        let offsets = Offsets {
            epoch,
            first_record: epoch.saturating_mul(self.records_per_epoch),
            end_record: epoch
                .saturating_add(1)
                .saturating_mul(self.records_per_epoch),
            records,
        };
        self.write("offsets", epoch, &offsets)
    }

    /// Logs that the sink committed `epoch`. Once per epoch.
    pub(crate) fn write_commit(&self, epoch: u64, rows: u64) -> Result<(), CheckpointError> {
        self.write("commits", epoch, &Commit { epoch, rows })
    }

    fn write(&self, sub: &str, epoch: u64, value: &impl Serialize) -> Result<(), CheckpointError> {
        let dir = self.dir.join(sub);
        let bytes = serde_json::to_vec(value).expect("plain checkpoint records encode");
        write_atomically(&dir, &dir.join(epoch.to_string()), &bytes)?;
        Ok(sync_dir(&dir)?)
    }
}

/// The greatest epoch named by a file in `dir`.
fn last_epoch_in(dir: &Path) -> Result<Option<u64>, CheckpointError> {
    Ok(epochs_in(dir, "")?.into_iter().max())
}

/// The epochs named by the files `<epoch><suffix>` in `dir` (temporary
/// files, which start with a dot, aside).
fn epochs_in(dir: &Path, suffix: &str) -> Result<Vec<u64>, CheckpointError> {
    let listing = |source| CheckpointError::Io {
        action: "list",
        path: dir.to_path_buf(),
        source,
    };
    let mut epochs = Vec::new();
    for entry in fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let epoch = name
            .strip_suffix(suffix)
            .and_then(|stem| stem.parse().ok())
            .ok_or_else(|| CheckpointError::Corrupt {
                path: entry.path(),
                message: format!("a checkpoint file is named by its epoch: <epoch>{suffix}"),
            })?;
        epochs.push(epoch);
    }
    Ok(epochs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_has_no_commit_and_reopens_with_its_plan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let checkpoint = Checkpoint::open(&path, 1000).unwrap();
        assert_eq!(checkpoint.last_committed(), None);
        assert_eq!(checkpoint.next_epoch(), 0);
        checkpoint.write_offsets(0, 990).unwrap();
        checkpoint.write_commit(0, 7).unwrap();
        checkpoint.write_offsets(1, 1010).unwrap();
        checkpoint.write_commit(1, 7).unwrap();
        checkpoint.write_offsets(2, 1000).unwrap();

        let reopened = Checkpoint::open(&path, 1000).unwrap();
        assert_eq!(reopened.last_committed(), Some(1));
        assert_eq!(reopened.next_epoch(), 2);
        let offsets = reopened.offsets(2).unwrap().unwrap();
        assert_eq!((offsets.first_record, offsets.end_record), (2000, 3000));
        assert!(reopened.offsets(3).unwrap().is_none());
    }

    #[test]
    fn a_different_plan_is_refused_with_both_values() {
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::open(dir.path(), 1000).unwrap();
        let error = Checkpoint::open(dir.path(), 2000).unwrap_err();
        assert!(matches!(
            error,
            CheckpointError::Mismatch {
                setting: "records_per_epoch",
                ..
            }
        ));
        let message = error.to_string();
        assert!(
            message.contains("1000") && message.contains("2000"),
            "{message}"
        );
    }

    #[test]
    fn damaged_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("metadata"), b"{not json").unwrap();
        let error = Checkpoint::open(dir.path(), 10).unwrap_err();
        assert!(matches!(error, CheckpointError::Corrupt { .. }), "{error}");

        let dir = tempfile::tempdir().unwrap();
        Checkpoint::open(dir.path(), 10).unwrap();
        fs::write(dir.path().join("commits").join("seven"), b"").unwrap();
        let error = Checkpoint::open(dir.path(), 10).unwrap_err();
        assert!(error.to_string().contains("seven"), "{error}");
        assert!(Checkpoint::open(dir.path(), 0).is_err());
    }

    #[test]
    fn a_state_snapshot_reads_back_each_part_and_keeps_the_newest_two() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint::open(dir.path(), 10).unwrap();
        assert!(checkpoint.latest_state(2).unwrap().is_none());
        for epoch in [4, 9, 14] {
            let parts = vec![vec![epoch as u8; 5], vec![], vec![7; 33]];
            checkpoint.write_state(epoch, &parts).unwrap();
            checkpoint.write_commit(epoch, 0).unwrap();
        }
        checkpoint
            .write_state(19, &[vec![1], vec![2], vec![3]])
            .unwrap();
        let mut kept = epochs_in(&dir.path().join("state"), ".rkyv").unwrap();
        kept.sort_unstable();
        assert_eq!(kept, [14, 19]);

        // Epoch 19 is not committed: its snapshot is not used.
        let reopened = Checkpoint::open(dir.path(), 10).unwrap();
        let snapshot = reopened.latest_state(3).unwrap().unwrap();
        assert_eq!(snapshot.epoch, 14);
        assert_eq!(snapshot.part(0), [14; 5]);
        assert_eq!(snapshot.part(1), [0u8; 0]);
        assert_eq!(snapshot.part(2), [7; 33]);
        assert_eq!(snapshot.part(2).as_ptr() as usize % STATE_ALIGN, 0);
        // Another partition count cannot use it.
        assert!(reopened.latest_state(2).unwrap().is_none());
    }

    #[test]
    fn a_damaged_state_snapshot_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint::open(dir.path(), 10).unwrap();
        checkpoint.write_state(4, &[vec![1, 2, 3, 4]]).unwrap();
        checkpoint.write_commit(4, 0).unwrap();
        let path = dir.path().join("state").join("4.rkyv");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let error = Checkpoint::open(dir.path(), 10)
            .unwrap()
            .latest_state(1)
            .unwrap_err();
        assert!(error.to_string().contains("checksum"), "{error}");
        assert!(error.to_string().contains("4.rkyv"), "{error}");
    }

    #[test]
    fn a_temporary_file_left_by_a_crash_is_not_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::open(dir.path(), 10).unwrap();
        fs::write(dir.path().join("commits").join(".4.tmp"), b"{").unwrap();
        assert_eq!(
            Checkpoint::open(dir.path(), 10).unwrap().last_committed(),
            None
        );
    }
}
