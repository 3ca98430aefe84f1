//! Experiment profiles: one TOML file describes a whole experiment.
//!
//! ```toml
//! [engine]            # microbatch::Config: workers, pin, interval, ...
//! interval = "100ms"
//! [workload]          # what goes in: generator or file, rate, producers
//! keys = 100000
//! rate = "max"
//! [job]               # keyed or global; the reductions
//! kind = "keyed"
//! reductions = ["count", "sum"]
//! [run]               # warm-up, then the measured duration
//! duration = "10s"
//! [output]            # none, csv, jsonl (a directory) or sqlite (a file)
//! kind = "none"
//! ```
//!
//! Every section and key is optional (the defaults are the engine's and
//! those below); unknown keys and bad values are refused with the file, the
//! dotted key and what is accepted. `--set section.key=value` overrides any
//! key before the profile is checked.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use microbatch::source::{GeneratorConfig, KeyDistribution, ValueDistribution};
use microbatch::Config;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A whole experiment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    /// The engine's settings.
    pub engine: Config,
    /// What goes in.
    pub workload: Workload,
    /// What the engine computes.
    pub job: JobSpec,
    /// How long it runs.
    pub run: RunSpec,
    /// Where results go.
    pub output: OutputSpec,
}

/// Where records come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The seeded generator.
    #[default]
    Generator,
    /// A CSV file with the header `key,value`, read into memory before the
    /// run so that the run measures the engine, not the disk.
    File,
    /// A record log directory (`microbatch log write`), checked when opened
    /// and read in place; `rate` replays it at a fixed pace.
    Log,
}

/// How keys are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// Zipf with `zipf_exponent`: key 0 is the hottest.
    Zipf,
}

/// Offered load: as fast as the engine takes records, or a fixed open-loop
/// rate in records per second (written `"max"` or a positive integer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Rate {
    /// As fast as possible: measures throughput.
    #[default]
    Max,
    /// Records per second; each record has an intended send time and its
    /// latency counts from it: measures latency.
    PerSecond(u64),
}

impl Rate {
    /// Records per second, or `None` for "max".
    pub fn per_second(self) -> Option<u64> {
        match self {
            Rate::Max => None,
            Rate::PerSecond(rate) => Some(rate),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Max => f.write_str("max"),
            Rate::PerSecond(rate) => write!(f, "{rate}"),
        }
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "max" {
            return Ok(Rate::Max);
        }
        match text.replace('_', "").parse::<u64>() {
            Ok(rate) if rate > 0 => Ok(Rate::PerSecond(rate)),
            _ => Err(format!(
                "invalid rate `{text}`: accepted: \"max\" or records per second (a positive integer)"
            )),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::Max => serializer.serialize_str("max"),
            Rate::PerSecond(rate) => serializer.serialize_u64(*rate),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;
        impl Visitor<'_> for RateVisitor {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"max\" or records per second (a positive integer)")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Rate, E> {
                match u64::try_from(value) {
                    Ok(rate) if rate > 0 => Ok(Rate::PerSecond(rate)),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Rate, E> {
                if value == 0 {
                    return Err(E::invalid_value(de::Unexpected::Unsigned(0), &self));
                }
                Ok(Rate::PerSecond(value))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Rate, E> {
                value
                    .parse()
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(value), &self))
            }
        }
        deserializer.deserialize_any(RateVisitor)
    }
}

