//! The knowledge-base subgraph over HTTP, against a fresh database per test (SQLite FTS5,
//! or PostgreSQL full-text search when `DATABASE_URL` is set).

use crm_testkit::{TestApp, id, partner_user, staff};
use serde_json::{Value, json};

/// The service checking gateway tokens, so that tests act as different people (an article
/// is published by a second writer); `gql` is an internal administrator.
async fn spawn() -> TestApp {
    TestApp::start_checking_callers(&crm_knowledge_base::subgraph()).await
}

const UPDATE: &str = "mutation($id: ID!, $v: Int!, $input: ArticleInput!) { updateArticle(id: $id, version: $v, input: $input) { id status revision version publishedAt title pendingStatus: workingRevision { number state } } }";
const APPROVE: &str = "mutation($id: ID!, $v: Int!, $c: String) { approveArticle(id: $id, version: $v, comment: $c) { id status revision version publishedAt title } }";

/// A published article: written by the administrator, submitted, and approved by a
/// marketing writer. `input` may narrow it (audiences default to INTERNAL).
async fn create_article(app: &TestApp, input: Value) -> Value {
    let mut full = json!({ "audiences": ["INTERNAL"], "status": "REVIEW" });
    if let (Some(full), Some(input)) = (full.as_object_mut(), input.as_object()) {
        full.extend(input.clone());
    }
    let created = app
        .ok(
            "mutation($input: ArticleInput!) { createArticle(input: $input) { id version } }",
            json!({ "input": full }),
        )
        .await["createArticle"]
        .clone();
    app.ok_as(
        &staff("usr_marketing", "marketing"),
        APPROVE,
        json!({ "id": id(&created), "v": created["version"] }),
    )
    .await["approveArticle"]
        .clone()
}

fn titles(connection: &Value) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["title"].as_str().expect("title").to_owned())
        .collect()
}

#[tokio::test]
async fn an_article_moves_through_its_lifecycle_and_counts_its_revisions() {
    let app = spawn().await;
    let created = app
        .ok(
            "mutation { createArticle(input: { title: \"Setup\", body: \"# Setup\", audiences: [SUPPLIER, PUBLIC], tags: [\"Setup\", \"firmware\"] }) { id status revision publishedAt audiences tags version nextStatuses } }",
            json!({}),
        )
        .await["createArticle"]
        .clone();
    assert_eq!(created["status"], "DRAFT");
    assert_eq!(created["revision"], 1);
    assert_eq!(created["publishedAt"], Value::Null);
    assert_eq!(created["audiences"], json!(["PUBLIC", "SUPPLIER"]));
    assert_eq!(created["tags"], json!(["firmware", "setup"]));
    assert_eq!(created["nextStatuses"], json!(["REVIEW", "ARCHIVED"]));
    let article = id(&created);
    let skipped = app
        .error(
            UPDATE,
            json!({ "id": article, "v": 1, "input": { "status": "PUBLISHED" } }),
        )
        .await;
    assert_eq!(skipped["extensions"]["code"], "VALIDATION");
    assert_eq!(skipped["extensions"]["field"], "input.status");
    let refused = app
        .error(
            "mutation { createArticle(input: { title: \"x\", body: \"y\", audiences: [PUBLIC], status: PUBLISHED }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused["extensions"]["field"], "input.status",
        "no create-as-published"
    );
    let step = |v: i64, input: Value| {
        let app = &app;
        let article = article.clone();
        async move {
            app.ok(UPDATE, json!({ "id": article, "v": v, "input": input }))
                .await["updateArticle"]
                .clone()
        }
    };
    let edited = step(1, json!({ "body": "# Setup\n\nNew words." })).await;
    assert_eq!(edited["revision"], 2);
    let submitted = step(2, json!({ "status": "REVIEW" })).await;
    assert_eq!(submitted["revision"], 2, "a status move is no new revision");
    // The writer may not approve its own words; a second writer may.
    let own = app.error(APPROVE, json!({ "id": article, "v": 3 })).await;
    assert_eq!(own["extensions"]["code"], "FORBIDDEN");
    let published = app
        .ok_as(
            &staff("usr_support", "support"),
            APPROVE,
            json!({ "id": article, "v": 3, "c": "Clear." }),
        )
        .await["approveArticle"]
        .clone();
    assert_eq!(published["status"], "PUBLISHED");
    assert!(published["publishedAt"].is_string());
    // New words on a live article wait beside the live ones.
    let pending = step(4, json!({ "title": "Setup v2" })).await;
    assert_eq!(
        pending["title"], "Setup",
        "the live title stays until approved"
    );
    assert_eq!(pending["revision"], 2);
    assert_eq!(
        pending["pendingStatus"],
        json!({ "number": 3, "state": "DRAFT" })
    );
    assert_eq!(
        step(5, json!({ "status": "ARCHIVED" })).await["status"],
        "ARCHIVED"
    );
    let restored = step(6, json!({ "status": "DRAFT" })).await;
    assert_eq!(
        restored["status"], "DRAFT",
        "retired articles can be restored"
    );
    assert_eq!(restored["revision"], 4, "as a new revision of their words");
    let archived = app
        .ok(
            "mutation($id: ID!, $v: Int!) { archiveArticle(id: $id, version: $v) { archivedAt } }",
            json!({ "id": article, "v": 7 }),
        )
        .await;
    assert!(archived["archiveArticle"]["archivedAt"].is_string());
    assert_eq!(
        app.ok("{ articles { totalCount } }", json!({})).await["articles"]["totalCount"],
        0
    );
}

