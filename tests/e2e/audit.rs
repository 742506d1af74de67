//! The audit log through the gateway of the seeded demo system: field history as each
//! reader may see it, and the hash chains verified, then tampered with (an entry edited,
//! an entry deleted, the tail cut off after the last checkpoint, a kept value edited),
//! each time naming the first entry that does not hold; erasing kept values leaves the
//! chain intact.

use std::time::Duration;

use crm_e2e::demo::Demo;
use crm_oracle::Persona;
use crm_oracle::reads::{Channel, Fact, FieldRead, field_read};
use crm_service_common::audit::{chain, entry, value};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};

const CONTACT_HISTORY: &str = "query($id: ID!) { contact(id: $id) { id version history { field kind oldValue newValue valuesWithheld actor actorKind credential } } }";

fn fields(history: &Value) -> Vec<String> {
    history
        .as_array()
        .expect("a history")
        .iter()
        .map(|c| c["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reader_sees_the_history_of_the_fields_it_may_read_and_who_changed_them() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let distributor = demo.first("distributor", "partner_user");
    let marketing = demo.first("internal", "marketing");
    // A contact the distributor sees, without consent to share its phone with partners or
    // to market to it by phone.
    let seen = demo
        .ok(
            &distributor,
            "{ contacts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let id = seen["contacts"]["nodes"][0]["id"].clone();
    let contact = demo
        .ok(
            &admin,
            "query($id: ID!) { contact(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await;
    let updated = demo
        .ok(
            &admin,
            "mutation($id: ID!, $v: Int!) { updateContact(id: $id, version: $v, input: { title: \"Head of Audit\", phone: \"+44 20 7946 0999\", consents: [{ purpose: PARTNER_SHARING, channel: PHONE, granted: false }, { purpose: MARKETING, channel: PHONE, granted: false }] }) { version } }",
            json!({ "id": id, "v": contact["contact"]["version"] }),
        )
        .await;
    assert!(updated["updateContact"]["version"].as_i64().is_some());

    // The administrator: both changes, by it, through its token.
    let read = demo.ok(&admin, CONTACT_HISTORY, json!({ "id": id })).await;
    let history = &read["contact"]["history"];
    let title = history
        .as_array()
        .expect("a history")
        .iter()
        .find(|c| c["field"] == "title" && c["newValue"] == "Head of Audit")
        .unwrap_or_else(|| panic!("the title change: {history}"));
    assert_eq!(title["kind"], "CHANGED");
    assert_eq!(title["actor"], admin.id.as_str());
    assert_eq!(title["actorKind"], "internal");
    assert_eq!(title["credential"], "token");
    assert!(
        history
            .as_array()
            .expect("a history")
            .iter()
            .any(|c| c["field"] == "phone" && c["newValue"] == "+44 20 7946 0999"),
        "{history}"
    );

    // The distributor: the title's change, not who at the company made it; nothing of the
    // phone, which it may not read on this contact.
    let read = demo
        .ok(&distributor, CONTACT_HISTORY, json!({ "id": id }))
        .await;
    let history = &read["contact"]["history"];
    let title = history
        .as_array()
        .expect("a history")
        .iter()
        .find(|c| c["field"] == "title" && c["newValue"] == "Head of Audit")
        .unwrap_or_else(|| panic!("the title change: {history}"));
    assert_eq!(title["actor"], Value::Null, "{title}");
    assert_eq!(title["credential"], Value::Null, "{title}");
    assert_eq!(title["actorKind"], "internal");
    assert!(
        !fields(history).iter().any(|f| f == "phone"),
        "a masked field has no history for the reader: {history}"
    );
    // References keep their values for the company only: an old account id could name an
    // account the partner cannot see.
    for change in history.as_array().expect("a history") {
        if change["field"] == "accountId" {
            assert_eq!(change["valuesWithheld"], true, "{change}");
            assert_eq!(change["newValue"], Value::Null, "{change}");
        }
    }

    // Marketing: no phone either (no marketing consent for it).
    let read = demo
        .ok(&marketing, CONTACT_HISTORY, json!({ "id": id }))
        .await;
    assert!(
        !fields(&read["contact"]["history"])
            .iter()
            .any(|f| f == "phone"),
        "{read}"
    );

    // Every persona that reads the contact: each field in its history is one the read
    // matrix lets it read on this contact (the phone, whose consents were withdrawn,
    // never).
    let personas = [
        ("internal", "sales"),
        ("internal", "marketing"),
        ("internal", "support"),
        ("internal", "management"),
        ("distributor", "partner_user"),
        ("distributor", "partner_admin"),
    ];
    for (kind, role) in personas {
        let user = demo.first(kind, role);
        let persona = match kind {
            "internal" => Persona::Internal {
                role,
                user: user.id.clone(),
            },
            _ => Persona::Distributor(user.partner_id.clone().expect("a partner")),
        };
        let read = demo.ok(&user, CONTACT_HISTORY, json!({ "id": id })).await;
        for field in fields(&read["contact"]["history"]) {
            let allowed = match field_read(&persona, "Contact", &field) {
                Some(FieldRead::Value | FieldRead::Link(_)) => true,
                Some(FieldRead::ValueIf(
                    Fact::PartnerSharing(Channel::Phone) | Fact::Marketing(Channel::Phone),
                )) => false,
                // Facts this test did not set (email consents): held or not, the
                // field is one the persona may read on some contacts.
                Some(FieldRead::ValueIf(_)) => true,
                _ => false,
            };
            assert!(
                allowed,
                "{kind}/{role} reads the history of Contact.{field}"
            );
        }
    }

    // A supplier reads an account without its version, so without its history.
    let supplier = demo.first("supplier", "partner_user");
    let accounts = demo
        .ok(
            &supplier,
            "{ accounts(first: 1) { nodes { id version history { field } } } }",
            json!({}),
        )
        .await;
    let account = &accounts["accounts"]["nodes"][0];
    assert_eq!(account["version"], Value::Null);
    assert_eq!(account["history"], json!([]), "{account}");

    // Bad input is a clear error.
    let refused = demo
        .send(
            &admin,
            "query($id: ID!) { contact(id: $id) { history(first: 0) { field } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "VALIDATION",
        "{refused}"
    );
    demo.finish().await;
}

/// Waits until the sealer has sealed every entry of the company's account chain.
async fn sealed(db: &DatabaseConnection) {
    for _ in 0..300 {
        let pending = entry::Entity::find()
            .filter(entry::Column::ChainSeq.is_null())
            .one(db)
            .await
            .expect("entries");
        if pending.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the sealer did not seal the account service's entries");
}

/// The company's account chain as `crm audit verify` reads it.
async fn company_chain(db: &DatabaseConnection) -> chain::ChainReport {
    let reports = chain::verify(
        db,
        crm_account::SERVICE,
        &chain::trusted_keys(),
        Some(&[String::new()]),
    )
    .await
    .expect("a verification");
    reports.into_iter().next().expect("the company's chain")
}

async fn entry_at(db: &DatabaseConnection, chain_seq: i64) -> entry::Model {
    entry::Entity::find()
        .filter(entry::Column::Organisation.eq(""))
        .filter(entry::Column::ChainSeq.eq(chain_seq))
        .one(db)
        .await
        .expect("an entry")
        .expect("an entry at that place")
}

fn broken_at(report: &chain::ChainReport) -> (i64, String) {
    let broken = report
        .broken
        .as_ref()
        .unwrap_or_else(|| panic!("a broken chain: {report:?}"));
    (broken.chain_seq, broken.reason.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_verifies_and_every_tampering_names_the_first_broken_entry() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let db = demo.system.databases.account.clone();
    // Changes in two rounds, each sealed: the first round's head is the chain's first
    // checkpoint, and the second runs the tail past it.
    for industry in ["Audited", "Audited again"] {
        let accounts = demo
            .ok(
                &admin,
                "{ accounts(first: 3) { nodes { id version } } }",
                json!({}),
            )
            .await;
        for account in accounts["accounts"]["nodes"].as_array().expect("accounts") {
            demo.ok(
                &admin,
                "mutation($id: ID!, $v: Int!, $i: String) { updateAccount(id: $id, version: $v, input: { industry: $i }) { id } }",
                json!({ "id": account["id"], "v": account["version"], "i": industry }),
            )
            .await;
        }
        sealed(&db).await;
    }

    let report = company_chain(&db).await;
    assert!(report.intact(), "{report:?}");
    assert!(report.entries >= 6 && report.checkpoints > 0, "{report:?}");
    let last = report.entries;
    let last_checkpoint = crm_service_common::audit::checkpoint::Entity::find()
        .filter(crm_service_common::audit::checkpoint::Column::Organisation.eq(""))
        .order_by_desc(crm_service_common::audit::checkpoint::Column::ChainSeq)
        .one(&db)
        .await
        .expect("checkpoints")
        .expect("a checkpoint")
        .chain_seq;
    assert!(
        last_checkpoint < last,
        "the tail runs past the last checkpoint ({last_checkpoint} of {last})"
    );

    // Through the API: staff verify every service's chains.
    let verified = demo
        .ok(
            &admin,
            "{ auditVerification { organisation account { intact chains { organisation entries broken { chainSeq } } } orderVisibility { intact } knowledgeBase { intact } } }",
            json!({}),
        )
        .await;
    let v = &verified["auditVerification"];
    assert_eq!(v["organisation"], "all");
    assert_eq!(v["account"]["intact"], true, "{v}");
    assert_eq!(v["orderVisibility"]["intact"], true, "{v}");
    assert_eq!(v["knowledgeBase"]["intact"], true, "{v}");

    // An entry edited: named.
    let middle = last / 2;
    let original = entry_at(&db, middle).await;
    let mut edited = original.clone().into_active_model();
    edited.actor = sea_orm::ActiveValue::Set("usr_someone_else".into());
    edited.update(&db).await.expect("an edit");
    let (at, reason) = broken_at(&company_chain(&db).await);
    assert_eq!(at, middle, "{reason}");
    assert!(reason.contains("changed"), "{reason}");
    let through_api = demo
        .ok(
            &admin,
            "{ auditVerification(organisation: \"company\") { account { intact chains { broken { chainSeq entryId reason } } } } }",
            json!({}),
        )
        .await;
    let chains = &through_api["auditVerification"]["account"];
    assert_eq!(chains["intact"], false, "{chains}");
    assert_eq!(chains["chains"][0]["broken"]["chainSeq"], middle);
    assert_eq!(
        chains["chains"][0]["broken"]["entryId"],
        original.id.as_str()
    );
    original
        .clone()
        .into_active_model()
        .reset_all()
        .update(&db)
        .await
        .expect("restored");
    assert!(company_chain(&db).await.intact());

    // An entry deleted: the place it held is named.
    let gone = entry_at(&db, middle + 1).await;
    entry::Entity::delete_by_id(gone.seq)
        .exec(&db)
        .await
        .expect("a delete");
    let (at, reason) = broken_at(&company_chain(&db).await);
    assert_eq!(at, middle + 1, "{reason}");
    assert!(reason.contains("missing"), "{reason}");
    entry::Entity::insert(gone.into_active_model().reset_all())
        .exec_without_returning(&db)
        .await
        .expect("put back");
    assert!(company_chain(&db).await.intact());

    // The tail cut off after the last checkpoint: the signed head names the first gone.
    let mut tail = Vec::new();
    for seq in (last_checkpoint + 1)..=last {
        let e = entry_at(&db, seq).await;
        entry::Entity::delete_by_id(e.seq)
            .exec(&db)
            .await
            .expect("a delete");
        tail.push(e);
    }
    let (at, reason) = broken_at(&company_chain(&db).await);
    assert_eq!(at, last_checkpoint + 1, "{reason}");
    assert!(reason.contains("missing"), "{reason}");
    // And cut off before it: the checkpoint names it.
    let before_checkpoint = entry_at(&db, last_checkpoint).await;
    entry::Entity::delete_by_id(before_checkpoint.seq)
        .exec(&db)
        .await
        .expect("a delete");
    let (at, reason) = broken_at(&company_chain(&db).await);
    assert_eq!(at, last_checkpoint, "{reason}");
    for e in std::iter::once(before_checkpoint).chain(tail) {
        entry::Entity::insert(e.into_active_model().reset_all())
            .exec_without_returning(&db)
            .await
            .expect("put back");
    }
    assert!(company_chain(&db).await.intact());

    // A kept value edited: named; the value erased (deleted): the chain still holds.
    let with_value = entry_at(&db, last).await;
    let kept = value::Entity::find()
        .filter(value::Column::EntryId.eq(with_value.id.as_str()))
        .filter(value::Column::Side.eq("new"))
        .one(&db)
        .await
        .expect("values")
        .expect("the entry's new value");
    let mut forged = kept.clone().into_active_model();
    forged.value = sea_orm::ActiveValue::Set("Forged".into());
    forged.update(&db).await.expect("an edit");
    let (at, reason) = broken_at(&company_chain(&db).await);
    assert_eq!(at, last, "{reason}");
    assert!(reason.contains("value"), "{reason}");
    value::Entity::delete_many()
        .filter(value::Column::EntryId.eq(with_value.id.as_str()))
        .exec(&db)
        .await
        .expect("erased");
    assert!(
        company_chain(&db).await.intact(),
        "erasing kept values leaves the chain verifiable"
    );
    let record = demo
        .ok(
            &admin,
            "query($id: ID!) { account(id: $id) { history(first: 200) { field newValue valuesWithheld } } }",
            json!({ "id": with_value.record_id }),
        )
        .await;
    assert!(
        record["account"]["history"]
            .as_array()
            .expect("a history")
            .iter()
            .any(|c| c["valuesWithheld"] == true && c["newValue"] == Value::Null),
        "the erased value reads as withheld: {record}"
    );
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_administrator_verifies_its_own_organisations_chain_and_no_other() {
    let demo = Demo::start().await;
    let partner_admin = demo.first("distributor", "partner_admin");
    let partner_user = demo.first("distributor", "partner_user");
    let partner = partner_admin.partner_id.clone().expect("a partner");
    // The partner writes something: its own chain begins.
    let accounts = demo
        .ok(
            &partner_admin,
            "{ accounts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    demo.ok(
        &partner_admin,
        "mutation($a: ID!) { createInteraction(input: { accountId: $a, channel: PHONE, direction: OUTBOUND, subject: \"Audit check-in\", occurredAt: \"2026-12-01T10:00:00Z\" }) { id } }",
        json!({ "a": accounts["accounts"]["nodes"][0]["id"] }),
    )
    .await;
    sealed(&demo.system.databases.account).await;

    let verified = demo
        .ok(
            &partner_admin,
            "{ auditVerification { organisation account { intact chains { organisation entries pending broken { chainSeq reason } } } } }",
            json!({}),
        )
        .await;
    let v = &verified["auditVerification"];
    assert_eq!(v["organisation"], partner.as_str());
    let chains = v["account"]["chains"].as_array().expect("chains");
    assert_eq!(chains.len(), 1, "{v}");
    assert_eq!(chains[0]["organisation"], partner.as_str());
    assert!(chains[0]["entries"].as_i64().unwrap_or_default() > 0, "{v}");
    assert_eq!(v["account"]["intact"], true);

    for (who, organisation) in [
        (&partner_admin, "company"),
        (&partner_admin, "all"),
        (&partner_admin, "ptn_someone_else"),
        (&partner_user, partner.as_str()),
    ] {
        let refused = demo
            .send(
                who,
                "query($o: ID) { auditVerification(organisation: $o) { organisation } }",
                json!({ "o": organisation }),
            )
            .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{organisation}: {refused}"
        );
    }
    demo.finish().await;
}

/// The read entries of `partner` in `db`, as (table, record id) → (fields, operation).
async fn reads_of(
    db: &DatabaseConnection,
    partner: &str,
) -> std::collections::BTreeMap<(String, String), (Vec<String>, Option<String>)> {
    entry::Entity::find()
        .filter(entry::Column::Organisation.eq(partner))
        .filter(entry::Column::Action.eq("read"))
        .all(db)
        .await
        .expect("read entries")
        .into_iter()
        .map(|e| {
            let detail: Value =
                serde_json::from_str(e.detail.as_deref().unwrap_or("{}")).expect("detail");
            let fields = detail["fields"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let operation = detail["operation"].as_str().map(str::to_owned);
            ((e.record_type, e.record_id), (fields, operation))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_a_partner_reads_is_logged_with_its_fields_nested_and_federated_alike() {
    let mut demo = Demo::start().await;
    let distributor = demo.first("distributor", "partner_user");
    let partner = distributor.partner_id.clone().expect("a partner");
    let admin = demo.first("internal", "admin");
    let accounts_db = demo.system.databases.account.clone();
    let orders_db = demo.system.databases.order_visibility.clone();

    // A list with a nested list, then orders with their account (the account service
    // answers that through `_entities`).
    let read = demo
        .ok(
            &distributor,
            "query PortalAccounts { accounts(first: 2) { nodes { id name contacts(first: 2) { nodes { lastName } } } } }",
            json!({}),
        )
        .await;
    let orders = demo
        .ok(
            &distributor,
            "query PortalOrders { orders(first: 1) { nodes { number account { name } } } }",
            json!({}),
        )
        .await;
    // Staff reads are not logged.
    demo.ok(
        &admin,
        "{ accounts(first: 5) { nodes { id name } } }",
        json!({}),
    )
    .await;
    crm_service_common::audit::reads::flush_all().await;

    let logged = reads_of(&accounts_db, &partner).await;
    for account in read["accounts"]["nodes"].as_array().expect("accounts") {
        let key = (
            "accounts".to_owned(),
            account["id"].as_str().expect("id").to_owned(),
        );
        let (fields, operation) = logged
            .get(&key)
            .unwrap_or_else(|| panic!("no read of {key:?}: {logged:?}"));
        assert!(
            fields.iter().any(|f| f == "name") && fields.iter().any(|f| f == "contacts"),
            "{fields:?}"
        );
        assert!(
            operation.as_deref() == Some("PortalAccounts")
                || operation.as_deref() == Some("PortalOrders"),
            "{operation:?}"
        );
    }
    let contacts: Vec<_> = logged
        .iter()
        .filter(|((table, _), _)| table == "contacts")
        .collect();
    assert!(
        !contacts.is_empty(),
        "nested contacts are logged: {logged:?}"
    );
    assert!(
        contacts
            .iter()
            .all(|(_, (fields, _))| fields == &vec!["lastName".to_owned()]),
        "{contacts:?}"
    );
    // The order's account came through `_entities`: logged by the account service with
    // the fields the partner asked for.
    if let Some(order) = orders["orders"]["nodes"].as_array().and_then(|o| o.first()) {
        let order_reads = reads_of(&orders_db, &partner).await;
        assert!(
            order_reads
                .iter()
                .any(|((table, _), (fields, op))| table == "orders"
                    && fields.contains(&"number".to_owned())
                    && op.as_deref() == Some("PortalOrders")),
            "{order_reads:?}"
        );
        assert!(
            logged
                .iter()
                .any(|((table, _), (fields, op))| table == "accounts"
                    && fields == &vec!["name".to_owned()]
                    && op.as_deref() == Some("PortalOrders")),
            "the federated account read of {order}: {logged:?}"
        );
    }
    let staff = entry::Entity::find()
        .filter(entry::Column::Organisation.eq(""))
        .filter(entry::Column::Action.eq("read"))
        .all(&accounts_db)
        .await
        .expect("entries");
    assert!(staff.is_empty(), "staff reads are not logged");
    // The read log's writer links its entries into the chain as it writes them: none
    // waits for the sealer.
    let unsealed_reads = entry::Entity::find()
        .filter(entry::Column::Organisation.eq(partner.as_str()))
        .filter(entry::Column::Action.eq("read"))
        .filter(entry::Column::ChainSeq.is_null())
        .count(&accounts_db)
        .await
        .expect("entries");
    assert_eq!(unsealed_reads, 0, "read entries are written sealed");
    // An entry of the same chain still waiting for the sealer (a write's) is chained
    // after the reads written meanwhile, and the chain still verifies.
    entry::ActiveModel {
        id: Set("aud_waiting_for_the_sealer".to_owned()),
        organisation: Set(partner.clone()),
        at: Set(chrono::Utc::now()),
        actor: Set(distributor.id.clone()),
        actor_kind: Set("user".to_owned()),
        credential: Set("session".to_owned()),
        action: Set("changed".to_owned()),
        record_type: Set("accounts".to_owned()),
        record_id: Set("acc_any".to_owned()),
        field: Set(Some("name".to_owned())),
        ..Default::default()
    }
    .insert(&accounts_db)
    .await
    .expect("an unsealed entry");

    // Reads still waiting for the writer when the services stop are written on the way
    // out (no flush asked for here).
    demo.ok(
        &distributor,
        "query LastLook { accounts(first: 1) { nodes { industry } } }",
        json!({}),
    )
    .await;
    let account_service = demo
        .system
        .subgraphs
        .iter()
        .position(|(name, _)| name == crm_account::SUBGRAPH)
        .expect("the account service");
    let (_, running) = demo.system.subgraphs.remove(account_service);
    running.stop().await.expect("the account service stops");
    let logged = reads_of(&accounts_db, &partner).await;
    assert!(
        logged
            .values()
            .any(|(_, op)| op.as_deref() == Some("LastLook")),
        "the last read was written on shutdown: {logged:?}"
    );
    // Sealed into the partner's own chain, which verifies.
    crm_service_common::audit::chain::seal(
        &accounts_db,
        &chain::key_for(crm_account::SERVICE).expect("a key"),
    )
    .await
    .expect("sealed");
    let waiting = entry::Entity::find()
        .filter(entry::Column::Id.eq("aud_waiting_for_the_sealer"))
        .one(&accounts_db)
        .await
        .expect("entries")
        .expect("the entry");
    assert!(waiting.chain_seq.is_some(), "{waiting:?}");
    let in_chain = entry::Entity::find()
        .filter(entry::Column::Organisation.eq(partner.as_str()))
        .count(&accounts_db)
        .await
        .expect("entries");
    let reports = chain::verify(
        &accounts_db,
        crm_account::SERVICE,
        &chain::trusted_keys(),
        Some(std::slice::from_ref(&partner)),
    )
    .await
    .expect("verified");
    assert!(reports[0].intact(), "{reports:?}");
    assert_eq!(
        (reports[0].entries, reports[0].pending),
        (in_chain as i64, 0),
        "{reports:?}"
    );
    demo.finish().await;
}

const AUDIT_LOG: &str = "query($f: AuditFilter!, $first: Int!) { auditLog(filter: $f, first: $first) { account { ...page } orderVisibility { ...page } knowledgeBase { ...page } } } \
    fragment page on AuditLogPage { hasMore entries { at service organisation actor actorKind credential action recordType recordId field oldValue newValue valuesWithheld fieldsRead operation sealed } }";

/// Every entry of every service's page of an `auditLog` answer.
fn log_entries(answer: &Value) -> Vec<Value> {
    ["account", "orderVisibility", "knowledgeBase"]
        .iter()
        .flat_map(|s| {
            answer["auditLog"][s]["entries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_shows_staff_everything_and_a_partner_admin_its_own_and_what_it_sees() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let management = demo.first("internal", "management");
    let distributor_admin = demo.first("distributor", "partner_admin");
    let distributor_user = demo.first("distributor", "partner_user");
    let partner = distributor_user.partner_id.clone().expect("a partner");
    let supplier_admin = demo.first("supplier", "partner_admin");

    // A contact the distributor sees, and one it does not.
    let seen = demo
        .ok(
            &distributor_user,
            "{ contacts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let visible = seen["contacts"]["nodes"][0]["id"]
        .as_str()
        .expect("a contact")
        .to_owned();
    let all = demo
        .ok(
            &admin,
            "{ contacts(first: 200) { nodes { id version } } }",
            json!({}),
        )
        .await;
    let mut hidden = None;
    for c in all["contacts"]["nodes"].as_array().expect("contacts") {
        let id = c["id"].as_str().expect("an id");
        let theirs = demo
            .ok(
                &distributor_user,
                "query($id: ID!) { contact(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        if theirs["contact"].is_null() {
            hidden = Some(id.to_owned());
            break;
        }
    }
    let hidden = hidden.expect("a contact the distributor does not see");
    // The company changes both titles and the phone of the visible one; the distributor's
    // user reads the visible one.
    for (id, title) in [
        (&visible, "Audit visible title"),
        (&hidden, "Audit hidden title"),
    ] {
        let c = demo
            .ok(
                &admin,
                "query($id: ID!) { contact(id: $id) { version } }",
                json!({ "id": id }),
            )
            .await;
        demo.ok(
            &admin,
            "mutation($id: ID!, $v: Int!, $t: String!) { updateContact(id: $id, version: $v, input: { title: $t, phone: \"+44 20 7946 0111\" }) { version } }",
            json!({ "id": id, "v": c["contact"]["version"], "t": title }),
        )
        .await;
    }
    demo.ok(
        &distributor_user,
        "query AuditedLook($id: ID!) { contact(id: $id) { lastName title } }",
        json!({ "id": visible }),
    )
    .await;
    crm_service_common::audit::reads::flush_all().await;

    // Staff: every entry of the record, with values and people.
    for reader in [&admin, &management] {
        let log = demo
            .ok(
                reader,
                AUDIT_LOG,
                json!({ "f": { "recordId": visible }, "first": 100 }),
            )
            .await;
        let entries = log_entries(&log);
        let title = entries
            .iter()
            .find(|e| e["field"] == "title" && e["newValue"] == "Audit visible title")
            .unwrap_or_else(|| panic!("the title change: {log}"));
        assert_eq!(title["actor"], admin.id.as_str());
        assert_eq!(title["action"], "CHANGED");
        assert_eq!(title["recordType"], "Contact");
        assert_eq!(title["organisation"], Value::Null);
        assert!(entries.iter().any(|e| e["field"] == "phone"), "{log}");
        let read = entries
            .iter()
            .find(|e| e["action"] == "READ")
            .unwrap_or_else(|| panic!("the distributor's read: {log}"));
        assert_eq!(read["actor"], distributor_user.id.as_str());
        assert_eq!(read["organisation"], partner.as_str());
        assert_eq!(read["fieldsRead"], json!(["lastName", "title"]));
        assert_eq!(read["operation"], "AuditedLook");
    }
    // Staff filter by user, by organisation and by what happened.
    let by_user = demo
        .ok(
            &admin,
            AUDIT_LOG,
            json!({ "f": { "actor": distributor_user.id, "action": "READ" }, "first": 100 }),
        )
        .await;
    let entries = log_entries(&by_user);
    assert!(!entries.is_empty());
    assert!(
        entries
            .iter()
            .all(|e| e["actor"] == distributor_user.id.as_str() && e["action"] == "READ"),
        "{by_user}"
    );
    let company = demo
        .ok(
            &admin,
            AUDIT_LOG,
            json!({ "f": { "organisation": "company", "recordType": "Contact" }, "first": 20 }),
        )
        .await;
    assert!(
        log_entries(&company)
            .iter()
            .all(|e| e["organisation"].is_null() && e["recordType"] == "Contact"),
        "{company}"
    );

    // The distributor's administrator: its user's read; the company's title change on the
    // contact it sees, without the company's person; nothing of the phone (masked without
    // consent on some contacts); nothing at all of the contact it does not see.
    let log = demo
        .ok(
            &distributor_admin,
            AUDIT_LOG,
            json!({ "f": { "recordId": visible }, "first": 100 }),
        )
        .await;
    let entries = log_entries(&log);
    let title = entries
        .iter()
        .find(|e| e["field"] == "title" && e["newValue"] == "Audit visible title")
        .unwrap_or_else(|| panic!("the company's title change: {log}"));
    assert_eq!(title["actor"], Value::Null, "{title}");
    assert_eq!(title["credential"], Value::Null, "{title}");
    assert_eq!(title["actorKind"], "internal");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "READ" && e["actor"] == distributor_user.id.as_str()),
        "{log}"
    );
    for e in &entries {
        assert_ne!(e["field"], "phone", "{e}");
        assert_ne!(e["field"], "email", "{e}");
        if e["field"].as_str().is_some_and(|f| f.ends_with("Id")) {
            assert_eq!(e["valuesWithheld"], true, "{e}");
        }
    }
    let nothing = demo
        .ok(
            &distributor_admin,
            AUDIT_LOG,
            json!({ "f": { "recordId": hidden }, "first": 100 }),
        )
        .await;
    assert!(log_entries(&nothing).is_empty(), "{nothing}");
    // Unfiltered: only its own organisation's entries and the company's.
    let everything = demo
        .ok(
            &distributor_admin,
            AUDIT_LOG,
            json!({ "f": {}, "first": 200 }),
        )
        .await;
    for e in log_entries(&everything) {
        assert!(
            e["organisation"].is_null() || e["organisation"] == partner.as_str(),
            "{e}"
        );
        assert_ne!(e["recordId"], hidden.as_str(), "{e}");
        assert!(!e.to_string().contains("Audit hidden title"), "{e}");
    }
    // It can't select the company's entries by the person who made them.
    let by_admin = demo
        .ok(
            &distributor_admin,
            AUDIT_LOG,
            json!({ "f": { "actor": admin.id }, "first": 100 }),
        )
        .await;
    assert!(log_entries(&by_admin).is_empty(), "{by_admin}");
    // A supplier's administrator reads no contact, so none of these entries.
    let supplier = demo
        .ok(
            &supplier_admin,
            AUDIT_LOG,
            json!({ "f": { "recordId": visible }, "first": 100 }),
        )
        .await;
    assert!(log_entries(&supplier).is_empty(), "{supplier}");

    // Nobody else reads the log; bad input is a clear error.
    let refusals = [
        (demo.first("internal", "sales"), 10, "FORBIDDEN"),
        (demo.first("internal", "marketing"), 10, "FORBIDDEN"),
        (demo.first("internal", "support"), 10, "FORBIDDEN"),
        (distributor_user.clone(), 10, "FORBIDDEN"),
        (admin.clone(), 0, "VALIDATION"),
    ];
    for (who, first, code) in refusals {
        let refused = demo
            .send(&who, AUDIT_LOG, json!({ "f": {}, "first": first }))
            .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], code,
            "{}: {refused}",
            who.id
        );
    }

    // Pages end on a whole moment and continue before it without losing an entry.
    let first_page = demo
        .ok(
            &admin,
            AUDIT_LOG,
            json!({ "f": { "recordType": "Contact" }, "first": 3 }),
        )
        .await;
    let page = &first_page["auditLog"]["account"];
    assert_eq!(page["hasMore"], true, "{page}");
    let shown = page["entries"].as_array().expect("entries");
    let last_at = shown.last().expect("an entry")["at"].clone();
    let whole = demo
        .ok(
            &admin,
            AUDIT_LOG,
            json!({ "f": { "recordType": "Contact" }, "first": 200 }),
        )
        .await;
    let at_or_after: Vec<&Value> = whole["auditLog"]["account"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap_or_default()).ok()
                >= chrono::DateTime::parse_from_rfc3339(last_at.as_str().unwrap_or_default()).ok()
        })
        .collect();
    assert_eq!(shown.len(), at_or_after.len(), "{page}");
    let next = demo
        .ok(
            &admin,
            AUDIT_LOG,
            json!({ "f": { "recordType": "Contact", "before": last_at }, "first": 3 }),
        )
        .await;
    let next_entries = next["auditLog"]["account"]["entries"]
        .as_array()
        .expect("entries");
    assert_eq!(
        next_entries.first().map(|e| e["at"].clone()),
        whole["auditLog"]["account"]["entries"]
            .as_array()
            .expect("entries")
            .get(shown.len())
            .map(|e| e["at"].clone()),
    );
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_record_held_while_internal_stays_internal_once_it_is_shared() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let distributor = demo.first("distributor", "partner_user");
    let distributor_admin = demo.first("distributor", "partner_admin");
    let accounts = demo
        .ok(
            &distributor,
            "{ accounts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let account = accounts["accounts"]["nodes"][0]["id"].clone();
    // Written internal, then shared with partners, then changed again.
    let created = demo
        .ok(
            &admin,
            "mutation($a: ID!) { createInteraction(input: { accountId: $a, channel: PHONE, direction: OUTBOUND, subject: \"Internal draft: margin too thin\", partnerVisible: false, occurredAt: \"2026-12-01T10:00:00Z\" }) { id version } }",
            json!({ "a": account }),
        )
        .await;
    let id = created["createInteraction"]["id"].clone();
    let shared = demo
        .ok(
            &admin,
            "mutation($id: ID!, $v: Int!) { updateInteraction(id: $id, version: $v, input: { subject: \"Shared call notes\", partnerVisible: true }) { version } }",
            json!({ "id": id, "v": created["createInteraction"]["version"] }),
        )
        .await;
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { updateInteraction(id: $id, version: $v, input: { subject: \"Shared call notes, corrected\" }) { version } }",
        json!({ "id": id, "v": shared["updateInteraction"]["version"] }),
    )
    .await;
    let history =
        "query($id: ID!) { interaction(id: $id) { subject history { field oldValue newValue } } }";
    let ours = demo.ok(&admin, history, json!({ "id": id })).await;
    assert!(ours.to_string().contains("Internal draft"), "{ours}");
    let theirs = demo.ok(&distributor, history, json!({ "id": id })).await;
    assert_eq!(
        theirs["interaction"]["subject"],
        "Shared call notes, corrected"
    );
    let text = theirs.to_string();
    assert!(!text.contains("Internal draft"), "{text}");
    assert!(
        text.contains("Shared call notes\""),
        "the changes since it was shared: {text}"
    );
    let log = demo
        .ok(
            &distributor_admin,
            AUDIT_LOG,
            json!({ "f": { "recordId": id }, "first": 100 }),
        )
        .await;
    let text = log.to_string();
    assert!(!text.contains("Internal draft"), "{text}");
    assert!(text.contains("Shared call notes, corrected"), "{text}");
    demo.finish().await;
}

/// The reads of `organisation`'s chain in the account service, oldest first.
async fn chain_reads(db: &DatabaseConnection, organisation: &str) -> Vec<entry::Model> {
    entry::Entity::find()
        .filter(entry::Column::Organisation.eq(organisation))
        .filter(entry::Column::ChainSeq.is_not_null())
        .order_by_asc(entry::Column::ChainSeq)
        .all(db)
        .await
        .expect("entries")
}

/// Reads past the read log's retention keep only their signed place in the chain: the
/// log no longer shows them, the chain still verifies, and an entry emptied any other way
/// (a stub with a signature retention gave another entry) is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_past_their_retention_leave_the_log_and_the_chain_still_verifies() {
    let demo = Demo::start().await;
    let distributor = demo.first("distributor", "partner_user");
    let partner_admin = demo.first("distributor", "partner_admin");
    let partner = distributor.partner_id.clone().expect("a partner");
    let db = demo.system.databases.account.clone();
    let look = "query RetainedLook { contacts(first: 3) { nodes { id lastName } } }";
    demo.ok(&distributor, look, json!({})).await;
    crm_service_common::audit::reads::flush_all().await;
    sealed(&db).await;
    let reads_in_log =
        "{ auditLog(filter: { action: READ }, first: 200) { account { entries { recordId } } } }";
    let before = demo.ok(&partner_admin, reads_in_log, json!({})).await;
    let logged = before["auditLog"]["account"]["entries"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert!(logged >= 3, "{before}");

    // Kept for 365 days: nothing this young goes.
    let key = chain::key_for(crm_account::SERVICE).expect("the audit key");
    let retention = crm_service_common::retention::READ_LOG.parse(Some("365"));
    let now = crm_service_common::clock::now();
    let cutoff = retention.cutoff(now).expect("a cutoff");
    assert_eq!(
        chain::prune_reads(&db, &key, cutoff)
            .await
            .expect("retention"),
        0
    );
    // A year and a day later, every read goes.
    let later = retention
        .cutoff(now + chrono::Duration::days(366))
        .expect("a cutoff");
    let pruned = chain::prune_reads(&db, &key, later)
        .await
        .expect("retention");
    assert!(pruned >= logged, "{pruned} of {logged}");
    for reader in [&partner_admin, &demo.first("internal", "admin")] {
        let after = demo.ok(reader, reads_in_log, json!({})).await;
        assert_eq!(
            after["auditLog"]["account"]["entries"],
            json!([]),
            "{after}"
        );
    }
    let stubs = chain_reads(&db, &partner).await;
    let stub = stubs
        .iter()
        .find(|e| e.pruned_at.is_some())
        .expect("a pruned read")
        .clone();
    assert_eq!(
        (
            stub.record_id.as_str(),
            stub.actor.as_str(),
            stub.detail.as_deref()
        ),
        ("", "", None),
        "nothing of the read is left but its place"
    );
    let verify = || async {
        chain::verify(
            &db,
            crm_account::SERVICE,
            &chain::trusted_keys(),
            Some(std::slice::from_ref(&partner)),
        )
        .await
        .expect("a verification")
        .into_iter()
        .next()
        .expect("the partner's chain")
    };
    let report = verify().await;
    assert!(report.intact(), "{report:?}");

    // A new read, emptied with another entry's retention signature: named.
    demo.ok(&distributor, look, json!({})).await;
    crm_service_common::audit::reads::flush_all().await;
    sealed(&db).await;
    let fresh = chain_reads(&db, &partner)
        .await
        .into_iter()
        .find(|e| e.pruned_at.is_none() && e.action == "read")
        .expect("a fresh read");
    let mut forged = fresh.clone().into_active_model();
    forged.record_id = sea_orm::ActiveValue::Set(String::new());
    forged.detail = sea_orm::ActiveValue::Set(None);
    forged.pruned_at = sea_orm::ActiveValue::Set(stub.pruned_at);
    forged.prune_key = sea_orm::ActiveValue::Set(stub.prune_key.clone());
    forged.prune_signature = sea_orm::ActiveValue::Set(stub.prune_signature.clone());
    forged.update(&db).await.expect("a forged stub");
    let (at, reason) = broken_at(&verify().await);
    assert_eq!(at, fresh.chain_seq.expect("sealed"), "{reason}");
    assert!(
        reason.contains("without a signed retention record"),
        "{reason}"
    );
    demo.finish().await;
}

/// Closed cases past their retention are blanked (subject, description, comments, their
/// history's values) and the blanking is in the chain; open cases stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_cases_past_their_retention_are_blanked_and_open_ones_kept() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let account = demo
        .ok(&admin, "{ accounts(first: 1) { nodes { id } } }", json!({}))
        .await["accounts"]["nodes"][0]["id"]
        .clone();
    let open_case = "mutation($a: ID!, $s: String!) { createCase(input: { accountId: $a, subject: $s, description: \"Call back\", priority: LOW, channel: EMAIL }) { id version } }";
    let kept = demo
        .ok(
            &admin,
            open_case,
            json!({ "a": account, "s": "Still open" }),
        )
        .await["createCase"]["id"]
        .clone();
    let closing = demo
        .ok(
            &admin,
            open_case,
            json!({ "a": account, "s": "Done and dusted" }),
        )
        .await["createCase"]
        .clone();
    demo.ok(
        &admin,
        "mutation($c: ID!) { createCaseComment(input: { caseId: $c, body: \"Spoke to Ann\" }) { id } }",
        json!({ "c": closing["id"] }),
    )
    .await;
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { updateCase(id: $id, version: $v, input: { status: RESOLVED }) { status } }",
        json!({ "id": closing["id"], "v": closing["version"] }),
    )
    .await;
    let db = demo.system.databases.account.clone();
    // A retention of a day, applied a day and a minute later.
    let cutoff = crm_service_common::clock::now() + chrono::Duration::minutes(1);
    let txn = crm_service_common::db::begin_write(&db)
        .await
        .expect("a txn");
    let blanked = crm_account::retention::blank_closed_cases(&txn, cutoff)
        .await
        .expect("retention");
    crm_service_common::db::commit(txn).await.expect("commit");
    assert!(blanked >= 1, "{blanked}");
    let read = "query($id: ID!) { case(id: $id) { subject description status comments(first: 10) { nodes { body } } history(first: 50) { field valuesWithheld } } }";
    let gone = demo.ok(&admin, read, json!({ "id": closing["id"] })).await;
    let gone = &gone["case"];
    assert_eq!(
        (&gone["subject"], &gone["description"], &gone["status"]),
        (&json!("[erased]"), &Value::Null, &json!("RESOLVED")),
        "{gone}"
    );
    assert_eq!(gone["comments"]["nodes"][0]["body"], "[erased]", "{gone}");
    assert!(
        gone["history"]
            .as_array()
            .is_some_and(|h| h.iter().all(|c| c["valuesWithheld"] == true)),
        "{gone}"
    );
    let still = demo.ok(&admin, read, json!({ "id": kept })).await;
    assert_eq!(still["case"]["subject"], "Still open", "{still}");
    let log = demo
        .ok(
            &admin,
            "query($id: ID!) { auditLog(filter: { recordId: $id, action: ERASED }) { account { entries { action } } } }",
            json!({ "id": closing["id"] }),
        )
        .await;
    assert_eq!(
        log["auditLog"]["account"]["entries"][0]["action"], "ERASED",
        "{log}"
    );
    sealed(&db).await;
    let report = company_chain(&db).await;
    assert!(report.intact(), "{report:?}");
    demo.finish().await;
}
