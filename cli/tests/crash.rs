//! The crash test: `microbatch run --checkpoint` over a record log is
//! killed with SIGKILL at random moments, at least 10 times, and started
//! again each time; the final output equals that of a run never killed,
//! row for row. Once into SQLite, once into CSV files, once for two
//! queries on one engine, each into its own CSV files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::kill_at_random_moments;

use microbatch::log::{LogOptions, LogWriter};
use microbatch::source::Event;

/// Kills that must land while the run is going.
const KILLS: usize = 10;
const RECORDS: u64 = 600_000;
/// The killed runs replay the log at this pace, so that it lasts a few
/// seconds over all of them.
const RATE: &str = "workload.rate=150000";

fn write_log(dir: &Path) {
    let mut writer = LogWriter::create(dir, LogOptions::default()).unwrap();
    for i in 0..RECORDS {
        let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54;
        writer
            .append(Event {
                key,
                value: i % 101,
            })
            .unwrap();
    }
    writer.finish().unwrap();
}

fn write_profile(dir: &Path, log: &Path) -> PathBuf {
    let profile = dir.join("crash.toml");
    std::fs::write(
        &profile,
        format!(
            r#"
[engine]
workers = 2
pin = false
# No interval: both the paced and the full-speed runs cut the log into
# epochs of 20 000 records.
interval = "off"
max_batch_records = 20000

[workload]
source = "log"
path = "{}"

[job]
kind = "keyed"
reductions = ["count", "sum"]

[run]
warmup = "0s"
duration = "10m"
"#,
            log.display()
        ),
    )
    .unwrap();
    profile
}

/// `microbatch run PROFILE --checkpoint CHECKPOINT` with `sets`.
fn command(profile: &Path, checkpoint: &Path, sets: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_microbatch"));
    command
        .arg("run")
        .arg(profile)
        .arg("--checkpoint")
        .arg(checkpoint);
    for set in sets {
        command.arg("--set").arg(set);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn run_to_the_end(profile: &Path, checkpoint: &Path, sets: &[String]) {
    let output = command(profile, checkpoint, sets).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Epochs committed under `checkpoint`.
fn commits(checkpoint: &Path) -> usize {
    std::fs::read_dir(checkpoint.join("commits"))
        .map_or(0, |entries| entries.filter(|e| e.is_ok()).count())
}

/// Runs the profile to the end under a fresh checkpoint with `sets`, then
/// under another with `killed_sets`, killed at least [`KILLS`] times and
/// restarted, and run to the end; the caller compares the two outputs.
fn killed_and_restarted(dir: &Path, sets: &[String], killed_sets: &[String]) {
    let log = dir.join("log");
    write_log(&log);
    let profile = write_profile(dir, &log);
    run_to_the_end(&profile, &dir.join("reference-checkpoint"), sets);

    let checkpoint = dir.join("checkpoint");
    kill_at_random_moments(KILLS, (50, 600), || {
        command(&profile, &checkpoint, killed_sets).spawn().unwrap()
    });
    let kills = KILLS;
    // The kills landed over the run, not all before its first epoch or
    // after its last.
    let (before_last_run, all) = (
        commits(&checkpoint),
        commits(&dir.join("reference-checkpoint")),
    );
    eprintln!("{kills} kills; {before_last_run} of {all} epochs committed before the last run");
    assert!(before_last_run > 0 && before_last_run < all);
    run_to_the_end(&profile, &checkpoint, killed_sets);
}

#[test]
fn sqlite_output_after_sigkills_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let sets = |database: &str| {
        vec![
            "output.sink=sqlite".to_string(),
            format!("output.path=\"{}\"", dir.path().join(database).display()),
            "output.table=per_key".to_string(),
        ]
    };
    let mut killed = sets("killed.db");
    killed.push(RATE.into());
    killed_and_restarted(dir.path(), &sets("reference.db"), &killed);

    let table = |database: &str| {
        let connection = rusqlite::Connection::open(dir.path().join(database)).unwrap();
        let mut statement = connection
            .prepare("SELECT epoch, key, count, sum FROM per_key ORDER BY epoch, key")
            .unwrap();
        let rows: Vec<(i64, i64, i64, i64)> = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows
    };
    let expected = table("reference.db");
    let counted: i64 = expected.iter().map(|row| row.2).sum();
    assert_eq!(counted as u64, RECORDS);
    assert_eq!(table("killed.db"), expected);
}

#[test]
fn csv_output_after_sigkills_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let sets = |out: &str| {
        vec![
            "output.sink=csv".to_string(),
            format!("output.path=\"{}\"", dir.path().join(out).display()),
        ]
    };
    let mut killed = sets("killed");
    killed.push(RATE.into());
    killed_and_restarted(dir.path(), &sets("reference"), &killed);

    let expected = csv_epochs(&dir.path().join("reference"));
    assert!(expected.len() >= (RECORDS / 20_000) as usize);
    assert_eq!(csv_epochs(&dir.path().join("killed")), expected);
}

/// Each committed epoch's file in `dir`, its rows sorted (the partitions
/// of an epoch are gathered in whatever order their owners finish).
fn csv_epochs(dir: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut epochs = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("epoch-") && name.ends_with(".csv") {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort();
            epochs.insert(name, lines);
        }
    }
    epochs
}

