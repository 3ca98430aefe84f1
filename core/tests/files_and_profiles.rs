//! The file sinks write one whole file per epoch; the config reads from a
//! profile's TOML with clear errors.

use std::time::Duration;

use microbatch::job::{self, count, sum};
use microbatch::sink::{FileFormat, FileSink, Sink};
use microbatch::source::{GeneratorConfig, KeyDistribution};
use microbatch::{Config, Engine, IdleStrategy};

fn run_into(format: FileFormat) -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::new(dir.path().join("out"), format).unwrap();
    let job = job::records::<(u64, u64)>()
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &(u64, u64)| r.1)));
    let engine = Engine::builder(job, sink)
        .workers(2)
        .pin(false)
        .max_batch_records(Some(1000))
        .source(microbatch::source::IterSource::new(
            (0..5000u64).map(|i| (i % 10, i)),
        ))
        .start()
        .unwrap();
    let summary = engine.finish().unwrap();
    (dir, summary.epochs)
}

/// The epoch files (not the success markers); each has its marker.
fn files(dir: &tempfile::TempDir) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "ok"))
        .collect();
    files.sort();
    for file in &files {
        assert!(
            file.with_extension("ok").exists(),
            "{} has no marker",
            file.display()
        );
    }
    files
}

#[test]
fn csv_sink_writes_one_complete_file_per_epoch() {
    let (dir, epochs) = run_into(FileFormat::Csv);
    let files = files(&dir);
    assert_eq!(files.len() as u64, epochs, "{files:?}");
    assert!(
        files.iter().all(|f| f.extension().unwrap() == "csv"),
        "no temporary file is left"
    );
    let (mut records, mut total) = (0u64, 0u64);
    for file in &files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let fields: Vec<u64> = line.split(',').map(|f| f.parse().unwrap()).collect();
            assert_eq!(fields.len(), 3, "key, count, sum: {line}");
            records += fields[1];
            total += fields[2];
        }
    }
    assert_eq!((records, total), (5000, (0..5000).sum()));
}

#[test]
fn json_lines_sink_rows_parse_back() {
    let (dir, _) = run_into(FileFormat::JsonLines);
    let mut records = 0;
    for file in files(&dir) {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let (_, (c, _)): (u64, (u64, u64)) = serde_json::from_str(line).unwrap();
            records += c;
        }
    }
    assert_eq!(records, 5000);
}

#[test]
fn a_profile_table_fills_the_config() {
    let config: Config = toml::from_str(
        r#"
        workers = 3
        pin = false
        interval = "250ms"
        max_batch_records = "off"
        idle = "yield"
        "#,
    )
    .unwrap();
    assert_eq!(config.workers, 3);
    assert_eq!(config.interval, Some(Duration::from_millis(250)));
    assert_eq!(config.max_batch_records, None);
    assert_eq!(config.idle, IdleStrategy::Yield);
    assert_eq!(config.ring_capacity, Config::default().ring_capacity);

    let batch: Config = toml::from_str("interval = \"off\"\nmax_batch_records = \"off\"").unwrap();
    assert!(batch.is_batch_mode());

    let round_trip: Config = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
    assert_eq!(round_trip, config);
}

#[test]
fn profile_mistakes_are_named() {
    let error = toml::from_str::<Config>("wokers = 2")
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `wokers`"), "{error}");
    let error = toml::from_str::<Config>("interval = \"fast\"")
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"fast\" is not a duration"), "{error}");
    let error = toml::from_str::<Config>("max_batch_records = \"lots\"")
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a record count"), "{error}");
    let workload: GeneratorConfig =
        toml::from_str("keys = 10\ndistribution = { zipf = 1.1 }\nrate = 1000").unwrap();
    assert_eq!(workload.distribution, KeyDistribution::Zipf(1.1));
}

#[test]
fn csv_of_struct_rows_has_one_header_per_file() {
    #[derive(serde::Serialize)]
    struct Row {
        key: u64,
        count: u64,
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::new(dir.path(), FileFormat::Csv).unwrap();
    let mut progress = microbatch::progress::EpochProgress::default();
    progress.rows = 3;
    // Partition 1 is empty: the header comes with the first rows written.
    let mut empty: Vec<Row> = Vec::new();
    sink.write(0, 1, &mut empty).unwrap();
    sink.write(
        0,
        0,
        &mut vec![Row { key: 1, count: 2 }, Row { key: 3, count: 4 }],
    )
    .unwrap();
    sink.write(0, 2, &mut vec![Row { key: 5, count: 6 }])
        .unwrap();
    <FileSink as Sink<Row>>::epoch_complete(&sink, 0, &progress).unwrap();
    let text = std::fs::read_to_string(sink.path_of(0)).unwrap();
    assert_eq!(text, "key,count\n1,2\n3,4\n5,6\n");
}

#[test]
fn a_committed_epoch_is_not_written_again_and_a_torn_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::new(dir.path(), FileFormat::Csv).unwrap();
    let progress = |epoch| {
        let mut progress = microbatch::progress::EpochProgress::default();
        progress.epoch = epoch;
        progress.rows = 1;
        progress
    };
    sink.write(0, 0, &mut vec![(1u64, 2u64)]).unwrap();
    Sink::<(u64, u64)>::epoch_complete(&sink, 0, &progress(0)).unwrap();
    assert!(sink.is_committed(0));
    // A replay of epoch 0 with other rows leaves the committed file alone.
    sink.write(0, 0, &mut vec![(9u64, 9u64)]).unwrap();
    Sink::<(u64, u64)>::epoch_complete(&sink, 0, &progress(0)).unwrap();
    assert_eq!(std::fs::read_to_string(sink.path_of(0)).unwrap(), "1,2\n");
    // A crash after the file but before its marker: the epoch is written
    // again, whole.
    std::fs::write(sink.path_of(1), "partial").unwrap();
    assert!(!sink.is_committed(1));
    sink.write(1, 0, &mut vec![(3u64, 4u64)]).unwrap();
    Sink::<(u64, u64)>::epoch_complete(&sink, 1, &progress(1)).unwrap();
    assert_eq!(std::fs::read_to_string(sink.path_of(1)).unwrap(), "3,4\n");
    assert!(sink.is_committed(1));
    assert_eq!(sink.committed().unwrap(), vec![0, 1]);
}
