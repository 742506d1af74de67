//! Who is calling, decided once at the gateway's door from the `Authorization` header:
//! `Bearer <access token>` (a JWT the gateway issued at sign-in) or `Bearer crmk_…` (an
//! integrator's API key). No header: anonymous. Anything else, or anything that does not
//! check out: refused with one message, "invalid token"; the reason goes to the log.
//! Client-supplied identity headers are never forwarded: subgraphs learn the caller only
//! from the token the gateway signs for them.

use std::sync::Arc;

use crm_contract::{Authenticated, BoxFuture, CallerKind, Door, Refusal};
use crm_service_common::principal::PrincipalKind;

use super::store::{API_KEY_PREFIX, Directory, directory_generation};
use super::tokens::{InvalidToken, TokenValidator};

impl From<InvalidToken> for Refusal {
    fn from(reason: InvalidToken) -> Self {
        Refusal::InvalidToken(reason.0)
    }
}

fn unavailable(error: crm_service_common::ApiError) -> Refusal {
    Refusal::Unavailable(error.message())
}

impl Door for Authenticator {
    fn authenticate<'a>(
        &'a self,
        authorization: &'a str,
    ) -> BoxFuture<'a, Result<Authenticated, Refusal>> {
        Box::pin(Authenticator::authenticate(self, authorization))
    }

    fn anonymous_root_fields(&self) -> &'static [&'static str] {
        &["signIn", "refreshSession", "redeemInvitation"]
    }
}

pub struct Authenticator {
    pub directory: Directory,
    /// For the gateway's own access tokens (and development HS256 tokens).
    pub validator: Arc<TokenValidator>,
    /// For an external OIDC provider's tokens, which name the user by `email`.
    pub external: Option<Arc<TokenValidator>>,
    /// What the door remembers of credentials it accepted; `None` where changes made in
    /// other processes could not reach it (a gateway on its own without Redis), so that
    /// every request reads the directory.
    pub memory: Option<DoorMemory>,
}

/// Credentials the door accepted, with the caller each stands for, so that a signed-in
/// caller's next requests need no directory read (reading the user and its session was
/// most of the door's cost). An entry holds while the directory's generation and the
/// policy version are those it was decided under, and never past the credential's expiry
/// or [`REMEMBER_SECONDS`]: a sign-out, a disabled user or a revoked key moves the
/// generation, in this process at once and in others by message (`crm_service_common::
/// signal`), so they are refused from the next request on.
#[derive(Default)]
pub struct DoorMemory {
    entries: std::sync::Mutex<std::collections::HashMap<String, Remembered>>,
}

struct Remembered {
    authenticated: Authenticated,
    generation: u64,
    policy_version: u64,
    /// Unix seconds (the directory's clock).
    until: i64,
}

/// The longest the door goes without reading a credential's rows again (an API key's use
/// is noted when it does).
pub const REMEMBER_SECONDS: i64 = 60;
/// How many credentials are remembered before the expired ones are dropped.
const REMEMBERED_CREDENTIALS: usize = 10_000;

impl DoorMemory {
    fn recall(&self, credential: &str, now: i64) -> Option<Authenticated> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(credential)?;
        (entry.generation == directory_generation()
            && entry.policy_version == crm_policies::current_version()
            && entry.until > now)
            .then(|| entry.authenticated.clone())
    }

    fn remember(&self, credential: &str, entry: Remembered, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let generation = directory_generation();
        crm_contract::bounded::make_room(&mut entries, REMEMBERED_CREDENTIALS, |_, e| {
            e.generation == generation && e.until > now
        });
        entries.insert(credential.to_owned(), entry);
    }
}

/// The door's caller kind of a directory user's `kind` column (read the one way
/// `PrincipalKind` reads it).
pub fn caller_kind(kind: &str) -> CallerKind {
    match PrincipalKind::parse(kind) {
        PrincipalKind::Internal => CallerKind::Internal,
        PrincipalKind::Supplier | PrincipalKind::Distributor => CallerKind::Partner,
        PrincipalKind::Integrator => CallerKind::Integrator,
        PrincipalKind::Anonymous => CallerKind::Anonymous,
    }
}

