//! A contact's consent, loaded into the contact's page after it (`hx-get` on load): what
//! the person agreed to per purpose and channel, where each statement came from and when,
//! the whole history of statements, and — for a caller whose rights on the contact include
//! `consents` (the API's `may { updateFields }`) — the form that records a new statement.
//! The form posts through htmx and gets the panel back; without script it posts and
//! returns to the contact's page.

use askama::Template;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{InApp, Signed};
use super::{When, actor_words, field, plausible_id, posted_about, words};

/// Every purpose and channel, as the API names them, in the order the panel lists them.
const KINDS: [(&str, &str); 4] = [
    ("MARKETING", "EMAIL"),
    ("MARKETING", "PHONE"),
    ("PARTNER_SHARING", "EMAIL"),
    ("PARTNER_SHARING", "PHONE"),
];

/// The sources a staff member may name, with the words the form shows.
const SOURCES: [(&str, &str); 4] = [
    ("STAFF", "Told to us (a call, a meeting)"),
    ("FORM", "The person's own form"),
    ("IMPORT", "Imported from another system"),
    ("PARTNER", "Collected by a partner"),
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Current {
    purpose: String,
    channel: String,
    granted: bool,
    source: Option<String>,
    recorded_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    purpose: String,
    channel: String,
    granted: bool,
    source: String,
    evidence: Option<String>,
    recorded_at: chrono::DateTime<chrono::Utc>,
    recorded_by: Option<String>,
    recorder_kind: String,
}

/// One purpose and channel in the panel.
struct Row {
    /// The form field's name (`MARKETING_EMAIL`).
    key: String,
    purpose: String,
    channel: String,
    granted: bool,
    source: String,
    since: When,
}

struct HistoryRow {
    when: When,
    what: String,
    granted: bool,
    source: String,
    evidence: String,
    who: String,
}

#[derive(Template)]
#[template(path = "app/consent.html")]
struct ConsentPanel {
    id: String,
    version: i64,
    csrf: String,
    rows: Vec<Row>,
    history: Vec<HistoryRow>,
    editable: bool,
    sources: Vec<(&'static str, &'static str)>,
    /// What the last save said (recorded, or why not).
    notice: Option<String>,
    error: Option<String>,
    answered: bool,
}

fn source_words(source: &str) -> String {
    SOURCES
        .iter()
        .find(|(s, _)| *s == source)
        .map(|(_, w)| (*w).to_owned())
        .unwrap_or_else(|| "—".into())
}

/// The panel of contact `id` as the caller sees it now.
async fn render(
    ctx: &super::super::Ctx,
    id: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let data = if plausible_id(id) {
        ctx.api::<Value>(
            "query($id: ID!) { contact(id: $id) { id version may { update updateFields } consents { purpose channel granted source recordedAt } consentHistory(first: 100) { purpose channel granted source evidence recordedAt recordedBy recorderKind } } }",
            json!({ "id": id }),
        )
        .await
        .ok()
    } else {
        None
    };
    let contact = data
        .as_ref()
        .map(|d| &d["contact"])
        .filter(|c| !c.is_null());
    let current: Vec<Current> = contact
        .and_then(|c| serde_json::from_value(c["consents"].clone()).ok())
        .unwrap_or_default();
    let statements: Vec<Statement> = contact
        .and_then(|c| serde_json::from_value(c["consentHistory"].clone()).ok())
        .unwrap_or_default();
    // `updateFields` null: every field the caller may update at all.
    let editable = contact.is_some_and(|c| {
        c["may"]["update"] == true
            && c["may"]["updateFields"]
                .as_array()
                .is_none_or(|f| f.iter().any(|f| f == "consents"))
    });
    let panel = ConsentPanel {
        id: id.to_owned(),
        version: contact.and_then(|c| c["version"].as_i64()).unwrap_or(0),
        csrf: ctx.session.csrf_token.clone(),
        rows: current
            .into_iter()
            .map(|c| Row {
                key: format!("{}_{}", c.purpose, c.channel),
                purpose: words(&c.purpose),
                channel: words(&c.channel),
                granted: c.granted,
                source: c
                    .source
                    .as_deref()
                    .map(source_words)
                    .unwrap_or_else(|| "—".into()),
                since: When(c.recorded_at),
            })
            .collect(),
        history: statements
            .iter()
            .map(|s| HistoryRow {
                when: When(Some(s.recorded_at)),
                what: format!(
                    "{} by {}",
                    words(&s.purpose),
                    words(&s.channel).to_lowercase()
                ),
                granted: s.granted,
                source: source_words(&s.source),
                evidence: s.evidence.clone().unwrap_or_default(),
                who: actor_words(s.recorded_by.as_deref(), &s.recorder_kind),
            })
            .collect(),
        editable,
        sources: SOURCES.to_vec(),
        notice,
        error,
        answered: contact.is_some(),
    };
    match panel.render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => Html(String::new()).into_response(),
    }
}

/// `GET /app/contacts/{id}/consent`: the panel.
pub async fn panel(Signed(ctx, _): Signed<InApp>, Path(id): Path<String>) -> Response {
    render(&ctx, &id, None, None).await
}

/// `POST /app/contacts/{id}/consent`: records the statements that differ from what the
/// panel showed (each box as it was is posted beside it), with one source and evidence.
pub async fn record(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fields = match posted_about(&ctx, &body, &id) {
        Ok(fields) => fields,
        Err(refused) => return refused.into_response(),
    };
    let version: i64 = field(&fields, "version").parse().unwrap_or(0);
    let source = field(&fields, "source");
    let evidence = field(&fields, "evidence").trim();
    let consents: Vec<Value> = KINDS
        .iter()
        .filter_map(|(purpose, channel)| {
            let key = format!("{purpose}_{channel}");
            let granted = field(&fields, &key) == "on";
            let was = field(&fields, &format!("was_{key}")) == "true";
            (granted != was).then(|| {
                json!({
                    "purpose": purpose,
                    "channel": channel,
                    "granted": granted,
                    "source": source,
                    "evidence": (!evidence.is_empty()).then_some(evidence),
                })
            })
        })
        .collect();
    let partial = headers.contains_key("hx-request");
    let outcome = if consents.is_empty() {
        Ok("Nothing changed.".to_owned())
    } else {
        ctx.api::<Value>(
            "mutation($id: ID!, $version: Int!, $input: ContactInput!) { updateContact(id: $id, version: $version, input: $input) { id } }",
            json!({ "id": id, "version": version, "input": { "consents": consents } }),
        )
        .await
        .map(|_| "Consent recorded.".to_owned())
    };
    match (outcome, partial) {
        (Ok(notice), true) => render(&ctx, &id, Some(notice), None).await,
        (Ok(notice), false) => ctx
            .see_other(&format!("/app/contacts/{id}"), Some(&notice))
            .await
            .into_response(),
        (Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)), _) => {
            ctx.refuse(failure).into_response()
        }
        (Err(failure), true) => render(&ctx, &id, None, Some(failure.message())).await,
        (Err(failure), false) => ctx
            .see_other(
                &format!("/app/contacts/{id}"),
                Some(&format!("Consent not recorded: {}", failure.message())),
            )
            .await
            .into_response(),
    }
}
