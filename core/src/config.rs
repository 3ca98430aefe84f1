//! Engine settings: the struct a builder fills and a profile deserializes
//! into, and the checks that turn a bad setting into a [`ConfigError`]
//! naming it and the accepted range.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most workers per core the machine has: beyond it workers only take
/// turns, and the shuffle's W×W rings grow for nothing.
pub const MAX_WORKERS_PER_CORE: usize = 4;

/// The most workers an engine runs: the mesh holds W×W rings.
pub const MAX_WORKERS: usize = 1024;
/// The largest ring a producer or mesh pair gets, in records.
pub const MAX_RING_CAPACITY: usize = 1 << 30;
/// The widest in-flight window, in epochs.
pub const MAX_EPOCHS_IN_FLIGHT: usize = 1024;
/// The smallest interval the adaptive interval chooses
/// ([`Config::target_latency`]).
pub const MIN_AUTO_INTERVAL: Duration = Duration::from_millis(1);

/// How an engine thread waits when it has nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleStrategy {
    /// Spin, then yield, then sleep at most 50 µs at a time: gives the core
    /// away on a machine with fewer cores than threads; wakes within 50 µs
    /// (later if the machine is busy). A worker does not sleep in the last
    /// tenth of its epoch's interval (at most 1 ms) nor while the parts of
    /// an epoch it owns are coming in, so that a late wake-up does not
    /// delay a result.
    #[default]
    Backoff,
    /// Spin, then yield, never sleep: the lowest wake-up delay, at the price
    /// of a core per idle worker.
    Yield,
}

/// How workers place the records of a batch in their parts; see
/// [`Placement`](crate::job::Placement). Results are the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlacementPolicy {
    /// Each worker chooses per batch: combined while its fold is what holds
    /// it back (it waited for at most half of its last batch's time)
    /// and its batches have enough records per key, partitioned otherwise;
    /// see [`Placement`](crate::job::Placement).
    #[default]
    Adaptive,
    /// Always partitioned: the shortest path from seal to result.
    Partitioned,
    /// Always combined: the fastest fold of batches with many records per
    /// key.
    Combined,
}

impl std::fmt::Display for PlacementPolicy {
    /// The name a profile gives it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlacementPolicy::Adaptive => "adaptive",
            PlacementPolicy::Partitioned => "partitioned",
            PlacementPolicy::Combined => "combined",
        })
    }
}

/// The engine's settings.
///
/// A profile's `[engine]` table deserializes into this struct: unknown keys
/// are an error, absent keys take the defaults below. `interval` is a
/// duration string (`"100ms"`, `"1s"`) or `"off"`; `max_batch_records` is a
/// count or `"off"`. With both off the engine is a batch system: one epoch,
/// sealed at shutdown.
///
/// ```
/// use std::time::Duration;
/// let config = microbatch::Config::default()
///     .with_workers(2)
///     .with_interval(Some(Duration::from_millis(10)));
/// config.validate()?;
/// # Ok::<(), microbatch::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// Worker threads. Default: the cores this process may run on.
    pub workers: usize,
    /// Pin worker `i` to the `i`-th available core. If pinning fails or
    /// there are fewer cores than workers, the engine runs unpinned and says
    /// so in its progress. Default: on.
    pub pin: bool,
    /// Seal an epoch once this much time has passed since it opened.
    /// Default: 100 ms; `None` (`"off"`): no time trigger.
    #[serde(with = "off_or_duration")]
    pub interval: Option<Duration>,
    /// Seal an epoch once one worker's open batch holds this many records.
    /// Default: 1 M; `None` (`"off"`): no count trigger.
    #[serde(with = "off_or_count")]
    pub max_batch_records: Option<u64>,
    /// Adapt the interval, epoch by epoch, to the largest that keeps the
    /// record latency p99 within this target: the adaptive interval (the
    /// CLI's `interval = "auto"`). `interval` is where it starts, clamped
    /// into 1 ms up to the target, the range it chooses from; each epoch's
    /// choice is in its [`EpochProgress::interval`](crate::progress::EpochProgress::interval)
    /// and what its latency says of the target in
    /// [`EpochProgress::target`](crate::progress::EpochProgress::target). Needs the
    /// time trigger. Default: `None` (`"off"`), a fixed interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// // The interval adapts to keep record latency p99 within 50 ms.
    /// let config = microbatch::Config::default()
    ///     .with_target_latency(Some(Duration::from_millis(50)));
    /// config.validate()?;
    /// // Without a time trigger there is nothing to adapt.
    /// assert!(config.with_interval(None).validate().is_err());
    /// # Ok::<(), microbatch::ConfigError>(())
    /// ```
    #[serde(with = "off_or_duration")]
    pub target_latency: Option<Duration>,
    /// Capacity of each producer ring, in records (rounded up to a power
    /// of two). Default: 65 536.
    pub ring_capacity: usize,
    /// The most sealed epochs whose results are not yet all emitted; a
    /// worker that would open one more waits. Default: 4.
    pub max_epochs_in_flight: usize,
    /// How idle threads wait. Default: [`IdleStrategy::Backoff`].
    pub idle: IdleStrategy,
    /// A worker with nothing of its own to take takes chunks from other
    /// workers' producer rings, so an uneven producer does not leave cores
    /// idle. Results are the same either way; only who computes them
    /// changes. Default: on.
    pub work_stealing: bool,
    /// How workers place each batch's records; see [`PlacementPolicy`].
    /// Default: adaptive.
    pub placement: PlacementPolicy,
    /// What a worker does when user code panics while it folds a batch;
    /// see [`OnPanic`]. Default: stop. Anything else needs the builder's
    /// [`on_panic`](crate::EngineBuilder::on_panic) with
    /// [`Config::panic_policy`] (the record type must be `Clone` and
    /// `Serialize`); the CLI does that.
    pub on_panic: OnPanic,
    /// How many times a batch is folded again after a panic, under
    /// `on_panic = "retry"` or `"dead_letters"`. Default: 2.
    pub panic_retries: u32,
    /// Under `on_panic = "dead_letters"`, the JSON-lines file that takes the
    /// records that panic.
    pub dead_letters: Option<PathBuf>,
    /// What [`Producer::send`](crate::Producer::send) does when a
    /// producer's ring is full; see [`Overload`]. Default: block. Set on the
    /// builder ([`EngineBuilder::overload`](crate::EngineBuilder::overload)),
    /// not in profiles: the CLI's producer threads always wait.
    #[serde(skip)]
    pub overload: Overload,
}

