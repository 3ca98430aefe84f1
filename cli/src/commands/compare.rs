//! `microbatch compare`: the engine against baselines measured in the same
//! run, on the profile's job and workload.
//!
//! - **micro-batch**: the engine with the profile's settings.
//! - **batch**: the same engine and job as one epoch (both triggers off):
//!   one result when the input ends.
//! - **single thread**: the job's own fold (`Job::absorb`) over the same
//!   records in one thread, no engine: the per-core limit.
//! - **naive**: producer threads send every record through one
//!   `std::sync::mpsc` channel to an aggregator thread that updates a
//!   `std::collections::HashMap`.
//!
//! Each runs the profile's warm-up and then its duration, at the maximum
//! rate, for throughput; the two engine designs run again at one fixed
//! open-loop rate for latency.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use microbatch::job::{Aggregator, Job, Parts};
use microbatch::source::{Event, Poll, Source};
use serde::Serialize;

use super::run::run;
use crate::cpu;
use crate::driver::error::RunError;
use crate::driver::input::{open_input, split_sources};
use crate::driver::{Observer, RunFiles};
use crate::jobs::build::{with_aggregator, with_job, WithAggregator, WithJob};
use crate::jobs::case_of;
use crate::jobs::output::{Grouped, Reduced};
use crate::profile::schema::{JobKind, OutputKind, Profile, Rate};
use crate::report::{percentiles_line, rate, round_rate, Percentiles, RunReport};

/// Records a baseline thread takes from its source at a time (as a worker
/// does).
const CHUNK: usize = 4096;

/// One design's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Design {
    /// Its name.
    pub name: String,
    /// How often it produces a result.
    pub granularity: String,
    /// Records per second at the maximum rate, measured window.
    pub throughput_rps: f64,
    /// Record latency at the fixed rate; `None` where the design emits no
    /// result until its input ends.
    pub latency_ns: Option<Percentiles>,
    /// Threads it keeps busy.
    pub threads: usize,
    /// CPU seconds per million records at the maximum rate.
    pub cpu_s_per_million: Option<f64>,
}

/// The comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The profile's file name.
    pub profile: String,
    /// Cores the machine offers this process.
    pub cores: usize,
    /// The fixed open-loop rate of the latency runs, records/s.
    pub latency_rate_rps: u64,
    /// Why that rate.
    pub latency_rate_note: String,
    /// micro-batch, batch, single thread, naive: in that order.
    pub designs: Vec<Design>,
}

fn cpu_per_million(report_cpu: Option<f64>, records: u64) -> Option<f64> {
    report_cpu
        .filter(|_| records > 0)
        .map(|cpu| cpu / records as f64 * 1e6)
}

fn engine_design(
    name: &str,
    granularity: String,
    throughput: &RunReport,
    latency: &RunReport,
) -> Design {
    Design {
        name: name.into(),
        granularity,
        throughput_rps: throughput.throughput_rps,
        latency_ns: Some(latency.record_latency_ns),
        threads: throughput.workers,
        cpu_s_per_million: cpu_per_million(throughput.cpu_s, throughput.records_measured),
    }
}

/// Runs every design of `profile`; `say` hears what runs next.
pub fn compare(
    profile: &Profile,
    name: &str,
    observer: &mut dyn Observer,
    say: &mut dyn FnMut(&str),
) -> Result<Comparison, RunError> {
    if !profile.queries.is_empty() {
        return Err(RunError::Unsupported(
            "compare runs one [job] against its batch and single-thread designs; \
             a profile of [[queries]] has none: compare a query's [job] on its own"
                .into(),
        ));
    }
    if let Some(why) = case_of(profile.job.kind).not_comparable() {
        return Err(RunError::Unsupported(why.into()));
    }
    let mut base = profile.clone();
    base.output.kind = OutputKind::None;
    base.workload.rate = Rate::Max;
    let mut batch = base.clone();
    batch.engine.interval = None;
    batch.engine.target_latency = None;
    batch.engine.max_batch_records = None;
    let files = RunFiles::default();

    say("micro-batch engine, maximum rate");
    let micro = run(&base, name, &files, observer)?.report;
    say("batch (one epoch), maximum rate");
    let batch_max = run(&batch, name, &files, observer)?.report;

    let (latency_rate, latency_rate_note) = match profile.workload.rate {
        Rate::PerSecond(rate) => (rate, "the profile's rate".to_owned()),
        Rate::Max => {
            let half = round_rate(micro.throughput_rps / 2.0);
            (
                half,
                "half the micro-batch throughput just measured, as the profile's rate is max"
                    .to_owned(),
            )
        }
    };
    let mut at_rate = base.clone();
    at_rate.workload.rate = Rate::PerSecond(latency_rate);
    let mut batch_at_rate = batch.clone();
    batch_at_rate.workload.rate = Rate::PerSecond(latency_rate);
    say(&format!(
        "micro-batch engine at {}",
        rate(latency_rate as f64)
    ));
    let micro_latency = run(&at_rate, name, &files, observer)?.report;
    say(&format!(
        "batch (one epoch) at {}",
        rate(latency_rate as f64)
    ));
    let batch_latency = run(&batch_at_rate, name, &files, observer)?.report;

    say("single thread, maximum rate");
    let single = with_job(&base.job, SingleThread(&base))?;
    say("naive mpsc + HashMap, maximum rate");
    let naive = with_aggregator(&base.job, Naive(&base))?;

    let interval = if let Some(target) = profile.engine.target_latency {
        format!("adaptive, for a {} p99", humantime::format_duration(target))
    } else {
        match (profile.engine.interval, profile.engine.max_batch_records) {
            (Some(interval), Some(n)) => format!(
                "every {} or {n} records",
                humantime::format_duration(interval)
            ),
            (Some(interval), None) => format!("every {}", humantime::format_duration(interval)),
            (None, Some(n)) => format!("every {n} records"),
            (None, None) => "one result at the end".into(),
        }
    };
    Ok(Comparison {
        profile: name.into(),
        cores: micro.cores,
        latency_rate_rps: latency_rate,
        latency_rate_note,
        designs: vec![
            engine_design(
                "micro-batch (this engine)",
                interval,
                &micro,
                &micro_latency,
            ),
            engine_design(
                "batch (same engine, one epoch)",
                "one result at the end".into(),
                &batch_max,
                &batch_latency,
            ),
            single,
            naive,
        ],
    })
}

