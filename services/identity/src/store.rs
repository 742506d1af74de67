//! The identity directory's writes and look-ups: passwords (argon2id), sign-in with a
//! rate limit on failures, sessions with rotating refresh tokens, API keys, and the keys
//! the gateway signs access tokens with. Secrets are random 256-bit values; only their
//! SHA-256 digests are stored (they are not guessable, so a slow hash adds nothing), while
//! passwords, which people choose, get argon2id.

use crm_contract::ErrorCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_service_common::ApiError;
use crm_service_common::internal_auth::KeyPair;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection, IntoActiveModel, QueryOrder};

use super::tokens::Clock;
use super::user;

pub mod credential {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "credentials")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub password_hash: String,
        pub failed_attempts: i32,
        pub failures_since: Option<DateTimeUtc>,
        pub locked_until: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub refresh_digest: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A refresh token already traded for a new one: presented again, it ends its session.
pub mod spent_refresh_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "spent_refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub digest: String,
        pub session_id: String,
        pub spent_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Failed sign-ins of one source for one account (the key digests both).
pub mod sign_in_throttle {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "sign_in_throttles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub failures: i32,
        pub first_failure_at: DateTimeUtc,
        pub retry_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A source address an account signed in from successfully (the key digests both).
pub mod sign_in_source {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "sign_in_sources")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub last_success_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod api_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub prefix: String,
        pub secret_digest: String,
        pub role: String,
        pub partner_id: Option<String>,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub expires_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        pub last_used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// What the key acts as (see [`super::Directory::binding_caller`]).
        pub fn binding(&self) -> super::Binding<'_> {
            super::Binding {
                ty: "ApiKey",
                subject: &self.id,
                role: &self.role,
                partner_id: self.partner_id.as_deref(),
                owner: &self.created_by,
            }
        }
    }
}

pub mod invitation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "invitations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub email: String,
        pub kind: String,
        pub partner_id: Option<String>,
        pub role: String,
        pub token_digest: String,
        pub invited_by: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub redeemed_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        pub user_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod saved_view {
    use sea_orm::entity::prelude::*;

    /// A named list view (the list page's query string: filters and sort) of one user.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "saved_views")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub page: String,
        pub name: String,
        pub query: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod signing_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        pub pkcs8: String,
        pub created_at: DateTimeUtc,
        pub retired_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Failed sign-ins one source may make for one account within [`FAILURE_WINDOW_SECONDS`]
/// before each further attempt must wait: [`FIRST_DELAY_SECONDS`], then twice as long each
/// time, up to [`MAX_DELAY_SECONDS`].
pub const FREE_FAILURES: i32 = 5;
/// Failed sign-ins for one account from all sources together within the window before
/// attempts from sources the account never signed in from must wait too (a guessing
/// attack spread over many addresses); sources it signed in from in the last
/// [`KNOWN_SOURCE_DAYS`] days keep signing in without waiting.
pub const ACCOUNT_FREE_FAILURES: i32 = 30;
pub const KNOWN_SOURCE_DAYS: i64 = 90;
pub const FIRST_DELAY_SECONDS: i64 = 30;
pub const FAILURE_WINDOW_SECONDS: i64 = 15 * 60;
pub const MAX_DELAY_SECONDS: i64 = 15 * 60;
/// How long a session (its refresh token) lasts without being refreshed.
pub const SESSION_SECONDS: i64 = 14 * 24 * 3600;
/// How long an access token lasts.
pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;
/// How long an invitation stays open unless the inviter says otherwise.
pub const INVITATION_SECONDS: i64 = 7 * 24 * 3600;
/// The shortest password a redeemed invitation may set.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// API keys start with this, so a leaked one is recognisable (secret scanners).
pub const API_KEY_PREFIX: &str = "crmk_";

/// The roles a user or key can hold, by side.
pub const INTERNAL_ROLES: &[&str] = &["sales", "marketing", "support", "management", "admin"];
pub const PARTNER_ROLES: &[&str] = &["partner_admin", "partner_manager", "partner_user"];

pub use crm_contract::secrets::{digest, secret};

/// An argon2id hash (PHC string) of a password.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use aws_lc_rs::rand::SecureRandom;
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("no randomness for a salt"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?
        .to_string())
}

