//! The profile's sections as the structs serde reads them into, with their
//! defaults.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use microbatch::source::{GeneratorConfig, KeyDistribution, ValueDistribution};
use microbatch::Config;
use serde::de::{self, Deserializer, Visitor};

pub use super::output::{OutputKind, OutputSpec};
pub use crate::text::{BadLines, Schema, TextFormat};
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
    /// The order an owner runs its queries' work in (`[[queries]]`).
    pub scheduler: SchedulerSpec,
    /// Several queries instead of `[job]` (`[[queries]]`; read before
    /// serde, in `queries.rs`).
    #[serde(skip)]
    pub queries: Vec<QueryProfile>,
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
    /// The Nexmark event generator (persons, auctions and bids), live in
    /// the workers at `rate`, `records` events in all (`job.kind =
    /// "nexmark"`).
    Nexmark,
    /// A Kafka topic (`topic` at `brokers`), its partitions spread over
    /// the workers, each message a record of `schema` written as `format`;
    /// exactly once into SQLite, whose database holds the offsets.
    Kafka,
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
    /// `generator` (default), `file`, `log`, `nexmark` or `kafka`.
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
    /// How far behind the time it was made a generated record's event
    /// time may be, drawn uniformly (windowed jobs). Default `0s`.
    #[serde(with = "humantime_serde")]
    pub disorder: Duration,
    /// A `kafka` source's bootstrap servers. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// A `kafka` source's topic.
    pub topic: Option<String>,
    /// A `kafka` source's consumer group id. Default `microbatch`.
    pub group: String,
    /// How a `kafka` source's messages are written: `csv` (default) or
    /// `json`.
    pub format: TextFormat,
    /// What a `kafka` source's messages hold: `event` (default,
    /// `key,value`), `timed` (with `event_time_ms`) or `clickstream`.
    pub schema: Schema,
    /// A `kafka` source ends when every partition reached the offset it
    /// had at the start (Spark's `Trigger.AvailableNow`). Default false:
    /// it follows the topic until `run.duration` or Ctrl-C.
    pub stop_at_end: bool,
    /// A message that is not a record: `stop` (default) names its
    /// partition and offset and stops the run; `skip` appends it to
    /// `engine.dead_letters` and goes on.
    pub bad_lines: BadLines,
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
            disorder: Duration::ZERO,
            brokers: DEFAULT_BROKERS.into(),
            topic: None,
            group: "microbatch".into(),
            format: TextFormat::Csv,
            schema: Schema::Event,
            stop_at_end: false,
            bad_lines: BadLines::Stop,
        }
    }
}

/// Where a Kafka source or sink looks for its brokers unless told.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

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
    /// The worked case ([`crate::jobs::clickstream`]): clicks from the click
    /// generator (`workload.keys` users, Zipf with `zipf_exponent`, or
    /// uniform) or a click log; per epoch, per user clicks and dwell time
    /// and per page views, into SQLite (`user_stats`, `page_stats`,
    /// `user_totals`). `reductions` and `output_mode` do not apply.
    Clickstream,
    /// A Nexmark query (`query`) over Nexmark events, from the Nexmark
    /// generator or a Nexmark log (`microbatch nexmark generate`).
    Nexmark,
}

/// The Nexmark queries the `nexmark` job runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NexmarkQuery {
    /// Pass-through: every bid.
    #[default]
    Q0,
    /// Currency conversion: every bid, its price in euros.
    Q1,
    /// Selection: the bids on auctions whose id is a multiple of 123.
    Q2,
    /// Hot items: per hopping window (10 s, every 2 s) the auctions with
    /// the most bids.
    Q5,
    /// Highest bid: per tumbling window of 10 s the bids at its highest
    /// price.
    Q7,
    /// Processing-time windows: bids per bidder per epoch.
    Q12,
}

impl NexmarkQuery {
    /// Every query, in order.
    pub const ALL: [NexmarkQuery; 6] = [
        NexmarkQuery::Q0,
        NexmarkQuery::Q1,
        NexmarkQuery::Q2,
        NexmarkQuery::Q5,
        NexmarkQuery::Q7,
        NexmarkQuery::Q12,
    ];

