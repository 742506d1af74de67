//! The account subgraph over HTTP, against a fresh database per test (SQLite, or
//! PostgreSQL when `DATABASE_URL` is set).

use crate::support::{AccountSteps, TestApp, id};
use serde_json::{Value, json};

const ACCOUNT_FIELDS: &str = "id name domain segment tier lifecycleStage version archivedAt externalId internalNote territory { code }";

#[tokio::test]
async fn an_account_is_created_read_updated_archived_and_hidden_from_lists() {
    let app = crate::support::spawn().await;
    let territory = app.create_territory("DE-NORTH").await;
    let created = app
        .create_account("Harbor Foods", json!({ "domain": "Harbor-Foods.EXAMPLE", "territoryId": territory, "internalNote": "credit ok" }))
        .await;
    let account_id = id(&created);
    assert_eq!(created["version"], 1);
    assert_eq!(created["territory"]["code"], "DE-NORTH");

    let read = app
        .ok(
            &format!("query($id: ID!) {{ account(id: $id) {{ {ACCOUNT_FIELDS} }} }}"),
            json!({ "id": account_id }),
        )
        .await;
    assert_eq!(
        read["account"]["domain"], "harbor-foods.example",
        "domains are normalised"
    );
    assert_eq!(read["account"]["internalNote"], "credit ok");

    let updated = app
        .ok(
            &format!("mutation($id: ID!) {{ updateAccount(id: $id, version: 1, input: {{ tier: KEY, internalNote: null }}) {{ {ACCOUNT_FIELDS} }} }}"),
            json!({ "id": account_id }),
        )
        .await;
    assert_eq!(updated["updateAccount"]["tier"], "KEY");
    assert_eq!(
        updated["updateAccount"]["internalNote"],
        Value::Null,
        "null clears an optional field"
    );
    assert_eq!(
        updated["updateAccount"]["name"], "Harbor Foods",
        "fields left out stay"
    );
    assert_eq!(updated["updateAccount"]["version"], 2);

    let archived = app
        .ok(
            "mutation($id: ID!) { archiveAccount(id: $id, version: 2) { archivedAt version } }",
            json!({ "id": account_id }),
        )
        .await;
    assert!(archived["archiveAccount"]["archivedAt"].is_string());
    let lists = app
        .ok(
            "{ visible: accounts { totalCount } all: accounts(filter: { includeArchived: true }) { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        lists["visible"]["totalCount"], 0,
        "archived records leave lists"
    );
    assert_eq!(lists["all"]["nodes"][0]["id"], account_id.as_str());
    let still_readable = app
        .ok(
            "query($id: ID!) { account(id: $id) { id } }",
            json!({ "id": account_id }),
        )
        .await;
    assert_eq!(
        still_readable["account"]["id"],
        account_id.as_str(),
        "archived records stay readable by id"
    );
}

