//! `end_to_end`: keyed count + sum of u64 values over 100 K uniform keys,
//! generated inside 2 workers, at 100 ms and 1 ms intervals; in the same
//! group, the baselines: one thread folding the same generated records into
//! a hashbrown table (the engine's limit is W times it), and the naive
//! design (producer threads → std mpsc → one aggregator thread).
//!
//! `cargo bench -p microbatch-bench --bench end_to_end`
//!
//! The machine is shared and noisy; for paired ratios run the interleaved
//! `cargo run --release -p microbatch-measure -- end_to_end`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use microbatch_bench::end_to_end;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WORKERS: usize = 2;
/// Records per run of the engine and of the single-thread loop.
const RECORDS: u64 = 20_000_000;
/// The naive design is an order of magnitude slower: fewer records.
const NAIVE_RECORDS: u64 = 2_000_000;

fn end_to_end(c: &mut Criterion) {
    let mut group = c.benchmark_group("end_to_end");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(RECORDS));
    for interval_ms in [100, 1] {
        group.bench_function(
            BenchmarkId::new("engine_2_workers_interval_ms", interval_ms),
            |b| {
                b.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| {
                            end_to_end::engine(
                                WORKERS,
                                Duration::from_millis(interval_ms),
                                RECORDS,
                                None,
                            )
                            .0
                        })
                        .sum()
                })
            },
        );
    }
    group.bench_function("baseline_single_thread_hashbrown", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| end_to_end::single_thread(RECORDS).0)
                .sum()
        })
    });
    group.throughput(Throughput::Elements(NAIVE_RECORDS));
    group.bench_function("baseline_naive_mpsc_hashmap", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| end_to_end::naive(WORKERS, NAIVE_RECORDS))
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
