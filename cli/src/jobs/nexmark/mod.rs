//! Nexmark, the benchmark no one here wrote: the `nexmark` crate's
//! generator of persons, auctions and bids ([`NexmarkGenerator`], live in
//! the workers, or written to a record log by `microbatch nexmark
//! generate`), and the standard queries that fit a micro-batch engine
//! ([`queries`]: q0, q1, q2, q5, q7 and q12), each a job the library runs
//! and the CLI runs as `job.kind = "nexmark"`, `job.query = "q5"`
//! (`profiles/nexmark.toml`). `cli/tests/nexmark.rs` checks every query
//! against a straightforward reference over the same events.

mod event;
mod generator;
pub mod queries;
mod run;
mod sink;

pub use event::{Auction, Bid, NexEvent, Person, BID_CSV_HEADER};
pub use generator::{NexmarkGenerator, NexmarkSettings, NOMINAL_RATE};
pub use run::{nexmark_settings, Nexmark};
pub use sink::{BidderCount, QueryRow, QuerySink};
