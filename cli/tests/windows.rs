//! Windowed jobs through the `microbatch` binary: `[job] window` over the
//! generator's timed records, rows with their windows' bounds in SQLite,
//! the summary's window figures, and the settings refused with the key.

use std::path::Path;

use rusqlite::Connection;

mod common;
use common::{assert_fails, assert_success, microbatch, short};

/// Runs `profile` (for at most 30 s) with `sets`, each `key=value`, its
/// rows into the SQLite `database`; returns the database and the run's
/// JSON summary (written beside it).
fn run_into_sqlite(
    profile: &str,
    database: &Path,
    sets: &[&str],
) -> (Connection, serde_json::Value) {
    let json = database.with_extension("json");
    let output = format!("output.path=\"{}\"", database.display());
    let mut extra = vec!["--set", "run.duration=30s", "--set", "output.kind=sqlite"];
    extra.extend(["--set", &output, "--json", json.to_str().unwrap()]);
    for set in sets {
        extra.extend(["--set", set]);
    }
    let mut args = vec!["run"];
    args.extend(short(profile, &extra));
    assert_success(&microbatch(&args));
    let summary = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (Connection::open(database).unwrap(), summary)
}

#[test]
fn a_windowed_run_writes_each_window_once_with_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    // 200 000 records at 200 000/s: a second of event time, up to 30 ms
    // out of order, in 100 ms windows over 50 keys.
    let (db, summary) = run_into_sqlite(
        "profiles/windowed.toml",
        &dir.path().join("windows.db"),
        &[
            "workload.records=200000",
            "workload.rate=200000",
            "workload.keys=50",
            "workload.disorder=30ms",
            "job.window_size=100ms",
            "job.watermark_delay=30ms",
        ],
    );
    let one = |sql: &str| -> i64 { db.query_row(sql, [], |row| row.get(0)).unwrap() };
    assert_eq!(one("SELECT SUM(count) FROM results"), 200_000);
    assert_eq!(
        one("SELECT COUNT(*) FROM results WHERE window_end_ms - window_start_ms != 100 OR window_start_ms % 100 != 0"),
        0,
        "every window is 100 ms, aligned"
    );
    let rows = one("SELECT COUNT(*) FROM results");
    assert_eq!(
        one("SELECT COUNT(*) FROM (SELECT DISTINCT window_start_ms, key FROM results)"),
        rows,
        "each window of each key once"
    );
    // The primary key is the window's bounds and the key, not the epoch.
    let mut pk = db
        .prepare("SELECT name FROM pragma_table_info('results') WHERE pk > 0 ORDER BY pk")
        .unwrap();
    let pk: Vec<String> = pk
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pk, ["window_start_ms", "window_end_ms", "key"]);
    assert_eq!(summary["late_records"], 0);
    assert_eq!(summary["windows_emitted"], rows);
    assert!(summary["open_windows_max"].as_u64().unwrap() > 0);
    assert!(rows >= 50 * 5, "a second in 100 ms windows: {rows} rows");
}

#[test]
fn window_settings_that_cannot_run_are_refused_with_their_key() {
    let refused = |sets: &[&str], needles: &[&str]| {
        let mut args = vec!["run"];
        let mut extra = Vec::new();
        for set in sets {
            extra.extend(["--set", set]);
        }
        args.extend(short("profiles/windowed.toml", &extra));
        assert_fails(&microbatch(&args), 2, needles);
    };
    refused(&["job.window=session"], &["job.window_size", "session"]);
    refused(&["job.window=hopping"], &["job.window_slide", "missing"]);
    refused(
        &["job.window=hopping", "job.window_slide=20s"],
        &["job.window_slide", "from 1ms to window_size"],
    );
    refused(
        &["job.window=session", "job.allowed_lateness=1s"],
        &["job.allowed_lateness", "session"],
    );
    refused(
        &["job.late=dead_letters"],
        &["engine.dead_letters", "not set"],
    );
    refused(
        &[
            "job.late=dead_letters",
            "engine.dead_letters=\"late.jsonl\"",
            "job.window=session",
            "job.session_gap=1s",
        ],
        &["job.late", "session"],
    );
    refused(
        &["job.output_mode=complete"],
        &["job.output_mode", "update"],
    );
    refused(
        &["workload.producers=2"],
        &["workload.producers", "in their order"],
    );
    refused(&["job.window=none"], &["job.output_mode", "no window"]);
    let unwindowed = ["job.window=none", "job.output_mode=epoch"];
    refused(&unwindowed, &["job.window_size", "job.window = \"none\""]);
    // Event-time settings without a window, on the main job.
    for set in ["job.watermark_delay=1s", "workload.disorder=1s"] {
        let mut args = vec!["run"];
        args.extend(short("profiles/default.toml", &["--set", set]));
        assert_fails(
            &microbatch(&args),
            2,
            &[set.split('=').next().unwrap(), "no window"],
        );
    }
}