impl Comparison {
    /// The table of figures and ratios.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let engine = self.designs[0].throughput_rps;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "  {:<36} {:<28} {:>11} {:>10} {:>8} {:>10}",
            "design", "result granularity", "throughput", "engine ÷", "threads", "CPU s / M"
        );
        for design in &self.designs {
            let _ = writeln!(
                out,
                "  {:<36} {:<28} {:>11} {:>9.2}× {:>8} {:>10}",
                design.name,
                design.granularity,
                rate(design.throughput_rps),
                engine / design.throughput_rps.max(f64::MIN_POSITIVE),
                design.threads,
                design
                    .cpu_s_per_million
                    .map_or("n/a".into(), |cpu| format!("{cpu:.3}")),
            );
        }
        let _ = writeln!(
            out,
            "\n  record latency at {} offered ({}), p50 / p90 / p99 / p99.9 / max:",
            rate(self.latency_rate_rps as f64),
            self.latency_rate_note
        );
        for design in &self.designs {
            let _ = writeln!(
                out,
                "  {:<36} {}",
                design.name,
                design.latency_ns.as_ref().map_or(
                    "no result until the input ends: latency is the run's length".into(),
                    percentiles_line
                )
            );
        }
        let (micro, batch) = (&self.designs[0], &self.designs[1]);
        if let (Some(micro_latency), Some(batch_latency)) = (&micro.latency_ns, &batch.latency_ns) {
            let _ = writeln!(
                out,
                "\n  micro-batching keeps {:.0}% of batch throughput and cuts p99 record latency {:.0}× ({} → {} ms).",
                100.0 * micro.throughput_rps / batch.throughput_rps.max(f64::MIN_POSITIVE),
                batch_latency.p99 as f64 / (micro_latency.p99.max(1)) as f64,
                batch_latency.p99 / 1_000_000,
                micro_latency.p99 / 1_000_000
            );
        }
        out
    }
}

/// Each record source a baseline thread can draw from: the generator's
/// part or a share of the file's records.
fn baseline_sources(
    profile: &Profile,
    count: usize,
) -> Result<Vec<Box<dyn Source<Event>>>, RunError> {
    let mut workload = profile.workload.clone();
    workload.rate = Rate::Max;
    let input = open_input(&workload)?;
    split_sources(&workload, input, count)
}

/// The window a baseline measures: after the warm-up, until the duration
/// is over or the input ends.
struct Window {
    started: Instant,
    warmup: Duration,
    planned: Duration,
}

impl Window {
    fn new(profile: &Profile) -> Self {
        Window {
            started: Instant::now(),
            warmup: profile.run.warmup,
            planned: profile.run.warmup + profile.run.duration,
        }
    }
}

struct SingleThread<'a>(&'a Profile);

