//! Imports and exports through the gateway, as the README's "Import and export" tells them:
//! a file staged, checked by a dry run that keeps nothing, run in batches as its owner with
//! each row's outcome and reason, look-alikes found by the one normaliser, references by
//! external id, and every list exported with its filters, as the caller sees it.

use std::time::Duration;

use crm_e2e::demo::{Demo, partner_of};
use crm_identity::user;
use serde_json::{Value, json};

const IMPORT: &str = "id state dryRun rowCount processed created updated unchanged refused skipped duplicates lastError";

/// Stages `content` as `owner`: the import.
async fn create(demo: &Demo, owner: &user::Model, ty: &str, format: &str, content: &str) -> Value {
    demo.ok(
        owner,
        &format!("mutation($t: ImportType!, $f: ImportFormat!, $c: String!) {{ createImport(input: {{ type: $t, format: $f, content: $c, name: \"test\" }}) {{ {IMPORT} }} }}"),
        json!({ "t": ty, "f": format, "c": content }),
    )
    .await["createImport"]
        .clone()
}

/// Starts `mutation` (`checkImport`, `runImport`) and waits for the pass to end.
async fn pass(demo: &Demo, owner: &user::Model, id: &str, mutation: &str) -> Value {
    demo.ok(
        owner,
        &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ id }} }}"),
        json!({ "id": id }),
    )
    .await;
    settled(demo, owner, id).await
}

/// The import once its pass has ended (checked, done or failed).
async fn settled(demo: &Demo, owner: &user::Model, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = demo
            .ok(
                owner,
                &format!("query($id: ID!) {{ import(id: $id) {{ {IMPORT} }} }}"),
                json!({ "id": id }),
            )
            .await["import"]
            .clone();
        if matches!(found["state"].as_str(), Some("CHECKED" | "DONE" | "FAILED")) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import did not end: {found}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The import's rows by external id: outcome, code, field, message, duplicates, record id.
async fn rows(demo: &Demo, owner: &user::Model, id: &str) -> Vec<Value> {
    demo.ok(
        owner,
        "query($id: ID!) { import(id: $id) { rows(first: 500) { number externalId outcome recordId code field message duplicates } } }",
        json!({ "id": id }),
    )
    .await["import"]["rows"]
        .as_array()
        .expect("rows")
        .clone()
}

fn row<'a>(rows: &'a [Value], external_id: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["externalId"] == external_id)
        .unwrap_or_else(|| panic!("a row {external_id} in {rows:?}"))
}

