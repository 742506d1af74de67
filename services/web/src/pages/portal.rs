//! The partner portal's home (what this partner sees and why, from the policy in force)
//! and its account page (the list is the app's, generic over the side).

use askama::Template;
use axum::extract::Path;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Chrome, Ctx, InPortal, PageResult, Signed, refused_if, render};
use super::app::{Access, ContactRow, InteractionRow, Named};
use super::interactions::InteractionForm;
use super::orders::OrderRow;
use super::{Conn, Label, MaybeLabel, Text, plausible_id, thousands};

#[derive(Template)]
#[template(path = "portal/home.html")]
struct Home {
    chrome: Chrome,
    organization: String,
    kind: String,
    can_see: Vec<String>,
    policy_version: i64,
    orders: String,
    accounts: String,
    articles: String,
    manages_users: bool,
    updates_shipments: bool,
    /// How the organisation works with us (distributors: registrations, leads, cases).
    scorecard: Option<Scorecard>,
}

/// The fields of a partner's scorecard, as a selection.
pub(crate) const SCORECARD_FIELDS: &str = "scorecard { registrationsSubmitted registrationsApproved dealsWon revenueAttributed { amount currency } leadsWaiting leadsAccepted medianHoursToAccept casesOpened casesResolved caseSlaMetPercent }";

/// A partner's scorecard as the API answered it, shown the same on the portal's home and
/// the staff's scorecards page.
pub(crate) struct Scorecard(pub Value);

impl Scorecard {
    /// One number as a page shows it ("—" when there is none yet).
    pub fn score(&self, key: &str) -> String {
        match &self.0[key] {
            Value::Number(n) => n.as_f64().map_or_else(
                || n.to_string(),
                |f| {
                    if f.fract() == 0.0 {
                        thousands(f as i64)
                    } else {
                        format!("{f:.1}")
                    }
                },
            ),
            _ => "—".into(),
        }
    }
    /// The share of cases answered within the SLA, with its unit.
    pub fn sla(&self) -> String {
        match self.score("caseSlaMetPercent").as_str() {
            "—" => "—".into(),
            percent => format!("{percent} %"),
        }
    }
    /// The revenue of the won deals, per currency.
    pub fn revenue(&self) -> String {
        let amounts: Vec<String> = self.0["revenueAttributed"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| serde_json::from_value::<super::MoneyAmount>(m.clone()).ok())
            .map(|m| super::Money(Some(m)).to_string())
            .collect();
        if amounts.is_empty() {
            "—".into()
        } else {
            amounts.join(", ")
        }
    }
}

