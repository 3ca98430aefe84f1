//! The files the `microbatch` binary reads and writes: record logs
//! (written, inspected, run, refused when damaged), SQLite output (every
//! epoch once, running totals), and the click-stream case's log, tables
//! and resume.

use std::path::Path;
use std::process::Output;

mod common;
use common::{assert_fails, assert_success, microbatch, short, stderr, stdout};

#[test]
fn a_record_log_is_written_inspected_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    let mut text = String::from("key,value\n");
    for i in 0..20_000u64 {
        text.push_str(&format!("{},{}\n", i % 11, i % 50));
    }
    text.push_str("oops\n");
    std::fs::write(&input, text).unwrap();
    let log = dir.path().join("log");
    let (from, to) = (input.to_str().unwrap(), log.to_str().unwrap());

    // A bad line stops the import by default, with its line number.
    let stopped = microbatch(&["log", "write", "--from", from, "--to", to]);
    assert_fails(&stopped, 1, &["line 20002"]);

    let written = microbatch(&[
        "log",
        "write",
        "--from",
        from,
        "--to",
        to,
        "--bad-lines",
        "skip",
    ]);
    assert_success(&written);
    assert!(
        stdout(&written).contains("wrote 20000 records"),
        "{}",
        stdout(&written)
    );
    assert!(std::fs::read_to_string(log.join("rejects.txt"))
        .unwrap()
        .starts_with("line 20002:"));
    let inspected = microbatch(&["log", "inspect", to]);
    assert_success(&inspected);
    assert!(
        stdout(&inspected).contains("20000 records"),
        "{}",
        stdout(&inspected)
    );

    for producers in ["0", "2"] {
        let json = dir.path().join(format!("p{producers}.json"));
        let source = format!("workload.path=\"{}\"", log.display());
        let producers = format!("workload.producers={producers}");
        let mut args = vec!["run"];
        args.extend(short(
            "profiles/default.toml",
            &[
                "--set",
                "workload.source=log",
                "--set",
                &source,
                "--set",
                &producers,
                "--json",
                json.to_str().unwrap(),
            ],
        ));
        assert_success(&microbatch(&args));
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(summary["records_out"], 20_000, "{producers}");
    }

    // A damaged log is refused with its file and offset.
    let segment = log.join("segment-0000000000.mblog");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[100] ^= 0xff; // in the first block's payload
    std::fs::write(&segment, bytes).unwrap();
    let refused = microbatch(&["log", "inspect", to]);
    assert_fails(
        &refused,
        1,
        &["segment-0000000000.mblog: offset 64: corrupt block"],
    );
}

#[test]
fn sqlite_output_holds_every_epoch_once() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("db").join("results.db");
    let json = dir.path().join("s.json");
    let path = format!("output.path=\"{}\"", database.display());
    let run = |extra: &[&str]| {
        let mut args = vec!["run"];
        let mut rest = vec![
            "--set",
            "output.sink=sqlite",
            "--set",
            path.as_str(),
            "--set",
            "output.table=per_key",
            "--set",
            "job.reductions=[\"count\", \"sum\", \"mean\"]",
        ];
        rest.extend_from_slice(extra);
        args.extend(short("profiles/default.toml", &rest));
        microbatch(&args)
    };
    assert_success(&run(&["--json", json.to_str().unwrap()]));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let connection = rusqlite::Connection::open(&database).unwrap();
    let (counted, rows, mean_ok): (i64, i64, bool) = connection
        .query_row(
            "SELECT SUM(count), COUNT(*), MIN(ABS(mean - CAST(sum AS REAL) / count) < 1e-9) FROM per_key",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(counted as u64, summary["records_out"].as_u64().unwrap());
    assert!(rows > 0 && mean_ok);
    let commits: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM microbatch_commits WHERE table_name = 'per_key'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(commits as u64, summary["epochs"].as_u64().unwrap());

    // A second run into the same table is refused, not mixed in.
    let again = run(&[]);
    assert_fails(&again, 1, &["already holds"]);
}

