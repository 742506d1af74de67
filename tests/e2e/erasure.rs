//! Erasure through the gateway of the seeded demo system, proved by a canary search: a
//! unique canary is planted in every place one person's data can land (the contact's
//! name, title and email, its field history, its consent evidence, an interaction, a case
//! and its comment, a task, a lead with the same email, and the email in an account's
//! note and that note's history, an order's note, an article's feedback; a partner's read
//! of the person, a data export of them, the search index), the person is erased, and the
//! canary is then found nowhere: no table of any service (by SQL), no byte of the SQLite
//! files (WAL included), no event on the bus (Redis streams, or in process) or in any
//! service's feed, no key of Redis, no search hit, no audit log value, no log line. The
//! audit chains still verify, and the share rows rebuilt from the feeds show 0 drift.

use std::time::Duration;

use crm_e2e::demo::Demo;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde_json::{Value, json};

const ERASURE: &str = "query($id: ID!) { dataErasure(id: $id) { id status email records erasedContactIds erasedLeadIds \
     progress { account { records } orderVisibility { records } knowledgeBase { records } } } }";

/// Waits until every service applied the erasure.
async fn applied_everywhere(demo: &Demo, admin: &crm_identity::user::Model, id: &Value) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let read = demo.ok(admin, ERASURE, json!({ "id": id })).await;
        last = read["dataErasure"].clone();
        let progress = &last["progress"];
        if last["status"] == "DONE"
            && ["account", "orderVisibility", "knowledgeBase"]
                .iter()
                .all(|s| !progress[s].is_null())
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the erasure was not applied everywhere: {last}");
}

/// The tables of one service's database whose rows hold `canary` (any column, as text).
async fn tables_holding(db: &DatabaseConnection, canary: &str) -> Vec<String> {
    let backend = db.get_database_backend();
    let listing = match backend {
        DatabaseBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let tables: Vec<String> = db
        .query_all_raw(Statement::from_string(backend, listing))
        .await
        .expect("the tables")
        .iter()
        .map(|row| row.try_get::<String>("", "name").expect("a name"))
        .collect();
    assert!(tables.len() > 5, "{tables:?}");
    let mut holding = Vec::new();
    for table in tables {
        let sql = match backend {
            DatabaseBackend::Postgres => format!(
                "SELECT count(*) AS n FROM \"{table}\" t WHERE lower(t::text) LIKE '%{canary}%'"
            ),
            _ => {
                let columns: Vec<String> = db
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("PRAGMA table_info(\"{table}\")"),
                    ))
                    .await
                    .expect("the columns")
                    .iter()
                    .map(|row| row.try_get::<String>("", "name").expect("a column"))
                    .collect();
                let any = columns
                    .iter()
                    .map(|c| format!("lower(CAST(\"{c}\" AS TEXT)) LIKE '%{canary}%'"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                format!("SELECT count(*) AS n FROM \"{table}\" WHERE {any}")
            }
        };
        let row = db
            .query_one_raw(Statement::from_string(backend, sql))
            .await
            .expect("a count")
            .expect("a row");
        if row.try_get::<i64>("", "n").expect("n") > 0 {
            holding.push(table);
        }
    }
    holding
}

/// The files under `dir` whose bytes hold `canary` in any letter case.
fn files_holding(dir: &std::path::Path, canary: &str) -> Vec<String> {
    let mut holding = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return holding;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            holding.extend(files_holding(&path, canary));
            continue;
        }
        let bytes = std::fs::read(&path)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if bytes
            .windows(canary.len())
            .any(|window| window == canary.as_bytes())
        {
            holding.push(path.display().to_string());
        }
    }
    holding
}

