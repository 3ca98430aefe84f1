//! The Nexmark queries against a straightforward reference over the same
//! events: through the `microbatch` binary (a log from `nexmark generate`,
//! its bids as CSV for the reference, the rows read back from SQLite), and
//! through the library at several worker counts and batch sizes. Also the
//! settings a Nexmark profile is refused with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use microbatch::job::{Job, Window};
use microbatch::sink::CollectSink;
use microbatch::source::IterSource;
use microbatch::Engine;
use microbatch_cli::jobs::nexmark::queries::{self, to_euros};
use microbatch_cli::jobs::nexmark::{Bid, NexEvent, NexmarkGenerator, NexmarkSettings};
use rusqlite::Connection;

mod common;
use common::{assert_fails, assert_success, microbatch, short};

/// 200 000 events, 10 000 a second of event time: 20 s, so q5's and q7's
/// windows close during the run, not only at its end.
const EVENTS: &str = "200000";
const RATE: &str = "10000";

/// Writes the events into `dir/log` and their bids into `dir/bids.csv`;
/// returns the bids.
fn generate(dir: &Path) -> Vec<Bid> {
    let log = dir.join("log");
    let csv = dir.join("bids.csv");
    let args = [
        "nexmark",
        "generate",
        "--events",
        EVENTS,
        "--rate",
        RATE,
        "--block-records",
        "1000",
        "--to",
        log.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ];
    assert_success(&microbatch(&args));
    let text = std::fs::read_to_string(&csv).unwrap();
    text.lines()
        .skip(1)
        .map(|line| Bid::from_csv_line(line).unwrap())
        .collect()
}

/// Runs `query` over the log in `dir` into `dir/out.db`, in epochs of at
/// most 8192 events, and opens the database.
fn run_query(dir: &Path, query: &str) -> Connection {
    let database = dir.join("out.db");
    let path = format!("workload.path=\"{}\"", dir.join("log").display());
    let output = format!("output.path=\"{}\"", database.display());
    let query = format!("job.query={query}");
    let mut args = vec!["run"];
    args.extend(short(
        "profiles/nexmark.toml",
        &[
            "--set",
            "run.duration=60s",
            "--set",
            "run.warmup=0s",
            "--set",
            "engine.max_batch_records=8192",
            "--set",
            "workload.source=log",
            "--set",
            &path,
            "--set",
            &query,
            "--set",
            "output.kind=sqlite",
            "--set",
            &output,
        ],
    ));
    assert_success(&microbatch(&args));
    Connection::open(database).unwrap()
}

