//! `Product` is an entity of the order-visibility service. The knowledge base adds the
//! articles linked to a product, resolving references by key alone.

use async_graphql::{ComplexObject, Context, ID, Object, Result, SimpleObject};

use super::article::{ArticleConnection, ArticleFilter, ArticleOrder, list_articles};

/// A product (owned by the order-visibility service).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Product {
    pub id: ID,
}

#[ComplexObject]
impl Product {
    /// The articles linked to this product.
    async fn articles(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ArticleFilter>,
        order_by: Option<ArticleOrder>,
    ) -> Result<ArticleConnection> {
        let filter = ArticleFilter {
            product_id: Some(self.id.clone()),
            ..filter.unwrap_or_default()
        };
        list_articles(ctx, first, after, Some(filter), order_by).await
    }
}

#[derive(Default)]
pub struct ReferenceEntityQuery;

#[Object]
impl ReferenceEntityQuery {
    /// Federation: this subgraph's fields of a product, by key (no look-up needed).
    #[graphql(entity)]
    async fn find_product_by_id(&self, id: ID) -> Product {
        Product { id }
    }
}
