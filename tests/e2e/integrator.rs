//! The README's "An integrator's first hour", step by step, as a distributor's ERP: a key,
//! introspection, the first sync (list the slice, then follow a change feed), a webhook
//! with a verified signature, and a subscription.

use std::time::Duration;

use crm_e2e::demo::Demo;
use crm_e2e::live_client::Live;
use crm_e2e::receiver::{Receiver, deliveries, loopback_webhooks};
use crm_gateway::federation::engine::CallerKind;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrators_first_hour_as_the_readme_tells_it() {
    // The deployment lets integrators introspect (`--introspection-for internal,integrator`).
    let mut settings = loopback_webhooks(Duration::from_secs(5));
    settings.engine.discovery.introspection = vec![CallerKind::Internal, CallerKind::Integrator];
    let demo = Demo::start_with(settings).await;
    let partner_admin = demo.first("distributor", "partner_admin");
    let admin = demo.first("internal", "admin");

    // 1. The partner admin makes the ERP's key (portal → API keys, or this mutation), as a
    //    partner admin: the integration manages its own webhooks and feed.
    let key = demo
        .ok(
            &partner_admin,
            "mutation { createApiKey(input: { name: \"ERP\", role: \"partner_admin\" }) { secret } }",
            json!({}),
        )
        .await["createApiKey"]["secret"]
        .as_str()
        .expect("a key")
        .to_owned();

    // 2. The ERP introspects with it.
    let schema = demo
        .send_with(
            &key,
            "{ __schema { queryType { name } subscriptionType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        schema["data"]["__schema"],
        json!({ "queryType": { "name": "Query" }, "subscriptionType": { "name": "Subscription" } }),
        "{schema}"
    );

    // 3. The first sync: a change feed first (a webhook without a URL), then the slice
    //    page by page, then the feed.
    let events = json!(["order.added", "order.updated", "order.removed"]);
    let feed = demo
        .send_with(
            &key,
            "mutation($e: [String!]!) { createWebhook(input: { name: \"ERP sync\", events: $e, role: \"partner_user\" }) { webhook { id } } }",
            json!({ "e": events }),
        )
        .await["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .expect("a feed")
        .to_owned();
    let mut mirror: Vec<String> = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = demo
            .send_with(
                &key,
                "query($after: String) { orders(first: 50, after: $after) { nodes { id status } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
        let orders = &page["data"]["orders"];
        mirror.extend(
            orders["nodes"]
                .as_array()
                .expect("orders")
                .iter()
                .map(|o| o["id"].as_str().expect("an id").to_owned()),
        );
        if orders["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = orders["pageInfo"]["endCursor"].clone();
    }
    assert!(!mirror.is_empty(), "the distributor's slice has orders");

    // 4. The webhook, pointed at the ERP's endpoint.
    let endpoint = Receiver::start().await;
    let made = demo
        .send_with(
            &key,
            "mutation($url: String!, $e: [String!]!) { createWebhook(input: { name: \"ERP\", url: $url, events: $e, role: \"partner_user\" }) { secret } }",
            json!({ "url": endpoint.url, "e": events }),
        )
        .await;
    let secret = made["data"]["createWebhook"]["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();

    // 5. The subscription: the ERP watches the first order it mirrored.
    let watched = &mirror[0];
    let mut live = Live::websocket(
        demo.url(),
        Some(&key),
        "subscription($ids: [ID!]!) { orderChanged(ids: $ids) { change changed order { status shipments(first: 20) { nodes { carrier } } } } }",
        json!({ "ids": [watched] }),
    )
    .await;
    let current = live
        .event(Duration::from_secs(10), "the current view")
        .await;
    assert_eq!(
        current["data"]["orderChanged"]["change"], "CURRENT",
        "{current}"
    );

    // The company ships the order: the feed, the webhook and the subscription all say so.
    demo.ok(
        &admin,
        "mutation($o: ID!) { createShipment(input: { orderId: $o, carrier: \"DHL\" }) { id } }",
        json!({ "o": watched }),
    )
    .await;
    let told = live.event(Duration::from_secs(10), "the shipment").await;
    assert_eq!(
        told["data"]["orderChanged"]["changed"],
        json!(["shipments"]),
        "{told}"
    );
    assert_eq!(
        told["data"]["orderChanged"]["order"]["shipments"]["nodes"][0]["carrier"],
        "DHL"
    );
    demo.system
        .settle_webhooks(Duration::from_secs(30))
        .await
        .expect("webhooks settle");
    let delivered = deliveries(&endpoint, &secret);
    assert!(
        delivered
            .iter()
            .any(|d| d["record"]["id"] == json!(watched) && d["event"] == "order.added"),
        "the webhook's first look at the order: {delivered:?}"
    );
    let entries = demo
        .send_with(
            &key,
            "query($id: ID!) { webhookChanges(webhookId: $id, first: 100) { entries { event recordId changes } } }",
            json!({ "id": feed }),
        )
        .await;
    let about: Vec<&Value> = entries["data"]["webhookChanges"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["recordId"] == json!(watched))
        .collect();
    assert!(!about.is_empty(), "the feed has the order: {entries}");
    demo.finish().await;
}
