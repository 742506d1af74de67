//! The demo seed is deterministic: same seed, same world, row for row.

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// Every row of every table, in id order, as text.
async fn dump(db: &DatabaseConnection) -> Vec<String> {
    let mut rows = crm_testkit::dump_records(
        db,
        &[
            "territories",
            "partners",
            "accounts",
            "contacts",
            "interactions",
            "leads",
            "opportunities",
            "cases",
            "case_comments",
            "tasks",
            "notifications",
        ],
    )
    .await;
    let coverage = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT partner_id, territory_id FROM partner_territories ORDER BY 1, 2".to_owned(),
        ))
        .await
        .expect("select");
    for row in coverage {
        let (p, t): (String, String) = (
            row.try_get("", "partner_id").expect("p"),
            row.try_get("", "territory_id").expect("t"),
        );
        rows.push(format!("coverage {p} {t}"));
    }
    rows
}

#[tokio::test]
async fn the_same_seed_gives_the_same_world_and_another_seed_another() {
    let (a, _, _dir_a) = crate::support::fresh_database().await;
    let (b, _, _dir_b) = crate::support::fresh_database().await;
    let (c, _, _dir_c) = crate::support::fresh_database().await;
    let summary_a = crm_account::seed::seed(&a, 7, 20).await.expect("seed a");
    let summary_b = crm_account::seed::seed(&b, 7, 20).await.expect("seed b");
    crm_account::seed::seed(&c, 8, 20).await.expect("seed c");
    assert_eq!(summary_a, summary_b);
    assert_eq!(summary_a.accounts, 20);
    assert!(
        summary_a.contacts >= 40 && summary_a.interactions >= 60,
        "{summary_a:?}"
    );
    let (dump_a, dump_b, dump_c) = (dump(&a).await, dump(&b).await, dump(&c).await);
    assert!(!dump_a.is_empty());
    assert_eq!(dump_a, dump_b, "same seed, same rows, ids and timestamps");
    assert_ne!(dump_a, dump_c, "another seed gives another world");
    assert!(crm_account::seed::is_seeded(&a).await.expect("is_seeded"));
}
