//! `measure`: the measuring tool. Each subcommand measures one thing on
//! this machine, interleaving the variants it compares round by round, so
//! that the machine's drift hits every variant alike and the figures to
//! compare are ratios from one run.
//!
//! ```sh
//! cargo run --release -p microbatch-measure -- <subcommand> [arguments]
//! cargo run --release -p microbatch-measure -- help
//! ```
//!
//! Each subcommand's own docs (its file in `measure/src/`) give its
//! arguments and defaults; `docs/measurements.md` lists the figures each
//! produced, with the command.

mod ab;
mod async_push;
mod auto_interval;
mod balance;
mod batch_vs_microbatch;
mod boxed;
mod end_to_end;
mod engine_only;
mod key_by_ref;
mod log;
mod log_read;
mod profile;
mod queries;
mod ring;
mod salting;
mod scaling;
mod shipped;
mod single_only;
mod skew_keys;
mod skew_producer;
mod timely;
mod ui;
mod windows;

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What a subcommand's `main` returns, as an exit code.
trait Outcome {
    fn exit_code(self) -> ExitCode;
}

impl Outcome for ExitCode {
    fn exit_code(self) -> ExitCode {
        self
    }
}

impl Outcome for Result<(), Box<dyn std::error::Error>> {
    fn exit_code(self) -> ExitCode {
        match self {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("measure: {error}");
                ExitCode::FAILURE
            }
        }
    }
}

/// A subcommand: its name, what it measures, and its `main`.
type Subcommand = (&'static str, &'static str, fn(Vec<String>) -> ExitCode);

/// Every subcommand, named after what it measures.
const SUBCOMMANDS: &[Subcommand] = &[
    ("ring", "the SPSC ring against rtrb, single items: [CAPACITY] [TRIALS]", |a| {
        ring::main(a);
        ExitCode::SUCCESS
    }),
    ("end_to_end", "the engine at 100 ms and 1 ms against 2 × one thread and a naive design: [ROUNDS] [RECORDS]", |a| {
        end_to_end::main(a);
        ExitCode::SUCCESS
    }),
    ("shipped", "the main job as shipped, variant by variant, against W × the loop: [--profile P] [--rounds N] [--records M] [VARIANT...]", |a| shipped::main(a).exit_code()),
    ("timely", "the engine against Timely Dataflow on the same keyed job, at 1 Mi and 10 000 records a worker an epoch: [--profile P] [--rounds N]", |a| timely::main(a).exit_code()),
    ("queries", "several queries: the urgent one's p99 under priority, fifo and alone; and a second query's hot-path cost: [--profile P] [--rounds N]", |a| queries::main(a).exit_code()),
    ("auto_interval", "the adaptive interval against fixed ones at the same load: [--profile P] [--rounds N] [FIXED_INTERVAL...]", |a| auto_interval::main(a).exit_code()),
    ("profile", "profile variants, interleaved: [--in-memory M] PROFILE ROUNDS VARIANT...", |a| profile::main(a).exit_code()),
    ("skew_keys", "Zipf keys against uniform ones over records in memory: [PROFILE] [ROUNDS] [MILLIONS]", |a| skew_keys::main(a).exit_code()),
    ("skew_producer", "an uneven producer, with and without work stealing: [PROFILE] [ROUNDS] [MILLIONS]", |a| skew_producer::main(a).exit_code()),
    ("salting", "a hot key's growing state, unsalted and salted: [ROUNDS] [RECORDS]", |a| salting::main(a).exit_code()),
    ("log", "writing, opening and reading a record log; the job fed from it: [RECORDS]", |a| {
        log::main(a);
        ExitCode::SUCCESS
    }),
    ("log_read", "a record log read as records or lent in place: [ROUNDS] [LOG_DIR]", |a| log_read::main(a).exit_code()),
    ("scaling", "what two cores give with no engine at all: [ROUNDS] [RECORDS]", |a| {
        scaling::main(a);
        ExitCode::SUCCESS
    }),
    ("balance", "per-epoch figures at a fixed rate: RATE_M INTERVAL_MS SECONDS", |a| {
        balance::main(a);
        ExitCode::SUCCESS
    }),
    ("batch_vs_microbatch", "the click-stream case as one batch and as micro-batches: [EVENTS] [RATE]", |a| batch_vs_microbatch::main(a).exit_code()),
    ("ui", "the live page's cost: the profile with and without --ui: [PROFILE] [ROUNDS] [KEY=VALUE ...]", |a| ui::main(a).exit_code()),
    ("boxed", "a job behind Box<dyn Job> against its own type: [ROUNDS] [RECORDS]", |a| {
        boxed::main(a);
        ExitCode::SUCCESS
    }),
    ("async_push", "a push by handle: blocking, shared, async: [ROUNDS] [RECORDS]", |a| {
        async_push::main(a);
        ExitCode::SUCCESS
    }),
    ("key_by_ref", "a key borrowed from the record against one made per record: [ROUNDS] [RECORDS]", |a| {
        key_by_ref::main(a);
        ExitCode::SUCCESS
    }),
    ("windows", "a keyed count per window (tumbling, hopping) against unwindowed: [ROUNDS] [RECORDS]", |a| {
        windows::main(a);
        ExitCode::SUCCESS
    }),
    ("engine_only", "the engine alone, for profilers: WORKERS RECORDS", |a| {
        engine_only::main(a);
        ExitCode::SUCCESS
    }),
    ("single_only", "the single-thread loop alone, for profilers: RECORDS", |a| {
        single_only::main(a);
        ExitCode::SUCCESS
    }),
];

fn usage() -> String {
    let mut text = String::from("usage: measure <subcommand> [arguments]\n\nsubcommands:\n");
    for (name, what, _) in SUBCOMMANDS {
        text.push_str(&format!("  {name:<20} {what}\n"));
    }
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
    if matches!(name.as_str(), "help" | "--help" | "-h") {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    match SUBCOMMANDS.iter().find(|(known, _, _)| known == name) {
        Some((_, _, main)) => main(args),
        None => {
            eprint!("measure: no subcommand `{name}`\n\n{}", usage());
            ExitCode::from(2)
        }
    }
}
