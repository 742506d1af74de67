//! The directory's people: users and invitations (admins for everyone, partner admins for
//! their colleagues) and integrators' API keys (admins).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use serde::Deserialize;

use super::super::{InApp, PageError, PageResult, Side, Signed, refused_if};
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Area, Chrome, Ctx, FormErrors, render};
use super::{Choice, Label, When, param, plausible_id, words};

const INTERNAL_ROLES: &[&str] = &["sales", "marketing", "support", "management", "admin"];
const PARTNER_ROLES: &[&str] = &["partner_user", "partner_manager", "partner_admin"];

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct UserRow {
    id: String,
    email: String,
    display_name: String,
    roles: Vec<String>,
    partner_id: Option<String>,
    disabled: bool,
    #[serde(skip)]
    organization: String,
    #[serde(skip)]
    is_me: bool,
}

impl UserRow {
    fn role_names(&self) -> String {
        self.roles
            .iter()
            .map(|r| words(r))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct InvitationRow {
    id: String,
    email: String,
    role: String,
    organization: Option<IdOnly>,
    expires_at: When,
    status: Label,
    #[serde(skip)]
    organization_name: String,
}

#[derive(Deserialize, Clone)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize, Clone)]
struct PartnerChoice {
    id: String,
    name: String,
    kind: String,
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    chrome: Chrome,
    action: &'static str,
    users: Vec<UserRow>,
    invitations: Vec<InvitationRow>,
    roles: Vec<Choice>,
    partners: Vec<Choice>,
    admin: bool,
    email: String,
    errors: FormErrors,
    created_link: Option<String>,
    filter_partner: String,
}

#[derive(Deserialize, Default)]
pub struct PeopleQuery {
    partner: Option<String>,
}

#[derive(Default)]
struct InviteState {
    email: String,
    role: String,
    partner: String,
    errors: FormErrors,
    created_link: Option<String>,
}

fn people_base(area: Area) -> &'static str {
    match area {
        Area::App => "/app/admin/users",
        Area::Portal => "/portal/users",
    }
}

/// The refusal for a caller who does not manage users here; `None` when they do.
fn check_manages_users(ctx: &Ctx) -> Result<(), PageError> {
    if ctx.me.manages_users() {
        Ok(())
    } else {
        Err(ctx.refuse(ApiFailure::Forbidden(
            "Only an admin (or a partner's admin, for its colleagues) manages users.".into(),
        )))
    }
}

async fn people(
    ctx: Ctx,
    filter_partner: Option<String>,
    state: InviteState,
    notice: Option<String>,
) -> PageResult {
    check_manages_users(&ctx)?;
    let admin = ctx.area == Area::App;
    let filter_partner = filter_partner.filter(|p| plausible_id(p));
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        directory_users: Vec<UserRow>,
        invitations: Vec<InvitationRow>,
        #[serde(default)]
        partners: Option<super::Conn<PartnerChoice>>,
    }
    let query = if admin {
        "query($p: ID) { directoryUsers(partnerId: $p) { id email displayName kind roles partnerId disabled } \
         invitations { id email role organization { id } expiresAt status } \
         partners(first: 200, orderBy: { field: NAME, direction: ASC }) { nodes { id name kind } } }"
    } else {
        "query($p: ID) { directoryUsers(partnerId: $p) { id email displayName kind roles partnerId disabled } \
         invitations { id email role organization { id } expiresAt status } }"
    };
    let mut data: Data = ctx.query(query, json!({ "p": filter_partner })).await?;
    let partners = data.partners.take().map(|c| c.nodes).unwrap_or_default();
    let name_of = |id: &Option<String>| match id {
        None => "Internal".to_owned(),
        Some(id) => partners
            .iter()
            .find(|p| &p.id == id)
            .map(|p| p.name.clone())
            .or_else(|| {
                ctx.me
                    .organization
                    .as_ref()
                    .filter(|o| &o.id == id)
                    .and_then(|o| o.name.clone())
            })
            .unwrap_or_else(|| id.clone()),
    };
    for user in &mut data.directory_users {
        user.organization = name_of(&user.partner_id);
        user.is_me = user.id == ctx.me.id;
    }
    let invitations = data
        .invitations
        .into_iter()
        .filter(|i| {
            filter_partner.is_none()
                || i.organization.as_ref().map(|o| &o.id) == filter_partner.as_ref()
        })
        .map(|mut i| {
            i.organization_name = name_of(&i.organization.as_ref().map(|o| o.id.clone()));
            i
        })
        .collect();
    let roles: Vec<&str> = if admin {
        INTERNAL_ROLES
            .iter()
            .chain(PARTNER_ROLES)
            .copied()
            .collect()
    } else {
        PARTNER_ROLES.to_vec()
    };
    let refused = state.errors.any();
    let mut chrome = ctx.chrome("Users");
    if notice.is_some() {
        chrome.notice = notice;
    }
    Ok(refused_if(
        refused,
        render(&PeoplePage {
            chrome,
            action: people_base(ctx.area),
            users: data.directory_users,
            invitations,
            roles: roles
                .iter()
                .map(|r| Choice {
                    value: (*r).into(),
                    label: words(r),
                    selected: state.role == *r,
                })
                .collect(),
            partners: partners
                .iter()
                .map(|p| Choice {
                    value: p.id.clone(),
                    label: format!("{} ({})", p.name, words(&p.kind)),
                    selected: state.partner == p.id,
                })
                .collect(),
            admin,
            email: state.email,
            errors: state.errors,
            created_link: state.created_link,
            filter_partner: filter_partner.unwrap_or_default(),
        }),
    ))
}

