//! Deal registration, both sides. In the portal a distributor registers a deal (an
//! account it can see, or a prospect by name and domain; products, an estimate, a close
//! date), follows its registrations and their decisions, sees the opportunity an approval
//! attributed to it with its protection window, and withdraws one. In the app, staff work
//! the review queue: each registration with the conflicts only they see, approved (linking
//! an open opportunity or creating one) or rejected with a reason; an approval's protection
//! can be moved.
//!
//! What the partner reads after submitting never depends on conflicts: the same notice and
//! the same page whether or not another party claims the customer.

use askama::Template;
use axum::extract::{Path, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Chrome, Ctx, FormErrors, InApp, InPortal, PageResult, Signed, render};
use super::{
    Choice, Conn, Day, Label, Money, RecordMay, Text, When, field, param, plausible_id, posted,
    posted_about, words,
};

/// The statuses a queue can show, the review's first.
const STATUSES: &[&str] = &["SUBMITTED", "APPROVED", "REJECTED", "EXPIRED"];

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Registration {
    pub id: String,
    pub version: i64,
    pub prospect_name: String,
    pub prospect_domain: Text,
    pub status: Label,
    pub estimated_amount: Money,
    pub expected_close: Day,
    pub created_at: When,
    pub archived_at: When,
    pub decision_reason: Text,
    pub decided_at: When,
    pub protected_until: When,
    pub notes: Text,
    #[serde(default)]
    pub products: Vec<RegisteredProduct>,
    pub account: Option<super::app::AccountRef>,
    pub partner: Option<PartnerRef>,
    pub opportunity: Option<Attributed>,
    /// Staff only (null for partners).
    pub conflicts: Option<Vec<Conflict>>,
    pub may: RecordMay,
}

impl Registration {
    /// The state in words: withdrawn (archived) before anything else.
    pub fn state(&self) -> String {
        if self.archived_at.0.is_some() {
            "Withdrawn".into()
        } else {
            self.status.to_string()
        }
    }
    pub fn conflict_count(&self) -> usize {
        self.conflicts.as_ref().map_or(0, Vec::len)
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegisteredProduct {
    pub product_id: String,
    pub quantity: i64,
}

#[derive(Deserialize, Clone)]
pub(crate) struct PartnerRef {
    pub name: String,
}

/// The opportunity an approval attributed to the partner.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attributed {
    pub id: String,
    pub name: String,
    pub stage: Label,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Conflict {
    pub kind: Label,
    pub reason: Label,
    pub record_id: String,
    pub name: String,
    pub partner_name: Option<String>,
    pub protected_until: When,
}

impl Conflict {
    /// Where staff open the conflicting record.
    pub fn href(&self) -> String {
        match self.kind.0.as_str() {
            "OPPORTUNITY" => format!("/app/opportunities/{}", self.record_id),
            _ => format!("/app/registrations/{}", self.record_id),
        }
    }
}

const FIELDS: &str = "id version prospectName prospectDomain status estimatedAmount { amount currency } expectedClose createdAt archivedAt decisionReason decidedAt protectedUntil notes products { productId quantity } account { id name } partner { name } opportunity { id name stage } may { update archive }";

/// A product a registration form offers.
#[derive(Deserialize, Clone)]
pub(crate) struct ProductChoice {
    pub id: String,
    pub name: String,
    pub sku: String,
}

#[derive(Template)]
#[template(path = "portal/registrations.html")]
struct PortalList {
    chrome: Chrome,
    registrations: Vec<Registration>,
    may_register: bool,
}

/// `/portal/registrations`: the organisation's registrations, newest first, withdrawn ones
/// included, each with its decision and, once approved, the attributed deal.
pub async fn portal_list(Signed(ctx, _): Signed<InPortal>) -> PageResult {
    if !ctx.me.reads("DealRegistration") {
        return Err(not_registering(&ctx));
    }
    let data: Value = ctx
        .query(
            &format!("{{ dealRegistrations(first: 200, filter: {{ includeArchived: true }}, orderBy: {{ field: CREATED_AT, direction: DESC }}) {{ nodes {{ {FIELDS} }} }} }}"),
            json!({}),
        )
        .await?;
    let conn: Conn<Registration> =
        serde_json::from_value(data["dealRegistrations"].clone()).unwrap_or_default();
    Ok(render(&PortalList {
        chrome: ctx.chrome("Deal registrations"),
        may_register: ctx.me.writes("DealRegistration"),
        registrations: conn.nodes,
    }))
}

/// A role the policy gives no registrations: refused before asking the API.
fn not_registering(ctx: &Ctx) -> super::super::PageError {
    ctx.refuse(ApiFailure::Forbidden(
        "Your organisation does not register deals with us.".into(),
    ))
}

/// How many product lines the registration form offers.
const PRODUCT_ROWS: usize = 5;

/// What the form holds (typed in, or after a refusal).
#[derive(Default, Clone)]
pub(crate) struct FormValues {
    pub account: String,
    pub prospect_name: String,
    pub prospect_domain: String,
    pub amount: String,
    pub currency: String,
    pub expected_close: String,
    pub notes: String,
    /// (product id, quantity) per row.
    pub lines: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "portal/registration_form.html")]
struct RegistrationForm {
    chrome: Chrome,
    values: FormValues,
    errors: FormErrors,
    products: Vec<ProductChoice>,
    accounts: Vec<super::app::AccountRef>,
}

impl RegistrationForm {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }
    /// The error of product row `n`'s field.
    fn line_error(&self, n: impl std::borrow::Borrow<usize>) -> Option<String> {
        let n = *n.borrow();
        ["productId", "quantity"]
            .iter()
            .find_map(|f| self.errors.get(&format!("products.{n}.{f}")))
            .map(str::to_owned)
    }
}

