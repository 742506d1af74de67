//! The UI's pages, by room: sign-in, the internal app, orders and articles (shared by the
//! app and the portal), administration, the directory's people, and the portal.

mod app;
mod audit;
mod auth;
mod consent;
mod demand;
mod history;
mod interactions;
mod kb;
mod kb_review;
mod orders;
mod partner_cases;
mod partner_leads;
mod people;
mod pipeline;
mod portal;
mod privacy;
mod records;
mod registrations;
mod search;
mod sharing;
mod timeline;
mod webhooks;
mod workspace;

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::routing::{MethodRouter, get, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::{InApp, InPortal, Web};

/// One route of the UI: its path, whether a browser loads it as a page (`GET`), and its
/// handlers.
pub(crate) struct Route {
    pub path: &'static str,
    pub page: bool,
    handlers: MethodRouter<Arc<Web>>,
}

impl Route {
    /// A page (it answers `GET`, and maybe its form's `POST`).
    fn page(path: &'static str, handlers: MethodRouter<Arc<Web>>) -> Self {
        Self {
            path,
            page: true,
            handlers,
        }
    }

    /// A form's target only (`POST`).
    fn form(path: &'static str, handlers: MethodRouter<Arc<Web>>) -> Self {
        Self {
            path,
            page: false,
            handlers,
        }
    }
}

/// Every route of the UI, the one list the router is built from.
pub(crate) fn table() -> Vec<Route> {
    vec![
        Route::page("/", get(auth::root)),
        Route::page("/signin", get(auth::sign_in_form).post(auth::sign_in)),
        Route::form("/signout", post(auth::sign_out)),
        Route::page(
            "/invite",
            get(auth::invite_form).post(auth::redeem_invitation),
        ),
        Route::page("/app", get(app::dashboard)),
        Route::page("/app/pipeline", get(pipeline::board)),
        Route::form("/app/opportunities/{id}/stage", post(pipeline::move_stage)),
        Route::form(
            "/app/opportunities/{id}/products",
            post(records::set_products),
        ),
        Route::page("/app/forecast", get(pipeline::forecast)),
        Route::page("/app/demand", get(demand::page::<InApp>)),
        Route::form("/app/demand.csv", get(demand::csv::<InApp>)),
        Route::page("/app/registrations", get(registrations::queue)),
        Route::page("/app/scorecards", get(registrations::scorecards)),
        Route::page(
            "/app/registrations/{id}",
            get(registrations::staff_page).post(registrations::decide),
        ),
        Route::page("/app/cases", get(workspace::queue)),
        Route::page("/app/cases/{id}", get(workspace::case).post(workspace::act)),
        Route::form("/app/cases/{id}/comments", post(workspace::comment)),
        // Loaded into the case page after it (not a page of its own).
        Route::form(
            "/app/cases/{id}/articles",
            get(workspace::suggestions).post(workspace::link_article),
        ),
        // Data-subject requests (administrators).
        Route::page("/app/privacy", get(privacy::page).post(privacy::request)),
        Route::form("/app/privacy/exports/{id}", get(privacy::download)),
        Route::form("/app/privacy/erasures", post(privacy::erase)),
        // The audit log: staff in the app, a partner administrator in the portal.
        Route::page("/app/audit", get(audit::page::<InApp>)),
        Route::page("/portal/audit", get(audit::page::<InPortal>)),
        // A record's field history, loaded into its page after it.
        Route::form("/app/history/{kind}/{id}", get(history::panel::<InApp>)),
        Route::form(
            "/portal/history/{kind}/{id}",
            get(history::panel::<InPortal>),
        ),
        Route::form("/app/tasks", post(workspace::add_task)),
        Route::form("/app/tasks/{id}/complete", post(workspace::complete_task)),
        Route::page(
            "/app/notifications",
            get(workspace::notifications::<InApp>).post(workspace::mark_read::<InApp>),
        ),
        Route::form("/app/notifications/badge", get(workspace::badge::<InApp>)),
        Route::page(
            "/app/profile",
            get(workspace::profile).post(workspace::set_profile),
        ),
        Route::page("/app/accounts", get(app::accounts::<InApp>)),
        Route::form("/app/accounts.csv", get(app::accounts_csv::<InApp>)),
        Route::page(
            "/app/accounts/new",
            get(records::new_form::<records::Accounts>).post(records::create::<records::Accounts>),
        ),
        Route::page(
            "/app/accounts/{id}/edit",
            get(records::edit_form::<records::Accounts>).post(records::update::<records::Accounts>),
        ),
        Route::form(
            "/app/accounts/{id}/archive",
            post(records::archive::<records::Accounts>),
        ),
        Route::page("/app/contacts", get(records::list::<records::Contacts>)),
        Route::page(
            "/app/contacts/new",
            get(records::new_form::<records::Contacts>).post(records::create::<records::Contacts>),
        ),
        Route::page(
            "/app/contacts/{id}",
            get(records::page::<records::Contacts>),
        ),
        // A contact's consent, loaded into its page after it; its form posts here.
        Route::form(
            "/app/contacts/{id}/consent",
            get(consent::panel).post(consent::record),
        ),
        Route::page(
            "/app/contacts/{id}/edit",
            get(records::edit_form::<records::Contacts>).post(records::update::<records::Contacts>),
        ),
        Route::form(
            "/app/contacts/{id}/archive",
            post(records::archive::<records::Contacts>),
        ),
        Route::page("/app/leads", get(records::list::<records::Leads>)),
        Route::page(
            "/app/leads/new",
            get(records::new_form::<records::Leads>).post(records::create::<records::Leads>),
        ),
        Route::page("/app/leads/{id}", get(records::page::<records::Leads>)),
        Route::page(
            "/app/leads/{id}/edit",
            get(records::edit_form::<records::Leads>).post(records::update::<records::Leads>),
        ),
        Route::form(
            "/app/leads/{id}/archive",
            post(records::archive::<records::Leads>),
        ),
        Route::form("/app/leads/{id}/convert", post(records::convert)),
        Route::form("/app/leads/{id}/route", post(records::route)),
        Route::page(
            "/app/opportunities",
            get(records::list::<records::Opportunities>),
        ),
        Route::page(
            "/app/opportunities/new",
            get(records::new_form::<records::Opportunities>)
                .post(records::create::<records::Opportunities>),
        ),
        Route::page(
            "/app/opportunities/{id}",
            get(records::page::<records::Opportunities>),
        ),
        Route::page(
            "/app/opportunities/{id}/edit",
            get(records::edit_form::<records::Opportunities>)
                .post(records::update::<records::Opportunities>),
        ),
        Route::form(
            "/app/opportunities/{id}/archive",
            post(records::archive::<records::Opportunities>),
        ),
        Route::page(
            "/app/cases/new",
            get(records::new_form::<records::Cases>).post(records::create::<records::Cases>),
        ),
        Route::page(
            "/app/cases/{id}/edit",
            get(records::edit_form::<records::Cases>).post(records::update::<records::Cases>),
        ),
        Route::form(
            "/app/cases/{id}/archive",
            post(records::archive::<records::Cases>),
        ),
        Route::page(
            "/app/admin/partners/new",
            get(records::new_form::<records::Partners>).post(records::create::<records::Partners>),
        ),
        Route::page(
            "/app/admin/partners/{id}/edit",
            get(records::edit_form::<records::Partners>).post(records::update::<records::Partners>),
        ),
        Route::form(
            "/app/admin/partners/{id}/archive",
            post(records::archive::<records::Partners>),
        ),
        Route::page(
            "/app/admin/territories",
            get(records::list::<records::Territories>),
        ),
        Route::page(
            "/app/admin/territories/new",
            get(records::new_form::<records::Territories>)
                .post(records::create::<records::Territories>),
        ),
        Route::page(
            "/app/admin/territories/{id}/edit",
            get(records::edit_form::<records::Territories>)
                .post(records::update::<records::Territories>),
        ),
        Route::form(
            "/app/admin/territories/{id}/archive",
            post(records::archive::<records::Territories>),
        ),
        // The suggestions of a lookup field (not a page of its own).
        Route::form("/app/lookup/{which}", get(records::lookup)),
        Route::page(
            "/app/accounts/{id}",
            get(app::account).post(interactions::log::<InApp>),
        ),
        Route::form("/app/views", post(app::save_view::<InApp>)),
        Route::form("/app/views/{id}/delete", post(app::delete_view::<InApp>)),
        Route::page("/app/orders", get(orders::list::<InApp>)),
        Route::form("/app/orders.csv", get(orders::csv::<InApp>)),
        Route::page("/app/orders/{id}", get(orders::detail_page::<InApp>)),
        Route::page("/app/search", get(search::page::<InApp>)),
        Route::page("/app/kb", get(kb::list::<InApp>)),
        Route::page("/app/kb/new", get(kb::new_form).post(kb::create)),
        Route::page("/app/kb/review", get(kb_review::queue)),
        Route::page(
            "/app/kb/{id}/revisions/{number}",
            get(kb_review::revision).post(kb_review::act),
        ),
        Route::page("/app/kb/{id}", get(kb::detail_page::<InApp>)),
        Route::form("/app/kb/{id}/feedback", post(kb::give_feedback::<InApp>)),
        Route::form("/app/kb/{id}/viewed", post(kb::viewed::<InApp>)),
        Route::page("/app/kb/{id}/edit", get(kb::edit_form).post(kb::update)),
        Route::page("/app/admin", get(app::admin_index)),
        Route::page("/app/admin/partners", get(app::partners)),
        Route::page("/app/admin/jobs", get(workspace::jobs)),
        Route::form("/app/admin/jobs/{id}/retry", post(workspace::retry_job)),
        Route::page("/app/admin/policy", get(sharing::policy)),
        Route::page(
            "/app/admin/shares",
            get(sharing::shares).post(sharing::grant),
        ),
        Route::form("/app/admin/shares/{id}/revoke", post(sharing::revoke)),
        Route::page(
            "/app/admin/users",
            get(people::users::<InApp>).post(people::invite::<InApp>),
        ),
        Route::form(
            "/app/admin/users/{id}/access",
            post(people::set_disabled::<InApp>),
        ),
        Route::form(
            "/app/admin/invitations/{id}/revoke",
            post(people::revoke_invitation::<InApp>),
        ),
        Route::page(
            "/app/admin/api-keys",
            get(people::api_keys).post(people::create_api_key),
        ),
        Route::form(
            "/app/admin/api-keys/{id}/revoke",
            post(people::revoke_api_key),
        ),
        Route::page(
            "/app/admin/webhooks",
            get(webhooks::list::<InApp>).post(webhooks::create::<InApp>),
        ),
        Route::page(
            "/app/admin/webhooks/{id}",
            get(webhooks::detail::<InApp>).post(webhooks::act::<InApp>),
        ),
        Route::page(
            "/portal/webhooks",
            get(webhooks::list::<InPortal>).post(webhooks::create::<InPortal>),
        ),
        Route::page(
            "/portal/webhooks/{id}",
            get(webhooks::detail::<InPortal>).post(webhooks::act::<InPortal>),
        ),
        Route::page("/portal", get(portal::home)),
        Route::page("/portal/orders", get(orders::list::<InPortal>)),
        Route::form("/portal/orders.csv", get(orders::csv::<InPortal>)),
        Route::page("/portal/orders/{id}", get(orders::detail_page::<InPortal>)),
        Route::form("/portal/shipments/{id}", post(orders::record_shipment)),
        Route::form("/portal/lines/{id}", post(orders::answer_line)),
        Route::page("/portal/accounts", get(app::accounts::<InPortal>)),
        Route::form("/portal/accounts.csv", get(app::accounts_csv::<InPortal>)),
        Route::page(
            "/portal/accounts/{id}",
            get(portal::account).post(interactions::log::<InPortal>),
        ),
        Route::form("/portal/views", post(app::save_view::<InPortal>)),
        Route::form(
            "/portal/views/{id}/delete",
            post(app::delete_view::<InPortal>),
        ),
        Route::page("/portal/cases", get(partner_cases::list)),
        Route::page(
            "/portal/cases/new",
            get(partner_cases::new_form).post(partner_cases::create),
        ),
        Route::page(
            "/portal/cases/{id}",
            get(partner_cases::page).post(partner_cases::set_status),
        ),
        Route::form("/portal/cases/{id}/comments", post(partner_cases::reply)),
        Route::page("/portal/demand", get(demand::page::<InPortal>)),
        Route::form("/portal/demand.csv", get(demand::csv::<InPortal>)),
        Route::page("/portal/leads", get(partner_leads::inbox)),
        Route::form("/portal/leads/{id}", post(partner_leads::answer)),
        Route::page("/portal/registrations", get(registrations::portal_list)),
        Route::page(
            "/portal/registrations/new",
            get(registrations::new_form).post(registrations::create),
        ),
        Route::page(
            "/portal/registrations/{id}",
            get(registrations::portal_page),
        ),
        Route::form(
            "/portal/registrations/{id}/withdraw",
            post(registrations::withdraw),
        ),
        Route::page(
            "/portal/notifications",
            get(workspace::notifications::<InPortal>).post(workspace::mark_read::<InPortal>),
        ),
        Route::form(
            "/portal/notifications/badge",
            get(workspace::badge::<InPortal>),
        ),
        Route::page("/portal/search", get(search::page::<InPortal>)),
        Route::page("/portal/kb", get(kb::list::<InPortal>)),
        Route::page("/portal/kb/{id}", get(kb::detail_page::<InPortal>)),
        Route::form(
            "/portal/kb/{id}/feedback",
            post(kb::give_feedback::<InPortal>),
        ),
        Route::form("/portal/kb/{id}/viewed", post(kb::viewed::<InPortal>)),
        Route::page(
            "/portal/users",
            get(people::users::<InPortal>).post(people::invite::<InPortal>),
        ),
        Route::form(
            "/portal/users/{id}/access",
            post(people::set_disabled::<InPortal>),
        ),
        Route::form(
            "/portal/invitations/{id}/revoke",
            post(people::revoke_invitation::<InPortal>),
        ),
    ]
}

pub(crate) fn routes() -> Router<Arc<Web>> {
    table().into_iter().fold(Router::new(), |router, route| {
        router.route(route.path, route.handlers)
    })
}

/// What the caller may do with one record (`may { update }`), as the API's policy says.
#[derive(Deserialize, Clone, Copy, Debug, Default)]
pub(crate) struct RecordMay {
    #[serde(default)]
    pub update: bool,
    #[serde(default)]
    pub archive: bool,
}

/// An API enum value (`IN_FULFILLMENT`), shown as words ("In fulfillment"); `.0` is the
/// value itself, for forms and links.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub(crate) struct Label(pub String);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&words(&self.0))
    }
}

