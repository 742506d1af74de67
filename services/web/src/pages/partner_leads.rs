//! A distributor's lead inbox in the portal: the leads our staff routed to it, each to
//! accept (it becomes the distributor's to work, by status) or decline with a reason
//! within the time shown; unanswered, a lead returns to our pool. Only the distributor a
//! lead is routed to reads it (the API's `routed_to_my_org` scope).

use askama::Template;
use axum::extract::Path;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Chrome, Ctx, InPortal, PageResult, Signed, refused_if, render};
use super::{Conn, Label, Text, When, field, posted_about, words};

/// The statuses a distributor moves an accepted lead to.
const WORK_STATUSES: &[&str] = &["WORKING", "QUALIFIED", "DISQUALIFIED"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LeadRow {
    pub id: String,
    pub version: i64,
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub email: Text,
    pub phone: Text,
    pub source: Label,
    pub status: Label,
    pub score: i64,
    pub routed_at: When,
    pub respond_by: When,
    pub accepted_at: When,
}

#[derive(Template)]
#[template(path = "portal/leads.html")]
struct Inbox {
    chrome: Chrome,
    waiting: Vec<LeadRow>,
    working: Vec<LeadRow>,
    statuses: Vec<(String, String)>,
    error: Option<(String, String)>,
}

fn not_yours(ctx: &Ctx) -> super::super::PageError {
    ctx.refuse(ApiFailure::Forbidden(
        "Your organisation gets no leads from us here.".into(),
    ))
}

/// `/portal/leads`: the leads routed to the organisation, those waiting for an answer
/// first.
pub async fn inbox(Signed(ctx, _): Signed<InPortal>) -> PageResult {
    inbox_page(ctx, None).await
}

async fn inbox_page(ctx: Ctx, error: Option<(String, String)>) -> PageResult {
    if !ctx.me.reads("Lead") {
        return Err(not_yours(&ctx));
    }
    let data: Value = ctx
        .query(
            "{ leads(first: 200, orderBy: { field: CREATED_AT, direction: DESC }) { nodes { id version firstName lastName company email phone source status score routedAt respondBy acceptedAt } } }",
            json!({}),
        )
        .await?;
    let conn: Conn<LeadRow> = serde_json::from_value(data["leads"].clone()).unwrap_or_default();
    let (working, waiting): (Vec<LeadRow>, Vec<LeadRow>) = conn
        .nodes
        .into_iter()
        .partition(|l| l.accepted_at.0.is_some());
    let refused = error.is_some();
    Ok(refused_if(
        refused,
        render(&Inbox {
            chrome: ctx.chrome("Leads"),
            waiting,
            working,
            statuses: WORK_STATUSES
                .iter()
                .map(|s| ((*s).to_owned(), words(s)))
                .collect(),
            error,
        }),
    ))
}

/// `POST /portal/leads/{id}`: accept, decline (with a reason) or move an accepted lead's
/// status, with the version the page showed.
pub async fn answer(
    Signed(ctx, _): Signed<InPortal>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let version: i64 = field(&fields, "version").parse().unwrap_or(0);
    let (mutation, variables, notice) = match field(&fields, "action") {
        "accept" => (
            "mutation($id: ID!, $v: Int!) { acceptLead(id: $id, version: $v) { id } }",
            json!({ "id": id, "v": version }),
            "Lead accepted: it is yours to work.".to_owned(),
        ),
        "decline" => (
            "mutation($id: ID!, $v: Int!, $r: String!) { declineLead(id: $id, version: $v, reason: $r) }",
            json!({ "id": id, "v": version, "r": field(&fields, "reason").trim() }),
            "Lead given back.".to_owned(),
        ),
        "status" => {
            let status = field(&fields, "status");
            if !WORK_STATUSES.contains(&status) {
                return Err(ctx.refuse(ApiFailure::Invalid(Vec::new())));
            }
            (
                "mutation($id: ID!, $v: Int!, $s: LeadStatus!) { updateLead(id: $id, version: $v, input: { status: $s }) { id } }",
                json!({ "id": id, "v": version, "s": status }),
                format!("Lead moved to {}.", words(status).to_lowercase()),
            )
        }
        _ => return Err(ctx.refuse(ApiFailure::Invalid(Vec::new()))),
    };
    match ctx.api::<Value>(mutation, variables).await {
        Ok(_) => ctx.see_other("/portal/leads", Some(&notice)).await,
        Err(failure @ ApiFailure::SignedOut) => Err(ctx.refuse(failure)),
        Err(failure) => inbox_page(ctx, Some((id, failure.message()))).await,
    }
}
