//! The identity subgraph: `me`, sign-in, refresh and sign-out, and integrators' API keys.
//! It runs beside the other subgraphs (behind the gateway, with the gateway's token) and
//! reads the caller only from its `Principal`.

use crm_contract::ErrorCode;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use crm_service_common::access::{Action, Scope};
use crm_service_common::principal::{Principal, PrincipalKind};
use crm_service_common::{ApiError, ApiResult};

use super::store::{
    self, ACCESS_TOKEN_SECONDS, Directory, INTERNAL_ROLES, INVITATION_SECONDS, MIN_PASSWORD_CHARS,
    Opened, PARTNER_ROLES,
};
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
    /// What I may see and change, type by type, in plain words: generated from the access
    /// policy in force (its version is `policyVersion`).
    pub can_see: Vec<String>,
    /// What I may do, type by type, as the policy in force decides it for my roles: the UI
    /// offers only these actions (it never re-codes the policy).
    pub may: May,
    pub policy_version: u64,
    /// My time zone (an IANA name such as `Europe/Berlin`; `UTC` until I set one): the web
    /// shows times in it and counts "today" by it.
    pub time_zone: String,
    /// My locale (a language tag such as `de-DE`; `en-US` until I set one): the web
    /// writes numbers and amounts by it.
    pub locale: String,
}

/// The types a caller may read and change (by some rule of the policy; which records of
/// them is the rule's scope, and a record's own `may` says it for that record).
#[derive(SimpleObject, Clone, Default)]
pub struct May {
    /// Type names (`Account`, `Shipment`, …) the caller may read some records of.
    pub read: Vec<String>,
    /// Type names the caller may create or change some records of.
    pub write: Vec<String>,
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

/// Where an invitation stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum InvitationStatus {
    Open,
    Redeemed,
    Revoked,
    Expired,
}

#[derive(SimpleObject, Clone)]
pub struct Invitation {
    pub id: ID,
    pub email: String,
    pub kind: CallerKind,
    pub role: String,
    pub organization: Option<Partner>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: InvitationStatus,
}

/// A new invitation with the token that redeems it: hand it to the invitee (this
/// product sends no email); it is shown this once.
#[derive(SimpleObject)]
pub struct CreatedInvitation {
    pub invitation: Invitation,
    pub token: String,
}

#[derive(InputObject)]
pub struct InviteUserInput {
    pub email: String,
    /// A department role, or a partner role when inviting a partner's user.
    pub role: String,
    /// The partner the user will belong to; a partner admin always invites to its own.
    pub partner_id: Option<ID>,
    /// SUPPLIER or DISTRIBUTOR: what the partner is, when an admin invites a partner's
    /// user (a partner admin's invitees are of its own kind).
    pub kind: Option<CallerKind>,
    /// When the invitation lapses (default: in seven days).
    pub expires_at: Option<DateTime<Utc>>,
}

fn invitation(row: store::invitation::Model, now: DateTime<Utc>) -> ApiResult<Invitation> {
    let status = if row.redeemed_at.is_some() {
        InvitationStatus::Redeemed
    } else if row.revoked_at.is_some() {
        InvitationStatus::Revoked
    } else if row.expires_at <= now {
        InvitationStatus::Expired
    } else {
        InvitationStatus::Open
    };
    Ok(Invitation {
        id: ID::from(row.id),
        email: row.email,
        kind: kind_of(&row.kind)
            .ok_or_else(|| ApiError::internal("an invitation without a kind"))?,
        role: row.role,
        organization: partner(row.partner_id),
        created_at: row.created_at,
        expires_at: row.expires_at,
        status,
    })
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
        roles: user.role_list(),
        organization: partner(user.partner_id.clone()),
        can_see: Vec::new(),
        may: May::default(),
        policy_version: 0,
        time_zone: user.time_zone.clone(),
        locale: user.locale.clone(),
    })
}

