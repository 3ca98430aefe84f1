//! `[job] window = "tumbling" | "hopping" | "session"`: the keyed or
//! global count-and-more over event-time windows of the generator's
//! records, each with an event time up to `workload.disorder` behind the
//! time it was made, of a log of timed records (`log write --schema
//! timed`), or of a CSV file of them (`key,value,event_time_ms`), read
//! whole and handed to the workers in its order. Rows carry the window's bounds; each window goes out
//! once, when the watermark (`job.watermark_delay` behind the workers'
//! event-time frontier) passes its end.

use microbatch::job::{
    self, count, max, min, sum, Aggregator, Firing, Job, RkyvSnapshots, Session, TotalsCodec,
    Window, Windows,
};
use microbatch::source::{IterSource, TimedEvent, TimedGenerator};

use super::build::{value_of, WithJob};
use super::kafka::KafkaFeed;
use super::output::{drive_to_output, Grouped, Reduced};
use crate::driver::error::RunError;
use crate::driver::feed::{EitherFeed, Feed, GeneratorOrLog, InWorkers};
use crate::driver::input::read_records;
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{
    JobKind, JobSpec, LatePolicy, OutputModeSpec, Reduction, SourceKind, WindowKind,
};

/// Runs the windowed job of `runner`'s profile (checked: a tumbling,
/// hopping or session window, a generator in the workers).
pub(crate) fn run(runner: Runner<'_>) -> Result<RunOutcome, RunError> {
    let spec = &runner.profile.job;
    let feed = timed_feed(&runner)?;
    with_windowed_job(spec, |e: &TimedEvent| e.key, Drive { runner, feed })
}

/// Timed records: in the workers (generated, a log or a file's), or a
/// Kafka topic's.
pub(crate) type TimedFeed =
    EitherFeed<InWorkers<GeneratorOrLog<TimedGenerator, TimedEvent>>, KafkaFeed<TimedEvent>>;

/// The timed records of `runner`'s workload: a Kafka topic, a log, a
/// CSV file (`key,value,event_time_ms`, read whole) or the generator.
pub(crate) fn timed_feed(runner: &Runner<'_>) -> Result<TimedFeed, RunError> {
    let workload = &runner.profile.workload;
    Ok(match workload.source {
        SourceKind::Kafka => EitherFeed::Other(KafkaFeed::<TimedEvent>::connect(runner)?),
        SourceKind::Log => EitherFeed::Own(InWorkers(Some(GeneratorOrLog::<
            TimedGenerator,
            TimedEvent,
        >::log(workload)?))),
        SourceKind::File => {
            let path = workload.path.clone().unwrap_or_default();
            let columns = ["key", "value", "event_time_ms"];
            let records = read_records::<TimedEvent>(&path, workload.records, &columns)?;
            EitherFeed::Own(InWorkers(Some(GeneratorOrLog::Records(IterSource::new(
                records,
            )))))
        }
        // Profile::check gives the Nexmark source to the Nexmark job only.
        SourceKind::Generator | SourceKind::Nexmark => EitherFeed::Own(InWorkers(Some(
            GeneratorOrLog::Generator(TimedGenerator::new(workload.generator(), workload.disorder)),
        ))),
    })
}

/// The windowed job's rows into the profile's output.
struct Drive<'a, F> {
    runner: Runner<'a>,
    feed: F,
}

impl<F: Feed<TimedEvent>> WithJob<TimedEvent> for Drive<'_, F> {
    type Out = Result<RunOutcome, RunError>;

    fn with<J: Job<TimedEvent>>(self, job: J, row: fn(J::Row) -> Grouped) -> Self::Out {
        let keyed = self.runner.profile.job.kind != JobKind::Global;
        drive_to_output(self.runner, job, self.feed, row, keyed, true)
    }
}

/// Calls `action` with the windowed job `spec` describes (checked: a
/// tumbling, hopping or session window), its records keyed by `key` (a
/// keyed job's).
pub(crate) fn with_windowed_job<W, K>(spec: &JobSpec, key: K, action: W) -> W::Out
where
    W: WithJob<TimedEvent>,
    K: Fn(&TimedEvent) -> u64 + Copy + Send + Sync + 'static,
{
    let value = value_of::<TimedEvent>;
    if spec.wants(Reduction::Min) || spec.wants(Reduction::Max) {
        build(
            spec,
            key,
            (count(), sum(value), min(value), max(value)),
            action,
        )
    } else {
        build(spec, key, (count(), sum(value)), action)
    }
}

