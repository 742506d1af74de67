//! The read log of partner access across a crash: the all-in-one killed with SIGKILL right
//! after a partner's read keeps every read older than the writer's interval (250 ms; here
//! one made a second before), may lose the last ones, and after a restart on the same data
//! directory its audit chains still verify with the key kept there.

use std::process::Stdio;
use std::time::Duration;

use crm_service_common::audit::entry;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::policy_propagation::{post, start, uuid_like};

const SIGN_IN: &str = "mutation { signIn(email: \"distributor1-admin@northwind.example\", password: \"demo-password\") { accessToken } }";

/// How many records the read log holds for reads by the operation `operation`.
async fn reads_by(data: &std::path::Path, operation: &str) -> usize {
    let target = crm_service_common::db::DbTarget::for_service(None, data, "account");
    let db = crm_service_common::db::connect(&target)
        .await
        .expect("the account database");
    let marker = format!("\"operation\":\"{operation}\"");
    let count = entry::Entity::find()
        .filter(entry::Column::Action.eq("read"))
        .all(&db)
        .await
        .expect("read entries")
        .into_iter()
        .filter(|e| e.detail.as_deref().is_some_and(|d| d.contains(&marker)))
        .count();
    db.close().await.ok();
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_only_the_reads_of_its_last_moments_and_the_chains_still_verify() {
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let namespace = format!("read-log-test-{}", uuid_like());
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("all");
    let args = ["--listen", "127.0.0.1:0"];
    let (mut crm, url) = start(&args, &data, &redis_url, &namespace, &[], "GraphQL API:").await;
    let signed_in = post(&client, &url, "", SIGN_IN, json!({})).await;
    let token = signed_in["data"]["signIn"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("a distributor signs in: {signed_in}"))
        .to_owned();
    const ACCOUNTS: &str = "{ accounts(first: 5) { nodes { id name } } }";
    let before = post(
        &client,
        &url,
        &token,
        &format!("query BeforeCrash {ACCOUNTS}"),
        json!({}),
    )
    .await;
    let read = before["data"]["accounts"]["nodes"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_else(|| panic!("the distributor reads accounts: {before}"));
    assert!(read > 0, "{before}");
    // Four times the writer's interval.
    tokio::time::sleep(Duration::from_secs(1)).await;
    post(
        &client,
        &url,
        &token,
        &format!("query AtCrash {ACCOUNTS}"),
        json!({}),
    )
    .await;
    crm.kill().await.expect("SIGKILL");

    assert_eq!(
        reads_by(&data, "BeforeCrash").await,
        read,
        "every read older than the writer's interval survives the crash"
    );

    // Restarted on the same data directory: the sealer seals what the crash left, and the
    // chains verify with the key the directory keeps.
    let (crm, _) = start(&args, &data, &redis_url, &namespace, &[], "GraphQL API:").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(crm);
    let verified = tokio::process::Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .env_remove("DATABASE_URL")
        .env("REDIS_URL", &redis_url)
        .env("CRM_EVENT_NAMESPACE", &namespace)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("crm audit verify runs");
    let printed = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(printed.contains("0 broken chain(s)"), "{printed}");
    assert!(
        printed.contains("account ptn_"),
        "the partner's chain is there: {printed}"
    );
}
