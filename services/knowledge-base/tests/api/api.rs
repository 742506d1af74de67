//! The knowledge-base subgraph over HTTP, against a fresh database per test (SQLite FTS5,
//! or PostgreSQL full-text search when `DATABASE_URL` is set).

use crm_testkit::{TestApp, id};
use serde_json::{Value, json};

async fn spawn() -> TestApp {
    TestApp::start(&crm_knowledge_base::subgraph()).await
}

async fn create_article(app: &TestApp, input: Value) -> Value {
    let mut full = json!({ "audiences": ["INTERNAL"], "status": "PUBLISHED" });
    if let (Some(full), Some(input)) = (full.as_object_mut(), input.as_object()) {
        full.extend(input.clone());
    }
    app.ok(
        "mutation($input: ArticleInput!) { createArticle(input: $input) { id version status revision publishedAt title } }",
        json!({ "input": full }),
    )
    .await["createArticle"]
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
    let update = "mutation($id: ID!, $v: Int!, $input: ArticleInput!) { updateArticle(id: $id, version: $v, input: $input) { status revision version publishedAt } }";
    let skipped = app
        .error(
            update,
            json!({ "id": id(&created), "v": 1, "input": { "status": "PUBLISHED" } }),
        )
        .await;
    assert_eq!(skipped["extensions"]["code"], "INVALID_STATE");
    assert_eq!(
        skipped["message"],
        "an article cannot go from DRAFT to PUBLISHED (allowed: REVIEW, ARCHIVED)"
    );
    let mut version = 1;
    let mut step = |input: Value| {
        let app = &app;
        let article = id(&created);
        let v = version;
        version += 1;
        async move {
            app.ok(update, json!({ "id": article, "v": v, "input": input }))
                .await["updateArticle"]
                .clone()
        }
    };
    assert_eq!(
        step(json!({ "body": "# Setup\n\nNew words." })).await["revision"],
        2
    );
    assert_eq!(
        step(json!({ "status": "REVIEW" })).await["revision"],
        2,
        "a status move is no new revision"
    );
    let published = step(json!({ "status": "PUBLISHED" })).await;
    assert!(published["publishedAt"].is_string());
    assert_eq!(
        step(json!({ "status": "DRAFT", "title": "Setup v2" })).await["revision"],
        3
    );
    assert_eq!(
        step(json!({ "status": "ARCHIVED" })).await["status"],
        "ARCHIVED"
    );
    assert_eq!(
        step(json!({ "status": "DRAFT" })).await["status"],
        "DRAFT",
        "retired articles can be restored"
    );
    let archived = app
        .ok(
            "mutation($id: ID!, $v: Int!) { archiveArticle(id: $id, version: $v) { archivedAt } }",
            json!({ "id": id(&created), "v": version }),
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
