//! `[[queries]]`: several queries over one input instead of `[job]`, each
//! with `name`, the `[job]` keys, `interval`, `max_batch_records`,
//! `priority`, `key_buckets` and an optional `[queries.output]`; and
//! `[scheduler]`, the order an owner runs their work in.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::schema::{
    JobKind, JobSpec, LatePolicy, OutputKind, OutputSpec, Profile, QueryProfile, SourceKind,
    WindowKind,
};

/// The keys of a query table that are not `[job]` keys.
const QUERY_KEYS: &[&str] = &[
    "name",
    "priority",
    "interval",
    "max_batch_records",
    "key_buckets",
    "output",
];

/// A query table's own keys, read by serde.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryKeys {
    name: String,
    #[serde(default)]
    priority: i64,
    #[serde(default, with = "humantime_serde")]
    interval: Option<Duration>,
    #[serde(default)]
    max_batch_records: Option<u64>,
    #[serde(default)]
    key_buckets: Option<u64>,
    #[serde(default)]
    output: OutputSpec,
}

/// Takes the `[[queries]]` tables out of `table` and reads each; the
/// error is the dotted key (`queries[i].key`) and what is wrong.
pub(super) fn take_queries(table: &mut toml::Table) -> Result<Vec<QueryProfile>, (String, String)> {
    let Some(queries) = table.remove("queries") else {
        return Ok(Vec::new());
    };
    if table.contains_key("job") {
        return Err((
            "queries".into(),
            "give either [job] (one query) or [[queries]], not both".into(),
        ));
    }
    let toml::Value::Array(queries) = queries else {
        return Err(("queries".into(), "an array of tables: [[queries]]".into()));
    };
    queries
        .into_iter()
        .enumerate()
        .map(|(i, query)| read_query(i, query))
        .collect()
}

fn read_query(i: usize, query: toml::Value) -> Result<QueryProfile, (String, String)> {
    let toml::Value::Table(mut job) = query else {
        return Err((format!("queries[{i}]"), "a table: [[queries]]".into()));
    };
    let mut own = toml::Table::new();
    for key in QUERY_KEYS {
        if let Some(value) = job.remove(*key) {
            own.insert((*key).to_owned(), value);
        }
    }
    let keys: QueryKeys = read(i, own)?;
    let job: JobSpec = read(i, job)?;
    Ok(QueryProfile {
        name: keys.name,
        job,
        interval: keys.interval,
        max_batch_records: keys.max_batch_records,
        priority: keys.priority,
        key_buckets: keys.key_buckets,
        output: keys.output,
    })
}

/// `table` read as a `T`, a bad key named under `queries[i]`.
fn read<T: serde::de::DeserializeOwned>(
    i: usize,
    table: toml::Table,
) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
        let key = error.path().to_string();
        let key = if key == "." || key.is_empty() {
            format!("queries[{i}]")
        } else {
            format!("queries[{i}].{key}")
        };
        (key, error.inner().message().trim().to_owned())
    })
}

/// The queries as TOML tables, for [`Profile::to_toml`].
pub(super) fn queries_toml(queries: &[QueryProfile]) -> Result<toml::Value, toml::ser::Error> {
    let tables = queries
        .iter()
        .map(|query| {
            let mut table = toml::Table::try_from(&query.job)?;
            let own = toml::Table::try_from(query)?;
            for (key, value) in own {
                if key != "job" {
                    table.insert(key, value);
                }
            }
            Ok(toml::Value::Table(table))
        })
        .collect::<Result<Vec<_>, toml::ser::Error>>()?;
    Ok(toml::Value::Array(tables))
}

impl QueryProfile {
    /// The query's epoch in engine epochs, given the engine's interval.
    pub fn every(&self, engine: Option<Duration>) -> u64 {
        match (self.interval, engine) {
            (Some(own), Some(base)) if !base.is_zero() => (own.as_nanos() / base.as_nanos()) as u64,
            _ => 1,
        }
    }

    /// Where its rows go: `output.path`, or `results/<name>`.
    pub fn output_path(&self) -> PathBuf {
        self.output
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("results").join(&self.name))
    }
}

