//! Side channels around the row filters, closed as classes: filters over child rows the
//! caller cannot see, external ids another organisation uses, search ranking over hidden
//! articles, and shares that must follow every fact they derive from. Each test compares
//! what a partner learns with and without the hidden facts.

use std::time::Duration;

use crm_e2e::demo::Demo;
use crm_identity::user;
use serde_json::{Value, json};

const ORDERS_WITH: &str = "query($f: OrderFilter) { orders(first: 50, filter: $f) { totalCount statusCounts { value count } nodes { id } } }";

/// A supplier filtering orders by another supplier's product (or by the other supplier)
/// matches none of those lines, which it cannot see: nothing is found, counted or grouped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_filtering_by_another_suppliers_products_finds_and_counts_nothing() {
    let demo = Demo::start().await;
    let supplier = demo.first("supplier", "partner_user");
    let admin = demo.first("internal", "admin");
    let own = supplier.partner_id.clone().expect("partner");
    let products = demo
        .ok(
            &admin,
            "{ products(first: 200) { nodes { id supplierPartnerId } } }",
            json!({}),
        )
        .await;
    let products = products["products"]["nodes"]
        .as_array()
        .expect("products")
        .clone();
    let mine = products
        .iter()
        .find(|p| p["supplierPartnerId"] == own.as_str())
        .expect("a product of the supplier");
    let theirs = products
        .iter()
        .find(|p| p["supplierPartnerId"] != own.as_str())
        .expect("another supplier's product");
    // Positive control: by its own product it finds what the admin finds.
    let by_mine = json!({ "f": { "productId": mine["id"] } });
    let admin_mine = demo.ok(&admin, ORDERS_WITH, by_mine.clone()).await;
    let supplier_mine = demo.ok(&supplier, ORDERS_WITH, by_mine).await;
    assert_eq!(
        supplier_mine["orders"]["totalCount"], admin_mine["orders"]["totalCount"],
        "{supplier_mine}"
    );
    for filter in [
        json!({ "productId": theirs["id"] }),
        json!({ "supplierPartnerId": theirs["supplierPartnerId"] }),
    ] {
        let everyone = demo.ok(&admin, ORDERS_WITH, json!({ "f": filter })).await;
        assert!(
            everyone["orders"]["totalCount"].as_i64() > Some(0),
            "the admin finds some: {everyone}"
        );
        let seen = demo
            .ok(&supplier, ORDERS_WITH, json!({ "f": filter }))
            .await;
        assert_eq!(
            seen["orders"],
            json!({ "totalCount": 0, "statusCounts": [], "nodes": [] }),
            "{filter}"
        );
    }
    demo.finish().await;
}

const UPSERT: &str = "mutation($x: String!, $input: InteractionInput!) { upsertInteraction(externalId: $x, input: $input) { id externalId } }";

/// External ids are the writing organisation's own: a distributor writing with an id the
/// company already uses gets exactly the answer an unused id gives, and never reads the
/// company's id on the company's record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_id_another_organisation_uses_answers_like_an_unused_one() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let distributor = demo.first("distributor", "partner_user");
    let accounts = demo
        .ok(
            &distributor,
            "{ accounts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let account = accounts["accounts"]["nodes"][0]["id"].clone();
    let input = json!({
        "accountId": account,
        "channel": "EMAIL",
        "direction": "INBOUND",
        "subject": "Asked for a quote",
        "occurredAt": "2026-12-01T09:00:00Z",
        "partnerVisible": true,
    });
    let staff = demo
        .ok(&admin, UPSERT, json!({ "x": "CRM-7", "input": input }))
        .await["upsertInteraction"]
        .clone();
    let mut partner_input = input.clone();
    partner_input
        .as_object_mut()
        .expect("input")
        .remove("partnerVisible");
    let mut answers = Vec::new();
    for external in ["CRM-7", "CRM-8"] {
        let created = demo
            .ok(
                &distributor,
                UPSERT,
                json!({ "x": external, "input": partner_input }),
            )
            .await["upsertInteraction"]
            .clone();
        assert_ne!(
            created["id"], staff["id"],
            "its own record, not the company's"
        );
        answers.push(created["externalId"].clone());
        let again = demo
            .ok(
                &distributor,
                "mutation($x: String!, $input: InteractionInput!) { createInteraction(externalId: $x, input: $input) { id } }",
                json!({ "x": format!("{external}-b"), "input": partner_input }),
            )
            .await;
        assert!(again["createInteraction"]["id"].is_string());
    }
    assert_eq!(answers, [json!("CRM-7"), json!("CRM-8")]);
    let read = demo
        .ok(
            &distributor,
            "query($id: ID!) { interaction(id: $id) { externalId } }",
            json!({ "id": staff["id"] }),
        )
        .await;
    assert_eq!(
        read["interaction"]["externalId"],
        Value::Null,
        "the company's external id is not the partner's to read"
    );
    demo.finish().await;
}

const SEARCH: &str = "query($after: String) { articles(first: 2, after: $after, filter: { text: \"firmware\" }) { totalCount edges { cursor node { id } } } }";

