//! The order-visibility subgraph over HTTP, against a fresh database per test (SQLite, or
//! PostgreSQL when `DATABASE_URL` is set).

use crm_testkit::{TestApp, id};
use serde_json::{Value, json};

async fn spawn() -> TestApp {
    TestApp::start(&crm_order_visibility::subgraph()).await
}

const SUPPLIER: &str = "ptn_supplier_a";
const DISTRIBUTOR: &str = "ptn_distributor_a";

async fn create_product(app: &TestApp, sku: &str, supplier: &str, price: &str) -> Value {
    app.ok(
        "mutation($input: ProductInput!) { createProduct(input: $input) { id sku name version unitPrice { amount currency } supplier { id } } }",
        json!({ "input": { "sku": sku, "name": format!("Product {sku}"), "supplierPartnerId": supplier, "unitPrice": price, "currency": "EUR" } }),
    )
    .await["createProduct"]
        .clone()
}

async fn create_order(app: &TestApp, account: &str, extra: Value) -> Value {
    let mut input = json!({ "accountId": account, "currency": "EUR" });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    app.ok(
        "mutation($input: OrderInput!) { createOrder(input: $input) { id number status version placedAt total { amount } fulfillingDistributorId } }",
        json!({ "input": input }),
    )
    .await["createOrder"]
        .clone()
}

async fn add_line(app: &TestApp, order: &str, product: &str, quantity: i32, price: &str) -> Value {
    app.ok(
        "mutation($input: OrderLineInput!) { createOrderLine(input: $input) { id version status amount { amount } order { total { amount } } } }",
        json!({ "input": { "orderId": order, "productId": product, "quantity": quantity, "unitPrice": price, "currency": "EUR" } }),
    )
    .await["createOrderLine"]
        .clone()
}

#[tokio::test]
async fn an_order_with_lines_keeps_its_total_and_is_read_updated_and_archived() {
    let app = spawn().await;
    let sensor = create_product(&app, "sen-1", SUPPLIER, "12.50").await;
    assert_eq!(sensor["sku"], "SEN-1", "SKUs are upper-cased");
    assert_eq!(sensor["supplier"]["id"], SUPPLIER);
    let valve = create_product(&app, "VAL-2", "ptn_supplier_b", "100").await;
    let order = create_order(
        &app,
        "acc_1",
        json!({ "fulfillingDistributorId": DISTRIBUTOR }),
    )
    .await;
    assert_eq!(order["status"], "PLACED");
    assert!(order["placedAt"].is_string(), "placing sets placedAt");
    assert!(order["number"].as_str().expect("number").starts_with("SO-"));
    add_line(&app, &id(&order), &id(&sensor), 4, "12.50").await;
    let line = add_line(&app, &id(&order), &id(&valve), 1, "99.99").await;
    assert_eq!(line["amount"]["amount"], "99.99");
    assert_eq!(line["order"]["total"]["amount"], "149.99");

    let read = app
        .ok(
            "query($id: ID!) { order(id: $id) { number account { id } fulfillingDistributor { id } total { amount currency } nextStatuses lines { totalCount nodes { quantity product { sku } } } } }",
            json!({ "id": id(&order) }),
        )
        .await;
    assert_eq!(read["order"]["account"]["id"], "acc_1");
    assert_eq!(read["order"]["fulfillingDistributor"]["id"], DISTRIBUTOR);
    assert_eq!(
        read["order"]["total"],
        json!({ "amount": "149.99", "currency": "EUR" })
    );
    assert_eq!(
        read["order"]["nextStatuses"],
        json!(["CONFIRMED", "ON_HOLD", "CANCELLED"])
    );
    assert_eq!(read["order"]["lines"]["totalCount"], 2);

    // Cancelling a line takes it out of the total.
    app.ok(
        "mutation($id: ID!, $v: Int!) { updateOrderLine(id: $id, version: $v, input: { status: CANCELLED }) { status } }",
        json!({ "id": id(&line), "v": line["version"] }),
    )
    .await;
    let read = app
        .ok(
            "query($id: ID!) { order(id: $id) { total { amount } version } }",
            json!({ "id": id(&order) }),
        )
        .await;
    assert_eq!(read["order"]["total"]["amount"], "50.00");
    assert_eq!(
        read["order"]["version"], 1,
        "line changes do not bump the order's version"
    );

    let archived = app
        .ok(
            "mutation($id: ID!) { archiveOrder(id: $id, version: 1) { archivedAt version } }",
            json!({ "id": id(&order) }),
        )
        .await;
    assert!(archived["archiveOrder"]["archivedAt"].is_string());
    let lists = app
        .ok("{ orders { totalCount } all: orders(filter: { includeArchived: true }) { totalCount } }", json!({}))
        .await;
    assert_eq!(lists["orders"]["totalCount"], 0);
    assert_eq!(lists["all"]["totalCount"], 1);
}