/// Every Redis key (of any test) whose value holds `canary`; none without Redis.
async fn redis_keys_holding(canary: &str) -> Vec<String> {
    let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        return Vec::new();
    };
    let client = redis::Client::open(url).expect("a redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .expect("keys");
    let mut holding = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("type");
        let mut command = match kind.as_str() {
            "stream" => redis::cmd("XRANGE"),
            "string" => redis::cmd("GET"),
            "hash" => redis::cmd("HGETALL"),
            "list" => redis::cmd("LRANGE"),
            "set" => redis::cmd("SMEMBERS"),
            "zset" => redis::cmd("ZRANGE"),
            _ => continue,
        };
        command.arg(&key);
        match kind.as_str() {
            "stream" => {
                command.arg("-").arg("+");
            }
            "list" | "zset" => {
                command.arg(0).arg(-1);
            }
            _ => {}
        }
        let dump: redis::Value = command
            .query_async(&mut conn)
            .await
            .unwrap_or(redis::Value::Nil);
        if format!("{dump:?}").to_lowercase().contains(canary) {
            holding.push(key);
        }
    }
    holding
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_persons_canary_is_found_nowhere_and_the_chains_still_verify() {
    // Every log line the process writes (this system's among them) is searched.
    let logs = crate::logs::capture();
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let distributor = demo.first("distributor", "partner_user");
    let seen = demo
        .ok(
            &distributor,
            "{ contacts(first: 1) { nodes { id accountId version } } }",
            json!({}),
        )
        .await;
    let contact = seen["contacts"]["nodes"][0]["id"].clone();
    let account = seen["contacts"]["nodes"][0]["accountId"].clone();
    let canary = format!("cnry{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let email = format!("{canary}@subject.example");

    // The person, their history, consents and activity.
    let version = |v: &Value, field: &str| v[field]["version"].clone();
    let read = demo
        .ok(
            &admin,
            "query($id: ID!) { contact(id: $id) { version } }",
            json!({ "id": contact }),
        )
        .await;
    let update_contact = "mutation($id: ID!, $v: Int!, $in: ContactInput!) { updateContact(id: $id, version: $v, input: $in) { version } }";
    let updated = demo
        .ok(
            &admin,
            update_contact,
            json!({ "id": contact, "v": version(&read, "contact"), "in": {
                "lastName": canary,
                "title": canary,
                "email": email,
                "consents": [{ "purpose": "MARKETING", "channel": "EMAIL", "granted": true, "source": "FORM", "evidence": format!("signed up as {canary}") }],
            } }),
        )
        .await;
    // The canary leaves the title, so it is only in the title's history.
    demo.ok(
        &admin,
        update_contact,
        json!({ "id": contact, "v": version(&updated, "updateContact"), "in": { "title": "Buyer" } }),
    )
    .await;
    demo.ok(
        &admin,
        "mutation($in: InteractionInput!) { createInteraction(input: $in) { id } }",
        json!({ "in": { "accountId": account, "contactId": contact, "channel": "EMAIL", "direction": "INBOUND", "subject": format!("Call from {canary}"), "body": canary, "occurredAt": "2026-12-01T09:00:00Z" } }),
    )
    .await;
    let case = demo
        .ok(
            &admin,
            "mutation($in: CaseInput!) { createCase(input: $in) { id } }",
            json!({ "in": { "accountId": account, "contactId": contact, "subject": canary, "description": canary, "priority": "LOW", "channel": "EMAIL" } }),
        )
        .await;
    demo.ok(
        &admin,
        "mutation($in: CaseCommentInput!) { createCaseComment(input: $in) { id } }",
        json!({ "in": { "caseId": case["createCase"]["id"], "body": format!("{canary} called again") } }),
    )
    .await;
    demo.ok(
        &admin,
        "mutation($in: TaskInput!) { createTask(input: $in) { id } }",
        json!({ "in": { "recordId": contact, "title": format!("Ring {canary}"), "notes": canary, "dueAt": "2027-01-10T09:00:00Z", "remindAt": null } }),
    )
    .await;
    demo.ok(
        &admin,
        "mutation($in: LeadInput!) { createLead(input: $in) { id } }",
        json!({ "in": { "firstName": "Dana", "lastName": canary, "email": email.to_uppercase(), "company": canary, "source": "WEB" } }),
    )
    .await;

    // Their email in other records' text, in every service (and in a note's history).
    let note = |n: u32| format!("Ask {email} first ({n}).");
    for n in 1..=2 {
        let acc = demo
            .ok(
                &admin,
                "query($id: ID!) { account(id: $id) { version } }",
                json!({ "id": account }),
            )
            .await;
        demo.ok(
            &admin,
            "mutation($id: ID!, $v: Int!, $n: String!) { updateAccount(id: $id, version: $v, input: { internalNote: $n }) { version } }",
            json!({ "id": account, "v": version(&acc, "account"), "n": note(n) }),
        )
        .await;
    }
    let orders = demo
        .ok(
            &admin,
            "{ orders(first: 1) { nodes { id version } } }",
            json!({}),
        )
        .await;
    let order = &orders["orders"]["nodes"][0];
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!, $n: String!) { updateOrder(id: $id, version: $v, input: { internalNote: $n }) { version } }",
        json!({ "id": order["id"], "v": order["version"], "n": format!("Deliver to {email}.") }),
    )
    .await;
    let articles = demo
        .ok(&admin, "{ articles(first: 1) { nodes { id } } }", json!({}))
        .await;
    demo.ok(
        &admin,
        "mutation($a: ID!, $c: String!) { giveArticleFeedback(articleId: $a, helpful: false, comment: $c) { id } }",
        json!({ "a": articles["articles"]["nodes"][0]["id"], "c": format!("Reply to {email}, please") }),
    )
    .await;
    // A partner reads them; an administrator exports them; search finds them.
    demo.ok(
        &distributor,
        "query($id: ID!) { contact(id: $id) { lastName title } }",
        json!({ "id": contact }),
    )
    .await;
    crm_service_common::audit::reads::flush_all().await;
    let export = demo
        .ok(
            &admin,
            "mutation($c: ID!) { requestDataExport(input: { contactId: $c }) { id } }",
            json!({ "c": contact }),
        )
        .await;
    let export_id = export["requestDataExport"]["id"].clone();
    let export_query = "query($id: ID!) { dataExport(id: $id) { status document } }";
    for _ in 0..200 {
        let read = demo
            .ok(&admin, export_query, json!({ "id": export_id }))
            .await;
        if read["dataExport"]["status"] == "DONE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let search = "query($t: String!) { search(text: $t, first: 20) { contacts { totalCount nodes { id } } leads { totalCount nodes { id } } } }";
    let found = demo.ok(&admin, search, json!({ "t": canary })).await;
    assert!(
        found["search"]["contacts"]["totalCount"].as_i64() >= Some(1),
        "{found}"
    );
    // Before: the canary is planted in each service's tables.
    for (name, db) in &demo.system.databases.all {
        let holding = tables_holding(db, &canary).await;
        if *name != crm_identity::SUBGRAPH {
            assert!(!holding.is_empty(), "{name}: nothing planted");
        }
    }

    // Erase by contact: the lead with the same email goes too.
    let erased = demo
        .ok(
            &admin,
            "mutation($c: ID!) { eraseDataSubject(input: { contactId: $c }) { id status requestedBy } }",
            json!({ "c": contact }),
        )
        .await;
    let erasure_id = erased["eraseDataSubject"]["id"].clone();
    assert_eq!(erased["eraseDataSubject"]["requestedBy"], admin.id.as_str());
    let done = applied_everywhere(&demo, &admin, &erasure_id).await;
    assert_eq!(done["erasedContactIds"], json!([contact]), "{done}");
    assert_eq!(done["erasedLeadIds"].as_array().map(Vec::len), Some(1));
    assert_eq!(done["email"], Value::Null);
    for service in ["orderVisibility", "knowledgeBase"] {
        assert!(
            done["progress"][service]["records"].as_i64() >= Some(1),
            "{service} scrubbed nothing: {done}"
        );
    }
    demo.system
        .settle_erasures(Duration::from_secs(30))
        .await
        .expect("every service applied the erasure");
    crm_service_common::audit::reads::flush_all().await;
    // The audit sealer chains what the erasure wrote (the chains must still verify).
    tokio::time::sleep(crm_service_common::audit::chain::SEAL_EVERY * 3).await;

    // The canary is nowhere: no table, no file, no event, no key, no hit, no log line.
    for (name, db) in &demo.system.databases.all {
        let holding = tables_holding(db, &canary).await;
        assert!(holding.is_empty(), "{name}: {holding:?} still hold it");
    }
    let files = files_holding(&demo.data_dir(), &canary);
    assert!(files.is_empty(), "the SQLite files hold it: {files:?}");
    for (name, _) in &demo.system.databases.all {
        let events = demo
            .system
            .bus
            .read(name, 0, 1_000_000, Duration::ZERO)
            .await
            .unwrap_or_default();
        let text = serde_json::to_string(&events).expect("events");
        assert!(!text.to_lowercase().contains(&canary), "the bus of {name}");
    }
    for producer in [
        crm_account::SUBGRAPH,
        crm_order_visibility::SUBGRAPH,
        "knowledge-base",
    ] {
        let url = demo
            .system
            .subgraph_url(producer)
            .expect("a running subgraph");
        let feed = crm_system::feed_of(&url, &demo.system.keys, producer, "erasure-check");
        let mut after = 0;
        loop {
            let page = feed.page(after, 1_000).await.expect("a feed page");
            let Some(last) = page.last() else { break };
            after = last.position;
            let text = serde_json::to_string(&page).expect("events");
            assert!(
                !text.to_lowercase().contains(&canary),
                "the feed of {producer}"
            );
        }
        assert!(after > 0, "{producer}'s feed was read");
    }
    let keys = redis_keys_holding(&canary).await;
    assert!(keys.is_empty(), "Redis keys hold it: {keys:?}");
    for text in [canary.as_str(), email.as_str()] {
        let found = demo.ok(&admin, search, json!({ "t": text })).await;
        assert_eq!(found["search"]["contacts"]["totalCount"], 0, "{found}");
        assert_eq!(found["search"]["leads"]["totalCount"], 0, "{found}");
    }

    // What remains: a tombstone, its history without values, the erasure in the log.
    let person = demo
        .ok(
            &admin,
            "query($id: ID!) { contact(id: $id) { firstName lastName email title archivedAt history(first: 200) { field valuesWithheld newValue } } }",
            json!({ "id": contact }),
        )
        .await;
    let person = &person["contact"];
    assert_eq!(person["firstName"], "[erased]", "{person}");
    assert_eq!(person["email"], Value::Null, "{person}");
    assert!(!person["archivedAt"].is_null(), "{person}");
    let history = person["history"].as_array().expect("history");
    assert!(
        history
            .iter()
            .any(|c| c["field"] == "title" && c["valuesWithheld"] == true),
        "{history:?}"
    );
    let log = demo
        .ok(
            &admin,
            "query($id: ID!) { auditLog(filter: { recordId: $id, action: ERASED }) { account { entries { action recordType } } } }",
            json!({ "id": contact }),
        )
        .await;
    assert_eq!(
        log["auditLog"]["account"]["entries"][0]["action"], "ERASED",
        "{log}"
    );
    let export = demo
        .ok(&admin, export_query, json!({ "id": export_id }))
        .await;
    assert_eq!(
        export["dataExport"],
        json!({ "status": "ERASED", "document": "{}" })
    );
    let verified = demo
        .ok(
            &admin,
            "{ auditVerification { account { intact } orderVisibility { intact } knowledgeBase { intact } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        verified["auditVerification"],
        json!({ "account": { "intact": true }, "orderVisibility": { "intact": true }, "knowledgeBase": { "intact": true } }),
        "the chains verify after the erasure"
    );
    let logged = logs.text();
    assert!(!logged.is_empty(), "the logs were captured");
    assert!(
        !logged.to_lowercase().contains(&canary),
        "a log line holds it"
    );
    // Share rows rebuilt from the (scrubbed) feeds: 0 drift.
    demo.finish().await;
}

