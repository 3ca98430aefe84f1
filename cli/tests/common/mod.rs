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

/// A small xorshift: the kill moments, reproducible from the printed seed.
struct Moments(u64);

impl Moments {
    fn next_millis(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

/// Starts runs with `start` and kills each with SIGKILL (no handler runs)
/// at a random moment `between_ms` after its start, until `kills` kills
/// landed while a run was going; a run that ends by itself must succeed.
/// Prints the moments' seed; returns how many runs it started.
pub fn kill_at_random_moments(
    kills: usize,
    between_ms: (u64, u64),
    mut start: impl FnMut() -> std::process::Child,
) -> usize {
    use std::time::{Duration, Instant, SystemTime};
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill moments seed: {seed}");
    let mut moments = Moments(seed);
    let (mut landed, mut runs) = (0, 0);
    let started = Instant::now();
    while landed < kills {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "only {landed} kills landed in three minutes"
        );
        let mut child = start();
        runs += 1;
        let (low, high) = between_ms;
        std::thread::sleep(Duration::from_millis(moments.next_millis(low, high)));
        if child.try_wait().unwrap().is_none() {
            // `Child::kill` is SIGKILL on Unix.
            child.kill().unwrap();
            landed += 1;
        }
        let status = child.wait().unwrap();
        assert!(
            status.success() || status.code().is_none(),
            "a run ended with {status}"
        );
    }
    runs
}
