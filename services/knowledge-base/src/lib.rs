//! The knowledge-base service: articles for internal staff, suppliers, distributors and
//! the public, with an editorial lifecycle and full-text search, served as an Apollo
//! Federation v2 subgraph. It extends the order-visibility service's `Product` with the
//! articles linked to it.
//!
//! Rooms: `domain` (audiences, lifecycle, tags, search parsing; no I/O), `entity`
//! (tables), `store` (product links, search), `graphql` (what clients see), `seed` (its
//! part of the demo world).

pub mod access;
pub mod domain;
pub mod entity;
pub mod graphql;
pub mod seed;
pub mod store;

use crm_service_common::events::{EventBus, Relay};
use crm_service_common::http::service_router;
use crm_service_common::internal_auth::SubgraphAuth;
use sea_orm::DatabaseConnection;

pub use graphql::{KnowledgeBaseSchema, build_schema, sdl};

/// The service name: its PostgreSQL schema, SQLite file, SDL file and event source.
pub const SERVICE: &str = "knowledge_base";

/// Its name in the supergraph (the audience of the gateway tokens it accepts).
pub const SUBGRAPH: &str = "knowledge-base";

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

/// Applies the service's migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    use crm_migrations::MigratorTrait;
    crm_migrations::knowledge_base::Migrator::up(db, None).await?;
    Ok(())
}