#[tokio::test]
async fn lists_filter_search_and_order() {
    let app = crate::support::spawn().await;
    let north = app.create_territory("NORTH").await;
    app.create_account(
        "Zenith Motors",
        json!({ "segment": "ENTERPRISE", "territoryId": north }),
    )
    .await;
    app.create_account(
        "Alpine Health",
        json!({ "segment": "SMB", "domain": "alpine-care.example" }),
    )
    .await;
    app.create_account(
        "Granite Labs",
        json!({ "segment": "ENTERPRISE", "lifecycleStage": "PROSPECT" }),
    )
    .await;

    let names = |v: &Value| -> Vec<String> {
        v["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let data = app
        .ok(
            r#"{
              enterprise: accounts(filter: { segment: ENTERPRISE }) { totalCount nodes { name } }
              north: accounts(filter: { territoryId: "__NORTH__" }) { nodes { name } }
              search: accounts(filter: { text: "ALPINE-CARE" }) { nodes { name } }
              searchName: accounts(filter: { text: "gran" }) { nodes { name } }
              likeIsLiteral: accounts(filter: { text: "%" }) { totalCount }
              asc: accounts { nodes { name } }
              desc: accounts(orderBy: { field: NAME, direction: DESC }) { nodes { name } }
              prospects: accounts(filter: { lifecycleStage: PROSPECT, segment: ENTERPRISE }) { nodes { name } }
            }"#
            .replace("__NORTH__", &north)
            .as_str(),
            json!({}),
        )
        .await;
    assert_eq!(data["enterprise"]["totalCount"], 2);
    assert_eq!(
        names(&data["enterprise"]),
        ["Granite Labs", "Zenith Motors"]
    );
    assert_eq!(names(&data["north"]), ["Zenith Motors"]);
    assert_eq!(
        names(&data["search"]),
        ["Alpine Health"],
        "text search matches the domain, case-insensitively"
    );
    assert_eq!(names(&data["searchName"]), ["Granite Labs"]);
    assert_eq!(
        data["likeIsLiteral"]["totalCount"], 0,
        "% in search text is matched literally"
    );
    assert_eq!(
        names(&data["asc"]),
        ["Alpine Health", "Granite Labs", "Zenith Motors"]
    );
    assert_eq!(
        names(&data["desc"]),
        ["Zenith Motors", "Granite Labs", "Alpine Health"]
    );
    assert_eq!(names(&data["prospects"]), ["Granite Labs"]);
}

/// Walks every page of `accounts` in the given ordering and returns the ids in order.
async fn walk_pages(app: &TestApp, order: &str, page_size: i32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    for _ in 0..100 {
        let data = app
            .ok(
                &format!("query($after: String, $first: Int) {{ accounts(first: $first, after: $after, orderBy: {order}) {{ edges {{ cursor node {{ id }} }} pageInfo {{ hasNextPage endCursor }} }} }}"),
                json!({ "after": after, "first": page_size }),
            )
            .await;
        let page = &data["accounts"];
        for edge in page["edges"].as_array().expect("edges") {
            ids.push(edge["node"]["id"].as_str().expect("id").to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return ids;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    panic!("pagination did not end");
}

#[tokio::test]
async fn pages_have_no_duplicates_or_gaps_in_any_ordering() {
    let app = crate::support::spawn().await;
    // Repeated names force the id tie-breaker to do its job.
    for n in 0..23 {
        app.create_account(&format!("Account {}", n % 5), json!({}))
            .await;
    }
    let full = app
        .ok("{ accounts(first: 200) { nodes { id } } }", json!({}))
        .await;
    let mut all: Vec<String> = full["accounts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(id)
        .collect();
    all.sort();
    for order in [
        "{ field: NAME }",
        "{ field: NAME, direction: DESC }",
        "{ field: CREATED_AT }",
        "{ field: UPDATED_AT, direction: DESC }",
    ] {
        for page_size in [1, 4, 7, 23, 50] {
            let walked = walk_pages(&app, order, page_size).await;
            let mut sorted = walked.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                walked.len(),
                "duplicates with {order} / {page_size}"
            );
            assert_eq!(sorted, all, "gaps with {order} / {page_size}");
        }
    }
}

#[tokio::test]
async fn page_arguments_and_cursors_are_validated() {
    let app = crate::support::spawn().await;
    app.create_account("One", json!({})).await;
    let too_many = app
        .error("{ accounts(first: 201) { totalCount } }", json!({}))
        .await;
    assert_eq!(too_many["extensions"]["code"], "VALIDATION");
    assert_eq!(too_many["extensions"]["field"], "first");
    let forged = app
        .error(
            r#"{ accounts(after: "not-a-cursor") { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(forged["extensions"]["code"], "VALIDATION");
    assert_eq!(forged["extensions"]["field"], "after");
    let page = app
        .ok(
            "{ accounts(first: 1, orderBy: { field: NAME }) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let cursor = page["accounts"]["pageInfo"]["endCursor"].clone();
    let mismatch = app
        .error("query($c: String) { accounts(after: $c, orderBy: { field: CREATED_AT }) { totalCount } }", json!({ "c": cursor }))
        .await;
    assert_eq!(
        mismatch["extensions"]["code"], "VALIDATION",
        "a cursor only continues its own ordering"
    );
    let empty = app
        .ok(
            "{ accounts(first: 0) { edges { cursor } pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(empty["accounts"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(empty["accounts"]["pageInfo"]["endCursor"], Value::Null);
}

#[tokio::test]
async fn upsert_by_external_id_is_idempotent() {
    let app = crate::support::spawn().await;
    let upsert = "mutation($input: AccountInput!) { upsertAccount(externalId: \"ERP-1\", input: $input) { id version name tier externalId } }";
    let input = json!({ "name": "Vertex Retail", "segment": "SMB", "tier": "STANDARD", "lifecycleStage": "CUSTOMER" });
    let first = app.ok(upsert, json!({ "input": input })).await["upsertAccount"].clone();
    let second = app.ok(upsert, json!({ "input": input })).await["upsertAccount"].clone();
    assert_eq!(
        first, second,
        "the same input twice changes nothing, not even the version"
    );
    assert_eq!(first["externalId"], "ERP-1");
    assert_eq!(app.count("accounts").await, 1);

    let changed =
        app.ok(upsert, json!({ "input": { "tier": "KEY" } })).await["upsertAccount"].clone();
    assert_eq!(changed["id"], first["id"]);
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["tier"], "KEY");
    assert_eq!(changed["name"], "Vertex Retail");

    let missing = app.error("mutation { upsertAccount(externalId: \"ERP-2\", input: { name: \"No segment\" }) { id } }", json!({})).await;
    assert_eq!(missing["extensions"]["code"], "VALIDATION");
    assert_eq!(missing["extensions"]["field"], "input.segment");
    assert_eq!(
        app.count("accounts").await,
        1,
        "a refused upsert writes nothing"
    );

    let duplicate = app
        .error(
            "mutation { createAccount(externalId: \"ERP-1\", input: { name: \"Dup\", segment: SMB, tier: KEY, lifecycleStage: PROSPECT }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(duplicate["extensions"]["code"], "DUPLICATE");
    assert_eq!(duplicate["extensions"]["field"], "externalId");
}

#[tokio::test]
async fn a_stale_version_is_refused_and_the_update_is_not_lost() {
    let app = crate::support::spawn().await;
    let account = app.create_account("Redwood Energy", json!({})).await;
    let update = "mutation($id: ID!, $v: Int!, $name: String) { updateAccount(id: $id, version: $v, input: { name: $name }) { name version } }";
    let alice = app
        .ok(
            update,
            json!({ "id": id(&account), "v": 1, "name": "Redwood Energy AG" }),
        )
        .await;
    assert_eq!(alice["updateAccount"]["version"], 2);
    let bob = app
        .error(
            update,
            json!({ "id": id(&account), "v": 1, "name": "Redwood Energy GmbH" }),
        )
        .await;
    assert_eq!(bob["extensions"]["code"], "VERSION_CONFLICT");
    assert_eq!(bob["extensions"]["currentVersion"], 2);
    let now = app
        .ok(
            "query($id: ID!) { account(id: $id) { name version } }",
            json!({ "id": id(&account) }),
        )
        .await;
    assert_eq!(
        now["account"]["name"], "Redwood Energy AG",
        "the first writer's change survives"
    );
    let archive = app
        .error(
            "mutation($id: ID!) { archiveAccount(id: $id, version: 1) { id } }",
            json!({ "id": id(&account) }),
        )
        .await;
    assert_eq!(archive["extensions"]["code"], "VERSION_CONFLICT");
}

#[tokio::test]
async fn unknown_ids_answer_null_for_reads_and_not_found_for_writes() {
    let app = crate::support::spawn().await;
    let read = app
        .ok(
            "{ account(id: \"acc_missing\") { id } contact(id: \"x\") { id } lead(id: \"x\") { id } case(id: \"x\") { id } partner(id: \"x\") { id } }",
            json!({}),
        )
        .await;
    for field in ["account", "contact", "lead", "case", "partner"] {
        assert_eq!(read[field], Value::Null, "{field}");
    }
    let write = app.error("mutation { updateAccount(id: \"acc_missing\", version: 1, input: { name: \"x\" }) { id } }", json!({})).await;
    assert_eq!(write["extensions"]["code"], "NOT_FOUND");
    let reference = app
        .error("mutation { createContact(input: { accountId: \"acc_missing\", firstName: \"A\", lastName: \"B\" }) { id } }", json!({}))
        .await;
    assert_eq!(reference["extensions"]["code"], "VALIDATION");
    assert_eq!(reference["extensions"]["field"], "input.accountId");
    assert_eq!(app.count("contacts").await, 0);
}

#[tokio::test]
async fn invalid_values_get_clear_errors_and_nothing_is_written() {
    let app = crate::support::spawn().await;
    let account = app.create_account("Summit Hotels", json!({})).await;
    let contact = "mutation($input: ContactInput!) { createContact(input: $input) { id } }";
    let base = json!({ "accountId": id(&account), "firstName": "Ann", "lastName": "Lee" });
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "email": "ann.example.com" }), "input.email"),
        (json!({ "email": "ann@" }), "input.email"),
        (json!({ "phone": "call me maybe" }), "input.phone"),
        (json!({ "firstName": "   " }), "input.firstName"),
        (json!({ "lastName": "x".repeat(101) }), "input.lastName"),
        (json!({ "title": "t".repeat(201) }), "input.title"),
    ];
    for (patch, field) in cases {
        let mut input = base.clone();
        input
            .as_object_mut()
            .expect("object")
            .extend(patch.as_object().expect("object").clone());
        let error = app.error(contact, json!({ "input": input })).await;
        assert_eq!(error["extensions"]["code"], "VALIDATION", "{input}");
        assert_eq!(error["extensions"]["field"], field, "{input}");
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .starts_with(field)
        );
    }
    let opportunity =
        "mutation($input: OpportunityInput!) { createOpportunity(input: $input) { id } }";
    for (amount, currency, field) in [
        ("10.999", "EUR", "input.amount"),
        ("-5", "EUR", "input.amount"),
        ("12", "EURO", "input.currency"),
        ("1e3", "USD", "input.amount"),
    ] {
        let input = json!({ "accountId": id(&account), "name": "Deal", "stage": "PROPOSAL", "amount": amount, "currency": currency });
        let error = app.error(opportunity, json!({ "input": input })).await;
        assert_eq!(
            error["extensions"]["code"], "VALIDATION",
            "{amount} {currency}"
        );
        assert_eq!(error["extensions"]["field"], field);
    }
    let out_of_range = app
        .error(opportunity, json!({ "input": { "accountId": id(&account), "name": "D", "stage": "PROPOSAL", "amount": "1", "currency": "EUR", "probability": 101 } }))
        .await;
    assert_eq!(out_of_range["extensions"]["field"], "input.probability");
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(app.count("opportunities").await, 0);

    let good = app
        .ok(
            "mutation($input: OpportunityInput!) { createOpportunity(input: $input) { amount { amount currency } probability forecastCategory weightedAmount { amount } } }",
            json!({ "input": { "accountId": id(&account), "name": "Deal", "stage": "PROPOSAL", "amount": "1250.5", "currency": "eur" } }),
        )
        .await;
    assert_eq!(
        good["createOpportunity"]["amount"],
        json!({ "amount": "1250.50", "currency": "EUR" })
    );
    assert_eq!(
        good["createOpportunity"]["probability"], 50,
        "probability defaults from the stage"
    );
    assert_eq!(good["createOpportunity"]["forecastCategory"], "BEST_CASE");
    assert_eq!(
        good["createOpportunity"]["weightedAmount"]["amount"],
        "625.25"
    );
}

#[tokio::test]
async fn malformed_requests_are_refused_with_clear_errors() {
    let app = crate::support::spawn().await;
    let post = |body: String, content_type: &'static str| {
        app.client
            .post(format!("{}/graphql", app.url))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let syntax = app.gql("{ accounts { totalCount ", json!({})).await;
    assert!(
        syntax["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("expected"),
        "{syntax}"
    );
    let wrong_type = app
        .gql("{ accounts(first: \"ten\") { totalCount } }", json!({}))
        .await;
    assert!(
        wrong_type["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("Int"),
        "{wrong_type}"
    );
    let unknown_enum = app
        .gql(
            "mutation { createAccount(input: { name: \"x\", segment: HUGE }) { id } }",
            json!({}),
        )
        .await;
    assert!(unknown_enum["errors"].is_array());

    let not_json = post("query { x }".into(), "text/plain")
        .await
        .expect("send");
    assert_eq!(not_json.status(), 415);
    let broken_json = post("{\"query\": ".into(), "application/json")
        .await
        .expect("send");
    assert_eq!(broken_json.status(), 400);
    let body: Value = broken_json.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    let batch = post(
        json!([{ "query": "{ accounts { totalCount } }" }]).to_string(),
        "application/json",
    )
    .await
    .expect("send");
    assert_eq!(batch.status(), 400);
    let huge = post(json!({ "query": "{ accounts { totalCount } }", "variables": { "pad": "x".repeat(2 * 1024 * 1024) } }).to_string(), "application/json")
        .await
        .expect("send");
    assert_eq!(huge.status(), 413);
    let get = app
        .client
        .get(format!("{}/graphql?query={{__typename}}", app.url))
        .send()
        .await
        .expect("send");
    assert_eq!(get.status(), 405);
    assert_eq!(app.count("accounts").await, 0);
}

#[tokio::test]
async fn database_failures_reach_the_client_as_an_opaque_internal_error() {
    let app = crate::support::spawn().await;
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared("DROP TABLE cases")
        .await
        .expect("drop");
    let body = app.gql("{ cases { totalCount } }", json!({})).await;
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "INTERNAL");
    assert!(error["extensions"]["reference"].is_string());
    let text = body.to_string().to_lowercase();
    for leak in [
        "no such table",
        "does not exist",
        "relation",
        "select",
        "sqlx",
        "database",
    ] {
        assert!(!text.contains(leak), "{leak} leaked: {body}");
    }
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = crate::support::spawn().await;
    let health = app
        .client
        .get(format!("{}/health", app.url))
        .send()
        .await
        .expect("send");
    assert_eq!(health.status(), 200);
    let ready = app
        .client
        .get(format!("{}/ready", app.url))
        .send()
        .await
        .expect("send");
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_lead_converts_once_into_account_contact_and_opportunity() {
    let app = crate::support::spawn().await;
    let lead = app
        .ok(
            "mutation { createLead(input: { firstName: \"Maya\", lastName: \"Berg\", company: \"Willow Textiles\", email: \"maya@willow.example\", source: EVENT }) { id status version score } }",
            json!({}),
        )
        .await["createLead"]
        .clone();
    assert_eq!(lead["status"], "NEW");
    // Event 20 + a company address 20 + no phone 0 + no recent activity 0.
    assert_eq!(lead["score"], 40);
    let convert = "mutation($id: ID!, $v: Int!) { convertLead(id: $id, version: $v, input: { opportunity: { name: \"Willow pilot\", amount: \"5000\", currency: \"EUR\" } }) {
        lead { status convertedAccountId convertedContactId convertedOpportunityId convertedAt version }
        account { id name lifecycleStage }
        contact { accountId fullName email }
        opportunity { accountId name stage amount { amount currency } } } }";
    let result = app.ok(convert, json!({ "id": id(&lead), "v": 1 })).await["convertLead"].clone();
    let account_id = result["account"]["id"].clone();
    assert_eq!(result["account"]["name"], "Willow Textiles");
    assert_eq!(result["account"]["lifecycleStage"], "PROSPECT");
    assert_eq!(result["contact"]["accountId"], account_id);
    assert_eq!(result["contact"]["email"], "maya@willow.example");
    assert_eq!(result["opportunity"]["accountId"], account_id);
    assert_eq!(result["opportunity"]["amount"]["amount"], "5000.00");
    assert_eq!(result["lead"]["status"], "CONVERTED");
    assert_eq!(result["lead"]["convertedAccountId"], account_id);
    assert_eq!(result["lead"]["version"], 2);

    let again = app.error(convert, json!({ "id": id(&lead), "v": 2 })).await;
    assert_eq!(again["extensions"]["code"], "INVALID_STATE");
    assert_eq!(
        (
            app.count("accounts").await,
            app.count("contacts").await,
            app.count("opportunities").await
        ),
        (1, 1, 1)
    );

    // A failing part rolls the whole conversion back.
    let other = app.ok("mutation { createLead(input: { firstName: \"Noah\", lastName: \"Costa\", company: \"Costa Labs\", source: WEB }) { id } }", json!({})).await;
    let bad = app
        .error(
            "mutation($id: ID!) { convertLead(id: $id, version: 1, input: { opportunity: { name: \"x\", amount: \"1\", currency: \"ZZZ\" } }) { lead { id } } }",
            json!({ "id": id(&other["createLead"]) }),
        )
        .await;
    assert_eq!(bad["extensions"]["field"], "input.opportunity.currency");
    assert_eq!(
        (app.count("accounts").await, app.count("contacts").await),
        (1, 1),
        "nothing of a failed conversion stays"
    );

    let disqualified = app
        .ok("mutation { createLead(input: { firstName: \"A\", lastName: \"B\", company: \"C\", source: WEB, status: DISQUALIFIED }) { id } }", json!({}))
        .await;
    let refused = app
        .error(
            convert,
            json!({ "id": id(&disqualified["createLead"]), "v": 1 }),
        )
        .await;
    assert_eq!(refused["extensions"]["code"], "INVALID_STATE");
    let direct = app.error("mutation($id: ID!) { updateLead(id: $id, version: 1, input: { status: CONVERTED }) { id } }", json!({ "id": id(&other["createLead"]) })).await;
    assert_eq!(
        direct["extensions"]["field"], "input.status",
        "conversion only happens through convertLead"
    );
}

#[tokio::test]
async fn a_batch_of_50_entity_keys_is_loaded_with_one_query() {
    let app = crate::support::spawn().await;
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(id(&app
            .create_account(&format!("Entity {n}"), json!({}))
            .await));
    }
    let representations: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "__typename": "Account", "id": id }))
        .chain([json!({ "__typename": "Account", "id": "acc_unknown" })])
        .collect();
    let before = app.statements.get();
    let data = app
        .ok(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Account { id name } } }",
            json!({ "r": representations }),
        )
        .await;
    let statements = app.statements.get() - before;
    let entities = data["_entities"].as_array().expect("entities");
    assert_eq!(entities.len(), 51);
    for (entity, id) in entities.iter().zip(&ids) {
        assert_eq!(
            entity["id"],
            id.as_str(),
            "entities come back in the order asked"
        );
    }
    assert_eq!(entities[50], Value::Null, "an unknown key resolves to null");
    assert_eq!(statements, 1, "50 keys, one SQL statement");
}