/// A partner's search results, their order and the cursors (which carry the relevance)
/// are the same whether or not hidden drafts contain the words searched for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranking_and_cursors_do_not_depend_on_hidden_articles() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let supplier = demo.first("supplier", "partner_user");
    let pages = |who: user::Model| {
        let demo = &demo;
        async move {
            let mut pages = Vec::new();
            let mut after = Value::Null;
            for _ in 0..5 {
                let page = demo.ok(&who, SEARCH, json!({ "after": after })).await;
                let edges = page["articles"]["edges"].as_array().expect("edges").clone();
                after = edges
                    .last()
                    .map(|e| e["cursor"].clone())
                    .unwrap_or(Value::Null);
                pages.push(page);
                if after.is_null() {
                    break;
                }
            }
            pages
        }
    };
    let before = pages(supplier.clone()).await;
    assert!(
        before[0]["articles"]["totalCount"].as_i64() > Some(0),
        "the demo has firmware articles for suppliers: {before:?}"
    );
    for n in 0..6 {
        demo.ok(
            &admin,
            "mutation($input: ArticleInput!) { createArticle(input: $input) { id } }",
            json!({ "input": {
                "title": format!("Firmware firmware internal draft {n}"),
                "body": "firmware firmware firmware firmware",
                "audiences": ["INTERNAL"],
                "tags": ["firmware"],
            } }),
        )
        .await;
    }
    let after = pages(supplier).await;
    assert_eq!(after, before, "nothing about the hidden drafts shows");
    demo.finish().await;
}

/// When a product moves to another supplier, the shares its orders caused follow it: the
/// new supplier sees the accounts that ordered it, the old one keeps only the accounts it
/// has other reasons to see. (The test harness then finds 0 drift from the order feed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_follow_a_product_to_its_new_supplier() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let suppliers: Vec<user::Model> = demo
        .users
        .iter()
        .filter(|u| u.kind == "supplier" && u.roles == "partner_user")
        .cloned()
        .collect();
    let (old, new) = (&suppliers[0], &suppliers[1]);
    let (old_partner, new_partner) = (
        old.partner_id.clone().expect("partner"),
        new.partner_id.clone().expect("partner"),
    );
    let orders = demo
        .ok(
            &admin,
            "{ orders(first: 200, filter: { includeArchived: true }) { nodes { accountId lines(first: 50) { nodes { productId product { supplierPartnerId } } } } } }",
            json!({}),
        )
        .await;
    let orders = orders["orders"]["nodes"]
        .as_array()
        .expect("orders")
        .clone();
    let product = orders
        .iter()
        .flat_map(|o| o["lines"]["nodes"].as_array().cloned().unwrap_or_default())
        .find(|l| l["product"]["supplierPartnerId"] == old_partner.as_str())
        .map(|l| l["productId"].clone())
        .expect("an ordered product of the old supplier");
    let version = demo
        .ok(
            &admin,
            "query($id: ID!) { product(id: $id) { version } }",
            json!({ "id": product }),
        )
        .await["product"]["version"]
        .clone();
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!, $s: ID!) { updateProduct(id: $id, version: $v, input: { supplierPartnerId: $s }) { id } }",
        json!({ "id": product, "v": version, "s": new_partner }),
    )
    .await;
    demo.system
        .settle_shares(Duration::from_secs(30))
        .await
        .expect("shares settle");
    // What each supplier should see now, from the admin's view of the orders.
    let expected = |partner: &str| {
        let mut accounts: Vec<String> = orders
            .iter()
            .filter(|o| {
                o["lines"]["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|l| {
                        let supplier = if l["productId"] == product {
                            new_partner.as_str()
                        } else {
                            l["product"]["supplierPartnerId"]
                                .as_str()
                                .unwrap_or_default()
                        };
                        supplier == partner
                    })
            })
            .filter_map(|o| o["accountId"].as_str().map(str::to_owned))
            .collect();
        accounts.sort();
        accounts.dedup();
        accounts
    };
    for (who, partner) in [(old, &old_partner), (new, &new_partner)] {
        let seen = demo
            .ok(who, "{ accounts(first: 200) { nodes { id } } }", json!({}))
            .await;
        let mut seen: Vec<String> = seen["accounts"]["nodes"]
            .as_array()
            .expect("accounts")
            .iter()
            .filter_map(|a| a["id"].as_str().map(str::to_owned))
            .collect();
        seen.sort();
        assert_eq!(seen, expected(partner), "{partner}");
    }
    demo.finish().await;
}

/// The planner's estimate of a count rests on statistics over every row of the table: it is
/// given to callers who read every row, never to a scoped one, on every connection type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_callers_who_read_every_row_get_an_estimated_count() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let postgres = std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty());
    let query =
        "{ accounts { totalCount estimatedTotalCount } orders { totalCount estimatedTotalCount } }";
    let all = demo.ok(&admin, query, json!({})).await;
    for list in ["accounts", "orders"] {
        let exact = all[list]["totalCount"].as_i64().expect("a count");
        let estimate = &all[list]["estimatedTotalCount"];
        if postgres {
            let estimate = estimate.as_i64().expect("PostgreSQL estimates");
            // Only its presence is certain: a fresh test database may not be analysed yet.
            assert!(
                estimate > 0,
                "{list}: estimated {estimate} for {exact} rows"
            );
        } else {
            assert!(estimate.is_null(), "SQLite keeps no estimates: {estimate}");
        }
    }
    for kind in ["supplier", "distributor"] {
        let partner = demo.first(kind, "partner_user");
        let scoped = demo.ok(&partner, query, json!({})).await;
        for list in ["accounts", "orders"] {
            assert!(
                scoped[list]["totalCount"].as_i64().expect("a count") > 0,
                "{kind} sees some {list}"
            );
            assert!(
                scoped[list]["estimatedTotalCount"].is_null(),
                "{kind} {list}: {}",
                scoped[list]
            );
        }
    }
}