/// A user of the directory, as an entity other subgraphs can extend (the account service
/// explains, from `kind`, `roles` and `partnerId`, what this user may see and why).
#[derive(SimpleObject, Clone)]
#[graphql(name = "DirectoryUser", complex)]
pub struct DirectoryUser {
    pub id: ID,
    pub email: String,
    pub display_name: String,
    /// `internal`, `supplier` or `distributor`.
    pub kind: String,
    pub roles: Vec<String>,
    pub partner_id: Option<ID>,
    pub disabled: bool,
    #[graphql(skip)]
    pub model: user::Model,
}

#[async_graphql::ComplexObject]
impl DirectoryUser {
    /// What this user may see, type by type, in plain words: the same sentences as their
    /// own `me.canSee`, generated from the policy in force.
    async fn can_see(&self) -> async_graphql::Result<Vec<String>> {
        let who = Principal::from_caller(&self.model.caller(None));
        Ok(with_summary(me_of_user(&self.model)?, &who).await?.can_see)
    }
}

/// A named list view of the signed-in user: the list page it belongs to and its query
/// string (filters and sort), as the web UI saves them.
#[derive(SimpleObject, Clone)]
pub struct SavedView {
    pub id: ID,
    pub page: String,
    pub name: String,
    pub query: String,
    pub created_at: DateTime<Utc>,
}

impl From<store::saved_view::Model> for SavedView {
    fn from(v: store::saved_view::Model) -> Self {
        Self {
            id: ID::from(v.id),
            page: v.page,
            name: v.name,
            query: v.query,
            created_at: v.created_at,
        }
    }
}

/// A saved view's page name: a short lowercase slug (`accounts`, `orders`).
fn check_view_page(page: &str) -> ApiResult<()> {
    let ok = (1..=32).contains(&page.len())
        && page
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "page",
            "must be 1 to 32 lowercase letters, digits or dashes",
        ))
    }
}

impl From<&user::Model> for DirectoryUser {
    fn from(u: &user::Model) -> Self {
        Self {
            model: u.clone(),
            id: ID::from(&u.id),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            kind: u.kind.clone(),
            roles: u.role_list(),
            partner_id: u.partner_id.clone().map(ID::from),
            disabled: u.disabled,
        }
    }
}

/// The user `id` when the caller may see them: itself, or as an admin or partner admin.
async fn visible_user(ctx: &Context<'_>, id: &str) -> ApiResult<Option<user::Model>> {
    let who = Principal::of(ctx);
    signed_in(&who)?;
    let Some(user) = directory(ctx)?.user(id).await? else {
        return Ok(None);
    };
    let allowed = user.id == who.subject
        || match managed_scope(&who, "User", Action::Read).await {
            Ok(ManagedScope::All) => true,
            Ok(ManagedScope::Partner(partner)) => user.partner_id.as_deref() == Some(&partner),
            Err(_) => false,
        };
    Ok(allowed.then_some(user))
}

/// The plain-language summary of what `who` may see, from the policy in force.
async fn with_summary(mut me: Me, who: &Principal) -> ApiResult<Me> {
    let policy = crm_policies::current().await.map_err(ApiError::internal)?;
    me.policy_version = policy.version();
    let summary = match crm_service_common::access::domain(who) {
        Some(domain) => policy.summary(domain, &who.roles),
        None => Vec::new(),
    };
    me.can_see = summary
        .iter()
        .map(crm_policies::TypeAccess::sentence)
        .collect();
    let types = |granted: fn(&crm_policies::TypeAccess) -> bool| {
        summary
            .iter()
            .filter(|access| granted(access))
            .map(|access| access.ty.to_owned())
            .collect()
    };
    me.may = May {
        read: types(|access| !access.read.is_empty()),
        write: types(|access| !access.write.is_empty()),
    };
    Ok(me)
}

/// The organisation stub of a partner id.
pub(crate) fn partner(id: Option<String>) -> Option<Partner> {
    id.map(|id| Partner { id: ID::from(id) })
}

fn api_key(key: store::api_key::Model) -> ApiKey {
    ApiKey {
        id: ID::from(key.id),
        name: key.name,
        prefix: key.prefix,
        role: key.role,
        organization: partner(key.partner_id),
        created_at: key.created_at,
        expires_at: key.expires_at,
        revoked_at: key.revoked_at,
        last_used_at: key.last_used_at,
    }
}

