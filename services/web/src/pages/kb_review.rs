//! The knowledge base's editorial side for staff: one revision with its changes (the
//! reviewer's page: approve, reject, restore), and the review queue. What the caller may
//! do comes from the API (`mayReview`, `may.update`); the pages never re-code the rule
//! that a writer does not approve their own words.

use askama::Template;
use axum::extract::Path;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Chrome, InApp, PageResult, Signed, render};
use super::kb::RevisionRow;
use super::{Conn, Label, When, field, plausible_id, posted_about};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    change: Label,
    old_line: Option<u32>,
    new_line: Option<u32>,
    text: String,
}

impl Line {
    /// `+`, `-` or a space, as a diff shows it.
    fn mark(&self) -> &'static str {
        match self.change.0.as_str() {
            "ADDED" => "+",
            "REMOVED" => "−",
            _ => " ",
        }
    }
    fn class(&self) -> &'static str {
        match self.change.0.as_str() {
            "ADDED" => "added",
            "REMOVED" => "removed",
            _ => "same",
        }
    }
    fn before(&self) -> String {
        self.old_line.map(|n| n.to_string()).unwrap_or_default()
    }
    fn after(&self) -> String {
        self.new_line.map(|n| n.to_string()).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct Changes {
    against: Option<i64>,
    title: Vec<Line>,
    audiences: Vec<Line>,
    tiers: Vec<Line>,
    tags: Vec<Line>,
    body: Vec<Line>,
}

/// One field's changed lines, for the template.
struct FieldChanges {
    name: &'static str,
    lines: Vec<Line>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Revision {
    #[serde(flatten)]
    row: RevisionRow,
    title: String,
    changes: Changes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subject {
    id: String,
    version: i64,
    title: String,
    status: Label,
    may_review: bool,
    may: super::RecordMay,
    working_revision: Option<Numbered>,
    revision_by_number: Option<Revision>,
}

#[derive(Deserialize)]
struct Numbered {
    number: i64,
}

#[derive(Template)]
#[template(path = "app/revision.html")]
struct RevisionPage {
    chrome: Chrome,
    article_id: String,
    article_title: String,
    version: i64,
    live: bool,
    revision: RevisionRow,
    revision_title: String,
    against: Option<i64>,
    fields: Vec<FieldChanges>,
    /// The revision in review is this one, and the caller may approve or reject it.
    may_review: bool,
    /// The caller may start a new draft from this revision.
    may_restore: bool,
    error: Option<String>,
}

const REVISION_QUERY: &str = "query($id: ID!, $n: Int!) { article(id: $id) { id version title status \
    mayReview may { update } workingRevision { number } revisionByNumber(number: $n) { number state \
    authorUserId createdAt reviewerUserId reviewComment title changes { against \
    title { change oldLine newLine text } audiences { change oldLine newLine text } \
    tiers { change oldLine newLine text } \
    tags { change oldLine newLine text } body { change oldLine newLine text } } } } }";

async fn revision_page(
    ctx: super::super::Ctx,
    id: &str,
    number: &str,
    error: Option<String>,
) -> PageResult {
    let Ok(n) = number.parse::<i32>() else {
        return Err(ctx.refuse(ApiFailure::NotFound));
    };
    if !plausible_id(id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    #[derive(Deserialize)]
    struct Data {
        article: Option<Subject>,
    }
    let data: Data = ctx
        .query(REVISION_QUERY, json!({ "id": id, "n": n }))
        .await?;
    let Some(article) = data.article else {
        return Err(ctx.refuse(ApiFailure::NotFound));
    };
    let Some(revision) = article.revision_by_number else {
        return Err(ctx.refuse(ApiFailure::NotFound));
    };
    let is_working = article
        .working_revision
        .as_ref()
        .is_some_and(|w| w.number == revision.row.number);
    let fields = [
        ("Title", revision.changes.title),
        ("Audiences", revision.changes.audiences),
        ("Partner tiers", revision.changes.tiers),
        ("Tags", revision.changes.tags),
        ("Text", revision.changes.body),
    ]
    .into_iter()
    .filter(|(_, lines)| !lines.is_empty())
    .map(|(name, lines)| FieldChanges { name, lines })
    .collect();
    let chrome = ctx.chrome(&format!(
        "Revision {} of {}",
        revision.row.number, article.title
    ));
    Ok(render(&RevisionPage {
        chrome,
        live: article.status.0 == "PUBLISHED",
        article_id: article.id,
        article_title: article.title,
        version: article.version,
        may_review: is_working && article.may_review,
        may_restore: article.may.update && !is_working,
        revision_title: revision.title,
        against: revision.changes.against,
        revision: revision.row,
        fields,
        error,
    }))
}

/// `GET /app/kb/{id}/revisions/{n}`.
pub async fn revision(
    Signed(ctx, _): Signed<InApp>,
    Path((id, number)): Path<(String, String)>,
) -> PageResult {
    revision_page(ctx, &id, &number, None).await
}

/// `POST /app/kb/{id}/revisions/{n}`: approve or reject it (`verdict`), or start a new
/// draft from it (`restore`), with the article version the page showed.
pub async fn act(
    Signed(ctx, _): Signed<InApp>,
    Path((id, number)): Path<(String, String)>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let version: i64 = field(&fields, "version").parse().unwrap_or(0);
    let comment = field(&fields, "comment").trim().to_owned();
    let comment = (!comment.is_empty()).then_some(comment);
    let (mutation, variables, notice) = match field(&fields, "action") {
        "approve" => (
            "mutation($id: ID!, $v: Int!, $c: String) { approveArticle(id: $id, version: $v, comment: $c) { id } }",
            json!({ "id": id, "v": version, "c": comment }),
            "Approved: these words are live.",
        ),
        "reject" => (
            "mutation($id: ID!, $v: Int!, $c: String!) { rejectArticle(id: $id, version: $v, comment: $c) { id } }",
            json!({ "id": id, "v": version, "c": comment.unwrap_or_default() }),
            "Sent back to the writers as a draft.",
        ),
        "restore" => (
            "mutation($id: ID!, $v: Int!, $n: Int!) { restoreArticleRevision(id: $id, version: $v, number: $n) { id } }",
            json!({ "id": id, "v": version, "n": number.parse::<i32>().unwrap_or(0) }),
            "A new draft starts from these words.",
        ),
        _ => return Err(ctx.refuse(ApiFailure::Invalid(Vec::new()))),
    };
    match ctx.api::<Value>(mutation, variables).await {
        Ok(_) => ctx.see_other(&format!("/app/kb/{id}"), Some(notice)).await,
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) => revision_page(ctx, &id, &number, Some(failure.message())).await,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Awaiting {
    id: String,
    title: String,
    status: Label,
    updated_at: When,
    may_review: bool,
    working_revision: Option<WorkingRow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkingRow {
    number: i64,
    author_user_id: Option<String>,
    created_at: When,
}

#[derive(Template)]
#[template(path = "app/review_queue.html")]
struct QueuePage {
    chrome: Chrome,
    rows: Vec<Awaiting>,
    total: String,
}

/// `GET /app/kb/review`: the articles with a revision in review, oldest change first.
pub async fn queue(Signed(ctx, _): Signed<InApp>) -> PageResult {
    if !ctx.me.writes("Article") {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "Your role may read articles but not review them.".into(),
        )));
    }
    #[derive(Deserialize)]
    struct Data {
        articles: Conn<Awaiting>,
    }
    let data: Data = ctx
        .query(
            "{ articles(first: 200, filter: { awaitingReview: true }, \
             orderBy: { field: UPDATED_AT, direction: ASC }) { totalCount(atMost: 1000) \
             nodes { id title status updatedAt mayReview \
             workingRevision { number authorUserId createdAt } } } }",
            json!({}),
        )
        .await?;
    Ok(render(&QueuePage {
        chrome: ctx.chrome("Review queue"),
        total: data.articles.total(1000),
        rows: data.articles.nodes,
    }))
}
