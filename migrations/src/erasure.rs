//! The table every data service keeps of the erasures it applied
//! (`crm_service_common::erasure`): which request, how many records it changed, when.
//! It holds no personal value; the administrator's page reads each service's row to show
//! where an erasure is done.

use sea_orm_migration::prelude::*;

use crate::util::{int, text};

pub struct CreateErasureTables;

impl MigrationName for CreateErasureTables {
    fn name(&self) -> &str {
        "m20261214_000100_erasures_applied"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateErasureTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("erasures_applied")
                .if_not_exists()
                .col(text("erasure_id", 64).primary_key())
                .col(int("records"))
                .col(
                    ColumnDef::new("applied_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table("erasures_applied")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
