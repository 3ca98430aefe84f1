//! `DIR/queries/<name>`: the last epoch each of several queries on one
//! engine committed to its own sink.
//!
//! A query's epochs complete on their own (`queries/report.rs`), after
//! the engine's epoch that seals them and possibly after later ones, so
//! the engine's `commits/<e>` cannot say what a query's sink holds. Each
//! query has a file of its own instead, rewritten (synced, renamed, the
//! directory synced) after its sink committed an epoch. A resumed run
//! starts at the earliest epoch some query has not committed and folds
//! the epochs a query committed already without output for it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{read_record, write_record, Checkpoint, CheckpointError};
use crate::durable::create_dir;

/// The longest query name a checkpoint takes (a file name).
const LONGEST_NAME: usize = 100;

/// `DIR/queries/<name>`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct QueryCommit {
    query: String,
    epoch: u64,
    rows: u64,
}

/// Where the queries of a checkpointed run record what their sinks
/// committed ([`Job::resume_query_commits`](crate::job::Job::resume_query_commits)).
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct QueryCommits {
    dir: PathBuf,
}

impl QueryCommits {
    /// The commits of the queries under `checkpoint`'s directory (also
    /// [`Checkpoint::query_commits`]).
    pub fn of(checkpoint: &Checkpoint) -> Self {
        QueryCommits {
            dir: checkpoint.dir().join("queries"),
        }
    }

    /// The last epoch query `name` committed, if any. Refuses a name that
    /// cannot be a file's and a file that is not one of these commits.
    pub fn last(&self, name: &str) -> Result<Option<u64>, CheckpointError> {
        let path = self.path(name)?;
        let Some(commit) = read_record::<QueryCommit>(&path)? else {
            return Ok(None);
        };
        if commit.query != name {
            return Err(CheckpointError::Inconsistent {
                dir: self.dir.clone(),
                message: format!(
                    "{} holds the commits of query {:?}, not of {name:?}",
                    path.display(),
                    commit.query
                ),
            });
        }
        Ok(Some(commit.epoch))
    }

    /// Records that query `name`'s sink committed `epoch` with `rows`
    /// rows. Once per epoch of the query, after its sink's commit; cold.
    pub fn commit(&self, name: &str, epoch: u64, rows: u64) -> Result<(), CheckpointError> {
        self.path(name)?;
        create_dir(&self.dir)?;
        let commit = QueryCommit {
            query: name.to_owned(),
            epoch,
            rows,
        };
        write_record(&self.dir, name, &commit)
    }

    /// `DIR/queries/<name>`, for a name that is a plain file name.
    fn path(&self, name: &str) -> Result<PathBuf, CheckpointError> {
        let plain = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if name.is_empty() || name.len() > LONGEST_NAME || name.starts_with('.') || !plain {
            return Err(CheckpointError::Unusable(format!(
                "query name {name:?} cannot name its file in the checkpoint: use up to \
                 {LONGEST_NAME} letters, digits, '_', '-' and '.' (not first)"
            )));
        }
        Ok(self.dir.join(name))
    }

    /// The directory of the commits.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::fs;

    fn commits() -> (tempfile::TempDir, QueryCommits) {
        let dir = tempfile::tempdir().unwrap();
        let commits = QueryCommits {
            dir: dir.path().join("queries"),
        };
        (dir, commits)
    }

    #[test]
    fn the_last_commit_of_each_query_is_read_back() {
        let (_dir, commits) = commits();
        assert_eq!(commits.last("alerts").unwrap(), None);
        commits.commit("alerts", 3, 10).unwrap();
        commits.commit("alerts", 4, 12).unwrap();
        commits.commit("dashboard", 9, 1).unwrap();
        assert_eq!(commits.last("alerts").unwrap(), Some(4));
        assert_eq!(commits.last("dashboard").unwrap(), Some(9));
    }

    #[test]
    fn names_that_are_not_plain_file_names_are_refused() {
        let (_dir, commits) = commits();
        for name in ["", "../x", "a/b", ".hidden", "é"] {
            let error = commits.commit(name, 0, 0).unwrap_err().to_string();
            assert!(error.contains("cannot name its file"), "{name:?}: {error}");
        }
    }

    #[test]
    fn a_damaged_or_moved_commit_is_refused() {
        let (_dir, commits) = commits();
        commits.commit("alerts", 3, 10).unwrap();
        fs::copy(commits.dir.join("alerts"), commits.dir.join("other")).unwrap();
        let moved = commits.last("other").unwrap_err().to_string();
        assert!(moved.contains("not of \"other\""), "{moved}");
        fs::write(commits.dir.join("alerts"), b"{\"query\":").unwrap();
        let damaged = commits.last("alerts").unwrap_err().to_string();
        assert!(damaged.contains("is not a checkpoint file"), "{damaged}");
    }
}
