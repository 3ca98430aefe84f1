//! `workload.source = "kafka"` and `output.kind = "kafka"`.
//!
//! The source is the library's [`KafkaSource`], its messages decoded as
//! `workload.schema` written as `workload.format`. Where the run resumes
//! is the sink's to say, since the sink commits the offsets: an SQLite
//! output holds them (and the running totals) in each epoch's
//! transaction; a Kafka output commits them to `workload.group` inside
//! each epoch's Kafka transaction. So a Kafka run needs no `--checkpoint`:
//! its output is its checkpoint.

use microbatch::job::Job;
use microbatch::kafka::{BadMessages, Decode, KafkaSettings, KafkaSource};
use microbatch::source::{Position, SealedPositions};
use microbatch::{EngineBuilder, Resumption};

use crate::driver::checkpoint::checkpoint_of;
use crate::driver::error::RunError;
use crate::driver::feed::{Feed, Producers};
use crate::driver::Runner;
use crate::profile::schema::Workload;
use crate::text::{decode, BadLines, TextFormat, TextRecord};

/// A Kafka topic as a run's feed: connected before the sink opens, started
/// where the sink says ([`Feed::resume`]).
pub(crate) struct KafkaFeed<R> {
    source: Option<KafkaSource<R>>,
    /// The positions a sink commits, once one [took](Feed::positions) them.
    positions: Option<SealedPositions>,
    resumption: Option<Resumption>,
    settings: KafkaSettings,
    topic: String,
}

fn csv<R: TextRecord>(value: &[u8]) -> Result<R, String> {
    decode::<R>(TextFormat::Csv, value)
}

fn json<R: TextRecord>(value: &[u8]) -> Result<R, String> {
    decode::<R>(TextFormat::Json, value)
}

impl<R: TextRecord + Send + 'static> KafkaFeed<R> {
    /// Connects to the profile's topic (which must exist), every
    /// partition from its first record until a sink says otherwise.
    /// Refuses `--checkpoint` first: the output holds a Kafka run's
    /// progress.
    pub(crate) fn connect(runner: &Runner<'_>) -> Result<Self, RunError> {
        checkpoint_of(runner)?;
        let profile = runner.profile;
        let workload = &profile.workload;
        let settings = KafkaSettings::new(workload.brokers.clone());
        // Profile::check requires the topic of a Kafka source.
        let topic = workload.topic.clone().unwrap_or_default();
        let decode: Decode<R> = match workload.format {
            TextFormat::Csv => csv::<R>,
            TextFormat::Json => json::<R>,
        };
        let bad = match (workload.bad_lines, profile.engine.dead_letters.as_ref()) {
            (BadLines::Skip, Some(path)) => BadMessages::Skip(path.clone()),
            // Profile::check requires the file of skipped messages.
            _ => BadMessages::Stop,
        };
        let source = KafkaSource::connect(settings.clone(), &topic, &workload.group, decode)?
            .stop_at_end(workload.stop_at_end)
            .rate(workload.rate.per_second())
            .bad_messages(bad);
        // Timed records: each worker reads its partitions in step by event
        // time, so the watermark does not pass a lagging partition.
        let source = match R::EVENT_TIME {
            Some(event_time) => source.event_time(event_time),
            None => source,
        };
        Ok(KafkaFeed {
            source: Some(source),
            positions: None,
            resumption: None,
            settings,
            topic,
        })
    }
}

impl<R: Send + 'static> Feed<R> for KafkaFeed<R> {
    fn attach<J: Job<R>>(
        &mut self,
        builder: EngineBuilder<R, J>,
        _: &Workload,
    ) -> EngineBuilder<R, J> {
        let Some(mut source) = self.source.take() else {
            return builder;
        };
        if let Some(positions) = &self.positions {
            source = source.recording(positions.clone());
        }
        let builder = match self.resumption.take() {
            Some(resumption) => builder.resume_from(resumption),
            None => builder,
        };
        builder.source(source)
    }

    fn spawn<J: Job<R>>(
        self,
        _: &microbatch::Engine<R, J>,
        _: &Workload,
        _: std::time::Instant,
        _: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Producers, RunError> {
        Ok(Producers::default())
    }

    fn positions(&mut self) -> Option<SealedPositions> {
        let positions = SealedPositions::new(&self.topic);
        self.positions = Some(positions.clone());
        Some(positions)
    }

    fn resume(&mut self, resumption: Resumption, stored: &[Position]) -> Result<(), RunError> {
        if let Some(source) = self.source.take() {
            self.source = Some(source.starting_at(stored)?);
        }
        self.resumption = Some(resumption);
        Ok(())
    }

    fn kafka(&self) -> Option<(&KafkaSettings, &str)> {
        Some((&self.settings, &self.topic))
    }
}
