//! The identity service, in its own `identity` schema: the directory of users (internal
//! staff per department, users per partner organisation), their passwords and sessions,
//! integrators' API keys and invitations, the access tokens the gateway issues and its door
//! checks (`door` implements the router's `Door`), the stored access policy (`policy`), and
//! the identity subgraph (`me`, sign-in, API keys, policy edits), and integrators' webhooks
//! (`webhooks`: kept here because a webhook is bound to a principal exactly as an API key
//! is, and delivered by the gateway that holds this directory).

pub mod door;
pub mod graphql;
pub mod imports;
pub mod partner_tiers;
pub mod policy;
pub mod store;
pub mod tokens;
pub mod webhooks;

use std::sync::Arc;

use crm_service_common::internal_auth::SubgraphAuth;
use crm_service_common::subgraph::{BoxFuture, DemoRefs, DemoWorld, SeedCounts};

use anyhow::Context;
use crm_service_common::principal::PrincipalKind;
use crm_service_common::seed::{INTERNAL_USERS, SeededPartner};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection, PaginatorTrait};

pub const SERVICE: &str = "identity";
pub const SUBGRAPH: &str = "identity";

/// The `iss` and `aud` of the access tokens the gateway issues.
pub const TOKEN_ISSUER: &str = "crm-gateway";
pub const TOKEN_AUDIENCE: &str = "crm-api";

/// Every demo user's password (the demo world only; printed at start-up).
pub const DEMO_PASSWORD: &str = "demo-password";

/// How the door may also accept tokens it did not issue.
#[derive(Clone, Debug, Default)]
pub struct IdentityOptions {
    /// Accept HS256 tokens signed with this secret: development only.
    pub development_secret: Option<String>,
    /// An external OIDC provider whose tokens are accepted; they name the user by `email`.
    pub external: Option<ExternalIssuer>,
    /// The door reads the directory on every request instead of remembering what it
    /// accepted: for a gateway whose directory changes in other processes that cannot tell
    /// it (no Redis).
    pub door_reads_every_request: bool,
    /// How webhooks deliver (which networks they may reach, how long an attempt takes).
    pub webhooks: webhooks::WebhookSettings,
}

/// An external OIDC provider: its issuer, the audience its tokens carry for us, and
/// where its JWKS is (fetched, cached, refreshed on an unknown kid at most once a minute).
#[derive(Clone, Debug)]
pub struct ExternalIssuer {
    pub issuer: String,
    pub audience: String,
    pub jwks: tokens::JwksSource,
}

/// The identity parts of a running gateway.
#[derive(Clone)]
pub struct Identity {
    pub directory: store::Directory,
    /// The stored access policy (its newest version is installed when opened).
    pub policy: crate::policy::PolicyStore,
    pub issuer: Arc<tokens::TokenIssuer>,
    pub authenticator: Arc<door::Authenticator>,
    /// The public keys of issued tokens (`/.well-known/jwks.json`).
    pub jwks: serde_json::Value,
    /// How webhooks deliver.
    pub webhooks: webhooks::WebhookSettings,
    /// Which kinds of records some webhook listens to (the delivery consumers pass over
    /// the others); refreshed at once by a webhook change made here.
    pub webhook_listeners: webhooks::Listening,
    /// Wakes this process's delivery runner when a delivery was scheduled here.
    pub webhook_wake: Arc<tokio::sync::Notify>,
}