/// Enum values in words, comma-separated ("Supplier, Public").
pub(crate) fn joined(labels: &[Label]) -> String {
    labels
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who did something, in words: the id where the API gives one, else the side (the
/// company's people are not named to partners).
pub(crate) fn actor_words(actor: Option<&str>, kind: &str) -> String {
    match (actor, kind) {
        (Some("system"), _) | (None, "system") => "the system".into(),
        (Some(actor), _) => actor.to_owned(),
        (None, "internal") => "the company".into(),
        (None, "integrator") => "an integration".into(),
        (None, kind) => format!("a {kind}"),
    }
}

/// `CLOSED_WON` → "Closed won".
pub(crate) fn words(value: &str) -> String {
    // Abbreviations stay as they are.
    if value == "SMB" {
        return value.to_owned();
    }
    let lower = value.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An optional value shown as itself or "—".
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(transparent)]
pub(crate) struct Text(pub Option<String>);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_deref().filter(|s| !s.is_empty()).unwrap_or("—"))
    }
}

impl Text {
    pub fn is_some(&self) -> bool {
        self.0.as_deref().is_some_and(|s| !s.is_empty())
    }
    pub fn value(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

/// An optional enum value shown as words or "—".
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(transparent)]
pub(crate) struct MaybeLabel(pub Option<String>);

impl fmt::Display for MaybeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(value) => f.write_str(&words(value)),
            None => f.write_str("—"),
        }
    }
}

