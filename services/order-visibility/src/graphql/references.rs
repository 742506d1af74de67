//! `Account` and `Partner` are entities of the account service. This subgraph contributes
//! fields to them (an account's orders; a partner's products and fulfilled orders) and
//! resolves references to them by key alone: it never reads the account service's tables.

use async_graphql::{ComplexObject, Context, ID, Object, Result, SimpleObject};

use super::order::{OrderConnection, OrderFilter, OrderOrder, list_orders};
use super::product::{ProductConnection, ProductFilter, ProductOrder, list_products};

/// A customer organisation (owned by the account service).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Account {
    pub id: ID,
}

#[ComplexObject]
impl Account {
    /// The account's orders, newest first unless ordered otherwise.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<OrderFilter>,
        order_by: Option<OrderOrder>,
    ) -> Result<OrderConnection> {
        let filter = OrderFilter {
            account_id: Some(self.id.clone()),
            ..filter.unwrap_or_default()
        };
        list_orders(ctx, first, after, Some(filter), order_by).await
    }
}

/// A supplier or distributor organisation (owned by the account service).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Partner {
    pub id: ID,
}

#[ComplexObject]
impl Partner {
    /// The products this partner supplies.
    async fn supplied_products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ProductFilter>,
        order_by: Option<ProductOrder>,
    ) -> Result<ProductConnection> {
        let filter = ProductFilter {
            supplier_partner_id: Some(self.id.clone()),
            ..filter.unwrap_or_default()
        };
        list_products(ctx, first, after, Some(filter), order_by).await
    }

    /// The orders this partner fulfils, newest first unless ordered otherwise.
    async fn fulfilled_orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<OrderFilter>,
        order_by: Option<OrderOrder>,
    ) -> Result<OrderConnection> {
        let filter = OrderFilter {
            fulfilling_distributor_id: Some(self.id.clone()),
            ..filter.unwrap_or_default()
        };
        list_orders(ctx, first, after, Some(filter), order_by).await
    }
}

#[derive(Default)]
pub struct ReferenceEntityQuery;

#[Object]
impl ReferenceEntityQuery {
    /// Federation: this subgraph's fields of an account, by key (no look-up needed).
    #[graphql(entity)]
    async fn find_account_by_id(&self, id: ID) -> Account {
        Account { id }
    }

    /// Federation: this subgraph's fields of a partner, by key (no look-up needed).
    #[graphql(entity)]
    async fn find_partner_by_id(&self, id: ID) -> Partner {
        Partner { id }
    }
}
