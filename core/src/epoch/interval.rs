//! The adaptive interval: which interval the next epoch opens with when the
//! engine has a latency target ([`Config::target_latency`](crate::Config::target_latency)).
//!
//! A record waits in its open epoch for up to the epoch's span, then for the
//! epoch's seal-to-result and for whatever queued ahead of it. An epoch's
//! record latency p99 is therefore about its span plus an overhead
//! `o = p99 − span` that the span moves only slowly (a larger batch takes a
//! little longer to merge and emit). After each completed epoch the
//! controller aims the next interval at `budget − o`, the largest interval
//! whose records would still meet the budget, a share
//! ([`BUDGET_SHARE`]) of the target: the fixed point of Das et al.'s
//! iteration (SoCC 2014), taken in latency rather than processing time. It
//! shrinks to the aim at once and grows half the way per epoch, so a
//! latency rise is answered in one epoch and the growth settles where
//! `o` grows with the span (the map's slope is below one while the
//! engine keeps up).
//!
//! When the overhead alone leaves no room above the minimum interval for
//! [`ENTER_UNREACHABLE`] epochs in a row, no interval can meet the target at
//! this load (the input is beyond the engine's capacity, or the sink is
//! slower than the target): the controller says so
//! ([`TargetStatus::Unreachable`]) and holds the maximum interval, the
//! cheapest per record, instead of chasing the minimum, which costs most.
//! It leaves that state after the overhead left room for a number of
//! epochs in a row that doubles on each return (from
//! [`LEAVE_UNREACHABLE`] up to [`LEAVE_UNREACHABLE_MAX`]), so a load at
//! the edge of capacity settles instead of oscillating.
//!
//! Cold path: once per completed epoch, under the completion's turn.

use std::time::Duration;

use crate::config::MIN_AUTO_INTERVAL;
use crate::progress::TargetStatus;

/// The share of the target the controller aims each epoch's record latency
/// p99 at; the rest is margin for the epoch-to-epoch jitter, so that the
/// run's p99 meets the target.
pub const BUDGET_SHARE: f64 = 0.8;

/// Epochs in a row without room before the target is called unreachable.
pub const ENTER_UNREACHABLE: u32 = 3;

/// Epochs in a row with room before an unreachable target is tried again,
/// the first time; doubled on each return.
pub const LEAVE_UNREACHABLE: u32 = 4;

/// The most epochs in a row with room an unreachable target waits for.
pub const LEAVE_UNREACHABLE_MAX: u32 = 256;

/// The controller's state between epochs.
#[derive(Debug, Clone)]
pub(crate) struct IntervalController {
    target_micros: u64,
    budget_micros: u64,
    min_micros: u64,
    max_micros: u64,
    /// The interval epochs open with now.
    interval_micros: u64,
    /// Epochs in a row whose overhead left no room above the minimum.
    without_room: u32,
    /// Whether the target is called unreachable.
    unreachable: bool,
    /// Epochs in a row with room, while unreachable.
    with_room: u32,
    /// Epochs with room needed to leave the unreachable state.
    leave_after: u32,
    /// Epochs in a row the target has been reachable: after
    /// [`LEAVE_UNREACHABLE_MAX`] of them, `leave_after` starts over.
    reachable_for: u32,
}

impl IntervalController {
    /// A controller for `target`, whose intervals range from
    /// [`MIN_AUTO_INTERVAL`] to the target, starting at `start` (clamped
    /// into that range).
    pub(crate) fn new(target: Duration, start: Duration) -> Self {
        let target_micros = micros(target).max(micros(MIN_AUTO_INTERVAL));
        let min_micros = micros(MIN_AUTO_INTERVAL);
        IntervalController {
            target_micros,
            budget_micros: (target_micros as f64 * BUDGET_SHARE) as u64,
            min_micros,
            max_micros: target_micros,
            interval_micros: micros(start).clamp(min_micros, target_micros),
            without_room: 0,
            unreachable: false,
            with_room: 0,
            leave_after: LEAVE_UNREACHABLE,
            reachable_for: 0,
        }
    }

    /// Whether the target is called unreachable now.
    pub(crate) fn is_unreachable(&self) -> bool {
        self.unreachable
    }

    /// The interval epochs open with now.
    pub(crate) fn interval(&self) -> Duration {
        Duration::from_micros(self.interval_micros)
    }

