//! A second aggregation over a job's rows (see [`Job::regroup`]): each
//! epoch's rows of the first job, from every partition, grouped by a new
//! key and reduced once, as Nexmark's q5 counts bids per auction and
//! window and then takes the greatest count per window.
//!
//! Where it runs: each owner finishes its partition of the first job as
//! usual and folds the rows into its own groups (cold path, per epoch,
//! with the owner's buffers kept from epoch to epoch); it then merges them
//! into the epoch's gathering, under a lock taken once per owner and
//! epoch. The owner that brings the last share finishes the groups into
//! the epoch's rows, so they go to the sink before the epoch commits, like
//! any owner's. Merging is commutative, so the rows do not depend on which
//! owner comes last; a replayed epoch gathers the same shares.

use std::hash::Hash;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use super::{Aggregator, EpochTime, Job, Parts, Placement};
use crate::progress::HotKey;
use crate::sync::cold::{lock, Mutex};

/// The job `first` whose rows are grouped by `key` and reduced by
/// `aggregator`: one row `(key, output)` per group per epoch. Made by
/// [`Job::regroup`].
pub struct Regrouped<J, F, A, K, S> {
    first: J,
    key: F,
    aggregator: A,
    /// The epochs whose shares are coming in: at most the clock's window.
    gathering: Mutex<Vec<Gathering<K, S>>>,
}

/// One epoch's groups, merged from the owners that have brought theirs.
struct Gathering<K, S> {
    epoch: u64,
    owners: usize,
    groups: HashMap<K, S, FxBuildHasher>,
}

/// An owner's state: the first job's, and buffers reused every epoch.
pub struct RegroupTotals<T, Row, K, S> {
    first: T,
    rows: Vec<Row>,
    groups: HashMap<K, S, FxBuildHasher>,
}

impl<J, F, A, K, S> Regrouped<J, F, A, K, S> {
    pub(super) fn new(first: J, key: F, aggregator: A) -> Self {
        Regrouped {
            first,
            key,
            aggregator,
            gathering: Mutex::new(Vec::new()),
        }
    }
}

impl<J, F, A, K: Hash + Eq, S> Regrouped<J, F, A, K, S> {
    /// Folds the first job's `rows` into `groups`, emptying `rows`.
    fn group_rows<T>(&self, rows: &mut Vec<T>, groups: &mut HashMap<K, S, FxBuildHasher>)
    where
        F: Fn(&T) -> K,
        A: Aggregator<T, State = S>,
    {
        for row in rows.drain(..) {
            let state = groups
                .entry((self.key)(&row))
                .or_insert_with(|| self.aggregator.init());
            self.aggregator.update(state, &row);
        }
    }

    /// Finishes every group of `groups` into `out`, emptying `groups`.
    fn emit_groups<T>(
        &self,
        groups: &mut HashMap<K, S, FxBuildHasher>,
        out: &mut Vec<(K, A::Output)>,
    ) where
        A: Aggregator<T, State = S>,
    {
        out.extend(
            groups
                .drain()
                .map(|(key, state)| (key, self.aggregator.finish(state))),
        );
    }
}

