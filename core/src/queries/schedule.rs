//! Which query's task an owner runs a piece of next: the policies of
//! [`SchedulerPolicy`], over the oldest waiting task of each query (a
//! query's own tasks run in epoch order). Pure and owner-local: no two
//! threads share a queue, so this is no concurrent protocol.

use std::time::Instant;

/// How an owner orders the tasks of its queries (profiles:
/// `scheduler.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SchedulerPolicy {
    /// Highest [`priority`](super::Query::priority) first, then earliest
    /// deadline (the epoch's seal plus the query's
    /// [`latency_budget`](super::Query::latency_budget)), round robin
    /// among equals. Long tasks run in pieces, so an urgent task waits at
    /// most one piece.
    #[default]
    Priority,
    /// The oldest task first, whatever its query: a long task holds up
    /// every task behind it (the engine without a scheduler).
    Fifo,
    /// One piece of each query with work in turn, whatever its priority.
    RoundRobin,
}

/// The oldest waiting task of one query, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The query's index.
    pub(crate) query: usize,
    pub(crate) priority: i64,
    pub(crate) deadline: Option<Instant>,
    /// When the task was queued on this owner, in queuing order.
    pub(crate) queued: u64,
}

/// The candidate to run a piece of under `policy`; `turn` is the query
/// after the last one chosen, where round robin goes on from. `None` for
/// no candidates.
pub(crate) fn pick(
    policy: SchedulerPolicy,
    candidates: &[Candidate],
    turn: usize,
    queries: usize,
) -> Option<Candidate> {
    // Distance from `turn`, going round: the round-robin order.
    let after_turn = |c: &Candidate| (c.query + queries - turn % queries) % queries;
    match policy {
        SchedulerPolicy::Fifo => candidates.iter().min_by_key(|c| c.queued).copied(),
        SchedulerPolicy::RoundRobin => candidates.iter().min_by_key(|c| after_turn(c)).copied(),
        SchedulerPolicy::Priority => candidates
            .iter()
            .min_by_key(|c| {
                // No deadline sorts last among equal priorities.
                let deadline = (c.deadline.is_none(), c.deadline);
                (std::cmp::Reverse(c.priority), deadline, after_turn(c))
            })
            .copied(),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn candidate(query: usize, priority: i64, deadline_ms: u64, queued: u64) -> Candidate {
        let base = Instant::now();
        Candidate {
            query,
            priority,
            deadline: Some(base + Duration::from_millis(deadline_ms)),
            queued,
        }
    }

    #[test]
    fn priority_comes_before_deadline_and_queuing_order() {
        let low_old = candidate(0, 0, 1, 0);
        let high_late = candidate(1, 10, 500, 7);
        let picked = pick(SchedulerPolicy::Priority, &[low_old, high_late], 0, 2);
        assert_eq!(picked.map(|c| c.query), Some(1));
        let fifo = pick(SchedulerPolicy::Fifo, &[low_old, high_late], 0, 2);
        assert_eq!(fifo.map(|c| c.query), Some(0));
    }

    #[test]
    fn equal_priorities_go_by_deadline_then_take_turns() {
        let base = Instant::now();
        let at = |query, ms| Candidate {
            query,
            priority: 1,
            deadline: Some(base + Duration::from_millis(ms)),
            queued: query as u64,
        };
        let sooner = pick(SchedulerPolicy::Priority, &[at(0, 9), at(1, 3)], 0, 2);
        assert_eq!(sooner.map(|c| c.query), Some(1));
        let tied = [at(0, 5), at(1, 5), at(2, 5)];
        let order: Vec<usize> = (0..3)
            .scan(0, |turn, _| {
                let chosen = pick(SchedulerPolicy::Priority, &tied, *turn, 3)?.query;
                *turn = chosen + 1;
                Some(chosen)
            })
            .collect();
        assert_eq!(order, [0, 1, 2]);
    }

    #[test]
    fn round_robin_ignores_priority() {
        let tasks = [candidate(0, 100, 0, 0), candidate(2, 0, 0, 1)];
        let after_0 = pick(SchedulerPolicy::RoundRobin, &tasks, 1, 3);
        assert_eq!(after_0.map(|c| c.query), Some(2));
        let after_2 = pick(SchedulerPolicy::RoundRobin, &tasks, 3, 3);
        assert_eq!(after_2.map(|c| c.query), Some(0));
        assert_eq!(pick(SchedulerPolicy::Priority, &[], 0, 3), None);
    }

    /// The reference: sort every candidate by the policy's keys, written
    /// out longhand, and take the first.
    fn reference(policy: SchedulerPolicy, all: &[Candidate], turn: usize, n: usize) -> usize {
        let mut sorted = all.to_vec();
        sorted.sort_by(|a, b| {
            let round = |c: &Candidate| (c.query + n - turn % n) % n;
            match policy {
                SchedulerPolicy::Fifo => a.queued.cmp(&b.queued),
                SchedulerPolicy::RoundRobin => round(a).cmp(&round(b)),
                SchedulerPolicy::Priority => b
                    .priority
                    .cmp(&a.priority)
                    .then(match (a.deadline, b.deadline) {
                        (Some(x), Some(y)) => x.cmp(&y),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    })
                    .then(round(a).cmp(&round(b))),
            }
        });
        sorted[0].query
    }

    proptest! {
        #[test]
        fn every_policy_picks_what_sorting_by_its_keys_picks(
            specs in proptest::collection::vec((0i64..3, proptest::option::of(0u64..4)), 1..6),
            turn in 0usize..8,
            policy in prop_oneof![
                Just(SchedulerPolicy::Priority),
                Just(SchedulerPolicy::Fifo),
                Just(SchedulerPolicy::RoundRobin),
            ],
        ) {
            let base = Instant::now();
            let n = specs.len();
            // Queued in reverse query order, so queuing order and query
            // order disagree.
            let all: Vec<Candidate> = specs
                .iter()
                .enumerate()
                .map(|(query, (priority, deadline))| Candidate {
                    query,
                    priority: *priority,
                    deadline: deadline.map(|ms| base + Duration::from_millis(ms)),
                    queued: (n - query) as u64,
                })
                .collect();
            let picked = pick(policy, &all, turn, n).map(|c| c.query);
            prop_assert_eq!(picked, Some(reference(policy, &all, turn, n)));
        }
    }
}
