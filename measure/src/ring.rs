//! Interleaved A/B trials (alternating which goes first) of single-item ring throughput: microbatch's ring
//! and rtrb, one trial each in turn, each trial on fresh pinned threads and
//! a fresh ring. Criterion runs one benchmark after the other, so a drift
//! of the machine between them shows up as a difference between the rings;
//! interleaving cancels it, and the medians over many trials are what two
//! regimes (lockstep vs batched, see bench/README.md) average out to.
//!
//! `cargo run --release -p microbatch-measure -- ring [CAPACITY] [TRIALS]`

use std::time::Duration;

use crate::ab::median;
use microbatch_bench::queues::{pop_spinning, push_spinning, Microbatch, Queue, Rtrb};
use microbatch_bench::transfer::two_threads;

const ITEMS: u64 = 1 << 24;

fn single<Q: Queue<u64>>(capacity: usize) -> Duration {
    let (mut tx, mut rx) = Q::with_capacity(capacity);
    two_threads(
        move || {
            for seq in 0..ITEMS {
                push_spinning::<u64, Q>(&mut tx, seq);
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..ITEMS {
                sum = sum.wrapping_add(pop_spinning::<u64, Q>(&mut rx));
            }
            sum
        },
    )
}

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let mut args = args.into_iter().skip(1);
    let capacity: usize = args
        .next()
        .map_or(4096, |a| a.parse().expect("CAPACITY: a number"));
    let trials: usize = args
        .next()
        .map_or(15, |a| a.parse().expect("TRIALS: a number"));
    let rate = |d: Duration| ITEMS as f64 / d.as_secs_f64() / 1e6;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for trial in 0..trials {
        // Alternate which ring goes first, so neither gains from its place.
        if trial % 2 == 0 {
            ours.push(rate(single::<Microbatch>(capacity)));
            theirs.push(rate(single::<Rtrb>(capacity)));
        } else {
            theirs.push(rate(single::<Rtrb>(capacity)));
            ours.push(rate(single::<Microbatch>(capacity)));
        }
    }
    let (a, b) = (median(&mut ours.clone()), median(&mut theirs.clone()));
    println!("capacity {capacity}, {trials} interleaved trials of {ITEMS} u64 each, M items/s");
    println!(
        "microbatch: median {a:.0}  all {:?}",
        ours.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    println!(
        "rtrb:       median {b:.0}  all {:?}",
        theirs.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    println!("ratio microbatch / rtrb (medians): {:.2}", a / b);
    // Both rings slow down together when the machine does: the ratio within
    // each pair of neighbouring trials is the steadier figure.
    let mut paired: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a / b).collect();
    let paired = median(&mut paired);
    println!("ratio microbatch / rtrb (median of paired trials): {paired:.2}");
}
