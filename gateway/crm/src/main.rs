//! `crm`: the partner-portal CRM in one binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use crm_gateway::federation::compose::{SubgraphSource, compose};
use crm_gateway::federation::engine::{CallerKind, Discovery, Engine, EngineConfig};
use crm_gateway::federation::server::DoorConfig;
use crm_identity as identity;
use crm_service_common::internal_auth::{KeyPair, SubgraphAuth, TokenVerifier};
use crm_system::{self as system, DemoWorld, Storage};
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The partner-portal CRM. With no command it starts the whole system in one process:
/// SQLite files under ./data (or PostgreSQL with DATABASE_URL), migrated, and seeded with a
/// demo world on first start.
#[derive(Parser, Debug)]
#[command(name = "crm", version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    storage: StorageArgs,
    /// Options of the all-in-one process (when no command is given).
    #[command(flatten)]
    up: UpArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
struct StorageArgs {
    /// PostgreSQL URL (postgres://user@host/db). Each service keeps its tables in its own
    /// schema there. Without it, data lives in SQLite files under --data-dir.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Directory of the embedded SQLite files (one per service).
    #[arg(long, env = "CRM_DATA_DIR", default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// Redis URL. Domain events then travel on Redis Streams (one stream per service);
    /// without it, on in-process streams.
    #[arg(long, env = "REDIS_URL", global = true)]
    redis_url: Option<String>,
    /// The prefix of this deployment's Redis stream keys; give each database its own.
    #[arg(
        long,
        env = "CRM_EVENT_NAMESPACE",
        default_value = "crm",
        global = true
    )]
    event_namespace: String,
    /// The largest partner scope a page collects before sorting (by id, from its share
    /// rows or order lines) instead of walking the sort order; 0 always walks. A plan
    /// setting: the rows are the same either way.
    #[arg(
        long,
        env = "CRM_SPARSE_SCOPE_AT_MOST",
        default_value_t = crm_service_common::scope_plan::DEFAULT_SPARSE_AT_MOST,
        global = true
    )]
    sparse_scope_at_most: u64,
    /// Pages stop walking the copies of partner scopes kept with their sort keys (a
    /// partner's accounts by name, a supplier's orders by date) and use the plans above.
    /// A plan setting, for comparisons: the rows are the same either way.
    #[arg(long, env = "CRM_NO_ORDERED_SCOPES", global = true)]
    no_ordered_scopes: bool,
}

impl StorageArgs {
    fn storage(&self) -> Storage {
        Storage {
            database_url: self.database_url.clone().filter(|u| !u.is_empty()),
            data_dir: self.data_dir.clone(),
            redis_url: self.redis_url.clone().filter(|u| !u.is_empty()),
            event_namespace: Some(self.event_namespace.clone()),
        }
    }
}

// Parsed once per process: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run one subgraph service as its own process: account, order-visibility,
    /// knowledge-base or identity (run `crm gateway --directory` on the identity service's
    /// storage to authenticate callers).
    Service {
        /// The subgraph's name.
        name: String,
        #[command(flatten)]
        args: ServiceArgs,
    },
    /// Apply every service's migrations and exit.
    Migrate,
    /// Share rows (why partners may read accounts).
    Shares {
        #[command(subcommand)]
        command: SharesCommand,
    },
    /// Write the demo world if the databases are empty, and exit; with --scale, load the
    /// benchmark world of that size in bulk instead.
    Seed {
        #[command(flatten)]
        args: SeedArgs,
        /// Load the benchmark world at this scale (1.0: 1M accounts, 3M contacts, 2M
        /// orders, 8M order lines, 50k products, 200 partners, 5k articles) into empty
        /// databases, in bulk. PostgreSQL is the intended target.
        #[arg(long)]
        scale: Option<f64>,
    },
    /// Run the benchmark harness on the benchmark world (loaded first if the databases
    /// are empty, reused if they hold it) and write BENCHMARKS.md; `crm bench gateway`
    /// compares the gateway with a peer router instead.
    Bench {
        #[command(subcommand)]
        what: Option<BenchCommand>,
        #[command(flatten)]
        args: BenchArgs,
    },
    /// Compose the supergraph from subgraph SDLs (by default ours, from schema/) and print
    /// it, or write schema/supergraph.graphql.
    Compose {
        /// Write schema/supergraph.graphql instead of printing.
        #[arg(long)]
        write: bool,
        /// A subgraph to compose instead of ours: NAME=SOURCE, where SOURCE is an SDL
        /// file or the URL of a running subgraph (asked for `_service { sdl }`, and used as
        /// its routing URL). Repeat per subgraph.
        #[arg(long = "subgraph")]
        subgraphs: Vec<String>,
    },
    /// Serve a supergraph: the federation gateway on its own, for any valid federation
    /// v2 supergraph (subgraph URLs from the supergraph unless overridden).
    Gateway {
        /// The supergraph SDL file.
        #[arg(long)]
        supergraph: PathBuf,
        #[arg(long, env = "CRM_LISTEN", default_value = "127.0.0.1:4000")]
        listen: SocketAddr,
        /// Override a subgraph's URL: NAME=URL. Repeat per subgraph.
        #[arg(long = "subgraph-url")]
        subgraph_urls: Vec<String>,
        /// The Ed25519 signing key of internal tokens (base64 PKCS#8). Without it a key is
        /// generated and its public half logged (subgraphs need it).
        #[arg(long, env = "CRM_GATEWAY_SIGNING_KEY", hide_env_values = true)]
        signing_key: Option<String>,
        /// Authenticate callers against the identity directory of the configured storage
        /// (our supergraph). Without it every caller is anonymous and credentials are
        /// refused.
        #[arg(long)]
        directory: bool,
        #[command(flatten)]
        door: DoorArgs,
    },
    /// The audit log: verify its hash chains, or make a signing key.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Generate the gateway's token key pair: prints CRM_GATEWAY_SIGNING_KEY (for the
    /// gateway) and CRM_GATEWAY_PUBLIC_KEY (for the subgraphs) as shell assignments.
    Keygen,
    /// Print an access token for a user of the directory (development: for curl and the
    /// explorer). Send it as `Authorization: Bearer <token>`.
    /// The token belongs to a session of its own, printed on standard error; end it with
    /// `crm token --revoke <session>` and the token stops working.
    Token {
        /// The user's email, e.g. admin@crm.example.
        #[arg(long, required_unless_present = "revoke")]
        user: Option<String>,
        /// How long the token is valid.
        #[arg(long, default_value_t = 3600)]
        ttl_seconds: i64,
        /// End the session of a printed token instead of printing one.
        #[arg(long, conflicts_with = "user")]
        revoke: Option<String>,
    },
    /// Print every subgraph's SDL, or write each into schema/<service>.graphql.
    Schema {
        /// Write schema/<service>.graphql instead of printing.
        #[arg(long)]
        write: bool,
    },
}

