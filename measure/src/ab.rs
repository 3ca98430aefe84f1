//! What the interleaved A/B subcommands share: the
//! median of their rounds, a generator's records drawn into memory before
//! a run, so that drawing them is not what a run measures, and the command
//! line and runs of the examples whose input is such records.

use std::path::Path;
use std::time::{Duration, Instant};

use microbatch::job::Job;
use microbatch::sink::DiscardSink;
use microbatch::source::{Event, Generator, GeneratorConfig, Poll, SourceSpec};
use microbatch::{Engine, Summary};

use microbatch_cli::commands::run::run_with_input;
use microbatch_cli::driver::error::RunError;
use microbatch_cli::driver::input::Input;
use microbatch_cli::driver::{Quiet, RunFiles, RunOutcome};
use microbatch_cli::profile::Profile;
use microbatch_cli::report::RunReport;

/// The command line of an example run over records in memory,
/// `[profile] [rounds] [millions of records]`.
#[derive(Debug)]
pub struct InMemoryArgs {
    /// The profile's path.
    pub path: String,
    /// The profile, set to run until its input is read whole (see
    /// [`run_until_read`]).
    pub profile: Profile,
    /// Rounds, at least one.
    pub rounds: usize,
    /// Records per input.
    pub records: usize,
}

impl InMemoryArgs {
    /// From a subcommand's arguments (`args[0]` is its name), with these
    /// defaults; the error is the line to print before exiting with code 2.
    pub fn from_args(
        args: Vec<String>,
        default_profile: &str,
        default_rounds: usize,
        default_millions: usize,
    ) -> Result<Self, String> {
        let args: Vec<String> = args.into_iter().skip(1).collect();
        let path = args
            .first()
            .map_or(default_profile, String::as_str)
            .to_owned();
        let rounds = args
            .get(1)
            .and_then(|r| r.parse().ok())
            .unwrap_or(default_rounds)
            .max(1);
        let millions: usize = args
            .get(2)
            .and_then(|r| r.parse().ok())
            .unwrap_or(default_millions);
        let mut profile = Profile::load(Path::new(&path), &[]).map_err(|e| e.to_string())?;
        run_until_read(&mut profile);
        Ok(InMemoryArgs {
            path,
            profile,
            rounds,
            records: millions * 1_000_000,
        })
    }
}

/// The warm-up of a run over records in memory, left out of its figures.
///
/// A run starts with empty tables, which grow to the key space over its
/// first epochs. Each growth is a fresh allocation whose first touch
/// faults its pages in; with transparent huge pages (which mimalloc asks
/// for) such a fault can stall a worker for milliseconds (the kernel
/// making a huge page, compacting memory if need be: with huge pages off
/// the stalls went). On this project's machine a worker folding 100 M
/// records alone lost about 0.1 s of a 0.7 s run to that, and two workers
/// 0.02 s, so runs well under a second long measured mostly how the start
/// went. Steady runs (`run.warmup`) leave the start out the same way.
pub const IN_MEMORY_WARMUP: Duration = Duration::from_millis(200);

/// Sets `profile` to run until its input is read whole, with figures taken
/// after [`IN_MEMORY_WARMUP`] (the whole run, if the input runs out
/// first), and no time limit to speak of.
pub fn run_until_read(profile: &mut Profile) {
    profile.run.warmup = IN_MEMORY_WARMUP;
    profile.run.duration = Duration::from_secs(3600);
}

/// Runs `profile` over a copy of `events`, quietly; see [`checked`].
pub fn run_over(
    profile: &Profile,
    name: &str,
    events: &[Event],
) -> Result<RunReport, (String, u8)> {
    let input = Input::Events(events.to_vec());
    checked(
        name,
        run_with_input(profile, name, &RunFiles::default(), &mut Quiet, input),
    )
}

/// The options of the subcommands that run a profile's variants through
/// the CLI: `[--profile PATH] [--rounds N] [--records M] [ARGUMENT ...]`.
#[derive(Debug)]
pub struct RunOptions {
    /// `--profile`; default `profiles/default.toml`.
    pub path: String,
    /// `--rounds`, at least 1; default 5.
    pub rounds: usize,
    /// `--records`, if given.
    pub records: Option<u64>,
    /// The other arguments, in order.
    pub rest: Vec<String>,
}

