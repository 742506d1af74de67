//! The account service's tables.

use sea_orm_migration::prelude::*;

use crate::util::{
    flag, index, int, long_text, long_text_null, namespaced_record_table, record_indexes,
    record_table, run_sql, text, text_null, timestamp_null,
};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateAccountTables),
            Box::new(crate::events::CreateEventTables),
            Box::new(CreateAccountShares),
            Box::new(ShareScopeIndexes),
            Box::new(InteractionAuthorOrganisation),
            Box::new(crate::util::NamespacedExternalIds {
                name: "m20261205_000003_account_external_namespaces",
                tables: &[
                    "territories",
                    "partners",
                    "accounts",
                    "contacts",
                    "interactions",
                    "leads",
                    "opportunities",
                    "cases",
                    "account_shares",
                ],
            }),
            Box::new(crate::jobs::CreateJobTable),
            Box::new(WorkspaceTables),
            Box::new(OpportunityStageHistory),
            Box::new(LeadRecentActivities),
            Box::new(DealRegistration),
            Box::new(CaseOpener),
            Box::new(LeadRouting),
            Box::new(OpportunityProducts),
            Box::new(OrganisationNotifications),
            Box::new(TerritoryShares),
            Box::new(crate::audit::CreateAuditTables),
            Box::new(crate::util::TextSearchIndexes {
                name: "m20261210_000001_account_text_search",
                columns: &[
                    ("accounts", "name"),
                    ("accounts", "domain"),
                    ("contacts", "last_name"),
                    ("contacts", "first_name"),
                    ("contacts", "email"),
                    ("leads", "last_name"),
                    ("leads", "first_name"),
                    ("leads", "company"),
                    ("leads", "email"),
                    ("opportunities", "name"),
                    ("cases", "subject"),
                ],
            }),
            Box::new(ConsentHistory),
            Box::new(DataExports),
            Box::new(crate::audit::AuditLogIndexes),
            Box::new(crate::erasure::CreateErasureTables),
            Box::new(DataErasures),
            Box::new(crate::audit::AuditRetention),
            Box::new(crate::audit::AuditSealQueue),
            Box::new(PartnerAccounts),
            Box::new(crate::audit::AuditDropGlobalChainIndex),
            Box::new(ContactKeys),
        ]
    }
}

#[derive(DeriveMigrationName)]
struct CreateAccountTables;

