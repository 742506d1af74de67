//! What each policy scope means on the order service's tables, bound to the caller's
//! partner: a supplier's products, lines and the orders that hold them; a distributor's
//! fulfilled orders with their lines and shipments.

use chrono::{DateTime, Utc};
use crm_service_common::ApiResult;
use crm_service_common::access::{Action, Scope, Scoped, visible_ids};
use crm_service_common::principal::Principal;
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, Query, SelectStatement, SimpleExpr, UnionType};

use crate::entity::*;

/// Ids of the products `supplier` supplies.
fn products_of(supplier: &str) -> SelectStatement {
    Query::select()
        .column(product::Column::Id)
        .from(product::Entity)
        .and_where(Expr::col(product::Column::SupplierPartnerId).eq(supplier))
        .to_owned()
}

/// Orders with a (not archived) line of `supplier`'s products: a correlated `EXISTS`, so a
/// first page walks orders in page order and stops after one page.
fn has_line_of_products_of(supplier: &str) -> SimpleExpr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(order_line::Entity)
            .and_where(
                Expr::col((order_line::Entity, order_line::Column::OrderId))
                    .equals((order::Entity, order::Column::Id)),
            )
            .and_where(Expr::col(order_line::Column::ArchivedAt).is_null())
            .and_where(Expr::col(order_line::Column::ProductId).in_subquery(products_of(supplier)))
            .to_owned(),
    )
}

/// Ids of the orders `distributor` fulfils.
fn orders_fulfilled_by(distributor: &str) -> SelectStatement {
    Query::select()
        .column(order::Column::Id)
        .from(order::Entity)
        .and_where(Expr::col(order::Column::FulfillingDistributorId).eq(distributor))
        .to_owned()
}

impl Scoped for product::Entity {
    const POLICY_TYPE: &'static str = "Product";

    async fn scope(
        scope: Scope,
        who: &Principal,
        _at: DateTime<Utc>,
    ) -> ApiResult<Option<SimpleExpr>> {
        Ok(match (scope, who.partner()) {
            (Scope::OwnProducts, Some(own)) => {
                Some(Expr::col(product::Column::SupplierPartnerId).eq(own))
            }
            _ => None,
        })
    }
}

impl Scoped for order::Entity {
    const POLICY_TYPE: &'static str = "Order";

    async fn scope(
        scope: Scope,
        who: &Principal,
        _at: DateTime<Utc>,
    ) -> ApiResult<Option<SimpleExpr>> {
        Ok(match (scope, who.partner()) {
            (Scope::HasMyProduct, Some(own)) => Some(has_line_of_products_of(own)),
            (Scope::FulfilledByMe, Some(own)) => {
                Some(Expr::col(order::Column::FulfillingDistributorId).eq(own))
            }
            _ => None,
        })
    }

    /// A supplier's orders newest first: its rows of order suppliers.
    fn ordered_scope(
        scopes: &[Scope],
        who: &Principal,
        _at: DateTime<Utc>,
        ordering: &str,
    ) -> Option<crm_service_common::scope_plan::OrderedScope> {
        if ordering != "CreatedAt" || scopes != [Scope::HasMyProduct] {
            return None;
        }
        Some(crate::order_suppliers::ordered(who.partner()?))
    }

    /// A supplier's order lines and a distributor's fulfilled orders name their orders.
    fn scope_ids(scopes: &[Scope], who: &Principal, _at: DateTime<Utc>) -> Option<SelectStatement> {
        let own = who.partner()?;
        let mut union: Option<SelectStatement> = None;
        for scope in scopes {
            let ids = match scope {
                Scope::HasMyProduct => Query::select()
                    .column(order_line::Column::OrderId)
                    .from(order_line::Entity)
                    .and_where(Expr::col(order_line::Column::ArchivedAt).is_null())
                    .and_where(
                        Expr::col(order_line::Column::ProductId).in_subquery(products_of(own)),
                    )
                    .to_owned(),
                Scope::FulfilledByMe => orders_fulfilled_by(own),
                _ => return None,
            };
            union = Some(match union {
                None => ids,
                Some(mut all) => all.union(UnionType::All, ids).to_owned(),
            });
        }
        union
    }
}

impl Scoped for order_line::Entity {
    const POLICY_TYPE: &'static str = "OrderLine";

    async fn scope(
        scope: Scope,
        who: &Principal,
        _at: DateTime<Utc>,
    ) -> ApiResult<Option<SimpleExpr>> {
        Ok(match (scope, who.partner()) {
            (Scope::OwnProductLines, Some(own)) => {
                Some(Expr::col(order_line::Column::ProductId).in_subquery(products_of(own)))
            }
            (Scope::LinesOfMyOrders, Some(own)) => {
                Some(Expr::col(order_line::Column::OrderId).in_subquery(orders_fulfilled_by(own)))
            }
            _ => None,
        })
    }
}

impl Scoped for shipment::Entity {
    const POLICY_TYPE: &'static str = "Shipment";

    async fn scope(
        scope: Scope,
        who: &Principal,
        at: DateTime<Utc>,
    ) -> ApiResult<Option<SimpleExpr>> {
        match (scope, who.partner()) {
            // The orders the supplier may read, however the policy grants them.
            (Scope::OfMyVisibleOrders, Some(_)) => {
                let orders = visible_ids::<order::Entity>(who, Action::Read, at).await?;
                Ok(Some(
                    Expr::col(shipment::Column::OrderId).in_subquery(orders),
                ))
            }
            (Scope::OfMyOrders, Some(own)) => Ok(Some(
                Expr::col(shipment::Column::OrderId).in_subquery(orders_fulfilled_by(own)),
            )),
            _ => Ok(None),
        }
    }
}
