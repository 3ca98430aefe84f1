//! The checks of a profile that reads or writes Kafka: the `[workload]`
//! Kafka keys with the job they feed, and `output.kind = "kafka"`
//! (`Profile::check` calls them).

use super::schema::{
    BadLines, JobKind, OutputKind, OutputModeSpec, Profile, Schema, SourceKind, WindowKind,
};
use crate::jobs::case::no_producers;

impl Profile {
    /// A Kafka source's keys, and a Kafka output's.
    pub(super) fn check_kafka(&self) -> Result<(), (String, String)> {
        let workload = &self.workload;
        let fail = |key: &str, message: String| Err((key.to_owned(), message));
        if self.output.url.is_some() && self.output.kind != OutputKind::Postgres {
            return fail(
                "output.url",
                "set, but the output is not PostgreSQL; accepted: output.kind = \"postgres\" with it, or no key".into(),
            );
        }
        if workload.source != SourceKind::Kafka {
            if workload.topic.is_some() {
                return fail(
                    "workload.topic",
                    "set, but the source is not Kafka; accepted: workload.source = \"kafka\" with it, or no key".into(),
                );
            }
            if self.output.kind == OutputKind::Postgres {
                return fail(
                    "output.kind",
                    "\"postgres\", but the PostgreSQL sink is the shared sink of a Kafka consumer group; accepted: workload.source = \"kafka\", or another output".into(),
                );
            }
            if self.output.kind == OutputKind::Kafka {
                return fail(
                    "output.kind",
                    "\"kafka\", but the Kafka sink commits a Kafka source's offsets with each epoch; accepted: workload.source = \"kafka\", or another output".into(),
                );
            }
            return Ok(());
        }
        if workload.topic.as_deref().is_none_or(str::is_empty) {
            return fail(
                "workload.topic",
                "missing; a Kafka source reads one topic".into(),
            );
        }
        if workload.brokers.trim().is_empty() {
            return fail(
                "workload.brokers",
                "empty; accepted: host:port[,host:port…]".into(),
            );
        }
        if workload.records.is_some() {
            return fail(
                "workload.records",
                "set, but a Kafka source reads what the topic holds; accepted: no key, and workload.stop_at_end = true to end at the topic's end".into(),
            );
        }
        no_producers(self, "a Kafka topic is read by the engine's workers")?;
        let wanted = match (self.job.kind, self.job.window) {
            (JobKind::Clickstream, _) => Schema::Clickstream,
            (JobKind::Nexmark, _) => {
                return fail(
                    "workload.source",
                    "\"kafka\", but the Nexmark job reads the Nexmark generator or a Nexmark log; accepted: \"nexmark\" or \"log\"".into(),
                )
            }
            (_, WindowKind::None) => Schema::Event,
            _ => Schema::Timed,
        };
        if workload.schema != wanted {
            return fail(
                "workload.schema",
                format!(
                    "\"{}\", but this job reads {} records; accepted: \"{}\"",
                    workload.schema.name(),
                    wanted.name(),
                    wanted.name()
                ),
            );
        }
        if workload.bad_lines == BadLines::Skip && self.engine.dead_letters.is_none() {
            return fail(
                "workload.bad_lines",
                "\"skip\", but there is no file for the skipped messages; accepted: set engine.dead_letters, or \"stop\"".into(),
            );
        }
        match self.output.kind {
            OutputKind::None | OutputKind::Sqlite => Ok(()),
            OutputKind::Postgres => {
                if self.output.url.as_deref().is_none_or(|url| url.trim().is_empty()) {
                    return fail(
                        "output.url",
                        "missing; accepted: postgresql://user@host:port/database".into(),
                    );
                }
                let per_epoch = self.job.window == WindowKind::None
                    && self.job.output_mode == OutputModeSpec::Epoch;
                if self.job.kind != JobKind::Keyed || !per_epoch {
                    return fail(
                        "output.kind",
                        "\"postgres\", but the group's PostgreSQL sink takes each partition's per-epoch rows of a keyed job (running totals and windows across instances are not built yet); accepted: job.kind = \"keyed\" with job.output_mode = \"epoch\" and no window".into(),
                    );
                }
                Ok(())
            }
            OutputKind::Csv | OutputKind::Jsonl => fail(
                "output.kind",
                format!(
                    "{:?}, but a Kafka run commits the topic's offsets with its output, which files cannot hold; accepted: \"sqlite\", \"kafka\", \"postgres\" or \"none\"",
                    self.output.kind
                )
                .to_lowercase(),
            ),
            OutputKind::Kafka => {
                if self.output.topic.as_deref().is_none_or(str::is_empty) {
                    return fail("output.topic", "missing; the Kafka output writes one topic".into());
                }
                if self.job.window != WindowKind::None || self.job.output_mode != OutputModeSpec::Epoch {
                    return fail(
                        "output.kind",
                        "\"kafka\", but the job keeps running totals or open windows, which the Kafka sink cannot commit with its epochs (yet); accepted: job.output_mode = \"epoch\" without a window, or output.kind = \"sqlite\", whose database holds them".into(),
                    );
                }
                Ok(())
            }
        }
    }
}
