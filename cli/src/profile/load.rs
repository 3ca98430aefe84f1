//! Reading a profile: TOML text, `--set` overrides, serde with the dotted
//! key of a bad value, then the checks serde cannot make (ranges,
//! combinations, and what the chosen job cannot run with).

use std::path::Path;

use super::queries::{queries_toml, take_queries};
use super::schema::{
    JobKind, OutputModeSpec, Profile, Rate, SourceKind, WindowKind, MAX_PRODUCERS,
};
use super::ProfileError;

/// The largest profile read: a profile is a short TOML file, and a path
/// to something else (a device, a huge file) is refused rather than read.
const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// The longest warm-up and measured duration a profile may ask for.
const MAX_RUN: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);
use crate::jobs::case_of;

impl Profile {
    /// Reads `path`, applies the `section.key=value` `overrides` in order
    /// and checks every setting.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Profile, ProfileError> {
        let read = |source| ProfileError::Read {
            path: path.to_owned(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(read)?;
        if !metadata.is_file() {
            return Err(ProfileError::NotAProfile {
                path: path.to_owned(),
                reason: "not a regular file".into(),
            });
        }
        if metadata.len() > MAX_PROFILE_BYTES {
            return Err(ProfileError::NotAProfile {
                path: path.to_owned(),
                reason: format!(
                    "{} bytes; a profile is a TOML file of at most {MAX_PROFILE_BYTES} bytes",
                    metadata.len()
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(read)?;
        let text = String::from_utf8(bytes).map_err(|error| ProfileError::NotAProfile {
            path: path.to_owned(),
            reason: format!("not UTF-8 text ({error})"),
        })?;
        Profile::parse(path, &text, overrides)
    }

    /// Like [`load`](Profile::load), from the text of the file `path`.
    pub fn parse(path: &Path, text: &str, overrides: &[String]) -> Result<Profile, ProfileError> {
        // A byte-order mark some editors write is not part of the TOML.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut table: toml::Table =
            text.parse()
                .map_err(|error: toml::de::Error| ProfileError::Syntax {
                    path: path.to_owned(),
                    message: error.to_string().trim().replace('\n', " "),
                })?;
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
        }
        let auto = take_auto_interval(&mut table);
        let queries = take_queries(&mut table).map_err(|(key, message)| ProfileError::Key {
            path: path.to_owned(),
            key,
            message,
        })?;
        let mut profile: Profile = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|error| {
                let key = error.path().to_string();
                let message = error.inner().message().trim().to_owned();
                let message = if key == "output" && message.contains("duplicate field `kind`") {
                    "both `kind` and `sink` are given; they are two names of one setting: give one"
                        .to_owned()
                } else if key == "engine.interval" {
                    format!("{message}; or \"{AUTO}\" with engine.target_latency")
                } else {
                    message
                };
                ProfileError::Key {
                    path: path.to_owned(),
                    key,
                    message,
                }
            })?;
        profile.queries = queries;
        adapt_interval(&mut profile, auto).map_err(|(key, message)| ProfileError::Key {
            path: path.to_owned(),
            key,
            message,
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

    /// The engine's settings: `[engine]`, less `engine.dead_letters` when
    /// that file takes only a windowed job's late records
    /// (`job.late = "dead_letters"`) and not records that panic.
    pub fn engine_config(&self) -> microbatch::Config {
        let mut config = self.engine.clone();
        if config.on_panic != microbatch::OnPanic::DeadLetters {
            config.dead_letters = None;
        }
        config
    }

    /// The file a windowed job's late records go to, under
    /// `job.late = "dead_letters"`.
    pub fn late_letters(&self) -> Option<&std::path::Path> {
        let late = self.job.late == super::schema::LatePolicy::DeadLetters;
        self.engine.dead_letters.as_deref().filter(|_| late)
    }

    /// Checks the settings serde cannot: ranges and combinations. The
    /// error is the dotted key and what is accepted.
    pub fn check(&self) -> Result<(), (String, String)> {
        self.engine_config()
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
            (SourceKind::Generator | SourceKind::Nexmark, Some(_)) => {
                return Err((
                    "workload.path".into(),
                    "set, but the source generates its records; accepted: a path only with source = \"file\" or \"log\"".into(),
                ))
            }
            (SourceKind::Kafka, Some(_)) => {
                return Err((
                    "workload.path".into(),
                    "set, but a Kafka source reads workload.topic; accepted: a path only with source = \"file\" or \"log\"".into(),
                ))
            }
            _ => {}
        }
        if workload.source == SourceKind::Nexmark && self.job.kind != JobKind::Nexmark {
            return Err((
                "workload.source".into(),
                "\"nexmark\", but the Nexmark generator's events feed job.kind = \"nexmark\" only; accepted: \"generator\", \"file\" or \"log\"".into(),
            ));
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
        // A windowed job's modes are the windows' (profile/windows.rs).
        if self.job.kind == JobKind::Global
            && self.job.window == WindowKind::None
            && self.job.output_mode != OutputModeSpec::Epoch
        {
            return Err((
                "job.output_mode".into(),
                format!(
                    "{:?}, but running totals are kept per key; accepted: \"epoch\" with kind = \"global\", or kind = \"keyed\"",
                    self.job.output_mode
                )
                .to_lowercase(),
            ));
        }
        if self.queries.is_empty() {
            // Queries: each query's window keys, in `check_queries`.
            self.check_window()?;
        }
        self.check_kafka()?;
        self.check_queries()?;
        // What the job itself cannot run with: its registered case says.
        case_of(self.job.kind).check(self)?;
        for (key, value) in [
            ("run.warmup", self.run.warmup),
            ("run.duration", self.run.duration),
        ] {
            if value > MAX_RUN {
                return Err((
                    key.into(),
                    format!(
                        "{}; accepted: at most 366 days",
                        humantime::format_duration(value)
                    ),
                ));
            }
        }
        if self.run.duration.is_zero() {
            return Err((
                "run.duration".into(),
                "0s; accepted: a positive duration such as `10s`".into(),
            ));
        }
        Ok(())
    }

    /// The dotted keys of every setting, with their values, for reports;
    /// read back, it is the same profile (`engine.interval = "auto"` under
    /// a latency target).
    pub fn to_toml(&self) -> String {
        let written = if self.engine.target_latency.is_some() || !self.queries.is_empty() {
            // Through a table (its keys sorted) to put the word and the
            // queries back.
            toml::Table::try_from(self).and_then(|mut table| {
                if let Some(toml::Value::Table(engine)) = table.get_mut("engine") {
                    if self.engine.target_latency.is_some() {
                        engine.insert("interval".into(), AUTO.into());
                    }
                }
                if !self.queries.is_empty() {
                    table.remove("job");
                    table.insert("queries".into(), queries_toml(&self.queries)?);
                }
                toml::to_string(&table)
            })
        } else {
            toml::to_string(self)
        };
        written.unwrap_or_else(|error| format!("# cannot write the profile: {error}"))
    }
}

/// `engine.interval`'s word for the adaptive interval.
const AUTO: &str = "auto";

/// Takes `engine.interval = "auto"` out of the table (the engine's own
/// settings know a duration or "off"); whether it was there.
fn take_auto_interval(table: &mut toml::Table) -> bool {
    let Some(toml::Value::Table(engine)) = table.get_mut("engine") else {
        return false;
    };
    let auto = engine
        .get("interval")
        .and_then(toml::Value::as_str)
        .is_some_and(|word| word.trim() == AUTO);
    if auto {
        engine.remove("interval");
    }
    auto
}

/// `engine.interval = "auto"` and `engine.target_latency` go together:
/// the adaptive interval starts at half the target.
fn adapt_interval(profile: &mut Profile, auto: bool) -> Result<(), (String, String)> {
    match (auto, profile.engine.target_latency) {
        (true, Some(target)) => {
            profile.engine.interval = Some(target / 2);
            Ok(())
        }
        (true, None) => Err((
            "engine.interval".into(),
            "\"auto\" needs engine.target_latency, the record latency p99 to adapt to \
             (e.g. \"50ms\")"
                .into(),
        )),
        (false, Some(_)) => Err((
            "engine.target_latency".into(),
            "is read only with engine.interval = \"auto\": a fixed interval does not adapt".into(),
        )),
        (false, None) => Ok(()),
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
    use std::path::PathBuf;
    use std::time::Duration;

    use microbatch::source::KeyDistribution;

    use super::super::schema::*;
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
        assert!(
            message.contains("\"auto\" with engine.target_latency"),
            "{message}"
        );
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
    fn an_auto_interval_needs_a_target_and_writes_back_as_auto() {
        let text = "[engine]\ninterval = \"auto\"\ntarget_latency = \"20ms\"\n";
        let profile = parse(text, &[]).unwrap();
        assert_eq!(
            profile.engine.target_latency,
            Some(Duration::from_millis(20))
        );
        assert_eq!(profile.engine.interval, Some(Duration::from_millis(10)));
        let again = parse(&profile.to_toml(), &[]).unwrap();
        assert_eq!(again.engine, profile.engine);
        assert!(profile.to_toml().contains("interval = \"auto\""));
        let set = parse("", &["engine.interval=auto", "engine.target_latency=50ms"]).unwrap();
        assert_eq!(set.engine.target_latency, Some(Duration::from_millis(50)));
        let message = error("[engine]\ninterval = \"auto\"\n", &[]);
        assert!(message.starts_with("p.toml: engine.interval:"), "{message}");
        assert!(message.contains("target_latency"), "{message}");
        let message = error("[engine]\ntarget_latency = \"20ms\"\n", &[]);
        assert!(
            message.starts_with("p.toml: engine.target_latency:"),
            "{message}"
        );
        let message = error(
            "[engine]\ninterval = \"auto\"\ntarget_latency = \"1ms\"\n",
            &[],
        );
        assert!(
            message.starts_with("p.toml: engine.target_latency:"),
            "{message}"
        );
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
