//! The order-visibility part of the deterministic demo world. It refers to accounts and
//! partners the account seed wrote (by id, as any client would), so the whole world is
//! coherent: every order's account exists, every product's supplier is a supplier, and
//! most orders are fulfilled by the distributor covering the account's territory.

use chrono::{DateTime, Duration, Utc};
use crm_service_common::events::{NewEvent, outbox};
use crm_service_common::seed::{World, insert_all};
use rand::Rng;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, EntityTrait, PaginatorTrait, TransactionTrait,
    TryIntoModel,
};

use crate::domain::{LineStatus, OrderStatus, ShipmentStatus};
use crate::entity::*;
use crate::store::{ORDER_AGGREGATE, order_snapshot, shipment_status_changed};

/// What the account seed wrote that orders refer to.
#[derive(Clone, Debug, Default)]
pub struct WorldRefs {
    /// Supplier partner ids.
    pub suppliers: Vec<String>,
    /// Distributor partner ids with the territory codes each covers.
    pub distributors: Vec<(String, Vec<String>)>,
    /// Account ids with their territory code.
    pub accounts: Vec<(String, Option<String>)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeedSummary {
    pub products: usize,
    pub orders: usize,
    pub lines: usize,
    pub shipments: usize,
}

pub const PRODUCT_KINDS: &[&str] = &[
    "Industrial Sensor",
    "Servo Motor",
    "Control Valve",
    "Circuit Board",
    "Steel Bracket",
    "Packaging Crate",
    "Cable Harness",
    "Power Supply",
    "Hydraulic Pump",
    "LED Panel",
    "Pressure Gauge",
    "Thermal Pad",
];
pub const PRODUCT_SERIES: &[&str] = &["S", "X", "Pro", "Lite", "Max", "HD"];
const CARRIERS: &[&str] = &["DHL", "UPS", "FedEx", "DB Schenker", "PostNL"];
const LOCATIONS: &[&str] = &[
    "Hamburg hub",
    "Leipzig hub",
    "Rotterdam depot",
    "Lyon depot",
    "Customs",
];

/// The order statuses in rotation, so every status appears in a world of any useful size.
pub const ORDER_STATUSES: &[OrderStatus] = &[
    OrderStatus::Delivered,
    OrderStatus::Shipped,
    OrderStatus::InFulfillment,
    OrderStatus::Confirmed,
    OrderStatus::Placed,
    OrderStatus::Delivered,
    OrderStatus::Shipped,
    OrderStatus::OnHold,
    OrderStatus::Cancelled,
    OrderStatus::Draft,
    OrderStatus::Shipped,
    OrderStatus::InFulfillment,
    OrderStatus::Delivered,
    OrderStatus::Confirmed,
];

/// The tracking history that leads to each final shipment status.
fn tracking_path(status: ShipmentStatus) -> &'static [ShipmentStatus] {
    use ShipmentStatus::*;
    match status {
        LabelCreated => &[LabelCreated],
        InTransit => &[LabelCreated, InTransit],
        OutForDelivery => &[LabelCreated, InTransit, OutForDelivery],
        Delivered => &[LabelCreated, InTransit, OutForDelivery, Delivered],
        Exception => &[LabelCreated, InTransit, Exception],
        Returned => &[LabelCreated, InTransit, Exception, Returned],
    }
}

/// The shipment statuses an order in `status` can have, in rotation.
fn shipment_statuses(status: OrderStatus) -> &'static [ShipmentStatus] {
    use ShipmentStatus::*;
    match status {
        OrderStatus::InFulfillment => &[LabelCreated, InTransit],
        OrderStatus::Shipped => &[InTransit, OutForDelivery, Exception, Returned],
        OrderStatus::Delivered => &[Delivered],
        _ => &[],
    }
}

fn line_status(order: OrderStatus, backorder: bool) -> LineStatus {
    match order {
        OrderStatus::Draft | OrderStatus::Placed => LineStatus::Open,
        OrderStatus::Confirmed | OrderStatus::OnHold if backorder => LineStatus::Backordered,
        OrderStatus::Confirmed | OrderStatus::OnHold | OrderStatus::InFulfillment => {
            LineStatus::Confirmed
        }
        OrderStatus::Shipped => LineStatus::Shipped,
        OrderStatus::Delivered => LineStatus::Delivered,
        OrderStatus::Cancelled => LineStatus::Cancelled,
    }
}

