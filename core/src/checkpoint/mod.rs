//! The checkpoint directory, modelled on Spark's: what a run needs to be
//! resumed after a crash with every epoch exactly as it would have been.
//!
//! ```text
//! DIR/lock            held (an OS file lock) by the one run using DIR
//! DIR/metadata        the epoch plan: records per epoch, the source and
//!                     the settings the checkpoint is bound to (JSON)
//! DIR/offsets/<e>     the log positions of epoch e, written before its
//!                     results go to the sink
//! DIR/commits/<e>     written after the sink committed epoch e (the
//!                     last 100 epochs' offsets and commits are kept)
//! DIR/state/<e>.rkyv  the running totals after epoch e, every few epochs,
//!                     for jobs that snapshot them
//! DIR/queries/<name>  the last epoch query <name> committed to its own
//!                     sink, for several queries on one engine
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
//! What is refused rather than resumed: a directory another run holds (its
//! lock), a missing `metadata` next to logged epochs, another plan, source
//! or bound settings ([`Checkpoint::bind_settings`]), a commit file whose
//! epoch is not its name or whose offsets are missing, a gap in the
//! commits, offsets beyond the epoch after the last commit, and damaged
//! files. See `docs/durability.md` for what is detected and what is not.
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
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::{create_dir, sync_dir, write_atomically, IoFailure};

mod commit;
mod queries;
mod resume;
mod state;

pub(crate) use commit::{commit_epoch, CommitError};
pub use queries::QueryCommits;
pub(crate) use resume::{restore_totals, resume_plan};
pub use state::{StateSnapshot, DEFAULT_SNAPSHOT_EVERY};

/// The version of the directory's layout, in its metadata.
pub const FORMAT_VERSION: u32 = 1;

/// Why a checkpoint directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// Another run holds the directory.
    #[error("checkpoint {dir} is in use by another run (its lock is held); wait for that run to end, or use another directory")]
    InUse {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory's files contradict each other: one was deleted,
    /// copied in or damaged.
    #[error(
        "checkpoint {dir}: {message}; restore the checkpoint, or start a new checkpoint directory"
    )]
    Inconsistent {
        /// The directory.
        dir: PathBuf,
        /// What contradicts what.
        message: String,
    },
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
    /// What the source's records are (see `SourceSpec::identity`), once a
    /// run has bound it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    /// The settings the checkpoint is bound to (see
    /// [`Checkpoint::bind_settings`]), once a run has bound them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    settings: Option<String>,
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
    /// The source bound to the checkpoint, if any.
    source: Option<String>,
    /// The settings bound to the checkpoint, if any.
    settings: Option<String>,
    /// `DIR/lock`, locked for as long as this value lives.
    _lock: fs::File,
    last_committed: Option<u64>,
    snapshot_every: u64,
    retain: u64,
}