#[test]
fn running_totals_in_sqlite_end_at_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("totals.db");
    let json = dir.path().join("s.json");
    let path = format!("output.path=\"{}\"", database.display());
    let mut args = vec!["run"];
    args.extend(short(
        "profiles/default.toml",
        &[
            "--set",
            "output.sink=sqlite",
            "--set",
            path.as_str(),
            "--set",
            "output.table=user_totals",
            "--set",
            "job.output_mode=update",
            "--set",
            "workload.keys=1000",
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    assert_success(&microbatch(&args));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let connection = rusqlite::Connection::open(&database).unwrap();
    // Each key's last row holds its total: those add up to every record.
    let (totals, epochs_per_key): (i64, i64) = connection
        .query_row(
            "SELECT SUM(c), MAX(n) FROM (SELECT MAX(count) AS c, COUNT(*) AS n FROM user_totals GROUP BY key)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(totals as u64, summary["records_out"].as_u64().unwrap());
    assert!(
        epochs_per_key > 1,
        "a key is updated in more than one epoch"
    );
}

/// `microbatch log write --schema clickstream --from CSV --to LOG`.
fn write_click_log(csv: &Path, log: &Path) -> Output {
    microbatch(&[
        "log",
        "write",
        "--schema",
        "clickstream",
        "--from",
        csv.to_str().unwrap(),
        "--to",
        log.to_str().unwrap(),
    ])
}

#[test]
fn the_clickstream_profile_imports_a_log_and_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("clicks.csv");
    let mut text = String::from("user,page,event_time_ms,dwell_ms,action\n");
    for i in 0..30_000u64 {
        let action = ["view", "click", "add_to_cart", "purchase"][(i % 4) as usize];
        text.push_str(&format!(
            "{},{},{},{},{action}\n",
            i % 97,
            i % 13,
            1_000 + i,
            i % 500
        ));
    }
    std::fs::write(&csv, &text).unwrap();
    let log = dir.path().join("clicks.log");
    let written = write_click_log(&csv, &log);
    assert_success(&written);
    assert!(stdout(&written).contains("wrote 30000 records"));
    let inspected = microbatch(&[
        "log",
        "inspect",
        "--schema",
        "clickstream",
        log.to_str().unwrap(),
    ]);
    assert_success(&inspected);
    // The log holds clicks, not key,value events: said, not misread.
    let wrong = microbatch(&["log", "inspect", log.to_str().unwrap()]);
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));

    let database = dir.path().join("clicks.db");
    let checkpoint = dir.path().join("checkpoint");
    let sets = [
        "workload.source=log".to_string(),
        format!("workload.path=\"{}\"", log.display()),
        format!("output.path=\"{}\"", database.display()),
        "engine.max_batch_records=5000".to_string(),
        "engine.pin=false".to_string(),
    ];
    let run = || {
        let mut args = vec![
            "run",
            "profiles/clickstream.toml",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ];
        for set in &sets {
            args.extend(["--set", set.as_str()]);
        }
        microbatch(&args)
    };
    let first = run();
    assert_success(&first);
    assert!(
        stdout(&first).contains("30000 / 30000 (equal)"),
        "{}",
        stdout(&first)
    );
    // Everything is committed: a second run resumes after the last epoch
    // and adds nothing.
    let second = run();
    assert_success(&second);
    assert!(
        stdout(&second).contains("resumed after epoch"),
        "{}",
        stdout(&second)
    );

    let connection = rusqlite::Connection::open(&database).unwrap();
    let sum = |sql: &str| -> i64 { connection.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(sum("SELECT SUM(clicks) FROM user_stats"), 30_000);
    assert_eq!(sum("SELECT SUM(views) FROM page_stats"), 30_000);
    assert_eq!(sum("SELECT SUM(clicks) FROM user_totals"), 30_000);
    assert_eq!(sum("SELECT COUNT(*) FROM user_totals"), 97);
    let dwell: i64 = (0..30_000i64).map(|i| i % 500).sum();
    assert_eq!(sum("SELECT SUM(dwell_ms_sum) FROM user_totals"), dwell);
    assert_eq!(sum("SELECT COUNT(DISTINCT epoch) FROM user_stats"), 6);
    // Each user clicks every 97 ms: one session each (30 minutes' gap),
    // from its first click to its last plus the gap, closed at the end.
    assert_eq!(sum("SELECT COUNT(*) FROM user_sessions"), 97);
    assert_eq!(sum("SELECT SUM(clicks) FROM user_sessions"), 30_000);
    assert_eq!(sum("SELECT SUM(dwell_ms_sum) FROM user_sessions"), dwell);
    assert_eq!(
        sum("SELECT session_end_ms - 1800000 FROM user_sessions WHERE user = 0"),
        1_000 + 29_973
    );
    assert_eq!(sum("SELECT MAX(epoch) FROM user_sessions"), 5);
}

#[test]
fn the_clickstream_job_refuses_what_it_cannot_do() {
    let csv_output = microbatch(&[
        "run",
        "profiles/clickstream.toml",
        "--set",
        "output.kind=csv",
    ]);
    assert_fails(&csv_output, 2, &["output.kind"]);
    let no_gap = microbatch(&[
        "run",
        "profiles/clickstream.toml",
        "--set",
        "job.session_gap=\"0s\"",
    ]);
    assert_fails(&no_gap, 2, &["job.session_gap", "at least 1ms"]);
    let windowed = microbatch(&[
        "run",
        "profiles/clickstream.toml",
        "--set",
        "job.window=\"session\"",
    ]);
    assert_fails(&windowed, 2, &["job.window", "sessions"]);
    let compared = microbatch(&["compare", "profiles/clickstream.toml"]);
    assert_fails(&compared, 2, &["click-stream"]);
    let bad_line = tempfile::tempdir().unwrap();
    let csv = bad_line.path().join("bad.csv");
    std::fs::write(&csv, "1,2,3,4,view\n1,2,3,4,jump\n").unwrap();
    let written = write_click_log(&csv, &bad_line.path().join("log"));
    assert_fails(&written, 1, &["line 2", "action `jump`"]);
}

/// The value of the Prometheus sample `name` in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line[name.len()..].trim().parse().ok())
}

/// `GET path` from `addr`, the body.
fn get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_owned())
}

#[test]
fn metrics_are_served_in_prometheus_text_and_rise_during_a_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["run"];
    args.extend(short(
        "profiles/default.toml",
        &["--set", "run.duration=3s"],
    ));
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .args(&args)
        .args(["--metrics", &addr])
        .current_dir(common::workspace())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let results = |text: &str| sample(text, "microbatch_records_in_results_total");
    // The first scrape that has results, then one a second later.
    let first = loop {
        assert!(std::time::Instant::now() < deadline, "no metrics served");
        if let Some(value) = get(&addr, "/metrics").as_deref().and_then(results) {
            if value > 0.0 {
                break value;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let text = get(&addr, "/metrics").expect("still served");
    let second = results(&text).unwrap();
    assert!(second > first, "the count rises: {first} then {second}");
    for name in [
        "microbatch_records_accepted_total",
        "microbatch_seal_to_result_seconds_count",
        "microbatch_record_latency_seconds_count",
    ] {
        assert!(
            sample(&text, name).is_some_and(|v| v > 0.0),
            "{name} in:\n{text}"
        );
    }
    assert!(text.contains("microbatch_epochs_total{reason="), "{text}");
    assert!(run.wait().unwrap().success());
}
