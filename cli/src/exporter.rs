//! `run --metrics ADDR`: the engine's metrics (see the `metrics` names in
//! the engine's `telemetry` module, all prefixed `microbatch_`) in the
//! Prometheus text format at `GET /metrics`, while the run lasts. The
//! recorder is `metrics-exporter-prometheus`'s, without its own HTTP
//! listener; the same small server as the live page serves it.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tiny_http::{Header, Method, Response};

use crate::http::HttpServer;

/// Why the metrics cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("--metrics {addr}: {reason}")]
pub struct MetricsError {
    addr: String,
    reason: String,
}

/// The served metrics; stops serving when dropped.
pub struct MetricsServer(HttpServer);

impl MetricsServer {
    /// Installs the Prometheus recorder (once per process) and serves its
    /// text at `http://ADDR/metrics`.
    pub fn start(addr: &str) -> Result<MetricsServer, MetricsError> {
        let fail = |reason: String| MetricsError {
            addr: addr.to_owned(),
            reason,
        };
        let handle: PrometheusHandle = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|error| fail(error.to_string()))?;
        HttpServer::start(addr, "microbatch-metrics", move |request| {
            let response = if *request.method() != Method::Get {
                Response::from_string("only GET").with_status_code(405)
            } else if request.url().split('?').next() == Some("/metrics") {
                Response::from_string(handle.render()).with_header(
                    Header::from_bytes(&b"Content-Type"[..], &b"text/plain; version=0.0.4"[..])
                        .expect("a valid static header"),
                )
            } else {
                Response::from_string("not found: try /metrics").with_status_code(404)
            };
            let _ = request.respond(response);
        })
        .map(MetricsServer)
        .map_err(fail)
    }

    /// Where the metrics are served.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.0.addr())
    }
}
