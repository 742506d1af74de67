//! The internal app: the dashboard, the accounts list with saved views (shared with the
//! portal's accounts page), the account 360° page, and the admin index and partners.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use serde::Deserialize;

use super::super::{InApp, PageResult, Side, Signed, refused_if};
use super::interactions::InteractionForm;
use super::timeline;
use super::workspace::MyDay;
use serde_json::{Value, json};

use super::super::{Area, Chrome, Ctx, render};
use super::{
    Choice, Conn, Day, Label, MaybeLabel, Money, Text, When, choices, param, plausible_id,
    thousands, words,
};

pub(crate) const OPPORTUNITY_STAGES: &[&str] = &[
    "PROSPECTING",
    "QUALIFICATION",
    "PROPOSAL",
    "NEGOTIATION",
    "CLOSED_WON",
    "CLOSED_LOST",
];
pub(crate) const ORDER_STATUSES: &[&str] = &[
    "DRAFT",
    "PLACED",
    "CONFIRMED",
    "ON_HOLD",
    "IN_FULFILLMENT",
    "SHIPPED",
    "DELIVERED",
    "CANCELLED",
];
pub(crate) const SEGMENTS: &[&str] = &["SMB", "MID_MARKET", "ENTERPRISE"];
pub(crate) const TIERS: &[&str] = &["STRATEGIC", "KEY", "STANDARD"];
pub(crate) const LIFECYCLE: &[&str] = &["PROSPECT", "CUSTOMER", "PARTNER", "CHURNED"];

/// One figure of the dashboard: its key (for tests and styling), label and value.
pub(crate) struct Figure {
    pub value: i64,
    pub key: String,
    pub label: String,
    pub shown: String,
    /// Width of its bar, 0–100, relative to the largest figure of its group.
    pub bar: i64,
    pub href: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecentInteraction {
    pub id: String,
    pub subject: String,
    pub channel: Label,
    pub direction: Label,
    pub occurred_at: When,
    pub account: Option<AccountRef>,
}

#[derive(Deserialize, Clone)]
pub(crate) struct AccountRef {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "app/dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    accounts: String,
    open_opportunities: String,
    pipeline: Vec<Figure>,
    orders: Vec<Figure>,
    any_orders: bool,
    recent: Vec<RecentInteraction>,
    my_day: Option<MyDay>,
}

/// One figure per key (in the order given, zero when the API counted none) from a list of
/// grouped counts (`[{ value, count }]`).
fn figures(counts: &Value, keys: &[&str], link: Option<&str>) -> Vec<Figure> {
    let values: Vec<i64> = keys
        .iter()
        .map(|k| {
            counts
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["value"] == *k)
                .and_then(|c| c["count"].as_i64())
                .unwrap_or(0)
        })
        .collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    keys.iter()
        .zip(values)
        .map(|(key, value)| Figure {
            key: (*key).to_owned(),
            label: words(key),
            value,
            shown: thousands(value),
            bar: value * 100 / max,
            href: link.map(|l| format!("{l}{key}")).unwrap_or_default(),
        })
        .collect()
}

/// `/app`: pipeline by stage, orders by status, the newest interactions — one query.
pub async fn dashboard(Signed(ctx, _): Signed<InApp>) -> PageResult {
    // One operation, five root fields: the grouped counts are one query each, and "my
    // day" (the caller's open tasks for the coming week) when its role has tasks.
    let (variables, my_day) = if ctx.me.reads("Task") {
        ("($weekEnd: DateTime)", MyDay::selection())
    } else {
        ("", "")
    };
    let query = format!(
        "query{variables} {{ {my_day} accounts(first: 0) {{ totalCount }} \
        open: opportunities(first: 0, filter: {{ openOnly: true }}) {{ totalCount }} \
        opportunities(first: 0) {{ stageCounts {{ value count }} }} \
        orders(first: 0) {{ statusCounts {{ value count }} }} \
        interactions(first: 8, orderBy: {{ field: OCCURRED_AT, direction: DESC }}) {{ nodes {{ \
          id subject channel direction occurredAt account {{ id name }} }} }} }}"
    );
    let data: Value = ctx
        .query(&query, json!({ "weekEnd": MyDay::week_end(&ctx.me) }))
        .await?;
    let recent: Conn<RecentInteraction> =
        serde_json::from_value(data["interactions"].clone()).unwrap_or_default();
    let orders = figures(
        &data["orders"]["statusCounts"],
        ORDER_STATUSES,
        Some("/app/orders?status="),
    );
    Ok(render(&Dashboard {
        chrome: ctx.chrome("Dashboard"),
        accounts: thousands(data["accounts"]["totalCount"].as_i64().unwrap_or(0)),
        open_opportunities: thousands(data["open"]["totalCount"].as_i64().unwrap_or(0)),
        pipeline: figures(
            &data["opportunities"]["stageCounts"],
            OPPORTUNITY_STAGES,
            None,
        ),
        any_orders: orders.iter().any(|f| f.value > 0),
        orders,
        recent: recent.nodes,
        my_day: ctx
            .me
            .reads("Task")
            .then(|| MyDay::of(&ctx.me, &data["myTasks"])),
    }))
}

