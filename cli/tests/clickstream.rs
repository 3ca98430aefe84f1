//! The click-stream job on a fixed seeded input, cut into epochs by log
//! position under a checkpoint, against a plain single-threaded reference:
//! every row of `user_stats`, `page_stats` and `user_totals`.

use std::collections::BTreeMap;
use std::path::Path;

use microbatch::checkpoint::Checkpoint;
use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
use microbatch::Engine;
use microbatch_cli::jobs::clickstream::{
    clickstream_job, ClickConfig, ClickGenerator, ClickstreamSink,
};

const EVENTS: u64 = 300_000;
const BLOCK: u64 = 4096;
const PER_EPOCH: u64 = 50_000;

type UserStats = BTreeMap<(i64, i64), (i64, i64, f64)>;
type PageStats = BTreeMap<(i64, i64), i64>;
type UserTotals = BTreeMap<i64, (i64, i64)>;

fn tables(database: &Path) -> (UserStats, PageStats, UserTotals) {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut users = UserStats::new();
    let mut statement = connection
        .prepare("SELECT epoch, user, clicks, dwell_ms_sum, dwell_ms_mean FROM user_stats")
        .unwrap();
    for row in statement
        .query_map([], |r| {
            Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, r.get(4)?)))
        })
        .unwrap()
    {
        let (key, value) = row.unwrap();
        assert!(
            users.insert(key, value).is_none(),
            "one row per epoch and user"
        );
    }
    let mut pages = PageStats::new();
    let mut statement = connection
        .prepare("SELECT epoch, page, views FROM page_stats")
        .unwrap();
    for row in statement
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
    {
        let (key, value) = row.unwrap();
        assert!(
            pages.insert(key, value).is_none(),
            "one row per epoch and page"
        );
    }
    let mut totals = UserTotals::new();
    let mut statement = connection
        .prepare("SELECT user, clicks, dwell_ms_sum FROM user_totals")
        .unwrap();
    for row in statement
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
    {
        let (key, value) = row.unwrap();
        totals.insert(key, value);
    }
    (users, pages, totals)
}

#[test]
fn every_table_equals_a_single_threaded_reference() {
    let config = ClickConfig {
        users: 20_000,
        pages: 500,
        events: Some(EVENTS),
        ..ClickConfig::default()
    };
    let events = ClickGenerator::new(config).events().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("clicks.log");
    let mut writer = LogWriter::create(
        &log,
        LogOptions {
            block_records: BLOCK as usize,
            ..LogOptions::default()
        },
    )
    .unwrap();
    for click in &events {
        writer.append(*click).unwrap();
    }
    writer.finish().unwrap();

    let database = dir.path().join("clicks.db");
    let engine = Engine::builder(clickstream_job(), ClickstreamSink::open(&database).unwrap())
        .workers(2)
        .pin(false)
        .interval(None)
        .source(LogSource::new(LogReader::open(&log).unwrap(), None))
        .checkpoint(Checkpoint::open(dir.path().join("checkpoint"), PER_EPOCH).unwrap())
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    assert_eq!(summary.records_in_results, EVENTS);

    // The reference: event i lies in block i / BLOCK, whose first record
    // puts it in epoch (first / PER_EPOCH).
    let mut users: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    let mut pages = PageStats::new();
    let mut totals = UserTotals::new();
    for (i, click) in events.iter().enumerate() {
        let epoch = ((i as u64 / BLOCK) * BLOCK / PER_EPOCH) as i64;
        let dwell = i64::from(click.dwell_ms);
        let user = users.entry((epoch, click.user as i64)).or_default();
        user.0 += 1;
        user.1 += dwell;
        *pages.entry((epoch, click.page as i64)).or_default() += 1;
        let total = totals.entry(click.user as i64).or_default();
        total.0 += 1;
        total.1 += dwell;
    }
    let (got_users, got_pages, got_totals) = tables(&database);
    assert_eq!(got_users.len(), users.len());
    for (key, (clicks, dwell)) in &users {
        let (got_clicks, got_dwell, got_mean) = got_users[key];
        assert_eq!(
            (got_clicks, got_dwell),
            (*clicks, *dwell),
            "user row {key:?}"
        );
        assert!((got_mean - *dwell as f64 / *clicks as f64).abs() < 1e-9);
    }
    assert_eq!(got_pages, pages);
    assert_eq!(got_totals, totals);
    let epochs: std::collections::BTreeSet<i64> = got_users.keys().map(|k| k.0).collect();
    assert_eq!(epochs.len() as u64, EVENTS.div_ceil(PER_EPOCH));
}
