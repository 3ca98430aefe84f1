//! `[job] kind = "clickstream"`: the worked case's entry in the CLI's job
//! registry, with the same job and sink as `cli/examples/clickstream.rs`.

use std::path::PathBuf;

use microbatch::sink::DiscardSink;

use super::click::Click;
use super::generator::{ClickConfig, ClickGenerator};
use super::job::{clickstream_job, SESSION_GAP};
use super::sink::ClickstreamSink;
use crate::driver::checkpoint::{
    checkpoint_of, refuse_another_run, resume_from_database, CommittedBy,
};
use crate::driver::error::RunError;
use crate::driver::feed::{EitherFeed, Feed, GeneratorOrLog, InWorkers};
use crate::driver::{RunOutcome, Runner};
use crate::jobs::case::{no_producers, sqlite_or_none, JobCase};
use crate::jobs::kafka::KafkaFeed;
use crate::profile::schema::{
    Distribution, JobKind, OutputKind, OutputModeSpec, Profile, SourceKind, Workload,
};

/// The click generator's settings from a profile's `[workload]`.
pub fn click_config(workload: &Workload) -> ClickConfig {
    ClickConfig {
        users: workload.keys,
        user_skew: match workload.distribution {
            Distribution::Uniform => 0.0,
            Distribution::Zipf => workload.zipf_exponent,
        },
        rate: workload.rate.per_second(),
        events: workload.records,
        seed: workload.seed,
        ..ClickConfig::default()
    }
}

/// The click-stream case: `job.kind = "clickstream"`.
pub struct Clickstream;

impl JobCase for Clickstream {
    fn kinds(&self) -> &'static [JobKind] {
        &[JobKind::Clickstream]
    }

    /// What a click-stream profile cannot ask for.
    fn check(&self, profile: &Profile) -> Result<(), (String, String)> {
        let workload = &profile.workload;
        if workload.source == SourceKind::File {
            return Err((
                "workload.source".into(),
                "\"file\", but the click-stream job reads the click generator or a click log; accepted: \"generator\", or \"log\" (`microbatch log write --schema clickstream`)".into(),
            ));
        }
        no_producers(
            profile,
            "the click-stream job reads its clicks in the workers",
        )?;
        sqlite_or_none(profile, "the click-stream job writes four SQLite tables")?;
        if profile.job.output_mode != OutputModeSpec::Epoch {
            return Err((
                "job.output_mode".into(),
                "set, but the click-stream job writes each epoch's rows and keeps the running totals in `user_totals`; accepted: \"epoch\" (the default)".into(),
            ));
        }
        Ok(())
    }

    /// Runs the click-stream job of `runner`'s profile.
    fn run(&self, runner: Runner<'_>) -> Result<RunOutcome, RunError> {
        let profile = runner.profile;
        let workload = &profile.workload;
        let mut feed = match workload.source {
            SourceKind::Kafka => EitherFeed::Other(KafkaFeed::<Click>::connect(&runner)?),
            SourceKind::Log => {
                EitherFeed::Own(InWorkers(Some(GeneratorOrLog::<_, Click>::log(workload)?)))
            }
            // Profile::check refuses a file or Nexmark source for this job.
            SourceKind::Generator | SourceKind::File | SourceKind::Nexmark => {
                EitherFeed::Own(InWorkers(Some(GeneratorOrLog::Generator(
                    ClickGenerator::new(click_config(workload)),
                ))))
            }
        };
        let checkpoint = checkpoint_of(&runner)?;
        let gap = profile.job.session_gap.unwrap_or(SESSION_GAP);
        let job = clickstream_job(gap, profile.job.watermark_delay);
        match profile.output.kind {
            OutputKind::Sqlite => {
                let path: PathBuf = profile.output.path();
                let fail = |message: String| RunError::Output {
                    what: path.display().to_string(),
                    message,
                };
                let sink = ClickstreamSink::open(&path).map_err(|e| fail(e.to_string()))?;
                let sink = match feed.positions() {
                    // The database holds the topic's offsets and the open
                    // sessions: the run resumes from it.
                    Some(positions) => {
                        let sink = sink.with_positions(positions);
                        resume_from_database(&mut feed, sink.database(), &path)?;
                        sink
                    }
                    None => {
                        let committed = sink.committed().map_err(|e| fail(e.to_string()))?;
                        refuse_another_run(
                            checkpoint.as_ref().map(CommittedBy::run),
                            &committed,
                            "the database",
                            &path,
                        )?;
                        sink
                    }
                };
                runner.drive(job, sink, checkpoint, feed)
            }
            // Profile::check allows only SQLite or no output here.
            _ => runner.drive(job, DiscardSink, checkpoint, feed),
        }
    }

    fn not_comparable(&self) -> Option<&'static str> {
        Some(
            "compare runs the CLI's key,value job four ways; the click-stream job runs with `run` \
             (and `sweep`); accepted: job.kind = \"keyed\" or \"global\"",
        )
    }
}
