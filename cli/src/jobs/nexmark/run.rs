//! `[job] kind = "nexmark"`: a Nexmark query (`job.query`) over the
//! Nexmark generator in the workers (`workload.source = "nexmark"`, at
//! `workload.rate`, `workload.records` events) or a Nexmark log
//! (`microbatch nexmark generate`), into SQLite or nowhere.

use std::path::PathBuf;

use microbatch::job::Job;
use microbatch::sink::{DiscardSink, SinkError};

use super::event::NexEvent;
use super::generator::{NexmarkGenerator, NexmarkSettings, NOMINAL_RATE};
use super::queries::{q0, q1, q12, q2, q5, q7};
use super::sink::{BidderCount, QueryRow, QuerySink};
use crate::driver::checkpoint::{checkpoint_of, refuse_another_run, CommittedBy};
use crate::driver::error::RunError;
use crate::driver::feed::{GeneratorOrLog, InWorkers};
use crate::driver::{RunOutcome, Runner};
use crate::jobs::case::{no_producers, sqlite_or_none, JobCase};
use crate::profile::schema::{
    JobKind, LatePolicy, NexmarkQuery, OutputKind, OutputModeSpec, Profile, SourceKind, WindowKind,
    Workload,
};

/// The Nexmark generator's settings from a profile's `[workload]`: event
/// time advances at `rate` (paced) or at the Flink suite's 10 M/s.
pub fn nexmark_settings(workload: &Workload) -> NexmarkSettings {
    let rate = workload.rate.per_second();
    NexmarkSettings {
        rate: rate.unwrap_or(NOMINAL_RATE),
        paced: rate.is_some(),
        events: workload.records,
        ..NexmarkSettings::default()
    }
}

/// The Nexmark queries: `job.kind = "nexmark"`.
pub struct Nexmark;

impl JobCase for Nexmark {
    fn kinds(&self) -> &'static [JobKind] {
        &[JobKind::Nexmark]
    }

    /// What a Nexmark profile cannot ask for.
    fn check(&self, profile: &Profile) -> Result<(), (String, String)> {
        let workload = &profile.workload;
        if !matches!(workload.source, SourceKind::Nexmark | SourceKind::Log) {
            return Err((
                "workload.source".into(),
                format!(
                    "{:?}, but a Nexmark query reads Nexmark events; accepted: \"nexmark\" (the generator), or \"log\" (`microbatch nexmark generate`)",
                    workload.source
                )
                .to_lowercase(),
            ));
        }
        no_producers(profile, "a Nexmark query reads its events in the workers")?;
        sqlite_or_none(profile, "a Nexmark query writes one SQLite table")?;
        let job = &profile.job;
        if job.output_mode != OutputModeSpec::Epoch {
            return Err((
                "job.output_mode".into(),
                "set, but each Nexmark query says what it emits (q5 and q7 each window once, when the watermark closes it; the others each epoch's rows); accepted: \"epoch\" (the default)".into(),
            ));
        }
        let windowed = job.window != WindowKind::None
            || job.window_size.is_some()
            || job.window_slide.is_some()
            || job.session_gap.is_some()
            || !job.watermark_delay.is_zero()
            || !job.allowed_lateness.is_zero()
            || job.late != LatePolicy::Drop;
        if windowed {
            return Err((
                "job.window".into(),
                "set, but each Nexmark query fixes its windows (q5: hopping 10 s every 2 s; q7: tumbling 10 s) over in-order events; accepted: no window key".into(),
            ));
        }
        Ok(())
    }

    fn run(&self, runner: Runner<'_>) -> Result<RunOutcome, RunError> {
        match runner.profile.job.query {
            NexmarkQuery::Q0 => run_query(runner, q0(), |row, out| out.push(row)),
            NexmarkQuery::Q1 => run_query(runner, q1(), |row, out| out.push(row)),
            NexmarkQuery::Q2 => run_query(runner, q2(), |row, out| out.push(row)),
            NexmarkQuery::Q5 => run_query(runner, q5(), |(window, hot), out| {
                out.extend(
                    hot.auctions
                        .iter()
                        .map(|&auction| (window, auction, hot.bids)),
                );
            }),
            NexmarkQuery::Q7 => run_query(runner, q7(), |(window, (), bids), out| {
                out.extend(bids.into_iter().map(|bid| (window, bid)));
            }),
            NexmarkQuery::Q12 => run_query(runner, q12(), |(bidder, bids), out| {
                out.push(BidderCount(bidder, bids));
            }),
        }
    }

    fn not_comparable(&self) -> Option<&'static str> {
        Some(
            "compare runs the CLI's key,value job four ways; a Nexmark query runs with `run` \
             (and `sweep`); accepted: job.kind = \"keyed\" or \"global\"",
        )
    }
}

/// Runs `job` over the profile's Nexmark events, its rows through
/// `flatten` into the SQLite table's rows, or nowhere.
fn run_query<J, T>(
    runner: Runner<'_>,
    job: J,
    flatten: fn(J::Row, &mut Vec<T>),
) -> Result<RunOutcome, RunError>
where
    J: Job<NexEvent>,
    T: QueryRow,
{
    let profile = runner.profile;
    let workload = &profile.workload;
    let source = match workload.source {
        SourceKind::Log => GeneratorOrLog::<NexmarkGenerator, NexEvent>::log(workload)?,
        // Nexmark::check allows the generator or a log only.
        _ => GeneratorOrLog::Generator(NexmarkGenerator::new(nexmark_settings(workload))),
    };
    let feed = InWorkers(Some(source));
    let checkpoint = checkpoint_of(&runner)?;
    match profile.output.kind {
        OutputKind::Sqlite => {
            let path: PathBuf = profile.output.path();
            let fail = |error: SinkError| RunError::Output {
                what: path.display().to_string(),
                message: error.to_string(),
            };
            let sink = QuerySink::open(&path, &profile.output.table, flatten).map_err(fail)?;
            let committed = sink.committed().map_err(fail)?;
            refuse_another_run(
                checkpoint.as_ref().map(CommittedBy::run),
                &committed,
                "the table",
                &path,
            )?;
            runner.drive(job, sink, checkpoint, feed)
        }
        // Nexmark::check allows only SQLite or no output here.
        _ => runner.drive(job, DiscardSink, checkpoint, feed),
    }
}