#[tokio::test]
async fn invalid_articles_get_clear_errors_and_nothing_is_written() {
    let app = spawn().await;
    let create = "mutation($input: ArticleInput!) { createArticle(input: $input) { id } }";
    for (input, field) in [
        (
            json!({ "title": "x", "body": "y", "audiences": [] }),
            "input.audiences",
        ),
        (json!({ "title": "x", "body": "y" }), "input.audiences"),
        (
            json!({ "title": " ", "body": "y", "audiences": ["PUBLIC"] }),
            "input.title",
        ),
        (
            json!({ "title": "x", "body": "y", "audiences": ["PUBLIC"], "tags": ["two words"] }),
            "input.tags",
        ),
        (
            json!({ "title": "x", "body": "y", "audiences": ["PUBLIC"], "productIds": ["prd_1", "'; drop"] }),
            "input.productIds",
        ),
        (
            json!({ "title": "x", "body": "y".repeat(200_001), "audiences": ["PUBLIC"] }),
            "input.body",
        ),
    ] {
        let error = app.error(create, json!({ "input": input })).await;
        assert_eq!(error["extensions"]["code"], "VALIDATION");
        assert_eq!(error["extensions"]["field"], field);
    }
    assert_eq!(app.count("articles").await, 0);
    let upsert = "mutation { upsertArticle(externalId: \"CMS-1\", input: { title: \"Imported\", body: \"b\", audiences: [PUBLIC] }) { id version } }";
    let first = app.ok(upsert, json!({})).await;
    assert_eq!(
        app.ok(upsert, json!({})).await,
        first,
        "the same upsert changes nothing"
    );
    let stale = app
        .error("mutation($id: ID!) { updateArticle(id: $id, version: 9, input: { title: \"t\" }) { id } }", json!({ "id": id(&first["upsertArticle"]) }))
        .await;
    assert_eq!(stale["extensions"]["code"], "VERSION_CONFLICT");
    assert_eq!(
        app.ok("{ article(id: \"art_missing\") { id } }", json!({}))
            .await["article"],
        Value::Null
    );
}

/// A fixed corpus for ranking: where "sensor" occurs decides the order.
async fn sensor_corpus(app: &TestApp) {
    for (title, tags, body) in [
        (
            "Resetting the pressure sensor",
            vec!["maintenance"],
            "Hold the sensor button; the sensor blinks twice.",
        ),
        (
            "Sensor firmware",
            vec!["sensor", "firmware"],
            "Update the sensor firmware, then run the reset procedure.",
        ),
        (
            "Pressure gauge calibration",
            vec!["calibration"],
            "Calibrate against a reference sensor.",
        ),
        (
            "Cable routing",
            vec!["installation"],
            "Keep cables away from the sensors and motors.",
        ),
        (
            "Warranty terms",
            vec!["policy"],
            "Every product has a 24-month warranty.",
        ),
        (
            "Motor noise",
            vec!["troubleshooting"],
            "A humming motor is normal under load.",
        ),
    ] {
        create_article(app, json!({ "title": title, "body": body, "tags": tags })).await;
    }
}

