//! Orders: the list and the detail page (lines, shipments and their tracking history),
//! for staff and partners alike — the API decides which orders, lines and prices each
//! sees. A distributor records shipment statuses and tracking numbers here.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use serde::Deserialize;

use super::super::{InPortal, PageResult, Side, Signed, refused_if};
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Area, Chrome, Ctx, FormErrors, render};
use super::app::{AccountRef, ORDER_STATUSES, SavedView};
use super::{Choice, Conn, Label, Money, Text, When, choices, param, plausible_id};

#[derive(Deserialize, Default)]
pub struct OrdersQuery {
    q: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderRow {
    pub id: String,
    pub number: String,
    pub status: Label,
    pub placed_at: When,
    pub total: Money,
    pub account: Option<AccountRef>,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    chrome: Chrome,
    base: &'static str,
    q: String,
    statuses: Vec<Choice>,
    sorts: Vec<Choice>,
    desc: bool,
    rows: Vec<OrderRow>,
    show_total: bool,
    total: String,
    next: Option<String>,
    first_page: Option<String>,
    views: Vec<SavedView>,
    view_page: &'static str,
    current_query: String,
}

pub async fn list<S: Side>(
    Signed(ctx, _): Signed<S>,
    Query(query): Query<OrdersQuery>,
) -> PageResult {
    orders_page(ctx, query).await
}

fn base(area: Area) -> &'static str {
    match area {
        Area::App => "/app/orders",
        Area::Portal => "/portal/orders",
    }
}

/// What the orders list shows, from its query string: the status chosen, the API's
/// filter, and the ordering (the page and its export read the same).
fn orders_selection(
    ctx: &Ctx,
    query: &OrdersQuery,
) -> (
    Option<String>,
    serde_json::Map<String, serde_json::Value>,
    String,
    bool,
) {
    let status = param(&query.status).filter(|s| ORDER_STATUSES.contains(&s.as_str()));
    let sortable = sortable(ctx);
    let sort = param(&query.sort)
        .filter(|s| sortable.contains(&s.as_str()))
        .unwrap_or_else(|| "CREATED_AT".into());
    let desc = param(&query.dir).as_deref() != Some("ASC");
    let mut filter = serde_json::Map::new();
    if let Some(q) = param(&query.q) {
        filter.insert("text".into(), json!(q));
    }
    if let Some(status) = &status {
        filter.insert("status".into(), json!(status));
    }
    (status, filter, sort, desc)
}

/// `/app/orders.csv`, `/portal/orders.csv`: the list as the page shows it, every page of
/// it, streamed by the gateway's export as the caller (a supplier's has no totals).
pub async fn csv<S: Side>(
    Signed(ctx, _): Signed<S>,
    Query(query): Query<OrdersQuery>,
) -> PageResult {
    let (_, filter, sort, desc) = orders_selection(&ctx, &query);
    let order = json!({ "field": sort, "direction": if desc { "DESC" } else { "ASC" } });
    ctx.web
        .api
        .export(
            &ctx.session.access_token,
            &[
                ("list", "orders".to_owned()),
                ("format", "csv".to_owned()),
                ("filter", serde_json::Value::Object(filter).to_string()),
                ("orderBy", order.to_string()),
            ],
        )
        .await
        .map_err(|failure| ctx.refuse(failure))
}

/// The orderings offered: by total only to callers who may see totals.
fn sortable(ctx: &Ctx) -> &'static [&'static str] {
    if ctx.me.is_supplier() {
        &["CREATED_AT", "NUMBER"]
    } else {
        &["CREATED_AT", "NUMBER", "TOTAL"]
    }
}

