//! Session windows: per key, a session is a run of records each less than
//! `gap` after the one before (in event time); its window is `[first
//! record, last record + gap)`. Sessions that come to meet merge, also
//! across workers and epochs, so the result is the same whatever the
//! order the records are folded in. A session goes out once, when the
//! watermark passes its end; records behind the watermark are dropped and
//! counted, as for aligned windows ([`window`](super::window)).
//!
//! State: each key holds its open sessions, sorted by start, a few per key.
//! A worker folds an epoch's records into sessions per key; the owner
//! merges them into the key's open sessions and emits and evicts those the
//! watermark closed.

use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::time::Duration;

use hashbrown::hash_table::HashTable;
use rustc_hash::FxBuildHasher;

use super::event_time::{closing_watermark, fold_on_time, partition_of, Closed, PartClock};
use super::key::Key;
use super::running::{NoSnapshots, RkyvSnapshots, TotalsCodec};
use super::window_snapshot::{load_open, save_open};
use super::window_stream::TimedStream;
use super::windows::Window;
use super::{Aggregator, Columns, EpochTime, Job, Parts, Pipe};

/// One open session: `[start, end)` (end: the last record's time plus the
/// gap), its state and the records folded into it; what a state snapshot
/// of a [`snapshotted`](SessionJob::snapshotted) job holds per session.
#[derive(Debug, Clone, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Session<S> {
    start: u64,
    end: u64,
    state: S,
    records: u64,
}

/// A key's sessions, sorted by start, none meeting another.
type Sessions<S> = Vec<Session<S>>;

impl<R, P: Pipe<R>, E: Fn(&P::Out) -> u64 + Send + Sync + 'static> TimedStream<R, P, E> {
    /// Cuts each key's records into sessions that end after `gap` without
    /// a record: a session is a run of a key's records each less than
    /// `gap` after the one before, its window `[first, last + gap)`;
    /// sessions that come to meet merge, so the result does not depend on
    /// the order the records are folded in. See [`SessionJob`].
    pub fn session(self, gap: Duration) -> SessionStream<R, P, E> {
        SessionStream {
            pipe: self.pipe,
            time: self.time,
            gap_ms: (gap.as_millis() as u64).max(1),
            delay_ms: 0,
            _records: PhantomData,
        }
    }
}

/// A stream cut into sessions; group it by key.
pub struct SessionStream<R, P, E> {
    pipe: P,
    time: E,
    gap_ms: u64,
    delay_ms: u64,
    _records: PhantomData<fn(&R)>,
}

impl<R, P: Pipe<R>, E> SessionStream<R, P, E> {
    /// The watermark trails the frontier by `delay`, as for
    /// [`WindowedStream::watermark_delay`](super::WindowedStream::watermark_delay).
    pub fn watermark_delay(mut self, delay: Duration) -> Self {
        self.delay_ms = delay.as_millis() as u64;
        self
    }

    /// Sessions per `key`.
    pub fn key_by<F, K>(self, key: F) -> SessionKeyedStream<R, P, E, F>
    where
        F: Fn(&P::Out) -> K + Send + Sync + 'static,
        K: Key + Clone,
    {
        SessionKeyedStream { stream: self, key }
    }
}

/// A session stream grouped by key.
pub struct SessionKeyedStream<R, P, E, F> {
    stream: SessionStream<R, P, E>,
    key: F,
}

impl<R, P: Pipe<R>, E, F> SessionKeyedStream<R, P, E, F> {
    /// Reduces each session of each key to one row `(window, key,
    /// output)`, the window the session's `[start, end)`.
    pub fn aggregate<A: Aggregator<P::Out>>(self, aggregator: A) -> SessionJob<R, P, E, F, A> {
        let SessionStream {
            pipe,
            time,
            gap_ms,
            delay_ms,
            ..
        } = self.stream;
        SessionJob {
            pipe,
            time,
            key: self.key,
            gap_ms,
            delay_ms,
            aggregator,
            hasher: FxBuildHasher,
            codec: NoSnapshots,
            _records: PhantomData,
        }
    }

    /// [`aggregate`](SessionKeyedStream::aggregate) with the aggregator
    /// built from [`Columns`].
    pub fn aggregate_with<A: Aggregator<P::Out>>(
        self,
        build: impl FnOnce(Columns<P::Out>) -> A,
    ) -> SessionJob<R, P, E, F, A> {
        self.aggregate(build(Columns::new()))
    }
}

/// A job over session windows, made by
/// [`TimedStream::session`](super::TimedStream::session): each key holds its
/// open sessions, sorted by start; a session goes out once, when the
/// watermark passes its end, and records behind the watermark are dropped
/// and counted, as for aligned windows ([`WindowedJob`](super::WindowedJob)).
///
/// `C` says how its open sessions are snapshotted under a checkpoint:
/// [`NoSnapshots`] (a resumed run replays from the first epoch) or, after
/// [`snapshotted`](SessionJob::snapshotted), [`RkyvSnapshots`].
pub struct SessionJob<R, P, E, F, A, C = NoSnapshots> {
    pipe: P,
    time: E,
    key: F,
    gap_ms: u64,
    delay_ms: u64,
    aggregator: A,
    hasher: FxBuildHasher,
    codec: C,
    _records: PhantomData<fn(&R)>,
}

