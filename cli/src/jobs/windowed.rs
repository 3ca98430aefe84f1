//! `[job] window = "tumbling" | "hopping" | "session"`: the keyed or
//! global count-and-more over event-time windows of the generator's
//! records, each with an event time up to `workload.disorder` behind the
//! time it was made, of a log of timed records (`log write --schema
//! timed`), or of a CSV file of them (`key,value,event_time_ms`), read
//! whole and handed to the workers in its order. Rows carry the window's bounds; each window goes out
//! once, when the watermark (`job.watermark_delay` behind the workers'
//! event-time frontier) passes its end.

use microbatch::job::{
    self, count, max, min, sum, Aggregator, Firing, RkyvSnapshots, Session, TotalsCodec, Window,
    Windows,
};
use microbatch::source::{IterSource, TimedEvent, TimedGenerator};

use super::kafka::KafkaFeed;
use super::output::{drive_to_output, Grouped, Reduced};
use crate::driver::error::RunError;
use crate::driver::feed::{EitherFeed, GeneratorOrLog, InWorkers};
use crate::driver::input::read_records;
use crate::driver::{RunOutcome, Runner};
use crate::profile::schema::{
    JobKind, JobSpec, LatePolicy, OutputModeSpec, Reduction, SourceKind, WindowKind,
};

/// The value column of a [`TimedEvent`].
fn value_of(event: &TimedEvent) -> u64 {
    event.value
}

/// Runs the windowed job of `runner`'s profile (checked: a tumbling,
/// hopping or session window, a generator in the workers).
pub(crate) fn run(runner: Runner<'_>) -> Result<RunOutcome, RunError> {
    let spec = &runner.profile.job;
    let value = value_of;
    if spec.wants(Reduction::Min) || spec.wants(Reduction::Max) {
        run_with(runner, (count(), sum(value), min(value), max(value)))
    } else {
        run_with(runner, (count(), sum(value)))
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

fn run_with<A>(runner: Runner<'_>, aggregator: A) -> Result<RunOutcome, RunError>
where
    A: Aggregator<TimedEvent>,
    A::State: Clone,
    A::Output: Reduced,
    // Open panes and sessions go into the checkpoint's state snapshots, so
    // a resumed run starts from the last one.
    RkyvSnapshots: TotalsCodec<u64, (u64, A::State, u64)>
        + TotalsCodec<(), (u64, A::State, u64)>
        + TotalsCodec<u64, Session<A::State>>
        + TotalsCodec<(), Session<A::State>>,
{
    let profile = runner.profile;
    let spec = &profile.job;
    let workload = &profile.workload;
    let feed = match workload.source {
        SourceKind::Kafka => EitherFeed::Other(KafkaFeed::<TimedEvent>::connect(&runner)?),
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
    };
    let timed = job::records::<TimedEvent>().event_time(|e| e.event_time_ms);
    let keyed = spec.kind != JobKind::Global;
    if spec.window == WindowKind::Session {
        let gap = spec.session_gap.unwrap_or_default();
        let sessions = timed.session(gap).watermark_delay(spec.watermark_delay);
        return if keyed {
            drive_to_output(
                runner,
                sessions
                    .key_by(|e| e.key)
                    .aggregate(aggregator)
                    .snapshotted(),
                feed,
                window_row::<_, A>,
                true,
                true,
            )
        } else {
            drive_to_output(
                runner,
                sessions.key_by(whole).aggregate(aggregator).snapshotted(),
                feed,
                window_row::<_, A>,
                false,
                true,
            )
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
            let job = marked.key_by(|e| e.key).aggregate(aggregator);
            drive_to_output(
                runner,
                job.snapshotted(),
                feed,
                marked_row::<_, A>,
                true,
                true,
            )
        } else {
            let job = marked.aggregate(aggregator).snapshotted();
            drive_to_output(runner, job, feed, marked_row::<_, A>, false, true)
        };
    }
    if keyed {
        drive_to_output(
            runner,
            windowed
                .key_by(|e| e.key)
                .aggregate(aggregator)
                .snapshotted(),
            feed,
            window_row::<_, A>,
            true,
            true,
        )
    } else {
        drive_to_output(
            runner,
            windowed.aggregate(aggregator).snapshotted(),
            feed,
            window_row::<_, A>,
            false,
            true,
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
