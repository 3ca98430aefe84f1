//! The commands of the `microbatch` binary, one module each: `run`,
//! `sweep`, `compare`, and `log write` (`import`). The binary parses the
//! command line and prints; what each command does is here and tested.

pub mod compare;
pub mod import;
pub mod run;
pub mod sweep;