    /// Takes in a completed epoch that was open for `span` and whose
    /// records' latency p99 was `p99` (`None`: it had no records, and says
    /// nothing of latency); returns what the epoch's latency says of the
    /// target. The next epochs open with [`interval`](Self::interval).
    pub(crate) fn observe(&mut self, span: Duration, p99: Option<Duration>) -> TargetStatus {
        let Some(p99) = p99 else {
            return self.status(None);
        };
        let p99_micros = micros(p99);
        let overhead = p99_micros.saturating_sub(micros(span));
        let room = self.budget_micros.saturating_sub(overhead);
        let has_room = room >= self.min_micros;
        if self.unreachable {
            self.with_room = if has_room { self.with_room + 1 } else { 0 };
            if self.with_room >= self.leave_after {
                self.unreachable = false;
                self.without_room = 0;
                self.leave_after = (self.leave_after * 2).min(LEAVE_UNREACHABLE_MAX);
                self.interval_micros = room.min(self.max_micros);
            }
        } else if !has_room {
            self.without_room += 1;
            self.interval_micros = self.min_micros;
            if self.without_room >= ENTER_UNREACHABLE {
                self.unreachable = true;
                self.reachable_for = 0;
                self.with_room = 0;
                self.interval_micros = self.max_micros;
            }
        } else {
            self.without_room = 0;
            self.reachable_for = self.reachable_for.saturating_add(1);
            if self.reachable_for >= LEAVE_UNREACHABLE_MAX {
                self.leave_after = LEAVE_UNREACHABLE;
            }
            let aim = room.min(self.max_micros);
            self.interval_micros = if aim < self.interval_micros {
                aim
            } else {
                self.interval_micros + (aim - self.interval_micros).div_ceil(2)
            };
        }
        self.status(Some(p99_micros))
    }

