//! Data-subject exports through the gateway of the seeded demo system: a unique canary is
//! planted in every place one person's data can land (the contact, its consent evidence,
//! an interaction, a case and its comment, a lead with the same email, and mentions of the
//! email in an account's note, an order's note and an article's feedback), and the export
//! holds every one of them, with the audit log about the person (field history, partner
//! reads); only administrators ask, and bad requests are clear errors.

use std::time::Duration;

use crm_e2e::demo::Demo;
use serde_json::{Value, json};

const EXPORT: &str = "query($id: ID!) { dataExport(id: $id) { id status progress contactId email requestedBy document subject { account { service records document } orderVisibility { service records document } knowledgeBase { service records document } } } }";

/// Waits for the export's job to gather every section.
async fn finished(demo: &Demo, admin: &crm_identity::user::Model, id: &Value) -> Value {
    let mut seen = Vec::new();
    for _ in 0..200 {
        let read = demo.ok(admin, EXPORT, json!({ "id": id })).await;
        let export = read["dataExport"].clone();
        seen.push(export["progress"].clone());
        if export["status"] == "DONE" {
            assert_eq!(export["progress"], 100, "{seen:?}");
            return export;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the export did not finish: progress {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_every_canary_planted_for_the_person_and_only_admins_ask() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let distributor = demo.first("distributor", "partner_user");
    // A person the distributor sees (so partners' reads of them are in the audit log).
    let seen = demo
        .ok(
            &distributor,
            "{ contacts(first: 1) { nodes { id accountId } } }",
            json!({}),
        )
        .await;
    let contact = seen["contacts"]["nodes"][0]["id"].clone();
    let account = seen["contacts"]["nodes"][0]["accountId"].clone();
    let tag = contact.as_str().expect("an id").replace('_', "");
    let canary = |n: u32| format!("dsar{n}x{tag}");
    let email = format!("{tag}@subject.example");
    let read = demo
        .ok(
            &admin,
            "query($id: ID!) { contact(id: $id) { version } }",
            json!({ "id": contact }),
        )
        .await;
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!, $in: ContactInput!) { updateContact(id: $id, version: $v, input: $in) { version } }",
        json!({ "id": contact, "v": read["contact"]["version"], "in": {
            "title": canary(1),
            "email": email,
            "consents": [{ "purpose": "MARKETING", "channel": "PHONE", "granted": true, "source": "FORM", "evidence": canary(2) }],
        } }),
    )
    .await;
    demo.ok(
        &admin,
        "mutation($in: InteractionInput!) { createInteraction(input: $in) { id } }",
        json!({ "in": { "accountId": account, "contactId": contact, "channel": "EMAIL", "direction": "INBOUND", "subject": canary(3), "body": canary(4), "occurredAt": "2026-12-01T09:00:00Z" } }),
    )
    .await;
    let case = demo
        .ok(
            &admin,
            "mutation($in: CaseInput!) { createCase(input: $in) { id } }",
            json!({ "in": { "accountId": account, "contactId": contact, "subject": canary(5), "description": canary(6), "priority": "LOW", "channel": "EMAIL" } }),
        )
        .await;
    demo.ok(
        &admin,
        "mutation($in: CaseCommentInput!) { createCaseComment(input: $in) { id } }",
        json!({ "in": { "caseId": case["createCase"]["id"], "body": canary(7) } }),
    )
    .await;
    demo.ok(
        &admin,
        "mutation($in: LeadInput!) { createLead(input: $in) { id } }",
        json!({ "in": { "firstName": "Dana", "lastName": "Subject", "email": email.to_uppercase(), "company": canary(8), "source": "WEB" } }),
    )
    .await;
    // Mentions of the email in other records' free text, in every service.
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
        json!({ "id": account, "v": acc["account"]["version"], "n": format!("Ask {email} first. {}", canary(9)) }),
    )
    .await;
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
        json!({ "id": order["id"], "v": order["version"], "n": format!("Delivery contact {email}. {}", canary(10)) }),
    )
    .await;
    let articles = demo
        .ok(&admin, "{ articles(first: 1) { nodes { id } } }", json!({}))
        .await;
    demo.ok(
        &admin,
        "mutation($a: ID!, $c: String!) { giveArticleFeedback(articleId: $a, helpful: false, comment: $c) { id } }",
        json!({ "a": articles["articles"]["nodes"][0]["id"], "c": format!("Reply to {email}. {}", canary(11)) }),
    )
    .await;
    // A partner reads the person.
    demo.ok(
        &distributor,
        "query SubjectLook($id: ID!) { contact(id: $id) { lastName title } }",
        json!({ "id": contact }),
    )
    .await;
    crm_service_common::audit::reads::flush_all().await;

    // By contact: every canary is in the export.
    let requested = demo
        .ok(
            &admin,
            "mutation($c: ID!) { requestDataExport(input: { contactId: $c }) { id status progress requestedBy } }",
            json!({ "c": contact }),
        )
        .await;
    let request = &requested["requestDataExport"];
    assert_eq!(request["requestedBy"], admin.id.as_str());
    let export = finished(&demo, &admin, &request["id"]).await;
    let text = export.to_string();
    for n in 1..=11 {
        assert!(
            text.contains(&canary(n)),
            "canary {n} is missing from {text}"
        );
    }
    let document: Value =
        serde_json::from_str(export["document"].as_str().expect("a document")).expect("json");
    let audit = document["auditLog"].as_array().expect("the audit log");
    assert!(
        audit
            .iter()
            .any(|e| e["field"] == "title" && e["newValue"] == canary(1)),
        "the field history with its values: {audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "read" && e["read"]["operation"] == "SubjectLook"),
        "the partner's read: {audit:?}"
    );
    assert_eq!(
        document["leads"].as_array().map(Vec::len),
        Some(1),
        "{document}"
    );
    for service in ["orderVisibility", "knowledgeBase"] {
        assert!(
            export["subject"][service]["records"].as_i64() >= Some(1),
            "{service}: {export}"
        );
    }

    // By email: the same person.
    let by_email = demo
        .ok(
            &admin,
            "mutation($e: String!) { requestDataExport(input: { email: $e }) { id } }",
            json!({ "e": email.to_uppercase() }),
        )
        .await;
    let export = finished(&demo, &admin, &by_email["requestDataExport"]["id"]).await;
    assert_eq!(export["email"], email.as_str());
    assert!(export.to_string().contains(&canary(7)));

    // The request itself is in the audit log, by the administrator.
    let log = demo
        .ok(
            &admin,
            "query($id: ID!) { auditLog(filter: { recordId: $id }) { account { entries { actor field } } } }",
            json!({ "id": request["id"] }),
        )
        .await;
    let entries = log["auditLog"]["account"]["entries"]
        .as_array()
        .expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["actor"] == admin.id.as_str() && e["field"] == "contactId"),
        "{log}"
    );

    // Only administrators ask or read; bad requests are clear errors.
    for (kind, role) in [
        ("internal", "management"),
        ("internal", "support"),
        ("distributor", "partner_admin"),
    ] {
        let who = demo.first(kind, role);
        let refused = demo
            .send(
                &who,
                "mutation($c: ID!) { requestDataExport(input: { contactId: $c }) { id } }",
                json!({ "c": contact }),
            )
            .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{role}: {refused}"
        );
        let none = demo.ok(&who, EXPORT, json!({ "id": request["id"] })).await;
        assert_eq!(none["dataExport"], Value::Null, "{role}");
        let list = demo.ok(&who, "{ dataExports { id } }", json!({})).await;
        assert_eq!(list["dataExports"], json!([]), "{role}");
    }
    for (input, code) in [
        (json!({}), "VALIDATION"),
        (
            json!({ "contactId": contact, "email": email }),
            "VALIDATION",
        ),
        (json!({ "email": "not an email" }), "VALIDATION"),
        (json!({ "contactId": "con_missing" }), "VALIDATION"),
    ] {
        let refused = demo
            .send(
                &admin,
                "mutation($in: DataExportInput!) { requestDataExport(input: $in) { id } }",
                json!({ "in": input }),
            )
            .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], code,
            "{input}: {refused}"
        );
    }
    demo.finish().await;
}

