//! `microbatch`: run, sweep and compare experiments described by TOML
//! profiles. See `microbatch --help` and `profiles/README.md`.
//!
//! Exit codes: 0 success; 1 the run failed (engine error, input or output
//! file); 2 bad command line or profile; 3 accepted records missing from
//! the results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use microbatch_cli::commands::compare::compare;
use microbatch_cli::commands::import::{LogCommand, LogInspectArgs, LogWriteArgs};
use microbatch_cli::commands::kafka::KafkaCommand;
use microbatch_cli::commands::nexmark::{GenerateArgs, NexmarkCommand};
use microbatch_cli::commands::run::run;
use microbatch_cli::commands::sweep::{
    parse_intervals, parse_max_batch_records, parse_rates, sweep, SweepPlan,
};
use microbatch_cli::driver::error::RunError;
use microbatch_cli::driver::RunFiles;
use microbatch_cli::exporter::MetricsServer;
use microbatch_cli::paths::{check_outputs, PathError};
use microbatch_cli::plot;
use microbatch_cli::profile::{Profile, ProfileError};
use microbatch_cli::terminal::{announce, Bar};
use microbatch_cli::ui::Ui;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Prints a line to stdout; a closed stdout (`| head`) is not an error
/// worth a panic, so write errors are dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_LOST: u8 = 3;

/// Run, sweep and compare micro-batch experiments described by TOML
/// profiles (see profiles/README.md).
///
/// Exit codes: 0 success; 1 the run failed (engine error, input or output
/// file); 2 bad command line or profile; 3 accepted records were missing
/// from the results.
#[derive(Parser)]
#[command(name = "microbatch", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one profile with a live progress bar, then print throughput,
    /// latency percentiles and epoch counts.
    Run(RunArgs),
    /// Run a profile at several batch intervals (and count triggers, and
    /// rates) and show where the knee is: a table, a CSV and SVG plots.
    Sweep(SweepArgs),
    /// Run a profile's job as micro-batches, as one batch, in a single
    /// thread and through a naive mpsc + HashMap design, and print the
    /// ratios.
    Compare(CompareArgs),
    /// Write and inspect record logs: replayable, checksummed files of
    /// records (a profile reads one with workload.source = "log").
    #[command(subcommand)]
    Log(LogCommand),
    /// The Nexmark benchmark's events: write them into a record log.
    #[command(subcommand)]
    Nexmark(NexmarkCommand),
    /// Kafka topics: load a file of records into one (a profile reads one
    /// with workload.source = "kafka"), or show a consumer group's lag.
    #[command(subcommand)]
    Kafka(KafkaCommand),
}

#[derive(Args)]
struct ProfileArgs {
    /// The profile: a TOML file, e.g. profiles/default.toml.
    profile: PathBuf,
    /// Override a profile key by its dotted path, e.g.
    /// --set engine.interval=1ms --set run.duration=5s. Repeatable.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    #[command(flatten)]
    ui: UiArgs,
    /// Serve the engine's metrics in the Prometheus text format at
    /// http://ADDR/metrics while the run lasts (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Write the summary as one JSON object to FILE; unless --epochs or
    /// --hdr-log say otherwise, also FILE's stem + `.epochs.jsonl` (each
    /// epoch's progress) and + `.hlog` (HdrHistogram interval log of
    /// record latency).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write each epoch's progress as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    epochs: Option<PathBuf>,
    /// Write record latency as an HdrHistogram interval log (one interval
    /// a second, values in µs) to FILE.
    #[arg(long, value_name = "FILE")]
    hdr_log: Option<PathBuf>,
    /// Resume from and log to the checkpoint directory DIR (created if
    /// missing): the run starts after DIR's last committed epoch, so a run
    /// killed at any moment and started again writes every epoch exactly
    /// once. Needs a record log source (workload.source = "log"), cut into
    /// epochs by position: workload.rate × engine.interval records (at
    /// most engine.max_batch_records) when replayed at a rate, else
    /// engine.max_batch_records.
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
}

