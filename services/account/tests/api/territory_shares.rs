//! Territory coverage kept as share rows (`crm_account::territory_shares`): the rows follow
//! accounts that move and partners whose coverage changes, and always equal a rebuild from
//! the accounts' territories and the partners' coverage.

use std::collections::BTreeSet;

use crm_account::entity::account_share;
use sea_orm::{EntityTrait, ExprTrait, QueryFilter, sea_query::Expr};
use serde_json::json;

use crate::support::AccountSteps;
use crm_testkit::{TestApp, id};

/// The kept territory rows: (account, partner, source).
async fn territory_rows(app: &TestApp) -> BTreeSet<(String, String, String)> {
    account_share::Entity::find()
        .filter(Expr::col(account_share::Column::Cause).eq("in_my_territory"))
        .all(&app.db)
        .await
        .expect("share rows")
        .into_iter()
        .map(|r| (r.account_id, r.partner_id, r.source.unwrap_or_default()))
        .collect()
}

/// The kept partner accounts (`crm_account::partner_accounts`): every column, as text.
async fn partner_accounts(app: &TestApp) -> Vec<Vec<Option<String>>> {
    use sea_orm::ConnectionTrait;
    let mut columns = vec![
        "partner_id".to_owned(),
        "account_id".to_owned(),
        "account_name".to_owned(),
    ];
    columns.extend(
        crm_migrations::account::partner_accounts::CAUSES
            .iter()
            .map(|c| crm_migrations::account::partner_accounts::until(c)),
    );
    let casts: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST({c} AS TEXT)"))
        .collect();
    let sql = format!(
        "SELECT {} FROM partner_accounts ORDER BY partner_id, account_id",
        casts.join(", ")
    );
    let backend = app.db.get_database_backend();
    app.db
        .query_all_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .expect("partner accounts")
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| row.try_get_by_index::<Option<String>>(i).expect("a text"))
                .collect()
        })
        .collect()
}

/// The kept partner accounts must equal what a refresh of every pair makes from the share
/// rows.
async fn check_partner_accounts(app: &TestApp) -> Vec<Vec<Option<String>>> {
    let kept = partner_accounts(app).await;
    assert_eq!(
        crm_account::partner_accounts::drift(&app.db)
            .await
            .expect("drift"),
        (0, 0),
        "no drift: {kept:?}"
    );
    let txn = crm_service_common::db::begin_write(&app.db)
        .await
        .expect("txn");
    crm_account::partner_accounts::refresh(&txn, sea_orm::sea_query::Condition::all())
        .await
        .expect("refresh");
    crm_service_common::db::commit(txn).await.expect("commit");
    assert_eq!(
        partner_accounts(app).await,
        kept,
        "the kept partner accounts equal a refresh from the share rows"
    );
    kept
}

/// The rows must equal what a rebuild makes, and be `expected`.
async fn check(app: &TestApp, expected: &[(&str, &str, &str)]) {
    check_partner_accounts(app).await;
    let kept = territory_rows(app).await;
    let want: BTreeSet<(String, String, String)> = expected
        .iter()
        .map(|(a, p, t)| {
            (
                (*a).to_owned(),
                (*p).to_owned(),
                crm_account::territory_shares::source_of(t),
            )
        })
        .collect();
    assert_eq!(kept, want, "the kept territory share rows");
    crm_account::territory_shares::rebuild(&app.db)
        .await
        .expect("rebuild");
    assert_eq!(
        territory_rows(app).await,
        kept,
        "a rebuild makes the same rows"
    );
}