/// A finished export's document is dropped once its retention has passed: the request
/// stays, `EXPIRED`, and the page no longer offers the download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exports_document_expires_with_its_retention() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let contacts = demo
        .ok(&admin, "{ contacts(first: 1) { nodes { id } } }", json!({}))
        .await;
    let requested = demo
        .ok(
            &admin,
            "mutation($c: ID!) { requestDataExport(input: { contactId: $c }) { id } }",
            json!({ "c": contacts["contacts"]["nodes"][0]["id"] }),
        )
        .await;
    let id = requested["requestDataExport"]["id"].clone();
    let done = finished(&demo, &admin, &id).await;
    assert_ne!(done["document"], "{}");
    let db = &demo.system.databases.account;
    let now = crm_service_common::clock::now();
    // Kept for 30 days: not yet.
    let cutoff = crm_service_common::retention::EXPORTS
        .from_env()
        .cutoff(now)
        .expect("a retention");
    let txn = crm_service_common::db::begin_write(db).await.expect("txn");
    let expired = crm_account::retention::expire_exports(&txn, cutoff)
        .await
        .expect("retention");
    crm_service_common::db::commit(txn).await.expect("commit");
    assert_eq!(expired, 0);
    // 31 days later.
    let later = crm_service_common::retention::EXPORTS
        .from_env()
        .cutoff(now + chrono::Duration::days(31))
        .expect("a retention");
    let txn = crm_service_common::db::begin_write(db).await.expect("txn");
    let expired = crm_account::retention::expire_exports(&txn, later)
        .await
        .expect("retention");
    crm_service_common::db::commit(txn).await.expect("commit");
    assert!(expired >= 1, "{expired}");
    let read = demo.ok(&admin, EXPORT, json!({ "id": id })).await;
    assert_eq!(read["dataExport"]["status"], "EXPIRED", "{read}");
    assert_eq!(read["dataExport"]["document"], "{}", "{read}");
    demo.finish().await;
}
