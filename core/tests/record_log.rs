//! The record log: what is written reads back in order across blocks and
//! segments; the engine reads it whole through `LogSource`; every kind of
//! damage or mismatch (a segment missing, repeated, reordered, renamed,
//! cut, extended or from another log, a flipped length, a write that did
//! not finish) is refused with the file and offset, never read as a
//! shorter log.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use microbatch::job::{self, count, sum};
use microbatch::log::format::{segment_name, BLOCK_HEADER, MANIFEST, SEGMENT_HEADER};
use microbatch::log::{LogError, LogOptions, LogReader, LogRecord, LogSource, LogWriter, Position};
use microbatch::sink::CollectSink;
use microbatch::source::{Event, Poll, SourceSpec};
use microbatch::Engine;

fn events(n: u64) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            key: i % 13,
            value: i,
        })
        .collect()
}

/// Writes `records` in blocks of `block` records, segments of about
/// `segment_bytes`; returns the segment paths.
fn write_log(dir: &Path, records: &[Event], block: usize, segment_bytes: u64) -> Vec<PathBuf> {
    let mut writer = LogWriter::create(
        dir,
        LogOptions {
            block_records: block,
            segment_bytes,
        },
    )
    .unwrap();
    for record in records {
        writer.append(*record).unwrap();
    }
    let summary = writer.finish().unwrap();
    assert_eq!(summary.records, records.len() as u64);
    let mut segments: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mblog"))
        .collect();
    segments.sort();
    assert_eq!(segments.len() as u64, summary.segments);
    segments
}

fn read_all(reader: &LogReader<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    for block in 0..reader.blocks() {
        reader.read(block, 0, usize::MAX, &mut out);
    }
    out
}

#[test]
fn records_read_back_in_order_across_blocks_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let records = events(10_007);
    let segments = write_log(dir.path(), &records, 100, 16 << 10);
    assert!(segments.len() > 3, "{} segments", segments.len());
    let reader = LogReader::<Event>::open(dir.path()).unwrap();
    assert_eq!(reader.records(), 10_007);
    assert_eq!(reader.blocks(), 101);
    assert_eq!(read_all(&reader), records);
    // Partial reads and positions.
    let mut out = Vec::new();
    assert_eq!(reader.read(3, 95, 10, &mut out), 5);
    assert_eq!(out, records[395..400]);
    assert_eq!(reader.block_records(100), (7, 10_000));
    let last = reader.position(100, 6);
    assert_eq!(last.record, 6);
    assert!(
        last > Position {
            segment: 0,
            block: 0,
            record: 0
        }
    );
}

#[test]
fn a_new_log_needs_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events(10), 4, 1 << 20);
    let again = LogWriter::<Event>::create(dir.path(), LogOptions::default());
    assert!(matches!(again, Err(LogError::NotEmpty { .. })));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        LogReader::<Event>::open(empty.path()),
        Err(LogError::NoLog { .. })
    ));
}

#[test]
fn the_engine_reads_a_log_whole() {
    let dir = tempfile::tempdir().unwrap();
    let records = events(123_457);
    write_log(dir.path(), &records, 4096, 256 << 10);
    let per_key = job::records::<Event>()
        .key_by(|e| e.key)
        .aggregate((count(), sum(|e: &Event| e.value)));
    let (sink, collected) = CollectSink::new();
    let engine = Engine::builder(per_key, sink)
        .workers(2)
        .pin(false)
        .source(LogSource::new(LogReader::open(dir.path()).unwrap(), None))
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    assert_eq!(summary.records_in_results, 123_457);
    let mut got: HashMap<u64, (u64, u64)> = HashMap::new();
    for (_, (key, (n, s))) in collected.take() {
        let total = got.entry(key).or_default();
        total.0 += n;
        total.1 += s;
    }
    let mut expected: HashMap<u64, (u64, u64)> = HashMap::new();
    for e in &records {
        let total = expected.entry(e.key).or_default();
        total.0 += 1;
        total.1 += e.value;
    }
    assert_eq!(got, expected);
}

