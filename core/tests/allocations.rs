//! No heap allocation per record in steady state: a counting global
//! allocator watches a running engine take in a million records.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use microbatch::job::{self, count, sum};
use microbatch::sink::DiscardSink;
use microbatch::{Engine, PlacementPolicy};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every call to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract; passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const KEYS: u64 = 1000;

#[test]
fn steady_state_takes_no_allocation_per_record() {
    // One at a time: the counter is global.
    for placement in [
        PlacementPolicy::Adaptive,
        PlacementPolicy::Partitioned,
        PlacementPolicy::Combined,
    ] {
        steady_state(placement);
    }
}

fn steady_state(placement: PlacementPolicy) {
    let job = job::records::<(u64, u64)>()
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &(u64, u64)| r.1)));
    let engine = Engine::builder(job, DiscardSink)
        .workers(2)
        .pin(false)
        .interval(Some(Duration::from_millis(2)))
        .placement(placement)
        .start()
        .unwrap();
    let mut producers = [engine.producer(), engine.producer()];
    let batch: Vec<(u64, u64)> = (0..KEYS).map(|k| (k, k)).collect();
    let mut push = |rounds: u64| {
        for _ in 0..rounds {
            for producer in &mut producers {
                producer.push_slice(&batch).unwrap();
            }
        }
    };
    // Warm up: every key in every table, every buffer made.
    push(200);
    let epochs_before = engine.progress().epochs_completed;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    push(500);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let epochs = engine.progress().epochs_completed - epochs_before + 2;
    let summary = engine.shutdown().unwrap();
    assert_eq!(summary.records_in_results, 700 * 2 * KEYS);
    let records = 500 * 2 * KEYS;
    println!("{placement:?}: {allocations} allocations over {epochs} epochs and {records} records");
    // The progress report of each epoch allocates a little (cold path);
    // records allocate nothing.
    assert!(
        allocations <= 8 * epochs,
        "{placement:?}: {allocations} allocations over {epochs} epochs and {records} records"
    );
}
