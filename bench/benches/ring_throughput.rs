//! `ring_throughput`: items per second from one pinned producer thread to
//! one pinned consumer thread, for u64 and a 32-byte record, at capacities
//! 4096 and 65536. microbatch's ring is measured beside `rtrb` and
//! `crossbeam_queue::ArrayQueue` in the same group: single items, then
//! batches of 64 and 256 (our `push_slice`/`pop_slice` against rtrb's
//! chunk-based `push_partial_slice`/`pop_partial_slice`).
//!
//! `cargo bench -p microbatch-bench --bench ring_throughput`

use std::hint::spin_loop;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use microbatch_bench::queues::{
    pop_spinning, push_spinning, CrossbeamArrayQueue, Microbatch, Queue, Rtrb, SliceQueue,
};
use microbatch_bench::transfer::{two_threads, Item, Rec32};

/// Items moved per criterion iteration.
const PER_ITER: u64 = 1 << 16;

/// Single items through queue `Q`, spinning when full or empty.
fn single<T: Item, Q: Queue<T>>(capacity: usize, items: u64) -> Duration {
    let (mut tx, mut rx) = Q::with_capacity(capacity);
    two_threads(
        move || {
            for seq in 0..items {
                push_spinning::<T, Q>(&mut tx, T::make(seq));
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..items {
                sum = sum.wrapping_add(pop_spinning::<T, Q>(&mut rx).seq());
            }
            sum
        },
    )
}

/// Fills `batch` with the next sequence numbers.
#[inline(always)]
fn fill<T: Item>(batch: &mut [T], first: u64) {
    for (i, slot) in batch.iter_mut().enumerate() {
        *slot = T::make(first + i as u64);
    }
}

/// Batches of `batch` items through queue `Q`'s slice operations.
fn slices<T: Item + Default, Q: SliceQueue<T>>(
    capacity: usize,
    batch: usize,
    items: u64,
) -> Duration {
    let (mut tx, mut rx) = Q::with_capacity(capacity);
    two_threads(
        move || {
            let mut buf = vec![T::default(); batch];
            let mut seq = 0;
            while seq < items {
                let n = (batch as u64).min(items - seq) as usize;
                fill(&mut buf[..n], seq);
                let mut sent = 0;
                while sent < n {
                    let pushed = Q::push_slice(&mut tx, &buf[sent..n]);
                    if pushed == 0 {
                        spin_loop();
                    }
                    sent += pushed;
                }
                seq += n as u64;
            }
        },
        move || {
            let mut buf = vec![T::default(); batch];
            let (mut got, mut sum) = (0u64, 0u64);
            while got < items {
                let n = Q::pop_slice(&mut rx, &mut buf);
                if n == 0 {
                    spin_loop();
                }
                for item in &buf[..n] {
                    sum = sum.wrapping_add(item.seq());
                }
                got += n as u64;
            }
            sum
        },
    )
}

fn bench_type<T: Item + Default>(c: &mut Criterion, type_name: &str) {
    for capacity in [4096usize, 65536] {
        let mut group = c.benchmark_group(format!("ring_throughput/{type_name}/cap{capacity}"));
        group.throughput(Throughput::Elements(PER_ITER));
        // Two spinning threads on a shared 2-core machine are noisy: many
        // samples, and baselines interleaved in the same group.
        group.sample_size(30);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(4));
        group.bench_function("single/microbatch", |b| {
            b.iter_custom(|iters| single::<T, Microbatch>(capacity, iters * PER_ITER))
        });
        group.bench_function("single/rtrb", |b| {
            b.iter_custom(|iters| single::<T, Rtrb>(capacity, iters * PER_ITER))
        });
        group.bench_function("single/ArrayQueue", |b| {
            b.iter_custom(|iters| single::<T, CrossbeamArrayQueue>(capacity, iters * PER_ITER))
        });
        for batch in [64usize, 256] {
            group.bench_function(BenchmarkId::new("slice/microbatch", batch), |b| {
                b.iter_custom(|iters| slices::<T, Microbatch>(capacity, batch, iters * PER_ITER))
            });
            group.bench_function(BenchmarkId::new("slice/rtrb", batch), |b| {
                b.iter_custom(|iters| slices::<T, Rtrb>(capacity, batch, iters * PER_ITER))
            });
        }
        group.finish();
    }
}

fn ring_throughput(c: &mut Criterion) {
    bench_type::<u64>(c, "u64");
    bench_type::<Rec32>(c, "rec32");
}

criterion_group!(benches, ring_throughput);
criterion_main!(benches);