impl Identity {
    /// Identity over a migrated identity database: its signing key (made on first start),
    /// the validator that trusts every unretired key, and the door's authenticator.
    pub async fn open(
        db: &DatabaseConnection,
        clock: Arc<dyn tokens::Clock>,
        options: &IdentityOptions,
    ) -> anyhow::Result<Self> {
        let directory = store::Directory {
            db: db.clone(),
            clock: clock.clone(),
        };
        let signing = directory.signing_key().await?;
        let issuer = Arc::new(tokens::TokenIssuer::new(
            &signing,
            TOKEN_ISSUER,
            TOKEN_AUDIENCE,
            clock.clone(),
        )?);
        let jwks = jsonwebtoken::jwk::JwkSet {
            keys: directory
                .verification_keys()
                .await?
                .iter()
                .map(tokens::public_jwk)
                .collect::<anyhow::Result<_>>()?,
        };
        let keys = Arc::new(tokens::KeySet::new(
            tokens::JwksSource::Fixed(jwks.clone()),
            clock.clone(),
            60,
        ));
        let mut validator =
            tokens::TokenValidator::new(TOKEN_ISSUER, TOKEN_AUDIENCE, keys, clock.clone());
        if let Some(secret) = &options.development_secret {
            tracing::warn!("HS256 development tokens are accepted (development only)");
            validator = validator.with_development_secret(secret.as_bytes());
        }
        let external = options.external.as_ref().map(|external| {
            let keys = Arc::new(tokens::KeySet::new(
                external.jwks.clone(),
                clock.clone(),
                60,
            ));
            Arc::new(tokens::TokenValidator::new(
                external.issuer.clone(),
                external.audience.clone(),
                keys,
                clock.clone(),
            ))
        });
        let policy = crate::policy::PolicyStore::open(db).await?;
        Ok(Self {
            policy,
            authenticator: Arc::new(door::Authenticator {
                directory: directory.clone(),
                validator: Arc::new(validator),
                external,
                memory: (!options.door_reads_every_request).then(door::DoorMemory::default),
            }),
            jwks: serde_json::to_value(&jwks)?,
            directory,
            issuer,
            webhooks: options.webhooks.clone(),
            webhook_listeners: webhooks::Listening::default(),
            webhook_wake: Arc::default(),
        })
    }

    /// The identity subgraph's HTTP app (answering the gateway only, unless `auth` is
    /// disabled).
    pub fn app(&self, auth: SubgraphAuth) -> axum::Router {
        let schema = graphql::schema(
            self.directory.clone(),
            self.issuer.clone(),
            self.policy.clone(),
            (
                self.webhooks.clone(),
                self.webhook_listeners.clone(),
                self.webhook_wake.clone(),
            ),
        );
        let db = self.directory.db.clone();
        let ready: crm_service_common::http::ReadyCheck = Arc::new(move || {
            let db = db.clone();
            Box::pin(async move { db.ping().await.is_ok() })
        });
        crm_service_common::http::gateway_only(
            crm_service_common::http::subgraph_router(schema, Arc::new(|r, _| r), ready),
            auth,
        )
    }
}

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub email: String,
        pub display_name: String,
        pub kind: String,
        pub partner_id: Option<String>,
        pub roles: String,
        pub disabled: bool,
        pub created_at: DateTimeUtc,
        /// An IANA time zone name (`Europe/Berlin`): where the user's "today" is.
        pub time_zone: String,
        /// A language tag (`de-DE`): how the web writes the user's numbers and amounts.
        pub locale: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// The user as the services see a caller: kind, organisation and roles, with the
        /// policy version this process decides with.
        pub fn caller(
            &self,
            session_id: Option<String>,
        ) -> crm_service_common::internal_auth::Caller {
            crm_service_common::internal_auth::Caller {
                partner_tier: None,
                subject: self.id.clone(),
                kind: self.kind.clone(),
                partner_id: self.partner_id.clone(),
                roles: self.role_list(),
                policy_version: crm_policies::current_version(),
                session_id,
                source: None,
            }
        }

        /// The user's roles (stored comma-separated).
        pub fn role_list(&self) -> Vec<String> {
            self.roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect()
        }
    }
}

/// The internal staff's email domain in the demo.
pub const INTERNAL_DOMAIN: &str = "crm.example";

/// One demo login, as printed at start-up.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoUser {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub kind: &'static str,
    pub partner_id: Option<String>,
    pub roles: String,
}

/// The demo directory: internal users per department, and an admin and a user per partner.
pub fn demo_users(partners: &[SeededPartner]) -> Vec<DemoUser> {
    let mut users: Vec<DemoUser> = INTERNAL_USERS
        .iter()
        .map(|(id, persona)| {
            let role = persona.trim_end_matches(|c: char| c.is_ascii_digit());
            DemoUser {
                id: (*id).to_owned(),
                email: format!("{persona}@{INTERNAL_DOMAIN}"),
                display_name: format!("{}{} (demo)", role[..1].to_uppercase(), &role[1..]),
                kind: "internal",
                partner_id: None,
                roles: role.to_owned(),
            }
        })
        .collect();
    for partner in partners {
        let kind = match partner.kind {
            PrincipalKind::Supplier => "supplier",
            PrincipalKind::Distributor => "distributor",
            // Only suppliers and distributors are partner organisations.
            _ => continue,
        };
        for (suffix, role) in [("admin", "partner_admin"), ("user", "partner_user")] {
            users.push(DemoUser {
                id: format!("usr_{}_{suffix}", partner.persona),
                email: format!("{}-{suffix}@{}", partner.persona, partner.email_domain),
                display_name: format!("{} {suffix}", partner.name),
                kind,
                partner_id: Some(partner.id.clone()),
                roles: role.to_owned(),
            });
        }
    }
    users
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    use crm_migrations::MigratorTrait;
    crm_migrations::identity::Migrator::up(db, None)
        .await
        .context("migrating the identity schema")
}

