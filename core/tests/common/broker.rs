//! A real Kafka-protocol broker for the tests: `tansu` (built with
//! `--features dynostore` for its in-memory storage), started on its own
//! loopback port and killed when the handle drops.
//!
//! The binary is `$TANSU`, else `tansu` on the `PATH`. Without it a test
//! is skipped with a note, unless `MICROBATCH_REQUIRE_SERVICES` is set (as
//! `cargo xtask test` sets it, after installing tansu where it is
//! missing): then it fails.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running broker.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:port`, for `bootstrap.servers`.
    pub address: String,
}

/// The tansu binary, if there is one.
fn tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TANSU") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("tansu"))
        .find(|candidate| candidate.is_file())
}

impl Broker {
    /// Starts a broker, or `None` (with a note) where tansu is not
    /// installed and the services are not required.
    pub fn start() -> Option<Broker> {
        let Some(binary) = tansu() else {
            assert!(
                std::env::var_os("MICROBATCH_REQUIRE_SERVICES").is_none(),
                "the Kafka tests need the tansu broker: `cargo install tansu --locked \
                 --features dynostore` (about 18 minutes), or set TANSU=/path/to/tansu"
            );
            eprintln!(
                "skipped: the tansu broker is not installed here (cargo xtask test installs it)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/", "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let broker = Broker { child, address };
        let started = Instant::now();
        while TcpStream::connect(&broker.address).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the broker did not listen on {} within 30 s",
                broker.address
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(broker)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