async fn orders_page(ctx: Ctx, query: OrdersQuery) -> PageResult {
    let (status, filter, sort, desc) = orders_selection(&ctx, &query);
    let sortable = sortable(&ctx);
    const CAP: i64 = 10_000;
    let gql = format!(
        "query($first: Int!, $after: String, $filter: OrderFilter, $orderBy: OrderOrder) {{ \
         orders(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {{ \
           totalCount(atMost: {CAP}) pageInfo {{ endCursor hasNextPage }} \
           nodes {{ id number status placedAt total {{ amount currency }} account {{ id name }} }} }} \
         savedViews(page: \"orders\") {{ id name query }} }}"
    );
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        orders: Conn<OrderRow>,
        saved_views: Vec<SavedView>,
    }
    let variables = super::list_variables(&query.after, filter, &sort, desc);
    let data: Data = ctx.query(&gql, variables).await?;
    let base = base(ctx.area);
    let pairs: Vec<(&str, String)> = [
        ("q", param(&query.q)),
        ("status", status.clone()),
        ("sort", param(&query.sort)),
        ("dir", param(&query.dir)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let current = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let (next, first_page) = super::pager(base, &current, &data.orders.page_info, &query.after);
    let chrome = ctx.chrome("Orders");
    let rows = data.orders.nodes.clone();
    Ok(render(&OrdersPage {
        chrome,
        base,
        q: param(&query.q).unwrap_or_default(),
        statuses: choices(ORDER_STATUSES, &status),
        sorts: sortable
            .iter()
            .map(|v| Choice {
                value: (*v).into(),
                label: match *v {
                    "CREATED_AT" => "Newest".into(),
                    "NUMBER" => "Number".into(),
                    _ => "Total".into(),
                },
                selected: sort == *v,
            })
            .collect(),
        desc,
        show_total: rows.iter().any(|r| r.total.is_some()),
        rows,
        total: data.orders.total(CAP),
        next,
        first_page,
        views: data.saved_views,
        view_page: "orders",
        current_query: current,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderDetail {
    id: String,
    number: String,
    status: Label,
    placed_at: When,
    total: Money,
    internal_note: Text,
    account: Option<AccountRef>,
    fulfilling_distributor: Option<super::app::Named>,
    lines: Conn<LineRow>,
    shipments: Conn<ShipmentRow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineRow {
    id: String,
    version: i64,
    line_number: Option<i64>,
    quantity: i64,
    status: Label,
    expected_date: super::Day,
    next_statuses: Vec<Label>,
    may: super::RecordMay,
    unit_price: Money,
    amount: Money,
    product: Option<ProductRow>,
}

impl LineRow {
    /// The supplier's answers this line takes now: confirm it, backorder it (with a date).
    fn answers(&self) -> Vec<&Label> {
        self.next_statuses
            .iter()
            .filter(|s| matches!(s.0.as_str(), "CONFIRMED" | "BACKORDERED"))
            .collect()
    }
}

#[derive(Deserialize)]
struct ProductRow {
    name: String,
    sku: String,
    supplier: Option<super::app::Named>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentRow {
    id: String,
    version: i64,
    carrier: String,
    tracking_number: Text,
    status: Label,
    shipped_at: When,
    delivered_at: When,
    next_statuses: Vec<Label>,
    events: Vec<EventRow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventRow {
    status: Label,
    occurred_at: When,
    location: Text,
    note: Text,
}

/// What a refused shipment update posted, to show it again with the API's errors.
#[derive(Default)]
struct ShipmentForm {
    shipment_id: String,
    status: String,
    tracking: String,
    location: String,
    note: String,
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    chrome: Chrome,
    order: OrderDetail,
    area_orders: &'static str,
    account_link: bool,
    show_prices: bool,
    show_supplier: bool,
    updates_shipments: bool,
    /// A supplier answers for its lines here (confirm, backorder with a date).
    answers_lines: bool,
    /// How many columns the lines table has (an answer's row spans them).
    line_columns: usize,
    form: ShipmentForm,
    /// Why the last line answer was refused, and for which line.
    line_error: Option<(String, String)>,
}

pub async fn detail_page<S: Side>(Signed(ctx, _): Signed<S>, Path(id): Path<String>) -> PageResult {
    detail(ctx, &id, ShipmentForm::default(), None).await
}

const ORDER_QUERY: &str = "query($id: ID!) { order(id: $id) { id number status placedAt \
    total { amount currency } internalNote account { id name } fulfillingDistributor { id name } \
    lines(first: 200) { nodes { id version lineNumber quantity status expectedDate nextStatuses \
      may { update } unitPrice { amount currency } \
      amount { amount currency } product { name sku supplier { id name } } } } \
    shipments(first: 50) { nodes { id version carrier trackingNumber status shippedAt deliveredAt \
      nextStatuses events { status occurredAt location note } } } } }";

async fn detail(
    ctx: Ctx,
    id: &str,
    form: ShipmentForm,
    line_error: Option<(String, String)>,
) -> PageResult {
    if !plausible_id(id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    #[derive(Deserialize)]
    struct Data {
        order: Option<OrderDetail>,
    }
    let order = match ctx.api::<Data>(ORDER_QUERY, json!({ "id": id })).await {
        Ok(Data { order: Some(order) }) => order,
        Ok(Data { order: None }) => return Err(ctx.refuse(ApiFailure::NotFound)),
        Err(failure) => return Err(ctx.refuse(failure)),
    };
    let refused = form.errors.any() || line_error.is_some();
    let chrome = ctx.chrome(&format!("Order {}", order.number));
    let show_prices = order.lines.nodes.iter().any(|l| l.unit_price.is_some());
    let show_supplier = order
        .lines
        .nodes
        .iter()
        .any(|l| l.product.as_ref().is_some_and(|p| p.supplier.is_some()));
    Ok(refused_if(
        refused,
        render(&OrderPage {
            show_supplier,
            chrome,
            area_orders: base(ctx.area),
            account_link: ctx.area == Area::App,
            show_prices,
            updates_shipments: ctx.me.writes("Shipment"),
            answers_lines: ctx.area == Area::Portal && ctx.me.writes("OrderLine"),
            line_columns: 5 + usize::from(show_supplier) + 2 * usize::from(show_prices),
            order,
            form,
            line_error,
        }),
    ))
}

#[derive(Deserialize)]
pub struct ShipmentUpdate {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    version: i64,
    #[serde(default)]
    status: String,
    #[serde(default)]
    tracking: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    note: String,
}

/// A distributor's shipment update: a new tracking number and/or the next status (with
/// where and a note). The API checks the transition and that the order is the caller's.
pub async fn record_shipment(
    Signed(ctx, _): Signed<InPortal>,
    Path(id): Path<String>,
    Form(form): Form<ShipmentUpdate>,
) -> PageResult {
    let order_path = format!("/portal/orders/{}", form.order);
    ctx.check_csrf(&form.csrf)?;
    if !plausible_id(&id) || !plausible_id(&form.order) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let again = |errors: FormErrors| ShipmentForm {
        shipment_id: id.clone(),
        status: form.status.clone(),
        tracking: form.tracking.clone(),
        location: form.location.clone(),
        note: form.note.clone(),
        errors,
    };
    let mut version = form.version;
    let mut changed = Vec::new();
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Updated {
        version: i64,
        tracking_number: Option<String>,
    }
    // The current tracking number, to change it only when the form changed it.
    let current: Result<Value, _> = ctx
        .api(
            "query($id: ID!) { shipment(id: $id) { trackingNumber } }",
            json!({ "id": id }),
        )
        .await;
    let current_tracking = match &current {
        Ok(data) if data["shipment"].is_null() => return Err(ctx.refuse(ApiFailure::NotFound)),
        Ok(data) => data["shipment"]["trackingNumber"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        Err(failure) => return Err(ctx.refuse(failure.clone())),
    };
    if form.tracking.trim() != current_tracking {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            update_shipment: Updated,
        }
        match ctx
            .api::<Data>(
                "mutation($id: ID!, $v: Int!, $t: String) { updateShipment(id: $id, version: $v, input: { trackingNumber: $t }) { version trackingNumber } }",
                json!({ "id": id, "v": version, "t": form.tracking.trim() }),
            )
            .await
        {
            Ok(data) => {
                version = data.update_shipment.version;
                changed.push(format!(
                    "tracking number {}",
                    data.update_shipment.tracking_number.unwrap_or_default()
                ));
            }
            Err(failure) => {
                let errors = FormErrors::from_failure(failure).fold_unknown(&["trackingNumber"]);
                return detail(ctx, &form.order, again(errors), None).await;
            }
        }
    }
    if !form.status.is_empty() {
        let optional = |v: &str| {
            let v = v.trim();
            (!v.is_empty()).then(|| v.to_owned())
        };
        match ctx
            .api::<Value>(
                "mutation($id: ID!, $v: Int!, $s: ShipmentStatus!, $l: String, $n: String) { recordShipmentStatus(id: $id, version: $v, status: $s, location: $l, note: $n) { version status } }",
                json!({ "id": id, "v": version, "s": form.status, "l": optional(&form.location), "n": optional(&form.note) }),
            )
            .await
        {
            Ok(_) => changed.push(format!("status {}", super::words(&form.status))),
            Err(failure) => {
                let errors = FormErrors::from_failure(failure)
                    .fold_unknown(&["status", "location", "note"]);
                return detail(ctx, &form.order, again(errors), None).await;
            }
        }
    }
    if changed.is_empty() {
        return ctx.see_other(&order_path, Some("Nothing to change.")).await;
    }
    ctx.see_other(
        &order_path,
        Some(&format!("Shipment updated: {}.", changed.join(", "))),
    )
    .await
}

#[derive(Deserialize)]
pub struct LineAnswer {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    version: i64,
    #[serde(default)]
    status: String,
    #[serde(default)]
    expected: String,
}

/// `POST /portal/lines/{id}`: a supplier confirms a line or backorders it, with the date
/// it expects to ship (required to backorder). The API checks the move, the field rule
/// (status and expected date only) and that the line is of the supplier's products.
pub async fn answer_line(
    Signed(ctx, _): Signed<InPortal>,
    Path(id): Path<String>,
    Form(form): Form<LineAnswer>,
) -> PageResult {
    ctx.check_csrf(&form.csrf)?;
    if !plausible_id(&id) || !plausible_id(&form.order) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    if !matches!(form.status.as_str(), "CONFIRMED" | "BACKORDERED") {
        return Err(ctx.refuse(ApiFailure::Invalid(Vec::new())));
    }
    let expected = form.expected.trim();
    let mut input = json!({ "status": form.status });
    if !expected.is_empty() {
        input["expectedDate"] = json!(expected);
    }
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $v: Int!, $input: OrderLineInput!) { updateOrderLine(id: $id, version: $v, input: $input) { lineNumber status expectedDate } }",
            json!({ "id": id, "v": form.version, "input": input }),
        )
        .await
    {
        Ok(data) => {
            let line = &data["updateOrderLine"];
            let number = line["lineNumber"].as_i64().map(|n| format!(" {n}")).unwrap_or_default();
            let notice = match (line["status"].as_str(), line["expectedDate"].as_str()) {
                (Some("BACKORDERED"), Some(day)) => format!("Line{number} backordered until {day}."),
                (_, Some(day)) => format!("Line{number} confirmed, expected to ship {day}."),
                _ => format!("Line{number} confirmed."),
            };
            ctx.see_other(&format!("/portal/orders/{}", form.order), Some(&notice))
                .await
        }
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let message = failure.message();
            detail(ctx, &form.order, ShipmentForm::default(), Some((id, message))).await
        }
    }
}
