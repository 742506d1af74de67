//! Starting the pieces of the system: databases (migrated), the demo seed, and the
//! processes. The all-in-one process and the separate `crm service …` processes run the
//! same code; only where the data lives and which listeners open differ.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use crm_service_common::db::{DbTarget, connect};
use crm_service_common::events::EventBus;
use crm_service_common::events::relay::RelayHandle;
use crm_service_common::internal_auth::{Caller, KeyPair, SubgraphAuth};
use std::sync::Arc;

use crate::federation::engine::{Engine, EngineConfig};
use crate::federation::server::{DoorConfig, TokenMinter};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::identity;

/// Where data lives: PostgreSQL (`DATABASE_URL`, one schema per service) or SQLite files
/// under `data_dir` (the embedded default); where events go: Redis Streams (`REDIS_URL`)
/// or in-process streams.
#[derive(Clone, Debug, Default)]
pub struct Storage {
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub redis_url: Option<String>,
    /// The prefix of this deployment's Redis stream keys (default `crm`).
    pub event_namespace: Option<String>,
}

impl Storage {
    pub fn target(&self, service: &str) -> DbTarget {
        DbTarget::for_service(self.database_url.as_deref(), &self.data_dir, service)
    }

    pub fn describe(&self) -> String {
        let data = match &self.database_url {
            Some(url) if !url.is_empty() => format!("PostgreSQL ({})", redact(url)),
            _ => format!("SQLite files in {}", self.data_dir.display()),
        };
        match &self.redis_url {
            Some(url) if !url.is_empty() => format!("{data}; events on Redis ({})", redact(url)),
            _ => format!("{data}; events in-process"),
        }
    }

    /// The event bus: Redis Streams when configured, in-process otherwise.
    pub async fn event_bus(&self) -> anyhow::Result<EventBus> {
        EventBus::connect(self.redis_url.as_deref(), self.event_namespace.as_deref()).await
    }
}

/// Hides the password of a database URL for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The connections of every service, migrated.
pub struct Databases {
    pub account: DatabaseConnection,
    pub order_visibility: DatabaseConnection,
    pub knowledge_base: DatabaseConnection,
    pub identity: DatabaseConnection,
}

pub async fn open_databases(storage: &Storage) -> anyhow::Result<Databases> {
    let account = connect(&storage.target(crm_account::SERVICE)).await?;
    crm_account::migrate(&account)
        .await
        .context("migrating the account schema")?;
    let order_visibility = connect(&storage.target(crm_order_visibility::SERVICE)).await?;
    crm_order_visibility::migrate(&order_visibility)
        .await
        .context("migrating the order-visibility schema")?;
    let knowledge_base = connect(&storage.target(crm_knowledge_base::SERVICE)).await?;
    crm_knowledge_base::migrate(&knowledge_base)
        .await
        .context("migrating the knowledge-base schema")?;
    let identity = connect(&storage.target(identity::SERVICE)).await?;
    identity::migrate(&identity).await?;
    Ok(Databases {
        account,
        order_visibility,
        knowledge_base,
        identity,
    })
}

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

/// What a demo seed wrote, per service (`None`: that service already held data).
#[derive(Clone, Debug, Default)]
pub struct DemoSummary {
    pub account: Option<crm_account::seed::SeedSummary>,
    pub order_visibility: Option<crm_order_visibility::seed::SeedSummary>,
    pub knowledge_base: Option<crm_knowledge_base::seed::SeedSummary>,
    pub users: usize,
}

impl std::fmt::Display for DemoSummary {
    /// One line of counts, e.g. `accounts=60 contacts=173 … articles=56 users=20`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(a) = &self.account {
            parts.push(format!(
                "territories={} partners={} accounts={} contacts={} interactions={} leads={} opportunities={} cases={}",
                a.territories,
                a.partners.len(),
                a.accounts,
                a.contacts,
                a.interactions,
                a.leads,
                a.opportunities,
                a.cases
            ));
        }
        if let Some(o) = &self.order_visibility {
            parts.push(format!(
                "products={} orders={} lines={} shipments={}",
                o.products, o.orders, o.lines, o.shipments
            ));
        }
        if let Some(k) = &self.knowledge_base {
            parts.push(format!("articles={}", k.articles));
        }
        parts.push(format!("users={}", self.users));
        f.write_str(&parts.join(" "))
    }
}

