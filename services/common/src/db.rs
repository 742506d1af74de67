//! Database connections. Each service owns its tables: on PostgreSQL they live in a schema
//! named after the service (`search_path` is pinned to it), on SQLite in a file of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Where a service's data lives.
#[derive(Clone, Debug)]
pub struct DbTarget {
    /// A `postgres://…` or `sqlite://…` URL.
    pub url: String,
    /// The PostgreSQL schema that holds this service's tables (ignored for SQLite).
    pub schema: String,
}

impl DbTarget {
    /// Resolves where `service` keeps its data: `DATABASE_URL` when it is PostgreSQL (one
    /// schema per service), otherwise one SQLite file per service under `data_dir`.
    pub fn for_service(
        database_url: Option<&str>,
        data_dir: &std::path::Path,
        service: &str,
    ) -> Self {
        let schema = service.replace('-', "_");
        match database_url {
            Some(url) if !url.is_empty() => Self {
                url: url.to_owned(),
                schema,
            },
            _ => Self {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join(format!("{service}.db")).display()
                ),
                schema,
            },
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

/// Connects and, on PostgreSQL, makes sure the service's schema exists.
pub async fn connect(target: &DbTarget) -> anyhow::Result<DatabaseConnection> {
    if let Some(dir) = sqlite_path(&target.url).and_then(|path| std::path::Path::new(path).parent())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    if target.is_postgres() {
        anyhow::ensure!(
            target
                .schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "schema name {:?} must be alphanumeric",
            target.schema
        );
        // The schema must exist before a pool pins its search_path to it.
        let bootstrap = Database::connect(target.url.as_str())
            .await
            .context("connecting to PostgreSQL (DATABASE_URL)")?;
        bootstrap
            .execute_unprepared(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                target.schema
            ))
            .await
            .with_context(|| format!("creating schema {}", target.schema))?;
        bootstrap.close().await.ok();
    }
    let mut options = ConnectOptions::new(target.url.clone());
    options
        .max_connections(pool_size(target.is_postgres()))
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if target.is_postgres() {
        options.set_schema_search_path(target.schema.clone());
        // No parallel workers for these short queries: with them, a scoped first page
        // walked the sort index in three processes, each looking for a full page (the
        // smallest supplier's accounts page at 1M accounts: 118 ms, 25 ms without), and
        // workers would take the cores other requests need. Counts lost nothing measurable
        // (143 vs 149 ms for 1M accounts). `crm bench` measures both.
        options.map_sqlx_postgres_opts(|o| o.options([("max_parallel_workers_per_gather", "0")]));
    } else {
        // WAL lets readers run beside the single writer; the busy timeout turns writer
        // contention into waiting instead of "database is locked" errors.
        // `secure_delete` overwrites what a write removes (a deleted row, the old bytes of
        // an updated one, freed pages) with zeros, so an erased person's data does not
        // linger in the file's free space; `wipe_freed` empties the WAL after an erasure.
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("secure_delete", "ON")
        });
    }
    Database::connect(options)
        .await
        .with_context(|| format!("connecting to the {} database", target.schema))
}

/// The most connections one service's pool holds: `CRM_DB_POOL_SIZE` (1 to 200), else 10
/// on PostgreSQL and 8 on SQLite. Every service of every process has its own pool, so their
/// sum must stay under the server's `max_connections`: a pool that can't open a connection
/// because the server is full waits out its acquire timeout.
fn pool_size(postgres: bool) -> u32 {
    std::env::var("CRM_DB_POOL_SIZE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| (1..=200).contains(n))
        .unwrap_or(if postgres { 10 } else { 8 })
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Counts the SQL statements a connection runs: tests use it to prove that a batch is
/// loaded with one query, not one per key.
#[derive(Clone, Default)]
pub struct StatementCounter(Arc<AtomicUsize>);

impl StatementCounter {
    pub fn attach(&self, db: &mut DatabaseConnection) {
        let count = self.0.clone();
        db.set_metric_callback(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        });
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Starts a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails with
/// `SQLITE_BUSY` instead of waiting when another writer got there first. PostgreSQL
/// ignores the mode.
pub async fn begin_write(db: &DatabaseConnection) -> crate::ApiResult<DatabaseTransaction> {
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?)
}

/// Makes the rest of the transaction `db` is one writer at a time for `name`: on
/// PostgreSQL a transaction-level advisory lock (held until commit or rollback), on SQLite
/// nothing, as a write transaction holds the database's one write lock already. For work
/// that derives rows from what other transactions write: taken before the reads, it makes
/// each such transaction see everything the ones before it committed.
pub async fn serialize_section<C: sea_orm::ConnectionTrait>(
    db: &C,
    name: &str,
) -> crate::ApiResult<()> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [lock_key(name).into()],
        ))
        .await?;
    }
    Ok(())
}

/// Replaces rows derived from other rows (`delete`, then `insert … select`), one such
/// writer at a time for `name` ([`serialize_section`]): two transactions deriving the same
/// rows from snapshots that each miss the other's writes would leave whichever committed
/// last, and with it a change it never saw undone.
pub async fn rederive<C: sea_orm::ConnectionTrait>(
    db: &C,
    name: &str,
    (delete, insert): (
        sea_orm::sea_query::DeleteStatement,
        sea_orm::sea_query::InsertStatement,
    ),
) -> crate::ApiResult<()> {
    serialize_section(db, name).await?;
    db.execute(&delete).await?;
    db.execute(&insert).await?;
    Ok(())
}

/// How rows kept from others differ from what `derived` makes of them now, both in the
/// same columns: (rows derived but not kept, rows kept but not derived).
pub async fn drift<C: sea_orm::ConnectionTrait>(
    db: &C,
    derived: sea_orm::sea_query::SelectStatement,
    kept: sea_orm::sea_query::SelectStatement,
) -> crate::ApiResult<(u64, u64)> {
    use sea_orm::sea_query::{Alias, Expr, Query, UnionType};
    let mut counts = Vec::new();
    for (from, minus) in [(derived.clone(), kept.clone()), (kept, derived)] {
        let mut difference = from;
        difference.union(UnionType::Except, minus);
        let count = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .from_subquery(difference, Alias::new("difference"))
            .to_owned();
        let n: i64 = match db.query_one(&count).await? {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        counts.push(n.max(0) as u64);
    }
    Ok((counts[0], counts[1]))
}

/// A stable advisory-lock key per name (FNV-1a), so two names never share a lock.
fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash as i64
}

/// After an erasure committed: on SQLite, copies the WAL into the database file and
/// truncates it, so the page images the erased values were written in (kept in the WAL
/// until a checkpoint reuses them) are gone from disk. A reader still holding an old
/// snapshot keeps the checkpoint from finishing; it is retried a few times, then left to
/// the next erasure (and SQLite's own checkpoints). Nothing to do on PostgreSQL, whose
/// dead row versions wait for vacuum (see the README's erasure section).
pub async fn wipe_freed(db: &DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    if db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        return;
    }
    for _ in 0..20 {
        // `busy` is 1 while a reader kept the checkpoint from completing.
        let busy = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                "PRAGMA wal_checkpoint(TRUNCATE)",
            ))
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get_by_index::<i32>(0).ok());
        if busy == Some(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::warn!("the WAL could not be emptied after an erasure: readers kept it busy");
}

/// Commits, mapping a failure to the API's error model.
pub async fn commit(txn: DatabaseTransaction) -> crate::ApiResult<()> {
    Ok(txn.commit().await?)
}
