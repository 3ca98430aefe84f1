//! A request-analytics service on tokio: axum handlers push one record per
//! request through a shared async producer, a task receives each 100 ms
//! epoch (per endpoint: requests and latency percentiles) and logs it, and
//! `/metrics` serves the engine's metrics in Prometheus text. Nothing on
//! the runtime blocks: pushes await room (or shed, as configured), results
//! are read with `.await`, shutdown awaits the workers.
//!
//! `cargo run --release -p microbatch --features tokio --example tokio_service -- 127.0.0.1:8080`
//! then `curl 127.0.0.1:8080/hit/3/250` (endpoint 3, 250 µs) and
//! `curl 127.0.0.1:8080/metrics`; Ctrl-C stops it. `OVERLOAD=drop_newest`
//! sheds requests (answered 503) rather than wait when the engine is behind.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use microbatch::job::{self, count, quantiles, Job};
use microbatch::sink::EpochResult;
use microbatch::tokio::{AsyncProducer, ChannelSink};
use microbatch::{Config, Engine, Overload, Sent, ShutdownError, Summary};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What a handler records about one request.
#[derive(Debug, Clone, Copy)]
struct Request {
    endpoint: u16,
    micros: u64,
}

/// Per endpoint and epoch: requests, and latency percentiles.
fn per_endpoint() -> impl Job<Request, Row = (u16, (u64, job::QuantileSummary))> {
    job::records::<Request>()
        .key_by(|r| r.endpoint)
        .aggregate((count(), quantiles(|r: &Request| r.micros, 3)))
}

type Row = (u16, (u64, job::QuantileSummary));

/// What the handlers share: the producer and the metrics.
#[derive(Clone)]
struct App {
    requests: AsyncProducer<Request>,
    metrics: PrometheusHandle,
}

/// A running service: where it listens, and how to stop it.
struct Service {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    /// The server, then the engine's shutdown.
    done: tokio::task::JoinHandle<Result<Summary, ShutdownError>>,
    /// Ends once the engine's last epoch is logged.
    reporter: tokio::task::JoinHandle<()>,
}

/// How the reporter takes results: epochs waiting in its channel at most,
/// and a pause after each (a slow store it writes to).
struct Reporting {
    capacity: usize,
    pause: Duration,
    /// Gets every epoch once it is logged.
    logged: mpsc::UnboundedSender<EpochResult<Row>>,
}

/// Starts the engine, the reporter and the HTTP server on `listener`.
async fn start(
    listener: TcpListener,
    config: Config,
    metrics: PrometheusHandle,
    reporting: Reporting,
) -> Result<Service, Box<dyn std::error::Error>> {
    let (sink, mut epochs) = ChannelSink::bounded(reporting.capacity);
    let engine = Engine::builder(per_endpoint(), sink)
        .config(config)
        .start()?;
    // One ring per worker: handlers on every runtime thread share them.
    let app = App {
        requests: engine.async_producer(engine.config().workers),
        metrics,
    };
    let reporter = tokio::spawn(async move {
        while let Some(epoch) = epochs.recv().await {
            let requests: u64 = epoch.rows.iter().map(|(_, (n, _))| n).sum();
            if requests > 0 {
                let slowest = epoch.rows.iter().map(|(_, (_, q))| q.p99).max();
                println!(
                    "epoch {:>4}: {requests:>6} requests over {} endpoints, worst p99 {:?} µs",
                    epoch.epoch,
                    epoch.rows.len(),
                    slowest.unwrap_or(0),
                );
            }
            let _ = reporting.logged.send(epoch);
            tokio::time::sleep(reporting.pause).await;
        }
    });
    let router = Router::new()
        .route("/hit/{endpoint}/{micros}", get(hit))
        .route(
            "/metrics",
            get(|State(app): State<App>| async move { app.metrics.render() }),
        )
        .with_state(app);
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let failed = engine.failed();
    let done = tokio::spawn(async move {
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            tokio::select! {
                _ = stopped => {}
                cause = failed => eprintln!("the engine stopped: {cause:?}"),
            }
        });
        if let Err(error) = server.await {
            eprintln!("the server stopped: {error}");
        }
        engine.shutdown_async().await
    });
    Ok(Service {
        addr,
        stop,
        done,
        reporter,
    })
}