/// What [`Producer::send`](crate::Producer::send) does with a record when
/// the producer's ring is full (the engine is behind): the load-shedding
/// policy of a service that bounds its own latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overload {
    /// Wait for room, as [`Producer::push`](crate::Producer::push) does.
    #[default]
    Block,
    /// Hand the record back at once
    /// ([`PushError::Full`](crate::PushError::Full)), as
    /// [`Producer::try_push`](crate::Producer::try_push) does: the caller
    /// decides.
    Fail,
    /// Drop the record and count it
    /// ([`Progress::records_shed`](crate::progress::Progress::records_shed)):
    /// the newest records are shed, the accepted ones keep flowing.
    DropNewest,
}

/// How the engine handles a panic in user code while a worker folds its
/// batch. Set with
/// [`EngineBuilder::on_panic`](crate::EngineBuilder::on_panic).
///
/// A panic while merging, finishing or writing results (on the owner of a
/// partition) is not retried: it stops the engine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PanicPolicy {
    /// How many times the batch is folded again from its retained input
    /// after a panic (for user code that fails now and then, e.g. on a
    /// busy service).
    pub retries: u32,
    /// After the retries: `None` stops the engine with
    /// [`EngineError::BatchPanicked`](crate::EngineError::BatchPanicked);
    /// a path bisects the batch, appends each record that panics on its
    /// own to this file (JSON lines: epoch, worker, panic, record), counts
    /// it in [`EpochProgress::dead_letters`](crate::progress::EpochProgress::dead_letters)
    /// and completes the epoch without it.
    pub dead_letters: Option<PathBuf>,
}

/// What a worker does when user code panics while it folds a batch (a
/// profile's `engine.on_panic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPanic {
    /// The engine stops with the panic.
    #[default]
    Stop,
    /// The batch is folded again, up to `panic_retries` times, then the
    /// engine stops.
    Retry,
    /// As `Retry`, then the records that panic go to the `dead_letters`
    /// file and the epoch completes without them.
    DeadLetters,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: crate::sync::cold::available_parallelism().map_or(1, |n| n.get()),
            pin: true,
            interval: Some(Duration::from_millis(100)),
            max_batch_records: Some(1 << 20),
            target_latency: None,
            ring_capacity: 1 << 16,
            max_epochs_in_flight: 4,
            idle: IdleStrategy::Backoff,
            work_stealing: true,
            placement: PlacementPolicy::Adaptive,
            on_panic: OnPanic::Stop,
            panic_retries: 2,
            dead_letters: None,
            overload: Overload::Block,
        }
    }
}

/// A setting outside its accepted range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{setting}` = {value}: {accepted}")]
pub struct ConfigError {
    /// The setting's name, as in a profile.
    pub setting: &'static str,
    /// The value given.
    pub value: String,
    /// What is accepted instead.
    pub accepted: String,
}

