//! Loom models of the shuffle mesh: two workers sending to each other
//! through rings too small for what they send must both finish (a worker
//! waiting for room drains its own inbox), with every message delivered in
//! order, and buffers handed back must reach their sender.
#![cfg(loom)]

use loom::thread;
use microbatch::internals::mesh;

#[test]
fn mutual_sends_through_full_rings_do_not_deadlock() {
    loom::model(|| {
        // Capacity 1, two messages each way: each worker's second send
        // finds the ring full unless the other has drained it.
        let mut endpoints = mesh::<u64>(2, 1).unwrap();
        let second = endpoints.pop().unwrap();
        let first = endpoints.pop().unwrap();
        let handles: Vec<_> = [first, second]
            .into_iter()
            .map(|mut endpoint| {
                thread::spawn(move || {
                    let other = 1 - endpoint.id();
                    let mut got = Vec::new();
                    for i in 0..2 {
                        endpoint
                            .send(other, i, |from, m| got.push((from, m)))
                            .unwrap();
                    }
                    while got.len() < 2 {
                        match endpoint.try_recv() {
                            Some(m) => got.push(m),
                            None => thread::yield_now(),
                        }
                    }
                    assert_eq!(got, [(other, 0), (other, 1)]);
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
}

#[test]
fn buffers_return_to_their_sender() {
    loom::model(|| {
        let mut endpoints = mesh::<Vec<u64>>(2, 1).unwrap();
        let mut receiver = endpoints.pop().unwrap();
        let mut sender = endpoints.pop().unwrap();
        let owner = thread::spawn(move || loop {
            match receiver.try_recv() {
                Some((from, mut part)) => {
                    assert_eq!(part, [1, 2, 3]);
                    part.clear();
                    receiver.give_back(from, part).unwrap();
                    return;
                }
                None => thread::yield_now(),
            }
        });
        sender
            .send(1, vec![1, 2, 3], |_, _| unreachable!())
            .unwrap();
        let back = loop {
            match sender.reclaim() {
                Some(buffer) => break buffer,
                None => thread::yield_now(),
            }
        };
        assert!(back.is_empty() && back.capacity() >= 3);
        owner.join().unwrap();
    });
}