#[derive(Args)]
struct SweepArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    #[command(flatten)]
    ui: UiArgs,
    /// Batch intervals to run, comma-separated, e.g. 1ms,10ms,100ms,1s.
    #[arg(long, value_name = "LIST", required = true)]
    interval: String,
    /// Count triggers to run at each interval, comma-separated counts or
    /// `off` (default: the profile's).
    #[arg(long, value_name = "LIST")]
    max_batch_records: Option<String>,
    /// Fixed open-loop rates (records/s) of the latency runs,
    /// comma-separated (default: the profile's rate, or half the lowest
    /// throughput measured).
    #[arg(long, value_name = "LIST")]
    rate: Option<String>,
    /// Runs per point: the table and plots show each point's median run,
    /// sweep.csv every run. Use 3 or 5 on a noisy machine.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    repeat: u16,
    /// Where to write sweep.csv, the plots and the profile used (default:
    /// a new folder under results/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Write the comparison as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run_command(args),
        Command::Sweep(args) => sweep_command(args),
        Command::Compare(args) => compare_command(args),
        Command::Log(LogCommand::Write(args)) => log_write_command(args),
        Command::Log(LogCommand::Inspect(args)) => log_inspect_command(args),
        Command::Nexmark(NexmarkCommand::Generate(args)) => nexmark_generate_command(args),
        Command::Kafka(KafkaCommand::Produce(args)) => args
            .produce()
            .map(|done| say!("{done}"))
            .map_err(anyhow::Error::from),
        Command::Kafka(KafkaCommand::Lag(args)) => args.lag().map(|table| say!("{table}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// The error and its causes on one line, each cause said once: most of
/// the errors here already name their cause, which the chain repeats.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string().replace('\n', " ");
        if line.contains(text.trim()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text.trim());
    }
    line
}

fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<ProfileError>().is_some()
        || error.downcast_ref::<UsageError>().is_some()
        || error.downcast_ref::<PathError>().is_some()
    {
        return EXIT_USAGE;
    }
    match error.downcast_ref::<RunError>() {
        Some(RunError::Lost { .. }) => EXIT_LOST,
        Some(RunError::CheckpointSetting(_) | RunError::Unsupported(_)) => EXIT_USAGE,
        Some(RunError::Engine(microbatch::EngineError::Config(_))) => EXIT_USAGE,
        _ => EXIT_FAILED,
    }
}

/// A flag's value is malformed.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
struct UsageError {
    flag: &'static str,
    message: String,
}

/// The live page's flags, for `run` and `sweep`.
#[derive(Args)]
struct UiArgs {
    /// Serve a live page of the run at ADDR (e.g. 127.0.0.1:8080) while it
    /// lasts: charts of throughput, latency and epochs, per-worker
    /// figures, the latest epochs, the profile. Bind it to loopback unless
    /// others should see it; the page has no write endpoint.
    #[arg(long, value_name = "ADDR")]
    ui: Option<String>,
    /// After the run, save the page with all its data to FILE: one HTML
    /// file that opens with no server.
    #[arg(long, value_name = "FILE")]
    ui_save: Option<PathBuf>,
}

impl UiArgs {
    /// The page, if one is asked for.
    fn start(&self, kind: &str, name: &str, profile: &Profile) -> anyhow::Result<Option<Ui>> {
        if self.ui.is_none() && self.ui_save.is_none() {
            return Ok(None);
        }
        let ui = Ui::start(self.ui.as_deref(), kind, name, &profile.to_toml())?;
        if let Some(url) = ui.url() {
            say!("  live page: {url}");
            let loopback = self
                .ui
                .as_deref()
                .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
                .is_some_and(|addr| addr.ip().is_loopback());
            if !loopback {
                say!(
                    "  note: the page is served beyond loopback: anyone who reaches it can read it"
                );
            }
        }
        Ok(Some(ui))
    }

    /// Ends the page with its last event and saves it if asked.
    fn finish(
        &self,
        ui: Option<Ui>,
        kind: &str,
        last: &impl serde::Serialize,
    ) -> anyhow::Result<()> {
        let Some(ui) = ui else {
            return Ok(());
        };
        ui.finish(kind, last);
        if let Some(path) = &self.ui_save {
            ui.save(path)
                .with_context(|| format!("--ui-save: cannot write {}", path.display()))?;
            say!("  page: {}", path.display());
        }
        Ok(())
    }
}

fn load(args: &ProfileArgs) -> anyhow::Result<(Profile, String)> {
    let profile = Profile::load(&args.profile, &args.overrides)?;
    let name = args.profile.file_name().map_or_else(
        || args.profile.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok((profile, name))
}

fn with_extension(path: &Path, extension: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}.{extension}"))
}

