//! The audit tables every data service has (`crm_service_common::audit`): its entries
//! (field changes; later reads), hash-chained per organisation once sealed, the personal
//! values they commit to kept beside them (erasure deletes those, the chain still
//! verifies), each chain's signed head and its signed checkpoints.

use sea_orm_migration::prelude::*;

use crate::util::{index, text, text_null};

pub struct CreateAuditTables;

impl MigrationName for CreateAuditTables {
    fn name(&self) -> &str {
        "m20261210_000100_audit_tables"
    }
}

fn at(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn digest_null(name: &str) -> ColumnDef {
    text_null(name, 64)
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuditTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("audit_entries")
                .if_not_exists()
                // Insertion order; the chain's order is `chain_seq`, given when sealed.
                .col(
                    ColumnDef::new("seq")
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(text("id", 64))
                // The chain: the acting organisation's partner id, empty for the company.
                .col(text("organisation", 64))
                .col(at("at"))
                .col(text("actor", 128))
                .col(text("actor_kind", 16))
                .col(text("credential", 160))
                .col(text("action", 16))
                .col(text("record_type", 64))
                .col(text("record_id", 64))
                .col(text_null("field", 64))
                .col(digest_null("old_digest"))
                .col(digest_null("new_digest"))
                // What a read returned (`{"fields":[…],"operation":…}`); no personal values.
                .col(ColumnDef::new("detail").text().null())
                .col(ColumnDef::new("chain_seq").big_integer().null())
                .col(digest_null("prev_hash"))
                .col(digest_null("hash"))
                .to_owned(),
        )
        .await?;
        index(m, "audit_entries", &["id"], true).await?;
        // A chain in order (and, with NULL, the sealer's backlog).
        index(m, "audit_entries", &["organisation", "chain_seq"], true).await?;
        index(m, "audit_entries", &["chain_seq"], false).await?;
        // A record's history.
        index(m, "audit_entries", &["record_id", "at"], false).await?;

        m.create_table(
            Table::create()
                .table("audit_values")
                .if_not_exists()
                .col(text("entry_id", 64))
                // `old` or `new`.
                .col(text("side", 8))
                .col(text("salt", 32))
                .col(ColumnDef::new("value").text().not_null())
                .primary_key(Index::create().col("entry_id").col("side"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("audit_heads")
                .if_not_exists()
                .col(text("organisation", 64).primary_key().to_owned())
                .col(ColumnDef::new("chain_seq").big_integer().not_null())
                .col(text("hash", 64))
                .col(at("signed_at"))
                .col(text("public_key", 64))
                .col(text("signature", 128))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("audit_checkpoints")
                .if_not_exists()
                .col(text("organisation", 64))
                .col(ColumnDef::new("chain_seq").big_integer().not_null())
                .col(text("hash", 64))
                .col(at("signed_at"))
                .col(text("public_key", 64))
                .col(text("signature", 128))
                .primary_key(Index::create().col("organisation").col("chain_seq"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "audit_checkpoints",
            "audit_heads",
            "audit_values",
            "audit_entries",
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The orders the audit log's pages read in: everything newest first (staff), one
/// organisation's (a partner administrator, a filter by partner) and one actor's.
pub struct AuditLogIndexes;

impl MigrationName for AuditLogIndexes {
    fn name(&self) -> &str {
        "m20261212_000100_audit_log_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditLogIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        index(m, "audit_entries", &["at", "seq"], false).await?;
        index(m, "audit_entries", &["organisation", "at"], false).await?;
        index(m, "audit_entries", &["actor", "at"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "idx_audit_entries_at_seq",
            "idx_audit_entries_organisation_at",
            "idx_audit_entries_actor_at",
        ] {
            m.drop_index(Index::drop().name(name).table("audit_entries").to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Retention of the read log: a read entry past its time keeps only its place in the
/// chain (its hash and link) and a signature saying retention removed it, so the chain
/// still verifies and nothing else can pass for retention.
pub struct AuditRetention;

impl MigrationName for AuditRetention {
    fn name(&self) -> &str {
        "m20261214_000300_audit_retention"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditRetention {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ColumnDef::new("pruned_at")
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            text_null("prune_key", 64),
            text_null("prune_signature", 128),
        ] {
            m.alter_table(
                Table::alter()
                    .table("audit_entries")
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        index(m, "audit_entries", &["action", "at"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_audit_entries_action_at")
                .table("audit_entries")
                .to_owned(),
        )
        .await?;
        for column in ["pruned_at", "prune_key", "prune_signature"] {
            m.alter_table(
                Table::alter()
                    .table("audit_entries")
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// The entries the sealer has still to chain, in the order it chains them: a small index
/// (only unsealed entries are in it) that the sealer walks for its next batch instead of
/// collecting and sorting a chain's whole backlog (27 ms a batch under the mixed workload
/// at scale 1, where partners' reads add thousands of entries a second).
pub struct AuditSealQueue;

impl MigrationName for AuditSealQueue {
    fn name(&self) -> &str {
        "m20261215_000100_audit_seal_queue"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditSealQueue {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        crate::util::run_sql(
            m,
            &["CREATE INDEX IF NOT EXISTS idx_audit_entries_unsealed \
               ON audit_entries (organisation, seq) WHERE chain_seq IS NULL"],
            &[],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        crate::util::run_sql(m, &["DROP INDEX IF EXISTS idx_audit_entries_unsealed"], &[]).await
    }
}

/// Drops the index of chain places across chains: a place means something only within
/// its chain, which `(organisation, chain_seq)` already orders, and nothing looks one up
/// alone. Every entry written (a partner's reads above all) paid for keeping it.
pub struct AuditDropGlobalChainIndex;

impl MigrationName for AuditDropGlobalChainIndex {
    fn name(&self) -> &str {
        "m20261216_000100_audit_drop_global_chain_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditDropGlobalChainIndex {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        crate::util::run_sql(
            m,
            &["DROP INDEX IF EXISTS idx_audit_entries_chain_seq"],
            &[],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        index(m, "audit_entries", &["chain_seq"], false).await
    }
}
