//! Loom models of the epoch clock: concurrent advances of the same epoch
//! move it exactly once; the in-flight window holds while workers seal and
//! emit concurrently; a deadline not yet written for a newly opened epoch
//! never makes it look expired; an opener preempted between its CAS and its
//! store never leaves a sealed epoch's deadline in place of the open one's.
#![cfg(loom)]

use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use microbatch::internals::{Advance, EpochClock};

#[test]
fn concurrent_advances_of_one_epoch_move_it_once() {
    loom::model(|| {
        let clock = Arc::new(EpochClock::new(2, 4, None, 0));
        let wins = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (clock, wins) = (clock.clone(), wins.clone());
                thread::spawn(move || match clock.try_advance(0, 0) {
                    Advance::Advanced => {
                        wins.fetch_add(1, Ordering::Relaxed);
                    }
                    Advance::Lost { current } => assert_eq!(current, 1),
                    Advance::WindowFull => panic!("the window has room"),
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(wins.load(Ordering::Relaxed), 1);
        assert_eq!(clock.current(), 1);
    });
}

#[test]
fn window_holds_while_workers_seal_and_emit() {
    loom::model(|| {
        // One epoch in flight: epoch e+1 cannot be sealed before both
        // workers emitted e.
        let clock = Arc::new(EpochClock::new(2, 1, None, 0));
        let handles: Vec<_> = (0..2)
            .map(|worker| {
                let clock = clock.clone();
                thread::spawn(move || {
                    for epoch in 0..2u64 {
                        // Seal `epoch` (ourselves or by seeing someone else do it).
                        while clock.current() <= epoch {
                            match clock.try_advance(epoch, 0) {
                                Advance::Advanced | Advance::Lost { .. } => {}
                                Advance::WindowFull => thread::yield_now(),
                            }
                        }
                        let current = clock.current();
                        let finished = clock.finished();
                        assert!(
                            current - finished.min(current) <= 1,
                            "window exceeded: {current} vs {finished}"
                        );
                        clock.mark_emitted(worker, epoch);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(clock.current(), 2);
        assert_eq!(clock.finished(), 2);
    });
}

#[test]
fn unwritten_deadline_of_a_new_epoch_never_looks_expired() {
    loom::model(|| {
        // Epoch 0 runs from 0 to 10 µs; epoch 1 opens at 20 µs, deadline 30.
        let clock = Arc::new(EpochClock::new(2, 4, Some(Duration::from_micros(10)), 0));
        let advancer = {
            let clock = clock.clone();
            thread::spawn(move || assert_eq!(clock.try_advance(0, 20), Advance::Advanced))
        };
        // At 25 µs epoch 1 has not expired, whether or not its deadline is
        // written yet. (Epoch 0 has, unless it was sealed meanwhile: then it
        // is no longer open and reads as not expired, which is also right.)
        let open = clock.current();
        let expired = clock.interval_expired(open, 25);
        assert!(!(open == 1 && expired), "epoch 1 looked expired at 25 µs");
        advancer.join().unwrap();
    });
}

#[test]
fn a_preempted_opener_never_overwrites_a_newer_deadline() {
    loom::model(|| {
        // One thread opens epoch 1; another, as soon as it sees epoch 1,
        // seals it by count (opening 2) with another interval. Whatever the
        // interleaving of their deadline stores, epoch 2's is the one left:
        // it expires at 5 + 3 µs and records the 3 µs it opened with.
        let clock = Arc::new(EpochClock::new(2, 4, Some(Duration::from_micros(10)), 0));
        let first = {
            let clock = clock.clone();
            thread::spawn(move || assert_eq!(clock.try_advance(0, 1), Advance::Advanced))
        };
        let second = {
            let clock = clock.clone();
            thread::spawn(move || {
                while clock.current() == 0 {
                    thread::yield_now();
                }
                clock.set_interval(Duration::from_micros(3));
                assert_eq!(clock.try_advance(1, 5), Advance::Advanced);
            })
        };
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(clock.current(), 2);
        assert!(!clock.interval_expired(2, 7));
        assert!(clock.interval_expired(2, 8));
        assert_eq!(clock.interval_of_open(2), Some(Duration::from_micros(3)));
    });
}
