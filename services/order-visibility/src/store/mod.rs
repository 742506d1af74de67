//! The order-visibility records on the shared record store, and what their writes do to
//! their aggregate. An order, its lines and its shipments are one aggregate: every write to
//! any of them locks the order's row (by updating it), keeps the order's total, and
//! publishes one event about the order, so the order's events leave in commit order.

use std::collections::BTreeSet;

use crm_service_common::domain::label;
use crm_service_common::events::{NewEvent, outbox};
pub use crm_service_common::record::*;
use crm_service_common::{ApiError, ApiResult, record};
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::domain::{LineStatus, OrderStatus, ShipmentStatus};
use crate::entity::*;

record!(product, "prd", after_write = product_written);
record!(order, "ord", after_write = order_written);
record!(order_line, "oln", after_write = line_written);
record!(shipment, "shp", after_write = shipment_written);

/// The aggregate type of every event this service publishes.
pub const ORDER_AGGREGATE: &str = "Order";

/// After an order changed: publish `order.placed` when it just became PLACED, otherwise
/// `order.changed` when something another service cares about changed.
pub async fn order_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&order::Model>,
    after: &order::Model,
) -> ApiResult<()> {
    let placed = after.status == OrderStatus::Placed
        && before.is_none_or(|b| b.status != OrderStatus::Placed);
    let relevant = before.is_none_or(|b| {
        b.status != after.status
            || b.account_id != after.account_id
            || b.fulfilling_distributor_id != after.fulfilling_distributor_id
            || b.archived_at.is_some() != after.archived_at.is_some()
    });
    if !relevant {
        return Ok(());
    }
    let kind = if placed {
        "order.placed"
    } else {
        "order.changed"
    };
    let snapshot = order_snapshot(db, after).await?;
    outbox::append(
        db,
        vec![NewEvent::new(ORDER_AGGREGATE, &after.id, kind, snapshot)],
    )
    .await
}

/// After a product moved to another supplier: every order with a line of it publishes
/// `order.changed`, so that the shares its suppliers hold follow (the old supplier stops
/// seeing accounts it saw only through this product, the new one starts).
pub async fn product_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&product::Model>,
    after: &product::Model,
) -> ApiResult<()> {
    if before.is_none_or(|b| b.supplier_partner_id == after.supplier_partner_id) {
        return Ok(());
    }
    crate::order_suppliers::refresh(db, crate::order_suppliers::of_product(&after.id)).await?;
    let orders = Query::select()
        .distinct()
        .column(order_line::Column::OrderId)
        .from(order_line::Entity)
        .and_where(Expr::col(order_line::Column::ProductId).eq(after.id.clone()))
        .and_where(Expr::col(order_line::Column::ArchivedAt).is_null())
        .to_owned();
    let orders = order::Entity::find()
        .filter(Expr::col(order::Column::Id).in_subquery(orders))
        .order_by_asc(order::Column::Id)
        .all(db)
        .await?;
    let mut events = Vec::with_capacity(orders.len());
    for order in &orders {
        let snapshot = order_snapshot(db, order).await?;
        events.push(NewEvent::new(
            ORDER_AGGREGATE,
            &order.id,
            "order.changed",
            snapshot,
        ));
    }
    outbox::append(db, events).await
}

/// After a line changed: its order must be open and in the same currency; the order's
/// total is recomputed and `order.changed` published (the set of suppliers may differ).
pub async fn line_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&order_line::Model>,
    after: &order_line::Model,
) -> ApiResult<()> {
    if before.is_some_and(|b| b.order_id != after.order_id) {
        return Err(ApiError::validation(
            "input.orderId",
            "a line cannot move to another order",
        ));
    }
    let order = open_order(db, &after.order_id, "its lines").await?;
    if after.currency != order.currency {
        return Err(ApiError::validation(
            "input.currency",
            format!("must be the order's currency, {}", order.currency),
        ));
    }
    let lines = order_line::Entity::find()
        .filter(Expr::col(order_line::Column::OrderId).eq(order.id.clone()))
        .all(db)
        .await?;
    let total = lines
        .iter()
        .filter(|l| l.archived_at.is_none() && l.status != LineStatus::Cancelled)
        .try_fold(0_i64, |sum, l| {
            i64::from(l.quantity)
                .checked_mul(l.unit_price_minor)
                .and_then(|amount| sum.checked_add(amount))
        })
        .ok_or_else(|| ApiError::validation("input.quantity", "the order total is too large"))?;
    let order = touch_order(db, &order, Some(total)).await?;
    let snapshot = order_snapshot(db, &order).await?;
    let mut events = vec![NewEvent::new(
        ORDER_AGGREGATE,
        &order.id,
        "order.changed",
        snapshot,
    )];
    // A supplier hears of a new line of its product on an order that is placed.
    if before.is_none() && order.status != OrderStatus::Draft {
        let product = get::<product::Entity, C>(db, &after.product_id).await?;
        events.push(NewEvent::new(
            ORDER_AGGREGATE,
            &order.id,
            "order.line_added",
            json!({
                "orderId": order.id,
                "orderNumber": order.number,
                "accountId": order.account_id,
                "lineId": after.id,
                "productId": product.id,
                "productName": product.name,
                "supplierPartnerId": product.supplier_partner_id,
                "quantity": after.quantity,
            }),
        ));
    }
    crate::order_suppliers::refresh(db, crate::order_suppliers::of_order(&order.id)).await?;
    outbox::append(db, events).await
}

