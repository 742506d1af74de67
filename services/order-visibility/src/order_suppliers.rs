//! The suppliers each order holds a line of, one row per (supplier, order) with the order's
//! creation time copied (`crm_migrations::order_visibility::order_suppliers`), so a
//! supplier's page of orders, newest first, walks its rows and stops after a page
//! ([`ordered`]). The lines stay what decides access; these rows follow them in the
//! transaction that writes a line ([`crate::store::line_written`]) or moves a product to
//! another supplier ([`crate::store::product_written`]).

use crm_migrations::order_visibility::order_suppliers::{self as table, TABLE};
use crm_service_common::ApiResult;
use crm_service_common::scope_plan::OrderedScope;
use sea_orm::ConnectionTrait;
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Alias, Condition, Expr, Query};

use crate::entity::order_line;

/// Makes the rows of the orders `orders` selects (a condition on `order_id`) equal to what
/// their lines not archived imply, one refresh at a time.
pub async fn refresh<C: ConnectionTrait>(db: &C, orders: Condition) -> ApiResult<()> {
    crm_service_common::db::rederive(db, TABLE, table::refresh(orders)).await
}

/// How the kept rows differ from a refresh of every order: (missing, extra) rows.
pub async fn drift<C: ConnectionTrait>(db: &C) -> ApiResult<(u64, u64)> {
    crm_service_common::db::drift(db, table::derived(Condition::all()), table::kept()).await
}

/// One order.
pub fn of_order(order_id: &str) -> Condition {
    Condition::all().add(Expr::col(Alias::new("order_id")).eq(order_id))
}

/// The orders with a line of `product_id`.
pub fn of_product(product_id: &str) -> Condition {
    Condition::all().add(
        Expr::col(Alias::new("order_id")).in_subquery(
            Query::select()
                .column(order_line::Column::OrderId)
                .from(order_line::Entity)
                .and_where(Expr::col(order_line::Column::ProductId).eq(product_id))
                .to_owned(),
        ),
    )
}

/// A supplier's orders, newest first: its rows.
pub fn ordered(supplier_id: &str) -> OrderedScope {
    OrderedScope {
        table: TABLE,
        record: "order_id",
        sort_key: "order_created_at",
        condition: Condition::all()
            .add(Expr::col((Alias::new(TABLE), Alias::new("supplier_id"))).eq(supplier_id)),
    }
}
