//! The knowledge base: search and read (staff and partners, each the articles of its
//! audience), and create and edit for the departments that write articles.

use askama::Template;
use axum::extract::{Path, Query};
use serde::Deserialize;

use super::super::{InApp, PageError, PageResult, Side, Signed, refused_if};
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Area, Chrome, Ctx, FormErrors, render};
use super::{Choice, Conn, Label, When, param, plausible_id, words};

const AUDIENCES: &[&str] = &["INTERNAL", "PUBLIC", "SUPPLIER", "DISTRIBUTOR"];

/// Partner tiers an article's partner audiences can be narrowed to (none: every tier).
const TIERS: &[&str] = &["PLATINUM", "GOLD", "SILVER", "REGISTERED"];

#[derive(Deserialize, Default)]
pub struct KbQuery {
    q: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ArticleRow {
    id: String,
    title: String,
    status: Label,
    audiences: Vec<Label>,
    tags: Vec<String>,
    updated_at: When,
}

impl ArticleRow {
    fn audience_names(&self) -> String {
        super::joined(&self.audiences)
    }
}

#[derive(Template)]
#[template(path = "kb.html")]
struct KbPage {
    chrome: Chrome,
    base: &'static str,
    q: String,
    rows: Vec<ArticleRow>,
    total: String,
    next: Option<String>,
    first_page: Option<String>,
    writes: bool,
    /// Articles waiting for the caller's review (shown to writers).
    awaiting_review: Option<i64>,
}

fn base(area: Area) -> &'static str {
    match area {
        Area::App => "/app/kb",
        Area::Portal => "/portal/kb",
    }
}

pub async fn list<S: Side>(Signed(ctx, _): Signed<S>, Query(query): Query<KbQuery>) -> PageResult {
    articles_page(ctx, query).await
}