fn password_matches(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A user's first password: no failures, not locked.
pub fn new_credential(
    user_id: &str,
    password_hash: String,
    now: DateTime<Utc>,
) -> credential::ActiveModel {
    credential::ActiveModel {
        user_id: Set(user_id.to_owned()),
        password_hash: Set(password_hash),
        failed_attempts: Set(0),
        failures_since: Set(None),
        locked_until: Set(None),
        updated_at: Set(now),
    }
}

/// What an API key or a webhook acts as: its own id, the role and organisation it was
/// given, and the user who answers for it (see [`Directory::binding_caller`]).
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    /// The directory type that grants it (`ApiKey`, `Webhook`): the owner's right to
    /// create that type is what keeps it working.
    pub ty: &'a str,
    pub subject: &'a str,
    pub role: &'a str,
    pub partner_id: Option<&'a str>,
    pub owner: &'a str,
}

/// The directory over the identity database, with the clock every expiry is read from.
#[derive(Clone)]
pub struct Directory {
    pub db: DatabaseConnection,
    pub clock: Arc<dyn Clock>,
}

/// Moves on every change that can refuse a caller the door accepted, or change who it is:
/// a session ended, a user disabled, a key revoked or handed over, a partner's first user
/// (its kind). The door forgets what it remembered when it moves; a process that shares
/// the directory with others announces its changes through Redis
/// ([`directory_changes`]) and follows theirs.
static DIRECTORY_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The directory's generation in this process (see [`DIRECTORY_GENERATION`]).
pub fn directory_generation() -> u64 {
    DIRECTORY_GENERATION.load(std::sync::atomic::Ordering::SeqCst)
}

/// Notified on every change this process makes (what announces them to other processes
/// waits on it).
pub fn directory_changes() -> &'static tokio::sync::Notify {
    static CHANGES: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    CHANGES.get_or_init(tokio::sync::Notify::new)
}

/// A change made here: the door forgets, and other processes are told.
pub(crate) fn directory_changed() {
    DIRECTORY_GENERATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    directory_changes().notify_one();
}

