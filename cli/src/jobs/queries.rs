//! `[[queries]]`: the profile's queries as one engine's
//! [`Queries`](microbatch::queries::Queries), each a generic `key,value`
//! job (`event.rs`) or, over timed records, an event-time windowed one
//! (`windowed.rs`), with its own output, over the workload's records; the
//! run's report gains each query's figures (`queries` in `--json`).

use microbatch::job::Job;
use microbatch::queries::{Queries, Query, QueryReport};
use microbatch::sink::{DiscardSink, FileFormat, FileSink};
use microbatch::source::{Event, TimedEvent};

use super::build::{with_job_keyed_by, KeyValue, WithJob};
use super::output::{Grouped, OutputSink, Wanted};
use super::windowed::{timed_feed, with_windowed_job};
use crate::driver::checkpoint::{checkpoint_of, refuse_another_run, CommittedBy};
use crate::driver::error::RunError;
use crate::driver::feed::{EventFeed, Feed};
use crate::driver::input::open_input;
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{OutputKind, QueryProfile, WindowKind};
use crate::report::{Percentiles, QueryLine};

/// Runs the profile's queries over its workload: over timed records
/// when one of them is windowed, else over `key,value` records.
pub(crate) fn run(runner: Runner<'_>) -> Result<RunOutcome, RunError> {
    let profile = runner.profile;
    if profile
        .queries
        .iter()
        .any(|q| q.job.window != WindowKind::None)
    {
        let feed = timed_feed(&runner)?;
        run_over(runner, feed, build_timed)
    } else {
        let input = open_input(&profile.workload)?;
        run_over(runner, EventFeed(Some(input)), build_events)
    }
}

/// A query of the profile over records `R`, its rows into its own output.
type Build<R> = fn(&QueryProfile, Option<CommittedBy<'_>>) -> Result<Query<R>, RunError>;

fn run_over<R: KeyValue + serde::Serialize, F: Feed<R>>(
    runner: Runner<'_>,
    feed: F,
    build: Build<R>,
) -> Result<RunOutcome, RunError> {
    let profile = runner.profile;
    let checkpoint = checkpoint_of(&runner)?;
    let scheduler = profile.scheduler;
    let base = profile.engine.interval;
    let mut queries = Queries::new(scheduler.policy.policy()).piece(scheduler.piece);
    for query in &profile.queries {
        // Under a checkpoint, each query's output holds what the
        // checkpoint says that query committed.
        let every = match query.max_batch_records {
            Some(_) => None,
            None => Some(query.every(base)),
        };
        let committed = match &checkpoint {
            Some(checkpoint) => Some(CommittedBy::query(checkpoint, &query.name, every)?),
            None => None,
        };
        let built = build(query, committed)?;
        queries = queries.query(scheduled(built, query, base));
    }
    let (job, sink) = queries.build();
    let reports = job.reports();
    // The queries' figures cover the measured window, as the rest do.
    let measured = reports.clone();
    let runner = runner.at_warm_up(move || measured.restart());
    let mut outcome = runner.drive(job, sink, checkpoint, feed)?;
    let lines: Vec<QueryLine> = reports
        .now()
        .iter()
        .zip(&profile.queries)
        .map(|(report, query)| line(report, query, base))
        .collect();
    outcome.report.queries = Some(lines);
    Ok(outcome)
}

/// The key of a query's groups: the record's, or its bucket.
fn key_of<R: KeyValue>(query: &QueryProfile) -> impl Fn(&R) -> u64 + Copy + Send + Sync + 'static {
    let buckets = query.key_buckets;
    move |record: &R| match buckets {
        Some(buckets) => record.key() % buckets,
        None => record.key(),
    }
}

/// An unwindowed query over `key,value` records.
fn build_events(
    query: &QueryProfile,
    committed: Option<CommittedBy<'_>>,
) -> Result<Query<Event>, RunError> {
    with_job_keyed_by(&query.job, key_of(query), ToOutput(query, committed))
}

/// A query over timed records: windowed, or not.
fn build_timed(
    query: &QueryProfile,
    committed: Option<CommittedBy<'_>>,
) -> Result<Query<TimedEvent>, RunError> {
    let to_output = ToOutput(query, committed);
    if query.job.window == WindowKind::None {
        with_job_keyed_by(&query.job, key_of(query), to_output)
    } else {
        with_windowed_job(&query.job, key_of(query), to_output)
    }
}

/// A query's job with its rows going to the query's own output.
struct ToOutput<'a>(&'a QueryProfile, Option<CommittedBy<'a>>);

impl<R: 'static> WithJob<R> for ToOutput<'_> {
    type Out = Result<Query<R>, RunError>;

    fn with<J: Job<R>>(self, job: J, row: fn(J::Row) -> Grouped) -> Self::Out {
        let ToOutput(query, committed_by) = self;
        let wanted = Wanted::of(&query.job);
        let path = query.output_path();
        let fail = |error: microbatch::sink::SinkError| RunError::Output {
            what: path.display().to_string(),
            message: error.to_string(),
        };
        let files = |format| {
            let sink = FileSink::new(&path, format).map_err(fail)?;
            let committed = sink.committed().map_err(fail)?;
            refuse_another_run(committed_by, &committed, "the directory", &path)?;
            Ok::<_, RunError>(sink)
        };
        let name = query.name.clone();
        Ok(match query.output.kind {
            OutputKind::Csv => {
                let sink = OutputSink::new(files(FileFormat::Csv)?, wanted, row);
                Query::new(name, job, sink)
            }
            OutputKind::Jsonl => {
                let sink = OutputSink::new(files(FileFormat::JsonLines)?, wanted, row);
                Query::new(name, job, sink)
            }
            // Profile::check_queries accepts no other output.
            _ => Query::new(name, job, DiscardSink),
        })
    }
}

/// `built` with the query's priority and epoch.
fn scheduled<R: 'static>(
    built: Query<R>,
    query: &QueryProfile,
    base: Option<std::time::Duration>,
) -> Query<R> {
    let every = query.every(base);
    // A result is due by the query's next seal.
    let budget = base.unwrap_or_default() * u32::try_from(every).unwrap_or(u32::MAX);
    let built = built
        .priority(query.priority)
        .every(every)
        .latency_budget(budget);
    match query.max_batch_records {
        Some(records) => built.max_batch_records(records),
        None => built,
    }
}

/// A query's line of `--json`'s `queries`, over the measured window.
fn line(
    report: &QueryReport,
    query: &QueryProfile,
    base: Option<std::time::Duration>,
) -> QueryLine {
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let s = &report.seal_to_result;
    QueryLine {
        name: report.name.clone(),
        priority: report.priority,
        // A count-triggered query has no interval of its own.
        interval_ms: query
            .interval
            .or(base)
            .filter(|_| query.max_batch_records.is_none())
            .map(|interval| interval.as_secs_f64() * 1e3),
        max_batch_records: query.max_batch_records,
        late_records: (query.job.window != WindowKind::None).then_some(report.late_records),
        records_out: report.rows,
        epochs: report.epochs,
        seal_to_result_ns: Percentiles {
            p50: nanos(s.p50),
            p90: nanos(s.p90),
            p99: nanos(s.p99),
            p999: nanos(s.p999),
            max: nanos(s.max),
        },
    }
}