#[tokio::test]
async fn every_allowed_order_transition_works_and_forbidden_ones_are_refused() {
    let app = spawn().await;
    // Walk every allowed edge of the state machine, each from a fresh order brought to the
    // edge's start through allowed moves.
    let paths: &[&[&str]] = &[
        &[
            "DRAFT",
            "PLACED",
            "CONFIRMED",
            "IN_FULFILLMENT",
            "SHIPPED",
            "DELIVERED",
        ],
        &["DRAFT", "CANCELLED"],
        &["PLACED", "ON_HOLD", "CONFIRMED", "ON_HOLD", "CANCELLED"],
        &["PLACED", "CANCELLED"],
        &["PLACED", "CONFIRMED", "CANCELLED"],
    ];
    for path in paths {
        let order = create_order(&app, "acc_1", json!({ "status": path[0] })).await;
        let mut version = order["version"].as_i64().expect("version");
        for to in &path[1..] {
            let moved = app
                .ok(
                    "mutation($id: ID!, $v: Int!, $s: OrderStatus!) { updateOrder(id: $id, version: $v, input: { status: $s }) { status version placedAt } }",
                    json!({ "id": id(&order), "v": version, "s": to }),
                )
                .await;
            assert_eq!(moved["updateOrder"]["status"], *to);
            version = moved["updateOrder"]["version"].as_i64().expect("version");
        }
    }
    let forbidden = [
        ("DRAFT", "SHIPPED"),
        ("PLACED", "DELIVERED"),
        ("PLACED", "DRAFT"),
    ];
    for (from, to) in forbidden {
        let order = create_order(&app, "acc_1", json!({ "status": from })).await;
        let error = app
            .error(
                "mutation($id: ID!, $s: OrderStatus!) { updateOrder(id: $id, version: 1, input: { status: $s }) { status } }",
                json!({ "id": id(&order), "s": to }),
            )
            .await;
        assert_eq!(
            error["extensions"]["code"], "INVALID_STATE",
            "{from} -> {to}"
        );
        assert_eq!(
            error["message"].as_str().expect("message"),
            format!(
                "an order cannot go from {from} to {to} (allowed: {})",
                if from == "DRAFT" {
                    "PLACED, CANCELLED"
                } else {
                    "CONFIRMED, ON_HOLD, CANCELLED"
                }
            )
        );
        let unchanged = app
            .ok(
                "query($id: ID!) { order(id: $id) { status version } }",
                json!({ "id": id(&order) }),
            )
            .await;
        assert_eq!(unchanged["order"], json!({ "status": from, "version": 1 }));
    }
    // A cancelled order is final, and its lines can no longer change.
    let product = create_product(&app, "P-1", SUPPLIER, "1").await;
    let order = create_order(&app, "acc_1", json!({})).await;
    let line = add_line(&app, &id(&order), &id(&product), 1, "1").await;
    app.ok("mutation($id: ID!) { updateOrder(id: $id, version: 1, input: { status: CANCELLED }) { status } }", json!({ "id": id(&order) })).await;
    let error = app
        .error("mutation($id: ID!) { updateOrder(id: $id, version: 2, input: { status: PLACED }) { status } }", json!({ "id": id(&order) }))
        .await;
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("allowed: none: it is final"),
        "{error}"
    );
    let error = app
        .error("mutation($id: ID!, $v: Int!) { updateOrderLine(id: $id, version: $v, input: { quantity: 5 }) { id } }", json!({ "id": id(&line), "v": line["version"] }))
        .await;
    assert_eq!(error["extensions"]["code"], "INVALID_STATE");
    let error = app
        .error("mutation($o: ID!, $p: ID!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: 1, unitPrice: \"1\", currency: \"EUR\" }) { id } }", json!({ "o": id(&order), "p": id(&product) }))
        .await;
    assert_eq!(error["extensions"]["code"], "INVALID_STATE");
    assert_eq!(
        app.count("order_lines").await,
        1,
        "nothing written by refused changes"
    );
}

