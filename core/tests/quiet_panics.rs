//! A panic the panic policy handles is not printed once per attempt: with
//! dead letters for 20 poison records, the process's panic hook hears
//! nothing (the dead-letter file has each record and its panic). Its own
//! test binary: the panic hook is the process's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use microbatch::job::{self, count};
use microbatch::sink::DiscardSink;
use microbatch::source::IterSource;
use microbatch::{Engine, PanicPolicy};

#[test]
fn handled_panics_do_not_reach_the_panic_hook() {
    let heard = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&heard);
    std::panic::set_hook(Box::new(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    }));
    let dir = tempfile::tempdir().unwrap();
    let letters = dir.path().join("dead.jsonl");
    let poisoned = job::records::<(u64, u64)>()
        .map(|r: &(u64, u64)| {
            assert_ne!(r.1 % 500, 7, "poison");
            *r
        })
        .key_by(|r| r.0)
        .aggregate(count());
    let engine = Engine::builder(poisoned, DiscardSink)
        .workers(2)
        .pin(false)
        .on_panic(PanicPolicy {
            retries: 2,
            dead_letters: Some(letters.clone()),
        })
        .source(IterSource::new((0..10_000u64).map(|i| (i % 13, i))))
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    assert_eq!(summary.records_dead_lettered, 20);
    assert_eq!(
        std::fs::read_to_string(&letters).unwrap().lines().count(),
        20
    );
    assert_eq!(
        heard.load(Ordering::Relaxed),
        0,
        "handled panics were printed"
    );
}