async fn account_named(demo: &Demo, who: &user::Model, text: &str) -> Vec<Value> {
    demo.ok(
        who,
        "query($t: String) { accounts(first: 10, filter: { text: $t }) { nodes { id name industry externalId } } }",
        json!({ "t": text }),
    )
    .await["accounts"]["nodes"]
        .as_array()
        .expect("accounts")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_file_is_checked_without_writing_then_run_row_by_row() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let existing = demo
        .ok(
            &admin,
            "mutation { upsertAccount(externalId: \"ERP-7\", input: { name: \"Northwind Traders\", domain: \"northwind.example\", segment: SMB, tier: STANDARD, lifecycleStage: CUSTOMER, industry: \"Retail\" }) { id version } }",
            json!({}),
        )
        .await["upsertAccount"]
        .clone();
    let csv = "externalId,name,domain,segment,tier,lifecycleStage,industry\r\n\
        IMP-1,Quillon Optics,quillon-optics.example,SMB,STANDARD,PROSPECT,Optics\r\n\
        IMP-2,Huge Corp,,HUGE,STANDARD,PROSPECT,\r\n\
        IMP-3,,,SMB,STANDARD,PROSPECT,\r\n\
        IMP-4,\"NORTHWIND TRADERS, Inc.\",,SMB,STANDARD,PROSPECT,\r\n\
        ERP-7,,,,,,Wholesale\r\n\
        IMP-6,\"=HYPERLINK(\"\"http://evil.example\"\")\",,SMB,STANDARD,PROSPECT,\r\n";
    // The bulk upsert an import sends, called directly: a dry run keeps nothing.
    let direct = demo
        .ok(
            &admin,
            "mutation($rows: [AccountImportRow!]!, $dry: Boolean!) { importAccounts(dryRun: $dry, rows: $rows) { dryRun rows { outcome id } } }",
            json!({ "dry": true, "rows": [{ "externalId": "D-1", "input": { "name": "Direct Dry", "segment": "SMB", "tier": "STANDARD", "lifecycleStage": "PROSPECT" } }] }),
        )
        .await;
    assert_eq!(
        direct["importAccounts"],
        json!({ "dryRun": true, "rows": [{ "outcome": "CREATED", "id": null }] })
    );
    assert!(
        account_named(&demo, &admin, "Direct Dry").await.is_empty(),
        "a dry run keeps nothing"
    );
    let staged = create(&demo, &admin, "ACCOUNT", "CSV", csv).await;
    assert_eq!(staged["state"], "STAGED");
    assert_eq!(staged["rowCount"], 6);
    let id = staged["id"].as_str().expect("an id").to_owned();

    // The dry run: every outcome, nothing kept.
    let checked = pass(&demo, &admin, &id, "checkImport").await;
    assert_eq!(
        (&checked["state"], &checked["dryRun"], &checked["processed"]),
        (&json!("CHECKED"), &json!(true), &json!(6)),
        "{checked}"
    );
    assert_eq!(
        [
            &checked["created"],
            &checked["updated"],
            &checked["refused"],
            &checked["duplicates"]
        ],
        [&json!(3), &json!(1), &json!(2), &json!(1)],
        "{checked}"
    );
    let report = rows(&demo, &admin, &id).await;
    assert_eq!(row(&report, "IMP-1")["outcome"], "CREATED");
    let huge = row(&report, "IMP-2");
    assert_eq!(huge["outcome"], "REFUSED", "{huge}");
    assert!(
        huge["message"].as_str().is_some_and(|m| m.contains("HUGE")),
        "{huge}"
    );
    let nameless = row(&report, "IMP-3");
    assert_eq!(
        (&nameless["outcome"], &nameless["code"], &nameless["field"]),
        (
            &json!("REFUSED"),
            &json!("VALIDATION"),
            &json!("input.name")
        ),
        "{nameless}"
    );
    assert_eq!(row(&report, "IMP-4")["duplicates"], json!([existing["id"]]));
    assert_eq!(row(&report, "ERP-7")["outcome"], "UPDATED");
    assert_eq!(row(&report, "ERP-7")["recordId"], existing["id"]);
    let kept = account_named(&demo, &admin, "Quillon").await;
    assert!(
        kept.is_empty(),
        "a dry run keeps nothing: {kept:?} {report:?}"
    );
    assert_eq!(
        account_named(&demo, &admin, "Northwind").await[0]["industry"],
        "Retail"
    );

    // Nobody else reads the import, not even another admin.
    let other = demo
        .users
        .iter()
        .find(|u| u.roles == "admin" && u.id != admin.id)
        .cloned()
        .unwrap_or_else(|| demo.first("internal", "sales"));
    let theirs = demo
        .send(
            &other,
            "query($id: ID!) { import(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(theirs["data"]["import"], Value::Null, "{theirs}");

    // The run: the same outcomes, kept; a refused row loses nothing else.
    let done = pass(&demo, &admin, &id, "runImport").await;
    assert_eq!(
        [
            &done["state"],
            &done["created"],
            &done["updated"],
            &done["refused"]
        ],
        [&json!("DONE"), &json!(3), &json!(1), &json!(2)],
        "{done}"
    );
    let quillon = account_named(&demo, &admin, "Quillon").await;
    assert_eq!(quillon.len(), 1);
    assert_eq!(quillon[0]["externalId"], "IMP-1");
    assert_eq!(
        account_named(&demo, &admin, "Northwind")
            .await
            .iter()
            .find(|a| a["externalId"] == "ERP-7")
            .expect("ERP-7")["industry"],
        "Wholesale"
    );
    let refused = demo
        .ok(
            &admin,
            "query($id: ID!) { import(id: $id) { rows(outcome: REFUSED) { externalId } } }",
            json!({ "id": id }),
        )
        .await["import"]["rows"]
        .clone();
    assert_eq!(
        refused,
        json!([{ "externalId": "IMP-2" }, { "externalId": "IMP-3" }])
    );

    // What the written rows said is forgotten (they are records now); refused rows keep
    // theirs for the report.
    let kept = demo
        .ok(
            &admin,
            "query($id: ID!) { import(id: $id) { rows { externalId data } } }",
            json!({ "id": id }),
        )
        .await["import"]["rows"]
        .clone();
    for row in kept.as_array().expect("rows") {
        let refused = matches!(row["externalId"].as_str(), Some("IMP-2" | "IMP-3"));
        assert_eq!(row["data"] != "{}", refused, "{row}");
    }

    // A finished run is not run again; the same file imported anew changes nothing.
    let again = demo
        .send(
            &admin,
            "mutation($id: ID!) { runImport(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        again["errors"][0]["extensions"]["code"], "INVALID_STATE",
        "{again}"
    );
    let anew = create(&demo, &admin, "ACCOUNT", "CSV", csv).await;
    let anew = pass(
        &demo,
        &admin,
        anew["id"].as_str().expect("an id"),
        "runImport",
    )
    .await;
    assert_eq!(
        [
            &anew["created"],
            &anew["updated"],
            &anew["unchanged"],
            &anew["refused"]
        ],
        [&json!(0), &json!(0), &json!(4), &json!(2)],
        "{anew}"
    );

    // Deleted, it is gone with its rows.
    demo.ok(
        &admin,
        "mutation($id: ID!) { deleteImport(id: $id) }",
        json!({ "id": id }),
    )
    .await;
    let gone = demo
        .ok(
            &admin,
            "query($id: ID!) { import(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(gone["import"], Value::Null);

    // The export of the list, filtered as the list is, neutralises the formula.
    let export = reqwest::Client::new()
        .get(format!("{}/export", demo.url()))
        .query(&[
            ("list", "accounts"),
            ("fields", "externalId,name,industry"),
            ("filter", r#"{"text":"HYPERLINK"}"#),
        ])
        .bearer_auth(demo.token(&admin))
        .send()
        .await
        .expect("export");
    assert_eq!(export.status(), 200);
    assert_eq!(
        export.headers()["content-type"]
            .to_str()
            .unwrap_or_default(),
        "text/csv; charset=utf-8"
    );
    let text = export.text().await.expect("text");
    assert_eq!(
        text,
        "externalId,name,industry\r\nIMP-6,\"'=HYPERLINK(\"\"http://evil.example\"\")\",\r\n"
    );
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sales_users_contacts_refer_to_accounts_by_external_id_within_its_rights() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let sales = demo.first("internal", "sales");
    let other_owner = demo
        .users
        .iter()
        .find(|u| u.kind == "internal" && u.id != sales.id && u.roles != "admin")
        .cloned()
        .expect("another internal user");
    for (external, owner) in [("ERP-OWN", &sales.id), ("ERP-OTHER", &other_owner.id)] {
        demo.ok(
            &admin,
            "mutation($x: String!, $o: ID) { upsertAccount(externalId: $x, input: { name: $x, segment: SMB, tier: STANDARD, lifecycleStage: CUSTOMER, ownerUserId: $o }) { id } }",
            json!({ "x": external, "o": owner }),
        )
        .await;
    }
    let own = demo
        .ok(
            &admin,
            "{ accounts(first: 1, filter: { text: \"ERP-OWN\" }) { nodes { id } } }",
            json!({}),
        )
        .await["accounts"]["nodes"][0]["id"]
        .clone();
    let known = demo
        .ok(
            &admin,
            "mutation($a: ID!) { createContact(input: { accountId: $a, firstName: \"Known\", lastName: \"Person\", email: \"known.person@own.example\" }) { id } }",
            json!({ "a": own }),
        )
        .await["createContact"]["id"]
        .clone();
    let json_file = json!([
        { "externalId": "C-1", "accountExternalId": "ERP-OWN", "firstName": "Ada", "lastName": "One", "phone": "+44 20 7946 0001" },
        { "externalId": "C-2", "accountExternalId": "ERP-OTHER", "firstName": "Bea", "lastName": "Two" },
        { "externalId": "C-3", "accountExternalId": "ERP-MISSING", "firstName": "Cy", "lastName": "Three" },
        { "externalId": "C-4", "accountExternalId": "ERP-OWN", "firstName": "Known", "lastName": "Again", "email": " Known.Person@OWN.example " },
        { "externalId": "C-5", "accountExternalId": "ERP-OWN", "firstName": "Dee", "lastName": "Five", "quantity": 3 }
    ]);
    // A key that is not a contact's column refuses the file whole.
    let refused = demo
        .send(
            &sales,
            "mutation($c: String!) { createImport(input: { type: CONTACT, format: JSON, content: $c }) { id } }",
            json!({ "c": json_file.to_string() }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "VALIDATION",
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"quantity\"")),
        "{refused}"
    );
    let mut rows_of_file = json_file.as_array().expect("rows").clone();
    rows_of_file.pop();
    let staged = create(
        &demo,
        &sales,
        "CONTACT",
        "JSON",
        &Value::from(rows_of_file).to_string(),
    )
    .await;
    let id = staged["id"].as_str().expect("an id").to_owned();
    demo.ok(
        &sales,
        "mutation($id: ID!) { runImport(id: $id, skipDuplicates: true) { id } }",
        json!({ "id": id }),
    )
    .await;
    let done = settled(&demo, &sales, &id).await;
    assert_eq!(
        [
            &done["state"],
            &done["created"],
            &done["refused"],
            &done["skipped"]
        ],
        [&json!("DONE"), &json!(1), &json!(2), &json!(1)],
        "{done}"
    );
    let report = rows(&demo, &sales, &id).await;
    assert_eq!(row(&report, "C-1")["outcome"], "CREATED");
    let other = row(&report, "C-2");
    assert_eq!(
        (&other["outcome"], &other["code"]),
        (&json!("REFUSED"), &json!("FORBIDDEN")),
        "{other}"
    );
    let missing = row(&report, "C-3");
    assert_eq!(
        (&missing["code"], &missing["field"]),
        (&json!("VALIDATION"), &json!("references.accountId")),
        "{missing}"
    );
    let again = row(&report, "C-4");
    assert_eq!(
        (&again["outcome"], &again["duplicates"]),
        (&json!("SKIPPED_DUPLICATE"), &json!([known])),
        "{again}"
    );
    let contacts = demo
        .ok(
            &sales,
            "query($a: ID) { contacts(first: 10, filter: { accountId: $a }) { nodes { firstName externalId } } }",
            json!({ "a": own }),
        )
        .await["contacts"]["nodes"]
        .clone();
    assert_eq!(
        contacts
            .as_array()
            .map(|c| c.iter().filter(|c| c["externalId"] == "C-1").count()),
        Some(1),
        "{contacts}"
    );
    demo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_imports_only_its_own_products_and_exports_only_its_slice() {
    let demo = Demo::start().await;
    let supplier = demo.first("supplier", "partner_user");
    let mine = partner_of(&supplier);
    let theirs = partner_of(&demo.another("supplier", "partner_user", &[mine.as_str()]));

    // A type it may not write at all: the import fails whole, with the reason.
    let accounts = create(
        &demo,
        &supplier,
        "ACCOUNT",
        "CSV",
        "externalId,name\nA,Acme\n",
    )
    .await;
    let failed = pass(
        &demo,
        &supplier,
        accounts["id"].as_str().expect("an id"),
        "runImport",
    )
    .await;
    assert_eq!(failed["state"], "FAILED", "{failed}");
    assert!(
        failed["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("may not import accounts")),
        "{failed}"
    );

    let csv = format!(
        "externalId,sku,name,supplierPartnerId,unitPrice,currency\n\
         P-1,IMP-SKU-1,Import lens,{mine},12.50,EUR\n\
         P-2,IMP-SKU-2,Not mine,{theirs},3.00,EUR\n"
    );
    let staged = create(&demo, &supplier, "PRODUCT", "CSV", &csv).await;
    let done = pass(
        &demo,
        &supplier,
        staged["id"].as_str().expect("an id"),
        "runImport",
    )
    .await;
    assert_eq!(
        [&done["created"], &done["refused"]],
        [&json!(1), &json!(1)],
        "{done}"
    );
    let report = rows(&demo, &supplier, staged["id"].as_str().expect("an id")).await;
    assert_eq!(row(&report, "P-2")["code"], "FORBIDDEN");

    // Its export of accounts is its list of accounts, with the masked domain empty.
    let listed = every_id(&demo, &supplier, "accounts").await;
    assert!(!listed.is_empty());
    let client = reqwest::Client::new();
    let export = client
        .get(format!("{}/export", demo.url()))
        .query(&[("list", "accounts"), ("fields", "id,domain")])
        .bearer_auth(demo.token(&supplier))
        .send()
        .await
        .expect("export");
    assert_eq!(export.status(), 200);
    let text = export.text().await.expect("text");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,domain"));
    let exported: Vec<String> = lines
        .map(|line| {
            let (id, domain) = line.split_once(',').expect("two cells");
            assert_eq!(domain, "", "a supplier's export shows no domain: {line}");
            id.to_owned()
        })
        .collect();
    assert_eq!(exported, listed, "the export is the list");

    // JSON, with the list's filter; a distributor's orders.
    let distributor = demo.first("distributor", "partner_user");
    let orders = every_id(&demo, &distributor, "orders").await;
    let export = client
        .get(format!("{}/export", demo.url()))
        .query(&[
            ("list", "orders"),
            ("format", "json"),
            ("fields", "id,status"),
        ])
        .bearer_auth(demo.token(&distributor))
        .send()
        .await
        .expect("export");
    assert_eq!(export.status(), 200);
    let exported: Vec<Value> = export.json().await.expect("a JSON array");
    assert_eq!(
        exported
            .iter()
            .map(|o| o["id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>(),
        orders
    );

    // Refusals are ordinary errors: an unknown list, a field it may not filter on, no
    // credentials.
    for (query, status, code) in [
        (vec![("list", "secrets")], 400, "BAD_REQUEST"),
        (
            vec![("list", "accounts"), ("fields", "nope")],
            400,
            "BAD_REQUEST",
        ),
    ] {
        let refused = client
            .get(format!("{}/export", demo.url()))
            .query(&query)
            .bearer_auth(demo.token(&supplier))
            .send()
            .await
            .expect("export");
        assert_eq!(refused.status().as_u16(), status);
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
    }
    let bad_order = client
        .get(format!("{}/export", demo.url()))
        .query(&[("list", "accounts"), ("orderBy", r#"{"field":"COLOUR"}"#)])
        .bearer_auth(demo.token(&supplier))
        .send()
        .await
        .expect("export");
    assert_eq!(bad_order.status().as_u16(), 400, "the list's own refusal");
    let body: Value = bad_order.json().await.expect("json");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("COLOUR")),
        "{body}"
    );
    let anonymous = client
        .get(format!("{}/export?list=accounts", demo.url()))
        .send()
        .await
        .expect("export");
    assert_eq!(anonymous.status().as_u16(), 401);
    demo.finish().await;
}

/// Every id of `list` as `who` reads it, page by page.
async fn every_id(demo: &Demo, who: &user::Model, list: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = demo
            .ok(
                who,
                &format!("query($after: String) {{ {list}(first: 200, after: $after) {{ nodes {{ id }} pageInfo {{ hasNextPage endCursor }} }} }}"),
                json!({ "after": after }),
            )
            .await[list]
            .clone();
        ids.extend(
            page["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|n| n["id"].as_str().expect("an id").to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            return ids;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_is_sent_in_parts_and_resumes_after_a_stop() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let supplier = partner_of(&demo.first("supplier", "partner_user"));
    let account = demo
        .ok(&admin, "{ accounts(first: 1) { nodes { id } } }", json!({}))
        .await["accounts"]["nodes"][0]["id"]
        .clone();
    demo.ok(
        &admin,
        "mutation($s: ID!) { upsertProduct(externalId: \"P-A\", input: { sku: \"IMP-A\", name: \"Part A\", supplierPartnerId: $s, unitPrice: \"2.00\", currency: \"EUR\" }) { id } }",
        json!({ "s": supplier }),
    )
    .await;

    // 1,800 orders in three parts (each a file of its own), numbered on from part to part.
    let part = |from: usize| {
        Value::from(
            (from..from + 600)
                .map(|i| json!({ "externalId": format!("O-{i}"), "accountId": account, "currency": "EUR", "number": format!("IMP-{i}") }))
                .collect::<Vec<_>>(),
        )
        .to_string()
    };
    let staged = create(&demo, &admin, "ORDER", "JSON", &part(0)).await;
    let id = staged["id"].as_str().expect("an id").to_owned();
    for from in [600, 1200] {
        demo.ok(
            &admin,
            "mutation($id: ID!, $c: String!) { addImportRows(id: $id, content: $c) { rowCount } }",
            json!({ "id": id, "c": part(from) }),
        )
        .await;
    }
    let last = demo
        .ok(
            &admin,
            "query($id: ID!) { import(id: $id) { rowCount rows(first: 1, after: 1799) { number externalId } } }",
            json!({ "id": id }),
        )
        .await["import"]
        .clone();
    assert_eq!(
        last,
        json!({ "rowCount": 1800, "rows": [{ "number": 1800, "externalId": "O-1799" }] })
    );

    // Stopped once a batch is in; what was written stays, and the run goes on from there.
    demo.ok(
        &admin,
        "mutation($id: ID!) { runImport(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let stopped = loop {
        let found = demo
            .ok(
                &admin,
                &format!("query($id: ID!) {{ import(id: $id) {{ {IMPORT} }} }}"),
                json!({ "id": id }),
            )
            .await["import"]
            .clone();
        if found["processed"].as_i64().unwrap_or_default() > 0 {
            let cancelled = demo
                .ok(
                    &admin,
                    &format!("mutation($id: ID!) {{ cancelImport(id: $id) {{ {IMPORT} }} }}"),
                    json!({ "id": id }),
                )
                .await["cancelImport"]
                .clone();
            break cancelled;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no batch went in: {found}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stopped["state"], "CANCELLED");
    let written_before = stopped["processed"].as_i64().expect("processed");
    assert!(written_before < 1800, "stopped mid-run: {stopped}");
    let done = pass(&demo, &admin, &id, "runImport").await;
    assert_eq!(
        [
            &done["state"],
            &done["processed"],
            &done["created"],
            &done["refused"]
        ],
        [&json!("DONE"), &json!(1800), &json!(1800), &json!(0)],
        "{done}"
    );
    let orders = demo
        .ok(
            &admin,
            "{ orders(filter: { text: \"IMP-\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(orders["orders"]["totalCount"], 1800, "every order once");

    // Lines refer to their order and product by external id; a line of an order the file
    // names but nobody made is refused with the reference.
    let lines = "externalId,orderExternalId,productExternalId,quantity,unitPrice,currency\n\
                 L-1,O-1,P-A,3,2.00,EUR\n\
                 L-2,O-9999,P-A,1,2.00,EUR\n";
    let staged = create(&demo, &admin, "ORDER_LINE", "CSV", lines).await;
    let line_import = staged["id"].as_str().expect("an id").to_owned();
    let done = pass(&demo, &admin, &line_import, "runImport").await;
    assert_eq!(
        [&done["created"], &done["refused"]],
        [&json!(1), &json!(1)],
        "{done}"
    );
    let report = rows(&demo, &admin, &line_import).await;
    assert_eq!(row(&report, "L-2")["field"], "references.orderId");
    let line = demo
        .ok(
            &admin,
            "query($id: ID!) { orderLine(id: $id) { order { number total { amount } } } }",
            json!({ "id": row(&report, "L-1")["recordId"] }),
        )
        .await;
    assert_eq!(
        line["orderLine"]["order"],
        json!({ "number": "IMP-1", "total": { "amount": "6.00" } }),
        "{line}"
    );
    demo.finish().await;
}