#[test]
fn a_session_run_counts_every_record_in_sessions_that_do_not_meet() {
    let dir = tempfile::tempdir().unwrap();
    // The windowed profile, with a session of a 3 ms gap for its windows.
    let profile = dir.path().join("sessions.toml");
    let text = std::fs::read_to_string(common::workspace().join("profiles/windowed.toml"))
        .unwrap()
        .replace(
            "window = \"tumbling\"\nwindow_size = \"10s\"",
            "window = \"session\"\nsession_gap = \"3ms\"",
        );
    std::fs::write(&profile, text).unwrap();
    let profile = profile.to_str().unwrap().to_owned();
    // 20 000 records over a second, 50 keys: a key's records are about
    // 2.5 ms apart, so sessions of a 3 ms gap end and start again.
    let (db, summary) = run_into_sqlite(
        &profile,
        &dir.path().join("sessions.db"),
        &[
            "workload.records=20000",
            "workload.rate=20000",
            "workload.keys=50",
            "workload.disorder=20ms",
            "job.watermark_delay=20ms",
        ],
    );
    let one = |sql: &str| -> i64 { db.query_row(sql, [], |row| row.get(0)).unwrap() };
    assert_eq!(one("SELECT SUM(count) FROM results"), 20_000);
    assert_eq!(
        one("SELECT COUNT(*) FROM results a JOIN results b ON a.key = b.key AND a.window_start_ms < b.window_start_ms AND b.window_start_ms < a.window_end_ms"),
        0,
        "a key's sessions do not meet"
    );
    let rows = one("SELECT COUNT(*) FROM results");
    assert!(rows > 50, "sessions end and start again: {rows}");
    assert_eq!(summary["late_records"], 0);
    assert_eq!(summary["windows_emitted"], rows);
}

