//! An owner's queries: the work after each seal, queued as tasks (merge
//! the parts every worker sent, finish them with the query's totals,
//! write the rows to its sink, complete), run one piece at a time in the
//! order the [`SchedulerPolicy`] says.
//!
//! Invariants: a query's tasks on one owner run in epoch order (only the
//! oldest of each query is a candidate); a task does at most about one
//! piece (the budget, in entries) per call; at most the query's
//! `max_epochs_in_flight` tasks wait per owner, beyond which the oldest
//! runs to its end at once, holding the owner's loop (and so, through
//! the epoch window, the input) back.

use std::collections::VecDeque;
use std::time::Instant;

use super::erased::Sub;
use super::report::QueryShared;
use super::schedule::{pick, Candidate, SchedulerPolicy};
use crate::job::{DeferredError, EpochTime};

/// What the queries' job keeps on each owner across epochs (its
/// [`Job::Totals`](crate::job::Job::Totals)).
pub struct OwnerQueries {
    queries: Vec<OwnerQuery>,
    /// The query after the last one a piece was run of.
    turn: usize,
    /// Tasks queued on this owner so far, and waiting now.
    queued: u64,
    waiting: usize,
    /// A failure of a task run at the in-flight bound, inside a hook that
    /// cannot fail: reported by the next [`OwnerQueries::run_piece`].
    failed: Option<DeferredError>,
    /// Reused for each choice, so choosing allocates nothing.
    candidates: Vec<Candidate>,
}

/// One query on one owner.
struct OwnerQuery {
    totals: Sub,
    rows: Sub,
    /// Parts that came in an epoch the query was not due (from a worker
    /// that may have sealed the last epoch, which keeps nothing back):
    /// merged into its next epoch.
    early: Vec<Sub>,
    /// Records of the engine epochs since its last epoch ended, for a
    /// count-triggered query.
    since: u64,
    tasks: VecDeque<Task>,
}

/// The work of one query epoch on one owner.
struct Task {
    time: EpochTime,
    deadline: Option<Instant>,
    queued: u64,
    /// Parts still to merge.
    parts: Vec<Sub>,
    merged: Option<Sub>,
    /// Rows written so far.
    rows: u64,
}

impl OwnerQueries {
    pub(crate) fn new<R>(queries: &[QueryShared<R>]) -> Self {
        OwnerQueries {
            queries: queries
                .iter()
                .map(|shared| OwnerQuery {
                    totals: shared.query.new_totals(),
                    rows: shared.query.new_rows(),
                    early: Vec::new(),
                    since: 0,
                    tasks: VecDeque::new(),
                })
                .collect(),
            turn: 0,
            queued: 0,
            waiting: 0,
            failed: None,
            candidates: Vec::with_capacity(queries.len()),
        }
    }

    /// Whether work is waiting.
    pub(crate) fn has_work(&self) -> bool {
        self.waiting > 0 || self.failed.is_some()
    }

    /// Whether query `q`'s epoch ends with an engine epoch of `records`
    /// records: when it `ends` anyway, or when its count trigger
    /// (`trigger` records) is reached. Every owner counts the same
    /// epochs' records, so all end the query's epoch at the same engine
    /// epoch.
    pub(crate) fn counts_to_due(
        &mut self,
        q: usize,
        records: u64,
        trigger: Option<u64>,
        ends: bool,
    ) -> bool {
        let own = &mut self.queries[q];
        own.since += records;
        let due = ends || trigger.is_some_and(|trigger| own.since >= trigger);
        if due {
            own.since = 0;
        }
        due
    }

    /// Keeps `parts` of query `q`, which came in an epoch it is not due.
    pub(crate) fn keep_early(&mut self, q: usize, parts: Vec<Sub>) {
        self.queries[q].early.extend(parts);
    }

