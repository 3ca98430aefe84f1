//! The click-stream analysis: per user, clicks and dwell time; per page,
//! views; every epoch.

use microbatch::job::{self, count, sum, Job};

use super::click::Click;

/// What a result row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A user: every event of the user counts as a click.
    User(u64),
    /// A page: every event on the page counts as a view.
    Page(u64),
}

/// A row: the subject, its events in the epoch and their dwell time (ms).
pub type ClickRow = (Subject, (u64, u64));

/// The job: each click feeds its user (with its dwell time) and its page;
/// per subject, the count of events and the sum of dwell times. The
/// engine's local pre-aggregation absorbs the Zipf-hot users.
///
/// ```
/// use microbatch::sink::CollectSink;
/// use microbatch::source::IterSource;
/// use microbatch::Engine;
/// use microbatch_cli::jobs::clickstream::{clickstream_job, Action, Click, Subject};
///
/// let click = |user, page, dwell_ms| Click {
///     user, page, event_time_ms: 0, dwell_ms, action: Action::View,
/// };
/// let (sink, rows) = CollectSink::new();
/// let engine = Engine::builder(clickstream_job(), sink)
///     .workers(1)
///     .source(IterSource::new(vec![click(1, 10, 500), click(1, 11, 700), click(2, 10, 50)]))
///     .start()?;
/// engine.finish()?;
/// let mut rows: Vec<_> = rows.take().into_iter().map(|(_, row)| row).collect();
/// rows.sort();
/// assert_eq!(rows, [
///     (Subject::User(1), (2, 1200)),
///     (Subject::User(2), (1, 50)),
///     (Subject::Page(10), (2, 550)),
///     (Subject::Page(11), (1, 700)),
/// ]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn clickstream_job() -> impl Job<Click, Row = ClickRow> {
    job::records::<Click>()
        .flat_map(|click: &Click| {
            let dwell = u64::from(click.dwell_ms);
            [
                (Subject::User(click.user), dwell),
                (Subject::Page(click.page), dwell),
            ]
        })
        .key_by(|item: &(Subject, u64)| item.0)
        .aggregate((count(), sum(|item: &(Subject, u64)| item.1)))
}
