//! `Article`: a knowledge-base entry in Markdown, written for one or more audiences,
//! moving through an editorial lifecycle, tagged and linked to products. `filter.text`
//! is a full-text search ranked by relevance.

use async_graphql::{Context, ID, InputObject, Result};
use chrono::{DateTime, Utc};
use crm_service_common::domain::{Lifecycle, reference, text};
use crm_service_common::pagination::{Cursor, Ordering, Page, PageRequest, SortKey, TotalCount};
use crm_service_common::{ApiError, ApiResult, connection_types};
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, ExprTrait, QueryFilter, QuerySelect, Select};

use super::references::Product;
use super::{
    FilterExt, RecordFilter, RecordInput, db, list, ordering, record_object, record_operations,
    required, unarchived,
};
use crate::domain::{
    ArticleStatus, Audience, SearchQuery, audiences, decode_set, encode_set, parse_audiences, tags,
};
use crate::entity::article;
use crate::store::{self, current, set};

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
    async fn status(&self) -> ArticleStatus {
        self.0.status
    }
    /// The statuses this article may move to next.
    async fn next_statuses(&self) -> Vec<ArticleStatus> {
        self.0.status.next().to_vec()
    }
    /// Starts at 1 and increases whenever the title or body changes.
    async fn revision(&self) -> i32 {
        self.0.revision
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
});

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
    #[graphql(default)]
    pub include_archived: bool,
}

/// The label of the relevance ordering in cursors.
const RELEVANCE: &str = "RELEVANCE:Desc";

impl RecordFilter<article::Entity> for ArticleFilter {
    /// Everything but the search text (which `page` applies, ranked).
    fn select(self) -> Select<article::Entity> {
        use article::Column as C;
        let mut s = unarchived(article::Entity::find(), self.include_archived);
        s = s.eq_if(C::Status, self.status);
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
            let select = self
                .select()
                .filter(store::match_condition(db.get_database_backend(), &query));
            if explicit {
                return list(ctx, select, ordering, first, after).await;
            }
            let select = select.filter(
                crm_service_common::access::visible_in::<article::Entity>(
                    ctx,
                    crm_service_common::access::Action::Read,
                )
                .await?,
            );
            relevance_page(db, select, &query, first, after).await
        }
    }
}

/// A page of `select` in relevance order (best first, then id). The cursor carries the
/// relevance (scaled to an integer, so it compares exactly) and the id of the last row.
async fn relevance_page(
    db: &sea_orm::DatabaseConnection,
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
    let total = TotalCount::new(db, select.clone());
    // (relevance, id), best first, after the cursor: the page and at least one more row
    // when there is one.
    let mut ranked = if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        ranked_in_database(db, select, query, &request).await?
    } else {
        ranked_in_service(db, select, query, &request).await?
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
    let scores = store::relevance(db, query, &candidates).await?;
    let score = |id: &str| scores.get(id).copied().unwrap_or(i64::MIN);
    let mut ranked: Vec<(i64, String)> =
        candidates.into_iter().map(|id| (score(&id), id)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    if let Some(Cursor {
        key: SortKey::Int(last_score),
        id: last_id,
        ..
    }) = &request.after
    {
        ranked.retain(|(s, id)| s < last_score || (s == last_score && id > last_id));
    }
    Ok(ranked)
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
/// status starts as DRAFT unless given; on update a new `status` must be a move the
/// lifecycle allows. `tags` and `productIds` replace the whole set when given.
#[derive(InputObject, Default, Clone, Debug)]
pub struct ArticleInput {
    pub title: Option<String>,
    /// Markdown, up to 200,000 characters.
    pub body: Option<String>,
    pub audiences: Option<Vec<Audience>>,
    pub status: Option<ArticleStatus>,
    pub tags: Option<Vec<String>>,
    pub product_ids: Option<Vec<ID>>,
}

impl RecordInput<article::Entity> for ArticleInput {
    fn apply(&self, m: &mut article::ActiveModel, creating: bool) -> ApiResult<()> {
        if let Some(v) = required(creating, "input.title", &self.title)? {
            set(&mut m.title, text("input.title", v, 300)?);
        }
        if let Some(v) = required(creating, "input.body", &self.body)? {
            if v.chars().count() > 200_000 {
                return Err(ApiError::validation(
                    "input.body",
                    "must be at most 200000 characters",
                ));
            }
            set(&mut m.body, v.clone());
        }
        if let Some(v) = required(creating, "input.audiences", &self.audiences)? {
            set(&mut m.audiences, audiences("input.audiences", v)?);
        }
        match (&self.tags, creating) {
            (Some(v), _) => set(&mut m.tags, tags("input.tags", v)?),
            (None, true) => set(&mut m.tags, String::new()),
            (None, false) => {}
        }
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
        let from = current(&m.status);
        let status = match (creating, from, self.status) {
            (true, _, wanted) => wanted.unwrap_or(ArticleStatus::Draft),
            (false, Some(from), Some(to)) => from.transition(to)?,
            (false, Some(from), None) => from,
            (false, None, wanted) => wanted.unwrap_or(ArticleStatus::Draft),
        };
        set(&mut m.status, status);
        if status == ArticleStatus::Published
            && (creating || from != Some(ArticleStatus::Published))
        {
            set(&mut m.published_at, Some(store::now()));
        } else if creating {
            set(&mut m.published_at, None);
        }
        // A new revision whenever the words change.
        let revision = current(&m.revision).unwrap_or(0);
        if creating {
            set(&mut m.revision, 1);
        } else if m.title.is_set() || m.body.is_set() {
            set(&mut m.revision, revision + 1);
        }
        Ok(())
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
