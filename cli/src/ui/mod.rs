//! The live page of a run or a sweep (`--ui ADDR`, `--ui-save FILE`).
//!
//! The runner's thread, on its 100 ms tick, publishes what it already has
//! (the tick's figures, the epochs completed since the last tick, each
//! run's report) as JSON events into a [`Hub`]. The engine's threads do
//! nothing for the page: the listener only stored the epochs, as it always
//! does. A small server (`server`) serves the page and streams the hub's
//! events to each browser as server-sent events, from the first; the page
//! (`page`: HTML, its script and the vendored uPlot chart library, all in
//! the binary) draws them. `--ui-save` writes the same page with every
//! event inside, so it opens with no server.

mod page;
mod server;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::driver::{Observer, Status};
use crate::report::{EpochLine, RunReport};

pub use server::UiError;

/// The events of a run, in order, for every page that asks.
#[derive(Default)]
pub struct Hub {
    events: Mutex<Vec<Arc<str>>>,
    changed: Condvar,
    closed: AtomicBool,
}

impl Hub {
    /// Adds the event `{"type": kind, "data": data}`.
    pub fn publish(&self, kind: &str, data: &impl Serialize) {
        #[derive(Serialize)]
        struct Event<'a, T> {
            #[serde(rename = "type")]
            kind: &'a str,
            data: &'a T,
        }
        let Ok(json) = serde_json::to_string(&Event { kind, data }) else {
            return;
        };
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(json.into());
        self.changed.notify_all();
    }

    /// The events from `cursor` on, waiting up to `wait` for one if there
    /// is none yet; and whether the run is over (no event will follow).
    fn events_from(&self, cursor: usize, wait: Duration) -> (Vec<Arc<str>>, bool) {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let (events, _) = self
            .changed
            .wait_timeout_while(events, wait, |events| {
                events.len() <= cursor && !self.closed.load(Ordering::Acquire)
            })
            .unwrap_or_else(PoisonError::into_inner);
        let new = events.get(cursor..).unwrap_or_default().to_vec();
        (new, self.closed.load(Ordering::Acquire))
    }

    /// No event will follow: every stream ends once it has sent the rest.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.notify_all();
    }

    /// Every event so far.
    fn all(&self) -> Vec<Arc<str>> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A run's page: its hub, and the server if the page is served live.
pub struct Ui {
    hub: Arc<Hub>,
    server: Option<server::Server>,
}

impl Ui {
    /// A page for `kind` (`run` or `sweep`) of the profile `name`, whose
    /// settings are `profile_toml`; served at `addr` if given.
    pub fn start(
        addr: Option<&str>,
        kind: &str,
        name: &str,
        profile_toml: &str,
    ) -> Result<Ui, UiError> {
        let hub = Arc::new(Hub::default());
        #[derive(Serialize)]
        struct Start<'a> {
            kind: &'a str,
            name: &'a str,
            profile: &'a str,
        }
        hub.publish(
            "start",
            &Start {
                kind,
                name,
                profile: profile_toml,
            },
        );
        let server = addr
            .map(|addr| server::Server::start(addr, Arc::clone(&hub)))
            .transpose()?;
        Ok(Ui { hub, server })
    }

    /// Where the page is served, if it is.
    pub fn url(&self) -> Option<String> {
        self.server
            .as_ref()
            .map(|server| format!("http://{}/", server.addr()))
    }

    /// An observer that feeds the page and passes everything on to
    /// `inner` (the progress bar).
    pub fn observer<'a>(&self, inner: &'a mut dyn Observer) -> UiObserver<'a> {
        UiObserver {
            hub: Arc::clone(&self.hub),
            inner,
        }
    }

    /// Publishes the final event (`summary` of a run, `sweep` of a sweep)
    /// and ends every stream.
    pub fn finish(&self, kind: &str, data: &impl Serialize) {
        self.hub.publish(kind, data);
        self.hub.close();
    }

    /// Writes the page with every event inside it to `path`: one file that
    /// opens with no server.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, page::saved(&self.hub.all()))
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        self.hub.close();
    }
}

/// Feeds a [`Hub`] from the runner's observer calls.
pub struct UiObserver<'a> {
    hub: Arc<Hub>,
    inner: &'a mut dyn Observer,
}

/// What a tick tells the page.
#[derive(Serialize)]
struct Tick {
    elapsed_s: f64,
    planned_s: f64,
    warming_up: bool,
    epochs: u64,
    records_taken: u64,
    records_in_results: u64,
}

impl Observer for UiObserver<'_> {
    fn tick(&mut self, status: &Status) {
        self.inner.tick(status);
        self.hub.publish(
            "tick",
            &Tick {
                elapsed_s: status.elapsed.as_secs_f64(),
                planned_s: status.planned.as_secs_f64(),
                warming_up: status.warming_up,
                epochs: status.epochs,
                records_taken: status.records_taken,
                records_in_results: status.records_in_results,
            },
        );
    }

    fn wants_epochs(&self) -> bool {
        true
    }

    fn epoch(&mut self, line: &EpochLine) {
        self.hub.publish("epoch", line);
    }

    fn run_done(&mut self, report: &RunReport) {
        self.inner.run_done(report);
        self.hub.publish("run", report);
    }
}