#[test]
fn a_replay_rate_releases_records_when_due() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events(10), 4, 1 << 20);
    let source = LogSource::new(LogReader::<Event>::open(dir.path()).unwrap(), Some(1000));
    let mut part = source.split(1).unwrap().remove(0);
    let mut out = Vec::new();
    // 1000 records/s: record i is due at i ms.
    assert_eq!(part.poll(0, &mut out, 100), Poll::ready_at(0));
    assert_eq!(out.len(), 1);
    out.clear();
    assert_eq!(part.poll(500, &mut out, 100), Poll::Idle);
    assert_eq!(part.poll(5_000, &mut out, 100), Poll::ready_at(1_000));
    assert_eq!(out.iter().map(|e| e.value).collect::<Vec<_>>(), [1, 2, 3]);
    out.clear();
    assert_eq!(part.poll(5_000, &mut out, 100), Poll::ready_at(4_000));
    assert_eq!(out.iter().map(|e| e.value).collect::<Vec<_>>(), [4, 5]);
    out.clear();
    assert_eq!(part.poll(60_000, &mut out, 100), Poll::ready_at(6_000));
    assert_eq!(part.poll(60_000, &mut out, 100), Poll::ready_at(8_000));
    assert_eq!(out.len(), 4);
    assert_eq!(part.poll(60_000, &mut out, 100), Poll::Exhausted);
}

/// Rewrites `len` bytes at `offset` of `path`.
fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom};
    let mut file = OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn open_error(dir: &Path) -> LogError {
    match LogReader::<Event>::open(dir) {
        Err(error) => error,
        Ok(reader) => panic!("opened: {} records", reader.records()),
    }
}

/// A log of two segments, each of several 10-record blocks.
fn two_segments() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let segments = write_log(dir.path(), &events(400), 10, 2 << 10);
    assert!(segments.len() >= 2);
    (dir, segments)
}

#[test]
fn damage_is_refused_with_file_and_offset() {
    // Bad magic.
    let (dir, segments) = two_segments();
    overwrite(&segments[0], 0, b"NOTALOG!");
    let error = open_error(dir.path());
    assert!(matches!(error, LogError::BadMagic { .. }), "{error}");
    assert!(
        error.to_string().contains("segment-0000000000.mblog"),
        "{error}"
    );

    // Another format version.
    let (dir, segments) = two_segments();
    overwrite(&segments[1], 8, &7u32.to_le_bytes());
    let error = open_error(dir.path());
    assert!(
        matches!(
            error,
            LogError::WrongVersion {
                found: 7,
                expected: 2,
                ..
            }
        ),
        "{error}"
    );

    // A payload checksum that fails, in the last segment too.
    let (dir, segments) = two_segments();
    let last = segments.last().unwrap();
    overwrite(last, (SEGMENT_HEADER + BLOCK_HEADER + 3) as u64, &[0xff]);
    let error = open_error(dir.path());
    assert!(
        matches!(&error, LogError::Corrupt { offset, reason, .. } if *offset == SEGMENT_HEADER as u64 && reason.contains("checksum")),
        "{error}"
    );
    assert!(error.to_string().contains("offset 64"), "{error}");

    // A segment cut short, in the middle or at the end of the log.
    for which in [0, 1] {
        let (dir, segments) = two_segments();
        let segment = &segments[which.min(segments.len() - 1)];
        let len = fs::metadata(segment).unwrap().len();
        truncate(segment, len - 7);
        let error = open_error(dir.path());
        assert!(
            matches!(&error, LogError::Mismatch { reason, .. } if reason.contains("the manifest says")),
            "{error}"
        );
    }

    // The segment header's own checksum.
    let (dir, segments) = two_segments();
    overwrite(&segments[0], 40, &[9]);
    let error = open_error(dir.path());
    assert!(
        matches!(&error, LogError::Corrupt { offset: 0, reason, .. } if reason.contains("header's checksum")),
        "{error}"
    );
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, Copy)]
struct Other {
    a: u32,
}

impl LogRecord for Other {
    const SCHEMA: &'static str = "test.other.v1(a u32)";
}

#[test]
fn a_log_is_never_read_as_another_record_type() {
    let (dir, _) = two_segments();
    match LogReader::<Other>::open(dir.path()) {
        Err(LogError::WrongRecordType { schema, .. }) => assert_eq!(schema, Other::SCHEMA),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("read an Event log as Other"),
    }
}

