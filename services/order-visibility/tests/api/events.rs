//! Domain events of the order-visibility service: the outbox is written exactly when the
//! business write commits, the relay publishes in commit order per order, and a consumer
//! stopped anywhere resumes without losing or double-applying an event. The bus is Redis
//! Streams when `REDIS_URL` is set, the in-process stand-in otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crm_order_visibility::entity::order;
use crm_service_common::events::bus::MemoryBus;
use crm_service_common::events::{Consumer, Event, EventBus, EventHandler, HttpFeed, outbox};
use crm_service_common::{ApiError, ApiResult};
use crm_testkit::{TestApp, id};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement};
use serde_json::{Value, json};

async fn spawn() -> TestApp {
    TestApp::start(&crm_order_visibility::subgraph()).await
}

/// Redis Streams under a namespace of this test's own, or the in-process bus.
async fn bus() -> EventBus {
    let namespace = format!("test-{}", uuid::Uuid::new_v4().simple());
    EventBus::connect(std::env::var("REDIS_URL").ok().as_deref(), Some(&namespace))
        .await
        .expect("event bus")
}

async fn recorded(db: &DatabaseConnection) -> Vec<Event> {
    outbox::all(db, crm_order_visibility::SERVICE)
        .await
        .expect("outbox")
}

async fn create_order(app: &TestApp, account: &str) -> Value {
    app.ok(
        "mutation($a: ID!) { createOrder(input: { accountId: $a, currency: \"EUR\" }) { id version } }",
        json!({ "a": account }),
    )
    .await["createOrder"]
        .clone()
}

async fn create_product(app: &TestApp, sku: &str, supplier: &str) -> String {
    id(&app
        .ok(
            "mutation($s: String!, $p: ID!) { createProduct(input: { sku: $s, name: $s, supplierPartnerId: $p, unitPrice: \"2\", currency: \"EUR\" }) { id } }",
            json!({ "s": sku, "p": supplier }),
        )
        .await["createProduct"])
}

#[tokio::test]
async fn an_event_is_recorded_if_and_only_if_the_business_write_commits() {
    let app = spawn().await;
    let order = create_order(&app, "acc_1").await;
    let events = recorded(&app.db).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "order.placed");
    assert_eq!(events[0].aggregate_id, id(&order));
    assert_eq!(events[0].payload["accountId"], "acc_1");

    // Refused writes record nothing: a forbidden move, a stale version, a bad value, a
    // line that fails after its row was inserted (wrong currency), a closed order.
    let product = create_product(&app, "P-1", "ptn_s").await;
    let after_product = recorded(&app.db).await.len();
    assert_eq!(after_product, 1, "products publish nothing");
    for (query, vars) in [
        (
            "mutation($id: ID!) { updateOrder(id: $id, version: 1, input: { status: DELIVERED }) { id } }",
            json!({ "id": id(&order) }),
        ),
        (
            "mutation($id: ID!) { updateOrder(id: $id, version: 7, input: { status: CONFIRMED }) { id } }",
            json!({ "id": id(&order) }),
        ),
        (
            "mutation($id: ID!) { updateOrder(id: $id, version: 1, input: { fulfillingDistributorId: \"bad id!\" }) { id } }",
            json!({ "id": id(&order) }),
        ),
        (
            "mutation($o: ID!, $p: ID!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: 1, unitPrice: \"1\", currency: \"USD\" }) { id } }",
            json!({ "o": id(&order), "p": product }),
        ),
    ] {
        app.error(query, vars).await;
    }
    assert_eq!(
        recorded(&app.db).await.len(),
        1,
        "no event from a refused write"
    );
    assert_eq!(
        app.count("order_lines").await,
        0,
        "the failed line was rolled back with its event"
    );

    // The same store write, rolled back or committed, at the level of the transaction.
    use crm_service_common::db::{begin_write, commit};
    use crm_service_common::record::create;
    let apply = |m: &mut order::ActiveModel, _: bool| -> ApiResult<()> {
        use sea_orm::ActiveValue::Set;
        m.number = Set("SO-TXN".into());
        m.account_id = Set("acc_2".into());
        m.status = Set(crm_order_visibility::domain::OrderStatus::Placed);
        m.placed_at = Set(None);
        m.currency = Set("EUR".into());
        m.total_minor = Set(0);
        m.fulfilling_distributor_id = Set(None);
        m.internal_note = Set(None);
        Ok(())
    };
    let txn = begin_write(&app.db).await.expect("begin");
    create::<order::Entity, _>(&txn, None, apply)
        .await
        .expect("create in txn");
    drop(txn); // rolled back
    assert_eq!(
        (recorded(&app.db).await.len(), app.count("orders").await),
        (1, 1)
    );
    let txn = begin_write(&app.db).await.expect("begin");
    create::<order::Entity, _>(&txn, None, apply)
        .await
        .expect("create in txn");
    commit(txn).await.expect("commit");
    assert_eq!(
        (recorded(&app.db).await.len(), app.count("orders").await),
        (2, 2)
    );
}

