//! The door remembers the credentials it accepted, so a sign-out or a disabled user made
//! in one process must reach the doors of the others: a gateway of its own (`crm gateway
//! --directory` over the same directory) refuses a signed-out session's token within a
//! second of the sign-out made in the all-in-one, by message; and when the message is lost
//! (a session ended in the database with only the counter moved, as a dropped pub/sub
//! message leaves it), by the follower's periodic read.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::policy_propagation::{post, start, uuid_like};

const ME: &str = "{ me { id } }";
const SIGN_IN: &str = "mutation { signIn(email: \"sales@crm.example\", password: \"demo-password\") { accessToken } }";

/// The status the gateway at `url` answers `token` with.
async fn status(client: &reqwest::Client, url: &str, token: &str) -> u16 {
    client
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

/// Polls until the gateway refuses `token`; returns how long that took.
async fn until_refused(client: &reqwest::Client, url: &str, token: &str) -> Duration {
    let started = Instant::now();
    loop {
        if status(client, url, token).await == 401 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the gateway kept accepting an ended session's token"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_reaches_another_gateways_door_within_a_second_even_without_its_message() {
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let namespace = format!("door-test-{}", uuid_like());
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("all");
    let (_all_in_one, url) = start(
        &["--listen", "127.0.0.1:0"],
        &data,
        &redis_url,
        &namespace,
        &[],
        "GraphQL API:",
    )
    .await;
    // A second gateway over the same directory (the same SQLite files); its subgraphs are
    // not needed: the door decides before any of them is called.
    let supergraph = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schema/supergraph.graphql"
    );
    let (_gateway, gateway_url) = start(
        &[
            "gateway",
            "--supergraph",
            supergraph,
            "--directory",
            "--listen",
            "127.0.0.1:0",
        ],
        &data,
        &redis_url,
        &namespace,
        &[],
        "gateway listening",
    )
    .await;
    let sign_in = || async {
        let body = post(&client, &url, "", SIGN_IN, json!({})).await;
        body["data"]["signIn"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("sign in: {body}"))
            .to_owned()
    };

    // By message: signed out through the all-in-one's API.
    let token = sign_in().await;
    assert_ne!(status(&client, &gateway_url, &token).await, 401);
    assert_ne!(
        status(&client, &gateway_url, &token).await,
        401,
        "accepted again, now from the door's memory"
    );
    let out = post(&client, &url, &token, "mutation { signOut }", json!({})).await;
    assert_eq!(out["data"]["signOut"], true, "{out}");
    let by_message = until_refused(&client, &gateway_url, &token).await;
    assert!(by_message < Duration::from_secs(1), "took {by_message:?}");

    // Without the message: the session ends in the database and only the counter moves.
    let token = sign_in().await;
    assert_ne!(status(&client, &gateway_url, &token).await, 401);
    let identity = sea_orm::Database::connect(format!(
        "sqlite://{}?mode=rw",
        data.join("identity.db").display()
    ))
    .await
    .expect("the identity database");
    use sea_orm::ConnectionTrait;
    identity
        .execute_unprepared("UPDATE sessions SET revoked_at = created_at WHERE revoked_at IS NULL")
        .await
        .expect("end the sessions");
    assert_ne!(
        status(&client, &gateway_url, &token).await,
        401,
        "nothing told the door yet: it still remembers (this is what the counter is for)"
    );
    let redis = redis::Client::open(redis_url.as_str()).expect("redis");
    let mut connection = redis::aio::ConnectionManager::new(redis)
        .await
        .expect("connect");
    let keys = crm_service_common::signal::SignalKeys::new(Some(&namespace), "directory");
    let _: () = redis::cmd("INCR")
        .arg(&keys.counter)
        .query_async(&mut connection)
        .await
        .expect("move the counter without a message");
    let by_check = until_refused(&client, &gateway_url, &token).await;
    assert!(by_check < Duration::from_secs(2), "took {by_check:?}");
    eprintln!("door propagation: by message {by_message:?}, by periodic check {by_check:?}");
    let _: () = redis::cmd("DEL")
        .arg(&keys.counter)
        .query_async(&mut connection)
        .await
        .expect("clean up");
}