#[derive(Args, Debug)]
struct UpArgs {
    /// The public address.
    #[arg(long, env = "CRM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Do not seed the demo world on first start.
    #[arg(long)]
    no_seed: bool,
    #[command(flatten)]
    seed: SeedArgs,
    #[command(flatten)]
    door: DoorArgs,
}

/// Settings of the gateway (each with a safe default).
#[derive(Args, Debug, Clone)]
struct DoorArgs {
    /// Answer queries sent as GET /graphql (never mutations; a preflight header is required).
    #[arg(long, env = "CRM_ALLOW_GET_QUERIES")]
    allow_get_queries: bool,
    /// Serve the GraphQL explorer (GraphiQL) at /graphiql: for development.
    #[arg(long, env = "CRM_EXPLORER")]
    explorer: bool,
    /// Refuse `__schema` / `__type` queries from every caller.
    #[arg(long, env = "CRM_NO_INTROSPECTION")]
    no_introspection: bool,
    /// Execute every query, even one identical to a query of the same caller in flight
    /// (by default they share one execution).
    #[arg(long, env = "CRM_NO_SHARED_QUERIES")]
    no_shared_queries: bool,
    /// The caller kinds that may introspect the schema (anonymous, internal, partner,
    /// integrator; comma-separated). Integrators that generate code need it; anonymous
    /// callers of a gateway with a directory reach only the sign-in operations anyway.
    #[arg(
        long,
        env = "CRM_INTROSPECTION_FOR",
        value_delimiter = ',',
        default_value = "internal"
    )]
    introspection_for: Vec<CallerKind>,
    /// The caller kinds told close names ("Did you mean …?") when they misspell a field or
    /// argument.
    #[arg(
        long,
        env = "CRM_SUGGESTIONS_FOR",
        value_delimiter = ',',
        default_value = "internal"
    )]
    suggestions_for: Vec<CallerKind>,
    /// The largest request body, in bytes.
    #[arg(long, env = "CRM_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    #[arg(long, env = "CRM_MAX_DEPTH", default_value_t = 15)]
    max_depth: usize,
    #[arg(long, env = "CRM_MAX_ALIASES", default_value_t = 30)]
    max_aliases: usize,
    #[arg(long, env = "CRM_MAX_ROOT_FIELDS", default_value_t = 20)]
    max_root_fields: usize,
    #[arg(long, env = "CRM_MAX_DIRECTIVES", default_value_t = 50)]
    max_directives: usize,
    /// The largest estimated cost of an operation (fields × page sizes).
    #[arg(long, env = "CRM_MAX_COST", default_value_t = 50_000)]
    max_cost: u64,
    /// Milliseconds one subgraph request may take.
    #[arg(long, env = "CRM_SUBGRAPH_TIMEOUT_MS", default_value_t = 10_000)]
    subgraph_timeout_ms: u64,
    /// Milliseconds a whole request may take.
    #[arg(long, env = "CRM_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    request_timeout_ms: u64,
    /// Also accept HS256 access tokens signed with this secret. Development only.
    #[arg(long, env = "CRM_DEV_HS256_SECRET", hide_env_values = true)]
    dev_hs256_secret: Option<String>,
    /// Accept access tokens of this external OIDC issuer (they name the user by `email`).
    #[arg(long, env = "CRM_OIDC_ISSUER", requires = "oidc_jwks")]
    oidc_issuer: Option<String>,
    /// The audience the external issuer's tokens carry for this API.
    #[arg(long, env = "CRM_OIDC_AUDIENCE", default_value = "crm-api")]
    oidc_audience: String,
    /// The external issuer's JWKS: a URL or a file.
    #[arg(long, env = "CRM_OIDC_JWKS", requires = "oidc_issuer")]
    oidc_jwks: Option<String>,
    /// Minutes a web UI session lasts without a request (then it signs out).
    #[arg(long, env = "CRM_SESSION_IDLE_MINUTES", default_value_t = 30)]
    session_idle_minutes: u64,
    /// Proxies whose `X-Forwarded-For` names the client (comma-separated addresses): a
    /// load balancer in front. The sign-in throttle counts by the client's address.
    #[arg(long, env = "CRM_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// The bearer token `GET /metrics` asks for (Prometheus's `authorization` setting).
    /// Without one, metrics are not served.
    #[arg(long, env = "CRM_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Rate limits per caller and client address: `name=requests:cost` budgets per window,
    /// comma-separated, over the defaults; `name` is a caller kind (anonymous, internal,
    /// partner, integrator), a role (admin, sales, …) or `source` (every caller behind
    /// one address; `source=off`). Counted in Redis when `REDIS_URL` is set.
    #[arg(long, env = "CRM_RATE_LIMITS", default_value = "")]
    rate_limits: String,
    /// The rate limits' window in seconds (a budget refills evenly over it).
    #[arg(long, env = "CRM_RATE_WINDOW_SECONDS", default_value_t = 60)]
    rate_window_seconds: u64,
    /// Do not limit the rate of requests at all.
    #[arg(long, env = "CRM_NO_RATE_LIMITS")]
    no_rate_limits: bool,
    /// Mark the web UI's cookies Secure (served over TLS; a request forwarded with
    /// `X-Forwarded-Proto: https` gets them anyway).
    #[arg(long, env = "CRM_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Networks webhook deliveries may reach besides the public internet, in CIDR
    /// notation and comma-separated (e.g. `10.0.0.0/8` for receivers inside the company's
    /// network). Private, loopback and link-local addresses are refused otherwise.
    #[arg(long, env = "CRM_WEBHOOK_ALLOWED_NETWORKS", default_value = "")]
    webhook_allowed_networks: String,
    /// How long one webhook delivery attempt may take, in seconds.
    #[arg(long, env = "CRM_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10)]
    webhook_timeout_seconds: u64,
}

