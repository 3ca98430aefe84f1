//! The adaptive interval (`Config::target_latency`) in a running engine:
//! every epoch reports the interval it opened with and what its latency
//! says of the target, the intervals stay in range, nothing is lost, and a
//! sink slower than the target makes it unreachable, held at the largest
//! interval. Latency figures themselves are measured by the CLI, not here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use microbatch::job::{self, count};
use microbatch::progress::{EpochProgress, TargetStatus};
use microbatch::sink::{CollectSink, Sink, SinkError};
use microbatch::source::{Event, Generator, GeneratorConfig};
use microbatch::{Engine, EngineError, MIN_AUTO_INTERVAL};

const TARGET: Duration = Duration::from_millis(20);

/// A sink that collects and takes `delay` to commit each epoch.
struct SlowSink {
    inner: CollectSink<(u64, u64)>,
    delay: Duration,
}

impl Sink<(u64, u64)> for SlowSink {
    fn write(
        &self,
        epoch: u64,
        partition: usize,
        rows: &mut Vec<(u64, u64)>,
    ) -> Result<(), SinkError> {
        self.inner.write(epoch, partition, rows)
    }

    fn epoch_complete(&self, _: u64, _: &EpochProgress) -> Result<(), SinkError> {
        std::thread::sleep(self.delay);
        Ok(())
    }
}

/// Runs `records` generated records over 64 keys at `rate` a second, a
/// count per key, under a 20 ms target, through a sink taking `delay` per
/// epoch; returns every epoch's progress and the counts per key.
fn run(records: u64, rate: u64, delay: Duration) -> (Vec<EpochProgress>, HashMap<u64, u64>) {
    let generator = Generator::new(GeneratorConfig {
        keys: 64,
        rate: Some(rate),
        records: Some(records),
        ..GeneratorConfig::default()
    });
    let job = job::records::<Event>().key_by(|e| e.key).aggregate(count());
    let (inner, collected) = CollectSink::new();
    let epochs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&epochs);
    let engine = Engine::builder(job, SlowSink { inner, delay })
        .workers(2)
        .pin(false)
        .target_latency(Some(TARGET))
        .source(generator)
        .on_progress(move |p| seen.lock().unwrap().push(p.clone()))
        .start()
        .unwrap();
    assert!(engine.wait_for_sources(Duration::from_secs(600)));
    let summary = match engine.shutdown() {
        Ok(summary) => summary,
        Err(error) => panic!("shutdown failed: {}", error.error),
    };
    assert_eq!(summary.records_in_results, records);
    let mut counts = HashMap::new();
    for (_, (key, n)) in collected.take() {
        *counts.entry(key).or_insert(0) += n;
    }
    let epochs = std::mem::take(&mut *epochs.lock().unwrap());
    (epochs, counts)
}

#[test]
fn every_epoch_opens_with_an_interval_in_range_and_nothing_is_lost() {
    let (epochs, counts) = run(8_000, 40_000, Duration::ZERO);
    assert!(epochs.len() >= 5, "{} epochs", epochs.len());
    for epoch in &epochs {
        let interval = epoch.interval.expect("a timed epoch has an interval");
        assert!(
            (MIN_AUTO_INTERVAL..=TARGET).contains(&interval),
            "epoch {} opened with {interval:?}",
            epoch.epoch
        );
        assert!(
            epoch.target.is_some(),
            "epoch {} has no status",
            epoch.epoch
        );
    }
    assert_eq!(counts.values().sum::<u64>(), 8_000);
    let records: u64 = epochs.iter().map(|e| e.records).sum();
    assert_eq!(records, 8_000);
}

#[test]
fn a_sink_slower_than_the_target_makes_it_unreachable_at_the_largest_interval() {
    // Every commit takes 30 ms, more than the whole 20 ms target: no
    // interval has room, so after a few epochs the target is called
    // unreachable and epochs open with the largest interval, the target.
    let (epochs, counts) = run(12_000, 20_000, Duration::from_millis(30));
    assert_eq!(counts.values().sum::<u64>(), 12_000);
    let first = epochs
        .iter()
        .position(|e| e.target == Some(TargetStatus::Unreachable))
        .unwrap_or_else(|| panic!("never unreachable: {:?}", statuses(&epochs)));
    let after = &epochs[first..];
    assert!(
        after
            .iter()
            .all(|e| e.target == Some(TargetStatus::Unreachable)),
        "left unreachable: {:?}",
        statuses(&epochs)
    );
    // Epochs opened after the decision (the window holds 4 opened before).
    let late = after.iter().skip(5);
    assert!(late.clone().count() > 0, "{:?}", statuses(&epochs));
    for epoch in late {
        assert_eq!(epoch.interval, Some(TARGET), "epoch {}", epoch.epoch);
    }
}

fn statuses(epochs: &[EpochProgress]) -> Vec<(Option<Duration>, Option<TargetStatus>)> {
    epochs.iter().map(|e| (e.interval, e.target)).collect()
}

#[test]
fn a_target_without_a_time_trigger_or_under_two_ms_is_refused() {
    let start = |interval: Option<Duration>, target: Duration| {
        let job = job::records::<Event>().key_by(|e| e.key).aggregate(count());
        Engine::builder(job, CollectSink::new().0)
            .workers(1)
            .pin(false)
            .interval(interval)
            .target_latency(Some(target))
            .start()
            .map(|_| ())
    };
    for (interval, target) in [(None, TARGET), (Some(TARGET), Duration::from_millis(1))] {
        match start(interval, target) {
            Err(EngineError::Config(error)) => assert_eq!(error.setting, "target_latency"),
            other => panic!("{interval:?}, {target:?}: {:?}", other.err()),
        }
    }
}
