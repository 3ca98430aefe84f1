//! `reduce_kernels`: a global sum over a sealed batch of 1 GiB of u64, in
//! GiB/s. In one group: the engine's path (a global job's `absorb` over the
//! slice, which hands it whole to the `sum` kernel) on one worker and on two
//! (each absorbs half, then the parts merge, as the engine's workers do),
//! the kernel alone, and the plain `iter().fold` on one and two threads as
//! the baselines: the two-thread fold is the machine's read bandwidth.
//!
//! `cargo bench -p microbatch-bench --bench reduce_kernels`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use microbatch::internals::kernels;
use microbatch::job::{self, sum, Job, Parts};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BYTES: usize = 1 << 30;

fn reduce_kernels(c: &mut Criterion) {
    let values: Vec<u64> = (0..(BYTES / 8) as u64).collect();
    let expected = values.iter().fold(0u64, |a, v| a.wrapping_add(*v));
    let mut group = c.benchmark_group("reduce_kernels");
    group
        .throughput(Throughput::Bytes(BYTES as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("global_job_absorb_1GiB", |b| {
        let total = job::records::<u64>().aggregate(sum(|v: &u64| *v));
        let mut parts = vec![total.new_part()];
        let mut rows = Vec::new();
        b.iter(|| {
            total.absorb(black_box(&values), Parts::from(&mut parts));
            total.finish(&mut parts[0], &mut rows);
            assert_eq!(rows.pop(), Some(expected));
        })
    });
    group.bench_function("global_job_absorb_1GiB_2_workers", |b| {
        let total = job::records::<u64>().aggregate(sum(|v: &u64| *v));
        let (left, right) = values.split_at(values.len() / 2);
        let mut rows = Vec::new();
        b.iter(|| {
            let (mut mine, mut theirs) = std::thread::scope(|scope| {
                let other = scope.spawn(|| {
                    let mut parts = vec![total.new_part()];
                    total.absorb(black_box(right), Parts::from(&mut parts));
                    parts
                });
                let mut parts = vec![total.new_part()];
                total.absorb(black_box(left), Parts::from(&mut parts));
                (parts, other.join().expect("the other worker"))
            });
            total.merge(&mut mine[0], &mut theirs[0]);
            total.finish(&mut mine[0], &mut rows);
            assert_eq!(rows.pop(), Some(expected));
        })
    });
    group.bench_function("kernel_sum_1GiB", |b| {
        b.iter(|| assert_eq!(kernels::sum(black_box(&values)), expected))
    });
    group.bench_function("baseline_iter_sum_1GiB", |b| {
        b.iter(|| {
            let total = black_box(&values)
                .iter()
                .fold(0u64, |a, v| a.wrapping_add(*v));
            assert_eq!(total, expected)
        })
    });
    group.bench_function("baseline_iter_sum_1GiB_2_threads", |b| {
        let fold = |half: &[u64]| half.iter().fold(0u64, |a, v| a.wrapping_add(*v));
        let (left, right) = values.split_at(values.len() / 2);
        b.iter(|| {
            let total = std::thread::scope(|scope| {
                let other = scope.spawn(|| fold(black_box(right)));
                fold(black_box(left)).wrapping_add(other.join().expect("the other thread"))
            });
            assert_eq!(total, expected)
        })
    });
    group.finish();
}

criterion_group!(benches, reduce_kernels);
criterion_main!(benches);
