//! Separate OS processes of the real binary. A policy edit reaches another OS process within 2 s: the all-in-one `crm` (where an
//! admin edits the policy) and a separate `crm service account` that follows the policy
//! through Redis. Also when the change message is lost: a version written to Redis without
//! its message is picked up by the follower's periodic check. Both processes run the real
//! binary over SQLite files of their own; Redis is REDIS_URL, else the local one.

use crate::support::plain;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crm_service_common::internal_auth::{Caller, KeyPair};
use crm_service_common::policy_sync::{PolicyKeys, PolicySnapshot};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

/// Starts `crm` with `args` and returns the process and the first URL found after
/// `marker` in its output (stdout and stderr are both read).
pub(crate) async fn start(
    args: &[&str],
    data_dir: &std::path::Path,
    redis_url: &str,
    namespace: &str,
    envs: &[(&str, String)],
    marker: &str,
) -> (tokio::process::Child, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_crm"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env("REDIS_URL", redis_url)
        .env("CRM_EVENT_NAMESPACE", namespace)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut process = command.spawn().expect("start crm");
    let stdout = tokio::io::BufReader::new(process.stdout.take().expect("stdout")).lines();
    let stderr = tokio::io::BufReader::new(process.stderr.take().expect("stderr")).lines();
    let (found, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for mut lines in [
        Box::new(stdout) as Box<dyn LineSource>,
        Box::new(stderr) as Box<dyn LineSource>,
    ] {
        let found = found.clone();
        tokio::spawn(async move {
            while let Some(line) = lines.next().await {
                let _ = found.send(plain(&line));
            }
        });
    }
    let marker = marker.to_owned();
    let url = tokio::time::timeout(Duration::from_secs(120), async move {
        while let Some(line) = rx.recv().await {
            if let Some(at) = line.find(&marker) {
                let rest = &line[at..];
                if let Some(start) = rest.find("http://") {
                    let url: String = rest[start..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    // Keep draining so the pipes never fill.
                    tokio::spawn(async move { while rx.recv().await.is_some() {} });
                    return url.trim_end_matches("/graphql").to_owned();
                }
            }
        }
        panic!("crm stopped before printing {marker}");
    })
    .await
    .expect("crm starts within two minutes");
    (process, url)
}

/// Lines of a child's output stream.
trait LineSource: Send {
    fn next(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + '_>>;
}

impl<R: tokio::io::AsyncBufRead + Unpin + Send> LineSource for tokio::io::Lines<R> {
    fn next(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + '_>> {
        Box::pin(async move { self.next_line().await.ok().flatten() })
    }
}

pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    bearer: &str,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = client.post(format!("{url}/graphql"));
    if !bearer.is_empty() {
        request = request.bearer_auth(bearer);
    }
    request
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

fn caller(subject: &str, role: &str) -> Caller {
    Caller {
        partner_tier: None,
        subject: subject.into(),
        kind: "internal".into(),
        partner_id: None,
        roles: vec![role.into()],
        policy_version: 0,
        session_id: None,
        source: None,
    }
}

/// Polls how many accounts a sales user sees in the account process until it is `want`;
/// returns how long that took.
async fn until_sales_sees(
    client: &reqwest::Client,
    url: &str,
    keys: &KeyPair,
    want: i64,
) -> Duration {
    let started = Instant::now();
    loop {
        let token = keys
            .signer()
            .mint("account", &caller("usr_sales", "sales"), "t");
        let body = post(
            client,
            url,
            &token,
            "{ accounts { totalCount } }",
            json!({}),
        )
        .await;
        if body["data"]["accounts"]["totalCount"] == json!(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the account process never decided with the new policy: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_edit_reaches_another_process_within_two_seconds_even_without_its_message() {
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let namespace = format!("policy-test-{}", uuid_like());
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = KeyPair::generate().expect("keys");

    // The account service as its own process, trusting our gateway key.
    let (_account, account_url) = start(
        &["service", "account", "--listen", "127.0.0.1:0"],
        &dir.path().join("account"),
        &redis_url,
        &namespace,
        &[("CRM_GATEWAY_PUBLIC_KEY", keys.public_base64())],
        "service listening",
    )
    .await;
    let admin = keys
        .signer()
        .mint("account", &caller("usr_admin", "admin"), "t");
    let created = post(
        &client,
        &account_url,
        &admin,
        "mutation { createAccount(input: { name: \"Acme\", segment: SMB, tier: KEY, lifecycleStage: CUSTOMER }) { id } }",
        json!({}),
    )
    .await;
    assert!(
        created["data"]["createAccount"]["id"].is_string(),
        "{created}"
    );
    until_sales_sees(&client, &account_url, &keys, 1).await;

    // The all-in-one, where the admin edits the policy.
    let (_all_in_one, url) = start(
        &["--listen", "127.0.0.1:0"],
        &dir.path().join("all"),
        &redis_url,
        &namespace,
        &[],
        "GraphQL API:",
    )
    .await;
    let signed_in = post(
        &client,
        &url,
        "",
        "mutation { signIn(email: \"admin@crm.example\", password: \"demo-password\") { accessToken } }",
        json!({}),
    )
    .await;
    let token = signed_in["data"]["signIn"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("sign in: {signed_in}"))
        .to_owned();
    let deny = json!({ "role": "sales", "domain": "internal", "type": "Account", "action": "read", "scope": "all", "effect": "deny" });
    let edited = post(
        &client,
        &url,
        &token,
        "mutation($r: PolicyRuleInput!) { addPolicyRule(rule: $r) { version } }",
        json!({ "r": deny }),
    )
    .await;
    let version = edited["data"]["addPolicyRule"]["version"]
        .as_u64()
        .unwrap_or_else(|| panic!("edit: {edited}"));
    let by_message = until_sales_sees(&client, &account_url, &keys, 0).await;
    assert!(by_message < Duration::from_secs(2), "took {by_message:?}");
    // The edit is audited.
    let history = post(
        &client,
        &url,
        &token,
        "{ policyHistory(first: 1) { version change createdBy } }",
        json!({}),
    )
    .await;
    assert_eq!(
        history["data"]["policyHistory"][0],
        json!({ "version": version, "change": "added: p, sales, internal, Account, read, all, deny", "createdBy": "usr_admin" })
    );
    // A rule that names an unknown scope is refused and changes nothing.
    let typo = post(
        &client,
        &url,
        &token,
        "mutation($r: PolicyRuleInput!) { addPolicyRule(rule: $r) { version } }",
        json!({ "r": { "role": "sales", "domain": "internal", "type": "Account", "action": "read", "scope": "everything", "effect": "allow" } }),
    )
    .await;
    assert_eq!(
        typo["errors"][0]["extensions"]["code"], "VALIDATION",
        "{typo}"
    );

    // The next version reaches Redis without its message (as if pub/sub dropped it): the
    // follower's periodic check still converges.
    let redis = redis::Client::open(redis_url.as_str()).expect("redis");
    let mut connection = redis::aio::ConnectionManager::new(redis)
        .await
        .expect("connect");
    let keys_of = PolicyKeys::new(Some(&namespace));
    let body: String = redis::cmd("GET")
        .arg(&keys_of.snapshot)
        .query_async(&mut connection)
        .await
        .expect("snapshot");
    let published: PolicySnapshot = serde_json::from_str(&body).expect("snapshot json");
    assert_eq!(published.version, version);
    let without_deny: String = published
        .rules
        .lines()
        .filter(|l| l.trim() != "p, sales, internal, Account, read, all, deny")
        .map(|l| format!("{l}\n"))
        .collect();
    let next = PolicySnapshot {
        version: version + 1,
        rules: without_deny,
    };
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(&keys_of.snapshot)
        .arg(serde_json::to_string(&next).expect("json"))
        .ignore()
        .cmd("SET")
        .arg(&keys_of.version)
        .arg(next.version)
        .ignore()
        .query_async(&mut connection)
        .await
        .expect("write without publishing");
    let by_check = until_sales_sees(&client, &account_url, &keys, 1).await;
    assert!(by_check < Duration::from_secs(2), "took {by_check:?}");
    eprintln!("policy propagation: by message {by_message:?}, by periodic check {by_check:?}");
    let _: () = redis::cmd("DEL")
        .arg(&keys_of.snapshot)
        .arg(&keys_of.version)
        .query_async(&mut connection)
        .await
        .expect("clean up");
}

pub(crate) fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{}", std::process::id())
}

/// Share rows across processes: the account service, as its own process, follows the
/// order service's events (Redis Streams, and the order service's feed opened with a feed
/// key), so a supplier sees the account that ordered its product.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_rows_follow_order_events_between_service_processes() {
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let namespace = format!("shares-test-{}", uuid_like());
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = KeyPair::generate().expect("keys");
    let feed_key = "feed-key-for-this-test-0123456789".to_owned();
    let shared = [
        ("CRM_GATEWAY_PUBLIC_KEY", keys.public_base64()),
        ("CRM_FEED_KEY", feed_key.clone()),
    ];
    let (_orders, order_url) = start(
        &["service", "order-visibility", "--listen", "127.0.0.1:0"],
        &dir.path().join("orders"),
        &redis_url,
        &namespace,
        &shared,
        "service listening",
    )
    .await;
    let mut account_env = shared.to_vec();
    account_env.push(("CRM_ORDER_FEED_URL", order_url.clone()));
    let (_accounts, account_url) = start(
        &["service", "account", "--listen", "127.0.0.1:0"],
        &dir.path().join("accounts"),
        &redis_url,
        &namespace,
        &account_env,
        "service listening",
    )
    .await;

    // The feed opens to its key and to gateway tokens only.
    let feed = |bearer: Option<String>| {
        let mut request = client.get(format!("{order_url}/events?after=0"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    assert_eq!(feed(None).await.expect("feed").status(), 401);
    assert_eq!(
        feed(Some("feed-key-wrong-0123456789abcdefg".into()))
            .await
            .expect("feed")
            .status(),
        401
    );
    assert_eq!(
        feed(Some(feed_key.clone())).await.expect("feed").status(),
        200
    );

    let admin = |audience: &str| {
        keys.signer()
            .mint(audience, &caller("usr_admin", "admin"), "t")
    };
    let account = post(
        &client,
        &account_url,
        &admin("account"),
        "mutation { createAccount(input: { name: \"Buyer\", segment: SMB, tier: KEY, lifecycleStage: CUSTOMER }) { id } } ",
        json!({}),
    )
    .await["data"]["createAccount"]["id"]
        .as_str()
        .expect("account")
        .to_owned();
    let supplier = post(
        &client,
        &account_url,
        &admin("account"),
        "mutation { createPartner(input: { name: \"Maker\", kind: SUPPLIER, tier: GOLD }) { id } }",
        json!({}),
    )
    .await["data"]["createPartner"]["id"]
        .as_str()
        .expect("partner")
        .to_owned();
    let as_supplier = Caller {
        partner_tier: None,
        subject: "usr_maker".into(),
        kind: "supplier".into(),
        partner_id: Some(supplier.clone()),
        roles: vec!["partner_user".into()],
        policy_version: 0,
        session_id: None,
        source: None,
    };
    let seen = || async {
        let token = keys.signer().mint("account", &as_supplier, "t");
        post(
            &client,
            &account_url,
            &token,
            "{ accounts { totalCount } }",
            json!({}),
        )
        .await["data"]["accounts"]["totalCount"]
            .clone()
    };
    assert_eq!(seen().await, json!(0), "no order yet, no share");

    let orders = admin("order-visibility");
    let product = post(
        &client,
        &order_url,
        &orders,
        "mutation($s: ID!) { createProduct(input: { sku: \"SKU-1\", name: \"Widget\", supplierPartnerId: $s, unitPrice: \"5.00\", currency: \"EUR\" }) { id } }",
        json!({ "s": supplier }),
    )
    .await["data"]["createProduct"]["id"]
        .as_str()
        .expect("product")
        .to_owned();
    let order = post(
        &client,
        &order_url,
        &orders,
        "mutation($a: ID!) { createOrder(input: { accountId: $a, currency: \"EUR\" }) { id } }",
        json!({ "a": account }),
    )
    .await["data"]["createOrder"]["id"]
        .as_str()
        .expect("order")
        .to_owned();
    let line = post(
        &client,
        &order_url,
        &orders,
        "mutation($o: ID!, $p: ID!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: 1, unitPrice: \"5.00\", currency: \"EUR\" }) { id } }",
        json!({ "o": order, "p": product }),
    )
    .await;
    assert!(line["data"]["createOrderLine"]["id"].is_string(), "{line}");
    let started = Instant::now();
    while seen().await != json!(1) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the account process never learned of the order"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("share row across processes after {:?}", started.elapsed());
}
