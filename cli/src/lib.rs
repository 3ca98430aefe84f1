//! The `microbatch` command-line tool's library: profiles, the driver that
//! runs one, the jobs it can run (behind one registry), the commands, and
//! the reports and plots. The binary (`src/main.rs`) parses the command
//! line and prints; everything it runs is here and tested.
//!
//! - [`profile`]: one TOML file describes a whole experiment.
//! - [`driver`]: starts the engine on a profile's job and feed of records,
//!   watches the warm-up and measured window, reports.
//! - [`jobs`]: the registry of jobs (`keyed`, `global`, `clickstream`).
//! - [`commands`]: `run`, `sweep`, `compare`, `log write`.
//! - [`report`], [`plot`], [`cpu`]: what a run prints and draws, and how
//!   its CPU time and memory are read; [`interval_choice`]: what the
//!   adaptive interval chose and whether its target held.
//! - [`paths`]: the outputs a command writes, checked before it runs.
//! - [`exporter`]: the engine's metrics in Prometheus text (`--metrics`).
//! - [`ui`]: the live page of a run or a sweep; [`terminal`]: the
//!   progress bar.

#![deny(missing_docs)]

pub mod commands;
pub mod cpu;
pub mod driver;
pub mod exporter;
mod http;
pub mod interval_choice;
pub mod jobs;
pub mod paths;
pub mod plot;
pub mod profile;
pub mod report;
pub mod terminal;
pub mod text;
pub mod ui;