pub(crate) fn directory<'a>(ctx: &Context<'a>) -> ApiResult<&'a Directory> {
    ctx.data::<Directory>()
        .map_err(|_| ApiError::internal("the identity subgraph has no directory"))
}

pub(crate) fn signed_in(principal: &Principal) -> ApiResult<()> {
    if principal.is_signed_in() {
        Ok(())
    } else {
        Err(ApiError::denied(
            ErrorCode::Unauthenticated,
            "sign in first",
        ))
    }
}

/// Whose directory records (users, API keys, invitations) the caller may read or change:
/// everyone's, one partner's, or none.
#[derive(Clone)]
pub(crate) enum ManagedScope {
    All,
    Partner(String),
}

/// What the policy in force grants the caller on `ty` (`User`, `ApiKey`, `Invitation`) for
/// `action`: scope `all` is everyone's records, `own_org` its own organisation's; no rule,
/// no access. The directory asks the policy like every other service does, so an edit of
/// these rules applies here too.
pub(crate) async fn managed_scope(
    principal: &Principal,
    ty: &str,
    action: Action,
) -> ApiResult<ManagedScope> {
    signed_in(principal)?;
    let scopes = crm_service_common::access::decide(principal, ty, action)
        .await?
        .scopes();
    if scopes.contains(&Scope::All) {
        return Ok(ManagedScope::All);
    }
    match &principal.partner_id {
        Some(partner) if scopes.contains(&Scope::OwnOrg) => {
            Ok(ManagedScope::Partner(partner.clone()))
        }
        _ => Err(ApiError::denied(
            ErrorCode::Forbidden,
            "only an admin or a partner admin manages users, API keys, invitations and webhooks",
        )),
    }
}

/// The organisation a new binding (an API key, a webhook) acts for: the one asked for (none:
/// the company) when the caller manages every organisation's, and its own otherwise (another
/// partner's is answered as if it did not exist).
pub(crate) fn bound_organisation(
    scope: ManagedScope,
    requested: Option<ID>,
) -> ApiResult<Option<String>> {
    match scope {
        ManagedScope::All => Ok(requested.map(|id| id.to_string())),
        ManagedScope::Partner(own) => match requested {
            Some(id) if id.as_str() != own => Err(ApiError::NotFound),
            _ => Ok(Some(own)),
        },
    }
}

/// A role someone may be given: a partner role for a partner's user or key, a department
/// role otherwise.
pub(crate) fn check_role(for_partner: bool, role: &str) -> ApiResult<()> {
    let allowed = if for_partner {
        PARTNER_ROLES
    } else {
        INTERNAL_ROLES
    };
    if allowed.contains(&role) {
        Ok(())
    } else {
        Err(ApiError::validation(
            "input.role",
            format!("must be one of {}", allowed.join(", ")),
        ))
    }
}

async fn session(ctx: &Context<'_>, opened: Opened) -> ApiResult<Session> {
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
        me: with_summary(
            me_of_user(&opened.user)?,
            &Principal::from_caller(&opened.user.caller(None)),
        )
        .await?,
    })
}

#[derive(Default)]
pub struct DirectoryQuery;

#[Object]
impl DirectoryQuery {
    /// One user of the directory: admins see anyone, a partner admin its organisation's
    /// users, anyone else only themselves; null otherwise (as for a user that does not
    /// exist).
    async fn directory_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<DirectoryUser>> {
        Ok(visible_user(ctx, &id)
            .await?
            .as_ref()
            .map(DirectoryUser::from))
    }

    /// Federation: a user by id, under the same rule as `directoryUser`.
    #[graphql(entity)]
    async fn find_directory_user_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<DirectoryUser>> {
        Ok(visible_user(ctx, &id)
            .await?
            .as_ref()
            .map(DirectoryUser::from))
    }

