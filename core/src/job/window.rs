//! Event-time windows: records carry an event time
//! ([`Stream::event_time`](super::Stream::event_time)), fall into tumbling
//! or hopping windows aligned to the Unix epoch, and a window's row goes
//! out once, when the watermark (the engine's event-time frontier less
//! the job's delay) passes its end; records behind the watermark are
//! dropped and counted ([`EpochProgress::late_records`](crate::progress::EpochProgress::late_records)).
//! With an allowed lateness a window stays open that much longer and
//! fires again, late, with the records that came meanwhile; in update mode
//! it also fires early, each epoch that changed it (rows then say when
//! they fired: [`Firing`]).
//!
//! Where the state lives: each worker folds an epoch's records into panes
//! keyed by `(key, pane start)`, a pane being the greatest common divisor
//! of the window's size and slide (the window itself for tumbling
//! windows), so a record costs one update however many windows it is in;
//! the owner of a key merges its panes into its open panes (the job's
//! totals), and when the watermark passes a window's end combines the
//! window's panes into its row, and evicts the panes no open window needs. So memory is bounded by
//! the open windows, not by the run. The frontier is the least, over the
//! workers, of the newest event time each has folded, the same on every
//! owner for an epoch, so a window closes only once every worker is past
//! its end; the last epoch closes every window. Under a checkpoint (one
//! log cut into epochs by position) it is the newest over all workers
//! instead, which a replay reproduces exactly: the log's own order then
//! bounds the disorder, and a resumed run closes each window in the epoch
//! the first run did (`core/tests/checkpoint_windows.rs`): replaying from
//! the first epoch, or, [`snapshotted`](WindowedJob::snapshotted), from the
//! open windows of the last state snapshot (`window_snapshot.rs`).
//!
//! The invariant, property-tested in `core/tests/windows.rs`: while the
//! input's disorder stays within the delay, the window rows equal a
//! single-threaded fold's, whatever the interval, the batch size, the
//! number of workers or work stealing.

use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::time::Duration;

use hashbrown::hash_table::HashTable;
use rustc_hash::FxBuildHasher;

use super::event_time::{closing_watermark, fold_on_time, partition_of, Closed, PartClock};
use super::firing::{Append, Emit, Firing};
use super::key::Key;
use super::running::{NoSnapshots, RkyvSnapshots, TotalsCodec};
use super::window_snapshot::{load_open, save_open};
use super::windows::{Window, Windows};
use super::{Aggregator, EpochTime, Job, Parts, Pipe};

/// What a windowed job closes windows by.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) windows: Windows,
    /// The watermark is the frontier less this.
    pub(super) delay_ms: u64,
    /// How long after its end a window still takes records (and fires
    /// again, late).
    pub(super) lateness_ms: u64,
    /// Whether each epoch's changed windows fire early.
    pub(super) early: bool,
    /// Whether records for expired windows are emitted as rows of their
    /// own ([`Firing::Expired`]) rather than dropped.
    pub(super) expired_rows: bool,
    pub(super) idle: Option<Duration>,
}

impl Settings {
    /// Whether the windows a batch touches are tracked: for late or early
    /// firings.
    pub(super) fn tracks(&self) -> bool {
        self.lateness_ms > 0 || self.early
    }
}

/// A job over event-time windows, made by
/// [`WindowedStream::aggregate`](super::WindowedStream::aggregate) or
/// [`WindowedKeyedStream::aggregate`](super::WindowedKeyedStream::aggregate):
/// each window's row goes out once, when the watermark (the workers'
/// event-time frontier less the delay) passes its end; records behind it
/// are dropped and counted; records fold into panes (the gcd of size and
/// slide), combined when a window closes. See
/// [`Stream::event_time`](super::Stream::event_time). `C` says how its
/// open windows are snapshotted under a checkpoint: [`NoSnapshots`] (a
/// resumed run replays from the first epoch) or, after
/// [`snapshotted`](WindowedJob::snapshotted), [`RkyvSnapshots`]. `M`
/// how its rows are shaped ([`Append`], or [`Marked`](super::Marked) with their
/// [`Firing`]).
pub struct WindowedJob<R, P, E, F, A, C = NoSnapshots, M = Append> {
    pipe: P,
    time: E,
    key: F,
    settings: Settings,
    aggregator: A,
    hasher: FxBuildHasher,
    codec: C,
    _records: PhantomData<fn(&R) -> M>,
}