impl ConfigError {
    /// `setting` was given `value` (shown with `Debug`), which is not one of
    /// `accepted`: also for a user's [`SourceSpec`](crate::source::SourceSpec)
    /// to refuse its settings.
    pub fn new(
        setting: &'static str,
        value: impl std::fmt::Debug,
        accepted: impl Into<String>,
    ) -> Self {
        ConfigError {
            setting,
            value: format!("{value:?}"),
            accepted: accepted.into(),
        }
    }
}

impl Config {
    /// Checks every setting; the first one out of range is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(ConfigError::new(
                "workers",
                self.workers,
                format!("between 1 and {MAX_WORKERS}"),
            ));
        }
        let cores = crate::sync::cold::available_parallelism().map_or(1, |n| n.get());
        if self.workers > MAX_WORKERS_PER_CORE * cores {
            return Err(ConfigError::new(
                "workers",
                self.workers,
                format!(
                    "at most {} on this machine ({MAX_WORKERS_PER_CORE} per core, {cores} cores): \
                     the shuffle joins every pair of workers, and more workers than cores only take turns",
                    MAX_WORKERS_PER_CORE * cores
                ),
            ));
        }
        if let Some(interval) = self.interval.filter(|i| *i < Duration::from_micros(1)) {
            return Err(ConfigError::new(
                "interval",
                format!("{interval:?}"),
                "at least 1µs, or \"off\" for no time trigger",
            ));
        }
        if let Some(target) = self.target_latency {
            if self.interval.is_none() {
                return Err(ConfigError::new(
                    "target_latency",
                    format!("{target:?}"),
                    "a time trigger to adapt: interval is where the adaptive interval starts, not \"off\"",
                ));
            }
            if target < 2 * MIN_AUTO_INTERVAL {
                return Err(ConfigError::new(
                    "target_latency",
                    format!("{target:?}"),
                    format!(
                        "at least {:?}: the adaptive interval ranges from {MIN_AUTO_INTERVAL:?} to the target",
                        2 * MIN_AUTO_INTERVAL
                    ),
                ));
            }
        }
        if self.max_batch_records == Some(0) {
            return Err(ConfigError::new(
                "max_batch_records",
                0,
                "at least 1, or \"off\" for no count trigger",
            ));
        }
        if !(1..=MAX_RING_CAPACITY).contains(&self.ring_capacity) {
            return Err(ConfigError::new(
                "ring_capacity",
                self.ring_capacity,
                format!("between 1 and {MAX_RING_CAPACITY} records"),
            ));
        }
        match (self.on_panic, &self.dead_letters) {
            (OnPanic::DeadLetters, None) => {
                return Err(ConfigError::new(
                    "dead_letters",
                    "not set",
                    "a file path with on_panic = \"dead_letters\"",
                ))
            }
            (OnPanic::Stop | OnPanic::Retry, Some(path)) => {
                return Err(ConfigError::new(
                    "dead_letters",
                    path.display(),
                    "unset unless on_panic = \"dead_letters\"",
                ))
            }
            _ => {}
        }
        if !(1..=MAX_EPOCHS_IN_FLIGHT).contains(&self.max_epochs_in_flight) {
            return Err(ConfigError::new(
                "max_epochs_in_flight",
                self.max_epochs_in_flight,
                format!("between 1 and {MAX_EPOCHS_IN_FLIGHT}"),
            ));
        }
        Ok(())
    }

    /// The panic policy [`on_panic`](Self::on_panic) asks for, if any: give
    /// it to [`EngineBuilder::on_panic`](crate::EngineBuilder::on_panic).
    pub fn panic_policy(&self) -> Option<PanicPolicy> {
        match self.on_panic {
            OnPanic::Stop => None,
            OnPanic::Retry => Some(PanicPolicy {
                retries: self.panic_retries,
                dead_letters: None,
            }),
            OnPanic::DeadLetters => Some(PanicPolicy {
                retries: self.panic_retries,
                dead_letters: self.dead_letters.clone(),
            }),
        }
    }

    /// Whether the engine is a batch system: no time and no count trigger,
    /// so one epoch holds everything and is sealed at shutdown.
    pub fn is_batch_mode(&self) -> bool {
        self.interval.is_none() && self.max_batch_records.is_none()
    }

    /// Sets [`work_stealing`](Self::work_stealing).
    pub fn with_work_stealing(mut self, work_stealing: bool) -> Self {
        self.work_stealing = work_stealing;
        self
    }

    /// Sets [`placement`](Self::placement).
    pub fn with_placement(mut self, placement: PlacementPolicy) -> Self {
        self.placement = placement;
        self
    }

    /// Sets [`workers`](Self::workers).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets [`pin`](Self::pin).
    pub fn with_pin(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// Sets [`target_latency`](Self::target_latency): `Some` makes the
    /// interval adaptive, starting from [`interval`](Self::interval).
    pub fn with_target_latency(mut self, target: Option<Duration>) -> Self {
        self.target_latency = target;
        self
    }

    /// Sets [`interval`](Self::interval); `None` turns the time trigger off.
    pub fn with_interval(mut self, interval: Option<Duration>) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`max_batch_records`](Self::max_batch_records); `None` turns the
    /// count trigger off.
    pub fn with_max_batch_records(mut self, records: Option<u64>) -> Self {
        self.max_batch_records = records;
        self
    }

    /// Sets [`ring_capacity`](Self::ring_capacity).
    pub fn with_ring_capacity(mut self, capacity: usize) -> Self {
        self.ring_capacity = capacity;
        self
    }

    /// Sets [`max_epochs_in_flight`](Self::max_epochs_in_flight).
    pub fn with_max_epochs_in_flight(mut self, epochs: usize) -> Self {
        self.max_epochs_in_flight = epochs;
        self
    }

    /// Defaults for an engine embedded in a service, whose own threads need
    /// the cores too: workers unpinned, half the cores (at least one),
    /// producer rings of 4096 records (a ring per handle: 96 KiB for
    /// 24-byte records, against 1.5 MiB at the default 65 536). The rest as
    /// [`Config::default`]. See `docs/embedding.md`.
    ///
    /// ```
    /// let config = microbatch::Config::embedded();
    /// assert!(!config.pin);
    /// assert_eq!(config.ring_capacity, 4096);
    /// ```
    pub fn embedded() -> Self {
        let cores = crate::sync::cold::available_parallelism().map_or(1, |n| n.get());
        Config {
            workers: (cores / 2).max(1),
            pin: false,
            ring_capacity: 4096,
            ..Config::default()
        }
    }

    /// Sets [`overload`](Self::overload).
    pub fn with_overload(mut self, overload: Overload) -> Self {
        self.overload = overload;
        self
    }

    /// Sets [`idle`](Self::idle).
    pub fn with_idle(mut self, idle: IdleStrategy) -> Self {
        self.idle = idle;
        self
    }
}