impl MaybeLabel {
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

/// An optional moment shown in the user's time zone to the minute, with the zone's
/// abbreviation ("2026-12-05 14:30 CET"), or "—".
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(transparent)]
pub(crate) struct When(pub Option<DateTime<Utc>>);

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(at) => write!(
                f,
                "{}",
                at.with_timezone(&super::zone()).format("%Y-%m-%d %H:%M %Z")
            ),
            None => f.write_str("—"),
        }
    }
}

impl When {
    /// The day only (in the user's time zone), for tables.
    pub fn day(&self) -> String {
        self.0
            .map(|at| {
                at.with_timezone(&super::zone())
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .unwrap_or_else(|| "—".into())
    }
    /// How far from now, in words ("in 3 hours", "2 days ago", "just now"), or "".
    pub fn relative(&self) -> String {
        self.0
            .map(|at| {
                relative(
                    at,
                    crm_contract::clock::Clock::now(&crm_contract::clock::SystemClock),
                )
            })
            .unwrap_or_default()
    }
    /// The time of day only (in the user's time zone), "14:30".
    #[allow(dead_code)]
    pub fn clock(&self) -> String {
        self.0
            .map(|at| at.with_timezone(&super::zone()).format("%H:%M").to_string())
            .unwrap_or_default()
    }
    /// The machine-readable form for `<time datetime>`.
    pub fn iso(&self) -> String {
        self.0.map(|at| at.to_rfc3339()).unwrap_or_default()
    }
}

/// `at` relative to `now` in words, to the largest whole unit.
pub(crate) fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    let (amount, unit) = match seconds.abs() {
        s if s < 60 => return "just now".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 60 => (s / 86_400, "day"),
        s => (s / (86_400 * 30), "month"),
    };
    let plural = if amount == 1 { "" } else { "s" };
    if seconds > 0 {
        format!("in {amount} {unit}{plural}")
    } else {
        format!("{amount} {unit}{plural} ago")
    }
}

/// A `datetime-local` form value (`2026-12-05T14:30`), read as the user's wall clock in
/// the request's time zone; none when it is not one.
pub(crate) fn local_moment(value: &str) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    chrono::NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%dT%H:%M")
        .ok()
        .and_then(|local| super::zone().from_local_datetime(&local).earliest())
        .map(|at| at.with_timezone(&Utc))
}

