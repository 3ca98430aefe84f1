//! The HdrHistogram interval log a run writes as it goes (`--json FILE`
//! writes it next to the summary as `.hlog`).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use super::error::{output_error, RunError};

/// The span of one interval of the log.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// An HdrHistogram interval log of record latency: one histogram of the
/// records whose epochs completed in each second.
pub(super) struct IntervalLog<'a> {
    path: &'a Path,
    writer: IntervalLogWriter<'a, 'a, BufWriter<File>, V2DeflateSerializer>,
    previous: Option<Histogram<u64>>,
    written_until: Duration,
    pub(super) next: Duration,
}

impl<'a> IntervalLog<'a> {
    pub(super) fn begin(
        path: &'a Path,
        file: &'a mut BufWriter<File>,
        serializer: &'a mut V2DeflateSerializer,
        name: &str,
    ) -> Result<Self, RunError> {
        let now = SystemTime::now();
        let writer = IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "microbatch run of {name}: record latency in microseconds; intervals tagged warmup are left out of the summary"
            ))
            .with_start_time(now)
            .with_base_time(now)
            .with_max_value_divisor(1000.0)
            .begin_log_with(file, serializer)
            .map_err(|error| output_error(path, error.to_string()))?;
        Ok(IntervalLog {
            path,
            writer,
            previous: None,
            written_until: Duration::ZERO,
            next: LOG_INTERVAL,
        })
    }

    /// Writes the counts `total` gained since the last call.
    pub(super) fn write(
        &mut self,
        total: &Histogram<u64>,
        now: Duration,
        warmup: Duration,
    ) -> Result<(), RunError> {
        let mut interval = total.clone();
        if let Some(previous) = &self.previous {
            interval
                .subtract(previous)
                .expect("a later copy of the same histogram holds every earlier count");
        }
        let tag = if self.written_until < warmup {
            Tag::new("warmup")
        } else {
            None
        };
        self.writer
            .write_histogram(&interval, self.written_until, now - self.written_until, tag)
            .map_err(|error| output_error(self.path, format!("{error:?}")))?;
        self.previous = Some(total.clone());
        self.written_until = now;
        self.next = now + LOG_INTERVAL;
        Ok(())
    }
}