#[tokio::test]
async fn nested_lists_of_an_account_page_and_filter_within_it() {
    let app = crate::support::spawn().await;
    let a = app.create_account("Meridian Foods", json!({})).await;
    let b = app.create_account("Other", json!({})).await;
    for (account, first) in [(&a, "Kara"), (&a, "Luca"), (&b, "Olga")] {
        app.ok(
            "mutation($input: ContactInput!) { createContact(input: $input) { id } }",
            json!({ "input": { "accountId": id(account), "firstName": first, "lastName": "Weber", "consents": [{ "purpose": "PARTNER_SHARING", "channel": "EMAIL", "granted": true }] } }),
        )
        .await;
    }
    for (n, at) in ["2026-03-01T10:00:00Z", "2026-05-01T10:00:00Z"]
        .iter()
        .enumerate()
    {
        app.ok(
            "mutation($input: InteractionInput!) { createInteraction(input: $input) { id } }",
            json!({ "input": { "accountId": id(&a), "channel": "PHONE", "direction": "INBOUND", "subject": format!("Call {n}"), "occurredAt": at } }),
        )
        .await;
    }
    app.ok(
        "mutation($input: CaseInput!) { createCase(input: $input) { status priority slaDueAt } }",
        json!({ "input": { "accountId": id(&a), "subject": "Broken", "channel": "EMAIL", "priority": "URGENT" } }),
    )
    .await;
    let data = app
        .ok(
            "query($id: ID!) { account(id: $id) {
                contacts(first: 1) { totalCount nodes { firstName consents { purpose channel granted } } pageInfo { hasNextPage } }
                interactions { nodes { subject } }
                cases { nodes { status priority slaBreached } }
            } }",
            json!({ "id": id(&a) }),
        )
        .await;
    let account = &data["account"];
    assert_eq!(
        account["contacts"]["totalCount"], 2,
        "only this account's contacts"
    );
    assert_eq!(account["contacts"]["pageInfo"]["hasNextPage"], true);
    assert!(
        account["contacts"]["nodes"][0]["consents"]
            .as_array()
            .expect("consents")
            .contains(
                &json!({ "purpose": "PARTNER_SHARING", "channel": "EMAIL", "granted": true })
            )
    );
    assert_eq!(
        account["interactions"]["nodes"][0]["subject"], "Call 1",
        "the timeline is newest first"
    );
    assert_eq!(account["cases"]["nodes"][0]["status"], "NEW");
    assert_eq!(account["cases"]["nodes"][0]["priority"], "URGENT");
}

