//! Workspace automation, run as `cargo xtask <command>` (an alias in
//! `.cargo/config.toml`). Std only, so it builds in a second.
//!
//! - `cargo xtask test`: unit, integration and doc tests of the workspace,
//!   then the loom models (built with `--cfg loom` in their own target
//!   directory, so the two builds do not evict each other).

use std::env;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

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

fn test(extra: &[String]) -> Result<(), String> {
    let mut args = vec!["test", "--workspace"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args, &[])?;
    loom(&[])
}

fn loom(extra: &[String]) -> Result<(), String> {
    let target_dir = workspace_root().join("target").join("loom");
    let target_dir = target_dir
        .to_str()
        .ok_or("the workspace path is not UTF-8")?;
    let preemptions =
        env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| LOOM_MAX_PREEMPTIONS.into());
    let mut rustflags = env::var("RUSTFLAGS").unwrap_or_default();
    rustflags.push_str(" --cfg loom");
    let mut args = vec![
        "test",
        "--package",
        "microbatch-loom-tests",
        "--release",
        "--target-dir",
        target_dir,
    ];
    args.extend(extra.iter().map(String::as_str));
    cargo(
        &args,
        &[
            ("RUSTFLAGS", rustflags.trim()),
            ("LOOM_MAX_PREEMPTIONS", &preemptions),
        ],
    )
}

fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rendered = envs
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\" "))
        .collect::<String>()
        + "cargo "
        + &args.join(" ");
    eprintln!("xtask: {rendered}");
    let status = Command::new(cargo)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{rendered}` failed ({status})"))
    }
}

fn workspace_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}