impl WithJob<Event> for SingleThread<'_> {
    type Out = Result<Design, RunError>;

    fn with<J: Job<Event>>(self, job: J, _: fn(J::Row) -> Grouped) -> Self::Out {
        let mut source = baseline_sources(self.0, 1)?.remove(0);
        let mut parts: Vec<J::Part> = (0..job.partitions(1)).map(|_| job.new_part()).collect();
        let mut chunk = Vec::with_capacity(CHUNK);
        let window = Window::new(self.0);
        let mut records = 0u64;
        let mut mark: Option<(Instant, u64, Option<Duration>)> = None;
        loop {
            chunk.clear();
            if let Poll::Exhausted = source.poll(0, &mut chunk, CHUNK) {
                break;
            }
            job.absorb(&chunk, Parts::from(&mut parts));
            records += chunk.len() as u64;
            let elapsed = window.started.elapsed();
            if mark.is_none() && elapsed >= window.warmup {
                mark = Some((Instant::now(), records, cpu::process_time()));
            }
            if elapsed >= window.planned {
                break;
            }
        }
        let mut rows = Vec::new();
        for part in &mut parts {
            job.finish(part, &mut rows);
        }
        let (at, before, cpu_before) = mark.unwrap_or((window.started, 0, Some(Duration::ZERO)));
        let measured = records - before;
        let cpu = cpu::process_time()
            .zip(cpu_before)
            .map(|(end, start)| end.saturating_sub(start).as_secs_f64());
        Ok(Design {
            name: "single thread (job fold, no engine)".into(),
            granularity: "one result at the end".into(),
            throughput_rps: measured as f64 / at.elapsed().as_secs_f64().max(1e-9),
            latency_ns: None,
            threads: 1,
            cpu_s_per_million: cpu_per_million(cpu, measured),
        })
    }
}

struct Naive<'a>(&'a Profile);

impl WithAggregator<Event> for Naive<'_> {
    type Out = Result<Design, RunError>;

    fn with<A>(self, aggregator: A) -> Self::Out
    where
        A: Aggregator<Event> + Clone,
        A::Output: Reduced,
    {
        let profile = self.0;
        let producers = profile.engine.workers.saturating_sub(1).max(1);
        let keyed = profile.job.kind == JobKind::Keyed;
        let sources = baseline_sources(profile, producers)?;
        let window = Window::new(profile);
        let stop = Arc::new(AtomicBool::new(false));
        let aggregated = Arc::new(AtomicU64::new(0));
        let (sender, receiver) = mpsc::channel::<Event>();
        let counter = Arc::clone(&aggregated);
        let aggregator_thread = std::thread::spawn(move || {
            let mut totals: HashMap<u64, A::State> = HashMap::new();
            let mut unreported = 0u64;
            for event in receiver {
                let key = if keyed { event.key } else { 0 };
                let state = totals.entry(key).or_insert_with(|| aggregator.init());
                aggregator.update(state, &event);
                unreported += 1;
                if unreported == 1024 {
                    counter.fetch_add(unreported, Ordering::Relaxed);
                    unreported = 0;
                }
            }
            counter.fetch_add(unreported, Ordering::Relaxed);
            totals
                .into_values()
                .map(|state| aggregator.finish(state).columns().count)
                .sum::<u64>()
        });
        let threads: Vec<_> = sources
            .into_iter()
            .map(|mut source| {
                let sender = sender.clone();
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut chunk = Vec::with_capacity(CHUNK);
                    while !stop.load(Ordering::Relaxed) {
                        chunk.clear();
                        if let Poll::Exhausted = source.poll(0, &mut chunk, CHUNK) {
                            return;
                        }
                        for event in &chunk {
                            if sender.send(*event).is_err() {
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        drop(sender);
        let mut mark: Option<(Instant, u64, Option<Duration>)> = None;
        while window.started.elapsed() < window.planned && !threads.iter().all(|t| t.is_finished())
        {
            std::thread::sleep(Duration::from_millis(10));
            if mark.is_none() && window.started.elapsed() >= window.warmup {
                mark = Some((
                    Instant::now(),
                    aggregated.load(Ordering::Relaxed),
                    cpu::process_time(),
                ));
            }
        }
        let end = (
            Instant::now(),
            aggregated.load(Ordering::Relaxed),
            cpu::process_time(),
        );
        stop.store(true, Ordering::Relaxed);
        for thread in threads {
            thread.join().map_err(|_| RunError::Input {
                path: "(naive producer)".into(),
                message: "a producer thread panicked".into(),
            })?;
        }
        let counted = aggregator_thread.join().map_err(|_| RunError::Input {
            path: "(naive aggregator)".into(),
            message: "the aggregator thread panicked".into(),
        })?;
        let sent_total = aggregated.load(Ordering::Relaxed);
        if counted != sent_total {
            return Err(RunError::Lost {
                accepted: sent_total,
                in_results: counted,
            });
        }
        let (at, before, cpu_before) = mark.unwrap_or((window.started, 0, Some(Duration::ZERO)));
        let measured = end.1 - before;
        let cpu = end
            .2
            .zip(cpu_before)
            .map(|(end, start)| end.saturating_sub(start).as_secs_f64());
        Ok(Design {
            name: "naive (mpsc + HashMap)".into(),
            granularity: "per record, never published".into(),
            throughput_rps: measured as f64 / end.0.duration_since(at).as_secs_f64().max(1e-9),
            latency_ns: None,
            threads: producers + 1,
            cpu_s_per_million: cpu_per_million(cpu, measured),
        })
    }
}
