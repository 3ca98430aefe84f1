//! The `microbatch` command-line tool's library: profiles, runs, sweeps,
//! comparisons, plots. The binary (`src/bin/microbatch.rs`) parses the
//! command line and prints; everything it runs is here and tested.

pub mod clickstream;
pub mod compare;
pub mod cpu;
pub mod import;
pub mod jobs;
pub mod plot;
pub mod profile;
pub mod report;
pub mod run;
pub mod sweep;
