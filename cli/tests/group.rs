//! Instances of `microbatch run` in one Kafka consumer group, into one
//! PostgreSQL table, against a real broker (tansu) and a real PostgreSQL
//! server, both started by the test: three instances over a topic of six
//! partitions, one killed mid-run (SIGKILL) and a new one started; at the
//! end the table's per-key totals equal a reference computed from the
//! produced input, no (partition, epoch, key) is there twice, and every
//! partition is committed to its end. Also `microbatch kafka lag`, and the
//! profile settings a group's run refuses.

#[path = "../../core/tests/common/broker.rs"]
mod broker;
mod common;
#[path = "../../core/tests/common/postgres.rs"]
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use broker::Broker;
use server::Postgres;

const KEYS: u64 = 700;
const PARTITIONS: i32 = 6;

/// `records` deterministic `(key, value)` pairs.
fn events(records: u64) -> Vec<(u64, u64)> {
    (0..records)
        .map(|i| ((i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) % KEYS, i % 97))
        .collect()
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
    command.args(args).stdin(Stdio::null());
    command
}

fn produce(broker: &Broker, dir: &Path, topic: &str, events: &[(u64, u64)]) {
    let csv = dir.join(format!("{topic}.csv"));
    let mut text = String::from("key,value\n");
    for (key, value) in events {
        text.push_str(&format!("{key},{value}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let output = microbatch(&[
        "kafka",
        "produce",
        "--from",
        csv.to_str().unwrap(),
        "--brokers",
        &broker.address,
        "--topic",
        topic,
        "--partitions",
        &PARTITIONS.to_string(),
    ])
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A keyed count-and-sum of `topic` as a member of group `group`, into
/// the server's table `per_key`, each instance at `rate` records per
/// second, until the topic's end is committed.
fn write_profile(
    dir: &Path,
    broker: &Broker,
    server: &Postgres,
    topic: &str,
    rate: u64,
) -> PathBuf {
    let profile = dir.join("group.toml");
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
group = "instances"
stop_at_end = true
rate = {rate}

[job]
kind = "keyed"
reductions = ["count", "sum"]

[run]
warmup = "0s"
duration = "10m"

[output]
kind = "postgres"
url = "{}"
table = "per_key"
"#,
            broker.address, server.url
        ),
    )
    .unwrap();
    profile
}

fn start(profile: &Path, dir: &Path, name: &str) -> Child {
    microbatch(&["run", profile.to_str().unwrap()])
        .stdout(std::fs::File::create(dir.join(format!("{name}.out"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap())
        .spawn()
        .unwrap()
}

/// Waits for `child` (at most `limit`), killing it if it takes longer.
fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("an instance did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The partitions' committed epochs so far, over all partitions.
fn committed_epochs(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT COALESCE(SUM(epoch), 0)::BIGINT FROM microbatch_partitions",
            &[],
        )
        .map(|row| row.get(0))
        .unwrap_or(0)
}

#[test]
fn three_instances_one_killed_and_one_new_count_every_record_once() {
    let (Some(broker), Some(server)) = (Broker::start(), Postgres::start()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = events(240_000);
    produce(&broker, dir.path(), "clicks", &input);
    // 3 × 15 000 records per second: the run lasts several seconds, so
    // the kill lands mid-run.
    let profile = write_profile(dir.path(), &broker, &server, "clicks", 15_000);
    let mut instances: Vec<Child> = (0..3)
        .map(|i| start(&profile, dir.path(), &format!("instance{i}")))
        .collect();

    // Once the group has committed a few epochs, one instance dies.
    let mut client = server.client();
    let started = Instant::now();
    while committed_epochs(&mut client) < 12 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the group committed nothing within 60 s: {}",
            std::fs::read_to_string(dir.path().join("instance0.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = &mut instances[1];
    killed.kill().unwrap(); // SIGKILL
    killed.wait().unwrap();
    // A new instance joins.
    instances.push(start(&profile, dir.path(), "instance3"));

    for (index, child) in instances.iter_mut().enumerate() {
        let status = wait(child, Duration::from_secs(180));
        if index != 1 {
            let err = std::fs::read_to_string(dir.path().join(format!("instance{index}.err")));
            assert!(
                status.success(),
                "instance {index}: {}",
                err.unwrap_or_default()
            );
        }
    }

    let mut totals = BTreeMap::new();
    for row in client
        .query(
            "SELECT key, SUM(count)::BIGINT, SUM(sum)::BIGINT FROM per_key GROUP BY key",
            &[],
        )
        .unwrap()
    {
        totals.insert(
            row.get::<_, i64>(0),
            (row.get::<_, i64>(1), row.get::<_, i64>(2)),
        );
    }
    assert_eq!(totals, reference(&input), "every record exactly once");
    let doubled: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM (SELECT \"partition\", epoch, key FROM per_key \
             GROUP BY 1, 2, 3 HAVING COUNT(*) > 1) d",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(doubled, 0, "no (partition, epoch, key) twice");
    let partitions: i64 = client
        .query_one("SELECT COUNT(*) FROM microbatch_partitions", &[])
        .unwrap()
        .get(0);
    assert_eq!(partitions, i64::from(PARTITIONS));

    // Each survivor's summary names the partitions it held.
    let summary = std::fs::read_to_string(dir.path().join("instance3.out")).unwrap();
    assert!(
        summary.contains("consumer group `instances`: held partitions"),
        "{summary}"
    );

    // Nothing left to read, by the table's offsets.
    let lag = microbatch(&[
        "kafka",
        "lag",
        "--brokers",
        &broker.address,
        "--topic",
        "clicks",
        "--group",
        "instances",
        "--url",
        &server.url,
        "--table",
        "per_key",
    ])
    .output()
    .unwrap();
    let table = String::from_utf8_lossy(&lag.stdout);
    assert!(
        lag.status.success(),
        "{}",
        String::from_utf8_lossy(&lag.stderr)
    );
    assert!(table.contains("total lag: 0 records"), "{table}");
}

#[test]
fn a_postgres_output_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let base = r#"
[workload]
source = "kafka"
topic = "t"
[job]
kind = "keyed"
reductions = ["count"]
[output]
kind = "postgres"
url = "postgresql://u@127.0.0.1:1/db"
"#;
    let cases = [
        (
            base.replace("source = \"kafka\"\ntopic = \"t\"\n", ""),
            "output.kind",
        ),
        (
            base.replace("url = \"postgresql://u@127.0.0.1:1/db\"\n", ""),
            "output.url",
        ),
        (
            base.replace("kind = \"keyed\"", "kind = \"global\""),
            "output.kind",
        ),
        (
            format!("{base}\n").replace("kind = \"postgres\"", "kind = \"sqlite\""),
            "output.url",
        ),
    ];
    for (index, (text, key)) in cases.iter().enumerate() {
        let profile = dir.path().join(format!("bad{index}.toml"));
        std::fs::write(&profile, text).unwrap();
        let output = microbatch(&["run", profile.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "case {index}: {err}");
        assert!(err.contains(key), "case {index}: {key} is not in: {err}");
    }
}
