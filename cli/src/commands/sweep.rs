//! `microbatch sweep`: the batch interval (and optionally the count
//! trigger and the offered rate) against throughput and latency, to show
//! where the knee is.
//!
//! Each point runs twice: at the maximum rate for throughput, then at each
//! fixed open-loop rate for latency. Without `--rate` (and with a profile
//! whose rate is "max"), the latency rate is half the lowest throughput
//! measured over the points, so that every point can sustain it.
//!
//! A profile with `engine.interval = "auto"` sweeps the fixed intervals
//! without its target, and at each fixed rate runs once more with the
//! adaptive interval: its row (`adaptive` true, `interval_ms` the median
//! interval it chose) sits next to the fixed-interval curve.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::run::run;
use crate::driver::error::RunError;
use crate::driver::{Observer, RunFiles};
use crate::profile::schema::{OutputKind, Profile, Rate};
use crate::report::{percentiles_line, rate, round_rate, RunReport};

/// How far below the best throughput the knee may be: the knee is the
/// shortest interval whose throughput is within this fraction of the best.
pub const KNEE_TOLERANCE: f64 = 0.10;

/// The points to run.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPlan {
    /// Batch intervals, each > 0.
    pub intervals: Vec<Duration>,
    /// Count-trigger values (`None`: off); default the profile's.
    pub max_batch_records: Vec<Option<u64>>,
    /// Fixed rates for the latency runs; empty: see the module docs.
    pub rates: Vec<u64>,
    /// Runs per point (≥ 1); the table and plots show each point's median
    /// run (by throughput at the maximum rate, by p99 record latency at a
    /// fixed rate), the CSV every run.
    pub repeat: usize,
}

/// One row of the sweep's CSV: one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// The interval trigger, ms.
    pub interval_ms: f64,
    /// The count trigger; empty when off.
    pub max_batch_records: Option<u64>,
    /// `max` for a throughput run, else records/s.
    pub offered_rate: String,
    /// Measured throughput, records/s.
    pub throughput_rps: f64,
    /// Record latency p50, ns.
    pub record_p50_ns: u64,
    /// Record latency p90, ns.
    pub record_p90_ns: u64,
    /// Record latency p99, ns.
    pub record_p99_ns: u64,
    /// Record latency p99.9, ns.
    pub record_p999_ns: u64,
    /// Record latency max, ns.
    pub record_max_ns: u64,
    /// Seal-to-result p50, ns.
    pub seal_to_result_p50_ns: u64,
    /// Seal-to-result p99, ns.
    pub seal_to_result_p99_ns: u64,
    /// Seal-to-result max, ns.
    pub seal_to_result_max_ns: u64,
    /// Epochs in the measured window.
    pub epochs: u64,
    /// Accepted and in results over the whole run: equal.
    pub records_in: u64,
    /// Process CPU seconds in the measured window.
    pub cpu_s: Option<f64>,
    /// Which of the point's runs this is, from 1.
    pub run: usize,
    /// Whether this run is the point's median, shown in tables and plots.
    pub median: bool,
    /// Whether the interval was adaptive (`engine.interval = "auto"`):
    /// then `interval_ms` is the median interval it chose.
    pub adaptive: bool,
}

impl SweepRow {
    fn of(report: &RunReport) -> Self {
        SweepRow {
            interval_ms: report.interval_in_force_ms().unwrap_or(f64::NAN),
            max_batch_records: report.max_batch_records,
            offered_rate: report
                .offered_rate_rps
                .map_or("max".into(), |rate| rate.to_string()),
            throughput_rps: report.throughput_rps,
            record_p50_ns: report.record_latency_ns.p50,
            record_p90_ns: report.record_latency_ns.p90,
            record_p99_ns: report.record_latency_ns.p99,
            record_p999_ns: report.record_latency_ns.p999,
            record_max_ns: report.record_latency_ns.max,
            seal_to_result_p50_ns: report.seal_to_result_ns.p50,
            seal_to_result_p99_ns: report.seal_to_result_ns.p99,
            seal_to_result_max_ns: report.seal_to_result_ns.max,
            epochs: report.epochs_measured,
            records_in: report.records_in,
            cpu_s: report.cpu_s,
            run: 1,
            median: true,
            adaptive: report.target.is_some(),
        }
    }

    /// Whether this is a throughput (maximum-rate) run.
    pub fn is_throughput(&self) -> bool {
        self.offered_rate == "max"
    }
}

/// Every run of a sweep, and where the knee is.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepResult {
    /// The runs, throughput runs first.
    pub rows: Vec<SweepRow>,
    /// The latency runs' rates.
    pub rates: Vec<u64>,
    /// Why those rates.
    pub rate_note: String,
}