/// An optional calendar day.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(transparent)]
pub(crate) struct Day(pub Option<NaiveDate>);

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(day) => write!(f, "{day}"),
            None => f.write_str("—"),
        }
    }
}

/// An optional amount of money, grouped and with its currency's sign ("€164,329.00",
/// "1,250.00 CHF" for a currency without one here), or "—" (hidden from this caller, or
/// unset).
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(transparent)]
pub(crate) struct Money(pub Option<MoneyAmount>);

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct MoneyAmount {
    pub amount: String,
    pub currency: String,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(m) => f.write_str(&money(&m.amount, &m.currency)),
            None => f.write_str("—"),
        }
    }
}

/// `amount` (the API's decimal text) as the user's locale writes it.
fn money(amount: &str, currency: &str) -> String {
    super::numbers().money(amount, currency)
}

impl Money {
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageInfo {
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

/// A connection's nodes, total and page.
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Conn<T> {
    pub nodes: Vec<T>,
    #[serde(default)]
    pub total_count: Option<i64>,
    #[serde(default)]
    pub page_info: PageInfo,
}

impl<T> Default for Conn<T> {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            total_count: None,
            page_info: PageInfo::default(),
        }
    }
}

impl<T> Conn<T> {
    /// "1,000+" when the count reached the cap it was asked with.
    pub fn total(&self, cap: i64) -> String {
        match self.total_count {
            Some(n) if n >= cap => format!("{}+", thousands(cap)),
            Some(n) => thousands(n),
            None => String::new(),
        }
    }
}

