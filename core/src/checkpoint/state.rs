//! `state/<epoch>.rkyv`: every partition's running totals after an epoch,
//! each part aligned for rkyv and checked by a CRC-32, read back through a
//! memory map.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::{epochs_in, Checkpoint, CheckpointError};
use crate::durable::{create_dir, sync_dir, write_atomically};

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
        self.snapshot_every > 0 && (epoch + 1).is_multiple_of(self.snapshot_every)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_snapshot_reads_back_each_part_and_keeps_the_newest_two() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint::open(dir.path(), 10).unwrap();
        assert!(checkpoint.latest_state(2).unwrap().is_none());
        for epoch in 0..=14 {
            if epoch % 5 == 4 {
                let parts = vec![vec![epoch as u8; 5], vec![], vec![7; 33]];
                checkpoint.write_state(epoch, &parts).unwrap();
            }
            checkpoint.write_offsets(epoch, 10).unwrap();
            checkpoint.write_commit(epoch, 0).unwrap();
        }
        checkpoint
            .write_state(19, &[vec![1], vec![2], vec![3]])
            .unwrap();
        let mut kept = epochs_in(&dir.path().join("state"), ".rkyv").unwrap();
        kept.sort_unstable();
        assert_eq!(kept, [14, 19]);

        // Epoch 19 is not committed: its snapshot is not used.
        drop(checkpoint);
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
        for epoch in 0..=4 {
            checkpoint.write_offsets(epoch, 10).unwrap();
            checkpoint.write_commit(epoch, 0).unwrap();
        }
        checkpoint.write_state(4, &[vec![1, 2, 3, 4]]).unwrap();
        drop(checkpoint);
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
}
