//! The supplier demand view against the running API. A supplier's expected demand comes
//! from opportunities it may not read, so the test builds a week where one customer stands
//! alone in its territory beside six in another, then reads the view every way the API
//! offers (each territory, each product, several periods) as the supplier and checks:
//! - every published expected number equals the sum, over the opportunities an
//!   administrator reads, of quantity × probability in the cells it claims to sum, and is
//!   built from at least k accounts;
//! - the same group reads the same in every view (filters choose, never re-sum);
//! - no combination of everything published isolates a cell of fewer than k accounts (the
//!   lone customer's in particular), by linear algebra over all views (`crm_oracle::demand`);
//! - its own lines equal the order lines of its product, week by week and by territory;
//! - other parties: a distributor and marketing are refused, another supplier's id yields
//!   nothing, and sales reads the supplier's view with the same numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use crm_e2e::demo::Demo;
use crm_oracle::demand::{Cell, Truth, recoverable, truth_of};
use serde_json::{Value, json};

const VIEW: &str = "query($s: ID, $f: NaiveDate, $w: Int, $t: ID, $p: ID) { supplierDemand(supplierId: $s, from: $f, weeks: $w, territoryId: $t, productId: $p) { minimumAccounts weeks horizon territoryIds products { productId expectedTotal { value suppressed } weeks { week ordered open backordered expected { value suppressed } } cells { week territoryId ordered open backordered expected { value suppressed } } } } }";

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

fn hundredths(figure: &Value) -> Option<i64> {
    if figure["suppressed"] == true {
        return None;
    }
    figure["value"].as_f64().map(|v| (v * 100.0).round() as i64)
}

/// A published number and the cells it sums.
#[derive(Debug)]
struct Published {
    cells: BTreeSet<Cell>,
    value: Option<i64>,
    what: String,
}

/// Every expected number of one view, with the cells each sums: a product's total (its
/// whole horizon, every territory), a week's margin (every territory) and a cell.
fn published(view: &Value) -> Vec<Published> {
    let horizon: Vec<String> = serde_json::from_value(view["horizon"].clone()).expect("horizon");
    let mut territories: Vec<Option<String>> =
        serde_json::from_value::<Vec<String>>(view["territoryIds"].clone())
            .expect("territories")
            .into_iter()
            .map(Some)
            .collect();
    territories.push(None);
    let mut out = Vec::new();
    for p in view["products"].as_array().expect("products") {
        let product = p["productId"].as_str().expect("id").to_owned();
        let cells_of = |weeks: &[String]| -> BTreeSet<Cell> {
            let mut cells = BTreeSet::new();
            for w in weeks {
                for t in &territories {
                    cells.insert((product.clone(), w.clone(), t.clone()));
                }
            }
            cells
        };
        out.push(Published {
            cells: cells_of(&horizon),
            value: hundredths(&p["expectedTotal"]),
            what: format!("{product} total"),
        });
        for w in p["weeks"].as_array().expect("weeks") {
            if w["expected"].is_null() {
                continue;
            }
            let week = w["week"].as_str().expect("week").to_owned();
            out.push(Published {
                cells: cells_of(std::slice::from_ref(&week)),
                value: hundredths(&w["expected"]),
                what: format!("{product} week {week}"),
            });
        }
        for c in p["cells"].as_array().expect("cells") {
            if c["expected"].is_null() {
                continue;
            }
            let cell = (
                product.clone(),
                c["week"].as_str().expect("week").to_owned(),
                c["territoryId"].as_str().map(str::to_owned),
            );
            out.push(Published {
                what: format!("{cell:?}"),
                cells: [cell].into(),
                value: hundredths(&c["expected"]),
            });
        }
    }
    out
}

