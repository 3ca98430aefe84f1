//! Benchmark support for microbatch: the pieces the criterion benches in
//! `benches/` share. Every bench measures its baselines in the same
//! criterion group, so the figures to compare are ratios from one run.

#![deny(missing_docs)]

pub mod ab;
pub mod cli;
pub mod clickstream;
pub mod end_to_end;
pub mod pin;
pub mod queues;
pub mod transfer;