#[tokio::test]
async fn the_relay_publishes_each_order_in_commit_order_with_dense_positions() {
    let app = spawn().await;
    let bus = bus().await;
    let relay = crm_order_visibility::subgraph().outbox_relay(app.db.clone(), bus.clone());
    let a = create_order(&app, "acc_a").await;
    let b = create_order(&app, "acc_b").await;
    let mut products = Vec::new();
    for n in 0..12 {
        products.push(create_product(&app, &format!("P-{n}"), &format!("ptn_s{n}")).await);
    }
    // Lines for both orders written concurrently: each line adds a supplier.
    let add = "mutation($o: ID!, $p: ID!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: 1, unitPrice: \"2\", currency: \"EUR\" }) { id } }";
    let writes = products.iter().enumerate().map(|(n, p)| {
        let order = if n % 2 == 0 { id(&a) } else { id(&b) };
        app.ok(add, json!({ "o": order, "p": p }))
    });
    futures_util::future::join_all(writes).await;
    // A relay round publishes everything committed so far; run it until it is idle.
    while relay.run_once().await.expect("relay round") > 0 {}
    let published = bus
        .read(crm_order_visibility::SERVICE, 0, 1_000, Duration::ZERO)
        .await
        .expect("read");
    // Two orders placed, then per line the order's new snapshot and the line's note for
    // its supplier.
    assert_eq!(published.len(), 2 + 12 + 12);
    let positions: Vec<i64> = published.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=26).collect::<Vec<_>>(), "dense, in order");
    assert_eq!(
        published
            .iter()
            .filter(|e| e.event_type == "order.line_added")
            .count(),
        12
    );
    for order in [&a, &b] {
        let sizes: Vec<usize> = published
            .iter()
            .filter(|e| e.aggregate_id == id(order) && e.event_type != "order.line_added")
            .map(|e| {
                e.payload["supplierPartnerIds"]
                    .as_array()
                    .expect("suppliers")
                    .len()
            })
            .collect();
        assert_eq!(
            sizes,
            (0..=6).collect::<Vec<_>>(),
            "each event of an order sees the one before it"
        );
    }
    // Publishing again (a relay that crashed before marking) duplicates nothing.
    app.db
        .execute_unprepared("UPDATE outbox_events SET published_at = NULL")
        .await
        .expect("unmark");
    while relay.run_once().await.expect("relay round") > 0 {}
    let again = bus
        .read(crm_order_visibility::SERVICE, 0, 1_000, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(again, published);
    // The feed serves the same events by position.
    let feed = HttpFeed::new(&app.url);
    assert_eq!(feed.page(0, 1_000).await.expect("feed"), published);
    assert_eq!(
        feed.page(10, 2).await.expect("feed"),
        published[10..12].to_vec()
    );
}

