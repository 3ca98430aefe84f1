//! What the tests of the `microbatch` binary share: running it from the
//! workspace, a short unpinned run of a profile, and the assertions on its
//! exit code and output.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn microbatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("the binary runs")
}

/// A short, unpinned run of `profile` (relative to the workspace).
pub fn short<'a>(profile: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        profile,
        "--set",
        "run.duration=300ms",
        "--set",
        "run.warmup=100ms",
        "--set",
        "engine.pin=false",
        "--set",
        "engine.workers=2",
    ];
    args.extend_from_slice(extra);
    args
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `output` failed with exit code `code` and that its stderr
/// holds each of `needles`.
pub fn assert_fails(output: &Output, code: i32, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} is not in: {err}");
    }
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
}