#[tokio::test]
async fn every_allowed_line_transition_works_and_forbidden_ones_are_refused() {
    let app = spawn().await;
    let product = create_product(&app, "P-1", SUPPLIER, "10").await;
    let order = create_order(&app, "acc_1", json!({})).await;
    let paths: &[&[&str]] = &[
        &["OPEN", "CONFIRMED", "SHIPPED", "DELIVERED"],
        &["OPEN", "BACKORDERED", "CONFIRMED", "CANCELLED"],
        &["OPEN", "BACKORDERED", "CANCELLED"],
        &["OPEN", "CANCELLED"],
    ];
    for path in paths {
        let line = add_line(&app, &id(&order), &id(&product), 1, "10").await;
        assert_eq!(line["status"], "OPEN");
        let mut version = line["version"].as_i64().expect("version");
        for to in &path[1..] {
            // A backorder says when the line will ship.
            let moved = app
                .ok(
                    if *to == "BACKORDERED" {
                        "mutation($id: ID!, $v: Int!, $s: LineStatus!) { updateOrderLine(id: $id, version: $v, input: { status: $s, expectedDate: \"2099-01-01\" }) { status version } }"
                    } else {
                        "mutation($id: ID!, $v: Int!, $s: LineStatus!) { updateOrderLine(id: $id, version: $v, input: { status: $s }) { status version } }"
                    },
                    json!({ "id": id(&line), "v": version, "s": to }),
                )
                .await;
            version = moved["updateOrderLine"]["version"]
                .as_i64()
                .expect("version");
        }
    }
    for (to, allowed) in [
        ("DELIVERED", "CONFIRMED, BACKORDERED, CANCELLED"),
        ("SHIPPED", "CONFIRMED, BACKORDERED, CANCELLED"),
    ] {
        let line = add_line(&app, &id(&order), &id(&product), 1, "10").await;
        let error = app
            .error(
                "mutation($id: ID!, $s: LineStatus!) { updateOrderLine(id: $id, version: 1, input: { status: $s }) { status } }",
                json!({ "id": id(&line), "s": to }),
            )
            .await;
        assert_eq!(
            error["message"],
            format!("an order line cannot go from OPEN to {to} (allowed: {allowed})")
        );
    }
}

