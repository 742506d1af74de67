//! The account service under test (`crm_testkit::TestApp`) and its own test steps.

#![allow(dead_code, unused_imports)]

use crm_service_common::db::StatementCounter;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

pub use crm_testkit::{TestApp, id};

/// A fresh, migrated account database for one test.
pub async fn fresh_database() -> (
    DatabaseConnection,
    StatementCounter,
    Option<tempfile::TempDir>,
) {
    crm_testkit::fresh_database_of(&crm_account::subgraph()).await
}

/// The account service on port 0 over a fresh database.
pub async fn spawn() -> TestApp {
    TestApp::start(&crm_account::subgraph()).await
}

/// The account service's own steps for tests.
pub trait AccountSteps {
    fn create_territory(&self, code: &str) -> impl std::future::Future<Output = String>;
    fn create_account(&self, name: &str, extra: Value) -> impl std::future::Future<Output = Value>;
}

impl AccountSteps for TestApp {
    async fn create_territory(&self, code: &str) -> String {
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

    async fn create_account(&self, name: &str, extra: Value) -> Value {
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
}
