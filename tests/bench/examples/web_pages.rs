//! Measures the web UI's pages: each main page of the app and the portal, signed in through
//! the sign-in form, sequentially (p50/p95/p99) and with 16 concurrent clients (pages per
//! second), next to the API's `me` through the gateway — the floor every page pays, since
//! a page is the GraphQL calls it makes plus rendering. Starts the all-in-one on the demo
//! world, on SQLite in a temporary directory (or `DATABASE_URL`).
//!
//! `cargo run --release -p crm-bench --example web_pages -- [requests]`

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::time::{Duration, Instant};

use crm_system::{DemoWorld, Storage, start_all_in_one};
use serde_json::json;

/// A client that keeps the session cookie it was given.
async fn signed_in(base: &str, email: &str) -> anyhow::Result<(reqwest::Client, String)> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let form = client.get(format!("{base}/signin")).send().await?;
    let form_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let html = form.text().await?;
    let at = html.find("name=\"csrf\" value=\"").expect("csrf") + 19;
    let csrf = &html[at..at + html[at..].find('"').expect("end")];
    let signed = client
        .post(format!("{base}/signin"))
        .header("cookie", &form_cookie)
        .form(&[
            ("csrf", csrf),
            ("email", email),
            ("password", crm_identity::DEMO_PASSWORD),
        ])
        .send()
        .await?;
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .find(|c| c.starts_with("crm_session="))
        .expect("a session cookie");
    Ok((client, session))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn sequential(client: &reqwest::Client, cookie: &str, url: &str, n: usize) -> [Duration; 3] {
    let mut times = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let began = Instant::now();
        let response = client
            .get(url)
            .header("cookie", cookie)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{url}");
        response.bytes().await.expect("body");
        if i >= n / 10 {
            times.push(began.elapsed());
        }
    }
    times.sort_unstable();
    [
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        percentile(&times, 0.99),
    ]
}

async fn concurrent(client: &reqwest::Client, cookie: &str, url: &str, n: usize) -> f64 {
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, cookie, url) = (client.clone(), cookie.to_owned(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / 16 {
                let response = client
                    .get(&url)
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .expect("get");
                assert_eq!(response.status(), 200);
                response.bytes().await.expect("body");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    (n / 16 * 16) as f64 / began.elapsed().as_secs_f64()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
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
    let base = system.public.url();
    let (sales, sales_cookie) = signed_in(&base, "sales@crm.example").await?;
    let (supplier, supplier_cookie) =
        signed_in(&base, "supplier1-user@acme-components.example").await?;

    // The API floor: `me` through the gateway with the same user's access token.
    let api = reqwest::Client::new();
    let token: serde_json::Value = api
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "mutation { signIn(email: \"sales@crm.example\", password: \"demo-password\") { accessToken } }" }))
        .send()
        .await?
        .json()
        .await?;
    let token = token["data"]["signIn"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut me = Vec::new();
    for _ in 0..requests {
        let began = Instant::now();
        api.post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "{ me { id kind displayName email roles canSee policyVersion organization { id name } } }" }))
            .send()
            .await?
            .bytes()
            .await?;
        me.push(began.elapsed());
    }
    me.sort_unstable();

    let first_id = |html: &str, prefix: &str| -> String {
        let key = format!("data-id=\"{prefix}");
        let at = html.find(&key).expect("an id") + 9;
        html[at..at + html[at..].find('"').expect("end")].to_owned()
    };
    let accounts_html = sales
        .get(format!("{base}/app/accounts"))
        .header("cookie", &sales_cookie)
        .send()
        .await?
        .text()
        .await?;
    let orders_html = sales
        .get(format!("{base}/app/orders"))
        .header("cookie", &sales_cookie)
        .send()
        .await?
        .text()
        .await?;
    let account = first_id(&accounts_html, "acc_");
    let order = first_id(&orders_html, "ord_");
    let (support, support_cookie) = signed_in(&base, "support@crm.example").await?;
    let queue_html = support
        .get(format!("{base}/app/cases"))
        .header("cookie", &support_cookie)
        .send()
        .await?
        .text()
        .await?;
    let case = first_id(&queue_html, "case_");
    let pages: Vec<(&str, &reqwest::Client, &str, String)> = vec![
        (
            "sales: dashboard (my day, 2 grouped counts, 2 counts, interactions)",
            &sales,
            &sales_cookie,
            "/app".into(),
        ),
        (
            "sales: accounts list",
            &sales,
            &sales_cookie,
            "/app/accounts".into(),
        ),
        (
            "sales: account 360 (3 subgraphs)",
            &sales,
            &sales_cookie,
            format!("/app/accounts/{account}"),
        ),
        (
            "sales: orders list",
            &sales,
            &sales_cookie,
            "/app/orders".into(),
        ),
        (
            "sales: order detail",
            &sales,
            &sales_cookie,
            format!("/app/orders/{order}"),
        ),
        (
            "sales: pipeline board (my open deals)",
            &sales,
            &sales_cookie,
            "/app/pipeline".into(),
        ),
        (
            "sales: forecast (2 years by month)",
            &sales,
            &sales_cookie,
            "/app/forecast".into(),
        ),
        (
            "sales: notifications",
            &sales,
            &sales_cookie,
            "/app/notifications".into(),
        ),
        (
            "support: case queue (mine)",
            &support,
            &support_cookie,
            "/app/cases".into(),
        ),
        (
            "support: case page (comments, tasks)",
            &support,
            &support_cookie,
            format!("/app/cases/{case}"),
        ),
        (
            "sales: knowledge base",
            &sales,
            &sales_cookie,
            "/app/kb".into(),
        ),
        (
            "supplier: portal home",
            &supplier,
            &supplier_cookie,
            "/portal".into(),
        ),
        (
            "supplier: orders list",
            &supplier,
            &supplier_cookie,
            "/portal/orders".into(),
        ),
        (
            "supplier: accounts list",
            &supplier,
            &supplier_cookie,
            "/portal/accounts".into(),
        ),
    ];
    println!("| page | p50 ms | p95 ms | p99 ms | pages/s at 16 clients |");
    println!("|---|---|---|---|---|");
    println!(
        "| API floor: `me` through the gateway | {} | {} | {} | |",
        ms(percentile(&me, 0.5)),
        ms(percentile(&me, 0.95)),
        ms(percentile(&me, 0.99))
    );
    for (label, client, cookie, path) in pages {
        let url = format!("{base}{path}");
        let [p50, p95, p99] = sequential(client, cookie, &url, requests).await;
        let rate = concurrent(client, cookie, &url, requests).await;
        println!(
            "| {label} | {} | {} | {} | {rate:.0} |",
            ms(p50),
            ms(p95),
            ms(p99)
        );
    }
    system.stop().await?;
    Ok(())
}
