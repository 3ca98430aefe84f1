//! Windowed jobs through the `microbatch` binary: `[job] window` over the
//! generator's timed records, rows with their windows' bounds in SQLite,
//! the summary's window figures, and the settings refused with the key.

use rusqlite::Connection;

mod common;
use common::{assert_fails, assert_success, microbatch, short};

#[test]
fn a_windowed_run_writes_each_window_once_with_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("windows.db");
    let json = dir.path().join("summary.json");
    let path = format!("output.path=\"{}\"", database.display());
    let mut args = vec!["run"];
    // 200 000 records at 200 000/s: a second of event time, up to 30 ms
    // out of order, in 100 ms windows over 50 keys.
    args.extend(short(
        "profiles/windowed.toml",
        &[
            "--set",
            "run.duration=30s",
            "--set",
            "workload.records=200000",
            "--set",
            "workload.rate=200000",
            "--set",
            "workload.keys=50",
            "--set",
            "workload.disorder=30ms",
            "--set",
            "job.window_size=100ms",
            "--set",
            "job.watermark_delay=30ms",
            "--set",
            "output.kind=sqlite",
            "--set",
            &path,
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    assert_success(&microbatch(&args));
    let db = Connection::open(&database).unwrap();
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
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
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
    refused(&["job.window=session"], &["job.window", "not built yet"]);
    refused(&["job.window=hopping"], &["job.window_slide", "missing"]);
    refused(
        &["job.window=hopping", "job.window_slide=20s"],
        &["job.window_slide", "from 1ms to window_size"],
    );
    refused(&["job.allowed_lateness=1s"], &["job.allowed_lateness"]);
    refused(&["job.late=dead_letters"], &["job.late"]);
    refused(&["job.output_mode=update"], &["job.output_mode", "append"]);
    refused(
        &["workload.producers=2"],
        &["workload.source", "producers = 0"],
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
