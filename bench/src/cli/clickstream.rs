//! `[job] kind = "clickstream"`: the worked case from the CLI, with the
//! same job and sink as `bench/examples/clickstream.rs`.

use std::path::PathBuf;

use microbatch::log::{LogReader, LogSource};
use microbatch::sink::DiscardSink;
use microbatch::source::{EpochPlan, SourceParts, SourceSpec};
use microbatch::{ConfigError, Engine, EngineBuilder};

use super::profile::{Distribution, OutputKind, SourceKind, Workload};
use super::run::{
    checkpoint_of, refuse_another_run, Feed, Producers, RunError, RunOutcome, Runner,
};
use crate::clickstream::{clickstream_job, Click, ClickConfig, ClickGenerator, ClickstreamSink};

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

/// Where the clicks come from.
enum ClickSource {
    Generator(ClickGenerator),
    Log(LogSource<Click>),
}

impl SourceSpec<Click> for ClickSource {
    fn split(self, workers: usize) -> Result<SourceParts<Click>, ConfigError> {
        match self {
            ClickSource::Generator(generator) => generator.split(workers),
            ClickSource::Log(log) => log.split(workers),
        }
    }

    fn identity(&self) -> Option<String> {
        match self {
            ClickSource::Generator(generator) => generator.identity(),
            ClickSource::Log(log) => log.identity(),
        }
    }

    fn split_planned(
        self,
        workers: usize,
        plan: EpochPlan,
    ) -> Option<Result<SourceParts<Click>, ConfigError>> {
        match self {
            ClickSource::Generator(generator) => generator.split_planned(workers, plan),
            ClickSource::Log(log) => log.split_planned(workers, plan),
        }
    }
}

/// The clicks' feed: a source in the workers, never producer threads.
struct ClickFeed(Option<ClickSource>);

impl Feed<Click> for ClickFeed {
    fn attach<J: microbatch::job::Job<Click>>(
        &mut self,
        builder: EngineBuilder<Click, J>,
        _: &Workload,
    ) -> EngineBuilder<Click, J> {
        match self.0.take() {
            Some(source) => builder.source(source),
            None => builder,
        }
    }

    fn spawn<J: microbatch::job::Job<Click>>(
        self,
        _: &Engine<Click, J>,
        _: &Workload,
        _: std::time::Instant,
        _: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Producers, RunError> {
        Ok(Producers::default())
    }
}

/// Runs the click-stream job of `runner`'s profile.
pub(crate) fn run(runner: Runner<'_>) -> Result<RunOutcome, RunError> {
    let profile = runner.profile;
    let workload = &profile.workload;
    let source = match workload.source {
        SourceKind::Log => {
            let path = workload.path.clone().unwrap_or_default();
            let reader = LogReader::<Click>::open(&path).map_err(|error| RunError::Input {
                path: path.clone(),
                message: error.to_string(),
            })?;
            ClickSource::Log(LogSource::new(reader, workload.rate.per_second()))
        }
        // Profile::check refuses a file source for this job.
        SourceKind::Generator | SourceKind::File => {
            ClickSource::Generator(ClickGenerator::new(click_config(workload)))
        }
    };
    let feed = ClickFeed(Some(source));
    let checkpoint = checkpoint_of(&runner)?;
    let job = clickstream_job();
    match profile.output.kind {
        OutputKind::Sqlite => {
            let path: PathBuf = profile.output.path();
            let fail = |message: String| RunError::Output {
                what: path.display().to_string(),
                message,
            };
            let sink = ClickstreamSink::open(&path).map_err(|e| fail(e.to_string()))?;
            let committed = sink.committed().map_err(|e| fail(e.to_string()))?;
            refuse_another_run(checkpoint.as_ref(), &committed, "the database", &path)?;
            runner.drive(job, sink, checkpoint, feed)
        }
        // Profile::check allows only SQLite or no output here.
        _ => runner.drive(job, DiscardSink, checkpoint, feed),
    }
}
