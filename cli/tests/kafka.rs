//! `microbatch` against a real Kafka-protocol broker (tansu, started per
//! test on its own port): `kafka produce`, a keyed run into SQLite that
//! resumes from the offsets its database holds, the SIGKILL test (at
//! least 20 kills at random moments over a topic of four partitions, the
//! final totals equal to a reference computed from the produced input, no
//! (epoch, key) twice), bad messages, the Kafka output, and the profile
//! settings a Kafka run refuses.

#[path = "../../core/tests/common/broker.rs"]
mod broker;
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use broker::Broker;
use common::kill_at_random_moments;

const KEYS: u64 = 500;

/// `records` `key,value` lines, deterministic.
fn events(records: u64) -> Vec<(u64, u64)> {
    (0..records)
        .map(|i| {
            (
                (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) % KEYS,
                i % 101,
            )
        })
        .collect()
}

fn write_csv(path: &Path, events: &[(u64, u64)]) {
    let mut text = String::from("key,value\n");
    for (key, value) in events {
        text.push_str(&format!("{key},{value}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn reference(events: &[(u64, u64)]) -> BTreeMap<i64, (i64, i64)> {
    let mut totals = BTreeMap::new();
    for &(key, value) in events {
        let entry = totals.entry(key as i64).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += value as i64;
    }
    totals
}

fn microbatch(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_microbatch"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn succeeded(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn produce(broker: &Broker, csv: &Path, topic: &str, partitions: &str) {
    let csv = csv.to_str().unwrap();
    succeeded(
        microbatch(&[
            "kafka",
            "produce",
            "--from",
            csv,
            "--brokers",
            &broker.address,
            "--topic",
            topic,
            "--partitions",
            partitions,
        ])
        .output()
        .unwrap(),
    );
}

/// A keyed count-and-sum profile over `topic`, into `database`.
fn write_profile(dir: &Path, broker: &Broker, topic: &str, database: &Path) -> PathBuf {
    let profile = dir.join("kafka.toml");
    std::fs::write(
        &profile,
        format!(
            r#"
[engine]
workers = 2
pin = false
interval = "50ms"

[workload]
source = "kafka"
brokers = "{}"
topic = "{topic}"
group = "test"
stop_at_end = true

[job]
kind = "keyed"
reductions = ["count", "sum"]

[run]
warmup = "0s"
duration = "10m"

[output]
kind = "sqlite"
path = "{}"
table = "per_key"
"#,
            broker.address,
            database.display()
        ),
    )
    .unwrap();
    profile
}

/// `run PROFILE` with `sets`.
fn run(profile: &Path, sets: &[&str]) -> Command {
    let mut command = microbatch(&["run", profile.to_str().unwrap()]);
    for set in sets {
        command.arg("--set").arg(set);
    }
    command
}

/// The per-key totals of `per_key`, and its rows by (epoch, key).
fn totals(database: &Path) -> (BTreeMap<i64, (i64, i64)>, usize) {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut statement = connection
        .prepare("SELECT key, SUM(count), SUM(sum), COUNT(*) FROM per_key GROUP BY key")
        .unwrap();
    let mut rows = 0;
    let mut totals = BTreeMap::new();
    for row in statement
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .unwrap()
    {
        let (key, count, sum, epochs) = row.unwrap();
        totals.insert(key, (count, sum));
        rows += epochs as usize;
    }
    (totals, rows)
}

/// Rows whose (epoch, key) is in the table more than once.
fn doubled(database: &Path) -> i64 {
    let connection = rusqlite::Connection::open(database).unwrap();
    connection
        .query_row(
            "SELECT COUNT(*) FROM (SELECT epoch, key FROM per_key GROUP BY epoch, key HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_run_resumes_at_the_offsets_its_database_holds() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = events(30_000);
    write_csv(&dir.path().join("first.csv"), &first);
    produce(&broker, &dir.path().join("first.csv"), "events", "3");
    let database = dir.path().join("out.db");
    let profile = write_profile(dir.path(), &broker, "events", &database);
    let report = succeeded(run(&profile, &[]).output().unwrap());
    assert!(report.contains("throughput"), "{report}");
    assert_eq!(totals(&database).0, reference(&first));

    // More records: the next run reads only those.
    let second = events(50_000)[30_000..].to_vec();
    write_csv(&dir.path().join("second.csv"), &second);
    produce(&broker, &dir.path().join("second.csv"), "events", "3");
    succeeded(run(&profile, &[]).output().unwrap());
    let all: Vec<_> = first.iter().chain(&second).copied().collect();
    assert_eq!(totals(&database).0, reference(&all));
    assert_eq!(doubled(&database), 0);

    // The same database from another topic: refused, not appended to.
    produce(&broker, &dir.path().join("first.csv"), "other", "1");
    let refused = run(&profile, &["workload.topic=\"other\""])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("no positions of topic `other`"), "{stderr}");
    assert_eq!(totals(&database).0, reference(&all));
}

fn committed_epochs(database: &Path) -> i64 {
    let Ok(connection) = rusqlite::Connection::open(database) else {
        return 0;
    };
    connection
        .query_row("SELECT COUNT(*) FROM microbatch_commits", [], |r| r.get(0))
        .unwrap_or(0)
}

#[test]
fn sqlite_totals_after_sigkills_equal_the_produced_input() {
    const KILLS: usize = 20;
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = events(400_000);
    write_csv(&dir.path().join("input.csv"), &input);
    produce(&broker, &dir.path().join("input.csv"), "events", "4");
    let database = dir.path().join("killed.db");
    let profile = write_profile(dir.path(), &broker, "events", &database);
    // Paced, so that the kills land over the whole topic.
    let paced = ["workload.rate=40000"];

    let kills = KILLS;
    let runs = kill_at_random_moments(KILLS, (200, 1200), || {
        run(&profile, &paced).spawn().unwrap()
    });
    let before_last_run = committed_epochs(&database);
    eprintln!(
        "{kills} kills in {runs} runs; {before_last_run} epochs committed before the last run"
    );
    let (read, _) = totals(&database);
    let read: i64 = read.values().map(|t| t.0).sum();
    assert!(
        before_last_run > 0 && (read as u64) < input.len() as u64,
        "the kills landed while the topic was being read ({read} records in)"
    );
    succeeded(run(&profile, &[]).output().unwrap());
    assert_eq!(totals(&database).0, reference(&input));
    assert_eq!(doubled(&database), 0, "an (epoch, key) twice");
}

#[test]
fn bad_messages_stop_the_run_or_go_to_the_dead_letters() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let good = events(1_000);
    write_csv(&dir.path().join("good.csv"), &good);
    produce(&broker, &dir.path().join("good.csv"), "events", "1");
    // A message that is not a `key,value` record, as another producer
    // might write it.
    let settings = microbatch::kafka::KafkaSettings::new(broker.address.clone());
    let mut writer = microbatch::kafka::TopicWriter::new(&settings, "events").unwrap();
    writer.send(b"x", b"7;8", None).unwrap();
    writer.finish().unwrap();
    let database = dir.path().join("out.db");
    let profile = write_profile(dir.path(), &broker, "events", &database);

    let stopped = run(&profile, &[]).output().unwrap();
    assert!(!stopped.status.success());
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(
        stderr.contains("partition 0 offset 1000") && stderr.contains("1 fields; expected 2"),
        "{stderr}"
    );

    let letters = dir.path().join("dead.jsonl");
    let letters_set = format!("engine.dead_letters=\"{}\"", letters.display());
    succeeded(
        run(&profile, &["workload.bad_lines=\"skip\"", &letters_set])
            .output()
            .unwrap(),
    );
    assert_eq!(totals(&database).0, reference(&good));
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&letters).unwrap().trim()).unwrap();
    assert_eq!(
        (line["offset"].as_i64(), line["value"].as_str()),
        (Some(1000), Some("7;8"))
    );
}

