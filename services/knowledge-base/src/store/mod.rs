//! The knowledge base's records on the shared record store, the index of linked products,
//! and full-text search on both databases.

pub mod rankings;

use std::collections::HashMap;

use crm_service_common::domain::label;
use crm_service_common::events::{NewEvent, outbox};
pub use crm_service_common::record::*;
use crm_service_common::{ApiResult, record};
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QuerySelect,
};
use serde_json::json;

use crate::domain::{ArticleStatus, RevisionState, SearchQuery, decode_set};
use crate::entity::*;

record!(article, "art", after_write = article_written);

/// After an article changed: keep `article_products` in step with its linked products,
/// and publish `article.status_changed` when its status moved (webhooks subscribe to it).
pub async fn article_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&article::Model>,
    after: &article::Model,
) -> ApiResult<()> {
    if before.is_none_or(|b| b.product_ids != after.product_ids) {
        article_product::Entity::delete_many()
            .filter(Expr::col(article_product::Column::ArticleId).eq(after.id.clone()))
            .exec(db)
            .await?;
        let links: Vec<article_product::ActiveModel> = decode_set(&after.product_ids)
            .into_iter()
            .map(|product_id| article_product::ActiveModel {
                article_id: Set(after.id.clone()),
                product_id: Set(product_id),
            })
            .collect();
        if !links.is_empty() {
            article_product::Entity::insert_many(links)
                .exec_without_returning(db)
                .await?;
        }
    }
    keep_revisions(db, before, after).await?;
    if before.is_some_and(|b| {
        b.status == ArticleStatus::Published
            && after.status == ArticleStatus::Published
            && b.revision != after.revision
    }) {
        outbox::append(
            db,
            vec![NewEvent::new(
                "Article",
                &after.id,
                "article.revision_published",
                json!({
                    "articleId": after.id,
                    "revision": after.revision,
                    "previousRevision": before.map(|b| b.revision),
                    "audiences": decode_set(&after.audiences),
                }),
            )],
        )
        .await?;
    }
    if before.is_none_or(|b| b.status != after.status) {
        outbox::append(
            db,
            vec![NewEvent::new(
                "Article",
                &after.id,
                "article.status_changed",
                json!({
                    "articleId": after.id,
                    "status": label(after.status),
                    "previousStatus": before.map(|b| label(b.status)),
                    "audiences": decode_set(&after.audiences),
                    "revision": after.revision,
                }),
            )],
        )
        .await?;
    }
    Ok(())
}

/// An article's words: what a revision stores and review approves.
#[derive(Clone, Debug, PartialEq)]
pub struct Words {
    pub title: String,
    pub body: String,
    pub tags: String,
    pub audiences: String,
    pub tiers: String,
}

impl Words {
    /// The words of the row itself (the live words of a published article).
    pub fn of_row(m: &article::Model) -> Self {
        Self {
            title: m.title.clone(),
            body: m.body.clone(),
            tags: m.tags.clone(),
            audiences: m.audiences.clone(),
            tiers: m.tiers.clone(),
        }
    }

    /// The words being worked on: a published article's working copy when it has one,
    /// else the row's.
    pub fn working(m: &article::Model) -> Self {
        let row = Self::of_row(m);
        if m.pending_revision.is_none() {
            return row;
        }
        Self {
            title: m.pending_title.clone().unwrap_or(row.title),
            body: m.pending_body.clone().unwrap_or(row.body),
            tags: m.pending_tags.clone().unwrap_or(row.tags),
            audiences: m.pending_audiences.clone().unwrap_or(row.audiences),
            tiers: m.pending_tiers.clone().unwrap_or(row.tiers),
        }
    }

