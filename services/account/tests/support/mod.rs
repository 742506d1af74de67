//! `TestApp`: the real account service on port 0 over a fresh database — a new SQLite file,
//! or a new PostgreSQL schema when `DATABASE_URL` is set.

#![allow(dead_code)]

use crm_service_common::db::{DbTarget, StatementCounter, connect};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub statements: StatementCounter,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh, migrated database for one test.
pub async fn fresh_database() -> (
    DatabaseConnection,
    StatementCounter,
    Option<tempfile::TempDir>,
) {
    let (target, dir) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("test_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            (DbTarget { url, schema }, None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            (
                DbTarget::for_service(None, dir.path(), "account"),
                Some(dir),
            )
        }
    };
    let mut db = connect(&target).await.expect("connect");
    crm_account::migrate(&db).await.expect("migrate");
    let statements = StatementCounter::default();
    statements.attach(&mut db);
    (db, statements, dir)
}

impl TestApp {
    pub async fn spawn() -> Self {
        let (db, statements, dir) = fresh_database().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = crm_account::app(db.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            client: reqwest::Client::new(),
            db,
            statements,
            _dir: dir,
        }
    }

    /// Posts one GraphQL operation and returns the whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json body")
    }

    /// Posts an operation that must succeed and returns its `data`.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Posts an operation that must fail and returns its first error.
    pub async fn error(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        body["errors"][0].clone()
    }

    pub async fn create_territory(&self, code: &str) -> String {
        let data = self
            .ok(
                "mutation($code: String!) { createTerritory(input: { code: $code, name: $code }) { id } }",
                json!({ "code": code }),
            )
            .await;
        data["createTerritory"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn create_account(&self, name: &str, extra: Value) -> Value {
        let mut input = json!({ "name": name, "segment": "SMB", "tier": "STANDARD", "lifecycleStage": "CUSTOMER" });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        let data = self
            .ok(
                "mutation($input: AccountInput!) { createAccount(input: $input) { id name version territory { code } } }",
                json!({ "input": input }),
            )
            .await;
        data["createAccount"].clone()
    }

    pub async fn count(&self, table: &str) -> i64 {
        use sea_orm::{ConnectionTrait, Statement};
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count")
            .expect("row");
        row.try_get::<i64>("", "n").expect("n")
    }
}

pub fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}
