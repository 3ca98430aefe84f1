//! The ring against a reference model: random sequences of every operation,
//! single-threaded, compared step by step with a bounded `VecDeque`.

use std::collections::VecDeque;

use microbatch_ringbuf::{ring, Full, TooFewSlots};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    TryPush,
    TryPop,
    Peek,
    PushSlice(usize),
    PopSlice(usize),
    WriteChunk(usize),
    WriteChunkUpTo(usize, usize),
    ReadChunkCommit(usize, usize),
    ReadChunkUpToIter(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::TryPush),
        3 => Just(Op::TryPop),
        1 => Just(Op::Peek),
        2 => (0usize..40).prop_map(Op::PushSlice),
        2 => (0usize..40).prop_map(Op::PopSlice),
        1 => (0usize..40).prop_map(Op::WriteChunk),
        1 => (0usize..40, 0usize..40).prop_map(|(a, b)| Op::WriteChunkUpTo(a, b)),
        1 => (0usize..40, 0usize..40).prop_map(|(a, b)| Op::ReadChunkCommit(a, b)),
        1 => (0usize..40, 0usize..40).prop_map(|(a, b)| Op::ReadChunkUpToIter(a, b)),
    ]
}

proptest! {
    // Under Miri each case is interpreted: a few cases check every unsafe
    // access; natively, 512 search for a wrong state.
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 512 },
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    #[test]
    fn ring_matches_vecdeque(requested in 1usize..33, ops in prop::collection::vec(op(), 1..200)) {
        let (mut producer, mut consumer) = ring::<u64>(requested);
        let capacity = producer.capacity();
        prop_assert!(capacity.is_power_of_two() && capacity >= requested && capacity < 2 * requested);
        let mut model: VecDeque<u64> = VecDeque::new();
        let mut next = 0u64;
        let mut fresh = |n: usize| -> Vec<u64> { (0..n).map(|_| { next += 1; next }).collect() };

        for op in ops {
            match op {
                Op::TryPush => {
                    let v = fresh(1)[0];
                    match producer.try_push(v) {
                        Ok(()) => model.push_back(v),
                        Err(Full(back)) => {
                            prop_assert_eq!(back, v);
                            prop_assert_eq!(model.len(), capacity);
                        }
                    }
                }
                Op::TryPop => prop_assert_eq!(consumer.try_pop(), model.pop_front()),
                Op::Peek => prop_assert_eq!(consumer.peek().copied(), model.front().copied()),
                Op::PushSlice(n) => {
                    let items = fresh(n);
                    let pushed = producer.push_slice(&items);
                    prop_assert_eq!(pushed, n.min(capacity - model.len()));
                    model.extend(&items[..pushed]);
                }
                Op::PopSlice(n) => {
                    let mut out = vec![0; n];
                    let popped = consumer.pop_slice(&mut out);
                    prop_assert_eq!(popped, n.min(model.len()));
                    let expected: Vec<u64> = model.drain(..popped).collect();
                    prop_assert_eq!(&out[..popped], &expected[..]);
                }
                Op::WriteChunk(n) => {
                    let free = capacity - model.len();
                    match producer.write_chunk_uninit(n) {
                        Ok(chunk) => {
                            prop_assert!(n <= free);
                            prop_assert_eq!(chunk.len(), n);
                            let items = fresh(n);
                            prop_assert_eq!(chunk.fill_from_iter(items.iter().copied()), n);
                            model.extend(items);
                        }
                        Err(TooFewSlots { requested, available }) => {
                            prop_assert_eq!((requested, available), (n, free));
                            prop_assert!(n > free);
                        }
                    }
                }
                Op::WriteChunkUpTo(max, supply) => {
                    let mut chunk = producer.write_chunk_uninit_up_to(max);
                    let reserved = max.min(capacity - model.len());
                    prop_assert_eq!(chunk.len(), reserved);
                    // Initialize through the slices, commit only `supply` of them.
                    let commit = supply.min(reserved);
                    let items = fresh(commit);
                    let (a, b) = chunk.as_mut_slices();
                    prop_assert_eq!(a.len() + b.len(), reserved);
                    for (slot, item) in a.iter_mut().chain(b.iter_mut()).zip(&items) {
                        slot.write(*item);
                    }
                    // SAFETY: the first `commit` slots were written just above.
                    unsafe { chunk.commit(commit) };
                    model.extend(items);
                }
                Op::ReadChunkCommit(n, commit) => {
                    match consumer.read_chunk(n) {
                        Ok(chunk) => {
                            prop_assert!(n <= model.len());
                            let (a, b) = chunk.as_slices();
                            let seen: Vec<u64> = a.iter().chain(b).copied().collect();
                            let expected: Vec<u64> = model.iter().take(n).copied().collect();
                            prop_assert_eq!(seen, expected);
                            let commit = commit.min(n);
                            chunk.commit(commit);
                            model.drain(..commit);
                        }
                        Err(TooFewSlots { requested, available }) => {
                            prop_assert_eq!((requested, available), (n, model.len()));
                        }
                    }
                }
                Op::ReadChunkUpToIter(max, take) => {
                    let chunk = consumer.read_chunk_up_to(max);
                    prop_assert_eq!(chunk.len(), max.min(model.len()));
                    let taken: Vec<u64> = chunk.into_iter().take(take).collect();
                    let expected: Vec<u64> = model.drain(..take.min(max).min(model.len())).collect();
                    prop_assert_eq!(taken, expected);
                }
            }
            prop_assert_eq!(producer.len(), model.len());
            prop_assert_eq!(consumer.len(), model.len());
            prop_assert_eq!(producer.slots(), capacity - model.len());
            prop_assert_eq!(consumer.is_empty(), model.is_empty());
            prop_assert_eq!(producer.is_full(), model.len() == capacity);
        }
    }
}