impl RunOptions {
    /// From a subcommand's arguments (`args[0]` is its name).
    pub fn from_args(args: Vec<String>) -> Result<Self, Box<dyn std::error::Error>> {
        let mut options = RunOptions {
            path: "profiles/default.toml".to_owned(),
            rounds: 5,
            records: None,
            rest: Vec::new(),
        };
        let mut args = args.into_iter().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} takes a value"));
            match arg.as_str() {
                "--profile" => options.path = value("--profile")?,
                "--rounds" => options.rounds = value("--rounds")?.parse::<usize>()?.max(1),
                "--records" => options.records = Some(value("--records")?.parse()?),
                _ => options.rest.push(arg),
            }
        }
        Ok(options)
    }
}

/// The profile at `path` with a variant's overrides: a comma-separated
/// list of `--set` overrides, `-` for none, after `run.warmup = 1s` and
/// `run.duration = 4s` (which the variant may set otherwise).
pub fn short_run(path: &str, variant: &str) -> Result<Profile, String> {
    let mut overrides = vec!["run.warmup=1s".to_owned(), "run.duration=4s".to_owned()];
    overrides.extend(
        variant
            .split(',')
            .filter(|o| *o != "-" && !o.is_empty())
            .map(str::to_owned),
    );
    Profile::load(Path::new(path), &overrides).map_err(|error| format!("{variant}: {error}"))
}

/// The lowest and highest of `values`.
pub fn spread(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(*v), h.max(*v))
        })
}

/// The report of run `name` if every record accepted is in the results,
/// else the line to print and the exit code (1: the run failed, 3:
/// records missing).
pub fn checked(
    name: &str,
    outcome: Result<RunOutcome, RunError>,
) -> Result<RunReport, (String, u8)> {
    let report = outcome
        .map_err(|error| (format!("{name}: {error}"), 1))?
        .report;
    if report.records_in != report.records_out {
        return Err((format!("{name}: records accepted and in results differ"), 3));
    }
    Ok(report)
}

/// Runs `job` over `source`'s `records` records in the workers, on two
/// workers with 100 ms epochs and no count trigger, DiscardSink; the
/// records per second from the start to the end of the shutdown, and the
/// summary, every record checked to be in the results.
pub fn rate_over<R, J, S>(job: J, source: S, records: u64) -> (f64, Summary)
where
    R: Send + 'static,
    J: Job<R>,
    S: SourceSpec<R> + 'static,
{
    let started = Instant::now();
    let engine = Engine::builder(job, DiscardSink)
        .workers(2)
        .interval(Some(Duration::from_millis(100)))
        .max_batch_records(None)
        .source(source)
        .start()
        .expect("valid settings");
    let summary = engine.finish().expect("a clean run");
    assert_eq!(summary.records_in_results, records);
    (records as f64 / started.elapsed().as_secs_f64(), summary)
}

/// The median of `values` (the upper one of an even count); sorts them.
///
/// # Panics
///
/// If `values` is empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A subcommand's arguments after its name, as numbers. Panics, naming
/// the argument, on one that is not: these are measurement programs, run
/// by hand.
pub fn numbers<T: std::str::FromStr>(args: Vec<String>) -> Vec<T> {
    args.into_iter()
        .skip(1)
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| panic!("`{a}` is not a number"))
        })
        .collect()
}

/// The first `records` records `config`'s generator draws, at full speed
/// (its rate and record count are ignored), in one thread.
pub fn events_in_memory(mut config: GeneratorConfig, records: usize) -> Vec<Event> {
    config.rate = None;
    config.records = None;
    let mut source = Generator::new(config)
        .split(1)
        .expect("a valid generator")
        .pop()
        .expect("one part");
    let mut out = Vec::with_capacity(records);
    let mut chunk = Vec::with_capacity(4096);
    while out.len() < records {
        chunk.clear();
        let want = (records - out.len()).min(4096);
        match source.poll(0, &mut chunk, want) {
            Poll::Ready { .. } => out.extend_from_slice(&chunk),
            Poll::Idle | Poll::EpochEnd => {}
            Poll::Exhausted | Poll::Failed => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value_of_the_sorted_rounds() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
    }

    #[test]
    fn events_in_memory_are_the_generators_first_records() {
        let config = GeneratorConfig {
            keys: 10,
            rate: Some(1),
            records: Some(5),
            ..GeneratorConfig::default()
        };
        let events = events_in_memory(config.clone(), 10_000);
        assert_eq!(events.len(), 10_000, "rate and count are ignored");
        assert!(events.iter().all(|e| e.key < 10));
        assert_eq!(events_in_memory(config, 100), events[..100]);
    }
}