#[derive(Deserialize, Default, Clone)]
pub struct AccountsQuery {
    q: Option<String>,
    segment: Option<String>,
    tier: Option<String>,
    lifecycle: Option<String>,
    territory: Option<String>,
    /// `me`: only the accounts the signed-in user owns.
    owner: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountRow {
    pub id: String,
    pub name: String,
    pub industry: Text,
    pub segment: Label,
    pub tier: MaybeLabel,
    pub lifecycle_stage: MaybeLabel,
    pub territory: Option<Named>,
    pub updated_at: When,
}

#[derive(Deserialize, Clone)]
pub(crate) struct Named {
    pub id: String,
    pub name: String,
}

#[derive(Deserialize, Clone)]
pub(crate) struct SavedView {
    pub id: String,
    pub name: String,
    pub query: String,
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    base: &'static str,
    q: String,
    segments: Vec<Choice>,
    tiers: Vec<Choice>,
    lifecycles: Vec<Choice>,
    territories: Vec<Choice>,
    sorts: Vec<Choice>,
    desc: bool,
    /// Filters by fields only internal staff may filter by (tier, lifecycle, owner).
    internal_filters: bool,
    /// Only the user's own accounts.
    mine: bool,
    rows: Vec<AccountRow>,
    show_tier: bool,
    show_updated: bool,
    show_lifecycle: bool,
    total: String,
    next: Option<String>,
    first_page: Option<String>,
    /// The caller may create accounts (in the app).
    may_create: bool,
    current_query: String,
    views: Vec<SavedView>,
    view_page: &'static str,
}

/// The query string of the list's filters and sort (no cursor): what a saved view keeps.
fn filter_query(query: &AccountsQuery) -> String {
    let pairs: Vec<(&str, String)> = [
        ("q", param(&query.q)),
        ("segment", param(&query.segment)),
        ("tier", param(&query.tier)),
        ("lifecycle", param(&query.lifecycle)),
        ("territory", param(&query.territory)),
        ("owner", param(&query.owner)),
        ("sort", param(&query.sort)),
        ("dir", param(&query.dir)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// An enum filter's value when it is one of `allowed`.
fn one_of(value: &Option<String>, allowed: &[&str]) -> Option<String> {
    param(value).filter(|v| allowed.contains(&v.as_str()))
}

pub async fn accounts<S: Side>(
    Signed(ctx, _): Signed<S>,
    Query(query): Query<AccountsQuery>,
) -> PageResult {
    accounts_page(ctx, query).await
}

/// The accounts the caller may see, with search, filters, sort and pages (the app's list
/// and the portal's).
/// What the accounts list shows, from its query string: the API's filter and ordering,
/// and the choices the page marks (the page and its export read the same).
struct AccountsSelection {
    filter: serde_json::Map<String, Value>,
    segment: Option<String>,
    tier: Option<String>,
    lifecycle: Option<String>,
    territory: Option<String>,
    mine: bool,
    sort: String,
    desc: bool,
}

fn accounts_selection(ctx: &Ctx, query: &AccountsQuery) -> AccountsSelection {
    let internal = ctx.area == Area::App;
    let mut filter = serde_json::Map::new();
    if let Some(q) = param(&query.q) {
        filter.insert("text".into(), json!(q));
    }
    let segment = one_of(&query.segment, SEGMENTS);
    let tier = one_of(&query.tier, TIERS).filter(|_| internal);
    let lifecycle = one_of(&query.lifecycle, LIFECYCLE).filter(|_| internal);
    let territory = param(&query.territory).filter(|t| plausible_id(t));
    // Ownership is a staff notion (partners see no owner).
    let mine = internal && param(&query.owner).as_deref() == Some("me");
    if mine {
        filter.insert("ownerUserId".into(), json!(ctx.me.id));
    }
    for (key, value) in [
        ("segment", &segment),
        ("tier", &tier),
        ("lifecycleStage", &lifecycle),
        ("territoryId", &territory),
    ] {
        if let Some(value) = value {
            filter.insert(key.into(), json!(value));
        }
    }
    let sort =
        one_of(&query.sort, &["NAME", "CREATED_AT", "UPDATED_AT"]).unwrap_or_else(|| "NAME".into());
    let desc = param(&query.dir).as_deref() == Some("DESC");
    AccountsSelection {
        filter,
        segment,
        tier,
        lifecycle,
        territory,
        mine,
        sort,
        desc,
    }
}

/// `/app/accounts.csv`, `/portal/accounts.csv`: the list as the page shows it (its search,
/// filters and order), every page of it, streamed by the gateway's export as the caller.
pub async fn accounts_csv<S: Side>(
    Signed(ctx, _): Signed<S>,
    Query(query): Query<AccountsQuery>,
) -> PageResult {
    let selection = accounts_selection(&ctx, &query);
    let order = json!({
        "field": selection.sort,
        "direction": if selection.desc { "DESC" } else { "ASC" },
    });
    ctx.web
        .api
        .export(
            &ctx.session.access_token,
            &[
                ("list", "accounts".to_owned()),
                ("format", "csv".to_owned()),
                ("filter", Value::Object(selection.filter).to_string()),
                ("orderBy", order.to_string()),
            ],
        )
        .await
        .map_err(|failure| ctx.refuse(failure))
}

async fn accounts_page(ctx: Ctx, query: AccountsQuery) -> PageResult {
    let internal = ctx.area == Area::App;
    let AccountsSelection {
        filter,
        segment,
        tier,
        lifecycle,
        territory,
        mine,
        sort,
        desc,
    } = accounts_selection(&ctx, &query);
    const CAP: i64 = 10_000;
    let gql = format!(
        "query($first: Int!, $after: String, $filter: AccountFilter, $orderBy: AccountOrder) {{ \
         accounts(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {{ \
           totalCount(atMost: {CAP}) pageInfo {{ endCursor hasNextPage }} \
           nodes {{ id name industry segment tier lifecycleStage territory {{ id name }} updatedAt }} }} \
         territories(first: 200, orderBy: {{ field: NAME, direction: ASC }}) {{ nodes {{ id name }} }} \
         savedViews(page: \"accounts\") {{ id name query }} }}"
    );
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        accounts: Conn<AccountRow>,
        territories: Conn<Named>,
        saved_views: Vec<SavedView>,
    }
    let variables = super::list_variables(&query.after, filter, &sort, desc);
    let data: Data = ctx.query(&gql, variables).await?;
    let base = if internal {
        "/app/accounts"
    } else {
        "/portal/accounts"
    };
    let current_query = filter_query(&query);
    let (next, first_page) =
        super::pager(base, &current_query, &data.accounts.page_info, &query.after);
    let chrome = ctx.chrome("Accounts");
    let rows = data.accounts.nodes.clone();
    let show_updated = rows.iter().any(|r| r.updated_at.0.is_some());
    Ok(render(&AccountsPage {
        may_create: base == "/app/accounts" && ctx.me.writes("Account"),
        chrome,
        base,
        q: param(&query.q).unwrap_or_default(),
        segments: choices(SEGMENTS, &segment),
        tiers: choices(TIERS, &tier),
        lifecycles: choices(LIFECYCLE, &lifecycle),
        territories: data
            .territories
            .nodes
            .iter()
            .map(|t| Choice {
                value: t.id.clone(),
                label: t.name.clone(),
                selected: territory.as_deref() == Some(t.id.as_str()),
            })
            .collect(),
        // Times are offered (to read and to sort by) where the API shows them: a
        // supplier reads an account without its history.
        sorts: [
            ("NAME", "Name"),
            ("CREATED_AT", "Created"),
            ("UPDATED_AT", "Last updated"),
        ]
        .iter()
        .filter(|(v, _)| *v == "NAME" || show_updated)
        .map(|(v, l)| Choice {
            value: (*v).into(),
            label: (*l).into(),
            selected: sort == *v,
        })
        .collect(),
        desc,
        internal_filters: internal,
        mine,
        show_tier: rows.iter().any(|r| r.tier.is_some()),
        show_lifecycle: rows.iter().any(|r| r.lifecycle_stage.is_some()),
        show_updated,
        rows,
        total: data.accounts.total(CAP),
        next,
        first_page,
        current_query,
        views: data.saved_views,
        view_page: "accounts",
    }))
}

#[derive(Deserialize)]
pub struct SaveViewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    query: String,
}

/// Where a list page that keeps saved views lives, on the user's side.
fn view_page(area: Area, page: &str) -> Option<String> {
    ["accounts", "orders"]
        .contains(&page)
        .then(|| format!("{}/{page}", area.home()))
}

pub async fn save_view<S: Side>(
    Signed(ctx, _): Signed<S>,
    Form(form): Form<SaveViewForm>,
) -> PageResult {
    ctx.check_csrf(&form.csrf)?;
    let Some(list) = view_page(ctx.area, &form.page) else {
        return Err(ctx.refuse(super::super::client::ApiFailure::NotFound));
    };
    let back = if form.query.is_empty() {
        list
    } else {
        format!("{list}?{}", form.query)
    };
    match ctx
        .api::<Value>(
            "mutation($p: String!, $n: String!, $q: String!) { saveView(page: $p, name: $n, query: $q) { id } }",
            json!({ "p": form.page, "n": form.name, "q": form.query }),
        )
        .await
    {
        Ok(_) => ctx.see_other(&back, Some(&format!("Saved the view “{}”.", form.name.trim()))).await,
        Err(failure) => ctx.see_other(&back, Some(&format!("The view was not saved: {}", failure.message()))).await,
    }
}

#[derive(Deserialize)]
pub struct DeleteViewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    page: String,
}

pub async fn delete_view<S: Side>(
    Signed(ctx, _): Signed<S>,
    Path(id): Path<String>,
    Form(form): Form<DeleteViewForm>,
) -> PageResult {
    ctx.check_csrf(&form.csrf)?;
    let back = view_page(ctx.area, &form.page).unwrap_or_else(|| ctx.area.home().to_owned());
    match ctx
        .api::<Value>(
            "mutation($id: ID!) { deleteSavedView(id: $id) }",
            json!({ "id": id }),
        )
        .await
    {
        Ok(_) => ctx.see_other(&back, Some("Deleted the view.")).await,
        Err(failure) => Err(ctx.refuse(failure)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account360 {
    id: String,
    version: Option<i64>,
    may: super::RecordMay,
    name: String,
    domain: Text,
    industry: Text,
    segment: Label,
    tier: MaybeLabel,
    lifecycle_stage: MaybeLabel,
    territory: Option<Named>,
    internal_note: Text,
    created_at: When,
    updated_at: When,
    access: Access,
    /// Whether the policy lets the caller share this account with a partner.
    shareable: bool,
    contacts: Conn<ContactRow>,
    interactions: Conn<InteractionRow>,
    opportunities: Conn<OpportunityRow>,
    orders: Conn<AccountOrder>,
    /// Null for a role without cases.
    cases: Option<Conn<timeline::CaseEvent>>,
}

/// Why the caller sees a record: the policy's summary and the facts behind it (for a
/// partner's account, its share causes).
#[derive(Deserialize)]
pub(crate) struct Access {
    pub summary: String,
    #[serde(default)]
    pub causes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContactRow {
    /// Empty where the page did not ask for it (the portal's).
    #[serde(default)]
    pub id: String,
    pub full_name: String,
    pub title: Text,
    pub email: Text,
    pub phone: Text,
}

impl ContactRow {
    /// The phone number as a `tel:` link wants it: digits and a leading `+`.
    pub fn tel(&self) -> String {
        self.phone
            .value()
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InteractionRow {
    pub occurred_at: When,
    pub channel: Label,
    pub direction: Label,
    pub subject: String,
    pub body: Text,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpportunityRow {
    id: String,
    name: String,
    stage: Label,
    amount: Money,
    probability: i64,
    expected_close: Day,
    #[serde(default)]
    stage_history: Vec<timeline::StageEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountOrder {
    id: String,
    number: String,
    status: Label,
    placed_at: When,
    total: Money,
    lines: Conn<LineProduct>,
    #[serde(default)]
    shipments: Conn<timeline::ShipmentEvents>,
}

#[derive(Deserialize)]
struct LineProduct {
    product: Option<ProductArticles>,
}

#[derive(Deserialize)]
struct ProductArticles {
    articles: Conn<ArticleRef>,
}

#[derive(Deserialize, Clone)]
pub(crate) struct ArticleRef {
    pub id: String,
    pub title: String,
}

#[derive(Template)]
#[template(path = "app/account.html")]
struct AccountPage {
    chrome: Chrome,
    account: Account360,
    articles: Vec<ArticleRef>,
    /// The interaction form, for staff who log interactions.
    interaction_form: Option<String>,
    /// Partners to share the account with, for staff who grant shares.
    share_partners: Vec<Choice>,
    /// The records the caller may start from this account.
    new_contact: bool,
    new_opportunity: bool,
    new_case: bool,
    timeline: Vec<timeline::Event>,
    kinds: Vec<Choice>,
}

/// The account 360° page: one federated query across the three subgraphs (the account,
/// its orders from the order service, and the articles of the products it bought).
pub async fn account(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    Query(query): Query<TimelineQuery>,
) -> PageResult {
    account_page(ctx, &id, InteractionForm::default(), param(&query.kind)).await
}

/// `?kind=` of the account page: the timeline's one kind of event, or all.
#[derive(Deserialize, Default)]
pub struct TimelineQuery {
    kind: Option<String>,
}

/// The 360° page, with the interaction form as posted (and refused) or empty, and the
/// timeline of one kind of event (or all).
pub(crate) async fn account_page(
    ctx: Ctx,
    id: &str,
    form: InteractionForm,
    kind: Option<String>,
) -> PageResult {
    if !plausible_id(id) {
        return Err(ctx.refuse(super::super::client::ApiFailure::NotFound));
    }
    // Staff who grant shares also get the partners to choose from, in the same operation:
    // distributors, the partners a manual share gives something to (ACCESS-MATRIX.md:
    // suppliers see accounts only through the orders of their products).
    const QUERY: &str = "query($id: ID!, $sharing: Boolean!, $cases: Boolean!, $tasks: Boolean!) { \
        partners(first: 200, filter: { kind: DISTRIBUTOR }, orderBy: { field: NAME, direction: ASC }) \
          @include(if: $sharing) { nodes { id name } } \
        account(id: $id) { \
        id version may { update archive } name domain industry segment tier lifecycleStage territory { id name } internalNote \
        createdAt updatedAt access { summary causes } shareable \
        contacts(first: 50) { totalCount nodes { id fullName title email phone } } \
        interactions(first: 25, orderBy: { field: OCCURRED_AT, direction: DESC }) { totalCount \
          nodes { occurredAt channel direction subject body } } \
        opportunities(first: 25) { totalCount nodes { id name stage amount { amount currency } probability expectedClose \
          stageHistory { fromStage toStage changedAt } } } \
        cases(first: 20, orderBy: { field: CREATED_AT, direction: DESC }) @include(if: $cases) { totalCount \
          nodes { id subject status priority createdAt resolvedAt comments(first: 10) { nodes { body partnerVisible createdAt } } } } \
        orders(first: 25, orderBy: { field: CREATED_AT, direction: DESC }) { totalCount \
          nodes { id number status placedAt total { amount currency } \
            shipments(first: 5) { nodes { carrier events { status occurredAt location } } } \
            lines(first: 50) { nodes { product { articles(first: 5) { nodes { id title } } } } } } } } \
        tasks(first: 25, filter: { accountId: $id }, orderBy: { field: CREATED_AT, direction: DESC }) @include(if: $tasks) { \
          nodes { id title createdAt dueAt completedAt recordType recordId } } }";
    #[derive(Deserialize)]
    struct Data {
        account: Option<Account360>,
        partners: Option<Conn<Named>>,
        tasks: Option<Conn<timeline::TaskEvent>>,
    }
    let sharing = ctx.me.writes("ShareGrant");
    let variables = json!({ "id": id, "sharing": sharing, "cases": ctx.me.reads("Case"),
                            "tasks": ctx.me.reads("Task") });
    let (account, partners, tasks) = match ctx.api::<Data>(QUERY, variables).await {
        Ok(Data {
            account: Some(account),
            partners,
            tasks,
        }) => (account, partners, tasks),
        Ok(Data { account: None, .. }) => {
            return Err(ctx.refuse(super::super::client::ApiFailure::NotFound));
        }
        Err(failure) => return Err(ctx.refuse(failure)),
    };
    let mut articles: Vec<ArticleRef> = Vec::new();
    for order in &account.orders.nodes {
        for line in &order.lines.nodes {
            for article in line.product.iter().flat_map(|p| &p.articles.nodes) {
                if !articles.iter().any(|a| a.id == article.id) {
                    articles.push(article.clone());
                }
            }
        }
    }
    let share_partners = partners
        .filter(|_| account.shareable)
        .map(|p| p.nodes)
        .unwrap_or_default()
        .into_iter()
        .map(|p| Choice {
            value: p.id,
            label: p.name,
            selected: false,
        })
        .collect();
    let mut events = timeline::Timeline::new();
    for i in &account.interactions.nodes {
        events.interaction(i);
    }
    for o in &account.orders.nodes {
        events.order(
            &o.id,
            &o.number,
            &o.status,
            &o.placed_at,
            &o.shipments.nodes,
        );
    }
    for c in account.cases.iter().flat_map(|c| &c.nodes) {
        events.case(c);
    }
    for o in &account.opportunities.nodes {
        for s in &o.stage_history {
            events.stage(&o.name, s);
        }
    }
    for t in tasks.iter().flat_map(|t| &t.nodes) {
        events.task(t);
    }
    let kind = kind.filter(|k| timeline::KINDS.iter().any(|(known, _)| known == k));
    let refused = form.errors.any();
    let chrome = ctx.chrome(&account.name);
    Ok(refused_if(
        refused,
        render(&AccountPage {
            chrome,
            kinds: timeline::kind_choices(kind.as_deref()),
            timeline: events.finish(kind.as_deref()),
            interaction_form: ctx.me.writes("Interaction").then(|| form.html(&ctx, id)),
            new_contact: ctx.me.writes("Contact"),
            new_opportunity: ctx.me.writes("Opportunity"),
            new_case: ctx.me.writes("Case"),
            share_partners,
            account,
            articles,
        }),
    ))
}

#[derive(Template)]
#[template(path = "app/admin.html")]
struct AdminIndex {
    chrome: Chrome,
}

pub async fn admin_index(Signed(ctx, _): Signed<InApp>) -> PageResult {
    if !ctx.me.manages_users() {
        return Err(ctx.refuse(super::super::client::ApiFailure::Forbidden(
            "Administration is for admins.".into(),
        )));
    }
    Ok(render(&AdminIndex {
        chrome: ctx.chrome("Administration"),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PartnerRow {
    pub id: String,
    pub name: String,
    pub kind: Label,
    pub tier: Label,
    pub territories: Vec<Named>,
}

impl PartnerRow {
    pub fn territory_names(&self) -> String {
        if self.territories.is_empty() {
            return "—".into();
        }
        self.territories
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Template)]
#[template(path = "app/partners.html")]
struct PartnersPage {
    chrome: Chrome,
    partners: Vec<PartnerRow>,
    total: String,
}

pub async fn partners(Signed(ctx, _): Signed<InApp>) -> PageResult {
    if !ctx.me.manages_users() {
        return Err(ctx.refuse(super::super::client::ApiFailure::Forbidden(
            "Administration is for admins.".into(),
        )));
    }
    #[derive(Deserialize)]
    struct Data {
        partners: Conn<PartnerRow>,
    }
    let data: Data = ctx
        .query(
            "query { partners(first: 200, orderBy: { field: NAME, direction: ASC }) { totalCount(atMost: 10000) \
             nodes { id name kind tier territories { id name } } } }",
            json!({}),
        )
        .await?;
    Ok(render(&PartnersPage {
        chrome: ctx.chrome("Partners"),
        total: data.partners.total(10_000),
        partners: data.partners.nodes,
    }))
}
