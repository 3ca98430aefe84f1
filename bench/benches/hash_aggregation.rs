//! `hash_aggregation`: folding one sealed batch of 1 M generated records
//! into per-key count + sum, in records/s, at 1 000 and 100 000 uniform
//! keys. In one group per key count: the engine's path (a keyed job's
//! `absorb` into the parts of 2 workers, as a worker does, then `finish`;
//! partitioned, and combined with the `split` at the seal),
//! and the baselines: a hashbrown table with FxHash folded by hand (the
//! same table and hash the engine uses, without the job layer) and
//! `std::collections::HashMap` with its default SipHash. Every table is
//! emptied after each batch and keeps its memory, as the engine's parts do.
//!
//! `cargo bench -p microbatch-bench --bench hash_aggregation`

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hashbrown::hash_table::HashTable;
use microbatch::job::{self, count, sum, Job, Parts, Placement};
use microbatch::source::{Event, Generator, GeneratorConfig, Poll, Source};
use microbatch_bench::end_to_end::fold_by_hand;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: u64 = 1 << 20;

fn batch(keys: u64) -> Vec<Event> {
    let generator = Generator::new(GeneratorConfig {
        keys,
        records: Some(RECORDS),
        ..GeneratorConfig::default()
    });
    let mut part = generator.parts(1).expect("valid workload").remove(0);
    let mut events = Vec::with_capacity(RECORDS as usize);
    let mut chunk = Vec::with_capacity(4096);
    loop {
        chunk.clear();
        if let Poll::Exhausted = part.poll(0, &mut chunk, 4096) {
            return events;
        }
        events.extend_from_slice(&chunk);
    }
}

fn hash_aggregation(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash_aggregation");
    group
        .throughput(Throughput::Elements(RECORDS))
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for key_space in [1_000u64, 100_000] {
        let events = batch(key_space);
        let keys = events
            .iter()
            .map(|e| e.key)
            .collect::<std::collections::HashSet<_>>()
            .len() as u64; // distinct keys drawn
        for (name, placement) in [
            ("keyed_job_absorb_2_parts", Placement::Partitioned),
            (
                "keyed_job_absorb_combined_split_2_parts",
                Placement::Combined,
            ),
        ] {
            group.bench_with_input(BenchmarkId::new(name, key_space), &events, |b, events| {
                let job = job::records::<Event>()
                    .key_by(|e| e.key)
                    .aggregate((count(), sum(|e: &Event| e.value)));
                let mut parts: Vec<_> = (0..job.partitions(2)).map(|_| job.new_part()).collect();
                let mut rows = Vec::new();
                b.iter(|| {
                    job.place(Parts::from(&mut parts), placement);
                    for chunk in black_box(events).chunks(4096) {
                        job.absorb(chunk, Parts::from(&mut parts));
                    }
                    job.split(Parts::from(&mut parts));
                    for part in &mut parts {
                        job.finish(part, &mut rows);
                    }
                    assert_eq!(rows.len() as u64, keys);
                    rows.clear();
                })
            });
        }
        group.bench_with_input(
            BenchmarkId::new("baseline_hashbrown_fx", key_space),
            &events,
            |b, events| {
                let mut table: HashTable<(u64, u64, u64)> = HashTable::new();
                b.iter(|| {
                    fold_by_hand(&mut table, black_box(events));
                    assert_eq!(table.len() as u64, keys);
                    table.clear();
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("baseline_std_hashmap", key_space),
            &events,
            |b, events| {
                let mut table: HashMap<u64, (u64, u64)> = HashMap::new();
                b.iter(|| {
                    for event in black_box(events) {
                        let total = table.entry(event.key).or_default();
                        total.0 += 1;
                        total.1 = total.1.wrapping_add(event.value);
                    }
                    assert_eq!(table.len() as u64, keys);
                    table.clear();
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, hash_aggregation);
criterion_main!(benches);