/// A consumer's own database: checkpoints (from the service's migrations) and the
/// `applied_events` table the [`Recorder`] writes.
async fn consumer_database(name: &str) -> (DatabaseConnection, Option<tempfile::TempDir>) {
    let (db, _, dir) = crm_testkit::fresh_database(name, |db| async move {
        crm_order_visibility::migrate(&db).await
    })
    .await;
    db.execute_unprepared(
        "CREATE TABLE applied_events (event_id VARCHAR(64) PRIMARY KEY, position BIGINT NOT NULL)",
    )
    .await
    .expect("table");
    (db, dir)
}

/// Writes each applied event into `applied_events` (whose primary key refuses a second
/// application) and fails once, after writing, at `fail_at`: a crash in mid-apply.
struct Recorder {
    fail_at: Arc<AtomicI64>,
}

impl EventHandler for Recorder {
    fn apply(
        &self,
        txn: &DatabaseTransaction,
        event: &Event,
    ) -> impl Future<Output = ApiResult<()>> + Send {
        let fail = self
            .fail_at
            .compare_exchange(event.position, -1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        let insert = Statement::from_sql_and_values(
            txn.get_database_backend(),
            match txn.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "INSERT INTO applied_events (event_id, position) VALUES ($1, $2)"
                }
                _ => "INSERT INTO applied_events (event_id, position) VALUES (?, ?)",
            },
            [event.id.clone().into(), event.position.into()],
        );
        async move {
            txn.execute_raw(insert).await?;
            if fail {
                return Err(ApiError::internal("simulated crash while applying"));
            }
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_consumer_that_stops_mid_stream_resumes_without_losing_or_repeating_events() {
    let app = spawn().await;
    // The consumer's own database (with its checkpoint table) and its effects table.
    let (consumer_db, _dir) = consumer_database("consumer").await;
    let bus = bus().await;
    let relay = crm_order_visibility::subgraph().outbox_relay(app.db.clone(), bus.clone());
    for n in 0..10 {
        create_order(&app, &format!("acc_{n}")).await;
    }
    while relay.run_once().await.expect("relay round") > 0 {}

    let fail_at = Arc::new(AtomicI64::new(6));
    let consumer = |fail_at: &Arc<AtomicI64>, bus: &EventBus| {
        Consumer::new(
            "share-rows",
            crm_order_visibility::SERVICE,
            consumer_db.clone(),
            bus.clone(),
            HttpFeed::new(&app.url),
            Recorder {
                fail_at: fail_at.clone(),
            },
        )
    };
    let first = consumer(&fail_at, &bus);
    let crashed = first.poll_once(Duration::from_millis(200)).await;
    assert!(crashed.is_err(), "the handler failed at position 6");
    assert_eq!(first.checkpoint().await.expect("checkpoint"), 5);
    let applied = |db: DatabaseConnection| async move {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT position FROM applied_events ORDER BY position",
            ))
            .await
            .expect("rows");
        rows.iter()
            .map(|r| r.try_get::<i64>("", "position").expect("position"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        applied(consumer_db.clone()).await,
        vec![1, 2, 3, 4, 5],
        "the failed event left no trace"
    );

    // "Restart": a new consumer with the same name continues from its checkpoint; more
    // events arrive meanwhile.
    for n in 10..13 {
        create_order(&app, &format!("acc_{n}")).await;
    }
    while relay.run_once().await.expect("relay round") > 0 {}
    let second = consumer(&fail_at, &bus);
    let mut total = 0;
    loop {
        let n = second
            .poll_once(Duration::from_millis(100))
            .await
            .expect("poll");
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 8);
    assert_eq!(
        applied(consumer_db.clone()).await,
        (1..=13).collect::<Vec<_>>()
    );
    // Events delivered again (a relay re-publish, a replayed page) are skipped.
    let replay = HttpFeed::new(&app.url).page(0, 100).await.expect("feed");
    for event in &replay {
        assert!(
            !second.apply_one(event).await.expect("apply"),
            "position {} applied twice",
            event.position
        );
    }
    assert_eq!(applied(consumer_db.clone()).await.len(), 13);

    // A consumer further behind than the bus keeps reads the gap from the feed.
    let short = EventBus::Memory(MemoryBus::with_retention(3));
    short
        .publish(crm_order_visibility::SERVICE, &replay)
        .await
        .expect("publish");
    let (fresh_db, _dir2) = consumer_database("consumer2").await;
    let rebuild = Consumer::new(
        "rebuild",
        crm_order_visibility::SERVICE,
        fresh_db.clone(),
        short,
        HttpFeed::new(&app.url),
        Recorder {
            fail_at: Arc::new(AtomicI64::new(-1)),
        },
    );
    while rebuild.poll_once(Duration::ZERO).await.expect("poll") > 0 {}
    assert_eq!(
        applied(fresh_db.clone()).await,
        (1..=13).collect::<Vec<_>>(),
        "rebuilt from scratch through the feed"
    );
}

#[tokio::test]
async fn a_running_relay_and_consumer_deliver_new_orders_within_moments() {
    let app = spawn().await;
    let (consumer_db, _dir) = consumer_database("consumer").await;
    let bus = bus().await;
    let _relay = crm_order_visibility::subgraph()
        .outbox_relay(app.db.clone(), bus.clone())
        .spawn();
    let consumer = Consumer::new(
        "live",
        crm_order_visibility::SERVICE,
        consumer_db.clone(),
        bus,
        HttpFeed::new(&app.url),
        Recorder {
            fail_at: Arc::new(AtomicI64::new(-1)),
        },
    );
    let _running = consumer.spawn();
    for n in 0..5 {
        create_order(&app, &format!("acc_{n}")).await;
    }
    let count = || async {
        let row = consumer_db
            .query_one_raw(Statement::from_string(
                consumer_db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM applied_events",
            ))
            .await
            .expect("count")
            .expect("row");
        row.try_get::<i64>("", "n").expect("n")
    };
    let started = std::time::Instant::now();
    // Generous: this waits for delivery, it does not time it.
    while count().await < 5 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count().await, 5, "every order reached the consumer once");
}

/// Records only the events at even positions: the ones it does not want are passed over
/// without a transaction each, and its checkpoint still ends at the last event.
struct EvenOnly(Recorder);

impl EventHandler for EvenOnly {
    fn apply(
        &self,
        txn: &DatabaseTransaction,
        event: &Event,
    ) -> impl Future<Output = ApiResult<()>> + Send {
        self.0.apply(txn, event)
    }