    /// Who I am, my organisation and my roles; null when not signed in.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Me>> {
        let principal = Principal::of(ctx);
        if principal.kind == PrincipalKind::Anonymous {
            return Ok(None);
        }
        let directory = directory(ctx)?;
        // An API key bound to a partner reaches here as its partner's kind (the door
        // decides in that domain), so a key is recognised by its id, not its kind.
        if let Some(key) = directory.api_key(&principal.subject).await? {
            let me = Me {
                id: ID::from(&principal.subject),
                kind: CallerKind::Integrator,
                email: None,
                display_name: Some(key.name),
                roles: principal.roles.clone(),
                organization: partner(principal.partner_id.clone()),
                can_see: Vec::new(),
                may: May::default(),
                policy_version: 0,
                time_zone: "UTC".into(),
                locale: "en-US".into(),
            };
            return Ok(Some(with_summary(me, &principal).await?));
        }
        match directory.user(&principal.subject).await? {
            Some(user) => Ok(Some(with_summary(me_of_user(&user)?, &principal).await?)),
            None => Ok(None),
        }
    }

    /// Invitations, newest first: an admin sees all, a partner admin its partner's.
    async fn invitations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Invitation>> {
        let partner = match managed_scope(&Principal::of(ctx), "Invitation", Action::Read).await? {
            ManagedScope::All => None,
            ManagedScope::Partner(partner) => Some(partner),
        };
        let directory = directory(ctx)?;
        let now = directory.now();
        Ok(directory
            .invitations(partner.as_deref())
            .await?
            .into_iter()
            .map(|row| invitation(row, now))
            .collect::<ApiResult<_>>()?)
    }

    /// Users of the directory: an admin sees everyone (or one partner's users with
    /// `partnerId`), a partner admin its own organisation's users.
    async fn directory_users(
        &self,
        ctx: &Context<'_>,
        partner_id: Option<ID>,
    ) -> async_graphql::Result<Vec<DirectoryUser>> {
        let partner = match (
            managed_scope(&Principal::of(ctx), "User", Action::Read).await?,
            partner_id,
        ) {
            (ManagedScope::All, wanted) => wanted.map(|id| id.to_string()),
            (ManagedScope::Partner(own), Some(wanted)) if wanted.as_str() != own => {
                return Ok(Vec::new());
            }
            (ManagedScope::Partner(own), _) => Some(own),
        };
        Ok(directory(ctx)?
            .users(partner.as_deref())
            .await?
            .iter()
            .map(DirectoryUser::from)
            .collect())
    }

    /// The signed-in user's saved views of one list page, by name.
    async fn saved_views(
        &self,
        ctx: &Context<'_>,
        page: String,
    ) -> async_graphql::Result<Vec<SavedView>> {
        let who = Principal::of(ctx);
        signed_in(&who)?;
        check_view_page(&page)?;
        Ok(directory(ctx)?
            .saved_views(&who.subject, &page)
            .await?
            .into_iter()
            .map(SavedView::from)
            .collect())
    }

    /// API keys, newest first: an admin sees every key, a partner admin its partner's.
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let partner = match managed_scope(&Principal::of(ctx), "ApiKey", Action::Read).await? {
            ManagedScope::All => None,
            ManagedScope::Partner(partner) => Some(partner),
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
pub struct DirectoryMutation;

#[Object]
impl DirectoryMutation {
    /// Signs in with email and password.
    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<Session> {
        if email.len() > 254 || password.len() > 1024 {
            return Err(ApiError::denied(
                ErrorCode::InvalidCredentials,
                "the email or the password is wrong",
            )
            .into());
        }
        let source = Principal::of(ctx).source.clone();
        let opened = directory(ctx)?
            .sign_in(&email, &password, source.as_deref())
            .await?;
        Ok(session(ctx, opened).await?)
    }

    /// Sets my time zone (an IANA name such as `Pacific/Auckland`).
    async fn set_my_time_zone(
        &self,
        ctx: &Context<'_>,
        time_zone: String,
    ) -> async_graphql::Result<Me> {
        let zone = time_zone.trim();
        if zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ApiError::validation(
                "timeZone",
                "is not a time zone name such as Europe/Berlin or Pacific/Auckland",
            )
            .into());
        }
        set_my_preference(ctx, crate::user::Column::TimeZone, "a time zone", zone).await
    }

    /// Sets my locale: a language tag of a language and a region, such as `de-DE` or
    /// `en-GB` (the web writes numbers and amounts by it).
    async fn set_my_locale(&self, ctx: &Context<'_>, locale: String) -> async_graphql::Result<Me> {
        let tag = locale.trim();
        if !is_language_tag(tag) {
            return Err(ApiError::validation(
                "locale",
                "is not a language tag such as en-US or de-DE",
            )
            .into());
        }
        set_my_preference(ctx, crate::user::Column::Locale, "a locale", tag).await
    }

    /// Trades a refresh token for a new access token and a new refresh token.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<Session> {
        let opened = directory(ctx)?.refresh(&refresh_token).await?;
        Ok(session(ctx, opened).await?)
    }

    /// Ends the caller's session: its access and refresh tokens stop working.
    async fn sign_out(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let principal = Principal::of(ctx);
        signed_in(&principal)?;
        let Some(session_id) = &principal.session_id else {
            return Err(ApiError::denied(
                ErrorCode::InvalidState,
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
        let scope = managed_scope(&principal, "ApiKey", Action::Create).await?;
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 120 {
            return Err(ApiError::validation("input.name", "must be 1 to 120 characters").into());
        }
        let partner_id = bound_organisation(scope, input.partner_id)?;
        check_role(partner_id.is_some(), &input.role)?;
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

    /// Invites someone by email to join with a role. The answer holds the token that
    /// redeems the invitation (once).
    async fn invite_user(
        &self,
        ctx: &Context<'_>,
        input: InviteUserInput,
    ) -> async_graphql::Result<CreatedInvitation> {
        let principal = Principal::of(ctx);
        let scope = managed_scope(&principal, "Invitation", Action::Create).await?;
        let email = crm_service_common::domain::email("input.email", &input.email)?;
        let (kind, partner_id) = match scope.clone() {
            ManagedScope::All => match input.partner_id {
                None => ("internal", None),
                Some(partner) => match input.kind {
                    Some(CallerKind::Supplier) => ("supplier", Some(partner.to_string())),
                    Some(CallerKind::Distributor) => ("distributor", Some(partner.to_string())),
                    _ => {
                        return Err(ApiError::validation(
                            "input.kind",
                            "must be SUPPLIER or DISTRIBUTOR for a partner's user",
                        )
                        .into());
                    }
                },
            },
            ManagedScope::Partner(own) => {
                if input
                    .partner_id
                    .as_ref()
                    .is_some_and(|id| id.as_str() != own)
                {
                    // Another partner's organisation is answered as if it did not exist.
                    return Err(ApiError::NotFound.into());
                }
                (principal.kind.as_str(), Some(own))
            }
        };
        check_role(partner_id.is_some(), &input.role)?;
        let directory = directory(ctx)?;
        let now = directory.now();
        let expires_at = input
            .expires_at
            .unwrap_or(now + chrono::Duration::seconds(INVITATION_SECONDS));
        if expires_at <= now {
            return Err(ApiError::validation("input.expiresAt", "must be in the future").into());
        }
        // A user the inviter can list already is named as a duplicate; anyone else's
        // address (staff, another partner's user) is invited like a new one, and that
        // invitation is refused only when redeemed: the inviter learns nothing of them.
        if let Some(existing) = directory.user_by_email(&email).await?
            && match &scope {
                ManagedScope::All => true,
                ManagedScope::Partner(own) => existing.partner_id.as_deref() == Some(own.as_str()),
            }
        {
            return Err(ApiError::Duplicate {
                field: "input.email".into(),
            }
            .into());
        }
        let (row, token) = directory
            .invite(
                &email,
                kind,
                partner_id,
                &input.role,
                &principal.subject,
                expires_at,
            )
            .await?;
        Ok(CreatedInvitation {
            invitation: invitation(row, now)?,
            token,
        })
    }

    /// Revokes an open invitation: it can no longer be redeemed.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Invitation> {
        let scope = managed_scope(&Principal::of(ctx), "Invitation", Action::Archive).await?;
        let directory = directory(ctx)?;
        let found = directory.invitation(&id).await?.ok_or(ApiError::NotFound)?;
        if let ManagedScope::Partner(own) = scope
            && found.partner_id.as_deref() != Some(own.as_str())
        {
            return Err(ApiError::NotFound.into());
        }
        let row = directory.revoke_invitation(&found.id).await?;
        Ok(invitation(row, directory.now())?)
    }

    /// Redeems an invitation: creates the account with this password and signs it in.
    async fn redeem_invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
        display_name: String,
        password: String,
    ) -> async_graphql::Result<Session> {
        let display_name = display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 200 {
            return Err(ApiError::validation("displayName", "must be 1 to 200 characters").into());
        }
        let length = password.chars().count();
        if !(MIN_PASSWORD_CHARS..=1024).contains(&length) {
            return Err(ApiError::validation(
                "password",
                format!("must be {MIN_PASSWORD_CHARS} to 1024 characters"),
            )
            .into());
        }
        let hash = store::hash_password(&password).map_err(ApiError::internal)?;
        let opened = directory(ctx)?
            .redeem_invitation(&token, display_name, hash)
            .await?;
        Ok(session(ctx, opened).await?)
    }

    /// Deactivates (`disabled: true`) or reactivates a user: an admin any user, a partner
    /// admin its colleagues. A deactivated user's sessions end at once. Nobody deactivates
    /// themselves.
    async fn set_user_disabled(
        &self,
        ctx: &Context<'_>,
        id: ID,
        disabled: bool,
    ) -> async_graphql::Result<DirectoryUser> {
        let who = Principal::of(ctx);
        let scope = managed_scope(&who, "User", Action::Update).await?;
        let directory = directory(ctx)?;
        let user = directory.user(&id).await?.ok_or(ApiError::NotFound)?;
        if let ManagedScope::Partner(own) = scope
            && user.partner_id.as_deref() != Some(own.as_str())
        {
            return Err(ApiError::NotFound.into());
        }
        if user.id == who.subject {
            return Err(ApiError::InvalidState {
                message: "you cannot deactivate yourself".into(),
            }
            .into());
        }
        // A key acts for its owner and ends with it: it cannot revive or disable them.
        if let Some(key) = directory.api_key(&who.subject).await?
            && key.created_by == user.id
        {
            return Err(ApiError::denied(
                ErrorCode::Forbidden,
                "a key cannot change the user who owns it",
            )
            .into());
        }
        Ok(DirectoryUser::from(
            &directory.set_disabled(&user.id, disabled).await?,
        ))
    }

    /// Saves a list view for the signed-in user; saving under an existing name replaces
    /// that view's query.
    async fn save_view(
        &self,
        ctx: &Context<'_>,
        page: String,
        name: String,
        query: String,
    ) -> async_graphql::Result<SavedView> {
        let who = Principal::of(ctx);
        signed_in(&who)?;
        check_view_page(&page)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 80 {
            return Err(ApiError::validation("name", "must be 1 to 80 characters").into());
        }
        if query.len() > 1000 || query.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "query",
                "must be at most 1000 characters, without control characters",
            )
            .into());
        }
        Ok(directory(ctx)?
            .save_view(&who.subject, &page, name, &query)
            .await?
            .into())
    }

    /// Deletes one of the signed-in user's saved views.
    async fn delete_saved_view(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let who = Principal::of(ctx);
        signed_in(&who)?;
        directory(ctx)?.delete_view(&who.subject, &id).await?;
        Ok(true)
    }

    /// Revokes an API key: it is refused from the next request on.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let scope = managed_scope(&Principal::of(ctx), "ApiKey", Action::Archive).await?;
        let directory = directory(ctx)?;
        let key = directory.api_key(&id).await?.ok_or(ApiError::NotFound)?;
        if let ManagedScope::Partner(own) = scope
            && key.partner_id.as_deref() != Some(own.as_str())
        {
            return Err(ApiError::NotFound.into());
        }
        Ok(api_key(directory.revoke_api_key(&key.id).await?))
    }

    /// Makes the caller the owner of a key of an organisation it manages, so that the key
    /// keeps working after its creator leaves or loses the right to grant it. A key is
    /// owned by a person: keys cannot take keys over.
    async fn take_over_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let who = Principal::of(ctx);
        let scope = managed_scope(&who, "ApiKey", Action::Update).await?;
        let directory = directory(ctx)?;
        if directory.api_key(&who.subject).await?.is_some() {
            return Err(ApiError::denied(
                ErrorCode::Forbidden,
                "a key cannot own keys; sign in as an admin to take one over",
            )
            .into());
        }
        let key = directory.api_key(&id).await?.ok_or(ApiError::NotFound)?;
        if let ManagedScope::Partner(own) = scope
            && key.partner_id.as_deref() != Some(own.as_str())
        {
            return Err(ApiError::NotFound.into());
        }
        Ok(api_key(
            directory.take_over_api_key(key, &who.subject).await?,
        ))
    }
}