/// Every row of `sql`, each column an integer, sorted.
fn integer_rows(db: &Connection, sql: &str) -> Vec<Vec<i64>> {
    let mut statement = db.prepare(sql).unwrap();
    let columns = statement.column_count();
    let mut rows: Vec<Vec<i64>> = statement
        .query_map([], |row| (0..columns).map(|i| row.get(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.sort();
    rows
}

fn int(value: u64) -> i64 {
    value as i64
}

/// q5 by the book: for each hopping window holding a bid, the bids per
/// auction, and the auctions with the most.
fn hot_items(bids: &[Bid]) -> BTreeMap<Window, (u64, BTreeSet<u64>)> {
    let (size, slide) = (10_000, 2_000);
    let mut counts: HashMap<(Window, u64), u64> = HashMap::new();
    for bid in bids {
        let last = bid.date_time - bid.date_time % slide;
        let mut start = last;
        while start + size > bid.date_time {
            let window = Window {
                start_ms: start,
                end_ms: start + size,
            };
            *counts.entry((window, bid.auction)).or_default() += 1;
            if start < slide {
                break;
            }
            start -= slide;
        }
    }
    let mut hottest: BTreeMap<Window, (u64, BTreeSet<u64>)> = BTreeMap::new();
    for ((window, auction), count) in counts {
        let entry = hottest.entry(window).or_default();
        if count > entry.0 {
            *entry = (count, BTreeSet::new());
        }
        if count == entry.0 {
            entry.1.insert(auction);
        }
    }
    hottest
}

/// q7 by the book: per 10 s tumbling window, the bids at its highest
/// price.
fn highest_bids(bids: &[Bid]) -> BTreeMap<Window, Vec<Bid>> {
    let mut windows: BTreeMap<Window, Vec<Bid>> = BTreeMap::new();
    for bid in bids {
        let start = bid.date_time - bid.date_time % 10_000;
        let window = Window {
            start_ms: start,
            end_ms: start + 10_000,
        };
        windows.entry(window).or_default().push(*bid);
    }
    for bids in windows.values_mut() {
        let top = bids.iter().map(|bid| bid.price).max().unwrap();
        bids.retain(|bid| bid.price == top);
        bids.sort();
    }
    windows
}

fn bid_row(bid: &Bid) -> Vec<i64> {
    vec![
        int(bid.auction),
        int(bid.bidder),
        int(bid.price),
        int(bid.date_time),
    ]
}

#[test]
fn q0_passes_every_bid_through() {
    let dir = tempfile::tempdir().unwrap();
    let bids = generate(dir.path());
    let db = run_query(dir.path(), "q0");
    let got = integer_rows(&db, "SELECT auction, bidder, price, date_time FROM results");
    let mut expected: Vec<Vec<i64>> = bids.iter().map(bid_row).collect();
    expected.sort();
    assert_eq!(got.len(), 184_000, "46 bids in every 50 events");
    assert_eq!(got, expected);
}

#[test]
fn q1_converts_every_price() {
    let dir = tempfile::tempdir().unwrap();
    let bids = generate(dir.path());
    let db = run_query(dir.path(), "q1");
    let mut statement = db
        .prepare("SELECT auction, bidder, price, date_time FROM results")
        .unwrap();
    let mut got: Vec<(i64, i64, u64, i64)> = statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get::<_, f64>(2)?.to_bits(),
                row.get(3)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    got.sort();
    let mut expected: Vec<(i64, i64, u64, i64)> = bids
        .iter()
        .map(|bid| {
            let euro = 0.908 * bid.price as f64;
            assert_eq!(to_euros(bid).price, euro);
            (
                int(bid.auction),
                int(bid.bidder),
                euro.to_bits(),
                int(bid.date_time),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn q2_selects_the_auctions_that_are_multiples_of_123() {
    let dir = tempfile::tempdir().unwrap();
    let bids = generate(dir.path());
    let db = run_query(dir.path(), "q2");
    let got = integer_rows(&db, "SELECT auction, price FROM results");
    let mut expected: Vec<Vec<i64>> = bids
        .iter()
        .filter(|bid| bid.auction % 123 == 0)
        .map(|bid| vec![int(bid.auction), int(bid.price)])
        .collect();
    expected.sort();
    assert!(!expected.is_empty(), "the stream has bids on such auctions");
    assert_eq!(got, expected);
}

#[test]
fn q5_names_each_windows_hottest_auctions_once() {
    let dir = tempfile::tempdir().unwrap();
    let bids = generate(dir.path());
    let db = run_query(dir.path(), "q5");
    let got = integer_rows(
        &db,
        "SELECT window_start_ms, window_end_ms, auction, num FROM results",
    );
    let mut expected = Vec::new();
    for (window, (count, auctions)) in hot_items(&bids) {
        for auction in auctions {
            expected.push(vec![
                int(window.start_ms),
                int(window.end_ms),
                int(auction),
                int(count),
            ]);
        }
    }
    expected.sort();
    assert!(expected.len() >= 10, "20 s of bids: a dozen windows");
    assert_eq!(got, expected);
    let epochs = integer_rows(&db, "SELECT DISTINCT epoch FROM results");
    assert!(
        epochs.len() > 1,
        "windows close during the run, not only at its end"
    );
}

#[test]
fn q7_keeps_each_windows_highest_bids() {
    let dir = tempfile::tempdir().unwrap();
    let bids = generate(dir.path());
    let db = run_query(dir.path(), "q7");
    let got = integer_rows(
        &db,
        "SELECT window_start_ms, window_end_ms, auction, bidder, price, date_time FROM results",
    );
    let mut expected = Vec::new();
    for (window, top) in highest_bids(&bids) {
        for bid in top {
            let mut row = vec![int(window.start_ms), int(window.end_ms)];
            row.extend(bid_row(&bid));
            expected.push(row);
        }
    }
    expected.sort();
    assert!(expected.len() >= 2);
    assert_eq!(got, expected);
}

#[test]
fn q12_counts_every_bid_of_each_bidder_once_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let bids = generate(dir.path());
    let db = run_query(dir.path(), "q12");
    let got = integer_rows(
        &db,
        "SELECT bidder, SUM(bid_count) FROM results GROUP BY bidder",
    );
    let mut per_bidder: BTreeMap<u64, u64> = BTreeMap::new();
    for bid in &bids {
        *per_bidder.entry(bid.bidder).or_default() += 1;
    }
    let expected: Vec<Vec<i64>> = per_bidder
        .into_iter()
        .map(|(bidder, count)| vec![int(bidder), int(count)])
        .collect();
    assert_eq!(got, expected);
    let epochs = integer_rows(&db, "SELECT COUNT(DISTINCT epoch) FROM results");
    assert!(epochs[0][0] > 1, "several processing-time windows");
}

/// Runs `job` over `events` on `workers` workers in batches of at most
/// `batch` records and returns its rows.
fn rows_of<J: Job<NexEvent>>(
    job: J,
    events: &[NexEvent],
    workers: usize,
    batch: u64,
) -> Vec<J::Row> {
    let (sink, rows) = CollectSink::new();
    let engine = Engine::builder(job, sink)
        .workers(workers)
        .interval(Some(Duration::from_millis(1)))
        .max_batch_records(Some(batch))
        .source(IterSource::new(events.to_vec()))
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    assert_eq!(summary.late_records, 0, "Nexmark's events are in order");
    rows.take().into_iter().map(|(_, row)| row).collect()
}

#[test]
fn the_windowed_queries_equal_the_reference_for_any_workers_and_batches() {
    let settings = NexmarkSettings {
        rate: 10_000,
        events: Some(60_000),
        ..NexmarkSettings::default()
    };
    let mut events = Vec::new();
    NexmarkGenerator::new(settings)
        .for_each(|morsel| events.extend_from_slice(morsel))
        .unwrap();
    let bids: Vec<Bid> = events.iter().filter_map(|e| e.bid().copied()).collect();
    let hot: BTreeMap<Window, (u64, BTreeSet<u64>)> = hot_items(&bids);
    let highest = highest_bids(&bids);
    for (workers, batch) in [(1, 100_000), (2, 4096), (3, 1000)] {
        let got: BTreeMap<Window, (u64, BTreeSet<u64>)> =
            rows_of(queries::q5(), &events, workers, batch)
                .into_iter()
                .map(|(window, items)| (window, (items.bids, items.auctions.into_iter().collect())))
                .collect();
        assert_eq!(got, hot, "q5, {workers} workers, batches of {batch}");
        let got: BTreeMap<Window, Vec<Bid>> = rows_of(queries::q7(), &events, workers, batch)
            .into_iter()
            .map(|(window, (), bids)| (window, bids))
            .collect();
        assert_eq!(got, highest, "q7, {workers} workers, batches of {batch}");
    }
}

#[test]
fn a_nexmark_profile_is_refused_what_it_cannot_do() {
    let cases: [(&[&str], &str); 4] = [
        (&["--set", "workload.source=generator"], "workload.source"),
        (&["--set", "output.kind=csv"], "output.kind"),
        (&["--set", "job.window=tumbling"], "job.window"),
        (&["--set", "job.query=q9"], "job.query"),
    ];
    for (extra, key) in cases {
        let mut args = vec!["run"];
        args.extend(short("profiles/nexmark.toml", extra));
        assert_fails(&microbatch(&args), 2, &[key]);
    }
    let mut args = vec!["run"];
    args.extend(short(
        "profiles/default.toml",
        &["--set", "workload.source=nexmark"],
    ));
    assert_fails(
        &microbatch(&args),
        2,
        &["workload.source", "job.kind = \"nexmark\""],
    );
}