impl<R, P, E, F, A> SessionJob<R, P, E, F, A> {
    /// Snapshots the open sessions with rkyv under a checkpoint (keys and
    /// states must be rkyv-archivable), with how far sessions are closed
    /// and the event-time frontier, so that a resumed run starts from the
    /// last snapshot instead of the first epoch; see
    /// [`WindowedJob::snapshotted`](super::WindowedJob::snapshotted).
    pub fn snapshotted(self) -> SessionJob<R, P, E, F, A, RkyvSnapshots> {
        SessionJob {
            pipe: self.pipe,
            time: self.time,
            key: self.key,
            gap_ms: self.gap_ms,
            delay_ms: self.delay_ms,
            aggregator: self.aggregator,
            hasher: self.hasher,
            codec: RkyvSnapshots,
            _records: PhantomData,
        }
    }
}

/// A worker's or an owner's sessions of one partition for one epoch.
pub struct SessionPart<K, S> {
    table: HashTable<(K, Sessions<S>)>,
    /// Event time: the newest folded, the late, the batch's watermark.
    clock: PartClock,
}

/// An owner's open sessions, and how far it has closed them.
pub struct OpenSessions<K, S> {
    table: HashTable<(K, Sessions<S>)>,
    /// How far sessions are out, and the frontier.
    closed: Closed,
    /// Sessions held, over the keys.
    open: usize,
}

impl<R, P, E, F, K, A, C> SessionJob<R, P, E, F, A, C>
where
    P: Pipe<R>,
    F: Fn(&P::Out) -> K,
    K: Key + Clone,
    A: Aggregator<P::Out>,
{
    /// Adds `session` to `sessions`, merging every session it meets.
    /// Returns how the count of sessions changed (+1, 0 or less).
    fn add(&self, sessions: &mut Sessions<A::State>, mut session: Session<A::State>) -> isize {
        let before = sessions.len() as isize;
        // The sessions it meets are contiguous in start order.
        let first = sessions.partition_point(|s| s.end <= session.start);
        let mut last = first;
        while last < sessions.len() && sessions[last].start < session.end {
            last += 1;
        }
        for met in sessions.drain(first..last) {
            session.start = session.start.min(met.start);
            session.end = session.end.max(met.end);
            session.records += met.records;
            self.aggregator.merge(&mut session.state, met.state);
        }
        sessions.insert(first, session);
        sessions.len() as isize - before
    }

    /// Moves `key`'s `sessions` into `table`, merging with what it holds.
    fn merge_key(
        &self,
        table: &mut HashTable<(K, Sessions<A::State>)>,
        key: K,
        sessions: Sessions<A::State>,
    ) -> isize {
        let hash = self.hasher.hash_one(&key);
        match table.find_mut(hash, |entry| entry.0 == key) {
            Some(entry) => sessions
                .into_iter()
                .map(|session| self.add(&mut entry.1, session))
                .sum(),
            None => {
                let added = sessions.len() as isize;
                let hasher = &self.hasher;
                table.insert_unique(hash, (key, sessions), |e| hasher.hash_one(&e.0));
                added
            }
        }
    }
}

