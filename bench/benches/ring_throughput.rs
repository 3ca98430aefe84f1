//! `ring_throughput`: items per second from one pinned producer thread to
//! one pinned consumer thread, for u64 and a 32-byte record, at capacities
//! 4096 and 65536. microbatch's ring is measured beside `rtrb` and
//! `crossbeam_queue::ArrayQueue` in the same group: single items, then
//! batches of 64 and 256 (our `push_slice`/`pop_slice` against rtrb's
//! chunk-based `push_partial_slice`/`pop_partial_slice`).
//!
//! `cargo bench -p microbatch-bench --bench ring_throughput`

use std::hint::{black_box, spin_loop};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use microbatch_bench::transfer::{two_threads, Item, Rec32};

/// Items moved per criterion iteration.
const PER_ITER: u64 = 1 << 16;

fn microbatch_single<T: Item>(capacity: usize, items: u64) -> Duration {
    let (mut tx, mut rx) = microbatch_ringbuf::ring::<T>(capacity);
    two_threads(
        move || {
            for seq in 0..items {
                let mut item = T::make(seq);
                while let Err(full) = tx.try_push(item) {
                    item = full.into_inner();
                    spin_loop();
                }
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..items {
                loop {
                    if let Some(item) = rx.try_pop() {
                        sum = sum.wrapping_add(item.seq());
                        break;
                    }
                    spin_loop();
                }
            }
            sum
        },
    )
}

fn rtrb_single<T: Item>(capacity: usize, items: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(capacity);
    two_threads(
        move || {
            for seq in 0..items {
                let mut item = T::make(seq);
                while let Err(rtrb::PushError::Full(back)) = tx.push(item) {
                    item = back;
                    spin_loop();
                }
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..items {
                loop {
                    if let Ok(item) = rx.pop() {
                        sum = sum.wrapping_add(item.seq());
                        break;
                    }
                    spin_loop();
                }
            }
            sum
        },
    )
}

fn array_queue_single<T: Item>(capacity: usize, items: u64) -> Duration {
    let queue = std::sync::Arc::new(ArrayQueue::<T>::new(capacity));
    let rx = queue.clone();
    two_threads(
        move || {
            for seq in 0..items {
                let mut item = T::make(seq);
                while let Err(back) = queue.push(item) {
                    item = back;
                    spin_loop();
                }
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..items {
                loop {
                    if let Some(item) = rx.pop() {
                        sum = sum.wrapping_add(item.seq());
                        break;
                    }
                    spin_loop();
                }
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

fn microbatch_slices<T: Item + Default>(capacity: usize, batch: usize, items: u64) -> Duration {
    let (mut tx, mut rx) = microbatch_ringbuf::ring::<T>(capacity);
    two_threads(
        move || {
            let mut buf = vec![T::default(); batch];
            let mut seq = 0;
            while seq < items {
                let n = (batch as u64).min(items - seq) as usize;
                fill(&mut buf[..n], seq);
                let mut sent = 0;
                while sent < n {
                    let pushed = tx.push_slice(&buf[sent..n]);
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
                let n = rx.pop_slice(&mut buf);
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

fn rtrb_slices<T: Item + Default>(capacity: usize, batch: usize, items: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(capacity);
    two_threads(
        move || {
            let mut buf = vec![T::default(); batch];
            let mut seq = 0;
            while seq < items {
                let n = (batch as u64).min(items - seq) as usize;
                fill(&mut buf[..n], seq);
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let (pushed, remainder) = tx.push_partial_slice(rest);
                    if pushed.is_empty() {
                        spin_loop();
                    }
                    rest = remainder;
                }
                seq += n as u64;
            }
        },
        move || {
            let mut buf = vec![T::default(); batch];
            let (mut got, mut sum) = (0u64, 0u64);
            while got < items {
                let (popped, _) = rx.pop_partial_slice(&mut buf);
                if popped.is_empty() {
                    spin_loop();
                }
                for item in popped.iter() {
                    sum = sum.wrapping_add(item.seq());
                }
                got += popped.len() as u64;
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
            b.iter_custom(|iters| microbatch_single::<T>(capacity, iters * PER_ITER))
        });
        group.bench_function("single/rtrb", |b| {
            b.iter_custom(|iters| rtrb_single::<T>(capacity, iters * PER_ITER))
        });
        group.bench_function("single/ArrayQueue", |b| {
            b.iter_custom(|iters| array_queue_single::<T>(capacity, iters * PER_ITER))
        });
        for batch in [64usize, 256] {
            group.bench_function(BenchmarkId::new("slice/microbatch", batch), |b| {
                b.iter_custom(|iters| microbatch_slices::<T>(capacity, batch, iters * PER_ITER))
            });
            group.bench_function(BenchmarkId::new("slice/rtrb", batch), |b| {
                b.iter_custom(|iters| rtrb_slices::<T>(capacity, batch, iters * PER_ITER))
            });
        }
        group.finish();
    }
}

fn ring_throughput(c: &mut Criterion) {
    bench_type::<u64>(c, "u64");
    bench_type::<Rec32>(c, "rec32");
    black_box(());
}

criterion_group!(benches, ring_throughput);
criterion_main!(benches);
