//! The knowledge-base service's integration tests, in one binary (one build and link for
//! all): the subgraph over HTTP, and its demo seed.

mod api;
mod seed;
