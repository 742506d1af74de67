//! Web sessions: the browser holds a random cookie; the `identity.web_sessions` row it
//! names holds the API session the user signed in with (access and refresh token), the
//! CSRF token of its forms, and when it was last used (idle expiry).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, DatabaseConnection, IntoActiveModel};

use crm_contract::clock::{Clock, SystemClock};
use crm_contract::secrets::{digest, secret};

pub mod web_session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub cookie_digest: String,
        pub user_id: String,
        pub kind: String,
        pub csrf_token: String,
        pub access_token: String,
        pub access_expires_at: DateTimeUtc,
        pub refresh_token: String,
        pub created_at: DateTimeUtc,
        pub last_seen_at: DateTimeUtc,
        pub notice: Option<String>,
        /// The caller as `me` described it (JSON), with the policy version it was decided
        /// under; cleared when the session is renewed.
        pub caller: Option<String>,
        /// What a form just created, to show once on the page it redirects to:
        /// `<what>\n<secret>` (an API key's secret, an invitation's link).
        pub reveal: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use web_session::Model as WebSession;

/// How long sessions last.
#[derive(Clone, Debug)]
pub struct SessionPolicy {
    /// Signed out after this long without a request.
    pub idle: Duration,
    /// Signed out this long after signing in, however active.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

/// The API session a sign-in (or a refresh) produced.
pub struct ApiSession {
    pub user_id: String,
    pub kind: String,
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
}

/// What trading a refresh token gave.
pub enum Renewal {
    Renewed(ApiSession),
    /// The API refused the refresh token (used already, expired, signed out, user disabled).
    Refused,
    /// The API could not answer now; the session stays as it is.
    Unavailable,
}

/// Lock stripes for refreshes: one session's refreshes in this process run one at a time
/// (a refresh token works once), without one user's refresh holding up everyone's.
const REFRESH_STRIPES: usize = 64;

#[derive(Clone)]
pub struct Sessions {
    pub db: DatabaseConnection,
    pub policy: SessionPolicy,
    /// Expiry and last use are measured by it.
    pub clock: std::sync::Arc<dyn Clock>,
    refreshing: std::sync::Arc<Vec<tokio::sync::Mutex<()>>>,
}

impl Sessions {
    pub fn new(db: DatabaseConnection, policy: SessionPolicy) -> Self {
        Self {
            db,
            policy,
            clock: std::sync::Arc::new(SystemClock),
            refreshing: std::sync::Arc::new(
                (0..REFRESH_STRIPES)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
            ),
        }
    }