/// The people an admin (everyone, or one partner's with `?partner=`) or a partner admin
/// (its colleagues) manages.
pub async fn users<S: Side>(
    Signed(ctx, _): Signed<S>,
    Query(query): Query<PeopleQuery>,
) -> PageResult {
    let partner = param(&query.partner).filter(|_| ctx.area == Area::App);
    let state = InviteState {
        created_link: ctx.take_reveal(INVITATION_LINK).await,
        ..Default::default()
    };
    people(ctx, partner, state, None).await
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    partner: String,
}

pub async fn invite<S: Side>(
    Signed(ctx, _): Signed<S>,
    Form(form): Form<InviteForm>,
) -> PageResult {
    let area = ctx.area;
    ctx.check_csrf(&form.csrf)?;
    let mut input = serde_json::Map::new();
    input.insert("email".into(), json!(form.email.trim()));
    input.insert("role".into(), json!(form.role));
    if area == Area::App && !form.partner.is_empty() {
        input.insert("partnerId".into(), json!(form.partner));
        // The partner's kind, as the account service knows it.
        let kind: Result<Value, _> = ctx
            .api(
                "query($id: ID!) { partner(id: $id) { kind } }",
                json!({ "id": form.partner }),
            )
            .await;
        if let Ok(kind) = kind
            && let Some(kind) = kind["partner"]["kind"].as_str()
        {
            input.insert("kind".into(), json!(kind));
        }
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        invite_user: Created,
    }
    #[derive(Deserialize)]
    struct Created {
        token: String,
    }
    let outcome = ctx
        .api::<Data>(
            "mutation($input: InviteUserInput!) { inviteUser(input: $input) { token } }",
            json!({ "input": Value::Object(input) }),
        )
        .await;
    let mut state = InviteState {
        email: form.email.clone(),
        role: form.role.clone(),
        partner: form.partner.clone(),
        ..Default::default()
    };
    match outcome {
        Ok(data) => {
            let link = format!(
                "{}/invite?{}",
                ctx.origin,
                serde_urlencoded::to_string([("token", data.invite_user.token)])
                    .unwrap_or_default()
            );
            let notice = format!("Invited {}.", form.email.trim());
            ctx.see_other_revealing(people_base(area), &notice, INVITATION_LINK, &link)
                .await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(failure) => {
            state.errors =
                FormErrors::from_failure(failure).fold_unknown(&["email", "role", "partnerId"]);
            people(ctx, None, state, None).await
        }
    }
}

/// What an invitation's link is kept as, for the one page that shows it.
const INVITATION_LINK: &str = "invitation-link";
/// What an API key's secret is kept as, for the one page that shows it.
const API_KEY_SECRET: &str = "api-key-secret";

#[derive(Deserialize)]
pub struct AccessForm {
    #[serde(default)]
    csrf: String,
    /// `deactivate` or `reactivate`.
    #[serde(default)]
    action: String,
}

pub async fn set_disabled<S: Side>(
    Signed(ctx, _): Signed<S>,
    Path(id): Path<String>,
    Form(form): Form<AccessForm>,
) -> PageResult {
    let base = people_base(ctx.area);
    ctx.check_csrf(&form.csrf)?;
    let disabled = form.action != "reactivate";
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        set_user_disabled: Changed,
    }
    #[derive(Deserialize)]
    struct Changed {
        email: String,
    }
    match ctx
        .api::<Data>(
            "mutation($id: ID!, $d: Boolean!) { setUserDisabled(id: $id, disabled: $d) { email } }",
            json!({ "id": id, "d": disabled }),
        )
        .await
    {
        Ok(data) => {
            ctx.see_other(
                base,
                Some(&format!(
                    "{} {}.",
                    if disabled {
                        "Deactivated"
                    } else {
                        "Reactivated"
                    },
                    data.set_user_disabled.email
                )),
            )
            .await
        }
        Err(ApiFailure::Refused(message)) => ctx.see_other(base, Some(&message)).await,
        Err(failure) => Err(ctx.refuse(failure)),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn revoke_invitation<S: Side>(
    Signed(ctx, _): Signed<S>,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> PageResult {
    let base = people_base(ctx.area);
    ctx.check_csrf(&form.csrf)?;
    match ctx
        .api::<Value>(
            "mutation($id: ID!) { revokeInvitation(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await
    {
        Ok(_) => ctx.see_other(base, Some("Revoked the invitation.")).await,
        Err(ApiFailure::Refused(message)) => ctx.see_other(base, Some(&message)).await,
        Err(failure) => Err(ctx.refuse(failure)),
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    role: String,
    organization: Option<IdOnly>,
    created_at: When,
    expires_at: When,
    revoked_at: When,
    last_used_at: When,
}

#[derive(Template)]
#[template(path = "app/api_keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    roles: Vec<Choice>,
    partners: Vec<Choice>,
    name: String,
    expires: String,
    errors: FormErrors,
    secret: Option<String>,
}

/// The key form as posted (kept when refused), and the secret of a key just created.
#[derive(Default)]
struct KeyState {
    name: String,
    role: String,
    partner: String,
    expires: String,
    errors: FormErrors,
    secret: Option<String>,
}

async fn keys_page(ctx: Ctx, state: KeyState, notice: Option<String>) -> PageResult {
    if !ctx.me.manages_users() {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "API keys are managed by admins.".into(),
        )));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        api_keys: Vec<KeyRow>,
        partners: super::Conn<PartnerChoice>,
    }
    let data: Data = ctx
        .query(
            "query { apiKeys { id name prefix role organization { id } createdAt expiresAt revokedAt lastUsedAt } \
             partners(first: 200, orderBy: { field: NAME, direction: ASC }) { nodes { id name kind } } }",
            json!({}),
        )
        .await?;
    let refused = state.errors.any();
    let mut chrome = ctx.chrome("API keys");
    if notice.is_some() {
        chrome.notice = notice;
    }
    Ok(refused_if(
        refused,
        render(&KeysPage {
            chrome,
            keys: data.api_keys,
            roles: INTERNAL_ROLES
                .iter()
                .chain(PARTNER_ROLES)
                .map(|r| Choice {
                    value: (*r).into(),
                    label: words(r),
                    selected: state.role == *r,
                })
                .collect(),
            partners: data
                .partners
                .nodes
                .iter()
                .map(|p| Choice {
                    value: p.id.clone(),
                    label: p.name.clone(),
                    selected: state.partner == p.id,
                })
                .collect(),
            name: state.name,
            expires: state.expires,
            errors: state.errors,
            secret: state.secret,
        }),
    ))
}

pub async fn api_keys(Signed(ctx, _): Signed<InApp>) -> PageResult {
    let state = KeyState {
        secret: ctx.take_reveal(API_KEY_SECRET).await,
        ..Default::default()
    };
    keys_page(ctx, state, None).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    partner: String,
    /// A day (`YYYY-MM-DD`), the key's last.
    #[serde(default)]
    expires: String,
}

pub async fn create_api_key(
    Signed(ctx, _): Signed<InApp>,
    Form(form): Form<KeyForm>,
) -> PageResult {
    ctx.check_csrf(&form.csrf)?;
    let again = |errors: FormErrors| KeyState {
        name: form.name.clone(),
        role: form.role.clone(),
        partner: form.partner.clone(),
        expires: form.expires.clone(),
        errors,
        secret: None,
    };
    let expires = match end_of_day(&form.expires) {
        Ok(expires) => expires,
        Err(message) => {
            let errors = FormErrors {
                fields: vec![super::super::client::FieldError {
                    field: "expiresAt".into(),
                    message,
                }],
                general: None,
            };
            return keys_page(ctx, again(errors), None).await;
        }
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        create_api_key: Created,
    }
    #[derive(Deserialize)]
    struct Created {
        secret: String,
    }
    let input = json!({
        "name": form.name.trim(),
        "role": form.role,
        "partnerId": (!form.partner.is_empty()).then_some(&form.partner),
        "expiresAt": expires,
    });
    match ctx
        .api::<Data>(
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
            json!({ "input": input }),
        )
        .await
    {
        Ok(data) => {
            ctx.see_other_revealing(
                "/app/admin/api-keys",
                "Created the key. Copy its secret now: it is not shown again.",
                API_KEY_SECRET,
                &data.create_api_key.secret,
            )
            .await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(failure) => {
            let errors = FormErrors::from_failure(failure).fold_unknown(&[
                "name",
                "role",
                "partnerId",
                "expiresAt",
            ]);
            keys_page(ctx, again(errors), None).await
        }
    }
}

/// A form's optional day as the end of that day in UTC (RFC 3339), or a field message.
pub(crate) fn end_of_day(day: &str) -> Result<Option<String>, String> {
    let day = day.trim();
    if day.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|at| Some(at.and_utc().to_rfc3339()))
        .ok_or_else(|| "must be a date (YYYY-MM-DD)".to_owned())
}

pub async fn revoke_api_key(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> PageResult {
    ctx.check_csrf(&form.csrf)?;
    match ctx
        .api::<Value>(
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other("/app/admin/api-keys", Some("Revoked the key."))
                .await
        }
        Err(failure) => Err(ctx.refuse(failure)),
    }
}
