//! The record log's speed on this machine: writing the end_to_end job's
//! records into a log, opening it (every block checked), reading it whole
//! on one thread, and the end_to_end job on 2 workers fed from the log
//! against the same job fed by the generator, in the same run.
//!
//! `cargo run --release -p microbatch-measure -- log [RECORDS]`

use std::time::{Duration, Instant};

use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
use microbatch::sink::DiscardSink;
use microbatch::source::{Event, Generator, Poll, Source};
use microbatch::Engine;
use microbatch_bench::end_to_end::{count_and_sum, workload};

fn rate(records: u64, took: Duration) -> String {
    format!(
        "{:.1} M records/s ({:.2} GB/s of records)",
        records as f64 / took.as_secs_f64() / 1e6,
        records as f64 * 16.0 / took.as_secs_f64() / 1e9
    )
}

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let records: u64 = args
        .into_iter()
        .nth(1)
        .map_or(30_000_000, |a| a.parse().expect("RECORDS: a count"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut part = Generator::new(workload(records, None))
        .parts(1)
        .expect("valid")
        .remove(0);
    let mut chunk = Vec::with_capacity(4096);
    let mut writer =
        LogWriter::<Event>::create(dir.path(), LogOptions::default()).expect("a new log");
    let started = Instant::now();
    loop {
        chunk.clear();
        if let Poll::Exhausted = part.poll(0, &mut chunk, 4096) {
            break;
        }
        for event in &chunk {
            writer.append(*event).expect("append");
        }
    }
    let summary = writer.finish().expect("finish");
    println!(
        "write (generate + archive + checksum + fsync): {}, {} segments",
        rate(records, started.elapsed()),
        summary.segments
    );

    let started = Instant::now();
    let reader = LogReader::<Event>::open(dir.path()).expect("open");
    println!(
        "open (map + check every block): {}",
        rate(records, started.elapsed())
    );

    let started = Instant::now();
    let mut out = Vec::with_capacity(4096);
    let mut sum = 0u64;
    for block in 0..reader.blocks() {
        out.clear();
        reader.read(block, 0, usize::MAX, &mut out);
        sum = out.iter().fold(sum, |s, e| s.wrapping_add(e.value));
    }
    println!(
        "read whole, one thread: {} (checksum {sum})",
        rate(records, started.elapsed())
    );

    for round in 0..3 {
        let started = Instant::now();
        let engine = Engine::builder(count_and_sum(), DiscardSink)
            .workers(2)
            .max_batch_records(None)
            .source(LogSource::new(
                LogReader::<Event>::open(dir.path()).expect("open"),
                None,
            ))
            .start()
            .expect("start");
        let from_log = engine.finish().expect("run");
        let log_time = started.elapsed();
        let started = Instant::now();
        let engine = Engine::builder(count_and_sum(), DiscardSink)
            .workers(2)
            .max_batch_records(None)
            .source(Generator::new(workload(records, None)))
            .start()
            .expect("start");
        let generated = engine.finish().expect("run");
        let generator_time = started.elapsed();
        assert_eq!(from_log.records_in_results, generated.records_in_results);
        println!(
            "round {round}: engine (2 workers, 100 ms) from the log {} (including open); from the generator {}",
            rate(records, log_time),
            rate(records, generator_time)
        );
    }
}
