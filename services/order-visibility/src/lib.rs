//! The order-visibility service: products, orders, order lines and shipments, served as
//! an Apollo Federation v2 subgraph. It extends the account service's `Account` (its
//! orders) and `Partner` (products supplied, orders fulfilled) by key only, and publishes
//! order events through its outbox.
//!
//! Rooms: `domain` (statuses and their state machines, formats; no I/O), `entity`
//! (tables), `store` (the aggregate's write rules and events), `graphql` (what clients
//! see), `seed` (its part of the demo world).

pub mod access;
pub mod demand;
pub mod domain;
pub mod entity;
pub mod erasure;
pub mod graphql;
pub mod order_suppliers;
pub mod seed;
pub mod store;

use anyhow::Context;
use crm_service_common::http::service_router;
use crm_service_common::internal_auth::SubgraphAuth;
use crm_service_common::subgraph::{DemoRefs, DemoWorld, SeedCounts, ServiceSubgraph};
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

/// Applies the service's migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    use crm_migrations::MigratorTrait;
    crm_migrations::order_visibility::Migrator::up(db, None).await?;
    Ok(())
}

/// The order-visibility service as every process runs and composes it.
pub fn subgraph() -> ServiceSubgraph {
    ServiceSubgraph {
        name: SUBGRAPH,
        service: SERVICE,
        port: 4002,
        sdl,
        migrate: |db| Box::pin(migrate(db)),
        seed: |db, world, refs| Box::pin(seed_demo(db, world, refs)),
        complete_seed: None,
        app,
        jobs: None,
    }
}

/// Writes this service's part of the demo world when it is empty, and adds what the later
/// seeds refer to.
async fn seed_demo(
    db: &DatabaseConnection,
    world: DemoWorld,
    refs: &mut DemoRefs,
) -> anyhow::Result<Option<SeedCounts>> {
    use crm_service_common::principal::PrincipalKind;
    let counts = if seed::is_seeded(db).await? {
        None
    } else {
        let world_refs = seed::WorldRefs {
            suppliers: refs
                .partners
                .iter()
                .filter(|p| p.kind == PrincipalKind::Supplier)
                .map(|p| p.id.clone())
                .collect(),
            distributors: refs
                .partners
                .iter()
                .filter(|p| p.kind == PrincipalKind::Distributor)
                .map(|p| (p.id.clone(), p.territories.clone()))
                .collect(),
            accounts: refs.accounts.clone(),
        };
        let s = seed::seed(db, world.seed, &world_refs)
            .await
            .context("seeding orders")?;
        Some(SeedCounts(vec![
            ("products", s.products),
            ("orders", s.orders),
            ("lines", s.lines),
            ("shipments", s.shipments),
        ]))
    };
    refs.products = seed::product_refs(db).await?;
    Ok(counts)
}
