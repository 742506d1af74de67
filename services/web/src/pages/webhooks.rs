//! Webhooks: admins manage every organisation's (under Administration), partner admins
//! their own organisation's (in the portal). A webhook's page shows its delivery history
//! with every attempt, and replays, pings, pauses, rotates and deletes. What the caller
//! may do is the API's answer (`me.may`, and a missing webhook for another's).

use askama::Template;
use axum::extract::{Path, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Area, Chrome, Ctx, FormErrors, PageResult, Side, Signed, refused_if, render};
use super::{Choice, Label, Text, When, field, param, posted, posted_about};

const SECRET: &str = "webhook-secret";
const INTERNAL_ROLES: &[&str] = &["support", "sales", "marketing", "management", "admin"];
const PARTNER_ROLES: &[&str] = &["partner_user", "partner_manager", "partner_admin"];
const STATES: &[&str] = &["PENDING", "DELIVERED", "DEAD", "CANCELLED"];

fn base(area: Area) -> &'static str {
    match area {
        Area::App => "/app/admin/webhooks",
        Area::Portal => "/portal/webhooks",
    }
}

fn check(ctx: &Ctx) -> Result<(), super::super::PageError> {
    if ctx.me.writes("Webhook") {
        Ok(())
    } else {
        Err(ctx.refuse(ApiFailure::Forbidden(
            "Webhooks are managed by admins and partner admins.".into(),
        )))
    }
}

#[derive(Deserialize, Clone)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct WebhookRow {
    id: String,
    name: String,
    url: Option<String>,
    events: Vec<String>,
    role: String,
    organization: Option<IdOnly>,
    status: Label,
    dead_deliveries: i64,
    #[serde(skip)]
    organization_name: String,
}

#[derive(Deserialize, Clone)]
struct PartnerChoice {
    id: String,
    name: String,
}

#[derive(Deserialize, Clone)]
struct EventType {
    name: String,
    description: String,
}

/// One event's checkbox.
struct EventChoice {
    name: String,
    description: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage {
    chrome: Chrome,
    base: &'static str,
    admin: bool,
    webhooks: Vec<WebhookRow>,
    events: Vec<EventChoice>,
    roles: Vec<Choice>,
    partners: Vec<Choice>,
    form: CreateForm,
    errors: FormErrors,
}

/// The create form as posted (kept when refused).
#[derive(Deserialize, Default, Clone)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    partner: String,
    #[serde(default)]
    max_attempts: String,
    /// One filter condition: a field and its values (comma-separated).
    #[serde(default)]
    filter_field: String,
    #[serde(default)]
    filter_values: String,
}

async fn list_page(
    ctx: Ctx,
    form: CreateForm,
    chosen: Vec<String>,
    errors: FormErrors,
) -> PageResult {
    check(&ctx)?;
    let admin = ctx.area == Area::App;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        webhooks: Vec<WebhookRow>,
        webhook_event_types: Vec<EventType>,
        #[serde(default)]
        partners: Option<super::Conn<PartnerChoice>>,
    }
    let query = if admin {
        "query { webhooks { id name url events role organization { id } status deadDeliveries } \
         webhookEventTypes { name description } \
         partners(first: 200, orderBy: { field: NAME, direction: ASC }) { nodes { id name } } }"
    } else {
        "query { webhooks { id name url events role organization { id } status deadDeliveries } \
         webhookEventTypes { name description } }"
    };
    let mut data: Data = ctx.query(query, json!({})).await?;
    let partners = data.partners.map(|p| p.nodes).unwrap_or_default();
    for row in &mut data.webhooks {
        row.organization_name = match &row.organization {
            None => "The company".into(),
            Some(o) => partners
                .iter()
                .find(|p| p.id == o.id)
                .map_or_else(|| o.id.clone(), |p| p.name.clone()),
        };
    }
    let roles: Vec<&str> = if admin {
        INTERNAL_ROLES
            .iter()
            .chain(PARTNER_ROLES)
            .copied()
            .collect()
    } else {
        PARTNER_ROLES.to_vec()
    };
    let refused = errors.any();
    Ok(refused_if(
        refused,
        render(&ListPage {
            chrome: ctx.chrome("Webhooks"),
            base: base(ctx.area),
            admin,
            webhooks: data.webhooks,
            events: data
                .webhook_event_types
                .into_iter()
                .filter(|e| e.name != "webhook.ping")
                .map(|e| EventChoice {
                    checked: chosen.contains(&e.name),
                    name: e.name,
                    description: e.description,
                })
                .collect(),
            roles: super::choices(&roles, &Some(form.role.clone())),
            partners: partners
                .iter()
                .map(|p| Choice {
                    value: p.id.clone(),
                    label: p.name.clone(),
                    selected: form.partner == p.id,
                })
                .collect(),
            form,
            errors,
        }),
    ))
}

