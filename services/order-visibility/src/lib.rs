//! The order-visibility service: products, orders, order lines and shipments, served as
//! an Apollo Federation v2 subgraph. It extends the account service's `Account` (its
//! orders) and `Partner` (products supplied, orders fulfilled) by key only, and publishes
//! order events through its outbox.
//!
//! Rooms: `domain` (statuses and their state machines, formats; no I/O), `entity`
//! (tables), `store` (the aggregate's write rules and events), `graphql` (what clients
//! see), `seed` (its part of the demo world).

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

pub use graphql::{OrderVisibilitySchema, build_schema, sdl};

/// The service name: its PostgreSQL schema, SQLite file, SDL file and event source.
pub const SERVICE: &str = "order_visibility";

/// Its name in the supergraph (the audience of the gateway tokens it accepts).
pub const SUBGRAPH: &str = "order-visibility";

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
    crm_migrations::order_visibility::Migrator::up(db, None).await?;
    Ok(())
}
