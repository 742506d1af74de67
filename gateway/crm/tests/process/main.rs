//! The `crm` binary run as real processes, in one test binary (one build and link for all):
//! the benchmark smoke run, a foreign supergraph behind `crm gateway`, and policy edits
//! reaching other processes.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod bench_quick;
mod foreign_supergraph;
mod policy_propagation;
mod support;