impl<R, J, F, A, K> Job<R> for Regrouped<J, F, A, K, A::State>
where
    J: Job<R>,
    F: Fn(&J::Row) -> K + Send + Sync + 'static,
    K: Hash + Eq + Send + 'static,
    A: Aggregator<J::Row>,
{
    type Part = J::Part;
    type Row = (K, A::Output);
    type Totals = RegroupTotals<J::Totals, J::Row, K, A::State>;

    fn partitions(&self, workers: usize) -> usize {
        self.first.partitions(workers)
    }

    fn check(&self, workers: usize) -> Result<(), String> {
        if self.first.salts() {
            return Err(
                "a regrouped job's first job salts keys, whose rows are finished apart from \
                 their owners': regroup a job without salted keys"
                    .into(),
            );
        }
        self.first.check(workers)
    }

    fn new_part(&self) -> J::Part {
        self.first.new_part()
    }

    fn new_totals(&self) -> Self::Totals {
        RegroupTotals {
            first: self.first.new_totals(),
            rows: Vec::new(),
            groups: HashMap::with_hasher(FxBuildHasher),
        }
    }

    fn keeps_totals(&self) -> bool {
        self.first.keeps_totals()
    }

    fn save_totals(&self, totals: &Self::Totals, out: &mut Vec<u8>) -> Result<bool, String> {
        self.first.save_totals(&totals.first, out)
    }

    fn load_totals(&self, bytes: &[u8]) -> Result<Self::Totals, String> {
        Ok(RegroupTotals {
            first: self.first.load_totals(bytes)?,
            ..self.new_totals()
        })
    }

    // Hot path: the first job's.
    #[inline]
    fn absorb(&self, records: &[R], parts: Parts<'_, J::Part>) {
        self.first.absorb(records, parts);
    }

    fn place(&self, parts: Parts<'_, J::Part>, placement: Placement) -> Placement {
        self.first.place(parts, placement)
    }

    fn split(&self, parts: Parts<'_, J::Part>) -> usize {
        self.first.split(parts)
    }

    fn merge(&self, into: &mut J::Part, from: &mut J::Part) {
        self.first.merge(into, from);
    }

    fn hot_keys(&self, part: &mut J::Part, out: &mut Vec<HotKey>) {
        self.first.hot_keys(part, out);
    }

    /// A part that is the whole epoch (no other owner's share to wait
    /// for): its rows, regrouped.
    fn finish(&self, part: &mut J::Part, rows: &mut Vec<Self::Row>) {
        let mut first = Vec::new();
        self.first.finish(part, &mut first);
        let mut groups = HashMap::with_hasher(FxBuildHasher);
        self.group_rows(&mut first, &mut groups);
        self.emit_groups::<J::Row>(&mut groups, rows);
    }

    fn finish_with_totals(
        &self,
        part: &mut J::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
    ) {
        let time = EpochTime {
            partitions: 1,
            ..EpochTime::default()
        };
        self.finish_at(part, totals, rows, time);
    }

    fn finish_at(
        &self,
        part: &mut J::Part,
        totals: &mut Self::Totals,
        rows: &mut Vec<Self::Row>,
        time: EpochTime,
    ) {
        let RegroupTotals {
            first,
            rows: first_rows,
            groups,
        } = totals;
        self.first.finish_at(part, first, first_rows, time);
        self.group_rows(first_rows, groups);
        let mut gathering = lock(&self.gathering);
        let index = match gathering.iter().position(|g| g.epoch == time.epoch) {
            Some(index) => index,
            None => {
                gathering.push(Gathering {
                    epoch: time.epoch,
                    owners: 0,
                    groups: HashMap::with_hasher(FxBuildHasher),
                });
                gathering.len() - 1
            }
        };
        let share = &mut gathering[index];
        if share.groups.is_empty() {
            std::mem::swap(&mut share.groups, groups);
        } else {
            for (key, state) in groups.drain() {
                match share.groups.get_mut(&key) {
                    Some(merged) => self.aggregator.merge(merged, state),
                    None => {
                        share.groups.insert(key, state);
                    }
                }
            }
        }
        share.owners += 1;
        if share.owners >= time.partitions {
            let mut done = gathering.swap_remove(index);
            drop(gathering);
            self.emit_groups::<J::Row>(&mut done.groups, rows);
        }
    }

    fn batch_event_time(&self, parts: Parts<'_, J::Part>) -> Option<u64> {
        self.first.batch_event_time(parts)
    }

    fn idle_timeout(&self) -> Option<std::time::Duration> {
        self.first.idle_timeout()
    }

    fn open_batch(&self, parts: Parts<'_, J::Part>, frontier: Option<u64>) {
        self.first.open_batch(parts, frontier);
    }

    fn open_state(&self, totals: &Self::Totals) -> usize {
        self.first.open_state(&totals.first)
    }

    fn restored_frontier(&self, totals: &Self::Totals) -> Option<u64> {
        self.first.restored_frontier(&totals.first)
    }

    fn take_late(&self, part: &mut J::Part) -> u64 {
        self.first.take_late(part)
    }
}