#[test]
fn a_timed_log_and_file_are_windowed_exactly_as_a_reference_fold() {
    let dir = tempfile::tempdir().unwrap();
    // 30 000 records over 3 s of event time, up to 40 ms out of order.
    let csv = dir.path().join("timed.csv");
    let mut text = String::from("key,value,event_time_ms\n");
    let mut expected = std::collections::BTreeMap::<(u64, u64), (i64, i64)>::new();
    for i in 0..30_000u64 {
        let (key, value) = (i % 7, i % 13);
        let t = 1_700_000_000_000 + i / 10 + 40 - (i * 7919) % 41;
        text.push_str(&format!("{key},{value},{t}\n"));
        let entry = expected.entry((t - t % 100, key)).or_default();
        entry.0 += 1;
        entry.1 += value as i64;
    }
    std::fs::write(&csv, text).unwrap();
    let log = dir.path().join("log");
    let written = microbatch(&[
        "log",
        "write",
        "--schema",
        "timed",
        "--from",
        csv.to_str().unwrap(),
        "--to",
        log.to_str().unwrap(),
    ]);
    assert_success(&written);
    assert_success(&microbatch(&[
        "log",
        "inspect",
        "--schema",
        "timed",
        log.to_str().unwrap(),
    ]));
    // The wrong schema is refused, naming the log's type.
    assert_fails(
        &microbatch(&["log", "inspect", log.to_str().unwrap()]),
        1,
        &["records of another type"],
    );

    // The log, and the CSV file read directly: the same rows.
    for (name, kind, path) in [("log", "log", &log), ("file", "file", &csv)] {
        let source = format!("workload.path=\"{}\"", path.display());
        let source_kind = format!("workload.source={kind}");
        let (db, _) = run_into_sqlite(
            "profiles/windowed.toml",
            &dir.path().join(format!("{name}.db")),
            &[
                &source_kind,
                &source,
                "workload.disorder=0s",
                "engine.max_batch_records=2000",
                "job.window_size=100ms",
                "job.watermark_delay=40ms",
            ],
        );
        let mut statement = db
            .prepare("SELECT window_start_ms, window_end_ms, key, count, sum FROM results")
            .unwrap();
        let mut got = std::collections::BTreeMap::new();
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (start, end, key, n, total) = row.unwrap();
            assert_eq!(end - start, 100);
            got.insert((start as u64, key as u64), (n, total));
        }
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn a_global_windowed_job_runs_in_append_and_update_mode() {
    for mode in ["append", "update"] {
        let mut args = vec!["run"];
        let mode = format!("job.output_mode={mode}");
        args.extend(short(
            "profiles/windowed.toml",
            &["--set", "job.kind=global", "--set", &mode],
        ));
        assert_success(&microbatch(&args));
    }
}

#[test]
fn within_the_allowed_lateness_a_window_fires_again_and_its_row_is_replaced() {
    // 200 000 records at 200 000/s over 50 keys, up to 60 ms out of
    // order, 100 ms windows; the watermark trails by 10 ms and windows
    // take records for 60 ms more: nothing is lost, some windows fire
    // late, and each window's row in the table is its last.
    for mode in ["append", "update"] {
        let dir = tempfile::tempdir().unwrap();
        let mode_set = format!("job.output_mode={mode}");
        let (db, summary) = run_into_sqlite(
            "profiles/windowed.toml",
            &dir.path().join("late.db"),
            &[
                "workload.records=200000",
                "workload.rate=200000",
                "workload.keys=50",
                "workload.disorder=60ms",
                "job.window_size=100ms",
                "job.watermark_delay=10ms",
                "job.allowed_lateness=60ms",
                // Epochs much shorter than the disorder: stragglers come
                // after their window fired on time.
                "engine.interval=5ms",
                &mode_set,
            ],
        );
        let one = |sql: &str| -> i64 { db.query_row(sql, [], |row| row.get(0)).unwrap() };
        assert_eq!(one("SELECT SUM(count) FROM results"), 200_000, "{mode}");
        assert_eq!(
            one("SELECT COUNT(*) FROM results WHERE firing = 'early'"),
            0,
            "{mode}: every window's last row fired on time or late"
        );
        let late = one("SELECT COUNT(*) FROM results WHERE firing = 'late'");
        assert!(late > 0, "{mode}: some windows took records late");
        assert_eq!(summary["late_records"], 0, "{mode}");
        let rows = summary["windows_emitted"].as_i64().unwrap();
        let windows = one("SELECT COUNT(*) FROM results");
        assert!(
            rows > windows,
            "{mode}: {rows} rows went out for {windows} windows"
        );
    }
}

#[test]
fn late_records_go_to_the_dead_letter_file_as_expired_rows() {
    let dir = tempfile::tempdir().unwrap();
    let letters = dir.path().join("late.jsonl");
    let set_letters = format!("engine.dead_letters=\"{}\"", letters.display());
    // Up to 200 ms of disorder against no delay: many records are late.
    let (db, summary) = run_into_sqlite(
        "profiles/windowed.toml",
        &dir.path().join("windows.db"),
        &[
            "workload.records=100000",
            "workload.rate=200000",
            "workload.keys=20",
            "workload.disorder=200ms",
            "job.window_size=50ms",
            "job.watermark_delay=0s",
            "job.late=dead_letters",
            &set_letters,
        ],
    );
    let late = summary["late_records"].as_u64().unwrap();
    assert!(late > 0, "{summary}");
    let one = |sql: &str| -> u64 { db.query_row(sql, [], |row| row.get(0)).unwrap() };
    let in_windows = one("SELECT SUM(count) FROM results");
    assert_eq!(
        one("SELECT COUNT(*) FROM results WHERE firing != 'on_time'"),
        0
    );
    // Each late record once, in an expired row of its window and key.
    let mut expired = 0;
    for line in std::fs::read_to_string(&letters).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(row["firing"], "expired", "{line}");
        assert!(row["epoch"].is_u64() && row["key"].is_u64(), "{line}");
        let (start, end) = (
            row["window_start_ms"].as_u64(),
            row["window_end_ms"].as_u64(),
        );
        assert_eq!(end.unwrap() - start.unwrap(), 50, "{line}");
        expired += row["count"].as_u64().unwrap();
    }
    assert_eq!(expired, late);
    assert_eq!(in_windows + expired, 100_000, "nothing lost");
}
