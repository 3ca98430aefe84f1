//! The main job's keyed count + sum on Timely Dataflow, written as a Timely
//! user would write it for speed, so that the engine can be measured
//! against it in one run:
//!
//! - each worker draws its records from its part of the engine's own
//!   generator (the same keys and values, the same shared claims), in
//!   batches of 4 096, and sends them into the dataflow under the epoch's
//!   timestamp;
//! - a pre-aggregating operator (pipelined, no exchange) folds each epoch's
//!   records into an FxHash table per epoch and, once the epoch's frontier
//!   passes, emits one `(key, (count, sum))` per key;
//! - those are exchanged by key hash to a merging operator that folds them
//!   into the epoch's table and, once the epoch completes, finishes it (the
//!   rows are counted and their counts summed: the check that every record
//!   was folded once);
//! - a worker feeds epoch `e + 1` while epoch `e` completes, and waits for
//!   `e` before it opens `e + 2`: one epoch in flight, as a probe-driven
//!   Timely program runs.
//!
//! Workers are pinned to cores as the engine's are.
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use microbatch::source::{Event, Generator, GeneratorConfig, GeneratorPart, Poll, Source};
use rustc_hash::FxBuildHasher;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::{Input, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

/// Records a worker draws and sends at a time.
const BATCH: usize = 4096;

/// What a Timely run did.
#[derive(Debug, Clone, Copy)]
pub struct TimelyRun {
    /// Records generated and sent into the dataflow, over all workers.
    pub records: u64,
    /// Sum of the finished rows' counts: equals `records` when every
    /// record was folded exactly once.
    pub counted: u64,
    /// Finished rows (one per key and epoch).
    pub rows: u64,
    /// Epochs each worker ran.
    pub epochs: u64,
    /// From the first record to the last epoch's completion, the slowest
    /// worker's.
    pub elapsed: Duration,
}

impl TimelyRun {
    /// Records per second.
    pub fn throughput(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

/// One epoch's table: key → (count, sum).
type Table = HashMap<u64, (u64, u64), FxBuildHasher>;

/// Runs the keyed count + sum on `workers` Timely workers, `epochs` epochs
/// of `per_worker` records per worker each, drawn from `config` (its
/// `records` and `rate` are ignored: closed loop).
pub fn keyed_count_sum(
    workers: usize,
    config: GeneratorConfig,
    per_worker: usize,
    epochs: u64,
) -> Result<TimelyRun, String> {
    let config = GeneratorConfig {
        records: None,
        rate: None,
        ..config
    };
    let parts = Generator::new(config)
        .parts(workers)
        .map_err(|e| e.to_string())?;
    let parts: Arc<Mutex<Vec<Option<GeneratorPart>>>> =
        Arc::new(Mutex::new(parts.into_iter().map(Some).collect()));
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        crate::pin::pin_to_core(index);
        let mut part = parts.lock().expect("unpoisoned")[index]
            .take()
            .expect("one part per worker");
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<Event>>>::new();
        let probe = ProbeHandle::new();
        let (rows, counted) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64)));
        let (rows_out, counted_out) = (Rc::clone(&rows), Rc::clone(&counted));
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .unary_frontier(Pipeline, "PreAggregate", |_, _| {
                    let mut open: Vec<(Capability<u64>, Table)> = Vec::new();
                    move |(input, frontier), output| {
                        input.for_each(|cap, data: &mut Vec<Event>| {
                            let time = *cap.least().expect("a message has a time");
                            let table = table_of(&mut open, &time, || {
                                cap.retain_least(output.output_index())
                            });
                            for event in data.iter() {
                                let entry = table.entry(event.key).or_insert((0, 0));
                                entry.0 += 1;
                                entry.1 += event.value;
                            }
                        });
                        open.retain_mut(|(cap, table)| {
                            if frontier.less_equal(cap.time()) {
                                return true;
                            }
                            output.session(cap).give_iterator(table.drain());
                            false
                        });
                    }
                })
                .unary_frontier(
                    Exchange::new(|(key, _): &(u64, (u64, u64))| FxBuildHasher.hash_one(key)),
                    "Merge",
                    |_, _| {
                        let mut open: Vec<(Capability<u64>, Table)> = Vec::new();
                        move |(input, frontier), output| {
                            input.for_each(|cap, data: &mut Vec<(u64, (u64, u64))>| {
                                let time = *cap.least().expect("a message has a time");
                                let table = table_of(&mut open, &time, || {
                                    cap.retain_least(output.output_index())
                                });
                                for &(key, (count, sum)) in data.iter() {
                                    let entry = table.entry(key).or_insert((0, 0));
                                    entry.0 += count;
                                    entry.1 += sum;
                                }
                            });
                            open.retain_mut(|(cap, table)| {
                                if frontier.less_equal(cap.time()) {
                                    return true;
                                }
                                rows.set(rows.get() + table.len() as u64);
                                let counts: u64 = table.drain().map(|(_, (c, _))| c).sum();
                                counted.set(counted.get() + counts);
                                output.session(cap).give(counts);
                                false
                            });
                        }
                    },
                )
                .container::<Vec<u64>>()
                .probe_with(&probe);
        });
        let mut batch = Vec::with_capacity(BATCH);
        let mut sent = 0u64;
        let started = Instant::now();
        for epoch in 0..epochs {
            let mut left = per_worker;
            while left > 0 {
                batch.clear();
                match part.poll(0, &mut batch, left.min(BATCH)) {
                    Poll::Ready { .. } => {}
                    _ => unreachable!("an unbounded closed-loop generator is always ready"),
                }
                left -= batch.len();
                sent += batch.len() as u64;
                input.send_batch(&mut batch);
                worker.step();
            }
            input.advance_to(epoch + 1);
            // One epoch in flight: `epoch - 1` must be complete.
            while probe.less_than(&epoch) {
                worker.step();
            }
        }
        input.close();
        while worker.step() {}
        (sent, counted_out.get(), rows_out.get(), started.elapsed())
    })?;
    let mut run = TimelyRun {
        records: 0,
        counted: 0,
        rows: 0,
        epochs,
        elapsed: Duration::ZERO,
    };
    for result in guards.join() {
        let (sent, counted, rows, elapsed) = result?;
        run.records += sent;
        run.counted += counted;
        run.rows += rows;
        run.elapsed = run.elapsed.max(elapsed);
    }
    Ok(run)
}

/// The table of the epoch at `time` in `open`, opened (with the capability
/// `retain` gives) if it is not there yet. Few epochs are open at a time,
/// so a scan finds it.
fn table_of<'a>(
    open: &'a mut Vec<(Capability<u64>, Table)>,
    time: &u64,
    retain: impl FnOnce() -> Option<Capability<u64>>,
) -> &'a mut Table {
    let at = match open.iter().position(|(cap, _)| cap.time() == time) {
        Some(at) => at,
        None => {
            let cap = retain().expect("a record's capability covers its time");
            open.push((cap, Table::default()));
            open.len() - 1
        }
    };
    &mut open[at].1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record is folded once and every key of every epoch finished.
    #[test]
    fn timely_job_counts_every_record_once() {
        let config = GeneratorConfig {
            keys: 100,
            ..GeneratorConfig::default()
        };
        let run = keyed_count_sum(2, config, 10_000, 5).unwrap();
        assert_eq!(run.records, 2 * 10_000 * 5);
        assert_eq!(run.counted, run.records);
        // 20 000 draws over 100 keys: every key turns up in every epoch.
        assert_eq!(run.rows, 100 * 5);
    }
}
