//! The live page in a real browser: headless Chromium loads the page of a
//! short run while it runs and finds its charts drawing points, then loads
//! the page saved after the run (`--ui-save`) and finds on it the numbers
//! of the run's `--json` summary. Skipped, saying so, only where Chromium
//! is not installed (`.ci/run` installs it).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::workspace;

/// The Chromium binary, if one is installed.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|name| {
            let found = Command::new("which").arg(name).output().ok()?;
            let path = String::from_utf8(found.stdout).ok()?;
            let path = path.trim();
            (found.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
}

/// The page at `url` as the browser has it after running its script for a
/// while (bounded: a browser that hangs fails the test).
fn dump_dom(browser: &Path, url: &str) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=1500",
            "--dump-dom",
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the browser starts");
    // Read as it writes: a page is larger than a pipe's buffer.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the browser did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// The values of `attribute="…"` in `html`, in order.
fn attributes<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let marker = format!("{attribute}=\"");
    html.match_indices(&marker)
        .map(|(at, _)| {
            let start = at + marker.len();
            let end = start + html[start..].find('"').unwrap();
            &html[start..end]
        })
        .collect()
}

/// The summary table's `(key, value)` cells.
fn summary_cells(html: &str) -> Vec<(String, f64)> {
    let keys = attributes(html, "data-summary");
    let values = attributes(html, "data-value");
    keys.iter()
        .zip(&values)
        .filter(|(key, _)| !key.starts_with('$'))
        .map(|(key, value)| (key.to_string(), value.parse().unwrap()))
        .collect()
}

#[test]
fn the_live_page_draws_the_run_and_its_saved_copy_shows_the_summary() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: Chromium is not installed here (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let saved = dir.path().join("page.html");
    let json = dir.path().join("summary.json");
    let mut run = Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .args(["run", "profiles/default.toml"])
        .args(["--set", "run.warmup=500ms", "--set", "run.duration=4s"])
        .args(["--set", "engine.pin=false"])
        .args(["--ui", &addr, "--ui-save", saved.to_str().unwrap()])
        .args(["--json", json.to_str().unwrap()])
        .current_dir(workspace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The page is served as soon as the run starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the page is not served");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));

    // While the run lasts: the charts receive points.
    let live = dump_dom(&browser, &format!("http://{addr}/"));
    let points: Vec<usize> = attributes(&live, "data-points")
        .into_iter()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(points.len(), 5, "five charts: {points:?}");
    assert!(
        points[..3].iter().all(|&n| n > 0),
        "the run's three charts draw points: {points:?}"
    );
    assert!(live.contains("microbatch run default.toml"), "the title");
    assert!(live.contains("[engine]"), "the profile in force");

    assert!(run.wait().unwrap().success(), "the run succeeds");

    // The saved page, with no server: the summary's numbers are the run's.
    let page = dump_dom(&browser, &format!("file://{}", saved.display()));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let cells = summary_cells(&page);
    assert_eq!(cells.len(), 7, "{cells:?}");
    for (key, value) in cells {
        let mut expected = &summary;
        for part in key.split('.') {
            expected = &expected[part];
        }
        let expected = expected
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in the summary"));
        assert!(
            (value - expected).abs() <= expected.abs() * 1e-12,
            "{key}: page {value}, summary {expected}"
        );
    }
    // Its charts are drawn from the saved events too.
    let points: Vec<usize> = attributes(&page, "data-points")
        .into_iter()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(points[..3].iter().all(|&n| n > 0), "{points:?}");
}

/// The saved page of a short sweep of `profile` with `args`, and its
/// charts' point counts; `None` without Chromium.
fn swept_page(profile: &str, args: &[&str]) -> Option<(String, Vec<usize>)> {
    let Some(browser) = chromium() else {
        eprintln!("skipped: Chromium is not installed here (apt-get install chromium)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("sweep.html");
    let status = Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .args(["sweep", profile])
        .args(args)
        .args(["--set", "run.warmup=200ms", "--set", "run.duration=800ms"])
        .args(["--set", "engine.pin=false"])
        .args(["--out", dir.path().join("out").to_str().unwrap()])
        .args(["--ui-save", saved.to_str().unwrap()])
        .current_dir(workspace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let page = dump_dom(&browser, &format!("file://{}", saved.display()));
    let points = attributes(&page, "data-points")
        .into_iter()
        .map(|n| n.parse().unwrap())
        .collect();
    Some((page, points))
}

#[test]
fn a_sweeps_page_grows_its_curves_run_by_run() {
    let Some((page, points)) = swept_page(
        "profiles/sweep-interval.toml",
        &["--interval", "10ms,100ms"],
    ) else {
        return;
    };
    // Throughput and latency by interval: one point per interval each.
    assert_eq!(points[3..], [2, 2], "{points:?}");
    assert_eq!(summary_cells(&page), [("runs".to_string(), 4.0)]);
}

#[test]
fn an_adaptive_sweep_point_joins_the_latency_chart_at_the_interval_it_chose() {
    let Some((page, points)) = swept_page(
        "profiles/auto-interval.toml",
        &["--interval", "2ms,20ms", "--rate", "1000000"],
    ) else {
        return;
    };
    // Throughput: the two fixed intervals; latency: those and the adaptive run.
    assert_eq!(points[3..], [2, 3], "{points:?}");
    assert!(
        page.contains("<td>auto "),
        "the runs table names the adaptive run"
    );
}
