//! Global search, this service's part: the orders that match a search (by number),
//! added to the account service's `SearchResults` entity, through the caller's policy.

use async_graphql::{ComplexObject, Context, Result};
use crm_service_common::search::hits;
use crm_service_common::search_hits;

use super::order::{Order, OrderFilter};
use crate::entity::order;

search_hits!(OrderHits, Order);

crm_service_common::search_results_entity!();

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
