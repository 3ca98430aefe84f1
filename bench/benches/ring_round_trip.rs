//! `ring_round_trip`: ping-pong latency between two pinned threads over a
//! pair of rings (one each way), one item in flight. microbatch's ring is
//! measured beside `rtrb` and `crossbeam_queue::ArrayQueue` in the same
//! group; the figure is the time of one round trip.
//!
//! `cargo bench -p microbatch-bench --bench ring_round_trip`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use microbatch_bench::queues::{
    pop_spinning, push_spinning, CrossbeamArrayQueue, Microbatch, Queue, Rtrb,
};
use microbatch_bench::transfer::two_threads;

const CAPACITY: usize = 64;

/// `trips` round trips over two queues of type `Q`.
fn round_trips<Q: Queue<u64>>(trips: u64) -> Duration {
    let (mut ping_tx, mut ping_rx) = Q::with_capacity(CAPACITY);
    let (mut pong_tx, mut pong_rx) = Q::with_capacity(CAPACITY);
    two_threads(
        move || {
            for i in 0..trips {
                push_spinning::<u64, Q>(&mut ping_tx, i);
                let back = pop_spinning::<u64, Q>(&mut pong_rx);
                debug_assert_eq!(back, i);
            }
        },
        move || {
            for _ in 0..trips {
                let v = pop_spinning::<u64, Q>(&mut ping_rx);
                push_spinning::<u64, Q>(&mut pong_tx, v);
            }
            trips
        },
    )
}

fn ring_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_round_trip");
    group.sample_size(50);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("microbatch", |b| b.iter_custom(round_trips::<Microbatch>));
    group.bench_function("rtrb", |b| b.iter_custom(round_trips::<Rtrb>));
    group.bench_function("ArrayQueue", |b| {
        b.iter_custom(round_trips::<CrossbeamArrayQueue>)
    });
    group.finish();
}

criterion_group!(benches, ring_round_trip);
criterion_main!(benches);
