//! `[[queries]]` through the binary: each query's figures in the summary
//! and in `--json`'s `queries`, each query's rows in its own output, and
//! what a query cannot ask for refused with its key and exit code 2.

mod common;
use common::{assert_fails, assert_success, microbatch, short, stdout};

/// `profiles/two-queries.toml`, short and slow enough for a test machine.
fn two_queries(policy: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run"];
    let policy = format!("scheduler.policy={policy}");
    let mut rest = vec![
        "--set",
        "workload.rate=2000000",
        "--set",
        "workload.keys=50000",
        "--set",
        policy.as_str(),
    ];
    rest.extend_from_slice(extra);
    args.extend(short("profiles/two-queries.toml", &rest));
    microbatch(&args)
}

/// Runs `profile` with `--json` beside it: its summary and the JSON.
fn run_with_json(profile: &std::path::Path) -> (String, serde_json::Value) {
    let json = profile.with_extension("json");
    let output = microbatch(&[
        "run",
        profile.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_success(&output);
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (stdout(&output), report)
}

#[test]
fn each_query_reports_its_epochs_rows_and_seal_to_result() {
    for policy in ["priority", "fifo", "round_robin"] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("two.json");
        let output = two_queries(policy, &["--json", json.to_str().unwrap()]);
        assert_success(&output);
        let text = stdout(&output);
        assert!(
            text.contains("query alerts") && text.contains("query dashboard"),
            "{text}"
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let queries = report["queries"].as_array().unwrap();
        assert_eq!(queries.len(), 2, "{report}");
        let (alerts, dashboard) = (&queries[0], &queries[1]);
        assert_eq!(alerts["name"], "alerts");
        assert_eq!(alerts["priority"], 10);
        assert_eq!(alerts["interval_ms"].as_f64(), Some(10.0));
        assert_eq!(dashboard["interval_ms"].as_f64(), Some(1000.0));
        // The alerts count 1 000 buckets: at most 1 000 rows an epoch.
        let (epochs, rows) = (
            alerts["epochs"].as_u64().unwrap(),
            alerts["records_out"].as_u64().unwrap(),
        );
        assert!(epochs > 0 && rows <= 1000 * epochs, "{alerts}");
        // The dashboard emits every key it has seen each of its epochs,
        // and is due at most every 100 engine epochs, and at the last.
        assert!(
            dashboard["epochs"].as_u64().unwrap() <= epochs / 100 + 1,
            "{dashboard}"
        );
        let seal = &alerts["seal_to_result_ns"];
        assert!(
            seal["p50"].as_u64().unwrap() <= seal["p99"].as_u64().unwrap(),
            "{seal}"
        );
        assert!(
            seal["p99"].as_u64().unwrap() <= seal["max"].as_u64().unwrap(),
            "{seal}"
        );
        // Every record in the results, and the dashboard's last epoch
        // holds each key seen.
        assert_eq!(report["records_in"], report["records_out"], "{report}");
        assert!(
            dashboard["records_out"].as_u64().unwrap() >= 1,
            "{dashboard}"
        );
    }
}

#[test]
fn each_query_writes_its_own_output() {
    let dir = tempfile::tempdir().unwrap();
    let (alerts, dashboard) = (dir.path().join("alerts"), dir.path().join("dashboard"));
    let batches = dir.path().join("batches");
    let profile = dir.path().join("two.toml");
    std::fs::write(
        &profile,
        format!(
            "[engine]\ninterval = \"10ms\"\n[workload]\nkeys = 500\nrate = 200000\n\
             [run]\nduration = \"1s\"\nwarmup = \"0s\"\n\
             [[queries]]\nname = \"alerts\"\nkey_buckets = 10\nreductions = [\"count\"]\n\
             [queries.output]\nkind = \"csv\"\npath = {alerts:?}\n\
             [[queries]]\nname = \"dashboard\"\noutput_mode = \"complete\"\ninterval = \"200ms\"\n\
             [queries.output]\nkind = \"jsonl\"\npath = {dashboard:?}\n\
             [[queries]]\nname = \"batches\"\nreductions = [\"count\"]\nmax_batch_records = 50000\n\
             [queries.output]\nkind = \"csv\"\npath = {batches:?}\n"
        ),
    )
    .unwrap();
    let (_, report) = run_with_json(&profile);
    let files = |dir: &std::path::Path, ext: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == ext))
            .map(|path| std::fs::read_to_string(path).unwrap())
            .collect();
        names.sort();
        names
    };
    let alert_files = files(&alerts, "csv");
    assert!(!alert_files.is_empty());
    // Ten buckets: at most ten rows (and a header) an epoch.
    assert!(alert_files.iter().all(|file| file.lines().count() <= 11));
    let dashboard_files = files(&dashboard, "jsonl");
    // Its last epoch holds every key the run saw, each once.
    let most = dashboard_files
        .iter()
        .map(|file| file.lines().count())
        .max()
        .unwrap();
    assert!(most > 10 && most <= 500, "{most}");
    assert!(dashboard_files.len() < alert_files.len());

    // The count-triggered query: an epoch of at least 50 000 records
    // (but the last), each record counted once.
    let batch = &report["queries"][2];
    assert_eq!(batch["max_batch_records"], 50000, "{batch}");
    assert!(batch["interval_ms"].is_null(), "{batch}");
    let records = report["records_in"].as_u64().unwrap();
    let batch_files = files(&batches, "csv");
    assert!(!batch_files.is_empty());
    assert!(
        batch_files.len() as u64 <= records / 50_000 + 1,
        "{}",
        batch_files.len()
    );
    let counted: u64 = batch_files
        .iter()
        .flat_map(|file| file.lines().skip(1))
        .map(|line| line.rsplit(',').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, records);
}

