//! What the interleaved A/B examples (`examples/*_ab.rs`) share: the
//! median of their rounds, and a generator's records drawn into memory
//! before a run, so that drawing them is not what a run measures.

use microbatch::source::{Event, Generator, GeneratorConfig, Poll, SourceSpec};

/// The median of `values` (the upper one of an even count); sorts them.
///
/// # Panics
///
/// If `values` is empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The first `records` records `config`'s generator draws, at full speed
/// (its rate and record count are ignored), in one thread.
pub fn events_in_memory(mut config: GeneratorConfig, records: usize) -> Vec<Event> {
    config.rate = None;
    config.records = None;
    let mut source = Generator::new(config)
        .split(1)
        .expect("a valid generator")
        .pop()
        .expect("one part");
    let mut out = Vec::with_capacity(records);
    let mut chunk = Vec::with_capacity(4096);
    while out.len() < records {
        chunk.clear();
        let want = (records - out.len()).min(4096);
        match source.poll(0, &mut chunk, want) {
            Poll::Ready { .. } => out.extend_from_slice(&chunk),
            Poll::Idle | Poll::EpochEnd => {}
            Poll::Exhausted => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value_of_the_sorted_rounds() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
    }

    #[test]
    fn events_in_memory_are_the_generators_first_records() {
        let config = GeneratorConfig {
            keys: 10,
            rate: Some(1),
            records: Some(5),
            ..GeneratorConfig::default()
        };
        let events = events_in_memory(config.clone(), 10_000);
        assert_eq!(events.len(), 10_000, "rate and count are ignored");
        assert!(events.iter().all(|e| e.key < 10));
        assert_eq!(events_in_memory(config, 100), events[..100]);
    }
}
