//! The page's server: `GET /` (the page), `GET /events` (the hub's events
//! as server-sent events, from the first), `GET /state` (every event so
//! far, as a JSON array); nothing else, and no method but `GET`. One
//! thread accepts; each request gets a thread of its own, so a browser
//! that holds its event stream open holds no one else up.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tiny_http::{Header, Method, Response};

use super::page;
use super::Hub;
use crate::http::HttpServer;

/// Why the page cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("--ui {addr}: cannot serve the page there: {reason}")]
pub struct UiError {
    addr: String,
    reason: String,
}

/// A running server.
pub(super) struct Server(HttpServer);

/// How long an idle event stream waits before it sends a keep-alive.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

impl Server {
    pub(super) fn start(addr: &str, hub: Arc<Hub>) -> Result<Server, UiError> {
        HttpServer::start(addr, "microbatch-ui", move |request| serve(request, &hub))
            .map(Server)
            .map_err(|reason| UiError {
                addr: addr.to_owned(),
                reason,
            })
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.0.addr()
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid static header")
}

fn serve(request: tiny_http::Request, hub: &Hub) {
    if *request.method() != Method::Get {
        let _ = request.respond(Response::from_string("only GET").with_status_code(405));
        return;
    }
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    match path.as_str() {
        "/" => {
            let response = Response::from_string(page::live())
                .with_header(header("Content-Type", "text/html; charset=utf-8"));
            let _ = request.respond(response);
        }
        "/state" => {
            let all = hub.all();
            let mut body = String::from("[");
            for (i, event) in all.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(event);
            }
            body.push(']');
            let response =
                Response::from_string(body).with_header(header("Content-Type", "application/json"));
            let _ = request.respond(response);
        }
        "/events" => stream(request, hub),
        _ => {
            let _ = request.respond(Response::from_string("not found").with_status_code(404));
        }
    }
}

/// Sends every event of the hub, from the first, as server-sent events
/// until the run is over or the browser leaves. The last event (`summary`
/// or `sweep`) ends the stream for the page; the connection itself closes
/// when the client leaves, or at once if it asked for `Connection: close`.
fn stream(request: tiny_http::Request, hub: &Hub) {
    let mut writer = request.into_writer();
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
    if writer
        .write_all(head.as_bytes())
        .and_then(|()| writer.flush())
        .is_err()
    {
        return;
    }
    let mut cursor = 0;
    loop {
        let (events, closed) = hub.events_from(cursor, KEEP_ALIVE);
        cursor += events.len();
        let mut text = String::new();
        for event in &events {
            text.push_str("data: ");
            text.push_str(event);
            text.push_str("\n\n");
        }
        if events.is_empty() && !closed {
            text.push_str(": keep-alive\n\n");
        }
        if writer
            .write_all(text.as_bytes())
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
        if closed && events.is_empty() {
            return;
        }
    }
}
