//! The `crm` binary run as real processes, in one test binary (one build and link for all):
//! the benchmark smoke run, a foreign supergraph behind `crm gateway`, and policy edits
//! and the directory's changes reaching other processes.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod bench_quick;
mod door_propagation;
mod foreign_supergraph;
mod policy_propagation;
mod read_log_crash;
mod support;
