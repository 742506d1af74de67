//! The federation gateway: composition of subgraph SDLs into a supergraph, and the engine
//! that plans and executes client operations over the subgraphs with the Hive planner and
//! executor. `server` is its HTTP door.

pub mod compose;
pub mod engine;
mod export;
pub mod live;
pub mod metrics;
pub mod server;
mod streams;
