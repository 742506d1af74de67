//! The order-visibility part of the demo world is deterministic and coherent with the
//! references it is given.

use std::collections::BTreeSet;

use crm_order_visibility::seed::{WorldRefs, seed};
use crm_service_common::events::outbox;

fn refs() -> WorldRefs {
    WorldRefs {
        suppliers: (1..=4).map(|n| format!("ptn_supplier{n}")).collect(),
        distributors: vec![
            ("ptn_north".into(), vec!["NORTH".into(), "EAST".into()]),
            ("ptn_south".into(), vec!["SOUTH".into()]),
        ],
        accounts: (0..30)
            .map(|n| {
                (
                    format!("acc_{n:02}"),
                    Some(["NORTH", "EAST", "SOUTH", "WEST"][n % 4].to_owned()),
                )
            })
            .collect(),
    }
}

const TABLES: &[&str] = &["products", "orders", "order_lines", "shipments"];

async fn fresh() -> (sea_orm::DatabaseConnection, Option<tempfile::TempDir>) {
    let (db, _, dir) = crm_testkit::fresh_database_of(&crm_order_visibility::subgraph()).await;
    (db, dir)
}

#[tokio::test]
async fn the_same_seed_gives_the_same_orders_and_another_seed_another() {
    let ((a, _da), (b, _db), (c, _dc)) = (fresh().await, fresh().await, fresh().await);
    let summary = seed(&a, 7, &refs()).await.expect("seed a");
    assert_eq!(seed(&b, 7, &refs()).await.expect("seed b"), summary);
    seed(&c, 8, &refs()).await.expect("seed c");
    let dump_a = crm_testkit::dump_records(&a, TABLES).await;
    assert_eq!(dump_a, crm_testkit::dump_records(&b, TABLES).await);
    assert_ne!(dump_a, crm_testkit::dump_records(&c, TABLES).await);
    assert_eq!(summary.products, 24);
    assert!(
        crm_order_visibility::seed::is_seeded(&a)
            .await
            .expect("seeded")
    );
}

#[tokio::test]
async fn seeded_orders_refer_only_to_the_given_world_and_publish_their_events() {
    use crm_order_visibility::entity::{order, order_line, product};
    use sea_orm::EntityTrait;
    let (db, _dir) = fresh().await;
    let refs = refs();
    let summary = seed(&db, 11, &refs).await.expect("seed");
    let products = product::Entity::find().all(&db).await.expect("products");
    assert!(
        products
            .iter()
            .all(|p| refs.suppliers.contains(&p.supplier_partner_id))
    );
    let orders = order::Entity::find().all(&db).await.expect("orders");
    let lines = order_line::Entity::find().all(&db).await.expect("lines");
    let accounts: BTreeSet<&String> = refs.accounts.iter().map(|(id, _)| id).collect();
    let distributors: BTreeSet<&String> = refs.distributors.iter().map(|(id, _)| id).collect();
    for o in &orders {
        assert!(accounts.contains(&o.account_id), "{}", o.account_id);
        if let Some(d) = &o.fulfilling_distributor_id {
            assert!(distributors.contains(d));
        }
        let mine: Vec<_> = lines.iter().filter(|l| l.order_id == o.id).collect();
        assert!(!mine.is_empty());
        let total: i64 = mine
            .iter()
            .filter(|l| l.status != crm_order_visibility::domain::LineStatus::Cancelled)
            .map(|l| i64::from(l.quantity) * l.unit_price_minor)
            .sum();
        assert_eq!(o.total_minor, total, "the total is the sum of the lines");
    }
    let suppliers_per_order: Vec<usize> = orders
        .iter()
        .map(|o| {
            lines
                .iter()
                .filter(|l| l.order_id == o.id)
                .filter_map(|l| products.iter().find(|p| p.id == l.product_id))
                .map(|p| &p.supplier_partner_id)
                .collect::<BTreeSet<_>>()
                .len()
        })
        .collect();
    assert!(
        suppliers_per_order.iter().any(|n| *n >= 2),
        "some orders mix suppliers"
    );
    let events = outbox::all(&db, crm_order_visibility::SERVICE)
        .await
        .expect("events");
    assert_eq!(events.len(), summary.orders + summary.shipments);
    for o in &orders {
        assert!(
            events
                .iter()
                .any(|e| e.aggregate_id == o.id && e.event_type.starts_with("order."))
        );
    }
}