/// Runs the plan; `say` hears each point before it runs.
pub fn sweep(
    profile: &Profile,
    name: &str,
    plan: &SweepPlan,
    observer: &mut dyn Observer,
    say: &mut dyn FnMut(&str),
) -> Result<SweepResult, RunError> {
    let mut base = profile.clone();
    base.output.kind = OutputKind::None;
    let max_batch_records = if plan.max_batch_records.is_empty() {
        vec![profile.engine.max_batch_records]
    } else {
        plan.max_batch_records.clone()
    };
    let points: Vec<(Duration, Option<u64>)> = max_batch_records
        .iter()
        .flat_map(|&n| plan.intervals.iter().map(move |&interval| (interval, n)))
        .collect();
    let point_profile = |interval: Duration, n: Option<u64>, rate: Rate| {
        let mut point = base.clone();
        point.engine.interval = Some(interval);
        point.engine.target_latency = None;
        point.engine.max_batch_records = n;
        point.workload.rate = rate;
        point
    };
    let label = |interval: Duration, n: Option<u64>| {
        format!(
            "interval {}{}",
            humantime::format_duration(interval),
            n.map_or(String::new(), |n| format!(", max_batch_records {n}"))
        )
    };

    let mut rows = Vec::new();
    for &(interval, n) in &points {
        let point = point_profile(interval, n, Rate::Max);
        let what = format!("{}: maximum rate", label(interval, n));
        rows.extend(repeated(
            &point,
            name,
            plan.repeat,
            &what,
            observer,
            say,
            |row| row.throughput_rps,
        )?);
    }
    let (rates, rate_note) = if !plan.rates.is_empty() {
        (plan.rates.clone(), "--rate".to_owned())
    } else if let Rate::PerSecond(rate) = profile.workload.rate {
        (vec![rate], "the profile's workload.rate".to_owned())
    } else {
        let slowest = rows
            .iter()
            .filter(|row| row.median)
            .map(|row| row.throughput_rps)
            .fold(f64::INFINITY, f64::min);
        (
            vec![round_rate(slowest / 2.0)],
            "half the lowest throughput measured, so that every point sustains it".to_owned(),
        )
    };
    for &rate in &rates {
        let offered = format!("{} offered", self::rate(rate as f64));
        let mut latency_points: Vec<(Profile, String)> = points
            .iter()
            .map(|&(interval, n)| {
                let point = point_profile(interval, n, Rate::PerSecond(rate));
                (point, format!("{}: {offered}", label(interval, n)))
            })
            .collect();
        if let Some(target) = profile.engine.target_latency {
            latency_points.extend(max_batch_records.iter().map(|&n| {
                let mut point = base.clone();
                point.engine.max_batch_records = n;
                point.workload.rate = Rate::PerSecond(rate);
                let what = format!(
                    "interval auto (target {}){}: {offered}",
                    humantime::format_duration(target),
                    n.map_or(String::new(), |n| format!(", max_batch_records {n}")),
                );
                (point, what)
            }));
        }
        for (point, what) in &latency_points {
            rows.extend(repeated(
                point,
                name,
                plan.repeat,
                what,
                observer,
                say,
                |row| row.record_p99_ns as f64,
            )?);
        }
    }
    Ok(SweepResult {
        rows,
        rates,
        rate_note,
    })
}

/// Runs `point` `repeat` times and marks the median run by `key`.
fn repeated(
    point: &Profile,
    name: &str,
    repeat: usize,
    what: &str,
    observer: &mut dyn Observer,
    say: &mut dyn FnMut(&str),
    key: fn(&SweepRow) -> f64,
) -> Result<Vec<SweepRow>, RunError> {
    let mut rows = Vec::with_capacity(repeat);
    for index in 0..repeat.max(1) {
        if repeat > 1 {
            say(&format!("{what} (run {} of {repeat})", index + 1));
        } else {
            say(what);
        }
        let mut row = SweepRow::of(&run(point, name, &RunFiles::default(), observer)?.report);
        row.run = index + 1;
        row.median = false;
        rows.push(row);
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| key(&rows[a]).total_cmp(&key(&rows[b])));
    rows[order[order.len() / 2]].median = true;
    Ok(rows)
}

