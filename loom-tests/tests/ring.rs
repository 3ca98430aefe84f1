//! Loom models of the SPSC ring: every interleaving (up to the preemption
//! bound) of one producer thread and one consumer thread. Slot accesses are
//! tracked too (the ring's `sync::SlotAccess`), so a slot read that is not
//! ordered after its write makes a model fail, not just a wrong value.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use microbatch_ringbuf::{ring, Consumer};

/// Pops `n` items with `try_pop`, yielding to the model while empty.
fn pop_n<T>(consumer: &mut Consumer<T>, n: usize) -> Vec<T> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match consumer.try_pop() {
            Some(v) => got.push(v),
            None => thread::yield_now(),
        }
    }
    got
}

#[test]
fn push_pop_visibility_and_order() {
    loom::model(|| {
        let (mut producer, mut consumer) = ring::<String>(4);
        let writer = thread::spawn(move || {
            producer.try_push("a".to_string()).unwrap();
            producer.try_push("b".to_string()).unwrap();
        });
        assert_eq!(pop_n(&mut consumer, 2), ["a", "b"]);
        writer.join().unwrap();
    });
}

#[test]
fn wrap_around_reuses_slots_safely() {
    loom::model(|| {
        // Capacity 2 and 4 items: slots 0 and 1 are each written twice, so
        // the producer's reuse of a slot must be ordered after its pop.
        let (mut producer, mut consumer) = ring::<u64>(2);
        let writer = thread::spawn(move || {
            for i in 0..4 {
                let mut value = i;
                while let Err(full) = producer.try_push(value) {
                    value = full.into_inner();
                    thread::yield_now();
                }
            }
        });
        assert_eq!(pop_n(&mut consumer, 4), [0, 1, 2, 3]);
        writer.join().unwrap();
    });
}

#[test]
fn full_and_empty_edges_at_capacity_one() {
    loom::model(|| {
        let (mut producer, mut consumer) = ring::<u64>(1);
        let writer = thread::spawn(move || {
            producer.try_push(1).unwrap();
            // Full until the consumer pops: the item comes back unchanged.
            loop {
                match producer.try_push(2) {
                    Ok(()) => break,
                    Err(full) => {
                        assert_eq!(full.into_inner(), 2);
                        thread::yield_now();
                    }
                }
            }
        });
        let first = pop_n(&mut consumer, 1);
        assert_eq!(first, [1]);
        assert_eq!(pop_n(&mut consumer, 1), [2]);
        writer.join().unwrap();
        assert_eq!(consumer.try_pop(), None);
    });
}

#[test]
fn slice_commits_across_the_wrap() {
    loom::model(|| {
        let (mut producer, mut consumer) = ring::<u64>(4);
        let writer = thread::spawn(move || {
            let items = [1, 2, 3, 4, 5, 6];
            let mut sent = 0;
            while sent < items.len() {
                let n = producer.push_slice(&items[sent..]);
                if n == 0 {
                    thread::yield_now();
                }
                sent += n;
            }
        });
        let mut got = Vec::new();
        let mut out = [0u64; 3];
        while got.len() < 6 {
            let n = consumer.pop_slice(&mut out);
            if n == 0 {
                thread::yield_now();
            }
            got.extend_from_slice(&out[..n]);
        }
        assert_eq!(got, [1, 2, 3, 4, 5, 6]);
        writer.join().unwrap();
    });
}

#[test]
fn chunk_commits_across_the_wrap() {
    loom::model(|| {
        let (mut producer, mut consumer) = ring::<String>(2);
        let writer = thread::spawn(move || {
            let mut next = 0;
            while next < 3 {
                let chunk = producer.write_chunk_uninit_up_to(2);
                let n = chunk.len().min(3 - next);
                let written = chunk.fill_from_iter((next..next + n).map(|i| i.to_string()));
                if written == 0 {
                    thread::yield_now();
                }
                next += written;
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            let chunk = consumer.read_chunk_up_to(2);
            if chunk.is_empty() {
                thread::yield_now();
                continue;
            }
            // Read in place, then move the first item out and drop the rest
            // with a commit: both kinds of release.
            let (a, b) = chunk.as_slices();
            let seen: Vec<String> = a.iter().chain(b).cloned().collect();
            got.push(seen[0].clone());
            let mut items = chunk.into_iter();
            assert_eq!(items.next().as_deref(), Some(seen[0].as_str()));
        }
        assert_eq!(got, ["0", "1", "2"]);
        writer.join().unwrap();
    });
}

/// Counts drops in a loom atomic, so the count is part of the model.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn abandonment_and_drop_of_items_left_inside() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut producer, mut consumer) = ring::<Counted>(2);
        let source = drops.clone();
        let writer = thread::spawn(move || {
            producer.try_push(Counted(source.clone())).unwrap();
            producer.try_push(Counted(source)).unwrap();
            // Dropping the producer leaves the items to the consumer.
        });
        // Take at most one item, then drop our end, whatever the producer
        // has done by then.
        if let Some(item) = consumer.try_pop() {
            drop(item);
        }
        drop(consumer);
        writer.join().unwrap();
        // Both ends gone: every item was dropped exactly once.
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn blocking_pop_sees_every_item_then_none() {
    loom::model(|| {
        let (mut producer, mut consumer) = ring::<u64>(1);
        let writer = thread::spawn(move || {
            producer.push(7).unwrap();
            producer.push(8).unwrap();
        });
        assert_eq!(consumer.pop(), Some(7));
        assert_eq!(consumer.pop(), Some(8));
        assert_eq!(consumer.pop(), None);
        writer.join().unwrap();
    });
}

#[test]
fn blocking_push_returns_item_when_consumer_drops() {
    loom::model(|| {
        let (mut producer, consumer) = ring::<u64>(1);
        producer.try_push(1).unwrap();
        let writer = thread::spawn(move || producer.push(2));
        drop(consumer);
        assert_eq!(writer.join().unwrap().unwrap_err().into_inner(), 2);
    });
}
