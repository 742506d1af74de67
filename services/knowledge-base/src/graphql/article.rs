//! `Article`: a knowledge-base entry in Markdown, written for one or more audiences,
//! moving through an editorial lifecycle, tagged and linked to products. `filter.text`
//! is a full-text search ranked by relevance.

use async_graphql::{Context, ID, InputObject, Result};
use chrono::{DateTime, Utc};
use crm_service_common::access::Action;
use crm_service_common::domain::PartnerTier;
use crm_service_common::domain::{Lifecycle, reference, text};
use crm_service_common::pagination::{Cursor, Ordering, Page, PageRequest, SortKey, TotalCount};
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, ApiResult, connection_types};
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, ExprTrait, QueryFilter, QuerySelect, Select};

use super::references::Product;
use super::revision::{self, ArticleRevision};
use super::{
    FilterExt, RecordFilter, RecordInput, db, list, ordering, record_object, record_operations,
    required, unarchived,
};
use crate::domain::{
    ArticleStatus, Audience, SearchQuery, audiences, decode_set, encode_set, parse_audiences, tags,
};
use crate::entity::article;
use crate::store::{self, Words, clear_pending, current, set};

#[derive(Clone)]
pub struct Article(pub article::Model);

connection_types!(ArticleConnection, ArticleEdge, Article);

record_object!(Article {
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The body, in Markdown.
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn audiences(&self) -> Vec<Audience> {
        parse_audiences(&self.0.audiences)
    }
    /// The partner tiers the partner audiences are narrowed to (empty: every tier).
    async fn tiers(&self) -> Vec<PartnerTier> {
        crate::domain::parse_tiers(&self.0.tiers)
    }
    async fn status(&self) -> ArticleStatus {
        self.0.status
    }
    /// The statuses this article may move to next.
    async fn next_statuses(&self) -> Vec<ArticleStatus> {
        self.0.status.next().to_vec()
    }
    /// The number of the revision these words are (the live one, once published). Null
    /// for callers who read live words only: the numbers count unpublished saves.
    async fn revision(&self, ctx: &Context<'_>) -> Result<Option<i32>> {
        Ok(crm_service_common::access::unmasked(ctx, &self.0, "revision", self.0.revision).await?)
    }
    /// When it was last published.
    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.0.published_at
    }
    async fn tags(&self) -> Vec<String> {
        decode_set(&self.0.tags)
    }
    async fn product_ids(&self) -> Vec<ID> {
        decode_set(&self.0.product_ids).into_iter().map(ID).collect()
    }
    /// The linked products (owned by the order-visibility service).
    async fn products(&self) -> Vec<Product> {
        decode_set(&self.0.product_ids).into_iter().map(|id| Product { id: ID(id) }).collect()
    }
    /// Every saved version, newest first (at most 200). Null for callers who read live
    /// words only (partners).
    async fn revisions(&self, ctx: &Context<'_>) -> Result<Option<Vec<ArticleRevision>>> {
        if !revision::may_read(ctx).await? {
            return Ok(None);
        }
        Ok(Some(
            revision::list(db(ctx)?, &self.0.id)
                .await?
                .into_iter()
                .map(ArticleRevision)
                .collect(),
        ))
    }
    /// One saved version by number (null when there is none, or for callers who read live
    /// words only).
    async fn revision_by_number(
        &self,
        ctx: &Context<'_>,
        number: i32,
    ) -> Result<Option<ArticleRevision>> {
        Ok(revision::one(ctx, &self.0, number).await?)
    }
    /// The revision being worked on: a draft or one in review (a published article's new
    /// words wait here beside the live ones). Null when there is none, or for callers who
    /// read live words only.
    async fn working_revision(&self, ctx: &Context<'_>) -> Result<Option<ArticleRevision>> {
        match store::working_revision(&self.0) {
            Some((number, _)) => Ok(revision::one(ctx, &self.0, number).await?),
            None => Ok(None),
        }
    }
    /// Readers' answers and views, per kind of reader (null for callers the policy does
    /// not let read feedback: partners, sales).
    async fn feedback(&self, ctx: &Context<'_>) -> Result<Option<super::feedback::ArticleFeedbackSummary>> {
        Ok(super::feedback::summary(ctx, &self.0).await?)
    }
    /// The caller's own answer, if it gave one.
    async fn my_feedback(&self, ctx: &Context<'_>) -> Result<Option<super::feedback::MyFeedback>> {
        Ok(super::feedback::mine(ctx, &self.0).await?)
    }
    /// The cases this article is linked to, solved first (null for callers the policy does
    /// not let read case links).
    async fn cases(&self, ctx: &Context<'_>) -> Result<Option<Vec<super::case_links::ArticleCase>>> {
        Ok(super::case_links::cases_of(ctx, &self.0).await?)
    }
    /// Whether the caller may approve or reject the revision in review now (it may write
    /// the article and wrote none of the words not yet live).
    async fn may_review(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(revision::may_review(ctx, &self.0).await?)
    }
});