    fn status(&self, p99_micros: Option<u64>) -> TargetStatus {
        if self.unreachable {
            TargetStatus::Unreachable
        } else if p99_micros.is_some_and(|p99| p99 > self.target_micros) {
            TargetStatus::Missed
        } else {
            TargetStatus::Met
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the epochs say, against the rules stated in the
        /// module docs: the interval stays in range; an unreachable target
        /// holds the largest; a reachable epoch with room sets the next
        /// interval to its aim if smaller, else half way up to it.
        #[test]
        fn every_choice_follows_the_rules(
            target_ms in 2u64..200,
            start_ms in 0u64..400,
            epochs in proptest::collection::vec((0u64..300_000, proptest::option::of(0u64..600_000)), 1..200),
        ) {
            let target = Duration::from_millis(target_ms);
            let mut controller = IntervalController::new(target, Duration::from_millis(start_ms));
            let budget = (target_ms as f64 * 1000.0 * BUDGET_SHARE) as u64;
            for (span, p99) in epochs {
                let before = controller.clone();
                let status = controller.observe(
                    Duration::from_micros(span),
                    p99.map(Duration::from_micros),
                );
                let interval = micros(controller.interval());
                prop_assert!((1000..=target_ms * 1000).contains(&interval));
                // The interval the budget leaves beside the epoch's overhead.
                let room_beside = |p99: u64| budget.saturating_sub(p99.saturating_sub(span));
                match (status, p99) {
                    (TargetStatus::Unreachable, _) => prop_assert_eq!(interval, target_ms * 1000),
                    (_, None) => prop_assert_eq!(interval, before.interval_micros),
                    (_, Some(p99)) if before.unreachable => {
                        // It left the unreachable state: at the aim.
                        prop_assert_eq!(interval, room_beside(p99).min(target_ms * 1000));
                    }
                    (_, Some(p99)) => {
                        let room = room_beside(p99);
                        let aim = room.min(target_ms * 1000);
                        if room < 1000 {
                            prop_assert_eq!(interval, 1000);
                        } else if aim < before.interval_micros {
                            prop_assert_eq!(interval, aim);
                        } else {
                            prop_assert!(before.interval_micros <= interval && interval <= aim);
                        }
                        let above = p99 > target_ms * 1000;
                        prop_assert_eq!(status == TargetStatus::Missed, above);
                    }
                }
            }
        }
    }

    const MS: Duration = Duration::from_millis(1);

    /// A model engine: an epoch of interval `i` at a load using `load` of
    /// the capacity at large batches takes `fixed + per_epoch_cost` to
    /// emit, and falls behind (its backlog grows by what it could not
    /// serve) when the work of an epoch exceeds its span.
    struct Model {
        load: f64,
        /// Per epoch cost (seal, merge, emit), ms.
        per_epoch_ms: f64,
        backlog_ms: f64,
    }

    impl Model {
        /// One epoch at `interval`: its span and latency p99.
        fn epoch(&mut self, interval: Duration) -> (Duration, Duration) {
            let span = interval.as_secs_f64() * 1e3;
            let busy = span * self.load + self.per_epoch_ms;
            self.backlog_ms = (self.backlog_ms + busy - span).max(0.0);
            let p99 = span * 0.99 + self.per_epoch_ms + self.backlog_ms;
            (
                Duration::from_secs_f64(span / 1e3),
                Duration::from_secs_f64(p99 / 1e3),
            )
        }
    }

    fn run(
        model: &mut Model,
        controller: &mut IntervalController,
        epochs: usize,
    ) -> Vec<(Duration, TargetStatus)> {
        (0..epochs)
            .map(|_| {
                let interval = controller.interval();
                let (span, p99) = model.epoch(interval);
                (interval, controller.observe(span, Some(p99)))
            })
            .collect()
    }

    #[test]
    fn at_half_load_it_settles_on_the_largest_interval_that_meets_the_target() {
        let mut model = Model {
            load: 0.5,
            per_epoch_ms: 2.0,
            backlog_ms: 0.0,
        };
        let mut controller = IntervalController::new(20 * MS, MS);
        let history = run(&mut model, &mut controller, 40);
        let settled = &history[20..];
        for (interval, status) in settled {
            assert_eq!(*status, TargetStatus::Met);
            // budget 16 ms less the 2 ms overhead: about 14 ms.
            assert!((13 * MS..=15 * MS).contains(interval), "{interval:?}");
        }
    }

    #[test]
    fn a_latency_rise_shrinks_the_next_interval_at_once() {
        let mut controller = IntervalController::new(20 * MS, 10 * MS);
        controller.observe(10 * MS, Some(12 * MS));
        let before = controller.interval();
        // The sink slowed: 9 ms of overhead.
        controller.observe(before, Some(before + 9 * MS));
        assert_eq!(controller.interval(), 16 * MS - 9 * MS);
    }

    #[test]
    fn beyond_capacity_it_says_so_and_holds_the_cheapest_interval() {
        let mut model = Model {
            load: 1.2,
            per_epoch_ms: 1.0,
            backlog_ms: 0.0,
        };
        let mut controller = IntervalController::new(20 * MS, 10 * MS);
        let history = run(&mut model, &mut controller, 60);
        let settled = &history[10..];
        assert!(settled
            .iter()
            .all(|(i, s)| *s == TargetStatus::Unreachable && *i == 20 * MS));
    }

    #[test]
    fn at_the_edge_of_capacity_returns_to_the_target_grow_rarer() {
        // Small intervals cost too much per epoch to keep up, large ones do:
        // each return to the target falls behind again.
        let mut model = Model {
            load: 0.7,
            per_epoch_ms: 5.0,
            backlog_ms: 0.0,
        };
        let mut controller = IntervalController::new(20 * MS, 10 * MS);
        let history = run(&mut model, &mut controller, 2000);
        let returns: Vec<usize> = history
            .windows(2)
            .enumerate()
            .filter(|(_, w)| {
                w[0].1 == TargetStatus::Unreachable && w[1].1 != TargetStatus::Unreachable
            })
            .map(|(i, _)| i)
            .collect();
        // Returns after 4, 8, 16, ... epochs of room: ever rarer, then at
        // most one per LEAVE_UNREACHABLE_MAX epochs.
        let gaps: Vec<usize> = returns.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[1] + 4 >= g[0]), "gaps {gaps:?}");
        let late = returns.iter().filter(|&&i| i >= 1000).count();
        assert!(
            late <= 1000 / LEAVE_UNREACHABLE_MAX as usize + 1,
            "returns at {returns:?}"
        );
        let unreachable = history
            .iter()
            .filter(|(_, s)| *s == TargetStatus::Unreachable)
            .count();
        assert!(
            unreachable > 1500,
            "{unreachable} of 2000 epochs unreachable"
        );
    }

    #[test]
    fn empty_epochs_change_nothing_and_intervals_stay_in_range() {
        let mut controller = IntervalController::new(20 * MS, 100 * MS);
        assert_eq!(controller.interval(), 20 * MS);
        assert_eq!(controller.observe(20 * MS, None), TargetStatus::Met);
        assert_eq!(controller.interval(), 20 * MS);
        assert_eq!(
            controller.observe(20 * MS, Some(30 * MS)),
            TargetStatus::Missed
        );
        assert!(controller.interval() >= MIN_AUTO_INTERVAL);
        let tiny = IntervalController::new(Duration::from_micros(10), Duration::ZERO);
        assert_eq!(tiny.interval(), MIN_AUTO_INTERVAL);
    }
}
