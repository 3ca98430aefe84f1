//! The click-stream job on a fixed seeded input, cut into epochs by log
//! position under a checkpoint, against a plain single-threaded reference:
//! every row of `user_stats`, `page_stats`, `user_totals` and
//! `user_sessions`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use microbatch::checkpoint::Checkpoint;
use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
use microbatch::Engine;
use microbatch_cli::jobs::clickstream::{
    clickstream_job, ClickConfig, ClickGenerator, ClickstreamSink,
};

const EVENTS: u64 = 300_000;
const BLOCK: u64 = 4096;
const PER_EPOCH: u64 = 50_000;
/// The session gap: 300 000 clicks at 100 000/s of event time from 20 000
/// users are about 200 ms apart per user, so some sessions merge.
const GAP_MS: u64 = 200;

type UserStats = BTreeMap<(i64, i64), (i64, i64, f64)>;
type PageStats = BTreeMap<(i64, i64), i64>;
type UserTotals = BTreeMap<i64, (i64, i64)>;
/// `(user, session start) -> (session end, clicks, dwell sum, epoch)`.
type UserSessions = BTreeMap<(i64, i64), (i64, i64, i64, i64)>;

fn user_sessions(database: &Path) -> UserSessions {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT user, session_start_ms, session_end_ms, clicks, dwell_ms_sum, epoch
             FROM user_sessions",
        )
        .unwrap();
    let rows = statement
        .query_map([], |r| {
            Ok((
                (r.get(0)?, r.get(1)?),
                (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

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
    let job = clickstream_job(Duration::from_millis(GAP_MS), Duration::ZERO);
    let engine = Engine::builder(job, ClickstreamSink::open(&database).unwrap())
        .workers(2)
        .pin(false)
        .interval(None)
        .source(LogSource::new(LogReader::open(&log).unwrap(), None))
        .checkpoint(Checkpoint::open(dir.path().join("checkpoint"), PER_EPOCH).unwrap())
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    assert_eq!(summary.records_in_results, EVENTS);
    assert_eq!(
        summary.late_records, 0,
        "the clicks come in event-time order"
    );

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

    // Sessions: per user, clicks in event-time order, a new session after
    // a gap of GAP_MS or more; each in an epoch no earlier than its last
    // click's.
    let mut by_user: BTreeMap<i64, Vec<(i64, i64, i64)>> = BTreeMap::new();
    for (i, click) in events.iter().enumerate() {
        let epoch = ((i as u64 / BLOCK) * BLOCK / PER_EPOCH) as i64;
        let clicks = by_user.entry(click.user as i64).or_default();
        clicks.push((click.event_time_ms as i64, i64::from(click.dwell_ms), epoch));
    }
    let users = by_user.len();
    let gap = GAP_MS as i64;
    let mut sessions: BTreeMap<(i64, i64), (i64, i64, i64, i64)> = BTreeMap::new();
    for (user, mut clicks) in by_user {
        clicks.sort_unstable();
        let mut open: Option<(i64, (i64, i64, i64, i64))> = None;
        for (t, dwell, epoch) in clicks {
            open = match open {
                Some((start, (end, n, sum, last))) if t < end => {
                    Some((start, (t + gap, n + 1, sum + dwell, last.max(epoch))))
                }
                done => {
                    if let Some((start, session)) = done {
                        sessions.insert((user, start), session);
                    }
                    Some((t, (t + gap, 1, dwell, epoch)))
                }
            };
        }
        if let Some((start, session)) = open {
            sessions.insert((user, start), session);
        }
    }
    let got = user_sessions(&database);
    assert_eq!(got.len(), sessions.len(), "one row per session");
    assert!(got.len() > users, "some users have several sessions");
    for (key, (end, clicks, dwell, last_epoch)) in &sessions {
        let (got_end, got_clicks, got_dwell, epoch) = got[key];
        assert_eq!(
            (got_end, got_clicks, got_dwell),
            (*end, *clicks, *dwell),
            "session {key:?}"
        );
        assert!(
            epoch >= *last_epoch,
            "session {key:?} emitted before its last click's epoch"
        );
    }
}