    pub fn of_active(m: &article::ActiveModel) -> Option<Self> {
        let row = Self {
            title: current(&m.title)?,
            body: current(&m.body)?,
            tags: current(&m.tags)?,
            audiences: current(&m.audiences)?,
            tiers: current(&m.tiers)?,
        };
        if current(&m.pending_revision).flatten().is_none() {
            return Some(row);
        }
        Some(Self {
            title: current(&m.pending_title).flatten().unwrap_or(row.title),
            body: current(&m.pending_body).flatten().unwrap_or(row.body),
            tags: current(&m.pending_tags).flatten().unwrap_or(row.tags),
            audiences: current(&m.pending_audiences)
                .flatten()
                .unwrap_or(row.audiences),
            tiers: current(&m.pending_tiers).flatten().unwrap_or(row.tiers),
        })
    }

    pub fn set_row(self, m: &mut article::ActiveModel) {
        set(&mut m.title, self.title);
        set(&mut m.body, self.body);
        set(&mut m.tags, self.tags);
        set(&mut m.audiences, self.audiences);
        set(&mut m.tiers, self.tiers);
    }

    pub fn set_pending(self, m: &mut article::ActiveModel, number: i32, status: ArticleStatus) {
        set(&mut m.pending_title, Some(self.title));
        set(&mut m.pending_body, Some(self.body));
        set(&mut m.pending_tags, Some(self.tags));
        set(&mut m.pending_audiences, Some(self.audiences));
        set(&mut m.pending_tiers, Some(self.tiers));
        set(&mut m.pending_revision, Some(number));
        set(&mut m.pending_status, Some(status));
    }
}

/// Drops a published article's working copy (approved into the row, or retired with it).
pub fn clear_pending(m: &mut article::ActiveModel) {
    set(&mut m.pending_title, None);
    set(&mut m.pending_body, None);
    set(&mut m.pending_tags, None);
    set(&mut m.pending_audiences, None);
    set(&mut m.pending_tiers, None);
    set(&mut m.pending_revision, None);
    set(&mut m.pending_status, None);
}

/// The revision being worked on, and its state: a published article's working copy, or
/// the row's own words while the article is a draft or in review.
pub fn working_revision(m: &article::Model) -> Option<(i32, RevisionState)> {
    let state = |status: ArticleStatus| match status {
        ArticleStatus::Review => RevisionState::Review,
        _ => RevisionState::Draft,
    };
    match (m.pending_revision, m.status) {
        (Some(n), _) => Some((n, state(m.pending_status.unwrap_or(ArticleStatus::Draft)))),
        (None, ArticleStatus::Draft | ArticleStatus::Review) => Some((m.revision, state(m.status))),
        _ => None,
    }
}

async fn set_revision_state<C: ConnectionTrait>(
    db: &C,
    article_id: &str,
    numbers: SimpleExpr,
    state: RevisionState,
) -> ApiResult<()> {
    article_revision::Entity::update_many()
        .col_expr(article_revision::Column::State, Expr::value(state))
        .filter(article_revision::Column::ArticleId.eq(article_id))
        .filter(numbers)
        .exec(db)
        .await?;
    Ok(())
}