/// After a shipment changed: a new one records its first tracking status; a status move
/// publishes `shipment.status_changed` on the order.
pub async fn shipment_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&shipment::Model>,
    after: &shipment::Model,
) -> ApiResult<()> {
    if before.is_some_and(|b| b.order_id != after.order_id) {
        return Err(ApiError::validation(
            "input.orderId",
            "a shipment cannot move to another order",
        ));
    }
    let order = match before {
        // A new shipment for a cancelled or delivered order makes no sense.
        None => open_order(db, &after.order_id, "its shipments").await?,
        Some(_) => get::<order::Entity, C>(db, &after.order_id).await?,
    };
    if before.is_none() {
        record_tracking(db, after, after.created_at, None, None).await?;
    }
    // Every write locks the order's row, so the order's events leave in commit order.
    touch_order(db, &order, None).await?;
    let previous = before.map(|b| b.status);
    if previous == Some(after.status) {
        return Ok(());
    }
    let event = shipment_status_changed(after, previous, &order);
    outbox::append(db, vec![event]).await
}

/// `shipment.status_changed`, on the shipment's order.
pub fn shipment_status_changed(
    shipment: &shipment::Model,
    previous: Option<ShipmentStatus>,
    order: &order::Model,
) -> NewEvent {
    NewEvent::new(
        ORDER_AGGREGATE,
        &shipment.order_id,
        "shipment.status_changed",
        json!({
            "orderId": shipment.order_id,
            "shipmentId": shipment.id,
            "status": label(shipment.status),
            "previousStatus": previous.map(label),
            "carrier": shipment.carrier,
            "trackingNumber": shipment.tracking_number,
            "fulfillingDistributorId": order.fulfilling_distributor_id,
            "orderNumber": order.number,
            "accountId": order.account_id,
        }),
    )
}

/// Appends one entry to a shipment's tracking history.
pub async fn record_tracking<C: ConnectionTrait>(
    db: &C,
    shipment: &shipment::Model,
    occurred_at: chrono::DateTime<chrono::Utc>,
    location: Option<String>,
    note: Option<String>,
) -> ApiResult<()> {
    shipment_event::Entity::insert(shipment_event::ActiveModel {
        id: Set(crm_service_common::domain::new_id("sev")),
        shipment_id: Set(shipment.id.clone()),
        status: Set(shipment.status),
        occurred_at: Set(occurred_at),
        location: Set(location),
        note: Set(note),
        recorded_at: Set(now()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The order, unless it is closed (then `INVALID_STATE`).
async fn open_order<C: ConnectionTrait>(
    db: &C,
    order_id: &str,
    what: &str,
) -> ApiResult<order::Model> {
    let order = match get::<order::Entity, C>(db, order_id).await {
        Err(ApiError::NotFound) => {
            return Err(ApiError::validation(
                "input.orderId",
                "refers to a record that does not exist",
            ));
        }
        other => other?,
    };
    if order.status.is_closed() {
        return Err(ApiError::InvalidState {
            message: format!(
                "the order is {}; {what} can no longer change",
                label(order.status)
            ),
        });
    }
    Ok(order)
}

/// Updates the order's row (its total when given): this takes the row lock that orders
/// the aggregate's events. The order's `version` is left alone: a line or shipment change
/// must not make a client's pending order edit conflict.
async fn touch_order<C: ConnectionTrait>(
    db: &C,
    order: &order::Model,
    total: Option<i64>,
) -> ApiResult<order::Model> {
    let mut update = order::Entity::update_many()
        .col_expr(order::Column::UpdatedAt, Expr::val(now()))
        .filter(Expr::col(order::Column::Id).eq(order.id.clone()));
    if let Some(total) = total {
        update = update.col_expr(order::Column::TotalMinor, Expr::val(total));
    }
    update.exec(db).await?;
    get::<order::Entity, C>(db, &order.id).await
}

/// What other services need to know about an order: who bought, who fulfils, whose
/// products are on it. Consumers can apply it as a whole, so a replay converges.
pub async fn order_snapshot<C: ConnectionTrait>(db: &C, order: &order::Model) -> ApiResult<Value> {
    let lines = order_line::Entity::find()
        .filter(Expr::col(order_line::Column::OrderId).eq(order.id.clone()))
        .filter(Expr::col(order_line::Column::ArchivedAt).is_null())
        .order_by_asc(order_line::Column::Id)
        .all(db)
        .await?;
    let product_ids: Vec<String> = lines
        .iter()
        .map(|l| l.product_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let suppliers: BTreeSet<String> = get_many::<product::Entity, C>(db, &product_ids)
        .await?
        .into_iter()
        .map(|p| p.supplier_partner_id)
        .collect();
    Ok(json!({
        "orderId": order.id,
        "number": order.number,
        "accountId": order.account_id,
        "status": label(order.status),
        "fulfillingDistributorId": order.fulfilling_distributor_id,
        "supplierPartnerIds": suppliers,
        "productIds": product_ids,
        "currency": order.currency,
        "totalMinor": order.total_minor,
        "archived": order.archived_at.is_some(),
    }))
}
