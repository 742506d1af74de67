//! A distributor's cases in the portal: its organisation's cases on the accounts it sees,
//! opening one, following it (status, the SLA our support works to, who answered), the
//! comments marked for partners (our internal ones never reach it, the API sees to that),
//! replying, and marking it solved or reopening it. Staff answer from the case page of the
//! app.

use askama::Template;
use axum::extract::Path;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Chrome, Ctx, FormErrors, InPortal, PageResult, Signed, render};
use super::workspace::{CaseDetail, CaseRow};
use super::{Choice, Conn, field, plausible_id, posted, posted_about, words};

const PRIORITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "URGENT"];

#[derive(Template)]
#[template(path = "portal/cases.html")]
struct List {
    chrome: Chrome,
    cases: Vec<CaseRow>,
    may_open: bool,
}

/// A role the policy gives no cases: refused before asking the API.
fn not_yours(ctx: &Ctx) -> super::super::PageError {
    ctx.refuse(ApiFailure::Forbidden(
        "Your organisation does not raise cases with us here.".into(),
    ))
}

/// `/portal/cases`: the organisation's cases, open ones first, most urgent first.
pub async fn list(Signed(ctx, _): Signed<InPortal>) -> PageResult {
    if !ctx.me.reads("Case") {
        return Err(not_yours(&ctx));
    }
    let data: Value = ctx
        .query(
            "{ cases(first: 200, orderBy: { field: CREATED_AT, direction: DESC }) { nodes { id subject status priority slaDueAt slaBreached slaPausedAt escalatedAt ownerUserId account { id name } } } }",
            json!({}),
        )
        .await?;
    let conn: Conn<CaseRow> = serde_json::from_value(data["cases"].clone()).unwrap_or_default();
    let mut cases = conn.nodes;
    cases.sort_by_key(|c| {
        (
            matches!(c.status.0.as_str(), "RESOLVED" | "CLOSED"),
            !c.sla_breached,
        )
    });
    Ok(render(&List {
        chrome: ctx.chrome("Cases"),
        may_open: ctx.me.writes("Case"),
        cases,
    }))
}

#[derive(Template)]
#[template(path = "portal/case_form.html")]
struct Form {
    chrome: Chrome,
    accounts: Vec<Choice>,
    priorities: Vec<Choice>,
    subject: String,
    description: String,
    errors: FormErrors,
}

/// `GET /portal/cases/new`.
pub async fn new_form(Signed(ctx, _): Signed<InPortal>) -> PageResult {
    if !ctx.me.writes("Case") {
        return Err(not_yours(&ctx));
    }
    form_page(
        ctx,
        "",
        "MEDIUM",
        String::new(),
        String::new(),
        FormErrors::default(),
    )
    .await
}

