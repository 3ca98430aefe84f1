//! The commands of the `microbatch` binary, one module each: `run`,
//! `sweep`, `compare`, `log write` (`import`) and `nexmark generate`. The binary parses the
//! command line and prints; what each command does is here and tested.

pub mod compare;
pub mod import;
pub mod nexmark;
pub mod run;
pub mod sweep;