    /// Opens a web session for a signed-in API session; returns the cookie value. Sessions
    /// that expired without being presented again are deleted on the way.
    pub async fn open(&self, api: ApiSession) -> Result<(String, WebSession), DbErr> {
        let cookie = secret();
        let now = self.clock.now();
        let idle = chrono::Duration::from_std(self.policy.idle).unwrap_or_default();
        let absolute = chrono::Duration::from_std(self.policy.absolute).unwrap_or_default();
        web_session::Entity::delete_many()
            .filter(
                sea_orm::Condition::any()
                    .add(web_session::Column::LastSeenAt.lt(now - idle))
                    .add(web_session::Column::CreatedAt.lt(now - absolute)),
            )
            .exec(&self.db)
            .await?;
        let row = web_session::ActiveModel {
            cookie_digest: Set(digest(&cookie)),
            user_id: Set(api.user_id),
            kind: Set(api.kind),
            csrf_token: Set(secret()),
            access_token: Set(api.access_token),
            access_expires_at: Set(api.access_expires_at),
            refresh_token: Set(api.refresh_token),
            created_at: Set(now),
            last_seen_at: Set(now),
            notice: Set(None),
            caller: Set(None),
            reveal: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok((cookie, row))
    }

    /// The live session a cookie names: `None` when unknown, idle too long or too old
    /// (an expired one is deleted). Marks it used (at most once a minute, to spare writes).
    pub async fn find(&self, cookie: &str) -> Result<Option<WebSession>, DbErr> {
        let Some(row) = web_session::Entity::find_by_id(digest(cookie))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        let idle = chrono::Duration::from_std(self.policy.idle).unwrap_or_default();
        let absolute = chrono::Duration::from_std(self.policy.absolute).unwrap_or_default();
        if now - row.last_seen_at > idle || now - row.created_at > absolute {
            self.close(cookie).await?;
            return Ok(None);
        }
        if now - row.last_seen_at > chrono::Duration::seconds(60) {
            let mut active = row.clone().into_active_model();
            active.last_seen_at = Set(now);
            return Ok(Some(active.update(&self.db).await?));
        }
        Ok(Some(row))
    }

    /// Whether the session's access token needs renewing before it is used.
    pub fn needs_refresh(&self, session: &WebSession) -> bool {
        session.access_expires_at - self.clock.now() < chrono::Duration::seconds(60)
    }

    /// Renews the access token with `refresh` (which trades the refresh token for a new
    /// API session). Another request (here or in another gateway process) may renew the
    /// same session at the same moment: the row is changed only if it still holds the
    /// refresh token that was traded (compare and swap), and a refused token whose row has
    /// moved on means the other one won, so its tokens are used. `None` when the session
    /// is over.
    pub async fn refresh<F, Fut>(
        &self,
        session: &WebSession,
        refresh: F,
    ) -> Result<Option<WebSession>, DbErr>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Renewal>,
    {
        let stripe = session
            .cookie_digest
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
            % REFRESH_STRIPES;
        let _one_at_a_time = self.refreshing[stripe].lock().await;
        let reload = || web_session::Entity::find_by_id(&session.cookie_digest).one(&self.db);
        let Some(current) = reload().await? else {
            return Ok(None);
        };
        if !self.needs_refresh(&current) {
            return Ok(Some(current));
        }
        let traded = current.refresh_token.clone();
        match refresh(traded.clone()).await {
            Renewal::Renewed(api) => {
                web_session::Entity::update_many()
                    .col_expr(
                        web_session::Column::AccessToken,
                        Expr::value(api.access_token),
                    )
                    .col_expr(
                        web_session::Column::AccessExpiresAt,
                        Expr::value(api.access_expires_at),
                    )
                    .col_expr(
                        web_session::Column::RefreshToken,
                        Expr::value(api.refresh_token),
                    )
                    // A renewal reads the user afresh (name, organisation, roles).
                    .col_expr(
                        web_session::Column::Caller,
                        Expr::value(Option::<String>::None),
                    )
                    .filter(web_session::Column::CookieDigest.eq(&current.cookie_digest))
                    .filter(web_session::Column::RefreshToken.eq(&traded))
                    .exec(&self.db)
                    .await?;
                reload().await
            }
            Renewal::Refused => match reload().await? {
                Some(row) if row.refresh_token != traded => Ok(Some(row)),
                _ => {
                    web_session::Entity::delete_by_id(&session.cookie_digest)
                        .exec(&self.db)
                        .await?;
                    Ok(None)
                }
            },
            Renewal::Unavailable => Ok(Some(current)),
        }
    }

    /// Keeps the caller as `me` described it, for the pages of this session.
    pub async fn keep_caller(&self, session: &WebSession, caller: &str) -> Result<(), DbErr> {
        web_session::Entity::update_many()
            .col_expr(web_session::Column::Caller, Expr::value(caller))
            .filter(web_session::Column::CookieDigest.eq(&session.cookie_digest))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Keeps a secret a form created (`what` names it) for the page it redirects to.
    pub async fn keep_reveal(
        &self,
        session: &WebSession,
        what: &str,
        secret: &str,
    ) -> Result<(), DbErr> {
        web_session::Entity::update_many()
            .col_expr(
                web_session::Column::Reveal,
                Expr::value(format!("{what}\n{secret}")),
            )
            .filter(web_session::Column::CookieDigest.eq(&session.cookie_digest))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The secret kept for this page, if it is the `what` this page shows; taken, so a
    /// reload shows it no more.
    pub async fn take_reveal(
        &self,
        session: &WebSession,
        what: &str,
    ) -> Result<Option<String>, DbErr> {
        let Some((kept, secret)) = session.reveal.as_deref().and_then(|r| r.split_once('\n'))
        else {
            return Ok(None);
        };
        if kept != what {
            return Ok(None);
        }
        web_session::Entity::update_many()
            .col_expr(
                web_session::Column::Reveal,
                Expr::value(Option::<String>::None),
            )
            .filter(web_session::Column::CookieDigest.eq(&session.cookie_digest))
            .exec(&self.db)
            .await?;
        Ok(Some(secret.to_owned()))
    }

    /// Keeps the notice the next page shows once.
    pub async fn set_notice(&self, session: &WebSession, notice: &str) -> Result<(), DbErr> {
        let notice: String = notice.chars().take(500).collect();
        web_session::Entity::update_many()
            .col_expr(web_session::Column::Notice, Expr::value(notice))
            .filter(web_session::Column::CookieDigest.eq(&session.cookie_digest))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The notice waiting for this page, taken (it shows once).
    pub async fn take_notice(&self, session: &mut WebSession) -> Result<Option<String>, DbErr> {
        let Some(notice) = session.notice.take() else {
            return Ok(None);
        };
        web_session::Entity::update_many()
            .col_expr(
                web_session::Column::Notice,
                Expr::value(Option::<String>::None),
            )
            .filter(web_session::Column::CookieDigest.eq(&session.cookie_digest))
            .exec(&self.db)
            .await?;
        Ok(Some(notice))
    }

    /// Ends the web session a cookie names.
    pub async fn close(&self, cookie: &str) -> Result<(), DbErr> {
        web_session::Entity::delete_by_id(digest(cookie))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

pub use crm_contract::secrets::same_secret;

/// One cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name_and_secrets_compare() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; crm_session_x=2; crm_session=abc"
                .parse()
                .expect("header"),
        );
        assert_eq!(cookie(&headers, "crm_session"), Some("abc"));
        assert_eq!(cookie(&headers, "crm"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
