//! Workspace automation, run as `cargo xtask <command>` (an alias in
//! `.cargo/config.toml`). Std only, so it builds in a second.
//!
//! - `cargo xtask test`: unit, integration and doc tests of the workspace
//!   with every feature (the tokio side and its example service included),
//!   then the loom models (built with `--cfg loom` in their own target
//!   directory, so the two builds do not evict each other). The Kafka
//!   tests need the tansu broker: `$TANSU`, `tansu` on the `PATH`, or
//!   installed here with `cargo install` where it is missing. The
//!   consumer-group tests need PostgreSQL's `initdb` and `pg_ctl`:
//!   `$PG_BIN`, Debian's `/usr/lib/postgresql/*/bin`, the `PATH`, or
//!   installed here with `apt-get install postgresql` where it is missing.

use std::env;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

/// Bound on preemptions per loom execution: enough to expose ordering bugs
/// in two- and three-thread protocols, small enough to finish in minutes.
const LOOM_MAX_PREEMPTIONS: &str = "3";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("loom") => loom(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask test [-- <cargo test args>]   every test, loom models included\n       cargo xtask loom                             the loom models only"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Tests passed and failed, summed over the `test result:` lines of libtest.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    fn add(self, other: Tally) -> Tally {
        Tally {
            passed: self.passed + other.passed,
            failed: self.failed + other.failed,
        }
    }

    /// Reads `test result: ok. 5 passed; 0 failed; ...`.
    fn count_line(&mut self, line: &str) {
        let Some(rest) = line.trim_start().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                _ => {}
            }
        }
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    let tansu = tansu()?;
    let tansu = tansu.to_str().ok_or("the tansu path is not UTF-8")?;
    // Every feature: the tokio side's tests and example run too, and the
    // Kafka tests against the broker, which may not skip.
    let mut args = vec!["test", "--workspace", "--all-features"];
    args.extend(extra.iter().map(String::as_str));
    let pg_bin = postgres()?;
    let pg_bin = pg_bin.to_str().ok_or("the PostgreSQL path is not UTF-8")?;
    let services = [
        ("TANSU", tansu),
        ("PG_BIN", pg_bin),
        ("MICROBATCH_REQUIRE_SERVICES", "1"),
    ];
    let tally = cargo(&args, &services)?.add(loom_tally(&[])?);
    // One plain closing line over both runs.
    println!("\nxtask: every test, loom models included:");
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}

fn loom(extra: &[String]) -> Result<(), String> {
    let tally = loom_tally(extra)?;
    println!("\nxtask: loom models:");
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}

fn loom_tally(extra: &[String]) -> Result<Tally, String> {
    let target_dir = workspace_root().join("target").join("loom");
    let target_dir = target_dir
        .to_str()
        .ok_or("the workspace path is not UTF-8")?;
    let preemptions =
        env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| LOOM_MAX_PREEMPTIONS.into());
    let mut rustflags = env::var("RUSTFLAGS").unwrap_or_default();
    rustflags.push_str(" --cfg loom");
    // The models of whole protocols live in loom-tests; models of the
    // engine's private types sit next to them, in the engine's unit tests.
    let packages: [&[&str]; 2] = [
        &["--package", "microbatch-loom-tests"],
        &["--package", "microbatch", "--lib"],
    ];
    let mut tally = Tally::default();
    for package in packages {
        let mut args = vec!["test", "--release", "--target-dir", target_dir];
        args.extend(package);
        args.extend(extra.iter().map(String::as_str));
        tally = tally.add(cargo(
            &args,
            &[
                ("RUSTFLAGS", rustflags.trim()),
                ("LOOM_MAX_PREEMPTIONS", &preemptions),
            ],
        )?);
    }
    Ok(tally)
}

/// Runs cargo, echoing its output, and tallies the test results it prints.
fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Result<Tally, String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rendered = envs
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\" "))
        .collect::<String>()
        + "cargo "
        + &args.join(" ");
    eprintln!("xtask: {rendered}");
    let mut child = Command::new(cargo)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    let mut tally = Tally::default();
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
        println!("{line}");
        tally.count_line(&line);
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    if status.success() {
        Ok(tally)
    } else {
        Err(format!("`{rendered}` failed ({status})"))
    }
}

/// The Kafka-protocol broker the Kafka tests start: `$TANSU`, else `tansu`
/// on the `PATH`, else installed with cargo into its default root (about
/// 10 to 18 minutes on a 2-core machine, once per machine).
fn tansu() -> Result<PathBuf, String> {
    if let Some(path) = env::var_os("TANSU") {
        return Ok(PathBuf::from(path));
    }
    let on_path = |path: &std::ffi::OsStr| {
        env::split_paths(path)
            .map(|dir| dir.join("tansu"))
            .find(|candidate| candidate.is_file())
    };
    if let Some(found) = env::var_os("PATH").as_deref().and_then(on_path) {
        return Ok(found);
    }
    eprintln!("xtask: the tansu broker is missing; installing it (10 to 18 minutes, once)");
    cargo(
        &[
            "install",
            "tansu",
            "--version",
            "0.6.0",
            "--locked",
            "--features",
            "dynostore",
        ],
        &[],
    )?;
    let root = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    Ok(root.join("bin").join("tansu"))
}

/// The directory of PostgreSQL's `initdb` and `pg_ctl`: `$PG_BIN`, else
/// the newest of Debian's `/usr/lib/postgresql/*/bin`, else the `PATH`,
/// else installed with `apt-get install postgresql` (seconds).
fn postgres() -> Result<PathBuf, String> {
    if let Some(path) = env::var_os("PG_BIN") {
        return Ok(PathBuf::from(path));
    }
    let find = || {
        let debian = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                dirs.filter_map(Result::ok)
                    .map(|dir| dir.path().join("bin"))
                    .filter(|bin| bin.join("pg_ctl").is_file())
                    .max_by_key(|bin| {
                        bin.parent()
                            .and_then(|v| v.file_name())
                            .and_then(|v| v.to_str())
                            .and_then(|v| v.parse::<u32>().ok())
                            .unwrap_or(0)
                    })
            });
        debian.or_else(|| {
            env::split_paths(&env::var_os("PATH")?).find(|dir| dir.join("pg_ctl").is_file())
        })
    };
    if let Some(found) = find() {
        return Ok(found);
    }
    eprintln!("xtask: PostgreSQL is missing; installing it with apt-get (seconds)");
    // The package lists of a fresh machine may be empty; a failure here
    // shows in the install's.
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "postgresql"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get to install PostgreSQL: {e}"))?;
    if !status.success() {
        return Err("apt-get could not install postgresql; install it, or set PG_BIN".into());
    }
    find().ok_or_else(|| "postgresql is installed but pg_ctl is not found; set PG_BIN".into())
}

fn workspace_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}
