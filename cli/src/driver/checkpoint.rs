//! `--checkpoint DIR`: which profiles can be replayed, how their log is
//! cut into epochs, and refusing an output that holds another run's epochs;
//! and a run resumed from its output instead (a Kafka source).

use std::path::Path;

use microbatch::checkpoint::Checkpoint;
use microbatch::sink::sqlite::EpochDatabase;

use super::error::RunError;
use super::feed::Feed;
use super::Runner;
use crate::profile::schema::{JobKind, JobSpec, Profile, SourceKind};

/// Opens `profile`'s checkpoint directory `dir`. Only a record log read
/// by the engine itself (`workload.source = "log"`, no producer threads)
/// can be replayed. The log is cut into epochs by position: replayed at a
/// rate, the records an interval holds (`workload.rate` ×
/// `engine.interval`, at most `engine.max_batch_records`), as when live;
/// at the maximum rate or without an interval, `engine.max_batch_records`
/// records. The interval itself is then not used.
pub fn open_checkpoint(profile: &Profile, dir: &Path) -> Result<Checkpoint, RunError> {
    let workload = &profile.workload;
    let refuse = |message: &str| Err(RunError::CheckpointSetting(message.into()));
    if workload.source == SourceKind::Kafka {
        return refuse(
            "a Kafka run resumes from its output, which commits the topic's offsets with each \
             epoch (the SQLite database, or the Kafka group); run it again without --checkpoint",
        );
    }
    if profile.engine.target_latency.is_some() {
        return refuse(
            "engine.interval = \"auto\" adapts the epochs to latency, but a checkpointed run \
             cuts them by log position: give a fixed engine.interval",
        );
    }
    if workload.source != SourceKind::Log {
        return refuse(
            "only a record log can be replayed: set workload.source = \"log\" and workload.path",
        );
    }
    if workload.producers > 0 {
        return refuse(
            "producer threads' records cannot be replayed: set workload.producers = 0 \
             (the engine reads the log itself)",
        );
    }
    let per_epoch = match (
        workload.rate.per_second(),
        profile.engine.interval,
        profile.engine.max_batch_records,
    ) {
        // What an interval holds at the replay rate, as when live.
        (Some(rate), Some(interval), cap) => ((rate as f64 * interval.as_secs_f64()).ceil() as u64)
            .clamp(1, cap.unwrap_or(u64::MAX).max(1)),
        (_, _, Some(records)) => records,
        _ => {
            return refuse(
                "a checkpointed run cuts the log into epochs by position: set \
                 workload.rate with engine.interval (an epoch is then rate × interval \
                 records), or engine.max_batch_records",
            )
        }
    };
    Ok(Checkpoint::open(dir, per_epoch)?.bind_settings(bound_settings(profile))?)
}

/// What a resumed run must share with the runs before it, beyond the plan
/// and the log: the job and where its results go. Bound into the
/// checkpoint by its first run.
fn bound_settings(profile: &Profile) -> String {
    if !profile.queries.is_empty() {
        // Each query: its job, its epoch and where its rows go.
        let base = profile.engine.interval;
        let queries: Vec<String> = profile
            .queries
            .iter()
            .map(|query| {
                let path = query.output_path();
                let path = std::path::absolute(&path).unwrap_or(path);
                format!(
                    "{}: {}, every {}, max_batch_records {:?}, key_buckets {:?}, output {:?} {}",
                    query.name,
                    job_settings(&query.job),
                    query.every(base),
                    query.max_batch_records,
                    query.key_buckets,
                    query.output.kind,
                    path.display()
                )
            })
            .collect();
        return format!("queries: {}", queries.join("; ")).to_lowercase();
    }
    let output = &profile.output;
    let path = std::path::absolute(output.path()).unwrap_or_else(|_| output.path());
    format!(
        "job: {}; output: kind {:?}, path {}, table {}",
        job_settings(&profile.job),
        output.kind,
        path.display(),
        output.table
    )
    .to_lowercase()
}

/// A job's settings that change its rows.
fn job_settings(job: &JobSpec) -> String {
    let query = match job.kind {
        JobKind::Nexmark => format!(", query {}", job.query.name()),
        _ => String::new(),
    };
    format!(
        "kind {:?}{query}, reductions {:?}, output_mode {:?}",
        job.kind, job.reductions, job.output_mode,
    )
}

/// Opens `--checkpoint DIR`, if given.
pub(crate) fn checkpoint_of(runner: &Runner<'_>) -> Result<Option<Checkpoint>, RunError> {
    match &runner.files.checkpoint {
        Some(dir) => Ok(Some(open_checkpoint(runner.profile, dir)?)),
        None => Ok(None),
    }
}

