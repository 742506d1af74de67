//! The one description of a subgraph service: its name, schema, migrations, demo seed, HTTP
//! app and event relay. Every service implements [`Subgraph`]; composition, the all-in-one
//! process, `crm service NAME` and the tests all iterate over the same list of them, so the
//! wiring of a service is written once, in the service.

use sea_orm::DatabaseConnection;

use crate::events::{EventBus, Relay};
use crate::internal_auth::SubgraphAuth;
use crate::seed::SeededPartner;

pub use crm_contract::BoxFuture;

/// The size and seed of the demo world.
#[derive(Clone, Copy, Debug)]
pub struct DemoWorld {
    pub seed: u64,
    pub accounts: usize,
}

impl Default for DemoWorld {
    fn default() -> Self {
        Self {
            seed: 42,
            accounts: 60,
        }
    }
}

/// What the demo seeds of earlier services give the later ones (seeds run in the order of
/// the subgraph list: accounts and partners, then the orders that refer to them, then the
/// articles about the products, then the users of the partners).
#[derive(Clone, Debug, Default)]
pub struct DemoRefs {
    pub partners: Vec<SeededPartner>,
    /// Account ids with the code of their territory.
    pub accounts: Vec<(String, Option<String>)>,
    /// Products as `(id, name, sku)`.
    pub products: Vec<(String, String, String)>,
}

/// What one service's demo seed wrote: counts by what was written, in a fixed order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedCounts(pub Vec<(&'static str, usize)>);

impl SeedCounts {
    /// The count of `what` (`accounts`, `orders`, …); 0 when this seed writes none.
    pub fn get(&self, what: &str) -> usize {
        self.0
            .iter()
            .find(|(name, _)| *name == what)
            .map_or(0, |(_, n)| *n)
    }
}

/// A subgraph service, as every process that runs or composes it needs it.
pub trait Subgraph: Send + Sync {
    /// Its name in the supergraph, and the audience of the tokens the gateway signs for it.
    fn name(&self) -> &'static str;
    /// Its database: a PostgreSQL schema, or an SQLite file, of this name.
    fn service(&self) -> &'static str;
    /// The loopback port it listens on as its own process (`crm service`), and the routing
    /// URL the committed supergraph names.
    fn port(&self) -> u16;
    /// Its SDL, from the code.
    fn sdl(&self) -> String;
    /// Applies its migrations.
    fn migrate<'a>(&'a self, db: &'a DatabaseConnection) -> BoxFuture<'a, anyhow::Result<()>>;
    /// Writes its part of the demo world when it holds no data yet (`None`: it held data),
    /// and adds to `refs` what the later seeds refer to (read back when already seeded, so
    /// a partly seeded system is completed rather than duplicated).
    fn seed<'a>(
        &'a self,
        db: &'a DatabaseConnection,
        world: DemoWorld,
        refs: &'a mut DemoRefs,
    ) -> BoxFuture<'a, anyhow::Result<Option<SeedCounts>>>;
    /// Completes a demo world this run seeded, once every service has seeded (links to
    /// what later services wrote: the account service's opportunities name the order
    /// service's products).
    fn complete_seed<'a>(
        &'a self,
        _db: &'a DatabaseConnection,
        _world: DemoWorld,
        _refs: &'a DemoRefs,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Its HTTP app (`POST /graphql`, health, readiness), answering what `auth` lets in.
    fn serve<'a>(
        &'a self,
        db: DatabaseConnection,
        auth: SubgraphAuth,
    ) -> BoxFuture<'a, anyhow::Result<axum::Router>>;
    /// The relay that publishes its outbox, when it writes events.
    fn relay(&self, _db: DatabaseConnection, _bus: EventBus) -> Option<Relay> {
        None
    }
    /// The sealer of its audit chains, when it keeps an audit log (its key is the
    /// process's, `crate::audit::chain::install`).
    fn audit_sealer(&self, _db: DatabaseConnection) -> Option<crate::audit::chain::SealerHandle> {
        None
    }
    /// The runner of its deferred and scheduled jobs, when it has any.
    fn jobs(&self, _db: DatabaseConnection) -> Option<crate::jobs::JobRunner> {
        None
    }
}