/// The products of an already seeded world (for the knowledge-base seed): `(id, name,
/// sku)`, in SKU order.
pub async fn product_refs(
    db: &DatabaseConnection,
) -> anyhow::Result<Vec<(String, String, String)>> {
    use sea_orm::QueryOrder;
    Ok(product::Entity::find()
        .order_by_asc(product::Column::Sku)
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name, p.sku))
        .collect())
}

pub async fn is_seeded(db: &DatabaseConnection) -> anyhow::Result<bool> {
    Ok(product::Entity::find().count(db).await? > 0)
}

/// Writes products, orders, lines and shipments in one transaction, with the events a
/// consumer rebuilding from the feed needs.
pub async fn seed(
    db: &DatabaseConnection,
    seed: u64,
    refs: &WorldRefs,
) -> anyhow::Result<SeedSummary> {
    // A seed of its own, so adding rows here never changes the account world.
    let mut w = World::new(seed ^ 0x0_0de5);
    let mut summary = SeedSummary::default();
    let start = crm_service_common::seed::epoch();

    let mut products = Vec::new();
    for (s, supplier) in refs.suppliers.iter().enumerate() {
        for k in 0..6 {
            let kind = w.pick(PRODUCT_KINDS);
            let series = w.pick(PRODUCT_SERIES);
            let (id, external_id, version, created_at, updated_at, archived_at) =
                w.columns("prd", start);
            products.push(product::Model {
                id: id.unwrap(),
                external_namespace: String::new(),
                external_id: external_id.unwrap(),
                version: version.unwrap(),
                created_at: created_at.unwrap(),
                updated_at: updated_at.unwrap(),
                archived_at: archived_at.unwrap(),
                sku: format!("S{}-{}{:03}", s + 1, kind.chars().next().unwrap_or('P'), k + 1),
                name: format!("{kind} {series}"),
                description: Some(format!("{kind}, {series} series. Datasheet and installation notes in the knowledge base.")),
                supplier_partner_id: supplier.clone(),
                unit_price_minor: w.rng.random_range(5..2_000) * 100 + [0, 50, 99][w.rng.random_range(0..3)],
                currency: "EUR".into(),
            });
        }
    }

    let (mut orders, mut lines, mut shipments, mut tracking) = (vec![], vec![], vec![], vec![]);
    let mut rotation = 0;
    let mut shipment_rotation = 0;
    for (n, (account_id, territory)) in refs.accounts.iter().enumerate() {
        if products.is_empty() || !w.chance(0.75) {
            continue;
        }
        let covering: Vec<&String> = refs
            .distributors
            .iter()
            .filter(|(_, covers)| territory.as_ref().is_some_and(|t| covers.contains(t)))
            .map(|(id, _)| id)
            .collect();
        for k in 0..w.rng.random_range(1..=3) {
            let status = ORDER_STATUSES[rotation % ORDER_STATUSES.len()];
            rotation += 1;
            let created = w.time(300);
            let (id, external_id, version, created_at, updated_at, archived_at) =
                w.columns("ord", created);
            let order_id = id.unwrap();
            // Mostly the distributor covering the territory; sometimes another one (it
            // then sees the account because it fulfils its orders); drafts have none yet.
            let distributor = match (status, covering.first()) {
                (OrderStatus::Draft, _) => None,
                (_, Some(d)) if w.chance(0.8) => Some((*d).clone()),
                _ if !refs.distributors.is_empty() => Some(w.pick(&refs.distributors).0.clone()),
                _ => None,
            };
            let mut total = 0_i64;
            let mut line_products = Vec::new();
            for l in 0..w.rng.random_range(1..=4) {
                let product = w.pick(&products).clone();
                if line_products.contains(&product.id) {
                    continue;
                }
                line_products.push(product.id.clone());
                let quantity = w.rng.random_range(1..=50);
                let line_status = line_status(status, w.chance(0.3));
                if line_status != LineStatus::Cancelled {
                    total += i64::from(quantity) * product.unit_price_minor;
                }
                let (id, _, version, created_at, updated_at, archived_at) =
                    w.columns("oln", created);
                lines.push(order_line::ActiveModel {
                    id,
                    version,
                    created_at,
                    updated_at,
                    archived_at,
                    external_namespace: Set(String::new()),
                    external_id: Set(None),
                    order_id: Set(order_id.clone()),
                    line_number: Set(Some(l + 1)),
                    product_id: Set(product.id.clone()),
                    quantity: Set(quantity),
                    unit_price_minor: Set(product.unit_price_minor),
                    currency: Set(product.currency.clone()),
                    status: Set(line_status),
                    expected_date: Set(None),
                });
            }
            let updated = created + Duration::days(w.rng.random_range(0..20));
            orders.push(order::Model {
                id: order_id.clone(),
                external_namespace: String::new(),
                external_id: if n % 3 == 0 {
                    Some(format!("ERP-SO-{:05}-{}", n + 1, k + 1))
                } else {
                    external_id.unwrap()
                },
                version: version.unwrap(),
                created_at: created_at.unwrap(),
                updated_at: updated,
                archived_at: archived_at.unwrap(),
                number: format!("SO-2026-{:05}", orders.len() + 1),
                account_id: account_id.clone(),
                status,
                placed_at: (status != OrderStatus::Draft).then_some(created),
                currency: "EUR".into(),
                total_minor: total,
                fulfilling_distributor_id: distributor,
                internal_note: w
                    .chance(0.3)
                    .then(|| "Internal: margin below target; check before discounting.".to_owned()),
            });
            let _ = updated_at;
            for _ in
                0..usize::from(!shipment_statuses(status).is_empty()) + usize::from(w.chance(0.3))
            {
                let options = shipment_statuses(status);
                if options.is_empty() {
                    break;
                }
                let final_status = options[shipment_rotation % options.len()];
                shipment_rotation += 1;
                let shipped = created + Duration::days(2);
                let (id, _, version, created_at, _, archived_at) = w.columns("shp", shipped);
                let shipment_id = id.clone().unwrap();
                let path = tracking_path(final_status);
                let mut at = shipped;
                let mut shipped_at = None;
                for step in path {
                    if *step == ShipmentStatus::InTransit && shipped_at.is_none() {
                        shipped_at = Some(at);
                    }
                    tracking.push(shipment_event::ActiveModel {
                        id: Set(w.id("sev")),
                        shipment_id: Set(shipment_id.clone()),
                        status: Set(*step),
                        occurred_at: Set(at),
                        location: Set((*step != ShipmentStatus::LabelCreated)
                            .then(|| w.pick(LOCATIONS).to_string())),
                        note: Set(None),
                        recorded_at: Set(at),
                    });
                    at += Duration::hours(w.rng.random_range(6..48));
                }
                let last: DateTime<Utc> = at - Duration::hours(1);
                shipments.push(shipment::ActiveModel {
                    id,
                    version,
                    created_at,
                    archived_at,
                    updated_at: Set(last),
                    external_namespace: Set(String::new()),
                    external_id: Set(None),
                    order_id: Set(order_id.clone()),
                    carrier: Set(w.pick(CARRIERS).to_string()),
                    tracking_number: Set(Some(format!(
                        "TRK{:010}",
                        w.rng.random_range(0..9_999_999_999_i64)
                    ))),
                    status: Set(final_status),
                    shipped_at: Set(shipped_at),
                    delivered_at: Set((final_status == ShipmentStatus::Delivered).then_some(last)),
                });
            }
        }
    }
    summary.products = products.len();
    summary.orders = orders.len();
    summary.lines = lines.len();
    summary.shipments = shipments.len();

    let txn = db.begin().await?; // one transaction: a seed is all or nothing
    insert_all::<product::Entity, _>(&txn, products.into_iter().map(Into::into).collect()).await?;
    insert_all::<order::Entity, _>(&txn, orders.iter().cloned().map(Into::into).collect()).await?;
    insert_all::<order_line::Entity, _>(&txn, lines).await?;
    crate::order_suppliers::refresh(&txn, sea_orm::sea_query::Condition::all())
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    insert_all::<shipment::Entity, _>(&txn, shipments.clone()).await?;
    insert_all::<shipment_event::Entity, _>(&txn, tracking).await?;

    // The events the API would have published for this history.
    let mut events = Vec::new();
    for order in &orders {
        let kind = if order.status == OrderStatus::Draft {
            "order.changed"
        } else {
            "order.placed"
        };
        let snapshot = order_snapshot(&txn, order)
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
        events.push(NewEvent::new(ORDER_AGGREGATE, &order.id, kind, snapshot));
    }
    for shipment in &shipments {
        let shipment = shipment.clone().try_into_model()?;
        let Some(order) = orders.iter().find(|o| o.id == shipment.order_id) else {
            continue;
        };
        events.push(shipment_status_changed(&shipment, None, order));
    }
    outbox::append(&txn, events)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    txn.commit().await?;
    Ok(summary)
}