/// Only administrators erase, nobody else reads erasures, and bad requests are clear
/// errors that change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_erase_and_bad_requests_change_nothing() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let contacts = demo
        .ok(&admin, "{ contacts(first: 1) { nodes { id } } }", json!({}))
        .await;
    let contact = contacts["contacts"]["nodes"][0]["id"].clone();
    let erase = "mutation($in: DataErasureInput!) { eraseDataSubject(input: $in) { id } }";
    for (kind, role) in [
        ("internal", "management"),
        ("internal", "sales"),
        ("distributor", "partner_admin"),
        ("supplier", "partner_admin"),
    ] {
        let who = demo.first(kind, role);
        let refused = demo
            .send(&who, erase, json!({ "in": { "contactId": contact } }))
            .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{role}: {refused}"
        );
        let list = demo.ok(&who, "{ dataErasures { id } }", json!({})).await;
        assert_eq!(list["dataErasures"], json!([]), "{role}");
    }
    for input in [
        json!({}),
        json!({ "contactId": contact, "email": "a@b.example" }),
        json!({ "email": "not an email" }),
        json!({ "contactId": "con_missing" }),
        json!({ "leadId": "led_missing" }),
    ] {
        let refused = demo.send(&admin, erase, json!({ "in": input })).await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "VALIDATION",
            "{input}: {refused}"
        );
    }
    let list = demo.ok(&admin, "{ dataErasures { id } }", json!({})).await;
    assert_eq!(list["dataErasures"], json!([]), "nothing was requested");
    let still = demo
        .ok(
            &admin,
            "query($id: ID!) { contact(id: $id) { firstName } }",
            json!({ "id": contact }),
        )
        .await;
    assert_ne!(still["contact"]["firstName"], "[erased]");
    demo.finish().await;
}