/// A count as the user's locale groups it.
pub(crate) fn thousands(n: i64) -> String {
    super::numbers().whole(n)
}

/// The variables of a list page's operation: 25 rows after `after`, filtered and sorted.
pub(crate) fn list_variables(
    after: &Option<String>,
    filter: serde_json::Map<String, serde_json::Value>,
    sort: &str,
    desc: bool,
) -> serde_json::Value {
    serde_json::json!({
        "first": 25,
        "after": param(after),
        "filter": serde_json::Value::Object(filter),
        "orderBy": { "field": sort, "direction": if desc { "DESC" } else { "ASC" } },
    })
}

/// The links between a list's pages: to the next page (when there is one) and back to the
/// first (when this is not it), both keeping the list's filters (`filters`, a query string).
pub(crate) fn pager(
    base: &str,
    filters: &str,
    page: &PageInfo,
    after: &Option<String>,
) -> (Option<String>, Option<String>) {
    let link = |cursor: Option<String>| {
        let cursor =
            cursor.map(|c| serde_urlencoded::to_string([("after", c)]).unwrap_or_default());
        let query: Vec<&str> = [Some(filters), cursor.as_deref()]
            .into_iter()
            .flatten()
            .filter(|q| !q.is_empty())
            .collect();
        if query.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", query.join("&"))
        }
    };
    let next = page
        .has_next_page
        .then(|| page.end_cursor.clone())
        .flatten()
        .map(|cursor| link(Some(cursor)));
    let first = param(after).map(|_| link(None));
    (next, first)
}

