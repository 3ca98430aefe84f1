//! The worked case: click-stream user-behaviour analysis. Clicks (user,
//! page, event time, dwell time, action) from a seeded generator or a
//! record log are cut into micro-batches; per epoch, each user's clicks
//! and dwell time and each page's views go to SQLite (`user_stats`,
//! `page_stats`), with each user's running totals (`user_totals`), and
//! each user's sessions of event time (30 minutes' gap by default) as they
//! close (`user_sessions`), exactly once across restarts under a
//! checkpoint.
//!
//! The same analysis runs from the library (`cli/examples/clickstream.rs`)
//! and from the CLI (`profiles/clickstream.toml`).

mod click;
mod generator;
mod job;
mod run;
mod sink;

pub use click::{Action, Click, CSV_HEADER};
pub use generator::{ClickConfig, ClickGenerator};
pub use job::{
    clickstream_job, epoch_stats_job, user_sessions_job, CaseRow, ClickRow, SessionRow, Subject,
    SESSION_GAP,
};
pub use run::{click_config, Clickstream};
pub use sink::{ClickstreamSink, COMMITS_NAME};
