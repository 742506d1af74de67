//! Subscriptions through the gateway, with real clients: graphql-transport-ws over a
//! WebSocket and graphql-sse over an event stream. Each subscriber starts from the orders'
//! CURRENT views as it may read them (a supplier: its own lines, no total, no note; an
//! order it can't see sends nothing, exactly like an id that does not exist); a change it
//! can't see sends nothing; a change it sees says which selected fields changed; an order
//! that leaves its view is told once and then nothing more; the stream ends when the
//! subscriber's sign-in does. Notifications reach their recipient only.

use std::time::Duration;

use crm_e2e::demo::{Demo, partner_of};
use crm_e2e::live_client::{Live, Said};
use serde_json::{Value, json};

const ORDERS: &str = "subscription($ids: [ID!]!) { orderChanged(ids: $ids) { change orderId changed \
    order { id status total { amount } internalNote \
        lines(first: 100) { nodes { productId quantity unitPrice { amount } } } \
        shipments(first: 20) { nodes { carrier status } } } } }";

const WAIT: Duration = Duration::from_secs(10);
/// How long a stream must stay silent to show that nothing was sent.
const QUIET: Duration = Duration::from_millis(1500);

fn products(order: &Value) -> Vec<String> {
    let mut products: Vec<String> = order["lines"]["nodes"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["productId"].as_str().expect("product").to_owned())
        .collect();
    products.sort();
    products
}

fn change(event: &Value) -> &Value {
    &event["data"]["orderChanged"]
}