#[test]
fn what_a_query_cannot_ask_for_is_refused_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let base = "[engine]\ninterval = \"10ms\"\n[run]\nduration = \"1s\"\nwarmup = \"0s\"\n";
    let cases = [
        (
            "not-a-multiple.toml",
            "[[queries]]\nname = \"a\"\ninterval = \"15ms\"\n",
            vec!["queries[0].interval", "multiple"],
        ),
        (
            "twice.toml",
            "[[queries]]\nname = \"a\"\n[[queries]]\nname = \"a\"\n",
            vec!["queries[1].name"],
        ),
        (
            "unknown.toml",
            "[[queries]]\nname = \"a\"\ncolour = \"red\"\n",
            vec!["queries[0]", "colour"],
        ),
        (
            "both.toml",
            "[job]\nkind = \"keyed\"\n[[queries]]\nname = \"a\"\n",
            vec!["queries", "[job]"],
        ),
        (
            "count.toml",
            "[[queries]]\nname = \"a\"\nmax_batch_records = 10\ninterval = \"20ms\"\n",
            vec!["queries[0].max_batch_records", "not both"],
        ),
        (
            "count-zero.toml",
            "[[queries]]\nname = \"a\"\nmax_batch_records = 0\n",
            vec!["queries[0].max_batch_records", "at least 1"],
        ),
        (
            "global-running.toml",
            "[[queries]]\nname = \"a\"\nkind = \"global\"\noutput_mode = \"complete\"\n",
            vec!["queries[0].output_mode"],
        ),
    ];
    for (name, text, needles) in cases {
        let path = write(name, &format!("{base}{text}"));
        let output = microbatch(&["run", path.to_str().unwrap()]);
        assert_fails(&output, 2, &needles);
    }
    let checkpoint = dir.path().join("checkpoint");
    let under_checkpoint = two_queries("priority", &["--checkpoint", checkpoint.to_str().unwrap()]);
    // Queries run under a checkpoint as one job does: over a record log.
    assert_fails(&under_checkpoint, 2, &["checkpoint", "record log"]);
    let compared = microbatch(&["compare", "profiles/two-queries.toml"]);
    assert_fails(&compared, 2, &["[[queries]]"]);
}

#[test]
fn a_windowed_query_beside_another_counts_each_record_once_or_late() {
    let dir = tempfile::tempdir().unwrap();
    let (windows, per_key) = (dir.path().join("windows"), dir.path().join("per_key"));
    let profile = dir.path().join("windowed.toml");
    // Event times up to 200 ms behind, a watermark 20 ms behind the
    // frontier: some records come too late for their window.
    std::fs::write(
        &profile,
        format!(
            "[engine]\ninterval = \"10ms\"\n[workload]\nkeys = 500\nrate = 200000\ndisorder = \"200ms\"\n\
             [run]\nduration = \"1s\"\nwarmup = \"0s\"\n\
             [[queries]]\nname = \"windows\"\nwindow = \"tumbling\"\nwindow_size = \"100ms\"\n\
             watermark_delay = \"20ms\"\nkey_buckets = 10\npriority = 10\n\
             [queries.output]\nkind = \"csv\"\npath = {windows:?}\n\
             [[queries]]\nname = \"per_key\"\nreductions = [\"count\"]\ninterval = \"100ms\"\n\
             [queries.output]\nkind = \"csv\"\npath = {per_key:?}\n"
        ),
    )
    .unwrap();
    let (text, report) = run_with_json(&profile);
    assert!(text.contains("late records"), "{text}");
    let records = report["records_in"].as_u64().unwrap();
    let late = report["queries"][0]["late_records"].as_u64().unwrap();
    assert!(late > 0, "{report}");
    assert!(
        report["queries"][1].get("late_records").is_none(),
        "{report}"
    );
    // A column of every data line of every epoch file in `dir`, summed.
    let summed = |dir: &std::path::Path, column: usize| -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "csv"))
            .flat_map(|path| {
                let text = std::fs::read_to_string(path).unwrap();
                text.lines()
                    .skip(1)
                    .map(|line| line.split(',').nth(column).unwrap().parse::<u64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .sum()
    };
    // window_start_ms, window_end_ms, key, count, sum.
    assert_eq!(summed(&windows, 3) + late, records);
    // key, count.
    assert_eq!(summed(&per_key, 1), records);

    // Expired rows would need a dead-letter file per query.
    let dead = dir.path().join("dead.toml");
    let text = std::fs::read_to_string(&profile).unwrap();
    let with_dead = text.replace(
        "watermark_delay = \"20ms\"\n",
        "watermark_delay = \"20ms\"\nlate = \"dead_letters\"\nallowed_lateness = \"10ms\"\n",
    );
    std::fs::write(&dead, with_dead).unwrap();
    assert_fails(
        &microbatch(&["run", dead.to_str().unwrap()]),
        2,
        &["queries[0].late"],
    );
}
