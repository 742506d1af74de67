//! Workspace-level end-to-end tests of the `crm` system: its test targets
//! (`all_in_one.rs`, `identity.rs`) start the real processes' code in-process on port 0.
//! This library holds what they share: fresh storage (SQLite, or a new PostgreSQL
//! database when `DATABASE_URL` is set), a seeded system, and posting to its gateway.

pub mod demo;
pub mod live_client;
pub mod receiver;
pub mod world;

use std::net::SocketAddr;

use crm_system::{DemoWorld, Storage};
use serde_json::{Value, json};

/// Fresh storage: a temp directory of SQLite files, or a new PostgreSQL database when
/// `DATABASE_URL` is set (the all-in-one uses fixed schema names, so each test needs its
/// own database).
pub async fn fresh_storage() -> (Storage, tempfile::TempDir, Option<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut created = None;
    let database_url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let name = format!(
                "crm_e2e_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let fresh = crm_system::create_database(&url, &name)
                .await
                .expect("create database");
            created = Some(name);
            Some(fresh)
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
pub async fn drop_database(name: &str) {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        crm_system::drop_database(&url, name)
            .await
            .expect("drop database");
    }
}

pub async fn close(dbs: &crm_system::Databases) {
    dbs.account.close_by_ref().await.ok();
    dbs.order_visibility.close_by_ref().await.ok();
    dbs.knowledge_base.close_by_ref().await.ok();
    dbs.identity.close_by_ref().await.ok();
}

/// Writes a test's summary (counts per class, cases checked) to
/// `target/test-reports/<name>-<database>.txt`, which `.ci/run` prints after the tests: a
/// passing test's output is otherwise swallowed by the test runner.
pub fn report(name: &str, text: &str) {
    let database = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => "postgres",
        _ => "sqlite",
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-reports");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{name}-{database}.txt")), text);
    }
}

/// The demo admin's access token for the seeded system at `url` (signed in once per
/// system: the door refuses anonymous callers every row, as the policy says).
pub async fn admin_bearer(client: &reqwest::Client, url: &str) -> String {
    static TOKENS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    if let Some((_, token)) = TOKENS
        .lock()
        .expect("tokens")
        .iter()
        .find(|(u, _)| u == url)
    {
        return token.clone();
    }
    let token = signed_in(client, url, "admin@crm.example").await;
    TOKENS
        .lock()
        .expect("tokens")
        .push((url.to_owned(), token.clone()));
    token
}

/// A demo user's access token, signed in through the gateway with the demo password.
pub async fn signed_in(client: &reqwest::Client, url: &str, email: &str) -> String {
    let (_, session) = gateway_as(
        client,
        url,
        None,
        "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { accessToken } }",
        json!({ "e": email, "p": crm_identity::DEMO_PASSWORD }),
    )
    .await;
    session["data"]["signIn"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{email} signs in: {session}"))
        .to_owned()
}

/// Posts to the gateway as the demo admin with the given variables and returns the
/// status and body.
pub async fn gateway(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let bearer = admin_bearer(client, url).await;
    gateway_as(client, url, Some(&bearer), query, variables).await
}

/// Posts to the gateway as the holder of `bearer` (an access token or API key), and
/// returns the status and body.
pub async fn gateway_as(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let response = post_graphql(client, url, bearer, query, variables).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// Posts one operation to the gateway as the holder of `bearer`; the whole response, for
/// tests that read its headers.
pub async fn post_graphql(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    query: &str,
    variables: Value,
) -> reqwest::Response {
    let mut request = client
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.expect("send")
}

/// The bearer token the test systems' `/metrics` asks for (unless a test sets its own).
pub const METRICS_TOKEN: &str = "test-metrics-token";

/// A seeded all-in-one whose gateway (door and engine) is set as given; its metrics are
/// served to [`METRICS_TOKEN`] unless the settings name a token.
pub async fn system_with_settings(
    accounts: usize,
    mut settings: crm_system::GatewaySettings,
) -> (crm_system::AllInOne, tempfile::TempDir, Option<String>) {
    settings
        .door
        .metrics_token
        .get_or_insert_with(|| METRICS_TOKEN.to_owned());
    let (storage, dir, created) = fresh_storage().await;
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let world = DemoWorld { seed: 3, accounts };
    let system = crm_system::start_all_in_one_with(&storage, any_port, Some(world), settings)
        .await
        .expect("start");
    install_test_policy().await;
    (system, dir, created)
}

/// `CRM_TEST_POLICY=file`: the tests decide with the rules in that file instead of the
/// bundled ones (installed over any stored version). `tests/policy-mutants.sh` runs the
/// access proofs with each scope and mask of the policy weakened in turn, to show that
/// they fail for every one. Read by the test harness only, never by the product.
pub async fn install_test_policy() {
    let Some(path) = std::env::var_os("CRM_TEST_POLICY") else {
        return;
    };
    let rules = std::fs::read_to_string(&path).expect("CRM_TEST_POLICY names a readable file");
    let policy = crm_policies::Policy::stored(&rules, u64::MAX / 2)
        .await
        .expect("the test policy compiles");
    crm_policies::install(std::sync::Arc::new(policy));
}

/// Ends a test's system. First, whatever the test wrote, the share rows must be exactly
/// those the order feed implies (`crm shares check`): 0 drift.
pub async fn finish(system: crm_system::AllInOne, created: Option<String>) {
    let drift = system
        .share_drift(std::time::Duration::from_secs(30))
        .await
        .expect("the share rows settle");
    assert!(
        drift.is_none(),
        "share rows drifted from the order feed: {drift:?}"
    );
    close(&system.databases).await;
    system.stop().await.expect("stop");
    if let Some(name) = created {
        drop_database(&name).await;
    }
}