#[tokio::test]
async fn shipments_move_through_their_state_machine_and_keep_a_tracking_history() {
    let app = spawn().await;
    let order = create_order(&app, "acc_1", json!({})).await;
    let shipment = app
        .ok(
            "mutation($o: ID!) { createShipment(input: { orderId: $o, carrier: \"DHL\", trackingNumber: \"TRK1\" }) { id version status nextStatuses } }",
            json!({ "o": id(&order) }),
        )
        .await["createShipment"]
        .clone();
    assert_eq!(shipment["status"], "LABEL_CREATED");
    assert_eq!(shipment["nextStatuses"], json!(["IN_TRANSIT", "EXCEPTION"]));
    let record = "mutation($id: ID!, $v: Int!, $s: ShipmentStatus!, $at: DateTime) { recordShipmentStatus(id: $id, version: $v, status: $s, occurredAt: $at, location: \"Hamburg hub\") { status version shippedAt deliveredAt } }";
    let mut version = 1;
    for (status, at) in [
        ("IN_TRANSIT", "2030-03-01T10:00:00Z"),
        ("EXCEPTION", "2030-03-02T10:00:00Z"),
        ("IN_TRANSIT", "2030-03-03T10:00:00Z"),
        ("OUT_FOR_DELIVERY", "2030-03-04T08:00:00Z"),
        ("DELIVERED", "2030-03-04T15:30:00Z"),
    ] {
        let moved = app
            .ok(
                record,
                json!({ "id": id(&shipment), "v": version, "s": status, "at": at }),
            )
            .await;
        version = moved["recordShipmentStatus"]["version"]
            .as_i64()
            .expect("version");
    }
    let read = app
        .ok("query($id: ID!) { shipment(id: $id) { status shippedAt deliveredAt events { status occurredAt location } } }", json!({ "id": id(&shipment) }))
        .await;
    assert_eq!(read["shipment"]["status"], "DELIVERED");
    assert_eq!(read["shipment"]["shippedAt"], "2030-03-01T10:00:00+00:00");
    assert_eq!(read["shipment"]["deliveredAt"], "2030-03-04T15:30:00+00:00");
    let history: Vec<&str> = read["shipment"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["status"].as_str().expect("status"))
        .collect();
    assert_eq!(
        history,
        [
            "LABEL_CREATED",
            "IN_TRANSIT",
            "EXCEPTION",
            "IN_TRANSIT",
            "OUT_FOR_DELIVERY",
            "DELIVERED"
        ]
    );

    let refused = app
        .error(
            record,
            json!({ "id": id(&shipment), "v": version, "s": "IN_TRANSIT", "at": null }),
        )
        .await;
    assert_eq!(refused["extensions"]["code"], "INVALID_STATE");
    assert_eq!(
        refused["message"],
        "a shipment cannot go from DELIVERED to IN_TRANSIT (allowed: none: it is final)"
    );
    let stale = app
        .error(
            record,
            json!({ "id": id(&shipment), "v": 1, "s": "RETURNED", "at": null }),
        )
        .await;
    assert_eq!(stale["extensions"]["code"], "VERSION_CONFLICT");
    assert_eq!(stale["extensions"]["currentVersion"], version);
    assert_eq!(
        app.count("shipment_events").await,
        6,
        "refused moves add no history"
    );
}

#[tokio::test]
async fn lists_filter_by_account_distributor_supplier_and_product() {
    let app = spawn().await;
    let a = create_product(&app, "A-1", "ptn_sup_a", "1").await;
    let b = create_product(&app, "B-1", "ptn_sup_b", "1").await;
    let o1 = create_order(
        &app,
        "acc_1",
        json!({ "fulfillingDistributorId": "ptn_dist_1", "number": "SO-0001" }),
    )
    .await;
    let o2 = create_order(
        &app,
        "acc_2",
        json!({ "fulfillingDistributorId": "ptn_dist_2", "number": "SO-0002" }),
    )
    .await;
    let o3 = create_order(
        &app,
        "acc_1",
        json!({ "status": "DRAFT", "number": "SO-0003" }),
    )
    .await;
    add_line(&app, &id(&o1), &id(&a), 1, "1").await;
    add_line(&app, &id(&o2), &id(&b), 1, "1").await;
    add_line(&app, &id(&o3), &id(&a), 1, "1").await;
    add_line(&app, &id(&o3), &id(&b), 1, "1").await;
    let numbers = |v: &Value| -> Vec<String> {
        v["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["number"].as_str().expect("n").to_owned())
            .collect()
    };
    let data = app
        .ok(
            r#"{
              byAccount: orders(filter: { accountId: "acc_1" }, orderBy: { field: NUMBER }) { nodes { number } }
              byDistributor: orders(filter: { fulfillingDistributorId: "ptn_dist_2" }) { nodes { number } }
              bySupplier: orders(filter: { supplierPartnerId: "ptn_sup_b" }, orderBy: { field: NUMBER }) { nodes { number } }
              drafts: orders(filter: { status: DRAFT }) { nodes { number } }
              text: orders(filter: { text: "0002" }) { nodes { number } }
              newest: orders(first: 1) { nodes { number } }
              supplied: products(filter: { supplierPartnerId: "ptn_sup_a" }) { nodes { sku } }
            }"#,
            json!({}),
        )
        .await;
    assert_eq!(numbers(&data["byAccount"]), ["SO-0001", "SO-0003"]);
    assert_eq!(numbers(&data["byDistributor"]), ["SO-0002"]);
    assert_eq!(numbers(&data["bySupplier"]), ["SO-0002", "SO-0003"]);
    assert_eq!(numbers(&data["drafts"]), ["SO-0003"]);
    assert_eq!(numbers(&data["text"]), ["SO-0002"]);
    assert_eq!(
        numbers(&data["newest"]),
        ["SO-0003"],
        "orders list newest first"
    );
    assert_eq!(data["supplied"]["nodes"], json!([{ "sku": "A-1" }]));
}