impl DemoSummary {
    pub fn wrote_anything(&self) -> bool {
        self.account.is_some()
            || self.order_visibility.is_some()
            || self.knowledge_base.is_some()
            || self.users > 0
    }
}

/// Seeds each service that holds no data yet, in dependency order: accounts and partners,
/// then products and orders that refer to them, then articles linked to the products,
/// then the users of the directory. Each service's seed is one transaction, and the later
/// seeds read what they refer to back from the earlier services' public crates, so a
/// partly seeded system is completed rather than duplicated.
pub async fn seed_if_empty(dbs: &Databases, world: DemoWorld) -> anyhow::Result<DemoSummary> {
    let mut summary = DemoSummary::default();
    if !crm_account::seed::is_seeded(&dbs.account).await? {
        summary.account = Some(
            crm_account::seed::seed(&dbs.account, world.seed, world.accounts)
                .await
                .context("seeding accounts")?,
        );
    }
    let (partners, accounts) = crm_account::seed::demo_refs(&dbs.account).await?;
    if !crm_order_visibility::seed::is_seeded(&dbs.order_visibility).await? {
        use crm_account::domain::PartnerKind;
        let refs = crm_order_visibility::seed::WorldRefs {
            suppliers: partners
                .iter()
                .filter(|p| p.kind == PartnerKind::Supplier)
                .map(|p| p.id.clone())
                .collect(),
            distributors: partners
                .iter()
                .filter(|p| p.kind == PartnerKind::Distributor)
                .map(|p| (p.id.clone(), p.territories.clone()))
                .collect(),
            accounts: accounts
                .iter()
                .map(|a| (a.id.clone(), a.territory.clone()))
                .collect(),
        };
        summary.order_visibility = Some(
            crm_order_visibility::seed::seed(&dbs.order_visibility, world.seed, &refs)
                .await
                .context("seeding orders")?,
        );
    }
    if !crm_knowledge_base::seed::is_seeded(&dbs.knowledge_base).await? {
        let products: Vec<crm_knowledge_base::seed::ProductRef> =
            crm_order_visibility::seed::product_refs(&dbs.order_visibility)
                .await?
                .into_iter()
                .map(|(id, name, sku)| crm_knowledge_base::seed::ProductRef { id, name, sku })
                .collect();
        summary.knowledge_base = Some(
            crm_knowledge_base::seed::seed(&dbs.knowledge_base, world.seed, &products)
                .await
                .context("seeding articles")?,
        );
    }
    if !identity::is_seeded(&dbs.identity).await? {
        let users = identity::demo_users(&partners);
        identity::seed(&dbs.identity, &users).await?;
        summary.users = users.len();
    }
    Ok(summary)
}

/// The relays that publish each service's outbox; they stop when dropped (held, never
/// read).
pub struct Relays(#[allow(dead_code)] Vec<RelayHandle>);

pub fn start_relays(dbs: &Databases, bus: &EventBus) -> Relays {
    Relays(vec![
        crm_account::relay(dbs.account.clone(), bus.clone()).spawn(),
        crm_order_visibility::relay(dbs.order_visibility.clone(), bus.clone()).spawn(),
        crm_knowledge_base::relay(dbs.knowledge_base.clone(), bus.clone()).spawn(),
    ])
}

/// A running HTTP server and the way to stop it.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .context("joining the server task")?
            .context("serving HTTP")
    }

    /// Waits until the server ends (it ends on SIGINT/SIGTERM).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task
            .await
            .context("joining the server task")?
            .context("serving HTTP")
    }
}

/// Serves `app` on `listener` until stopped or until the process is asked to stop.
pub fn serve(listener: TcpListener, app: axum::Router) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = stopped => {},
                    _ = crm_service_common::http::shutdown_signal() => {},
                }
            })
            .await
    });
    Ok(Running {
        addr,
        stop: Some(stop),
        task,
    })
}

pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))
}

