//! `engine.interval = "auto"` through the binary: the summary and the
//! `--json` report say which intervals were chosen and whether the target
//! held, the epochs file gives each epoch's interval, and settings that
//! cannot adapt are refused with their key and exit code 2.

mod common;
use common::{assert_fails, assert_success, microbatch, short, stdout};

#[test]
fn an_adaptive_run_reports_its_intervals_and_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("auto.json");
    let mut args = vec!["run"];
    args.extend(short(
        "profiles/auto-interval.toml",
        &[
            "--set",
            "workload.rate=1000000",
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    let output = microbatch(&args);
    assert_success(&output);
    assert!(
        stdout(&output).contains("latency target"),
        "{}",
        stdout(&output)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["interval_ms"].is_null(), "{report}");
    let chosen = &report["interval_chosen_ms"];
    let (p50, min, max) = (
        chosen["p50"].as_f64().unwrap(),
        chosen["min"].as_f64().unwrap(),
        chosen["max"].as_f64().unwrap(),
    );
    assert!(
        1.0 <= min && min <= p50 && p50 <= max && max <= 20.0,
        "{chosen}"
    );
    assert_eq!(report["target"]["latency_ms"].as_f64(), Some(20.0));
    assert!(report["target"]["met"].is_boolean(), "{report}");
    assert_eq!(report["records_in"], report["records_out"]);
    let epochs = std::fs::read_to_string(dir.path().join("auto.epochs.jsonl")).unwrap();
    let mut lines = 0;
    for line in epochs.lines() {
        let epoch: serde_json::Value = serde_json::from_str(line).unwrap();
        let ms = epoch["interval_ms"].as_f64().unwrap();
        assert!((1.0..=20.0).contains(&ms), "{line}");
        assert!(epoch["target"].is_string(), "{line}");
        lines += 1;
    }
    assert!(lines > 0);
}

#[test]
fn settings_that_cannot_adapt_are_refused_with_their_key() {
    let auto_without_target = microbatch(&[
        "run",
        "profiles/default.toml",
        "--set",
        "engine.interval=auto",
    ]);
    assert_fails(
        &auto_without_target,
        2,
        &["engine.interval", "target_latency"],
    );
    let target_without_auto = microbatch(&[
        "run",
        "profiles/default.toml",
        "--set",
        "engine.target_latency=20ms",
    ]);
    assert_fails(&target_without_auto, 2, &["engine.target_latency", "auto"]);
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("checkpoint");
    let under_checkpoint = microbatch(&[
        "run",
        "profiles/auto-interval.toml",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert_fails(&under_checkpoint, 2, &["auto", "fixed engine.interval"]);
}

#[test]
fn a_sweep_of_an_auto_profile_runs_the_adaptive_point_beside_the_curve() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let mut args = vec!["sweep"];
    args.extend(short(
        "profiles/auto-interval.toml",
        &[
            "--interval",
            "2ms,20ms",
            "--rate",
            "1000000",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let output = microbatch(&args);
    assert_success(&output);
    let mut reader = csv::Reader::from_path(out.join("sweep.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        5,
        "2 intervals × (max + 1 rate) + the adaptive point"
    );
    let adaptive: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| &r[column("adaptive")] == "true")
        .collect();
    assert_eq!(adaptive.len(), 1);
    assert_eq!(&adaptive[0][column("offered_rate")], "1000000");
    let chosen: f64 = adaptive[0][column("interval_ms")].parse().unwrap();
    assert!((1.0..=20.0).contains(&chosen), "{chosen}");
    assert!(stdout(&output).contains("auto "), "{}", stdout(&output));
    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    assert!(
        svg.contains("auto interval"),
        "the adaptive point is not in the plot"
    );
}