async fn form_page(
    ctx: Ctx,
    account: &str,
    priority: &str,
    subject: String,
    description: String,
    errors: FormErrors,
) -> PageResult {
    let data: Value = ctx
        .query(
            "{ accounts(first: 200, orderBy: { field: NAME }) { nodes { id name } } }",
            json!({}),
        )
        .await?;
    let accounts: Conn<super::app::AccountRef> =
        serde_json::from_value(data["accounts"].clone()).unwrap_or_default();
    let status = if errors.any() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    let mut response = render(&Form {
        chrome: ctx.chrome("Open a case"),
        accounts: accounts
            .nodes
            .into_iter()
            .map(|a| Choice {
                selected: a.id == account,
                value: a.id,
                label: a.name,
            })
            .collect(),
        priorities: PRIORITIES
            .iter()
            .map(|p| Choice {
                value: (*p).into(),
                label: words(p),
                selected: *p == priority,
            })
            .collect(),
        subject,
        description,
        errors,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /portal/cases/new`: opens the case (always by the web channel) and shows it.
pub async fn create(Signed(ctx, _): Signed<InPortal>, body: String) -> PageResult {
    let fields = posted(&ctx, &body)?;
    if !ctx.me.writes("Case") {
        return Err(not_yours(&ctx));
    }
    let account = field(&fields, "accountId").to_owned();
    let priority = field(&fields, "priority").to_owned();
    let subject = field(&fields, "subject").trim().to_owned();
    let description = field(&fields, "description").trim().to_owned();
    let input = json!({
        "accountId": account,
        "subject": subject,
        "description": (!description.is_empty()).then_some(&description),
        "priority": if PRIORITIES.contains(&priority.as_str()) { priority.as_str() } else { "MEDIUM" },
        "channel": "WEB",
    });
    match ctx
        .api::<Value>(
            "mutation($input: CaseInput!) { createCase(input: $input) { id slaDueAt } }",
            json!({ "input": input }),
        )
        .await
    {
        Ok(data) => {
            let id = data["createCase"]["id"].as_str().unwrap_or_default();
            ctx.see_other(
                &format!("/portal/cases/{id}"),
                Some("Case opened. Our support team answers by the time shown."),
            )
            .await
        }
        Err(failure @ ApiFailure::SignedOut) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let errors = FormErrors::from_failure(failure);
            form_page(ctx, &account, &priority, subject, description, errors).await
        }
    }
}

#[derive(Template)]
#[template(path = "portal/case.html")]
struct Page {
    chrome: Chrome,
    case: CaseDetail,
    /// The moves a partner makes: solved, reopened.
    statuses: Vec<Choice>,
    reply: String,
    errors: FormErrors,
    may_reply: bool,
}

const CASE_QUERY: &str = "query($id: ID!) { case(id: $id) { id version subject description status priority channel partnerId slaDueAt slaBreached slaPausedAt escalatedAt resolvedAt createdAt ownerUserId nextStatuses may { update } account { id name } comments(first: 200) { totalCount nodes { id body partnerVisible authorUserId authorPartnerId createdAt } } } }";

/// `/portal/cases/{id}`.
pub async fn page(Signed(ctx, _): Signed<InPortal>, Path(id): Path<String>) -> PageResult {
    case_page(ctx, &id, String::new(), FormErrors::default()).await
}

async fn case_page(ctx: Ctx, id: &str, reply: String, errors: FormErrors) -> PageResult {
    if !ctx.me.reads("Case") {
        return Err(not_yours(&ctx));
    }
    if !plausible_id(id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let data: Value = ctx.query(CASE_QUERY, json!({ "id": id })).await?;
    let case: CaseDetail = serde_json::from_value(data["case"].clone())
        .map_err(|_| ctx.refuse(ApiFailure::NotFound))?;
    let statuses = case
        .next_statuses
        .iter()
        .filter(|_| case.may.update)
        .filter_map(|s| {
            match s.as_str() {
                "RESOLVED" => Some("This is solved"),
                "OPEN" if case.row.status.0 == "RESOLVED" => Some("Reopen"),
                _ => None,
            }
            .map(|label| Choice {
                value: s.clone(),
                label: label.into(),
                selected: false,
            })
        })
        .collect();
    let status = if errors.any() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    let mut response = render(&Page {
        chrome: ctx.chrome(&case.row.subject),
        may_reply: ctx.me.writes("CaseComment") && case.row.status.0 != "CLOSED",
        statuses,
        reply,
        errors,
        case,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /portal/cases/{id}/comments`: a reply (partners' comments are always visible to
/// both sides).
pub async fn reply(
    Signed(ctx, _): Signed<InPortal>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let text = field(&fields, "body").trim().to_owned();
    match ctx
        .api::<Value>(
            "mutation($input: CaseCommentInput!) { createCaseComment(input: $input) { id } }",
            json!({ "input": { "caseId": id, "body": text } }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other(&format!("/portal/cases/{id}"), Some("Reply sent."))
                .await
        }
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let errors = FormErrors::from_failure(failure).fold_unknown(&["body"]);
            case_page(ctx, &id, text, errors).await
        }
    }
}

/// `POST /portal/cases/{id}`: marks it solved or reopens it, with the version the page
/// showed.
pub async fn set_status(
    Signed(ctx, _): Signed<InPortal>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let version: i64 = field(&fields, "version").parse().unwrap_or(0);
    let status = field(&fields, "status");
    if !matches!(status, "RESOLVED" | "OPEN") {
        return Err(ctx.refuse(ApiFailure::Invalid(Vec::new())));
    }
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $v: Int!, $s: CaseStatus!) { updateCase(id: $id, version: $v, input: { status: $s }) { id } }",
            json!({ "id": id, "v": version, "s": status }),
        )
        .await
    {
        Ok(_) => {
            let notice = if status == "RESOLVED" {
                "Marked solved. Reopen it here if the problem comes back."
            } else {
                "Reopened: our support team picks it up again."
            };
            ctx.see_other(&format!("/portal/cases/{id}"), Some(notice))
                .await
        }
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let errors = FormErrors::from_failure(failure);
            case_page(ctx, &id, String::new(), errors).await
        }
    }
}