    /// Queues query `q`'s epoch (`time`, the query's own view of it), with
    /// the `parts` that came for it and any that came early; at the
    /// query's in-flight bound, runs its oldest task to its end now.
    pub(crate) fn queue<R>(
        &mut self,
        shared: &QueryShared<R>,
        q: usize,
        time: EpochTime,
        parts: Vec<Sub>,
        budget: usize,
    ) {
        let own = &mut self.queries[q];
        let mut all = std::mem::take(&mut own.early);
        all.extend(parts);
        let deadline = time.sealed_at.map(|at| at + shared.spec.latency_budget);
        own.tasks.push_back(Task {
            time,
            deadline,
            queued: self.queued,
            parts: all,
            merged: None,
            rows: 0,
        });
        self.queued += 1;
        self.waiting += 1;
        while self.queries[q].tasks.len() > shared.spec.max_epochs_in_flight {
            if self.failed.is_some() {
                return;
            }
            loop {
                match self.piece(shared, q, budget) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(failed) => {
                        self.failed = Some(failed);
                        return;
                    }
                }
            }
        }
    }

    /// Runs one piece of the task `policy` chooses; whether there was one.
    pub(crate) fn run_piece<R>(
        &mut self,
        queries: &[QueryShared<R>],
        policy: SchedulerPolicy,
        budget: usize,
    ) -> Result<bool, DeferredError> {
        if let Some(failed) = self.failed.take() {
            return Err(failed);
        }
        if self.waiting == 0 {
            return Ok(false);
        }
        self.candidates.clear();
        for (q, own) in self.queries.iter().enumerate() {
            if let Some(task) = own.tasks.front() {
                self.candidates.push(Candidate {
                    query: q,
                    priority: queries[q].spec.priority,
                    deadline: task.deadline,
                    queued: task.queued,
                });
            }
        }
        let Some(chosen) = pick(policy, &self.candidates, self.turn, queries.len()) else {
            return Ok(false);
        };
        self.turn = chosen.query + 1;
        self.piece(&queries[chosen.query], chosen.query, budget)?;
        Ok(true)
    }

    /// One piece of query `q`'s oldest task: a merge of about `budget`
    /// entries of one part, or a finish of about `budget` entries and the
    /// write of their rows; the last piece completes the owner's share of
    /// the epoch. Whether the task is done.
    fn piece<R>(
        &mut self,
        shared: &QueryShared<R>,
        q: usize,
        budget: usize,
    ) -> Result<bool, DeferredError> {
        let own = &mut self.queries[q];
        let Some(task) = own.tasks.front_mut() else {
            return Ok(true);
        };
        let query = &shared.query;
        let epoch = task.time.epoch;
        let failed = |source| DeferredError::Sink { epoch, source };
        if task.merged.is_none() {
            task.merged = Some(task.parts.pop().unwrap_or_else(|| query.new_part()));
        }
        let merged = task.merged.as_mut().expect("set above");
        if let Some(from) = task.parts.last_mut() {
            if query.merge_some(merged, from, budget) {
                task.parts.pop();
            }
            return Ok(false);
        }
        let done = query.finish_some(merged, &mut own.totals, &mut own.rows, task.time, budget);
        let output = shared.has_output(epoch);
        task.rows += query
            .write(epoch, task.time.partition, &mut own.rows, output)
            .map_err(failed)?;
        if !done {
            return Ok(false);
        }
        // The merged part's clock holds the late records of every part.
        let late = query.take_late(task.merged.as_mut().expect("set above"));
        let (partitions, rows, sealed_at) = (task.time.partitions, task.rows, task.time.sealed_at);
        own.tasks.pop_front();
        self.waiting -= 1;
        shared.owner_finished(epoch, partitions, rows, late, sealed_at)?;
        Ok(true)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::job::{self, count, Job, OutputMode, Parts};
    use crate::queries::erased::Typed;
    use crate::queries::QuerySpec;
    use crate::sink::CollectSink;
    use std::time::Duration;

    type Record = (u64, u64);

    fn spec(name: &str, priority: i64) -> QuerySpec {
        QuerySpec {
            name: name.into(),
            priority,
            every: 1,
            records: None,
            latency_budget: Duration::ZERO,
            max_epochs_in_flight: 8,
        }
    }

    /// A part of `job` holding `keys` keys.
    fn part_of<J: Job<Record>>(job: &J, keys: u64) -> Sub {
        let mut parts = vec![job.new_part()];
        let records: Vec<Record> = (0..keys).map(|k| (k, 1)).collect();
        job.absorb(&records, Parts::from(&mut parts));
        Box::new(parts.pop().expect("one part"))
    }

    fn time(epoch: u64) -> EpochTime {
        EpochTime {
            epoch,
            partitions: 1,
            sealed_at: Some(Instant::now()),
            ..EpochTime::default()
        }
    }

    /// Pieces run, under `policy`, from queuing a 1 000-key complete-mode
    /// epoch of a low-priority query and then a 5-key epoch of a
    /// high-priority one, until the high one's result is out.
    fn pieces_until_the_urgent_result(policy: SchedulerPolicy) -> usize {
        let keyed = || job::records::<Record>().key_by(|r| r.0).aggregate(count());
        let (low_rows, _) = CollectSink::new();
        let (high_rows, _) = CollectSink::new();
        let low_job = keyed().running(OutputMode::Complete);
        let low_part = part_of(&low_job, 1000);
        let high_part = part_of(&keyed(), 5);
        let queries = [
            QueryShared::new(
                spec("low", 0),
                Box::new(Typed {
                    job: low_job,
                    sink: low_rows,
                }),
            ),
            QueryShared::new(
                spec("high", 10),
                Box::new(Typed {
                    job: keyed(),
                    sink: high_rows,
                }),
            ),
        ];
        let budget = 10;
        let mut owner = OwnerQueries::new(&queries);
        owner.queue(&queries[0], 0, time(0), vec![low_part], budget);
        // The low task is under way when the urgent one comes in.
        assert!(owner.run_piece(&queries, policy, budget).unwrap());
        owner.queue(&queries[1], 1, time(0), vec![high_part], budget);
        let mut pieces = 0;
        while queries[1].report().epochs == 0 {
            assert!(owner.run_piece(&queries, policy, budget).unwrap());
            pieces += 1;
        }
        while owner.run_piece(&queries, policy, budget).unwrap() {}
        assert!(!owner.has_work());
        assert_eq!(queries[0].report().rows, 1000);
        assert_eq!(queries[1].report().rows, 5);
        pieces
    }

    #[test]
    fn an_urgent_task_waits_at_most_one_piece_under_priority() {
        assert_eq!(pieces_until_the_urgent_result(SchedulerPolicy::Priority), 1);
        // Fifo finishes the 1 000 rows, 10 a piece, first.
        assert!(pieces_until_the_urgent_result(SchedulerPolicy::Fifo) > 100);
        // Round robin: the high query's turn comes after the low one's piece.
        assert_eq!(
            pieces_until_the_urgent_result(SchedulerPolicy::RoundRobin),
            1
        );
    }
}
