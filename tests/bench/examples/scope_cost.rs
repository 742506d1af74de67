//! What authorization costs: (1) per request, the policy decision (a table look-up) and
//! the row filter built from it, for each persona, next to one Casbin `enforce` call; (2)
//! the latency of a scoped first page against the same query unscoped (an admin), at the
//! account and order subgraphs directly, for a small supplier, the largest supplier, a
//! distributor and the admin. Starts the all-in-one on SQLite in a temporary directory (or
//! `DATABASE_URL`) with a demo world of `accounts` accounts.
//!
//! `cargo run --release -p crm-bench --example scope_cost -- [accounts] [requests]`

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::time::{Duration, Instant};

use crm_service_common::access::{self, Action, Domain};
use crm_service_common::internal_auth::Caller;
use crm_service_common::principal::Principal;
use crm_system::{DemoWorld, Storage, start_all_in_one};
use serde_json::{Value, json};

fn caller(subject: &str, kind: &str, partner: Option<&str>, role: &str) -> Caller {
    Caller {
        partner_tier: None,
        subject: subject.into(),
        kind: kind.into(),
        partner_id: partner.map(str::to_owned),
        roles: vec![role.into()],
        policy_version: 0,
        session_id: None,
        source: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let accounts: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let requests: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(500);
    let dir = tempfile::tempdir()?;
    let storage = Storage {
        database_url: std::env::var("DATABASE_URL").ok(),
        data_dir: dir.path().to_path_buf(),
        redis_url: None,
        event_namespace: None,
    };
    let started = Instant::now();
    let system = start_all_in_one(
        &storage,
        "127.0.0.1:0".parse()?,
        Some(DemoWorld { seed: 7, accounts }),
    )
    .await?;
    system.settle_shares(Duration::from_secs(600)).await?;
    println!(
        "world: {accounts} accounts seeded and share rows settled in {:.1} s\n",
        started.elapsed().as_secs_f64()
    );

    // Personas from the seeded world: suppliers by how many order lines they have.
    let client = reqwest::Client::new();
    let url_of = |name: &str| format!("{}/graphql", system.subgraph_url(name).expect("subgraph"));
    let (account_url, order_url) = (url_of("account"), url_of("order-visibility"));
    let admin = caller("usr_admin", "internal", None, "admin");
    let post = |url: String, who: Caller, query: &'static str| {
        let client = client.clone();
        let token = system.keys.signer().mint(
            if url == account_url {
                "account"
            } else {
                "order-visibility"
            },
            &who,
            "bench",
        );
        async move {
            let body: Value = client
                .post(&url)
                .bearer_auth(token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            body
        }
    };
    let partners = post(
        account_url.clone(),
        admin.clone(),
        "{ partners(first: 200) { nodes { id kind } } }",
    )
    .await;
    let mut suppliers = Vec::new();
    let mut distributor = None;
    for p in partners["data"]["partners"]["nodes"]
        .as_array()
        .expect("partners")
    {
        let id = p["id"].as_str().expect("id").to_owned();
        if p["kind"] == "SUPPLIER" {
            let who = caller("bench", "supplier", Some(&id), "partner_user");
            let lines = post(order_url.clone(), who, "{ orderLines { totalCount } }").await;
            suppliers.push((
                lines["data"]["orderLines"]["totalCount"]
                    .as_i64()
                    .unwrap_or(0),
                id,
            ));
        } else if distributor.is_none() {
            distributor = Some(id);
        }
    }
    suppliers.sort();
    let small = suppliers.first().expect("a supplier").clone();
    let large = suppliers.last().expect("a supplier").clone();
    let distributor = distributor.expect("a distributor");
    let personas = [
        ("admin (unscoped)", admin.clone()),
        (
            "small supplier",
            caller("bench", "supplier", Some(&small.1), "partner_user"),
        ),
        (
            "largest supplier",
            caller("bench", "supplier", Some(&large.1), "partner_user"),
        ),
        (
            "distributor",
            caller("bench", "distributor", Some(&distributor), "partner_user"),
        ),
    ];

    // (1) Per-request authorization cost in the service: decide + build the filter.
    println!("## Authorization cost per request (decision + row filter), in process\n");
    println!("| persona | Account filter | Order filter |\n|---|---|---|");
    let iterations = 20_000;
    for (label, who) in &personas {
        let principal = Principal::from_caller(who);
        let at = access::now();
        let started = Instant::now();
        for _ in 0..iterations {
            access::visible::<crm_account::entity::account::Entity>(&principal, Action::Read, at)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
        }
        let account = started.elapsed() / iterations;
        let started = Instant::now();
        for _ in 0..iterations {
            access::visible::<crm_order_visibility::entity::order::Entity>(
                &principal,
                Action::Read,
                at,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
        }
        let order = started.elapsed() / iterations;
        println!("| {label} | {account:?} | {order:?} |");
    }
    let policy = crm_policies::current()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    for _ in 0..iterations {
        let _ = policy.decide(Domain::Supplier, "partner_user", "Order", Action::Read);
    }
    let lookup = started.elapsed() / iterations;
    let started = Instant::now();
    for _ in 0..iterations {
        let _ = policy.enforce(Domain::Supplier, "partner_user", "Order", Action::Read)?;
    }
    let enforce = started.elapsed() / iterations;
    println!(
        "\ncompiled decision look-up: {lookup:?}; one Casbin enforce() for comparison: {enforce:?}\n"
    );

    // (2) Scoped vs unscoped first page at the subgraphs.
    println!("## First page (50) at the subgraph, {requests} sequential requests each\n");
    println!(
        "| query | persona | rows visible | p50 | p99 | p50 / admin p50 |\n|---|---|---|---|---|---|"
    );
    for (name, label_of_query, url, query) in [
        (
            "accounts",
            "accounts + totalCount",
            account_url.clone(),
            "{ accounts(first: 50) { totalCount nodes { id name } } }",
        ),
        (
            "accounts",
            "accounts, page only",
            account_url.clone(),
            "{ accounts(first: 50) { nodes { id name } } }",
        ),
        (
            "orders",
            "orders + totalCount",
            order_url.clone(),
            "{ orders(first: 50) { totalCount nodes { id number } } }",
        ),
        (
            "orders",
            "orders, page only",
            order_url.clone(),
            "{ orders(first: 50) { nodes { id number } } }",
        ),
    ] {
        let mut admin_p50 = None;
        for (label, who) in &personas {
            let counted = post(
                url.clone(),
                who.clone(),
                if name == "accounts" {
                    "{ accounts { totalCount } }"
                } else {
                    "{ orders { totalCount } }"
                },
            )
            .await;
            let visible = counted["data"][name]["totalCount"].as_i64().unwrap_or(-1);
            for _ in 0..50 {
                post(url.clone(), who.clone(), query).await;
            }
            let mut latencies = Vec::with_capacity(requests);
            for _ in 0..requests {
                let started = Instant::now();
                post(url.clone(), who.clone(), query).await;
                latencies.push(started.elapsed());
            }
            latencies.sort();
            let p50 = percentile(&latencies, 0.5);
            let ratio = p50.as_secs_f64() / admin_p50.get_or_insert(p50).as_secs_f64();
            println!(
                "| {label_of_query} | {label} | {visible} | {p50:?} | {:?} | {ratio:.2}x |",
                percentile(&latencies, 0.99)
            );
        }
    }
    system.stop().await?;
    Ok(())
}
