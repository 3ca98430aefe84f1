//! `mesh_exchange`: two pinned threads each send 2^16 messages (a boxed
//! buffer of 64 u64, as parts travel) to the other while receiving the
//! other's, in messages/s over both directions. In one group: the engine's
//! shuffle `mesh` (SPSC rings, the sender drains its inbox while its outbox
//! is full), and the baselines: a pair of `std::sync::mpsc::sync_channel`s
//! and a pair of `crossbeam_queue::ArrayQueue`s, each of the same capacity.
//! Every side drains its inbox after each send, as a worker does.
//!
//! `cargo bench -p microbatch-bench --bench mesh_exchange`

use std::hint::black_box;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use microbatch::internals::mesh;
use microbatch_bench::pin::pin_to_core;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MESSAGES: usize = 1 << 16;
/// Ring capacities: 64, where a flooding sender often finds its outbox
/// full, and 1024, where it rarely does. (The engine's mesh never fills:
/// one message per pair and epoch, at most `max_epochs_in_flight` epochs in
/// flight, rings of twice that.)
const CAPACITIES: [usize; 2] = [64, 1024];

type Message = Box<[u64; 64]>;

fn message(i: usize) -> Message {
    let mut buffer = Box::new([0u64; 64]);
    buffer[0] = i as u64;
    buffer
}

/// Runs `side(0)` and `side(1)` on two pinned threads; each returns the
/// sum of the first word of what it received.
fn both<F: Fn(usize) -> u64 + Sync>(side: F) -> u64 {
    std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            pin_to_core(1);
            side(1)
        });
        pin_to_core(0);
        side(0) + other.join().expect("the other side")
    })
}

fn expected() -> u64 {
    2 * (0..MESSAGES as u64).sum::<u64>()
}

fn mesh_exchange(c: &mut Criterion) {
    let mut group = c.benchmark_group("mesh_exchange");
    group
        .throughput(Throughput::Elements(2 * MESSAGES as u64))
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for capacity in CAPACITIES {
        exchange(&mut group, capacity);
    }
    group.finish();
}

fn exchange(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    capacity: usize,
) {
    group.bench_function(BenchmarkId::new("mesh", capacity), |b| {
        b.iter(|| {
            let endpoints: Vec<_> = mesh::<Message>(2, capacity)
                .expect("valid capacity")
                .into_iter()
                .map(std::sync::Mutex::new)
                .collect();
            let total = both(|id| {
                let mut endpoint = endpoints[id].lock().expect("one side each");
                let received = std::cell::Cell::new((0usize, 0u64));
                let take = |_: usize, m: Message| {
                    let (count, total) = received.get();
                    received.set((count + 1, total + black_box(m[0])));
                };
                for i in 0..MESSAGES {
                    endpoint
                        .send(1 - id, message(i), take)
                        .expect("the other side stays");
                    // As a worker does between its own steps: drain the inbox.
                    while let Some((from, m)) = endpoint.try_recv() {
                        take(from, m);
                    }
                }
                while received.get().0 < MESSAGES {
                    if let Some((from, m)) = endpoint.try_recv() {
                        take(from, m);
                    } else {
                        std::hint::spin_loop();
                    }
                }
                received.get().1
            });
            assert_eq!(total, expected());
        })
    });
    group.bench_function(
        BenchmarkId::new("baseline_std_sync_channel", capacity),
        |b| {
            b.iter(|| {
                let (to_1, from_0) = mpsc::sync_channel::<Message>(capacity);
                let (to_0, from_1) = mpsc::sync_channel::<Message>(capacity);
                let ends = [
                    std::sync::Mutex::new((to_1, from_1)),
                    std::sync::Mutex::new((to_0, from_0)),
                ];
                let total = both(|id| {
                    let ends = ends[id].lock().expect("one side each");
                    let (sender, receiver) = (&ends.0, &ends.1);
                    let mut received = (0usize, 0u64);
                    let mut sent = 0;
                    while sent < MESSAGES || received.0 < MESSAGES {
                        if sent < MESSAGES {
                            match sender.try_send(message(sent)) {
                                Ok(()) => sent += 1,
                                Err(mpsc::TrySendError::Full(_)) => {}
                                Err(mpsc::TrySendError::Disconnected(_)) => {
                                    panic!("the other side left")
                                }
                            }
                        }
                        while let Ok(m) = receiver.try_recv() {
                            received.0 += 1;
                            received.1 += black_box(m[0]);
                        }
                    }
                    received.1
                });
                assert_eq!(total, expected());
            })
        },
    );
    group.bench_function(
        BenchmarkId::new("baseline_crossbeam_array_queue", capacity),
        |b| {
            b.iter(|| {
                let queues = [
                    Arc::new(ArrayQueue::<Message>::new(capacity)),
                    Arc::new(ArrayQueue::<Message>::new(capacity)),
                ];
                let total = both(|id| {
                    let (outbox, inbox) = (&queues[1 - id], &queues[id]);
                    let mut received = (0usize, 0u64);
                    let mut sent = 0;
                    while sent < MESSAGES || received.0 < MESSAGES {
                        if sent < MESSAGES && outbox.push(message(sent)).is_ok() {
                            sent += 1;
                        }
                        while let Some(m) = inbox.pop() {
                            received.0 += 1;
                            received.1 += black_box(m[0]);
                        }
                    }
                    received.1
                });
                assert_eq!(total, expected());
            })
        },
    );
}

criterion_group!(benches, mesh_exchange);
criterion_main!(benches);