/// Saves `input` over the article `id` exactly as `updateArticle` does.
pub(crate) async fn update(
    ctx: &Context<'_>,
    id: ID,
    version: i32,
    input: ArticleInput,
) -> Result<Article> {
    ArticleMutation
        .update_article(ctx, id, version, input)
        .await
}

ordering!(ArticleOrder, ArticleOrderField, article, default = Title, {
    Title => Title.title: Text,
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
});

/// Which articles to list. With `text`, the list is a full-text search (title, tags and
/// body, every word matching, word prefixes included), ranked by relevance unless
/// `orderBy` is given.
#[derive(InputObject, Default, Clone, Debug)]
pub struct ArticleFilter {
    pub text: Option<String>,
    pub status: Option<ArticleStatus>,
    /// Articles written for this audience (among others).
    pub audience: Option<Audience>,
    pub tag: Option<String>,
    /// Articles linked to this product.
    pub product_id: Option<ID>,
    /// Only articles with a revision in review (the review queue). Refused to callers who
    /// read live words only.
    #[graphql(default)]
    pub awaiting_review: bool,
    #[graphql(default)]
    pub include_archived: bool,
}

/// The label of the relevance ordering in cursors.
const RELEVANCE: &str = "RELEVANCE:Desc";

impl RecordFilter<article::Entity> for ArticleFilter {
    async fn restrict(self, who: &Principal) -> ApiResult<Self> {
        if self.awaiting_review
            && !crm_service_common::access::decide(who, "ArticleRevision", Action::Read)
                .await?
                .is_allowed()
        {
            return Err(crm_service_common::access::hidden_field(
                "filter.awaitingReview",
            ));
        }
        Ok(self)
    }

    /// Everything but the search text (which `page` applies, ranked).
    fn select(self) -> Select<article::Entity> {
        use article::Column as C;
        let mut s = unarchived(article::Entity::find(), self.include_archived);
        s = s.eq_if(C::Status, self.status);
        if self.awaiting_review {
            s = s.filter(
                Expr::col(C::Status)
                    .eq(ArticleStatus::Review)
                    .or(Expr::col(C::PendingStatus).eq(ArticleStatus::Review)),
            );
        }
        if let Some(audience) = self.audience {
            s = s.filter(Expr::col(C::Audiences).like(format!(
                "%|{}|%",
                crm_service_common::domain::label(audience)
            )));
        }
        if let Some(tag) = self.tag {
            s = s.filter(
                Expr::col(C::Tags).like(format!("%{}%", encode_set([tag.trim().to_lowercase()]))),
            );
        }
        if let Some(product_id) = self.product_id {
            // Through the indexed link table: a `LIKE` on the product list read every
            // article (30 ms per order of four lines at 5k articles, in `crm bench`).
            let linked = sea_orm::sea_query::Query::select()
                .column(crate::entity::article_product::Column::ArticleId)
                .from(crate::entity::article_product::Entity)
                .and_where(
                    Expr::col(crate::entity::article_product::Column::ProductId).eq(product_id.0),
                )
                .to_owned();
            s = s.filter(Expr::col(C::Id).in_subquery(linked));
        }
        s
    }

    #[allow(clippy::manual_async_fn)] // the trait's signature, spelled out
    fn page<'a>(
        self,
        ctx: &'a Context<'_>,
        ordering: Ordering<article::Entity>,
        explicit: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> impl std::future::Future<Output = ApiResult<Page<article::Model>>> + Send + 'a
    where
        Self: 'a,
    {
        async move {
            let Some(query) = SearchQuery::parse(self.text.as_deref()) else {
                return list(ctx, self.select(), ordering, first, after).await;
            };
            let db = db(ctx)?;
            if explicit {
                let select = self
                    .select()
                    .filter(store::match_condition(db.get_database_backend(), &query));
                return list(ctx, select, ordering, first, after).await;
            }
            let select = self.select().filter(
                crm_service_common::access::visible_in::<article::Entity>(
                    ctx,
                    crm_service_common::access::Action::Read,
                )
                .await?,
            );
            let rankings = ctx.data_opt::<store::rankings::SearchRankings>();
            relevance_page(db, rankings, select, &query, first, after).await
        }
    }
}