/// The all-in-one process: every service in one process over the embedded default (or
/// the configured databases), seeded on first start, with the outbox relays running. The
/// gateway is the one public listener; the subgraphs listen on loopback ports of their own
/// and answer only requests carrying a token the gateway signed for them.
pub struct AllInOne {
    pub public: Running,
    /// Each subgraph's internal listener, by subgraph name.
    pub subgraphs: Vec<(String, Running)>,
    pub databases: Databases,
    pub bus: EventBus,
    pub engine: Arc<Engine>,
    /// The key pair of this run's internal tokens.
    pub keys: KeyPair,
    /// The directory, the access-token issuer and the door's authenticator.
    pub identity: identity::Identity,
    pub seeded: Option<DemoSummary>,
    _relays: Relays,
    /// The account service's consumer of order events (share rows); stops when dropped.
    _shares: crm_service_common::events::consumer::ConsumerHandle,
}

impl AllInOne {
    /// The base URL of one subgraph's loopback listener.
    pub fn subgraph_url(&self, subgraph: &str) -> Option<String> {
        url_of(&self.subgraphs, subgraph)
    }

    /// Waits until the account service applied every order event written so far (share
    /// rows follow orders asynchronously), up to `limit`.
    pub async fn settle_shares(&self, limit: std::time::Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let written = crm_service_common::events::outbox::all(
                &self.databases.order_visibility,
                crm_account::shares::SOURCE,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
            let published = written.len() as i64;
            let applied = crm_service_common::events::consumer::checkpoint_of(
                &self.databases.account,
                crm_account::shares::CONSUMER,
                crm_account::shares::SOURCE,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
            if applied >= published && written.iter().all(|e| e.position > 0) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "share rows did not catch up: {applied} of {published} order events applied"
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops every listener.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.public.stop().await?;
        for (_, running) in self.subgraphs {
            running.stop().await?;
        }
        Ok(())
    }
}

/// Mints each subgraph's token for a request's caller.
pub fn minter(keys: &KeyPair) -> TokenMinter {
    let signer = keys.signer();
    Arc::new(move |subgraph: &str, caller: &Caller, request_id: &str| {
        signer.mint(subgraph, caller, request_id)
    })
}

pub async fn start_all_in_one(
    storage: &Storage,
    listen: SocketAddr,
    world: Option<DemoWorld>,
) -> anyhow::Result<AllInOne> {
    start_all_in_one_with(storage, listen, world, GatewaySettings::default()).await
}

/// How the gateway's door and engine are set (limits, timeouts, GET, introspection); the
/// subgraph URLs are filled in by the process that starts them.
#[derive(Clone, Debug, Default)]
pub struct GatewaySettings {
    pub door: DoorConfig,
    pub engine: EngineConfig,
    /// Tokens accepted besides the gateway's own.
    pub identity: identity::IdentityOptions,
    /// The web UI and partner portal (sessions, cookies).
    pub web: crate::web::WebConfig,
}

/// [`start_all_in_one`] with the gateway configured.
pub async fn start_all_in_one_with(
    storage: &Storage,
    listen: SocketAddr,
    world: Option<DemoWorld>,
    settings: GatewaySettings,
) -> anyhow::Result<AllInOne> {
    let supergraph = crate::federation::checked_supergraph()?;
    let databases = open_databases(storage).await?;
    let seeded = match world {
        Some(world) => {
            Some(seed_if_empty(&databases, world).await?).filter(DemoSummary::wrote_anything)
        }
        None => None,
    };
    let bus = storage.event_bus().await?;
    let relays = start_relays(&databases, &bus);
    let keys = KeyPair::generate()?;
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let auth = |subgraph: &str| SubgraphAuth::Required(Arc::new(keys.verifier(subgraph)));
    let identity = identity::Identity::open(
        &databases.identity,
        Arc::new(identity::tokens::SystemClock),
        &settings.identity,
    )
    .await?;
    publish_policy(storage, &identity).await?;
    let subgraphs = vec![
        (
            identity::SUBGRAPH.to_owned(),
            serve(
                bind(loopback).await?,
                identity.app(auth(identity::SUBGRAPH)),
            )?,
        ),
        (
            crm_account::SUBGRAPH.to_owned(),
            serve(
                bind(loopback).await?,
                crm_account::app(databases.account.clone(), auth(crm_account::SUBGRAPH)),
            )?,
        ),
        (
            crm_order_visibility::SUBGRAPH.to_owned(),
            serve(
                bind(loopback).await?,
                crm_order_visibility::app(
                    databases.order_visibility.clone(),
                    auth(crm_order_visibility::SUBGRAPH),
                ),
            )?,
        ),
        (
            crm_knowledge_base::SUBGRAPH.to_owned(),
            serve(
                bind(loopback).await?,
                crm_knowledge_base::app(
                    databases.knowledge_base.clone(),
                    auth(crm_knowledge_base::SUBGRAPH),
                ),
            )?,
        ),
    ];
    let config = EngineConfig {
        subgraph_urls: subgraphs
            .iter()
            .map(|(name, running)| (name.clone(), format!("{}/graphql", running.url())))
            .collect(),
        ..settings.engine
    };
    let shares = crm_account::shares::consumer(
        databases.account.clone(),
        bus.clone(),
        order_feed(&subgraphs, &keys)?,
    )
    .spawn();
    let engine = Arc::new(Engine::new(supergraph, config)?);
    let api = crate::federation::server::router(
        engine.clone(),
        settings.door,
        minter(&keys),
        Some(identity.authenticator.clone()),
        Some(identity.jwks.clone()),
    );
    let public = serve(bind(listen).await?, with_web(api, &identity, settings.web))?;
    Ok(AllInOne {
        public,
        subgraphs,
        databases,
        bus,
        engine,
        keys,
        identity,
        seeded,
        _relays: relays,
        _shares: shares,
    })
}

/// The gateway's public router with the web UI and partner portal beside the API: the
/// UI calls `api` in process, through the same door as any client.
pub fn with_web(
    api: axum::Router,
    identity: &identity::Identity,
    web: crate::web::WebConfig,
) -> axum::Router {
    api.clone()
        .merge(crate::web::router(api, identity.directory.db.clone(), web))
}

/// Publishes the stored policy, and every edit made through this process, to Redis (edits
/// install in the process that makes them directly; Redis carries them to the others).
pub async fn publish_policy(
    storage: &Storage,
    identity: &identity::Identity,
) -> anyhow::Result<()> {
    if let Some(url) = &storage.redis_url {
        identity
            .policy
            .publish_to(url, storage.event_namespace.as_deref())
            .await?;
    }
    Ok(())
}

/// The order service's event feed on its loopback listener, read with a fresh gateway token
/// per page (the feed answers the gateway only).
pub fn order_feed(
    subgraphs: &[(String, Running)],
    keys: &KeyPair,
) -> anyhow::Result<crm_service_common::events::HttpFeed> {
    let url = url_of(subgraphs, crm_order_visibility::SUBGRAPH)
        .context("the order service is not running")?;
    Ok(feed_with_token(&url, keys))
}

/// The base URL of the listener named `subgraph` among `subgraphs`.
fn url_of(subgraphs: &[(String, Running)], subgraph: &str) -> Option<String> {
    subgraphs
        .iter()
        .find(|(name, _)| name == subgraph)
        .map(|(_, running)| running.url())
}

/// The order service's feed at `url`, read with a fresh token from `keys` per page.
pub fn feed_with_token(url: &str, keys: &KeyPair) -> crm_service_common::events::HttpFeed {
    let signer = keys.signer();
    let reader = Caller {
        subject: "account-shares".into(),
        kind: "internal".into(),
        ..Caller::anonymous()
    };
    crm_service_common::events::HttpFeed::new(url).with_token(Arc::new(move || {
        signer.mint(crm_order_visibility::SUBGRAPH, &reader, "account-shares")
    }))
}

/// Creates the PostgreSQL database `name` on the server `url` points at and returns its
/// URL (same credentials and options): tests and benchmark runs each take a database of
/// their own, since the all-in-one uses fixed schema names.
pub async fn create_database(url: &str, name: &str) -> anyhow::Result<String> {
    use sea_orm::ConnectionTrait;
    anyhow::ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?} must be alphanumeric"
    );
    let admin = sea_orm::Database::connect(url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("creating database {name}"))?;
    admin.close().await.ok();
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    Ok(match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    })
}

/// Drops a database `create_database` made, closing any connection still using it.
pub async fn drop_database(url: &str, name: &str) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait;
    let admin = sea_orm::Database::connect(url).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin.close().await.ok();
    Ok(())
}
