//! How the pieces are put together: our subgraphs (one list of `Subgraph` descriptors),
//! their databases (migrated), the demo seed, the relays, the composition of our
//! supergraph, and the all-in-one process. The all-in-one and the separate
//! `crm service …` processes run the same code; only where the data lives and which
//! listeners open differ.

pub mod live;
pub mod rates;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use crm_service_common::db::{DbTarget, connect};
use crm_service_common::events::EventBus;
use crm_service_common::events::relay::RelayHandle;
use crm_service_common::internal_auth::{Caller, KeyPair, SubgraphAuth};
use std::sync::Arc;

use crm_gateway::federation::compose::{self, CompositionError, SubgraphSource};
use crm_gateway::federation::engine::{Engine, EngineConfig};
use crm_gateway::federation::server::{DoorConfig, TokenMinter};
pub use crm_service_common::subgraph::DemoWorld;
use crm_service_common::subgraph::{DemoRefs, SeedCounts, Subgraph};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crm_identity as identity;

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

    /// Where the door's rate limits count: Redis when configured (one budget per caller
    /// across the deployment's gateways), this process otherwise (`None`).
    pub async fn rate_store(
        &self,
    ) -> anyhow::Result<Option<Box<dyn crm_gateway::rate_limit::RateStore>>> {
        Ok(match self.redis_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => Some(Box::new(
                rates::RedisRates::connect(url, self.event_namespace.as_deref()).await?,
            )),
            None => None,
        })
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

/// Our subgraphs, in the order their demo seeds run (each refers to what the earlier ones
/// wrote) and compose: every place that runs, seeds or composes our services iterates over
/// this one list.
#[derive(Clone)]
pub struct Subgraphs {
    pub all: Vec<Arc<dyn Subgraph>>,
    /// The identity subgraph again, typed: the process that serves it also needs its door,
    /// keys and policy store.
    pub identity: Arc<identity::IdentitySubgraph>,
}

impl Subgraphs {
    /// Ours, with the identity service accepting the tokens `options` names besides its own.
    pub fn ours(options: identity::IdentityOptions) -> Self {
        let identity = Arc::new(identity::IdentitySubgraph::new(
            Arc::new(identity::tokens::SystemClock),
            options,
        ));
        Self {
            all: vec![
                Arc::new(crm_account::subgraph()),
                Arc::new(crm_order_visibility::subgraph()),
                Arc::new(crm_knowledge_base::subgraph()),
                identity.clone(),
            ],
            identity,
        }
    }

    /// The subgraph named `name`.
    pub fn named(&self, name: &str) -> Option<&Arc<dyn Subgraph>> {
        self.all.iter().find(|s| s.name() == name)
    }

    /// Every subgraph's name.
    pub fn names(&self) -> Vec<&'static str> {
        self.all.iter().map(|s| s.name()).collect()
    }
}

/// The supergraph this product serves, as committed (`crm compose --write` writes it).
pub const COMMITTED_SUPERGRAPH: &str = include_str!("../../../schema/supergraph.graphql");

/// Our subgraphs as composition inputs: name, SDL from the code, and the URL each listens
/// on when run as its own process (`crm service …`; the all-in-one overrides them).
pub fn our_subgraphs() -> Vec<SubgraphSource> {
    Subgraphs::ours(Default::default())
        .all
        .iter()
        .map(|s| SubgraphSource {
            name: s.name().into(),
            sdl: s.sdl(),
            url: format!("http://127.0.0.1:{}/graphql", s.port()),
        })
        .collect()
}

/// Where a subgraph's SDL is committed: `schema/<service>.graphql`, the service name being
/// the subgraph name with `_` for `-` (`order-visibility` → `order_visibility`).
pub fn sdl_path(subgraph: &str) -> std::path::PathBuf {
    std::path::Path::new("schema").join(format!("{}.graphql", subgraph.replace('-', "_")))
}

/// Composes our subgraphs as the code defines them.
pub fn compose_ours() -> Result<String, CompositionError> {
    compose::compose(&our_subgraphs())
}

/// The committed supergraph, after checking it is what the code composes to: the process
/// refuses to serve a schema other than the one its subgraphs implement.
pub fn checked_supergraph() -> anyhow::Result<&'static str> {
    let composed = compose_ours()?;
    anyhow::ensure!(
        composed == COMMITTED_SUPERGRAPH,
        "schema/supergraph.graphql does not match the subgraphs this binary was built with; \
         run `cargo run --bin crm -- compose --write` and rebuild"
    );
    Ok(COMMITTED_SUPERGRAPH)
}