impl<R, P, E, F, A, M> WindowedJob<R, P, E, F, A, NoSnapshots, M> {
    /// The job of `settings`, by
    /// [`WindowedKeyedStream::aggregate`](super::WindowedKeyedStream::aggregate).
    pub(super) fn new(pipe: P, time: E, key: F, settings: Settings, aggregator: A) -> Self {
        WindowedJob {
            pipe,
            time,
            key,
            settings,
            aggregator,
            hasher: FxBuildHasher,
            codec: NoSnapshots,
            _records: PhantomData,
        }
    }

    /// Snapshots the open windows with rkyv under a checkpoint (keys and
    /// states must be rkyv-archivable: the built-in aggregators' states
    /// are), with how far windows are closed and the event-time frontier,
    /// so that a resumed run starts from the last snapshot instead of the
    /// first epoch and still commits exactly the rows of a run never
    /// stopped. See [`Checkpoint::snapshot_every`](crate::checkpoint::Checkpoint::snapshot_every).
    pub fn snapshotted(self) -> WindowedJob<R, P, E, F, A, RkyvSnapshots, M> {
        WindowedJob {
            pipe: self.pipe,
            time: self.time,
            key: self.key,
            settings: self.settings,
            aggregator: self.aggregator,
            hasher: self.hasher,
            codec: RkyvSnapshots,
            _records: PhantomData,
        }
    }
}

/// One pane of one key: the key, the pane's start, its state and the
/// records folded into it (to count them if it turns out late).
type Entry<K, S> = (K, u64, S, u64);

