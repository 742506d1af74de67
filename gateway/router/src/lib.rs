//! The federation router as a library: composition of subgraph SDLs into a supergraph, the
//! engine that plans and executes operations over the subgraphs with the Hive planner and
//! executor, the HTTP server in front of it, its limits and metrics.
//!
//! It knows no service: who is calling comes from a [`crm_contract::Door`] it is given, and
//! what it signs for the subgraphs is the internal token of `crm_contract`. The `crm`
//! binary wires it to our subgraphs; `crm gateway` serves any supergraph with it.

pub mod federation;
pub mod limits;
pub mod rate_limit;
