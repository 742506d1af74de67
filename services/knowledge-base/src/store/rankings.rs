//! Search rankings kept in memory: for a query, every article that matches it, best first,
//! scored from the article alone ([`super::RANK_SQL`] on PostgreSQL, [`super::relevance`]
//! on SQLite). A page of search results then asks the database only which of the next few
//! ranked articles the reader may see, where ranking in the page's own statement read and
//! scored every match the reader may see (at scale 1 a search for "installing" scored
//! 1,388 articles: 2.7 ms of PostgreSQL, three quarters of its time under the mixed
//! workload).
//!
//! **Always current.** A ranking is kept with the generation of the articles' words it was
//! built from (`article_search_generation`, moved by the database on every change of
//! `title`, `tags` or `body`, in every replica's writes alike), and used only while the
//! generation is the same: each search reads it first (one row). The generation is read
//! before the ranking is built, so a ranking never passes for words older than its label.
//!
//! **Nothing about hidden articles.** The ranking holds every match, hidden ones too, but
//! it never leaves the service: the page keeps only the articles the reader's own
//! filtered select returns, in ranked order, and an article's score does not depend on any
//! other article, so the order of what a reader sees is the same whatever else exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crm_service_common::ApiResult;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect};

use crate::domain::SearchQuery;
use crate::entity::article;

/// Queries whose rankings are remembered at once. With [`LARGEST`] this bounds what a
/// caller sending many broad queries can make the service hold: 64 rankings of at most
/// 5,000 entries (about 60 bytes each), some 20 MB.
const REMEMBERED: usize = 64;
/// A query matching more articles than this is ranked in the page's statement instead.
pub const LARGEST: usize = 5_000;

/// Every article matching one query, best first, then by id: `(score, id)`.
pub struct Ranking {
    generation: i64,
    pub ranked: Vec<(i64, String)>,
}

/// The rankings of one service's database (kept in its schema's data).
#[derive(Default)]
pub struct SearchRankings(Mutex<HashMap<String, Arc<Ranking>>>);

/// The generation of the articles' words now.
async fn generation<C: ConnectionTrait>(db: &C) -> ApiResult<i64> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT generation FROM article_search_generation WHERE id = 1",
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 0,
    })
}

impl SearchRankings {
    /// The ranking of `query` over the articles' words as they are now; `None` when the
    /// query matches more than [`LARGEST`] articles.
    pub async fn of(
        &self,
        db: &sea_orm::DatabaseConnection,
        query: &SearchQuery,
    ) -> ApiResult<Option<Arc<Ranking>>> {
        let key = query.to_tsquery();
        let now = generation(db).await?;
        let remembered = self.lock().get(&key).cloned();
        if let Some(ranking) = remembered.filter(|r| r.generation == now) {
            return Ok(Some(ranking));
        }
        let Some(ranked) = rank_every_match(db, query).await? else {
            return Ok(None);
        };
        let ranking = Arc::new(Ranking {
            generation: now,
            ranked,
        });
        let mut rankings = self.lock();
        crm_contract::bounded::make_room(&mut rankings, REMEMBERED, |_, r| r.generation == now);
        rankings.insert(key, ranking.clone());
        Ok(Some(ranking))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Ranking>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every article matching `query`, scored and sorted (best first, then id); `None` past
/// [`LARGEST`].
async fn rank_every_match(
    db: &sea_orm::DatabaseConnection,
    query: &SearchQuery,
) -> ApiResult<Option<Vec<(i64, String)>>> {
    let backend = db.get_database_backend();
    let matching = article::Entity::find().filter(super::match_condition(backend, query));
    let mut ranked: Vec<(i64, String)> = if backend == DbBackend::Postgres {
        let rows: Vec<(String, i64)> = matching
            .select_only()
            .column(article::Column::Id)
            .expr(Expr::cust_with_values(
                super::RANK_SQL,
                [query.to_tsquery()],
            ))
            .limit(LARGEST as u64 + 1)
            .into_tuple()
            .all(db)
            .await?;
        rows.into_iter().map(|(id, score)| (score, id)).collect()
    } else {
        let ids: Vec<String> = matching
            .select_only()
            .column(article::Column::Id)
            .limit(LARGEST as u64 + 1)
            .into_tuple()
            .all(db)
            .await?;
        if ids.len() > LARGEST {
            return Ok(None);
        }
        return scored_in_service(db, query, ids).await.map(Some);
    };
    if ranked.len() > LARGEST {
        return Ok(None);
    }
    sort_best_first(&mut ranked);
    Ok(Some(ranked))
}

/// `ids` scored in the service ([`super::relevance`], SQLite's ranking), best first.
pub async fn scored_in_service(
    db: &sea_orm::DatabaseConnection,
    query: &SearchQuery,
    ids: Vec<String>,
) -> ApiResult<Vec<(i64, String)>> {
    let scores = super::relevance(db, query, &ids).await?;
    let mut ranked: Vec<(i64, String)> = ids
        .into_iter()
        .map(|id| (scores.get(&id).copied().unwrap_or(i64::MIN), id))
        .collect();
    sort_best_first(&mut ranked);
    Ok(ranked)
}

/// Relevance order: best score first, then id.
fn sort_best_first(ranked: &mut [(i64, String)]) {
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
}

/// Where the rows after a relevance cursor `(score, id)` start in `ranked` (in relevance
/// order): every row before it ranks above the cursor's or is the cursor's own.
pub fn after_cursor(ranked: &[(i64, String)], cursor: Option<(i64, &str)>) -> usize {
    match cursor {
        Some((last_score, last_id)) => ranked.partition_point(|(score, id)| {
            *score > last_score || (*score == last_score && id.as_str() <= last_id)
        }),
        None => 0,
    }
}