#[tokio::test]
async fn partner_territories_are_replaced_as_a_set_under_version_control() {
    let app = crate::support::spawn().await;
    let (fr, uk) = (
        app.create_territory("FR").await,
        app.create_territory("UK").await,
    );
    let partner = app.ok("mutation { createPartner(input: { name: \"Atlantic Trade\", kind: DISTRIBUTOR, tier: GOLD }) { id version } }", json!({})).await["createPartner"].clone();
    let set = "mutation($id: ID!, $v: Int!, $t: [ID!]!) { setPartnerTerritories(partnerId: $id, version: $v, territoryIds: $t) { version territories { code } } }";
    let first = app
        .ok(
            set,
            json!({ "id": id(&partner), "v": 1, "t": [uk, fr, uk] }),
        )
        .await;
    assert_eq!(
        first["setPartnerTerritories"]["territories"],
        json!([{ "code": "FR" }, { "code": "UK" }])
    );
    assert_eq!(first["setPartnerTerritories"]["version"], 2);
    let stale = app
        .error(set, json!({ "id": id(&partner), "v": 1, "t": [fr] }))
        .await;
    assert_eq!(stale["extensions"]["code"], "VERSION_CONFLICT");
    let unknown = app
        .error(
            set,
            json!({ "id": id(&partner), "v": 2, "t": ["ter_missing"] }),
        )
        .await;
    assert_eq!(unknown["extensions"]["field"], "territoryIds");
    let covering = app.ok("query($t: ID!) { partners(filter: { territoryId: $t, kind: DISTRIBUTOR }) { nodes { name } } }", json!({ "t": fr })).await;
    assert_eq!(
        covering["partners"]["nodes"],
        json!([{ "name": "Atlantic Trade" }])
    );
}

