//! Global search, this service's part: the orders that match a search (by number),
//! added to the account service's `SearchResults` entity, through the caller's policy.

use async_graphql::{ComplexObject, Context, Object, Result, SimpleObject};
use crm_service_common::search::{checked, hits};
use crm_service_common::search_hits;

use super::order::{Order, OrderFilter};
use crate::entity::order;

search_hits!(OrderHits, Order);

/// A search (owned by the account service); this service adds its orders.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct SearchResults {
    pub text: String,
    pub first: i32,
}

#[ComplexObject]
impl SearchResults {
    /// Orders by number.
    async fn orders(&self, ctx: &Context<'_>) -> Result<OrderHits> {
        Ok(OrderHits(
            hits::<order::Entity, OrderFilter>(ctx, &self.text, self.first)
                .await?
                .map(Order),
        ))
    }
}

#[derive(Default)]
pub struct SearchEntityQuery;

#[Object]
impl SearchEntityQuery {
    /// Federation: a search's orders, by its key.
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
