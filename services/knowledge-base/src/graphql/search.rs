//! Global search, this service's part: the articles that match a search, ranked by
//! full-text relevance exactly as `articles(filter: { text })` ranks them, added to the
//! account service's `SearchResults` entity, through the caller's policy.

use async_graphql::{ComplexObject, Context, Object, Result, SimpleObject};
use crm_service_common::graphql::RecordFilter;
use crm_service_common::principal::Principal;
use crm_service_common::search::{COUNT_CAP, Hits, checked};
use crm_service_common::search_hits;

use super::article::{Article, ArticleFilter, ArticleOrder};

search_hits!(ArticleHits, Article);

/// A search (owned by the account service); this service adds its articles.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct SearchResults {
    pub text: String,
    pub first: i32,
}

#[ComplexObject]
impl SearchResults {
    /// Articles by title, tags and text, most relevant first.
    async fn articles(&self, ctx: &Context<'_>) -> Result<ArticleHits> {
        let who = Principal::of(ctx);
        let page = ArticleFilter {
            text: Some(self.text.clone()),
            ..ArticleFilter::default()
        }
        .restrict(&who)
        .await?
        .within_reach(&who)
        .await?
        .page(
            ctx,
            ArticleOrder::ordering(None),
            false,
            Some(self.first),
            None,
        )
        .await?;
        let total = page.total.get(Some(COUNT_CAP as i32 + 1)).await? as u64;
        Ok(ArticleHits(Hits {
            rows: page.rows.into_iter().map(|(m, _)| Article(m)).collect(),
            total,
        }))
    }
}

#[derive(Default)]
pub struct SearchEntityQuery;

#[Object]
impl SearchEntityQuery {
    /// Federation: a search's articles, by its key.
    #[graphql(entity)]
    async fn find_search_results_by_text_and_first(
        &self,
        text: String,
        first: i32,
    ) -> Result<SearchResults> {
        let (text, first) = checked(&text, first)?;
        Ok(SearchResults { text, first })
    }
}