impl DoorArgs {
    fn settings(self) -> anyhow::Result<system::GatewaySettings> {
        let rate_limits = if self.no_rate_limits {
            None
        } else {
            Some(crm_gateway::rate_limit::RateLimits::parse(
                &self.rate_limits,
                std::time::Duration::from_secs(self.rate_window_seconds),
            )?)
        };
        let identity = identity::IdentityOptions {
            development_secret: self.dev_hs256_secret.clone(),
            external: match (&self.oidc_issuer, &self.oidc_jwks) {
                (Some(issuer), Some(jwks)) => Some(identity::ExternalIssuer {
                    issuer: issuer.clone(),
                    audience: self.oidc_audience.clone(),
                    jwks: identity::tokens::JwksSource::parse(jwks),
                }),
                _ => None,
            },
            door_reads_every_request: false,
            webhooks: identity::webhooks::WebhookSettings {
                allowed_networks: identity::webhooks::Networks::parse(
                    &self.webhook_allowed_networks,
                )
                .map_err(|e| anyhow::anyhow!("CRM_WEBHOOK_ALLOWED_NETWORKS: {e}"))?,
                timeout: std::time::Duration::from_secs(self.webhook_timeout_seconds.max(1)),
            },
        };
        Ok(system::GatewaySettings {
            identity,
            web: crm_web::WebConfig {
                sessions: crm_web::session::SessionPolicy {
                    idle: std::time::Duration::from_secs(self.session_idle_minutes.max(1) * 60),
                    ..Default::default()
                },
                secure_cookies: self.secure_cookies,
            },
            door: DoorConfig {
                allow_get_queries: self.allow_get_queries,
                explorer: self.explorer,
                max_body_bytes: self.max_body_bytes,
                request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
                metrics_token: self.metrics_token.clone(),
                trusted_proxies: self.trusted_proxies.clone(),
                rate_limits,
            },
            engine: EngineConfig {
                discovery: Discovery {
                    introspection: if self.no_introspection {
                        Vec::new()
                    } else {
                        self.introspection_for
                    },
                    suggestions: self.suggestions_for,
                },
                subgraph_timeout: std::time::Duration::from_millis(self.subgraph_timeout_ms),
                share_inflight_queries: !self.no_shared_queries,
                limits: crm_gateway::limits::OperationLimits {
                    max_depth: self.max_depth,
                    max_aliases: self.max_aliases,
                    max_root_fields: self.max_root_fields,
                    max_directives: self.max_directives,
                    max_cost: self.max_cost,
                },
                ..EngineConfig::default()
            },
        })
    }
}

#[derive(Args, Debug, Clone, Copy, Default)]
struct SeedArgs {
    /// Seed of the demo world's random generator: the same seed gives the same world.
    #[arg(long = "seed", env = "CRM_SEED", default_value_t = 42)]
    seed: u64,
    /// Number of demo accounts.
    #[arg(long = "demo-accounts", default_value_t = 60)]
    accounts: usize,
}

impl SeedArgs {
    fn world(self) -> DemoWorld {
        DemoWorld {
            seed: self.seed,
            accounts: self.accounts.max(1),
        }
    }
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// The gateway against a peer router on The Guild's federation benchmark (its schema,
    /// data shape and query): RPS, latency, CPU per request per process and memory,
    /// alternating rounds, every answer checked; then a burst of connections.
    Gateway {
        /// The peer router's binary (Hive Router: `cargo install hive-router --version
        /// 0.2.0 --locked`, then `~/.cargo/bin/hive_router`). Without one, ours alone.
        #[arg(long)]
        peer: Option<PathBuf>,
        /// Subgraphs already serving /accounts, /inventory, /products and /reviews at this
        /// base URL (e.g. the original benchmark's `subgraphs` binary on
        /// http://127.0.0.1:4200); ours are started otherwise.
        #[arg(long)]
        subgraphs_url: Option<String>,
        #[arg(long, default_value_t = 50)]
        connections: usize,
        #[arg(long, default_value_t = 500)]
        burst_connections: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 3.0)]
        warmup_seconds: f64,
        /// Where the markdown report goes.
        #[arg(long, default_value = "target/bench-gateway.md")]
        out: PathBuf,
    },
    /// Serve the gateway benchmark's four subgraphs (what `crm bench gateway` starts).
    Subgraphs {
        #[arg(long, default_value = "127.0.0.1:4200")]
        listen: SocketAddr,
    },
}

#[derive(Args, Debug, Clone)]
struct BenchArgs {
    /// A small world (scale 0.002) and short runs: the CI smoke test of every scenario.
    #[arg(long)]
    quick: bool,
    /// The world's size (1.0 is the full world). Default: 1.0, or 0.002 with --quick.
    #[arg(long)]
    scale: Option<f64>,
    /// Seed of the world's generator.
    #[arg(long = "seed", env = "CRM_SEED", default_value_t = 42)]
    seed: u64,
    /// Seconds each scenario is measured (after its warm-up).
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds of warm-up before each scenario is measured.
    #[arg(long)]
    warmup_seconds: Option<f64>,
    /// Where the markdown report goes. Default: BENCHMARKS.md for a full run, and
    /// target/bench-quick.md with --quick (smoke numbers never replace the committed ones).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only the staff workspace's lists and forecast (after loading and checking the world).
    #[arg(long)]
    workspace_only: bool,
    /// Only the real binary's cold start, memory and mixed persona workload (after loading
    /// and checking the world).
    #[arg(long)]
    mixed_only: bool,
    /// Only the scoped pages and counts at the subgraph, and the page plans compared.
    #[arg(long)]
    scoped_only: bool,
}

