//! Loom models of the closing protocol: a push racing with shutdown is
//! either taken by the worker's final drain or handed back, never both,
//! never neither.

use std::time::Instant;

use super::{Closed, LaneReader, Lanes, Producer, PushError};
use crate::config::Overload;
use crate::sync::Arc;

/// The worker side: drain until closed and empty, then release.
fn drain_until_closed(mut inputs: LaneReader<u32>) -> Vec<u32> {
    let mut taken = Vec::new();
    loop {
        let closed = inputs.poll_closed();
        let round = inputs.take(u64::MAX, 0, |records, _| taken.extend_from_slice(records));
        if closed && round.records == 0 && !round.skipped {
            inputs.release();
            return taken;
        }
        loom::thread::yield_now();
    }
}

#[test]
fn push_racing_close_is_taken_or_handed_back() {
    loom::model(|| {
        let lanes = Arc::new(Lanes::new(1, Instant::now(), Overload::Block));
        let mut producer = Producer::attach(Arc::clone(&lanes), 0, 2, false);
        let worker = loom::thread::spawn({
            let inputs = LaneReader::new(0, Arc::clone(&lanes));
            move || drain_until_closed(inputs)
        });
        let pusher = loom::thread::spawn(move || producer.try_push(7));
        lanes.close();
        let pushed = pusher.join().unwrap();
        let taken = worker.join().unwrap();
        match pushed {
            Ok(()) => assert_eq!(taken, [7], "an accepted record is taken"),
            Err(PushError::Closed(7)) => {
                assert!(taken.is_empty(), "a record handed back is not taken")
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    });
}

#[test]
fn slice_racing_close_hands_back_a_suffix() {
    loom::model(|| {
        let lanes = Arc::new(Lanes::new(1, Instant::now(), Overload::Block));
        let mut producer = Producer::attach(Arc::clone(&lanes), 0, 1, false);
        let worker = loom::thread::spawn({
            let inputs = LaneReader::new(0, Arc::clone(&lanes));
            move || drain_until_closed(inputs)
        });
        let pusher = loom::thread::spawn(move || match producer.push_slice(&[1, 2]) {
            Ok(()) => Vec::new(),
            Err(Closed(back)) => back.to_vec(),
        });
        lanes.close();
        let back = pusher.join().unwrap();
        let mut taken = worker.join().unwrap();
        taken.extend(back);
        assert_eq!(taken, [1, 2], "every record once, in order");
    });
}

/// A thief steals while a push races with the close and the owner's
/// final drain (run by the closing thread, so no thread spins waiting
/// for the close): every record is taken by exactly one worker or
/// handed back, never both, never neither.
#[test]
fn steal_racing_close_and_final_drain_takes_each_record_once() {
    loom::model(|| {
        let lanes = Arc::new(Lanes::new(2, Instant::now(), Overload::Block));
        let mut producer = Producer::attach(Arc::clone(&lanes), 0, 1, false);
        let thief = loom::thread::spawn({
            let mut inputs = LaneReader::new(1, Arc::clone(&lanes));
            move || {
                let mut stolen = Vec::new();
                // Two attempts, as a thief with nothing of its own
                // makes between other work.
                for _ in 0..2 {
                    if inputs.poll_closed() {
                        break;
                    }
                    // Room for one record: a thief takes a ring's
                    // records once they fill its room or a chunk.
                    inputs.steal(1, 0, |records, _| stolen.extend_from_slice(records));
                }
                inputs.release();
                stolen
            }
        });
        let pusher = loom::thread::spawn(move || match producer.try_push(7) {
            Ok(()) => Vec::new(),
            Err(PushError::Closed(back)) => vec![back],
            Err(PushError::Full(_)) => unreachable!("the ring has room"),
        });
        lanes.close();
        let mut all = drain_until_closed(LaneReader::new(0, Arc::clone(&lanes)));
        all.extend(thief.join().unwrap());
        all.extend(pusher.join().unwrap());
        assert_eq!(all, [7], "the record once");
    });
}

/// Two callers of one shared ring race the close: the claim serializes
/// their stores, so the ring holds at most one record stored after the
/// close, and each caller's record is taken by the final drain or handed
/// back to it, once. (The closing thread runs the final drain.)
#[test]
fn shared_ring_callers_racing_close_each_get_their_own_record_back() {
    use super::SharedProducer;
    loom::model(|| {
        let lanes = Arc::new(Lanes::new(1, Instant::now(), Overload::Block));
        let shared = SharedProducer::new(vec![Producer::attach(Arc::clone(&lanes), 0, 2, false)]);
        let callers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|record| {
                let shared = shared.clone();
                loom::thread::spawn(move || match shared.try_push(record) {
                    Ok(()) => None,
                    Err(PushError::Closed(back)) => {
                        assert_eq!(back, record, "a caller gets its own record back");
                        Some(back)
                    }
                    Err(PushError::Full(_)) => unreachable!("the ring has room for both"),
                })
            })
            .collect();
        lanes.close();
        let mut all = drain_until_closed(LaneReader::new(0, Arc::clone(&lanes)));
        for caller in callers {
            all.extend(caller.join().unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, [1, 2], "each record once");
    });
}
