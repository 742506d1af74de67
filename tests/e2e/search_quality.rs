//! Global search quality on a fixed query set over the demo world: for each query, the
//! records that should come first are chosen by SQL, by a rule independent of the ranking
//! (a record whose name is the text, a contact of that full name or last name, an order of
//! that number, an article whose title has the word), and the top 5 of
//! `search(text, first: 5)` are compared with them. Precision at 5 is reported two ways:
//! relevant hits ÷ 5, and relevant hits ÷ min(5, relevant records) (a query with one right
//! answer can't fill five places). Written to `target/test-reports/search-quality-*.txt`.

use std::collections::BTreeSet;

use crm_e2e::{finish, gateway_as, report, signed_in, system_with_settings};
use crm_system::GatewaySettings;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<(String, String)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .expect("sql")
    .iter()
    .map(|r| {
        (
            r.try_get_by_index::<String>(0).expect("id"),
            r.try_get_by_index::<String>(1).expect("text"),
        )
    })
    .collect()
}

/// One query of the set: the type it is about, the text, and the records that should
/// come first.
struct Case {
    ty: &'static str,
    text: String,
    relevant: BTreeSet<String>,
}

/// The records of `all` (id, value) whose value satisfies `keep`.
fn matching(all: &[(String, String)], keep: impl Fn(&str) -> bool) -> BTreeSet<String> {
    all.iter()
        .filter(|(_, v)| keep(v))
        .map(|(id, _)| id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_search_puts_the_expected_records_first() {
    let (system, _dir, created) = system_with_settings(60, GatewaySettings::default()).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let token = signed_in(&client, &url, "admin@crm.example").await;
    let account_db = &system.databases.account;
    let accounts = rows(
        account_db,
        "SELECT id, name FROM accounts WHERE archived_at IS NULL ORDER BY id",
    )
    .await;
    let contacts = rows(
        account_db,
        "SELECT id, first_name || ' ' || last_name FROM contacts WHERE archived_at IS NULL ORDER BY id",
    )
    .await;
    let cases = rows(
        account_db,
        "SELECT id, subject FROM cases WHERE archived_at IS NULL ORDER BY id",
    )
    .await;
    let leads = rows(
        account_db,
        "SELECT id, company FROM leads WHERE archived_at IS NULL ORDER BY id",
    )
    .await;
    let opportunities = rows(
        account_db,
        "SELECT id, name FROM opportunities WHERE archived_at IS NULL ORDER BY id",
    )
    .await;
    let orders = rows(
        &system.databases.order_visibility,
        "SELECT id, number FROM orders WHERE archived_at IS NULL ORDER BY id",
    )
    .await;
    let articles = rows(
        &system.databases.knowledge_base,
        "SELECT id, title FROM articles WHERE archived_at IS NULL ORDER BY id",
    )
    .await;
    let lower = |s: &str| s.to_lowercase();
    let mut set = Vec::new();
    // Whole names: the record of that name (and any other of the same name).
    for (ty, all, step) in [
        ("accounts", &accounts, 7),
        ("contacts", &contacts, 11),
        ("cases", &cases, 5),
        ("leads", &leads, 9),
        ("opportunities", &opportunities, 13),
        ("orders", &orders, 17),
    ] {
        for (_, value) in all.iter().step_by(step).take(3) {
            set.push(Case {
                ty,
                text: value.clone(),
                relevant: matching(all, |v| lower(v) == lower(value)),
            });
        }
    }
    // Last names: every contact of that last name, before those that merely contain it.
    for (_, full) in contacts.iter().step_by(19).take(3) {
        let last = full.rsplit(' ').next().expect("a last name").to_owned();
        set.push(Case {
            ty: "contacts",
            relevant: matching(&contacts, |v| {
                lower(v.rsplit(' ').next().unwrap_or("")) == lower(&last)
            }),
            text: last,
        });
    }
    // The first word of an account name: accounts starting with it.
    for (_, name) in accounts.iter().step_by(23).take(3) {
        let word = name.split(' ').next().expect("a word").to_owned();
        set.push(Case {
            ty: "accounts",
            relevant: matching(&accounts, |v| lower(v).starts_with(&lower(&word))),
            text: word,
        });
    }
    // Topics: articles with the word in their title.
    for word in [
        "warranty",
        "installing",
        "troubleshooting",
        "firmware",
        "returns",
    ] {
        set.push(Case {
            ty: "articles",
            relevant: matching(&articles, |v| lower(v).contains(word)),
            text: word.to_owned(),
        });
    }
    let mut lines = vec![format!(
        "{:<14} {:<40} {:>8} {:>6} {:>9}",
        "type", "query", "relevant", "P@5", "P@5 capped"
    )];
    let (mut p5, mut capped) = (0.0, 0.0);
    for case in &set {
        assert!(
            !case.relevant.is_empty(),
            "{} {:?}: nothing to find",
            case.ty,
            case.text
        );
        let (status, body) = gateway_as(
            &client,
            &url,
            Some(&token),
            &format!(
                "query($t: String!) {{ search(text: $t, first: 5) {{ {} {{ nodes {{ id }} }} }} }}",
                case.ty
            ),
            json!({ "t": case.text }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let top: Vec<String> = body["data"]["search"][case.ty]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{} {:?}: {body}", case.ty, case.text))
            .iter()
            .filter_map(|n| n["id"].as_str().map(str::to_owned))
            .collect();
        let hits = top.iter().filter(|id| case.relevant.contains(*id)).count() as f64;
        let here = hits / 5.0;
        let here_capped = hits / (case.relevant.len().min(5) as f64);
        p5 += here;
        capped += here_capped;
        lines.push(format!(
            "{:<14} {:<40} {:>8} {:>6.2} {:>9.2}",
            case.ty,
            format!("{:?}", case.text),
            case.relevant.len(),
            here,
            here_capped
        ));
    }
    let n = set.len() as f64;
    lines.push(format!(
        "mean over {} queries: P@5 {:.2}, P@5 capped {:.2}",
        set.len(),
        p5 / n,
        capped / n
    ));
    let text = lines.join("\n");
    report("search-quality", &text);
    assert!(capped / n >= 0.95, "search quality fell:\n{text}");
    finish(system, created).await;
}
