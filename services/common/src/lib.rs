//! What every subgraph service shares: the error model, Relay-style pagination with opaque
//! keyset cursors, database connections (one PostgreSQL schema or one SQLite file per
//! service), the HTTP surface (`POST /graphql`, `/health`, `/ready`) and the validated
//! newtypes that more than one service needs (email, money, bounded text, external ids), the
//! generic record store and GraphQL building blocks, and domain events (outbox, relay, bus,
//! feed, consumer).

pub mod access;
pub mod audit;
pub mod clock;
pub mod db;
pub mod domain;
pub mod erasure;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod import;
pub mod jobs;
pub mod normalise;
pub mod pagination;
pub mod policy_sync;
pub mod principal;
pub mod privacy;
pub mod record;
pub mod retention;
pub mod scope_plan;
pub mod search;
pub mod seed;
pub mod signal;
pub mod subgraph;

/// The internal token between the router and the services (re-exported from the leaf
/// crate both sides use).
pub use crm_contract::{ErrorCode, internal_auth};
pub use error::{ApiError, ApiResult};