/// The kept order suppliers (`crm_order_visibility::order_suppliers`): (supplier, order),
/// after checking that a refresh of every order makes the same rows.
async fn order_suppliers(app: &TestApp) -> Vec<(String, String)> {
    use sea_orm::ConnectionTrait;
    let read = || async {
        let backend = app.db.get_database_backend();
        app.db
            .query_all_raw(sea_orm::Statement::from_string(
                backend,
                "SELECT supplier_id, order_id, CAST(order_created_at AS TEXT) FROM order_suppliers ORDER BY supplier_id, order_id",
            ))
            .await
            .expect("order suppliers")
            .iter()
            .map(|row| {
                (
                    row.try_get_by_index::<String>(0).expect("supplier"),
                    row.try_get_by_index::<String>(1).expect("order"),
                    row.try_get_by_index::<String>(2).expect("time"),
                )
            })
            .collect::<Vec<_>>()
    };
    let kept = read().await;
    assert_eq!(
        crm_order_visibility::order_suppliers::drift(&app.db)
            .await
            .expect("drift"),
        (0, 0),
        "no drift: {kept:?}"
    );
    let txn = crm_service_common::db::begin_write(&app.db)
        .await
        .expect("txn");
    crm_order_visibility::order_suppliers::refresh(&txn, sea_orm::sea_query::Condition::all())
        .await
        .expect("refresh");
    crm_service_common::db::commit(txn).await.expect("commit");
    assert_eq!(
        read().await,
        kept,
        "the kept order suppliers equal a refresh from the lines"
    );
    kept.into_iter().map(|(s, o, _)| (s, o)).collect()
}