/// The windows `spec` asks for.
fn windows_of(spec: &JobSpec) -> Windows {
    let size = spec.window_size.unwrap_or_default();
    match (spec.window, spec.window_slide) {
        (WindowKind::Hopping, Some(slide)) => Windows::hopping(size, slide),
        _ => Windows::tumbling(size),
    }
}

fn build<A, W, K>(spec: &JobSpec, key: K, aggregator: A, action: W) -> W::Out
where
    A: Aggregator<TimedEvent>,
    A::State: Clone,
    A::Output: Reduced,
    W: WithJob<TimedEvent>,
    K: Fn(&TimedEvent) -> u64 + Copy + Send + Sync + 'static,
    // Open panes and sessions go into the checkpoint's state snapshots, so
    // a resumed run starts from the last one.
    RkyvSnapshots: TotalsCodec<u64, (u64, A::State, u64)>
        + TotalsCodec<(), (u64, A::State, u64)>
        + TotalsCodec<u64, Session<A::State>>
        + TotalsCodec<(), Session<A::State>>,
{
    let timed = job::records::<TimedEvent>().event_time(|e| e.event_time_ms);
    let keyed = spec.kind != JobKind::Global;
    if spec.window == WindowKind::Session {
        let gap = spec.session_gap.unwrap_or_default();
        let sessions = timed.session(gap).watermark_delay(spec.watermark_delay);
        return if keyed {
            let job = sessions.key_by(key).aggregate(aggregator).snapshotted();
            action.with(job, window_row::<_, A>)
        } else {
            let job = sessions.key_by(whole).aggregate(aggregator).snapshotted();
            action.with(job, window_row::<_, A>)
        };
    }
    let windowed = timed
        .window(windows_of(spec))
        .watermark_delay(spec.watermark_delay);
    if spec.marks_firings() {
        // With an allowed lateness or in update mode, rows say when they
        // fired; a window's later rows replace its earlier ones.
        let marked = windowed.allowed_lateness(spec.allowed_lateness);
        let marked = if spec.output_mode == OutputModeSpec::Update {
            marked.updates()
        } else {
            marked
        };
        // Late records as expired rows, which the output sends to
        // `engine.dead_letters` (`drive_to_output`).
        let marked = if spec.late == LatePolicy::DeadLetters {
            marked.expired_rows()
        } else {
            marked
        };
        return if keyed {
            let job = marked.key_by(key).aggregate(aggregator).snapshotted();
            action.with(job, marked_row::<_, A>)
        } else {
            let job = marked.aggregate(aggregator).snapshotted();
            action.with(job, marked_row::<_, A>)
        };
    }
    if keyed {
        let job = windowed.key_by(key).aggregate(aggregator).snapshotted();
        action.with(job, window_row::<_, A>)
    } else {
        action.with(
            windowed.aggregate(aggregator).snapshotted(),
            window_row::<_, A>,
        )
    }
}

/// No key: one group per window.
fn whole(_: &TimedEvent) {}

/// A key of a window's group: the key, or none for a whole window.
trait GroupKey: Send + 'static {
    fn key(self) -> Option<u64>;
}

impl GroupKey for u64 {
    fn key(self) -> Option<u64> {
        Some(self)
    }
}

impl GroupKey for () {
    fn key(self) -> Option<u64> {
        None
    }
}

/// The group of a window's row fired as `firing` (marked rows only).
fn group<K: GroupKey, O: Reduced>(
    window: Window,
    key: K,
    output: O,
    firing: Option<Firing>,
) -> Grouped {
    Grouped {
        window: Some((window.start_ms, window.end_ms)),
        key: key.key(),
        columns: output.columns(),
        firing,
    }
}

/// The group of an append job's row: once per window.
fn window_row<K: GroupKey, A: Aggregator<TimedEvent>>(
    (window, key, output): (Window, K, A::Output),
) -> Grouped
where
    A::Output: Reduced,
{
    group(window, key, output, None)
}

/// The group of a marked row: with when it fired.
fn marked_row<K: GroupKey, A: Aggregator<TimedEvent>>(
    (window, key, output, firing): (Window, K, A::Output, Firing),
) -> Grouped
where
    A::Output: Reduced,
{
    group(window, key, output, Some(firing))
}