    fn wants(&self, event: &Event) -> bool {
        event.position % 2 == 0
    }
}

#[tokio::test]
async fn a_consumer_passes_over_the_events_it_does_not_want_and_its_checkpoint_follows() {
    let app = spawn().await;
    let (consumer_db, _dir) = consumer_database("picky").await;
    let bus = bus().await;
    let relay = crm_order_visibility::subgraph().outbox_relay(app.db.clone(), bus.clone());
    for n in 0..7 {
        create_order(&app, &format!("acc_{n}")).await;
    }
    while relay.run_once().await.expect("relay round") > 0 {}
    let consumer = Consumer::new(
        "picky",
        crm_order_visibility::SERVICE,
        consumer_db.clone(),
        bus.clone(),
        HttpFeed::new(&app.url),
        EvenOnly(Recorder {
            fail_at: Arc::new(AtomicI64::new(-1)),
        }),
    );
    consumer.catch_up().await.expect("catch up");
    assert_eq!(consumer.checkpoint().await.expect("checkpoint"), 7);
    let rows = consumer_db
        .query_all_raw(Statement::from_string(
            consumer_db.get_database_backend(),
            "SELECT position FROM applied_events ORDER BY position",
        ))
        .await
        .expect("rows");
    let applied: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get::<i64>("", "position").expect("position"))
        .collect();
    assert_eq!(applied, vec![2, 4, 6]);
    // Nothing is applied twice when the stream is read again.
    assert_eq!(consumer.catch_up().await.expect("again"), 0);
    assert_eq!(consumer.checkpoint().await.expect("checkpoint"), 7);
}
