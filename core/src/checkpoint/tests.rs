//! Unit tests of the checkpoint directory: plans, sources and settings
//! bound, damaged and inconsistent files, one run at a time.

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
    drop(checkpoint);

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
fn a_checkpoint_is_bound_to_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut checkpoint = Checkpoint::open(dir.path(), 10).unwrap();
    checkpoint.bind_source(None).unwrap();
    checkpoint.bind_source(Some("log A")).unwrap();
    checkpoint.bind_source(Some("log A")).unwrap();
    drop(checkpoint);
    let mut reopened = Checkpoint::open(dir.path(), 10).unwrap();
    reopened.bind_source(Some("log A")).unwrap();
    let error = reopened.bind_source(Some("log B")).unwrap_err();
    assert!(
        matches!(
            error,
            CheckpointError::Mismatch {
                setting: "source",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("log A") && error.to_string().contains("log B"));
}

#[test]
fn only_the_most_recent_epochs_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = Checkpoint::open(dir.path(), 10).unwrap().retain_epochs(3);
    for epoch in 0..10 {
        checkpoint.write_offsets(epoch, 10).unwrap();
        checkpoint.write_commit(epoch, 1).unwrap();
    }
    for sub in ["offsets", "commits"] {
        let mut kept = epochs_in(&dir.path().join(sub), "").unwrap();
        kept.sort_unstable();
        assert_eq!(kept, [7, 8, 9], "{sub}");
    }
    drop(checkpoint);
    assert_eq!(
        Checkpoint::open(dir.path(), 10).unwrap().last_committed(),
        Some(9)
    );
}

/// A checkpoint with epochs 0 to 9 committed.
fn ten_commits() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = Checkpoint::open(dir.path(), 10).unwrap();
    for epoch in 0..10 {
        checkpoint.write_offsets(epoch, 10).unwrap();
        checkpoint.write_commit(epoch, 1).unwrap();
    }
    dir
}

fn inconsistency(dir: &Path) -> String {
    match Checkpoint::open(dir, 10) {
        Err(error @ CheckpointError::Inconsistent { .. }) => error.to_string(),
        Err(other) => panic!("another error: {other}"),
        Ok(checkpoint) => panic!("opened, last commit {:?}", checkpoint.last_committed()),
    }
}

#[test]
fn one_run_at_a_time_holds_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = Checkpoint::open(dir.path(), 10).unwrap();
    let second = Checkpoint::open(dir.path(), 10).unwrap_err();
    assert!(matches!(second, CheckpointError::InUse { .. }), "{second}");
    drop(first);
    Checkpoint::open(dir.path(), 10).unwrap();
}

#[test]
fn a_deleted_metadata_is_not_made_again_from_the_new_run() {
    let dir = ten_commits();
    fs::remove_file(dir.path().join("metadata")).unwrap();
    assert!(inconsistency(dir.path()).contains("`metadata` is missing"));
}

#[test]
fn a_stray_or_missing_commit_or_offsets_file_is_refused() {
    // A copy of commits/0 as commits/15: the wrong epoch inside, a gap,
    // and no offsets/15.
    let dir = ten_commits();
    let commits = dir.path().join("commits");
    fs::copy(commits.join("0"), commits.join("15")).unwrap();
    assert!(inconsistency(dir.path()).contains("holds the commit of epoch 0"));
    // The right epoch inside, still with no offsets.
    let dir = ten_commits();
    fs::write(
        dir.path().join("commits").join("10"),
        br#"{"epoch":10,"rows":1}"#,
    )
    .unwrap();
    assert!(inconsistency(dir.path()).contains("offsets/10` is missing"));
    // A gap in the commits.
    let dir = ten_commits();
    fs::remove_file(dir.path().join("commits").join("5")).unwrap();
    assert!(inconsistency(dir.path()).contains("jump from epoch 4 to 6"));
    // Offsets far beyond the last commit.
    let dir = ten_commits();
    let offsets = dir.path().join("offsets");
    fs::copy(offsets.join("9"), offsets.join("20")).unwrap();
    assert!(inconsistency(dir.path()).contains("offsets/20"));
    // The offsets of the epoch after the last commit are what a crash
    // between the two leaves: fine.
    let dir = ten_commits();
    let offsets = dir.path().join("offsets");
    fs::copy(offsets.join("9"), offsets.join("10")).unwrap();
    let checkpoint = Checkpoint::open(dir.path(), 10).unwrap();
    assert_eq!(checkpoint.last_committed(), Some(9));
}

#[test]
fn a_temporary_file_left_by_a_crash_is_not_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    Checkpoint::open(dir.path(), 10).unwrap();
    fs::write(dir.path().join("commits").join(".4.tmp"), b"{").unwrap();
    drop(Checkpoint::open(dir.path(), 10));
    assert_eq!(
        Checkpoint::open(dir.path(), 10).unwrap().last_committed(),
        None
    );
}
