//! Starting the pieces of the system: databases (migrated), the demo seed, and the
//! processes. The all-in-one process and the separate `crm service …` processes run the
//! same code; only where the data lives and which listeners open differ.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use crm_service_common::db::{DbTarget, connect};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::identity;

/// Where data lives: PostgreSQL (`DATABASE_URL`, one schema per service) or SQLite files
/// under `data_dir` (the embedded default).
#[derive(Clone, Debug)]
pub struct Storage {
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
}

impl Storage {
    pub fn target(&self, service: &str) -> DbTarget {
        DbTarget::for_service(self.database_url.as_deref(), &self.data_dir, service)
    }

    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => format!("PostgreSQL ({})", redact(url)),
            _ => format!("SQLite files in {}", self.data_dir.display()),
        }
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
    pub identity: DatabaseConnection,
}

pub async fn open_databases(storage: &Storage) -> anyhow::Result<Databases> {
    let account = connect(&storage.target(crm_account::SERVICE)).await?;
    crm_account::migrate(&account)
        .await
        .context("migrating the account schema")?;
    let identity = connect(&storage.target(identity::SERVICE)).await?;
    identity::migrate(&identity).await?;
    Ok(Databases { account, identity })
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

/// Seeds the demo world unless the account service already holds data. Returns what was
/// written, or `None` when nothing was.
pub async fn seed_if_empty(
    dbs: &Databases,
    world: DemoWorld,
) -> anyhow::Result<Option<crm_account::seed::SeedSummary>> {
    if crm_account::seed::is_seeded(&dbs.account).await? {
        return Ok(None);
    }
    let summary = crm_account::seed::seed(&dbs.account, world.seed, world.accounts)
        .await
        .context("seeding accounts")?;
    if !identity::is_seeded(&dbs.identity).await? {
        identity::seed(&dbs.identity, &identity::demo_users(&summary.partners)).await?;
    }
    Ok(Some(summary))
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
/// the configured databases), seeded on first start.
pub struct AllInOne {
    pub public: Running,
    pub databases: Databases,
    pub seeded: Option<crm_account::seed::SeedSummary>,
}

pub async fn start_all_in_one(
    storage: &Storage,
    listen: SocketAddr,
    world: Option<DemoWorld>,
) -> anyhow::Result<AllInOne> {
    let databases = open_databases(storage).await?;
    let seeded = match world {
        Some(world) => seed_if_empty(&databases, world).await?,
        None => None,
    };
    // Until the federation gateway exists, the account subgraph is the public endpoint;
    // the gateway issue moves subgraphs to internal loopback ports behind it.
    let public = serve(
        bind(listen).await?,
        crm_account::app(databases.account.clone()),
    )?;
    Ok(AllInOne {
        public,
        databases,
        seeded,
    })
}
