//! Late records as a side output (`WindowedStream::expired_rows`): records
//! for a window already past its allowed lateness are not dropped but
//! emitted apart, as `Firing::Expired` rows, so every record is in
//! exactly one row, on time or expired, whatever the disorder.

use std::collections::BTreeMap;
use std::time::Duration;

use microbatch::job::{self, count, sum, Firing, Windows};
use proptest::prelude::*;

mod common;
use common::timed::{reference, run_job, run_strategy, timed, with_a_straggler_from_zero};
use common::timed::{Folded, Run, Timed};

/// Tumbling windows of `size` with `delay` and expired rows: the windows'
/// rows and the expired rows, each per `(start, key)`, the late count and
/// the windows emitted.
fn with_expired_rows(
    records: &[Timed],
    size: u64,
    delay: u64,
    run: &Run,
) -> (Folded, Folded, u64, u64) {
    let job = job::records::<Timed>()
        .event_time(|r| r.2)
        .window(Windows::tumbling(Duration::from_millis(size)))
        .watermark_delay(Duration::from_millis(delay))
        .expired_rows()
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &Timed| r.1)));
    let (summary, rows) = run_job(job, records, run);
    let (mut windows, mut expired) = (BTreeMap::new(), BTreeMap::new());
    for (_, (window, key, (n, total), firing)) in rows {
        assert_eq!(window.end_ms, window.start_ms + size);
        let into = match firing {
            Firing::OnTime => &mut windows,
            Firing::Expired => &mut expired,
            other => panic!("a {other:?} row without a lateness or update mode"),
        };
        // A window fires once; its expired records may come in several
        // epochs.
        let sums: &mut (u64, u64) = into.entry((window.start_ms, key)).or_default();
        assert!(
            firing == Firing::Expired || sums.0 == 0,
            "window fired twice"
        );
        sums.0 += n;
        sums.1 += total;
    }
    (
        windows,
        expired,
        summary.late_records,
        summary.windows_emitted,
    )
}

#[test]
fn a_record_behind_the_watermark_becomes_an_expired_row() {
    let records = with_a_straggler_from_zero();
    let run = Run::batches_of(1, 10);
    let (windows, expired, late, emitted) = with_expired_rows(&records, 1000, 0, &run);
    assert_eq!(late, 1);
    assert_eq!(windows, reference(&records[..100], &[(1000, 1000)]));
    assert_eq!(expired, BTreeMap::from([((0, 0), (1, 1000))]));
    assert_eq!(
        emitted,
        windows.len() as u64,
        "expired rows are not windows"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// With a delay shorter than the disorder, some records are late: each
    /// is in its window's expired rows instead, so the on-time and expired
    /// rows of each window add up to the reference's.
    #[test]
    fn every_record_is_in_one_row_on_time_or_expired(
        draws in prop::collection::vec((0u64..5, 0u64..100, any::<u64>()), 0..1500),
        step in 1u64..20,
        disorder in 1u64..400,
        delay_share in 0u64..100,
        size in 20u64..500,
        run in run_strategy(),
    ) {
        let records = timed(&draws, step, disorder);
        let delay = disorder * delay_share / 100;
        let (windows, expired, late, _) = with_expired_rows(&records, size, delay, &run);
        prop_assert_eq!(late, expired.values().map(|e| e.0).sum::<u64>());
        let mut both = windows;
        for (window, (n, total)) in expired {
            let sums = both.entry(window).or_default();
            sums.0 += n;
            sums.1 += total;
        }
        prop_assert_eq!(both, reference(&records, &[(size, size)]));
    }
}