/// `GET …/webhooks`.
pub async fn list<S: Side>(Signed(ctx, _): Signed<S>) -> PageResult {
    list_page(
        ctx,
        CreateForm::default(),
        Vec::new(),
        FormErrors::default(),
    )
    .await
}

/// `POST …/webhooks`: makes one; its secret is shown once, on the next page.
pub async fn create<S: Side>(Signed(ctx, _): Signed<S>, body: String) -> PageResult {
    let fields = posted(&ctx, &body)?;
    check(&ctx)?;
    let events: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "events")
        .map(|(_, v)| v.clone())
        .collect();
    let form = CreateForm {
        name: field(&fields, "name").to_owned(),
        url: field(&fields, "url").to_owned(),
        role: field(&fields, "role").to_owned(),
        partner: field(&fields, "partner").to_owned(),
        max_attempts: field(&fields, "max_attempts").to_owned(),
        filter_field: field(&fields, "filter_field").to_owned(),
        filter_values: field(&fields, "filter_values").to_owned(),
    };
    // No URL: a change feed, read through the API.
    let url = form.url.trim();
    let mut input = json!({
        "name": form.name.trim(),
        "url": (!url.is_empty()).then_some(url),
        "events": events,
        "role": form.role,
    });
    if ctx.area == Area::App && !form.partner.is_empty() {
        input["partnerId"] = json!(form.partner);
    }
    if !form.max_attempts.trim().is_empty() {
        match form.max_attempts.trim().parse::<i32>() {
            Ok(n) => input["maxAttempts"] = json!(n),
            Err(_) => {
                let errors = FormErrors {
                    fields: vec![super::super::client::FieldError {
                        field: "maxAttempts".into(),
                        message: "must be a whole number".into(),
                    }],
                    general: None,
                };
                return list_page(ctx, form, events, errors).await;
            }
        }
    }
    if !form.filter_field.trim().is_empty() {
        let values: Vec<&str> = form
            .filter_values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        input["filter"] = json!([{ "field": form.filter_field.trim(), "values": values }]);
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        create_webhook: Created,
    }
    #[derive(Deserialize)]
    struct Created {
        secret: String,
        webhook: IdOnly,
    }
    match ctx
        .api::<Data>(
            "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { id } } }",
            json!({ "input": input }),
        )
        .await
    {
        Ok(data) => {
            let page = format!("{}/{}", base(ctx.area), data.create_webhook.webhook.id);
            ctx.see_other_revealing(
                &page,
                "Made the webhook. Copy its signing secret now: it is not shown again.",
                SECRET,
                &data.create_webhook.secret,
            )
            .await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(failure) => {
            let errors = FormErrors::from_failure(failure).fold_unknown(&[
                "name",
                "url",
                "events",
                "role",
                "partnerId",
                "maxAttempts",
                "filter[0].field",
                "filter[0].values",
            ]);
            list_page(ctx, form, events, errors).await
        }
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Attempt {
    attempt: i64,
    at: When,
    status: Option<i64>,
    error: Text,
    duration_ms: i64,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct DeliveryRow {
    id: String,
    event: String,
    record_type: Text,
    record_id: Text,
    sequence: i64,
    changes: Vec<String>,
    state: Label,
    attempts: i64,
    last_status: Option<i64>,
    last_error: Text,
    next_attempt_at: When,
    created_at: When,
    delivered_at: When,
    body: Text,
    attempt_history: Vec<Attempt>,
}

impl DeliveryRow {
    fn replayable(&self) -> bool {
        self.attempts > 0 || self.state.0 != "PENDING"
    }
}

#[derive(Deserialize, Clone)]
struct Condition {
    field: String,
    values: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct WebhookDetail {
    id: String,
    name: String,
    url: Option<String>,
    events: Vec<String>,
    filter: Vec<Condition>,
    role: String,
    organization: Option<IdOnly>,
    status: Label,
    suspended_reason: Text,
    max_attempts: i64,
    created_at: When,
    dead_deliveries: i64,
    deliveries: Vec<DeliveryRow>,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct DetailPage {
    chrome: Chrome,
    base: &'static str,
    webhook: WebhookDetail,
    states: Vec<Choice>,
    state: String,
    older: Option<String>,
    secret: Option<String>,
}

#[derive(Deserialize)]
pub struct DetailQuery {
    state: Option<String>,
    after: Option<String>,
}

/// How many deliveries a page shows.
const PAGE: usize = 25;

/// `GET …/webhooks/{id}`.
pub async fn detail<S: Side>(
    Signed(ctx, _): Signed<S>,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    check(&ctx)?;
    if !super::plausible_id(&id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let state = param(&query.state).filter(|s| STATES.contains(&s.as_str()));
    let after = param(&query.after).filter(|a| super::plausible_id(a));
    #[derive(Deserialize)]
    struct Data {
        webhook: Option<WebhookDetail>,
    }
    let data: Data = ctx
        .query(
            "query($id: ID!, $state: WebhookDeliveryState, $after: ID, $first: Int!) { webhook(id: $id) { \
               id name url events filter { field values } role organization { id } status suspendedReason \
               maxAttempts createdAt deadDeliveries \
               deliveries(first: $first, after: $after, state: $state) { id event recordType recordId sequence \
                 changes state attempts lastStatus lastError nextAttemptAt createdAt deliveredAt body \
                 attemptHistory { attempt at status error durationMs } } } }",
            json!({ "id": id, "state": state, "after": after, "first": PAGE }),
        )
        .await?;
    let Some(webhook) = data.webhook else {
        return Err(ctx.refuse(ApiFailure::NotFound));
    };
    let older = (webhook.deliveries.len() == PAGE)
        .then(|| webhook.deliveries.last().map(|d| d.id.clone()))
        .flatten();
    let secret = ctx.take_reveal(SECRET).await;
    let mut chrome = ctx.chrome(&webhook.name);
    chrome.title = format!("Webhook: {}", webhook.name);
    Ok(render(&DetailPage {
        chrome,
        base: base(ctx.area),
        states: super::choices(STATES, &state),
        state: state.unwrap_or_default(),
        older,
        webhook,
        secret,
    }))
}

/// `POST …/webhooks/{id}`: one of the page's actions (`action` names it).
pub async fn act<S: Side>(
    Signed(ctx, _): Signed<S>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    check(&ctx)?;
    let page = format!("{}/{id}", base(ctx.area));
    let delivery = field(&fields, "delivery").to_owned();
    let (operation, variables, notice): (&str, Value, &str) = match field(&fields, "action") {
        "ping" => (
            "mutation($id: ID!) { pingWebhook(id: $id) { id } }",
            json!({ "id": id }),
            "A test delivery is on its way.",
        ),
        "pause" => (
            "mutation($id: ID!) { updateWebhook(id: $id, input: { paused: true }) { id } }",
            json!({ "id": id }),
            "Paused: nothing is sent until you resume.",
        ),
        "resume" => (
            "mutation($id: ID!) { updateWebhook(id: $id, input: { paused: false }) { id } }",
            json!({ "id": id }),
            "Resumed.",
        ),
        "take-over" => (
            "mutation($id: ID!) { takeOverWebhook(id: $id) { id } }",
            json!({ "id": id }),
            "You answer for this webhook now; it sends again.",
        ),
        "replay-dead" => (
            "mutation($id: ID!) { replayDeadWebhookDeliveries(webhookId: $id) }",
            json!({ "id": id }),
            "The dead deliveries will be sent again now.",
        ),
        "replay" if super::plausible_id(&delivery) => (
            "mutation($id: ID!) { replayWebhookDelivery(id: $id) { id } }",
            json!({ "id": delivery }),
            "The delivery will be sent again now, as the record reads now.",
        ),
        "delete" => (
            "mutation($id: ID!) { deleteWebhook(id: $id) }",
            json!({ "id": id }),
            "Deleted the webhook and its delivery history.",
        ),
        "rotate" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Data {
                rotate_webhook_secret: Rotated,
            }
            #[derive(Deserialize)]
            struct Rotated {
                secret: String,
            }
            let data: Data = ctx
                .query(
                    "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
                    json!({ "id": id }),
                )
                .await?;
            return ctx
                .see_other_revealing(
                    &page,
                    "A new signing secret: copy it now. The old one no longer signs.",
                    SECRET,
                    &data.rotate_webhook_secret.secret,
                )
                .await;
        }
        _ => return Err(ctx.refuse(ApiFailure::NotFound)),
    };
    ctx.query::<Value>(operation, variables).await?;
    let back = if field(&fields, "action") == "delete" {
        base(ctx.area).to_owned()
    } else {
        page
    };
    ctx.see_other(&back, Some(notice)).await
}