/// What a command over `profile` (read from `path`) reads: the profile
/// and the workload's file or log.
fn inputs_of(path: &Path, profile: &Profile) -> Vec<(String, PathBuf)> {
    let mut inputs = vec![("profile".to_string(), path.to_owned())];
    if let Some(input) = &profile.workload.path {
        inputs.push(("workload.path".into(), input.clone()));
    }
    inputs
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn run_command(args: RunArgs) -> anyhow::Result<()> {
    let (profile, name) = load(&args.profile)?;
    let epochs_path = args.epochs.or_else(|| {
        args.json
            .as_deref()
            .map(|j| with_extension(j, "epochs.jsonl"))
    });
    let hdr_path = args
        .hdr_log
        .or_else(|| args.json.as_deref().map(|j| with_extension(j, "hlog")));
    let mut outputs: Vec<(String, PathBuf)> = [
        ("--json", &args.json),
        ("--epochs", &epochs_path),
        ("--hdr-log", &hdr_path),
    ]
    .into_iter()
    .filter_map(|(flag, path)| path.clone().map(|path| (flag.to_string(), path)))
    .collect();
    if let Some(page) = &args.ui.ui_save {
        outputs.push(("--ui-save".into(), page.clone()));
    }
    if let Some(letters) = &profile.engine.dead_letters {
        outputs.push(("engine.dead_letters".into(), letters.clone()));
    }
    let mut inputs = inputs_of(&args.profile.profile, &profile);
    if let Some(dir) = &args.checkpoint {
        inputs.push(("checkpoint directory".into(), dir.clone()));
    }
    check_outputs(&outputs, &inputs)?;
    for path in [&args.json, &epochs_path, &hdr_path].into_iter().flatten() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    let epochs = match &args.checkpoint {
        Some(dir) => format!("checkpoint {}", dir.display()),
        None => match profile.engine.target_latency {
            Some(target) => format!(
                "interval auto (target {} p99)",
                humantime::format_duration(target)
            ),
            None => format!(
                "interval {}",
                profile
                    .engine
                    .interval
                    .map_or("off".into(), |i| humantime::format_duration(i).to_string())
            ),
        },
    };
    say!(
        "microbatch run {name}: {} workers, {epochs}, {} warm-up + {} measured",
        profile.engine.workers,
        humantime::format_duration(profile.run.warmup),
        humantime::format_duration(profile.run.duration),
    );
    let files = RunFiles {
        interval_log: hdr_path.clone(),
        checkpoint: args.checkpoint.clone(),
    };
    let metrics = args
        .metrics
        .as_deref()
        .map(MetricsServer::start)
        .transpose()?;
    if let Some(metrics) = &metrics {
        say!("  metrics: {}", metrics.url());
    }
    let ui = args.ui.start("run", &name, &profile)?;
    let outcome = {
        let mut bar = Bar::new();
        match &ui {
            Some(ui) => run(&profile, &name, &files, &mut ui.observer(&mut bar))?,
            None => run(&profile, &name, &files, &mut bar)?,
        }
    };
    args.ui.finish(ui, "summary", &outcome.report)?;
    say!("{}", outcome.report.table().trim_end());
    if let Some(path) = &args.json {
        let json =
            serde_json::to_vec_pretty(&outcome.report).context("cannot encode the summary")?;
        write_file(path, &json)?;
        say!("  summary: {}", path.display());
    }
    if let Some(path) = &epochs_path {
        let mut lines = Vec::new();
        for epoch in &outcome.epochs {
            serde_json::to_writer(&mut lines, epoch)
                .context("cannot encode an epoch's progress")?;
            lines.push(b'\n');
        }
        write_file(path, &lines)?;
        say!("  epochs: {}", path.display());
    }
    if let Some(path) = &hdr_path {
        say!("  latency log: {}", path.display());
    }
    Ok(())
}

fn sweep_command(args: SweepArgs) -> anyhow::Result<()> {
    let (profile, name) = load(&args.profile)?;
    let usage = |flag, message| UsageError { flag, message };
    let plan = SweepPlan {
        intervals: parse_intervals(&args.interval).map_err(|m| usage("--interval", m))?,
        max_batch_records: args
            .max_batch_records
            .as_deref()
            .map(parse_max_batch_records)
            .transpose()
            .map_err(|m| usage("--max-batch-records", m))?
            .unwrap_or_default(),
        rates: args
            .rate
            .as_deref()
            .map(parse_rates)
            .transpose()
            .map_err(|m| usage("--rate", m))?
            .unwrap_or_default(),
        repeat: usize::from(args.repeat),
    };
    let dir = args.out.unwrap_or_else(|| {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace(':', "-");
        let stem = args
            .profile
            .profile
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("results").join(format!("sweep-{stem}-{stamp}"))
    });
    let mut outputs: Vec<(String, PathBuf)> =
        ["sweep.csv", "profile.toml", "latency.svg", "throughput.svg"]
            .into_iter()
            .map(|name| (format!("--out {}:", dir.display()), dir.join(name)))
            .collect();
    if let Some(page) = &args.ui.ui_save {
        outputs.push(("--ui-save".into(), page.clone()));
    }
    check_outputs(&outputs, &inputs_of(&args.profile.profile, &profile))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let runs = plan.intervals.len()
        * plan.max_batch_records.len().max(1)
        * (1 + plan.rates.len().max(1))
        * plan.repeat;
    let each = profile.run.warmup + profile.run.duration;
    say!(
        "microbatch sweep {name}: {runs} runs of about {}, about {} in all",
        humantime::format_duration(each),
        humantime::format_duration(Duration::from_secs(each.as_secs() * runs as u64))
    );
    let ui = args.ui.start("sweep", &name, &profile)?;
    let result = {
        let mut bar = Bar::new();
        let progress = bar.0.clone();
        let mut say = |what: &str| announce(&progress, what);
        match &ui {
            Some(ui) => sweep(&profile, &name, &plan, &mut ui.observer(&mut bar), &mut say)?,
            None => sweep(&profile, &name, &plan, &mut bar, &mut say)?,
        }
    };
    #[derive(serde::Serialize)]
    struct SweepDone {
        runs: usize,
        knee: Option<String>,
    }
    let knee = result.knee_line();
    args.ui.finish(
        ui,
        "sweep",
        &SweepDone {
            runs: result.rows.len(),
            knee,
        },
    )?;
    say!("{}", result.table().trim_end());
    let csv = result.write_csv(&dir)?;
    let plots = plot::draw(&result, &dir)?;
    write_file(&dir.join("profile.toml"), profile.to_toml().as_bytes())?;
    say!("  wrote {}", csv.display());
    for plot in plots {
        say!("  wrote {}", plot.display());
    }
    say!(
        "  The knee is where a longer interval stops buying throughput and only adds latency: \
         pick an interval at or just above it."
    );
    Ok(())
}

fn compare_command(args: CompareArgs) -> anyhow::Result<()> {
    let (profile, name) = load(&args.profile)?;
    if let Some(json) = &args.json {
        check_outputs(
            &[("--json".into(), json.clone())],
            &inputs_of(&args.profile.profile, &profile),
        )?;
    }
    let each = profile.run.warmup + profile.run.duration;
    say!(
        "microbatch compare {name}: 6 runs of about {}",
        humantime::format_duration(each)
    );
    let comparison = {
        let mut bar = Bar::new();
        let progress = bar.0.clone();
        compare(&profile, &name, &mut bar, &mut |what| {
            announce(&progress, what)
        })?
    };
    say!("{}", comparison.table().trim_end());
    if let Some(path) = &args.json {
        let json =
            serde_json::to_vec_pretty(&comparison).context("cannot encode the comparison")?;
        write_file(path, &json)?;
        say!("  comparison: {}", path.display());
    }
    Ok(())
}

fn log_write_command(args: LogWriteArgs) -> anyhow::Result<()> {
    let summary = args.write()?;
    say!(
        "wrote {} records in {} blocks, {} segment(s), to {}",
        summary.records,
        summary.blocks,
        summary.segments,
        args.to.display()
    );
    if let Some(rejects) = &summary.rejects {
        say!(
            "skipped {} bad lines: {}",
            summary.rejected,
            rejects.display()
        );
    }
    Ok(())
}

fn log_inspect_command(args: LogInspectArgs) -> anyhow::Result<()> {
    say!("{}", args.inspect()?);
    Ok(())
}

fn nexmark_generate_command(args: GenerateArgs) -> anyhow::Result<()> {
    let written = args.generate()?;
    say!(
        "wrote {} Nexmark events ({} bids, event times {} to {} ms) in {} blocks to {}",
        written.events,
        written.bids,
        written.first_ms,
        written.last_ms,
        written.blocks,
        args.to.display()
    );
    if let Some(csv) = &args.csv {
        say!("bids as CSV: {}", csv.display());
    }
    Ok(())
}