async fn version(demo: &Demo, admin: &crm_identity::user::Model, query: &str, id: &str) -> Value {
    let data = demo.ok(admin, query, json!({ "id": id })).await;
    data.as_object()
        .and_then(|o| o.values().next())
        .map(|record| record["version"].clone())
        .expect("a version")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_subscriptions_carry_what_each_subscriber_sees_and_stop_when_it_may_no_longer() {
    let demo = Demo::start().await;
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

    // An order fulfilled by distributor 1 with a line of supplier A's and one of B's, and
    // an order with B's line only.
    let product_a = demo.product_of(&admin, &partner_of(&supplier_a)).await;
    let product_b = demo.product_of(&admin, &partner_of(&supplier_b)).await;
    let distributor = partner_of(&distributor_1);
    let order = demo
        .order_with_lines(&admin, &distributor, &[(&product_a, 3), (&product_b, 5)])
        .await;
    let b_only = demo
        .order_with_lines(&admin, &distributor, &[(&product_b, 1)])
        .await;

    let watched = json!({ "ids": [order, b_only, "ord_does_not_exist"] });
    let bearer = |user| demo.token(user);

    let mut a_ws = Live::websocket(
        demo.url(),
        Some(&bearer(&supplier_a)),
        ORDERS,
        watched.clone(),
    )
    .await;
    let mut a_sse = Live::event_stream(
        demo.url(),
        Some(&bearer(&supplier_a)),
        ORDERS,
        watched.clone(),
    )
    .await
    .expect("an event stream");
    let mut c_ws = Live::websocket(
        demo.url(),
        Some(&bearer(&supplier_c)),
        ORDERS,
        watched.clone(),
    )
    .await;
    let mut d1 = Live::websocket(
        demo.url(),
        Some(&bearer(&distributor_1)),
        ORDERS,
        watched.clone(),
    )
    .await;
    let mut d2 = Live::event_stream(
        demo.url(),
        Some(&bearer(&distributor_2)),
        ORDERS,
        watched.clone(),
    )
    .await
    .expect("an event stream");

    // The CURRENT views: supplier A sees the first order only, with its own line, no total,
    // no note and no prices; the same over both transports.
    for stream in [&mut a_ws, &mut a_sse] {
        let current = stream.event(WAIT, "A's current view").await;
        let current = change(&current);
        assert_eq!(current["change"], "CURRENT", "{current}");
        assert_eq!(current["orderId"], json!(order));
        assert_eq!(
            products(&current["order"]),
            std::slice::from_ref(&product_a)
        );
        for masked in ["total", "internalNote"] {
            assert!(current["order"][masked].is_null(), "{masked}: {current}");
        }
        assert!(
            current["order"]["lines"]["nodes"][0]["unitPrice"].is_null(),
            "{current}"
        );
    }
    // Distributor 1 sees both orders, every line and the total (never the note).
    let mut d1_current = Vec::new();
    for _ in 0..2 {
        d1_current.push(change(&d1.event(WAIT, "distributor 1's current views").await).clone());
    }
    assert_eq!(d1_current[0]["orderId"], json!(order));
    assert_eq!(
        d1_current[0]["order"]["total"],
        json!({ "amount": "80.00" })
    );
    assert_eq!(products(&d1_current[0]["order"]).len(), 2);
    assert!(d1_current[0]["order"]["internalNote"].is_null());
    assert_eq!(d1_current[1]["orderId"], json!(b_only));
    // Nothing for an order out of view, nor for an id that does not exist; supplier C and
    // distributor 2 see neither order.
    for (stream, who) in [
        (&mut a_ws, "A"),
        (&mut a_sse, "A over SSE"),
        (&mut c_ws, "C"),
        (&mut d2, "distributor 2"),
    ] {
        stream.silent(QUIET, who).await;
    }

    // A change nobody outside the company sees (the internal note), and a change to the
    // order A can't see: nothing for A; distributor 1 hears of the second only.
    let v = version(
        &demo,
        &admin,
        "query($id: ID!) { order(id: $id) { version } }",
        &order,
    )
    .await;
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { updateOrder(id: $id, version: $v, input: { internalNote: \"margin is fine\" }) { id } }",
        json!({ "id": order, "v": v }),
    )
    .await;
    demo.ok(
        &admin,
        "mutation($o: ID!) { createShipment(input: { orderId: $o, carrier: \"UPS\" }) { id } }",
        json!({ "o": b_only }),
    )
    .await;
    let told = change(&d1.event(WAIT, "distributor 1 hears of the shipment").await).clone();
    assert_eq!(told["orderId"], json!(b_only));
    assert_eq!(told["change"], "UPDATED");
    assert_eq!(told["changed"], json!(["shipments"]));
    for (stream, who) in [
        (&mut a_ws, "A"),
        (&mut a_sse, "A over SSE"),
        (&mut c_ws, "C"),
        (&mut d1, "distributor 1"),
    ] {
        stream.silent(QUIET, who).await;
    }

    // A shipment on the order A sees: every subscriber that sees it is told what changed.
    let shipment = demo
        .ok(
            &admin,
            "mutation($o: ID!) { createShipment(input: { orderId: $o, carrier: \"DHL\" }) { id version } }",
            json!({ "o": order }),
        )
        .await["createShipment"]
        .clone();
    for (stream, who) in [
        (&mut a_ws, "A"),
        (&mut a_sse, "A over SSE"),
        (&mut d1, "distributor 1"),
    ] {
        let told = change(&stream.event(WAIT, who).await).clone();
        assert_eq!(told["change"], "UPDATED", "{who}: {told}");
        assert_eq!(told["changed"], json!(["shipments"]), "{who}: {told}");
        assert_eq!(
            told["order"]["shipments"]["nodes"][0]["carrier"], "DHL",
            "{who}: {told}"
        );
    }

    // The order moves to distributor 2: distributor 1 is told once that it left its view,
    // then nothing more; distributor 2 does not watch for it to arrive (its subscription's
    // baseline had it out of view, so it is ADDED).
    let v = version(
        &demo,
        &admin,
        "query($id: ID!) { order(id: $id) { version } }",
        &order,
    )
    .await;
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!, $d: ID!) { updateOrder(id: $id, version: $v, input: { fulfillingDistributorId: $d }) { id } }",
        json!({ "id": order, "v": v, "d": partner_of(&distributor_2) }),
    )
    .await;
    let removed = change(&d1.event(WAIT, "distributor 1 loses the order").await).clone();
    assert_eq!(
        removed,
        json!({ "change": "REMOVED", "orderId": order, "changed": [], "order": null })
    );
    let added = change(&d2.event(WAIT, "distributor 2 gains the order").await).clone();
    assert_eq!(added["change"], "ADDED", "{added}");
    assert_eq!(added["order"]["id"], json!(order));
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { recordShipmentStatus(id: $id, version: $v, status: IN_TRANSIT) { id } }",
        json!({ "id": shipment["id"], "v": shipment["version"] }),
    )
    .await;
    let told = change(&a_ws.event(WAIT, "A hears of the shipment's status").await).clone();
    assert_eq!(
        told["order"]["shipments"]["nodes"][0]["status"], "IN_TRANSIT",
        "{told}"
    );
    assert_eq!(
        change(&d2.event(WAIT, "distributor 2 too").await)["changed"],
        json!(["shipments"])
    );
    d1.silent(QUIET, "distributor 1 no longer hears of the order")
        .await;
    // The distributor's own client ends its subscription: the server completes it.
    d1.complete();
    d1.silent(QUIET, "no event after the client completed")
        .await;

    // Supplier A is disabled: its streams end with the reason at once, with no change to
    // any order.
    let _ = a_sse.next(Duration::from_millis(100)).await; // the same IN_TRANSIT event
    demo.ok(
        &admin,
        "mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }",
        json!({ "id": supplier_a.id }),
    )
    .await;
    for (stream, who) in [(&mut a_ws, "A"), (&mut a_sse, "A over SSE")] {
        let last = stream.event(WAIT, who).await;
        assert_eq!(
            last["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{who}: {last}"
        );
        assert!(
            last.get("data").is_none() || last["data"].is_null(),
            "{who}: nothing of the order: {last}"
        );
        assert_eq!(stream.next(WAIT).await, Some(Said::Complete), "{who}");
    }
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_refused_with_a_reason_and_queries_run_once_over_either_transport() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let token = demo.token(&admin);
    let url = demo.url();

    // Without sign-in; with a credential that does not check out.
    let (status, body) = Live::event_stream(url, None, ORDERS, json!({ "ids": ["x"] }))
        .await
        .err()
        .expect("refused");
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (401, &json!("UNAUTHENTICATED")),
        "{body}"
    );
    let (status, _) = Live::event_stream(url, Some("not-a-token"), ORDERS, json!({ "ids": ["x"] }))
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 401);
    let mut forged =
        Live::websocket(url, Some("not-a-token"), ORDERS, json!({ "ids": ["x"] })).await;
    assert_eq!(
        forged.next(WAIT).await,
        Some(Said::Closed(4403, "Forbidden".into()))
    );
    let mut anonymous = Live::websocket(url, None, ORDERS, json!({ "ids": ["x"] })).await;
    match anonymous.next(WAIT).await {
        Some(Said::Refused(errors)) => assert_eq!(
            errors[0]["extensions"]["code"], "UNAUTHENTICATED",
            "{errors}"
        ),
        other => panic!("an anonymous subscription is refused: {other:?}"),
    }

    // Bad subscriptions: each refused with what is wrong, over both transports.
    for (query, variables, code, says) in [
        (ORDERS, json!({ "ids": [] }), "BAD_USER_INPUT", "1 to 100"),
        (
            "subscription { orderChanged(ids: [\"x\"]) { colour } }",
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
            "colour",
        ),
        (
            "subscription { orderChanged(ids: [\"x\"]) { change } notificationReceived { id } }",
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
            "one top level field",
        ),
    ] {
        let (status, body) = Live::event_stream(url, Some(&token), query, variables.clone())
            .await
            .err()
            .expect("refused");
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
        assert!(
            body.to_string().to_lowercase().contains(says),
            "{says}: {body}"
        );
        let mut ws = Live::websocket(url, Some(&token), query, variables).await;
        match ws.next(WAIT).await {
            Some(Said::Refused(errors)) => {
                assert_eq!(errors[0]["extensions"]["code"], code, "{errors}")
            }
            other => panic!("{query}: refused over the WebSocket: {other:?}"),
        }
    }
    // A plain POST says where subscriptions are served.
    let (status, body) = crm_e2e::gateway_as(
        &reqwest::Client::new(),
        url,
        Some(&token),
        ORDERS,
        json!({ "ids": ["x"] }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("WebSocket")),
        "{body}"
    );

    // A query runs once over either transport: one event, then complete.
    let query = "{ partners(first: 1) { nodes { id } } }";
    let mut ws = Live::websocket(url, Some(&token), query, json!({})).await;
    let mut sse = Live::event_stream(url, Some(&token), query, json!({}))
        .await
        .expect("a stream");
    for stream in [&mut ws, &mut sse] {
        let answer = stream.event(WAIT, "the query's answer").await;
        assert!(
            answer["data"]["partners"]["nodes"][0]["id"].is_string(),
            "{answer}"
        );
        assert_eq!(stream.next(WAIT).await, Some(Said::Complete));
    }
    // The protocol's rules: a second subscription under an id in use closes the socket.
    let mut ws = Live::websocket(url, Some(&token), ORDERS, json!({ "ids": ["x"] })).await;
    ws.send_raw(json!({ "type": "subscribe", "id": "1", "payload": { "query": ORDERS, "variables": { "ids": ["y"] } } }));
    assert_eq!(
        ws.next(WAIT).await,
        Some(Said::Closed(4409, "Subscriber for 1 already exists".into()))
    );

    // Introspection shows the subscriptions to those who may introspect.
    let schema = demo
        .ok(
            &admin,
            "{ __schema { subscriptionType { name fields { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        schema["__schema"]["subscriptionType"],
        json!({ "name": "Subscription", "fields": [{ "name": "orderChanged" }, { "name": "notificationReceived" }] })
    );
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_their_recipient_only_as_they_are_written() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let manager = demo.first("internal", "management");
    let sales = demo.first("internal", "sales");
    let account = demo
        .ok(&admin, "{ accounts(first: 1) { nodes { id } } }", json!({}))
        .await["accounts"]["nodes"][0]["id"]
        .clone();
    let subscription = "subscription { notificationReceived { kind title recordId read } }";
    let mut for_manager = Live::websocket(
        demo.url(),
        Some(&demo.token(&manager)),
        subscription,
        json!({}),
    )
    .await;
    let mut for_sales = Live::event_stream(
        demo.url(),
        Some(&demo.token(&sales)),
        subscription,
        json!({}),
    )
    .await
    .expect("a stream");
    let assign = |n: usize| {
        demo.ok(
            &admin,
            "mutation($r: ID!, $t: String!, $who: ID!) { createTask(input: { recordId: $r, title: $t, dueAt: \"2027-01-01T00:00:00Z\", assigneeUserId: $who }) { id } }",
            json!({ "r": account, "t": format!("Call back #{n}"), "who": manager.id }),
        )
    };
    // The subscription starts listening as the stream opens: assign until the first
    // notification arrives, then every one must.
    // (Jobs may notify the same users of other things meanwhile: only these tasks'
    // notifications are looked for.)
    let ours = |event: &Value| {
        event["data"]["notificationReceived"]["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Task for you: Call back"))
    };
    let mut first = None;
    'assigning: for n in 0..20 {
        assign(n).await;
        while let Some(Said::Next(event)) = for_manager.next(Duration::from_millis(500)).await {
            if ours(&event) {
                first = Some(event);
                break 'assigning;
            }
        }
    }
    let first = first.expect("a notification arrives");
    let told = &first["data"]["notificationReceived"];
    assert_eq!(told["kind"], "TASK_ASSIGNED", "{first}");
    assert_eq!(told["recordId"], account);
    assert_eq!(told["read"], false);
    while for_manager.next(Duration::from_millis(300)).await.is_some() {}
    assign(100).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let next = for_manager.event(WAIT, "the next notification").await;
        if ours(&next) {
            assert_eq!(
                next["data"]["notificationReceived"]["title"],
                "Task for you: Call back #100"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task's notification arrives"
        );
    }
    while let Some(said) = for_sales.next(QUIET).await {
        if let Said::Next(event) = &said {
            assert!(
                !ours(event),
                "another user's notification reached sales: {event}"
            );
        }
    }
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_event_follows_its_commit_within_the_relays_poll() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let order = demo
        .ok(
            &admin,
            "{ orders(first: 1, filter: { status: PLACED }) { nodes { id } } }",
            json!({}),
        )
        .await["orders"]["nodes"][0]["id"]
        .clone();
    let watch = "subscription($ids: [ID!]!) { orderChanged(ids: $ids) { change order { shipments(first: 100) { totalCount } } } }";
    let token = demo.token(&admin);
    let mut ws = Live::websocket(demo.url(), Some(&token), watch, json!({ "ids": [order] })).await;
    let mut sse = Live::event_stream(demo.url(), Some(&token), watch, json!({ "ids": [order] }))
        .await
        .expect("a stream");
    for stream in [&mut ws, &mut sse] {
        stream.event(WAIT, "the current view").await;
    }
    let mut took: [Vec<Duration>; 2] = Default::default();
    for n in 0..100 {
        let started = std::time::Instant::now();
        demo.ok(
            &admin,
            "mutation($o: ID!, $c: String!) { createShipment(input: { orderId: $o, carrier: $c }) { id } }",
            json!({ "o": order, "c": format!("carrier {n}") }),
        )
        .await;
        // From the mutation's answer (its commit) to the event at each client.
        let committed = started.elapsed();
        for (stream, took) in [&mut ws, &mut sse].into_iter().zip(took.iter_mut()) {
            let Some((arrived, Said::Next(event))) = stream.next_arrived(WAIT).await else {
                panic!("the shipment's event arrives");
            };
            assert_eq!(
                event["data"]["orderChanged"]["change"], "UPDATED",
                "{event}"
            );
            took.push((arrived - started).saturating_sub(committed));
        }
    }
    let mut report = String::new();
    for (name, took) in ["WebSocket", "SSE"].iter().zip(took.iter_mut()) {
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        report.push_str(&format!(
            "from a change's commit to its subscription event over {name}, {} changes one at a time: p50 {:?}, p99 {:?}, max {:?}\n",
            took.len(),
            at(0.5),
            at(0.99),
            took[took.len() - 1]
        ));
    }
    crm_e2e::report("subscription-latency", &report);
    demo.finish().await;
}
