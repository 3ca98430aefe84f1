//! Loom models of microbatch's concurrent protocols, in `tests/`.
//!
//! They compile to nothing unless built with `RUSTFLAGS="--cfg loom"`; the
//! workspace's test command (`cargo xtask test`) runs them that way, with
//! `LOOM_MAX_PREEMPTIONS` bounded so they finish in minutes.
