//! What the live page costs a run: the profile run without a page and
//! with one (`--ui` on a loopback port, a client reading its event stream
//! as a browser would), alternating which goes first, in each round:
//!
//! ```text
//! ui [PROFILE] [ROUNDS] [section.key=value ...]
//! ```
//!
//! Defaults: `profiles/default.toml`, 5 rounds; the overrides are the
//! CLI's `--set`. Prints each round, the
//! medians and the median of the paired ratios.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::ExitCode;

use crate::ab::median;
use microbatch_cli::commands::run::run;
use microbatch_cli::driver::{Quiet, RunFiles};
use microbatch_cli::profile::Profile;
use microbatch_cli::ui::Ui;

/// One run's throughput, with the page or without.
fn once(profile: &Profile, with_page: bool) -> Result<f64, String> {
    let files = RunFiles::default();
    let report = if with_page {
        let ui = Ui::start(Some("127.0.0.1:0"), "run", "measure", &profile.to_toml())
            .map_err(|e| e.to_string())?;
        let addr = ui
            .url()
            .expect("served")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        // A client that reads the event stream to its end, as a browser.
        let reader = std::thread::spawn(move || {
            let mut stream = TcpStream::connect(&addr).ok()?;
            stream
                .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut sink = Vec::new();
            stream.read_to_end(&mut sink).ok()?;
            Some(sink.len())
        });
        let report = run(profile, "measure", &files, &mut ui.observer(&mut Quiet))
            .map_err(|e| e.to_string())?
            .report;
        ui.finish("summary", &report);
        drop(ui);
        let _ = reader.join();
        report
    } else {
        run(profile, "measure", &files, &mut Quiet)
            .map_err(|e| e.to_string())?
            .report
    };
    Ok(report.throughput_rps)
}

/// Runs it; `args` are the command line from this subcommand's name on.
pub fn main(args: Vec<String>) -> ExitCode {
    let args: Vec<String> = args.into_iter().skip(1).collect();
    let path = args.first().map_or("profiles/default.toml", String::as_str);
    let rounds: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5).max(1);
    let overrides: Vec<String> = args.iter().skip(2).cloned().collect();
    let profile = match Profile::load(Path::new(path), &overrides) {
        Ok(profile) => profile,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let (mut plain, mut paged, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut pair = [0.0; 2];
        for with_page in order {
            match once(&profile, with_page) {
                Ok(rate) => pair[usize::from(with_page)] = rate,
                Err(error) => {
                    eprintln!("measure ui: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        println!(
            "round {round}: without the page {:.1} M/s, with it {:.1} M/s ({:.3}x)",
            pair[0] / 1e6,
            pair[1] / 1e6,
            pair[1] / pair[0]
        );
        plain.push(pair[0]);
        paged.push(pair[1]);
        ratios.push(pair[1] / pair[0]);
    }
    println!(
        "median: without {:.1} M/s, with {:.1} M/s; median paired ratio {:.3}",
        median(&mut plain) / 1e6,
        median(&mut paged) / 1e6,
        median(&mut ratios)
    );
    ExitCode::SUCCESS
}