/// The knee of one count-trigger setting's throughput runs: the shortest
/// interval within [`KNEE_TOLERANCE`] of the best throughput.
pub fn knee(throughput_runs: &[&SweepRow]) -> Option<(f64, f64)> {
    let best = throughput_runs
        .iter()
        .map(|row| row.throughput_rps)
        .fold(0.0, f64::max);
    throughput_runs
        .iter()
        .filter(|row| row.throughput_rps >= (1.0 - KNEE_TOLERANCE) * best)
        .map(|row| (row.interval_ms, row.throughput_rps))
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

impl SweepResult {
    /// The runs of one count-trigger setting at `offered` (`"max"` or a
    /// rate), by interval.
    pub fn series(&self, max_batch_records: Option<u64>, offered: &str) -> Vec<&SweepRow> {
        let mut rows: Vec<&SweepRow> = self
            .rows
            .iter()
            .filter(|row| {
                row.median
                    && !row.adaptive
                    && row.max_batch_records == max_batch_records
                    && row.offered_rate == offered
            })
            .collect();
        rows.sort_by(|a, b| a.interval_ms.total_cmp(&b.interval_ms));
        rows
    }

    /// The adaptive interval's median run of one count-trigger setting at
    /// the rate `offered`, if the sweep ran one.
    pub fn adaptive(&self, max_batch_records: Option<u64>, offered: &str) -> Option<&SweepRow> {
        self.rows.iter().find(|row| {
            row.median
                && row.adaptive
                && row.max_batch_records == max_batch_records
                && row.offered_rate == offered
        })
    }

    /// The count-trigger settings swept, in order.
    pub fn max_batch_records(&self) -> Vec<Option<u64>> {
        let mut seen = Vec::new();
        for row in &self.rows {
            if !seen.contains(&row.max_batch_records) {
                seen.push(row.max_batch_records);
            }
        }
        seen
    }

    /// The table printed after a sweep, with the knee.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "  {:>10} {:>10} {:>10} {:>11}   {:<44} {:>12}",
            "interval",
            "max batch",
            "offered",
            "throughput",
            "record latency p50 / p90 / p99 / p99.9 / max",
            "seal→result p99"
        );
        for row in self.rows.iter().filter(|row| row.median) {
            let interval = if row.adaptive {
                format!("auto {:.1}", row.interval_ms)
            } else {
                row.interval_ms.to_string()
            };
            let _ = writeln!(
                out,
                "  {:>8} ms {:>10} {:>10} {:>11}   {:<44} {:>12.2} ms",
                interval,
                row.max_batch_records
                    .map_or("off".into(), |n| n.to_string()),
                row.offered_rate,
                rate(row.throughput_rps),
                if row.is_throughput() {
                    "(closed loop: see the fixed-rate rows)".into()
                } else {
                    percentiles_line(&crate::report::Percentiles {
                        p50: row.record_p50_ns,
                        p90: row.record_p90_ns,
                        p99: row.record_p99_ns,
                        p999: row.record_p999_ns,
                        max: row.record_max_ns,
                    })
                },
                row.seal_to_result_p99_ns as f64 / 1e6,
            );
        }
        let _ = writeln!(
            out,
            "\n  latency rate: {} ({})",
            self.rates
                .iter()
                .map(|r| rate(*r as f64))
                .collect::<Vec<_>>()
                .join(", "),
            self.rate_note
        );
        for n in self.max_batch_records() {
            let throughput = self.series(n, "max");
            let Some((interval_ms, best)) = knee(&throughput) else {
                continue;
            };
            let latency = self.series(n, &self.rates[0].to_string());
            let p99_at = |ms: f64| {
                latency
                    .iter()
                    .find(|row| row.interval_ms == ms)
                    .map_or(f64::NAN, |row| row.record_p99_ns as f64 / 1e6)
            };
            let longest = throughput.last().map_or(interval_ms, |row| row.interval_ms);
            let beyond = if longest > interval_ms {
                format!(
                    "longer ones only add latency (p99 {:.2} ms at {interval_ms} ms against {:.2} ms at {longest} ms)",
                    p99_at(interval_ms),
                    p99_at(longest)
                )
            } else {
                "it is the longest interval swept: sweep longer ones to see whether throughput still grows".into()
            };
            let _ = writeln!(
                out,
                "  knee{}: {interval_ms} ms, the shortest interval within {:.0}% of the best throughput ({}); \
                 shorter intervals lose throughput to per-epoch costs; {beyond}.",
                n.map_or(String::new(), |n| format!(" (max_batch_records {n})")),
                KNEE_TOLERANCE * 100.0,
                rate(best),
            );
        }
        out
    }

    /// The table's knee lines (one per count-trigger setting), if a knee
    /// was found.
    pub fn knee_line(&self) -> Option<String> {
        let lines: Vec<String> = self
            .table()
            .lines()
            .filter(|line| line.trim_start().starts_with("knee"))
            .map(|line| line.trim().to_owned())
            .collect();
        (!lines.is_empty()).then(|| lines.join(" "))
    }

    /// Writes `sweep.csv` into `dir`.
    pub fn write_csv(&self, dir: &Path) -> Result<PathBuf, RunError> {
        let path = dir.join("sweep.csv");
        let fail = |message: String| RunError::Output {
            what: path.display().to_string(),
            message,
        };
        let mut writer = csv::Writer::from_path(&path).map_err(|error| fail(error.to_string()))?;
        for row in &self.rows {
            writer
                .serialize(row)
                .map_err(|error| fail(error.to_string()))?;
        }
        writer.flush().map_err(|error| fail(error.to_string()))?;
        Ok(path)
    }
}