#[derive(Args, Debug, Clone)]
struct ServiceArgs {
    #[arg(long, env = "CRM_LISTEN")]
    listen: SocketAddr,
    /// The gateway's Ed25519 public key (base64): requests must carry a token it signed
    /// for this subgraph.
    #[arg(long, env = "CRM_GATEWAY_PUBLIC_KEY")]
    gateway_public_key: Option<String>,
    /// Accept requests without a gateway token. Only for local tests and development.
    #[arg(long)]
    insecure_no_gateway_auth: bool,
    /// A shared secret (16 characters or more) that opens this service's event feed to
    /// consumers in other service processes, and that the account service sends to the
    /// order service's feed.
    #[arg(long, env = "CRM_FEED_KEY")]
    feed_key: Option<String>,
    /// The account service only: the order service's base URL, whose events keep the
    /// share rows (with CRM_FEED_KEY and REDIS_URL).
    #[arg(long, env = "CRM_ORDER_FEED_URL")]
    order_feed_url: Option<String>,
    /// The order, knowledge-base and identity services: the account service's base URL,
    /// whose events keep the supplier demand view's replica and the partner tiers the door
    /// carries, and bring erasures (with CRM_FEED_KEY and REDIS_URL).
    #[arg(long, env = "CRM_ACCOUNT_FEED_URL")]
    account_feed_url: Option<String>,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute every service's audit chains (or one organisation's) and check them
    /// against their signed heads and checkpoints; prints one line per chain and the first
    /// entry that does not hold. Exits 1 when any chain is broken.
    Verify {
        /// A partner's id, or `company`; every chain when left out.
        #[arg(long)]
        organisation: Option<String>,
    },
    /// Print a new audit signing key as CRM_AUDIT_SIGNING_KEY and its public half as
    /// CRM_AUDIT_PUBLIC_KEY (give it to verifiers; after a rotation, keep the old public
    /// key in CRM_AUDIT_TRUSTED_KEYS).
    NewKey,
}

#[derive(Subcommand, Debug)]
enum SharesCommand {
    /// Rebuilds the order-caused share rows from scratch by replaying the order service's
    /// event feed (never its tables), then the territory rows from the accounts' territories
    /// and the partners' coverage; manual shares stay. Without --order-feed-url, the
    /// order service of this storage serves its feed on a loopback port for the rebuild.
    Rebuild {
        /// A running order service's base URL (its feed is GET /events).
        #[arg(long)]
        order_feed_url: Option<String>,
        /// The gateway's signing key, to read a feed that answers the gateway only.
        #[arg(long, env = "CRM_GATEWAY_SIGNING_KEY")]
        signing_key: Option<String>,
    },
    /// Compares the order-caused share rows with what the order feed implies (a rebuild
    /// in memory; nothing is written) and prints the differences. Exits 1 on any drift.
    Check {
        /// A running order service's base URL (its feed is GET /events).
        #[arg(long)]
        order_feed_url: Option<String>,
        /// The gateway's signing key, to read a feed that answers the gateway only.
        #[arg(long, env = "CRM_GATEWAY_SIGNING_KEY")]
        signing_key: Option<String>,
    },
}

/// The order feed to rebuild or check share rows from: a running order service's, or this
/// storage's served on a loopback port for as long as the returned listener lives.
async fn order_feed_of(
    dbs: &system::Databases,
    order_feed_url: Option<String>,
    signing_key: Option<String>,
) -> anyhow::Result<(
    crm_service_common::events::HttpFeed,
    Option<system::Running>,
)> {
    let keys = match signing_key {
        Some(key) => KeyPair::from_base64(&key)?,
        None => KeyPair::generate()?,
    };
    let (url, producer) = match order_feed_url {
        Some(url) => (url, None),
        None => {
            // As the producer would on start: give its committed events their feed
            // positions (its relay's first step).
            let relay = crm_order_visibility::subgraph().outbox_relay(
                dbs.order_visibility.clone(),
                crm_service_common::events::EventBus::Memory(Default::default()),
            );
            while relay
                .run_once()
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?
                > 0
            {}
            let auth =
                SubgraphAuth::Required(Arc::new(keys.verifier(crm_order_visibility::SUBGRAPH)));
            let running = system::serve(
                system::bind(([127, 0, 0, 1], 0).into()).await?,
                crm_order_visibility::app(dbs.order_visibility.clone(), auth),
            )?;
            (running.url(), Some(running))
        }
    };
    Ok((system::feed_with_token(&url, &keys), producer))
}

/// What a subgraph process requires of its callers, from its flags.
fn subgraph_auth(args: &ServiceArgs, subgraph: &str) -> anyhow::Result<SubgraphAuth> {
    match (&args.gateway_public_key, args.insecure_no_gateway_auth) {
        (Some(key), _) => Ok(SubgraphAuth::Required(Arc::new(
            TokenVerifier::from_base64(key, subgraph)?.with_feed_key(args.feed_key.clone()),
        ))),
        (None, true) => {
            tracing::warn!("gateway tokens are not checked (--insecure-no-gateway-auth)");
            Ok(SubgraphAuth::Disabled)
        }
        (None, false) => anyhow::bail!(
            "set CRM_GATEWAY_PUBLIC_KEY (the gateway's public key), or --insecure-no-gateway-auth for local tests"
        ),
    }
}

/// The identity directory of the configured storage, migrated.
async fn open_identity(
    storage: &Storage,
    options: &identity::IdentityOptions,
) -> anyhow::Result<identity::Identity> {
    let db = crm_service_common::db::connect(&storage.target(identity::SERVICE)).await?;
    identity::migrate(&db).await?;
    identity::Identity::open(&db, Arc::new(identity::tokens::SystemClock), options).await
}