#[test]
fn the_committed_sdl_matches_what_the_code_exports() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/account.graphql");
    let committed = std::fs::read_to_string(&path).expect("schema/account.graphql");
    assert!(
        committed == crm_account::sdl(),
        "schema/account.graphql is stale: run `cargo run --bin crm -- schema --write` and commit it"
    );
}

#[tokio::test]
async fn territory_changes_publish_events_only_when_they_commit() {
    use crm_service_common::events::outbox;
    let app = crate::support::spawn().await;
    let all = || async {
        outbox::all(&app.db, crm_account::SERVICE)
            .await
            .expect("outbox")
    };
    let events = || async {
        let mut placed = all().await;
        placed.retain(|e| e.event_type != "territory.changed");
        placed
    };
    let north = app.create_territory("NORTH").await;
    let south = app.create_territory("SOUTH").await;
    let none = app.create_account("No Territory", json!({})).await;
    // A new territory is listed for the services that lay data out by territory.
    let listed: Vec<_> = all()
        .await
        .into_iter()
        .filter(|e| e.event_type == "territory.changed")
        .map(|e| e.payload)
        .collect();
    assert_eq!(
        listed,
        vec![
            json!({ "territoryId": north, "code": "NORTH", "archived": false }),
            json!({ "territoryId": south, "code": "SOUTH", "archived": false }),
        ]
    );
    assert!(
        events().await.is_empty(),
        "unplaced accounts publish nothing"
    );
    let placed = app
        .create_account("Placed", json!({ "territoryId": north }))
        .await;
    let recorded = events().await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].event_type, "account.territory_changed");
    assert_eq!(
        recorded[0].payload,
        json!({ "accountId": id(&placed), "territoryId": north, "previousTerritoryId": null })
    );

    let update = "mutation($id: ID!, $v: Int!, $input: AccountInput!) { updateAccount(id: $id, version: $v, input: $input) { version } }";
    app.ok(
        update,
        json!({ "id": id(&placed), "v": 1, "input": { "name": "Renamed" } }),
    )
    .await;
    assert_eq!(
        events().await.len(),
        1,
        "a change elsewhere publishes nothing"
    );
    app.error(
        update,
        json!({ "id": id(&placed), "v": 1, "input": { "territoryId": south } }),
    )
    .await;
    app.error(
        update,
        json!({ "id": id(&placed), "v": 2, "input": { "territoryId": "ter_missing" } }),
    )
    .await;
    assert_eq!(events().await.len(), 1, "refused changes publish nothing");
    app.ok(
        update,
        json!({ "id": id(&placed), "v": 2, "input": { "territoryId": south } }),
    )
    .await;
    app.ok(
        update,
        json!({ "id": id(&none), "v": 1, "input": { "territoryId": north } }),
    )
    .await;
    let recorded = events().await;
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[1].payload["previousTerritoryId"], json!(north));
    assert_eq!(recorded[1].payload["territoryId"], json!(south));

    let partner = app
        .ok("mutation { createPartner(input: { name: \"Northwind\", kind: DISTRIBUTOR, tier: GOLD }) { id version } }", json!({}))
        .await["createPartner"]
        .clone();
    app.ok(
        "mutation($p: ID!, $t: [ID!]!) { setPartnerTerritories(partnerId: $p, version: 1, territoryIds: $t) { version } }",
        json!({ "p": id(&partner), "t": [south, north] }),
    )
    .await;
    let recorded = events().await;
    let kinds: Vec<&str> = recorded.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds[3..],
        ["partner.changed", "partner.territories_changed"]
    );
    let mut covered = vec![north.clone(), south.clone()];
    covered.sort();
    assert_eq!(recorded[4].payload["territoryIds"], json!(covered));
    assert_eq!(recorded[3].payload["kind"], "DISTRIBUTOR");
}

