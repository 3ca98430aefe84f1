//! Where a run's records come from: the generator, a CSV file read whole,
//! or a record log; and splitting them into one source per producer
//! thread.

use std::path::{Path, PathBuf};

use microbatch::log::{LogReader, LogSource};
use microbatch::source::{Event, Generator, Poll, Source, SourceSpec};
use microbatch::EngineError;

use super::error::RunError;
use crate::profile::schema::{SourceKind, Workload};
use std::sync::Arc;

/// Where a run's records come from.
pub enum Input {
    /// The seeded generator.
    Generator,
    /// A CSV file's records, read whole before the run.
    Events(Vec<Event>),
    /// A record log, checked when opened and read in place.
    Log(LogReader<Event>),
}

/// Opens the workload's input: reads a CSV file whole, or opens and
/// checks a record log.
pub fn open_input(workload: &Workload) -> Result<Input, RunError> {
    let path = || {
        workload.path.as_deref().ok_or_else(|| RunError::Input {
            path: PathBuf::from("workload.path"),
            message: "a file or log source needs a path".into(),
        })
    };
    Ok(match workload.source {
        SourceKind::Generator => Input::Generator,
        // Profile::check gives the Nexmark generator to the Nexmark job only.
        SourceKind::Nexmark => {
            return Err(RunError::Unsupported(
                "workload.source = \"nexmark\" feeds job.kind = \"nexmark\" only".into(),
            ))
        }
        // The jobs read a Kafka topic through their own feed.
        SourceKind::Kafka => {
            return Err(RunError::Unsupported(
                "workload.source = \"kafka\" is read by the engine's workers, not by producer threads or `compare`".into(),
            ))
        }
        SourceKind::File => Input::Events(read_events(path()?, workload.records)?),
        SourceKind::Log => {
            Input::Log(LogReader::open(path()?).map_err(|error| RunError::Input {
                path: path().map(Path::to_owned).unwrap_or_default(),
                message: error.to_string(),
            })?)
        }
    })
}

/// Reads a CSV file with the header `key,value` (at most `limit` records).
pub fn read_events(path: &Path, limit: Option<u64>) -> Result<Vec<Event>, RunError> {
    read_records(path, limit, &["key", "value"])
}

/// Reads a CSV file of `R`s whose header is `columns` (at most `limit`
/// records), every column an unsigned integer.
pub fn read_records<R: serde::de::DeserializeOwned>(
    path: &Path,
    limit: Option<u64>,
    columns: &[&str],
) -> Result<Vec<R>, RunError> {
    let fail = |message: String| RunError::Input {
        path: path.to_owned(),
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|error| fail(error.to_string()))?;
    let headers = reader.headers().map_err(|error| fail(error.to_string()))?;
    if headers.iter().map(str::trim).collect::<Vec<_>>() != columns {
        return Err(fail(format!(
            "the header is `{}`; accepted: `{}` followed by rows of {} unsigned integers",
            headers.iter().collect::<Vec<_>>().join(","),
            columns.join(","),
            columns.len()
        )));
    }
    let mut events = Vec::new();
    for row in reader.deserialize::<R>() {
        if limit.is_some_and(|limit| events.len() as u64 >= limit) {
            break;
        }
        events.push(row.map_err(|error| fail(error.to_string()))?);
    }
    if events.is_empty() {
        return Err(fail("no records after the header".into()));
    }
    Ok(events)
}

/// `count` record sources: parts of the workload's generator, shares of a
/// file's records in order, or parts of a record log.
pub(crate) fn split_sources(
    workload: &Workload,
    input: Input,
    count: usize,
) -> Result<Vec<Box<dyn Source<Event>>>, RunError> {
    Ok(match input {
        Input::Generator => Generator::new(workload.generator())
            .parts(count)
            .map_err(EngineError::from)?
            .into_iter()
            .map(|part| Box::new(part) as Box<dyn Source<Event>>)
            .collect(),
        Input::Events(events) => {
            // Shared, not copied: the producers start while the engine
            // runs, and a copy of the input would count against it.
            let share = events.len().div_ceil(count.max(1));
            let events = Arc::new(events);
            (0..count)
                .map(|i| {
                    let start = (i * share).min(events.len());
                    let end = (start + share).min(events.len());
                    Box::new(Chunks {
                        events: Arc::clone(&events),
                        next: start,
                        end,
                    }) as Box<dyn Source<Event>>
                })
                .collect()
        }
        Input::Log(reader) => LogSource::new(reader, workload.rate.per_second())
            .split(count)
            .map_err(EngineError::from)?,
    })
}

/// A share of a file's records, `events[next..end]`, as a source.
struct Chunks {
    events: Arc<Vec<Event>>,
    next: usize,
    end: usize,
}

impl Source<Event> for Chunks {
    fn poll(&mut self, now: u64, out: &mut Vec<Event>, max: usize) -> Poll {
        let mut unused = Vec::new();
        let (poll, records) = self.poll_lent(now, &mut unused, max);
        out.extend_from_slice(records);
        poll
    }

    fn poll_lent<'a>(
        &'a mut self,
        _: u64,
        _: &'a mut Vec<Event>,
        max: usize,
    ) -> (Poll, &'a [Event]) {
        let from = self.next;
        self.next = self.end.min(from.saturating_add(max));
        let records = &self.events[from..self.next];
        if records.is_empty() {
            (Poll::Exhausted, records)
        } else {
            let ready = Poll::Ready {
                intended_micros: None,
            };
            (ready, records)
        }
    }
}
