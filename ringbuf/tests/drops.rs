//! Drop accounting: every item handed to the ring is dropped exactly once,
//! whichever way it leaves (popped, dropped by a chunk commit, left in the
//! ring when both ends go, handed back when full).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use microbatch_ringbuf::ring;

/// Counts its drops in a shared counter; dropping one twice would show as a
/// count above the number created.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn items_left_in_ring_dropped_once_when_both_ends_gone() {
    for (consumer_first, wrapped) in [(true, false), (false, false), (true, true), (false, true)] {
        let drops = counter();
        let (mut producer, mut consumer) = ring::<Counted>(8);
        if wrapped {
            // Move the indices so the items left straddle the end of the buffer.
            for _ in 0..6 {
                producer.try_push(Counted(drops.clone())).unwrap();
                drop(consumer.try_pop());
            }
        }
        for _ in 0..5 {
            producer.try_push(Counted(drops.clone())).unwrap();
        }
        let before = drops.load(Ordering::Relaxed);
        if consumer_first {
            drop(consumer);
            assert!(producer.is_abandoned());
            assert_eq!(
                drops.load(Ordering::Relaxed),
                before,
                "still owned by the producer end"
            );
            drop(producer);
        } else {
            drop(producer);
            assert!(consumer.is_abandoned());
            assert_eq!(drops.load(Ordering::Relaxed), before);
            drop(consumer);
        }
        assert_eq!(drops.load(Ordering::Relaxed), before + 5);
        assert_eq!(Arc::strong_count(&drops), 1, "no item leaked");
    }
}

#[test]
fn full_hands_item_back_without_dropping_it() {
    let drops = counter();
    let (mut producer, _consumer) = ring::<Counted>(1);
    producer.try_push(Counted(drops.clone())).unwrap();
    let back = producer
        .try_push(Counted(drops.clone()))
        .unwrap_err()
        .into_inner();
    assert_eq!(drops.load(Ordering::Relaxed), 0);
    drop(back);
    assert_eq!(drops.load(Ordering::Relaxed), 1);
}

#[test]
fn read_chunk_commit_drops_committed_items_only() {
    let drops = counter();
    let (mut producer, mut consumer) = ring::<Counted>(8);
    for _ in 0..6 {
        producer.try_push(Counted(drops.clone())).unwrap();
    }
    consumer.read_chunk(5).unwrap().commit(3);
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    assert_eq!(consumer.len(), 3);
    // Dropping a chunk without committing keeps its items in the ring.
    let _ = consumer.read_chunk(3).unwrap();
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    assert_eq!(consumer.len(), 3);
    drop((producer, consumer));
    assert_eq!(drops.load(Ordering::Relaxed), 6);
    assert_eq!(Arc::strong_count(&drops), 1);
}

#[test]
fn read_chunk_iterator_moves_taken_items_and_leaves_the_rest() {
    let drops = counter();
    let (mut producer, mut consumer) = ring::<Counted>(4);
    // Wrap so the chunk has two runs.
    for _ in 0..3 {
        producer.try_push(Counted(drops.clone())).unwrap();
        drop(consumer.try_pop());
    }
    for _ in 0..4 {
        producer.try_push(Counted(drops.clone())).unwrap();
    }
    let taken: Vec<Counted> = consumer
        .read_chunk(4)
        .unwrap()
        .into_iter()
        .take(3)
        .collect();
    assert_eq!(drops.load(Ordering::Relaxed), 3, "moved out, not dropped");
    assert_eq!(consumer.len(), 1);
    drop(taken);
    assert_eq!(drops.load(Ordering::Relaxed), 6);
    drop((producer, consumer));
    assert_eq!(drops.load(Ordering::Relaxed), 7);
    assert_eq!(Arc::strong_count(&drops), 1);
}

#[test]
fn read_chunk_move_into_moves_every_item_in_order_and_frees_the_slots() {
    let drops = counter();
    let (mut producer, mut consumer) = ring::<(usize, Counted)>(4);
    // Wrap so the chunk has two runs.
    for _ in 0..3 {
        producer.try_push((0, Counted(drops.clone()))).unwrap();
        drop(consumer.try_pop());
    }
    for i in 1..=4 {
        producer.try_push((i, Counted(drops.clone()))).unwrap();
    }
    let mut out = Vec::with_capacity(1);
    consumer.read_chunk(3).unwrap().move_into(&mut out);
    assert_eq!(drops.load(Ordering::Relaxed), 3, "moved out, not dropped");
    assert_eq!(out.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(consumer.len(), 1);
    // The freed slots take new items.
    for i in 5..=7 {
        producer.try_push((i, Counted(drops.clone()))).unwrap();
    }
    consumer.read_chunk_up_to(8).move_into(&mut out);
    assert_eq!(
        out.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    assert!(consumer.is_empty());
    drop(out);
    assert_eq!(drops.load(Ordering::Relaxed), 10);
    drop((producer, consumer));
    assert_eq!(
        Arc::strong_count(&drops),
        1,
        "no item leaked or dropped twice"
    );
}

#[test]
fn uncommitted_write_chunk_leaves_ring_unchanged() {
    let (mut producer, consumer) = ring::<String>(4);
    let mut chunk = producer.write_chunk_uninit(3).unwrap();
    // An item that owns no heap memory: an uncommitted item leaks, as
    // documented, and Miri's leak check would take a heap one for a bug.
    chunk.as_mut_slices().0[0].write(String::new());
    // Dropping the chunk commits nothing (nothing is dropped twice).
    let _ = chunk;
    assert_eq!(consumer.len(), 0);
    assert_eq!(producer.slots(), 4);
}

#[test]
fn fill_from_iter_commits_what_was_written_when_the_iterator_panics() {
    let drops = counter();
    let (mut producer, mut consumer) = ring::<Counted>(8);
    let source = drops.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let chunk = producer.write_chunk_uninit(5).unwrap();
        chunk.fill_from_iter((0..5).map(|i| {
            assert!(i < 3, "iterator fails at its fourth item");
            Counted(source.clone())
        }))
    }));
    assert!(result.is_err());
    assert_eq!(consumer.len(), 3, "the three items written are in the ring");
    assert_eq!(consumer.read_chunk(3).unwrap().into_iter().count(), 3);
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    drop((producer, consumer, source));
    assert_eq!(Arc::strong_count(&drops), 1);
}

#[test]
fn items_in_flight_between_threads_are_dropped_once() {
    let drops = counter();
    let (mut producer, mut consumer) = ring::<Counted>(16);
    let source = drops.clone();
    let writer = std::thread::spawn(move || {
        let mut created = 0;
        for _ in 0..10_000 {
            created += 1;
            // Once the consumer is gone the item comes back and is dropped here.
            if producer.push(Counted(source.clone())).is_err() {
                break;
            }
        }
        created
    });
    // Read some, then drop the consumer with items possibly inside.
    for _ in 0..5_000 {
        drop(consumer.pop().unwrap());
    }
    drop(consumer);
    let created = writer.join().unwrap();
    assert_eq!(drops.load(Ordering::Relaxed), created);
    assert_eq!(Arc::strong_count(&drops), 1, "no item leaked");
}