impl Authenticator {
    /// The caller behind an `Authorization` header value (no header: the door's
    /// anonymous caller, decided before this is asked).
    pub async fn authenticate(&self, authorization: &str) -> Result<Authenticated, Refusal> {
        let token = authorization
            .strip_prefix("Bearer ")
            .or_else(|| authorization.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(Refusal::InvalidToken("not a bearer credential"))?;
        let Some(memory) = &self.memory else {
            return self
                .check(token)
                .await
                .map(|(authenticated, _)| authenticated);
        };
        let now = self.directory.now().timestamp();
        if let Some(known) = memory.recall(token, now) {
            return Ok(known);
        }
        // Read before the directory is: a change made while it is read leaves the entry
        // stale at once.
        let generation = directory_generation();
        let policy_version = crm_policies::current_version();
        let (authenticated, expires) = self.check(token).await?;
        memory.remember(
            token,
            Remembered {
                authenticated: authenticated.clone(),
                generation,
                policy_version,
                until: expires.map_or(now + REMEMBER_SECONDS, |at| at.min(now + REMEMBER_SECONDS)),
            },
            now,
        );
        Ok(authenticated)
    }

    /// Checks a bearer credential against the directory: the caller, and when the
    /// credential expires (Unix seconds; `None`: it does not).
    async fn check(&self, token: &str) -> Result<(Authenticated, Option<i64>), Refusal> {
        if token.starts_with(API_KEY_PREFIX) {
            let key = self
                .directory
                .use_api_key(token)
                .await
                .map_err(unavailable)?
                .ok_or(Refusal::InvalidToken("unknown, revoked or expired API key"))?;
            let caller = self
                .directory
                .binding_caller(key.binding())
                .await
                .map_err(unavailable)?
                .ok_or(Refusal::InvalidToken(
                    "the key's owner may no longer grant it (disabled or without the role)",
                ))?;
            let expires = key.expires_at.map(|at| at.timestamp());
            return Ok((
                Authenticated {
                    caller,
                    kind: CallerKind::Integrator,
                },
                expires,
            ));
        }
        // Our tokens carry one of our kids (or are development HS256); anything else is
        // for the external provider, when one is configured.
        let ours = jsonwebtoken::decode_header(token).is_ok_and(|header| {
            header.alg == jsonwebtoken::Algorithm::HS256
                || header
                    .kid
                    .as_deref()
                    .is_some_and(|kid| kid.starts_with("crm-"))
        });
        let (claims, user) = match &self.external {
            Some(external) if !ours => {
                let claims = external.validate(token).await?;
                let email = claims
                    .email
                    .clone()
                    .ok_or(Refusal::InvalidToken("an external token without email"))?;
                let user = self
                    .directory
                    .user_by_email(&email)
                    .await
                    .map_err(unavailable)?;
                (claims, user)
            }
            _ => {
                let claims = self.validator.validate(token).await?;
                let user = self
                    .directory
                    .user(&claims.sub)
                    .await
                    .map_err(unavailable)?;
                (claims, user)
            }
        };
        let user = user.ok_or(Refusal::InvalidToken("no such user"))?;
        if user.disabled {
            return Err(Refusal::InvalidToken("the user is disabled"));
        }
        if let Some(session_id) = &claims.sid
            && !self
                .directory
                .session_is_active(session_id)
                .await
                .map_err(unavailable)?
        {
            return Err(Refusal::InvalidToken("the session has ended"));
        }
        let mut caller = user.caller(claims.sid);
        if let Some(partner_id) = &user.partner_id {
            caller.partner_tier = self
                .directory
                .partner_tier(partner_id)
                .await
                .map_err(unavailable)?;
        }
        Ok((
            Authenticated {
                kind: caller_kind(&user.kind),
                caller,
            },
            Some(claims.exp),
        ))
    }
}