/// Runs one service as its own process: its database (migrated), its subgraph and event
/// feed, the relay that publishes its outbox, and its job runner. The identity service holds the policy
/// store and publishes it; the others follow what it publishes.
async fn run_service(storage: &Storage, name: &str, args: ServiceArgs) -> anyhow::Result<()> {
    let ours = system::Subgraphs::ours(Default::default());
    let subgraph = ours.named(name).with_context(|| {
        format!(
            "no subgraph named {name:?}; ours are {}",
            ours.names().join(", ")
        )
    })?;
    let auth = subgraph_auth(&args, subgraph.name())?;
    let db = crm_service_common::db::connect(&storage.target(subgraph.service())).await?;
    subgraph.migrate(&db).await?;
    let bus = storage.event_bus().await?;
    let _relay = subgraph.relay(db.clone(), bus.clone()).map(|r| r.spawn());
    let _jobs = subgraph.jobs(db.clone()).map(|r| r.spawn());
    system::install_audit_keys(storage)?;
    let _sealer = subgraph.audit_sealer(db.clone());
    let _order_consumers = order_consumers(subgraph.service(), &args, &db, &bus)?;
    let _account_consumers = account_consumers(subgraph.service(), &args, &db, &bus)?;
    let _partner_tiers = partner_tier_consumer(subgraph.service(), &args, &db, &bus);
    let app = subgraph.serve(db, auth).await?;
    let _directory = if subgraph.name() == identity::SUBGRAPH {
        system::share_directory_changes(storage).await?
    } else {
        Vec::new()
    };
    let _policy = match ours.identity.opened() {
        Some(identity) if subgraph.name() == identity::SUBGRAPH => {
            system::publish_policy(storage, identity).await?;
            None
        }
        _ => follow_policy(storage).await?,
    };
    let running = system::serve(system::bind(args.listen).await?, app)?;
    tracing::info!(url = %running.url(), storage = %storage.describe(), service = subgraph.service(), "service listening");
    running.wait().await
}

/// The account service's consumers of the order service's events (the share rows, and the
/// notifications that follow orders), when it is told where the order service is.
fn order_consumers(
    service: &str,
    args: &ServiceArgs,
    db: &sea_orm::DatabaseConnection,
    bus: &crm_service_common::events::EventBus,
) -> anyhow::Result<Vec<crm_service_common::events::consumer::ConsumerHandle>> {
    let is_account = service == crm_account::SERVICE;
    match &args.order_feed_url {
        Some(_) if !is_account => anyhow::bail!("--order-feed-url is for the account service"),
        Some(url) => Ok(vec![
            crm_account::shares::consumer(db.clone(), bus.clone(), keyed_feed(url, args)).spawn(),
            crm_account::order_notifications::consumer(
                db.clone(),
                bus.clone(),
                keyed_feed(url, args),
            )
            .spawn(),
        ]),
        None => {
            if is_account {
                tracing::warn!(
                    "no --order-feed-url: share rows and order notifications will not follow the order service's events"
                );
            }
            Ok(Vec::new())
        }
    }
}

/// Another service process's event feed at `url`, opened with the shared feed key.
fn keyed_feed(url: &str, args: &ServiceArgs) -> crm_service_common::events::HttpFeed {
    let feed = crm_service_common::events::HttpFeed::new(url);
    match args.feed_key.clone() {
        Some(key) => feed.with_token(Arc::new(move || key.clone())),
        None => feed,
    }
}

/// The order and knowledge-base services' consumers of the account service's events
/// (the demand view's replica; the erasures both apply), when they are told where the
/// account service is.
fn account_consumers(
    service: &str,
    args: &ServiceArgs,
    db: &sea_orm::DatabaseConnection,
    bus: &crm_service_common::events::EventBus,
) -> anyhow::Result<Vec<crm_service_common::events::consumer::ConsumerHandle>> {
    let is_order = service == crm_order_visibility::SERVICE;
    let is_articles = service == crm_knowledge_base::SERVICE;
    match &args.account_feed_url {
        Some(_) if service == identity::SERVICE => Ok(Vec::new()),
        Some(_) if !is_order && !is_articles => anyhow::bail!(
            "--account-feed-url is for the order, knowledge-base and identity services"
        ),
        Some(url) if is_order => Ok(vec![
            crm_order_visibility::demand::replica::consumer(
                db.clone(),
                bus.clone(),
                keyed_feed(url, args),
            )
            .spawn(),
            crm_order_visibility::erasure::consumer(db.clone(), bus.clone(), keyed_feed(url, args))
                .spawn(),
        ]),
        Some(url) => Ok(vec![
            crm_knowledge_base::erasure::consumer(db.clone(), bus.clone(), keyed_feed(url, args))
                .spawn(),
        ]),
        None => {
            if is_order {
                tracing::warn!(
                    "no --account-feed-url: the supplier demand view will not follow opportunities, and erasures will not reach orders"
                );
            }
            if is_articles {
                tracing::warn!("no --account-feed-url: erasures will not reach the knowledge base");
            }
            Ok(Vec::new())
        }
    }
}

/// The identity service's consumer of the account service's events (the partner tiers
/// the door carries), when it is told where the account service is.
fn partner_tier_consumer(
    service: &str,
    args: &ServiceArgs,
    db: &sea_orm::DatabaseConnection,
    bus: &crm_service_common::events::EventBus,
) -> Option<crm_service_common::events::consumer::ConsumerHandle> {
    if service != identity::SERVICE {
        return None;
    }
    match &args.account_feed_url {
        Some(url) => Some(
            identity::partner_tiers::consumer(db.clone(), bus.clone(), keyed_feed(url, args))
                .spawn(),
        ),
        None => {
            tracing::warn!(
                "no --account-feed-url: partner callers carry no tier (tiered articles stay hidden from them)"
            );
            None
        }
    }
}

