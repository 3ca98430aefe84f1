//! `microbatch log write`: turns a CSV or JSON-lines file of records (the
//! CLI's `key,value` events, with `--schema timed` the same with an event
//! time, or with `--schema clickstream` clicks) into a record log. A bad line stops the import with its line number, or (with
//! `BadLines::Skip`) goes to `rejects.txt` in the log's directory, with its
//! line number and why.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use microbatch::log::{LogError, LogOptions, LogReader, LogRecord, LogWriter};
use microbatch::source::{Event, TimedEvent};

use crate::jobs::clickstream::Click;
use crate::text::{parse_line, TextFormat, TextRecord};
pub use crate::text::{BadLines, Schema};

/// `microbatch log …`.
#[derive(clap::Subcommand)]
pub enum LogCommand {
    /// Turn a CSV file (`key,value` lines, header optional) or a JSON-lines
    /// file ({"key":…,"value":…}) into a record log in a new directory.
    Write(LogWriteArgs),
    /// Check every block of a record log and print what it holds.
    Inspect(LogInspectArgs),
}

/// `microbatch log write`.
#[derive(clap::Args)]
pub struct LogWriteArgs {
    /// The input: FILE.csv or FILE.jsonl.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The log's directory (created; it must hold no log).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// What to do with a line that is not a record: stop the import (and
    /// keep nothing), or skip it into DIR/rejects.txt.
    #[arg(long, value_enum, default_value = "stop")]
    pub bad_lines: BadLines,
    /// Records per block, at least 1.
    #[arg(long, value_name = "N", default_value_t = 4096,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=u64::from(u32::MAX)))]
    pub block_records: usize,
    /// The records' type: `event` (`key,value`), `timed`
    /// (`key,value,event_time_ms`, for windowed jobs) or `clickstream`
    /// (`user,page,event_time_ms,dwell_ms,action`; action is view, click,
    /// add_to_cart or purchase).
    #[arg(long, value_enum, default_value = "event")]
    pub schema: Schema,
}

/// `microbatch log inspect`.
#[derive(clap::Args)]
pub struct LogInspectArgs {
    /// The log's directory.
    pub dir: PathBuf,
    /// The records' type the log must hold.
    #[arg(long, value_enum, default_value = "event")]
    pub schema: Schema,
}

impl LogWriteArgs {
    /// Imports the file into the log these arguments name.
    pub fn write(&self) -> Result<ImportSummary, ImportError> {
        let options = LogOptions {
            block_records: self.block_records,
            ..LogOptions::default()
        };
        import_schema(self.schema, &self.from, &self.to, self.bad_lines, options)
    }
}

impl LogInspectArgs {
    /// Checks every block of the log and says what it holds.
    pub fn inspect(&self) -> Result<String, LogError> {
        match self.schema {
            Schema::Event => inspect::<Event>(&self.dir),
            Schema::Timed => inspect::<TimedEvent>(&self.dir),
            Schema::Clickstream => inspect::<Click>(&self.dir),
        }
    }
}

fn inspect<R: LogRecord>(dir: &Path) -> Result<String, LogError> {
    let reader = LogReader::<R>::open(dir)?;
    Ok(format!(
        "{}: {} records in {} blocks, {} segment(s); every block checked",
        dir.display(),
        reader.records(),
        reader.blocks(),
        reader.segments()
    ))
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Records in the log.
    pub records: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Segments and blocks of the log.
    pub segments: u64,
    /// Blocks of the log.
    pub blocks: u64,
    /// Where the rejected lines are, if any were.
    pub rejects: Option<PathBuf>,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input cannot be read.
    #[error("{path}: {message}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A line is not a record (with `BadLines::Stop`).
    #[error("{path}: line {line}: {reason}")]
    BadLine {
        /// The input file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The log cannot be written.
    #[error(transparent)]
    Log(#[from] LogError),
}

fn format_of<R: TextRecord>(path: &Path) -> Result<TextFormat, ImportError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => Ok(TextFormat::Csv),
        Some("jsonl" | "ndjson") => Ok(TextFormat::Json),
        _ => Err(ImportError::Input {
            path: path.to_owned(),
            message: format!(
                "unknown format; accepted: a .csv file (`{}` lines, header optional) or a .jsonl file ({} lines)",
                R::COLUMNS.join(","),
                R::JSON_SHAPE
            ),
        }),
    }
}

/// Imports `from` into a new log of `schema`'s records in `to`.
pub fn import_schema(
    schema: Schema,
    from: &Path,
    to: &Path,
    bad_lines: BadLines,
    options: LogOptions,
) -> Result<ImportSummary, ImportError> {
    match schema {
        Schema::Event => import::<Event>(from, to, bad_lines, options),
        Schema::Timed => import::<TimedEvent>(from, to, bad_lines, options),
        Schema::Clickstream => import::<Click>(from, to, bad_lines, options),
    }
}

