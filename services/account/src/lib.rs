//! The account service: accounts, contacts, interactions, leads, opportunities, cases,
//! partners and territories, served as an Apollo Federation v2 subgraph.
//!
//! Rooms: `domain` (value sets and validation, no I/O), `entity` (tables), `store`
//! (queries), `graphql` (what clients see), `seed` (the deterministic demo world).

pub mod access;
pub mod data_export;
pub mod domain;
pub mod entity;
pub mod erasure;
pub mod graphql;
pub mod jobs;
pub mod order_notifications;
pub mod partner_accounts;
pub mod retention;
pub mod seed;
pub mod shares;
pub mod store;
pub mod territory_shares;

use anyhow::Context;
use crm_service_common::http::service_router;
use crm_service_common::internal_auth::SubgraphAuth;
use crm_service_common::subgraph::{DemoRefs, DemoWorld, SeedCounts, ServiceSubgraph};
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

/// Applies the account service's migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    use crm_migrations::MigratorTrait;
    crm_migrations::account::Migrator::up(db, None).await?;
    store::fill_name_keys(db).await?;
    Ok(())
}

/// The account service as every process runs and composes it.
pub fn subgraph() -> ServiceSubgraph {
    ServiceSubgraph {
        name: SUBGRAPH,
        service: SERVICE,
        port: 4001,
        sdl,
        migrate: |db| Box::pin(migrate(db)),
        seed: |db, world, refs| Box::pin(seed_demo(db, world, refs)),
        complete_seed: Some(|db, world, refs| {
            Box::pin(async move {
                seed::plan_demand(db, world.seed, &refs.products)
                    .await
                    .context("planning the demo's demand")?;
                Ok(())
            })
        }),
        app,
        jobs: Some(jobs::runner),
    }
}

/// Writes this service's part of the demo world when it is empty, and adds what the later
/// seeds refer to.
async fn seed_demo(
    db: &DatabaseConnection,
    world: DemoWorld,
    refs: &mut DemoRefs,
) -> anyhow::Result<Option<SeedCounts>> {
    let counts = if seed::is_seeded(db).await? {
        None
    } else {
        let s = seed::seed(db, world.seed, world.accounts)
            .await
            .context("seeding accounts")?;
        Some(SeedCounts(vec![
            ("territories", s.territories),
            ("partners", s.partners.len()),
            ("accounts", s.accounts),
            ("contacts", s.contacts),
            ("interactions", s.interactions),
            ("leads", s.leads),
            ("opportunities", s.opportunities),
            ("cases", s.cases),
            ("case_comments", s.case_comments),
            ("tasks", s.tasks),
            ("notifications", s.notifications),
            ("deal_registrations", s.registrations),
        ]))
    };
    let (partners, accounts) = seed::demo_refs(db).await?;
    refs.partners = partners;
    refs.accounts = accounts.into_iter().map(|a| (a.id, a.territory)).collect();
    Ok(counts)
}