/// Every node of the list `root` as `user` reads it, page by page.
async fn every(
    demo: &Demo,
    user: &crm_identity::user::Model,
    root: &str,
    arguments: &str,
    selection: &str,
) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = demo
            .ok(
                user,
                &format!("query($after: String) {{ {root}(first: 200, after: $after{arguments}) {{ pageInfo {{ endCursor hasNextPage }} nodes {{ {selection} }} }} }}"),
                json!({ "after": after }),
            )
            .await;
        nodes.extend(
            data[root]["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .cloned(),
        );
        if data[root]["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = data[root]["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_plans_with_its_lines_and_anonymous_expected_demand() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let supplier = demo.first("supplier", "partner_user");
    let own = supplier
        .partner_id
        .clone()
        .expect("a supplier's organisation");
    let today = chrono::Utc::now().date_naive();
    let this_week = monday_of(today);

    let setup = demo
        .ok(
            &admin,
            "query($s: ID!) { products(first: 10, filter: { supplierPartnerId: $s }, orderBy: { field: SKU, direction: ASC }) { nodes { id } } territories(first: 10, orderBy: { field: CODE, direction: ASC }) { nodes { id } } }",
            json!({ "s": own }),
        )
        .await;
    let product = setup["products"]["nodes"][0]["id"]
        .as_str()
        .expect("a product")
        .to_owned();
    let crowd_territory = setup["territories"]["nodes"][0]["id"].clone();
    let lone_territory = setup["territories"]["nodes"][1]["id"].clone();

    // Week +2: six customers in one territory and one alone in another.
    let close = (this_week + chrono::Duration::days(16)).to_string();
    let mut lone_opportunity = String::new();
    for n in 0..7 {
        let lone = n == 6;
        let account = demo
            .ok(
                &admin,
                "mutation($i: AccountInput!) { createAccount(input: $i) { id } }",
                json!({ "i": {
                    "name": format!("Demand Test Customer {n}"),
                    "segment": "SMB", "tier": "STANDARD", "lifecycleStage": "CUSTOMER",
                    "territoryId": if lone { lone_territory.clone() } else { crowd_territory.clone() },
                } }),
            )
            .await["createAccount"]["id"]
            .clone();
        let created = demo
            .ok(
                &admin,
                "mutation($i: OpportunityInput!) { createOpportunity(input: $i) { id products { productId quantity } } }",
                json!({ "i": {
                    "accountId": account, "name": format!("Demand test deal {n}"),
                    "stage": "PROPOSAL", "amount": "1000.00", "currency": "EUR",
                    "probability": if lone { 60 } else { 40 + n as i64 },
                    "expectedClose": close,
                    "products": [{ "productId": product, "quantity": if lone { 37 } else { 5 + n as i64 } }],
                } }),
            )
            .await["createOpportunity"]
            .clone();
        assert_eq!(
            created["products"][0]["quantity"],
            if lone { 37 } else { 5 + n }
        );
        if lone {
            lone_opportunity = created["id"].as_str().expect("id").to_owned();
        }
    }
    demo.system
        .settle_demand(Duration::from_secs(30))
        .await
        .expect("the demand replica catches up");

    // The truth: every open opportunity as an administrator reads it.
    let deals = every(
        &demo,
        &admin,
        "opportunities",
        ", filter: { openOnly: true }",
        "id probability expectedClose products { productId quantity } account { id territory { id } }",
    )
    .await;
    let mut truth: BTreeMap<Cell, Truth> = BTreeMap::new();
    let horizon_end = this_week + chrono::Duration::weeks(13);
    for deal in &deals {
        let Some(close) = deal["expectedClose"].as_str() else {
            continue;
        };
        let close: NaiveDate = close.parse().expect("a date");
        if close >= horizon_end {
            continue;
        }
        let week = monday_of(close.max(this_week)).to_string();
        for line in deal["products"].as_array().expect("lines") {
            let cell = (
                line["productId"].as_str().expect("id").to_owned(),
                week.clone(),
                deal["account"]["territory"]["id"]
                    .as_str()
                    .map(str::to_owned),
            );
            let t = truth.entry(cell).or_default();
            t.weighted +=
                line["quantity"].as_i64().expect("q") * deal["probability"].as_i64().expect("p");
            t.accounts
                .insert(deal["account"]["id"].as_str().expect("account").to_owned());
        }
    }
    let lone_cell: Cell = (
        product.clone(),
        monday_of(close.parse().expect("date")).to_string(),
        lone_territory.as_str().map(str::to_owned),
    );
    assert_eq!(
        truth[&lone_cell].accounts.len(),
        1,
        "the lone customer is alone in its cell"
    );
    assert!(!lone_opportunity.is_empty());

    // Every view the API offers the supplier.
    let territories: Vec<Value> = setup["territories"]["nodes"]
        .as_array()
        .expect("territories")
        .iter()
        .map(|t| t["id"].clone())
        .chain([Value::Null])
        .collect();
    let mut views = Vec::new();
    for from in [
        Value::Null,
        json!((this_week + chrono::Duration::weeks(2)).to_string()),
        json!((this_week - chrono::Duration::weeks(3)).to_string()),
    ] {
        for weeks in [1, 4, 13] {
            for territory in &territories {
                for product_filter in [Value::Null, json!(product)] {
                    let data = demo
                        .ok(
                            &supplier,
                            VIEW,
                            json!({ "f": from, "w": weeks, "t": territory, "p": product_filter }),
                        )
                        .await;
                    views.push(data["supplierDemand"].clone());
                }
            }
        }
    }
    let k = views[0]["minimumAccounts"].as_u64().expect("k") as usize;
    assert_eq!(k, 5);
    // Its own products only.
    for view in &views {
        for p in view["products"].as_array().expect("products") {
            assert!(
                setup["products"]["nodes"]
                    .as_array()
                    .expect("own")
                    .iter()
                    .any(|o| o["id"] == p["productId"]),
                "{} is not the supplier's",
                p["productId"]
            );
        }
    }

    let mut seen: BTreeMap<BTreeSet<Cell>, Option<i64>> = BTreeMap::new();
    for view in &views {
        for number in published(view) {
            if let Some(previous) = seen.get(&number.cells) {
                assert_eq!(
                    *previous, number.value,
                    "{} reads differently in two views",
                    number.what
                );
            }
            seen.insert(number.cells.clone(), number.value);
            let t = truth_of(&truth, &number.cells);
            if let Some(value) = number.value {
                assert_eq!(
                    value, t.weighted,
                    "{}: the view says {value}, the rows {}",
                    number.what, t.weighted
                );
                assert!(
                    t.accounts.len() >= k,
                    "{} is published from {} accounts",
                    number.what,
                    t.accounts.len()
                );
            }
        }
    }
    // The lone customer's cell is hidden, and so is its crowded neighbour (the week's
    // margin minus the neighbour would be the lone customer's weight).
    let crowd_cell: Cell = (
        product.clone(),
        lone_cell.1.clone(),
        crowd_territory.as_str().map(str::to_owned),
    );
    assert_eq!(seen.get(&BTreeSet::from([lone_cell.clone()])), Some(&None));
    assert_eq!(seen.get(&BTreeSet::from([crowd_cell.clone()])), Some(&None));
    let week_of_lone: BTreeSet<Cell> = seen
        .keys()
        .find(|cells| {
            cells.len() > 1
                && cells.contains(&lone_cell)
                && cells.iter().all(|c| c.1 == lone_cell.1)
        })
        .cloned()
        .expect("the lone customer's week");
    assert!(
        seen[&week_of_lone].is_some(),
        "seven customers make the week's margin public; truth {:?}",
        truth_of(&truth, &week_of_lone)
    );

    // The attacker's algebra over everything published: no cell of fewer than k accounts
    // (with any) comes out.
    let rows: Vec<BTreeSet<Cell>> = seen
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(cells, _)| cells.clone())
        .collect();
    let small: Vec<Cell> = truth
        .iter()
        .filter(|(_, t)| !t.accounts.is_empty() && t.accounts.len() < k)
        .map(|(cell, _)| cell.clone())
        .collect();
    assert!(small.contains(&lone_cell));
    assert_eq!(
        recoverable(&rows, &small),
        Vec::<Cell>::new(),
        "small cells recoverable by differencing"
    );

    // Its own lines: the order lines of its product, by the week each is due.
    let lines = every(
        &demo,
        &admin,
        "orderLines",
        &format!(", filter: {{ productId: \"{product}\" }}"),
        "quantity status expectedDate order { status placedAt archivedAt account { territory { id } } }",
    )
    .await;
    let default_view = &demo.ok(&supplier, VIEW, json!({ "p": product })).await["supplierDemand"];
    assert_eq!(default_view["weeks"].as_array().expect("weeks").len(), 13);
    let mut expected_lines: BTreeMap<(String, Option<String>), (i64, i64, i64)> = BTreeMap::new();
    for line in &lines {
        let order = &line["order"];
        if !order["archivedAt"].is_null()
            || matches!(order["status"].as_str(), Some("DRAFT" | "CANCELLED"))
        {
            continue;
        }
        let due = match line["expectedDate"].as_str() {
            Some(d) => d.parse::<NaiveDate>().expect("date"),
            None => match order["placedAt"].as_str() {
                Some(t) => chrono::DateTime::parse_from_rfc3339(t)
                    .expect("time")
                    .date_naive(),
                None => continue,
            },
        };
        let week = monday_of(due);
        if week < this_week || week >= horizon_end {
            continue;
        }
        let status = line["status"].as_str().expect("status");
        let q = line["quantity"].as_i64().expect("q");
        let e = expected_lines
            .entry((
                week.to_string(),
                order["account"]["territory"]["id"]
                    .as_str()
                    .map(str::to_owned),
            ))
            .or_default();
        if status != "CANCELLED" {
            e.0 += q;
        }
        if matches!(status, "OPEN" | "CONFIRMED" | "BACKORDERED") {
            e.1 += q;
        }
        if status == "BACKORDERED" {
            e.2 += q;
        }
    }
    let p = &default_view["products"][0];
    assert_eq!(p["productId"], product.as_str());
    for cell in p["cells"].as_array().expect("cells") {
        let key = (
            cell["week"].as_str().expect("w").to_owned(),
            cell["territoryId"].as_str().map(str::to_owned),
        );
        let (ordered, open, backordered) = expected_lines.remove(&key).unwrap_or_default();
        assert_eq!(
            (
                cell["ordered"].as_i64(),
                cell["open"].as_i64(),
                cell["backordered"].as_i64()
            ),
            (Some(ordered), Some(open), Some(backordered)),
            "own lines of {key:?}"
        );
    }
    assert!(
        expected_lines.values().all(|v| *v == (0, 0, 0)),
        "lines the view left out: {expected_lines:?}"
    );

    // Other parties.
    let distributor = demo.first("distributor", "partner_user");
    let marketing = demo.first("internal", "marketing");
    for refused in [&distributor, &marketing] {
        let body = demo.send(refused, VIEW, json!({})).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{body}"
        );
    }
    let other_supplier = demo
        .users
        .iter()
        .find(|u| u.kind == "supplier" && u.partner_id.as_deref() != Some(own.as_str()))
        .expect("another supplier's user");
    let theirs = demo.ok(other_supplier, VIEW, json!({ "s": own })).await;
    assert_eq!(
        theirs["supplierDemand"]["products"],
        json!([]),
        "another supplier's id yields nothing"
    );
    let sales = demo.first("internal", "sales");
    let as_sales = demo
        .ok(&sales, VIEW, json!({ "s": own, "p": product }))
        .await;
    let as_supplier = demo.ok(&supplier, VIEW, json!({ "p": product })).await;
    assert_eq!(
        as_sales, as_supplier,
        "staff read the supplier's view with the same numbers"
    );

    // Closing the lone customer's deal takes it out of the plan. (The week's margin moves by
    // the deal's weight: an observer who knows one customer's deal changed, and when, learns
    // its weight from two readings; cell suppression does not defend against that.)
    let version = demo
        .ok(
            &admin,
            "query($id: ID!) { opportunity(id: $id) { version } }",
            json!({ "id": lone_opportunity }),
        )
        .await["opportunity"]["version"]
        .clone();
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { updateOpportunity(id: $id, version: $v, input: { stage: CLOSED_LOST }) { id } }",
        json!({ "id": lone_opportunity, "v": version }),
    )
    .await;
    demo.system
        .settle_demand(Duration::from_secs(30))
        .await
        .expect("settles");
    let after = demo.ok(&supplier, VIEW, json!({ "p": product })).await;
    let week_margin = after["supplierDemand"]["products"][0]["weeks"]
        .as_array()
        .expect("weeks")
        .iter()
        .find(|w| w["week"] == lone_cell.1.as_str())
        .cloned()
        .expect("the week");
    let before = seen[&week_of_lone].expect("published");
    assert_eq!(
        hundredths(&week_margin["expected"]),
        Some(before - 37 * 60),
        "{week_margin}"
    );
    demo.finish().await;
}
