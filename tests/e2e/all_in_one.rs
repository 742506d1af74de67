//! The all-in-one system as `crm` starts it: migrated, seeded on first start, serving the
//! public endpoint; restarted, it keeps its data and does not seed again.

use std::net::SocketAddr;

use crm_e2e::{
    admin_bearer, close, drop_database, finish, fresh_storage, gateway, gateway_as, signed_in,
    system_with_settings,
};
use crm_system::{DemoWorld, start_all_in_one};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

async fn post(client: &reqwest::Client, url: &str, query: &str) -> Value {
    client
        .post(format!("{url}/graphql"))
        .bearer_auth(admin_bearer(client, url).await)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

/// Every node of a list, following cursors (pages of 200).
async fn all_nodes(
    client: &reqwest::Client,
    url: &str,
    field: &str,
    selection: &str,
) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let query = format!(
            "query($after: String) {{ {field}(first: 200, after: $after) {{ nodes {{ {selection} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        );
        let page: Value = client
            .post(format!("{url}/graphql"))
            .bearer_auth(admin_bearer(client, url).await)
            .json(&json!({ "query": query, "variables": { "after": after } }))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert!(page.get("errors").is_none(), "{page}");
        nodes.extend(
            page["data"][field]["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .cloned(),
        );
        if page["data"][field]["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = page["data"][field]["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn the_all_in_one_starts_seeded_serves_and_restarts_without_reseeding() {
    let (storage, _dir, created) = fresh_storage().await;
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let world = DemoWorld {
        seed: 42,
        accounts: 25,
    };
    let client = reqwest::Client::new();

    let system = start_all_in_one(&storage, any_port, Some(world))
        .await
        .expect("start");
    let demo = system.seeded.clone().expect("seeded on first start");
    let seeded = demo.of("account").cloned().expect("accounts seeded");
    assert_eq!(seeded.get("accounts"), 25);
    assert_eq!(seeded.get("partners"), 7);
    assert!(
        demo.of("order-visibility")
            .is_some_and(|o| o.get("orders") > 0 && o.get("products") == 24)
    );
    assert!(
        demo.of("knowledge-base")
            .is_some_and(|k| k.get("articles") > 0)
    );
    let url = system.public.url();
    assert_eq!(
        client
            .get(format!("{url}/health"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{url}/ready"))
            .send()
            .await
            .expect("ready")
            .status(),
        200
    );
    let data = post(
        &client,
        &url,
        "{ accounts { totalCount } contacts { totalCount } partners(filter: { kind: DISTRIBUTOR }) { nodes { name territories { code } } } }",
    )
    .await;
    assert_eq!(data["data"]["accounts"]["totalCount"], 25);
    assert_eq!(
        data["data"]["contacts"]["totalCount"],
        seeded.get("contacts") as i64
    );
    let distributors = data["data"]["partners"]["nodes"]
        .as_array()
        .expect("distributors");
    assert_eq!(distributors.len(), 3);
    assert!(
        distributors
            .iter()
            .all(|d| !d["territories"].as_array().expect("territories").is_empty())
    );

    // The directory holds a user per persona, with emails that start with the persona.
    let users = crm_identity::all_users(&system.databases.identity)
        .await
        .expect("users");
    for persona in [
        "admin@",
        "sales@",
        "marketing@",
        "support@",
        "management@",
        "supplier1-",
        "distributor1-",
    ] {
        assert!(
            users.iter().any(|u| u.email.starts_with(persona)),
            "no {persona} user"
        );
    }
    let marked = post(&client, &url, "mutation { upsertAccount(externalId: \"E2E-1\", input: { name: \"Kept Across Restarts\", segment: SMB, tier: KEY, lifecycleStage: PROSPECT }) { id } }").await;
    assert!(marked.get("errors").is_none(), "{marked}");
    close(&system.databases).await;
    system.stop().await.expect("stop");

    let again = start_all_in_one(&storage, any_port, Some(world))
        .await
        .expect("restart");
    assert!(
        again.seeded.is_none(),
        "a seeded system is not seeded again"
    );
    let data = post(&client, &again.public.url(), "{ accounts(filter: { text: \"kept across\" }) { totalCount } all: accounts { totalCount } }").await;
    assert_eq!(
        data["data"]["accounts"]["totalCount"], 1,
        "data survives a restart"
    );
    assert_eq!(data["data"]["all"]["totalCount"], 26);
    close(&again.databases).await;
    again.stop().await.expect("stop");
    if let Some(name) = created {
        drop_database(&name).await;
    }
}

/// The demo world is one world across the three services, checked through their public
/// APIs, through the gateway.
/// The demo world of seed 7 with 30 accounts, read through the gateway (the one public
/// endpoint) as the demo admin.
struct SeededWorld {
    system: crm_system::AllInOne,
    _dir: tempfile::TempDir,
    created: Option<String>,
    client: reqwest::Client,
    url: String,
}

impl SeededWorld {
    async fn start() -> Self {
        let (storage, dir, created) = fresh_storage().await;
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let world = DemoWorld {
            seed: 7,
            accounts: 30,
        };
        let system = start_all_in_one(&storage, any_port, Some(world))
            .await
            .expect("start");
        let url = system.public.url();
        SeededWorld {
            system,
            _dir: dir,
            created,
            client: reqwest::Client::new(),
            url,
        }
    }

    async fn all(&self, field: &str, selection: &str) -> Vec<Value> {
        all_nodes(&self.client, &self.url, field, selection).await
    }

    async fn stop(self) {
        close(&self.system.databases).await;
        self.system.stop().await.expect("stop");
        if let Some(name) = self.created {
            drop_database(&name).await;
        }
    }
}

#[tokio::test]
async fn demo_orders_refer_to_accounts_products_and_distributors_that_exist() {
    let world = SeededWorld::start().await;
    let accounts = world.all("accounts", "id territory { code }").await;
    let partners = world.all("partners", "id kind territories { code }").await;
    let kind_of = |id: &Value| {
        partners
            .iter()
            .find(|p| &p["id"] == id)
            .map(|p| p["kind"].as_str().unwrap_or_default().to_owned())
    };
    let products = world.all("products", "id supplierPartnerId").await;
    assert_eq!(products.len(), 24, "six products per supplier");
    for product in &products {
        assert_eq!(
            kind_of(&product["supplierPartnerId"]).as_deref(),
            Some("SUPPLIER"),
            "{product}"
        );
    }
    let orders = world
        .all(
            "orders",
            "id accountId status fulfillingDistributorId total { amount } lines(first: 10) { nodes { productId quantity unitPrice { amount } status } } shipments { nodes { status } }",
        )
        .await;
    assert!(orders.len() >= 20, "{} orders", orders.len());
    let mut statuses = std::collections::BTreeSet::new();
    let mut shipment_statuses = std::collections::BTreeSet::new();
    let (mut in_territory, mut outside) = (0, 0);
    for order in &orders {
        statuses.insert(order["status"].as_str().unwrap_or_default().to_owned());
        let account = accounts.iter().find(|a| a["id"] == order["accountId"]);
        let account =
            account.unwrap_or_else(|| panic!("order {} refers to a missing account", order["id"]));
        if let Some(distributor) = order["fulfillingDistributorId"].as_str() {
            let distributor = partners
                .iter()
                .find(|p| p["id"] == distributor)
                .expect("distributor exists");
            assert_eq!(distributor["kind"], "DISTRIBUTOR");
            let covers = distributor["territories"].as_array().expect("territories");
            if covers
                .iter()
                .any(|t| t["code"] == account["territory"]["code"])
            {
                in_territory += 1;
            } else {
                outside += 1;
            }
        }
        let lines = order["lines"]["nodes"].as_array().expect("lines");
        assert!(!lines.is_empty(), "every order has lines");
        for line in lines {
            assert!(
                products.iter().any(|p| p["id"] == line["productId"]),
                "line of a missing product"
            );
        }
        for shipment in order["shipments"]["nodes"].as_array().expect("shipments") {
            shipment_statuses.insert(shipment["status"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert!(
        in_territory > outside && outside > 0,
        "mostly in territory ({in_territory}), some not ({outside})"
    );
    assert_eq!(
        statuses.len(),
        8,
        "every order status appears: {statuses:?}"
    );
    assert_eq!(
        shipment_statuses.len(),
        6,
        "every shipment status appears: {shipment_statuses:?}"
    );
    world.stop().await;
}

#[tokio::test]
async fn demo_articles_cover_every_audience_and_link_products_that_exist() {
    let world = SeededWorld::start().await;
    let products = world.all("products", "id").await;
    let articles = world
        .all("articles", "id audiences status productIds")
        .await;
    let mut audiences = std::collections::BTreeSet::new();
    for article in &articles {
        for audience in article["audiences"].as_array().expect("audiences") {
            audiences.insert(audience.as_str().unwrap_or_default().to_owned());
        }
        for product_id in article["productIds"].as_array().expect("products") {
            assert!(
                products.iter().any(|p| &p["id"] == product_id),
                "article links a missing product"
            );
        }
    }
    assert_eq!(
        audiences.len(),
        4,
        "every audience has articles: {audiences:?}"
    );
    assert!(
        articles
            .iter()
            .any(|a| !a["productIds"].as_array().expect("ids").is_empty())
    );
    world.stop().await;
}

/// The seed's events leave through the relays: every service's feed (internal: it needs
/// a gateway token) fills up, with dense positions.
#[tokio::test]
async fn the_seeds_events_fill_every_services_feed_for_the_gateway_only() {
    let world = SeededWorld::start().await;
    let (system, client) = (&world.system, &world.client);
    let internal = |name: &str| {
        let url = system
            .subgraphs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.url())
            .expect("subgraph");
        let token = system.keys.signer().mint(
            name,
            &crm_service_common::internal_auth::Caller::anonymous(),
            "e2e",
        );
        (url, token)
    };
    for (subgraph, kinds) in [
        ("account", ["partner.changed", "account.territory_changed"]),
        (
            "order-visibility",
            ["order.placed", "shipment.status_changed"],
        ),
    ] {
        let (url, token) = internal(subgraph);
        let refused = client
            .get(format!("{url}/events?after=0"))
            .send()
            .await
            .expect("feed");
        assert_eq!(refused.status(), 401, "the feed answers the gateway only");
        let mut seen = Vec::new();
        for _ in 0..100 {
            let page: Value = client
                .get(format!("{url}/events?after=0&limit=1000"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("feed")
                .json()
                .await
                .expect("json");
            seen = page["events"].as_array().expect("events").clone();
            if kinds
                .iter()
                .all(|k| seen.iter().any(|e| e["eventType"] == *k))
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        for kind in kinds {
            assert!(
                seen.iter().any(|e| e["eventType"] == kind),
                "{kind} in {url}/events"
            );
        }
        let positions: Vec<i64> = seen
            .iter()
            .map(|e| e["position"].as_i64().expect("position"))
            .collect();
        assert_eq!(
            positions,
            (1..=positions.len() as i64).collect::<Vec<_>>(),
            "positions are dense from 1"
        );
    }
    world.stop().await;
}

/// The gateway's Prometheus metrics, as text.
async fn metrics(client: &reqwest::Client, url: &str) -> String {
    client
        .get(format!("{url}/metrics"))
        .bearer_auth(crm_e2e::METRICS_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("deflate");
    encoder.finish().expect("deflate")
}

async fn seeded_system(
    accounts: usize,
) -> (crm_system::AllInOne, tempfile::TempDir, Option<String>) {
    system_with(accounts, Default::default()).await
}

/// A seeded all-in-one whose gateway door is set as given.
async fn system_with(
    accounts: usize,
    door: crm_gateway::federation::server::DoorConfig,
) -> (crm_system::AllInOne, tempfile::TempDir, Option<String>) {
    system_with_settings(
        accounts,
        crm_system::GatewaySettings {
            door,
            ..Default::default()
        },
    )
    .await
}

#[test]
fn the_committed_supergraph_is_what_the_subgraphs_compose_to() {
    let composed = crm_system::compose_ours().expect("composes");
    assert!(
        composed == crm_system::COMMITTED_SUPERGRAPH,
        "schema/supergraph.graphql is stale: run `cargo run --bin crm -- compose --write`"
    );
}

#[tokio::test]
async fn one_operation_spans_three_subgraphs_with_variables_fragments_and_aliases() {
    let (system, _dir, created) = seeded_system(12).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let query = r#"
        query Spanning($n: Int!, $withArticles: Boolean!) {
          top: accounts(first: $n, orderBy: { field: NAME }) { nodes { ...AccountOrders } }
          count: orders { totalCount }
        }
        fragment AccountOrders on Account {
          id
          label: name
          orders(first: 2) { nodes { number lines(first: 2) { nodes { product { sku articles(first: 1) @include(if: $withArticles) { nodes { title } } } } } } }
        }"#;
    let (status, body) = gateway(
        &client,
        &url,
        query,
        json!({ "n": 5, "withArticles": true }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let nodes = body["data"]["top"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 5);
    let labels: Vec<&str> = nodes
        .iter()
        .map(|n| n["label"].as_str().expect("label"))
        .collect();
    let mut sorted = labels.clone();
    sorted.sort();
    assert_eq!(labels, sorted, "ordered by name");
    assert!(body["data"]["count"]["totalCount"].as_i64().expect("count") > 0);
    let with_articles = nodes
        .iter()
        .flat_map(|n| n["orders"]["nodes"].as_array().cloned().unwrap_or_default())
        .flat_map(|o| o["lines"]["nodes"].as_array().cloned().unwrap_or_default())
        .filter(|l| l["product"]["articles"]["nodes"].is_array())
        .count();
    assert!(
        with_articles > 0,
        "articles come from the third subgraph: {body}"
    );

    // The same operation again is planned once.
    let plans = system.engine.cached_plans();
    gateway(
        &client,
        &url,
        query,
        json!({ "n": 2, "withArticles": false }),
    )
    .await;
    assert_eq!(
        system.engine.cached_plans(),
        plans,
        "a cached plan serves other variables"
    );

    // A mutation, then its result through another subgraph's field.
    let (_, created_territory) = gateway(
        &client,
        &url,
        "mutation($c: String!) { createTerritory(input: { code: $c, name: \"Gateway Land\" }) { id code version } }",
        json!({ "c": "GW-1" }),
    )
    .await;
    assert_eq!(
        created_territory["data"]["createTerritory"]["code"], "GW-1",
        "{created_territory}"
    );
    // A subgraph's error comes back with its path and code.
    let (status, conflict) = gateway(
        &client,
        &url,
        "mutation($id: ID!) { updateTerritory(id: $id, version: 9, input: { name: \"x\" }) { id } }",
        json!({ "id": created_territory["data"]["createTerritory"]["id"] }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        conflict["errors"][0]["path"],
        json!(["updateTerritory"]),
        "{conflict}"
    );
    assert_eq!(
        conflict["errors"][0]["extensions"]["code"],
        "VERSION_CONFLICT"
    );
    finish(system, created).await;
}

#[tokio::test]
async fn a_stopped_subgraph_gives_partial_data_and_an_error_while_the_gateway_stays_up() {
    let (mut system, _dir, created) = seeded_system(8).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let at = system
        .subgraphs
        .iter()
        .position(|(n, _)| n == "knowledge-base")
        .expect("kb");
    let (_, knowledge_base) = system.subgraphs.remove(at);
    knowledge_base
        .stop()
        .await
        .expect("stop the knowledge base");

    let (status, body) = gateway(
        &client,
        &url,
        "{ orders(first: 3) { nodes { number lines(first: 1) { nodes { quantity product { sku articles { totalCount } } } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let orders = body["data"]["orders"]["nodes"]
        .as_array()
        .expect("orders still answered");
    assert_eq!(orders.len(), 3);
    assert!(orders[0]["number"].is_string());
    assert_eq!(
        orders[0]["lines"]["nodes"][0]["product"],
        Value::Null,
        "the part the stopped subgraph owed is null"
    );
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["service"], "knowledge-base", "{body}");
    let code = error["extensions"]["code"].as_str().expect("a code");
    // The executor's own message names the subgraph's address: masked behind the code
    // and the request id, which the log line carries with the detail.
    let request_id = error["extensions"]["requestId"]
        .as_str()
        .expect("a request id");
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains(request_id) && !message.contains("127.0.0.1") && !message.contains("http"),
        "{message}"
    );
    let metrics = metrics(&client, &url).await;
    let line = format!("crm_gateway_response_errors_total{{code=\"{code}\"}} ");
    assert!(metrics.contains(&line), "{line} in {metrics}");

    let (status, body) = gateway(
        &client,
        &url,
        "{ accounts(first: 1) { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body.get("errors").is_none()),
        (200, true),
        "{body}"
    );
    let ready = client
        .get(format!("{url}/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["unreachable"], json!(["knowledge-base"]));
    finish(system, created).await;
}

#[tokio::test]
async fn subgraphs_answer_only_the_gateway_and_client_identity_headers_go_nowhere() {
    let (system, _dir, created) = seeded_system(3).await;
    let client = reqwest::Client::new();
    let account = system
        .subgraphs
        .iter()
        .find(|(n, _)| n == "account")
        .map(|(_, r)| r.url())
        .expect("account");
    let direct = |token: Option<String>| {
        let mut request = client
            .post(format!("{account}/graphql"))
            .json(&json!({ "query": "{ accounts { totalCount } }" }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(direct(None).await.expect("send").status(), 401);
    assert_eq!(
        direct(Some("forged".into())).await.expect("send").status(),
        401
    );
    let anonymous = crm_service_common::internal_auth::Caller::anonymous();
    let wrong_audience = system
        .keys
        .signer()
        .mint("order-visibility", &anonymous, "t");
    assert_eq!(
        direct(Some(wrong_audience)).await.expect("send").status(),
        401
    );
    let other_key = crm_service_common::internal_auth::KeyPair::generate().expect("keys");
    assert_eq!(
        direct(Some(other_key.signer().mint("account", &anonymous, "t")))
            .await
            .expect("send")
            .status(),
        401
    );
    let right = system.keys.signer().mint("account", &anonymous, "t");
    assert_eq!(direct(Some(right)).await.expect("send").status(), 200);

    // Whatever identity a client claims in headers is not what subgraphs see: the
    // engine's internal token headers and made-up identity headers are dropped (without
    // credentials the request is anonymous, and refused), and a forged bearer is refused
    // at the door.
    let forged = |bearer: Option<String>| {
        let mut request = client
            .post(format!("{}/graphql", system.public.url()))
            .header("x-crm-token-account", "forged")
            .header("x-user-id", "usr_admin")
            .header("x-request-id", "client-chosen-id")
            .json(&json!({ "query": "{ accounts { totalCount } me { id roles } }" }));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    let response = forged(None).await.expect("send");
    assert_eq!(response.status(), 401, "still anonymous");
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id");
    let sales = system.identity.issuer.issue("usr_sales", None, 600);
    let response = forged(Some(sales)).await.expect("send");
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id");
    let body: Value = response.json().await.expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["me"],
        json!({ "id": "usr_sales", "roles": ["sales"] }),
        "the token's caller, not the headers': {body}"
    );
    let response = client
        .post(format!("{}/graphql", system.public.url()))
        .header("authorization", "Bearer forged")
        .json(&json!({ "query": "{ accounts { totalCount } }" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    finish(system, created).await;
}

/// A seeded system of two accounts, and raw requests to its public endpoint as the admin.
struct Door {
    system: crm_system::AllInOne,
    _dir: tempfile::TempDir,
    created: Option<String>,
    client: reqwest::Client,
    url: String,
    bearer: String,
}

/// A small operation every test of the door sends in some wrapping.
fn count_accounts() -> String {
    json!({ "query": "{ accounts { totalCount } }" }).to_string()
}

fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

impl Door {
    async fn open() -> Self {
        let (system, dir, created) = seeded_system(2).await;
        let client = reqwest::Client::new();
        let url = format!("{}/graphql", system.public.url());
        let bearer = admin_bearer(&client, &system.public.url()).await;
        Door {
            system,
            _dir: dir,
            created,
            client,
            url,
            bearer,
        }
    }

    async fn send(&self, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(&self.url)
            .bearer_auth(&self.bearer)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send")
    }

    async fn compressed(&self, encoding: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(&self.url)
            .bearer_auth(&self.bearer)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
            .await
            .expect("send")
    }

    async fn close(self) {
        finish(self.system, self.created).await;
    }
}

#[tokio::test]
async fn the_door_takes_one_json_operation_by_post() {
    let door = Door::open().await;
    assert_eq!(
        door.send("application/json", count_accounts())
            .await
            .status(),
        200
    );
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = door.send(content_type, count_accounts()).await;
        assert_eq!(r.status(), 415, "{content_type}");
    }
    let r = door
        .send("application/json", format!("[{}]", count_accounts()))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        error_code(&r.json().await.expect("json")),
        "BATCH_NOT_ALLOWED"
    );
    let r = door
        .client
        .get(format!("{}?query={{__typename}}", door.url))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 405, "GET is off unless configured");
    door.close().await;
}

#[tokio::test]
async fn compressed_bodies_are_decoded_and_the_limit_holds_for_the_decoded_size() {
    let door = Door::open().await;
    let r = door
        .compressed("gzip", gzip(count_accounts().as_bytes()))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["data"]["accounts"]["totalCount"], 2, "{body}");
    let r = door
        .compressed("deflate", deflate(count_accounts().as_bytes()))
        .await;
    assert_eq!(r.status(), 200);
    let bomb = json!({ "query": "{ accounts { totalCount } }", "variables": { "pad": "x".repeat(8 * 1024 * 1024) } }).to_string();
    let bomb = gzip(bomb.as_bytes());
    assert!(bomb.len() < 64 * 1024, "{} bytes on the wire", bomb.len());
    let r = door.compressed("gzip", bomb).await;
    assert_eq!(r.status(), 413, "a small body that inflates past the limit");
    assert_eq!(
        error_code(&r.json().await.expect("json")),
        "PAYLOAD_TOO_LARGE"
    );
    let r = door.compressed("br", count_accounts().into_bytes()).await;
    assert_eq!(r.status(), 415);
    assert_eq!(
        error_code(&r.json().await.expect("json")),
        "UNSUPPORTED_MEDIA_TYPE"
    );
    let r = door.compressed("gzip", b"not gzip at all".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&r.json().await.expect("json")), "BAD_REQUEST");
    door.close().await;
}

#[tokio::test]
async fn a_body_of_one_mebibyte_is_taken_and_a_larger_one_refused() {
    let door = Door::open().await;
    let just_under = json!({ "query": "{ accounts { totalCount } }", "variables": { "pad": "x".repeat(1024 * 1024 - 100) } }).to_string();
    assert!(just_under.len() <= 1024 * 1024);
    assert_eq!(
        door.send("application/json", just_under).await.status(),
        200
    );
    let over = json!({ "query": "{ accounts { totalCount } }", "variables": { "pad": "x".repeat(1024 * 1024) } }).to_string();
    let r = door.send("application/json", over).await;
    assert_eq!(r.status(), 413);
    assert_eq!(
        error_code(&r.json().await.expect("json")),
        "PAYLOAD_TOO_LARGE"
    );
    door.close().await;
}

#[tokio::test]
async fn malformed_invalid_costly_and_deep_operations_are_refused_with_codes_and_counted() {
    let door = Door::open().await;
    let public = door.system.public.url();
    for (query, variables, expected) in [
        (
            "{ accounts { totalCount ",
            json!({}),
            "GRAPHQL_PARSE_FAILED",
        ),
        (
            "{ accounts { nope } }",
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "query($n: Int!) { accounts(first: $n) { totalCount } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "{ a: accounts { totalCount } b: accounts { totalCount } }",
            json!({}),
            "",
        ),
        (
            "{ accounts(first: 200) { nodes { contacts(first: 200) { nodes { id } } orders(first: 200) { nodes { id } } } } }",
            json!({}),
            "MAX_COST_EXCEEDED",
        ),
    ] {
        let (status, body) = gateway(&door.client, &public, query, variables).await;
        if expected.is_empty() {
            assert_eq!(
                (status, body.get("errors").is_none()),
                (200, true),
                "{query}: {body}"
            );
        } else {
            assert_eq!(
                (status, error_code(&body).as_str()),
                (400, expected),
                "{query}: {body}"
            );
        }
    }
    let deep = format!(
        "{{ accounts {{ nodes {{ {} }} }} }}",
        "contacts { nodes { account { ".repeat(5) + "id" + " } } }".repeat(5).as_str()
    );
    let (status, body) = gateway(&door.client, &public, &deep, json!({})).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "MAX_DEPTH_EXCEEDED"),
        "{body}"
    );

    // What was refused shows in the metrics, by code.
    let metrics = metrics(&door.client, &public).await;
    for line in [
        "crm_gateway_refusals_total{code=\"MAX_COST_EXCEEDED\"} 1",
        "crm_gateway_refusals_total{code=\"MAX_DEPTH_EXCEEDED\"} 1",
        "crm_gateway_refusals_total{code=\"GRAPHQL_VALIDATION_FAILED\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert!(metrics.contains("crm_gateway_request_duration_seconds_count"));
    door.close().await;
}

#[tokio::test]
async fn get_answers_queries_only_when_enabled_preflighted_and_never_mutations() {
    let (system, _dir, created) = system_with(
        2,
        crm_gateway::federation::server::DoorConfig {
            allow_get_queries: true,
            ..Default::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/graphql", system.public.url());
    let bearer = admin_bearer(&client, &system.public.url()).await;
    let get = |query: &str, preflight: bool| {
        let mut request = client
            .get(&url)
            .bearer_auth(&bearer)
            .query(&[("query", query)]);
        if preflight {
            request = request.header("x-crm-preflight", "1");
        }
        request.send()
    };
    let ok = get("{ accounts { totalCount } }", true)
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body["data"]["accounts"]["totalCount"], 2);
    let unflighted = get("{ accounts { totalCount } }", false)
        .await
        .expect("send");
    assert_eq!(unflighted.status(), 400);
    let body: Value = unflighted.json().await.expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "CSRF_PREFLIGHT_REQUIRED"
    );
    let mutation = get(
        "mutation { createTerritory(input: { code: \"G\", name: \"G\" }) { id } }",
        true,
    )
    .await
    .expect("send");
    assert_eq!(mutation.status(), 405);
    let body: Value = mutation.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "MUTATION_OVER_GET");
    let (_, territories) = gateway(
        &client,
        &system.public.url(),
        "{ territories(filter: { text: \"G\" }) { nodes { code } } }",
        json!({}),
    )
    .await;
    assert!(
        !territories.to_string().contains("\"code\":\"G\""),
        "the refused mutation wrote nothing: {territories}"
    );
    finish(system, created).await;
}

/// A TCP listener that accepts connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/graphql", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test]
async fn a_slow_subgraph_times_out_alone_and_a_slow_request_as_a_whole() {
    use crm_gateway::federation::engine::{Engine, EngineConfig};
    use crm_gateway::federation::server::{DoorConfig, router};
    use std::sync::Arc;
    use std::time::Duration;
    let (system, _dir, created) = seeded_system(2).await;
    let account = system
        .subgraphs
        .iter()
        .find(|(n, _)| n == "account")
        .map(|(_, r)| format!("{}/graphql", r.url()))
        .expect("account");
    let silent = black_hole().await;
    let serve_gateway = |subgraph_timeout: Duration, request_timeout: Duration| {
        let engine = Engine::new(
            crm_system::COMMITTED_SUPERGRAPH,
            EngineConfig {
                subgraph_urls: [
                    ("account".to_owned(), account.clone()),
                    ("order-visibility".to_owned(), silent.clone()),
                ]
                .into_iter()
                .collect(),
                subgraph_timeout,
                ..EngineConfig::default()
            },
        )
        .expect("engine");
        let app = router(
            Arc::new(engine),
            DoorConfig {
                request_timeout,
                ..DoorConfig::default()
            },
            crm_system::minter(&system.keys),
            Some(system.identity.authenticator.clone()),
            None,
            None,
            None,
        );
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            tokio::spawn(async move { axum::serve(listener, app).await });
            url
        }
    };
    let client = reqwest::Client::new();
    let query = "{ accounts { totalCount } order(id: \"ord_x\") { number } }";

    let url = serve_gateway(Duration::from_millis(300), Duration::from_secs(10)).await;
    let bearer = admin_bearer(&client, &system.public.url()).await;
    let (status, body) = gateway_as(&client, &url, Some(&bearer), query, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["accounts"]["totalCount"], 2,
        "the healthy subgraph answered: {body}"
    );
    assert_eq!(body["data"]["order"], Value::Null);
    assert_eq!(
        body["errors"][0]["extensions"]["service"], "order-visibility",
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_TIMEOUT",
        "{body}"
    );

    let url = serve_gateway(Duration::from_secs(10), Duration::from_millis(300)).await;
    let response = client
        .post(format!("{url}/graphql"))
        .bearer_auth(&bearer)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 504);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "GATEWAY_TIMEOUT");
    finish(system, created).await;
}

#[tokio::test]
async fn the_explorer_is_served_from_vendored_assets_only_when_enabled() {
    let (system, _dir, created) = system_with(
        1,
        crm_gateway::federation::server::DoorConfig {
            explorer: true,
            ..Default::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let base = system.public.url();
    let page = client
        .get(format!("{base}/graphiql"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let sources: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .chain(html.split("href=\"").skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(sources.len(), 4, "{sources:?}");
    for source in sources {
        assert!(source.starts_with("/graphiql/assets/"), "no CDN: {source}");
        let asset = client
            .get(format!("{base}{source}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(asset.status(), 200, "{source}");
        assert!(
            asset.bytes().await.expect("bytes").len() > 1_000,
            "{source}"
        );
    }
    assert_eq!(
        client
            .get(format!("{base}/graphiql/assets/secret.txt"))
            .send()
            .await
            .expect("send")
            .status(),
        404
    );
    finish(system, created).await;

    // Off by default.
    let (system, _dir, created) = seeded_system(1).await;
    let page = client
        .get(format!("{}/graphiql", system.public.url()))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 404);
    finish(system, created).await;
}

const INTROSPECT: &str = "{ __schema { queryType { name } } }";
const MISSPELT_FIELD: &str = "{ acounts { totalCount } }";

fn first_message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn by_default_staff_introspect_and_are_told_close_names() {
    let (system, _dir, created) = seeded_system(2).await;
    let url = system.public.url();
    let client = reqwest::Client::new();
    let (status, body) = gateway(&client, &url, INTROSPECT, json!({})).await;
    assert_eq!(
        (status, &body["data"]["__schema"]["queryType"]["name"]),
        (200, &json!("Query")),
        "{body}"
    );
    let (_, body) = gateway(&client, &url, MISSPELT_FIELD, json!({})).await;
    assert_eq!(
        first_message(&body),
        "Cannot query field \"acounts\" on type \"Query\". Did you mean \"accounts\" or \"account\"?",
        "{body}"
    );
    let (_, body) = gateway(
        &client,
        &url,
        "{ accounts(frist: 2) { totalCount } }",
        json!({}),
    )
    .await;
    assert!(
        first_message(&body).ends_with("Did you mean \"first\"?"),
        "{body}"
    );
    // A field hidden with @inaccessible is never suggested: `_entities` and `_service` are
    // federation internals.
    let (_, body) = gateway(&client, &url, "{ _entitie { __typename } }", json!({})).await;
    assert!(!first_message(&body).contains("Did you mean"), "{body}");
    finish(system, created).await;
}

#[tokio::test]
async fn by_default_partners_neither_introspect_nor_are_told_close_names() {
    let (system, _dir, created) = seeded_system(2).await;
    let url = system.public.url();
    let client = reqwest::Client::new();
    let supplier = signed_in(&client, &url, "supplier1-user@acme-components.example").await;
    for query in [INTROSPECT, "{ __type(name: \"Account\") { name } }"] {
        let (status, body) = gateway_as(&client, &url, Some(&supplier), query, json!({})).await;
        assert_eq!(
            (status, body["errors"][0]["extensions"]["code"].as_str()),
            (400, Some("INTROSPECTION_DISABLED")),
            "{query}: {body}"
        );
        assert!(body.get("data").is_none());
    }
    let (_, body) = gateway_as(&client, &url, Some(&supplier), MISSPELT_FIELD, json!({})).await;
    assert_eq!(
        first_message(&body),
        "Cannot query field \"acounts\" on type \"Query\".",
        "{body}"
    );
    let (status, body) = gateway_as(
        &client,
        &url,
        Some(&supplier),
        "{ __typename accounts { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (200, &json!("Query")),
        "__typename is not introspection: {body}"
    );
    finish(system, created).await;
}

/// Without credentials only the sign-in operations answer: no data, no schema, no
/// suggestions; the refusal is the same whatever was asked.
#[tokio::test]
async fn anonymous_callers_reach_only_the_sign_in_operations() {
    let (system, _dir, created) = seeded_system(2).await;
    let url = system.public.url();
    let client = reqwest::Client::new();
    for query in [
        "{ accounts { totalCount } }",
        INTROSPECT,
        "{ __typename __type(name: \"Account\") { name } }",
        "{ __typename me { id } }",
        "query { ... on Query { orders { totalCount } } }",
        "mutation { createAccount(input: { name: \"x\" }) { id } }",
    ] {
        let (status, body) = gateway_as(&client, &url, None, query, json!({})).await;
        assert_eq!(
            (status, body["errors"][0]["extensions"]["code"].as_str()),
            (401, Some("UNAUTHENTICATED")),
            "{query}: {body}"
        );
        assert!(body.get("data").is_none(), "{query}: {body}");
    }
    let (_, body) = gateway_as(&client, &url, None, MISSPELT_FIELD, json!({})).await;
    assert!(
        !first_message(&body).contains("Did you mean"),
        "no suggestions without credentials: {body}"
    );
    assert!(
        !signed_in(&client, &url, "admin@crm.example")
            .await
            .is_empty()
    );
    finish(system, created).await;
}

/// Integrators that generate code from the schema get introspection by configuration.
#[tokio::test]
async fn introspection_follows_the_caller_kind_settings() {
    use crm_gateway::federation::engine::{CallerKind, Discovery, EngineConfig};
    let settings = crm_system::GatewaySettings {
        engine: EngineConfig {
            discovery: Discovery {
                introspection: vec![CallerKind::Internal, CallerKind::Integrator],
                suggestions: vec![CallerKind::Internal],
            },
            ..EngineConfig::default()
        },
        ..Default::default()
    };
    let (system, _dir, created) = system_with_settings(2, settings).await;
    let url = system.public.url();
    let client = reqwest::Client::new();
    let (_, key) = gateway(
        &client,
        &url,
        "mutation { createApiKey(input: { name: \"codegen\", role: \"sales\" }) { secret } }",
        json!({}),
    )
    .await;
    let key = key["data"]["createApiKey"]["secret"]
        .as_str()
        .expect("secret");
    let (status, body) = gateway_as(&client, &url, Some(key), INTROSPECT, json!({})).await;
    assert_eq!(
        (status, &body["data"]["__schema"]["queryType"]["name"]),
        (200, &json!("Query")),
        "{body}"
    );
    let (_, body) = gateway_as(&client, &url, Some(key), MISSPELT_FIELD, json!({})).await;
    assert!(!first_message(&body).contains("Did you mean"), "{body}");
    finish(system, created).await;
}

/// The gateway's own time (outside subgraph calls) is measured on executed requests, and
/// only the holder of the metrics token reads it.
#[tokio::test]
async fn metrics_are_for_the_metrics_token_only() {
    // The executor times subgraph calls only while its summary log target is on, as the
    // binary keeps it (the tests' one subscriber logs at the binary's default level).
    crate::logs::capture();
    let (system, _dir, created) = seeded_system(2).await;
    let url = system.public.url();
    let client = reqwest::Client::new();
    let (status, _) = gateway(&client, &url, "{ accounts { totalCount } }", json!({})).await;
    assert_eq!(status, 200);
    let metrics = metrics(&client, &url).await;
    let overhead_count: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("crm_gateway_overhead_seconds_count "))
        .and_then(|n| n.parse().ok())
        .expect("an overhead histogram");
    assert!(overhead_count >= 1, "{metrics}");
    for bearer in [
        None,
        Some("wrong"),
        Some(&*admin_bearer(&client, &url).await),
    ] {
        let mut request = client.get(format!("{url}/metrics"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.expect("metrics");
        assert_eq!(response.status(), 401, "{bearer:?}");
    }
    finish(system, created).await;

    // No token configured: not served at all.
    let (storage, _dir, created) = fresh_storage().await;
    let system = start_all_in_one(&storage, "127.0.0.1:0".parse().expect("addr"), None)
        .await
        .expect("start");
    let response = client
        .get(format!("{}/metrics", system.public.url()))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 404);
    finish(system, created).await;
}

/// Grouped counts (`statusCounts`, `stageCounts`) count the caller's own slice: for each
/// persona they equal the per-value `totalCount`s and sum to the total, and a supplier's
/// equal SQL over its orders.
#[tokio::test]
async fn grouped_counts_count_the_callers_slice() {
    let (system, _dir, created) = system_with_settings(40, Default::default()).await;
    let url = system.public.url();
    let client = reqwest::Client::new();
    let supplier = "supplier1-user@acme-components.example";
    let mut compared = 0;
    for email in [
        "admin@crm.example",
        "marketing@crm.example",
        supplier,
        "distributor1-user@northwind.example",
    ] {
        let token = signed_in(&client, &url, email).await;
        let (_, body) = gateway_as(
            &client,
            &url,
            Some(&token),
            "{ orders(first: 0) { totalCount statusCounts { value count } } \
               opportunities(first: 0) { totalCount stageCounts { value count } } }",
            json!({}),
        )
        .await;
        assert!(body.get("errors").is_none(), "{email}: {body}");
        for (list, field, filter) in [
            ("orders", "statusCounts", "status"),
            ("opportunities", "stageCounts", "stage"),
        ] {
            let groups = body["data"][list][field].as_array().expect("groups");
            let sum: i64 = groups
                .iter()
                .map(|g| g["count"].as_i64().expect("count"))
                .sum();
            assert_eq!(
                sum,
                body["data"][list]["totalCount"].as_i64().expect("total"),
                "{email} {list}"
            );
            for group in groups {
                let value = group["value"].as_str().expect("value");
                let (_, one) = gateway_as(
                    &client,
                    &url,
                    Some(&token),
                    &format!(
                        "{{ {list}(first: 0, filter: {{ {filter}: {value} }}) {{ totalCount }} }}"
                    ),
                    json!({}),
                )
                .await;
                assert_eq!(
                    one["data"][list]["totalCount"], group["count"],
                    "{email} {list} {value}"
                );
                compared += 1;
            }
        }
        if email == supplier {
            let partner = system
                .databases
                .identity
                .query_one_raw(sea_orm::Statement::from_string(
                    system.databases.identity.get_database_backend(),
                    format!("SELECT partner_id FROM users WHERE email = '{email}'"),
                ))
                .await
                .expect("sql")
                .expect("row")
                .try_get_by_index::<String>(0)
                .expect("partner");
            let db = &system.databases.order_visibility;
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    format!(
                        "SELECT o.status, COUNT(DISTINCT o.id) FROM orders o \
                         JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.id = l.product_id \
                         WHERE o.archived_at IS NULL AND l.archived_at IS NULL \
                         AND p.supplier_partner_id = '{partner}' GROUP BY o.status ORDER BY o.status"
                    ),
                ))
                .await
                .expect("sql");
            let expected: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "value": r.try_get_by_index::<String>(0).expect("status"),
                        "count": r.try_get_by_index::<i64>(1).expect("count"),
                    })
                })
                .collect();
            assert_eq!(
                body["data"]["orders"]["statusCounts"],
                json!(expected),
                "supplier's statuses by SQL"
            );
        }
        if email == "marketing@crm.example" {
            assert_eq!(
                body["data"]["orders"]["statusCounts"],
                json!([]),
                "marketing sees no orders"
            );
        }
    }
    assert!(compared > 10);
    finish(system, created).await;
}

/// A manual share the policy turns into nothing (to a supplier, under ACCESS-MATRIX.md) is
/// refused with a clear field error; one to a distributor is stored.
#[tokio::test]
async fn a_manual_share_must_give_the_partner_something() {
    let (system, _dir, created) = system_with_settings(20, Default::default()).await;
    let url = system.public.url();
    let client = reqwest::Client::new();
    let (_, found) = gateway(
        &client,
        &url,
        "{ accounts(first: 1) { nodes { id } } \
           suppliers: partners(first: 1, filter: { kind: SUPPLIER }) { nodes { id } } \
           distributors: partners(first: 1, filter: { kind: DISTRIBUTOR }) { nodes { id } } }",
        json!({}),
    )
    .await;
    let account = &found["data"]["accounts"]["nodes"][0]["id"];
    let grant = "mutation($a: ID!, $p: ID!) { grantAccountShare(input: { accountId: $a, partnerId: $p }) { id cause } }";
    let (_, refused) = gateway(
        &client,
        &url,
        grant,
        json!({ "a": account, "p": found["data"]["suppliers"]["nodes"][0]["id"] }),
    )
    .await;
    let error = &refused["errors"][0];
    assert_eq!(error["extensions"]["code"], "VALIDATION", "{refused}");
    assert_eq!(error["extensions"]["field"], "input.partnerId");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("gives a supplier nothing")
    );
    let (_, granted) = gateway(
        &client,
        &url,
        grant,
        json!({ "a": account, "p": found["data"]["distributors"]["nodes"][0]["id"] }),
    )
    .await;
    assert_eq!(
        granted["data"]["grantAccountShare"]["cause"], "manual_share",
        "{granted}"
    );
    finish(system, created).await;
}

/// Identical queries in flight at once share one execution, but only under the same
/// caller: two callers who send the same document at the same moment each get their own
/// slice; and a caller's query after its own write sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_queries_in_flight_are_shared_per_caller_and_never_across_callers() {
    let (system, _dir, created) = seeded_system(12).await;
    // Every answer below is compared with one taken first: the share rows the seed's
    // events build must be in place before it (a partner's page and count read at
    // different moments of that build disagree).
    system
        .settle_shares(std::time::Duration::from_secs(30))
        .await
        .expect("shares settle");
    let url = system.public.url();
    let client = reqwest::Client::new();
    let admin = admin_bearer(&client, &url).await;
    let supplier = signed_in(&client, &url, "supplier1-user@acme-components.example").await;
    // The same document for both: what it returns depends on who asks.
    let query = "{ me { id kind } accounts(first: 50) { totalCount nodes { id name } } }";
    let (_, admin_alone) = gateway_as(&client, &url, Some(&admin), query, json!({})).await;
    let (_, supplier_alone) = gateway_as(&client, &url, Some(&supplier), query, json!({})).await;
    assert_ne!(
        admin_alone, supplier_alone,
        "the test needs two callers who see different things"
    );
    assert!(admin_alone.get("errors").is_none(), "{admin_alone}");
    assert!(supplier_alone.get("errors").is_none(), "{supplier_alone}");
    let shared_before = shared_count(&client, &url).await;
    let mut requests = Vec::new();
    for i in 0..96 {
        let (client, url, query) = (client.clone(), url.clone(), query.to_owned());
        let (bearer, who) = if i % 2 == 0 {
            (admin.clone(), "admin")
        } else {
            (supplier.clone(), "supplier")
        };
        requests.push(tokio::spawn(async move {
            let (status, body) = gateway_as(&client, &url, Some(&bearer), &query, json!({})).await;
            (who, status, body)
        }));
    }
    for request in requests {
        let (who, status, body) = request.await.expect("request");
        assert_eq!(status, 200, "{body}");
        let expected = if who == "admin" {
            &admin_alone
        } else {
            &supplier_alone
        };
        assert_eq!(&body, expected, "{who} got someone else's answer");
    }
    let shared = shared_count(&client, &url).await - shared_before;
    assert!(
        shared > 0,
        "48 identical concurrent queries per caller: some must have shared an execution"
    );
    // A write, then the same query: the answer includes the write.
    let (_, created_account) = gateway_as(
        &client,
        &url,
        Some(&admin),
        "mutation { createAccount(input: { name: \"Aaa Shared Answers Ltd\", segment: SMB, tier: KEY, lifecycleStage: CUSTOMER }) { id } }",
        json!({}),
    )
    .await;
    let id = created_account["data"]["createAccount"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("created: {created_account}"))
        .to_owned();
    let (_, after) = gateway_as(
        &client,
        &url,
        Some(&admin),
        "{ accounts(first: 200) { nodes { id } } }",
        json!({}),
    )
    .await;
    assert!(after.to_string().contains(&id), "{after}");
    finish(system, created).await;
}

async fn shared_count(client: &reqwest::Client, url: &str) -> u64 {
    metrics(client, url)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("crm_gateway_shared_requests_total "))
        .and_then(|n| n.parse().ok())
        .expect("the shared-requests counter")
}

/// Posts `query` with `bearer` and returns the status, the `RateLimit-*` / `Retry-After`
/// headers by name, and the body.
async fn limited_post(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, std::collections::HashMap<String, String>, Value) {
    let response = crm_e2e::post_graphql(client, url, bearer, query, variables).await;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| {
            name.as_str().starts_with("ratelimit") || name.as_str() == "retry-after"
        })
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (status, headers, response.json().await.expect("json"))
}

/// The door's rate limits (in Redis when the tests run with it, in process otherwise):
/// each caller has its own budget of requests and of estimated cost; a refusal is 429 with
/// `RATE_LIMITED`, `Retry-After` and the headers, spends nothing, and touches no one else;
/// anonymous callers (signing in) are counted by their address.
#[tokio::test]
async fn callers_are_rate_limited_by_requests_and_by_cost_each_on_its_own_budget() {
    let limits = crm_gateway::rate_limit::RateLimits::parse(
        "partner=3:1000000,admin=100:500,anonymous=2:100000,source=off",
        std::time::Duration::from_secs(3600),
    )
    .expect("limits");
    let (system, _dir, created) = system_with(
        4,
        crm_gateway::federation::server::DoorConfig {
            rate_limits: Some(limits),
            ..Default::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let users = crm_identity::all_users(&system.databases.identity)
        .await
        .expect("users");
    let first = |kind: &str, role: &str| {
        let user = users
            .iter()
            .find(|u| u.kind == kind && u.roles == role)
            .unwrap_or_else(|| panic!("a {kind} {role}"));
        system.identity.issuer.issue(&user.id, None, 900)
    };
    let supplier = first("supplier", "partner_user");
    let distributor = first("distributor", "partner_user");
    let admin = first("internal", "admin");

    // Three requests, then refused with the wait until one comes back (20 min: a budget of
    // 3 refills over the hour).
    for left in ["2", "1", "0"] {
        let (status, headers, body) =
            limited_post(&client, &url, Some(&supplier), "{ me { id } }", json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            headers.get("ratelimit-limit").map(String::as_str),
            Some("3")
        );
        assert_eq!(
            headers.get("ratelimit-remaining").map(String::as_str),
            Some(left)
        );
        assert!(headers.contains_key("ratelimit-policy"), "{headers:?}");
        assert!(!headers.contains_key("retry-after"), "{headers:?}");
    }
    let (status, headers, body) =
        limited_post(&client, &url, Some(&supplier), "{ me { id } }", json!({})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );
    assert!(body.get("data").is_none(), "nothing ran: {body}");
    let wait: u64 = headers
        .get("retry-after")
        .and_then(|w| w.parse().ok())
        .expect("Retry-After");
    assert!((1100..=1200).contains(&wait), "{wait}");
    assert_eq!(
        headers.get("ratelimit-remaining").map(String::as_str),
        Some("0")
    );
    // Another partner's budget is its own.
    let (status, _, body) = limited_post(
        &client,
        &url,
        Some(&distributor),
        "{ me { id } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Cost: a page of 100 accounts costs more than the admin's whole budget of 500 less
    // the first page, so the second is refused while requests are left; the refusal spent
    // nothing, so a cheap request still fits.
    let page = "{ accounts(first: 100) { nodes { id name industry } } }";
    let (status, headers, body) = limited_post(&client, &url, Some(&admin), page, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let left: u64 = headers
        .get("ratelimit-cost-remaining")
        .and_then(|c| c.parse().ok())
        .expect("the cost left");
    let cost = 500 - left;
    assert!(
        cost > 250 && cost < 490,
        "the page's estimated cost: {cost}"
    );
    let (status, headers, body) = limited_post(&client, &url, Some(&admin), page, json!({})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        headers.get("ratelimit-remaining").map(String::as_str),
        Some("99")
    );
    let (status, headers, body) =
        limited_post(&client, &url, Some(&admin), "{ me { id } }", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers.get("ratelimit-remaining").map(String::as_str),
        Some("98")
    );

    // Signing in is anonymous: counted by address.
    let sign_in = "mutation($email: String!, $password: String!) { signIn(email: $email, password: $password) { accessToken } }";
    let attempt = json!({ "email": "nobody@example.com", "password": "wrong password" });
    for _ in 0..2 {
        let (status, _, body) = limited_post(&client, &url, None, sign_in, attempt.clone()).await;
        assert_ne!(status, 429, "{body}");
    }
    let (status, headers, body) = limited_post(&client, &url, None, sign_in, attempt).await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    finish(system, created).await;
}
