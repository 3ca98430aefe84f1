//! Building a windowed job: a [`TimedStream`] cut into [`Windows`], its
//! watermark delay, allowed lateness, update mode and idle timeout
//! ([`WindowedStream`]), grouped by key ([`WindowedKeyedStream`]) and
//! aggregated into a [`WindowedJob`].

use std::marker::PhantomData;
use std::time::Duration;

use super::firing::{Append, Marked};
use super::key::Key;
use super::running::NoSnapshots;
use super::window::{Settings, WindowedJob};
use super::windows::Windows;
use super::{Aggregator, Columns, Pipe};

/// A stream whose items carry an event time; see
/// [`Stream::event_time`](super::Stream::event_time).
pub struct TimedStream<R, P, E> {
    pub(super) pipe: P,
    pub(super) time: E,
    pub(super) _records: PhantomData<fn(&R)>,
}

impl<R, P: Pipe<R>, E: Fn(&P::Out) -> u64 + Send + Sync + 'static> TimedStream<R, P, E> {
    /// Cuts the stream into `windows`, with a watermark delay of zero
    /// until [`watermark_delay`](WindowedStream::watermark_delay) says
    /// otherwise.
    pub fn window(self, windows: Windows) -> WindowedStream<R, P, E> {
        WindowedStream {
            pipe: self.pipe,
            time: self.time,
            settings: Settings {
                windows,
                delay_ms: 0,
                lateness_ms: 0,
                early: false,
                expired_rows: false,
                idle: None,
            },
            _records: PhantomData,
        }
    }
}

/// A windowed stream; group it by key, or aggregate it whole. `M` says
/// how its rows are shaped ([`Append`], or [`Marked`] once it has an
/// allowed lateness or early updates).
pub struct WindowedStream<R, P, E, M = Append> {
    pipe: P,
    time: E,
    settings: Settings,
    _records: PhantomData<fn(&R) -> M>,
}

impl<R, P: Pipe<R>, E, M> WindowedStream<R, P, E, M>
where
    E: Fn(&P::Out) -> u64 + Send + Sync + 'static,
    P::Out: 'static,
{
    /// Bounded out-of-orderness: the watermark trails the frontier (the
    /// least, over the workers, of the newest event time each has seen)
    /// by `delay`. A record more than `delay` behind the newest event time
    /// may be late: dropped and counted, never folded into a window that
    /// has gone out.
    pub fn watermark_delay(mut self, delay: Duration) -> Self {
        self.settings.delay_ms = delay.as_millis() as u64;
        self
    }

    /// A worker whose input brings no newer event time for `timeout` no
    /// longer holds the frontier back (as Flink's `withIdleness`); by
    /// default it holds it for as long as it is idle, and the end of the
    /// input closes every window.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle = Some(timeout);
        self
    }

    /// Keeps each window open for `lateness` after the watermark passes
    /// its end: records for it that come meanwhile are folded in and the
    /// window fires again ([`Firing::Late`](super::Firing::Late)) with all its records; records
    /// later than that are dropped and counted. Rows are then marked:
    /// `(window, key, output, firing)`.
    pub fn allowed_lateness(self, lateness: Duration) -> WindowedStream<R, P, E, Marked> {
        self.marked(|settings| settings.lateness_ms = lateness.as_millis() as u64)
    }

    /// Update mode: each epoch, the windows it changed fire early
    /// ([`Firing::Early`](super::Firing::Early)) with their records so far, before they fire on
    /// time; rows are marked `(window, key, output, firing)`.
    pub fn updates(self) -> WindowedStream<R, P, E, Marked> {
        self.marked(|settings| settings.early = true)
    }

    /// Late records become rows rather than being dropped: records for a
    /// window already past its allowed lateness are not folded into it,
    /// and not filtered out as they are folded; the owner emits them, per
    /// window and key and epoch, as a row of their own marked
    /// [`Firing::Expired`](super::Firing::Expired), which changes no
    /// window (a side output: write them apart). They still count in
    /// `late_records`. Rows are marked `(window, key, output, firing)`.
    pub fn expired_rows(self) -> WindowedStream<R, P, E, Marked> {
        self.marked(|settings| settings.expired_rows = true)
    }

    /// The same stream with its rows marked, its settings changed by
    /// `change`.
    fn marked(self, change: impl FnOnce(&mut Settings)) -> WindowedStream<R, P, E, Marked> {
        let mut settings = self.settings;
        change(&mut settings);
        WindowedStream {
            pipe: self.pipe,
            time: self.time,
            settings,
            _records: PhantomData,
        }
    }

    /// Groups each window's items by `key`.
    pub fn key_by<F, K>(self, key: F) -> WindowedKeyedStream<R, P, E, F, M>
    where
        F: Fn(&P::Out) -> K + Send + Sync + 'static,
        K: Key + Clone,
    {
        WindowedKeyedStream {
            pipe: self.pipe,
            time: self.time,
            key,
            settings: self.settings,
            _records: PhantomData,
        }
    }

    /// Reduces each window's items to one row `(window, (), output)`.
    pub fn aggregate<A: Aggregator<P::Out>>(self, aggregator: A) -> WholeWindowJob<R, P, E, A, M> {
        self.key_by(whole::<P::Out> as fn(&P::Out))
            .aggregate(aggregator)
    }

    /// [`aggregate`](WindowedStream::aggregate) with the aggregator built
    /// from [`Columns`].
    pub fn aggregate_with<A: Aggregator<P::Out>>(
        self,
        build: impl FnOnce(Columns<P::Out>) -> A,
    ) -> WholeWindowJob<R, P, E, A, M> {
        self.aggregate(build(Columns::new()))
    }
}

/// A windowed job without keys: one row `(window, (), output)` per window.
pub type WholeWindowJob<R, P, E, A, M = Append> =
    WindowedJob<R, P, E, fn(&<P as Pipe<R>>::Out), A, NoSnapshots, M>;

/// The key of a window aggregated whole: one, `()`, per window.
fn whole<T>(_: &T) {}

/// A windowed stream grouped by key.
pub struct WindowedKeyedStream<R, P, E, F, M = Append> {
    pipe: P,
    time: E,
    key: F,
    settings: Settings,
    _records: PhantomData<fn(&R) -> M>,
}

impl<R, P: Pipe<R>, E, F, M> WindowedKeyedStream<R, P, E, F, M> {
    /// Reduces the items of each key in each window to one row `(window,
    /// key, output)`, emitted once the watermark passes the window's end.
    pub fn aggregate<A: Aggregator<P::Out>>(
        self,
        aggregator: A,
    ) -> WindowedJob<R, P, E, F, A, NoSnapshots, M> {
        WindowedJob::new(self.pipe, self.time, self.key, self.settings, aggregator)
    }

    /// [`aggregate`](WindowedKeyedStream::aggregate) with the aggregator
    /// built from [`Columns`].
    pub fn aggregate_with<A: Aggregator<P::Out>>(
        self,
        build: impl FnOnce(Columns<P::Out>) -> A,
    ) -> WindowedJob<R, P, E, F, A, NoSnapshots, M> {
        self.aggregate(build(Columns::new()))
    }
}
