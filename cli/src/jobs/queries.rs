//! `[[queries]]`: the profile's queries as one engine's
//! [`Queries`](microbatch::queries::Queries), each a generic `key,value`
//! job (`event.rs`) with its own output, over the workload's records; the
//! run's report gains each query's figures (`queries` in `--json`).

use microbatch::job::Job;
use microbatch::queries::{Queries, Query, QueryReport};
use microbatch::sink::{DiscardSink, FileFormat, FileSink};
use microbatch::source::Event;

use super::event::{with_job_keyed_by, WithJob};
use super::output::{Grouped, OutputSink, Wanted};
use crate::driver::checkpoint::{checkpoint_of, refuse_another_run, CommittedBy};
use crate::driver::error::RunError;
use crate::driver::feed::EventFeed;
use crate::driver::input::open_input;
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{OutputKind, QueryProfile};
use crate::report::{Percentiles, QueryLine};

/// Runs the profile's queries over its workload.
pub(crate) fn run(runner: Runner<'_>) -> Result<RunOutcome, RunError> {
    let profile = runner.profile;
    let checkpoint = checkpoint_of(&runner)?;
    let scheduler = profile.scheduler;
    let mut queries = Queries::new(scheduler.policy.policy()).piece(scheduler.piece);
    for query in &profile.queries {
        // Under a checkpoint, each query's output holds what the
        // checkpoint says that query committed.
        let every = match query.max_batch_records {
            Some(_) => None,
            None => Some(query.every(profile.engine.interval)),
        };
        let committed = match &checkpoint {
            Some(checkpoint) => Some(CommittedBy::query(checkpoint, &query.name, every)?),
            None => None,
        };
        queries = queries.query(build(query, profile.engine.interval, committed)?);
    }
    let (job, sink) = queries.build();
    let reports = job.reports();
    let input = open_input(&profile.workload)?;
    // The queries' figures cover the measured window, as the rest do.
    let measured = reports.clone();
    let runner = runner.at_warm_up(move || measured.restart());
    let mut outcome = runner.drive(job, sink, checkpoint, EventFeed(Some(input)))?;
    let lines: Vec<QueryLine> = reports
        .now()
        .iter()
        .zip(&profile.queries)
        .map(|(report, query)| line(report, query, profile.engine.interval))
        .collect();
    outcome.report.queries = Some(lines);
    Ok(outcome)
}

/// One query of the profile, its rows going to its own output.
fn build(
    query: &QueryProfile,
    base: Option<std::time::Duration>,
    committed: Option<CommittedBy<'_>>,
) -> Result<Query<Event>, RunError> {
    struct Build<'a>(&'a QueryProfile, Option<CommittedBy<'a>>);
    impl WithJob for Build<'_> {
        type Out = Result<Query<Event>, RunError>;
        fn with<J: Job<Event>>(self, job: J, row: fn(J::Row) -> Grouped) -> Self::Out {
            let Build(query, committed_by) = self;
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
    let buckets = query.key_buckets;
    let key = move |e: &Event| match buckets {
        Some(buckets) => e.key % buckets,
        None => e.key,
    };
    let built = with_job_keyed_by(&query.job, key, Build(query, committed))?;
    let every = query.every(base);
    // A result is due by the query's next seal.
    let budget = base.unwrap_or_default() * u32::try_from(every).unwrap_or(u32::MAX);
    let built = built
        .priority(query.priority)
        .every(every)
        .latency_budget(budget);
    Ok(match query.max_batch_records {
        Some(records) => built.max_batch_records(records),
        None => built,
    })
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