/// A page of the articles of `select` (the reader's filters and visibility) that match
/// `query`, in relevance order (best first, then id). The cursor carries the relevance
/// (scaled to an integer, so it compares exactly) and the id of the last row.
async fn relevance_page(
    db: &sea_orm::DatabaseConnection,
    rankings: Option<&store::rankings::SearchRankings>,
    select: Select<article::Entity>,
    query: &SearchQuery,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<Page<article::Model>> {
    let request = PageRequest::parse(first, after.as_deref())?;
    if let Some(cursor) = &request.after
        && cursor.ordering != RELEVANCE
    {
        return Err(ApiError::validation(
            "after",
            "this cursor belongs to a different ordering; start again without `after`",
        ));
    }
    let matching = select
        .clone()
        .filter(store::match_condition(db.get_database_backend(), query));
    let total = TotalCount::new(db, matching.clone());
    // (relevance, id), best first, after the cursor: the page and at least one more row
    // when there is one.
    let remembered = match rankings {
        Some(rankings) => rankings.of(db, query).await?,
        None => None,
    };
    let mut ranked = match remembered {
        Some(ranking) => visible_in_ranked_order(db, select, &ranking.ranked, &request).await?,
        None if db.get_database_backend() == sea_orm::DbBackend::Postgres => {
            ranked_in_database(db, matching, query, &request).await?
        }
        None => ranked_in_service(db, matching, query, &request).await?,
    };
    let has_next_page = ranked.len() as u64 > request.first;
    ranked.truncate(request.first as usize);
    let ids: Vec<String> = ranked.iter().map(|(_, id)| id.clone()).collect();
    let mut models = store::get_many::<article::Entity, _>(db, &ids).await?;
    let mut rows = Vec::with_capacity(ranked.len());
    for (s, id) in ranked {
        if let Some(at) = models.iter().position(|m| m.id == id) {
            let model = models.swap_remove(at);
            let cursor = Cursor {
                ordering: RELEVANCE.to_owned(),
                key: SortKey::Int(s),
                id,
            }
            .encode();
            rows.push((model, cursor));
        }
    }
    Ok(Page {
        rows,
        has_next_page,
        total,
    })
}

/// [`relevance_page`] from a remembered ranking (`store::rankings`): the ranked articles
/// after the cursor are offered to `select` (the reader's filters and visibility) a few at
/// a time, more each round, until the page and one more row are found or the ranking ends.
/// The ranking is the set of matches (at the generation this request read), so the match
/// is not asked again: with it, PostgreSQL read every match through the full-text index
/// to keep the few offered (6 ms a page under load, as much as ranking them all).
async fn visible_in_ranked_order(
    db: &sea_orm::DatabaseConnection,
    select: Select<article::Entity>,
    ranked: &[(i64, String)],
    request: &PageRequest,
) -> ApiResult<Vec<(i64, String)>> {
    let mut at = store::rankings::after_cursor(ranked, relevance_cursor(request));
    let wanted = request.first as usize + 1;
    let mut offered = (2 * wanted).max(32);
    let mut page = Vec::with_capacity(wanted);
    while page.len() < wanted && at < ranked.len() {
        let next = &ranked[at..ranked.len().min(at + offered)];
        let visible: std::collections::HashSet<String> = select
            .clone()
            .select_only()
            .column(article::Column::Id)
            .filter(sea_orm::ColumnTrait::is_in(
                &article::Column::Id,
                next.iter().map(|(_, id)| id.clone()),
            ))
            .into_tuple::<String>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        page.extend(
            next.iter()
                .filter(|(_, id)| visible.contains(id))
                .take(wanted - page.len())
                .cloned(),
        );
        at += next.len();
        offered = (offered * 4).min(2_000);
    }
    Ok(page)
}

/// [`relevance_page`]'s ranking on SQLite: every match scored in the service
/// ([`store::relevance`]), sorted, and cut at the cursor.
async fn ranked_in_service(
    db: &sea_orm::DatabaseConnection,
    select: Select<article::Entity>,
    query: &SearchQuery,
    request: &PageRequest,
) -> ApiResult<Vec<(i64, String)>> {
    let candidates: Vec<String> = select
        .select_only()
        .column(article::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let mut ranked = store::rankings::scored_in_service(db, query, candidates).await?;
    let start = store::rankings::after_cursor(&ranked, relevance_cursor(request));
    Ok(ranked.split_off(start))
}

/// The `(score, id)` of a relevance cursor, when the request continues one.
fn relevance_cursor(request: &PageRequest) -> Option<(i64, &str)> {
    match &request.after {
        Some(Cursor {
            key: SortKey::Int(score),
            id,
            ..
        }) => Some((*score, id.as_str())),
        _ => None,
    }
}

/// [`relevance_page`]'s ranking on PostgreSQL: one statement ranks the matching articles
/// the reader may see (`store::RANK_SQL`, each from the article alone) and returns a page
/// and one more row, so the matches never travel to the service and back to be ranked by
/// id (at scale 1 a search for "installing" matched 1,667 articles: four look-ups of 500
/// ids each, about twice the database time of ranking them where they are read).
async fn ranked_in_database(
    db: &sea_orm::DatabaseConnection,
    select: Select<article::Entity>,
    query: &SearchQuery,
    request: &PageRequest,
) -> ApiResult<Vec<(i64, String)>> {
    use sea_orm::{Order, QueryOrder};
    let rank = || Expr::cust_with_values(store::RANK_SQL, [query.to_tsquery()]);
    let mut ranked = select
        .select_only()
        .column(article::Column::Id)
        .expr_as(rank(), "relevance");
    if let Some(Cursor {
        key: SortKey::Int(last_score),
        id: last_id,
        ..
    }) = &request.after
    {
        ranked = ranked.filter(
            rank().lt(*last_score).or(rank()
                .eq(*last_score)
                .and(Expr::col(article::Column::Id).gt(last_id.as_str()))),
        );
    }
    let page: Vec<(String, i64)> = ranked
        .order_by(Expr::cust("relevance"), Order::Desc)
        .order_by(article::Column::Id, Order::Asc)
        .limit(request.first + 1)
        .into_tuple()
        .all(db)
        .await?;
    Ok(page.into_iter().map(|(id, score)| (score, id)).collect())
}

/// Fields of an article. On create, `title`, `body` and `audiences` are required and the
/// status is DRAFT (or REVIEW when given). Every change of words is a new revision; a
/// published article's new words wait beside the live ones until approved
/// (`approveArticle`, by a writer who wrote none of them). `tags` and `productIds` replace
/// the whole set when given; product links change at once (they are not reviewed).
#[derive(InputObject, Default, Clone, Debug)]
pub struct ArticleInput {
    pub title: Option<String>,
    /// Markdown, up to 200,000 characters.
    pub body: Option<String>,
    pub audiences: Option<Vec<Audience>>,
    /// Narrows the partner audiences to these partner tiers (empty: every tier). Staff
    /// read an article whatever its tiers.
    pub tiers: Option<Vec<PartnerTier>>,
    pub status: Option<ArticleStatus>,
    pub tags: Option<Vec<String>>,
    pub product_ids: Option<Vec<ID>>,
}

/// The refusal of a write that would publish without review.
fn publish_by_review() -> ApiError {
    ApiError::validation(
        "input.status",
        "an article is published when a writer other than its authors approves it \
         (approveArticle); save it as DRAFT and submit it with status REVIEW",
    )
}

impl ArticleInput {
    /// The words this input asks for, over `base` (a field not given keeps its value).
    fn words(&self, base: Words) -> ApiResult<Words> {
        let mut words = base;
        if let Some(v) = &self.title {
            words.title = text("input.title", v, 300)?;
        }
        if let Some(v) = &self.body {
            if v.chars().count() > 200_000 {
                return Err(ApiError::validation(
                    "input.body",
                    "must be at most 200000 characters",
                ));
            }
            words.body = v.clone();
        }
        if let Some(v) = &self.audiences {
            words.audiences = audiences("input.audiences", v)?;
        }
        if let Some(v) = &self.tags {
            words.tags = tags("input.tags", v)?;
        }
        if let Some(v) = &self.tiers {
            words.tiers = crate::domain::tiers(v);
        }
        Ok(words)
    }
}

impl RecordInput<article::Entity> for ArticleInput {
    /// New words never go live by themselves: a new article starts as a DRAFT (or in
    /// REVIEW); a draft's words are saved on the row, each save a new revision; a published
    /// article keeps its live words while new ones are saved as its working copy (a new
    /// revision each save) and reviewed. `status` moves the working copy (DRAFT, REVIEW)
    /// or retires the article (ARCHIVED); PUBLISHED is reached only by `approveArticle`.
    fn apply(&self, m: &mut article::ActiveModel, creating: bool) -> ApiResult<()> {
        match (&self.product_ids, creating) {
            (Some(ids), _) => {
                if ids.len() > 100 {
                    return Err(ApiError::validation(
                        "input.productIds",
                        "at most 100 products",
                    ));
                }
                let ids = ids
                    .iter()
                    .map(|id| reference("input.productIds", id))
                    .collect::<ApiResult<Vec<_>>>()?;
                set(&mut m.product_ids, encode_set(ids));
            }
            (None, true) => set(&mut m.product_ids, String::new()),
            (None, false) => {}
        }
        if creating {
            required(true, "input.title", &self.title)?;
            required(true, "input.body", &self.body)?;
            required(true, "input.audiences", &self.audiences)?;
            let status = match self.status.unwrap_or(ArticleStatus::Draft) {
                s @ (ArticleStatus::Draft | ArticleStatus::Review) => s,
                ArticleStatus::Published => return Err(publish_by_review()),
                ArticleStatus::Archived => {
                    return Err(ApiError::validation(
                        "input.status",
                        "a new article starts as DRAFT or REVIEW",
                    ));
                }
            };
            let words = self.words(Words {
                title: String::new(),
                body: String::new(),
                tags: String::new(),
                audiences: String::new(),
                tiers: String::new(),
            })?;
            words.set_row(m);
            clear_pending(m);
            set(&mut m.status, status);
            set(&mut m.published_at, None);
            set(&mut m.revision, 1);
            set(&mut m.last_revision, 1);
            return Ok(());
        }
        let from = current(&m.status).unwrap_or(ArticleStatus::Draft);
        let working =
            Words::of_active(m).ok_or_else(|| ApiError::validation("id", "unreadable"))?;
        let words = self.words(working.clone())?;
        let changed = words != working;
        let next = current(&m.last_revision).unwrap_or(0) + 1;
        if from == ArticleStatus::Published {
            let pending = current(&m.pending_revision).flatten();
            match self.status {
                None | Some(ArticleStatus::Published) => {
                    if changed {
                        words.set_pending(m, next, ArticleStatus::Draft);
                        set(&mut m.last_revision, next);
                    }
                }
                Some(s @ (ArticleStatus::Draft | ArticleStatus::Review)) => {
                    if changed {
                        words.set_pending(m, next, s);
                        set(&mut m.last_revision, next);
                    } else if pending.is_some() {
                        set(&mut m.pending_status, Some(s));
                    } else {
                        return Err(ApiError::validation(
                            "input.status",
                            "this article is live and has no new revision to move: \
                             change its words first",
                        ));
                    }
                }
                Some(ArticleStatus::Archived) => {
                    if changed {
                        return Err(ApiError::validation(
                            "input.status",
                            "archive an article without changing its words",
                        ));
                    }
                    clear_pending(m);
                    set(&mut m.status, ArticleStatus::Archived);
                }
            }
            return Ok(());
        }
        let to = match self.status {
            Some(ArticleStatus::Published) => return Err(publish_by_review()),
            Some(wanted) => from.transition(wanted)?,
            // New words under review go back to the writer's desk.
            None if changed && from == ArticleStatus::Review => ArticleStatus::Draft,
            None => from,
        };
        // A restored article is worked on as a new revision of the words it had.
        if changed || (from == ArticleStatus::Archived && to == ArticleStatus::Draft) {
            words.set_row(m);
            set(&mut m.revision, next);
            set(&mut m.last_revision, next);
        }
        set(&mut m.status, to);
        Ok(())
    }

    /// The author of the words a write saves is the writer.
    fn stamp(&self, m: &mut article::ActiveModel, who: &Principal, _creating: bool) {
        if matches!(m.last_revision, sea_orm::ActiveValue::Set(_)) {
            set(&mut m.edited_by, Some(who.subject.to_string()));
        }
    }

    async fn check_references(&self, _ctx: &Context<'_>) -> ApiResult<()> {
        Ok(())
    }
}

pub(crate) async fn list_articles(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<ArticleFilter>,
    order_by: Option<ArticleOrder>,
) -> Result<ArticleConnection> {
    ArticleQuery
        .articles(ctx, first, after, filter, order_by)
        .await
}

record_operations!(
    ArticleQuery, ArticleMutation, Article, article, ArticleInput,
    list: articles(ArticleFilter, ArticleOrder) -> ArticleConnection, one: article,
    mutations: create_article, update_article, upsert_article, archive_article
);
