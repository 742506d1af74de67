//! Snapshots (`insta`) of what the router shows every client: the public schema it
//! exports for our supergraph, and the body of each refusal it makes before any subgraph
//! is called. A change to either shows up as a reviewable diff under `tests/snapshots/`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use crm_gateway::federation::engine::{Engine, EngineConfig};
use crm_gateway::federation::server::{DoorConfig, router};
use serde_json::{Value, json};

const SUPERGRAPH: &str = include_str!("../../../schema/supergraph.graphql");

fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(SUPERGRAPH, EngineConfig::default()).expect("our supergraph plans"))
}

#[test]
fn the_public_schema_is_what_clients_see() {
    insta::assert_snapshot!("public_schema", engine().public_sdl());
}

/// The router on port 0, with no subgraph behind it (every case below is refused first).
async fn start() -> String {
    let app = router(
        engine(),
        DoorConfig {
            max_body_bytes: 2_048,
            ..DoorConfig::default()
        },
        Arc::new(|_: &str, _: &crm_contract::internal_auth::Caller| String::new()),
        None,
        None,
        None,
        None,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The status and body of a response, with its request id (new on every request) named
/// rather than shown.
async fn answer(response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let mut body: Value = response.json().await.expect("a JSON body");
    if let Some(errors) = body["errors"].as_array_mut() {
        for error in errors {
            if error["extensions"]["requestId"].is_string() {
                error["extensions"]["requestId"] = json!("[request id]");
            }
        }
    }
    json!({ "status": status, "body": body })
}

#[tokio::test]
async fn every_refusal_before_execution_has_a_stable_code_and_message() {
    let url = start().await;
    let graphql = format!("{url}/graphql");
    let client = reqwest::Client::new();
    let post = |body: Value| client.post(&graphql).json(&body).send();
    // Depth is counted before the fields are checked.
    let nested = format!("{{ {}leaf{} }}", "a { ".repeat(20), " }".repeat(20));
    let cases: Vec<(&str, reqwest::Response)> = vec![
        (
            "get_without_preflight",
            client
                .get(format!("{graphql}?query={{me{{id}}}}"))
                .send()
                .await
                .unwrap(),
        ),
        (
            "text_plain_body",
            client
                .post(&graphql)
                .header("content-type", "text/plain")
                .body("{\"query\":\"{ me { id } }\"}")
                .send()
                .await
                .unwrap(),
        ),
        (
            "batch",
            post(json!([{ "query": "{ me { id } }" }])).await.unwrap(),
        ),
        (
            "body_too_large",
            post(json!({ "query": format!("{{ me {{ id }} }} #{}", "x".repeat(4_096)) }))
                .await
                .unwrap(),
        ),
        (
            "not_a_graphql_request",
            post(json!({ "querry": "{ me { id } }" })).await.unwrap(),
        ),
        (
            "parse_error",
            post(json!({ "query": "{ me { id " })).await.unwrap(),
        ),
        (
            "unknown_field",
            post(json!({ "query": "{ accounts { nodes { nonsense } } }" }))
                .await
                .unwrap(),
        ),
        (
            "unknown_operation",
            post(json!({ "query": "query A { me { id } }", "operationName": "B" }))
                .await
                .unwrap(),
        ),
        ("too_deep", post(json!({ "query": nested })).await.unwrap()),
        (
            "credentials_without_a_directory",
            client
                .post(&graphql)
                .bearer_auth("not-a-token")
                .json(&json!({ "query": "{ me { id } }" }))
                .send()
                .await
                .unwrap(),
        ),
    ];
    for (name, response) in cases {
        insta::assert_json_snapshot!(name, answer(response).await);
    }
}