/// `GET /hit/{endpoint}/{micros}`: records the request; 202 if the engine
/// took it, 503 if it shed it or is shutting down.
async fn hit(State(app): State<App>, Path((endpoint, micros)): Path<(u16, u64)>) -> StatusCode {
    match app.requests.send(Request { endpoint, micros }).await {
        Ok(Sent::Accepted) => StatusCode::ACCEPTED,
        Ok(Sent::Shed) | Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:8080".into());
    let overload = match std::env::var("OVERLOAD").as_deref() {
        Ok("drop_newest") => Overload::DropNewest,
        Ok("fail") => Overload::Fail,
        Ok("block") | Err(_) => Overload::Block,
        Ok(other) => {
            return Err(format!("OVERLOAD={other}: expected block, fail or drop_newest").into())
        }
    };
    let config = Config::embedded()
        .with_interval(Some(Duration::from_millis(100)))
        .with_overload(overload);
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let listener = TcpListener::bind(&addr).await?;
    let (logged, mut epochs) = mpsc::unbounded_channel();
    let reporting = Reporting {
        capacity: 16,
        pause: Duration::ZERO,
        logged,
    };
    let service = start(listener, config, metrics, reporting).await?;
    println!(
        "listening on http://{}: GET /hit/ENDPOINT/MICROS, GET /metrics",
        service.addr
    );
    tokio::spawn(async move { while epochs.recv().await.is_some() {} });
    tokio::signal::ctrl_c().await?;
    let _ = service.stop.send(());
    let summary = service.done.await??;
    service.reporter.await?;
    println!(
        "{} requests in {} epochs, {} shed",
        summary.records_in_results, summary.epochs, summary.records_shed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// The process's metrics recorder: installed once, shared by the tests.
    fn metrics() -> PrometheusHandle {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        HANDLE
            .get_or_init(|| PrometheusBuilder::new().install_recorder().unwrap())
            .clone()
    }

    /// One HTTP/1.1 GET; the status code and the body.
    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
        (status, body.unwrap_or_default())
    }

    /// Fires `requests` requests from 8 tasks; how many got 202 and 503.
    async fn fire(addr: SocketAddr, requests: u64) -> (u64, u64) {
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                tokio::spawn(async move {
                    let (mut accepted, mut refused) = (0, 0);
                    for i in (task..requests).step_by(8) {
                        match get(addr, &format!("/hit/{}/{}", i % 5, 100 + i % 900))
                            .await
                            .0
                        {
                            202 => accepted += 1,
                            503 => refused += 1,
                            other => panic!("status {other}"),
                        }
                    }
                    (accepted, refused)
                })
            })
            .collect();
        let mut total = (0, 0);
        for task in tasks {
            let (a, r) = task.await.unwrap();
            total = (total.0 + a, total.1 + r);
        }
        total
    }

    fn counted(epochs: &mut mpsc::UnboundedReceiver<EpochResult<Row>>) -> u64 {
        let mut requests = 0;
        while let Ok(epoch) = epochs.try_recv() {
            requests += epoch
                .rows
                .iter()
                .map(|(_, (n, q))| {
                    assert_eq!(*n, q.count);
                    n
                })
                .sum::<u64>();
        }
        requests
    }

    /// Starts a service on a free port with `config` and a reporter
    /// taking `capacity` epochs at a time and pausing `pause` after each.
    async fn serve(
        config: Config,
        capacity: usize,
        pause: Duration,
    ) -> (Service, mpsc::UnboundedReceiver<EpochResult<Row>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (logged, epochs) = mpsc::unbounded_channel();
        let reporting = Reporting {
            capacity,
            pause,
            logged,
        };
        let service = start(listener, config, metrics(), reporting).await.unwrap();
        (service, epochs)
    }

    /// Stops `service`; its summary once the reporter has logged the last
    /// epoch.
    async fn stop(service: Service) -> Summary {
        service.stop.send(()).unwrap();
        let summary = service.done.await.unwrap().unwrap();
        service.reporter.await.unwrap();
        summary
    }

    /// One test, not two: the metrics recorder is the process's, so the
    /// two services run one after the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_service_counts_every_request_sheds_when_asked_and_exports_metrics() {
        // Blocking on a full ring: every request is counted.
        let config = Config::embedded().with_interval(Some(Duration::from_millis(10)));
        let (service, mut epochs) = serve(config, 16, Duration::ZERO).await;
        let before = scrape(&get(service.addr, "/metrics").await.1, IN_RESULTS);
        let (accepted, refused) = fire(service.addr, 400).await;
        assert_eq!((accepted, refused), (400, 0), "blocking: nothing shed");
        // The counter rises as the epochs complete.
        let mut risen = 0.0;
        for _ in 0..600 {
            let (status, body) = get(service.addr, "/metrics").await;
            assert_eq!(status, 200);
            risen = scrape(&body, IN_RESULTS) - before;
            if risen >= 400.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(risen, 400.0, "records in results, scraped");
        let summary = stop(service).await;
        assert_eq!(summary.records_in_results, 400);
        assert_eq!(counted(&mut epochs), 400, "every request in a logged epoch");

        // Shedding: one worker, epochs of 50 records, one epoch in flight,
        // rings of 16 and a reporter that takes 5 epochs a second through
        // a channel of one. The engine holds a few hundred records, then
        // falls behind the requests, and sheds rather than wait.
        let config = Config::embedded()
            .with_workers(1)
            .with_interval(None)
            .with_max_batch_records(Some(50))
            .with_max_epochs_in_flight(1)
            .with_ring_capacity(16)
            .with_overload(Overload::DropNewest);
        let (service, mut epochs) = serve(config, 1, Duration::from_millis(200)).await;
        let (accepted, refused) = fire(service.addr, 2_000).await;
        let shed = scrape(
            &get(service.addr, "/metrics").await.1,
            "microbatch_records_shed_total",
        );
        let summary = stop(service).await;
        assert_eq!(accepted + refused, 2_000);
        assert!(refused > 0, "a service behind sheds");
        assert_eq!(summary.records_in_results, accepted);
        assert_eq!(summary.records_shed, refused);
        assert!(shed <= refused as f64, "shed so far, scraped: {shed}");
        assert_eq!(counted(&mut epochs), accepted);
    }

    const IN_RESULTS: &str = "microbatch_records_in_results_total";

    /// The value of the `name` counter in Prometheus text (0 if absent).
    fn scrape(body: &str, name: &str) -> f64 {
        body.lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}