#[tokio::test]
async fn order_suppliers_follow_lines_and_products() {
    let app = spawn().await;
    let a = create_product(&app, "A-1", "ptn_sup_a", "1").await;
    let b = create_product(&app, "B-1", "ptn_sup_b", "1").await;
    let o1 = id(&create_order(&app, "acc_1", json!({})).await);
    let o2 = id(&create_order(&app, "acc_1", json!({})).await);
    let pairs = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = rows
            .iter()
            .map(|(s, o)| ((*s).to_owned(), (*o).to_owned()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(order_suppliers(&app).await, pairs(&[]));
    add_line(&app, &o1, &id(&a), 1, "1").await;
    add_line(&app, &o1, &id(&a), 2, "1").await;
    let line = add_line(&app, &o2, &id(&b), 1, "1").await;
    add_line(&app, &o2, &id(&a), 1, "1").await;
    assert_eq!(
        order_suppliers(&app).await,
        pairs(&[("ptn_sup_a", &o1), ("ptn_sup_a", &o2), ("ptn_sup_b", &o2)])
    );

    // An archived line no longer makes its supplier one of the order's.
    app.ok(
        "mutation($id: ID!, $v: Int!) { archiveOrderLine(id: $id, version: $v) { id } }",
        json!({ "id": id(&line), "v": line["version"] }),
    )
    .await;
    assert_eq!(
        order_suppliers(&app).await,
        pairs(&[("ptn_sup_a", &o1), ("ptn_sup_a", &o2)])
    );

    // A product moved to another supplier takes its orders with it.
    app.ok(
        "mutation($id: ID!, $v: Int!, $input: ProductInput!) { updateProduct(id: $id, version: $v, input: $input) { id } }",
        json!({ "id": id(&a), "v": a["version"], "input": { "supplierPartnerId": "ptn_sup_c" } }),
    )
    .await;
    assert_eq!(
        order_suppliers(&app).await,
        pairs(&[("ptn_sup_c", &o1), ("ptn_sup_c", &o2)])
    );
}

#[tokio::test]
async fn pages_of_orders_have_no_duplicates_or_gaps() {
    let app = spawn().await;
    let product = create_product(&app, "P-1", SUPPLIER, "3").await;
    for n in 0..17 {
        let order = create_order(&app, &format!("acc_{}", n % 3), json!({})).await;
        // Equal totals force the id tie-breaker.
        add_line(&app, &id(&order), &id(&product), 1 + n % 4, "3").await;
    }
    for order in [
        "{ field: TOTAL }",
        "{ field: TOTAL, direction: DESC }",
        "{ field: NUMBER }",
        "{ field: CREATED_AT, direction: DESC }",
    ] {
        for size in [1, 5, 17] {
            let mut seen = Vec::new();
            let mut after = Value::Null;
            loop {
                let page = app
                    .ok(
                        &format!("query($a: String, $f: Int) {{ orders(first: $f, after: $a, orderBy: {order}) {{ nodes {{ id }} pageInfo {{ hasNextPage endCursor }} }} }}"),
                        json!({ "a": after, "f": size }),
                    )
                    .await;
                seen.extend(
                    page["orders"]["nodes"]
                        .as_array()
                        .expect("nodes")
                        .iter()
                        .map(id),
                );
                if page["orders"]["pageInfo"]["hasNextPage"] != true {
                    break;
                }
                after = page["orders"]["pageInfo"]["endCursor"].clone();
            }
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!((seen.len(), unique.len()), (17, 17), "{order} / {size}");
        }
    }
}

#[tokio::test]
async fn upserts_are_idempotent_and_stale_versions_are_refused() {
    let app = spawn().await;
    let upsert = "mutation($input: ProductInput!) { upsertProduct(externalId: \"ERP-P-1\", input: $input) { id version name } }";
    let input = json!({ "sku": "ERP-1", "name": "Imported", "supplierPartnerId": SUPPLIER, "unitPrice": "5", "currency": "EUR" });
    let first = app.ok(upsert, json!({ "input": input })).await;
    let again = app.ok(upsert, json!({ "input": input })).await;
    assert_eq!(first, again, "same input, same record, same version");
    let order_upsert = "mutation($input: OrderInput!) { upsertOrder(externalId: \"ERP-SO-1\", input: $input) { id version status } }";
    let o1 = app
        .ok(
            order_upsert,
            json!({ "input": { "accountId": "acc_1", "currency": "EUR", "number": "ERP-1" } }),
        )
        .await;
    let o2 = app
        .ok(
            order_upsert,
            json!({ "input": { "accountId": "acc_1", "currency": "EUR", "number": "ERP-1" } }),
        )
        .await;
    assert_eq!(o1, o2);
    let moved = app
        .ok(order_upsert, json!({ "input": { "status": "CONFIRMED" } }))
        .await;
    assert_eq!(moved["upsertOrder"]["version"], 2);
    let refused = app
        .error(order_upsert, json!({ "input": { "status": "DRAFT" } }))
        .await;
    assert_eq!(
        refused["extensions"]["code"], "INVALID_STATE",
        "upserts go through the state machine too"
    );

    let product = id(&first["upsertProduct"]);
    app.ok("mutation($id: ID!) { updateProduct(id: $id, version: 1, input: { name: \"Renamed\" }) { version } }", json!({ "id": product })).await;
    let stale = app.error("mutation($id: ID!) { updateProduct(id: $id, version: 1, input: { name: \"Lost?\" }) { version } }", json!({ "id": product })).await;
    assert_eq!(stale["extensions"]["code"], "VERSION_CONFLICT");
    assert_eq!(stale["extensions"]["currentVersion"], 2);
    let read = app
        .ok(
            "query($id: ID!) { product(id: $id) { name } }",
            json!({ "id": product }),
        )
        .await;
    assert_eq!(read["product"]["name"], "Renamed");
}

#[tokio::test]
async fn invalid_values_and_unknown_ids_get_clear_errors_and_nothing_is_written() {
    let app = spawn().await;
    let product = create_product(&app, "P-1", SUPPLIER, "10").await;
    let order = create_order(&app, "acc_1", json!({})).await;
    let cases = [
        (
            "mutation { createProduct(input: { sku: \"has space\", name: \"x\", supplierPartnerId: \"ptn_1\", unitPrice: \"1\", currency: \"EUR\" }) { id } }",
            "input.sku",
        ),
        (
            "mutation { createProduct(input: { sku: \"OK-1\", name: \"x\", supplierPartnerId: \"ptn_1\", unitPrice: \"1.234\", currency: \"EUR\" }) { id } }",
            "input.unitPrice",
        ),
        (
            "mutation { createProduct(input: { sku: \"OK-1\", name: \"x\", supplierPartnerId: \"not an id!\", unitPrice: \"1\", currency: \"EUR\" }) { id } }",
            "input.supplierPartnerId",
        ),
        (
            "mutation { createProduct(input: { sku: \"OK-1\", name: \"x\", supplierPartnerId: \"ptn_1\", unitPrice: \"1\", currency: \"XXX\" }) { id } }",
            "input.currency",
        ),
        (
            "mutation { createOrder(input: { accountId: \"acc_1\" }) { id } }",
            "input.currency",
        ),
        (
            "mutation { createOrder(input: { accountId: \"acc_1\", currency: \"EUR\", status: SHIPPED }) { id } }",
            "input.status",
        ),
        (
            "mutation { createOrder(input: { accountId: \"acc_1\", currency: \"EUR\", status: DRAFT, placedAt: \"2026-01-01T00:00:00Z\" }) { id } }",
            "input.placedAt",
        ),
    ];
    for (mutation, field) in cases {
        let error = app.error(mutation, json!({})).await;
        assert_eq!(error["extensions"]["code"], "VALIDATION", "{mutation}");
        assert_eq!(error["extensions"]["field"], field, "{mutation}");
    }
    let line = |order: &str, product: &str, quantity: i32, currency: &str| json!({ "input": { "orderId": order, "productId": product, "quantity": quantity, "unitPrice": "1", "currency": currency } });
    let create_line = "mutation($input: OrderLineInput!) { createOrderLine(input: $input) { id } }";
    for (vars, field) in [
        (line(&id(&order), &id(&product), 0, "EUR"), "input.quantity"),
        (line(&id(&order), &id(&product), 1, "USD"), "input.currency"),
        (
            line(&id(&order), "prd_missing", 1, "EUR"),
            "input.productId",
        ),
        (
            line("ord_missing", &id(&product), 1, "EUR"),
            "input.orderId",
        ),
    ] {
        let error = app.error(create_line, vars).await;
        assert_eq!(error["extensions"]["code"], "VALIDATION");
        assert_eq!(error["extensions"]["field"], field);
    }
    let duplicate = app.error("mutation { createProduct(input: { sku: \"p-1\", name: \"x\", supplierPartnerId: \"ptn_1\", unitPrice: \"1\", currency: \"EUR\" }) { id } }", json!({})).await;
    assert_eq!(duplicate["extensions"]["code"], "DUPLICATE");
    let changed_currency = app.error("mutation($id: ID!) { updateOrder(id: $id, version: 1, input: { currency: \"USD\" }) { id } }", json!({ "id": id(&order) })).await;
    assert_eq!(changed_currency["extensions"]["field"], "input.currency");

    let missing = app
        .ok(
            "{ order(id: \"ord_nope\") { id } product(id: \"prd_nope\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(missing, json!({ "order": null, "product": null }));
    let not_found = app.error("mutation { updateOrder(id: \"ord_nope\", version: 1, input: { internalNote: \"x\" }) { id } }", json!({})).await;
    assert_eq!(not_found["extensions"]["code"], "NOT_FOUND");
    assert_eq!(
        (
            app.count("products").await,
            app.count("orders").await,
            app.count("order_lines").await
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn entity_batches_load_with_one_query_and_references_resolve_by_key() {
    let app = spawn().await;
    let mut representations = Vec::new();
    for n in 0..50 {
        let product = create_product(&app, &format!("B-{n}"), SUPPLIER, "1").await;
        representations.push(json!({ "__typename": "Product", "id": id(&product) }));
    }
    representations.push(json!({ "__typename": "Product", "id": "prd_missing" }));
    let before = app.statements.get();
    let data = app
        .ok(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { sku } } }",
            json!({ "r": representations }),
        )
        .await;
    assert_eq!(
        app.statements.get() - before,
        1,
        "one statement for 51 keys"
    );
    let found = data["_entities"].as_array().expect("entities");
    assert_eq!(found.len(), 51);
    assert_eq!(found[7]["sku"], "B-7");
    assert_eq!(found[50], Value::Null, "an unknown key resolves to null");

    // Account and Partner are the account service's: resolved by key, extended here.
    let order = create_order(
        &app,
        "acc_9",
        json!({ "fulfillingDistributorId": DISTRIBUTOR }),
    )
    .await;
    let data = app
        .ok(
            r#"query($r: [_Any!]!) { _entities(representations: $r) {
                ... on Account { id orders { nodes { id } } }
                ... on Partner { id suppliedProducts(first: 2) { totalCount } fulfilledOrders { nodes { id } } }
            } }"#,
            json!({ "r": [
                { "__typename": "Account", "id": "acc_9" },
                { "__typename": "Partner", "id": SUPPLIER },
                { "__typename": "Partner", "id": DISTRIBUTOR },
            ] }),
        )
        .await;
    assert_eq!(
        data["_entities"][0]["orders"]["nodes"][0]["id"],
        order["id"]
    );
    assert_eq!(data["_entities"][1]["suppliedProducts"]["totalCount"], 50);
    assert_eq!(
        data["_entities"][2]["fulfilledOrders"]["nodes"][0]["id"],
        order["id"]
    );
}

#[tokio::test]
async fn malformed_requests_and_database_failures_get_clear_or_opaque_errors() {
    let app = spawn().await;
    let syntax = app.gql("{ orders { totalCount ", json!({})).await;
    assert!(syntax["errors"].is_array());
    let status = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("content-type", "text/plain")
        .body("{ orders { totalCount } }")
        .send()
        .await
        .expect("send")
        .status();
    assert_eq!(status, 415);
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared("DROP TABLE shipments")
        .await
        .expect("drop");
    let body = app.gql("{ shipments { totalCount } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
    let text = body.to_string().to_lowercase();
    for leak in [
        "no such table",
        "does not exist",
        "relation",
        "select",
        "sqlx",
    ] {
        assert!(!text.contains(leak), "{leak} leaked: {body}");
    }
    for path in ["/health", "/ready", "/events?after=0"] {
        let status = app
            .client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .expect("send")
            .status();
        assert_eq!(status, 200, "{path}");
    }
}

#[test]
fn the_committed_sdl_matches_what_the_code_exports() {
    let committed = include_str!("../../../../schema/order_visibility.graphql");
    assert!(
        committed == crm_order_visibility::sdl(),
        "schema/order_visibility.graphql is stale: run `cargo run --bin crm -- schema --write`"
    );
}
