//! The small HTTP server behind the live page and the metrics: binds an
//! address, hands each request to a thread of its own (so a browser that
//! holds an event stream open holds no one else up), and stops accepting
//! when dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running server.
pub(crate) struct HttpServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    accepting: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `addr`, each request by `handle` on a thread named `name`;
    /// the error says why it cannot.
    pub(crate) fn start(
        addr: &str,
        name: &str,
        handle: impl Fn(tiny_http::Request) + Send + Sync + 'static,
    ) -> Result<HttpServer, String> {
        let server = tiny_http::Server::http(addr).map_err(|error| error.to_string())?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| "not an IP address".to_owned())?;
        let server = Arc::new(server);
        let handle = Arc::new(handle);
        let accepting = {
            let server = Arc::clone(&server);
            let name = name.to_owned();
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    for request in server.incoming_requests() {
                        let handle = Arc::clone(&handle);
                        let _ = std::thread::Builder::new()
                            .name(format!("{name}-request"))
                            .spawn(move || handle(request));
                    }
                })
                .map_err(|error| error.to_string())?
        };
        Ok(HttpServer {
            server,
            addr: bound,
            accepting: Some(accepting),
        })
    }

    /// The address it listens on (the port chosen, for port 0).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}
