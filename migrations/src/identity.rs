//! The gateway's `identity` schema: the directory of users (internal staff and partner
//! users), their password credentials, sign-in sessions, integrators' API keys and the
//! keys the gateway signs access tokens with. Partner organisations stay in the account
//! service and are referenced here by id only.

use sea_orm_migration::prelude::*;

use crate::util::{flag, index, int, long_text, long_text_null, text, text_null, timestamp_null};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateUsers),
            Box::new(CreateCredentials),
            Box::new(CreateInvitations),
            Box::new(CreatePolicyVersions),
            Box::new(CreateWebSessions),
            Box::new(AddWebSessionCaller),
            Box::new(IdentityLifecycle),
            Box::new(KnownSignInSources),
            Box::new(UserTimeZones),
            Box::new(UserLocales),
            Box::new(crate::events::CreateEventTables),
            Box::new(PartnerTiers),
            Box::new(crate::jobs::CreateJobTable),
            Box::new(Webhooks),
            Box::new(Imports),
        ]
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

/// Passwords, sessions, API keys and signing keys.
struct CreateCredentials;

impl MigrationName for CreateCredentials {
    fn name(&self) -> &str {
        "m20261123_identity_credentials"
    }
}

fn at(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn at_null(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCredentials {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One password per user (argon2id PHC string) and the failed sign-ins of the
        // current window, for the rate limit.
        m.create_table(
            Table::create()
                .table("credentials")
                .if_not_exists()
                .col(
                    ColumnDef::new("user_id")
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(text("password_hash", 200))
                .col(int("failed_attempts").default(0))
                .col(at_null("failures_since"))
                .col(at_null("locked_until"))
                .col(at("updated_at"))
                .to_owned(),
        )
        .await?;
        // A sign-in: its refresh token is stored as a SHA-256 digest and rotates on use.
        m.create_table(
            Table::create()
                .table("sessions")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("user_id", 64))
                .col(text("refresh_digest", 64))
                .col(at("created_at"))
                .col(at("expires_at"))
                .col(at_null("revoked_at"))
                .to_owned(),
        )
        .await?;
        index(m, "sessions", &["refresh_digest"], true).await?;
        index(m, "sessions", &["user_id"], false).await?;
        // An integrator's key: shown once, stored as a SHA-256 digest, bound to a role
        // and optionally a partner.
        m.create_table(
            Table::create()
                .table("api_keys")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("name", 120))
                .col(text("prefix", 16))
                .col(text("secret_digest", 64))
                .col(text("role", 32))
                .col(text_null("partner_id", 64))
                .col(text("created_by", 64))
                .col(at("created_at"))
                .col(at_null("expires_at"))
                .col(at_null("revoked_at"))
                .col(at_null("last_used_at"))
                .to_owned(),
        )
        .await?;
        index(m, "api_keys", &["secret_digest"], true).await?;
        // The Ed25519 keys access tokens are signed with; the newest unretired one signs,
        // all unretired ones verify (so a rotation does not end existing sessions).
        m.create_table(
            Table::create()
                .table("signing_keys")
                .if_not_exists()
                .col(
                    ColumnDef::new("kid")
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new("pkcs8").text().not_null())
                .col(at("created_at"))
                .col(at_null("retired_at"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["signing_keys", "api_keys", "sessions", "credentials"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Invitations: redeemed once (creating the user and its password), revocable, expiring.
struct CreateInvitations;

impl MigrationName for CreateInvitations {
    fn name(&self) -> &str {
        "m20261123_identity_invitations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateInvitations {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("invitations")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("email", 254))
                // internal | supplier | distributor
                .col(text("kind", 16))
                .col(text_null("partner_id", 64))
                .col(text("role", 32))
                .col(text("token_digest", 64))
                .col(text("invited_by", 64))
                .col(at("created_at"))
                .col(at("expires_at"))
                .col(at_null("redeemed_at"))
                .col(at_null("revoked_at"))
                .col(text_null("user_id", 64))
                .to_owned(),
        )
        .await?;
        index(m, "invitations", &["token_digest"], true).await?;
        index(m, "invitations", &["partner_id"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("invitations").if_exists().to_owned())
            .await
    }
}

/// Every version of the access policy: the rules as stored after each edit, who made the
/// edit and what it changed (the audit trail). The newest version is the one in force.
struct CreatePolicyVersions;

impl MigrationName for CreatePolicyVersions {
    fn name(&self) -> &str {
        "m20261129_000002_policy_versions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePolicyVersions {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("policy_versions")
                .if_not_exists()
                .col(
                    ColumnDef::new("version")
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new("rules").text().not_null())
                .col(text("change", 500))
                .col(text("created_by", 64))
                .col(at("created_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table("policy_versions")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// The web UI's sign-ins and the saved list views of its users. A web session holds the
/// API session it signed in with (access and refresh token), so every page is a GraphQL
/// client of the gateway with the user's own identity; the browser holds only a random
/// cookie whose SHA-256 digest is the key here.
struct CreateWebSessions;

impl MigrationName for CreateWebSessions {
    fn name(&self) -> &str {
        "m20261130_000001_web_sessions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebSessions {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("web_sessions")
                .if_not_exists()
                .col(
                    ColumnDef::new("cookie_digest")
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(text("user_id", 64))
                // internal | supplier | distributor: which area the user lands in.
                .col(text("kind", 16))
                .col(text("csrf_token", 64))
                .col(ColumnDef::new("access_token").text().not_null())
                .col(at("access_expires_at"))
                .col(text("refresh_token", 200))
                .col(at("created_at"))
                .col(at("last_seen_at"))
                // The one-line notice of the last change, shown once on the next page
                // (kept here, not in the URL, so no link can put words in it).
                .col(text_null("notice", 500))
                .to_owned(),
        )
        .await?;
        index(m, "web_sessions", &["user_id"], false).await?;
        // Expired sessions are swept by these (at each sign-in), not by a scan.
        index(m, "web_sessions", &["last_seen_at"], false).await?;
        index(m, "web_sessions", &["created_at"], false).await?;
        // A named list view (filters, sort) of one user on one list page.
        m.create_table(
            Table::create()
                .table("saved_views")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("user_id", 64))
                .col(text("page", 32))
                .col(text("name", 80))
                .col(text("query", 1000))
                .col(at("created_at"))
                .to_owned(),
        )
        .await?;
        index(m, "saved_views", &["user_id", "page", "name"], true).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["saved_views", "web_sessions"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The signed-in caller as the web UI shows it (`me`: name, organisation, what the policy
/// lets it do), kept with the web session so that a page is one pass through the gateway;
/// it is asked again when the policy version changes or the session is renewed. And the
/// secret a form just created (an API key's, an invitation's link), kept for the one page
/// the form redirects to, so that reloading that page creates nothing twice.
struct AddWebSessionCaller;

impl MigrationName for AddWebSessionCaller {
    fn name(&self) -> &str {
        "m20261205_000001_web_session_caller"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddWebSessionCaller {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("web_sessions")
                .add_column(ColumnDef::new("caller").text().null())
                .to_owned(),
        )
        .await?;
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table("web_sessions")
                .add_column(ColumnDef::new("reveal").text().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("web_sessions")
                .drop_column("reveal")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("web_sessions")
                .drop_column("caller")
                .to_owned(),
        )
        .await
    }
}

/// Refresh tokens already traded (presenting one again ends its session: it was copied),
/// and the sign-in throttle, per account and source address (failures slow the source
/// down; they never lock the account).
struct IdentityLifecycle;

impl MigrationName for IdentityLifecycle {
    fn name(&self) -> &str {
        "m20261205_000002_identity_lifecycle"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IdentityLifecycle {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("spent_refresh_tokens")
                .if_not_exists()
                .col(
                    ColumnDef::new("digest")
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(text("session_id", 64))
                .col(
                    ColumnDef::new("spent_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        index(m, "spent_refresh_tokens", &["session_id"], false).await?;
        m.create_table(
            Table::create()
                .table("sign_in_throttles")
                .if_not_exists()
                // SHA-256 of the normalised email and the source address.
                .col(
                    ColumnDef::new("key")
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(int("failures"))
                .col(
                    ColumnDef::new("first_failure_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new("retry_at").timestamp_with_time_zone().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["sign_in_throttles", "spent_refresh_tokens"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The source addresses each account signed in from successfully: while an account is
/// under a spread-out guessing attack, those keep signing in without waiting.
struct KnownSignInSources;

impl MigrationName for KnownSignInSources {
    fn name(&self) -> &str {
        "m20261205_000003_known_sign_in_sources"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KnownSignInSources {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("sign_in_sources")
                .if_not_exists()
                // SHA-256 of the normalised email and the source address.
                .col(
                    ColumnDef::new("key")
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new("last_success_at")
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
                .table("sign_in_sources")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// A user's time zone (IANA name): the web shows times in it and counts "today" by it.
struct UserTimeZones;

impl MigrationName for UserTimeZones {
    fn name(&self) -> &str {
        "m20261205_000102_user_time_zones"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for UserTimeZones {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("users")
                .add_column(
                    ColumnDef::new("time_zone")
                        .string_len(64)
                        .not_null()
                        .default("UTC"),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("users")
                .drop_column("time_zone")
                .to_owned(),
        )
        .await
    }
}

/// A user's locale (a language tag such as `de-DE`): how the web writes numbers and
/// amounts for them.
struct UserLocales;

impl MigrationName for UserLocales {
    fn name(&self) -> &str {
        "m20261206_000105_user_locales"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for UserLocales {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("users")
                .add_column(
                    ColumnDef::new("locale")
                        .string_len(16)
                        .not_null()
                        .default("en-US"),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("users")
                .drop_column("locale")
                .to_owned(),
        )
        .await
    }
}

/// The partner organisations' programme tiers, as the account service announces them
/// (`partner.changed`): the door carries a partner caller's tier to the services.
struct PartnerTiers;

impl MigrationName for PartnerTiers {
    fn name(&self) -> &str {
        "m20261210_000101_partner_tiers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PartnerTiers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("partner_tiers")
                .if_not_exists()
                .col(
                    ColumnDef::new("partner_id")
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(text("tier", 16))
                .col(
                    ColumnDef::new("updated_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
    }
}

/// Integrators' webhooks: the endpoints, each bound to the organisation principal whose
/// view its payloads carry; the deliveries (the history and the dead-letter list), every
/// attempt of each, and the last view of each record a webhook was sent (what the next
/// delivery is compared with).
struct Webhooks;

impl MigrationName for Webhooks {
    fn name(&self) -> &str {
        "m20261217_000100_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Webhooks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let at = crate::util::timestamp;
        m.create_table(
            Table::create()
                .table("webhooks")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("name", 120))
                // None: a change feed, read with `webhookChanges` rather than posted.
                .col(text_null("url", 2048))
                .col(text("events", 1000))
                .col(long_text_null("filter"))
                .col(text("secret", 128))
                .col(text("role", 64))
                .col(text_null("partner_id", 64))
                .col(text("owner", 64))
                .col(int("max_attempts"))
                .col(at("created_at"))
                .col(at("updated_at"))
                .col(timestamp_null("paused_at"))
                .col(timestamp_null("suspended_at"))
                .col(text_null("suspended_reason", 300))
                .to_owned(),
        )
        .await?;
        index(m, "webhooks", &["partner_id"], false).await?;
        m.create_table(
            Table::create()
                .table("webhook_deliveries")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("webhook_id", 64))
                // The webhook's own order of its deliveries (commit order): a change feed's
                // cursor.
                .col(ColumnDef::new("position").big_integer().not_null())
                .col(text("trigger", 128))
                .col(text("event", 64))
                .col(text_null("record_type", 64))
                .col(text_null("record_id", 64))
                .col(int("sequence"))
                .col(long_text_null("changes"))
                .col(text("state", 16))
                .col(int("attempts"))
                .col(ColumnDef::new("last_status").integer().null())
                .col(long_text_null("last_error"))
                .col(timestamp_null("next_attempt_at"))
                .col(long_text_null("body"))
                .col(at("created_at"))
                .col(at("updated_at"))
                .col(timestamp_null("delivered_at"))
                .to_owned(),
        )
        .await?;
        // One delivery per webhook and trigger (a retried decision finds its own).
        index(m, "webhook_deliveries", &["webhook_id", "trigger"], true).await?;
        // The history, newest first (a change feed, oldest first), and the dead-letter
        // list.
        index(m, "webhook_deliveries", &["webhook_id", "position"], true).await?;
        index(m, "webhook_deliveries", &["webhook_id", "state"], false).await?;
        m.create_table(
            Table::create()
                .table("webhook_attempts")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("delivery_id", 64))
                .col(int("attempt"))
                .col(at("at"))
                .col(ColumnDef::new("status").integer().null())
                .col(long_text_null("error"))
                .col(int("duration_ms"))
                .to_owned(),
        )
        .await?;
        index(m, "webhook_attempts", &["delivery_id", "attempt"], false).await?;
        m.create_table(
            Table::create()
                .table("webhook_views")
                .if_not_exists()
                .col(text("webhook_id", 64))
                .col(text("record_id", 64))
                .col(text("record_type", 64))
                .col(ColumnDef::new("view").text().not_null())
                .col(int("sequence"))
                .col(at("observed_at"))
                .col(at("updated_at"))
                .primary_key(Index::create().col("webhook_id").col("record_id"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "webhook_views",
            "webhook_attempts",
            "webhook_deliveries",
            "webhooks",
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Imports of files: each import (its owner, the record type, where its current pass is
/// and what it counted) and its staged rows with each row's outcome.
struct Imports;

impl MigrationName for Imports {
    fn name(&self) -> &str {
        "m20261207_000100_imports"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Imports {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let at = crate::util::timestamp;
        let count = |name: &str| {
            ColumnDef::new(name.to_owned())
                .big_integer()
                .not_null()
                .default(0)
                .to_owned()
        };
        m.create_table(
            Table::create()
                .table("imports")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("owner", 64))
                .col(text_null("partner_id", 64))
                .col(text("record_type", 32))
                .col(text("format", 8))
                .col(text_null("name", 200))
                .col(text("state", 16))
                .col(flag("dry_run"))
                .col(flag("skip_duplicates"))
                .col(count("row_count"))
                // The current pass has sent every row numbered below this.
                .col(count("next_row"))
                .col(count("processed"))
                .col(count("created"))
                .col(count("updated"))
                .col(count("unchanged"))
                .col(count("refused"))
                .col(count("skipped"))
                .col(count("duplicates"))
                .col(long_text_null("last_error"))
                .col(at("created_at"))
                .col(at("updated_at"))
                .col(timestamp_null("finished_at"))
                .to_owned(),
        )
        .await?;
        index(m, "imports", &["owner", "created_at"], false).await?;
        m.create_table(
            Table::create()
                .table("import_rows")
                .if_not_exists()
                .col(text("import_id", 64))
                .col(ColumnDef::new("number").big_integer().not_null())
                .col(text("external_id", 255))
                .col(long_text("data"))
                .col(text_null("outcome", 32))
                .col(text_null("record_id", 64))
                .col(text_null("code", 64))
                .col(text_null("field", 200))
                .col(long_text_null("message"))
                .col(long_text_null("duplicates"))
                // Refused before it was ever sent (a cell that is not a number): kept so.
                .col(flag("refused_on_upload"))
                .primary_key(Index::create().col("import_id").col("number"))
                .to_owned(),
        )
        .await?;
        index(m, "import_rows", &["import_id", "outcome", "number"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["import_rows", "imports"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
