//! The manifest: written last, once every segment is synced, it says the
//! log is complete and what it holds, segment by segment. A reader checks
//! the directory and every segment against it, so a missing, extra,
//! repeated, reordered, renamed, truncated or extended segment is refused,
//! and a log whose write did not finish (no manifest) is never read as a
//! shorter log.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::LogError;
use super::format::{FORMAT_VERSION, MANIFEST};
use crate::durable::{sync_dir, write_atomically, IoFailure};

/// What a complete log holds, as its `manifest` file (JSON) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Manifest {
    /// The log's format version.
    pub format_version: u32,
    /// The log's id, drawn when it was created; every segment header
    /// carries it.
    pub log_id: u64,
    /// The record type's schema name.
    pub schema: String,
    /// The record type's fingerprint; every segment header carries it.
    pub fingerprint: u64,
    /// Records in the log.
    pub records: u64,
    /// Blocks in the log.
    pub blocks: u64,
    /// The segments, in order.
    pub segments: Vec<SegmentEntry>,
}

/// One segment as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SegmentEntry {
    /// Its file name.
    pub name: String,
    /// Its length in bytes.
    pub bytes: u64,
    /// Records in it.
    pub records: u64,
    /// Blocks in it.
    pub blocks: u64,
    /// CRC-32 over its block headers in order (each holds its payload's
    /// checksum): ties the blocks to their segment and their order.
    pub digest: u32,
}

impl Manifest {
    /// Reads `dir`'s manifest; `None` if there is none.
    pub(crate) fn read(dir: &Path) -> Result<Option<(Manifest, u32)>, LogError> {
        let path = dir.join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LogError::Io {
                    action: "read",
                    path,
                    source,
                })
            }
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|error| LogError::BadManifest {
                path: path.clone(),
                reason: format!("not a manifest: {error}"),
            })?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(LogError::BadManifest {
                path,
                reason: format!(
                    "format version {}; this build reads version {FORMAT_VERSION}",
                    manifest.format_version
                ),
            });
        }
        let records: u64 = manifest.segments.iter().map(|s| s.records).sum();
        let blocks: u64 = manifest.segments.iter().map(|s| s.blocks).sum();
        if records != manifest.records || blocks != manifest.blocks {
            return Err(LogError::BadManifest {
                path,
                reason: format!(
                    "it counts {} records in {} blocks, its segments {records} in {blocks}",
                    manifest.records, manifest.blocks
                ),
            });
        }
        Ok(Some((manifest, crc32fast::hash(&bytes))))
    }

    /// Writes the manifest into `dir` (to a temporary name, synced,
    /// renamed, the directory synced): the last step of a log's write.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), LogError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|error| LogError::BadManifest {
            path: dir.join(MANIFEST),
            reason: error.to_string(),
        })?;
        let io = |failure: IoFailure| LogError::Io {
            action: failure.action,
            path: failure.path,
            source: failure.source,
        };
        write_atomically(dir, &dir.join(MANIFEST), &bytes).map_err(io)?;
        sync_dir(dir).map_err(io)
    }
}