/// What a checkpoint says an output holds: the last epoch it committed
/// there (the run's, or under several queries the query's own), the
/// latest epoch the output may hold beyond it (the next one it commits:
/// a crash between the output's commit and the checkpoint's), and the
/// checkpoint's directory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommittedBy<'a> {
    pub(crate) last: Option<u64>,
    pub(crate) may_hold: u64,
    pub(crate) dir: &'a Path,
}

impl<'a> CommittedBy<'a> {
    /// What the run's checkpoint committed.
    pub(crate) fn run(checkpoint: &'a Checkpoint) -> Self {
        CommittedBy {
            last: checkpoint.last_committed(),
            may_hold: checkpoint.next_epoch(),
            dir: checkpoint.dir(),
        }
    }

    /// What `checkpoint` says query `name`, whose epoch is `every` of the
    /// engine's (`None`: its own count trigger ends it), committed.
    pub(crate) fn query(
        checkpoint: &'a Checkpoint,
        name: &str,
        every: Option<u64>,
    ) -> Result<Self, RunError> {
        let last = checkpoint.query_commits().last(name)?;
        let next = last.map_or(0, |last| last + 1);
        // The query's next epoch ends at the first engine epoch `e` from
        // `next` on with `(e + 1) % every == 0`; a count-triggered one's
        // wherever its records reach the count, which no file says.
        let may_hold = match every {
            Some(every) => {
                let every = every.max(1);
                (next + 1).div_ceil(every) * every - 1
            }
            None => u64::MAX,
        };
        Ok(CommittedBy {
            last,
            may_hold,
            dir: checkpoint.dir(),
        })
    }
}

/// Refuses an output place (`place` at `path`) holding epochs of another
/// run, or missing epochs its checkpoint committed. A run starts at epoch
/// 0, or after its checkpoint's last commit (the sink may be one epoch
/// ahead: a crash between the two commits); a place holding later epochs
/// belongs to another run, whose epochs would silently be kept, and a
/// place holding fewer than the checkpoint committed was deleted or
/// replaced, and would silently miss them.
pub(crate) fn refuse_another_run(
    checkpoint: Option<CommittedBy<'_>>,
    committed: &[u64],
    place: &str,
    path: &Path,
) -> Result<(), RunError> {
    let may_hold = checkpoint.map_or(0, |by| by.may_hold);
    match committed.last() {
        Some(&last) if last > may_hold || checkpoint.is_none() => Err(RunError::Output {
            what: path.display().to_string(),
            message: format!(
                "{place} already holds {} committed epochs (up to {last}) of another run; \
                 write somewhere else (--set output.path=… or output.table=…), \
                 or resume that run with its --checkpoint DIR",
                committed.len()
            ),
        }),
        _ => match checkpoint.and_then(|by| by.last.map(|last| (last, by.dir))) {
            Some((committed_by_checkpoint, dir))
                if committed.last().is_none_or(|&last| last < committed_by_checkpoint) =>
            {
                Err(RunError::Output {
                    what: path.display().to_string(),
                    message: format!(
                        "{place} holds {} but checkpoint {} committed epochs up to {committed_by_checkpoint}: \
                         the output was deleted or replaced; restore it, or start a new checkpoint directory",
                        committed
                            .last()
                            .map_or("no committed epoch".to_owned(), |last| format!(
                                "committed epochs up to {last}"
                            )),
                        dir.display(),
                    ),
                })
            }
            _ => Ok(()),
        },
    }
}

/// Starts `feed` where `database` (at `path`), which commits the feed's
/// positions with its epochs, says the run resumes: after its last epoch,
/// each partition at its stored position. A database with epochs but no
/// positions of the feed's topic was written by another run, from another
/// source, and is refused.
pub(crate) fn resume_from_database<R, F: Feed<R>>(
    feed: &mut F,
    database: &EpochDatabase,
    path: &Path,
) -> Result<(), RunError> {
    let fail = |message: String| RunError::Output {
        what: path.display().to_string(),
        message,
    };
    let topic = feed
        .kafka()
        .map(|(_, topic)| topic.to_owned())
        .unwrap_or_default();
    let resumption = database.resumption().map_err(|e| fail(e.to_string()))?;
    let stored = database
        .stored_positions(&topic)
        .map_err(|e| fail(e.to_string()))?;
    if resumption.next_epoch > 0 && stored.is_empty() {
        return Err(fail(format!(
            "holds {} committed epochs but no positions of topic `{topic}`: another run wrote them; \
             write somewhere else (--set output.path=…)",
            resumption.next_epoch
        )));
    }
    feed.resume(resumption, &stored)
}
