//! Unit tests of producers, lanes and readers.

use std::time::Duration;

use std::time::Instant;

use super::*;
use crate::config::Overload;
use crate::sync::{Arc, Ordering};

#[test]
fn a_run_counts_from_the_earliest_push_not_yet_accounted_for() {
    // An engine "started" 10 s ago: push stamps read about 10 s.
    let start = Instant::now() - Duration::from_secs(10);
    let lanes = Arc::new(Lanes::<u32>::new(1, start, Overload::Block));
    let mut producer = Producer::attach(Arc::clone(&lanes), 0, 64, false);
    let mut inputs = LaneReader::new(0, Arc::clone(&lanes));
    let mut runs: Vec<(usize, Option<u64>)> = Vec::new();

    producer.try_push(1).unwrap();
    let first = producer.lane.pushed.load(Ordering::Relaxed);
    producer.try_push(2).unwrap();
    // A later push keeps the earlier stamp.
    assert_eq!(producer.lane.pushed.load(Ordering::Relaxed), first);
    inputs.take(u64::MAX, 0, |records, pushed| {
        if !records.is_empty() {
            runs.push((records.len(), pushed))
        }
    });
    assert_eq!(runs.len(), 1);
    let (count, pushed) = runs[0];
    assert_eq!(count, 2);
    assert_eq!(pushed, Some(first - 1));
    assert!(pushed.unwrap() >= 10_000_000, "{pushed:?}");
    // Taken: the stamp is cleared, and the next push stamps anew.
    assert_eq!(producer.lane.pushed.load(Ordering::Relaxed), 0);
    producer.push_slice(&[3, 4]).unwrap();
    let second = producer.lane.pushed.load(Ordering::Relaxed);
    assert!(second >= first);
    runs.clear();
    inputs.take(u64::MAX, 0, |records, pushed| {
        if !records.is_empty() {
            runs.push((records.len(), pushed))
        }
    });
    assert_eq!(runs, vec![(2, Some(second - 1))]);
}

#[test]
fn a_thief_takes_from_other_rings_and_the_owner_does_not_go_back_an_epoch() {
    let lanes = Arc::new(Lanes::<u32>::new(2, Instant::now(), Overload::Block));
    let mut producer = Producer::attach(Arc::clone(&lanes), 0, 64, false);
    let mut owner = LaneReader::new(0, Arc::clone(&lanes));
    let mut thief = LaneReader::new(1, Arc::clone(&lanes));
    let collect = |inputs: &mut LaneReader<u32>, epoch| {
        let mut got = Vec::new();
        let round = inputs.take(u64::MAX, epoch, |r, _| got.extend_from_slice(r));
        (got, round.skipped)
    };

    producer.push_slice(&[1, 2, 3]).unwrap();
    // A worker never steals from its own rings.
    assert_eq!(owner.steal(u64::MAX, 0, |_, _| panic!("own ring")), 0);
    let mut stolen = Vec::new();
    assert_eq!(thief.steal(2, 1, |r, _| stolen.extend_from_slice(r)), 2);
    assert_eq!(stolen, [1, 2], "a chunk within the budget, in order");

    // The owner is still in epoch 0: it leaves the ring alone until it
    // opens epoch 1, and says it did not look.
    assert_eq!(collect(&mut owner, 0), (vec![], true));
    assert_eq!(collect(&mut owner, 1), (vec![3], false));
    // Nothing pending: a thief finds nothing.
    assert_eq!(thief.steal(u64::MAX, 1, |_, _| panic!("empty")), 0);
    // After the close a thief takes nothing.
    producer.push_slice(&[4]).unwrap();
    lanes.close();
    assert_eq!(thief.steal(u64::MAX, 1, |_, _| panic!("closed")), 0);
    assert_eq!(collect(&mut owner, 1), (vec![4], false));
}

#[test]
fn a_thief_leaves_a_ring_that_holds_less_than_a_chunk_to_its_owner() {
    let lanes = Arc::new(Lanes::<u32>::new(2, Instant::now(), Overload::Block));
    let mut producer = Producer::attach(Arc::clone(&lanes), 0, 2 * CHUNK, false);
    let mut thief = LaneReader::new(1, Arc::clone(&lanes));
    let records: Vec<u32> = (0..CHUNK as u32).collect();
    producer.push_slice(&records[1..]).unwrap();
    assert_eq!(
        thief.steal(u64::MAX, 0, |_, _| panic!("the owner keeps up")),
        0
    );
    assert!(!thief.take_missed_claim(), "not claimed: too little");
    producer.push_slice(&records[..1]).unwrap();
    let mut stolen = Vec::new();
    let taken = thief.steal(u64::MAX, 0, |r, _| stolen.extend_from_slice(r));
    assert_eq!(taken, CHUNK as u64);
    assert_eq!(stolen.len(), CHUNK);
}