pub async fn is_seeded(db: &DatabaseConnection) -> anyhow::Result<bool> {
    Ok(user::Entity::find().count(db).await? > 0)
}

pub async fn seed(db: &DatabaseConnection, users: &[DemoUser]) -> anyhow::Result<()> {
    // One argon2 hash for every demo user: they share a published password anyway, and
    // hashing dozens of times would slow every start on a fresh database.
    let password_hash = store::hash_password(DEMO_PASSWORD)?;
    let created_at = chrono::DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")?.to_utc();
    let rows = users.iter().map(|u| user::ActiveModel {
        id: Set(u.id.clone()),
        email: Set(u.email.clone()),
        display_name: Set(u.display_name.clone()),
        kind: Set(u.kind.to_owned()),
        partner_id: Set(u.partner_id.clone()),
        roles: Set(u.roles.clone()),
        disabled: Set(false),
        created_at: Set(created_at),
        time_zone: Set("UTC".into()),
        locale: Set("en-US".into()),
    });
    user::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await
        .context("seeding demo users")?;
    let credentials = users
        .iter()
        .map(|u| store::new_credential(&u.id, password_hash.clone(), created_at));
    store::credential::Entity::insert_many(credentials)
        .exec_without_returning(db)
        .await
        .context("seeding demo passwords")?;
    Ok(())
}

/// Reads the demo users back, for printing the logins of an already seeded system.
pub async fn all_users(db: &DatabaseConnection) -> anyhow::Result<Vec<user::Model>> {
    use sea_orm::QueryOrder;
    Ok(user::Entity::find()
        .order_by_asc(user::Column::Email)
        .all(db)
        .await?)
}

/// The identity service as every process runs and composes it. Unlike the others it keeps
/// what it opened: the process that serves it also needs its door (the authenticator),
/// its public keys and its policy store.
pub struct IdentitySubgraph {
    clock: Arc<dyn tokens::Clock>,
    options: IdentityOptions,
    opened: std::sync::OnceLock<Identity>,
}

impl IdentitySubgraph {
    pub fn new(clock: Arc<dyn tokens::Clock>, options: IdentityOptions) -> Self {
        Self {
            clock,
            options,
            opened: std::sync::OnceLock::new(),
        }
    }

    /// The identity this subgraph serves, once `serve` opened it.
    pub fn opened(&self) -> Option<&Identity> {
        self.opened.get()
    }
}

impl Default for IdentitySubgraph {
    fn default() -> Self {
        Self::new(Arc::new(tokens::SystemClock), IdentityOptions::default())
    }
}

impl crm_service_common::subgraph::Subgraph for IdentitySubgraph {
    fn name(&self) -> &'static str {
        SUBGRAPH
    }
    fn service(&self) -> &'static str {
        SERVICE
    }
    fn port(&self) -> u16 {
        4004
    }
    fn sdl(&self) -> String {
        graphql::sdl()
    }
    fn migrate<'a>(&'a self, db: &'a DatabaseConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(migrate(db))
    }
    fn seed<'a>(
        &'a self,
        db: &'a DatabaseConnection,
        _world: DemoWorld,
        refs: &'a mut DemoRefs,
    ) -> BoxFuture<'a, anyhow::Result<Option<SeedCounts>>> {
        Box::pin(async move {
            if is_seeded(db).await? {
                return Ok(None);
            }
            let users = demo_users(&refs.partners);
            seed(db, &users).await?;
            Ok(Some(SeedCounts(vec![("users", users.len())])))
        })
    }
    fn serve<'a>(
        &'a self,
        db: DatabaseConnection,
        auth: SubgraphAuth,
    ) -> BoxFuture<'a, anyhow::Result<axum::Router>> {
        Box::pin(async move {
            let identity = match self.opened.get() {
                Some(identity) => identity.clone(),
                None => {
                    let identity = Identity::open(&db, self.clock.clone(), &self.options).await?;
                    self.opened.get_or_init(|| identity).clone()
                }
            };
            Ok(identity.app(auth))
        })
    }
}