/// `/portal`: the partner's slice in plain words (the policy's own sentences for this
/// user) and how many records of each kind that is.
pub async fn home(Signed(ctx, _): Signed<InPortal>) -> PageResult {
    const CAP: i64 = 10_000;
    // Distributors see their scorecard with the counts, in the same operation.
    let organization = ctx.me.organization.as_ref().map(|o| o.id.clone());
    let scorecard = if ctx.me.reads("DealRegistration") && organization.is_some() {
        format!("partner(id: $org) {{ {SCORECARD_FIELDS} }}")
    } else {
        String::new()
    };
    let data: Value = ctx
        .query(
            &format!(
                "query{} {{ orders(first: 0) {{ totalCount(atMost: {CAP}) }} \
                 accounts(first: 0) {{ totalCount(atMost: {CAP}) }} \
                 articles(first: 0) {{ totalCount(atMost: {CAP}) }} {scorecard} }}",
                if scorecard.is_empty() {
                    ""
                } else {
                    "($org: ID!)"
                }
            ),
            json!({ "org": organization }),
        )
        .await?;
    let count = |key: &str| {
        let n = data[key]["totalCount"].as_i64().unwrap_or(0);
        if n >= CAP {
            format!("{}+", thousands(CAP))
        } else {
            thousands(n)
        }
    };
    Ok(render(&Home {
        chrome: ctx.chrome("Home"),
        organization: ctx
            .me
            .organization
            .as_ref()
            .and_then(|o| o.name.clone())
            .unwrap_or_default(),
        kind: super::words(&ctx.me.kind),
        can_see: ctx.me.can_see.clone(),
        policy_version: ctx.me.policy_version,
        orders: count("orders"),
        accounts: count("accounts"),
        articles: count("articles"),
        manages_users: ctx.me.manages_users(),
        updates_shipments: ctx.me.writes("Shipment"),
        scorecard: (!data["partner"]["scorecard"].is_null())
            .then(|| Scorecard(data["partner"]["scorecard"].clone())),
    }))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartnerAccount {
    id: String,
    name: String,
    domain: Text,
    industry: Text,
    segment: Label,
    tier: MaybeLabel,
    lifecycle_stage: MaybeLabel,
    territory: Option<Named>,
    access: Access,
    contacts: Conn<ContactRow>,
    interactions: Conn<InteractionRow>,
    orders: Conn<OrderRow>,
}

/// One reason the partner sees the account: the cause in words, and the order behind it
/// (linked, by number when the page lists it) or the other fact the API gave.
struct CauseLine {
    cause: String,
    order: Option<(String, String)>,
    fact: String,
}

impl PartnerAccount {
    /// The API's causes (`buys_my_products (order:ord_…)`, `manual_share until …`) as lines.
    fn cause_lines(&self) -> Vec<CauseLine> {
        self.access
            .causes
            .iter()
            .map(|cause| {
                let (name, fact) = cause.split_once(' ').unwrap_or((cause.as_str(), ""));
                let fact = fact.trim().trim_start_matches('(').trim_end_matches(')');
                let order = fact.strip_prefix("order:").map(|id| {
                    let number = self
                        .orders
                        .nodes
                        .iter()
                        .find(|o| o.id == id)
                        .map(|o| o.number.clone())
                        .unwrap_or_else(|| id.to_owned());
                    (id.to_owned(), number)
                });
                CauseLine {
                    cause: super::words(name),
                    fact: if order.is_some() {
                        String::new()
                    } else {
                        fact.to_owned()
                    },
                    order,
                }
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "portal/account.html")]
struct AccountPage {
    chrome: Chrome,
    account: PartnerAccount,
    /// The interaction form, for those who log interactions.
    interaction_form: Option<String>,
}

const PARTNER_ACCOUNT_QUERY: &str = "query($id: ID!) { account(id: $id) { \
    id name domain industry segment tier lifecycleStage territory { id name } \
    access { summary causes } \
    contacts(first: 50) { totalCount nodes { fullName title email phone } } \
    interactions(first: 25, orderBy: { field: OCCURRED_AT, direction: DESC }) { totalCount \
      nodes { occurredAt channel direction subject body } } \
    orders(first: 25, orderBy: { field: CREATED_AT, direction: DESC }) { totalCount \
      nodes { id number status placedAt total { amount currency } account { id name } } } } }";

pub(crate) async fn account_page(ctx: Ctx, id: &str, form: InteractionForm) -> PageResult {
    if !plausible_id(id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    #[derive(serde::Deserialize)]
    struct Data {
        account: Option<PartnerAccount>,
    }
    let account = match ctx
        .api::<Data>(PARTNER_ACCOUNT_QUERY, json!({ "id": id }))
        .await
    {
        Ok(Data {
            account: Some(account),
        }) => account,
        Ok(Data { account: None }) => return Err(ctx.refuse(ApiFailure::NotFound)),
        Err(failure) => return Err(ctx.refuse(failure)),
    };
    let refused = form.errors.any();
    let chrome = ctx.chrome(&account.name);
    Ok(refused_if(
        refused,
        render(&AccountPage {
            chrome,
            interaction_form: ctx
                .me
                .writes("Interaction")
                .then(|| form.html(&ctx, &account.id)),
            account,
        }),
    ))
}

/// `/portal/accounts/{id}`: one account as the partner may see it — its fields, why the
/// partner sees it, its contacts (details as their consents allow), the interactions shared
/// with partners, and its orders the partner may see.
pub async fn account(Signed(ctx, _): Signed<InPortal>, Path(id): Path<String>) -> PageResult {
    account_page(ctx, &id, InteractionForm::default()).await
}