#[tokio::test]
async fn territory_share_rows_follow_accounts_and_coverage() {
    let app = crate::support::spawn().await;
    let (fr, uk) = (
        app.create_territory("FR").await,
        app.create_territory("UK").await,
    );
    let paris = id(&app
        .create_account("Paris Shop", json!({ "territoryId": fr }))
        .await);
    let leeds = app
        .create_account("Leeds Shop", json!({ "territoryId": uk }))
        .await;
    let nowhere = id(&app.create_account("Nowhere Shop", json!({})).await);
    let partner = app.ok("mutation { createPartner(input: { name: \"Atlantic Trade\", kind: DISTRIBUTOR, tier: GOLD }) { id } }", json!({})).await["createPartner"].clone();
    let p = id(&partner);
    check(&app, &[]).await;

    let set = "mutation($id: ID!, $v: Int!, $t: [ID!]!) { setPartnerTerritories(partnerId: $id, version: $v, territoryIds: $t) { version } }";
    app.ok(set, json!({ "id": p, "v": 1, "t": [uk] })).await;
    check(&app, &[(&id(&leeds), &p, &uk)]).await;

    // The account moves to France: its row follows.
    app.ok(
        "mutation($id: ID!, $v: Int!, $t: ID) { updateAccount(id: $id, version: $v, input: { territoryId: $t }) { version } }",
        json!({ "id": id(&leeds), "v": leeds["version"], "t": fr }),
    )
    .await;
    check(&app, &[]).await;

    // The partner takes on France too: both French accounts come.
    app.ok(set, json!({ "id": p, "v": 2, "t": [uk, fr] })).await;
    check(&app, &[(&id(&leeds), &p, &fr), (&paris, &p, &fr)]).await;

    // An account put in no territory leaves; one put in a covered territory arrives.
    app.ok(
        "mutation($id: ID!, $v: Int!, $t: ID) { updateAccount(id: $id, version: $v, input: { territoryId: $t }) { version } }",
        json!({ "id": nowhere, "v": 1, "t": uk }),
    )
    .await;
    check(
        &app,
        &[
            (&id(&leeds), &p, &fr),
            (&paris, &p, &fr),
            (&nowhere, &p, &uk),
        ],
    )
    .await;

    // The partner drops France.
    app.ok(set, json!({ "id": p, "v": 3, "t": [uk] })).await;
    check(&app, &[(&nowhere, &p, &uk)]).await;

    // A renamed account's copied name follows it.
    app.ok(
        "mutation($id: ID!, $v: Int!) { updateAccount(id: $id, version: $v, input: { name: \"Anywhere Shop\" }) { version } }",
        json!({ "id": nowhere, "v": 2 }),
    )
    .await;
    let kept = check_partner_accounts(&app).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0][2].as_deref(), Some("Anywhere Shop"));
    assert!(kept[0][4].is_some(), "granted by territory: {kept:?}");

    // A manual share with an expiry adds its cause and time to the pair; revoked, it goes.
    let until = "2999-01-01T00:00:00Z";
    let share = app
        .ok(
            "mutation($input: AccountShareInput!) { grantAccountShare(input: $input) { id version } }",
            json!({ "input": { "accountId": nowhere, "partnerId": p, "expiresAt": until } }),
        )
        .await["grantAccountShare"]
        .clone();
    let kept = check_partner_accounts(&app).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0][6]
            .as_deref()
            .is_some_and(|t| t.starts_with("2999-01-01")),
        "the manual share's expiry: {kept:?}"
    );
    let paris_share = app
        .ok(
            "mutation($input: AccountShareInput!) { grantAccountShare(input: $input) { id } }",
            json!({ "input": { "accountId": paris, "partnerId": p } }),
        )
        .await;
    assert_eq!(check_partner_accounts(&app).await.len(), 2, "{paris_share}");
    app.ok(
        "mutation($id: ID!, $v: Int!) { revokeAccountShare(id: $id, version: $v) { id } }",
        json!({ "id": share["id"], "v": share["version"] }),
    )
    .await;
    let kept = check_partner_accounts(&app).await;
    let nowhere_row = kept
        .iter()
        .find(|row| row[1].as_deref() == Some(nowhere.as_str()))
        .expect("still shared by territory");
    assert!(nowhere_row[6].is_none(), "revoked: {kept:?}");
}