/// The connections of every service, migrated.
pub struct Databases {
    /// By subgraph name, in the order of [`Subgraphs`].
    pub all: Vec<(&'static str, DatabaseConnection)>,
    // Named for the code that needs one service's data: the share consumer and its
    // settling, the web sessions, the tests' independent SQL.
    pub account: DatabaseConnection,
    pub order_visibility: DatabaseConnection,
    pub knowledge_base: DatabaseConnection,
    pub identity: DatabaseConnection,
}

impl Databases {
    /// The connection of the subgraph named `name`.
    pub fn of(&self, name: &str) -> Option<&DatabaseConnection> {
        self.all.iter().find(|(n, _)| *n == name).map(|(_, db)| db)
    }

    /// Closes every connection.
    pub async fn close(&self) {
        for (_, db) in &self.all {
            db.close_by_ref().await.ok();
        }
    }
}

/// Connects to and migrates every one of our services' databases.
pub async fn open_databases(storage: &Storage) -> anyhow::Result<Databases> {
    open_databases_of(storage, &Subgraphs::ours(Default::default())).await
}

/// Connects to and migrates the databases of `subgraphs`.
pub async fn open_databases_of(
    storage: &Storage,
    subgraphs: &Subgraphs,
) -> anyhow::Result<Databases> {
    let mut all = Vec::new();
    for subgraph in &subgraphs.all {
        let db = connect(&storage.target(subgraph.service())).await?;
        subgraph
            .migrate(&db)
            .await
            .with_context(|| format!("migrating the {} schema", subgraph.name()))?;
        all.push((subgraph.name(), db));
    }
    let take = |name: &str| {
        all.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, db)| db.clone())
            .with_context(|| format!("no {name} subgraph"))
    };
    Ok(Databases {
        account: take(crm_account::SUBGRAPH)?,
        order_visibility: take(crm_order_visibility::SUBGRAPH)?,
        knowledge_base: take(crm_knowledge_base::SUBGRAPH)?,
        identity: take(identity::SUBGRAPH)?,
        all,
    })
}

/// What a demo seed wrote, per subgraph that was empty (a subgraph that already held data
/// is not listed).
#[derive(Clone, Debug, Default)]
pub struct DemoSummary(pub Vec<(&'static str, SeedCounts)>);

impl std::fmt::Display for DemoSummary {
    /// One line of counts, e.g. `accounts=60 contacts=173 … articles=56 users=20`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .flat_map(|(_, counts)| counts.0.iter())
            .map(|(what, n)| format!("{what}={n}"))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

impl DemoSummary {
    pub fn wrote_anything(&self) -> bool {
        !self.0.is_empty()
    }

    /// What the seed of the subgraph named `name` wrote, if it was empty.
    pub fn of(&self, name: &str) -> Option<&SeedCounts> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, c)| c)
    }
}

/// Seeds each service that holds no data yet, in the order of the subgraph list: accounts
/// and partners, then products and orders that refer to them, then articles linked to the
/// products, then the users of the directory. Each service's seed is one transaction, and
/// the later seeds read what they refer to back from the earlier services, so a partly
/// seeded system is completed rather than duplicated.
pub async fn seed_if_empty(dbs: &Databases, world: DemoWorld) -> anyhow::Result<DemoSummary> {
    seed_subgraphs(&Subgraphs::ours(Default::default()), dbs, world).await
}

async fn seed_subgraphs(
    subgraphs: &Subgraphs,
    dbs: &Databases,
    world: DemoWorld,
) -> anyhow::Result<DemoSummary> {
    let mut refs = DemoRefs::default();
    let mut summary = DemoSummary::default();
    for subgraph in &subgraphs.all {
        let db = dbs
            .of(subgraph.name())
            .with_context(|| format!("no database for {}", subgraph.name()))?;
        if let Some(counts) = subgraph.seed(db, world, &mut refs).await? {
            summary.0.push((subgraph.name(), counts));
        }
    }
    // Only a world this run wrote is completed: an installation's own data never is.
    for subgraph in &subgraphs.all {
        if summary.of(subgraph.name()).is_some()
            && let Some(db) = dbs.of(subgraph.name())
        {
            subgraph.complete_seed(db, world, &refs).await?;
        }
    }
    Ok(summary)
}