/// The `[workload]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// `generator` (default), `file` or `log`.
    pub source: SourceKind,
    /// The CSV file of a `file` source (header `key,value`) or the
    /// directory of a `log` source, relative to the working directory.
    pub path: Option<PathBuf>,
    /// Distinct keys of the generator. Default 100 000.
    pub keys: u64,
    /// `uniform` (default) or `zipf`.
    pub distribution: Distribution,
    /// The Zipf exponent (> 0). Default 1.0.
    pub zipf_exponent: f64,
    /// Least generated value. Default 0.
    pub value_min: u64,
    /// Greatest generated value. Default 1000.
    pub value_max: u64,
    /// `"max"` (default) or records per second, open loop.
    pub rate: Rate,
    /// Records in all; absent: until the run's duration is over.
    pub records: Option<u64>,
    /// 0 (default): the workers generate their records; n: n producer
    /// threads push through the engine's rings.
    pub producers: usize,
    /// With producers: the fraction of the input pushed to worker 0; the
    /// rest goes to the other workers. Absent: each producer pushes to its
    /// own least-loaded worker. For skew experiments: 1/W is even, 1.0 is
    /// all of it.
    pub hot_worker_share: Option<f64>,
    /// The generator's seed. Default 42.
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Self {
        let generator = GeneratorConfig::default();
        Workload {
            source: SourceKind::Generator,
            path: None,
            keys: generator.keys,
            distribution: Distribution::Uniform,
            zipf_exponent: 1.0,
            value_min: 0,
            value_max: 1000,
            rate: Rate::Max,
            records: None,
            producers: 0,
            hot_worker_share: None,
            seed: generator.seed,
        }
    }
}

/// The most producer threads a profile may ask for.
pub const MAX_PRODUCERS: usize = 256;

impl Workload {
    /// The generator's settings.
    pub fn generator(&self) -> GeneratorConfig {
        GeneratorConfig {
            keys: self.keys,
            distribution: match self.distribution {
                Distribution::Uniform => KeyDistribution::Uniform,
                Distribution::Zipf => KeyDistribution::Zipf(self.zipf_exponent),
            },
            values: if self.value_min == self.value_max {
                ValueDistribution::Constant(self.value_min)
            } else {
                ValueDistribution::Uniform {
                    min: self.value_min,
                    max: self.value_max,
                }
            },
            rate: self.rate.per_second(),
            records: self.records,
            seed: self.seed,
        }
    }
}

/// Keyed (per key), global (one row per epoch), or the click-stream case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Group by the record's key.
    #[default]
    Keyed,
    /// One group: the whole epoch.
    Global,
    /// The worked case ([`crate::clickstream`]): clicks from the click
    /// generator (`workload.keys` users, Zipf with `zipf_exponent`, or
    /// uniform) or a click log; per epoch, per user clicks and dwell time
    /// and per page views, into SQLite (`user_stats`, `page_stats`,
    /// `user_totals`). `reductions` and `output_mode` do not apply.
    Clickstream,
}

/// One reduction of the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// Records.
    Count,
    /// Sum of values (wrapping).
    Sum,
    /// Least value.
    Min,
    /// Greatest value.
    Max,
    /// Mean value.
    Mean,
}

/// The `[job]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSpec {
    /// `keyed` (default) or `global`.
    pub kind: JobKind,
    /// Which reductions; default `["count", "sum"]`.
    pub reductions: Vec<Reduction>,
    /// `epoch` (default): each epoch's own rows; `update` / `complete`:
    /// running totals since the start (keyed jobs).
    pub output_mode: OutputModeSpec,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            kind: JobKind::Keyed,
            reductions: vec![Reduction::Count, Reduction::Sum],
            output_mode: OutputModeSpec::Epoch,
        }
    }
}

/// What a keyed job's rows hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputModeSpec {
    /// Each epoch's own aggregates.
    #[default]
    Epoch,
    /// The keys an epoch updated, with their totals since the start.
    Update,
    /// Every key seen so far, with its totals, every epoch.
    Complete,
}

impl JobSpec {
    /// Whether the job asks for `reduction`.
    pub fn wants(&self, reduction: Reduction) -> bool {
        self.reductions.contains(&reduction)
    }
}

/// The `[run]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// The measured time, after the warm-up. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Time run first and left out of every figure. Default `2s`.
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
        }
    }
}

/// Where rows go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Rows are dropped (measures the engine alone).
    #[default]
    None,
    /// One CSV file per epoch.
    Csv,
    /// One JSON-lines file per epoch.
    Jsonl,
    /// Rows into an SQLite table, one transaction per epoch.
    Sqlite,
}

