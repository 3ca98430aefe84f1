//! Event-time windows against a single-threaded reference: while the
//! input's disorder stays within the watermark delay, the rows are the
//! same whatever the interval, the batch size (one batch, with neither),
//! the number of workers, records read in the workers or pushed by a
//! producer with work stealing on or off, and nothing is late, also when
//! jobs run together (`Job::and`); records behind the watermark are
//! dropped and counted.

use std::collections::BTreeMap;
use std::time::Duration;

use microbatch::job::{self, count, sum, Either, Firing, Job, Window, Windows};
use microbatch::sink::CollectSink;
use microbatch::source::IterSource;
use microbatch::Engine;
use proptest::prelude::*;

mod common;
use common::timed::{reference, run_job, run_strategy, timed, with_a_straggler_from_zero};
use common::timed::{Folded, Run, Timed};

/// Per `(session start, session end, key)`: count and sum.
type FoldedSessions = BTreeMap<(u64, u64, u64), (u64, u64)>;

fn windowed(records: &[Timed], size: u64, slide: u64, delay: u64, run: &Run) -> (Folded, u64) {
    let windows = if size == slide {
        Windows::tumbling(Duration::from_millis(size))
    } else {
        Windows::hopping(Duration::from_millis(size), Duration::from_millis(slide))
    };
    let job = job::records::<Timed>()
        .event_time(|r| r.2)
        .window(windows)
        .watermark_delay(Duration::from_millis(delay))
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &Timed| r.1)));
    let (summary, rows) = run_job(job, records, run);
    assert_eq!(summary.records_in_results, records.len() as u64);
    let rows = rows.into_iter().map(|(_, row)| row);
    (windows_of(rows, size), summary.late_records)
}

