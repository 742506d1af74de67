//! The audit log's page, in the app (staff who read every entry) and the portal (a
//! partner administrator: its organisation's reads and changes, and the company's
//! changes to the records it sees). One API request per page: the federated `auditLog`,
//! to which every service adds its entries; the page merges them newest first. Which
//! entries, fields and people a reader sees is the API's answer, never decided here.

use askama::Template;
use axum::extract::Query;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Area, Chrome, PageResult, Side, Signed, render};
use super::{Choice, When, actor_words, param, words};

/// The services that add entries to the log, as the API names their parts.
const SERVICES: &[&str] = &["account", "orderVisibility", "knowledgeBase"];

/// The record types a reader may filter by.
const TYPES: &[&str] = &[
    "Account",
    "Contact",
    "Interaction",
    "Lead",
    "Opportunity",
    "DealRegistration",
    "Case",
    "CaseComment",
    "Task",
    "Partner",
    "Territory",
    "AccountShare",
    "Product",
    "Order",
    "OrderLine",
    "Shipment",
    "Article",
];

const ACTIONS: &[&str] = &["CREATED", "CHANGED", "READ"];

/// Entries a page asks each service for.
const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuditQuery {
    actor: Option<String>,
    organisation: Option<String>,
    record_type: Option<String>,
    record_id: Option<String>,
    action: Option<String>,
    before: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    at: chrono::DateTime<chrono::Utc>,
    organisation: Option<String>,
    actor: Option<String>,
    actor_kind: String,
    credential: Option<String>,
    action: String,
    record_type: String,
    record_id: String,
    field: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
    values_withheld: bool,
    fields_read: Vec<String>,
    operation: Option<String>,
    sealed: bool,
}

struct Row {
    when: When,
    who: String,
    organisation: String,
    action: String,
    record_type: String,
    record_id: String,
    href: Option<String>,
    what: String,
    old: String,
    new: String,
    withheld: bool,
    read: bool,
    sealed: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    base: &'static str,
    staff: bool,
    actor: String,
    record_id: String,
    organisations: Vec<Choice>,
    types: Vec<Choice>,
    actions: Vec<Choice>,
    rows: Vec<Row>,
    /// The query string of the next (older) page.
    older: Option<String>,
}

/// Where a record of `record_type` opens in this area, if it has a page.
fn record_href(area: Area, record_type: &str, id: &str) -> Option<String> {
    let base = match (area, record_type) {
        (Area::App, "Account") => "/app/accounts",
        (Area::App, "Contact") => "/app/contacts",
        (Area::App, "Lead") => "/app/leads",
        (Area::App, "Opportunity") => "/app/opportunities",
        (Area::App, "Case") => "/app/cases",
        (Area::App, "DealRegistration") => "/app/registrations",
        (Area::App, "Order") => "/app/orders",
        (Area::App, "Article") => "/app/kb",
        (Area::Portal, "Account") => "/portal/accounts",
        (Area::Portal, "Case") => "/portal/cases",
        (Area::Portal, "DealRegistration") => "/portal/registrations",
        (Area::Portal, "Order") => "/portal/orders",
        (Area::Portal, "Article") => "/portal/kb",
        _ => return None,
    };
    Some(format!("{base}/{id}"))
}

/// Who acted, in words; an API key says so.
fn who(entry: &Entry) -> String {
    let words = actor_words(entry.actor.as_deref(), &entry.actor_kind);
    match (&entry.actor, entry.credential.as_deref()) {
        (Some(_), Some(c)) if c.starts_with("api_key:") => format!("{words} (API key)"),
        _ => words,
    }
}