/// The identity subgraph's root types: the directory, and the access policy.
#[derive(async_graphql::MergedObject, Default)]
pub struct Query(
    DirectoryQuery,
    crate::policy::graphql::PolicyQuery,
    crate::webhooks::graphql::WebhookQuery,
    crate::imports::graphql::ImportQuery,
);

#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    DirectoryMutation,
    crate::policy::graphql::PolicyMutation,
    crate::webhooks::graphql::WebhookMutation,
    crate::imports::graphql::ImportMutation,
);

pub type IdentitySchema = async_graphql::Schema<Query, Mutation, async_graphql::EmptySubscription>;

/// The identity subgraph's schema over the directory.
pub fn schema(
    directory: Directory,
    issuer: Arc<TokenIssuer>,
    policy: crate::policy::PolicyStore,
    (webhooks, listening, wake): (
        crate::webhooks::WebhookSettings,
        crate::webhooks::Listening,
        Arc<tokio::sync::Notify>,
    ),
) -> IdentitySchema {
    crm_service_common::graphql::subgraph_limits(async_graphql::Schema::build(
        Query::default(),
        Mutation::default(),
        async_graphql::EmptySubscription,
    ))
    .data(directory)
    .data(issuer)
    .data(policy)
    .data(webhooks)
    .data(listening)
    .data(crate::webhooks::graphql::Wake(wake))
    .finish()
}

