//! Integrators' webhooks through the whole system: real HTTP receivers started by the test
//! that fail, time out and recover; every payload read as the webhook's principal (a
//! supplier's order never carries the total, the internal note or another supplier's
//! line); a change its principal can't see sends nothing; retries back off on the job
//! runner's clock until the endpoint recovers, then the dead-letter list and its replay; a
//! record that leaves a principal's view is reported once, with no data; a webhook stops
//! when its owner is disabled and resumes when an admin takes it over.
//!
//! A binary of its own: it moves the process's clock (retries wait for it), which every
//! test in its binary would see.

use std::sync::Arc;
use std::time::Duration;

use crm_e2e::demo::{Demo, partner_of};
use crm_e2e::receiver::{Answer, Receiver, deliveries, loopback_webhooks};
use crm_identity::user;
use crm_identity::webhooks::outbound;
use crm_service_common::clock::{self, ManualClock};
use serde_json::{Value, json};

const CREATE: &str = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { id status organization { id } events } } }";

const HISTORY: &str = "query($id: ID!) { webhook(id: $id) { status suspendedReason deadDeliveries deliveries(first: 50) { id event recordId sequence changes state attempts lastStatus lastError nextAttemptAt attemptHistory { attempt status error } } } }";

/// A webhook made by `user` posting to `receiver`: its id and signing secret.
async fn webhook(
    demo: &Demo,
    user: &user::Model,
    receiver: &Receiver,
    input: Value,
) -> (String, String) {
    let mut input = input;
    input["url"] = json!(receiver.url);
    let made = demo.ok(user, CREATE, json!({ "input": input })).await;
    (
        made["createWebhook"]["webhook"]["id"]
            .as_str()
            .expect("an id")
            .to_owned(),
        made["createWebhook"]["secret"]
            .as_str()
            .expect("a secret")
            .to_owned(),
    )
}

/// A webhook's status and delivery history, as `user` reads it.
async fn history(demo: &Demo, user: &user::Model, id: &str) -> Value {
    demo.ok(user, HISTORY, json!({ "id": id })).await["webhook"].clone()
}

async fn settle(demo: &Demo) {
    demo.system
        .settle_webhooks(Duration::from_secs(30))
        .await
        .expect("webhooks settle");
}

