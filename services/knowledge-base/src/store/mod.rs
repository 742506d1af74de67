//! The knowledge base's records on the shared record store, the index of linked products,
//! and full-text search on both databases.

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

use crate::domain::{SearchQuery, decode_set};
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