#[test]
fn a_flipped_length_is_damage_not_a_shorter_log() {
    // Block 2 of the last segment claims a payload of about 1 GiB.
    let (dir, segments) = two_segments();
    let last = segments.last().unwrap();
    let bytes = fs::read(last).unwrap();
    let at = SEGMENT_HEADER + 4;
    let payload = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
    let second = (SEGMENT_HEADER + BLOCK_HEADER) as u64 + payload.div_ceil(16) * 16;
    overwrite(last, second + 7, &[0x40]);
    let error = open_error(dir.path());
    assert!(
        matches!(&error, LogError::Corrupt { offset, reason, .. } if *offset == second && reason.contains("header's checksum")),
        "{error}"
    );
}

#[test]
fn trailing_bytes_after_the_last_block_are_refused() {
    let (dir, segments) = two_segments();
    let mut file = OpenOptions::new()
        .append(true)
        .open(segments.last().unwrap())
        .unwrap();
    file.write_all(&[0u8; 100]).unwrap();
    let error = open_error(dir.path());
    assert!(matches!(error, LogError::Mismatch { .. }), "{error}");
}

#[test]
fn a_missing_repeated_reordered_or_renamed_segment_is_refused() {
    let three = || {
        let dir = tempfile::tempdir().unwrap();
        let segments = write_log(dir.path(), &events(600), 10, 2 << 10);
        assert!(segments.len() >= 3, "{} segments", segments.len());
        (dir, segments)
    };
    // Missing.
    let (dir, segments) = three();
    fs::remove_file(&segments[1]).unwrap();
    let error = open_error(dir.path());
    assert!(
        matches!(&error, LogError::Mismatch { reason, .. } if reason.contains("missing")),
        "{error}"
    );
    // Repeated under the next free name.
    let (dir, segments) = three();
    fs::copy(
        &segments[0],
        dir.path().join(segment_name(segments.len() as u64)),
    )
    .unwrap();
    let error = open_error(dir.path());
    assert!(
        matches!(&error, LogError::Mismatch { reason, .. } if reason.contains("no such segment")),
        "{error}"
    );
    // Two segments swapped.
    let (dir, segments) = three();
    let swap = dir.path().join("swap");
    fs::rename(&segments[0], &swap).unwrap();
    fs::rename(&segments[1], &segments[0]).unwrap();
    fs::rename(&swap, &segments[1]).unwrap();
    let error = open_error(dir.path());
    assert!(matches!(error, LogError::Mismatch { .. }), "{error}");
    // Renamed past a gap in the numbering.
    let (dir, segments) = three();
    let last = segments.last().unwrap();
    fs::rename(
        last,
        dir.path().join(segment_name(segments.len() as u64 + 5)),
    )
    .unwrap();
    let error = open_error(dir.path());
    assert!(matches!(error, LogError::Mismatch { .. }), "{error}");
}

#[test]
fn a_segment_of_another_log_is_refused() {
    // Two logs of the same records: same sizes, same block checksums.
    let (one, one_segments) = two_segments();
    let (_two, two_segments) = two_segments();
    fs::copy(&two_segments[1], &one_segments[1]).unwrap();
    let error = open_error(one.path());
    assert!(
        matches!(&error, LogError::Mismatch { reason, .. } if reason.contains("belongs to log")),
        "{error}"
    );
}

#[test]
fn a_write_that_did_not_finish_is_refused_as_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = LogWriter::<Event>::create(
        dir.path(),
        LogOptions {
            block_records: 10,
            segment_bytes: 1 << 10,
        },
    )
    .unwrap();
    for record in events(500) {
        writer.append(record).unwrap();
    }
    writer.flush().unwrap();
    drop(writer); // as a kill or a full disk would leave it: no manifest
    let error = open_error(dir.path());
    assert!(matches!(error, LogError::Incomplete { .. }), "{error}");
    assert!(error.to_string().contains("did not finish"), "{error}");
    // A damaged manifest is refused too.
    let (dir, _) = two_segments();
    let manifest = dir.path().join(MANIFEST);
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replacen("\"records\": 400", "\"records\": 399", 1),
    )
    .unwrap();
    let error = open_error(dir.path());
    assert!(matches!(error, LogError::BadManifest { .. }), "{error}");
}

#[test]
fn an_empty_log_is_a_log_of_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let writer = LogWriter::<Event>::create(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(writer.finish().unwrap().records, 0);
    let reader = LogReader::<Event>::open(dir.path()).unwrap();
    assert_eq!(
        (reader.records(), reader.blocks(), reader.segments()),
        (0, 0, 0)
    );
    // Zero records per block is refused when the writer is made.
    assert!(matches!(
        LogWriter::<Event>::create(
            tempfile::tempdir().unwrap().path(),
            LogOptions {
                block_records: 0,
                segment_bytes: 1 << 20
            }
        ),
        Err(LogError::Options(_))
    ));
}

