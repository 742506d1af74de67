//! Schema migrations, one migrator per service. Each service runs only its own migrator
//! against its own schema (PostgreSQL) or file (SQLite); nothing here crosses services.
//!
//! Migrations are additive (expand, then contract in a later release) so that old and new
//! code can run against the same schema during a rolling deploy.

pub use sea_orm_migration::MigratorTrait;

pub mod account;
pub mod audit;
pub mod erasure;
pub mod events;
pub mod identity;
pub mod jobs;
pub mod knowledge_base;
pub mod order_visibility;
mod util;
