//! The all-in-one system as `crm` starts it: migrated, seeded on first start, serving the
//! public endpoint; restarted, it keeps its data and does not seed again.

use std::net::SocketAddr;

use crm_gateway::system::{DemoWorld, Storage, start_all_in_one};
use serde_json::{Value, json};

/// Fresh storage: a temp directory of SQLite files, or a new PostgreSQL database when
/// `DATABASE_URL` is set (the all-in-one uses fixed schema names, so each test needs its
/// own database).
async fn fresh_storage() -> (Storage, tempfile::TempDir, Option<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut created = None;
    let database_url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            use sea_orm::ConnectionTrait;
            let name = format!(
                "crm_e2e_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let admin = sea_orm::Database::connect(url.as_str())
                .await
                .expect("connect");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            admin.close().await.ok();
            created = Some(name.clone());
            let (base, query) = url
                .split_once('?')
                .map_or((url.as_str(), None), |(b, q)| (b, Some(q)));
            let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
            Some(match query {
                Some(q) => format!("{server}/{name}?{q}"),
                None => format!("{server}/{name}"),
            })
        }
        _ => None,
    };
    (
        Storage {
            database_url,
            data_dir: dir.path().join("data"),
            // Events go through Redis Streams when REDIS_URL is set (CI), in-process
            // otherwise.
            redis_url: std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()),
            // Fresh databases restart positions at 1: each needs streams of its own.
            event_namespace: Some(format!("test-{}", uuid::Uuid::new_v4().simple())),
        },
        dir,
        created,
    )
}

/// Drops a database `fresh_storage` created, once nothing uses it any more.
async fn drop_database(name: &str) {
    use sea_orm::ConnectionTrait;
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return;
    };
    let admin = sea_orm::Database::connect(url.as_str())
        .await
        .expect("connect");
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop database");
    admin.close().await.ok();
}

async fn post(client: &reqwest::Client, url: &str, query: &str) -> Value {
    client
        .post(format!("{url}/graphql"))
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

async fn close(dbs: &crm_gateway::system::Databases) {
    dbs.account.close_by_ref().await.ok();
    dbs.order_visibility.close_by_ref().await.ok();
    dbs.knowledge_base.close_by_ref().await.ok();
    dbs.identity.close_by_ref().await.ok();
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
    let seeded = demo.account.clone().expect("accounts seeded");
    assert_eq!(seeded.accounts, 25);
    assert_eq!(seeded.partners.len(), 7);
    assert!(
        demo.order_visibility
            .as_ref()
            .is_some_and(|o| o.orders > 0 && o.products == 24)
    );
    assert!(demo.knowledge_base.as_ref().is_some_and(|k| k.articles > 0));
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
        seeded.contacts as i64
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
    let users = crm_gateway::identity::all_users(&system.databases.identity)
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
    system.public.stop().await.expect("stop");

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
    again.public.stop().await.expect("stop");
    close(&again.databases).await;
    if let Some(name) = created {
        drop_database(&name).await;
    }
}

/// The demo world is one world across the three services, checked through their public
/// APIs (each subgraph under /subgraphs/<service>/ until the gateway lands).
#[tokio::test]
async fn the_demo_world_is_coherent_across_services() {
    let (storage, _dir, created) = fresh_storage().await;
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let world = DemoWorld {
        seed: 7,
        accounts: 30,
    };
    let system = start_all_in_one(&storage, any_port, Some(world))
        .await
        .expect("start");
    let client = reqwest::Client::new();
    let base = system.public.url();
    let account_url = format!("{base}/subgraphs/account");
    let orders_url = format!("{base}/subgraphs/order-visibility");
    let kb_url = format!("{base}/subgraphs/knowledge-base");

    let accounts = all_nodes(&client, &account_url, "accounts", "id territory { code }").await;
    let partners = all_nodes(
        &client,
        &account_url,
        "partners",
        "id kind territories { code }",
    )
    .await;
    let kind_of = |id: &Value| {
        partners
            .iter()
            .find(|p| &p["id"] == id)
            .map(|p| p["kind"].as_str().unwrap_or_default().to_owned())
    };
    let products = all_nodes(&client, &orders_url, "products", "id supplierPartnerId").await;
    assert_eq!(products.len(), 24, "six products per supplier");
    for product in &products {
        assert_eq!(
            kind_of(&product["supplierPartnerId"]).as_deref(),
            Some("SUPPLIER"),
            "{product}"
        );
    }
    let orders = all_nodes(
        &client,
        &orders_url,
        "orders",
        "id accountId status fulfillingDistributorId total { amount } lines(first: 200) { nodes { productId quantity unitPrice { amount } status } } shipments { nodes { status } }",
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

    let articles = all_nodes(
        &client,
        &kb_url,
        "articles",
        "id audiences status productIds",
    )
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

    // The seed's events leave through the relays: every service's feed fills up.
    for (url, kinds) in [
        (
            &account_url,
            ["partner.changed", "account.territory_changed"],
        ),
        (&orders_url, ["order.placed", "shipment.status_changed"]),
    ] {
        let mut seen = Vec::new();
        for _ in 0..100 {
            let page: Value = client
                .get(format!("{url}/events?after=0&limit=1000"))
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

    system.public.stop().await.expect("stop");
    close(&system.databases).await;
    if let Some(name) = created {
        drop_database(&name).await;
    }
}
