//! Jobs beyond one aggregation, against single-threaded references:
//! `rows` (every item a row, nothing lost or doubled) and `regroup` (a
//! second aggregation over a windowed job's rows, the same whatever the
//! workers, the interval and the batch size).

use std::collections::BTreeMap;
use std::time::Duration;

use microbatch::job::{self, count, max, sum, Job, Window, Windows};
use microbatch::sink::CollectSink;
use microbatch::source::IterSource;
use microbatch::Engine;
use proptest::prelude::*;

/// `(key, event time ms)`, in order of event time.
type Timed = (u64, u64);

fn rows_of<R, J>(
    job: J,
    records: Vec<R>,
    workers: usize,
    batch: Option<u64>,
    interval_ms: u64,
) -> Vec<J::Row>
where
    R: Send + 'static,
    J: Job<R>,
{
    let (sink, rows) = CollectSink::new();
    let engine = Engine::builder(job, sink)
        .workers(workers)
        .interval(Some(Duration::from_millis(interval_ms)))
        .max_batch_records(batch)
        .source(IterSource::new(records))
        .start()
        .unwrap();
    engine.finish().unwrap();
    rows.take().into_iter().map(|(_, row)| row).collect()
}

/// Per 100 ms window: the records, and the most any one key had.
fn reference(records: &[Timed]) -> BTreeMap<Window, (u64, u64)> {
    let mut per_key: BTreeMap<(Window, u64), u64> = BTreeMap::new();
    for &(key, t) in records {
        let start = t - t % 100;
        let window = Window {
            start_ms: start,
            end_ms: start + 100,
        };
        *per_key.entry((window, key)).or_default() += 1;
    }
    let mut out: BTreeMap<Window, (u64, u64)> = BTreeMap::new();
    for ((window, _), count) in per_key {
        let entry = out.entry(window).or_default();
        entry.0 += count;
        entry.1 = entry.1.max(count);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn rows_hand_every_item_out_once(
        values in prop::collection::vec(0u64..1000, 0..3000),
        workers in 1usize..4,
        batch in prop_oneof![Just(None), (10u64..500).prop_map(Some)],
    ) {
        let job = job::records::<u64>().filter(|v| v % 3 != 0).map(|v| v * 2).rows();
        let mut got = rows_of(job, values.clone(), workers, batch, 1);
        got.sort_unstable();
        let mut expected: Vec<u64> = values.iter().filter(|v| *v % 3 != 0).map(|v| v * 2).collect();
        expected.sort_unstable();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn a_regrouped_windowed_job_equals_the_reference(
        keys in prop::collection::vec(0u64..20, 1..3000),
        workers in 1usize..4,
        batch in prop_oneof![Just(None), (10u64..500).prop_map(Some)],
        interval_ms in 1u64..5,
    ) {
        // Record i happens at i ms: in order, so nothing is late.
        let records: Vec<Timed> = keys.iter().enumerate().map(|(i, &k)| (k, i as u64)).collect();
        let job = job::records::<Timed>()
            .event_time(|r| r.1)
            .window(Windows::tumbling(Duration::from_millis(100)))
            .key_by(|r| r.0)
            .aggregate(count())
            .regroup(
                |&(window, _, _): &(Window, u64, u64)| window,
                (sum(|r: &(Window, u64, u64)| r.2), max(|r: &(Window, u64, u64)| r.2)),
            );
        let mut got = rows_of(job, records.clone(), workers, batch, interval_ms);
        got.sort_unstable();
        let expected: Vec<(Window, (u64, u64))> = reference(&records).into_iter().collect();
        prop_assert_eq!(got, expected, "each window once, with its totals");
    }
}

#[test]
fn a_regrouped_job_that_salts_keys_is_refused() {
    let salted = job::records::<u64>()
        .key_by(|v| *v)
        .aggregate(count())
        .salted([1])
        .regroup(|&(_, n): &(u64, u64)| n, count());
    let Err(error) = Engine::builder(salted, CollectSink::new().0)
        .workers(2)
        .start()
    else {
        panic!("a regrouped job that salts keys started");
    };
    assert!(error.to_string().contains("salts keys"), "{error}");
}