/// Two queries over the log, each into CSV files under `out`: a per-key
/// count and sum every epoch, and running complete-mode totals every 3.
fn write_queries_profile(dir: &Path, log: &Path, out: &Path) -> PathBuf {
    let profile = dir.join(format!(
        "queries-{}.toml",
        out.file_name().unwrap().to_string_lossy()
    ));
    let query = |name: &str, extra: &str| {
        format!(
            r#"
[[queries]]
name = "{name}"
kind = "keyed"
reductions = ["count", "sum"]
{extra}
[queries.output]
kind = "csv"
path = "{}"
"#,
            out.join(name).display()
        )
    };
    let text = format!(
        r#"
[engine]
workers = 2
pin = false
# Epochs of 20 000 records: at full speed, and at 200 000 records/s.
interval = "100ms"
max_batch_records = 20000

[workload]
source = "log"
path = "{}"

[run]
warmup = "0s"
duration = "10m"
{}{}"#,
        log.display(),
        query("each", "priority = 10"),
        query("totals", "output_mode = \"complete\"\ninterval = \"300ms\""),
    );
    std::fs::write(&profile, text).unwrap();
    profile
}

#[test]
fn queries_after_sigkills_each_equal_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write_log(&log);
    let reference = write_queries_profile(dir.path(), &log, &dir.path().join("reference"));
    run_to_the_end(&reference, &dir.path().join("reference-checkpoint"), &[]);

    let killed = write_queries_profile(dir.path(), &log, &dir.path().join("killed"));
    let checkpoint = dir.path().join("checkpoint");
    let paced = ["workload.rate=200000".to_string()];
    kill_at_random_moments(KILLS, (50, 600), || {
        command(&killed, &checkpoint, &paced).spawn().unwrap()
    });
    let each_before = csv_epochs(&dir.path().join("killed/each")).len();
    run_to_the_end(&killed, &checkpoint, &paced);

    let epochs = (RECORDS / 20_000) as usize;
    for (query, least) in [("each", epochs), ("totals", epochs / 3)] {
        let expected = csv_epochs(&dir.path().join("reference").join(query));
        assert!(
            expected.len() >= least,
            "{query}: {} epochs",
            expected.len()
        );
        let got = csv_epochs(&dir.path().join("killed").join(query));
        assert_eq!(got, expected, "{query}");
    }
    // The kills landed over the run, not all before its first epoch or
    // after its last.
    eprintln!("{KILLS} kills; {each_before} of {epochs} epochs of \"each\" before the last run");
    assert!(each_before > 0 && each_before < epochs);

    // The checkpoint is bound to every query's job, epoch and output.
    let text = std::fs::read_to_string(&killed).unwrap();
    let changed = dir.path().join("changed.toml");
    std::fs::write(&changed, text.replace("\"300ms\"", "\"600ms\"")).unwrap();
    let (code, err) = refused(&changed, &checkpoint, &paced);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("settings"), "{err}");
    // A query's output deleted: the epochs its file says it committed
    // would be missing.
    let each = dir.path().join("killed").join("each");
    std::fs::rename(&each, dir.path().join("moved")).unwrap();
    let (code, err) = refused(&killed, &checkpoint, &paced);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("deleted or replaced"), "{err}");
}

/// `command(...)`'s exit code and stderr.
fn refused(profile: &Path, checkpoint: &Path, sets: &[String]) -> (Option<i32>, String) {
    let output = command(profile, checkpoint, sets).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_resumed_run_refuses_what_does_not_match_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    write_log(&log);
    let profile = write_profile(dir.path(), &log);
    let checkpoint = dir.path().join("checkpoint");
    let database = dir.path().join("out.db");
    let sets = vec![
        "output.kind=sqlite".to_string(),
        format!("output.path=\"{}\"", database.display()),
    ];
    run_to_the_end(&profile, &checkpoint, &sets);

    // Each change is refused with a non-zero exit and one line naming it.
    let with = |extra: &str| {
        let mut sets = sets.clone();
        sets.push(extra.to_string());
        sets
    };
    for (change, expected) in [
        (with("output.table=other"), "settings"),
        (with("job.output_mode=update"), "settings"),
        (with("output.kind=csv"), "settings"),
        (with("job.reductions=[\"count\"]"), "settings"),
    ] {
        let (code, err) = refused(&profile, &checkpoint, &change);
        assert_eq!(code, Some(1), "{change:?}: {err}");
        assert!(err.contains(expected), "{change:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{change:?}: {err}");
    }

    // The database deleted: its epochs would be missing from the output.
    std::fs::rename(&database, dir.path().join("moved.db")).unwrap();
    let (code, err) = refused(&profile, &checkpoint, &sets);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("deleted or replaced"), "{err}");
    std::fs::rename(dir.path().join("moved.db"), &database).unwrap();

    // Another log with the same records in the same blocks.
    let other = dir.path().join("other");
    write_log(&other);
    std::fs::remove_dir_all(&log).unwrap();
    std::fs::rename(&other, &log).unwrap();
    let (code, err) = refused(&profile, &checkpoint, &sets);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("source"), "{err}");
}
