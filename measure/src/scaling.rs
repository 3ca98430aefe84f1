//! How much two cores of this machine give on the end_to_end job with no
//! engine at all: the single-thread loop (`end_to_end::single_thread`)
//! alone, then two independent copies at once, each pinned to its own
//! core. The ratio "two copies ÷ (2 × one)" is the ceiling of any parallel
//! engine's "engine ÷ (2 × single)" on this machine: below 1 when the two
//! vCPUs share a physical core or its caches and memory paths.
//!
//! `cargo run --release -p microbatch-measure -- scaling [ROUNDS] [RECORDS]`

use microbatch_bench::end_to_end::single_thread;
use microbatch_bench::pin::pin_to_core;

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let mut args = args.into_iter().skip(1);
    let rounds: usize = args
        .next()
        .map_or(5, |a| a.parse().expect("ROUNDS: a count"));
    let records: u64 = args
        .next()
        .map_or(30_000_000, |a| a.parse().expect("RECORDS: a count"));
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let one = std::thread::spawn(move || {
            pin_to_core(0);
            single_thread(records).0
        })
        .join()
        .expect("the single thread");
        let one_rate = records as f64 / one.as_secs_f64();
        let copies: Vec<_> = (0..2)
            .map(|core| {
                std::thread::spawn(move || {
                    pin_to_core(core);
                    single_thread(records).0
                })
            })
            .collect();
        let both: f64 = copies
            .into_iter()
            .map(|copy| records as f64 / copy.join().expect("a copy").as_secs_f64())
            .sum();
        let ratio = both / (2.0 * one_rate);
        println!(
            "round {round}: one thread {:.1} M/s; two copies {:.1} M/s together; ratio {ratio:.2}",
            one_rate / 1e6,
            both / 1e6
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median ratio two copies ÷ (2 × one): {:.2}",
        ratios[ratios.len() / 2]
    );
}