/// The relays that publish each service's outbox; they stop when dropped (held, never
/// read).
pub struct Relays(#[allow(dead_code)] Vec<RelayHandle>);

pub fn start_relays(dbs: &Databases, bus: &EventBus) -> Relays {
    start_relays_of(&Subgraphs::ours(Default::default()), dbs, bus)
}

fn start_relays_of(subgraphs: &Subgraphs, dbs: &Databases, bus: &EventBus) -> Relays {
    Relays(
        subgraphs
            .all
            .iter()
            .filter_map(|s| Some(s.relay(dbs.of(s.name())?.clone(), bus.clone())?.spawn()))
            .collect(),
    )
}

/// The job runners of the services that defer work; they stop when dropped (held, never
/// read). Each replica runs its own: a due job is claimed by one of them.
pub struct JobRunners(#[allow(dead_code)] Vec<crm_service_common::jobs::JobRunnerHandle>);

fn start_job_runners(subgraphs: &Subgraphs, dbs: &Databases) -> JobRunners {
    JobRunners(
        subgraphs
            .all
            .iter()
            .filter_map(|s| Some(s.jobs(dbs.of(s.name())?.clone())?.spawn()))
            .collect(),
    )
}

/// The audit sealers of the services that keep an audit log; they stop when dropped.
pub struct AuditSealers(#[allow(dead_code)] Vec<crm_service_common::audit::chain::SealerHandle>);

/// Starts the audit sealer of every service of `subgraphs` that keeps an audit log.
pub fn start_audit_sealers(subgraphs: &Subgraphs, dbs: &Databases) -> AuditSealers {
    AuditSealers(
        subgraphs
            .all
            .iter()
            .filter_map(|s| s.audit_sealer(dbs.of(s.name())?.clone()))
            .collect(),
    )
}

/// The file the embedded default keeps its audit signing key in.
pub const AUDIT_KEY_FILE: &str = "audit-signing-key";

/// Installs the process's audit keys: `CRM_AUDIT_SIGNING_KEY` (an Ed25519 PKCS#8
/// document in base64, `crm audit new-key` prints one) when set; else, on the embedded
/// default, the key in the data directory (made on first start, readable by its owner
/// only); else (PostgreSQL without a configured key) a key for this run only, with a
/// warning, since chains it signs stop verifying when the process restarts with another.
/// `CRM_AUDIT_TRUSTED_KEYS` (comma-separated public keys) are trusted besides: the keys
/// of earlier signers after a rotation.
pub fn install_audit_keys(storage: &Storage) -> anyhow::Result<()> {
    use crm_service_common::audit::chain::{AuditKey, install};
    let trusted: Vec<String> = std::env::var("CRM_AUDIT_TRUSTED_KEYS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    if let Ok(key) = std::env::var("CRM_AUDIT_SIGNING_KEY")
        && !key.trim().is_empty()
    {
        return install(&key, trusted).context("CRM_AUDIT_SIGNING_KEY");
    }
    if storage.database_url.as_deref().is_none_or(str::is_empty) {
        let path = storage.data_dir.join(AUDIT_KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(key) => key,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&storage.data_dir).with_context(|| {
                    format!("creating the data directory {}", storage.data_dir.display())
                })?;
                let key = AuditKey::generate_base64()?;
                write_private(&path, &key)?;
                key
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        return install(&key, trusted).with_context(|| format!("the key in {}", path.display()));
    }
    tracing::warn!(
        "CRM_AUDIT_SIGNING_KEY is not set: the audit log is signed with a key for this run only \
         (set it to keep chains verifiable across restarts)"
    );
    install(&AuditKey::generate_base64()?, trusted)
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
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

    /// Stops accepting, lets in-flight requests finish, writes the reads they logged,
    /// and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.task.await;
        crm_service_common::audit::reads::flush_all().await;
        served
            .context("joining the server task")?
            .context("serving HTTP")
    }

    /// Waits until the server ends (it ends on SIGINT/SIGTERM), then writes the reads
    /// its requests logged.
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.task.await;
        crm_service_common::audit::reads::flush_all().await;
        served
            .context("joining the server task")?
            .context("serving HTTP")
    }
}

/// Serves `app` on `listener` until stopped or until the process is asked to stop.
pub fn serve(listener: TcpListener, app: axum::Router) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    // Open subscription streams end when stopping starts (graceful shutdown waits for
    // every response, and theirs would never finish).
    let (draining, drain) = tokio::sync::watch::channel(false);
    let app = app.layer(axum::Extension(crm_gateway::federation::server::Draining(
        drain,
    )));
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = stopped => {},
                _ = crm_service_common::http::shutdown_signal() => {},
            }
            let _ = draining.send(true);
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
    _jobs: JobRunners,
    _sealers: AuditSealers,
    /// The account service's consumer of order events (share rows); stops when dropped.
    _shares: crm_service_common::events::consumer::ConsumerHandle,
    /// The order service's consumer of account events (the demand view's replica).
    _demand: crm_service_common::events::consumer::ConsumerHandle,
    /// The account service's consumer of order events that notifies partners and owners.
    _order_notes: crm_service_common::events::consumer::ConsumerHandle,
    /// The identity service's consumer of partner events (the tiers the door carries).
    _partner_tiers: crm_service_common::events::consumer::ConsumerHandle,
    /// The order and knowledge-base services' consumers of erasures.
    _erasures: [crm_service_common::events::consumer::ConsumerHandle; 2],
    /// The directory's changes to and from other processes (with Redis).
    _directory: Vec<crm_service_common::signal::SignalTask>,
    /// Webhook deliveries (their consumers and runner).
    _webhooks: crm_identity::webhooks::Deliveries,
    _live: live::LiveTail,
}

