//! `TestApp`: a real service on port 0 over a fresh database — a new SQLite file, or a new
//! PostgreSQL schema when `DATABASE_URL` is set. Every service's integration tests use it.

#![allow(clippy::expect_used)]

use std::future::Future;

use crm_service_common::db::{DbTarget, StatementCounter, connect};
use crm_service_common::internal_auth::SubgraphAuth;
use crm_service_common::subgraph::Subgraph;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub statements: StatementCounter,
    /// Set when the app checks gateway tokens: the key that signs them and the subgraph's
    /// name (their audience).
    gateway: Option<(crm_service_common::internal_auth::TokenSigner, String)>,
    _dir: Option<tempfile::TempDir>,
}

/// An internal user with `role`, as the gateway would send one.
pub fn staff(subject: &str, role: &str) -> crm_service_common::internal_auth::Caller {
    crm_service_common::internal_auth::Caller {
        subject: subject.into(),
        kind: "internal".into(),
        roles: vec![role.into()],
        ..crm_service_common::internal_auth::Caller::anonymous()
    }
}

/// A user of the partner organisation `partner` (`supplier` or `distributor`), of `tier`.
pub fn partner_user(
    subject: &str,
    kind: &str,
    partner: &str,
    tier: Option<&str>,
) -> crm_service_common::internal_auth::Caller {
    crm_service_common::internal_auth::Caller {
        subject: subject.into(),
        kind: kind.into(),
        partner_id: Some(partner.into()),
        roles: vec!["partner_user".into()],
        partner_tier: tier.map(str::to_owned),
        ..crm_service_common::internal_auth::Caller::anonymous()
    }
}

/// A fresh database for one test of `service`, migrated by `migrate`. The statement
/// counter counts what runs on the returned connection.
pub async fn fresh_database<F, Fut>(
    service: &str,
    migrate: F,
) -> (
    DatabaseConnection,
    StatementCounter,
    Option<tempfile::TempDir>,
)
where
    F: FnOnce(DatabaseConnection) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let (target, dir) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("test_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            (DbTarget { url, schema }, None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            (DbTarget::for_service(None, dir.path(), service), Some(dir))
        }
    };
    let mut db = connect(&target).await.expect("connect");
    migrate(db.clone()).await.expect("migrate");
    let statements = StatementCounter::default();
    statements.attach(&mut db);
    (db, statements, dir)
}

/// A fresh database of `subgraph` for one test, migrated as the subgraph migrates itself.
pub async fn fresh_database_of(
    subgraph: &dyn Subgraph,
) -> (
    DatabaseConnection,
    StatementCounter,
    Option<tempfile::TempDir>,
) {
    fresh_database(subgraph.service(), |db| async move {
        subgraph.migrate(&db).await
    })
    .await
}

impl TestApp {
    /// Starts `subgraph` on port 0 over a fresh database, as every process serves it but
    /// answering without gateway tokens.
    pub async fn start(subgraph: &dyn Subgraph) -> Self {
        let (db, statements, dir) = fresh_database_of(subgraph).await;
        let router = subgraph
            .serve(db.clone(), SubgraphAuth::Disabled)
            .await
            .expect("serve");
        Self::serve(router, db, statements, dir, None).await
    }

    /// Starts `subgraph` as [`TestApp::start`] does, but checking gateway tokens as in
    /// production: [`TestApp::gql_as`] calls it as any caller, and [`TestApp::gql`] as an
    /// internal administrator (`usr_admin`).
    pub async fn start_checking_callers(subgraph: &dyn Subgraph) -> Self {
        let (db, statements, dir) = fresh_database_of(subgraph).await;
        let keys = crm_service_common::internal_auth::KeyPair::generate().expect("keys");
        let router = subgraph
            .serve(
                db.clone(),
                SubgraphAuth::Required(std::sync::Arc::new(keys.verifier(subgraph.name()))),
            )
            .await
            .expect("serve");
        let gateway = Some((keys.signer(), subgraph.name().to_owned()));
        Self::serve(router, db, statements, dir, gateway).await
    }

    async fn serve(
        router: axum::Router,
        db: DatabaseConnection,
        statements: StatementCounter,
        dir: Option<tempfile::TempDir>,
        gateway: Option<(crm_service_common::internal_auth::TokenSigner, String)>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url,
            client: reqwest::Client::new(),
            db,
            statements,
            gateway,
            _dir: dir,
        }
    }

    /// Posts one GraphQL operation and returns the whole response body (as an internal
    /// administrator when the app checks callers).
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        match &self.gateway {
            Some(_) => {
                self.gql_as(&staff("usr_admin", "admin"), query, variables)
                    .await
            }
            None => self.post(None, query, variables).await,
        }
    }

    /// Posts one GraphQL operation as `caller` (an app started with
    /// [`TestApp::start_checking_callers`]).
    pub async fn gql_as(
        &self,
        caller: &crm_service_common::internal_auth::Caller,
        query: &str,
        variables: Value,
    ) -> Value {
        let (signer, audience) = self
            .gateway
            .as_ref()
            .expect("an app started with start_checking_callers");
        let token = signer.mint(audience, caller, "test");
        self.post(Some(&token), query, variables).await
    }

    /// `data` of an operation as `caller` that must succeed.
    pub async fn ok_as(
        &self,
        caller: &crm_service_common::internal_auth::Caller,
        query: &str,
        variables: Value,
    ) -> Value {
        let body = self.gql_as(caller, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self.client.post(format!("{}/graphql", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
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
        assert!(body.get("errors").is_some(), "expected an error: {body:#}");
        body["errors"][0].clone()
    }

    /// Rows in `table` (of this service's database).
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

/// The `id` of a returned record.
pub fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

/// Every row of the given record tables as `table id updated_at`, in id order: two
/// databases with equal dumps hold the same records with the same timestamps.
pub async fn dump_records(db: &DatabaseConnection, tables: &[&str]) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let mut rows = Vec::new();
    for table in tables {
        let sql = format!("SELECT * FROM {table} ORDER BY id");
        let result = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("select");
        for row in result {
            let id: String = row.try_get("", "id").expect("id");
            let updated: chrono::DateTime<chrono::Utc> =
                row.try_get("", "updated_at").expect("updated_at");
            rows.push(format!("{table} {id} {updated:?}"));
        }
    }
    rows
}
