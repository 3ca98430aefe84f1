//! The commands of the `microbatch` binary, one module each: `run`,
//! `sweep`, `compare`, `log write` (`import`), `nexmark generate` and
//! `kafka produce`. The binary parses the command line and prints; what
//! each command does is here and tested.

pub mod compare;
pub mod import;
pub mod kafka;
pub mod nexmark;
pub mod run;
pub mod sweep;