/// The hash of the pane at `pane` of the key whose hash is `key_hash`: the
/// key's hash places the entry's partition (a window's panes share their
/// owner), the pane's start tells the panes of a key apart.
#[inline(always)]
fn pane_hash(key_hash: u64, pane: u64) -> u64 {
    (key_hash ^ pane.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// A worker's or an owner's panes of one partition for one epoch.
pub struct WindowedPart<K, S> {
    table: HashTable<Entry<K, S>>,
    /// Event time: the newest folded, the late, the batch's watermark.
    clock: PartClock,
}

/// An owner's open panes, how far it has closed windows, and the
/// frontier it last finished an epoch at.
pub struct OpenWindows<K, S> {
    table: HashTable<Entry<K, S>>,
    /// How far windows are out, and the frontier.
    closed: Closed,
}

impl<K, S> OpenWindows<K, S> {
    /// Panes open (with records, needed by a window not yet emitted): the
    /// windows' state.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no pane is open.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

impl<R, P, E, F, K, A, C, M> WindowedJob<R, P, E, F, A, C, M>
where
    P: Pipe<R>,
    F: Fn(&P::Out) -> K,
    K: Key + Clone,
    A: Aggregator<P::Out>,
{
    /// The hash of `key`'s pane at `pane`.
    #[inline(always)]
    fn entry_hash(&self, key: &K, pane: u64) -> u64 {
        pane_hash(self.hasher.hash_one(key), pane)
    }

    /// The output of `key`'s window at `start`, combined from its panes in
    /// `table`.
    fn window_output(&self, table: &HashTable<Entry<K, A::State>>, key: &K, start: u64) -> A::Output
    where
        A::State: Clone,
    {
        let windows = self.settings.windows;
        let key_hash = self.hasher.hash_one(key);
        let mut state = self.aggregator.init();
        let panes = (start..start + windows.size_ms).step_by(windows.pane_ms() as usize);
        for pane in panes {
            let hash = pane_hash(key_hash, pane);
            if let Some(entry) = table.find(hash, |e| e.1 == pane && e.0 == *key) {
                self.aggregator.merge(&mut state, entry.2.clone());
            }
        }
        self.aggregator.finish(state)
    }

    /// Folds `state` and `records` of `key`'s pane at `start` into `table`.
    #[inline]
    fn merge_into(
        &self,
        table: &mut HashTable<Entry<K, A::State>>,
        (key, start, state, records): Entry<K, A::State>,
    ) {
        let hash = self.entry_hash(&key, start);
        match table.find_mut(hash, |e| e.1 == start && e.0 == key) {
            Some(entry) => {
                self.aggregator.merge(&mut entry.2, state);
                entry.3 += records;
            }
            None => {
                table.insert_unique(hash, (key, start, state, records), |e| {
                    self.entry_hash(&e.0, e.1)
                });
            }
        }
    }
}

impl<R, P, E, F, K, A, C, M> Job<R> for WindowedJob<R, P, E, F, A, C, M>
where
    C: TotalsCodec<K, (u64, A::State, u64)>,
    M: Emit,
    R: 'static,
    P: Pipe<R>,
    E: Fn(&P::Out) -> u64 + Send + Sync + 'static,
    F: Fn(&P::Out) -> K + Send + Sync + 'static,
    K: Key + Clone,
    A: Aggregator<P::Out>,
    // A pane is in several windows: each combines a copy of it.
    A::State: Clone,
{
    type Part = WindowedPart<K, A::State>;
    type Row = M::Row<K, A::Output>;
    type Totals = OpenWindows<K, A::State>;

    fn partitions(&self, workers: usize) -> usize {
        workers
    }

    fn new_part(&self) -> Self::Part {
        WindowedPart {
            table: HashTable::new(),
            clock: PartClock::default(),
        }
    }

    fn new_totals(&self) -> Self::Totals {
        OpenWindows {
            table: HashTable::new(),
            closed: Closed::default(),
        }
    }

    /// A window's row depends on the epochs before: a resumed run replays
    /// them.
    fn keeps_totals(&self) -> bool {
        true
    }

    fn save_totals(&self, totals: &Self::Totals, out: &mut Vec<u8>) -> Result<bool, String> {
        let panes = || {
            let panes = totals.table.iter();
            panes
                .map(|(key, pane, state, records)| (key.clone(), (*pane, state.clone(), *records)))
                .collect()
        };
        save_open(&self.codec, totals.closed, panes, out)
    }

    fn load_totals(&self, bytes: &[u8]) -> Result<Self::Totals, String> {
        let (closed, panes) = load_open(&self.codec, bytes)?;
        let mut table = HashTable::with_capacity(panes.len());
        for (key, (pane, state, records)) in panes {
            self.merge_into(&mut table, (key, pane, state, records));
        }
        Ok(OpenWindows { table, closed })
    }

    fn restored_frontier(&self, totals: &Self::Totals) -> Option<u64> {
        totals.closed.frontier
    }

    // Hot path: per record, the event time, the watermark check, the key,
    // its hash and an update in place of its pane.
    fn absorb(&self, records: &[R], mut parts: Parts<'_, Self::Part>) {
        let partitions = parts.len();
        let pane_ms = self.settings.windows.pane_ms();
        let clock: fn(&mut Self::Part) -> &mut PartClock = |part| &mut part.clock;
        fold_on_time(
            records,
            &self.pipe,
            &self.time,
            &mut parts,
            clock,
            |item, t, parts| {
                let key = (self.key)(item);
                let pane = t - t % pane_ms;
                let key_hash = self.hasher.hash_one(&key);
                let hash = pane_hash(key_hash, pane);
                let table = &mut parts[partition_of(key_hash, partitions)].table;
                if let Some(entry) = table.find_mut(hash, |e| e.1 == pane && e.0 == key) {
                    self.aggregator.update(&mut entry.2, item);
                    entry.3 += 1;
                    return;
                }
                let mut state = self.aggregator.init();
                self.aggregator.update(&mut state, item);
                table.insert_unique(hash, (key, pane, state, 1), |e| self.entry_hash(&e.0, e.1));
            },
        );
    }

    fn merge(&self, into: &mut Self::Part, from: &mut Self::Part) {
        into.clock.absorb(&mut from.clock);
        if into.table.is_empty() {
            std::mem::swap(&mut into.table, &mut from.table);
            return;
        }
        for entry in from.table.drain() {
            self.merge_into(&mut into.table, entry);
        }
    }

    /// The part's windows as its panes make them, every one: what the job
    /// emits for an epoch when nothing says where event time stands.
    fn finish(&self, part: &mut Self::Part, rows: &mut Vec<Self::Row>) {
        let mut totals = self.new_totals();
        let last = EpochTime {
            last: true,
            ..EpochTime::default()
        };
        self.finish_at(part, &mut totals, rows, last);
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
        let windows = self.settings.windows;
        let (size, lateness) = (windows.size_ms, self.settings.lateness_ms);
        totals.closed.frontier = totals.closed.frontier.max(time.frontier);
        let closed = totals.closed.through;
        // Fired on time already; past its lateness too (expired).
        let fired = |start: u64| closed.is_some_and(|closed| start + size <= closed);
        let expired = |start: u64| closed.is_some_and(|closed| start + size + lateness <= closed);
        let tracks = self.settings.tracks();
        let mut touched = hashbrown::HashSet::with_hasher(FxBuildHasher);
        // With expired rows: per (key, expired window), the late records'
        // state.
        let mut expired_states = hashbrown::HashMap::with_hasher(FxBuildHasher);
        for entry in part.table.drain() {
            // The windows of this pane already expired missed its records.
            let missed = windows.starts(entry.1).filter(|&s| expired(s)).count() as u64;
            part.clock.late += missed * entry.3;
            if missed > 0 && self.settings.expired_rows {
                for start in windows.starts(entry.1).filter(|&s| expired(s)) {
                    match expired_states.entry((entry.0.clone(), start)) {
                        hashbrown::hash_map::Entry::Occupied(mut merged) => {
                            self.aggregator.merge(merged.get_mut(), entry.2.clone());
                        }
                        hashbrown::hash_map::Entry::Vacant(slot) => {
                            slot.insert(entry.2.clone());
                        }
                    }
                }
            }
            if missed == windows.starts(entry.1).count() as u64 {
                continue;
            }
            if tracks {
                for start in windows.starts(entry.1).filter(|&s| !expired(s)) {
                    if fired(start) || self.settings.early {
                        touched.insert((entry.0.clone(), start));
                    }
                }
            }
            self.merge_into(&mut totals.table, entry);
        }
        let watermark = closing_watermark(time, self.settings.delay_ms);
        // The windows that close now and hold a record, once each.
        let closing = |start: u64| {
            !fired(start) && watermark.is_some_and(|w| start.saturating_add(size) <= w)
        };
        let mut due = hashbrown::HashMap::with_hasher(FxBuildHasher);
        if watermark.is_some() {
            for entry in totals.table.iter() {
                for start in windows.starts(entry.1).filter(|&start| closing(start)) {
                    due.insert((entry.0.clone(), start), Firing::OnTime);
                }
            }
        }
        for (key, start) in touched {
            if fired(start) {
                due.insert((key, start), Firing::Late);
            } else if !closing(start) {
                due.insert((key, start), Firing::Early);
            }
        }
        for ((key, start), state) in expired_states {
            let window = Window {
                start_ms: start,
                end_ms: start + size,
            };
            let output = self.aggregator.finish(state);
            rows.push(M::row(window, key, output, Firing::Expired));
        }
        for ((key, start), firing) in due {
            let output = self.window_output(&totals.table, &key, start);
            let window = Window {
                start_ms: start,
                end_ms: start + size,
            };
            rows.push(M::row(window, key, output, firing));
        }
        let Some(watermark) = watermark else {
            return;
        };
        // A pane goes once the last window it is in is past its lateness.
        let slide = windows.slide_ms;
        let evicted = totals.table.extract_if(|entry| {
            (entry.1 - entry.1 % slide).saturating_add(size + lateness) <= watermark
        });
        evicted.for_each(drop);
        totals.closed.through = closed.max(Some(watermark));
    }

    fn batch_event_time(&self, parts: Parts<'_, Self::Part>) -> Option<u64> {
        PartClock::newest(parts.iter().map(|part| &part.clock))
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.settings.idle
    }

    fn open_batch(&self, parts: Parts<'_, Self::Part>, frontier: Option<u64>) {
        let behind = self.settings.delay_ms + self.settings.lateness_ms;
        // With expired rows every record reaches its owner, which alone
        // says which are late.
        let frontier = frontier.filter(|_| !self.settings.expired_rows);
        for part in parts {
            part.clock.open(frontier, behind);
        }
    }

    fn windows_in(&self, rows: &[Self::Row]) -> u64 {
        let expired = |row: &Self::Row| M::firing(row) == Some(Firing::Expired);
        rows.iter().filter(|row| !expired(row)).count() as u64
    }

    fn open_state(&self, totals: &Self::Totals) -> usize {
        totals.len()
    }

    fn take_late(&self, part: &mut Self::Part) -> u64 {
        part.clock.take_late()
    }
}