fn line_products(order: &Value) -> Vec<String> {
    let mut products: Vec<String> = order["lines"]["nodes"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["productId"].as_str().expect("product").to_owned())
        .collect();
    products.sort();
    products
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_carry_what_their_principal_sees_retry_until_the_receiver_recovers_and_stop_with_it()
 {
    let start = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let manual = Arc::new(ManualClock::at(start));
    clock::set(Some(manual.clone()));
    let demo = Demo::start_with(loopback_webhooks(Duration::from_secs(1))).await;
    let admin = demo.first("internal", "admin");
    let supplier_a = demo.first("supplier", "partner_admin");
    let supplier_b = demo.another("supplier", "partner_admin", &[&partner_of(&supplier_a)]);
    let supplier_c = demo.another(
        "supplier",
        "partner_admin",
        &[&partner_of(&supplier_a), &partner_of(&supplier_b)],
    );
    let distributor_1 = demo.first("distributor", "partner_admin");
    let distributor_2 = demo.another(
        "distributor",
        "partner_admin",
        &[&partner_of(&distributor_1)],
    );

    let order_events = json!(["order.added", "order.updated", "order.removed"]);
    let receivers = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    let [for_a, for_b, for_c, for_d1, for_d2] = &receivers;
    let mut hooks = Vec::new();
    for (user, receiver) in [
        (&supplier_a, for_a),
        (&supplier_b, for_b),
        (&supplier_c, for_c),
        (&distributor_1, for_d1),
        (&distributor_2, for_d2),
    ] {
        hooks.push(
            webhook(
                &demo,
                user,
                receiver,
                json!({ "name": "ERP", "events": order_events, "role": "partner_user" }),
            )
            .await,
        );
    }
    let [
        (hook_a, secret_a),
        (_, secret_b),
        (_, secret_c),
        (hook_d1, secret_d1),
        (_, secret_d2),
    ] = &hooks[..]
    else {
        panic!("five webhooks")
    };
    // A staff webhook for shipment changes only, which gives up after two attempts.
    let dead_end = Receiver::start().await;
    dead_end.then(&[Answer::Fail(503), Answer::Fail(503)]);
    let (staff_hook, staff_secret) = webhook(
        &demo,
        &admin,
        &dead_end,
        json!({ "name": "BI", "events": ["order.updated"], "role": "support", "maxAttempts": 2,
                "filter": [{ "field": "changed", "values": ["shipments"] }] }),
    )
    .await;

    // An order fulfilled by distributor 1, with a line of supplier A's product and one of
    // supplier B's, and an internal note.
    let product_a = demo.product_of(&admin, &partner_of(&supplier_a)).await;
    let product_b = demo.product_of(&admin, &partner_of(&supplier_b)).await;
    let order_id = demo
        .order_with_lines(
            &admin,
            &partner_of(&distributor_1),
            &[(&product_a, 3), (&product_b, 5)],
        )
        .await;
    settle(&demo).await;

    // Each supplier: the order once, with its own line only, and no total or note.
    for (receiver, secret, product) in
        [(for_a, secret_a, &product_a), (for_b, secret_b, &product_b)]
    {
        let got = deliveries(receiver, secret);
        assert_eq!(
            got.len(),
            1,
            "one delivery: a change it can't see sends nothing: {got:?}"
        );
        let delivery = &got[0];
        assert_eq!(delivery["event"], "order.added");
        assert_eq!(
            delivery["record"],
            json!({ "type": "Order", "id": order_id })
        );
        assert_eq!(delivery["sequence"], 1);
        let data = &delivery["data"];
        assert_eq!(
            line_products(data),
            std::slice::from_ref(product),
            "its own line only: {data}"
        );
        for hidden in ["total", "internalNote", "version", "updatedAt"] {
            assert!(
                data[hidden].is_null(),
                "{hidden} is masked for suppliers: {data}"
            );
        }
        assert!(
            data["lines"]["nodes"][0]["unitPrice"].is_null(),
            "line prices are masked for suppliers: {data}"
        );
    }
    assert!(
        for_c.received().is_empty(),
        "a supplier with no line on the order hears nothing of it"
    );
    assert!(for_d2.received().is_empty(), "nor does another distributor");
    // The distributor: both lines and the total, never the internal note.
    let got = deliveries(for_d1, secret_d1);
    let last = &got.last().expect("the distributor heard of the order")["data"];
    assert_eq!(got[0]["event"], "order.added");
    assert_eq!(line_products(last), {
        let mut both = vec![product_a.clone(), product_b.clone()];
        both.sort();
        both
    });
    assert_eq!(
        last["total"],
        json!({ "amount": "80.00", "currency": "EUR" })
    );
    assert!(last["internalNote"].is_null(), "{last}");
    // The payload is what a query of the same principal answers (a key of distributor 1
    // with the webhook's role reads the same order).
    let key = demo
        .ok(
            &distributor_1,
            "mutation { createApiKey(input: { name: \"compare\", role: \"partner_user\" }) { secret } }",
            json!({}),
        )
        .await["createApiKey"]["secret"]
        .as_str()
        .expect("a key")
        .to_owned();
    let read = demo
        .send_with(
            &key,
            crm_identity::webhooks::catalog::ORDER.document,
            json!({ "id": order_id }),
        )
        .await;
    assert_eq!(&read["data"]["order"], last);

    // A hidden change (the internal note, seen by staff only): suppliers hear nothing.
    manual.advance(1);
    let before_a = for_a.received().len();
    let current = demo
        .ok(
            &admin,
            "query($id: ID!) { order(id: $id) { version } }",
            json!({ "id": order_id }),
        )
        .await;
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { updateOrder(id: $id, version: $v, input: { internalNote: \"margin is fine\" }) { id } }",
        json!({ "id": order_id, "v": current["order"]["version"] }),
    )
    .await;
    settle(&demo).await;
    assert_eq!(
        for_a.received().len(),
        before_a,
        "a hidden change sends nothing"
    );

    // A shipment supplier A sees: the endpoint fails, then times out, then recovers; the
    // runner retries on its clock with growing waits.
    for_a.then(&[Answer::Fail(500), Answer::Hang, Answer::Ok]);
    manual.advance(1);
    let shipment = demo
        .ok(
            &admin,
            "mutation($o: ID!) { createShipment(input: { orderId: $o, carrier: \"DHL\", trackingNumber: \"JD0142\" }) { id version } }",
            json!({ "o": order_id }),
        )
        .await["createShipment"]
        .clone();
    settle(&demo).await;
    let seen = history(&demo, &supplier_a, hook_a).await;
    let update = &seen["deliveries"][0];
    assert_eq!(update["event"], "order.updated", "{seen}");
    assert_eq!(update["state"], "PENDING");
    assert_eq!(update["attempts"], 1);
    assert_eq!(update["lastStatus"], 500);
    assert!(
        update["changes"]
            .as_array()
            .expect("changes")
            .contains(&json!("shipments")),
        "{update}"
    );
    assert!(update["nextAttemptAt"].is_string(), "{update}");
    manual.advance(15);
    settle(&demo).await;
    let seen = history(&demo, &supplier_a, hook_a).await;
    assert_eq!(seen["deliveries"][0]["attempts"], 2, "{seen}");
    assert!(
        seen["deliveries"][0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within 1 s")),
        "{seen}"
    );
    manual.advance(30);
    settle(&demo).await;
    let seen = history(&demo, &supplier_a, hook_a).await;
    let update = &seen["deliveries"][0];
    assert_eq!(update["state"], "DELIVERED", "{seen}");
    assert_eq!(
        update["attemptHistory"],
        json!([
            { "attempt": 1, "status": 500, "error": "HTTP 500" },
            { "attempt": 2, "status": null, "error": "no answer within 1 s" },
            { "attempt": 3, "status": 200, "error": null },
        ])
    );
    let got = deliveries(for_a, secret_a);
    assert_eq!(got.len(), 2, "three attempts of one delivery: {got:?}");
    assert_eq!(got[1]["sequence"], 2);
    assert_eq!(
        got[1]["data"]["shipments"]["nodes"][0]["trackingNumber"],
        "JD0142"
    );

    // The staff webhook gave up after its two attempts: dead, then replayed.
    assert!(
        dead_end.received().len() == 2,
        "changes other than shipments were filtered out"
    );
    let seen = history(&demo, &admin, &staff_hook).await;
    assert_eq!(seen["deadDeliveries"], 1, "{seen}");
    assert_eq!(seen["deliveries"][0]["state"], "DEAD");
    let replayed = demo
        .ok(
            &admin,
            "mutation($id: ID!) { replayDeadWebhookDeliveries(webhookId: $id) }",
            json!({ "id": staff_hook }),
        )
        .await;
    assert_eq!(replayed["replayDeadWebhookDeliveries"], 1);
    settle(&demo).await;
    let seen = history(&demo, &admin, &staff_hook).await;
    assert_eq!(seen["deadDeliveries"], 0, "{seen}");
    assert_eq!(seen["deliveries"][0]["state"], "DELIVERED");
    let got = deliveries(&dead_end, &staff_secret);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["data"]["internalNote"], "margin is fine",
        "staff see the note"
    );
    // The shipment's next status reaches everyone who sees it.
    manual.advance(1);
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { recordShipmentStatus(id: $id, version: $v, status: IN_TRANSIT) { id } }",
        json!({ "id": shipment["id"], "v": shipment["version"] }),
    )
    .await;
    settle(&demo).await;
    assert_eq!(deliveries(&dead_end, &staff_secret).len(), 2);
    assert_eq!(
        deliveries(for_a, secret_a).last().expect("a delivery")["data"]["shipments"]["nodes"][0]["status"],
        "IN_TRANSIT"
    );

    // The order moves to distributor 2: it leaves distributor 1's view (reported once,
    // with no data) and enters distributor 2's.
    manual.advance(1);
    let current = demo
        .ok(
            &admin,
            "query($id: ID!) { order(id: $id) { version } }",
            json!({ "id": order_id }),
        )
        .await;
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!, $d: ID!) { updateOrder(id: $id, version: $v, input: { fulfillingDistributorId: $d }) { id } }",
        json!({ "id": order_id, "v": current["order"]["version"], "d": partner_of(&distributor_2) }),
    )
    .await;
    settle(&demo).await;
    let got = deliveries(for_d1, secret_d1);
    let removed = got.last().expect("a removal");
    assert_eq!(removed["event"], "order.removed", "{got:?}");
    assert!(removed["data"].is_null());
    let got = deliveries(for_d2, secret_d2);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "order.added");
    assert!(deliveries(for_c, secret_c).is_empty());

    // Supplier A's owner is disabled: the webhook stops at its next delivery, until an
    // admin takes it over.
    demo.ok(
        &admin,
        "mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }",
        json!({ "id": supplier_a.id }),
    )
    .await;
    manual.advance(1);
    let before_a = for_a.received().len();
    let shipment = demo
        .ok(
            &admin,
            "query($id: ID!) { shipment(id: $id) { id version } }",
            json!({ "id": shipment["id"] }),
        )
        .await["shipment"]
        .clone();
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { recordShipmentStatus(id: $id, version: $v, status: DELIVERED) { id } }",
        json!({ "id": shipment["id"], "v": shipment["version"] }),
    )
    .await;
    settle(&demo).await;
    assert_eq!(
        for_a.received().len(),
        before_a,
        "a stopped webhook sends nothing"
    );
    let seen = history(&demo, &admin, hook_a).await;
    assert_eq!(seen["status"], "SUSPENDED", "{seen}");
    assert!(
        seen["suspendedReason"]
            .as_str()
            .is_some_and(|r| r.contains("owner"))
    );
    let resumed = demo
        .ok(
            &admin,
            "mutation($id: ID!) { takeOverWebhook(id: $id) { status } }",
            json!({ "id": hook_a }),
        )
        .await;
    assert_eq!(resumed["takeOverWebhook"]["status"], "ACTIVE");

    // A ping reaches the endpoint, signed.
    let ping = demo
        .ok(
            &admin,
            "mutation($id: ID!) { pingWebhook(id: $id) { id event } }",
            json!({ "id": hook_d1 }),
        )
        .await;
    settle(&demo).await;
    let got = deliveries(for_d1, secret_d1);
    let last = got.last().expect("the ping");
    assert_eq!(last["id"], ping["pingWebhook"]["id"]);
    assert_eq!(last["event"], "webhook.ping");

    let mut lines = Vec::new();
    for (who, receiver, secret) in [
        ("supplier A", for_a, secret_a),
        ("supplier B", for_b, secret_b),
        ("supplier C", for_c, secret_c),
        ("distributor 1", for_d1, secret_d1),
        ("distributor 2", for_d2, secret_d2),
        ("staff (shipments only)", &dead_end, &staff_secret),
    ] {
        let got = deliveries(receiver, secret);
        lines.push(format!(
            "{who}: {} requests, {} deliveries: {}",
            receiver.received().len(),
            got.len(),
            got.iter()
                .map(|d| format!("{}#{}", d["event"].as_str().unwrap_or("?"), d["sequence"]))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.push(format!(
        "supplier A's first payload: {}",
        deliveries(for_a, secret_a)[0]["data"]
    ));
    crm_e2e::report("webhooks", &lines.join("\n"));
    clock::set(None);
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_managed_within_their_organisation_and_never_reach_private_addresses_unless_allowed()
 {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let supplier_admin = demo.first("supplier", "partner_admin");
    let supplier_user = demo.first("supplier", "partner_user");
    let distributor_admin = demo.first("distributor", "partner_admin");
    let code = |body: &Value| {
        (
            body["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body["errors"][0]["extensions"]["field"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let input = |url: &str| json!({ "input": { "name": "shop", "url": url, "events": ["order.added"], "role": "partner_user" } });
    // Loopback and private addresses are refused by default, by address and by name.
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/",
        "http://10.0.0.7/",
        "http://[::1]/",
        "http://169.254.169.254/latest",
    ] {
        let refused = demo.send(&supplier_admin, CREATE, input(url)).await;
        assert_eq!(
            code(&refused),
            ("VALIDATION".to_owned(), "input.url".to_owned()),
            "{url}: {refused}"
        );
    }
    for (bad, field) in [
        (
            json!({ "name": "x", "url": "https://hooks.example.com/", "events": ["order.placed"], "role": "partner_user" }),
            "input.events",
        ),
        (
            json!({ "name": "x", "url": "https://hooks.example.com/", "events": ["order.added"], "role": "admin" }),
            "input.role",
        ),
        (
            json!({ "name": "x", "url": "https://hooks.example.com/", "events": ["order.added"], "role": "partner_user", "filter": [{ "field": "secret", "values": ["1"] }] }),
            "input.filter[0].field",
        ),
        (
            json!({ "name": "", "url": "https://hooks.example.com/", "events": ["order.added"], "role": "partner_user" }),
            "input.name",
        ),
        (
            json!({ "name": "x", "url": "https://hooks.example.com/", "events": ["order.added"], "role": "partner_user", "maxAttempts": 99 }),
            "input.maxAttempts",
        ),
    ] {
        let refused = demo
            .send(&supplier_admin, CREATE, json!({ "input": bad }))
            .await;
        assert_eq!(
            code(&refused),
            ("VALIDATION".to_owned(), field.to_owned()),
            "{refused}"
        );
    }
    // Another organisation's webhooks answer as missing ones.
    let made = demo
        .ok(
            &supplier_admin,
            CREATE,
            input("https://hooks.example.com/crm"),
        )
        .await;
    let id = made["createWebhook"]["webhook"]["id"].clone();
    assert_eq!(
        made["createWebhook"]["webhook"]["organization"]["id"],
        partner_of(&supplier_admin)
    );
    let theirs = demo
        .send(
            &distributor_admin,
            CREATE,
            json!({ "input": { "name": "x", "url": "https://hooks.example.com/", "events": ["order.added"], "role": "partner_user", "partnerId": partner_of(&supplier_admin) } }),
        )
        .await;
    assert_eq!(code(&theirs).0, "NOT_FOUND", "{theirs}");
    // A delivery of it (a ping to an endpoint on the closed internet: it stays pending).
    let ping = demo
        .ok(
            &supplier_admin,
            "mutation($id: ID!) { pingWebhook(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let delivery = ping["pingWebhook"]["id"].clone();
    let looked = demo
        .ok(
            &distributor_admin,
            "query($id: ID!, $d: ID!) { webhook(id: $id) { id } webhooks { id } webhookDelivery(id: $d) { id } }",
            json!({ "id": id, "d": delivery }),
        )
        .await;
    assert_eq!(
        looked,
        json!({ "webhook": null, "webhooks": [], "webhookDelivery": null })
    );
    let replay = "mutation($id: ID!) { replayWebhookDelivery(id: $id) { id } }";
    let refused = demo
        .send(&distributor_admin, replay, json!({ "id": delivery }))
        .await;
    let missing = demo
        .send(&distributor_admin, replay, json!({ "id": "whd_missing" }))
        .await;
    assert_eq!(code(&refused).0, "NOT_FOUND", "{refused}");
    assert_eq!(
        refused["errors"][0]["message"],
        missing["errors"][0]["message"]
    );
    for mutation in [
        "mutation($id: ID!) { pingWebhook(id: $id) { id } }",
        "mutation($id: ID!) { deleteWebhook(id: $id) }",
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
        "mutation($id: ID!) { replayDeadWebhookDeliveries(webhookId: $id) }",
        "mutation($id: ID!) { updateWebhook(id: $id, input: { paused: true }) { id } }",
        "mutation($id: ID!) { takeOverWebhook(id: $id) { id } }",
    ] {
        let refused = demo
            .send(&distributor_admin, mutation, json!({ "id": id }))
            .await;
        assert_eq!(code(&refused).0, "NOT_FOUND", "{mutation}: {refused}");
        let missing = demo
            .send(&distributor_admin, mutation, json!({ "id": "whk_missing" }))
            .await;
        assert_eq!(
            refused["errors"][0]["message"], missing["errors"][0]["message"],
            "as a missing one"
        );
    }
    // A partner user manages none, not even its own organisation's; the admin sees every
    // organisation's.
    let refused = demo
        .send(&supplier_user, "{ webhooks { id } }", json!({}))
        .await;
    assert_eq!(code(&refused).0, "FORBIDDEN", "{refused}");
    for (mutation, id) in [
        ("mutation($id: ID!) { pingWebhook(id: $id) { id } }", &id),
        ("mutation($id: ID!) { deleteWebhook(id: $id) }", &id),
        (
            "mutation($id: ID!) { takeOverWebhook(id: $id) { id } }",
            &id,
        ),
        ("query($id: ID!) { webhook(id: $id) { id } }", &id),
        (replay, &delivery),
        (
            "query($id: ID!) { webhookDelivery(id: $id) { id } }",
            &delivery,
        ),
    ] {
        // Refused for the right alone, whether the webhook or delivery exists or not.
        let refused = demo
            .send(&supplier_user, mutation, json!({ "id": id }))
            .await;
        let missing = demo
            .send(&supplier_user, mutation, json!({ "id": "whx_missing" }))
            .await;
        assert_eq!(code(&refused).0, "FORBIDDEN", "{mutation}: {refused}");
        assert_eq!(refused["errors"], missing["errors"], "{mutation}");
    }
    let refused = demo
        .send(
            &supplier_user,
            CREATE,
            input("https://hooks.example.com/crm"),
        )
        .await;
    assert_eq!(code(&refused).0, "FORBIDDEN", "{refused}");
    let all = demo
        .ok(
            &admin,
            "{ webhooks { id } webhookEventTypes { name } }",
            json!({}),
        )
        .await;
    assert!(
        all["webhooks"]
            .as_array()
            .expect("webhooks")
            .iter()
            .any(|w| w["id"] == id)
    );
    assert!(
        all["webhookEventTypes"]
            .as_array()
            .expect("types")
            .iter()
            .any(|t| t["name"] == "order.removed")
    );
    // Rotating gives a new secret; deleting removes it.
    let rotated = demo
        .ok(
            &supplier_admin,
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
            json!({ "id": id }),
        )
        .await;
    assert_ne!(
        rotated["rotateWebhookSecret"]["secret"],
        made["createWebhook"]["secret"]
    );
    demo.ok(
        &supplier_admin,
        "mutation($id: ID!) { deleteWebhook(id: $id) }",
        json!({ "id": id }),
    )
    .await;
    let gone = demo
        .ok(
            &admin,
            "query($id: ID!) { webhook(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert!(gone["webhook"].is_null());
    demo.finish().await;
}

#[tokio::test]
async fn a_delivery_to_a_name_that_resolves_to_loopback_is_refused_when_it_connects() {
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .expect("port");
    let envelope = |url: &'static str| outbound::Envelope {
        url,
        secret: "whsec_test",
        webhook_id: "whk_1",
        delivery_id: "whd_1",
        event: "webhook.ping",
        timestamp: 1,
    };
    let url: &'static str =
        Box::leak(format!("http://localhost:{port}/hooks/crm").into_boxed_str());
    let guarded = outbound::Outbound::new(Default::default(), Duration::from_secs(2));
    let posted = guarded.post(&envelope(url), "{}".into()).await;
    assert!(
        posted
            .error
            .as_deref()
            .is_some_and(|e| e.contains("private or loopback")),
        "{posted:?}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    let allowed = outbound::Outbound::new(
        crm_identity::webhooks::Networks::parse("127.0.0.0/8,::1").expect("nets"),
        Duration::from_secs(2),
    );
    let posted = allowed.post(&envelope(url), "{}".into()).await;
    assert_eq!(posted.status, Some(200), "{posted:?}");
    assert_eq!(receiver.received().len(), 1);
}

const CHANGES: &str = "query($id: ID!, $after: String, $first: Int!) { webhookChanges(webhookId: $id, after: $after, first: $first) { cursor hasMore entries { position event recordType recordId sequence changes state body } } }";

/// One page of a change feed, as `user` reads it.
async fn changes(demo: &Demo, user: &user::Model, feed: &str, after: &Value, first: i32) -> Value {
    demo.ok(
        user,
        CHANGES,
        json!({ "id": feed, "after": after, "first": first }),
    )
    .await["webhookChanges"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_feed_tells_an_integrator_what_changed_in_its_slice_and_nothing_else() {
    let demo = Demo::start_with(loopback_webhooks(Duration::from_secs(1))).await;
    let admin = demo.first("internal", "admin");
    let supplier = demo.first("supplier", "partner_admin");
    let other = demo.another("supplier", "partner_admin", &[&partner_of(&supplier)]);
    let distributor = demo.first("distributor", "partner_admin");
    // A change feed: a webhook without a URL, read rather than posted.
    let made = demo
        .ok(
            &supplier,
            "mutation { createWebhook(input: { name: \"ERP sync\", role: \"partner_user\", events: [\"order.added\", \"order.updated\", \"order.removed\"] }) { secret webhook { id url changeFeed } } }",
            json!({}),
        )
        .await;
    let feed = made["createWebhook"]["webhook"]["id"]
        .as_str()
        .expect("a feed")
        .to_owned();
    assert_eq!(made["createWebhook"]["webhook"]["changeFeed"], true);
    assert!(made["createWebhook"]["webhook"]["url"].is_null());
    let start = changes(&demo, &supplier, &feed, &Value::Null, 100).await;
    assert_eq!(start["entries"], json!([]));
    assert_eq!(start["hasMore"], false);

    // An order with a line of the supplier's product and one of another supplier's.
    let setup = demo
        .ok(
            &admin,
            "query($a: ID, $b: ID) { a: products(first: 1, filter: { supplierPartnerId: $a }) { nodes { id } } b: products(first: 1, filter: { supplierPartnerId: $b }) { nodes { id } } accounts(first: 1) { nodes { id } } }",
            json!({ "a": partner_of(&supplier), "b": partner_of(&other) }),
        )
        .await;
    let order = demo
        .ok(
            &admin,
            "mutation($a: ID!) { createOrder(input: { accountId: $a, currency: \"EUR\" }) { id } }",
            json!({ "a": setup["accounts"]["nodes"][0]["id"] }),
        )
        .await["createOrder"]["id"]
        .as_str()
        .expect("an order")
        .to_owned();
    let mut lines = Vec::new();
    for product in [&setup["a"]["nodes"][0]["id"], &setup["b"]["nodes"][0]["id"]] {
        let line = demo
            .ok(
                &admin,
                "mutation($o: ID!, $p: ID!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: 2, unitPrice: \"5.00\", currency: \"EUR\" }) { id version } }",
                json!({ "o": order, "p": product }),
            )
            .await["createOrderLine"]
            .clone();
        lines.push(line);
    }
    settle(&demo).await;
    let page = changes(&demo, &supplier, &feed, &start["cursor"], 100).await;
    let entries = page["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "one change of its view: {page}");
    assert_eq!(
        (
            &entries[0]["event"],
            &entries[0]["recordType"],
            &entries[0]["recordId"]
        ),
        (&json!("order.added"), &json!("Order"), &json!(order))
    );
    assert_eq!(entries[0]["state"], "DELIVERED");
    assert!(
        entries[0]["body"].is_null(),
        "thin entries: read the record itself"
    );
    let after_added = page["cursor"].clone();

    // A change it can't see (the internal note) adds nothing; one it sees (its line
    // confirmed) is an update naming the lines.
    let version = demo
        .ok(
            &admin,
            "query($id: ID!) { order(id: $id) { version } }",
            json!({ "id": order }),
        )
        .await["order"]["version"]
        .clone();
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { updateOrder(id: $id, version: $v, input: { internalNote: \"ask for a discount\" }) { id } }",
        json!({ "id": order, "v": version }),
    )
    .await;
    settle(&demo).await;
    let page = changes(&demo, &supplier, &feed, &after_added, 100).await;
    assert_eq!(page["entries"], json!([]), "a hidden change: {page}");
    assert_eq!(
        page["cursor"], after_added,
        "nothing read, the cursor stays"
    );
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { updateOrderLine(id: $id, version: $v, input: { status: CONFIRMED }) { id } }",
        json!({ "id": lines[0]["id"], "v": lines[0]["version"] }),
    )
    .await;
    settle(&demo).await;
    // Its line archived: the order leaves its view.
    let line = demo
        .ok(
            &admin,
            "query($id: ID!) { orderLine(id: $id) { version } }",
            json!({ "id": lines[0]["id"] }),
        )
        .await;
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { archiveOrderLine(id: $id, version: $v) { id } }",
        json!({ "id": lines[0]["id"], "v": line["orderLine"]["version"] }),
    )
    .await;
    settle(&demo).await;
    // Paged one at a time, from the start: every entry once, in order.
    let mut cursor = Value::Null;
    let mut told = Vec::new();
    loop {
        let page = changes(&demo, &supplier, &feed, &cursor, 1).await;
        for entry in page["entries"].as_array().expect("entries") {
            told.push((
                entry["event"].as_str().expect("event").to_owned(),
                entry["sequence"].as_i64().expect("sequence"),
                entry["changes"].clone(),
            ));
        }
        cursor = page["cursor"].clone();
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(told.len(), 3, "{told:?}");
    assert_eq!((told[0].0.as_str(), told[0].1), ("order.added", 1));
    assert_eq!((told[1].0.as_str(), told[1].1), ("order.updated", 2));
    assert!(
        told[1]
            .2
            .as_array()
            .expect("changes")
            .contains(&json!("lines")),
        "{told:?}"
    );
    assert_eq!((told[2].0.as_str(), told[2].1), ("order.removed", 3));
    let order_now = demo
        .send(
            &supplier,
            "query($id: ID!) { order(id: $id) { id } }",
            json!({ "id": order }),
        )
        .await;
    assert!(
        order_now["data"]["order"].is_null(),
        "gone from its view: {order_now}"
    );

    // Cursors belong to their feed; a feed is read by its organisation only, never posted.
    let code = |body: &Value| {
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let forged = demo
        .send(
            &supplier,
            CHANGES,
            json!({ "id": feed, "after": "bm90IGEgY3Vyc29y", "first": 5 }),
        )
        .await;
    assert_eq!(code(&forged), "VALIDATION", "{forged}");
    let theirs = demo
        .send(
            &distributor,
            CHANGES,
            json!({ "id": feed, "after": null, "first": 5 }),
        )
        .await;
    assert_eq!(code(&theirs), "NOT_FOUND", "{theirs}");
    let ping = demo
        .send(
            &supplier,
            "mutation($id: ID!) { pingWebhook(id: $id) { id } }",
            json!({ "id": feed }),
        )
        .await;
    assert_eq!(code(&ping), "INVALID_STATE", "{ping}");
    demo.finish().await;
}

/// How long a change takes from its commit (the mutation's answer) to the endpoint, one
/// change at a time: reported (`target/test-reports/webhook-latency-*.txt`), not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivery_follows_its_change_within_the_runners_poll() {
    let demo = Demo::start_with(loopback_webhooks(Duration::from_secs(5))).await;
    let admin = demo.first("internal", "admin");
    let receiver = Receiver::start().await;
    webhook(
        &demo,
        &admin,
        &receiver,
        json!({ "name": "latency", "events": ["order.updated"], "role": "support" }),
    )
    .await;
    let order = demo
        .ok(
            &admin,
            "{ orders(first: 1, filter: { status: PLACED }) { nodes { id } } }",
            json!({}),
        )
        .await["orders"]["nodes"][0]["id"]
        .clone();
    // The webhook's first look at the order (an `added` it does not take).
    demo.ok(
        &admin,
        "mutation($o: ID!) { createShipment(input: { orderId: $o, carrier: \"warm-up\" }) { id } }",
        json!({ "o": order }),
    )
    .await;
    settle(&demo).await;
    let mut took = Vec::new();
    for n in 0..30 {
        let before = receiver.received().len();
        let started = std::time::Instant::now();
        demo.ok(
            &admin,
            "mutation($o: ID!, $c: String!) { createShipment(input: { orderId: $o, carrier: $c }) { id } }",
            json!({ "o": order, "c": format!("carrier {n}") }),
        )
        .await;
        let committed = started.elapsed();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while receiver.received().len() == before {
            assert!(std::time::Instant::now() < deadline, "delivery {n} arrived");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        took.push(started.elapsed() - committed);
    }
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    crm_e2e::report(
        "webhook-latency",
        &format!(
            "from a change's commit to its webhook delivery, {} changes one at a time: p50 {:?}, p90 {:?}, max {:?}\n",
            took.len(),
            at(0.5),
            at(0.9),
            took[took.len() - 1]
        ),
    );
    demo.finish().await;
}
