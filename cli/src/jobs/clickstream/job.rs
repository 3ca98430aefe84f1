//! The click-stream analysis: per user, clicks and dwell time, and per
//! page, views, every epoch; and each user's sessions of event time.

use std::time::Duration;

use microbatch::job::{self, count, sum, Either, Job, Window};

use super::click::Click;

/// The gap that ends a user's session unless the profile sets
/// `job.session_gap`: 30 minutes without a click, as web analytics count.
pub const SESSION_GAP: Duration = Duration::from_secs(30 * 60);

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

/// A user's session: its window (the first click to the last plus the
/// gap), the user, and its clicks and their dwell time (ms).
pub type SessionRow = (Window, u64, (u64, u64));

/// A row of the case: an epoch's statistics, or a user's closed session.
pub type CaseRow = Either<ClickRow, SessionRow>;

/// The whole case: [`epoch_stats_job`] and [`user_sessions_job`] over the
/// same clicks, each click pushed once and folded into both.
pub fn clickstream_job(
    session_gap: Duration,
    watermark_delay: Duration,
) -> impl Job<Click, Row = CaseRow> {
    epoch_stats_job().and(user_sessions_job(session_gap, watermark_delay))
}

/// Per user, sessions of event time that end after `gap` without a click:
/// the session's clicks and the sum of their dwell times. Open sessions
/// are in the checkpoint's state snapshots; the watermark trails the
/// newest click by `delay`.
pub fn user_sessions_job(gap: Duration, delay: Duration) -> impl Job<Click, Row = SessionRow> {
    job::records::<Click>()
        .event_time(|click: &Click| click.event_time_ms)
        .session(gap)
        .watermark_delay(delay)
        .key_by(|click: &Click| click.user)
        .aggregate((count(), sum(|click: &Click| u64::from(click.dwell_ms))))
        .snapshotted()
}

/// The epochs' statistics: each click feeds its user (with its dwell time) and its page;
/// per subject, the count of events and the sum of dwell times. The
/// engine's local pre-aggregation absorbs the Zipf-hot users.
///
/// ```
/// use microbatch::sink::CollectSink;
/// use microbatch::source::IterSource;
/// use microbatch::Engine;
/// use microbatch_cli::jobs::clickstream::{epoch_stats_job, Action, Click, Subject};
///
/// let click = |user, page, dwell_ms| Click {
///     user, page, event_time_ms: 0, dwell_ms, action: Action::View,
/// };
/// let (sink, rows) = CollectSink::new();
/// let engine = Engine::builder(epoch_stats_job(), sink)
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
pub fn epoch_stats_job() -> impl Job<Click, Row = ClickRow> {
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