impl<R, P, E, F, K, A, C> Job<R> for SessionJob<R, P, E, F, A, C>
where
    C: TotalsCodec<K, Session<A::State>>,
    R: 'static,
    P: Pipe<R>,
    E: Fn(&P::Out) -> u64 + Send + Sync + 'static,
    F: Fn(&P::Out) -> K + Send + Sync + 'static,
    K: Key + Clone,
    A: Aggregator<P::Out>,
{
    type Part = SessionPart<K, A::State>;
    type Row = (Window, K, A::Output);
    type Totals = OpenSessions<K, A::State>;

    fn partitions(&self, workers: usize) -> usize {
        workers
    }

    fn new_part(&self) -> Self::Part {
        SessionPart {
            table: HashTable::new(),
            clock: PartClock::default(),
        }
    }

    fn new_totals(&self) -> Self::Totals {
        OpenSessions {
            table: HashTable::new(),
            closed: Closed::default(),
            open: 0,
        }
    }

    fn keeps_totals(&self) -> bool {
        true
    }

    fn save_totals(&self, totals: &Self::Totals, out: &mut Vec<u8>) -> Result<bool, String> {
        let codec = &self.codec;
        let sessions = || {
            let keys = totals.table.iter();
            keys.flat_map(|(key, sessions)| sessions.iter().filter_map(|s| codec.copied(key, s)))
                .collect()
        };
        save_open(&self.codec, totals.closed, sessions, out)
    }

    fn load_totals(&self, bytes: &[u8]) -> Result<Self::Totals, String> {
        let (closed, sessions) = load_open(&self.codec, bytes)?;
        let mut totals = OpenSessions {
            closed,
            ..self.new_totals()
        };
        for (key, session) in sessions {
            let change = self.merge_key(&mut totals.table, key, vec![session]);
            totals.open = totals.open.saturating_add_signed(change);
        }
        Ok(totals)
    }

    fn restored_frontier(&self, totals: &Self::Totals) -> Option<u64> {
        totals.closed.frontier
    }

    // Hot path: per record, its time, the watermark check, the key's
    // entry, and its session: the newest session extended in place when
    // the record falls in it (the common case for ordered input), else a
    // merge into the key's sorted sessions.
    fn absorb(&self, records: &[R], mut parts: Parts<'_, Self::Part>) {
        let partitions = parts.len();
        let clock: fn(&mut Self::Part) -> &mut PartClock = |part| &mut part.clock;
        fold_on_time(
            records,
            &self.pipe,
            &self.time,
            &mut parts,
            clock,
            |item, t, parts| {
                let key = (self.key)(item);
                let hash = self.hasher.hash_one(&key);
                let table = &mut parts[partition_of(hash, partitions)].table;
                let hasher = &self.hasher;
                let sessions = match table.find_mut(hash, |entry| entry.0 == key) {
                    Some(entry) => &mut entry.1,
                    None => {
                        let entry =
                            table.insert_unique(hash, (key, Vec::new()), |e| hasher.hash_one(&e.0));
                        &mut entry.into_mut().1
                    }
                };
                if let Some(last) = sessions.last_mut() {
                    if last.start <= t && t < last.end {
                        self.aggregator.update(&mut last.state, item);
                        last.end = last.end.max(t + self.gap_ms);
                        last.records += 1;
                        return;
                    }
                }
                let mut state = self.aggregator.init();
                self.aggregator.update(&mut state, item);
                let session = Session {
                    start: t,
                    end: t + self.gap_ms,
                    state,
                    records: 1,
                };
                self.add(sessions, session);
            },
        );
    }

    fn merge(&self, into: &mut Self::Part, from: &mut Self::Part) {
        into.clock.absorb(&mut from.clock);
        if into.table.is_empty() {
            std::mem::swap(&mut into.table, &mut from.table);
            return;
        }
        for (key, sessions) in from.table.drain() {
            self.merge_key(&mut into.table, key, sessions);
        }
    }

    /// Every session of the part as it is.
    fn finish(&self, part: &mut Self::Part, rows: &mut Vec<Self::Row>) {
        for (key, sessions) in part.table.drain() {
            for session in sessions {
                let window = Window {
                    start_ms: session.start,
                    end_ms: session.end,
                };
                rows.push((window, key.clone(), self.aggregator.finish(session.state)));
            }
        }
    }

    fn finish_with_totals(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
    ) {
        self.finish_at(part, totals, rows, EpochTime::default());
    }

    fn finish_at(
        &self,
        part: &mut Self::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
        time: EpochTime,
    ) {
        totals.closed.frontier = totals.closed.frontier.max(time.frontier);
        for (key, mut sessions) in part.table.drain() {
            // A session that starts behind what went out holds a record
            // behind the watermark: it is late, whole.
            if let Some(closed) = totals.closed.through {
                sessions.retain(|session| {
                    let keep = session.start >= closed;
                    if !keep {
                        part.clock.late += session.records;
                    }
                    keep
                });
            }
            if !sessions.is_empty() {
                let change = self.merge_key(&mut totals.table, key, sessions);
                totals.open = totals.open.saturating_add_signed(change);
            }
        }
        let Some(watermark) = closing_watermark(time, self.delay_ms) else {
            return;
        };
        let mut closed = 0;
        let aggregator = &self.aggregator;
        let emptied = totals.table.extract_if(|(key, sessions)| {
            let open = sessions.partition_point(|session| session.end <= watermark);
            for session in sessions.drain(..open) {
                let window = Window {
                    start_ms: session.start,
                    end_ms: session.end,
                };
                rows.push((window, key.clone(), aggregator.finish(session.state)));
                closed += 1;
            }
            sessions.is_empty()
        });
        emptied.for_each(drop);
        totals.open -= closed;
        totals.closed.through = totals.closed.through.max(Some(watermark));
    }

    fn batch_event_time(&self, parts: Parts<'_, Self::Part>) -> Option<u64> {
        PartClock::newest(parts.iter().map(|part| &part.clock))
    }

    fn open_batch(&self, parts: Parts<'_, Self::Part>, frontier: Option<u64>) {
        for part in parts {
            part.clock.open(frontier, self.delay_ms);
        }
    }

    fn windows_in(&self, rows: &[Self::Row]) -> u64 {
        rows.len() as u64
    }

    fn open_state(&self, totals: &Self::Totals) -> usize {
        totals.open
    }

    fn take_late(&self, part: &mut Self::Part) -> u64 {
        part.clock.take_late()
    }
}