/// A service process decides with the policy the gateway publishes to Redis (checked on
/// every change message and every second); without Redis it keeps the bundled policy.
async fn follow_policy(
    storage: &Storage,
) -> anyhow::Result<Option<crm_service_common::policy_sync::PolicyFollower>> {
    use crm_service_common::policy_sync::{PolicyKeys, follow};
    match &storage.redis_url {
        Some(url) => Ok(Some(
            follow(
                url,
                PolicyKeys::new(storage.event_namespace.as_deref()),
                std::time::Duration::from_secs(1),
            )
            .await?,
        )),
        None => {
            tracing::warn!(
                "no REDIS_URL: this process keeps the bundled policy and will not see policy edits"
            );
            Ok(None)
        }
    }
}

/// `name=value` pairs from the command line.
fn pairs(values: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| {
            v.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .with_context(|| format!("{what} must be NAME=VALUE, not {v:?}"))
        })
        .collect()
}

/// The SDL of one composition input: a file, or a running subgraph's `_service { sdl }`.
async fn subgraph_sdl(source: &str) -> anyhow::Result<String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        crm_gateway::federation::compose::running_sdl(source).await
    } else {
        std::fs::read_to_string(source).with_context(|| format!("reading {source}"))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    // The federation executor times subgraph calls only while this target is on (it feeds
    // the overhead metric); nothing is ever logged on it.
    let filter = match "router::request=info".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    // Colours only for a person at a terminal, never into a log file or collector.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    crm_service_common::scope_plan::set_sparse_at_most(cli.storage.sparse_scope_at_most);
    crm_service_common::scope_plan::set_ordered_walks(!cli.storage.no_ordered_scopes);
    let storage = cli.storage.storage();
    let Some(command) = cli.command else {
        return up(&storage, cli.up).await;
    };
    match command {
        Command::Service { name, args } => run_service(&storage, &name, args).await,
        Command::Token {
            revoke: Some(session),
            ..
        } => {
            let identity = open_identity(&storage, &Default::default()).await?;
            identity
                .directory
                .sign_out(&session)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            eprintln!("session {session} ended: its tokens no longer work");
            Ok(())
        }
        Command::Token {
            user: Some(user),
            ttl_seconds,
            ..
        } => {
            let identity = open_identity(&storage, &Default::default()).await?;
            let found = identity
                .directory
                .user_by_email(&user)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?
                .with_context(|| {
                    format!("no user with email {user:?} in {}", storage.describe())
                })?;
            anyhow::ensure!(!found.disabled, "{user} is disabled");
            let ttl = ttl_seconds.clamp(60, 30 * 24 * 3600);
            let session = identity
                .directory
                .command_line_session(&found, ttl)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            let token = identity.issuer.issue(&found.id, Some(&session.id), ttl);
            eprintln!(
                "session {} (end it with: crm token --revoke {})",
                session.id, session.id
            );
            std::io::Write::write_all(&mut std::io::stdout(), format!("{token}\n").as_bytes())?;
            Ok(())
        }
        Command::Token { .. } => anyhow::bail!("crm token needs --user or --revoke"),
        Command::Keygen => {
            let keys = KeyPair::generate()?;
            let text = format!(
                "CRM_GATEWAY_SIGNING_KEY={}\nCRM_GATEWAY_PUBLIC_KEY={}\n",
                keys.private_base64(),
                keys.public_base64()
            );
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
            Ok(())
        }
        Command::Compose { write, subgraphs } => {
            let sources = if subgraphs.is_empty() {
                let mut ours = system::our_subgraphs();
                for source in &mut ours {
                    let file = system::sdl_path(&source.name);
                    source.sdl = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                }
                ours
            } else {
                let mut sources = Vec::new();
                for (name, source) in pairs(&subgraphs, "--subgraph")? {
                    let url = if source.starts_with("http") {
                        source.clone()
                    } else {
                        format!("http://{name}.invalid/graphql")
                    };
                    sources.push(SubgraphSource {
                        sdl: subgraph_sdl(&source).await?,
                        name,
                        url,
                    });
                }
                sources
            };
            let supergraph = compose(&sources)?;
            if write {
                let path = PathBuf::from("schema").join("supergraph.graphql");
                std::fs::write(&path, &supergraph)
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(path = %path.display(), "supergraph written");
            } else {
                std::io::Write::write_all(&mut std::io::stdout(), supergraph.as_bytes())?;
            }
            Ok(())
        }
        Command::Gateway {
            supergraph,
            listen,
            subgraph_urls,
            signing_key,
            directory,
            door,
        } => {
            let sdl = std::fs::read_to_string(&supergraph)
                .with_context(|| format!("reading {}", supergraph.display()))?;
            let mut settings = door.settings()?;
            // Sign-outs and disabled users are written by the identity service: without
            // Redis this gateway would not hear of them, so its door reads every time.
            settings.identity.door_reads_every_request = storage.redis_url.is_none();
            let _directory = if directory {
                system::share_directory_changes(&storage).await?
            } else {
                Vec::new()
            };
            let subgraph_urls: std::collections::HashMap<String, String> =
                pairs(&subgraph_urls, "--subgraph-url")?
                    .into_iter()
                    .collect();
            let config = EngineConfig {
                subgraph_urls: subgraph_urls.clone(),
                ..settings.engine
            };
            let engine = Arc::new(Engine::new(&sdl, config)?);
            let keys = match signing_key {
                Some(key) => KeyPair::from_base64(&key)?,
                None => {
                    let keys = KeyPair::generate()?;
                    tracing::warn!(public_key = %keys.public_base64(), "no CRM_GATEWAY_SIGNING_KEY: generated a key for this run; give its public key to the subgraphs (CRM_GATEWAY_PUBLIC_KEY)");
                    keys
                }
            };
            let identity = if directory {
                let identity = open_identity(&storage, &settings.identity).await?;
                system::publish_policy(&storage, &identity).await?;
                Some(identity)
            } else {
                None
            };
            // The door stamps the policy version on every caller: follow edits made
            // elsewhere.
            let _policy = follow_policy(&storage).await?;
            // A gateway with the directory delivers its webhooks (it reads through its
            // engine), hearing of changes from the services named by --subgraph-url.
            let _webhooks = match &identity {
                Some(identity) => Some(system::webhooks::start(
                    identity,
                    engine.clone(),
                    &keys,
                    storage.event_bus().await?,
                    |name| {
                        // Where the engine calls the subgraph (an override, or the
                        // supergraph's URL): its event feed is beside its /graphql.
                        engine
                            .subgraphs()
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, url)| url.trim_end_matches("/graphql").to_owned())
                    },
                )?),
                None => None,
            };
            // Subscriptions hear of changes on the deployment's bus: Redis (the services
            // are other processes; an in-process bus would hear nothing of them).
            let live = match &storage.redis_url {
                Some(_) => Some(system::live::follow(storage.event_bus().await?)),
                None => {
                    tracing::warn!(
                        "no REDIS_URL: this gateway hears no events and does not serve subscriptions"
                    );
                    None
                }
            };
            let trusted_proxies = settings.door.trusted_proxies.clone();
            let api = crm_gateway::federation::server::router(
                engine.clone(),
                settings.door,
                system::minter(&keys),
                identity
                    .as_ref()
                    .map(|i| i.authenticator.clone() as Arc<dyn crm_contract::Door>),
                identity.as_ref().map(|i| i.jwks.clone()),
                storage.rate_store().await?,
                live.as_ref().map(|(changes, _)| changes.clone()),
            );
            // The web UI needs the directory (its sessions live there).
            let app = match &identity {
                Some(identity) => system::with_web(api, identity, settings.web),
                None => api,
            };
            let app = crm_gateway::federation::server::front_door(app, trusted_proxies);
            let running = system::serve(system::bind(listen).await?, app)?;
            tracing::info!(url = %running.url(), subgraphs = ?engine.subgraphs(), "gateway listening");
            running.wait().await
        }
        Command::Shares {
            command:
                SharesCommand::Rebuild {
                    order_feed_url,
                    signing_key,
                },
        } => {
            let dbs = system::open_databases(&storage).await?;
            let (feed, _producer) = order_feed_of(&dbs, order_feed_url, signing_key).await?;
            let started = std::time::Instant::now();
            let applied = crm_account::shares::rebuild(
                &dbs.account,
                crm_service_common::events::EventBus::Memory(Default::default()),
                feed,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
            tracing::info!(
                events = applied,
                seconds = started.elapsed().as_secs_f64(),
                "share rows rebuilt from the order feed"
            );
            let started = std::time::Instant::now();
            let txn = crm_service_common::db::begin_write(&dbs.account)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            let rows = crm_account::territory_shares::rebuild(&txn)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            crm_service_common::db::commit(txn)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            tracing::info!(
                rows,
                seconds = started.elapsed().as_secs_f64(),
                "territory share rows rebuilt from accounts and coverage"
            );
            Ok(())
        }
        Command::Shares {
            command:
                SharesCommand::Check {
                    order_feed_url,
                    signing_key,
                },
        } => {
            let dbs = system::open_databases(&storage).await?;
            let (feed, _producer) = order_feed_of(&dbs, order_feed_url, signing_key).await?;
            let drift = crm_account::shares::drift(&dbs.account, &feed)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            let mut out = format!(
                "share rows: {} missing, {} extra\n",
                drift.missing.len(),
                drift.extra.len()
            );
            for (label, rows) in [("missing", &drift.missing), ("extra", &drift.extra)] {
                for (account, partner, cause, source) in rows {
                    out.push_str(&format!("{label}: {account} {partner} {cause} {source}\n"));
                }
            }
            // The scopes kept in page order, against a refresh from what they copy.
            let copies = [
                (
                    "partner accounts",
                    crm_account::partner_accounts::drift(&dbs.account).await,
                ),
                (
                    "order suppliers",
                    crm_order_visibility::order_suppliers::drift(&dbs.order_visibility).await,
                ),
            ];
            let mut copies_drift = false;
            for (label, drift) in copies {
                let (missing, extra) = drift.map_err(|e| anyhow::anyhow!(e.message()))?;
                copies_drift |= missing + extra > 0;
                out.push_str(&format!("{label}: {missing} missing, {extra} extra\n"));
            }
            std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes())?;
            if !drift.is_none() || copies_drift {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::NewKey,
        } => {
            let key = crm_service_common::audit::chain::AuditKey::generate_base64()?;
            let public = crm_service_common::audit::chain::AuditKey::from_base64("", &key)?;
            let text = format!(
                "CRM_AUDIT_SIGNING_KEY={key}\nCRM_AUDIT_PUBLIC_KEY={}\n",
                public.public_base64()
            );
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { organisation },
        } => {
            use crm_service_common::audit::chain;
            let dbs = system::open_databases(&storage).await?;
            system::install_audit_keys(&storage)?;
            let trusted = chain::trusted_keys();
            use crm_service_common::audit::graphql::COMPANY_CHAIN;
            let only =
                organisation.map(|o| vec![if o == COMPANY_CHAIN { String::new() } else { o }]);
            let mut out = String::new();
            let mut broken = 0;
            for (service, db) in [
                (crm_account::SERVICE, &dbs.account),
                (crm_order_visibility::SERVICE, &dbs.order_visibility),
                (crm_knowledge_base::SERVICE, &dbs.knowledge_base),
            ] {
                let reports = chain::verify(db, service, &trusted, only.as_deref())
                    .await
                    .map_err(|e| anyhow::anyhow!(e.message()))?;
                for r in reports {
                    let chain = if r.organisation.is_empty() {
                        COMPANY_CHAIN
                    } else {
                        r.organisation.as_str()
                    };
                    let verdict = match &r.broken {
                        None => "intact".to_owned(),
                        Some(b) => {
                            broken += 1;
                            format!(
                                "BROKEN at entry {}{}: {}",
                                b.chain_seq,
                                b.entry_id
                                    .as_deref()
                                    .map(|id| format!(" ({id})"))
                                    .unwrap_or_default(),
                                b.reason
                            )
                        }
                    };
                    out.push_str(&format!(
                        "{service} {chain}: {} entries, {} checkpoints, {} pending: {verdict}\n",
                        r.entries, r.checkpoints, r.pending
                    ));
                }
            }
            out.push_str(&format!("{broken} broken chain(s)\n"));
            std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes())?;
            if broken > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Migrate => {
            system::open_databases(&storage).await?;
            tracing::info!(storage = %storage.describe(), "migrations applied");
            Ok(())
        }
        Command::Seed {
            args,
            scale: Some(factor),
        } => {
            let dbs = system::open_databases(&storage).await?;
            let world = crm_bench::scale::ScaleWorld::new(args.seed, factor);
            let expected = world.expected();
            let Some((_, load)) =
                crm_bench::scale::ensure_loaded(&dbs, &storage.data_dir, &world, &expected).await?
            else {
                tracing::info!("the databases already hold this world; nothing loaded");
                return Ok(());
            };
            tracing::info!(
                rows = load.rows,
                write_seconds = load.write.as_secs_f64(),
                index_seconds = load.index.as_secs_f64(),
                rows_per_second = load.rows_per_second().round(),
                "scale world loaded"
            );
            Ok(())
        }
        Command::Bench {
            what: Some(BenchCommand::Subgraphs { listen }),
            ..
        } => crm_bench::guild::serve_subgraphs(listen).await,
        Command::Bench {
            what:
                Some(BenchCommand::Gateway {
                    peer,
                    subgraphs_url,
                    connections,
                    burst_connections,
                    rounds,
                    seconds,
                    warmup_seconds,
                    out,
                }),
            ..
        } => {
            crm_bench::guild::run(crm_bench::guild::GatewayBenchOptions {
                crm_binary: std::env::current_exe().context("locating the crm binary")?,
                peer,
                subgraphs_url,
                connections,
                burst_connections,
                rounds: rounds.max(1),
                warmup: std::time::Duration::from_secs_f64(warmup_seconds),
                duration: std::time::Duration::from_secs_f64(seconds.max(0.1)),
                out,
            })
            .await
        }
        Command::Bench { what: None, args } => {
            let binary = std::env::current_exe().context("locating the crm binary")?;
            let out = args.out.clone().unwrap_or_else(|| {
                if args.quick {
                    PathBuf::from("target/bench-quick.md")
                } else {
                    PathBuf::from("BENCHMARKS.md")
                }
            });
            let mut options = if args.quick {
                crm_bench::bench::BenchOptions::quick(binary, out)
            } else {
                crm_bench::bench::BenchOptions {
                    seed: args.seed,
                    factor: 1.0,
                    warmup: std::time::Duration::from_secs(2),
                    duration: std::time::Duration::from_secs(10),
                    crm_binary: binary,
                    out,
                    quick: false,
                    workspace_only: false,
                    mixed_only: false,
                    scoped_only: false,
                }
            };
            options.seed = args.seed;
            options.workspace_only = args.workspace_only;
            options.mixed_only = args.mixed_only;
            options.scoped_only = args.scoped_only;
            if let Some(factor) = args.scale {
                options.factor = factor;
            }
            if let Some(s) = args.seconds {
                options.duration = std::time::Duration::from_secs_f64(s);
            }
            if let Some(s) = args.warmup_seconds {
                options.warmup = std::time::Duration::from_secs_f64(s);
            }
            crm_bench::bench::run(&storage, options).await
        }
        Command::Seed { args, scale: None } => {
            let dbs = system::open_databases(&storage).await?;
            let summary = system::seed_if_empty(&dbs, args.world()).await?;
            if summary.wrote_anything() {
                tracing::info!(%summary, "demo world written");
            } else {
                tracing::info!("the databases already hold data; nothing seeded");
            }
            Ok(())
        }
        Command::Schema { write } => {
            for subgraph in system::our_subgraphs() {
                if write {
                    let path = system::sdl_path(&subgraph.name);
                    std::fs::write(&path, subgraph.sdl)
                        .with_context(|| format!("writing {}", path.display()))?;
                    tracing::info!(path = %path.display(), "SDL written");
                } else {
                    let text = format!("# ---- {} ----\n{}\n", subgraph.name, subgraph.sdl);
                    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
                }
            }
            Ok(())
        }
    }
}