#[test]
fn a_log_of_the_old_format_is_refused_saying_how_to_rewrite_it() {
    let (dir, segments) = two_segments();
    fs::remove_file(dir.path().join(MANIFEST)).unwrap();
    overwrite(&segments[0], 8, &1u32.to_le_bytes());
    let error = open_error(dir.path());
    assert!(
        matches!(error, LogError::OldFormat { found: 1, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("microbatch log write"),
        "{error}"
    );
}

/// An epoch's row of count and sum per key, as a `CollectSink` keeps it.
type CountSumRow = (u64, (u64, (u64, u64)));

/// Per key, count and sum, from the records as they are or lent in place.
fn per_key_totals(rows: Vec<CountSumRow>) -> HashMap<u64, (u64, u64)> {
    let mut totals: HashMap<u64, (u64, u64)> = HashMap::new();
    for (_, (key, (count, sum))) in rows {
        let entry = totals.entry(key).or_default();
        entry.0 += count;
        entry.1 += sum;
    }
    totals
}

#[test]
fn archived_records_lent_in_place_give_the_same_results() {
    use microbatch::checkpoint::Checkpoint;
    use microbatch::source::ArchivedEvent;

    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Event> = (0..50_000u64)
        .map(|i| Event {
            key: i % 17,
            value: i % 1000,
        })
        .collect();
    write_log(dir.path(), &records, 1000, 64 << 20);
    let expected = {
        let (sink, rows) = CollectSink::new();
        let job = job::records::<Event>()
            .key_by(|e| e.key)
            .aggregate((count(), sum(|e: &Event| e.value)));
        let engine = Engine::builder(job, sink)
            .workers(2)
            .pin(false)
            .source(LogSource::new(LogReader::open(dir.path()).unwrap(), None))
            .start()
            .unwrap();
        engine.finish().unwrap();
        per_key_totals(rows.take())
    };
    // Lent in place: at full speed, at a rate, and under a checkpoint at a
    // rate (a seal then hands the rest of a block over by copy).
    for (rate, checkpoint) in [
        (None, false),
        (Some(2_000_000), false),
        (Some(2_000_000), true),
    ] {
        let (sink, rows) = CollectSink::new();
        let job = job::records::<ArchivedEvent>()
            .key_by(|e| e.key.to_native())
            .aggregate((count(), sum(|e: &ArchivedEvent| e.value.to_native())));
        let reader = LogReader::<Event>::open(dir.path()).unwrap();
        let source = LogSource::new(reader, rate).archived();
        let mut builder = Engine::builder(job, sink)
            .workers(2)
            .pin(false)
            .source(source);
        if checkpoint {
            builder = builder
                .interval(None)
                .checkpoint(Checkpoint::open(dir.path().join("checkpoint"), 3000).unwrap());
        }
        let summary = builder.start().unwrap().finish().unwrap();
        assert_eq!(summary.records_in_results, 50_000);
        assert_eq!(per_key_totals(rows.take()), expected, "rate {rate:?}");
    }
}

#[test]
fn a_paced_log_hands_out_a_millisecond_of_records_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Event> = (0..10_000u64).map(|i| Event { key: i, value: i }).collect();
    write_log(dir.path(), &records, 4096, 64 << 20);
    // 100 000 records/s: record i is due at i * 10 µs; a run is 100 records.
    let mut part = LogSource::new(LogReader::<Event>::open(dir.path()).unwrap(), Some(100_000))
        .split(1)
        .unwrap()
        .remove(0);
    let mut out = Vec::new();
    // At 0 µs record 0 is due: a run of one is not handed out.
    assert_eq!(part.poll(0, &mut out, 4096), Poll::Idle);
    // 50 records due: still less than a run.
    assert_eq!(part.poll(490, &mut out, 4096), Poll::Idle);
    assert!(out.is_empty());
    // 151 due: all of them, the first due at once.
    assert_eq!(part.poll(1500, &mut out, 4096), Poll::ready_at(0));
    assert_eq!(out.len(), 151);
    out.clear();
    // The next run starts where that one ended.
    assert_eq!(part.poll(3000, &mut out, 4096), Poll::ready_at(1510));
    assert_eq!(out[0].key, 151);
    assert_eq!(out.len(), 150);
}
