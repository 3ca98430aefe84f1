//! Interleaved trials of the end_to_end job: in each round the
//! single-thread loop, the engine at 100 ms and at 1 ms, and the naive
//! mpsc design run back to back (order alternating), so each round gives
//! paired ratios on the same machine state. Then seal-to-result and record
//! latency at 100 ms under half the measured load, idle workers parking
//! and yielding.
//!
//! `cargo run --release -p microbatch-measure -- end_to_end [rounds] [records]`

use std::time::Duration;

use crate::ab::median;
use microbatch::IdleStrategy;
use microbatch_bench::end_to_end;

const WORKERS: usize = 2;

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) {
    let args: Vec<u64> = crate::ab::numbers(args);
    let rounds = args.first().copied().unwrap_or(7) as usize;
    let records = args.get(1).copied().unwrap_or(50_000_000);
    let rate = |d: Duration, n: u64| n as f64 / d.as_secs_f64() / 1e6;
    let (mut single, mut e100, mut e1, mut naive) = (vec![], vec![], vec![], vec![]);
    let (mut ratio100, mut ratio1) = (vec![], vec![]);
    println!("round  single M/s  engine@100ms M/s  engine@1ms M/s  naive M/s  100ms/(W×single)  1ms/(W×single)");
    for round in 0..rounds {
        let run_single = || rate(end_to_end::single_thread(records).0, records);
        let run_engines = || {
            let a = rate(
                end_to_end::engine(WORKERS, Duration::from_millis(100), records, None).0,
                records,
            );
            let b = rate(
                end_to_end::engine(WORKERS, Duration::from_millis(1), records, None).0,
                records,
            );
            (a, b)
        };
        let (s, (a, b)) = if round % 2 == 0 {
            let s = run_single();
            (s, run_engines())
        } else {
            let ab = run_engines();
            (run_single(), ab)
        };
        let n = rate(end_to_end::naive(WORKERS, records / 10), records / 10);
        let (r100, r1) = (a / (WORKERS as f64 * s), b / (WORKERS as f64 * s));
        println!("{round:>5}  {s:>10.1}  {a:>16.1}  {b:>14.1}  {n:>9.1}  {r100:>16.2}  {r1:>14.2}");
        single.push(s);
        e100.push(a);
        e1.push(b);
        naive.push(n);
        ratio100.push(r100);
        ratio1.push(r1);
    }
    let engine100 = median(&mut e100);
    println!(
        "median {:>10.1}  {:>16.1}  {:>14.1}  {:>9.1}  {:>16.2}  {:>14.2}",
        median(&mut single),
        engine100,
        median(&mut e1),
        median(&mut naive),
        median(&mut ratio100),
        median(&mut ratio1),
    );

    // Half load at 100 ms: 30 s of records at half the median rate, idle
    // workers parking (the default) and yielding. The first epoch is the
    // warm-up (every table grows from empty, on fresh pages) and is
    // reported on its own; the percentiles are of the other 299 (so the
    // p99 is the third worst, not the worst).
    let half = (engine100 * 1e6 / 2.0) as u64;
    for idle in [IdleStrategy::Backoff, IdleStrategy::Yield] {
        half_load(half, idle);
    }
}

fn half_load(rate: u64, idle: IdleStrategy) {
    let epochs = end_to_end::at_rate(WORKERS, Duration::from_millis(100), rate * 30, rate, idle);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let warmup = epochs.first().map_or(0.0, |e| ms(e.seal_to_result));
    let mut seal_to_result: Vec<f64> = epochs
        .iter()
        .skip(1)
        .filter(|e| e.records > 0)
        .map(|e| ms(e.seal_to_result))
        .collect();
    let worst_latency = epochs
        .iter()
        .skip(1)
        .map(|e| e.latency.p99_micros)
        .max()
        .unwrap_or(0);
    let combined: usize = epochs.iter().map(|e| e.combined_batches).sum();
    let count = seal_to_result.len();
    seal_to_result.sort_by(f64::total_cmp);
    let p99 = seal_to_result[(count * 99 / 100).min(count - 1)];
    println!(
        "half load ({:.1} M/s) at 100 ms, idle {idle:?}: {count} epochs after the first, seal-to-result median {:.2} ms, p99 {:.2} ms, max {:.2} ms (first epoch {warmup:.2} ms); worst epoch record-latency p99 {:.1} ms; {combined} of {} batches combined",
        rate as f64 / 1e6,
        seal_to_result[count / 2],
        p99,
        seal_to_result[count - 1],
        worst_latency as f64 / 1e3,
        epochs.len() * WORKERS,
    );
}
