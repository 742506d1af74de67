//! The staff workspace: the case queue and the case page (status, taking a case, internal
//! and partner-visible comments, tasks, suggested articles), tasks ("my day" on the
//! dashboard, completing one), notifications with the header's badge, and the profile's
//! time zone. Every action shown is one the API says the caller may take.

use askama::Template;
use axum::extract::{Path, Query};
use axum::response::{Html, IntoResponse};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{
    Chrome, Ctx, FormErrors, InApp, ME_FIELDS, Me, PageResult, Side, Signed, render,
};
use super::{
    Choice, Conn, Label, RecordMay, Text, When, field, param, plausible_id, posted, posted_about,
    words,
};

/// The queue's views: what support looks at, in order.
const VIEWS: &[(&str, &str)] = &[
    ("mine", "Mine"),
    ("unassigned", "Unassigned"),
    ("due", "Breaching or due soon"),
    ("open", "All open"),
    ("all", "All"),
];
const DUE_WITHIN_HOURS: &[i64] = &[2, 4, 8, 24];

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    view: Option<String>,
    hours: Option<String>,
    q: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CaseRow {
    pub id: String,
    pub subject: String,
    pub status: Label,
    pub priority: Label,
    pub sla_due_at: When,
    pub sla_breached: bool,
    pub sla_paused_at: When,
    pub escalated_at: When,
    pub owner_user_id: Option<String>,
    pub account: Option<super::app::AccountRef>,
}

impl CaseRow {
    /// The SLA in words: breached, paused, or due in/at.
    pub fn sla(&self) -> String {
        if self.sla_paused_at.0.is_some() {
            "Paused (waiting on the customer)".into()
        } else if self.sla_breached {
            format!("Breached {}", self.sla_due_at.relative())
        } else if matches!(self.status.0.as_str(), "RESOLVED" | "CLOSED") {
            "Met".into()
        } else if self.sla_due_at.0.is_some() {
            format!("Due {}", self.sla_due_at.relative())
        } else {
            "—".into()
        }
    }
}

#[derive(Template)]
#[template(path = "app/cases.html")]
struct Queue {
    chrome: Chrome,
    views: Vec<Choice>,
    hours: Vec<Choice>,
    due_view: bool,
    q: String,
    total: i64,
    cases: Vec<CaseRow>,
    may_create: bool,
}

