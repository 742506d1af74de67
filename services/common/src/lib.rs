//! What every subgraph service shares: the error model, Relay-style pagination with opaque
//! keyset cursors, database connections (one PostgreSQL schema or one SQLite file per
//! service), the HTTP surface (`POST /graphql`, `/health`, `/ready`) and the validated
//! newtypes that more than one service needs (email, money, bounded text, external ids).

pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod pagination;

pub use error::{ApiError, ApiResult};
