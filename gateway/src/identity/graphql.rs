//! The identity subgraph: `me`, sign-in, refresh and sign-out, and integrators' API keys.
//! It runs beside the other subgraphs (behind the gateway, with the gateway's token) and
//! reads the caller only from its `Principal`.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use crm_service_common::principal::{Principal, PrincipalKind};
use crm_service_common::{ApiError, ApiResult};

use super::store::{self, ACCESS_TOKEN_SECONDS, Directory, INTERNAL_ROLES, Opened, PARTNER_ROLES};
use super::tokens::TokenIssuer;
use super::user;

/// A partner organisation (owned by the account service; known here by id).
#[derive(SimpleObject, Clone)]
#[graphql(unresolvable = "id")]
pub struct Partner {
    pub id: ID,
}

/// The side of the business a caller is on.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CallerKind {
    Internal,
    Supplier,
    Distributor,
    Integrator,
}

/// The signed-in caller.
#[derive(SimpleObject, Clone)]
pub struct Me {
    /// The user's id (or the API key's, for an integrator).
    pub id: ID,
    pub kind: CallerKind,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub roles: Vec<String>,
    /// The partner organisation of a supplier or distributor user (or of a key bound to
    /// one).
    pub organization: Option<Partner>,
}

/// A sign-in: a short-lived access token to send as `Authorization: Bearer …`, and a
/// refresh token to get the next one (each refresh token works once).
#[derive(SimpleObject)]
pub struct Session {
    pub access_token: String,
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub me: Me,
}

#[derive(SimpleObject, Clone)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub role: String,
    pub organization: Option<Partner>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A new key with its secret: shown this once, never again.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    /// A department role (an admin's keys) or a partner role (keys of a partner).
    pub role: String,
    /// The partner the key acts for; a partner admin's keys are always its own partner's.
    pub partner_id: Option<ID>,
    pub expires_at: Option<DateTime<Utc>>,
}

fn kind_of(text: &str) -> Option<CallerKind> {
    match PrincipalKind::parse(text) {
        PrincipalKind::Internal => Some(CallerKind::Internal),
        PrincipalKind::Supplier => Some(CallerKind::Supplier),
        PrincipalKind::Distributor => Some(CallerKind::Distributor),
        PrincipalKind::Integrator => Some(CallerKind::Integrator),
        PrincipalKind::Anonymous => None,
    }
}

fn me_of_user(user: &user::Model) -> ApiResult<Me> {
    Ok(Me {
        id: ID::from(&user.id),
        kind: kind_of(&user.kind).ok_or_else(|| ApiError::internal("a user without a kind"))?,
        email: Some(user.email.clone()),
        display_name: Some(user.display_name.clone()),
        roles: user
            .roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        organization: user
            .partner_id
            .as_ref()
            .map(|id| Partner { id: ID::from(id) }),
    })
}

fn api_key(key: store::api_key::Model) -> ApiKey {
    ApiKey {
        id: ID::from(key.id),
        name: key.name,
        prefix: key.prefix,
        role: key.role,
        organization: key.partner_id.map(|id| Partner { id: ID::from(id) }),
        created_at: key.created_at,
        expires_at: key.expires_at,
        revoked_at: key.revoked_at,
        last_used_at: key.last_used_at,
    }
}

fn directory<'a>(ctx: &Context<'a>) -> ApiResult<&'a Directory> {
    ctx.data::<Directory>()
        .map_err(|_| ApiError::internal("the identity subgraph has no directory"))
}

fn signed_in(principal: &Principal) -> ApiResult<()> {
    if principal.is_signed_in() {
        Ok(())
    } else {
        Err(ApiError::denied("UNAUTHENTICATED", "sign in first"))
    }
}

/// Whose keys the caller manages: every key (an admin), one partner's (a partner admin),
/// or none.
enum KeyScope {
    All,
    Partner(String),
}

fn key_scope(principal: &Principal) -> ApiResult<KeyScope> {
    signed_in(principal)?;
    match (principal.kind, &principal.partner_id) {
        (PrincipalKind::Internal, _) if principal.has_role("admin") => Ok(KeyScope::All),
        (PrincipalKind::Supplier | PrincipalKind::Distributor, Some(partner))
            if principal.has_role("partner_admin") =>
        {
            Ok(KeyScope::Partner(partner.clone()))
        }
        _ => Err(ApiError::denied(
            "FORBIDDEN",
            "only an admin or a partner admin manages API keys",
        )),
    }
}

fn session(ctx: &Context<'_>, opened: Opened) -> ApiResult<Session> {
    let issuer = ctx
        .data::<Arc<TokenIssuer>>()
        .map_err(|_| ApiError::internal("the identity subgraph has no token issuer"))?;
    let directory = directory(ctx)?;
    let access_token = issuer.issue(
        &opened.user.id,
        Some(&opened.session.id),
        ACCESS_TOKEN_SECONDS,
    );
    Ok(Session {
        access_token,
        token_type: "Bearer".into(),
        expires_at: directory.now() + chrono::Duration::seconds(ACCESS_TOKEN_SECONDS),
        refresh_token: opened.refresh_token,
        me: me_of_user(&opened.user)?,
    })
}

