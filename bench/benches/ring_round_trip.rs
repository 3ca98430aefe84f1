//! `ring_round_trip`: ping-pong latency between two pinned threads over a
//! pair of rings (one each way), one item in flight. microbatch's ring is
//! measured beside `rtrb` and `crossbeam_queue::ArrayQueue` in the same
//! group; the figure is the time of one round trip.
//!
//! `cargo bench -p microbatch-bench --bench ring_round_trip`

use std::hint::spin_loop;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_queue::ArrayQueue;
use microbatch_bench::transfer::ping_pong;

const CAPACITY: usize = 64;

fn microbatch_rt(trips: u64) -> Duration {
    let (mut ping_tx, mut ping_rx) = microbatch_ringbuf::ring::<u64>(CAPACITY);
    let (mut pong_tx, mut pong_rx) = microbatch_ringbuf::ring::<u64>(CAPACITY);
    ping_pong(
        move || {
            for i in 0..trips {
                ping_tx.try_push(i).expect("one item in flight");
                loop {
                    if let Some(back) = pong_rx.try_pop() {
                        debug_assert_eq!(back, i);
                        break;
                    }
                    spin_loop();
                }
            }
        },
        move || {
            for _ in 0..trips {
                loop {
                    if let Some(v) = ping_rx.try_pop() {
                        pong_tx.try_push(v).expect("one item in flight");
                        break;
                    }
                    spin_loop();
                }
            }
        },
    )
}

fn rtrb_rt(trips: u64) -> Duration {
    let (mut ping_tx, mut ping_rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    let (mut pong_tx, mut pong_rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    ping_pong(
        move || {
            for i in 0..trips {
                ping_tx.push(i).expect("one item in flight");
                loop {
                    if let Ok(back) = pong_rx.pop() {
                        debug_assert_eq!(back, i);
                        break;
                    }
                    spin_loop();
                }
            }
        },
        move || {
            for _ in 0..trips {
                loop {
                    if let Ok(v) = ping_rx.pop() {
                        pong_tx.push(v).expect("one item in flight");
                        break;
                    }
                    spin_loop();
                }
            }
        },
    )
}

fn array_queue_rt(trips: u64) -> Duration {
    let ping = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
    let pong = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
    let (ping_rx, pong_tx) = (ping.clone(), pong.clone());
    ping_pong(
        move || {
            for i in 0..trips {
                ping.push(i).expect("one item in flight");
                loop {
                    if let Some(back) = pong.pop() {
                        debug_assert_eq!(back, i);
                        break;
                    }
                    spin_loop();
                }
            }
        },
        move || {
            for _ in 0..trips {
                loop {
                    if let Some(v) = ping_rx.pop() {
                        pong_tx.push(v).expect("one item in flight");
                        break;
                    }
                    spin_loop();
                }
            }
        },
    )
}

fn ring_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_round_trip");
    group.sample_size(50);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("microbatch", |b| b.iter_custom(microbatch_rt));
    group.bench_function("rtrb", |b| b.iter_custom(rtrb_rt));
    group.bench_function("ArrayQueue", |b| b.iter_custom(array_queue_rt));
    group.finish();
}

criterion_group!(benches, ring_round_trip);
criterion_main!(benches);
