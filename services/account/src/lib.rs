//! The account service: accounts, contacts, interactions, leads, opportunities, cases,
//! partners and territories, served as an Apollo Federation v2 subgraph.
//!
//! Rooms: `domain` (value sets and validation, no I/O), `entity` (tables), `store`
//! (queries), `graphql` (what clients see), `seed` (the deterministic demo world).

pub mod domain;
pub mod entity;
pub mod graphql;
pub mod seed;
pub mod store;

use std::sync::Arc;

use crm_service_common::events::{EventBus, Relay, feed};
use crm_service_common::http::{PrepareRequest, ReadyCheck, subgraph_router};
use sea_orm::DatabaseConnection;

pub use graphql::{AccountSchema, build_schema, sdl};

/// The service name: its PostgreSQL schema, SQLite file and SDL file are named after it.
pub const SERVICE: &str = "account";

/// The HTTP app: the subgraph (`POST /graphql`), `/health`, `/ready`, and the event feed
/// (`GET /events`).
pub fn app(db: DatabaseConnection) -> axum::Router {
    let schema = build_schema(db.clone());
    let loader_db = db.clone();
    let prepare: PrepareRequest =
        Arc::new(move |request| graphql::prepare_request(&loader_db, request));
    let feed = feed::router(db.clone(), SERVICE);
    let ready: ReadyCheck = Arc::new(move || {
        let db = db.clone();
        Box::pin(async move { db.ping().await.is_ok() })
    });
    subgraph_router(schema, prepare, ready).merge(feed)
}

/// The relay that publishes this service's outbox to `bus`.
pub fn relay(db: DatabaseConnection, bus: EventBus) -> Relay {
    Relay::new(db, SERVICE, bus)
}

/// Applies the account service's migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    use crm_migrations::MigratorTrait;
    crm_migrations::account::Migrator::up(db, None).await?;
    Ok(())
}
