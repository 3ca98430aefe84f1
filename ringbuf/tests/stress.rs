//! Two threads, 10^7 sequence numbers through a small ring: received
//! complete and in order, whichever way they are pushed and popped.

use std::thread;

use microbatch_ringbuf::{ring, Consumer, Producer};

/// Items per stress run: fewer under Miri, which interprets every access.
const COUNT: u64 = if cfg!(miri) { 2_000 } else { 10_000_000 };
const CAPACITY: usize = 64;

#[derive(Clone, Copy, Debug)]
enum Way {
    Single,
    Slice,
    Chunk,
}

fn produce(mut producer: Producer<u64>, way: Way) {
    let mut next = 0u64;
    let mut batch = [0u64; 37];
    while next < COUNT {
        match way {
            Way::Single => {
                producer.push(next).unwrap();
                next += 1;
            }
            Way::Slice => {
                let n = batch.len().min((COUNT - next) as usize);
                for (i, slot) in batch[..n].iter_mut().enumerate() {
                    *slot = next + i as u64;
                }
                let mut sent = 0;
                while sent < n {
                    sent += producer.push_slice(&batch[sent..n]);
                    std::hint::spin_loop();
                }
                next += n as u64;
            }
            Way::Chunk => {
                let chunk = producer.write_chunk_uninit_up_to(29);
                let n = chunk.len().min((COUNT - next) as usize);
                next += chunk.fill_from_iter(next..next + n as u64) as u64;
                if n == 0 {
                    thread::yield_now();
                }
            }
        }
    }
}

fn consume(mut consumer: Consumer<u64>, way: Way) -> u64 {
    let mut expected = 0u64;
    let mut out = [0u64; 41];
    while expected < COUNT {
        match way {
            Way::Single => {
                assert_eq!(consumer.pop(), Some(expected));
                expected += 1;
            }
            Way::Slice => {
                let n = consumer.pop_slice(&mut out);
                for &v in &out[..n] {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                if n == 0 {
                    thread::yield_now();
                }
            }
            Way::Chunk => {
                let chunk = consumer.read_chunk_up_to(31);
                let (a, b) = chunk.as_slices();
                for &v in a.iter().chain(b) {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                if chunk.is_empty() {
                    thread::yield_now();
                }
                chunk.commit_all();
            }
        }
    }
    assert_eq!(consumer.try_pop(), None);
    expected
}

fn run(push: Way, pop: Way) {
    let (producer, consumer) = ring::<u64>(CAPACITY);
    let writer = thread::spawn(move || produce(producer, push));
    let received = consume(consumer, pop);
    writer.join().unwrap();
    assert_eq!(received, COUNT, "{push:?} → {pop:?}");
}

#[test]
fn ten_million_in_order_single_items() {
    run(Way::Single, Way::Single);
}

#[test]
fn ten_million_in_order_slices() {
    run(Way::Slice, Way::Slice);
}

#[test]
fn ten_million_in_order_chunks() {
    run(Way::Chunk, Way::Chunk);
}

#[test]
fn ten_million_in_order_mixed_ways() {
    run(Way::Single, Way::Chunk);
    run(Way::Chunk, Way::Slice);
    run(Way::Slice, Way::Single);
}

#[test]
fn blocking_pop_returns_none_after_producer_drops() {
    let (mut producer, mut consumer) = ring::<u64>(4);
    let writer = thread::spawn(move || {
        for i in 0..1000 {
            producer.push(i).unwrap();
        }
    });
    let mut got = 0;
    while let Some(v) = consumer.pop() {
        assert_eq!(v, got);
        got += 1;
    }
    writer.join().unwrap();
    assert_eq!(got, 1000);
}

#[test]
fn blocking_push_hands_item_back_when_consumer_drops() {
    let (mut producer, consumer) = ring::<u64>(2);
    producer.push(1).unwrap();
    producer.push(2).unwrap();
    let pusher = thread::spawn(move || producer.push(3));
    drop(consumer);
    let error = pusher.join().unwrap().unwrap_err();
    assert_eq!(error.into_inner(), 3);
}
