//! Measures what the gateway and its door add: `{ __typename }` (answered by the gateway
//! itself) anonymously and with a signed-in user's access token (the difference is the
//! door: the token's signature, and the user and session, read or remembered), then one
//! page of accounts sent to the account subgraph directly (with a gateway token) and
//! through the gateway signed in; sequentially (p50/p99) and with 16 concurrent clients
//! (requests per second; through the gateway, identical queries of one caller in flight
//! at once share an execution, so that column is not comparable with the direct one).
//! Starts the all-in-one on SQLite in a temporary directory (or `DATABASE_URL`).
//!
//! `cargo run --release -p crm-bench --example overhead -- [requests]`

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::time::{Duration, Instant};

use crm_service_common::internal_auth::Caller;
use crm_system::{DemoWorld, Storage, start_all_in_one};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir()?;
    let storage = Storage {
        database_url: std::env::var("DATABASE_URL").ok(),
        data_dir: dir.path().to_path_buf(),
        redis_url: None,
        event_namespace: None,
    };
    let system = start_all_in_one(
        &storage,
        "127.0.0.1:0".parse()?,
        Some(DemoWorld {
            seed: 1,
            accounts: 60,
        }),
    )
    .await?;
    let account = system
        .subgraphs
        .iter()
        .find(|(n, _)| n == "account")
        .map(|(_, r)| r.url())
        .expect("account");
    // The admin's rows on every path (an anonymous caller now sees none).
    let admin = Caller {
        partner_tier: None,
        subject: "usr_admin".into(),
        kind: "internal".into(),
        roles: vec!["admin".into()],
        ..Caller::anonymous()
    };
    let token = system.keys.signer().mint("account", &admin, "bench");
    let query = json!({ "query": "{ accounts(first: 10, orderBy: { field: NAME }) { nodes { id name segment } } }" });
    let user_token = system.identity.issuer.issue("usr_admin", None, 3_600);
    let client = reqwest::Client::new();
    let direct = format!("{account}/graphql");
    let gateway = format!("{}/graphql", system.public.url());

    // `{ __typename }` is answered by the gateway itself and is open to anonymous callers:
    // the difference between its two rows is the door's cost for a signed-in caller.
    let typename = json!({ "query": "{ __typename }" });
    for (label, url, bearer, query) in [
        ("door: anonymous", &gateway, None, &typename),
        (
            "door: signed in",
            &gateway,
            Some(user_token.clone()),
            &typename,
        ),
        (
            "direct to the subgraph",
            &direct,
            Some(token.clone()),
            &query,
        ),
        (
            "gateway, signed in",
            &gateway,
            Some(user_token.clone()),
            &query,
        ),
    ] {
        let send = || {
            let mut request = client.post(url).json(query);
            if let Some(bearer) = &bearer {
                request = request.bearer_auth(bearer);
            }
            request.send()
        };
        for _ in 0..100 {
            send().await?.bytes().await?;
        }
        let mut latencies = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let response = send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{label}: {}",
                response.status()
            );
            let body = response.bytes().await?;
            latencies.push(started.elapsed());
            anyhow::ensure!(!body.is_empty());
        }
        latencies.sort();
        let at =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let window = Duration::from_secs(3);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (client, url, bearer, query) = (
                client.clone(),
                url.to_owned(),
                bearer.clone(),
                query.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut done = 0_u64;
                while started.elapsed() < window {
                    let mut request = client.post(&url).json(&query);
                    if let Some(bearer) = &bearer {
                        request = request.bearer_auth(bearer);
                    }
                    if request.send().await.is_ok_and(|r| r.status().is_success()) {
                        done += 1;
                    }
                }
                done
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await?;
        }
        println!(
            "{label:<24} sequential p50 {:.3} ms  p99 {:.3} ms   16 concurrent: {:.0} req/s",
            ms(at(0.5)),
            ms(at(0.99)),
            total as f64 / started.elapsed().as_secs_f64()
        );
    }
    system.stop().await?;
    Ok(())
}
