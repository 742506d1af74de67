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
    let seeded = system.seeded.clone().expect("seeded on first start");
    assert_eq!(seeded.accounts, 25);
    assert_eq!(seeded.partners.len(), 7);
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
    again.databases.account.close().await.ok();
    again.databases.identity.close().await.ok();
    if let Some(name) = created {
        drop_database(&name).await;
    }
}