/// Imports `from` into a new log of `R` in `to`. On any failure nothing of
/// the log is kept (and a log that was not finished would be refused
/// anyway: it has no manifest).
pub fn import<R: TextRecord>(
    from: &Path,
    to: &Path,
    bad_lines: BadLines,
    options: LogOptions,
) -> Result<ImportSummary, ImportError> {
    nothing_kept_on_error(to, || import_into::<R>(from, to, bad_lines, options))
}

/// Runs `write`, which writes a new log into `dir`; if it fails and `dir`
/// was empty or absent before, removes what it wrote (best effort: the
/// error being reported matters more). A log that was not finished would
/// be refused anyway: it has no manifest.
pub(crate) fn nothing_kept_on_error<T, E>(
    dir: &Path,
    write: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let started_empty =
        !dir.exists() || std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none());
    let written = write();
    if written.is_err() && started_empty {
        let _ = std::fs::remove_dir_all(dir);
    }
    written
}

fn import_into<R: TextRecord>(
    from: &Path,
    to: &Path,
    bad_lines: BadLines,
    options: LogOptions,
) -> Result<ImportSummary, ImportError> {
    let format = format_of::<R>(from)?;
    let input = File::open(from).map_err(|error| ImportError::Input {
        path: from.to_owned(),
        message: format!("cannot open: {error}"),
    })?;
    let mut writer = LogWriter::<R>::create(to, options)?;
    let rejects_path = to.join("rejects.txt");
    let mut rejects: Option<BufWriter<File>> = None;
    let mut rejected = 0;
    let output_error = |error: std::io::Error| ImportError::Input {
        path: rejects_path.clone(),
        message: format!("cannot write: {error}"),
    };
    for (index, line) in BufReader::new(input).lines().enumerate() {
        let number = index as u64 + 1;
        let mut line = line.map_err(|error| ImportError::Input {
            path: from.to_owned(),
            message: format!("line {number}: cannot read: {error}"),
        })?;
        if number == 1 {
            // A byte-order mark some editors write is not part of the data.
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned();
            }
        }
        match parse_line::<R>(format, &line, number == 1) {
            Ok(Some(record)) => writer.append(record)?,
            Ok(None) => {}
            Err(reason) => match bad_lines {
                BadLines::Stop => {
                    return Err(ImportError::BadLine {
                        path: from.to_owned(),
                        line: number,
                        reason,
                    });
                }
                BadLines::Skip => {
                    if rejects.is_none() {
                        rejects = Some(BufWriter::new(
                            File::create(&rejects_path).map_err(output_error)?,
                        ));
                    }
                    let out = rejects.as_mut().expect("just opened");
                    writeln!(out, "line {number}: {reason}: {line}").map_err(output_error)?;
                    rejected += 1;
                }
            },
        }
    }
    if let Some(mut out) = rejects {
        out.flush().map_err(output_error)?;
    }
    if writer.records() == 0 {
        return Err(ImportError::Input {
            path: from.to_owned(),
            message: "no records in the input: nothing to write".into(),
        });
    }
    let written = writer.finish()?;
    Ok(ImportSummary {
        records: written.records,
        rejected,
        segments: written.segments,
        blocks: written.blocks,
        rejects: (rejected > 0).then_some(rejects_path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use microbatch::log::LogReader;

    fn read_back(dir: &Path) -> Vec<Event> {
        let reader = LogReader::<Event>::open(dir).unwrap();
        let mut out = Vec::new();
        for block in 0..reader.blocks() {
            reader.read(block, 0, usize::MAX, &mut out);
        }
        out
    }

    #[test]
    fn csv_with_or_without_header_and_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("a.csv");
        std::fs::write(&csv, "key,value\n1,10\n\n2, 20\n").unwrap();
        let summary = import::<Event>(
            &csv,
            &dir.path().join("log1"),
            BadLines::Stop,
            LogOptions::default(),
        )
        .unwrap();
        assert_eq!((summary.records, summary.rejected), (2, 0));
        assert_eq!(
            read_back(&dir.path().join("log1")),
            [Event { key: 1, value: 10 }, Event { key: 2, value: 20 }]
        );
        let bare = dir.path().join("b.csv");
        std::fs::write(&bare, "3,30\n").unwrap();
        import::<Event>(
            &bare,
            &dir.path().join("log2"),
            BadLines::Stop,
            LogOptions::default(),
        )
        .unwrap();
        assert_eq!(
            read_back(&dir.path().join("log2")),
            [Event { key: 3, value: 30 }]
        );
        let json = dir.path().join("c.jsonl");
        std::fs::write(
            &json,
            "{\"key\":4,\"value\":40}\n{\"value\":50,\"key\":5}\n",
        )
        .unwrap();
        import::<Event>(
            &json,
            &dir.path().join("log3"),
            BadLines::Stop,
            LogOptions::default(),
        )
        .unwrap();
        assert_eq!(read_back(&dir.path().join("log3")).len(), 2);
    }

    #[test]
    fn a_bad_line_stops_with_its_number_or_goes_to_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("a.csv");
        std::fs::write(&csv, "1,10\n2,x\n3,30,1\n4,40\n").unwrap();
        let error = import::<Event>(
            &csv,
            &dir.path().join("stop"),
            BadLines::Stop,
            LogOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}: line 2: value `x` is not an unsigned 64-bit integer",
                csv.display()
            )
        );
        assert!(
            LogReader::<Event>::open(dir.path().join("stop")).is_err(),
            "a stopped import leaves no log"
        );
        let summary = import::<Event>(
            &csv,
            &dir.path().join("skip"),
            BadLines::Skip,
            LogOptions::default(),
        )
        .unwrap();
        assert_eq!((summary.records, summary.rejected), (2, 2));
        let rejects = std::fs::read_to_string(summary.rejects.unwrap()).unwrap();
        assert_eq!(
            rejects,
            "line 2: value `x` is not an unsigned 64-bit integer: 2,x\nline 3: 3 fields; expected 2 (key,value): 3,30,1\n"
        );
        assert_eq!(read_back(&dir.path().join("skip")).len(), 2);
        let unknown = dir.path().join("a.txt");
        std::fs::write(&unknown, "1,2\n").unwrap();
        assert!(import::<Event>(
            &unknown,
            &dir.path().join("x"),
            BadLines::Stop,
            LogOptions::default()
        )
        .unwrap_err()
        .to_string()
        .contains("accepted: a .csv file"));
    }

    /// The import's decoder against a reference reading of the same text:
    /// random lines of numbers, words, commas, blanks and JSON; every line
    /// the reference takes is in the log in order, every other non-blank
    /// line is rejected, and nothing panics.
    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        fn field() -> impl Strategy<Value = String> {
            prop_oneof![
                (0..u64::MAX).prop_map(|n| n.to_string()),
                Just("18446744073709551616".to_string()),
                Just("-1".to_string()),
                Just(" 7 ".to_string()),
                "[a-z]{0,3}",
            ]
        }

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => (field(), field()).prop_map(|(k, v)| format!("{k},{v}")),
                1 => proptest::collection::vec(field(), 0..4).prop_map(|f| f.join(",")),
                1 => Just(String::new()),
                1 => Just("key,value".to_string()),
                1 => "[ -~]{0,12}",
            ]
        }

        /// What a line is to the reference: a record, nothing, or bad.
        fn reference(line: &str, number: u64) -> Option<Option<Event>> {
            let text = line.trim();
            if text.is_empty() {
                return Some(None);
            }
            let fields: Vec<&str> = text.split(',').map(str::trim).collect();
            if number == 1 && fields == ["key", "value"] {
                return Some(None);
            }
            match fields.as_slice() {
                [key, value] => match (key.parse(), value.parse()) {
                    (Ok(key), Ok(value)) => Some(Some(Event { key, value })),
                    _ => None,
                },
                _ => None,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

            #[test]
            fn the_import_reads_what_a_reference_reads(lines in proptest::collection::vec(line(), 1..40)) {
                let dir = tempfile::tempdir().unwrap();
                let csv = dir.path().join("in.csv");
                std::fs::write(&csv, lines.join("\n")).unwrap();
                let mut expected = Vec::new();
                let mut bad = 0;
                for (index, line) in lines.iter().enumerate() {
                    match reference(line, index as u64 + 1) {
                        Some(Some(event)) => expected.push(event),
                        Some(None) => {}
                        None => bad += 1,
                    }
                }
                let to = dir.path().join("log");
                let imported = import::<Event>(&csv, &to, BadLines::Skip, LogOptions::default());
                match imported {
                    Ok(summary) => {
                        prop_assert_eq!(summary.rejected, bad);
                        prop_assert_eq!(read_back(&to), expected);
                    }
                    Err(ImportError::Input { message, .. }) => {
                        prop_assert!(expected.is_empty(), "{}", message);
                        prop_assert!(!to.exists(), "a failed import keeps nothing");
                    }
                    Err(other) => prop_assert!(false, "{}", other),
                }
                // Stopping at the first bad line keeps nothing.
                let stop = dir.path().join("stop");
                if let Err(ImportError::BadLine { .. }) =
                    import::<Event>(&csv, &stop, BadLines::Stop, LogOptions::default())
                {
                    prop_assert!(bad > 0);
                    prop_assert!(!stop.exists(), "a stopped import keeps nothing");
                }
            }
        }
    }
}