/// A service's demo seed (see [`Subgraph::seed`]).
pub type SeedFn = for<'a> fn(
    &'a DatabaseConnection,
    DemoWorld,
    &'a mut DemoRefs,
) -> BoxFuture<'a, anyhow::Result<Option<SeedCounts>>>;

/// A service's completion of the demo world (see [`Subgraph::complete_seed`]).
pub type CompleteSeedFn = for<'a> fn(
    &'a DatabaseConnection,
    DemoWorld,
    &'a DemoRefs,
) -> BoxFuture<'a, anyhow::Result<()>>;

/// A data service described by its parts: what the account, order-visibility and
/// knowledge-base services are (identity, which keeps what it opened, implements
/// [`Subgraph`] itself). Each of them publishes its outbox.
pub struct ServiceSubgraph {
    pub name: &'static str,
    pub service: &'static str,
    pub port: u16,
    pub sdl: fn() -> String,
    pub migrate: for<'a> fn(&'a DatabaseConnection) -> BoxFuture<'a, anyhow::Result<()>>,
    pub seed: SeedFn,
    pub complete_seed: Option<CompleteSeedFn>,
    pub app: fn(DatabaseConnection, SubgraphAuth) -> axum::Router,
    /// Its job runner with the handlers of its job kinds, if it defers work.
    pub jobs: Option<fn(DatabaseConnection) -> crate::jobs::JobRunner>,
}

impl ServiceSubgraph {
    /// The relay that publishes this service's outbox to `bus`.
    pub fn outbox_relay(&self, db: DatabaseConnection, bus: EventBus) -> Relay {
        Relay::new(db, self.service, bus)
    }
}

impl Subgraph for ServiceSubgraph {
    fn name(&self) -> &'static str {
        self.name
    }
    fn service(&self) -> &'static str {
        self.service
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn sdl(&self) -> String {
        (self.sdl)()
    }
    fn migrate<'a>(&'a self, db: &'a DatabaseConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        (self.migrate)(db)
    }
    fn seed<'a>(
        &'a self,
        db: &'a DatabaseConnection,
        world: DemoWorld,
        refs: &'a mut DemoRefs,
    ) -> BoxFuture<'a, anyhow::Result<Option<SeedCounts>>> {
        (self.seed)(db, world, refs)
    }
    fn complete_seed<'a>(
        &'a self,
        db: &'a DatabaseConnection,
        world: DemoWorld,
        refs: &'a DemoRefs,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        match self.complete_seed {
            Some(complete) => complete(db, world, refs),
            None => Box::pin(async { Ok(()) }),
        }
    }
    fn serve<'a>(
        &'a self,
        db: DatabaseConnection,
        auth: SubgraphAuth,
    ) -> BoxFuture<'a, anyhow::Result<axum::Router>> {
        let app = (self.app)(db, auth);
        Box::pin(async move { Ok(app) })
    }
    fn relay(&self, db: DatabaseConnection, bus: EventBus) -> Option<Relay> {
        Some(self.outbox_relay(db, bus))
    }
    fn jobs(&self, db: DatabaseConnection) -> Option<crate::jobs::JobRunner> {
        self.jobs.map(|runner| runner(db))
    }
    fn audit_sealer(&self, db: DatabaseConnection) -> Option<crate::audit::chain::SealerHandle> {
        match crate::audit::chain::key_for(self.service) {
            Ok(key) => Some(crate::audit::chain::spawn_sealer(
                db,
                key,
                crate::audit::chain::SEAL_EVERY,
            )),
            Err(error) => {
                tracing::error!(service = self.service, %error, "no audit key: the audit log is not sealed");
                None
            }
        }
    }
}
