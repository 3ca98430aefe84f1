//! Property tests of every decoder that reads outside input, in the place
//! of a fuzzer: a record log, a checkpoint directory and a state snapshot,
//! damaged at random (a byte changed, a file cut, bytes appended, a file
//! removed or replaced with random bytes). Whatever the damage, opening
//! never panics, and a log that still opens reads exactly the records
//! written: damage is refused or harmless, never read as other data.

use std::fs;
use std::path::{Path, PathBuf};

use microbatch::checkpoint::Checkpoint;
use microbatch::log::{LogOptions, LogReader, LogWriter};
use microbatch::source::Event;
use proptest::prelude::*;

/// What is done to one file.
#[derive(Debug, Clone)]
enum Damage {
    /// XOR the byte at this fraction of the file with a non-zero mask.
    Flip(f64, u8),
    /// Cut the file to this fraction of its length.
    Cut(f64),
    /// Append these bytes.
    Append(Vec<u8>),
    /// Remove the file.
    Remove,
    /// Replace the file's content.
    Replace(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (0.0..1.0f64, 1..=255u8).prop_map(|(at, mask)| Damage::Flip(at, mask)),
        1 => (0.0..1.0f64).prop_map(Damage::Cut),
        1 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(Damage::Append),
        1 => Just(Damage::Remove),
        1 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(Damage::Replace),
    ]
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.ends_with("lock") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn apply(path: &Path, damage: &Damage) {
    match damage {
        Damage::Flip(at, mask) => {
            let mut bytes = fs::read(path).unwrap();
            if !bytes.is_empty() {
                let index = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
                bytes[index] ^= mask;
                fs::write(path, bytes).unwrap();
            }
        }
        Damage::Cut(at) => {
            let len = fs::metadata(path).unwrap().len();
            let file = fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len((len as f64 * at) as u64).unwrap();
        }
        Damage::Append(bytes) => {
            use std::io::Write;
            let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
            file.write_all(bytes).unwrap();
        }
        Damage::Remove => fs::remove_file(path).unwrap(),
        Damage::Replace(bytes) => fs::write(path, bytes).unwrap(),
    }
}

fn read_all(reader: &LogReader<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    for block in 0..reader.blocks() {
        reader.read(block, 0, usize::MAX, &mut out);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_damaged_log_is_refused_or_reads_exactly_what_was_written(
        records in 1..600u64,
        block_records in 1..64usize,
        segment_bytes in 512..4096u64,
        which in any::<prop::sample::Index>(),
        damage in damage(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::<Event>::create(
            dir.path(),
            LogOptions { block_records, segment_bytes },
        ).unwrap();
        let written: Vec<Event> = (0..records).map(|i| Event { key: i % 7, value: i * 3 }).collect();
        for record in &written {
            writer.append(*record).unwrap();
        }
        writer.finish().unwrap();
        let files = files_in(dir.path());
        apply(which.get::<PathBuf>(&files), &damage);
        if let Ok(reader) = LogReader::<Event>::open(dir.path()) {
            prop_assert_eq!(read_all(&reader), written);
        }
    }

    #[test]
    fn a_damaged_checkpoint_is_refused_or_opens_without_a_panic(
        commits in 0..6u64,
        which in any::<prop::sample::Index>(),
        damage in damage(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        {
            let checkpoint = Checkpoint::open(dir.path(), 100).unwrap();
            drop(checkpoint);
        }
        // Logged epochs through a real run of the engine are slow; the
        // files a run writes are written the same way by these calls.
        microbatch_test_support::log_epochs(dir.path(), commits);
        let files = files_in(dir.path());
        apply(which.get::<PathBuf>(&files), &damage);
        match Checkpoint::open(dir.path(), 100) {
            Ok(checkpoint) => {
                let _ = checkpoint.latest_state(2);
                prop_assert!(checkpoint.last_committed().is_none_or(|last| last < commits));
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }
}

/// Writes a checkpoint's files for `commits` epochs as a run does, through
/// the engine itself: a log source under the checkpoint.
mod microbatch_test_support {
    use std::path::Path;

    use microbatch::checkpoint::Checkpoint;
    use microbatch::job::{self, count};
    use microbatch::log::{LogOptions, LogReader, LogSource, LogWriter};
    use microbatch::sink::DiscardSink;
    use microbatch::source::Event;
    use microbatch::Engine;

    pub fn log_epochs(dir: &Path, commits: u64) {
        let log = tempfile::tempdir().unwrap();
        let mut writer = LogWriter::<Event>::create(
            log.path(),
            LogOptions {
                block_records: 100,
                segment_bytes: 1 << 20,
            },
        )
        .unwrap();
        for i in 0..commits * 100 {
            writer
                .append(Event {
                    key: i % 5,
                    value: i,
                })
                .unwrap();
        }
        writer.finish().unwrap();
        let per_key = job::records::<Event>()
            .key_by(|e| e.key)
            .aggregate(count())
            .running(job::OutputMode::Update)
            .snapshotted();
        let engine = Engine::builder(per_key, DiscardSink)
            .workers(2)
            .pin(false)
            .interval(None)
            .source(LogSource::new(LogReader::open(log.path()).unwrap(), None))
            .checkpoint(Checkpoint::open(dir, 100).unwrap().snapshot_every(2))
            .start()
            .unwrap();
        engine.finish().unwrap();
    }
}