/// The `[output]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSpec {
    /// `none` (default), `csv`, `jsonl` or `sqlite` (also accepted under
    /// the key `sink`).
    #[serde(alias = "sink")]
    pub kind: OutputKind,
    /// The directory of the epoch files (`csv`, `jsonl`; default
    /// `results/output`) or the database file (`sqlite`; default
    /// `results/output.db`).
    pub path: Option<PathBuf>,
    /// The SQLite table. Default `results`.
    pub table: String,
}

impl Default for OutputSpec {
    fn default() -> Self {
        OutputSpec {
            kind: OutputKind::None,
            path: None,
            table: "results".into(),
        }
    }
}

impl OutputSpec {
    /// Where the output goes.
    pub fn path(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(|| match self.kind {
            OutputKind::Sqlite => PathBuf::from("results/output.db"),
            _ => PathBuf::from("results/output"),
        })
    }
}

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file cannot be read.
    #[error("{path}: cannot read the profile: {source}")]
    Read {
        /// The profile.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{path}: not valid TOML: {message}")]
    Syntax {
        /// The profile.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A `--set` override is malformed.
    #[error("--set {assignment}: {reason}")]
    Override {
        /// The override as given.
        assignment: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key is unknown or its value has the wrong type or form.
    #[error("{path}: {key}: {message}")]
    Key {
        /// The profile.
        path: PathBuf,
        /// The dotted key, e.g. `engine.interval`.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

impl Profile {
    /// Reads `path`, applies the `section.key=value` `overrides` in order
    /// and checks every setting.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Profile::parse(path, &text, overrides)
    }

    /// Like [`load`](Profile::load), from the text of the file `path`.
    pub fn parse(path: &Path, text: &str, overrides: &[String]) -> Result<Profile, ProfileError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|error: toml::de::Error| ProfileError::Syntax {
                    path: path.to_owned(),
                    message: error.to_string().trim().replace('\n', " "),
                })?;
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
        }
        let profile: Profile = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|error| ProfileError::Key {
                path: path.to_owned(),
                key: error.path().to_string(),
                message: error.inner().message().trim().to_owned(),
            })?;
        profile
            .check()
            .map_err(|(key, message)| ProfileError::Key {
                path: path.to_owned(),
                key,
                message,
            })?;
        Ok(profile)
    }

    /// Checks the settings serde cannot: ranges and combinations. The
    /// error is the dotted key and what is accepted.
    pub fn check(&self) -> Result<(), (String, String)> {
        self.engine
            .validate()
            .map_err(|error| (format!("engine.{}", error.setting), error.to_string()))?;
        let workload = &self.workload;
        let generator = workload.generator();
        if workload.source == SourceKind::Generator {
            generator
                .validate()
                .map_err(|error| (workload_key(error.setting), error.to_string()))?;
        }
        match (workload.source, &workload.path) {
            (SourceKind::File | SourceKind::Log, None) => {
                return Err((
                    "workload.path".into(),
                    "missing; a `file` source needs a CSV file with the header `key,value`, a `log` source a record log directory".into(),
                ))
            }
            (SourceKind::Generator, Some(_)) => {
                return Err((
                    "workload.path".into(),
                    "set, but the source is `generator`; accepted: a path only with source = \"file\" or \"log\"".into(),
                ))
            }
            _ => {}
        }
        if workload.source == SourceKind::File && workload.rate != Rate::Max {
            return Err((
                "workload.rate".into(),
                format!(
                    "{}, but a `file` source is read at the maximum rate; accepted: \"max\", or write the file into a record log (`microbatch log write`) and replay that at a rate",
                    workload.rate
                ),
            ));
        }
        if workload.source == SourceKind::Log && workload.records.is_some() {
            return Err((
                "workload.records".into(),
                "set, but a `log` source reads the whole log; accepted: no key".into(),
            ));
        }
        if workload.producers > MAX_PRODUCERS {
            return Err((
                "workload.producers".into(),
                format!("{}; accepted: 0..={MAX_PRODUCERS}", workload.producers),
            ));
        }
        if let Some(share) = workload.hot_worker_share {
            if !(share > 0.0 && share <= 1.0) {
                return Err((
                    "workload.hot_worker_share".into(),
                    format!("{share}; accepted: a fraction in (0, 1]"),
                ));
            }
            if workload.producers == 0 {
                return Err((
                    "workload.hot_worker_share".into(),
                    "set, but producers = 0: workers generating their own records claim work from a shared counter and are always even; accepted: with producers >= 1".into(),
                ));
            }
        }
        if workload.records == Some(0) {
            return Err((
                "workload.records".into(),
                "0; accepted: a positive count, or no key for a run bounded by its duration".into(),
            ));
        }
        if self.job.reductions.is_empty() {
            return Err((
                "job.reductions".into(),
                "empty; accepted: one or more of count, sum, min, max, mean".into(),
            ));
        }
        let mut seen = self.job.reductions.clone();
        seen.sort();
        if let Some(pair) = seen.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err((
                "job.reductions".into(),
                format!(
                    "{:?} is listed twice; accepted: each reduction once",
                    pair[0]
                )
                .to_lowercase(),
            ));
        }
        if self.job.kind == JobKind::Global && self.job.output_mode != OutputModeSpec::Epoch {
            return Err((
                "job.output_mode".into(),
                format!(
                    "{:?}, but running totals are kept per key; accepted: \"epoch\" with kind = \"global\", or kind = \"keyed\"",
                    self.job.output_mode
                )
                .to_lowercase(),
            ));
        }
        if self.job.kind == JobKind::Clickstream {
            self.check_clickstream()?;
        }
        if self.run.duration.is_zero() {
            return Err((
                "run.duration".into(),
                "0s; accepted: a positive duration such as `10s`".into(),
            ));
        }
        Ok(())
    }

    /// What a click-stream profile cannot ask for.
    fn check_clickstream(&self) -> Result<(), (String, String)> {
        let workload = &self.workload;
        if workload.source == SourceKind::File {
            return Err((
                "workload.source".into(),
                "\"file\", but the click-stream job reads the click generator or a click log; accepted: \"generator\", or \"log\" (`microbatch log write --schema clickstream`)".into(),
            ));
        }
        if workload.producers > 0 {
            return Err((
                "workload.producers".into(),
                format!(
                    "{}, but the click-stream job reads its clicks in the workers; accepted: 0",
                    workload.producers
                ),
            ));
        }
        if !matches!(self.output.kind, OutputKind::None | OutputKind::Sqlite) {
            return Err((
                "output.kind".into(),
                format!(
                    "{:?}, but the click-stream job writes three SQLite tables; accepted: \"sqlite\" or \"none\"",
                    self.output.kind
                )
                .to_lowercase(),
            ));
        }
        if self.job.output_mode != OutputModeSpec::Epoch {
            return Err((
                "job.output_mode".into(),
                "set, but the click-stream job writes each epoch's rows and keeps the running totals in `user_totals`; accepted: \"epoch\" (the default)".into(),
            ));
        }
        Ok(())
    }

    /// The dotted keys of every setting, with their values, for reports.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|error| format!("# cannot write the profile: {error}"))
    }
}