/// `/app/cases`: the case queue — mine, unassigned, breaching or due within N hours, all.
pub async fn queue(Signed(ctx, _): Signed<InApp>, Query(query): Query<QueueQuery>) -> PageResult {
    if !ctx.me.reads("Case") {
        return Err(not_yours(&ctx));
    }
    let view = param(&query.view)
        .filter(|v| VIEWS.iter().any(|(k, _)| k == v))
        .unwrap_or_else(|| "mine".into());
    let hours = param(&query.hours)
        .and_then(|h| h.parse::<i64>().ok())
        .filter(|h| DUE_WITHIN_HOURS.contains(h))
        .unwrap_or(4);
    let mut filter = json!({ "text": param(&query.q) });
    match view.as_str() {
        "mine" => {
            filter["ownerUserId"] = json!(ctx.me.id);
            filter["openOnly"] = json!(true);
        }
        "unassigned" => {
            filter["unassigned"] = json!(true);
            filter["openOnly"] = json!(true);
        }
        "due" => {
            let before = Utc::now() + Duration::hours(hours);
            filter["slaDueBefore"] = json!(before.to_rfc3339());
        }
        "open" => filter["openOnly"] = json!(true),
        _ => {}
    }
    let data: Value = ctx
        .query(
            "query($f: CaseFilter) { cases(first: 200, filter: $f) { totalCount nodes { id subject status priority slaDueAt slaBreached slaPausedAt escalatedAt ownerUserId account { id name } } } }",
            json!({ "f": filter }),
        )
        .await?;
    let conn: Conn<CaseRow> = serde_json::from_value(data["cases"].clone()).unwrap_or_default();
    let mut cases = conn.nodes;
    // Most urgent first: breached, then by due time; the finished last.
    cases.sort_by_key(|c| {
        (
            matches!(c.status.0.as_str(), "RESOLVED" | "CLOSED"),
            c.sla_paused_at.0.is_some(),
            c.sla_due_at.0.unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    });
    Ok(render(&Queue {
        may_create: ctx.me.writes("Case"),
        chrome: ctx.chrome("Cases"),
        views: VIEWS
            .iter()
            .map(|(k, label)| Choice {
                value: (*k).into(),
                label: (*label).into(),
                selected: *k == view,
            })
            .collect(),
        hours: DUE_WITHIN_HOURS
            .iter()
            .map(|h| Choice {
                value: h.to_string(),
                label: format!("{h} hours"),
                selected: *h == hours,
            })
            .collect(),
        due_view: view == "due",
        q: param(&query.q).unwrap_or_default(),
        total: conn.total_count.unwrap_or(0),
        cases,
    }))
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CaseDetail {
    #[serde(flatten)]
    pub row: CaseRow,
    pub version: Option<i64>,
    pub description: Text,
    pub channel: Label,
    pub partner_id: Option<String>,
    pub resolved_at: When,
    pub created_at: When,
    pub next_statuses: Vec<String>,
    pub may: RecordMay,
    pub comments: Conn<Comment>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Comment {
    pub id: String,
    pub body: String,
    pub partner_visible: bool,
    pub author_user_id: Option<String>,
    pub author_partner_id: Option<String>,
    pub created_at: When,
}

impl Comment {
    pub fn author(&self) -> String {
        match (&self.author_partner_id, &self.author_user_id) {
            (Some(_), _) => "Partner".into(),
            (None, Some(user)) => user.trim_start_matches("usr_").replace('_', " "),
            (None, None) => "—".into(),
        }
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskRow {
    pub id: String,
    pub version: Option<i64>,
    pub title: String,
    pub due_at: When,
    pub overdue: bool,
    pub completed: bool,
    pub record_type: Label,
    pub record_id: String,
    pub record_name: Option<String>,
    pub assignee_user_id: String,
    pub may: RecordMay,
}

impl TaskRow {
    /// Where the record the task is about has a page.
    pub fn href(&self) -> String {
        record_href(&self.record_type.0, &self.record_id)
    }
}

/// The page of a record of `kind` (`CASE`, `ACCOUNT`), or "" where there is none yet.
fn record_href(kind: &str, id: &str) -> String {
    match kind {
        "ACCOUNT" => format!("/app/accounts/{id}"),
        "CASE" => format!("/app/cases/{id}"),
        "CONTACT" => format!("/app/contacts/{id}"),
        "LEAD" => format!("/app/leads/{id}"),
        "OPPORTUNITY" => format!("/app/opportunities/{id}"),
        "DEAL_REGISTRATION" => format!("/app/registrations/{id}"),
        _ => String::new(),
    }
}

#[derive(Deserialize, Clone)]
pub(crate) struct Suggested {
    pub id: String,
    pub title: String,
}

/// What the forms on the case page hold after the API refused one.
#[derive(Default)]
pub(crate) struct CaseForms {
    pub comment: String,
    pub partner_visible: bool,
    pub comment_errors: FormErrors,
    pub task_title: String,
    pub task_due: String,
    pub task_errors: FormErrors,
    pub status_error: Option<String>,
}

#[derive(Template)]
#[template(path = "app/case.html")]
struct CasePage {
    chrome: Chrome,
    case: CaseDetail,
    mine: bool,
    comment_form: bool,
    task_form: bool,
    partner_case: bool,
    statuses: Vec<Choice>,
    tasks: Vec<TaskRow>,
    /// What the suggested articles are searched by (the knowledge-base link uses it too).
    key_word: String,
    forms: CaseForms,
}

/// The page for a role the policy gives no cases: refused before asking the API.
fn not_yours(ctx: &Ctx) -> super::super::PageError {
    ctx.refuse(ApiFailure::Forbidden(
        "Your role does not work with cases.".into(),
    ))
}

#[derive(Template)]
#[template(path = "app/suggestions.html")]
struct Suggestions {
    case_id: String,
    csrf: String,
    /// Articles linked to the case that the caller reads, solved first.
    linked: Vec<LinkedArticle>,
    /// Articles matching the subject that solved other cases, most first.
    suggested: Vec<SuggestedArticle>,
    /// A plain search when the caller may not read case links.
    searched: Vec<Suggested>,
    /// The policy lets the caller read case links (and so see the two lists above).
    links: bool,
    /// The policy lets the caller link and unlink articles.
    may_link: bool,
    key_word: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinkedArticle {
    solved: bool,
    article: Suggested,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuggestedArticle {
    solved_cases: i64,
    article: Suggested,
}

/// `GET /app/cases/{id}/articles?q=word`: the case's linked articles and the articles
/// that may solve it (those matching its subject, the ones that solved more cases first),
/// loaded into the case page after it (so the page stays one pass). Callers the policy
/// does not let read case links get a plain search of the knowledge base for the word.
pub async fn suggestions(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    Query(query): Query<QueueQuery>,
) -> axum::response::Response {
    let word = param(&query.q).unwrap_or_default();
    let data = if plausible_id(&id) {
        ctx.api::<Value>(
            "query($id: ID!, $t: String) { case(id: $id) { articles { solved article { id title } } \
             suggestedArticles(first: 5) { solvedCases article { id title } } } \
             articles(first: 3, filter: { text: $t }) { nodes { id title } } }",
            json!({ "id": id, "t": word }),
        )
        .await
        .unwrap_or_default()
    } else {
        Value::Null
    };
    let linked: Option<Vec<LinkedArticle>> =
        serde_json::from_value(data["case"]["articles"].clone()).unwrap_or_default();
    let suggested: Vec<SuggestedArticle> =
        serde_json::from_value(data["case"]["suggestedArticles"].clone()).unwrap_or_default();
    let searched: Conn<Suggested> =
        serde_json::from_value(data["articles"].clone()).unwrap_or_default();
    match (Suggestions {
        case_id: id,
        csrf: ctx.session.csrf_token.clone(),
        links: linked.is_some(),
        linked: linked.unwrap_or_default(),
        suggested,
        searched: searched.nodes,
        may_link: ctx.me.writes("CaseArticleLink"),
        key_word: word,
    })
    .render()
    {
        Ok(html) => Html(html).into_response(),
        Err(_) => Html(String::new()).into_response(),
    }
}

/// `POST /app/cases/{id}/articles`: links an article (`link`, or `solved` to mark it as
/// what solved the case) or removes its link (`unlink`), then back to the case.
pub async fn link_article(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let article = field(&fields, "article").to_owned();
    let (mutation, notice) = match field(&fields, "action") {
        "link" => (
            "mutation($c: ID!, $a: ID!) { linkArticleToCase(caseId: $c, articleId: $a, solved: false) { id } }",
            "Article linked to the case.",
        ),
        "solved" => (
            "mutation($c: ID!, $a: ID!) { linkArticleToCase(caseId: $c, articleId: $a, solved: true) { id } }",
            "Marked as the article that solved the case.",
        ),
        "unlink" => (
            "mutation($c: ID!, $a: ID!) { unlinkArticleFromCase(caseId: $c, articleId: $a) }",
            "Link removed.",
        ),
        _ => return Err(ctx.refuse(ApiFailure::Invalid(Vec::new()))),
    };
    match ctx
        .api::<Value>(mutation, json!({ "c": id, "a": article }))
        .await
    {
        Ok(_) => {
            ctx.see_other(&format!("/app/cases/{id}"), Some(notice))
                .await
        }
        Err(failure) => Err(ctx.refuse(failure)),
    }
}

const CASE_QUERY: &str = "query($id: ID!) { case(id: $id) { id version subject description status priority channel partnerId slaDueAt slaBreached slaPausedAt escalatedAt resolvedAt createdAt ownerUserId nextStatuses may { update } account { id name } comments(first: 200) { totalCount nodes { id body partnerVisible authorUserId authorPartnerId createdAt } } } tasks(first: 50, filter: { recordId: $id }) { nodes { id version title dueAt overdue completed recordType recordId recordName assigneeUserId may { update } } } }";

/// `/app/cases/{id}`.
pub async fn case(Signed(ctx, _): Signed<InApp>, Path(id): Path<String>) -> PageResult {
    case_page(ctx, &id, CaseForms::default()).await
}

/// The word of a subject that says what it is about (for suggested articles): the first of
/// the longest, since the search matches every word given.
fn key_word(subject: &str) -> Option<String> {
    subject
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4)
        // The first of the longest: reversed, `max_by_key`'s last is the original's first.
        .rev()
        .max_by_key(|w| w.chars().count())
        .map(str::to_lowercase)
}

pub(crate) async fn case_page(ctx: Ctx, id: &str, forms: CaseForms) -> PageResult {
    if !ctx.me.reads("Case") {
        return Err(not_yours(&ctx));
    }
    if !plausible_id(id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let data: Value = ctx.query(CASE_QUERY, json!({ "id": id })).await?;
    let case: CaseDetail = serde_json::from_value(data["case"].clone())
        .map_err(|_| ctx.refuse(ApiFailure::NotFound))?;
    let tasks: Conn<TaskRow> = serde_json::from_value(data["tasks"].clone()).unwrap_or_default();
    let statuses = case
        .next_statuses
        .iter()
        .map(|s| Choice {
            value: s.clone(),
            label: status_action(s),
            selected: false,
        })
        .collect();
    Ok(render(&CasePage {
        chrome: ctx.chrome(&case.row.subject),
        mine: case.row.owner_user_id.as_deref() == Some(ctx.me.id.as_str()),
        comment_form: ctx.me.writes("CaseComment"),
        task_form: ctx.me.writes("Task"),
        partner_case: case.partner_id.is_some(),
        statuses,
        tasks: tasks.nodes,
        key_word: key_word(&case.row.subject).unwrap_or_default(),
        forms,
        case,
    }))
}

/// The button that moves a case to `status`.
fn status_action(status: &str) -> String {
    match status {
        "OPEN" => "Open".into(),
        "PENDING" => "Wait on the customer".into(),
        "RESOLVED" => "Resolve".into(),
        "CLOSED" => "Close".into(),
        other => words(other),
    }
}

/// `POST /app/cases/{id}`: a status change or taking the case (with the version the page
/// showed: a case someone else changed meanwhile answers in words, nothing is lost).
pub async fn act(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let version: i64 = field(&fields, "version").parse().unwrap_or(0);
    let (input, notice) = match field(&fields, "action") {
        "take" => (
            json!({ "ownerUserId": ctx.me.id }),
            "The case is yours.".to_owned(),
        ),
        "status" => {
            let status = field(&fields, "status");
            (
                json!({ "status": status }),
                format!("Case moved to {}.", words(status).to_lowercase()),
            )
        }
        _ => return Err(ctx.refuse(ApiFailure::Invalid(Vec::new()))),
    };
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $v: Int!, $input: CaseInput!) { updateCase(id: $id, version: $v, input: $input) { id } }",
            json!({ "id": id, "v": version, "input": input }),
        )
        .await
    {
        Ok(_) => ctx.see_other(&format!("/app/cases/{id}"), Some(&notice)).await,
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let forms = CaseForms {
                status_error: Some(failure.message()),
                ..CaseForms::default()
            };
            case_page(ctx, &id, forms).await
        }
    }
}

/// `POST /app/cases/{id}/comments`: an internal or partner-visible comment.
pub async fn comment(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let text = field(&fields, "body").to_owned();
    let partner_visible = field(&fields, "partnerVisible") == "true";
    match ctx
        .api::<Value>(
            "mutation($input: CaseCommentInput!) { createCaseComment(input: $input) { id } }",
            json!({ "input": { "caseId": id, "body": text.trim(), "partnerVisible": partner_visible } }),
        )
        .await
    {
        Ok(_) => {
            let notice = if partner_visible {
                "Comment added; the partner can read it."
            } else {
                "Internal comment added."
            };
            ctx.see_other(&format!("/app/cases/{id}"), Some(notice)).await
        }
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let forms = CaseForms {
                comment: text,
                partner_visible,
                comment_errors: FormErrors::from_failure(failure).fold_unknown(&["body"]),
                ..CaseForms::default()
            };
            case_page(ctx, &id, forms).await
        }
    }
}

/// The start of the day `days` from today, in `zone`, as UTC.
fn day_start(zone: chrono_tz::Tz, now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    let date = now.with_timezone(&zone).date_naive() + Duration::days(days);
    let local = date.and_time(NaiveTime::MIN);
    // A zone whose clocks skip midnight (rare): the day starts at the first valid time.
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

/// The signed-in user's time zone.
fn zone_of(me: &Me) -> chrono_tz::Tz {
    me.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC)
}

/// "My day": the caller's open tasks due before the end of the coming week, split into
/// overdue, today and upcoming by the caller's own calendar.
pub(crate) struct MyDay {
    pub overdue: Vec<TaskRow>,
    pub today: Vec<TaskRow>,
    pub upcoming: Vec<TaskRow>,
    pub zone: String,
}

impl MyDay {
    /// The part of the dashboard's operation that reads it, and its variables.
    pub fn selection() -> &'static str {
        "myTasks: tasks(first: 100, filter: { assignedToMe: true, completed: false, dueBefore: $weekEnd }) { nodes { id version title dueAt overdue completed recordType recordId recordName assigneeUserId may { update } } }"
    }

    pub fn week_end(me: &Me) -> String {
        day_start(zone_of(me), Utc::now(), 8).to_rfc3339()
    }

    pub fn of(me: &Me, tasks: &Value) -> Self {
        let zone = zone_of(me);
        let now = Utc::now();
        let tomorrow = day_start(zone, now, 1);
        let conn: Conn<TaskRow> = serde_json::from_value(tasks.clone()).unwrap_or_default();
        let (mut overdue, mut today, mut upcoming) = (Vec::new(), Vec::new(), Vec::new());
        for task in conn.nodes {
            match task.due_at.0 {
                Some(due) if due < now => overdue.push(task),
                Some(due) if due < tomorrow => today.push(task),
                _ => upcoming.push(task),
            }
        }
        Self {
            overdue,
            today,
            upcoming,
            zone: me.time_zone.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.overdue.is_empty() && self.today.is_empty() && self.upcoming.is_empty()
    }

    /// Heading, key and tasks of each part, in the order they show.
    pub fn groups(&self) -> [(&'static str, &'static str, &Vec<TaskRow>); 3] {
        [
            ("Overdue", "overdue", &self.overdue),
            ("Today", "today", &self.today),
            ("Coming up", "upcoming", &self.upcoming),
        ]
    }
}

/// `POST /app/tasks`: a task on a record (from the record's page), back to it.
pub async fn add_task(Signed(ctx, _): Signed<InApp>, body: String) -> PageResult {
    let fields = posted(&ctx, &body)?;
    let record = field(&fields, "recordId").to_owned();
    if !plausible_id(&record) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let title = field(&fields, "title").to_owned();
    let due = field(&fields, "due").to_owned();
    // The form's due time is the user's wall clock.
    let due_at = super::local_moment(&due).map(|t| t.to_rfc3339());
    // Back to the page the form was on (it names it, like the task's "done" form).
    let back = field(&fields, "back");
    let back = if back.starts_with("/app") {
        back.to_owned()
    } else {
        format!("/app/cases/{record}")
    };
    let result = match &due_at {
        Some(due_at) => {
            ctx.api::<Value>(
                "mutation($input: TaskInput!) { createTask(input: $input) { id } }",
                json!({ "input": { "recordId": record, "title": title.trim(), "dueAt": due_at } }),
            )
            .await
        }
        None => Err(ApiFailure::Invalid(vec![
            super::super::client::FieldError {
                field: "dueAt".into(),
                message: "Give a day and a time.".into(),
            },
        ])),
    };
    match result {
        Ok(_) => ctx.see_other(&back, Some("Task added.")).await,
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) if back.starts_with("/app/cases/") => {
            let forms = CaseForms {
                task_title: title,
                task_due: due,
                task_errors: FormErrors::from_failure(failure).fold_unknown(&["title", "dueAt"]),
                ..CaseForms::default()
            };
            case_page(ctx, &record, forms).await
        }
        Err(failure) => Err(ctx.refuse(failure)),
    }
}

/// `POST /app/tasks/{id}/complete`: done (with the version the page showed), back where
/// the form was.
pub async fn complete_task(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let version: i64 = field(&fields, "version").parse().unwrap_or(0);
    let back = field(&fields, "back");
    let back = if back.starts_with("/app") {
        back
    } else {
        "/app"
    };
    ctx.query::<Value>(
        "mutation($id: ID!, $v: Int!) { updateTask(id: $id, version: $v, input: { completed: true }) { id } }",
        json!({ "id": id, "v": version }),
    )
    .await?;
    ctx.see_other(back, Some("Task done.")).await
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NotificationRow {
    pub id: String,
    pub kind: Label,
    pub title: String,
    pub body: Option<String>,
    pub record_type: Label,
    pub record_id: String,
    pub read: bool,
    pub created_at: When,
    /// Shown in the portal (its records' pages are the portal's).
    #[serde(skip)]
    pub portal: bool,
}

impl NotificationRow {
    pub fn href(&self) -> String {
        match (self.portal, self.record_type.0.as_str()) {
            (false, kind) => record_href(kind, &self.record_id),
            (true, "DEAL_REGISTRATION") => format!("/portal/registrations/{}", self.record_id),
            (true, "CASE") => format!("/portal/cases/{}", self.record_id),
            (true, "LEAD") => "/portal/leads".to_owned(),
            (true, _) => String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "app/notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    unread: i64,
    notifications: Vec<NotificationRow>,
    /// `/app/notifications` or `/portal/notifications`: where its forms go.
    base: String,
}

/// `/app/notifications` and `/portal/notifications`: the user's own.
pub async fn notifications<S: Side>(Signed(ctx, _): Signed<S>) -> PageResult {
    if !ctx.me.reads("Notification") {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "Your organisation gets no notifications here.".into(),
        )));
    }
    let data: Value = ctx
        .query(
            "query { unreadNotificationCount notifications(first: 100) { nodes { id kind title body recordType recordId read createdAt } } }",
            json!({}),
        )
        .await?;
    let conn: Conn<NotificationRow> =
        serde_json::from_value(data["notifications"].clone()).unwrap_or_default();
    let portal = ctx.area == super::super::Area::Portal;
    Ok(render(&NotificationsPage {
        chrome: ctx.chrome("Notifications"),
        unread: data["unreadNotificationCount"].as_i64().unwrap_or(0),
        notifications: conn
            .nodes
            .into_iter()
            .map(|n| NotificationRow { portal, ..n })
            .collect(),
        base: format!("{}/notifications", ctx.area.home()),
    }))
}

/// `POST /app/notifications` (or the portal's): marks one (`id`) or all read.
pub async fn mark_read<S: Side>(Signed(ctx, _): Signed<S>, body: String) -> PageResult {
    let fields = posted(&ctx, &body)?;
    let id = field(&fields, "id");
    let ids = (!id.is_empty() && plausible_id(id)).then(|| vec![id.to_owned()]);
    ctx.query::<Value>(
        "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }",
        json!({ "ids": ids }),
    )
    .await?;
    let notice = if ids.is_some() {
        "Marked read."
    } else {
        "All marked read."
    };
    ctx.see_other(&format!("{}/notifications", ctx.area.home()), Some(notice))
        .await
}

/// `GET /app/notifications/badge`: the header link with the unread count, loaded after the
/// page (so the page itself stays one pass through the gateway); without scripts the link
/// shows without a count.
pub async fn badge<S: Side>(Signed(ctx, _): Signed<S>) -> axum::response::Response {
    let unread = ctx
        .api::<Value>("query { unreadNotificationCount }", json!({}))
        .await
        .ok()
        .and_then(|d| d["unreadNotificationCount"].as_i64())
        .unwrap_or(0);
    let html = if unread > 0 {
        format!(
            "Notifications <span class=\"count\" aria-label=\"{unread} unread\">{unread}</span>"
        )
    } else {
        "Notifications".to_owned()
    };
    Html(html).into_response()
}

#[derive(Template)]
#[template(path = "app/profile.html")]
struct ProfilePage {
    chrome: Chrome,
    zones: Vec<Choice>,
    locales: Vec<Choice>,
    now_there: String,
    example: String,
    error: Option<String>,
}

/// `/app/profile`: the user's time zone and locale.
pub async fn profile(Signed(ctx, _): Signed<InApp>) -> PageResult {
    profile_page(
        &ctx,
        &ctx.me.time_zone.clone(),
        &ctx.me.locale.clone(),
        None,
    )
}

fn profile_page(ctx: &Ctx, zone: &str, locale: &str, error: Option<String>) -> PageResult {
    let tz = zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let numbers = crate::locale::style_of(locale);
    Ok(render(&ProfilePage {
        chrome: ctx.chrome("Your profile"),
        locales: crate::locale::LOCALES
            .iter()
            .map(|l| Choice {
                value: l.tag.to_owned(),
                label: l.label.to_owned(),
                selected: l.tag == numbers.tag,
            })
            .collect(),
        example: numbers.money("164329.50", "EUR"),
        zones: chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| Choice {
                value: z.name().to_owned(),
                label: z.name().replace('_', " "),
                selected: z.name() == zone,
            })
            .collect(),
        now_there: Utc::now()
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        error,
    }))
}

/// `POST /app/profile`: sets the time zone and the locale; pages show times and amounts by
/// them from the next one on.
pub async fn set_profile(Signed(ctx, _): Signed<InApp>, body: String) -> PageResult {
    let fields = posted(&ctx, &body)?;
    let zone = field(&fields, "timeZone").to_owned();
    let locale = field(&fields, "locale").to_owned();
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        set_my_locale: Me,
    }
    // One operation: mutations run in order, and the last answers the caller with both.
    match ctx
        .api::<Data>(
            &format!("mutation($z: String!, $l: String!) {{ setMyTimeZone(timeZone: $z) {{ id }} setMyLocale(locale: $l) {{ {ME_FIELDS} }} }}"),
            json!({ "z": zone, "l": locale }),
        )
        .await
    {
        Ok(data) => {
            // The session keeps the caller: keep the new one, zone and locale included.
            if let Ok(json) = serde_json::to_string(&data.set_my_locale) {
                ctx.web.sessions.keep_caller(&ctx.session, &json).await.ok();
            }
            ctx.see_other("/app/profile", Some("Profile saved.")).await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(failure) => profile_page(&ctx, &zone, &locale, Some(failure.message())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_local_midnight() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 5, 20, 0, 0)
            .single()
            .expect("time");
        // Auckland is UTC+13 in December: 20:00 UTC is 09:00 on the 6th there.
        let auckland: chrono_tz::Tz = "Pacific/Auckland".parse().expect("zone");
        assert_eq!(
            day_start(auckland, now, 0),
            Utc.with_ymd_and_hms(2026, 12, 5, 11, 0, 0)
                .single()
                .expect("time")
        );
        assert_eq!(
            day_start(chrono_tz::Tz::UTC, now, 1),
            Utc.with_ymd_and_hms(2026, 12, 6, 0, 0, 0)
                .single()
                .expect("time")
        );
    }

    #[test]
    fn the_longest_word_of_a_subject_suggests_articles() {
        assert_eq!(
            key_word("Damaged goods on arrival").as_deref(),
            Some("damaged")
        );
        assert_eq!(key_word("a b"), None);
    }
}

#[derive(Deserialize, Default)]
pub struct JobsQuery {
    state: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobRow {
    pub id: String,
    pub kind: String,
    pub key: String,
    pub state: Label,
    pub run_at: When,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: When,
}

#[derive(Template)]
#[template(path = "app/jobs.html")]
struct JobsPage {
    chrome: Chrome,
    states: Vec<Choice>,
    jobs: Vec<JobRow>,
}

const JOB_STATES: &[&str] = &["PENDING", "RUNNING", "DONE", "DEAD"];

/// `/app/admin/jobs`: the account service's jobs, most recently changed first, with their
/// last error; a dead one can be run again.
pub async fn jobs(Signed(ctx, _): Signed<InApp>, Query(query): Query<JobsQuery>) -> PageResult {
    if !ctx.me.reads("Job") {
        return Err(ctx.refuse(ApiFailure::Forbidden("Jobs are for admins.".into())));
    }
    let state = param(&query.state).filter(|s| JOB_STATES.contains(&s.as_str()));
    let data: Value = ctx
        .query(
            "query($s: JobState) { jobs(state: $s, first: 200) { id kind key state runAt attempts maxAttempts lastError updatedAt } }",
            json!({ "s": state }),
        )
        .await?;
    let jobs: Vec<JobRow> = serde_json::from_value(data["jobs"].clone()).unwrap_or_default();
    Ok(render(&JobsPage {
        chrome: ctx.chrome("Jobs"),
        states: super::choices(JOB_STATES, &state),
        jobs,
    }))
}

/// `POST /app/admin/jobs/{id}/retry`.
pub async fn retry_job(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    posted(&ctx, &body)?;
    if !plausible_id(&id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    ctx.query::<Value>(
        "mutation($id: ID!) { retryJob(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await?;
    ctx.see_other("/app/admin/jobs", Some("The job will run again now."))
        .await
}
