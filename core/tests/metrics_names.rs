//! Two engines in one process report apart when named: every metric is
//! labelled `engine = name`, and each name's counters hold its own run.

use metrics_exporter_prometheus::PrometheusBuilder;
use microbatch::job::{self, count};
use microbatch::sink::DiscardSink;
use microbatch::source::IterSource;
use microbatch::Engine;

/// The value of the sample `name{labels}` in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line[series.len()..].trim().parse().ok())
}

#[test]
fn named_engines_report_under_their_own_label() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let run = |name: &str, records: u64| {
        let engine = metrics::with_local_recorder(&recorder, || {
            Engine::builder(
                job::records::<u64>().key_by(|r| *r % 10).aggregate(count()),
                DiscardSink,
            )
            .workers(2)
            .pin(false)
            .metrics_name(name)
            .source(IterSource::new(0..records))
            .start()
            .unwrap()
        });
        engine.finish().unwrap();
    };
    run("small", 1_000);
    run("large", 50_000);
    let text = handle.render();
    assert_eq!(
        sample(
            &text,
            "microbatch_records_in_results_total{engine=\"small\"}"
        ),
        Some(1_000.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "microbatch_records_in_results_total{engine=\"large\"}"
        ),
        Some(50_000.0)
    );
    assert_eq!(
        sample(&text, "microbatch_records_accepted_total{engine=\"small\"}"),
        Some(1_000.0)
    );
    assert!(
        text.contains("microbatch_epochs_total{engine=\"large\",reason=\"shutdown\"}"),
        "{text}"
    );
}
