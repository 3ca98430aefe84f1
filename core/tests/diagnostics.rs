//! The engine's diagnostics are `tracing` events a host's subscriber sees
//! (from every thread): start-up, a panicking batch retried, the first
//! failure, the shutdown. One test: the subscriber is the process's.

use std::sync::{Arc, Mutex};

use microbatch::job::{self, count};
use microbatch::sink::{CallbackSink, DiscardSink};
use microbatch::source::IterSource;
use microbatch::{Engine, PanicPolicy};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Keeps `LEVEL target: message` of every event.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}: {}", meta.level(), meta.target(), message.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn seen(captured: &Captured, level: Level, text: &str) -> bool {
    let prefix = format!("{level} microbatch: ");
    captured
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.starts_with(&prefix) && line.contains(text))
}

#[test]
fn diagnostics_reach_the_hosts_subscriber() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(captured.clone()).unwrap();

    // A batch that panics once, then folds: retried, with a warning.
    let flaky = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let once = Arc::clone(&flaky);
    let job = job::records::<u64>()
        .map(move |v: &u64| {
            if *v == 7 && once.swap(false, std::sync::atomic::Ordering::Relaxed) {
                panic!("a passing fault");
            }
            *v
        })
        .key_by(|v| *v % 3)
        .aggregate(count());
    let engine = Engine::builder(job, DiscardSink)
        .workers(1)
        .pin(false)
        .on_panic(PanicPolicy {
            retries: 1,
            dead_letters: None,
        })
        .source(IterSource::new(0..100u64))
        .start()
        .unwrap();
    assert_eq!(engine.finish().unwrap().records_in_results, 100);
    assert!(seen(&captured, Level::INFO, "the engine started workers=1"));
    assert!(seen(&captured, Level::WARN, "folding it again"));
    assert!(seen(&captured, Level::WARN, "a passing fault"));
    assert!(seen(
        &captured,
        Level::INFO,
        "the engine shut down records_in_results=100"
    ));

    // A failing sink: an error event names the cause.
    let failing = CallbackSink::new(|_, _, _: &[(u64, u64)]| panic!("the disk is gone"));
    let engine = Engine::builder(
        job::records::<u64>().key_by(|v| *v).aggregate(count()),
        failing,
    )
    .workers(1)
    .pin(false)
    .source(IterSource::new(0..10u64))
    .start()
    .unwrap();
    assert!(engine.finish().is_err());
    assert!(seen(&captured, Level::ERROR, "the disk is gone"));
}