/// Parses `1ms,10ms,100ms,1s`: each a positive duration.
pub fn parse_intervals(list: &str) -> Result<Vec<Duration>, String> {
    list.split(',')
        .map(|item| {
            let item = item.trim();
            match humantime::parse_duration(item) {
                Ok(interval) if !interval.is_zero() => Ok(interval),
                _ => Err(format!(
                    "`{item}` is not a positive duration; accepted: a comma-separated list such as 1ms,10ms,100ms,1s"
                )),
            }
        })
        .collect()
}

/// Parses `off,1000,100000`: each a positive count or `off`.
pub fn parse_max_batch_records(list: &str) -> Result<Vec<Option<u64>>, String> {
    list.split(',')
        .map(|item| match item.trim() {
            "off" => Ok(None),
            item => match item.replace('_', "").parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(format!(
                    "`{item}` is not a positive count; accepted: a comma-separated list of counts or `off`"
                )),
            },
        })
        .collect()
}

/// Parses `100000,1000000`: each a positive rate in records/s.
pub fn parse_rates(list: &str) -> Result<Vec<u64>, String> {
    list.split(',')
        .map(|item| match item.trim().parse::<Rate>()? {
            Rate::PerSecond(rate) => Ok(rate),
            Rate::Max => Err(
                "`max` is always swept (the throughput runs); --rate lists the fixed rates of the latency runs"
                    .into(),
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(interval_ms: f64, throughput_rps: f64) -> SweepRow {
        SweepRow {
            interval_ms,
            max_batch_records: None,
            offered_rate: "max".into(),
            throughput_rps,
            record_p50_ns: 0,
            record_p90_ns: 0,
            record_p99_ns: 0,
            record_p999_ns: 0,
            record_max_ns: 0,
            seal_to_result_p50_ns: 0,
            seal_to_result_p99_ns: 0,
            seal_to_result_max_ns: 0,
            epochs: 0,
            records_in: 0,
            cpu_s: None,
            run: 1,
            median: true,
            adaptive: false,
        }
    }

    #[test]
    fn an_adaptive_row_stays_out_of_the_fixed_curve() {
        let at_rate = |interval_ms: f64| SweepRow {
            offered_rate: "1000".into(),
            ..row(interval_ms, 1000.0)
        };
        let mut auto = at_rate(14.0);
        auto.adaptive = true;
        let result = SweepResult {
            rows: vec![
                row(1.0, 20.0),
                row(10.0, 85.0),
                at_rate(1.0),
                auto,
                at_rate(10.0),
            ],
            rates: vec![1000],
            rate_note: String::new(),
        };
        let curve: Vec<f64> = result
            .series(None, "1000")
            .iter()
            .map(|r| r.interval_ms)
            .collect();
        assert_eq!(curve, [1.0, 10.0]);
        assert_eq!(
            result.adaptive(None, "1000").map(|r| r.interval_ms),
            Some(14.0)
        );
        assert_eq!(result.adaptive(None, "max"), None);
        assert!(result.table().contains("auto 14.0"), "{}", result.table());
    }

    #[test]
    fn the_knee_is_the_shortest_interval_near_the_best() {
        let rows = [
            row(1.0, 20.0),
            row(10.0, 85.0),
            row(100.0, 100.0),
            row(1000.0, 98.0),
        ];
        let refs: Vec<&SweepRow> = rows.iter().collect();
        assert_eq!(knee(&refs), Some((100.0, 100.0)));
        let rows = [row(1.0, 20.0), row(10.0, 95.0), row(100.0, 100.0)];
        let refs: Vec<&SweepRow> = rows.iter().collect();
        assert_eq!(knee(&refs), Some((10.0, 95.0)));
        assert_eq!(knee(&[]), None);
    }

    #[test]
    fn lists_parse_or_say_what_is_accepted() {
        assert_eq!(
            parse_intervals("1ms, 10ms,1s").unwrap(),
            vec![
                Duration::from_millis(1),
                Duration::from_millis(10),
                Duration::from_secs(1)
            ]
        );
        assert!(parse_intervals("1ms,0s")
            .unwrap_err()
            .contains("positive duration"));
        assert!(parse_intervals("fast").is_err());
        assert_eq!(
            parse_max_batch_records("off,1000").unwrap(),
            vec![None, Some(1000)]
        );
        assert!(parse_max_batch_records("0").is_err());
        assert_eq!(parse_rates("1000,2_000").unwrap(), vec![1000, 2000]);
        assert!(parse_rates("max").unwrap_err().contains("always swept"));
        assert!(parse_rates("-5").is_err());
    }
}