#[tokio::test]
async fn a_capped_total_count_stops_at_its_cap() {
    let app = crate::support::spawn().await;
    for name in ["One", "Two", "Three"] {
        app.create_account(name, json!({})).await;
    }
    let data = app
        .ok(
            "{ exact: accounts { totalCount } capped: accounts { totalCount(atMost: 2) } \
               roomy: accounts { totalCount(atMost: 10) } \
               filtered: accounts(filter: { text: \"t\" }) { totalCount(atMost: 1) } }",
            json!({}),
        )
        .await;
    assert_eq!(data["exact"]["totalCount"], 3);
    assert_eq!(
        data["capped"]["totalCount"], 2,
        "the cap is the answer when reached"
    );
    assert_eq!(
        data["roomy"]["totalCount"], 3,
        "under the cap the count is exact"
    );
    assert_eq!(
        data["filtered"]["totalCount"], 1,
        "the cap applies after the filter"
    );
    for cap in [0, -1, 1_000_001] {
        let refused = app
            .error(
                &format!("{{ accounts {{ totalCount(atMost: {cap}) }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(refused["extensions"]["code"], "VALIDATION", "atMost {cap}");
        assert_eq!(refused["extensions"]["field"], "atMost");
    }
}

#[tokio::test]
async fn a_lead_scores_by_its_rules_and_work_done_on_it_warms_it() {
    let app = crate::support::spawn().await;
    let lead = app
        .ok(
            "mutation { createLead(input: { firstName: \"Ines\", lastName: \"Roth\", company: \"Roth Mills\", email: \"ines@gmail.com\", source: REFERRAL }) { id version score scoreReasons { rule finding points } } }",
            json!({}),
        )
        .await["createLead"]
        .clone();
    let reasons = lead["scoreReasons"].as_array().expect("reasons");
    let sum: i64 = reasons
        .iter()
        .map(|r| r["points"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(
        lead["score"],
        json!(sum),
        "the score is the sum of its reasons"
    );
    assert_eq!(lead["score"], 35, "referral 30 + a personal address 5");
    assert!(
        reasons[1]["finding"]
            .as_str()
            .unwrap_or("")
            .contains("personal")
    );
    // The score is not an input.
    let refused = app
        .error(
            "mutation($id: ID!) { updateLead(id: $id, version: 1, input: { score: 99 }) { id } }",
            json!({ "id": id(&lead) }),
        )
        .await;
    assert!(refused["message"].as_str().unwrap_or("").contains("score"));
    // A phone number is fit; the version moves as for any edit.
    let phoned = app
        .ok(
            "mutation($id: ID!) { updateLead(id: $id, version: 1, input: { phone: \"+49 30 1234567\" }) { version score } }",
            json!({ "id": id(&lead) }),
        )
        .await["updateLead"]
        .clone();
    assert_eq!(phoned["score"], 45);
    // Two tasks on the lead completed: recent activity, 10 points each; the lead's version
    // stays (work on a lead is not an edit of it).
    for title in ["Call Ines", "Send the price list"] {
        let task = app
            .ok(
                "mutation($id: ID!, $t: String!) { createTask(input: { recordId: $id, title: $t, dueAt: \"2030-01-01T10:00:00Z\" }) { id version } }",
                json!({ "id": id(&lead), "t": title }),
            )
            .await["createTask"]
            .clone();
        app.ok(
            "mutation($id: ID!, $v: Int!) { updateTask(id: $id, version: $v, input: { completed: true }) { id } }",
            json!({ "id": id(&task), "v": task["version"] }),
        )
        .await;
    }
    let warmed = app
        .ok(
            "query($id: ID!) { lead(id: $id) { version score scoreReasons { rule points } } }",
            json!({ "id": id(&lead) }),
        )
        .await["lead"]
        .clone();
    assert_eq!(warmed["score"], 65);
    assert_eq!(warmed["version"], phoned["version"]);
    assert_eq!(warmed["scoreReasons"][3]["points"], 20);
    // Sorting and filtering see the kept score.
    let warm = app
        .ok(
            "{ leads(filter: { minScore: 60 }) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(warm["leads"]["nodes"][0]["id"], lead["id"]);
}

#[tokio::test]
async fn a_cases_response_target_moves_with_its_priority() {
    let app = crate::support::spawn().await;
    let account = app.create_account("Target Works", json!({})).await;
    let case = app
        .ok(
            "mutation($input: CaseInput!) { createCase(input: $input) { id version slaDueAt createdAt } }",
            json!({ "input": { "accountId": id(&account), "subject": "Line down", "channel": "PHONE", "priority": "MEDIUM" } }),
        )
        .await["createCase"]
        .clone();
    let at = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("rfc3339")
    };
    let due = at(&case["slaDueAt"]);
    assert_eq!(
        (due - at(&case["createdAt"])).num_hours(),
        24,
        "medium: 24 h"
    );
    // Urgent: 4 h instead of 24, so the same case is due 20 h earlier.
    let urgent = app
        .ok(
            "mutation($id: ID!, $v: Int!) { updateCase(id: $id, version: $v, input: { priority: URGENT }) { version slaDueAt } }",
            json!({ "id": id(&case), "v": case["version"] }),
        )
        .await["updateCase"]
        .clone();
    assert_eq!((due - at(&urgent["slaDueAt"])).num_hours(), 20);
    // A due time sent with the priority is the one kept.
    let chosen = "2030-01-01T12:00:00+00:00";
    let set = app
        .ok(
            "mutation($id: ID!, $v: Int!, $at: DateTime!) { updateCase(id: $id, version: $v, input: { priority: LOW, slaDueAt: $at }) { slaDueAt } }",
            json!({ "id": id(&case), "v": urgent["version"], "at": chosen }),
        )
        .await["updateCase"]
        .clone();
    assert_eq!(at(&set["slaDueAt"]), at(&json!(chosen)));
}

#[tokio::test]
async fn a_page_of_contacts_loads_their_consents_in_one_query() {
    let app = crate::support::spawn().await;
    let account = app.create_account("Consenting Co", json!({})).await;
    for n in 0..12 {
        app.ok(
            "mutation($input: ContactInput!) { createContact(input: $input) { id } }",
            json!({ "input": { "accountId": id(&account), "firstName": format!("C{n}"), "lastName": "Weber",
                "consents": [{ "purpose": "MARKETING", "channel": "EMAIL", "granted": true, "source": "FORM" }] } }),
        )
        .await;
    }
    let page = "query($n: Int!) { contacts(first: $n) { nodes { id consents { purpose channel granted source recordedAt } } } }";
    let mut counts = Vec::new();
    for n in [2, 12] {
        let before = app.statements.get();
        let data = app.ok(page, json!({ "n": n })).await;
        counts.push(app.statements.get() - before);
        let nodes = data["contacts"]["nodes"].as_array().expect("contacts");
        assert_eq!(nodes.len(), n as usize);
        assert!(
            nodes.iter().all(
                |c| c["consents"][0]["source"] == "FORM" && c["consents"][0]["granted"] == true
            ),
            "{data}"
        );
    }
    assert_eq!(
        counts[0], counts[1],
        "12 contacts take no more statements than 2"
    );
}