/// A change another process announced.
pub fn directory_changed_elsewhere() {
    DIRECTORY_GENERATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// A sign-in or refresh that worked: the user, the session and its new refresh token.
pub struct Opened {
    pub user: user::Model,
    pub session: session::Model,
    pub refresh_token: String,
}

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

impl Directory {
    pub fn now(&self) -> DateTime<Utc> {
        time(self.clock.timestamp())
    }

    pub async fn user(&self, id: &str) -> Result<Option<user::Model>, ApiError> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Sets one of a user's preferences (its time zone or locale; checked by the caller).
    pub async fn set_preference(
        &self,
        id: &str,
        column: user::Column,
        value: &str,
    ) -> Result<user::Model, ApiError> {
        user::Entity::update_many()
            .col_expr(column, sea_orm::sea_query::Expr::val(value))
            .filter(user::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        self.user(id).await?.ok_or(ApiError::NotFound)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<user::Model>, ApiError> {
        Ok(user::Entity::find()
            .filter(user::Column::Email.eq(email.trim().to_lowercase()))
            .one(&self.db)
            .await?)
    }

    /// The kind (`supplier` or `distributor`) of a partner organisation, as its users in
    /// the directory record it; `None` when it has no users yet.
    /// A partner organisation's programme tier, as the account service last announced it.
    pub async fn partner_tier(&self, partner_id: &str) -> Result<Option<String>, ApiError> {
        crate::partner_tiers::tier_of(&self.db, partner_id).await
    }

    pub async fn partner_kind(&self, partner_id: &str) -> Result<Option<String>, ApiError> {
        Ok(user::Entity::find()
            .filter(user::Column::PartnerId.eq(partner_id))
            .order_by_asc(user::Column::CreatedAt)
            .one(&self.db)
            .await?
            .map(|u| u.kind))
    }

    /// Password sign-in. Unknown email and wrong password read the same, in the same time
    /// (an unknown email checks a dummy hash); a disabled user is told so only after the
    /// right password. Failures slow down the source that makes them, per account: after
    /// [`FREE_FAILURES`] in [`FAILURE_WINDOW_SECONDS`], each further attempt from that
    /// source must wait, 30 s and then twice as long as the last (up to
    /// [`MAX_DELAY_SECONDS`]). The
    /// account is never locked: its owner, elsewhere, signs in as usual. The throttle is
    /// keyed by the address typed, so an unknown email is throttled exactly like a known
    /// one.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        source: Option<&str>,
    ) -> Result<Opened, ApiError> {
        let wrong = || {
            ApiError::denied(
                ErrorCode::InvalidCredentials,
                "the email or the password is wrong",
            )
        };
        let now = self.now();
        let email = email.trim().to_lowercase();
        let key = digest(&format!("{email}\u{1f}{}", source.unwrap_or_default()));
        let account_key = digest(&format!("{email}\u{1f}*"));
        let throttle = self.throttle(&key, now).await?;
        let account_throttle = self.throttle(&account_key, now).await?;
        let waiting = |t: &Option<sign_in_throttle::Model>| {
            t.as_ref().and_then(|t| t.retry_at).filter(|at| *at > now)
        };
        let until = match (waiting(&throttle), waiting(&account_throttle)) {
            (Some(until), _) => Some(until),
            (None, Some(until)) if !self.known_source(&key, now).await? => Some(until),
            _ => None,
        };
        if let Some(until) = until {
            return Err(ApiError::denied(
                ErrorCode::TooManyAttempts,
                format!(
                    "too many failed sign-ins from here; try again after {}",
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ));
        }
        let user = self.user_by_email(&email).await?;
        let credential = match &user {
            Some(user) => {
                credential::Entity::find_by_id(&user.id)
                    .one(&self.db)
                    .await?
            }
            None => None,
        };
        // Spend the time a real check would whether or not the address is known.
        let hash = credential
            .as_ref()
            .map_or(DUMMY_HASH, |c| c.password_hash.as_str());
        let matches = password_matches(password, hash) && credential.is_some();
        let (Some(user), true) = (user, matches) else {
            self.count_failure(&key, throttle, FREE_FAILURES, now)
                .await?;
            self.count_failure(&account_key, account_throttle, ACCOUNT_FREE_FAILURES, now)
                .await?;
            return Err(wrong());
        };
        if user.disabled {
            return Err(ApiError::denied(
                ErrorCode::AccountDisabled,
                "this account is disabled",
            ));
        }
        if throttle.is_some() {
            sign_in_throttle::Entity::delete_by_id(&key)
                .exec(&self.db)
                .await?;
        }
        // This source is now one the account signs in from.
        sign_in_source::Entity::delete_by_id(&key)
            .exec(&self.db)
            .await?;
        sign_in_source::ActiveModel {
            key: Set(key.clone()),
            last_success_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        self.open_session(user).await
    }

    /// The failures counted under `key` within the window (older ones are forgotten).
    async fn throttle(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<sign_in_throttle::Model>, ApiError> {
        Ok(sign_in_throttle::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .filter(|t| (now - t.first_failure_at).num_seconds() < FAILURE_WINDOW_SECONDS))
    }

    /// Whether the account and source of `key` had a successful sign-in lately.
    async fn known_source(&self, key: &str, now: DateTime<Utc>) -> Result<bool, ApiError> {
        Ok(sign_in_source::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .is_some_and(|s| (now - s.last_success_at).num_days() < KNOWN_SOURCE_DAYS))
    }

    /// Notes a failed sign-in for `key` (an account and a source, or an account from all
    /// sources) and, past `free` failures, sets when the next attempt may come.
    async fn count_failure(
        &self,
        key: &str,
        current: Option<sign_in_throttle::Model>,
        free: i32,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let (failures, first) = match &current {
            Some(t) => (t.failures + 1, t.first_failure_at),
            None => (1, now),
        };
        let retry_at = (failures > free).then(|| {
            let doublings = u32::try_from(failures - free - 1).unwrap_or(u32::MAX);
            let delay = FIRST_DELAY_SECONDS
                .checked_mul(1i64 << doublings.min(20))
                .unwrap_or(MAX_DELAY_SECONDS)
                .min(MAX_DELAY_SECONDS);
            now + chrono::Duration::seconds(delay)
        });
        if failures == free + 1 {
            tracing::warn!(
                failures,
                "repeated sign-in failures for one account: slowing down"
            );
        }
        let row = sign_in_throttle::ActiveModel {
            key: Set(key.to_owned()),
            failures: Set(failures),
            first_failure_at: Set(first),
            retry_at: Set(retry_at),
        };
        // Insert or replace (a stale row outside the window starts over).
        sign_in_throttle::Entity::delete_by_id(key)
            .exec(&self.db)
            .await?;
        row.insert(&self.db).await?;
        Ok(())
    }

    async fn open_session(&self, user: user::Model) -> Result<Opened, ApiError> {
        let refresh_token = secret();
        let session = self
            .new_session(&user, &refresh_token, SESSION_SECONDS)
            .await?;
        Ok(Opened {
            user,
            session,
            refresh_token,
        })
    }

    /// Stores a session of `user` that lasts `seconds`, refreshed by `refresh_token`.
    async fn new_session(
        &self,
        user: &user::Model,
        refresh_token: &str,
        seconds: i64,
    ) -> Result<session::Model, ApiError> {
        let now = self.now();
        Ok(session::ActiveModel {
            id: Set(format!("ses_{}", uuid::Uuid::new_v4().simple())),
            user_id: Set(user.id.clone()),
            refresh_digest: Set(digest(refresh_token)),
            created_at: Set(now),
            expires_at: Set(now + chrono::Duration::seconds(seconds)),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?)
    }

    /// Trades a refresh token for a new one (the old one stops working). Presenting an
    /// already used refresh token means it was copied: the whole session ends.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Opened, ApiError> {
        let invalid = || {
            ApiError::denied(
                ErrorCode::InvalidRefreshToken,
                "the refresh token is not valid",
            )
        };
        let now = self.now();
        let presented = digest(refresh_token);
        let Some(session) = session::Entity::find()
            .filter(session::Column::RefreshDigest.eq(presented.as_str()))
            .one(&self.db)
            .await?
        else {
            // A token already traded: someone holds a copy. The session and every token
            // of it end, the legitimate holder's included (it signs in again).
            if let Some(spent) = spent_refresh_token::Entity::find_by_id(&presented)
                .one(&self.db)
                .await?
            {
                tracing::warn!(session = %spent.session_id, "a spent refresh token was presented again: ending its session");
                self.sign_out(&spent.session_id).await?;
            }
            return Err(invalid());
        };
        if session.revoked_at.is_some() || session.expires_at <= now {
            return Err(invalid());
        }
        let Some(user) = self.user(&session.user_id).await?.filter(|u| !u.disabled) else {
            return Err(invalid());
        };
        let refresh_token = secret();
        spent_refresh_token::ActiveModel {
            digest: Set(presented),
            session_id: Set(session.id.clone()),
            spent_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        let mut row = session.into_active_model();
        row.refresh_digest = Set(digest(&refresh_token));
        row.expires_at = Set(now + chrono::Duration::seconds(SESSION_SECONDS));
        let session = row.update(&self.db).await?;
        Ok(Opened {
            user,
            session,
            refresh_token,
        })
    }

    /// Ends a session: its refresh token and its access tokens stop working.
    pub async fn sign_out(&self, session_id: &str) -> Result<(), ApiError> {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(self.now()))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        directory_changed();
        Ok(())
    }

    pub async fn session_is_active(&self, session_id: &str) -> Result<bool, ApiError> {
        let now = self.now();
        Ok(session::Entity::find_by_id(session_id)
            .one(&self.db)
            .await?
            .is_some_and(|s| s.revoked_at.is_none() && s.expires_at > now))
    }

    /// A new API key; the secret is returned once and only its digest is kept.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: &str,
        partner_id: Option<String>,
        created_by: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(api_key::Model, String), ApiError> {
        let secret = format!("{API_KEY_PREFIX}{}", secret());
        let key = api_key::ActiveModel {
            id: Set(format!(
                "key_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..16]
            )),
            name: Set(name.to_owned()),
            prefix: Set(secret[..API_KEY_PREFIX.len() + 6].to_owned()),
            secret_digest: Set(digest(&secret)),
            role: Set(role.to_owned()),
            partner_id: Set(partner_id),
            created_by: Set(created_by.to_owned()),
            created_at: Set(self.now()),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            last_used_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok((key, secret))
    }

    /// The active key with this secret, its use noted (at most once a minute, so a busy
    /// integrator does not turn every read into a write).
    pub async fn use_api_key(&self, secret: &str) -> Result<Option<api_key::Model>, ApiError> {
        let now = self.now();
        let Some(key) = api_key::Entity::find()
            .filter(api_key::Column::SecretDigest.eq(digest(secret)))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| at <= now) {
            return Ok(None);
        }
        if key
            .last_used_at
            .is_none_or(|at| (now - at).num_seconds() >= 60)
        {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
                .filter(api_key::Column::Id.eq(&key.id))
                .exec(&self.db)
                .await?;
        }
        Ok(Some(key))
    }

    /// Whether the user `owner` may still grant a binding to `partner_id` (none: the
    /// company) of the directory type `ty` (`ApiKey`, `Webhook`). A binding never holds
    /// more than its owner (its creator, or the admin who took it over) may give now: when
    /// the owner is disabled or loses the right, it stops. The owner must be enabled, and allowed by
    /// the policy in force to create such records for that organisation, as the mutation
    /// that creates them asks it (`all`: any; `own_org`: its own partner's).
    pub async fn owner_may_grant(
        &self,
        owner: &str,
        partner_id: Option<&str>,
        ty: &str,
    ) -> Result<bool, ApiError> {
        let Some(owner) = self.user(owner).await? else {
            return Ok(false);
        };
        if owner.disabled {
            return Ok(false);
        }
        let principal = crm_service_common::principal::Principal::from_caller(&owner.caller(None));
        let scopes = crm_service_common::access::decide(
            &principal,
            ty,
            crm_service_common::access::Action::Create,
        )
        .await?
        .scopes();
        use crm_service_common::access::Scope;
        Ok(scopes.contains(&Scope::All)
            || (scopes.contains(&Scope::OwnOrg)
                && partner_id.is_some()
                && owner.partner_id.as_deref() == partner_id))
    }

    /// The caller a binding acts as (an API key, a webhook): `subject` with `role` in the
    /// organisation `partner_id` (none: the company), granted by `owner`. A binding to a
    /// partner acts in that partner's policy domain, as a user of the partner's kind would
    /// (a partner without users yet has no known kind, and its binding stays an integrator
    /// that sees nothing). `None` when the owner may no longer grant it (disabled, or
    /// without the right): the binding stops.
    pub async fn binding_caller(
        &self,
        binding: Binding<'_>,
    ) -> Result<Option<crm_service_common::internal_auth::Caller>, ApiError> {
        if !self
            .owner_may_grant(binding.owner, binding.partner_id, binding.ty)
            .await?
        {
            return Ok(None);
        }
        let (kind, partner_tier) = match binding.partner_id {
            Some(partner_id) => (
                self.partner_kind(partner_id)
                    .await?
                    .unwrap_or_else(|| "integrator".into()),
                self.partner_tier(partner_id).await?,
            ),
            None => ("integrator".into(), None),
        };
        Ok(Some(crm_service_common::internal_auth::Caller {
            partner_tier,
            subject: binding.subject.to_owned(),
            kind,
            partner_id: binding.partner_id.map(str::to_owned),
            roles: vec![binding.role.to_owned()],
            policy_version: crm_policies::current_version(),
            session_id: None,
            source: None,
        }))
    }

    /// Makes `owner` the owner of `key` (another admin keeps it working after its creator
    /// left). The caller checks that `owner` manages the key.
    pub async fn take_over_api_key(
        &self,
        found: api_key::Model,
        owner: &str,
    ) -> Result<api_key::Model, ApiError> {
        if found.revoked_at.is_some() {
            return Err(ApiError::InvalidState {
                message: "the key is revoked".into(),
            });
        }
        let mut row = found.into_active_model();
        row.created_by = Set(owner.to_owned());
        let key = row.update(&self.db).await?;
        directory_changed();
        Ok(key)
    }

    /// A session for a token printed on the command line (`crm token`): ended like any
    /// other session (`crm token --revoke <session>`), it makes the token stop working.
    pub async fn command_line_session(
        &self,
        user: &user::Model,
        seconds: i64,
    ) -> Result<session::Model, ApiError> {
        // No refresh token is ever handed out for it.
        self.new_session(user, &secret(), seconds).await
    }

    /// The caller `subject` (a user's or an API key's id) acts as now, for work it started
    /// that runs later (an import's batches): `None` once it may no longer act (a disabled
    /// user; a revoked or expired key, or one whose owner may no longer grant it).
    pub async fn acting_caller(
        &self,
        subject: &str,
    ) -> Result<Option<crm_service_common::internal_auth::Caller>, ApiError> {
        if let Some(user) = self.user(subject).await? {
            if user.disabled {
                return Ok(None);
            }
            let mut caller = user.caller(None);
            if let Some(partner_id) = &user.partner_id {
                caller.partner_tier = self.partner_tier(partner_id).await?;
            }
            return Ok(Some(caller));
        }
        let Some(key) = self.api_key(subject).await? else {
            return Ok(None);
        };
        if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| at <= self.now()) {
            return Ok(None);
        }
        self.binding_caller(key.binding()).await
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<api_key::Model>, ApiError> {
        Ok(api_key::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Keys, newest first: all of them, or one partner's.
    pub async fn api_keys(
        &self,
        partner_id: Option<&str>,
    ) -> Result<Vec<api_key::Model>, ApiError> {
        let mut select = api_key::Entity::find().order_by_desc(api_key::Column::CreatedAt);
        if let Some(partner_id) = partner_id {
            select = select.filter(api_key::Column::PartnerId.eq(partner_id));
        }
        Ok(select.all(&self.db).await?)
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<api_key::Model, ApiError> {
        let key = self.api_key(id).await?.ok_or(ApiError::NotFound)?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        let mut row = key.into_active_model();
        row.revoked_at = Set(Some(self.now()));
        let key = row.update(&self.db).await?;
        directory_changed();
        Ok(key)
    }

    /// An invitation to join as `role` (of `partner_id`, when given); the token that
    /// redeems it is returned once.
    pub async fn invite(
        &self,
        email: &str,
        kind: &str,
        partner_id: Option<String>,
        role: &str,
        invited_by: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(invitation::Model, String), ApiError> {
        let email = email.trim().to_lowercase();
        let token = secret();
        let row = invitation::ActiveModel {
            id: Set(format!(
                "inv_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..16]
            )),
            email: Set(email),
            kind: Set(kind.to_owned()),
            partner_id: Set(partner_id),
            role: Set(role.to_owned()),
            token_digest: Set(digest(&token)),
            invited_by: Set(invited_by.to_owned()),
            created_at: Set(self.now()),
            expires_at: Set(expires_at),
            redeemed_at: Set(None),
            revoked_at: Set(None),
            user_id: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok((row, token))
    }

    pub async fn invitation(&self, id: &str) -> Result<Option<invitation::Model>, ApiError> {
        Ok(invitation::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Invitations, newest first: all, or one partner's.
    pub async fn invitations(
        &self,
        partner_id: Option<&str>,
    ) -> Result<Vec<invitation::Model>, ApiError> {
        let mut select = invitation::Entity::find().order_by_desc(invitation::Column::CreatedAt);
        if let Some(partner_id) = partner_id {
            select = select.filter(invitation::Column::PartnerId.eq(partner_id));
        }
        Ok(select.all(&self.db).await?)
    }

    /// Revokes an open invitation (a redeemed one is history and stays as it is).
    pub async fn revoke_invitation(&self, id: &str) -> Result<invitation::Model, ApiError> {
        let found = self.invitation(id).await?.ok_or(ApiError::NotFound)?;
        if found.redeemed_at.is_some() {
            return Err(ApiError::InvalidState {
                message: "the invitation was already redeemed".into(),
            });
        }
        if found.revoked_at.is_some() {
            return Ok(found);
        }
        let mut row = found.into_active_model();
        row.revoked_at = Set(Some(self.now()));
        Ok(row.update(&self.db).await?)
    }

    /// Redeems an invitation once: creates the user with its password and signs it in.
    /// Unknown, used, revoked and expired invitations all read the same.
    pub async fn redeem_invitation(
        &self,
        token: &str,
        display_name: &str,
        password_hash: String,
    ) -> Result<Opened, ApiError> {
        let invalid = || {
            ApiError::denied(
                ErrorCode::InvalidInvitation,
                "the invitation is not valid (used, revoked, expired or unknown)",
            )
        };
        let now = self.now();
        // A write transaction from the start (on SQLite: BEGIN IMMEDIATE), so the read
        // below cannot be overtaken by a concurrent redemption.
        let txn = crm_service_common::db::begin_write(&self.db).await?;
        let Some(found) = invitation::Entity::find()
            .filter(invitation::Column::TokenDigest.eq(digest(token)))
            .one(&txn)
            .await?
        else {
            return Err(invalid());
        };
        if found.redeemed_at.is_some() || found.revoked_at.is_some() || found.expires_at <= now {
            return Err(invalid());
        }
        // The address joined since (or belonged to someone the inviter could not see).
        if user::Entity::find()
            .filter(user::Column::Email.eq(found.email.as_str()))
            .one(&txn)
            .await?
            .is_some()
        {
            return Err(invalid());
        }
        let user_id = format!("usr_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        // Redeemed exactly once even when two redemptions race: only one update matches.
        let claimed = invitation::Entity::update_many()
            .col_expr(invitation::Column::RedeemedAt, Expr::value(now))
            .col_expr(invitation::Column::UserId, Expr::value(user_id.clone()))
            .filter(invitation::Column::Id.eq(&found.id))
            .filter(invitation::Column::RedeemedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(invalid());
        }
        let user = user::ActiveModel {
            id: Set(user_id.clone()),
            email: Set(found.email.clone()),
            display_name: Set(display_name.to_owned()),
            kind: Set(found.kind.clone()),
            partner_id: Set(found.partner_id.clone()),
            roles: Set(found.role.clone()),
            disabled: Set(false),
            created_at: Set(now),
            time_zone: Set("UTC".into()),
            locale: Set("en-US".into()),
        }
        .insert(&txn)
        .await?;
        new_credential(&user_id, password_hash, now)
            .insert(&txn)
            .await?;
        crm_service_common::db::commit(txn).await?;
        // A partner's first user decides the kind its keys act as.
        directory_changed();
        self.open_session(user).await
    }

    /// The users of the directory, internal staff first then by organisation and email:
    /// everyone, or one partner's.
    pub async fn users(&self, partner_id: Option<&str>) -> Result<Vec<user::Model>, ApiError> {
        let mut select = user::Entity::find()
            .order_by_asc(user::Column::Kind)
            .order_by_asc(user::Column::PartnerId)
            .order_by_asc(user::Column::Email);
        if let Some(partner_id) = partner_id {
            select = select.filter(user::Column::PartnerId.eq(partner_id));
        }
        Ok(select.all(&self.db).await?)
    }

    /// Deactivates or reactivates a user. Deactivating ends every session of the user at
    /// once (the door also refuses a disabled user's tokens on the next request).
    pub async fn set_disabled(&self, id: &str, disabled: bool) -> Result<user::Model, ApiError> {
        let found = self.user(id).await?.ok_or(ApiError::NotFound)?;
        let txn = crm_service_common::db::begin_write(&self.db).await?;
        let mut row = found.into_active_model();
        row.disabled = Set(disabled);
        let user = row.update(&txn).await?;
        if disabled {
            session::Entity::update_many()
                .col_expr(session::Column::RevokedAt, Expr::value(self.now()))
                .filter(session::Column::UserId.eq(id))
                .filter(session::Column::RevokedAt.is_null())
                .exec(&txn)
                .await?;
        }
        crm_service_common::db::commit(txn).await?;
        directory_changed();
        Ok(user)
    }

    /// One user's saved views of one list page, by name.
    pub async fn saved_views(
        &self,
        user_id: &str,
        page: &str,
    ) -> Result<Vec<saved_view::Model>, ApiError> {
        Ok(saved_view::Entity::find()
            .filter(saved_view::Column::UserId.eq(user_id))
            .filter(saved_view::Column::Page.eq(page))
            .order_by_asc(saved_view::Column::Name)
            .all(&self.db)
            .await?)
    }

    /// Saves a view under its name; saving under an existing name replaces its query.
    pub async fn save_view(
        &self,
        user_id: &str,
        page: &str,
        name: &str,
        query: &str,
    ) -> Result<saved_view::Model, ApiError> {
        let existing = saved_view::Entity::find()
            .filter(saved_view::Column::UserId.eq(user_id))
            .filter(saved_view::Column::Page.eq(page))
            .filter(saved_view::Column::Name.eq(name))
            .one(&self.db)
            .await?;
        Ok(match existing {
            Some(found) => {
                let mut row = found.into_active_model();
                row.query = Set(query.to_owned());
                row.update(&self.db).await?
            }
            None => {
                saved_view::ActiveModel {
                    id: Set(format!("view_{}", uuid::Uuid::new_v4().simple())),
                    user_id: Set(user_id.to_owned()),
                    page: Set(page.to_owned()),
                    name: Set(name.to_owned()),
                    query: Set(query.to_owned()),
                    created_at: Set(self.now()),
                }
                .insert(&self.db)
                .await?
            }
        })
    }

    /// Deletes one of the user's own saved views; another user's reads as missing.
    pub async fn delete_view(&self, user_id: &str, id: &str) -> Result<(), ApiError> {
        let deleted = saved_view::Entity::delete_many()
            .filter(saved_view::Column::Id.eq(id))
            .filter(saved_view::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::NotFound);
        }
        Ok(())
    }

    /// The key access tokens are signed with: the newest unretired one, made on first use.
    pub async fn signing_key(&self) -> anyhow::Result<KeyPair> {
        let newest = signing_key::Entity::find()
            .filter(signing_key::Column::RetiredAt.is_null())
            .order_by_desc(signing_key::Column::CreatedAt)
            .one(&self.db)
            .await?;
        if let Some(row) = newest {
            return KeyPair::from_base64(&row.pkcs8);
        }
        let keys = KeyPair::generate()?;
        signing_key::ActiveModel {
            kid: Set(super::tokens::key_id(&keys)),
            pkcs8: Set(keys.private_base64()),
            created_at: Set(self.now()),
            retired_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(keys)
    }

    /// Every unretired signing key (they all verify).
    pub async fn verification_keys(&self) -> anyhow::Result<Vec<KeyPair>> {
        signing_key::Entity::find()
            .filter(signing_key::Column::RetiredAt.is_null())
            .all(&self.db)
            .await?
            .iter()
            .map(|row| KeyPair::from_base64(&row.pkcs8))
            .collect()
    }
}

/// A valid argon2id hash of a random password nobody knows: checked against when the
/// email is unknown, so both paths take the same time.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$H1hG8DkqfVmE9B2JbXoV0ZC3l3h2b3Lq3iK5wSGc5yQ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify_and_secrets_are_unique() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("correct horsf", &hash));
        assert!(!password_matches("x", "not a hash"));
        assert_ne!(secret(), secret());
        assert_eq!(digest("abc").len(), 64);
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // The dummy parses, so the unknown-email path really runs argon2.
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
