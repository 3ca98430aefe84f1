//! A service embedding the engine: request-handler threads push one record
//! per request, and a reporter thread receives each 100 ms epoch as a whole
//! through a channel: per endpoint, the request count and mean latency.
//!
//! `cargo run --release -p microbatch --example service`

use std::time::Duration;

use microbatch::job::{self, count, mean};
use microbatch::sink::ChannelSink;
use microbatch::Engine;

/// What a handler records about one request.
#[derive(Debug, Clone, Copy)]
struct Request {
    endpoint: u16,
    micros: u32,
}

fn main() -> Result<(), microbatch::EngineError> {
    let per_endpoint = job::records::<Request>()
        .key_by(|r| r.endpoint)
        .aggregate((count(), mean(|r: &Request| r.micros)));
    let (sink, results) = ChannelSink::bounded(16);
    let engine = Engine::builder(per_endpoint, sink)
        .interval(Some(Duration::from_millis(100)))
        .start()?;

    let reporter = std::thread::spawn(move || {
        for epoch in results {
            let requests: u64 = epoch.rows.iter().map(|(_, (n, _))| n).sum();
            println!(
                "epoch {:>3}: {requests:>8} requests over {} endpoints, result {:?} after the seal",
                epoch.epoch,
                epoch.rows.len(),
                epoch.progress.seal_to_result,
            );
        }
    });

    std::thread::scope(|scope| {
        for handler in 0..3u32 {
            let mut producer = engine.producer();
            scope.spawn(move || {
                for i in 0..400_000u32 {
                    let request = Request {
                        endpoint: (i % 8) as u16,
                        micros: 100 + (i * 7 + handler) % 900,
                    };
                    producer
                        .push(request)
                        .expect("the engine runs until shutdown");
                    if i % 1000 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        }
    });

    let summary = engine.shutdown()?;
    reporter.join().expect("the reporter thread");
    println!(
        "{} requests in {} epochs; latency p99 {} µs",
        summary.records_in_results, summary.epochs, summary.latency.p99_micros
    );
    assert_eq!(summary.records_in_results, summary.records_accepted);
    Ok(())
}