impl AllInOne {
    /// The base URL of one subgraph's loopback listener.
    pub fn subgraph_url(&self, subgraph: &str) -> Option<String> {
        url_of(&self.subgraphs, subgraph)
    }

    /// How the live order-caused share rows differ from a rebuild from the order feed,
    /// once the consumer has caught up (within `limit`).
    pub async fn share_drift(
        &self,
        limit: std::time::Duration,
    ) -> anyhow::Result<crm_account::shares::Drift> {
        self.settle_shares(limit).await?;
        let feed = order_feed(&self.subgraphs, &self.keys)?;
        crm_account::shares::drift(&self.databases.account, &feed)
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))
    }

    /// Waits until the account service applied every order event written so far, as share
    /// rows and as the notifications that follow orders, up to `limit`.
    pub async fn settle_shares(&self, limit: std::time::Duration) -> anyhow::Result<()> {
        settle(
            (
                &self.databases.order_visibility,
                crm_account::shares::SOURCE,
            ),
            (&self.databases.account, crm_account::shares::CONSUMER),
            limit,
        )
        .await
        .context("share rows did not catch up")?;
        settle(
            (
                &self.databases.order_visibility,
                crm_account::order_notifications::SOURCE,
            ),
            (
                &self.databases.account,
                crm_account::order_notifications::CONSUMER,
            ),
            limit,
        )
        .await
        .context("the notifications that follow orders did not catch up")
    }

    /// Waits until the identity service applied every account event written so far (the
    /// partner tiers the door carries), up to `limit`.
    pub async fn settle_partner_tiers(&self, limit: std::time::Duration) -> anyhow::Result<()> {
        settle(
            (&self.databases.account, identity::partner_tiers::SOURCE),
            (&self.databases.identity, identity::partner_tiers::CONSUMER),
            limit,
        )
        .await
        .context("the partner tiers did not catch up")
    }

    /// Waits until the order service applied every account event written so far (the
    /// demand view's replica follows opportunities asynchronously), up to `limit`.
    pub async fn settle_demand(&self, limit: std::time::Duration) -> anyhow::Result<()> {
        use crm_order_visibility::demand::replica;
        settle(
            (&self.databases.account, replica::SOURCE),
            (&self.databases.order_visibility, replica::CONSUMER),
            limit,
        )
        .await
        .context("the demand replica did not catch up")
    }

    /// Waits until the order and knowledge-base services applied every account event
    /// written so far (erasures among them), up to `limit`.
    pub async fn settle_erasures(&self, limit: std::time::Duration) -> anyhow::Result<()> {
        settle(
            (&self.databases.account, crm_service_common::erasure::SOURCE),
            (
                &self.databases.order_visibility,
                crm_order_visibility::erasure::CONSUMER,
            ),
            limit,
        )
        .await
        .context("the order service did not apply the erasures")?;
        settle(
            (&self.databases.account, crm_service_common::erasure::SOURCE),
            (
                &self.databases.knowledge_base,
                crm_knowledge_base::erasure::CONSUMER,
            ),
            limit,
        )
        .await
        .context("the knowledge base did not apply the erasures")
    }

    /// Waits until the webhook consumers applied every order and article event written so
    /// far, and no delivery is due or being attempted (retries waiting for a later time
    /// are left waiting), up to `limit`.
    pub async fn settle_webhooks(&self, limit: std::time::Duration) -> anyhow::Result<()> {
        use crm_service_common::jobs::{self, JobState};
        let ours = Subgraphs::ours(Default::default());
        for kind in crm_identity::webhooks::catalog::RECORDS {
            let producer = ours
                .all
                .iter()
                .find(|s| s.service() == kind.source)
                .and_then(|s| self.databases.of(s.name()))
                .with_context(|| format!("no database for {}", kind.source))?;
            settle(
                (producer, kind.source),
                (&self.databases.identity, kind.consumer),
                limit,
            )
            .await
            .with_context(|| format!("the webhook consumer of {} did not catch up", kind.source))?;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let now = crm_service_common::clock::now();
            let busy = jobs::list(&self.databases.identity, None, 10_000)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?
                .into_iter()
                .any(|job| {
                    job.kind == crm_identity::webhooks::DELIVER_JOB
                        && (job.state == JobState::Running
                            || (job.state == JobState::Pending && job.run_at <= now))
                });
            if !busy {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("webhook deliveries still due after {limit:?}");
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

/// Waits until `consumer` (in its database) applied every event `producer`'s outbox
/// holds, up to `limit`.
async fn settle(
    (producer_db, source): (&DatabaseConnection, &str),
    (consumer_db, consumer): (&DatabaseConnection, &str),
    limit: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let written = crm_service_common::events::outbox::all(producer_db, source)
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
        let published = written.len() as i64;
        let applied =
            crm_service_common::events::consumer::checkpoint_of(consumer_db, consumer, source)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
        if applied >= published && written.iter().all(|e| e.position > 0) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{applied} of {published} events of {source} applied");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Mints each subgraph's token for a request's caller.
pub fn minter(keys: &KeyPair) -> TokenMinter {
    let tokens = crm_contract::internal_auth::TokenCache::new(keys.signer());
    Arc::new(move |subgraph: &str, caller: &Caller| tokens.token(subgraph, caller))
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
    pub web: crm_web::WebConfig,
}

/// [`start_all_in_one`] with the gateway configured.
pub async fn start_all_in_one_with(
    storage: &Storage,
    listen: SocketAddr,
    world: Option<DemoWorld>,
    settings: GatewaySettings,
) -> anyhow::Result<AllInOne> {
    let supergraph = checked_supergraph()?;
    let ours = Subgraphs::ours(settings.identity.clone());
    let databases = open_databases_of(storage, &ours).await?;
    let seeded = match world {
        Some(world) => Some(seed_subgraphs(&ours, &databases, world).await?)
            .filter(DemoSummary::wrote_anything),
        None => None,
    };
    let bus = storage.event_bus().await?;
    let relays = start_relays_of(&ours, &databases, &bus);
    let jobs = start_job_runners(&ours, &databases);
    install_audit_keys(storage)?;
    let sealers = start_audit_sealers(&ours, &databases);
    let keys = KeyPair::generate()?;
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut subgraphs = Vec::new();
    for subgraph in &ours.all {
        let db = databases
            .of(subgraph.name())
            .with_context(|| format!("no database for {}", subgraph.name()))?;
        let auth = SubgraphAuth::Required(Arc::new(keys.verifier(subgraph.name())));
        let app = subgraph.serve(db.clone(), auth).await?;
        subgraphs.push((
            subgraph.name().to_owned(),
            serve(bind(loopback).await?, app)?,
        ));
    }
    let identity = ours
        .identity
        .opened()
        .context("the identity subgraph did not open")?
        .clone();
    publish_policy(storage, &identity).await?;
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
    let order_notes = crm_account::order_notifications::consumer(
        databases.account.clone(),
        bus.clone(),
        order_feed(&subgraphs, &keys)?,
    )
    .spawn();
    let demand = crm_order_visibility::demand::replica::consumer(
        databases.order_visibility.clone(),
        bus.clone(),
        account_feed(
            &subgraphs,
            &keys,
            crm_order_visibility::demand::replica::CONSUMER,
        )?,
    )
    .spawn();
    let partner_tiers = identity::partner_tiers::consumer(
        databases.identity.clone(),
        bus.clone(),
        account_feed(&subgraphs, &keys, identity::partner_tiers::CONSUMER)?,
    )
    .spawn();
    let erasures = [
        crm_order_visibility::erasure::consumer(
            databases.order_visibility.clone(),
            bus.clone(),
            account_feed(&subgraphs, &keys, crm_order_visibility::erasure::CONSUMER)?,
        )
        .spawn(),
        crm_knowledge_base::erasure::consumer(
            databases.knowledge_base.clone(),
            bus.clone(),
            account_feed(&subgraphs, &keys, crm_knowledge_base::erasure::CONSUMER)?,
        )
        .spawn(),
    ];
    let engine = Arc::new(Engine::new(supergraph, config)?);
    let webhooks = webhooks::start(&identity, engine.clone(), &keys, bus.clone(), |name| {
        url_of(&subgraphs, name)
    })?;
    let (changes, live_tail) = live::follow(bus.clone());
    let trusted_proxies = settings.door.trusted_proxies.clone();
    let api = crm_gateway::federation::server::router(
        engine.clone(),
        settings.door,
        minter(&keys),
        Some(identity.authenticator.clone() as Arc<dyn crm_contract::Door>),
        Some(identity.jwks.clone()),
        storage.rate_store().await?,
        Some(changes),
    );
    let app = crm_gateway::federation::server::front_door(
        with_web(api, &identity, settings.web),
        trusted_proxies,
    );
    let public = serve(bind(listen).await?, app)?;
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
        _jobs: jobs,
        _sealers: sealers,
        _shares: shares,
        _demand: demand,
        _partner_tiers: partner_tiers,
        _erasures: erasures,
        _order_notes: order_notes,
        _directory: share_directory_changes(storage).await?,
        _webhooks: webhooks,
        _live: live_tail,
    })
}

/// The gateway's public router with the web UI and partner portal beside the API: the
/// UI calls `api` in process, through the same door as any client.
pub fn with_web(
    api: axum::Router,
    identity: &identity::Identity,
    web: crm_web::WebConfig,
) -> axum::Router {
    api.clone()
        .merge(crm_web::router(api, identity.directory.db.clone(), web))
}

/// Shares the identity directory's changes with other processes through Redis: this
/// process's are announced, theirs followed, and the door forgets what it remembered on
/// either (by message, or within a second when the message is lost). Without Redis there is
/// nothing to share with: changes reach the door of this process only.
pub async fn share_directory_changes(
    storage: &Storage,
) -> anyhow::Result<Vec<crm_service_common::signal::SignalTask>> {
    use crm_service_common::signal::{SignalKeys, announce, follow};
    let Some(url) = &storage.redis_url else {
        return Ok(Vec::new());
    };
    let keys = SignalKeys::new(storage.event_namespace.as_deref(), "directory");
    Ok(vec![
        announce(url, keys.clone(), identity::store::directory_changes()).await?,
        follow(
            url,
            keys,
            std::time::Duration::from_secs(1),
            identity::store::directory_changed_elsewhere,
        )
        .await?,
    ])
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

/// The account service's event feed on its loopback listener (for the order service's
/// demand replica), read the same way.
pub fn account_feed(
    subgraphs: &[(String, Running)],
    keys: &KeyPair,
    reader: &'static str,
) -> anyhow::Result<crm_service_common::events::HttpFeed> {
    let url =
        url_of(subgraphs, crm_account::SUBGRAPH).context("the account service is not running")?;
    Ok(feed_of(&url, keys, crm_account::SUBGRAPH, reader))
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
    feed_of(
        url,
        keys,
        crm_order_visibility::SUBGRAPH,
        crm_account::shares::CONSUMER,
    )
}

/// The feed of the subgraph `producer` at `url`, read by the consumer `reader` with a fresh
/// token from `keys` per page.
pub fn feed_of(
    url: &str,
    keys: &KeyPair,
    producer: &'static str,
    reader: &'static str,
) -> crm_service_common::events::HttpFeed {
    let signer = keys.signer();
    let caller = Caller {
        subject: reader.into(),
        kind: "internal".into(),
        ..Caller::anonymous()
    };
    crm_service_common::events::HttpFeed::new(url)
        .with_token(Arc::new(move || signer.mint(producer, &caller, reader)))
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
