//! Sharing grants (grant with an optional end, revoke) and the policy view: for a chosen
//! partner, what it can see and why — the policy's sentences for its users, the rules of
//! its side, its share rows by cause, and the explanation for one account.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use serde::Deserialize;

use super::super::{InApp, PageResult, Signed};
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Chrome, Ctx, FormErrors, render};
use super::app::Named;
use super::{Choice, Conn, Text, When, param, plausible_id, thousands, words};

/// The causes kept as share rows (territory coverage is decided from the partner's
/// territories when asked, so it is counted from those instead).
const CAUSES: &[&str] = &["buys_my_products", "fulfils_its_orders", "manual_share"];

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ShareRow {
    id: String,
    version: i64,
    account: Option<Named>,
    partner: Option<Named>,
    active: bool,
    expires_at: When,
    reason: Text,
    created_at: When,
}

#[derive(Template)]
#[template(path = "app/shares.html")]
struct SharesPage {
    chrome: Chrome,
    shares: Vec<ShareRow>,
    accounts: Vec<Choice>,
    partners: Vec<Choice>,
    expires: String,
    reason: String,
    errors: FormErrors,
}

#[derive(Default)]
struct GrantState {
    account: String,
    partner: String,
    expires: String,
    reason: String,
    errors: FormErrors,
}

async fn shares_page(ctx: Ctx, state: GrantState) -> PageResult {
    if !ctx.me.writes("ShareGrant") {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "Sharing is for admins, management and sales.".into(),
        )));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        account_shares: Conn<ShareRow>,
        accounts: Conn<Named>,
        partners: Conn<Named>,
    }
    let data: Data = ctx
        .query(
            "query { accountShares(first: 100, filter: { cause: \"manual_share\", includeArchived: true }, \
               orderBy: { field: CREATED_AT, direction: DESC }) { \
               nodes { id version account { id name } partner { id name } active expiresAt reason createdAt } } \
             accounts(first: 200, orderBy: { field: NAME, direction: ASC }) { nodes { id name } } \
             partners(first: 200, filter: { kind: DISTRIBUTOR }, orderBy: { field: NAME, direction: ASC }) { nodes { id name } } }",
            json!({}),
        )
        .await?;
    let pick = |items: &[Named], chosen: &str| -> Vec<Choice> {
        items
            .iter()
            .map(|n| Choice {
                value: n.id.clone(),
                label: n.name.clone(),
                selected: n.id == chosen,
            })
            .collect()
    };
    let refused = state.errors.any();
    let chrome = ctx.chrome("Sharing");
    let mut response = render(&SharesPage {
        chrome,
        shares: data.account_shares.nodes,
        accounts: pick(&data.accounts.nodes, &state.account),
        partners: pick(&data.partners.nodes, &state.partner),
        expires: state.expires,
        reason: state.reason,
        errors: state.errors,
    });
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

pub async fn shares(Signed(ctx, _): Signed<InApp>) -> PageResult {
    shares_page(ctx, GrantState::default()).await
}

#[derive(Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    partner: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    reason: String,
    /// `account`: the form was on the account's page, which it returns to.
    #[serde(default)]
    from: String,
}

