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
pub mod erasure;
pub mod graphql;
pub mod seed;
pub mod store;

use anyhow::Context;
use crm_service_common::http::service_router;
use crm_service_common::internal_auth::SubgraphAuth;
use crm_service_common::subgraph::{DemoRefs, DemoWorld, SeedCounts, ServiceSubgraph};
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

/// Applies the service's migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    use crm_migrations::MigratorTrait;
    crm_migrations::knowledge_base::Migrator::up(db, None).await?;
    Ok(())
}

/// The knowledge-base service as every process runs and composes it.
pub fn subgraph() -> ServiceSubgraph {
    ServiceSubgraph {
        name: SUBGRAPH,
        service: SERVICE,
        port: 4003,
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
    if seed::is_seeded(db).await? {
        return Ok(None);
    }
    let products: Vec<seed::ProductRef> = refs
        .products
        .iter()
        .map(|(id, name, sku)| seed::ProductRef {
            id: id.clone(),
            name: name.clone(),
            sku: sku.clone(),
        })
        .collect();
    let s = seed::seed(db, world.seed, &products)
        .await
        .context("seeding articles")?;
    Ok(Some(SeedCounts(vec![("articles", s.articles)])))
}
