//! Measures an import of N accounts (default 1,000,000) through the API, as an integrator
//! runs one: the CSV staged in parts (`createImport`, `addImportRows`), a dry run
//! (`checkImport`), then the run (`runImport`), each timed to its end by polling the
//! import; rows per second for each. Every row is a new account with its own name and web
//! domain, so every row is looked for as a duplicate (by name key and domain) and created.
//! Starts the all-in-one with a small demo world on SQLite in a temporary directory (or
//! `DATABASE_URL`, with `REDIS_URL` for the bus), with the default request limit (1 MiB),
//! so the file goes in parts of 12,000 rows.
//!
//! `cargo run --release -p crm-bench --example import_rate -- [rows] [--skip-check]`

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::time::{Duration, Instant};

use crm_system::{DemoWorld, GatewaySettings, Storage, start_all_in_one_with};
use serde_json::{Value, json};

/// Rows per part sent (one request each): about 0.9 MB of CSV, under the 1 MiB a request
/// may carry (the gateway's default, and what every subgraph takes).
const PART_ROWS: usize = 12_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let skip_check = std::env::args().any(|a| a == "--skip-check");
    let dir = tempfile::tempdir()?;
    let storage = Storage {
        database_url: std::env::var("DATABASE_URL").ok(),
        data_dir: dir.path().to_path_buf(),
        redis_url: std::env::var("REDIS_URL").ok(),
        event_namespace: Some(format!("bench-import-{}", std::process::id())),
    };
    let mut settings = GatewaySettings::default();
    settings.door.rate_limits = None;
    let system = start_all_in_one_with(
        &storage,
        "127.0.0.1:0".parse()?,
        Some(DemoWorld {
            seed: 1,
            accounts: 60,
        }),
        settings,
    )
    .await?;
    let token = system.identity.issuer.issue("usr_admin", None, 24 * 3_600);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let graphql = format!("{}/graphql", system.public.url());
    let send = |query: &'static str, variables: Value| {
        let client = client.clone();
        let graphql = graphql.clone();
        let token = token.clone();
        async move {
            let body: Value = client
                .post(&graphql)
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            assert!(body.get("errors").is_none(), "{query}: {body}");
            body["data"].clone()
        }
    };
    let part = |from: usize, to: usize| {
        let mut csv = String::with_capacity((to - from) * 80 + 64);
        csv.push_str("externalId,name,domain,segment,tier,lifecycleStage\n");
        for i in from..to {
            csv.push_str(&format!(
                "B-{i:07},Benchmark Account {i:07},bench-{i:07}.example,SMB,STANDARD,PROSPECT\n"
            ));
        }
        csv
    };

    let started = Instant::now();
    let first = send(
        "mutation($c: String!) { createImport(input: { type: ACCOUNT, format: CSV, content: $c, name: \"bench\" }) { id } }",
        json!({ "c": part(0, PART_ROWS.min(rows)) }),
    )
    .await;
    let id = first["createImport"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let mut from = PART_ROWS.min(rows);
    while from < rows {
        let to = (from + PART_ROWS).min(rows);
        send(
            "mutation($id: ID!, $c: String!) { addImportRows(id: $id, content: $c) { rowCount } }",
            json!({ "id": id, "c": part(from, to) }),
        )
        .await;
        from = to;
    }
    let staged = started.elapsed();
    println!(
        "staged {rows} rows in {:.1} s ({:.0} rows/s)",
        staged.as_secs_f64(),
        rows as f64 / staged.as_secs_f64()
    );

    let passes: &[(&str, &'static str)] = if skip_check {
        &[("run", "mutation($id: ID!) { runImport(id: $id) { id } }")]
    } else {
        &[
            (
                "dry run",
                "mutation($id: ID!) { checkImport(id: $id) { id } }",
            ),
            ("run", "mutation($id: ID!) { runImport(id: $id) { id } }"),
        ]
    };
    for (label, mutation) in passes {
        let started = Instant::now();
        send(mutation, json!({ "id": id })).await;
        let mut last_report = Instant::now();
        let found = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let found = send(
                "query($id: ID!) { import(id: $id) { state processed created updated unchanged refused duplicates lastError } }",
                json!({ "id": id }),
            )
            .await["import"]
                .clone();
            if matches!(found["state"].as_str(), Some("CHECKED" | "DONE" | "FAILED")) {
                break found;
            }
            if last_report.elapsed() > Duration::from_secs(60) {
                last_report = Instant::now();
                let done = found["processed"].as_f64().unwrap_or_default();
                println!(
                    "  {label}: {done} rows after {:.0} s ({:.0} rows/s)",
                    started.elapsed().as_secs_f64(),
                    done / started.elapsed().as_secs_f64()
                );
            }
        };
        let elapsed = started.elapsed();
        println!(
            "{label}: {rows} rows in {:.1} s ({:.0} rows/s): {found}",
            elapsed.as_secs_f64(),
            rows as f64 / elapsed.as_secs_f64()
        );
    }
    let count = send("{ accounts { totalCount } }", json!({})).await;
    println!("accounts now: {}", count["accounts"]["totalCount"]);
    system.stop().await?;
    Ok(())
}
