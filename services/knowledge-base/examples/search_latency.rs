//! Measures full-text search through the knowledge-base subgraph: a corpus of generated
//! articles, then `articles(filter: { text })` requests over HTTP, ranked by relevance,
//! reported as p50 / p99 latency. `DATABASE_URL` selects PostgreSQL, otherwise a
//! temporary SQLite file.
//!
//! `cargo run --release -p crm-knowledge-base --example search_latency -- [articles] [queries] [vocabulary]`
//!
//! With the default vocabulary (40 words) nearly every article matches every query: the
//! worst case for ranking. A larger vocabulary (e.g. 5000) makes queries selective, as in
//! a real knowledge base.

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::time::{Duration, Instant};

use crm_knowledge_base::domain::{ArticleStatus, encode_set};
use crm_knowledge_base::entity::article;
use crm_service_common::db::{DbTarget, connect};
use crm_service_common::seed::{World, epoch, insert_all};
use rand::Rng;
use serde_json::json;

const WORDS: &[&str] = &[
    "sensor",
    "valve",
    "pump",
    "motor",
    "firmware",
    "reset",
    "calibration",
    "pressure",
    "install",
    "warranty",
    "return",
    "shipment",
    "cable",
    "power",
    "supply",
    "board",
    "thermal",
    "gauge",
    "panel",
    "bracket",
    "crate",
    "noise",
    "update",
    "error",
    "code",
    "manual",
    "safety",
    "torque",
    "voltage",
    "filter",
    "seal",
    "bearing",
    "housing",
    "display",
    "battery",
    "charger",
    "mount",
    "clamp",
    "hose",
    "fitting",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let articles: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let queries: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(300);
    let vocabulary: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(WORDS.len());
    let words: Vec<String> = (0..vocabulary.max(1))
        .map(|n| match WORDS.get(n) {
            Some(word) => (*word).to_owned(),
            None => format!("term{n}"),
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let target = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => DbTarget {
            url,
            schema: format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        },
        _ => DbTarget::for_service(None, dir.path(), crm_knowledge_base::SERVICE),
    };
    let db = connect(&target).await?;
    crm_knowledge_base::migrate(&db).await?;

    let mut w = World::new(1);
    let text = |w: &mut World, n: usize| -> String {
        (0..n)
            .map(|_| w.pick(&words).as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut rows = Vec::with_capacity(articles);
    for _ in 0..articles {
        let (id, _, version, created_at, updated_at, archived_at) = w.columns("art", epoch());
        let body_words = w.rng.random_range(80..400);
        rows.push(article::ActiveModel {
            id,
            version,
            created_at,
            updated_at,
            archived_at,
            external_id: sea_orm::ActiveValue::Set(None),
            external_namespace: sea_orm::ActiveValue::Set(String::new()),
            title: sea_orm::ActiveValue::Set(text(&mut w, 5)),
            body: sea_orm::ActiveValue::Set(text(&mut w, body_words)),
            audiences: sea_orm::ActiveValue::Set("|PUBLIC|".into()),
            status: sea_orm::ActiveValue::Set(ArticleStatus::Published),
            revision: sea_orm::ActiveValue::Set(1),
            published_at: sea_orm::ActiveValue::Set(None),
            tags: sea_orm::ActiveValue::Set(encode_set([w.pick(&words).clone()])),
            product_ids: sea_orm::ActiveValue::Set(String::new()),
            // No working copy, no tiers: the columns' defaults.
            ..Default::default()
        });
    }
    let started = Instant::now();
    insert_all::<article::Entity, _>(&db, rows).await?;
    println!(
        "indexed {articles} articles in {:.0} ms ({})",
        started.elapsed().as_secs_f64() * 1e3,
        if target.is_postgres() {
            "PostgreSQL tsvector + GIN"
        } else {
            "SQLite FTS5"
        }
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    let app = crm_knowledge_base::app(
        db.clone(),
        crm_service_common::internal_auth::SubgraphAuth::Disabled,
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let query = "query($t: String) { articles(first: 20, filter: { text: $t }) { totalCount nodes { id title } } }";
    let mut latencies = Vec::with_capacity(queries);
    let mut matched = 0_u64;
    for n in 0..queries + 20 {
        let text = if n % 2 == 0 {
            w.pick(&words).clone()
        } else {
            format!("{} {}", w.pick(&words), w.pick(&words))
        };
        let started = Instant::now();
        let body: serde_json::Value = client
            .post(&url)
            .json(&json!({ "query": query, "variables": { "t": text } }))
            .send()
            .await?
            .json()
            .await?;
        let took = started.elapsed();
        anyhow::ensure!(body.get("errors").is_none(), "{body}");
        if n >= 20 {
            // The first 20 warm the connection and caches.
            latencies.push(took);
            matched += body["data"]["articles"]["totalCount"].as_u64().unwrap_or(0);
        }
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{queries} searches (1 or 2 words, first 20 by relevance, with totalCount): p50 {:.1} ms, p99 {:.1} ms, mean matches {}",
        ms(at(0.5)),
        ms(at(0.99)),
        matched / queries.max(1) as u64
    );
    Ok(())
}
