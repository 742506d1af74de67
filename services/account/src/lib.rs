//! The account service: accounts, contacts, interactions, leads, opportunities, cases,
//! partners and territories, served as an Apollo Federation v2 subgraph.
//!
//! Rooms: `domain` (value sets and validation, no I/O), `entity` (tables), `store`
//! (queries), `graphql` (what clients see), `seed` (the deterministic demo world).

pub mod access;
pub mod domain;
pub mod entity;
pub mod graphql;
pub mod seed;
pub mod shares;
pub mod store;

use crm_service_common::events::{EventBus, Relay};
use crm_service_common::http::service_router;
use crm_service_common::internal_auth::SubgraphAuth;
use sea_orm::DatabaseConnection;

pub use graphql::{AccountSchema, build_schema, sdl};

/// The service name: its PostgreSQL schema, SQLite file and SDL file are named after it.
pub const SERVICE: &str = "account";

/// Its name in the supergraph (the audience of the gateway tokens it accepts).
pub const SUBGRAPH: &str = "account";

/// The HTTP app: the subgraph (`POST /graphql`), `/health`, `/ready`, and the event feed
/// (`GET /events`); `auth` says whether callers need a gateway token.
pub fn app(db: DatabaseConnection, auth: SubgraphAuth) -> axum::Router {
    service_router(
        build_schema(db.clone()),
        db,
        SERVICE,
        graphql::prepare_request,
        auth,
    )
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
