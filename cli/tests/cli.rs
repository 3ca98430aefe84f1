//! The `microbatch` binary end to end: every shipped profile runs, the
//! files it promises are written and readable, and bad input gives one
//! line and the documented exit code. Runs are a few hundred milliseconds:
//! these tests check behaviour, never speed.

use std::path::PathBuf;

#[path = "../../core/tests/common/broker.rs"]
mod broker;
mod common;
use broker::Broker;
use common::{assert_fails, assert_success, microbatch, short, stderr, stdout, workspace};

#[test]
fn every_shipped_profile_runs_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut profiles: Vec<PathBuf> = std::fs::read_dir(workspace().join("profiles"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    profiles.sort();
    let names: Vec<String> = profiles
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "default.toml",
        "low-latency.toml",
        "throughput.toml",
        "sweep-interval.toml",
        "batch-vs-microbatch.toml",
        "skew-producer.toml",
        "skew-keys.toml",
        "clickstream.toml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    // profiles/kafka.toml reads a topic: a broker of the test's own, with
    // clicks in the profile's topic.
    let broker = kafka_clicks(dir.path());
    for (index, profile) in profiles.iter().enumerate() {
        let kafka = profile.ends_with("kafka.toml");
        let brokers = match (&broker, kafka) {
            (Some(broker), true) => format!("workload.brokers=\"{}\"", broker.address),
            (None, true) => continue,
            (_, false) => String::new(),
        };
        let json = dir.path().join("summary.json");
        // Output, if any, goes to a place of its own, never the workspace.
        let output_path = format!(
            "output.path=\"{}\"",
            dir.path().join(format!("out-{index}")).display()
        );
        let mut args = vec!["run"];
        let profile = profile.to_string_lossy().into_owned();
        args.extend(short(
            &profile,
            &[
                "--json",
                json.to_str().unwrap(),
                "--set",
                output_path.as_str(),
            ],
        ));
        if kafka {
            args.extend(["--set", brokers.as_str()]);
        }
        let output = microbatch(&args);
        assert_success(&output);
        let text = stdout(&output);
        assert!(text.contains("(equal)"), "{text}");
        assert!(
            text.contains("record latency") && text.contains("seal-to-result"),
            "{text}"
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(summary["records_in"], summary["records_out"], "{profile}");
        assert!(summary["records_in"].as_u64().unwrap() > 0, "{profile}");
        for key in ["record_latency_ns", "seal_to_result_ns"] {
            for percentile in ["p50", "p90", "p99", "p999", "max"] {
                assert!(
                    summary[key][percentile].is_u64(),
                    "{profile}: {key}.{percentile}"
                );
            }
        }
        for key in ["elapsed_s", "throughput_rps"] {
            assert!(summary[key].as_f64().unwrap() > 0.0, "{profile}: {key}");
        }
        assert!(summary["epochs"].as_u64().unwrap() >= 1, "{profile}");
        assert_eq!(
            summary["cores"].as_u64().unwrap() as usize,
            std::thread::available_parallelism().unwrap().get()
        );
        assert_eq!(summary["pinned"], false);
    }
}

/// A broker with 20 000 clicks in topic `clicks` (four partitions), or
/// `None` where tansu is not installed and the services are not required.
fn kafka_clicks(dir: &std::path::Path) -> Option<Broker> {
    use microbatch_cli::jobs::clickstream::{ClickConfig, ClickGenerator};
    let broker = Broker::start()?;
    let clicks = ClickGenerator::new(ClickConfig {
        events: Some(20_000),
        ..ClickConfig::default()
    })
    .events()
    .unwrap();
    let csv = dir.join("clicks.csv");
    let lines: Vec<String> = clicks.iter().map(|c| c.to_csv()).collect();
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let produced = microbatch(&[
        "kafka",
        "produce",
        "--from",
        csv.to_str().unwrap(),
        "--brokers",
        &broker.address,
        "--topic",
        "clicks",
        "--partitions",
        "4",
        "--schema",
        "clickstream",
    ]);
    assert_success(&produced);
    Some(broker)
}

#[test]
fn run_writes_epoch_lines_and_a_standard_interval_log() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out").join("run.json");
    let mut args = vec!["run"];
    args.extend(short(
        "profiles/low-latency.toml",
        &[
            "--set",
            "run.duration=1200ms",
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    assert_success(&microbatch(&args));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();

    let lines = std::fs::read_to_string(dir.path().join("out").join("run.epochs.jsonl")).unwrap();
    let epochs: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len() as u64, summary["epochs"].as_u64().unwrap());
    let records: u64 = epochs.iter().map(|e| e["records"].as_u64().unwrap()).sum();
    assert_eq!(records, summary["records_out"].as_u64().unwrap());
    assert!(
        epochs.iter().any(|e| e["warmup"] == true) && epochs.iter().any(|e| e["warmup"] == false)
    );

    // HdrHistogram's own log reader reads it back: every record counted once.
    let log = std::fs::read(dir.path().join("out").join("run.hlog")).unwrap();
    let mut deserializer = hdrhistogram::serialization::Deserializer::new();
    let mut counted = 0;
    let mut intervals = 0;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&log) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(interval) =
            entry.unwrap()
        {
            let bytes = base64_decode(interval.encoded_histogram());
            let histogram: hdrhistogram::Histogram<u64> =
                deserializer.deserialize(&mut bytes.as_slice()).unwrap();
            counted += histogram.len();
            intervals += 1;
        }
    }
    assert!(intervals >= 2, "{intervals} intervals");
    assert_eq!(counted, summary["records_out"].as_u64().unwrap());
}

/// Standard base64 (the interval log's histogram encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut bits = 0u32;
        for (i, &d) in chunk.iter().enumerate() {
            bits |= u32::from(d) << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn producers_a_file_source_and_csv_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    let mut text = String::from("key,value\n");
    for i in 0..10_000u64 {
        text.push_str(&format!("{},{}\n", i % 7, i % 100));
    }
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("rows");
    let json = dir.path().join("s.json");
    let source = format!("workload.path=\"{}\"", input.display());
    let output = format!("output.path=\"{}\"", out.display());
    let mut args = vec!["run"];
    args.extend(short(
        "profiles/default.toml",
        &[
            "--set",
            "workload.source=file",
            "--set",
            &source,
            "--set",
            "workload.producers=2",
            "--set",
            "output.kind=csv",
            "--set",
            &output,
            "--set",
            "job.reductions=[\"count\", \"mean\", \"max\"]",
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    let run = microbatch(&args);
    assert_success(&run);
    assert!(
        stdout(&run).contains("producer threads"),
        "{}",
        stdout(&run)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(summary["records_out"], 10_000);

    // Every key's count and max over all epoch files match the input.
    let mut counts = [0u64; 7];
    let mut maxima = [0u64; 7];
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::metadata(&path).unwrap().len() == 0 {
            continue; // an epoch without records: an empty file
        }
        let mut reader = csv::Reader::from_path(path).unwrap();
        assert_eq!(
            reader.headers().unwrap(),
            vec!["key", "count", "max", "mean"]
        );
        for row in reader.records() {
            let row = row.unwrap();
            let key: usize = row[0].parse().unwrap();
            counts[key] += row[1].parse::<u64>().unwrap();
            maxima[key] = maxima[key].max(row[2].parse().unwrap());
        }
    }
    let expected_max: Vec<u64> = (0..7u64)
        .map(|k| {
            (0..10_000u64)
                .filter(|i| i % 7 == k)
                .map(|i| i % 100)
                .max()
                .unwrap()
        })
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 10_000);
    assert_eq!(maxima.to_vec(), expected_max);

    // A second run into the same directory is refused, not mixed in.
    let again = microbatch(&args);
    assert_fails(&again, 1, &["already holds"]);
}

#[test]
fn sweep_writes_csv_plots_and_names_the_knee() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let mut args = vec!["sweep"];
    args.extend(short(
        "profiles/sweep-interval.toml",
        &[
            "--interval",
            "2ms,20ms",
            "--rate",
            "200000",
            "--repeat",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let output = microbatch(&args);
    assert_success(&output);
    let text = stdout(&output);
    assert!(text.contains("knee"), "{text}");
    let mut reader = csv::Reader::from_path(out.join("sweep.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 12, "2 intervals × (max + 1 rate) × 3 runs");
    let offered: Vec<&str> = rows.iter().map(|r| &r[column("offered_rate")]).collect();
    assert_eq!(offered[..6], ["max"; 6]);
    assert_eq!(offered[6..], ["200000"; 6]);
    // One median per point, and the table shows only medians.
    for point in rows.chunks(3) {
        let medians = point
            .iter()
            .filter(|r| &r[column("median")] == "true")
            .count();
        assert_eq!(medians, 1);
        let runs: Vec<&str> = point.iter().map(|r| &r[column("run")]).collect();
        assert_eq!(runs, ["1", "2", "3"]);
    }
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(" ms ") && l.contains("off"))
            .count(),
        4,
        "{text}"
    );
    for plot in ["latency.svg", "throughput.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("batch interval"),
            "{plot}"
        );
    }
    assert!(out.join("profile.toml").exists());
}

#[test]
fn compare_prints_every_design_with_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("c.json");
    let mut args = vec!["compare"];
    args.extend(short(
        "profiles/batch-vs-microbatch.toml",
        &[
            "--set",
            "workload.keys=1000",
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    let output = microbatch(&args);
    assert_success(&output);
    let text = stdout(&output);
    for design in [
        "micro-batch",
        "batch (same engine",
        "single thread",
        "naive",
    ] {
        assert!(text.contains(design), "{design}: {text}");
    }
    let comparison: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let designs = comparison["designs"].as_array().unwrap();
    assert_eq!(designs.len(), 4);
    assert!(designs
        .iter()
        .all(|d| d["throughput_rps"].as_f64().unwrap() > 0.0));
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let set = |assignment: &str| -> Vec<String> {
        vec![
            "run".into(),
            "profiles/default.toml".into(),
            "--set".into(),
            assignment.into(),
        ]
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[engine]\nintervl = \"1ms\"\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["run".into(), bad.display().to_string()],
            "engine.intervl: unknown field",
        ),
        (
            vec![
                "run".into(),
                "profiles/default.toml".into(),
                "--set".into(),
                "engine.workers=0".into(),
            ],
            "engine.workers",
        ),
        (
            vec![
                "run".into(),
                "profiles/default.toml".into(),
                "--set".into(),
                "workload.rate=fast".into(),
            ],
            "workload.rate",
        ),
        (
            vec!["run".into(), "no/such/profile.toml".into()],
            "cannot read the profile",
        ),
        (
            vec![
                "sweep".into(),
                "profiles/sweep-interval.toml".into(),
                "--interval".into(),
                "1ms,soon".into(),
            ],
            "--interval",
        ),
        (vec!["run".into()], "PROFILE"),
        // Settings out of range, each named.
        (set("run.warmup=18446744073709551615s"), "run.warmup"),
        (set("engine.workers=1000"), "engine.workers"),
        (set("engine.interval=1ns"), "engine.interval"),
        (
            vec!["run".into(), "/dev/urandom".into()],
            "not a regular file",
        ),
    ];
    // The operating system's error is said once, not once per layer.
    let missing = microbatch(&["run", "no/such/profile.toml"]);
    assert_eq!(
        stderr(&missing).matches("os error 2").count(),
        1,
        "{}",
        stderr(&missing)
    );
    // Zero records per block: clap's own error (with its usage lines).
    let zero = microbatch(&[
        "log",
        "write",
        "--from",
        "x.csv",
        "--to",
        "y",
        "--block-records",
        "0",
    ]);
    assert_fails(&zero, 2, &["--block-records"]);
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = microbatch(&args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if args.len() > 1 {
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        }
    }
}

#[test]
fn a_bad_input_file_exits_1_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    std::fs::write(&input, "key,value\n1,2\nthree,4\n").unwrap();
    let source = format!("workload.path=\"{}\"", input.display());
    let output = microbatch(
        &short(
            "profiles/default.toml",
            &["--set", "workload.source=file", "--set", &source],
        )
        .into_iter()
        .fold(vec!["run"], |mut args, arg| {
            args.push(arg);
            args
        }),
    );
    assert_fails(&output, 1, &["events.csv", "line: 3"]);
}

#[test]
fn help_explains_every_command() {
    for command in ["run", "sweep", "compare"] {
        let output = microbatch(&[command, "--help"]);
        assert_success(&output);
        assert!(stdout(&output).contains("--set"), "{command}");
    }
    let output = microbatch(&["--help"]);
    assert!(stdout(&output).contains("Exit codes"));
}

#[test]
fn a_byte_order_mark_and_both_names_of_the_output_kind_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let bom = dir.path().join("bom.toml");
    std::fs::write(
        &bom,
        "\u{feff}[run]\nwarmup = \"0s\"\nduration = \"200ms\"\n[engine]\npin = false\n",
    )
    .unwrap();
    assert_success(&microbatch(&["run", bom.to_str().unwrap()]));
    let both = dir.path().join("both.toml");
    std::fs::write(&both, "[output]\nkind = \"csv\"\nsink = \"sqlite\"\n").unwrap();
    let output = microbatch(&["run", both.to_str().unwrap()]);
    assert_fails(&output, 2, &["output", "give one"]);
    // A panic policy from the profile is taken (the CLI's jobs never
    // panic, so the run is the same).
    let mut args = vec!["run"];
    args.extend(short(
        "profiles/default.toml",
        &["--set", "engine.on_panic=retry"],
    ));
    assert_success(&microbatch(&args));
    // A uniform click stream is a click stream, not an internal setting.
    let mut args = vec!["run"];
    args.extend(short(
        "profiles/clickstream.toml",
        &[
            "--set",
            "workload.distribution=uniform",
            "--set",
            "output.kind=none",
        ],
    ));
    assert_success(&microbatch(&args));
}

#[test]
fn outputs_that_collide_or_land_on_an_input_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("mine.toml");
    std::fs::copy(workspace().join("profiles/default.toml"), &profile).unwrap();
    let profile = profile.to_str().unwrap();
    let json = dir.path().join("a.hlog");
    let json = json.to_str().unwrap();
    let summary = dir.path().join("s.json");
    let summary = summary.to_str().unwrap();
    for (args, needle) in [
        // The summary's derived interval log is the summary itself.
        (vec!["run", profile, "--json", json], "--json"),
        (
            vec!["run", profile, "--json", summary, "--epochs", summary],
            "--json",
        ),
        (vec!["run", profile, "--json", profile], "profile"),
        (
            vec!["run", profile, "--json", dir.path().to_str().unwrap()],
            "directory",
        ),
        (vec!["compare", profile, "--json", profile], "profile"),
    ] {
        let output = microbatch(&args);
        assert_fails(&output, 2, &[needle]);
        assert_eq!(stderr(&output).trim().lines().count(), 1, "{args:?}");
    }
    // A sweep whose copy of the profile would overwrite it.
    let named = dir.path().join("profile.toml");
    std::fs::copy(profile, &named).unwrap();
    let output = microbatch(&[
        "sweep",
        named.to_str().unwrap(),
        "--interval",
        "10ms",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_fails(&output, 2, &["profile"]);
    assert_eq!(
        std::fs::read(&named).unwrap(),
        std::fs::read(profile).unwrap(),
        "the profile is untouched"
    );
}
