//! Salted keys: their records are folded by every worker and merged once
//! per epoch; the results equal an unsalted reference, with one row per
//! key and epoch.

use std::collections::{BTreeMap, BTreeSet};

use microbatch::job::{self, Aggregator};
use microbatch::sink::CollectSink;
use microbatch::source::IterSource;
use microbatch::Engine;
use proptest::prelude::*;

type Record = (u64, u64);

/// Every value of a key, sorted: a state that grows with the input.
#[derive(Clone)]
struct Values;

impl Aggregator<Record> for Values {
    type State = Vec<u64>;
    type Output = Vec<u64>;

    fn init(&self) -> Vec<u64> {
        Vec::new()
    }

    fn update(&self, state: &mut Vec<u64>, record: &Record) {
        state.push(record.1);
    }

    fn merge(&self, into: &mut Vec<u64>, from: Vec<u64>) {
        into.extend(from);
    }

    fn finish(&self, mut state: Vec<u64>) -> Vec<u64> {
        state.sort_unstable();
        state
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn salted_keys_give_the_unsalted_results_once_per_epoch(
        keys in proptest::collection::vec(0u64..12, 1..3000),
        hot in proptest::collection::btree_set(0u64..12, 0..4),
        workers in 1usize..=3,
        max_batch in proptest::option::of(50u64..1000),
    ) {
        let records: Vec<Record> = keys.iter().enumerate().map(|(i, &k)| (k, i as u64)).collect();
        let per_key = job::records::<Record>()
            .key_by(|r| r.0)
            .aggregate(Values)
            .salted(hot.iter().copied());
        let (sink, rows) = CollectSink::new();
        let engine = Engine::builder(per_key, sink)
            .workers(workers)
            .pin(false)
            .interval(None)
            .max_batch_records(max_batch)
            .source(IterSource::new(records.clone()))
            .start()
            .unwrap();
        let summary = engine.finish().unwrap();
        prop_assert_eq!(summary.records_in_results, records.len() as u64);

        let mut seen = BTreeSet::new();
        let mut values: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (epoch, (key, epoch_values)) in rows.take() {
            prop_assert!(seen.insert((epoch, key)), "key {} twice in epoch {}", key, epoch);
            prop_assert!(epoch_values.windows(2).all(|w| w[0] <= w[1]), "finished once");
            values.entry(key).or_default().extend(epoch_values);
        }
        let mut expected: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for &(key, value) in &records {
            expected.entry(key).or_default().push(value);
        }
        for list in values.values_mut() {
            list.sort_unstable();
        }
        prop_assert_eq!(values, expected);
    }
}
