//! The account service's integration tests, in one binary (one build and link for all):
//! the subgraph over HTTP on a fresh database per test, and its demo seed.

mod api;
mod seed;
mod support;
mod territory_shares;