async fn up(storage: &Storage, args: UpArgs) -> anyhow::Result<()> {
    let world = (!args.no_seed).then(|| args.seed.world());
    let system =
        system::start_all_in_one_with(storage, args.listen, world, args.door.settings()?).await?;
    if let Some(summary) = &system.seeded {
        tracing::info!(%summary, "seeded the demo world");
    }
    let users = identity::all_users(&system.databases.identity).await?;
    let mut banner = format!(
        "\n  Partner-portal CRM is running\n\n  GraphQL API:  {url}/graphql   (POST, application/json; one federated endpoint)\n  Explorer:     {url}/graphiql   (with --explorer)\n  Storage:      {}\n\n  Demo logins (password: {}; sign in with the signIn mutation, or `crm token --user EMAIL`):\n",
        storage.describe(),
        identity::DEMO_PASSWORD,
        url = system.public.url()
    );
    // A benchmark world has hundreds of users: list the first ones only.
    const LISTED: usize = 30;
    for user in users.iter().take(LISTED) {
        banner.push_str(&format!(
            "    {:<44} {:<12} {}\n",
            user.email, user.kind, user.roles
        ));
    }
    if users.len() > LISTED {
        banner.push_str(&format!(
            "    … and {} more, named the same way (persona-user@persona.example)\n",
            users.len() - LISTED
        ));
    }
    banner.push_str("\n  Stop with Ctrl-C.\n");
    std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes())?;
    system.public.wait().await
}
