//! The seeded demo system as the access tests use it: started with its share rows settled,
//! its directory's users at hand, and operations sent as any of them.

use std::time::Duration;

use crm_identity::user;
use crm_system::GatewaySettings;
use serde_json::Value;

/// The seeded demo system (12 accounts per partner, shares settled) and its users.
pub struct Demo {
    pub system: crm_system::AllInOne,
    dir: tempfile::TempDir,
    created: Option<String>,
    client: reqwest::Client,
    url: String,
    pub users: Vec<user::Model>,
}

impl Demo {
    pub async fn start() -> Self {
        Self::start_with(GatewaySettings::default()).await
    }

    /// The demo system with its gateway set as given.
    pub async fn start_with(settings: GatewaySettings) -> Self {
        let (system, dir, created) = crate::system_with_settings(12, settings).await;
        system
            .settle_shares(Duration::from_secs(30))
            .await
            .expect("shares settle");
        let users = crm_identity::all_users(&system.databases.identity)
            .await
            .expect("users");
        let url = system.public.url();
        Demo {
            system,
            dir,
            created,
            client: reqwest::Client::new(),
            url,
            users,
        }
    }

    /// Where the embedded default keeps its SQLite files (unused on PostgreSQL).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The first demo user of `kind` with exactly the role `role`.
    pub fn first(&self, kind: &str, role: &str) -> user::Model {
        self.users
            .iter()
            .find(|u| u.kind == kind && u.roles == role)
            .cloned()
            .unwrap_or_else(|| panic!("a demo {kind} {role}"))
    }

    /// The first demo user of `kind` with exactly the role `role` outside the
    /// organisations `not`.
    pub fn another(&self, kind: &str, role: &str, not: &[&str]) -> user::Model {
        self.users
            .iter()
            .find(|u| {
                u.kind == kind
                    && u.roles == role
                    && u.partner_id.as_deref().is_some_and(|p| !not.contains(&p))
            })
            .cloned()
            .unwrap_or_else(|| panic!("another {kind} {role}"))
    }

    /// The first product of the supplier organisation `supplier`, as `admin` reads it.
    pub async fn product_of(&self, admin: &user::Model, supplier: &str) -> String {
        self.ok(
            admin,
            "query($s: ID) { products(first: 1, filter: { supplierPartnerId: $s }) { nodes { id } } }",
            serde_json::json!({ "s": supplier }),
        )
        .await["products"]["nodes"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a product of {supplier}"))
            .to_owned()
    }

    /// A new order of the first account, fulfilled by the distributor organisation
    /// `distributor`, with an internal note and a line of each `(product, quantity)` at
    /// 10.00 EUR, made by `admin`: its id.
    pub async fn order_with_lines(
        &self,
        admin: &user::Model,
        distributor: &str,
        lines: &[(&str, i32)],
    ) -> String {
        let account = self
            .ok(
                admin,
                "{ accounts(first: 1) { nodes { id } } }",
                serde_json::json!({}),
            )
            .await["accounts"]["nodes"][0]["id"]
            .clone();
        let order = self
            .ok(
                admin,
                "mutation($a: ID!, $d: ID!) { createOrder(input: { accountId: $a, currency: \"EUR\", fulfillingDistributorId: $d, internalNote: \"margin is thin\" }) { id } }",
                serde_json::json!({ "a": account, "d": distributor }),
            )
            .await["createOrder"]["id"]
            .as_str()
            .expect("an order")
            .to_owned();
        for (product, quantity) in lines {
            self.ok(
                admin,
                "mutation($o: ID!, $p: ID!, $q: Int!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: $q, unitPrice: \"10.00\", currency: \"EUR\" }) { id } }",
                serde_json::json!({ "o": order, "p": product, "q": quantity }),
            )
            .await;
        }
        order
    }

    /// The gateway's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn token(&self, user: &user::Model) -> String {
        self.system.identity.issuer.issue(&user.id, None, 900)
    }

    /// The whole answer to `query` sent as `user`.
    pub async fn send(&self, user: &user::Model, query: &str, variables: Value) -> Value {
        self.send_with(&self.token(user), query, variables).await
    }

    /// The whole answer to `query` sent with a bearer credential (a token or an API key).
    pub async fn send_with(&self, bearer: &str, query: &str, variables: Value) -> Value {
        crate::gateway_as(&self.client, &self.url, Some(bearer), query, variables)
            .await
            .1
    }

    /// The answer's data, or a panic when it has errors.
    pub async fn ok(&self, user: &user::Model, query: &str, variables: Value) -> Value {
        let body = self.send(user, query, variables).await;
        assert!(body.get("errors").is_none(), "{query}: {body}");
        body["data"].clone()
    }

    /// Ends the system (with the harness's 0-drift check of the share rows).
    pub async fn finish(self) {
        crate::finish(self.system, self.created).await;
    }
}

/// A partner user's organisation.
pub fn partner_of(user: &user::Model) -> String {
    user.partner_id.clone().expect("a partner user")
}
