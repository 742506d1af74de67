//! The domain-event tables every service has: its outbox (what it publishes) and its
//! consumer checkpoints (how far it has applied other services' events).

use sea_orm_migration::prelude::*;

use crate::util::{index, text, timestamp_null};

pub struct CreateEventTables;

impl MigrationName for CreateEventTables {
    fn name(&self) -> &str {
        "m20261123_000100_event_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("outbox_events")
                .if_not_exists()
                .col(
                    ColumnDef::new("seq")
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(text("event_id", 64))
                .col(text("aggregate_type", 64))
                .col(text("aggregate_id", 64))
                .col(text("event_type", 64))
                .col(ColumnDef::new("payload").text().not_null())
                .col(
                    ColumnDef::new("occurred_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new("position").big_integer().null())
                .col(timestamp_null("published_at"))
                .to_owned(),
        )
        .await?;
        // Unique: a position is given once (NULLs, the not-yet-positioned, may repeat).
        index(m, "outbox_events", &["position"], true).await?;
        index(m, "outbox_events", &["event_id"], true).await?;
        // The relay's "positioned but not yet published" look-up.
        index(m, "outbox_events", &["published_at", "position"], false).await?;
        index(
            m,
            "outbox_events",
            &["aggregate_type", "aggregate_id"],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table("event_checkpoints")
                .if_not_exists()
                .col(text("consumer", 64))
                .col(text("source", 64))
                .col(ColumnDef::new("position").big_integer().not_null())
                .col(
                    ColumnDef::new("updated_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(Index::create().col("consumer").col("source"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