pub async fn grant(Signed(ctx, _): Signed<InApp>, Form(form): Form<GrantForm>) -> PageResult {
    ctx.check_csrf(&form.csrf)?;
    let mut state = GrantState {
        account: form.account.clone(),
        partner: form.partner.clone(),
        expires: form.expires.clone(),
        reason: form.reason.clone(),
        errors: FormErrors::default(),
    };
    let expires = match super::people::end_of_day(&form.expires) {
        Ok(expires) => expires,
        Err(message) => {
            state.errors.fields.push(super::super::client::FieldError {
                field: "expiresAt".into(),
                message,
            });
            return shares_page(ctx, state).await;
        }
    };
    let reason = form.reason.trim();
    let input = json!({
        "accountId": form.account,
        "partnerId": form.partner,
        "expiresAt": expires,
        "reason": (!reason.is_empty()).then_some(reason),
    });
    match ctx
        .api::<Value>(
            "mutation($input: AccountShareInput!) { grantAccountShare(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await
    {
        Ok(_) => {
            let back = if form.from == "account" && plausible_id(&form.account) {
                format!("/app/accounts/{}", form.account)
            } else {
                "/app/admin/shares".to_owned()
            };
            ctx.see_other(&back, Some("Shared the account.")).await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(failure) => {
            state.errors = FormErrors::from_failure(failure).fold_unknown(&[
                "accountId",
                "partnerId",
                "expiresAt",
                "reason",
            ]);
            shares_page(ctx, state).await
        }
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: i64,
}

pub async fn revoke(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> PageResult {
    ctx.check_csrf(&form.csrf)?;
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $v: Int!) { revokeAccountShare(id: $id, version: $v) { id } }",
            json!({ "id": id, "v": form.version }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other("/app/admin/shares", Some("Revoked the share."))
                .await
        }
        Err(ApiFailure::Refused(message)) => {
            ctx.see_other("/app/admin/shares", Some(&message)).await
        }
        Err(failure) => Err(ctx.refuse(failure)),
    }
}

#[derive(Deserialize, Default)]
pub struct PolicyQuery {
    partner: Option<String>,
    user: Option<String>,
    account: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct PartnerUser {
    id: String,
    email: String,
    roles: Vec<String>,
    disabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Explanation {
    visible: bool,
    summary: String,
    causes: Vec<String>,
    rules: Vec<String>,
    denied_by: Option<String>,
}

#[derive(Deserialize, Clone)]
struct Rule {
    role: String,
    domain: String,
    #[serde(rename = "type")]
    kind: String,
    action: String,
    scope: String,
    effect: String,
}

struct CauseCount {
    cause: String,
    count: String,
}

#[derive(Template)]
#[template(path = "app/policy.html")]
struct PolicyPage {
    chrome: Chrome,
    partners: Vec<Choice>,
    partner: Option<Named>,
    partner_kind: String,
    users: Vec<Choice>,
    user_email: String,
    can_see: Vec<String>,
    rules: Vec<Rule>,
    version: i64,
    causes: Vec<CauseCount>,
    account: String,
    accounts: Vec<Choice>,
    explanation: Option<Explanation>,
}

/// How many accounts lie in these territories: one count per territory, asked in
/// operations of at most 15 (the gateway allows 20 root fields per operation).
async fn accounts_in(ctx: &Ctx, territories: &[Named]) -> Result<i64, ApiFailure> {
    let mut total = 0;
    for chunk in territories.chunks(15) {
        let declared: Vec<String> = (0..chunk.len()).map(|i| format!("$t{i}: ID")).collect();
        let fields: String = (0..chunk.len())
            .map(|i| {
                format!(
                    "t{i}: accounts(first: 0, filter: {{ territoryId: $t{i} }}) {{ totalCount }} "
                )
            })
            .collect();
        let gql = format!("query({}) {{ {fields}}}", declared.join(", "));
        let mut variables = json!({});
        for (i, territory) in chunk.iter().enumerate() {
            variables[format!("t{i}")] = json!(territory.id);
        }
        let data: Value = ctx.api(&gql, variables).await?;
        total += (0..chunk.len())
            .map(|i| data[format!("t{i}")]["totalCount"].as_i64().unwrap_or(0))
            .sum::<i64>();
    }
    Ok(total)
}

pub async fn policy(Signed(ctx, _): Signed<InApp>, Query(query): Query<PolicyQuery>) -> PageResult {
    if !ctx.me.manages_users() {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "The policy view is for admins.".into(),
        )));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Partners {
        partners: Conn<PartnerKind>,
        policy: PolicyData,
    }
    #[derive(Deserialize)]
    struct PartnerKind {
        id: String,
        name: String,
        kind: String,
        territories: Vec<Named>,
    }
    #[derive(Deserialize)]
    struct PolicyData {
        version: i64,
        rules: Vec<Rule>,
    }
    let listed: Partners = ctx
        .query(
            "query { partners(first: 200, orderBy: { field: NAME, direction: ASC }) { nodes { id name kind territories { id name } } } \
             policy { version rules { role domain type action scope effect } } }",
            json!({}),
        )
        .await?;
    let chosen = param(&query.partner).filter(|p| plausible_id(p));
    let partner = chosen
        .as_ref()
        .and_then(|id| listed.partners.nodes.iter().find(|p| &p.id == id));
    let partners = listed
        .partners
        .nodes
        .iter()
        .map(|p| Choice {
            value: p.id.clone(),
            label: format!("{} ({})", p.name, words(&p.kind)),
            selected: Some(&p.id) == chosen.as_ref(),
        })
        .collect();
    let mut page = PolicyPage {
        chrome: ctx.chrome("What a partner sees"),
        partners,
        partner: partner.map(|p| Named {
            id: p.id.clone(),
            name: p.name.clone(),
        }),
        partner_kind: partner.map(|p| words(&p.kind)).unwrap_or_default(),
        users: Vec::new(),
        user_email: String::new(),
        can_see: Vec::new(),
        rules: Vec::new(),
        version: listed.policy.version,
        causes: Vec::new(),
        account: String::new(),
        accounts: Vec::new(),
        explanation: None,
    };
    let Some(partner) = partner else {
        return Ok(render(&page));
    };
    let domain = partner.kind.to_lowercase();
    page.rules = listed
        .policy
        .rules
        .into_iter()
        .filter(|r| r.domain == domain)
        .collect();
    let mut gql = String::from(
        "query($p: ID!) { directoryUsers(partnerId: $p) { id email roles disabled } \
         accountShares(first: 200, filter: { partnerId: $p }) { nodes { account { id name } } } ",
    );
    for cause in CAUSES {
        gql.push_str(&format!(
            "{cause}: accountShares(first: 0, filter: {{ partnerId: $p, cause: \"{cause}\" }}) {{ totalCount }} "
        ));
    }
    gql.push('}');
    let data: Value = ctx.query(&gql, json!({ "p": partner.id })).await?;
    page.causes = CAUSES
        .iter()
        .map(|c| CauseCount {
            cause: words(c),
            count: thousands(data[*c]["totalCount"].as_i64().unwrap_or(0)),
        })
        .collect();
    if !partner.territories.is_empty() {
        let in_territory = match accounts_in(&ctx, &partner.territories).await {
            Ok(n) => n,
            Err(failure) => return Err(ctx.refuse(failure)),
        };
        page.causes.insert(
            1,
            CauseCount {
                cause: format!(
                    "In my territory ({})",
                    partner
                        .territories
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                count: thousands(in_territory),
            },
        );
    }
    let users: Vec<PartnerUser> =
        serde_json::from_value(data["directoryUsers"].clone()).unwrap_or_default();
    let wanted_user = param(&query.user);
    let user = users
        .iter()
        .find(|u| Some(&u.id) == wanted_user.as_ref())
        .or_else(|| users.iter().find(|u| !u.disabled))
        .cloned();
    page.users = users
        .iter()
        .map(|u| Choice {
            value: u.id.clone(),
            label: format!(
                "{} ({}{})",
                u.email,
                u.roles
                    .iter()
                    .map(|r| words(r))
                    .collect::<Vec<_>>()
                    .join(", "),
                if u.disabled { ", deactivated" } else { "" }
            ),
            selected: Some(&u.id) == user.as_ref().map(|u| &u.id),
        })
        .collect();
    let mut accounts: Vec<Named> = data["accountShares"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| serde_json::from_value(n["account"].clone()).ok())
        .collect();
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    accounts.dedup_by(|a, b| a.id == b.id);
    let account = param(&query.account).filter(|a| plausible_id(a));
    page.accounts = accounts
        .iter()
        .map(|a| Choice {
            value: a.id.clone(),
            label: a.name.clone(),
            selected: Some(&a.id) == account.as_ref(),
        })
        .collect();
    let Some(user) = user else {
        return Ok(render(&page));
    };
    page.user_email = user.email.clone();
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct UserData {
        directory_user: Option<UserAccess>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct UserAccess {
        can_see: Vec<String>,
        #[serde(default)]
        access_to_account: Option<Explanation>,
    }
    let with_account = account.is_some();
    let gql = if with_account {
        "query($u: ID!, $a: ID!) { directoryUser(id: $u) { canSee accessToAccount(accountId: $a) { visible summary causes rules deniedBy } } }"
    } else {
        "query($u: ID!) { directoryUser(id: $u) { canSee } }"
    };
    match ctx
        .api::<UserData>(gql, json!({ "u": user.id, "a": account }))
        .await
    {
        Ok(UserData {
            directory_user: Some(access),
        }) => {
            page.can_see = access.can_see;
            page.explanation = access.access_to_account;
            page.account = account.unwrap_or_default();
        }
        Ok(UserData {
            directory_user: None,
        }) => {}
        Err(failure) => return Err(ctx.refuse(failure)),
    }
    Ok(render(&page))
}
