//! What the adaptive interval (`engine.interval = "auto"`) chose over a
//! run's measured epochs, and whether the latency target held: the
//! `interval_chosen_ms` and `target` of a run's report.

use std::time::Duration;

use microbatch::progress::{EpochProgress, TargetStatus};
use serde::Serialize;

/// The intervals the measured epochs opened with, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct IntervalChosen {
    /// Median over the epochs.
    pub p50: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// Whether the latency target held over the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TargetReport {
    /// `engine.target_latency`, ms.
    pub latency_ms: f64,
    /// Whether the measured records' latency p99 was within it.
    pub met: bool,
    /// Measured epochs whose p99 was above it while the interval adapted.
    pub epochs_missed: u64,
    /// Measured epochs in which no interval could meet it at the load.
    pub epochs_unreachable: u64,
}

impl IntervalChosen {
    /// Over `epochs`; `None` if none opened with an interval.
    pub fn over(epochs: &[&EpochProgress]) -> Option<Self> {
        let mut ms: Vec<f64> = epochs
            .iter()
            .filter_map(|epoch| epoch.interval)
            .map(|interval| interval.as_secs_f64() * 1e3)
            .collect();
        if ms.is_empty() {
            return None;
        }
        ms.sort_unstable_by(f64::total_cmp);
        Some(IntervalChosen {
            p50: ms[(ms.len() - 1) / 2],
            min: ms[0],
            max: ms[ms.len() - 1],
        })
    }
}

impl TargetReport {
    /// Of the measured `epochs` under `target`, whose records' latency p99
    /// over the window was `p99_ns`.
    pub fn of(epochs: &[&EpochProgress], target: Duration, p99_ns: u64) -> Self {
        let count = |status| epochs.iter().filter(|e| e.target == Some(status)).count() as u64;
        TargetReport {
            latency_ms: target.as_secs_f64() * 1e3,
            met: u128::from(p99_ns) <= target.as_nanos(),
            epochs_missed: count(TargetStatus::Missed),
            epochs_unreachable: count(TargetStatus::Unreachable),
        }
    }

    /// The summary table's line.
    pub fn line(&self, chosen: Option<&IntervalChosen>) -> String {
        let chose = chosen.map_or(String::new(), |c| {
            format!(
                "; interval {:.1} ms p50 ({:.1} to {:.1} ms)",
                c.p50, c.min, c.max
            )
        });
        let verdict = if self.met {
            "met".to_owned()
        } else if self.epochs_unreachable > 0 {
            format!(
                "NOT MET: cannot be met at this load ({} epochs unreachable)",
                self.epochs_unreachable
            )
        } else {
            format!("NOT MET ({} epochs above it)", self.epochs_missed)
        };
        format!("{:.1} ms p99: {verdict}{chose}", self.latency_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(ms: u64, target: TargetStatus) -> EpochProgress {
        let mut epoch = EpochProgress::default();
        epoch.interval = Some(Duration::from_millis(ms));
        epoch.target = Some(target);
        epoch
    }

    #[test]
    fn the_choice_and_the_verdict_come_from_the_measured_epochs() {
        let epochs = [
            epoch(4, TargetStatus::Met),
            epoch(10, TargetStatus::Missed),
            epoch(12, TargetStatus::Met),
            epoch(20, TargetStatus::Unreachable),
        ];
        let refs: Vec<&EpochProgress> = epochs.iter().collect();
        let chosen = IntervalChosen::over(&refs).unwrap();
        assert_eq!((chosen.p50, chosen.min, chosen.max), (10.0, 4.0, 20.0));
        let target = Duration::from_millis(20);
        let held = TargetReport::of(&refs, target, 20_000_000);
        assert!(held.met);
        assert_eq!((held.epochs_missed, held.epochs_unreachable), (1, 1));
        let missed = TargetReport::of(&refs, target, 20_000_001);
        assert!(!missed.met);
        assert!(missed
            .line(Some(&chosen))
            .contains("cannot be met at this load"));
        assert_eq!(IntervalChosen::over(&[]), None);
    }
}