#[derive(Default)]
pub struct Query;

#[Object]
impl Query {
    /// Who I am, my organisation and my roles; null when not signed in.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Me>> {
        let principal = Principal::of(ctx);
        match principal.kind {
            PrincipalKind::Anonymous => Ok(None),
            PrincipalKind::Integrator => Ok(Some(Me {
                id: ID::from(&principal.subject),
                kind: CallerKind::Integrator,
                email: None,
                display_name: directory(ctx)?
                    .api_key(&principal.subject)
                    .await?
                    .map(|key| key.name),
                roles: principal.roles.clone(),
                organization: principal
                    .partner_id
                    .as_ref()
                    .map(|id| Partner { id: ID::from(id) }),
            })),
            _ => match directory(ctx)?.user(&principal.subject).await? {
                Some(user) => Ok(Some(me_of_user(&user)?)),
                None => Ok(None),
            },
        }
    }

    /// API keys, newest first: an admin sees every key, a partner admin its partner's.
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let partner = match key_scope(&Principal::of(ctx))? {
            KeyScope::All => None,
            KeyScope::Partner(partner) => Some(partner),
        };
        Ok(directory(ctx)?
            .api_keys(partner.as_deref())
            .await?
            .into_iter()
            .map(api_key)
            .collect())
    }
}

#[derive(Default)]
pub struct Mutation;

#[Object]
impl Mutation {
    /// Signs in with email and password.
    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<Session> {
        if email.len() > 254 || password.len() > 1024 {
            return Err(ApiError::denied(
                "INVALID_CREDENTIALS",
                "the email or the password is wrong",
            )
            .into());
        }
        let opened = directory(ctx)?.sign_in(&email, &password).await?;
        Ok(session(ctx, opened)?)
    }

    /// Trades a refresh token for a new access token and a new refresh token.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<Session> {
        let opened = directory(ctx)?.refresh(&refresh_token).await?;
        Ok(session(ctx, opened)?)
    }

    /// Ends the caller's session: its access and refresh tokens stop working.
    async fn sign_out(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let principal = Principal::of(ctx);
        signed_in(&principal)?;
        let Some(session_id) = &principal.session_id else {
            return Err(ApiError::denied(
                "INVALID_STATE",
                "this caller did not sign in with a password (API keys are revoked instead)",
            )
            .into());
        };
        directory(ctx)?.sign_out(session_id).await?;
        Ok(true)
    }

    /// Creates an API key for an integrator. The secret is in the answer and nowhere else.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreatedApiKey> {
        let principal = Principal::of(ctx);
        let scope = key_scope(&principal)?;
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 120 {
            return Err(ApiError::validation("input.name", "must be 1 to 120 characters").into());
        }
        let partner_id = match scope {
            KeyScope::All => input.partner_id.map(|id| id.to_string()),
            KeyScope::Partner(own) => {
                if input
                    .partner_id
                    .as_ref()
                    .is_some_and(|id| id.as_str() != own)
                {
                    // Another partner's organisation is answered as if it did not exist.
                    return Err(ApiError::NotFound.into());
                }
                Some(own)
            }
        };
        let allowed = if partner_id.is_some() {
            PARTNER_ROLES
        } else {
            INTERNAL_ROLES
        };
        if !allowed.contains(&input.role.as_str()) {
            return Err(ApiError::validation(
                "input.role",
                format!("must be one of {}", allowed.join(", ")),
            )
            .into());
        }
        let directory = directory(ctx)?;
        if input.expires_at.is_some_and(|at| at <= directory.now()) {
            return Err(ApiError::validation("input.expiresAt", "must be in the future").into());
        }
        let (key, secret) = directory
            .create_api_key(
                name,
                &input.role,
                partner_id,
                &principal.subject,
                input.expires_at,
            )
            .await?;
        Ok(CreatedApiKey {
            key: api_key(key),
            secret,
        })
    }

    /// Revokes an API key: it is refused from the next request on.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let scope = key_scope(&Principal::of(ctx))?;
        let directory = directory(ctx)?;
        let key = directory.api_key(&id).await?.ok_or(ApiError::NotFound)?;
        if let KeyScope::Partner(own) = scope
            && key.partner_id.as_deref() != Some(own.as_str())
        {
            return Err(ApiError::NotFound.into());
        }
        Ok(api_key(directory.revoke_api_key(&key.id).await?))
    }
}

pub type IdentitySchema = async_graphql::Schema<Query, Mutation, async_graphql::EmptySubscription>;

/// The identity subgraph's schema over the directory.
pub fn schema(directory: Directory, issuer: Arc<TokenIssuer>) -> IdentitySchema {
    crm_service_common::graphql::subgraph_limits(async_graphql::Schema::build(
        Query,
        Mutation,
        async_graphql::EmptySubscription,
    ))
    .data(directory)
    .data(issuer)
    .finish()
}

/// The identity subgraph's SDL (committed as `schema/identity.graphql`).
pub fn sdl() -> String {
    crm_service_common::graphql::subgraph_sdl::<Query, Mutation>()
}
