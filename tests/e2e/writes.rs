//! Writes, field by field, through the gateway of the seeded demo system: each role may
//! create, update and archive exactly what `policies/policy.csv` (and ACCESS-MATRIX.md)
//! grants, may set only the fields its field rules name (a mutation touching another
//! field is refused whole, and nothing of it is kept), and authorship comes from the
//! caller, never from input.

use crm_e2e::demo::Demo;
use serde_json::{Value, json};

fn code(body: &Value) -> (&str, Option<&str>) {
    (
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default(),
        body["errors"][0]["extensions"]["field"].as_str(),
    )
}

const LINE: &str =
    "query($id: ID!) { orderLine(id: $id) { id version status quantity unitPrice { amount } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_changes_a_lines_status_and_nothing_else() {
    let demo = Demo::start().await;
    let supplier = demo.first("supplier", "partner_user");
    let admin = demo.first("internal", "admin");
    // A fresh order with an open line of the supplier's product (the seeded lines'
    // statuses vary with the world).
    let partner = supplier.partner_id.clone().expect("a supplier");
    let setup = demo
        .ok(
            &admin,
            "query($p: ID) { products(first: 1, filter: { supplierPartnerId: $p }) { nodes { id } } accounts(first: 1) { nodes { id } } }",
            json!({ "p": partner }),
        )
        .await;
    let order = demo
        .ok(
            &admin,
            "mutation($a: ID!) { createOrder(input: { accountId: $a, currency: \"EUR\" }) { id } }",
            json!({ "a": setup["accounts"]["nodes"][0]["id"] }),
        )
        .await;
    let created = demo
        .ok(
            &admin,
            "mutation($o: ID!, $p: ID!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: 3, unitPrice: \"10.00\", currency: \"EUR\" }) { id } }",
            json!({ "o": order["createOrder"]["id"], "p": setup["products"]["nodes"][0]["id"] }),
        )
        .await;
    let line = demo
        .ok(
            &supplier,
            "query($id: ID!) { orderLine(id: $id) { id version status orderId productId } }",
            json!({ "id": created["createOrderLine"]["id"] }),
        )
        .await["orderLine"]
        .clone();
    assert_eq!(
        line["status"], "OPEN",
        "an open line of the supplier's products"
    );
    let before = demo.ok(&admin, LINE, json!({ "id": line["id"] })).await;

    // Status with another field: refused whole, naming the field; nothing changed.
    let refused = demo
        .send(
            &supplier,
            "mutation($id: ID!, $v: Int!) { updateOrderLine(id: $id, version: $v, input: { status: CONFIRMED, quantity: 1000 }) { id } }",
            json!({ "id": line["id"], "v": line["version"] }),
        )
        .await;
    assert_eq!(
        code(&refused),
        ("FORBIDDEN", Some("input.quantity")),
        "{refused}"
    );
    for (field, input) in [
        ("input.unitPrice", json!({ "unitPrice": "0.01" })),
        ("input.productId", json!({ "productId": line["productId"] })),
    ] {
        let refused = demo
            .send(
                &supplier,
                "mutation($id: ID!, $v: Int!, $input: OrderLineInput!) { updateOrderLine(id: $id, version: $v, input: $input) { id } }",
                json!({ "id": line["id"], "v": line["version"], "input": input }),
            )
            .await;
        assert_eq!(code(&refused), ("FORBIDDEN", Some(field)), "{refused}");
    }
    assert_eq!(
        demo.ok(&admin, LINE, json!({ "id": line["id"] })).await,
        before,
        "a refused write keeps nothing"
    );

    // Status alone: done.
    let changed = demo
        .ok(
            &supplier,
            "mutation($id: ID!, $v: Int!) { updateOrderLine(id: $id, version: $v, input: { status: CONFIRMED }) { status } }",
            json!({ "id": line["id"], "v": line["version"] }),
        )
        .await;
    assert_eq!(changed["updateOrderLine"]["status"], "CONFIRMED");

    // No creating or archiving lines.
    let created = demo
        .send(
            &supplier,
            "mutation($o: ID!, $p: ID!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: 1, unitPrice: \"1.00\", currency: \"EUR\" }) { id } }",
            json!({ "o": line["orderId"], "p": line["productId"] }),
        )
        .await;
    assert_eq!(code(&created).0, "FORBIDDEN", "{created}");
    let current = demo.ok(&admin, LINE, json!({ "id": line["id"] })).await;
    let archived = demo
        .send(
            &supplier,
            "mutation($id: ID!, $v: Int!) { archiveOrderLine(id: $id, version: $v) { id } }",
            json!({ "id": line["id"], "v": current["orderLine"]["version"] }),
        )
        .await;
    assert_eq!(code(&archived).0, "FORBIDDEN", "{archived}");
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributor_changes_a_shipments_status_and_tracking_and_nothing_else() {
    let demo = Demo::start().await;
    let distributor = demo.first("distributor", "partner_user");
    let shipments = demo
        .ok(
            &distributor,
            "{ shipments(first: 50) { nodes { id version status orderId carrier } } }",
            json!({}),
        )
        .await;
    let shipment = shipments["shipments"]["nodes"]
        .as_array()
        .expect("shipments")
        .first()
        .cloned()
        .expect("a shipment of the distributor's orders");
    let update = "mutation($id: ID!, $v: Int!, $input: ShipmentInput!) { updateShipment(id: $id, version: $v, input: $input) { version carrier trackingNumber } }";
    let refused = demo
        .send(
            &distributor,
            update,
            json!({ "id": shipment["id"], "v": shipment["version"], "input": { "carrier": "Elsewhere", "trackingNumber": "T-1" } }),
        )
        .await;
    assert_eq!(
        code(&refused),
        ("FORBIDDEN", Some("input.carrier")),
        "{refused}"
    );
    let changed = demo
        .ok(
            &distributor,
            update,
            json!({ "id": shipment["id"], "v": shipment["version"], "input": { "trackingNumber": "T-1" } }),
        )
        .await;
    assert_eq!(changed["updateShipment"]["trackingNumber"], "T-1");
    assert_eq!(
        changed["updateShipment"]["carrier"], shipment["carrier"],
        "the refused carrier was not kept"
    );
    let created = demo
        .send(
            &distributor,
            "mutation($o: ID!) { createShipment(input: { orderId: $o, carrier: \"Mine\" }) { id } }",
            json!({ "o": shipment["orderId"] }),
        )
        .await;
    assert_eq!(code(&created).0, "FORBIDDEN", "{created}");
    let archived = demo
        .send(
            &distributor,
            "mutation($id: ID!, $v: Int!) { archiveShipment(id: $id, version: $v) { id } }",
            json!({ "id": shipment["id"], "v": changed["updateShipment"]["version"] }),
        )
        .await;
    assert_eq!(code(&archived).0, "FORBIDDEN", "{archived}");
    demo.finish().await;
}

