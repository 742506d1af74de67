//! Global search, this service's part: the articles that match a search, ranked by
//! full-text relevance exactly as `articles(filter: { text })` ranks them, added to the
//! account service's `SearchResults` entity, through the caller's policy.

use async_graphql::{ComplexObject, Context, Result};
use crm_service_common::graphql::RecordFilter;
use crm_service_common::principal::Principal;
use crm_service_common::search::{COUNT_CAP, Hits};
use crm_service_common::search_hits;

use super::article::{Article, ArticleFilter, ArticleOrder};

search_hits!(ArticleHits, Article);

crm_service_common::search_results_entity!();

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