/// Window rows `(window, key, (count, sum))` of windows of `size`, each
/// once.
fn windows_of(rows: impl IntoIterator<Item = (Window, u64, (u64, u64))>, size: u64) -> Folded {
    let mut out = BTreeMap::new();
    for (window, key, (n, total)) in rows {
        let Window { start_ms, end_ms } = window;
        assert_eq!(end_ms, start_ms + size);
        let previous = out.insert((start_ms, key), (n, total));
        assert!(
            previous.is_none(),
            "window {start_ms} of key {key} emitted twice"
        );
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn windows_within_the_delay_equal_the_reference_for_any_run(
        draws in prop::collection::vec((0u64..5, 0u64..100, any::<u64>()), 0..1500),
        step in 1u64..20,
        disorder in 0u64..300,
        (size, slide) in prop_oneof![
            (50u64..2000).prop_map(|size| (size, size)),
            (1u64..8, 20u64..300).prop_map(|(per, slide)| (per * slide, slide)),
            // A slide that does not divide the size: panes of their gcd.
            (20u64..600, 20u64..600).prop_map(|(a, b)| (a.max(b), a.min(b))),
        ],
        extra_delay in 0u64..100,
        run in run_strategy(),
    ) {
        let records = timed(&draws, step, disorder);
        let expected = reference(&records, &[(size, slide)]);
        let (rows, late) = windowed(&records, size, slide, disorder + extra_delay, &run);
        prop_assert_eq!(late, 0, "nothing is late within the delay");
        prop_assert_eq!(rows, expected);
    }
}

#[test]
fn a_record_behind_the_watermark_is_dropped_and_counted() {
    // By the straggler, the watermark is seconds past the end of its 1 s
    // window.
    let records = with_a_straggler_from_zero();
    let run = Run::batches_of(1, 10);
    let (rows, late) = windowed(&records, 1000, 1000, 0, &run);
    assert_eq!(late, 1);
    let expected = reference(&records[..100], &[(1000, 1000)]);
    assert_eq!(rows, expected, "the late record is in no window");
}

#[test]
fn a_whole_window_aggregate_has_one_row_per_window() {
    let records: Vec<Timed> = (0..1000u64).map(|i| (i % 7, i, i)).collect();
    let job = job::records::<Timed>()
        .event_time(|r| r.2)
        .window(Windows::tumbling(Duration::from_millis(100)))
        .aggregate_with(|c| (c.count(), c.max(|r| r.1)));
    let (sink, rows) = CollectSink::new();
    let engine = Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .interval(Some(Duration::from_millis(1)))
        .source(IterSource::new(records))
        .start()
        .unwrap();
    engine.finish().unwrap();
    let mut rows: Vec<_> = rows.take().into_iter().map(|(_, row)| row).collect();
    rows.sort_by_key(|(window, _, _)| *window);
    assert_eq!(rows.len(), 10);
    for (i, (window, (), (n, max))) in rows.into_iter().enumerate() {
        let i = i as u64;
        assert_eq!(window.start_ms, i * 100);
        assert_eq!((n, max), (100, i * 100 + 99));
    }
}

#[test]
fn closed_windows_leave_the_state_so_it_stays_bounded() {
    // 100 s of event time in 100 ms windows, 5 keys: 5 000 windows in all.
    let records: Vec<Timed> = (0..100_000u64).map(|i| (i % 5, 1, i)).collect();
    let job = job::records::<Timed>()
        .event_time(|r| r.2)
        .window(Windows::tumbling(Duration::from_millis(100)))
        .key_by(|r| r.0)
        .aggregate(count());
    let (sink, rows) = CollectSink::new();
    let engine = Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .interval(None)
        .max_batch_records(Some(1000))
        .source(IterSource::new(records))
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    assert_eq!(rows.take().len(), 5_000);
    // Epochs of 1 000 records are 1 s of event time: 50 windows each. The
    // owners hold the few epochs in flight and the workers' lag (they take
    // the input in runs of 4 096 records, 205 windows), never the run.
    assert!(
        (1..=1_500).contains(&summary.open_windows_max),
        "open windows at most {}",
        summary.open_windows_max
    );
}

/// Per key, sessions of `gap` folded one record at a time over the records
/// in event-time order: `(start, end, key) -> (count, sum)`.
fn sessions_reference(records: &[Timed], gap: u64) -> FoldedSessions {
    let mut by_key: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for &(key, value, t) in records {
        by_key.entry(key).or_default().push((t, value));
    }
    let mut out = BTreeMap::new();
    for (key, mut events) in by_key {
        events.sort_unstable();
        let mut current: Option<(u64, u64, u64, u64)> = None;
        for (t, value) in events {
            current = match current {
                Some((start, end, n, total)) if t < end => {
                    Some((start, end.max(t + gap), n + 1, total + value))
                }
                done => {
                    if let Some((start, end, n, total)) = done {
                        out.insert((start, end, key), (n, total));
                    }
                    Some((t, t + gap, 1, value))
                }
            };
        }
        if let Some((start, end, n, total)) = current {
            out.insert((start, end, key), (n, total));
        }
    }
    out
}

fn sessions(records: &[Timed], gap: u64, delay: u64, run: &Run) -> (FoldedSessions, u64, usize) {
    let job = job::records::<Timed>()
        .event_time(|r| r.2)
        .session(Duration::from_millis(gap))
        .watermark_delay(Duration::from_millis(delay))
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &Timed| r.1)));
    let (summary, rows) = run_job(job, records, run);
    let rows = rows.into_iter().map(|(_, row)| row);
    (
        sessions_of(rows),
        summary.late_records,
        summary.open_windows_max,
    )
}

/// Session rows `(window, key, (count, sum))`, each once.
fn sessions_of(rows: impl IntoIterator<Item = (Window, u64, (u64, u64))>) -> FoldedSessions {
    let mut out = BTreeMap::new();
    for (window, key, (n, total)) in rows {
        let previous = out.insert((window.start_ms, window.end_ms, key), (n, total));
        assert!(
            previous.is_none(),
            "session {window:?} of key {key} emitted twice"
        );
    }
    out
}