    /// Its name in profiles: `q0`, `q1`, …
    pub fn name(self) -> &'static str {
        match self {
            NexmarkQuery::Q0 => "q0",
            NexmarkQuery::Q1 => "q1",
            NexmarkQuery::Q2 => "q2",
            NexmarkQuery::Q5 => "q5",
            NexmarkQuery::Q7 => "q7",
            NexmarkQuery::Q12 => "q12",
        }
    }
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
    /// running totals since the start (keyed jobs); `append`: each event-time
    /// window once, when the watermark closes it (windowed jobs, for which
    /// `epoch` means the same).
    pub output_mode: OutputModeSpec,
    /// `none` (default): epochs of processing time; `tumbling`, `hopping`
    /// or `session`: windows of event time (the generator's records then
    /// carry one, see `workload.disorder`).
    pub window: WindowKind,
    /// A window's length (tumbling, hopping).
    #[serde(with = "humantime_serde")]
    pub window_size: Option<Duration>,
    /// How far apart hopping windows start (at most `window_size`).
    #[serde(with = "humantime_serde")]
    pub window_slide: Option<Duration>,
    /// The gap without a record that ends a session (session windows).
    #[serde(with = "humantime_serde")]
    pub session_gap: Option<Duration>,
    /// How far the watermark trails the newest event time. Default `0s`.
    #[serde(with = "humantime_serde")]
    pub watermark_delay: Duration,
    /// How long after its end a window (tumbling, hopping) still takes
    /// late records, firing again with them. Default `0s`.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// What happens to a record later than a window's allowed lateness:
    /// `drop` (default, counted in `late_records`) or `dead_letters`
    /// (tumbling and hopping windows: reduced per window, key and epoch,
    /// marked `expired`, into the JSON-lines file `engine.dead_letters`;
    /// also counted).
    pub late: LatePolicy,
    /// The Nexmark query of a `nexmark` job: `q0` (default), `q1`, `q2`,
    /// `q5`, `q7` or `q12`.
    pub query: NexmarkQuery,
}

/// How a job cuts time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Epochs of processing time.
    #[default]
    None,
    /// Back-to-back windows of `window_size`.
    Tumbling,
    /// Windows of `window_size` starting every `window_slide`.
    Hopping,
    /// Per key, runs of records less than `session_gap` apart.
    Session,
}

/// What a windowed job does with a record behind its watermark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatePolicy {
    /// Drop it and count it (`late_records`).
    #[default]
    Drop,
    /// Into the dead-letter file, `engine.dead_letters`, as expired rows.
    DeadLetters,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            kind: JobKind::Keyed,
            reductions: vec![Reduction::Count, Reduction::Sum],
            output_mode: OutputModeSpec::Epoch,
            window: WindowKind::None,
            window_size: None,
            window_slide: None,
            session_gap: None,
            watermark_delay: Duration::ZERO,
            allowed_lateness: Duration::ZERO,
            late: LatePolicy::Drop,
            query: NexmarkQuery::Q0,
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
    /// Each event-time window once, when the watermark closes it.
    Append,
}

impl JobSpec {
    /// Whether each row is an event-time window's: a `window` is set, or
    /// the Nexmark query is q5 or q7.
    pub fn emits_windows(&self) -> bool {
        match self.kind {
            JobKind::Nexmark => matches!(self.query, NexmarkQuery::Q5 | NexmarkQuery::Q7),
            _ => self.window != WindowKind::None,
        }
    }

    /// Whether a windowed job's rows say when they fired (`firing`): with
    /// an allowed lateness, or in update mode.
    pub fn marks_firings(&self) -> bool {
        self.window != WindowKind::None
            && (!self.allowed_lateness.is_zero()
                || self.output_mode == OutputModeSpec::Update
                || self.late == LatePolicy::DeadLetters)
    }

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

/// One `[[queries]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryProfile {
    /// The query's name, in reports.
    pub name: String,
    /// Its job: the `[job]` keys.
    pub job: JobSpec,
    /// Its epoch: a multiple of `engine.interval`; default the engine's.
    #[serde(with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Its own count trigger, instead of `interval`: its epoch ends with
    /// the first engine epoch that brings it to this many records.
    pub max_batch_records: Option<u64>,
    /// Higher first under `scheduler.policy = "priority"`. Default 0.
    pub priority: i64,
    /// Groups keys into this many buckets (`key % key_buckets`): a query
    /// over fewer keys than the input has.
    pub key_buckets: Option<u64>,
    /// Where its rows go; default nowhere.
    pub output: OutputSpec,
}

/// The `[scheduler]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSpec {
    /// `priority` (default), `fifo` or `round_robin`.
    pub policy: PolicySpec,
    /// Entries a task merges or finishes per piece: the most work an
    /// urgent task waits behind. Default 16384.
    pub piece: usize,
}

impl Default for SchedulerSpec {
    fn default() -> Self {
        SchedulerSpec {
            policy: PolicySpec::default(),
            piece: microbatch::queries::DEFAULT_PIECE,
        }
    }
}

/// `scheduler.policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySpec {
    /// By priority, then earliest deadline, round robin among equals.
    #[default]
    Priority,
    /// Oldest task first.
    Fifo,
    /// One piece of each query in turn.
    RoundRobin,
}

impl PolicySpec {
    /// The engine's policy.
    pub fn policy(self) -> microbatch::queries::SchedulerPolicy {
        use microbatch::queries::SchedulerPolicy;
        match self {
            PolicySpec::Priority => SchedulerPolicy::Priority,
            PolicySpec::Fifo => SchedulerPolicy::Fifo,
            PolicySpec::RoundRobin => SchedulerPolicy::RoundRobin,
        }
    }
}
