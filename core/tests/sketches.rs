//! The sketch aggregators through the engine: per endpoint and epoch, the
//! latency quantiles, the distinct users and the top pages of a request
//! stream, on two workers, against the same figures computed exactly.

use std::collections::{HashMap, HashSet};

use microbatch::job::{self, distinct, quantiles, top_k, QuantileSummary};
use microbatch::sink::CollectSink;
use microbatch::source::IterSource;
use microbatch::Engine;

#[derive(Debug, Clone, Copy)]
struct Request {
    endpoint: u32,
    micros: u64,
    user: u64,
    page: u32,
}

fn requests() -> Vec<Request> {
    (0..60_000u64)
        .map(|i| Request {
            endpoint: (i % 3) as u32,
            micros: 100 + (i * 7919) % 5000,
            user: (i * 31) % 4000,
            page: ((i % 97) * (i % 97) / 97) as u32,
        })
        .collect()
}

/// An endpoint's row: latency quantiles, distinct users, top pages.
type EndpointRow = (QuantileSummary, u64, Vec<(u32, u64)>);

#[test]
fn per_endpoint_quantiles_distinct_users_and_top_pages() {
    let per_endpoint = job::records::<Request>().key_by(|r| r.endpoint).aggregate((
        quantiles(|r: &Request| r.micros, 3),
        distinct(|r: &Request| r.user, 14),
        top_k(|r: &Request| r.page, 3, 128),
    ));
    let (sink, collected) = CollectSink::new();
    let engine = Engine::builder(per_endpoint, sink)
        .workers(2)
        .pin(false)
        .interval(None)
        .max_batch_records(None) // one epoch: one row per endpoint
        .source(IterSource::new(requests()))
        .start()
        .unwrap();
    engine.finish().unwrap();
    let rows: HashMap<u32, EndpointRow> = collected
        .take()
        .into_iter()
        .map(|(_, (endpoint, row))| (endpoint, row))
        .collect();
    assert_eq!(rows.len(), 3);
    for endpoint in 0..3u32 {
        let mine: Vec<Request> = requests()
            .into_iter()
            .filter(|r| r.endpoint == endpoint)
            .collect();
        let (latency, users, pages) = &rows[&endpoint];
        let mut micros: Vec<u64> = mine.iter().map(|r| r.micros).collect();
        micros.sort_unstable();
        let p99 = micros[micros.len() * 99 / 100 - 1] as f64;
        assert_eq!(latency.count, mine.len() as u64);
        assert!(
            (latency.p99 as f64 - p99).abs() <= p99 * 2e-3,
            "{latency:?}"
        );
        let exact_users = mine.iter().map(|r| r.user).collect::<HashSet<_>>().len() as f64;
        assert!(
            (*users as f64 - exact_users).abs() <= exact_users * 0.03,
            "{users} vs {exact_users}"
        );
        let mut counts: HashMap<u32, u64> = HashMap::new();
        for r in &mine {
            *counts.entry(r.page).or_default() += 1;
        }
        let mut exact: Vec<(u32, u64)> = counts.into_iter().collect();
        exact.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(pages[0].0, exact[0].0, "the top page");
        assert_eq!(pages.len(), 3);
    }
}
