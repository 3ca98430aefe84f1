//! Timed records `(key, value, event time)` for the event-time tests: a
//! single-threaded reference of windows, records drawn with bounded
//! disorder, and the runs (workers, interval, batch size, producer or
//! source) to check them under.

use std::collections::BTreeMap;
use std::time::Duration;

use microbatch::job::Job;
use microbatch::sink::CollectSink;
use microbatch::source::IterSource;
use microbatch::{Config, Engine, Summary};
use proptest::prelude::*;

/// `(key, value, event time ms)`.
pub type Timed = (u64, u64, u64);

/// Per `(window start, key)`: count and sum.
pub type Folded = BTreeMap<(u64, u64), (u64, u64)>;

/// Per `(window start, key)`: count and sum, folded one record at a time.
pub fn reference(records: &[Timed], windows: &[(u64, u64)]) -> Folded {
    let (size, slide) = windows[0];
    let mut out = BTreeMap::new();
    for &(key, value, t) in records {
        let mut start = t - t % slide;
        loop {
            if start + size > t {
                let entry: &mut (u64, u64) = out.entry((start, key)).or_default();
                entry.0 += 1;
                entry.1 += value;
            }
            if start < slide {
                break;
            }
            start -= slide;
            if start + size <= t {
                break;
            }
        }
    }
    out
}

/// Records whose event time trails their place in the stream by up to
/// `disorder` ms: record `i` is generated at `i * step` ms.
pub fn timed(draws: &[(u64, u64, u64)], step: u64, disorder: u64) -> Vec<Timed> {
    draws
        .iter()
        .enumerate()
        .map(|(i, &(key, value, behind))| {
            let generated = i as u64 * step + disorder;
            (key, value, generated - behind % (disorder + 1))
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct Run {
    pub workers: usize,
    pub interval_ms: Option<u64>,
    pub max_batch_records: Option<u64>,
    /// Pushed by one producer thread, with work stealing on or off
    /// (`Some`), rather than read by the workers from an iterator.
    pub producer: Option<bool>,
}

impl Run {
    /// `workers` workers reading the records from an iterator, in epochs
    /// cut by count only.
    pub fn batches_of(workers: usize, max_batch_records: u64) -> Run {
        Run {
            workers,
            interval_ms: None,
            max_batch_records: Some(max_batch_records),
            producer: None,
        }
    }
}

/// Events every 100 ms for 10 s over three keys, then one from t = 0.
pub fn with_a_straggler_from_zero() -> Vec<Timed> {
    let mut records: Vec<Timed> = (0..100u64).map(|i| (i % 3, 1, i * 100)).collect();
    records.push((0, 1000, 0));
    records
}

pub fn run_strategy() -> impl Strategy<Value = Run> {
    (
        1usize..4,
        prop_oneof![Just(None), (1u64..6).prop_map(Some)],
        prop_oneof![Just(None), (20u64..400).prop_map(Some)],
        prop_oneof![Just(None), any::<bool>().prop_map(Some)],
    )
        .prop_map(|(workers, interval_ms, max_batch_records, producer)| Run {
            workers,
            interval_ms,
            max_batch_records,
            producer,
        })
}

/// Runs `job` over `records` as `run` says; returns the summary and the
/// rows.
pub fn run_job<J: Job<Timed>>(
    job: J,
    records: &[Timed],
    run: &Run,
) -> (Summary, Vec<(u64, J::Row)>) {
    let (sink, rows) = CollectSink::new();
    let stealing = run.producer.unwrap_or(true);
    let builder = Engine::builder(job, sink)
        .config(Config::default().with_work_stealing(stealing))
        .workers(run.workers)
        .pin(false)
        .interval(run.interval_ms.map(Duration::from_millis))
        .max_batch_records(run.max_batch_records);
    let summary = match run.producer {
        None => {
            let source = IterSource::new(records.to_vec());
            builder.source(source).start().unwrap().finish().unwrap()
        }
        Some(_) => {
            let engine = builder.start().unwrap();
            let mut producer = engine.producer();
            for record in records {
                producer.push(*record).unwrap();
            }
            drop(producer);
            engine.finish().unwrap()
        }
    };
    (summary, rows.take())
}
