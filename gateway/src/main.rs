//! `crm`: the partner-portal CRM in one binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use crm_gateway::identity;
use crm_gateway::system::{self, DemoWorld, Storage};

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

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one service as its own process.
    Service {
        #[command(subcommand)]
        service: ServiceCommand,
    },
    /// Apply every service's migrations and exit.
    Migrate,
    /// Write the demo world if the databases are empty, and exit.
    Seed(SeedArgs),
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
enum ServiceCommand {
    /// The account subgraph (accounts, contacts, interactions, leads, opportunities,
    /// cases, partners, territories).
    Account {
        #[arg(long, env = "CRM_LISTEN")]
        listen: SocketAddr,
    },
    /// The order-visibility subgraph (products, orders, order lines, shipments).
    OrderVisibility {
        #[arg(long, env = "CRM_LISTEN")]
        listen: SocketAddr,
    },
    /// The knowledge-base subgraph (articles).
    KnowledgeBase {
        #[arg(long, env = "CRM_LISTEN")]
        listen: SocketAddr,
    },
}

/// Runs one service as its own process: its database (migrated), its subgraph and event
/// feed, and the relay that publishes its outbox.
async fn run_service(
    storage: &Storage,
    service: &str,
    listen: SocketAddr,
    migrate: impl AsyncFnOnce(&sea_orm::DatabaseConnection) -> anyhow::Result<()>,
    app: fn(sea_orm::DatabaseConnection) -> axum::Router,
) -> anyhow::Result<()> {
    let db = crm_service_common::db::connect(&storage.target(service)).await?;
    migrate(&db).await?;
    let bus = storage.event_bus().await?;
    let _relay = crm_service_common::events::Relay::new(db.clone(), service, bus).spawn();
    let running = system::serve(system::bind(listen).await?, app(db))?;
    tracing::info!(url = %running.url(), storage = %storage.describe(), service, "service listening");
    running.wait().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn")
            }),
        )
        .init();
    let cli = Cli::parse();
    let storage = cli.storage.storage();
    let Some(command) = cli.command else {
        return up(&storage, cli.up).await;
    };
    match command {
        Command::Service { service } => match service {
            ServiceCommand::Account { listen } => {
                run_service(
                    &storage,
                    crm_account::SERVICE,
                    listen,
                    async |db| crm_account::migrate(db).await,
                    crm_account::app,
                )
                .await
            }
            ServiceCommand::OrderVisibility { listen } => {
                run_service(
                    &storage,
                    crm_order_visibility::SERVICE,
                    listen,
                    async |db| crm_order_visibility::migrate(db).await,
                    crm_order_visibility::app,
                )
                .await
            }
            ServiceCommand::KnowledgeBase { listen } => {
                run_service(
                    &storage,
                    crm_knowledge_base::SERVICE,
                    listen,
                    async |db| crm_knowledge_base::migrate(db).await,
                    crm_knowledge_base::app,
                )
                .await
            }
        },
        Command::Migrate => {
            system::open_databases(&storage).await?;
            tracing::info!(storage = %storage.describe(), "migrations applied");
            Ok(())
        }
        Command::Seed(args) => {
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
            for (service, sdl) in [
                (crm_account::SERVICE, crm_account::sdl()),
                (crm_order_visibility::SERVICE, crm_order_visibility::sdl()),
                (crm_knowledge_base::SERVICE, crm_knowledge_base::sdl()),
            ] {
                if write {
                    let path = PathBuf::from("schema").join(format!("{service}.graphql"));
                    std::fs::write(&path, sdl)
                        .with_context(|| format!("writing {}", path.display()))?;
                    tracing::info!(path = %path.display(), "SDL written");
                } else {
                    let text = format!("# ---- {service} ----\n{sdl}\n");
                    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
                }
            }
            Ok(())
        }
    }
}

async fn up(storage: &Storage, args: UpArgs) -> anyhow::Result<()> {
    let world = (!args.no_seed).then(|| args.seed.world());
    let system = system::start_all_in_one(storage, args.listen, world).await?;
    if let Some(summary) = &system.seeded {
        tracing::info!(%summary, "seeded the demo world");
    }
    let users = identity::all_users(&system.databases.identity).await?;
    let mut banner = format!(
        "\n  Partner-portal CRM is running\n\n  GraphQL (POST, application/json), one endpoint per subgraph until the gateway lands:\n    {url}/subgraphs/account/graphql          (also {url}/graphql)\n    {url}/subgraphs/order-visibility/graphql\n    {url}/subgraphs/knowledge-base/graphql\n  Event feeds:  {url}/subgraphs/<service>/events?after=0\n  Storage:      {}\n\n  Demo logins (sign-in arrives with the identity work):\n",
        storage.describe(),
        url = system.public.url()
    );
    for user in &users {
        banner.push_str(&format!(
            "    {:<44} {:<12} {}\n",
            user.email, user.kind, user.roles
        ));
    }
    banner.push_str("\n  Stop with Ctrl-C.\n");
    std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes())?;
    system.public.wait().await
}