/// The word that turns a trigger off in a profile.
const OFF: &str = "off";

/// `interval`: a humantime string (`"100ms"`) or `"off"`.
mod off_or_duration {
    use super::OFF;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => humantime_serde::serialize(duration, serializer),
            None => serializer.serialize_str(OFF),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim() == OFF {
            return Ok(None);
        }
        humantime_serde::re::humantime::parse_duration(&text)
            .map(Some)
            .map_err(|e| {
                D::Error::custom(format!(
                    "{text:?} is not a duration like \"100ms\" or \"off\": {e}"
                ))
            })
    }
}

/// `max_batch_records`: a positive count or `"off"`.
mod off_or_count {
    use super::OFF;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum CountOrWord {
        Count(u64),
        Word(String),
    }

    pub(super) fn serialize<S: Serializer>(
        value: &Option<u64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(count) => serializer.serialize_u64(*count),
            None => serializer.serialize_str(OFF),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        match CountOrWord::deserialize(deserializer)? {
            CountOrWord::Count(count) => Ok(Some(count)),
            CountOrWord::Word(word) if word.trim() == OFF => Ok(None),
            CountOrWord::Word(word) => Err(D::Error::custom(format!(
                "{word:?} is not a record count or \"off\""
            ))),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn setting_of(config: Config) -> &'static str {
        config.validate().unwrap_err().setting
    }

    #[test]
    fn defaults_are_valid_and_streaming() {
        let config = Config::default();
        config.validate().unwrap();
        assert!(!config.is_batch_mode());
        assert_eq!(config.interval, Some(Duration::from_millis(100)));
    }

    #[test]
    fn each_bad_setting_is_named() {
        let base = Config::default();
        assert_eq!(setting_of(base.clone().with_workers(0)), "workers");
        assert_eq!(
            setting_of(base.clone().with_workers(MAX_WORKERS + 1)),
            "workers"
        );
        assert_eq!(
            setting_of(base.clone().with_interval(Some(Duration::ZERO))),
            "interval"
        );
        assert_eq!(
            setting_of(base.clone().with_max_batch_records(Some(0))),
            "max_batch_records"
        );
        assert_eq!(
            setting_of(base.clone().with_ring_capacity(0)),
            "ring_capacity"
        );
        assert_eq!(
            setting_of(base.clone().with_max_epochs_in_flight(0)),
            "max_epochs_in_flight"
        );
        let message = base.with_workers(0).validate().unwrap_err().to_string();
        assert!(
            message.contains("`workers` = 0") && message.contains("between 1 and"),
            "{message}"
        );
    }

    #[test]
    fn both_triggers_off_is_batch_mode() {
        let config = Config::default()
            .with_interval(None)
            .with_max_batch_records(None);
        config.validate().unwrap();
        assert!(config.is_batch_mode());
    }
}
