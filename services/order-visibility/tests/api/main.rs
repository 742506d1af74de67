//! The order-visibility service's integration tests, in one binary (one build and link for
//! all): the subgraph over HTTP, its domain events, and its demo seed.

mod api;
mod events;
mod seed;