/// Every table with its columns and the indexes its filters, references and orderings need.
#[async_trait::async_trait]
impl MigrationTrait for CreateAccountTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            record_table("territories")
                .col(text("code", 32))
                .col(text("name", 200))
                .to_owned(),
        )
        .await?;
        index(m, "territories", &["code"], true).await?;

        m.create_table(
            record_table("partners")
                .col(text("name", 200))
                .col(text("kind", 16))
                .col(text("tier", 16))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("partner_territories")
                .if_not_exists()
                .col(text("partner_id", 64))
                .col(text("territory_id", 64))
                .primary_key(Index::create().col("partner_id").col("territory_id"))
                .to_owned(),
        )
        .await?;
        index(m, "partner_territories", &["territory_id"], false).await?;

        m.create_table(
            record_table("accounts")
                .col(text("name", 200))
                .col(text_null("domain", 253))
                .col(text_null("industry", 100))
                .col(text("segment", 16))
                .col(text("tier", 16))
                .col(text("lifecycle_stage", 16))
                .col(text_null("territory_id", 64))
                .col(text_null("owner_user_id", 64))
                .col(long_text_null("internal_note"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            record_table("contacts")
                .col(text("account_id", 64))
                .col(text("first_name", 100))
                .col(text("last_name", 100))
                .col(text_null("email", 254))
                .col(text_null("phone", 32))
                .col(text_null("title", 200))
                .col(flag("consent_marketing_email"))
                .col(flag("consent_marketing_phone"))
                .col(flag("consent_partner_sharing_email"))
                .col(flag("consent_partner_sharing_phone"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            record_table("interactions")
                .col(text("account_id", 64))
                .col(text_null("contact_id", 64))
                .col(text("channel", 16))
                .col(text("direction", 16))
                .col(text("subject", 300))
                .col(long_text_null("body"))
                .col(
                    ColumnDef::new("occurred_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(text_null("author_user_id", 64))
                .col(flag("partner_visible"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            record_table("leads")
                .col(text("first_name", 100))
                .col(text("last_name", 100))
                .col(text("company", 200))
                .col(text_null("email", 254))
                .col(text_null("phone", 32))
                .col(text("source", 16))
                .col(text("status", 16))
                .col(int("score"))
                .col(text_null("owner_user_id", 64))
                .col(text_null("converted_account_id", 64))
                .col(text_null("converted_contact_id", 64))
                .col(text_null("converted_opportunity_id", 64))
                .col(timestamp_null("converted_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            record_table("opportunities")
                .col(text("account_id", 64))
                .col(text("name", 200))
                .col(text("stage", 16))
                .col(ColumnDef::new("amount_minor").big_integer().not_null())
                .col(text("currency", 3))
                .col(int("probability"))
                .col(ColumnDef::new("expected_close").date().null())
                .col(text("forecast_category", 16))
                .col(text_null("owner_user_id", 64))
                .to_owned(),
        )
        .await?;

        m.create_table(
            record_table("cases")
                .col(text("account_id", 64))
                .col(text_null("contact_id", 64))
                .col(text_null("partner_id", 64))
                .col(text("subject", 300))
                .col(long_text_null("description"))
                .col(text("status", 16))
                .col(text("priority", 16))
                .col(text("channel", 16))
                .col(timestamp_null("sla_due_at"))
                .col(text_null("owner_user_id", 64))
                .to_owned(),
        )
        .await?;

        for table in [
            "territories",
            "partners",
            "accounts",
            "contacts",
            "interactions",
            "leads",
            "opportunities",
            "cases",
        ] {
            index(m, table, &["external_id"], true).await?;
            index(m, table, &["updated_at"], false).await?;
            index(m, table, &["created_at"], false).await?;
        }
        for (table, cols) in [
            ("partners", &["name"][..]),
            ("partners", &["kind"]),
            ("accounts", &["name"]),
            ("accounts", &["territory_id"]),
            ("accounts", &["owner_user_id"]),
            ("accounts", &["segment"]),
            ("accounts", &["tier"]),
            ("accounts", &["lifecycle_stage"]),
            ("accounts", &["industry"]),
            ("contacts", &["account_id"]),
            ("contacts", &["last_name"]),
            ("contacts", &["email"]),
            ("interactions", &["account_id", "occurred_at"]),
            ("interactions", &["contact_id"]),
            ("interactions", &["occurred_at"]),
            ("interactions", &["channel"]),
            ("leads", &["status"]),
            ("leads", &["source"]),
            ("leads", &["score"]),
            ("leads", &["last_name"]),
            ("leads", &["owner_user_id"]),
            ("opportunities", &["account_id"]),
            ("opportunities", &["stage"]),
            ("opportunities", &["expected_close"]),
            ("opportunities", &["amount_minor"]),
            ("opportunities", &["owner_user_id"]),
            ("cases", &["account_id"]),
            ("cases", &["contact_id"]),
            ("cases", &["partner_id"]),
            ("cases", &["status"]),
            ("cases", &["priority"]),
            ("cases", &["sla_due_at"]),
        ] {
            index(m, table, cols, false).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "cases",
            "opportunities",
            "leads",
            "interactions",
            "contacts",
            "accounts",
            "partner_territories",
            "partners",
            "territories",
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Share rows: why a partner may read an account (a cause per row).
struct CreateAccountShares;

impl MigrationName for CreateAccountShares {
    fn name(&self) -> &str {
        "m20261129_000001_account_shares"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAccountShares {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            record_table("account_shares")
                .col(text("account_id", 64))
                .col(text("partner_id", 64))
                .col(text("cause", 32))
                .col(text_null("source", 64))
                .col(text_null("granted_by", 64))
                .col(timestamp_null("expires_at"))
                .col(text_null("reason", 500))
                .to_owned(),
        )
        .await?;
        index(m, "account_shares", &["external_id"], true).await?;
        // The scope's sub-query: a partner's accounts for one cause.
        index(
            m,
            "account_shares",
            &["partner_id", "cause", "account_id"],
            false,
        )
        .await?;
        index(m, "account_shares", &["account_id"], false).await?;
        index(m, "account_shares", &["source"], false).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("account_shares").if_exists().to_owned())
            .await
    }
}

/// Share rows in force, covered: a scope probe (`EXISTS` per account while a page walks
/// the sort order) and a scope-first plan (all of a partner's accounts) both read only the
/// index. Measured at scale 1 on PostgreSQL: the distributor's first page read 155k share
/// rows from the heap (650 ms) before this index. The partner column's statistics are
/// finer because partners are very unevenly sized (one supplier holds half the rows).
struct ShareScopeIndexes;

impl MigrationName for ShareScopeIndexes {
    fn name(&self) -> &str {
        "m20261129_000002_share_scope_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ShareScopeIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run_sql(
            m,
            &["CREATE INDEX IF NOT EXISTS idx_account_shares_in_force \
               ON account_shares (partner_id, cause, account_id, expires_at) \
               WHERE archived_at IS NULL"],
            &["ALTER TABLE account_shares ALTER COLUMN partner_id SET STATISTICS 1000"],
        )
        .await
    }
}

/// The organisation whose user wrote an interaction (none: the company's staff or a
/// company key), set from the writer: a partner may change only its own organisation's
/// interactions, never the staff's.
struct InteractionAuthorOrganisation;

impl MigrationName for InteractionAuthorOrganisation {
    fn name(&self) -> &str {
        "m20261205_000002_interaction_author_partner"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for InteractionAuthorOrganisation {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("interactions")
                .add_column(ColumnDef::new("author_partner_id").string_len(64).null())
                .to_owned(),
        )
        .await?;
        index(m, "interactions", &["author_partner_id"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("interactions")
                .drop_column("author_partner_id")
                .to_owned(),
        )
        .await
    }
}

/// The staff workspace: a case's SLA clock (paused while the case waits on the customer,
/// escalated when it runs out), case comments, tasks on any record, and notifications.
struct WorkspaceTables;

impl MigrationName for WorkspaceTables {
    fn name(&self) -> &str {
        "m20261205_000101_workspace"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for WorkspaceTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in ["sla_paused_at", "escalated_at", "resolved_at"] {
            m.alter_table(
                Table::alter()
                    .table("cases")
                    .add_column(timestamp_null(column))
                    .to_owned(),
            )
            .await?;
        }
        index(m, "cases", &["owner_user_id"], false).await?;

        m.create_table(
            namespaced_record_table("case_comments")
                .col(text("case_id", 64))
                .col(long_text("body"))
                .col(flag("partner_visible"))
                .col(text_null("author_user_id", 64))
                .col(text_null("author_partner_id", 64))
                .to_owned(),
        )
        .await?;
        record_indexes(m, "case_comments").await?;
        index(m, "case_comments", &["case_id", "created_at"], false).await?;

        m.create_table(
            namespaced_record_table("tasks")
                .col(text("record_type", 32))
                .col(text("record_id", 64))
                .col(text_null("account_id", 64))
                .col(text("title", 300))
                .col(long_text_null("notes"))
                .col(
                    ColumnDef::new("due_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(timestamp_null("remind_at"))
                .col(text("assignee_user_id", 64))
                .col(text_null("created_by_user_id", 64))
                .col(timestamp_null("completed_at"))
                .col(text_null("completed_by_user_id", 64))
                .col(timestamp_null("reminded_at"))
                .to_owned(),
        )
        .await?;
        record_indexes(m, "tasks").await?;
        index(m, "tasks", &["assignee_user_id", "due_at"], false).await?;
        index(m, "tasks", &["record_type", "record_id"], false).await?;
        index(m, "tasks", &["account_id"], false).await?;
        index(m, "tasks", &["due_at"], false).await?;

        m.create_table(
            namespaced_record_table("notifications")
                .col(text("recipient_user_id", 64))
                .col(text("kind", 32))
                .col(text("title", 300))
                .col(long_text_null("body"))
                .col(text("record_type", 32))
                .col(text("record_id", 64))
                .col(timestamp_null("read_at"))
                .to_owned(),
        )
        .await?;
        record_indexes(m, "notifications").await?;
        index(
            m,
            "notifications",
            &["recipient_user_id", "read_at", "created_at"],
            false,
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["notifications", "tasks", "case_comments"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Every stage an opportunity went through, with its amount and probability then: the
/// pipeline's history (how deals move, how long they stay).
struct OpportunityStageHistory;

impl MigrationName for OpportunityStageHistory {
    fn name(&self) -> &str {
        "m20261205_000103_opportunity_stage_history"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OpportunityStageHistory {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("opportunity_stage_changes")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("opportunity_id", 64))
                .col(text_null("from_stage", 16))
                .col(text("to_stage", 16))
                .col(ColumnDef::new("amount_minor").big_integer().not_null())
                .col(text("currency", 3))
                .col(int("probability"))
                .col(
                    ColumnDef::new("changed_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "opportunity_stage_changes",
            &["opportunity_id", "changed_at"],
            false,
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table("opportunity_stage_changes")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// The work recently done on a lead (tasks completed on it), which its score counts.
struct LeadRecentActivities;

impl MigrationName for LeadRecentActivities {
    fn name(&self) -> &str {
        "m20261206_000104_lead_recent_activities"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LeadRecentActivities {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("leads")
                .add_column(
                    ColumnDef::new("recent_activities")
                        .integer()
                        .not_null()
                        .default(0),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("leads")
                .drop_column("recent_activities")
                .to_owned(),
        )
        .await
    }
}

/// Deal registration: a partner's registrations, the opportunity's attribution to a
/// partner with its protection window, and every account's name as a comparison key (the
/// conflict check's and, later, duplicate detection's; the account service fills it for
/// accounts written before it existed).
struct DealRegistration;

impl MigrationName for DealRegistration {
    fn name(&self) -> &str {
        "m20261207_000106_deal_registration"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DealRegistration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("accounts")
                .add_column(text_null("name_key", 200))
                .to_owned(),
        )
        .await?;
        index(m, "accounts", &["name_key"], false).await?;
        for column in [
            text_null("partner_id", 64),
            text_null("registration_id", 64),
        ] {
            m.alter_table(
                Table::alter()
                    .table("opportunities")
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table("opportunities")
                .add_column(timestamp_null("protected_until"))
                .to_owned(),
        )
        .await?;
        index(m, "opportunities", &["partner_id"], false).await?;

        m.create_table(
            namespaced_record_table("deal_registrations")
                .col(text("partner_id", 64))
                .col(text("submitted_by_user_id", 64))
                .col(text_null("account_id", 64))
                .col(text("prospect_name", 200))
                .col(text_null("prospect_domain", 253))
                .col(text("name_key", 200))
                .col(text_null("domain_key", 253))
                .col(long_text("products"))
                .col(
                    ColumnDef::new("estimated_amount_minor")
                        .big_integer()
                        .not_null(),
                )
                .col(text("currency", 3))
                .col(ColumnDef::new("expected_close").date().null())
                .col(long_text_null("notes"))
                .col(text("status", 16))
                .col(long_text_null("decision_reason"))
                .col(text_null("decided_by_user_id", 64))
                .col(timestamp_null("decided_at"))
                .col(text_null("opportunity_id", 64))
                .col(timestamp_null("protected_until"))
                .to_owned(),
        )
        .await?;
        record_indexes(m, "deal_registrations").await?;
        index(m, "deal_registrations", &["partner_id", "status"], false).await?;
        index(m, "deal_registrations", &["status", "created_at"], false).await?;
        index(m, "deal_registrations", &["name_key"], false).await?;
        index(m, "deal_registrations", &["domain_key"], false).await?;
        index(m, "deal_registrations", &["account_id"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table("deal_registrations")
                .if_exists()
                .to_owned(),
        )
        .await?;
        for column in ["partner_id", "registration_id", "protected_until"] {
            m.alter_table(
                Table::alter()
                    .table("opportunities")
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table("accounts")
                .drop_column("name_key")
                .to_owned(),
        )
        .await
    }
}

/// Who opened a case: a partner's user hears of the replies to the case it opened.
struct CaseOpener;

impl MigrationName for CaseOpener {
    fn name(&self) -> &str {
        "m20261207_000107_case_opener"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CaseOpener {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("cases")
                .add_column(text_null("opened_by_user_id", 64))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("cases")
                .drop_column("opened_by_user_id")
                .to_owned(),
        )
        .await
    }
}

/// Lead distribution: the distributor a lead is routed to, when, by when it must answer,
/// whether it accepted, and why the last one gave it back.
struct LeadRouting;

impl MigrationName for LeadRouting {
    fn name(&self) -> &str {
        "m20261207_000109_lead_routing"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LeadRouting {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            text_null("routed_partner_id", 64),
            timestamp_null("routed_at"),
            timestamp_null("respond_by"),
            timestamp_null("accepted_at"),
            long_text_null("decline_reason"),
        ] {
            m.alter_table(Table::alter().table("leads").add_column(column).to_owned())
                .await?;
        }
        index(m, "leads", &["routed_partner_id"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            "routed_partner_id",
            "routed_at",
            "respond_by",
            "accepted_at",
            "decline_reason",
        ] {
            m.alter_table(Table::alter().table("leads").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// An opportunity's product line items (as JSON, like a registration's): what suppliers'
/// expected demand is built from.
struct OpportunityProducts;

impl MigrationName for OpportunityProducts {
    fn name(&self) -> &str {
        "m20261208_000110_opportunity_products"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OpportunityProducts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("opportunities")
                .add_column(long_text("products").default("[]"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("opportunities")
                .drop_column("products")
                .to_owned(),
        )
        .await
    }
}

/// Notifications for a whole partner organisation (its users share one inbox entry).
struct OrganisationNotifications;

impl MigrationName for OrganisationNotifications {
    fn name(&self) -> &str {
        "m20261208_000112_organisation_notifications"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OrganisationNotifications {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("notifications")
                .add_column(text_null("recipient_partner_id", 64))
                .to_owned(),
        )
        .await?;
        index(m, "notifications", &["recipient_partner_id"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("notifications")
                .drop_column("recipient_partner_id")
                .to_owned(),
        )
        .await
    }
}

/// The `INSERT … SELECT` of a territory share row (cause `in_my_territory`, source
/// `territory:<id>`) for every (account `a`, covering partner `pt`) pair that `pairs`
/// selects, created at `created_at` (an SQL expression or placeholder, written twice). The
/// ids are shaped like the service's own (`shr_<32 hex>`). This migration fills older
/// databases with it, and `crm_account::territory_shares` keeps the rows with it.
pub fn territory_share_rows_sql(
    backend: sea_orm::DbBackend,
    created_at: &str,
    pairs: &str,
) -> String {
    let id = match backend {
        sea_orm::DbBackend::Postgres => "'shr_' || replace(gen_random_uuid()::text, '-', '')",
        _ => "'shr_' || lower(hex(randomblob(16)))",
    };
    format!(
        "INSERT INTO account_shares (id, external_id, external_namespace, version, created_at, \
         updated_at, archived_at, account_id, partner_id, cause, source, granted_by, \
         expires_at, reason) \
         SELECT {id}, NULL, '', 1, {created_at}, {created_at}, NULL, a.id, pt.partner_id, \
         'in_my_territory', 'territory:' || a.territory_id, NULL, NULL, NULL \
         FROM accounts a JOIN partner_territories pt ON pt.territory_id = a.territory_id \
         WHERE {pairs}"
    )
}

/// Territory coverage kept as share rows (cause `in_my_territory`), so a partner's
/// accounts are one `EXISTS` over its share rows (`crm_account::territory_shares` keeps
/// them from here on). A database from before gets the rows of its accounts and coverage.
struct TerritoryShares;

impl MigrationName for TerritoryShares {
    fn name(&self) -> &str {
        "m20261209_000001_territory_shares"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for TerritoryShares {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Times as each database keeps them.
        let now = match m.get_database_backend() {
            sea_orm::DbBackend::Postgres => "CURRENT_TIMESTAMP",
            _ => "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
        };
        let sql = territory_share_rows_sql(
            m.get_database_backend(),
            now,
            "NOT EXISTS (SELECT 1 FROM account_shares s WHERE s.account_id = a.id \
             AND s.partner_id = pt.partner_id AND s.cause = 'in_my_territory')",
        );
        // The probe of a page that walks its sort order: one descent per account, reading
        // only the index (at scale 1 the account-id index alone read ~11 heap rows per
        // account: 3.7 against 2.6 ms for the distributor's first page).
        let probe = "CREATE INDEX IF NOT EXISTS idx_account_shares_probe \
                     ON account_shares (account_id, partner_id, cause, expires_at) \
                     WHERE archived_at IS NULL";
        run_sql(m, &[&sql, probe], &[]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run_sql(
            m,
            &[
                "DROP INDEX IF EXISTS idx_account_shares_probe",
                "DELETE FROM account_shares WHERE cause = 'in_my_territory'",
            ],
            &[],
        )
        .await
    }
}

/// Every consent statement about a person (purpose, channel, granted or withdrawn, where
/// it came from, who recorded it); the latest per purpose and channel is the contact's.
struct ConsentHistory;

impl MigrationName for ConsentHistory {
    fn name(&self) -> &str {
        "m20261212_000001_consent_history"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ConsentHistory {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("consent_changes")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("contact_id", 64))
                .col(text("purpose", 16))
                .col(text("channel", 16))
                .col(ColumnDef::new("granted").boolean().not_null())
                .col(text("source", 16))
                .col(long_text_null("evidence"))
                .col(
                    ColumnDef::new("recorded_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(text("recorded_by", 64))
                .col(text("recorder_kind", 16))
                .col(text("recorder_organisation", 64))
                .to_owned(),
        )
        .await?;
        index(m, "consent_changes", &["contact_id", "recorded_at"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table("consent_changes")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// Data-subject access requests: who asked for whom, the job's progress, the gathered
/// sections.
struct DataExports;

impl MigrationName for DataExports {
    fn name(&self) -> &str {
        "m20261212_000002_data_exports"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DataExports {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            namespaced_record_table("data_exports")
                .col(text_null("contact_id", 64))
                .col(text_null("email", 320))
                .col(text("status", 16))
                .col(int("progress"))
                .col(long_text("document"))
                .col(long_text("terms"))
                .col(text("requested_by", 64))
                .col(timestamp_null("finished_at"))
                .to_owned(),
        )
        .await?;
        record_indexes(m, "data_exports").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("data_exports").if_exists().to_owned())
            .await
    }
}

/// Erasure requests: whom (a contact, a lead or an email, the email cleared once the
/// erasure ran), who asked, and how far it is.
struct DataErasures;

impl MigrationName for DataErasures {
    fn name(&self) -> &str {
        "m20261214_000200_data_erasures"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DataErasures {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            namespaced_record_table("data_erasures")
                .col(text_null("contact_id", 64))
                .col(text_null("lead_id", 64))
                .col(text_null("email", 320))
                .col(text("status", 16))
                .col(int("records"))
                .col(long_text("erased_ids"))
                .col(text("requested_by", 64))
                .col(timestamp_null("finished_at"))
                .to_owned(),
        )
        .await?;
        record_indexes(m, "data_erasures").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("data_erasures").if_exists().to_owned())
            .await
    }
}

/// One row per (partner, account) the partner's share rows name, with the latest time each
/// cause grants and the account's name copied: a partner's first page of accounts in name
/// order walks its rows here and stops after a page, whatever the size of its scope.
/// Walking the accounts in name order and probing the share rows of each cost ~page ÷
/// density probes (the smallest supplier, 0.4 % of the accounts: thousands), and reading
/// its scope by id fetched all of it to sort 50 (4,029 rows, 25 ms at scale 1).
pub mod partner_accounts {
    use sea_orm_migration::prelude::*;

    pub const TABLE: &str = "partner_accounts";

    /// The share causes, in the order of their columns.
    pub const CAUSES: [&str; 4] = [
        "buys_my_products",
        "in_my_territory",
        "fulfils_its_orders",
        "manual_share",
    ];

    /// The column holding the latest time a share row of `cause` grants the pair (null:
    /// none does; [`forever`] for a row that never expires).
    pub fn until(cause: &str) -> String {
        format!("{cause}_until")
    }

    /// The time a share row without an expiry grants until. A date every database and
    /// encoding (SQLite keeps times as text) orders after any real one.
    pub fn forever() -> chrono::DateTime<chrono::Utc> {
        chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|day| day.and_hms_opt(23, 59, 59))
            .expect("a valid date")
            .and_utc()
    }

    /// The table's columns, in order.
    pub fn columns() -> Vec<Alias> {
        let mut columns = vec![
            Alias::new("partner_id"),
            Alias::new("account_id"),
            Alias::new("account_name"),
        ];
        columns.extend(CAUSES.iter().map(|c| Alias::new(until(c))));
        columns
    }

    /// The rows the share rows not revoked imply for the (partner, account) pairs `pairs`
    /// selects (a condition on unqualified `partner_id` and `account_id`, which the share
    /// rows name and `accounts` does not), in the order of [`columns`].
    pub fn derived(pairs: Condition) -> SelectStatement {
        let shares = Alias::new("s");
        let accounts = Alias::new("a");
        let mut rows = Query::select();
        rows.column((shares.clone(), Alias::new("partner_id")))
            .column((shares.clone(), Alias::new("account_id")))
            .column((accounts.clone(), Alias::new("name")))
            .from_as(Alias::new("account_shares"), shares.clone())
            .join_as(
                JoinType::InnerJoin,
                Alias::new("accounts"),
                accounts.clone(),
                Expr::col((accounts.clone(), Alias::new("id")))
                    .equals((shares.clone(), Alias::new("account_id"))),
            )
            .and_where(Expr::col((shares.clone(), Alias::new("archived_at"))).is_null())
            .cond_where(pairs)
            .group_by_col((shares.clone(), Alias::new("partner_id")))
            .group_by_col((shares.clone(), Alias::new("account_id")))
            .group_by_col((accounts.clone(), Alias::new("name")));
        for cause in CAUSES {
            let granted = Func::coalesce([
                Expr::col((shares.clone(), Alias::new("expires_at"))),
                Expr::val(forever()),
            ]);
            rows.expr(Func::max(
                Expr::case(
                    Expr::col((shares.clone(), Alias::new("cause"))).eq(cause),
                    granted,
                )
                .finally(Expr::null()),
            ));
        }
        rows
    }

    /// The rows kept, in the order of [`columns`].
    pub fn kept() -> SelectStatement {
        Query::select()
            .columns(columns())
            .from(Alias::new(TABLE))
            .to_owned()
    }

    /// The statements that make the rows of the pairs `pairs` selects equal to
    /// [`derived`]: delete them, then insert (or, when a concurrent writer got there first,
    /// update) one row per pair that has a share row.
    pub fn refresh(pairs: Condition) -> (DeleteStatement, InsertStatement) {
        let delete = Query::delete()
            .from_table(Alias::new(TABLE))
            .cond_where(pairs.clone())
            .to_owned();
        let columns = columns();
        let updated: Vec<Alias> = columns[2..].to_vec();
        let insert = Query::insert()
            .into_table(Alias::new(TABLE))
            .columns(columns)
            .select_from(derived(pairs))
            .expect("the select names as many columns as the insert")
            .on_conflict(
                OnConflict::columns([Alias::new("partner_id"), Alias::new("account_id")])
                    .update_columns(updated)
                    .to_owned(),
            )
            .to_owned();
        (delete, insert)
    }
}

/// The table [`partner_accounts`] describes, filled from the share rows already kept.
struct PartnerAccounts;

impl MigrationName for PartnerAccounts {
    fn name(&self) -> &str {
        "m20261215_000001_partner_accounts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PartnerAccounts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(partner_accounts::TABLE)
            .if_not_exists()
            .col(text("partner_id", 64))
            .col(text("account_id", 64))
            .col(text("account_name", 200))
            .primary_key(Index::create().col("partner_id").col("account_id"));
        for cause in partner_accounts::CAUSES {
            table.col(timestamp_null(&partner_accounts::until(cause)));
        }
        m.create_table(table.to_owned()).await?;
        // The walk: a partner's rows in name order, the causes' times beside them so the
        // rows in force are told from the index (PostgreSQL answers from it alone).
        run_sql(
            m,
            &[
                "CREATE INDEX IF NOT EXISTS idx_partner_accounts_walk ON partner_accounts \
                 (partner_id, account_name, account_id, buys_my_products_until, \
                 in_my_territory_until, fulfils_its_orders_until, manual_share_until)",
                "CREATE INDEX IF NOT EXISTS idx_partner_accounts_account \
                 ON partner_accounts (account_id)",
            ],
            &["ALTER TABLE partner_accounts ALTER COLUMN partner_id SET STATISTICS 1000"],
        )
        .await?;
        crate::util::fill(m, partner_accounts::refresh(Condition::all())).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(partner_accounts::TABLE)
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// Indexes for the look-alike check of imports, so that it is an index look-up per row
/// (without them each row read every account or contact): an account's web domain, and a
/// contact's email and phone as the one normaliser compares them (lower case; digits
/// only). The phone expression is the contact entity's `PHONE_DIGITS`, character for
/// character.
struct ContactKeys;

impl MigrationName for ContactKeys {
    fn name(&self) -> &str {
        "m20261207_000001_contact_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ContactKeys {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run_sql(
            m,
            &[
                "CREATE INDEX IF NOT EXISTS idx_accounts_domain ON accounts (domain)",
                "CREATE INDEX IF NOT EXISTS idx_contacts_email_key ON contacts (lower(email))",
                "CREATE INDEX IF NOT EXISTS idx_contacts_phone_key ON contacts \
                 ((replace(replace(replace(replace(replace(replace(phone, ' ', ''), '-', ''), '(', ''), ')', ''), '.', ''), '+', '')))",
            ],
            &[],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run_sql(
            m,
            &[
                "DROP INDEX IF EXISTS idx_accounts_domain",
                "DROP INDEX IF EXISTS idx_contacts_email_key",
                "DROP INDEX IF EXISTS idx_contacts_phone_key",
            ],
            &[],
        )
        .await
    }
}
