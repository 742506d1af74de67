//! The job table every service that defers work has: durable jobs run by the service's
//! job runner (`crm_service_common::jobs`) when due on the service's clock, claimed by one
//! replica at a time.

use sea_orm_migration::prelude::*;

use crate::util::{index, int, long_text_null, text, text_null, timestamp_null};

pub struct CreateJobTable;

impl MigrationName for CreateJobTable {
    fn name(&self) -> &str {
        "m20261205_000100_jobs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateJobTable {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let at = crate::util::timestamp;
        m.create_table(
            Table::create()
                .table("jobs")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("kind", 64))
                // At most one job per key: scheduling the same key again moves that job.
                .col(text("key", 200))
                .col(ColumnDef::new("payload").text().not_null())
                .col(text("state", 16))
                .col(at("run_at"))
                .col(int("attempts"))
                .col(int("max_attempts"))
                .col(long_text_null("last_error"))
                .col(text_null("locked_by", 64))
                .col(timestamp_null("locked_until"))
                .col(at("created_at"))
                .col(at("updated_at"))
                .col(timestamp_null("finished_at"))
                .to_owned(),
        )
        .await?;
        index(m, "jobs", &["key"], true).await?;
        // The runner's look-up: due pending jobs, and running ones whose lease ran out.
        index(m, "jobs", &["state", "run_at"], false).await?;
        index(m, "jobs", &["state", "locked_until"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("jobs").if_exists().to_owned())
            .await
    }
}
