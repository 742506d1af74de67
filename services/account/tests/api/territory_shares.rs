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

/// The rows must equal what a rebuild makes, and be `expected`.
async fn check(app: &TestApp, expected: &[(&str, &str, &str)]) {
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
}