/// `GET /app/audit` and `/portal/audit`: the audit log, filtered, newest first.
pub async fn page<S: Side>(
    Signed(ctx, _): Signed<S>,
    Query(query): Query<AuditQuery>,
) -> PageResult {
    if !ctx.me.reads("AuditEntry") {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "The audit log is for administrators and management.".into(),
        )));
    }
    let staff = S::AREA == Area::App;
    let before = param(&query.before).and_then(|b| {
        chrono::DateTime::parse_from_rfc3339(&b)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    });
    let record_type = param(&query.record_type).filter(|t| TYPES.contains(&t.as_str()));
    let action = param(&query.action).filter(|a| ACTIONS.contains(&a.as_str()));
    let organisation = param(&query.organisation).filter(|_| staff);
    let filter = json!({
        "actor": param(&query.actor),
        "organisation": organisation,
        "recordType": record_type,
        "recordId": param(&query.record_id),
        "action": action,
        "before": before,
    });
    let parts = SERVICES
        .iter()
        .map(|s| format!("{s} {{ hasMore entries {{ at organisation actor actorKind credential action recordType recordId field oldValue newValue valuesWithheld fieldsRead operation sealed }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    // Staff choose an organisation by name; a partner reads its own only.
    let partners = if staff {
        "partners(first: 200) { nodes { id name } }"
    } else {
        ""
    };
    let data: Value = ctx
        .query(
            &format!(
                "query($filter: AuditFilter!, $first: Int!) {{ auditLog(filter: $filter, first: $first) {{ {parts} }} {partners} }}"
            ),
            json!({ "filter": filter, "first": PAGE }),
        )
        .await?;
    let log = &data["auditLog"];
    let mut entries: Vec<Entry> = Vec::new();
    // The oldest time every service has answered down to: below it, a service with more
    // entries has not shown them yet.
    let mut complete_to: Option<chrono::DateTime<chrono::Utc>> = None;
    for service in SERVICES {
        let part: Vec<Entry> =
            serde_json::from_value(log[service]["entries"].clone()).unwrap_or_default();
        if log[service]["hasMore"] == true
            && let Some(oldest) = part.last().map(|e| e.at)
        {
            complete_to = Some(complete_to.map_or(oldest, |t| t.max(oldest)));
        }
        entries.extend(part);
    }
    if let Some(floor) = complete_to {
        entries.retain(|e| e.at >= floor);
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.at));
    let names: Vec<(String, String)> = data["partners"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?.to_owned(), p["name"].as_str()?.to_owned())))
        .collect();
    let name_of = |id: &Option<String>| match id {
        None => "The company".to_owned(),
        Some(id) => names
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.clone()),
    };
    let rows = entries
        .iter()
        .map(|e| {
            let read = e.action == "READ";
            Row {
                when: When(Some(e.at)),
                who: who(e),
                organisation: name_of(&e.organisation),
                action: words(&e.action),
                record_type: e.record_type.clone(),
                record_id: e.record_id.clone(),
                href: record_href(S::AREA, &e.record_type, &e.record_id),
                what: if read {
                    let fields = e.fields_read.join(", ");
                    match &e.operation {
                        Some(op) => format!("{fields} (by {op})"),
                        None => fields,
                    }
                } else {
                    e.field.clone().unwrap_or_default()
                },
                old: e.old_value.clone().unwrap_or_else(|| "—".into()),
                new: e.new_value.clone().unwrap_or_else(|| "—".into()),
                withheld: e.values_withheld,
                read,
                sealed: e.sealed,
            }
        })
        .collect();
    let base = match S::AREA {
        Area::App => "/app/audit",
        Area::Portal => "/portal/audit",
    };
    let older = complete_to.map(|floor| {
        serde_urlencoded::to_string([
            ("actor", param(&query.actor).unwrap_or_default()),
            ("organisation", organisation.clone().unwrap_or_default()),
            ("recordType", record_type.clone().unwrap_or_default()),
            ("recordId", param(&query.record_id).unwrap_or_default()),
            ("action", action.clone().unwrap_or_default()),
            (
                "before",
                floor.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
        ])
        .unwrap_or_default()
    });
    let mut organisations = vec![Choice {
        value: "company".into(),
        label: "The company".into(),
        selected: organisation.as_deref() == Some("company"),
    }];
    organisations.extend(names.iter().map(|(id, name)| Choice {
        value: id.clone(),
        label: name.clone(),
        selected: organisation.as_deref() == Some(id.as_str()),
    }));
    Ok(render(&AuditPage {
        chrome: ctx.chrome("Audit log"),
        base,
        staff,
        actor: param(&query.actor).unwrap_or_default(),
        record_id: param(&query.record_id).unwrap_or_default(),
        organisations,
        types: TYPES
            .iter()
            .map(|t| Choice {
                value: (*t).to_owned(),
                label: (*t).to_owned(),
                selected: record_type.as_deref() == Some(*t),
            })
            .collect(),
        actions: super::choices(ACTIONS, &action),
        rows,
        older,
    }))
}
