//! Sharing grants (grant with an optional end, revoke) and the policy view: for a chosen
//! partner, what it can see and why — the policy's sentences for its users, the rules of
//! its side, its share rows by cause, and the explanation for one account.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use serde::Deserialize;

use super::super::{InApp, PageResult, Signed, refused_if};
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
    Ok(refused_if(
        refused,
        render(&SharesPage {
            chrome,
            shares: data.account_shares.nodes,
            accounts: pick(&data.accounts.nodes, &state.account),
            partners: pick(&data.partners.nodes, &state.partner),
            expires: state.expires,
            reason: state.reason,
            errors: state.errors,
        }),
    ))
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
    #[serde(default)]
    can_see: Vec<String>,
    #[serde(default)]
    access_to_account: Option<Explanation>,
}

#[derive(Deserialize, Clone)]
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

pub async fn policy(Signed(ctx, _): Signed<InApp>, Query(query): Query<PolicyQuery>) -> PageResult {
    if !ctx.me.manages_users() {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "The policy view is for admins.".into(),
        )));
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
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Coverage {
        accounts_in_territories: i64,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        partners: Conn<PartnerKind>,
        policy: PolicyData,
        #[serde(default)]
        partner: Option<Coverage>,
        #[serde(default)]
        directory_users: Vec<PartnerUser>,
        #[serde(default)]
        account_shares: Option<Conn<Shared>>,
        #[serde(flatten)]
        causes: std::collections::BTreeMap<String, Value>,
    }
    #[derive(Deserialize)]
    struct Shared {
        account: Option<Named>,
    }
    let chosen = param(&query.partner).filter(|p| plausible_id(p));
    let account = param(&query.account).filter(|a| plausible_id(a));
    // One operation for the whole page: the partners and the policy, and for a chosen
    // partner its users (each with what it sees, and its access to a chosen account), its
    // shares by cause and the accounts in its territories.
    const LISTS: &str = "partners(first: 200, orderBy: { field: NAME, direction: ASC }) \
        { nodes { id name kind territories { id name } } } \
        policy { version rules { role domain type action scope effect } }";
    let data: Data = match &chosen {
        None => {
            ctx.query(&format!("query {{ {LISTS} }}"), json!({}))
                .await?
        }
        Some(partner) => {
            let mut gql = format!(
                "query($p: ID!, $a: ID!, $withAccount: Boolean!) {{ {LISTS} \
                 partner(id: $p) {{ accountsInTerritories }} \
                 directoryUsers(partnerId: $p) {{ id email roles disabled canSee \
                   accessToAccount(accountId: $a) @include(if: $withAccount) \
                   {{ visible summary causes rules deniedBy }} }} \
                 accountShares(first: 200, filter: {{ partnerId: $p }}) {{ nodes {{ account {{ id name }} }} }} "
            );
            for cause in CAUSES {
                gql.push_str(&format!(
                    "{cause}: accountShares(first: 0, filter: {{ partnerId: $p, cause: \"{cause}\" }}) {{ totalCount }} "
                ));
            }
            gql.push('}');
            let variables = json!({
                "p": partner,
                "a": account.clone().unwrap_or_else(|| "none".into()),
                "withAccount": account.is_some(),
            });
            ctx.query(&gql, variables).await?
        }
    };
    let partner = chosen
        .as_ref()
        .and_then(|id| data.partners.nodes.iter().find(|p| &p.id == id));
    let partners = data
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
        version: data.policy.version,
        causes: Vec::new(),
        account: String::new(),
        accounts: Vec::new(),
        explanation: None,
    };
    let Some(partner) = partner else {
        return Ok(render(&page));
    };
    let domain = partner.kind.to_lowercase();
    page.rules = data
        .policy
        .rules
        .into_iter()
        .filter(|r| r.domain == domain)
        .collect();
    page.causes = CAUSES
        .iter()
        .map(|c| CauseCount {
            cause: words(c),
            count: thousands(
                data.causes
                    .get(*c)
                    .and_then(|v| v["totalCount"].as_i64())
                    .unwrap_or(0),
            ),
        })
        .collect();
    if !partner.territories.is_empty() {
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
                count: thousands(
                    data.partner
                        .as_ref()
                        .map_or(0, |p| p.accounts_in_territories),
                ),
            },
        );
    }
    let users = data.directory_users;
    let wanted_user = param(&query.user);
    let user = users
        .iter()
        .position(|u| Some(&u.id) == wanted_user.as_ref())
        .or_else(|| users.iter().position(|u| !u.disabled));
    page.users = users
        .iter()
        .enumerate()
        .map(|(i, u)| Choice {
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
            selected: Some(i) == user,
        })
        .collect();
    let mut accounts: Vec<Named> = data
        .account_shares
        .map(|c| c.nodes)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.account)
        .collect();
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    accounts.dedup_by(|a, b| a.id == b.id);
    page.accounts = accounts
        .iter()
        .map(|a| Choice {
            value: a.id.clone(),
            label: a.name.clone(),
            selected: Some(&a.id) == account.as_ref(),
        })
        .collect();
    let Some(user) = user.and_then(|i| users.into_iter().nth(i)) else {
        return Ok(render(&page));
    };
    page.user_email = user.email;
    page.can_see = user.can_see;
    page.explanation = user.access_to_account;
    page.account = account.unwrap_or_default();
    Ok(render(&page))
}
