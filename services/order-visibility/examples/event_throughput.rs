//! Measures the event path of the order-visibility service: orders written with their
//! outbox event, relay rounds to the bus, and a consumer applying each event with its
//! checkpoint. Storage and bus follow the usual configuration (`DATABASE_URL`, `REDIS_URL`;
//! a temporary SQLite file and the in-process bus without them).
//!
//! `cargo run --release -p crm-order-visibility --example event_throughput -- [orders]`

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::time::{Duration, Instant};

use crm_order_visibility::domain::OrderStatus;
use crm_order_visibility::entity::order;
use crm_service_common::db::{DbTarget, begin_write, commit, connect};
use crm_service_common::events::{Consumer, Event, EventBus, EventHandler, HttpFeed};
use crm_service_common::record::create;
use sea_orm::{ActiveValue::Set, DatabaseTransaction};

struct Discard;

impl EventHandler for Discard {
    async fn apply(
        &self,
        _txn: &DatabaseTransaction,
        _event: &Event,
    ) -> crm_service_common::ApiResult<()> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let orders: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir()?;
    let database_url = std::env::var("DATABASE_URL").ok();
    let schema = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let target = |service: &str| match &database_url {
        Some(url) => DbTarget {
            url: url.clone(),
            schema: format!("{schema}_{service}"),
        },
        None => DbTarget::for_service(None, dir.path(), service),
    };
    let db = connect(&target("orders")).await?;
    crm_order_visibility::migrate(&db).await?;
    let consumer_db = connect(&target("consumer")).await?;
    crm_order_visibility::migrate(&consumer_db).await?;
    let namespace = format!("bench-{schema}");
    let bus =
        EventBus::connect(std::env::var("REDIS_URL").ok().as_deref(), Some(&namespace)).await?;
    println!(
        "storage: {}, bus: {}, {orders} orders",
        if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        bus.describe()
    );

    let started = Instant::now();
    for n in 0..orders {
        let txn = begin_write(&db)
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
        create::<order::Entity, _>(&txn, None, |m, _| {
            m.number = Set(format!("SO-B{n:07}"));
            m.account_id = Set(format!("acc_{}", n % 500));
            m.status = Set(OrderStatus::Placed);
            m.placed_at = Set(None);
            m.currency = Set("EUR".into());
            m.total_minor = Set(0);
            m.fulfilling_distributor_id = Set(None);
            m.internal_note = Set(None);
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
        commit(txn)
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
    }
    report(
        "write order + outbox event (1 transaction each)",
        orders,
        started.elapsed(),
    );

    let relay = crm_order_visibility::subgraph().outbox_relay(db.clone(), bus.clone());
    let started = Instant::now();
    while relay
        .run_once()
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?
        > 0
    {}
    report("relay: position, publish, mark", orders, started.elapsed());

    // The feed is served by the service's HTTP app, as in production.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = crm_order_visibility::app(
        db.clone(),
        crm_service_common::internal_auth::SubgraphAuth::Disabled,
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let consumer = Consumer::new(
        "bench",
        crm_order_visibility::SERVICE,
        consumer_db.clone(),
        bus.clone(),
        HttpFeed::new(&url),
        Discard,
    );
    let started = Instant::now();
    let mut applied = 0;
    loop {
        let n = consumer
            .poll_once(Duration::ZERO)
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
        if n == 0 {
            break;
        }
        applied += n;
    }
    report(
        "consumer from the bus (apply + checkpoint)",
        applied,
        started.elapsed(),
    );

    let rebuild = Consumer::new(
        "rebuild",
        crm_order_visibility::SERVICE,
        consumer_db,
        bus,
        HttpFeed::new(&url),
        Discard,
    );
    let started = Instant::now();
    let rebuilt = rebuild
        .catch_up()
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    report(
        "consumer rebuild from the HTTP feed",
        rebuilt,
        started.elapsed(),
    );
    Ok(())
}

fn report(what: &str, n: usize, took: Duration) {
    let rate = n as f64 / took.as_secs_f64().max(1e-9);
    println!(
        "{what:<48} {n:>7} in {:>8.1} ms  = {rate:>9.0}/s",
        took.as_secs_f64() * 1e3
    );
}