#[tokio::test]
async fn full_text_search_finds_words_and_ranks_title_and_tags_above_the_body() {
    let app = spawn().await;
    sensor_corpus(&app).await;
    let search = "query($t: String, $f: Int, $a: String) { articles(filter: { text: $t }, first: $f, after: $a) { totalCount nodes { title } pageInfo { hasNextPage endCursor } } }";
    let data = app.ok(search, json!({ "t": "sensor" })).await;
    let found = titles(&data["articles"]);
    assert_eq!(data["articles"]["totalCount"], 4);
    let mut as_set = found.clone();
    as_set.sort();
    assert_eq!(
        as_set,
        [
            "Cable routing",
            "Pressure gauge calibration",
            "Resetting the pressure sensor",
            "Sensor firmware"
        ],
        "the word, its plural (stemming) and nothing else"
    );
    let title_hits: std::collections::BTreeSet<&str> =
        found[..2].iter().map(String::as_str).collect();
    assert_eq!(
        title_hits,
        ["Resetting the pressure sensor", "Sensor firmware"]
            .into_iter()
            .collect(),
        "a match in the title outranks matches only in the body: {found:?}"
    );

    // Every word must match; word prefixes count.
    let both = app.ok(search, json!({ "t": "reset SENSOR" })).await;
    let mut both = titles(&both["articles"]);
    both.sort();
    assert_eq!(both, ["Resetting the pressure sensor", "Sensor firmware"]);
    let prefix = app.ok(search, json!({ "t": "calib" })).await;
    assert_eq!(titles(&prefix["articles"]), ["Pressure gauge calibration"]);

    // Relevance pages walk the same order, without repeats.
    let mut walked = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .ok(search, json!({ "t": "sensor", "f": 1, "a": after }))
            .await;
        walked.extend(titles(&page["articles"]));
        if page["articles"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["articles"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(walked, found);
    let mixed = app
        .error("query($a: String) { articles(filter: { text: \"sensor\" }, orderBy: { field: TITLE }, after: $a) { totalCount } }", json!({ "a": after }))
        .await;
    assert_eq!(
        mixed["extensions"]["field"], "after",
        "a relevance cursor does not continue another ordering"
    );

    // An explicit ordering sorts the matches instead of ranking them.
    let by_title = app
        .ok("{ articles(filter: { text: \"sensor\" }, orderBy: { field: TITLE }) { nodes { title } } }", json!({}))
        .await;
    assert_eq!(
        titles(&by_title["articles"]),
        [
            "Cable routing",
            "Pressure gauge calibration",
            "Resetting the pressure sensor",
            "Sensor firmware"
        ]
    );
    // Search combines with the other filters.
    let tagged = app
        .ok(
            "{ articles(filter: { text: \"sensor\", tag: \"FIRMWARE\" }) { nodes { title } } }",
            json!({}),
        )
        .await;
    assert_eq!(titles(&tagged["articles"]), ["Sensor firmware"]);
}

/// Rankings are remembered per query (`store::rankings`); every change of an article's words
/// is seen by the next search, whoever wrote it.
#[tokio::test]
async fn search_follows_every_change_of_the_words_at_once() {
    let app = spawn().await;
    sensor_corpus(&app).await;
    let search = "query($t: String) { articles(filter: { text: $t }) { totalCount nodes { id title version } } }";
    let before = app.ok(search, json!({ "t": "calib" })).await;
    assert_eq!(titles(&before["articles"]), ["Pressure gauge calibration"]);

    // A new article matching in its title ranks first at once.
    create_article(
        &app,
        json!({ "title": "Calibration of the calibration rig", "body": "calibrate", "tags": ["calibration"] }),
    )
    .await;
    let added = app.ok(search, json!({ "t": "calib" })).await;
    assert_eq!(
        titles(&added["articles"]),
        [
            "Calibration of the calibration rig",
            "Pressure gauge calibration"
        ]
    );

    // Words changed so that it no longer matches: gone from the next search.
    let gauge = added["articles"]["nodes"][1].clone();
    let changed = app
        .ok(
            UPDATE,
            json!({ "id": gauge["id"], "v": gauge["version"], "input": { "title": "Pressure gauge", "body": "Compare against a reference.", "tags": ["gauges"], "status": "REVIEW" } }),
        )
        .await["updateArticle"]
        .clone();
    app.ok_as(
        &staff("usr_marketing", "marketing"),
        APPROVE,
        json!({ "id": changed["id"], "v": changed["version"] }),
    )
    .await;
    let after = app.ok(search, json!({ "t": "calib" })).await;
    assert_eq!(
        titles(&after["articles"]),
        ["Calibration of the calibration rig"]
    );
    assert_eq!(after["articles"]["totalCount"], 1);
}

#[tokio::test]
async fn hostile_search_text_is_only_ever_words() {
    let app = spawn().await;
    sensor_corpus(&app).await;
    for text in [
        r#"sensor" OR title:*"#,
        "sensor & !motor | (",
        "NEAR(sensor motor)",
        "'; DROP TABLE articles; --",
        "*",
        "\"",
        "ünïcödé sensor",
        &"sensor ".repeat(500),
    ] {
        let body = app
            .gql(
                "query($t: String) { articles(filter: { text: $t }) { totalCount } }",
                json!({ "t": text }),
            )
            .await;
        assert!(body.get("errors").is_none(), "{text:?}: {body}");
    }
    let nothing = app
        .ok(
            "{ articles(filter: { text: \"  -- \" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(nothing["articles"]["totalCount"], 6, "no words, no search");
    assert_eq!(app.count("articles").await, 6);
}

#[tokio::test]
async fn products_list_their_articles_and_filters_select_by_audience() {
    let app = spawn().await;
    create_article(&app, json!({ "title": "For suppliers", "body": "b", "audiences": ["SUPPLIER"], "productIds": ["prd_1"] })).await;
    create_article(&app, json!({ "title": "For everyone", "body": "b", "audiences": ["PUBLIC", "DISTRIBUTOR"], "productIds": ["prd_1", "prd_2"] })).await;
    create_article(
        &app,
        json!({ "title": "Internal only", "body": "b", "audiences": ["INTERNAL"] }),
    )
    .await;
    let data = app
        .ok(
            r#"query($r: [_Any!]!) {
                _entities(representations: $r) { ... on Product { id articles(orderBy: { field: TITLE }) { nodes { title products { id } } } } }
                distributors: articles(filter: { audience: DISTRIBUTOR }) { nodes { title } }
                byProduct: articles(filter: { productId: "prd_2" }) { nodes { title } }
            }"#,
            json!({ "r": [{ "__typename": "Product", "id": "prd_1" }, { "__typename": "Product", "id": "prd_9" }] }),
        )
        .await;
    assert_eq!(
        titles(&data["_entities"][0]["articles"]),
        ["For everyone", "For suppliers"]
    );
    assert_eq!(
        data["_entities"][0]["articles"]["nodes"][0]["products"],
        json!([{ "id": "prd_1" }, { "id": "prd_2" }])
    );
    assert_eq!(
        titles(&data["_entities"][1]["articles"]),
        Vec::<String>::new()
    );
    assert_eq!(titles(&data["distributors"]), ["For everyone"]);
    assert_eq!(titles(&data["byProduct"]), ["For everyone"]);
    // Relinking replaces the set (and the index behind Product.articles).
    let everyone = app
        .ok(
            "{ articles(filter: { productId: \"prd_2\" }) { nodes { id version } } }",
            json!({}),
        )
        .await;
    let node = &everyone["articles"]["nodes"][0];
    app.ok(
        "mutation($id: ID!, $v: Int!) { updateArticle(id: $id, version: $v, input: { productIds: [\"prd_3\"] }) { id } }",
        json!({ "id": node["id"], "v": node["version"] }),
    )
    .await;
    assert_eq!(
        app.count("article_products").await,
        2,
        "prd_1 (suppliers) and prd_3"
    );
}

#[tokio::test]
async fn database_failures_reach_the_client_as_an_opaque_internal_error() {
    let app = spawn().await;
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared("DROP TABLE article_products")
        .await
        .expect("drop");
    let body = app
        .gql("mutation { createArticle(input: { title: \"t\", body: \"b\", audiences: [PUBLIC], productIds: [\"prd_1\"] }) { id } }", json!({}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
    let text = body.to_string().to_lowercase();
    for leak in [
        "no such table",
        "does not exist",
        "relation",
        "insert",
        "sqlx",
    ] {
        assert!(!text.contains(leak), "{leak} leaked: {body}");
    }
    assert_eq!(
        app.count("articles").await,
        0,
        "the article was rolled back with its links"
    );
}

#[test]
fn the_committed_sdl_matches_what_the_code_exports() {
    let committed = include_str!("../../../../schema/knowledge_base.graphql");
    assert!(
        committed == crm_knowledge_base::sdl(),
        "schema/knowledge_base.graphql is stale: run `cargo run --bin crm -- schema --write`"
    );
}

/// Revision `n` of `article` as `who` reads it, with its changes against the default base.
const HISTORY: &str = "query($id: ID!) { article(id: $id) { id version title revision status mayReview \
    workingRevision { number state title } \
    revisions { number state title authorUserId reviewerUserId reviewComment \
    changes { against title { change oldLine newLine text } body { change text } } } } }";

#[tokio::test]
async fn edits_to_a_live_article_wait_for_a_second_writer_and_every_version_is_kept() {
    let app = spawn().await;
    let live = create_article(
        &app,
        json!({ "title": "Pump maintenance", "body": "Oil the pump.\nCheck the seal.\n", "audiences": ["SUPPLIER"] }),
    )
    .await;
    let article = id(&live);
    let support = staff("usr_support", "support");
    let marketing = staff("usr_marketing", "marketing");
    let supplier = partner_user("usr_s1", "supplier", "ptn_s1", None);
    // Support writes new words and submits them: the live words stay for readers.
    let v = live["version"].as_i64().expect("version");
    let saved = app
        .ok_as(
            &support,
            UPDATE,
            json!({ "id": article, "v": v, "input": { "body": "Oil the pump monthly.\nCheck the seal.\n", "status": "REVIEW" } }),
        )
        .await["updateArticle"]
        .clone();
    assert_eq!(
        saved["pendingStatus"],
        json!({ "number": 2, "state": "REVIEW" })
    );
    let read = app
        .ok_as(
            &supplier,
            "query($id: ID!) { article(id: $id) { body version updatedAt revision revisions { number } workingRevision { number } } }",
            json!({ "id": article }),
        )
        .await["article"]
        .clone();
    assert_eq!(
        read,
        json!({ "body": "Oil the pump.\nCheck the seal.\n", "version": null, "updatedAt": null,
                "revision": null, "revisions": null, "workingRevision": null }),
        "a partner reads the live words and nothing of the work behind them"
    );
    let queue = app
        .gql_as(
            &supplier,
            "{ articles(filter: { awaitingReview: true }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        queue["errors"][0]["extensions"]["field"], "filter.awaitingReview",
        "partners can't ask which articles have words in review"
    );
    // The author may not review; the queue says so; marketing sees the diff and approves.
    let as_author = app.ok_as(&support, HISTORY, json!({ "id": article })).await;
    assert_eq!(as_author["article"]["mayReview"], false);
    let as_reviewer = app
        .ok_as(&marketing, HISTORY, json!({ "id": article }))
        .await;
    assert_eq!(as_reviewer["article"]["mayReview"], true);
    let newest = &as_reviewer["article"]["revisions"][0];
    assert_eq!(newest["number"], 2);
    assert_eq!(newest["authorUserId"], "usr_support");
    assert_eq!(newest["changes"]["against"], 1);
    assert_eq!(
        newest["changes"]["title"],
        json!([]),
        "the title did not change"
    );
    assert_eq!(
        newest["changes"]["body"],
        json!([
            { "change": "REMOVED", "text": "Oil the pump." },
            { "change": "ADDED", "text": "Oil the pump monthly." },
            { "change": "SAME", "text": "Check the seal." },
        ])
    );
    let awaiting = app
        .ok_as(
            &marketing,
            "{ articles(filter: { awaitingReview: true }) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(awaiting["articles"]["nodes"], json!([{ "id": article }]));
    let refused = app
        .gql_as(&support, APPROVE, json!({ "id": article, "v": v + 1 }))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    // Readers of articles review nothing: a partner, sales, management.
    for reader in [
        supplier.clone(),
        staff("usr_sales", "sales"),
        staff("usr_management", "management"),
    ] {
        for mutation in [
            APPROVE,
            "mutation($id: ID!, $v: Int!) { rejectArticle(id: $id, version: $v, comment: \"no\") { id } }",
            "mutation($id: ID!, $v: Int!) { restoreArticleRevision(id: $id, version: $v, number: 1) { id } }",
        ] {
            let body = app
                .gql_as(&reader, mutation, json!({ "id": article, "v": v + 1 }))
                .await;
            let code = &body["errors"][0]["extensions"]["code"];
            assert!(
                code == "FORBIDDEN" || code == "NOT_FOUND",
                "{:?} {mutation}: {body}",
                reader.roles
            );
        }
    }
    let approved = app
        .ok_as(
            &marketing,
            APPROVE,
            json!({ "id": article, "v": v + 1, "c": "Good." }),
        )
        .await["approveArticle"]
        .clone();
    assert_eq!(approved["revision"], 2);
    let read = app
        .ok_as(
            &supplier,
            "query($id: ID!) { article(id: $id) { body } }",
            json!({ "id": article }),
        )
        .await;
    assert_eq!(
        read["article"]["body"],
        "Oil the pump monthly.\nCheck the seal.\n"
    );
    // A rejection needs a reason, sends the words back as a draft, and the live words stay.
    let v = approved["version"].as_i64().expect("version");
    app.ok_as(
        &support,
        UPDATE,
        json!({ "id": article, "v": v, "input": { "title": "Pump care", "status": "REVIEW" } }),
    )
    .await;
    let no_reason = app
        .gql_as(
            &marketing,
            "mutation($id: ID!, $v: Int!) { rejectArticle(id: $id, version: $v, comment: \" \") { id } }",
            json!({ "id": article, "v": v + 1 }),
        )
        .await;
    assert_eq!(no_reason["errors"][0]["extensions"]["field"], "comment");
    let rejected = app
        .ok_as(
            &marketing,
            "mutation($id: ID!, $v: Int!) { rejectArticle(id: $id, version: $v, comment: \"Keep the old title.\") { title version workingRevision { number state } } }",
            json!({ "id": article, "v": v + 1 }),
        )
        .await["rejectArticle"]
        .clone();
    assert_eq!(rejected["title"], "Pump maintenance");
    assert_eq!(
        rejected["workingRevision"],
        json!({ "number": 3, "state": "REJECTED" }),
        "back on the writers' desk, marked as sent back"
    );
    // Restoring the first version starts a new draft with its words.
    let restored = app
        .ok_as(
            &support,
            "mutation($id: ID!, $v: Int!) { restoreArticleRevision(id: $id, version: $v, number: 1) { workingRevision { number state title } } }",
            json!({ "id": article, "v": rejected["version"] }),
        )
        .await;
    assert_eq!(
        restored["restoreArticleRevision"]["workingRevision"],
        json!({ "number": 4, "state": "DRAFT", "title": "Pump maintenance" })
    );
    let history = app
        .ok_as(&marketing, HISTORY, json!({ "id": article }))
        .await;
    let states: Vec<(i64, String, Value)> = history["article"]["revisions"]
        .as_array()
        .expect("revisions")
        .iter()
        .map(|r| {
            (
                r["number"].as_i64().expect("number"),
                r["state"].as_str().expect("state").to_owned(),
                r["reviewComment"].clone(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (4, "DRAFT".into(), Value::Null),
            (3, "REJECTED".into(), json!("Keep the old title.")),
            (2, "PUBLISHED".into(), json!("Good.")),
            (1, "PUBLISHED".into(), Value::Null),
        ]
    );
    assert_eq!(app.count("article_revisions").await, 4);
}

#[tokio::test]
async fn partners_read_articles_for_their_tier_only() {
    let app = spawn().await;
    let tiered = create_article(
        &app,
        json!({ "title": "Funds for Gold partners", "body": "b", "audiences": ["DISTRIBUTOR"], "tiers": ["GOLD", "PLATINUM"] }),
    )
    .await;
    create_article(
        &app,
        json!({ "title": "Shipping rules", "body": "b", "audiences": ["DISTRIBUTOR"] }),
    )
    .await;
    let titles_for = |caller| {
        let app = &app;
        async move {
            titles(
                &app.ok_as(
                    &caller,
                    "{ articles(orderBy: { field: TITLE, direction: ASC }) { nodes { title } } }",
                    json!({}),
                )
                .await["articles"],
            )
        }
    };
    let gold = partner_user("usr_d1", "distributor", "ptn_d1", Some("GOLD"));
    let silver = partner_user("usr_d2", "distributor", "ptn_d2", Some("SILVER"));
    let unknown = partner_user("usr_d3", "distributor", "ptn_d3", None);
    let typo = partner_user("usr_d4", "distributor", "ptn_d4", Some("gold"));
    assert_eq!(
        titles_for(gold.clone()).await,
        ["Funds for Gold partners", "Shipping rules"]
    );
    for reader in [silver.clone(), unknown, typo] {
        assert_eq!(titles_for(reader).await, ["Shipping rules"]);
    }
    let by_id = app
        .ok_as(
            &silver,
            "query($id: ID!) { article(id: $id) { id } }",
            json!({ "id": id(&tiered) }),
        )
        .await;
    assert_eq!(
        by_id["article"],
        Value::Null,
        "out of its tier answers like missing"
    );
    let searched = app
        .ok_as(
            &silver,
            "{ articles(filter: { text: \"funds\" }) { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(searched["articles"]["totalCount"], 0);
    let staff_titles = titles_for(staff("usr_sales", "sales")).await;
    assert!(
        staff_titles.is_empty(),
        "sales reads internal and public articles only: {staff_titles:?}"
    );
    assert_eq!(
        titles_for(staff("usr_support", "support")).await,
        ["Funds for Gold partners", "Shipping rules"],
        "staff are never narrowed by tier"
    );
}

#[tokio::test]
async fn readers_answer_and_are_counted_and_only_staff_read_the_answers() {
    let app = spawn().await;
    let article = id(&create_article(
        &app,
        json!({ "title": "Reset the pump", "body": "Hold reset.", "audiences": ["DISTRIBUTOR", "INTERNAL"] }),
    )
    .await);
    let gold = partner_user("usr_d1", "distributor", "ptn_d1", Some("GOLD"));
    let support = staff("usr_support", "support");
    let sales = staff("usr_sales", "sales");
    let view = "mutation($id: ID!) { recordArticleView(articleId: $id) }";
    for _ in 0..3 {
        app.ok_as(&gold, view, json!({ "id": article })).await;
    }
    app.ok_as(&support, view, json!({ "id": article })).await;
    let give = "mutation($id: ID!, $h: Boolean!, $c: String) { giveArticleFeedback(articleId: $id, helpful: $h, comment: $c) { myFeedback { helpful comment } feedback { views } } }";
    let given = app
        .ok_as(
            &gold,
            give,
            json!({ "id": article, "h": false, "c": "Which button?" }),
        )
        .await;
    assert_eq!(
        given["giveArticleFeedback"],
        json!({ "myFeedback": { "helpful": false, "comment": "Which button?" }, "feedback": null }),
        "a partner reads its own answer, never the counts"
    );
    // A second answer replaces the first.
    app.ok_as(
        &gold,
        give,
        json!({ "id": article, "h": true, "c": "Found it." }),
    )
    .await;
    app.ok_as(&support, give, json!({ "id": article, "h": true }))
        .await;
    let summary = "query($id: ID!) { article(id: $id) { feedback { views helpful notHelpful byReaderKind { readerKind views helpful notHelpful } comments { helpful comment readerKind readerPartnerId } } } }";
    let read = app.ok_as(&support, summary, json!({ "id": article })).await;
    assert_eq!(
        read["article"]["feedback"],
        json!({
            "views": 2, "helpful": 2, "notHelpful": 0,
            "byReaderKind": [
                { "readerKind": "distributor", "views": 1, "helpful": 1, "notHelpful": 0 },
                { "readerKind": "internal", "views": 1, "helpful": 1, "notHelpful": 0 },
            ],
            "comments": [{ "helpful": true, "comment": "Found it.", "readerKind": "distributor", "readerPartnerId": "ptn_d1" }],
        }),
        "views are reader-days: three views of one reader on one day count once"
    );
    let hidden = app.ok_as(&sales, summary, json!({ "id": article })).await;
    assert_eq!(
        hidden["article"],
        json!({ "feedback": null }),
        "sales reads the (internal) article, not what readers made of it"
    );
    // Nobody answers for an article it can't read, and it is told so as for a missing one.
    let supplier = partner_user("usr_s1", "supplier", "ptn_s1", None);
    let refused = app
        .gql_as(&supplier, give, json!({ "id": article, "h": true }))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let missing = app
        .gql_as(&supplier, give, json!({ "id": "art_missing", "h": true }))
        .await;
    assert_eq!(
        missing["errors"][0]["extensions"],
        refused["errors"][0]["extensions"]
    );
    assert_eq!(app.count("article_feedback").await, 2);
}

#[tokio::test]
async fn cases_and_articles_link_through_each_readers_policy() {
    let app = spawn().await;
    let internal = id(&create_article(
        &app,
        json!({ "title": "Pump seal replacement", "body": "Replace the seal.", "audiences": ["INTERNAL"] }),
    )
    .await);
    let supplier_only = id(&create_article(
        &app,
        json!({ "title": "Pump seal supplier notes", "body": "Seal batch 7.", "audiences": ["SUPPLIER"] }),
    )
    .await);
    let public = id(&create_article(
        &app,
        json!({ "title": "Pump noise", "body": "A humming pump is normal.", "audiences": ["PUBLIC"] }),
    )
    .await);
    let support = staff("usr_support", "support");
    let sales = staff("usr_sales", "sales");
    let link = "mutation($c: ID!, $a: ID!, $s: Boolean) { linkArticleToCase(caseId: $c, articleId: $a, solved: $s) { id } }";
    for (case, article, solved) in [
        ("case_1", &internal, true),
        ("case_2", &internal, true),
        ("case_2", &supplier_only, true),
        ("case_3", &public, false),
    ] {
        app.ok_as(
            &support,
            link,
            json!({ "c": case, "a": article, "s": solved }),
        )
        .await;
    }
    // Only support and admin make and remove links: sales reads them, marketing and
    // partners don't touch them.
    let unlink = "mutation($c: ID!, $a: ID!) { unlinkArticleFromCase(caseId: $c, articleId: $a) }";
    for who in [
        sales.clone(),
        staff("usr_marketing", "marketing"),
        partner_user("usr_d1", "distributor", "ptn_d1", Some("GOLD")),
    ] {
        for (mutation, variables) in [
            (link, json!({ "c": "case_9", "a": public, "s": false })),
            (unlink, json!({ "c": "case_3", "a": public })),
        ] {
            let refused = app.gql_as(&who, mutation, variables).await;
            assert_eq!(
                refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
                "{:?}: {refused}",
                who.roles
            );
        }
    }
    let entities = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Case { articles { solved article { id title } } suggestedArticles { solvedCases article { id } } } } }";
    let reps =
        json!({ "r": [{ "__typename": "Case", "id": "case_2", "subject": "Pump seal leaks" }] });
    let as_support = app.ok_as(&support, entities, reps.clone()).await;
    assert_eq!(
        as_support["_entities"][0]["articles"]
            .as_array()
            .expect("articles")
            .len(),
        2
    );
    let as_sales = app.ok_as(&sales, entities, reps.clone()).await;
    assert_eq!(
        as_sales["_entities"][0]["articles"],
        json!([{ "solved": true, "article": { "id": internal, "title": "Pump seal replacement" } }]),
        "sales reads internal and public articles only, so the supplier article's link is not there"
    );
    // Suggestions: readable articles sharing a word, not linked yet, by cases solved.
    let fresh =
        json!({ "r": [{ "__typename": "Case", "id": "case_4", "subject": "Pump seal leaks" }] });
    let suggested = app.ok_as(&support, entities, fresh.clone()).await;
    assert_eq!(
        suggested["_entities"][0]["suggestedArticles"],
        json!([
            { "solvedCases": 2, "article": { "id": internal } },
            { "solvedCases": 1, "article": { "id": supplier_only } },
            { "solvedCases": 0, "article": { "id": public } },
        ])
    );
    let for_sales = app.ok_as(&sales, entities, fresh).await;
    let ids: Vec<&str> = for_sales["_entities"][0]["suggestedArticles"]
        .as_array()
        .expect("suggested")
        .iter()
        .map(|s| s["article"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [internal.as_str(), public.as_str()]);
    // Partners read no links at all, whatever case id they name.
    let partner = partner_user("usr_d1", "distributor", "ptn_d1", Some("GOLD"));
    let none = app.ok_as(&partner, entities, reps).await;
    assert_eq!(
        none["_entities"][0],
        json!({ "articles": null, "suggestedArticles": null })
    );
    let cases = app
        .ok_as(
            &support,
            "query($id: ID!) { article(id: $id) { cases { solved case { id } } } }",
            json!({ "id": internal }),
        )
        .await;
    assert_eq!(
        cases["article"]["cases"].as_array().expect("cases").len(),
        2
    );
    let unlinked = app
        .ok_as(&support, unlink, json!({ "c": "case_1", "a": internal }))
        .await;
    assert_eq!(unlinked["unlinkArticleFromCase"], true);
    assert_eq!(app.count("case_articles").await, 3);
}
