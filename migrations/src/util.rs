use sea_orm_migration::prelude::*;

/// The columns every record table has: an opaque id, the integrator's `external_id`
/// (unique when present), an optimistic-locking `version`, timestamps and an archive mark.
pub fn record_table(name: &str) -> TableCreateStatement {
    Table::create()
        .table(name.to_owned())
        .if_not_exists()
        .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
        .col(ColumnDef::new("external_id").string_len(128).null())
        .col(ColumnDef::new("version").integer().not_null().default(1))
        .col(
            ColumnDef::new("created_at")
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new("updated_at")
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new("archived_at")
                .timestamp_with_time_zone()
                .null(),
        )
        .to_owned()
}

pub fn text(name: &str, len: u32) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .string_len(len)
        .not_null()
        .to_owned()
}

pub fn text_null(name: &str, len: u32) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .string_len(len)
        .null()
        .to_owned()
}

pub fn long_text_null(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned()).text().null().to_owned()
}

pub fn flag(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}

pub fn int(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .integer()
        .not_null()
        .to_owned()
}

pub fn timestamp(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

pub fn timestamp_null(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

/// Creates `idx_<table>_<cols>` (unique when asked) if it does not exist.
pub async fn index(
    manager: &SchemaManager<'_>,
    table: &str,
    cols: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(format!("idx_{table}_{}", cols.join("_")))
        .table(table.to_owned())
        .if_not_exists();
    for col in cols {
        stmt.col(String::from(*col));
    }
    if unique {
        stmt.unique();
    }
    manager.create_index(stmt.to_owned()).await
}

/// Runs a kept table's refresh (its `delete`, then its `insert … select`): how a migration
/// fills a table derived from rows already kept.
pub async fn fill(
    manager: &SchemaManager<'_>,
    (delete, insert): (DeleteStatement, InsertStatement),
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute(&delete).await?;
    db.execute(&insert).await?;
    Ok(())
}

/// Runs `statements` in order; `postgres_only` ones are skipped on SQLite (planner
/// statistics settings it does not have).
pub async fn run_sql(
    manager: &SchemaManager<'_>,
    statements: &[&str],
    postgres_only: &[&str],
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
        for sql in postgres_only {
            db.execute_unprepared(sql).await?;
        }
    }
    Ok(())
}

/// External ids belong to the organisation that wrote them: `external_namespace` is the
/// writer's partner id (empty for the company and its keys), and an external id is unique
/// within its namespace only. A partner's create or upsert then never meets an id another
/// organisation used, so its answer cannot reveal that such a record exists.
pub struct NamespacedExternalIds {
    pub name: &'static str,
    pub tables: &'static [&'static str],
}

impl MigrationName for NamespacedExternalIds {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for NamespacedExternalIds {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in self.tables {
            m.alter_table(
                Table::alter()
                    .table(String::from(*table))
                    .add_column(
                        ColumnDef::new("external_namespace")
                            .string_len(64)
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
            m.drop_index(
                Index::drop()
                    .name(format!("idx_{table}_external_id"))
                    .table(String::from(*table))
                    .if_exists()
                    .to_owned(),
            )
            .await?;
            index(m, table, &["external_namespace", "external_id"], true).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in self.tables {
            m.drop_index(
                Index::drop()
                    .name(format!("idx_{table}_external_namespace_external_id"))
                    .table(String::from(*table))
                    .if_exists()
                    .to_owned(),
            )
            .await?;
            m.alter_table(
                Table::alter()
                    .table(String::from(*table))
                    .drop_column("external_namespace")
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// A record table as every type created after external ids were namespaced has it: the
/// common columns, `external_namespace`, and the unique (namespace, external id) index
/// ([`record_indexes`] adds it once the table exists).
pub fn namespaced_record_table(name: &str) -> TableCreateStatement {
    record_table(name)
        .col(
            ColumnDef::new("external_namespace")
                .string_len(64)
                .not_null()
                .default(""),
        )
        .to_owned()
}

/// The indexes every namespaced record table has: its external ids, unique per namespace,
/// and the two times lists sort by.
pub async fn record_indexes(m: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    index(m, table, &["external_namespace", "external_id"], true).await?;
    index(m, table, &["updated_at"], false).await?;
    index(m, table, &["created_at"], false).await
}

pub fn long_text(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned()).text().not_null().to_owned()
}

/// Trigram indexes for text search on PostgreSQL (SQLite keeps scanning: the embedded
/// default holds far fewer rows). Search and the lists' `text` filter match
/// `lower(column) LIKE '%word%'`; without these indexes every such query read its whole
/// scope (global search at 1M accounts: 0.1–8.4 s p50 per persona). `pg_trgm` lives in
/// `public` once per database, so every service's schema names its operator class with
/// the schema; an advisory lock serialises services migrating at the same moment (two
/// concurrent `CREATE EXTENSION IF NOT EXISTS` can both miss and one then fails). The
/// extension is trusted: a database owner without superuser rights may create it.
pub struct TextSearchIndexes {
    pub name: &'static str,
    /// `(table, column)` pairs: each gets a GIN index on `lower(column)`.
    pub columns: &'static [(&'static str, &'static str)],
}

impl MigrationName for TextSearchIndexes {
    fn name(&self) -> &str {
        self.name
    }
}

/// The advisory lock key of the `pg_trgm` creation (any constant both sides agree on).
const TRIGRAM_EXTENSION_LOCK: i64 = 0x6372_6d5f_7472_6772;

#[async_trait::async_trait]
impl MigrationTrait for TextSearchIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared(&format!(
            "DO $$ BEGIN PERFORM pg_advisory_xact_lock({TRIGRAM_EXTENSION_LOCK}); \
             CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public; END $$"
        ))
        .await?;
        for (table, column) in self.columns {
            db.execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS idx_{table}_{column}_trigram ON {table} \
                 USING GIN (lower({column}) public.gin_trgm_ops)"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        for (table, column) in self.columns {
            m.get_connection()
                .execute_unprepared(&format!(
                    "DROP INDEX IF EXISTS idx_{table}_{column}_trigram"
                ))
                .await?;
        }
        Ok(())
    }
}