impl Profile {
    /// The checks of `[[queries]]` serde cannot make.
    pub(super) fn check_queries(&self) -> Result<(), (String, String)> {
        if self.queries.is_empty() {
            return Ok(());
        }
        let fail =
            |i: usize, key: &str, message: String| Err((format!("queries[{i}].{key}"), message));
        match self.workload.source {
            SourceKind::Generator | SourceKind::File | SourceKind::Log => {}
            other => {
                return Err((
                    "workload.source".into(),
                    format!(
                        "{other:?} does not feed [[queries]] yet; accepted: generator, file, log"
                    ),
                ))
            }
        }
        if self.engine.target_latency.is_some() {
            return Err((
                "engine.interval".into(),
                "\"auto\" does not go with [[queries]]: each query's interval is a multiple of a fixed one".into(),
            ));
        }
        if self.scheduler.piece == 0 {
            return Err((
                "scheduler.piece".into(),
                "0; accepted: at least 1 entry per piece".into(),
            ));
        }
        let base = self.engine.interval;
        let windowed = self
            .queries
            .iter()
            .any(|q| q.job.window != WindowKind::None);
        for (i, query) in self.queries.iter().enumerate() {
            if query.job.late == LatePolicy::DeadLetters {
                return fail(
                    i,
                    "late",
                    "\"dead_letters\" is not in queries yet (expired rows would need a \
                     dead-letter file per query): \"drop\""
                        .into(),
                );
            }
            // The `[job]` checks, on the query's job keys.
            let mut alone = self.clone();
            alone.job = query.job.clone();
            alone.queries.clear();
            if query.job.window == WindowKind::None && windowed {
                // Timed records, for the windowed queries beside it: their
                // event times mean nothing to this one.
                alone.workload.disorder = Duration::ZERO;
            }
            alone.check().map_err(|(key, message)| {
                let key = key.replace("job.", &format!("queries[{i}]."));
                (key, message)
            })?;
            if query.name.trim().is_empty() {
                return fail(i, "name", "a name, for the reports".into());
            }
            if self.queries[..i]
                .iter()
                .any(|other| other.name == query.name)
            {
                return fail(
                    i,
                    "name",
                    format!("{:?} is taken by an earlier query", query.name),
                );
            }
            if !matches!(query.job.kind, JobKind::Keyed | JobKind::Global) {
                return fail(i, "kind", "a query is `keyed` or `global`".into());
            }
            match (query.max_batch_records, query.interval) {
                (Some(0), _) => return fail(i, "max_batch_records", "at least 1".into()),
                (Some(_), Some(_)) => {
                    return fail(
                        i,
                        "max_batch_records",
                        "a query's epoch is its interval or its count trigger, not both".into(),
                    )
                }
                _ => {}
            }
            if query.key_buckets == Some(0) {
                return fail(i, "key_buckets", "at least 1".into());
            }
            if let Some(own) = query.interval {
                let whole = base.is_some_and(|base| {
                    !base.is_zero() && !own.is_zero() && own.as_nanos() % base.as_nanos() == 0
                });
                if !whole {
                    return fail(
                        i,
                        "interval",
                        format!("{own:?} is not a whole multiple of engine.interval ({base:?})"),
                    );
                }
            }
            match query.output.kind {
                OutputKind::None | OutputKind::Csv | OutputKind::Jsonl => {}
                other => {
                    return fail(
                        i,
                        "output.kind",
                        format!(
                            "{other:?} is not a query's output yet; accepted: none, csv, jsonl"
                        ),
                    )
                }
            }
            let writes = |q: &QueryProfile| q.output.kind != OutputKind::None;
            if writes(query)
                && self.queries[..i]
                    .iter()
                    .any(|other| writes(other) && other.output_path() == query.output_path())
            {
                return fail(i, "output.path", "another query writes there too".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::PolicySpec;
    use std::path::Path;

    #[test]
    fn queries_read_and_write_back_to_themselves() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../profiles/two-queries.toml"
        ));
        let text = std::fs::read_to_string(path).unwrap();
        let profile = Profile::parse(path, &text, &[]).unwrap();
        assert_eq!(profile.queries.len(), 2);
        let (alerts, dashboard) = (&profile.queries[0], &profile.queries[1]);
        assert_eq!(
            (alerts.name.as_str(), alerts.priority, alerts.key_buckets),
            ("alerts", 10, Some(1000))
        );
        assert_eq!(dashboard.every(profile.engine.interval), 100);
        assert_eq!(alerts.every(profile.engine.interval), 1);
        assert_eq!(profile.scheduler.policy, PolicySpec::Priority);
        let again = Profile::parse(path, &profile.to_toml(), &[]).unwrap();
        assert_eq!(again, profile);
        let fifo = Profile::parse(path, &text, &["scheduler.policy=fifo".into()]).unwrap();
        assert_eq!(
            fifo.scheduler.policy.policy(),
            microbatch::queries::SchedulerPolicy::Fifo
        );
    }
}