const CREATE_INTERACTION: &str = "mutation($input: InteractionInput!) { createInteraction(input: $input) { id version authorUserId partnerVisible } }";

fn interaction_on(account: &Value) -> Value {
    json!({
        "accountId": account,
        "channel": "PHONE",
        "direction": "OUTBOUND",
        "subject": "Called about the renewal",
        "occurredAt": "2026-12-01T10:00:00Z",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributor_logs_interactions_as_itself_and_changes_only_its_organisations() {
    let demo = Demo::start().await;
    let distributor = demo.first("distributor", "partner_user");
    let admin = demo.first("internal", "admin");
    let accounts = demo
        .ok(
            &distributor,
            "{ accounts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let account = accounts["accounts"]["nodes"][0]["id"].clone();
    assert!(account.is_string(), "the distributor sees an account");

    // Authorship and visibility are not the partner's to set.
    let mut forged = interaction_on(&account);
    forged["partnerVisible"] = json!(false);
    let refused = demo
        .send(&distributor, CREATE_INTERACTION, json!({ "input": forged }))
        .await;
    assert_eq!(
        code(&refused),
        ("FORBIDDEN", Some("input.partnerVisible")),
        "{refused}"
    );
    let mut forged = interaction_on(&account);
    forged["authorUserId"] = json!("usr_admin");
    let refused = demo
        .send(&distributor, CREATE_INTERACTION, json!({ "input": forged }))
        .await;
    assert!(
        refused["data"].is_null()
            && refused["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("unknown field \"authorUserId\"")),
        "the author is in no input: {refused}"
    );

    let own = demo
        .ok(
            &distributor,
            CREATE_INTERACTION,
            json!({ "input": interaction_on(&account) }),
        )
        .await["createInteraction"]
        .clone();
    assert_eq!(own["authorUserId"], distributor.id.as_str(), "{own}");
    assert_eq!(own["partnerVisible"], true, "{own}");
    let edited = demo
        .ok(
            &distributor,
            "mutation($id: ID!, $v: Int!) { updateInteraction(id: $id, version: $v, input: { subject: \"Called twice\" }) { subject } }",
            json!({ "id": own["id"], "v": own["version"] }),
        )
        .await;
    assert_eq!(edited["updateInteraction"]["subject"], "Called twice");

    // The staff's interactions on the same account: readable when shared, never changed,
    // and their authors' ids are not the partner's to know.
    let mut staff_note = interaction_on(&account);
    staff_note["partnerVisible"] = json!(true);
    let staff = demo
        .ok(&admin, CREATE_INTERACTION, json!({ "input": staff_note }))
        .await["createInteraction"]
        .clone();
    let seen = demo
        .ok(
            &distributor,
            "query($id: ID!) { interaction(id: $id) { subject authorUserId may { update archive } } }",
            json!({ "id": staff["id"] }),
        )
        .await;
    assert_eq!(
        seen["interaction"],
        json!({ "subject": "Called about the renewal", "authorUserId": null, "may": { "update": false, "archive": false } })
    );
    for mutation in [
        "mutation($id: ID!, $v: Int!) { updateInteraction(id: $id, version: $v, input: { subject: \"Hidden\" }) { id } }",
        "mutation($id: ID!, $v: Int!) { archiveInteraction(id: $id, version: $v) { id } }",
    ] {
        let refused = demo
            .send(
                &distributor,
                mutation,
                json!({ "id": staff["id"], "v": staff["version"] }),
            )
            .await;
        assert_eq!(code(&refused).0, "FORBIDDEN", "{mutation}: {refused}");
    }
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_logs_an_interaction_on_an_account_it_owns_as_its_author() {
    let demo = Demo::start().await;
    let sales = demo.first("internal", "sales");
    let owned = demo
        .ok(
            &sales,
            "query($o: ID!) { accounts(first: 1, filter: { ownerUserId: $o }) { nodes { id } } }",
            json!({ "o": sales.id }),
        )
        .await;
    let account = owned["accounts"]["nodes"][0]["id"].clone();
    assert!(account.is_string(), "the sales user owns an account");
    let logged = demo
        .ok(
            &sales,
            CREATE_INTERACTION,
            json!({ "input": interaction_on(&account) }),
        )
        .await;
    assert_eq!(
        logged["createInteraction"]["authorUserId"],
        sales.id.as_str()
    );
    assert_eq!(logged["createInteraction"]["partnerVisible"], false);
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_revokes_a_share_it_granted_and_no_one_elses() {
    let demo = Demo::start().await;
    let sales = demo.first("internal", "sales");
    let management = demo.first("internal", "management");
    let distributor = demo.first("distributor", "partner_user");
    let partner = distributor.partner_id.clone().expect("partner");
    let owned = demo
        .ok(
            &sales,
            "query($o: ID!) { accounts(first: 2, filter: { ownerUserId: $o }) { nodes { id } } }",
            json!({ "o": sales.id }),
        )
        .await;
    let grant = "mutation($a: ID!, $p: ID!) { grantAccountShare(input: { accountId: $a, partnerId: $p, reason: \"joint bid\" }) { id version } }";
    let revoke =
        "mutation($id: ID!, $v: Int!) { revokeAccountShare(id: $id, version: $v) { archivedAt } }";
    let account = owned["accounts"]["nodes"][0]["id"].clone();
    let mine = demo
        .ok(&sales, grant, json!({ "a": account, "p": partner }))
        .await["grantAccountShare"]
        .clone();
    let revoked = demo
        .ok(
            &sales,
            revoke,
            json!({ "id": mine["id"], "v": mine["version"] }),
        )
        .await;
    assert!(
        revoked["revokeAccountShare"]["archivedAt"].is_string(),
        "{revoked}"
    );
    // A share management granted on an account sales does not own: not sales' to revoke.
    let not_owned = demo
        .ok(
            &management,
            "{ accounts(first: 100) { nodes { id ownerUserId } } }",
            json!({}),
        )
        .await["accounts"]["nodes"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["ownerUserId"] != sales.id.as_str())
        .map(|a| a["id"].clone())
        .expect("an account sales does not own");
    let theirs = demo
        .ok(&management, grant, json!({ "a": not_owned, "p": partner }))
        .await["grantAccountShare"]
        .clone();
    let refused = demo
        .send(
            &sales,
            revoke,
            json!({ "id": theirs["id"], "v": theirs["version"] }),
        )
        .await;
    assert_eq!(code(&refused).0, "NOT_FOUND", "{refused}");
    demo.finish().await;
}