#[test]
fn the_kafka_output_says_what_the_broker_cannot_do() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_csv(&dir.path().join("input.csv"), &events(5_000));
    produce(&broker, &dir.path().join("input.csv"), "events", "2");
    produce(&broker, &dir.path().join("input.csv"), "results", "1");
    let profile = write_profile(dir.path(), &broker, "events", &dir.path().join("unused.db"));
    let output = run(
        &profile,
        &["output.kind=\"kafka\"", "output.topic=\"results\""],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        // A broker with transactions: every epoch once, read_committed.
        eprintln!("the broker committed the transactions");
        return;
    }
    // tansu 0.6 takes the transaction's records but not EndTxn.
    assert!(
        stderr.contains("cannot commit epoch 0") && stderr.contains("EndTxn"),
        "{stderr}"
    );
}

#[test]
fn a_kafka_profile_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("out.db");
    // No broker is contacted: the profile is refused first.
    let broker = "workload.brokers=\"127.0.0.1:1\"";
    let profile = dir.path().join("kafka.toml");
    std::fs::write(
        &profile,
        format!(
            "[workload]\nsource = \"kafka\"\ntopic = \"t\"\n[output]\nkind = \"sqlite\"\npath = \"{}\"\n",
            database.display()
        ),
    )
    .unwrap();
    for (sets, key, says) in [
        (
            vec!["output.kind=\"csv\""],
            "output.kind",
            "files cannot hold",
        ),
        (vec!["workload.topic=\"\""], "workload.topic", "missing"),
        (
            vec!["workload.schema=\"timed\""],
            "workload.schema",
            "accepted: \"event\"",
        ),
        (
            vec!["workload.bad_lines=\"skip\""],
            "workload.bad_lines",
            "engine.dead_letters",
        ),
        (
            vec!["workload.producers=2"],
            "workload.producers",
            "read by the engine's workers",
        ),
        (vec!["output.kind=\"kafka\""], "output.topic", "missing"),
        (
            vec![
                "output.kind=\"kafka\"",
                "output.topic=\"r\"",
                "job.output_mode=\"complete\"",
            ],
            "output.kind",
            "running totals",
        ),
    ] {
        let mut all = sets.clone();
        all.push(broker);
        let output = run(&profile, &all).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{sets:?}: {stderr}");
        assert!(
            stderr.contains(key) && stderr.contains(says),
            "{sets:?}: {stderr}"
        );
    }
    let checkpoint = dir.path().join("checkpoint");
    let output = run(&profile, &[broker])
        .arg("--checkpoint")
        .arg(&checkpoint)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("resumes from its output"), "{stderr}");
    // The shipped profile passes the checks: what stops it is the broker.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/kafka.toml");
    let output = run(Path::new(shipped), &[broker]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    // A topic on a broker nobody serves: one line, not a hang.
    let output = run(&profile, &[broker]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("127.0.0.1:1"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// `(user, clicks, dwell)` rows of `user_totals`.
type UserTotals = Vec<(i64, i64, i64)>;
/// `(user, start, end, clicks)` rows of `user_sessions`.
type UserSessions = Vec<(i64, i64, i64, i64)>;

/// `user_totals` and `user_sessions` of a click-stream database.
fn click_tables(database: &Path) -> (UserTotals, UserSessions) {
    let connection = rusqlite::Connection::open(database).unwrap();
    let totals = connection
        .prepare("SELECT user, clicks, dwell_ms_sum FROM user_totals ORDER BY user")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let sessions = connection
        .prepare(
            "SELECT user, session_start_ms, session_end_ms, clicks FROM user_sessions
             ORDER BY user, session_start_ms",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (totals, sessions)
}

#[test]
fn click_sessions_resume_from_the_state_their_database_holds() {
    use microbatch_cli::jobs::clickstream::{ClickConfig, ClickGenerator};
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clicks = ClickGenerator::new(ClickConfig {
        users: 2_000,
        events: Some(60_000),
        // 6 s of event time: sessions close as the watermark passes them.
        rate: Some(10_000),
        ..ClickConfig::default()
    })
    .events()
    .unwrap();
    let write = |name: &str, clicks: &[microbatch_cli::jobs::clickstream::Click]| {
        let path = dir.path().join(name);
        let lines: Vec<String> = clicks.iter().map(|c| c.to_csv()).collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    };
    let all = write("all.csv", &clicks);
    let first = write("first.csv", &clicks[..25_000]);
    let second = write("second.csv", &clicks[25_000..]);
    let run_into = |topic: &str, database: &Path| {
        let profile = dir.path().join("clicks.toml");
        std::fs::write(
            &profile,
            format!(
                r#"
[engine]
workers = 2
pin = false
interval = "50ms"
[workload]
source = "kafka"
brokers = "{}"
topic = "{topic}"
schema = "clickstream"
stop_at_end = true
[job]
kind = "clickstream"
session_gap = "200ms"
watermark_delay = "1s"
[run]
warmup = "0s"
duration = "10m"
[output]
kind = "sqlite"
path = "{}"
"#,
                broker.address,
                database.display()
            ),
        )
        .unwrap();
        let report = succeeded(run(&profile, &[]).output().unwrap());
        assert!(report.contains(" 0 late records"), "{report}");
    };
    let produce_clicks = |csv: &Path, topic: &str| {
        succeeded(
            microbatch(&[
                "kafka",
                "produce",
                "--from",
                csv.to_str().unwrap(),
                "--brokers",
                &broker.address,
                "--topic",
                topic,
                "--partitions",
                "3",
                "--schema",
                "clickstream",
            ])
            .output()
            .unwrap(),
        );
    };
    produce_clicks(&all, "once");
    let once = dir.path().join("once.db");
    run_into("once", &once);
    produce_clicks(&first, "twice");
    let twice = dir.path().join("twice.db");
    run_into("twice", &twice);
    produce_clicks(&second, "twice");
    run_into("twice", &twice);
    let (totals, sessions) = click_tables(&once);
    assert_eq!(totals.iter().map(|t| t.1).sum::<i64>(), 60_000);
    assert!(!sessions.is_empty());
    let (resumed_totals, resumed_sessions) = click_tables(&twice);
    assert!(resumed_totals == totals, "user_totals differ");
    let differ: Vec<_> = sessions
        .iter()
        .zip(&resumed_sessions)
        .filter(|(a, b)| a != b)
        .take(3)
        .collect();
    assert!(
        sessions.len() == resumed_sessions.len() && differ.is_empty(),
        "{} sessions in one run, {} in two; first differences {differ:?}",
        sessions.len(),
        resumed_sessions.len()
    );
}