/// Keeps `article_revisions` in step with a write: new words are stored whole as a new
/// revision (older ones still waiting are superseded), the working copy's state follows
/// the article's, and the words that go live are marked published.
async fn keep_revisions<C: ConnectionTrait>(
    db: &C,
    before: Option<&article::Model>,
    after: &article::Model,
) -> ApiResult<()> {
    use article_revision::Column as R;
    let working = working_revision(after);
    if before.is_none_or(|b| b.last_revision != after.last_revision) {
        let number = after.last_revision;
        set_revision_state(
            db,
            &after.id,
            Expr::col(R::Number)
                .lt(number)
                .and(Expr::col(R::State).is_in([RevisionState::Draft, RevisionState::Review])),
            RevisionState::Superseded,
        )
        .await?;
        let words = if after.pending_revision == Some(number) {
            Words::working(after)
        } else {
            Words::of_row(after)
        };
        let state = match working {
            Some((n, state)) if n == number => state,
            _ => RevisionState::Draft,
        };
        article_revision::Entity::insert(article_revision::ActiveModel {
            article_id: Set(after.id.clone()),
            number: Set(number),
            title: Set(words.title),
            body: Set(words.body),
            tags: Set(words.tags),
            audiences: Set(words.audiences),
            tiers: Set(words.tiers),
            state: Set(state),
            author_user_id: Set(after.edited_by.clone()),
            created_at: Set(after.updated_at),
            reviewer_user_id: Set(None),
            reviewed_at: Set(None),
            review_comment: Set(None),
        })
        .exec_without_returning(db)
        .await?;
    } else if let Some((number, state)) = working
        && before.and_then(working_revision) != working
    {
        set_revision_state(db, &after.id, Expr::col(R::Number).eq(number), state).await?;
    }
    if after.status == ArticleStatus::Published
        && before
            .is_none_or(|b| b.status != ArticleStatus::Published || b.revision != after.revision)
    {
        set_revision_state(
            db,
            &after.id,
            Expr::col(R::Number).eq(after.revision),
            RevisionState::Published,
        )
        .await?;
    }
    if after.status == ArticleStatus::Archived
        && before.is_some_and(|b| b.status != ArticleStatus::Archived)
    {
        set_revision_state(
            db,
            &after.id,
            Expr::col(R::State).is_in([RevisionState::Draft, RevisionState::Review]),
            RevisionState::Superseded,
        )
        .await?;
    }
    Ok(())
}

/// The condition "the article matches `query`", for a select of articles: the GIN-indexed
/// `search_vector` on PostgreSQL, the FTS5 index on SQLite.
pub fn match_condition(backend: DbBackend, query: &SearchQuery) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => Expr::cust_with_values(
            "search_vector @@ to_tsquery('english', $1)",
            [query.to_tsquery()],
        ),
        _ => Expr::cust_with_values(
            "id IN (SELECT article_id FROM article_search WHERE article_search MATCH ?)",
            [query.to_fts5()],
        ),
    }
}

/// The condition "the article matches any word of `query`" (suggestions for a case).
pub fn match_any_condition(backend: DbBackend, query: &SearchQuery) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => Expr::cust_with_values(
            "search_vector @@ to_tsquery('english', $1)",
            [query.to_tsquery_any()],
        ),
        _ => Expr::cust_with_values(
            "id IN (SELECT article_id FROM article_search WHERE article_search MATCH ?)",
            [query.to_fts5_any()],
        ),
    }
}

/// An article's relevance to a `to_tsquery` text (`$1`) on PostgreSQL, scaled to an integer
/// as [`relevance`] scales it: `ts_rank` over the article's own weighted `search_vector`.
pub const RANK_SQL: &str = "round(ts_rank('{0.1, 0.1, 0.4, 1.0}'::float4[], search_vector, \
     to_tsquery('english', $1))::float8 * 1e9)::bigint";

/// The relevance of the articles `candidates` (those the reader may see that match
/// `query`) on SQLite, scaled to an integer (higher is better) so that it sorts and
/// compares exactly in cursors. Each score comes from the article alone, never from
/// statistics over other articles (hidden ones included): SQLite's `bm25` is not such a
/// score (its IDF counts every indexed article), so the score is
/// [`SearchQuery::local_score`] with the weights of [`RANK_SQL`] (title 10, tags 4, body
/// 1). PostgreSQL ranks in the page's own statement with [`RANK_SQL`].
pub async fn relevance<C: ConnectionTrait>(
    db: &C,
    query: &SearchQuery,
    candidates: &[String],
) -> ApiResult<HashMap<String, i64>> {
    let mut scores = HashMap::with_capacity(candidates.len());
    for chunk in candidates.chunks(500) {
        let rows: Vec<(String, String, String, String)> = article::Entity::find()
            .select_only()
            .column(article::Column::Id)
            .column(article::Column::Title)
            .column(article::Column::Tags)
            .column(article::Column::Body)
            .filter(article::Column::Id.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        for (id, title, tags, body) in rows {
            let tags = tags.replace('|', " ");
            scores.insert(id, query.local_score(&title, &tags, &body));
        }
    }
    Ok(scores)
}