/// The offsets and commits of this many most recent epochs are kept by
/// default (Spark keeps 100 batches' too).
pub const DEFAULT_RETAIN_EPOCHS: u64 = 100;

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
        create_dir(&dir)?;
        let lock = lock_dir(&dir)?;
        let wanted = Metadata {
            format_version: FORMAT_VERSION,
            records_per_epoch,
            source: None,
            settings: None,
        };
        let metadata_path = dir.join("metadata");
        let found = match fs::read(&metadata_path) {
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
                found
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if let Some(what) = logged_epochs(&dir)? {
                    return Err(CheckpointError::Inconsistent {
                        dir,
                        message: format!("`metadata` is missing, but {what} are logged"),
                    });
                }
                write_metadata(&dir, &wanted)?;
                wanted
            }
            Err(source) => {
                return Err(CheckpointError::Io {
                    action: "read",
                    path: metadata_path,
                    source,
                })
            }
        };
        for sub in ["offsets", "commits"] {
            create_dir(&dir.join(sub))?;
        }
        let last_committed = check_commits(&dir)?;
        Ok(Checkpoint {
            dir,
            records_per_epoch,
            source: found.source,
            settings: found.settings,
            _lock: lock,
            last_committed,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            retain: DEFAULT_RETAIN_EPOCHS,
        })
    }

    /// Binds the checkpoint to `settings`: a description of everything a
    /// resumed run must share with the runs before it beyond the plan and
    /// the source (the job, its output mode, the sink and where it writes).
    /// The first run records them; a later run with other settings is
    /// refused with both, rather than mixing incompatible results into one
    /// output.
    ///
    /// ```
    /// use microbatch::checkpoint::{Checkpoint, CheckpointError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// drop(Checkpoint::open(dir.path(), 1000)?.bind_settings("keyed count into a.db")?);
    /// let other = Checkpoint::open(dir.path(), 1000)?.bind_settings("keyed sum into b.db");
    /// assert!(matches!(other, Err(CheckpointError::Mismatch { setting: "settings", .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_settings(mut self, settings: impl Into<String>) -> Result<Self, CheckpointError> {
        let settings = settings.into();
        match &self.settings {
            Some(bound) if *bound == settings => Ok(self),
            Some(bound) => Err(CheckpointError::Mismatch {
                path: self.dir.join("metadata"),
                setting: "settings",
                found: bound.clone(),
                wanted: settings,
            }),
            None => {
                self.settings = Some(settings);
                self.rewrite_metadata()?;
                Ok(self)
            }
        }
    }

    /// Writes `DIR/metadata` with what is bound now.
    fn rewrite_metadata(&self) -> Result<(), CheckpointError> {
        write_metadata(
            &self.dir,
            &Metadata {
                format_version: FORMAT_VERSION,
                records_per_epoch: self.records_per_epoch,
                source: self.source.clone(),
                settings: self.settings.clone(),
            },
        )
    }

    /// Binds the checkpoint to the source whose records it logs, named by
    /// `identity` ([`SourceSpec::identity`](crate::source::SourceSpec::identity)):
    /// the first run records it, and a later run over another source is
    /// refused rather than resumed at positions that mean nothing there.
    pub(crate) fn bind_source(&mut self, identity: Option<&str>) -> Result<(), CheckpointError> {
        let Some(identity) = identity else {
            return Ok(());
        };
        match &self.source {
            Some(bound) if bound == identity => Ok(()),
            Some(bound) => Err(CheckpointError::Mismatch {
                path: self.dir.join("metadata"),
                setting: "source",
                found: bound.clone(),
                wanted: identity.to_owned(),
            }),
            None => {
                self.source = Some(identity.to_owned());
                self.rewrite_metadata()
            }
        }
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

    /// Where several queries on one engine record the epochs each
    /// committed to its own sink (`DIR/queries/<name>`).
    pub fn query_commits(&self) -> QueryCommits {
        QueryCommits::of(self)
    }

    /// The first epoch not committed when the directory was opened.
    pub fn next_epoch(&self) -> u64 {
        self.last_committed.map_or(0, |last| last + 1)
    }

    /// The logged offsets of `epoch`, if it got that far.
    pub fn offsets(&self, epoch: u64) -> Result<Option<Offsets>, CheckpointError> {
        read_record(&self.dir.join("offsets").join(epoch.to_string()))
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

    /// Keeps the offsets and commits of the `epochs` most recent epochs
    /// (at least 1); older ones are removed as new ones are committed, so
    /// that a long run's directory stays small. Default
    /// [`DEFAULT_RETAIN_EPOCHS`]. Resuming needs only the last commit: the
    /// epochs are cut by the plan, and running totals come from the state
    /// snapshots (or a replay from the first epoch).
    pub fn retain_epochs(mut self, epochs: u64) -> Self {
        self.retain = epochs.max(1);
        self
    }

    /// Logs that the sink committed `epoch`, and forgets the epoch that
    /// fell out of the retained window. Once per epoch.
    pub(crate) fn write_commit(&self, epoch: u64, rows: u64) -> Result<(), CheckpointError> {
        self.write("commits", epoch, &Commit { epoch, rows })?;
        if let Some(old) = epoch.checked_sub(self.retain) {
            for sub in ["offsets", "commits"] {
                let path = self.dir.join(sub).join(old.to_string());
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(CheckpointError::Io {
                            action: "remove",
                            path,
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    fn write(&self, sub: &str, epoch: u64, value: &impl Serialize) -> Result<(), CheckpointError> {
        write_record(&self.dir.join(sub), &epoch.to_string(), value)
    }
}

/// The JSON record at `path`, if there is one; a file that is not one is
/// `Corrupt`.
fn read_record<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, CheckpointError> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CheckpointError::Corrupt {
                    path: path.to_owned(),
                    message: e.to_string(),
                })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `value` as JSON to `dir/name` durably: a temporary file, synced,
/// renamed, the directory synced.
fn write_record(dir: &Path, name: &str, value: &impl Serialize) -> Result<(), CheckpointError> {
    let bytes = serde_json::to_vec(value).expect("plain checkpoint records encode");
    write_atomically(dir, &dir.join(name), &bytes)?;
    Ok(sync_dir(dir)?)
}

/// Takes `DIR/lock` (an OS advisory lock, released when the file closes,
/// also when the process dies): one run per directory at a time.
fn lock_dir(dir: &Path) -> Result<fs::File, CheckpointError> {
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| CheckpointError::Io {
            action: "open",
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(CheckpointError::InUse {
            dir: dir.to_owned(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(CheckpointError::Io {
            action: "lock",
            path,
            source,
        }),
    }
}

/// What is logged in `dir` without its metadata, if anything is.
fn logged_epochs(dir: &Path) -> Result<Option<String>, CheckpointError> {
    for sub in ["offsets", "commits", "state"] {
        let path = dir.join(sub);
        if path.exists() && !epochs_in(&path, if sub == "state" { ".rkyv" } else { "" })?.is_empty()
        {
            return Ok(Some(format!("epochs in `{sub}/`")));
        }
    }
    Ok(None)
}

/// Checks the commits against each other and the offsets, and returns the
/// last committed epoch: each `commits/<e>` names epoch `e` inside, has its
/// `offsets/<e>`, the commits run without a gap, and no offsets lie beyond
/// the epoch after the last commit.
fn check_commits(dir: &Path) -> Result<Option<u64>, CheckpointError> {
    let inconsistent = |message: String| CheckpointError::Inconsistent {
        dir: dir.to_owned(),
        message,
    };
    let mut commits = epochs_in(&dir.join("commits"), "")?;
    commits.sort_unstable();
    let offsets = epochs_in(&dir.join("offsets"), "")?;
    for (i, &epoch) in commits.iter().enumerate() {
        let path = dir.join("commits").join(epoch.to_string());
        let bytes = fs::read(&path).map_err(|source| CheckpointError::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        let commit: Commit =
            serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if commit.epoch != epoch {
            return Err(inconsistent(format!(
                "`commits/{epoch}` holds the commit of epoch {}",
                commit.epoch
            )));
        }
        if !offsets.contains(&epoch) {
            return Err(inconsistent(format!(
                "epoch {epoch} is committed but `offsets/{epoch}` is missing"
            )));
        }
        if i > 0 && commits[i - 1] + 1 != epoch {
            return Err(inconsistent(format!(
                "the commits jump from epoch {} to {epoch}",
                commits[i - 1]
            )));
        }
    }
    let last = commits.last().copied();
    let next = last.map_or(0, |last| last + 1);
    if let Some(&beyond) = offsets.iter().find(|&&e| e > next) {
        return Err(inconsistent(format!(
            "`offsets/{beyond}` lies beyond epoch {next}, the one after the last commit"
        )));
    }
    Ok(last)
}

/// Writes `DIR/metadata`.
fn write_metadata(dir: &Path, metadata: &Metadata) -> Result<(), CheckpointError> {
    let bytes = serde_json::to_vec(metadata).expect("plain metadata encodes");
    write_atomically(dir, &dir.join("metadata"), &bytes)?;
    Ok(sync_dir(dir)?)
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
mod tests;