/// `GET /portal/registrations/new`.
pub async fn new_form(Signed(ctx, _): Signed<InPortal>) -> PageResult {
    if !ctx.me.writes("DealRegistration") {
        return Err(not_registering(&ctx));
    }
    let values = FormValues {
        currency: "EUR".into(),
        lines: vec![(String::new(), "1".into()); PRODUCT_ROWS],
        ..FormValues::default()
    };
    form_page(ctx, values, FormErrors::default()).await
}

async fn form_page(ctx: Ctx, values: FormValues, errors: FormErrors) -> PageResult {
    let data: Value = ctx
        .query(
            "{ products(first: 200) { nodes { id name sku } } accounts(first: 200, orderBy: { field: NAME }) { nodes { id name } } }",
            json!({}),
        )
        .await?;
    let products: Conn<ProductChoice> =
        serde_json::from_value(data["products"].clone()).unwrap_or_default();
    let accounts: Conn<super::app::AccountRef> =
        serde_json::from_value(data["accounts"].clone()).unwrap_or_default();
    let status = if errors.any() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    let mut response = render(&RegistrationForm {
        chrome: ctx.chrome("Register a deal"),
        values,
        errors,
        products: products.nodes,
        accounts: accounts.nodes,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /portal/registrations/new`: submits the registration. Whatever the review will
/// find, the partner is told the same: it was submitted and will be decided.
pub async fn create(Signed(ctx, _): Signed<InPortal>, body: String) -> PageResult {
    let fields = posted(&ctx, &body)?;
    if !ctx.me.writes("DealRegistration") {
        return Err(not_registering(&ctx));
    }
    let values = FormValues {
        account: field(&fields, "accountId").trim().to_owned(),
        prospect_name: field(&fields, "prospectName").trim().to_owned(),
        prospect_domain: field(&fields, "prospectDomain").trim().to_owned(),
        amount: field(&fields, "estimatedAmount").trim().to_owned(),
        currency: field(&fields, "currency").trim().to_uppercase(),
        expected_close: field(&fields, "expectedClose").trim().to_owned(),
        notes: field(&fields, "notes").trim().to_owned(),
        lines: (0..PRODUCT_ROWS)
            .map(|n| {
                (
                    field(&fields, &format!("product{n}")).to_owned(),
                    field(&fields, &format!("quantity{n}")).trim().to_owned(),
                )
            })
            .collect(),
    };
    // Rows without a product are left out; a quantity that is not a number is named on
    // its row before the API is asked.
    let mut products = Vec::new();
    let mut typed = Vec::new();
    for (n, (product, quantity)) in values.lines.iter().enumerate() {
        if product.is_empty() {
            continue;
        }
        match quantity.parse::<i64>() {
            Ok(q) => products.push(json!({ "productId": product, "quantity": q })),
            Err(_) => typed.push(super::super::client::FieldError {
                field: format!("products.{n}.quantity"),
                message: "is not a whole number".into(),
            }),
        }
    }
    if !typed.is_empty() {
        return form_page(
            ctx,
            values,
            FormErrors::from_failure(ApiFailure::Invalid(typed)),
        )
        .await;
    }
    let text = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    let mut input = json!({
        "prospectName": text(&values.prospect_name),
        "prospectDomain": text(&values.prospect_domain),
        "products": products,
        "estimatedAmount": values.amount,
        "currency": values.currency,
        "expectedClose": text(&values.expected_close),
        "notes": text(&values.notes),
    });
    if !values.account.is_empty() {
        input["accountId"] = json!(values.account);
    }
    match ctx
        .api::<Value>(
            "mutation($input: DealRegistrationInput!) { createDealRegistration(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other(
                "/portal/registrations",
                Some("Deal registered. We review every registration and tell you the decision here."),
            )
            .await
        }
        Err(failure @ ApiFailure::SignedOut) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let errors = FormErrors::from_failure(failure);
            form_page(ctx, values, errors).await
        }
    }
}

#[derive(Template)]
#[template(path = "registration.html")]
struct Detail {
    chrome: Chrome,
    r: Registration,
    staff: bool,
    base: &'static str,
    names: std::collections::BTreeMap<String, String>,
    /// Staff: the open opportunities among the conflicts, to attribute instead of a new one.
    link_choices: Vec<Choice>,
    error: Option<String>,
}

/// The page of one registration on `staff`'s side.
async fn detail(ctx: Ctx, id: &str, staff: bool, error: Option<String>) -> PageResult {
    if !ctx.me.reads("DealRegistration") {
        return Err(not_registering(&ctx));
    }
    if !plausible_id(id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let conflicts = if staff {
        " conflicts { kind reason recordId name partnerName protectedUntil }"
    } else {
        ""
    };
    let data: Value = ctx
        .query(
            &format!("query($id: ID!) {{ dealRegistration(id: $id) {{ {FIELDS}{conflicts} }} products(first: 200) {{ nodes {{ id name sku }} }} }}"),
            json!({ "id": id }),
        )
        .await?;
    let r: Registration = serde_json::from_value(data["dealRegistration"].clone())
        .map_err(|_| ctx.refuse(ApiFailure::NotFound))?;
    let products: Conn<ProductChoice> =
        serde_json::from_value(data["products"].clone()).unwrap_or_default();
    let link_choices = r
        .conflicts
        .iter()
        .flatten()
        .filter(|c| c.kind.0 == "OPPORTUNITY")
        .map(|c| Choice {
            value: c.record_id.clone(),
            label: format!("Attribute “{}”", c.name),
            selected: false,
        })
        .collect();
    Ok(render(&Detail {
        chrome: ctx.chrome(&format!("Deal registration: {}", r.prospect_name)),
        staff,
        base: if staff {
            "/app/registrations"
        } else {
            "/portal/registrations"
        },
        names: products.nodes.into_iter().map(|p| (p.id, p.name)).collect(),
        link_choices,
        error,
        r,
    }))
}

/// `/portal/registrations/{id}`.
pub async fn portal_page(Signed(ctx, _): Signed<InPortal>, Path(id): Path<String>) -> PageResult {
    detail(ctx, &id, false, None).await
}

/// `POST /portal/registrations/{id}/withdraw`: archives it (it stays in the list as
/// withdrawn).
pub async fn withdraw(
    Signed(ctx, _): Signed<InPortal>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let version: i64 = field(&fields, "version").parse().unwrap_or(0);
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $v: Int!) { archiveDealRegistration(id: $id, version: $v) { id } }",
            json!({ "id": id, "v": version }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other("/portal/registrations", Some("Registration withdrawn."))
                .await
        }
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) => detail(ctx, &id, false, Some(failure.message())).await,
    }
}

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    status: Option<String>,
    q: Option<String>,
}

#[derive(Template)]
#[template(path = "app/registrations.html")]
struct Queue {
    chrome: Chrome,
    statuses: Vec<Choice>,
    q: String,
    total: i64,
    registrations: Vec<Registration>,
}

/// `/app/registrations`: the review queue (submitted ones first, oldest first), with each
/// registration's partner and how many conflicts it has; other statuses by filter.
pub async fn queue(Signed(ctx, _): Signed<InApp>, Query(query): Query<QueueQuery>) -> PageResult {
    if !ctx.me.reads("DealRegistration") {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "Your role does not review deal registrations.".into(),
        )));
    }
    let status = param(&query.status)
        .filter(|s| STATUSES.contains(&s.as_str()))
        .unwrap_or_else(|| "SUBMITTED".into());
    let data: Value = ctx
        .query(
            &format!("query($f: DealRegistrationFilter) {{ dealRegistrations(first: 200, filter: $f) {{ totalCount nodes {{ {FIELDS} conflicts {{ kind reason recordId name partnerName protectedUntil }} }} }} }}"),
            json!({ "f": { "status": status, "text": param(&query.q) } }),
        )
        .await?;
    let conn: Conn<Registration> =
        serde_json::from_value(data["dealRegistrations"].clone()).unwrap_or_default();
    Ok(render(&Queue {
        chrome: ctx.chrome("Deal registrations"),
        statuses: STATUSES
            .iter()
            .map(|s| Choice {
                value: (*s).into(),
                label: words(s),
                selected: *s == status,
            })
            .collect(),
        q: param(&query.q).unwrap_or_default(),
        total: conn.total_count.unwrap_or(0),
        registrations: conn.nodes,
    }))
}

/// `/app/registrations/{id}`.
pub async fn staff_page(Signed(ctx, _): Signed<InApp>, Path(id): Path<String>) -> PageResult {
    detail(ctx, &id, true, None).await
}

/// `POST /app/registrations/{id}`: approve, reject or move the protection (with the
/// version the page showed).
pub async fn decide(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let version: i64 = field(&fields, "version").parse().unwrap_or(0);
    let optional = |name: &str| {
        let v = field(&fields, name).trim();
        (!v.is_empty()).then(|| v.to_owned())
    };
    let (mutation, variables, notice) = match field(&fields, "action") {
        "approve" => {
            let days = match optional("protectionDays").map(|d| d.parse::<i64>()) {
                None => None,
                Some(Ok(d)) => Some(d),
                Some(Err(_)) => {
                    return detail(
                        ctx,
                        &id,
                        true,
                        Some("Protection: the number of days is not a whole number.".into()),
                    )
                    .await;
                }
            };
            (
                "mutation($id: ID!, $v: Int!, $input: ApproveDealRegistrationInput!) { approveDealRegistration(id: $id, version: $v, input: $input) { id } }",
                json!({ "id": id, "v": version, "input": {
                    "opportunityId": optional("opportunityId"),
                    "protectionDays": days,
                    "note": optional("note"),
                } }),
                "Approved: the deal is attributed to the partner.",
            )
        }
        "reject" => (
            "mutation($id: ID!, $v: Int!, $r: String!) { rejectDealRegistration(id: $id, version: $v, reason: $r) { id } }",
            json!({ "id": id, "v": version, "r": field(&fields, "reason").trim() }),
            "Rejected; the partner reads your reason.",
        ),
        "extend" => {
            let Some(until) = super::local_moment(&format!("{}T23:59", field(&fields, "until")))
            else {
                return detail(ctx, &id, true, Some("Protected until: pick a day.".into())).await;
            };
            (
                "mutation($id: ID!, $v: Int!, $u: DateTime!) { extendDealRegistration(id: $id, version: $v, until: $u) { id } }",
                json!({ "id": id, "v": version, "u": until.to_rfc3339() }),
                "Protection moved.",
            )
        }
        _ => return Err(ctx.refuse(ApiFailure::Invalid(Vec::new()))),
    };
    match ctx.api::<Value>(mutation, variables).await {
        Ok(_) => {
            ctx.see_other(&format!("/app/registrations/{id}"), Some(notice))
                .await
        }
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) => detail(ctx, &id, true, Some(failure.message())).await,
    }
}

/// One distributor on the staff's scorecards page.
pub(crate) struct PartnerCard {
    pub id: String,
    pub name: String,
    pub tier: String,
    pub card: super::portal::Scorecard,
}

#[derive(Template)]
#[template(path = "app/scorecards.html")]
struct ScorecardsPage {
    chrome: Chrome,
    partners: Vec<PartnerCard>,
}

/// `/app/scorecards`: every distributor's scorecard side by side (registrations, won
/// deals and revenue, lead acceptance, case SLA), for staff who review registrations.
pub async fn scorecards(Signed(ctx, _): Signed<InApp>) -> PageResult {
    if !(ctx.me.reads("DealRegistration") && ctx.me.reads("Partner")) {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "Partner scorecards are for staff who review deal registrations.".into(),
        )));
    }
    let data: Value = ctx
        .query(
            &format!(
                "{{ partners(first: 200, filter: {{ kind: DISTRIBUTOR }}, orderBy: {{ field: NAME, direction: ASC }}) {{ nodes {{ id name tier {} }} }} }}",
                super::portal::SCORECARD_FIELDS
            ),
            json!({}),
        )
        .await?;
    let partners = data["partners"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| PartnerCard {
            id: p["id"].as_str().unwrap_or_default().to_owned(),
            name: p["name"].as_str().unwrap_or_default().to_owned(),
            tier: words(p["tier"].as_str().unwrap_or_default()),
            card: super::portal::Scorecard(p["scorecard"].clone()),
        })
        .collect();
    Ok(render(&ScorecardsPage {
        chrome: ctx.chrome("Partner scorecards"),
        partners,
    }))
}