/// A record's id as a link's last segment: the API's ids are URL-safe, anything else
/// is refused before it reaches the API.
pub(crate) fn plausible_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A query-string value, cut to a sane length and trimmed; empty is none.
pub(crate) fn param(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(200).collect())
}

/// The posted fields of a form about the record `id`, CSRF checked; an id that can't be
/// one answers "not found", like any record out of the caller's reach.
pub(crate) fn posted_about(
    ctx: &super::Ctx,
    body: &str,
    id: &str,
) -> Result<Vec<(String, String)>, super::PageError> {
    let fields = posted(ctx, body)?;
    if !plausible_id(id) {
        return Err(ctx.refuse(super::client::ApiFailure::NotFound));
    }
    Ok(fields)
}

/// The posted fields of a form, CSRF checked.
pub(crate) fn posted(
    ctx: &super::Ctx,
    body: &str,
) -> Result<Vec<(String, String)>, super::PageError> {
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap_or_default();
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    ctx.check_csrf(csrf)?;
    Ok(fields)
}

/// A posted field's value ("" when it was not sent).
pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// One `<option>` of a select: value, label, selected.
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The choices of an enum filter, the current one selected ("" = any).
pub(crate) fn choices(values: &[&str], current: &Option<String>) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice {
            value: (*v).to_owned(),
            label: words(v),
            selected: current.as_deref() == Some(*v),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_words_and_numbers_group() {
        assert_eq!(words("IN_FULFILLMENT"), "In fulfillment");
        assert_eq!(Label("CLOSED_WON".into()).to_string(), "Closed won");
        assert_eq!(Text(None).to_string(), "—");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
        // Outside a request: the default locale.
        assert_eq!(money("-1234.5", "GBP"), "-£1,234.5");
        assert_eq!(money("12", "EUR"), "€12");
        assert!(plausible_id("acc_01HX-y"));
        assert!(!plausible_id("../etc"));
        assert!(!plausible_id(""));
    }
}