/// Per key: count and sum over the whole input.
fn totals_reference(records: &[Timed]) -> BTreeMap<u64, (u64, u64)> {
    let mut out: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for &(key, value, _) in records {
        let total = out.entry(key).or_default();
        total.0 += 1;
        total.1 += value;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Three jobs over one stream (`and`, nested): a processing-time count
    /// per key and epoch, tumbling windows and sessions. Each job's rows
    /// equal its own reference, whatever the run.
    #[test]
    fn jobs_run_together_each_equal_their_reference_for_any_run(
        draws in prop::collection::vec((0u64..4, 0u64..100, any::<u64>()), 0..1200),
        step in 1u64..20,
        disorder in 0u64..200,
        size in 50u64..1000,
        gap in 1u64..300,
        run in run_strategy(),
    ) {
        let records = timed(&draws, step, disorder);
        let delay = Duration::from_millis(disorder);
        let per_epoch = job::records::<Timed>()
            .key_by(|r| r.0)
            .aggregate((count(), sum(|r: &Timed| r.1)));
        let windows = job::records::<Timed>()
            .event_time(|r| r.2)
            .window(Windows::tumbling(Duration::from_millis(size)))
            .watermark_delay(delay)
            .key_by(|r| r.0)
            .aggregate((count(), sum(|r: &Timed| r.1)));
        let sessions = job::records::<Timed>()
            .event_time(|r| r.2)
            .session(Duration::from_millis(gap))
            .watermark_delay(delay)
            .key_by(|r| r.0)
            .aggregate((count(), sum(|r: &Timed| r.1)));
        let (summary, rows) = run_job(per_epoch.and(windows).and(sessions), &records, &run);
        prop_assert_eq!(summary.late_records, 0);
        let (mut totals, mut fired, mut closed) = (BTreeMap::new(), Vec::new(), Vec::new());
        for (_, row) in rows {
            match row {
                Either::First(Either::First((key, (n, total)))) => {
                    let sums: &mut (u64, u64) = totals.entry(key).or_default();
                    sums.0 += n;
                    sums.1 += total;
                }
                Either::First(Either::Second(window)) => fired.push(window),
                Either::Second(session) => closed.push(session),
            }
        }
        prop_assert_eq!(summary.windows_emitted, (fired.len() + closed.len()) as u64);
        prop_assert_eq!(totals, totals_reference(&records));
        prop_assert_eq!(windows_of(fired, size), reference(&records, &[(size, size)]));
        prop_assert_eq!(sessions_of(closed), sessions_reference(&records, gap));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn sessions_within_the_delay_equal_the_reference_for_any_run(
        draws in prop::collection::vec((0u64..4, 0u64..100, any::<u64>()), 0..1200),
        step in 1u64..30,
        disorder in 0u64..200,
        gap in 1u64..400,
        run in run_strategy(),
    ) {
        let records = timed(&draws, step, disorder);
        let expected = sessions_reference(&records, gap);
        let (rows, late, _) = sessions(&records, gap, disorder, &run);
        prop_assert_eq!(late, 0);
        prop_assert_eq!(rows, expected);
    }
}

#[test]
fn sessions_close_as_the_watermark_passes_them() {
    // Bursts of 10 records 1 ms apart every second, per key: sessions of
    // 10 ms with a 100 ms gap; 100 s of them.
    let records: Vec<Timed> = (0..100_000u64)
        .map(|i| (i % 5, 1, (i / 50) * 1000 + (i % 50) / 5))
        .collect();
    let run = Run::batches_of(2, 1000);
    let (rows, late, open_max) = sessions(&records, 100, 0, &run);
    assert_eq!(late, 0);
    assert_eq!(rows.len(), 2000 * 5);
    assert!(
        rows.values().all(|&(n, _)| n == 10),
        "ten records a session"
    );
    // The workers take the input in runs of 4 096 records (82 bursts), so
    // the least newest event time over them trails by up to a couple of
    // runs, and the epochs in flight: well under the run's 10 000.
    assert!(open_max <= 2_500, "open sessions at most {open_max}");
}

/// Per `(window start, key)`: the rows a marked job emitted, in order
/// (epoch, then firing), as `(firing, count, sum)`.
type Fired = BTreeMap<(u64, u64), Vec<(Firing, u64, u64)>>;

/// Each window's last row: what it ended with.
fn last_rows(fired: &Fired) -> Folded {
    fired
        .iter()
        .map(|(&window, rows)| {
            let &(_, n, total) = rows.last().unwrap();
            (window, (n, total))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn marked(
    records: &[Timed],
    size: u64,
    delay: u64,
    lateness: u64,
    updates: bool,
    run: &Run,
) -> (Fired, u64) {
    let windowed = job::records::<Timed>()
        .event_time(|r| r.2)
        .window(Windows::tumbling(Duration::from_millis(size)))
        .watermark_delay(Duration::from_millis(delay))
        .allowed_lateness(Duration::from_millis(lateness));
    let windowed = if updates {
        windowed.updates()
    } else {
        windowed
    };
    let job = windowed
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &Timed| r.1)));
    let (summary, rows) = run_job(job, records, run);
    let mut rows: Vec<_> = rows
        .into_iter()
        .map(|(epoch, (window, key, (n, total), firing))| {
            (window.start_ms, key, epoch, firing, n, total)
        })
        .collect();
    rows.sort();
    let mut out = Fired::new();
    for (start, key, _, firing, n, total) in rows {
        out.entry((start, key))
            .or_default()
            .push((firing, n, total));
    }
    (out, summary.late_records)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn within_the_allowed_lateness_late_records_update_their_window(
        draws in prop::collection::vec((0u64..5, 0u64..100, any::<u64>()), 0..1500),
        step in 1u64..20,
        disorder in 0u64..300,
        size in 50u64..1000,
        delay_share in 0u64..=100,
        updates in any::<bool>(),
        run in run_strategy(),
    ) {
        // The delay covers part of the disorder, the lateness the rest.
        let delay = disorder * delay_share / 100;
        let lateness = disorder - delay + 1;
        let records = timed(&draws, step, disorder);
        let expected = reference(&records, &[(size, size)]);
        let (fired, late) = marked(&records, size, delay, lateness, updates, &run);
        prop_assert_eq!(late, 0, "nothing is later than the delay and the lateness");
        prop_assert_eq!(last_rows(&fired), expected, "each window's last row has all its records");
        for (window, rows) in &fired {
            // On time once, or never: a window whose first record came
            // after the watermark passed its end fires late only.
            let on_time = rows.iter().filter(|r| r.0 == Firing::OnTime).count();
            prop_assert!(on_time <= 1, "window {:?} fires on time at most once", window);
            prop_assert!(
                on_time == 1 || rows.iter().all(|r| r.0 == Firing::Late),
                "window {:?} without an on-time row fires only late", window
            );
            let order: Vec<Firing> = rows.iter().map(|r| r.0).collect();
            let mut sorted = order.clone();
            sorted.sort();
            prop_assert_eq!(&order, &sorted, "early, on time, then late");
            prop_assert!(updates || !order.contains(&Firing::Early));
        }
    }
}

#[test]
fn records_later_than_the_allowed_lateness_are_dropped_and_counted() {
    // 1 s windows, a 500 ms lateness, the watermark seconds past the
    // straggler's window.
    let records = with_a_straggler_from_zero();
    let run = Run::batches_of(1, 10);
    let (fired, late) = marked(&records, 1000, 0, 500, false, &run);
    assert_eq!(late, 1);
    let expected = reference(&records[..100], &[(1000, 1000)]);
    assert_eq!(
        last_rows(&fired),
        expected,
        "the late record is in no window"
    );
}

#[test]
fn a_window_fires_on_time_then_late_and_early_in_update_mode() {
    // One key, a record every 100 ms; the one of 900 ms comes after the
    // one of 1 200 ms, when [0, 1 s) has fired on time: within the 500 ms
    // lateness, it fires again, late, with all eleven records.
    let mut records: Vec<Timed> = (0..30u64)
        .filter(|&i| i != 9)
        .map(|i| (0, 1, i * 100))
        .collect();
    records.insert(12, (0, 1, 900));
    let run = Run::batches_of(1, 1);
    let (fired, late) = marked(&records, 1000, 0, 500, false, &run);
    assert_eq!(late, 0);
    assert_eq!(
        fired[&(0, 0)],
        [(Firing::OnTime, 9, 9), (Firing::Late, 10, 10)],
        "on time without the straggler, then late with it"
    );
    assert_eq!(fired[&(1000, 0)], [(Firing::OnTime, 10, 10)]);
    // Update mode: every epoch that changes a window fires it early.
    let (fired, _) = marked(&records, 1000, 0, 500, true, &run);
    let firings: Vec<Firing> = fired[&(1000, 0)].iter().map(|row| row.0).collect();
    assert_eq!(
        firings.len(),
        11,
        "ten early rows, one on time: {firings:?}"
    );
    assert_eq!(fired[&(1000, 0)][9], (Firing::Early, 10, 10));
    assert_eq!(fired[&(1000, 0)][10], (Firing::OnTime, 10, 10));
}