/// The identity subgraph's SDL (committed as `schema/identity.graphql`).
pub fn sdl() -> String {
    crm_service_common::graphql::subgraph_sdl::<Query, Mutation>()
}

/// `ll-CC`: a two-letter language in lower case and a two-letter region in upper case.
fn is_language_tag(tag: &str) -> bool {
    let Some((language, region)) = tag.split_once('-') else {
        return false;
    };
    language.len() == 2
        && region.len() == 2
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && region.bytes().all(|b| b.is_ascii_uppercase())
}

/// Sets one of the signed-in user's own preferences (`column`, already checked): only a
/// user has them, not an API key or nobody.
async fn set_my_preference(
    ctx: &Context<'_>,
    column: crate::user::Column,
    what: &str,
    value: &str,
) -> async_graphql::Result<Me> {
    let principal = Principal::of(ctx);
    let directory = directory(ctx)?;
    if principal.kind == PrincipalKind::Anonymous
        || directory.api_key(&principal.subject).await?.is_some()
    {
        return Err(ApiError::denied(
            ErrorCode::Forbidden,
            format!("only a signed-in user has {what}"),
        )
        .into());
    }
    let user = directory
        .set_preference(&principal.subject, column, value)
        .await?;
    Ok(with_summary(me_of_user(&user)?, &principal).await?)
}

#[cfg(test)]
mod locale_tests {
    #[test]
    fn a_locale_is_a_language_and_a_region() {
        assert!(super::is_language_tag("de-DE"));
        assert!(super::is_language_tag("en-GB"));
        assert!(!super::is_language_tag("de"));
        assert!(!super::is_language_tag("DE-de"));
        assert!(!super::is_language_tag("de-DE-x"));
        assert!(!super::is_language_tag("<b>-XX"));
    }
}