fn workload_key(setting: &str) -> String {
    match setting {
        "values" => "workload.value_min".into(),
        "distribution" => "workload.zipf_exponent".into(),
        other => format!("workload.{other}"),
    }
}

/// Sets `section.key = value` in `table`. The value is read as a TOML value
/// (`5`, `true`, `"x"`, `[1, 2]`) and otherwise as a bare string, so
/// `engine.interval=1ms` needs no quotes.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ProfileError> {
    let fail = |reason: &str| ProfileError::Override {
        assignment: assignment.to_owned(),
        reason: reason.to_owned(),
    };
    let (key, value) = assignment
        .split_once('=')
        .ok_or_else(|| fail("expected section.key=value, e.g. engine.interval=1ms"))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.len() != 2 || path.iter().any(|part| part.is_empty()) {
        return Err(fail("the key must be section.key, e.g. run.duration"));
    }
    // `output.sink` is another name of `output.kind`: an override of one
    // replaces the other rather than setting the same key twice.
    let path: Vec<&str> = match path.as_slice() {
        ["output", "sink"] => vec!["output", "kind"],
        _ => path,
    };
    let value = value.trim();
    let value = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut parsed| parsed.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let section = table
        .entry(path[0])
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let section = section
        .as_table_mut()
        .ok_or_else(|| fail(&format!("`{}` is not a section", path[0])))?;
    if path == ["output", "kind"] {
        section.remove("sink");
    }
    section.insert(path[1].to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, overrides: &[&str]) -> Result<Profile, ProfileError> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Profile::parse(Path::new("p.toml"), text, &overrides)
    }

    fn error(text: &str, overrides: &[&str]) -> String {
        parse(text, overrides).unwrap_err().to_string()
    }

    #[test]
    fn an_empty_profile_is_all_defaults() {
        let profile = parse("", &[]).unwrap();
        assert_eq!(profile, Profile::default());
        assert_eq!(profile.workload.rate, Rate::Max);
        assert_eq!(profile.run.duration, Duration::from_secs(10));
    }

    #[test]
    fn every_section_reads() {
        let profile = parse(
            r#"
            [engine]
            workers = 2
            interval = "5ms"
            max_batch_records = "off"
            [workload]
            keys = 10
            distribution = "zipf"
            zipf_exponent = 1.2
            rate = 1000
            records = 5000
            producers = 2
            [job]
            kind = "global"
            reductions = ["min", "max", "mean"]
            [run]
            duration = "1s"
            warmup = "0s"
            [output]
            kind = "jsonl"
            path = "out"
            "#,
            &[],
        )
        .unwrap();
        assert_eq!(profile.engine.interval, Some(Duration::from_millis(5)));
        assert_eq!(profile.engine.max_batch_records, None);
        assert_eq!(profile.workload.rate, Rate::PerSecond(1000));
        assert_eq!(
            profile.workload.generator().distribution,
            KeyDistribution::Zipf(1.2)
        );
        assert_eq!(profile.job.kind, JobKind::Global);
        assert_eq!(profile.output.kind, OutputKind::Jsonl);
        assert_eq!(profile.run.warmup, Duration::ZERO);
    }

    #[test]
    fn overrides_win_and_need_no_quotes() {
        let profile = parse(
            "[engine]\ninterval = \"100ms\"\n",
            &[
                "engine.interval=1ms",
                "run.duration=5s",
                "workload.keys=100000",
                "workload.rate=max",
                "job.reductions=[\"count\"]",
                "output.sink=sqlite",
                "engine.work_stealing=false",
                "engine.placement=combined",
                "job.output_mode=update",
            ],
        )
        .unwrap();
        assert!(!profile.engine.work_stealing);
        assert_eq!(
            profile.engine.placement,
            microbatch::PlacementPolicy::Combined
        );
        assert_eq!(profile.job.output_mode, OutputModeSpec::Update);
        assert_eq!(profile.output.kind, OutputKind::Sqlite);
        assert_eq!(profile.output.path(), PathBuf::from("results/output.db"));
        assert_eq!(profile.engine.interval, Some(Duration::from_millis(1)));
        assert_eq!(profile.run.duration, Duration::from_secs(5));
        assert_eq!(profile.workload.keys, 100_000);
        assert_eq!(profile.job.reductions, vec![Reduction::Count]);
    }

    #[test]
    fn a_placement_out_of_the_three_is_refused_naming_them() {
        let message = error("[engine]\nplacement = \"mixed\"\n", &[]);
        assert!(
            message.contains("engine.placement")
                && message.contains("`adaptive`, `partitioned`, `combined`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_keys_name_file_key_and_what_is_accepted() {
        let message = error("[engine]\nintervl = \"1ms\"\n", &[]);
        assert!(
            message.starts_with("p.toml: engine.intervl: unknown field `intervl`"),
            "{message}"
        );
        assert!(message.contains("`interval`"), "{message}");
        let message = error("[engin]\n", &[]);
        assert!(message.contains("unknown field `engin`"), "{message}");
        let message = error("", &["run.durations=1s"]);
        assert!(message.contains("unknown field `durations`"), "{message}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let message = error("[engine]\ninterval = \"fast\"\n", &[]);
        assert!(message.starts_with("p.toml: engine.interval:"), "{message}");
        let message = error("[workload]\nrate = 0\n", &[]);
        assert!(message.starts_with("p.toml: workload.rate:"), "{message}");
        assert!(
            message.contains("\"max\" or records per second"),
            "{message}"
        );
        let message = error("[job]\nreductions = [\"median\"]\n", &[]);
        assert!(
            message.starts_with("p.toml: job.reductions[0]:"),
            "{message}"
        );
        assert!(message.contains("`count`"), "{message}");
        let message = error("[engine]\nworkers = 0\n", &[]);
        assert!(message.starts_with("p.toml: engine.workers:"), "{message}");
        let message = error("[workload]\nvalue_min = 5\nvalue_max = 1\n", &[]);
        assert!(
            message.starts_with("p.toml: workload.value_min:"),
            "{message}"
        );
        let message = error("[workload]\nsource = \"file\"\n", &[]);
        assert!(message.starts_with("p.toml: workload.path:"), "{message}");
        let message = error("[workload]\nsource = \"log\"\n", &[]);
        assert!(message.starts_with("p.toml: workload.path:"), "{message}");
        let message = error(
            "[workload]\nsource = \"file\"\npath = \"a.csv\"\nrate = 5\n",
            &[],
        );
        assert!(
            message.starts_with("p.toml: workload.rate:") && message.contains("record log"),
            "{message}"
        );
        let message = error(
            "[workload]\nsource = \"log\"\npath = \"l\"\nrecords = 5\n",
            &[],
        );
        assert!(
            message.starts_with("p.toml: workload.records:"),
            "{message}"
        );
        let message = error("[job]\nreductions = [\"sum\", \"sum\"]\n", &[]);
        assert!(message.contains("listed twice"), "{message}");
        let message = error("[workload]\nproducers = 2\nhot_worker_share = 1.5\n", &[]);
        assert!(
            message.starts_with("p.toml: workload.hot_worker_share:"),
            "{message}"
        );
        let message = error(
            "[job]\nkind = \"global\"\noutput_mode = \"complete\"\n",
            &[],
        );
        assert!(
            message.starts_with("p.toml: job.output_mode: complete, but running totals"),
            "{message}"
        );
        let message = error("[workload]\nhot_worker_share = 0.5\n", &[]);
        assert!(message.contains("producers >= 1"), "{message}");
        let message = error("[run]\nduration = \"0s\"\n", &[]);
        assert!(message.starts_with("p.toml: run.duration:"), "{message}");
        let message = error("[workload]\nkeys = 0\n", &[]);
        assert!(message.starts_with("p.toml: workload.keys:"), "{message}");
    }

    #[test]
    fn bad_syntax_and_bad_overrides_are_refused() {
        assert!(error("[engine\n", &[]).starts_with("p.toml: not valid TOML"));
        assert!(error("", &["engine.interval"]).contains("expected section.key=value"));
        assert!(error("", &["interval=1ms"]).contains("section.key"));
        assert!(error("engine = 3\n", &["engine.workers=1"]).contains("not a section"));
    }

    #[test]
    fn a_profile_writes_back_to_itself() {
        let mut profile = Profile::default();
        profile.workload.rate = Rate::PerSecond(500);
        profile.engine.interval = None;
        let again = parse(&profile.to_toml(), &[]).unwrap();
        assert_eq!(again, profile);
    }
}
