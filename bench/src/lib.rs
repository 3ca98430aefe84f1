//! The criterion benches of microbatch (`benches/`) and the baselines they
//! compare against, shared with the measuring tool (`measure/`): the
//! single-thread loop of the end_to_end job, queue adapters for the ring
//! and rtrb, pinned transfers between two threads. Every bench measures
//! its baselines in the same criterion group, so the figures to compare
//! are ratios from one run.

#![deny(missing_docs)]

pub mod end_to_end;
pub mod pin;
pub mod queues;
pub mod timely_job;
pub mod transfer;
