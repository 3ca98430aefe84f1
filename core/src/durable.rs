//! Files written so that a crash leaves either the old state or the new,
//! never a part: write a temporary file, sync it, rename it into place,
//! sync the directory. Shared by the file sink and the checkpoint.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file operation that failed: what, where and why.
#[derive(Debug)]
pub(crate) struct IoFailure {
    pub(crate) action: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) source: std::io::Error,
}

fn failed(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> IoFailure {
    let path = path.to_path_buf();
    move |source| IoFailure {
        action,
        path,
        source,
    }
}

/// Writes `bytes` to `path` (in `dir`) through `.<name>.tmp`, synced and
/// renamed. The rename is durable once [`sync_dir`] returns.
///
/// The temporary file is made new (`O_CREAT | O_EXCL`): a file or a
/// symbolic link already at its name (left by a crash, or planted) is
/// removed first, never written through, so the write cannot land outside
/// `dir`. On failure the temporary file is removed.
pub(crate) fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), IoFailure> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.tmp"));
    match fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(failed("remove the stale", &temporary)(source)),
    }
    let written = fs::File::create_new(&temporary)
        .map_err(failed("create", &temporary))
        .and_then(|mut file| {
            file.write_all(bytes).map_err(failed("write", &temporary))?;
            file.sync_all().map_err(failed("sync", &temporary))
        })
        .and_then(|()| fs::rename(&temporary, path).map_err(failed("rename into place", path)));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Syncs `dir`, making the renames into it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), IoFailure> {
    fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(failed("sync the directory", dir))
}

/// Creates `dir` and its parents if missing.
pub(crate) fn create_dir(dir: &Path) -> Result<(), IoFailure> {
    fs::create_dir_all(dir).map_err(failed("create the directory", dir))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_at_the_temporary_name_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        let target = dir.path().join("out.csv");
        std::os::unix::fs::symlink(&victim, dir.path().join(".out.csv.tmp")).unwrap();
        write_atomically(dir.path(), &target, b"rows").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(fs::read(&target).unwrap(), b"rows");
        assert!(!fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename fails.
        let target = dir.path().join("busy");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        let failure = write_atomically(dir.path(), &target, b"rows").unwrap_err();
        assert_eq!(failure.action, "rename into place");
        assert!(!dir.path().join(".busy.tmp").exists());
    }
}
