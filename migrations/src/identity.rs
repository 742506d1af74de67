//! The gateway's `identity` schema. For now it holds the directory of users (internal
//! staff and partner users) that the demo seeds; credentials, API keys, sessions and
//! invitations arrive with the identity work. Partner organisations stay in the account
//! service and are referenced here by id only.

use sea_orm_migration::prelude::*;

use crate::util::{flag, index, text, text_null};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateUsers)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateUsers;

#[async_trait::async_trait]
impl MigrationTrait for CreateUsers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("users")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("email", 254))
                .col(text("display_name", 200))
                // internal | supplier | distributor
                .col(text("kind", 16))
                .col(text_null("partner_id", 64))
                // Comma-separated role names: sales, marketing, support, management, admin,
                // partner_admin, partner_manager, partner_user.
                .col(text("roles", 200))
                .col(flag("disabled"))
                .col(
                    ColumnDef::new("created_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        index(m, "users", &["email"], true).await?;
        index(m, "users", &["partner_id"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("users").if_exists().to_owned())
            .await
    }
}