async fn articles_page(ctx: Ctx, query: KbQuery) -> PageResult {
    let q = param(&query.q);
    let mut filter = serde_json::Map::new();
    if let Some(q) = &q {
        filter.insert("text".into(), json!(q));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        articles: Conn<ArticleRow>,
        awaiting_review: Option<Conn<ArticleRow>>,
    }
    let writes = ctx.area == Area::App && ctx.me.writes("Article");
    // With a search the API ranks by relevance; without, staff see the newest changes
    // first and partners (to whom the policy hides when an article changed) by title.
    let order = match (&q, ctx.area) {
        (Some(_), _) => Value::Null,
        (None, Area::App) => json!({ "field": "UPDATED_AT", "direction": "DESC" }),
        (None, Area::Portal) => json!({ "field": "TITLE", "direction": "ASC" }),
    };
    let data: Data = ctx
        .query(
            "query($after: String, $filter: ArticleFilter, $orderBy: ArticleOrder, $writes: Boolean!) { \
             articles(first: 25, after: $after, filter: $filter, orderBy: $orderBy) { \
             totalCount(atMost: 10000) pageInfo { endCursor hasNextPage } \
             nodes { id title status audiences tags updatedAt } } \
             awaitingReview: articles(first: 0, filter: { awaitingReview: true }) @include(if: $writes) { \
             totalCount(atMost: 1000) pageInfo { endCursor hasNextPage } nodes { id title status audiences tags updatedAt } } }",
            json!({ "after": param(&query.after), "filter": Value::Object(filter), "orderBy": order, "writes": writes }),
        )
        .await?;
    let base = base(ctx.area);
    let filters = q
        .as_ref()
        .map(|q| serde_urlencoded::to_string([("q", q)]).unwrap_or_default())
        .unwrap_or_default();
    let (next, first_page) = super::pager(base, &filters, &data.articles.page_info, &query.after);
    let chrome = ctx.chrome("Knowledge base");
    Ok(render(&KbPage {
        chrome,
        base,
        q: q.unwrap_or_default(),
        total: data.articles.total(10_000),
        rows: data.articles.nodes,
        next,
        first_page,
        writes,
        awaiting_review: data.awaiting_review.and_then(|c| c.total_count),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Article {
    id: String,
    /// What the policy lets the caller do with this article.
    may: super::RecordMay,
    /// Null for partners (the policy hides an article's history from them); the edit form
    /// is staff-only.
    version: Option<i64>,
    title: String,
    body: String,
    status: Label,
    next_statuses: Vec<Label>,
    audiences: Vec<Label>,
    tiers: Vec<Label>,
    tags: Vec<String>,
    published_at: When,
    updated_at: When,
    products: Vec<ProductName>,
    /// The live words' revision (null where the policy hides the history).
    revision: Option<i64>,
    /// Null for readers of live words only (partners).
    revisions: Option<Vec<RevisionRow>>,
    working_revision: Option<Working>,
    may_review: bool,
    my_feedback: Option<Answer>,
    /// Null for readers the policy does not let read feedback.
    feedback: Option<Feedback>,
    /// Null for readers the policy does not let read case links.
    cases: Option<Vec<LinkedCase>>,
}

#[derive(Deserialize)]
struct Answer {
    helpful: bool,
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Feedback {
    views: i64,
    helpful: i64,
    not_helpful: i64,
    by_reader_kind: Vec<KindFeedback>,
    comments: Vec<FeedbackComment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KindFeedback {
    reader_kind: String,
    views: i64,
    helpful: i64,
    not_helpful: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedbackComment {
    helpful: bool,
    comment: String,
    reader_kind: String,
    updated_at: When,
}

#[derive(Deserialize)]
struct LinkedCase {
    solved: bool,
    /// Null where the case is not the reader's to read.
    case: Option<CaseName>,
}

#[derive(Deserialize)]
struct CaseName {
    id: String,
    subject: String,
}

/// One line of an article's history.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RevisionRow {
    pub number: i64,
    pub state: Label,
    pub author_user_id: Option<String>,
    pub created_at: When,
    pub reviewer_user_id: Option<String>,
    pub review_comment: Option<String>,
}

/// The words being worked on (the edit form starts from them).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Working {
    number: i64,
    state: Label,
    title: String,
    body: String,
    audiences: Vec<Label>,
    tiers: Vec<Label>,
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct ProductName {
    name: String,
}

impl Article {
    fn audience_names(&self) -> String {
        super::joined(&self.audiences)
    }
    fn tier_names(&self) -> String {
        super::joined(&self.tiers)
    }
    /// The Markdown body as safe HTML.
    fn body_html(&self) -> String {
        super::super::markdown::to_html(&self.body)
    }
    fn product_names(&self) -> String {
        self.products
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Template)]
#[template(path = "article.html")]
struct ArticlePage {
    chrome: Chrome,
    base: &'static str,
    article: Article,
    writes: bool,
}

const ARTICLE_QUERY: &str = "query($id: ID!) { article(id: $id) { id version title body status \
    nextStatuses audiences tiers tags publishedAt updatedAt products { name } may { update } \
    revision mayReview workingRevision { number state title body audiences tiers tags } \
    myFeedback { helpful comment } \
    feedback { views helpful notHelpful byReaderKind { readerKind views helpful notHelpful } \
    comments { helpful comment readerKind updatedAt } } \
    cases { solved case { id subject } } \
    revisions { number state authorUserId createdAt reviewerUserId reviewComment } } }";

async fn fetch(ctx: &Ctx, id: &str) -> Result<Article, ApiFailure> {
    if !plausible_id(id) {
        return Err(ApiFailure::NotFound);
    }
    #[derive(Deserialize)]
    struct Data {
        article: Option<Article>,
    }
    ctx.api::<Data>(ARTICLE_QUERY, json!({ "id": id }))
        .await?
        .article
        .ok_or(ApiFailure::NotFound)
}

async fn detail(ctx: Ctx, id: &str) -> PageResult {
    match fetch(&ctx, id).await {
        Ok(article) => {
            let chrome = ctx.chrome(&article.title);
            Ok(render(&ArticlePage {
                chrome,
                base: base(ctx.area),
                writes: ctx.area == Area::App && article.may.update,
                article,
            }))
        }
        Err(failure) => Err(ctx.refuse(failure)),
    }
}

pub async fn detail_page<S: Side>(Signed(ctx, _): Signed<S>, Path(id): Path<String>) -> PageResult {
    detail(ctx, &id).await
}

/// `POST {base}/{id}/feedback`: the reader's "did this help?" (and comment), then back to
/// the article.
pub async fn give_feedback<S: Side>(
    Signed(ctx, _): Signed<S>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = super::posted_about(&ctx, &body, &id)?;
    let helpful = super::field(&fields, "helpful") == "yes";
    let comment = super::field(&fields, "comment").trim().to_owned();
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $h: Boolean!, $c: String) { giveArticleFeedback(articleId: $id, helpful: $h, comment: $c) { id } }",
            json!({ "id": id, "h": helpful, "c": (!comment.is_empty()).then_some(comment) }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other(
                &format!("{}/{id}", base(ctx.area)),
                Some("Thank you: your answer is saved."),
            )
            .await
        }
        Err(failure) => Err(ctx.refuse(failure)),
    }
}

/// `POST {base}/{id}/viewed`: counts the reader once today (the article page posts it
/// after it is shown, so the page itself stays one pass through the gateway).
pub async fn viewed<S: Side>(
    Signed(ctx, _): Signed<S>,
    Path(id): Path<String>,
    body: String,
) -> axum::http::StatusCode {
    if super::posted_about(&ctx, &body, &id).is_err() {
        return axum::http::StatusCode::FORBIDDEN;
    }
    match ctx
        .api::<Value>(
            "mutation($id: ID!) { recordArticleView(articleId: $id) }",
            json!({ "id": id }),
        )
        .await
    {
        Ok(_) => axum::http::StatusCode::NO_CONTENT,
        Err(_) => axum::http::StatusCode::NOT_FOUND,
    }
}

/// The article form's values (new, being edited, or posted and refused).
#[derive(Deserialize, Default)]
pub struct ArticleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: i64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    tags: String,
    /// Checkbox values arrive as one `audience=` pair each; the form sends them joined.
    #[serde(default)]
    audience: Vec<String>,
    #[serde(default)]
    tier: Vec<String>,
}

#[derive(Template)]
#[template(path = "article_form.html")]
struct ArticleFormPage {
    chrome: Chrome,
    action: String,
    cancel: String,
    version: i64,
    title: String,
    body: String,
    tags: String,
    statuses: Vec<Choice>,
    audiences: Vec<Choice>,
    tiers: Vec<Choice>,
    errors: FormErrors,
}

fn form_page(
    ctx: &Ctx,
    heading: &str,
    action: String,
    cancel: String,
    form: &ArticleForm,
    statuses: &[String],
    errors: FormErrors,
) -> PageResult {
    let refused = errors.any();
    Ok(refused_if(
        refused,
        render(&ArticleFormPage {
            chrome: ctx.chrome(heading),
            action,
            cancel,
            version: form.version,
            title: form.title.clone(),
            body: form.body.clone(),
            tags: form.tags.clone(),
            statuses: statuses
                .iter()
                .map(|s| Choice {
                    value: s.clone(),
                    label: words(s),
                    selected: *s == form.status,
                })
                .collect(),
            audiences: AUDIENCES
                .iter()
                .map(|a| Choice {
                    value: (*a).into(),
                    label: words(a),
                    selected: form.audience.iter().any(|x| x == a),
                })
                .collect(),
            tiers: TIERS
                .iter()
                .map(|t| Choice {
                    value: (*t).into(),
                    label: words(t),
                    selected: form.tier.iter().any(|x| x == t),
                })
                .collect(),
            errors,
        }),
    ))
}

/// The refusal for a role that may not write articles; `None` when it may.
fn check_may_write(ctx: &Ctx) -> Result<(), PageError> {
    if ctx.me.writes("Article") {
        Ok(())
    } else {
        Err(ctx.refuse(ApiFailure::Forbidden(
            "Your role may read articles but not write them.".into(),
        )))
    }
}

pub async fn new_form(Signed(ctx, _): Signed<InApp>) -> PageResult {
    check_may_write(&ctx)?;
    let form = ArticleForm {
        status: "DRAFT".into(),
        audience: vec!["INTERNAL".into()],
        ..Default::default()
    };
    form_page(
        &ctx,
        "New article",
        "/app/kb/new".into(),
        "/app/kb".into(),
        &form,
        &["DRAFT".into()],
        FormErrors::default(),
    )
}

/// The API input of a posted form (`current`: the article's status, empty when new; a
/// live article's new words are sent without a status unless they go to review).
fn input_of(form: &ArticleForm, current: &str) -> Value {
    let tags: Vec<String> = form
        .tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    json!({
        "title": form.title,
        "body": form.body,
        "audiences": form.audience,
        "tiers": form.tier,
        "tags": tags,
        "status": if form.status.is_empty() || (current == "PUBLISHED" && form.status == "DRAFT") {
            Value::Null
        } else {
            json!(form.status)
        },
    })
}

const FORM_FIELDS: &[&str] = &["title", "body", "audiences", "tiers", "tags", "status"];

/// Reads the form body by hand: repeated `audience` checkboxes are a list, which the
/// plain form extractor does not gather.
fn parse_form(body: &str) -> ArticleForm {
    let mut form = ArticleForm::default();
    for (key, value) in
        serde_urlencoded::from_str::<Vec<(String, String)>>(body).unwrap_or_default()
    {
        match key.as_str() {
            "csrf" => form.csrf = value,
            "version" => form.version = value.parse().unwrap_or(0),
            "title" => form.title = value,
            "body" => form.body = value,
            "status" => form.status = value,
            "tags" => form.tags = value,
            "audience" => form.audience.push(value),
            "tier" => form.tier.push(value),
            _ => {}
        }
    }
    form
}

pub async fn create(Signed(ctx, _): Signed<InApp>, body: String) -> PageResult {
    let form = parse_form(&body);
    ctx.check_csrf(&form.csrf)?;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        create_article: Created,
    }
    #[derive(Deserialize)]
    struct Created {
        id: String,
    }
    match ctx
        .api::<Data>(
            "mutation($input: ArticleInput!) { createArticle(input: $input) { id } }",
            json!({ "input": input_of(&form, "") }),
        )
        .await
    {
        Ok(data) => {
            ctx.see_other(
                &format!("/app/kb/{}", data.create_article.id),
                Some("Article created."),
            )
            .await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(failure) => form_page(
            &ctx,
            "New article",
            "/app/kb/new".into(),
            "/app/kb".into(),
            &form,
            &["DRAFT".into()],
            FormErrors::from_failure(failure).fold_unknown(FORM_FIELDS),
        ),
    }
}

/// The statuses the form offers: a draft's moves (PUBLISHED only comes from review); on a
/// live article, where its new words go (a draft, or review) or retiring it.
fn status_choices(article: &Article) -> Vec<String> {
    let live = article.status.0 == "PUBLISHED";
    let own = if live {
        vec!["DRAFT".to_owned(), "REVIEW".to_owned()]
    } else {
        vec![article.status.0.clone()]
    };
    own.into_iter()
        .chain(article.next_statuses.iter().map(|s| s.0.clone()))
        .filter(|s| s != "PUBLISHED")
        .fold(Vec::new(), |mut all, s| {
            if !all.contains(&s) {
                all.push(s);
            }
            all
        })
}

pub async fn edit_form(Signed(ctx, _): Signed<InApp>, Path(id): Path<String>) -> PageResult {
    check_may_write(&ctx)?;
    let article = match fetch(&ctx, &id).await {
        Ok(article) if article.may.update => article,
        Ok(_) => {
            return Err(ctx.refuse(ApiFailure::Forbidden(
                "You may read this article but not change it.".into(),
            )));
        }
        Err(failure) => return Err(ctx.refuse(failure)),
    };
    // New words start from the words being worked on (a live article's working copy),
    // never from the live words over them.
    let form = match &article.working_revision {
        Some(w) => ArticleForm {
            csrf: String::new(),
            version: article.version.unwrap_or_default(),
            title: w.title.clone(),
            body: w.body.clone(),
            status: w.state.0.clone(),
            tags: w.tags.join(", "),
            audience: w.audiences.iter().map(|a| a.0.clone()).collect(),
            tier: w.tiers.iter().map(|t| t.0.clone()).collect(),
        },
        None => ArticleForm {
            csrf: String::new(),
            version: article.version.unwrap_or_default(),
            title: article.title.clone(),
            body: article.body.clone(),
            status: if article.status.0 == "PUBLISHED" {
                "DRAFT".into()
            } else {
                article.status.0.clone()
            },
            tags: article.tags.join(", "),
            audience: article.audiences.iter().map(|a| a.0.clone()).collect(),
            tier: article.tiers.iter().map(|t| t.0.clone()).collect(),
        },
    };
    edit_page(&ctx, &id, &article, &form, FormErrors::default())
}

/// The edit form of `article`, with `form`'s values and the API's `errors`.
fn edit_page(
    ctx: &Ctx,
    id: &str,
    article: &Article,
    form: &ArticleForm,
    errors: FormErrors,
) -> PageResult {
    form_page(
        ctx,
        &format!("Edit: {}", article.title),
        format!("/app/kb/{id}/edit"),
        format!("/app/kb/{id}"),
        form,
        &status_choices(article),
        errors,
    )
}

pub async fn update(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let mut form = parse_form(&body);
    ctx.check_csrf(&form.csrf)?;
    let article = match fetch(&ctx, &id).await {
        Ok(article) => article,
        Err(failure) => return Err(ctx.refuse(failure)),
    };
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $v: Int!, $input: ArticleInput!) { updateArticle(id: $id, version: $v, input: $input) { id } }",
            json!({ "id": id, "v": form.version, "input": input_of(&form, &article.status.0) }),
        )
        .await
    {
        Ok(_) => {
            let notice = if article.status.0 == "PUBLISHED" {
                "Saved as a new revision: the published words stay live until it is approved."
            } else {
                "Article saved."
            };
            ctx.see_other(&format!("/app/kb/{id}"), Some(notice)).await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(failure) => {
            // Someone saved the article meanwhile: the API says so; the form keeps this
            // edit and now carries the current version, so saving again overwrites theirs
            // knowingly (the message says what happened).
            form.version = article.version.unwrap_or_default();
            let errors = FormErrors::from_failure(failure).fold_unknown(FORM_FIELDS);
            edit_page(&ctx, &id, &article, &form, errors)
        }
    }
}