#[test]
fn a_thief_without_room_takes_nothing_and_leaves_the_rings_hints() {
    let lanes = Arc::new(Lanes::<u32>::new(2, Instant::now(), Overload::Block));
    let mut producer = Producer::attach(Arc::clone(&lanes), 0, 4 * CHUNK, false);
    let mut thief = LaneReader::new(1, Arc::clone(&lanes));
    let records: Vec<u32> = (0..2 * CHUNK as u32).collect();
    producer.push_slice(&records).unwrap();
    assert_eq!(thief.steal(u64::MAX, 0, |_, _| {}), CHUNK as u64);
    let lane = &producer.lane;
    assert!(lane.backlog.load(Ordering::Relaxed), "a chunk is left");
    assert!(lane.wanted.load(Ordering::Relaxed));
    assert_eq!(thief.steal(0, 0, |_, _| panic!("no room")), 0);
    assert!(lane.backlog.load(Ordering::Relaxed), "still a chunk left");
    assert!(lane.wanted.load(Ordering::Relaxed), "still wanted");
}

#[test]
fn a_taker_folds_outside_the_claim_while_a_thief_wants_the_ring() {
    let lanes = Arc::new(Lanes::<u32>::new(2, Instant::now(), Overload::Block));
    let mut producer = Producer::attach(Arc::clone(&lanes), 0, 4 * CHUNK, false);
    let mut owner = LaneReader::new(0, Arc::clone(&lanes));
    let mut thief = LaneReader::new(1, Arc::clone(&lanes));
    let records: Vec<u32> = (0..3 * CHUNK as u32).collect();
    producer.push_slice(&records).unwrap();
    let lane = Arc::clone(&producer.lane);
    // The owner holds the ring: the thief misses it and says so.
    let claim = lane.try_claim().unwrap();
    assert_eq!(thief.steal(u64::MAX, 0, |_, _| panic!("claimed")), 0);
    assert!(thief.take_missed_claim());
    assert!(!thief.take_missed_claim(), "said once");
    drop(claim);
    // While the ring holds more than the owner takes, it folds each
    // chunk after giving the ring up, so a thief could take the next.
    let mut taken = Vec::new();
    let mut fold = |r: &[u32], _| {
        assert!(lane.try_claim().is_some(), "folded under the claim");
        taken.extend_from_slice(r);
    };
    assert_eq!(owner.take(u64::MAX, 0, &mut fold).records, CHUNK as u64);
    assert_eq!(owner.take(u64::MAX, 0, &mut fold).records, CHUNK as u64);
    // The thief's chunk comes between, in order.
    let mut stolen = Vec::new();
    thief.steal(u64::MAX, 0, |r, _| stolen.extend_from_slice(r));
    assert_eq!(owner.take(u64::MAX, 0, &mut fold).records, 0);
    assert_eq!(taken, records[..2 * CHUNK]);
    assert_eq!(stolen, records[2 * CHUNK..]);
    // Emptied: no thief wants it any more, and the owner folds in place.
    producer.push_slice(&records[..2]).unwrap();
    let mut in_place = 0;
    owner.take(u64::MAX, 0, |r, _| {
        assert!(lane.try_claim().is_none(), "in place, under the claim");
        in_place += r.len();
    });
    assert_eq!(in_place, 2);
}

#[test]
fn a_drained_ring_of_a_dropped_producer_leaves_the_thieves_list() {
    let lanes = Arc::new(Lanes::<u32>::new(2, Instant::now(), Overload::Block));
    let mut owner = LaneReader::new(0, Arc::clone(&lanes));
    let mut thief = LaneReader::new(1, Arc::clone(&lanes));
    let mut producer = Producer::attach(Arc::clone(&lanes), 0, 64, false);
    let _other = Producer::attach(Arc::clone(&lanes), 0, 64, false);
    producer.push_slice(&[1, 2]).unwrap();
    assert_eq!(thief.steal(1, 0, |_, _| {}), 1);
    assert_eq!(thief.victims.len(), 2);
    drop(producer);
    let mut got = Vec::new();
    owner.take(u64::MAX, 0, |r, _| got.extend_from_slice(r));
    assert_eq!(got, [2], "the rest is taken before the ring retires");
    owner.take(u64::MAX, 0, |_, _| {});
    assert_eq!(
        owner.own.len(),
        1,
        "the empty ring of the dropped producer retired"
    );
    assert_eq!(lanes.all.lock().unwrap().len(), 1);
    // The thief's next attempt refreshes its list: the ring is freed.
    assert_eq!(thief.steal(u64::MAX, 0, |_, _| {}), 0);
    assert_eq!(thief.victims.len(), 1);
}

#[test]
fn a_full_ring_hands_the_record_back_after_the_timeout_or_by_the_policy() {
    // No reader: a ring of two fills with two records.
    let full = |overload| {
        let lanes = Arc::new(Lanes::<u32>::new(1, Instant::now(), overload));
        let mut producer = Producer::attach(Arc::clone(&lanes), 0, 2, false);
        producer.push_slice(&[1, 2]).unwrap();
        (lanes, producer)
    };
    let (_, mut producer) = full(Overload::Block);
    assert_eq!(
        producer.push_timeout(3, Duration::from_millis(5)),
        Err(PushError::Full(3))
    );
    let (_, mut producer) = full(Overload::Fail);
    assert_eq!(producer.send(3), Err(PushError::Full(3)));
    let (lanes, mut producer) = full(Overload::DropNewest);
    assert_eq!(producer.send(3), Ok(Sent::Shed));
    assert_eq!(producer.send(4), Ok(Sent::Shed));
    assert_eq!(lanes.shed.load(Ordering::Relaxed), 2);
    // Closed wins over any policy.
    lanes.close();
    assert_eq!(producer.send(5), Err(PushError::Closed(5)));
}
