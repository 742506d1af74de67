//! The oracle property test: random worlds (partners, territories, accounts, contacts with
//! consents, interactions, products, orders with lines, shipments, manual shares) are built
//! through the gateway as an admin; then every persona asks the API for what it can see, and
//! each answer — ids and field values — must equal what `crm_oracle` computes from the
//! access matrix. The oracle shares no code with the policy or the services' scopes.
//!
//! A case is one (world, persona, query). On SQLite it runs ≥ 10,000 cases; on PostgreSQL
//! (`DATABASE_URL` set) ≥ 1,000. Each world is added to the same system, so later worlds
//! also check that earlier worlds' rows stay out of (or in) every slice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crm_e2e::gateway_as;
use crm_e2e::world::{Canaries, INTERNAL_ROLES, Rng, StaffedSystem, add_world, user};
use crm_identity::DemoUser;
use crm_oracle::{Persona, World};
use serde_json::{Value, json};

/// Every node of a list query, following `pageInfo`; also returns `totalCount`.
async fn all_nodes(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    field: &str,
    selection: &str,
) -> (Vec<Value>, i64) {
    let mut after: Option<String> = None;
    let mut nodes = Vec::new();
    loop {
        let query = format!(
            "query($after: String) {{ {field}(first: 200, after: $after, filter: {{ includeArchived: true }}) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {selection} }} }} }}"
        );
        let (status, body) =
            gateway_as(client, url, Some(token), &query, json!({ "after": after })).await;
        assert!(
            status == 200 && body.get("errors").is_none(),
            "{field}: {status} {body}"
        );
        let page = &body["data"][field];
        let total = page["totalCount"].as_i64().expect("totalCount");
        nodes.extend(page["nodes"].as_array().expect("nodes").iter().cloned());
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            return (nodes, total);
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

fn ids(nodes: &[Value]) -> BTreeSet<String> {
    nodes
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect()
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Runs every query of one persona and compares with the oracle; returns the number of
/// cases (queries) checked.
#[allow(clippy::too_many_lines)]
async fn check_persona(
    ctx: &Check<'_>,
    who: &Persona,
    token: &str,
    round_accounts: &[String],
    round_orders: &[String],
) -> usize {
    let (client, url, world, now) = (ctx.client, ctx.url, ctx.world, ctx.now);
    let mut cases = 0;
    let label = format!("{who:?}");

    let (nodes, total) = all_nodes(client, url, token, "accounts", "id domain internalNote").await;
    let expected = world.accounts_for(who, now);
    assert_eq!(ids(&nodes), expected, "accounts of {label}");
    assert_eq!(
        total,
        expected.len() as i64,
        "account totalCount of {label}"
    );
    for node in &nodes {
        let account = world
            .accounts
            .iter()
            .find(|a| node["id"] == json!(a.id))
            .expect("known account");
        assert_eq!(
            text(&node["domain"]),
            world.account_domain(who, account),
            "{label}"
        );
        assert_eq!(
            text(&node["internalNote"]),
            world.account_note(who, account),
            "{label}"
        );
    }
    cases += 1;

    let (nodes, total) = all_nodes(client, url, token, "contacts", "id email phone").await;
    let expected = world.contacts_for(who, now);
    assert_eq!(ids(&nodes), expected, "contacts of {label}");
    assert_eq!(total, expected.len() as i64, "{label}");
    for node in &nodes {
        let contact = world
            .contacts
            .iter()
            .find(|c| node["id"] == json!(c.id))
            .expect("known contact");
        assert_eq!(
            text(&node["email"]),
            world.contact_email(who, contact),
            "email for {label}"
        );
        assert_eq!(
            text(&node["phone"]),
            world.contact_phone(who, contact),
            "phone for {label}"
        );
    }
    cases += 1;

    let (nodes, _) = all_nodes(client, url, token, "interactions", "id").await;
    assert_eq!(
        ids(&nodes),
        world.interactions_for(who, now),
        "interactions of {label}"
    );
    cases += 1;

    let (nodes, total) = all_nodes(
        client,
        url,
        token,
        "orders",
        "id total { amount } internalNote",
    )
    .await;
    let expected = world.orders_for(who);
    assert_eq!(ids(&nodes), expected, "orders of {label}");
    assert_eq!(total, expected.len() as i64, "{label}");
    for node in &nodes {
        assert_eq!(
            node["total"].is_object(),
            world.sees_order_total(who),
            "total for {label}"
        );
        assert_eq!(
            node["internalNote"].is_string(),
            !who.is_partner(),
            "note for {label}"
        );
    }
    cases += 1;

    let (nodes, _) = all_nodes(client, url, token, "orderLines", "id").await;
    assert_eq!(ids(&nodes), world.lines_for(who), "lines of {label}");
    cases += 1;

    let (nodes, _) = all_nodes(client, url, token, "shipments", "id").await;
    assert_eq!(
        ids(&nodes),
        world.shipments_for(who),
        "shipments of {label}"
    );
    cases += 1;

    let (nodes, _) = all_nodes(client, url, token, "products", "id").await;
    assert_eq!(ids(&nodes), world.products_for(who), "products of {label}");
    cases += 1;

    // Single fetches: a record out of scope answers exactly like a missing one.
    let visible_accounts = world.accounts_for(who, now);
    for id in round_accounts
        .iter()
        .chain(std::iter::once(&"acc_missing".to_owned()))
    {
        let (_, body) = gateway_as(
            client,
            url,
            Some(token),
            "query($id: ID!) { account(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
        let expected = if visible_accounts.contains(id) {
            json!({ "data": { "account": { "id": id } } })
        } else {
            json!({ "data": { "account": null } })
        };
        assert_eq!(body, expected, "account({id}) for {label}");
        cases += 1;
    }
    let visible_orders = world.orders_for(who);
    for id in round_orders {
        let (_, body) = gateway_as(
            client,
            url,
            Some(token),
            "query($id: ID!) { order(id: $id) { id account { id } } }",
            json!({ "id": id }),
        )
        .await;
        let data = &body["data"]["order"];
        if visible_orders.contains(id) {
            assert_eq!(data["id"], json!(id), "order({id}) for {label}: {body}");
            // The order's account, resolved by the account subgraph through the same
            // filter: a partner that sees an order sees its account.
            let account = world
                .orders
                .iter()
                .find(|o| o.id == *id)
                .map(|o| o.account.clone())
                .expect("order");
            let shown = data["account"]["id"].as_str().map(str::to_owned);
            assert_eq!(
                shown.is_some(),
                visible_accounts.contains(&account),
                "order({id}).account for {label}: {body}"
            );
        } else {
            assert_eq!(
                body,
                json!({ "data": { "order": null } }),
                "order({id}) for {label}"
            );
        }
        cases += 1;
    }
    // Federation `_entities` straight at the account subgraph, with the gateway token this
    // persona's request would carry.
    let representations: Vec<Value> = round_accounts
        .iter()
        .map(|id| json!({ "__typename": "Account", "id": id }))
        .collect();
    let body: Value = client
        .post(format!("{}/graphql", ctx.account_url))
        .bearer_auth(ctx.mint(who, token).await)
        .json(&json!({
            "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Account { id } } }",
            "variables": { "r": representations }
        }))
        .send()
        .await
        .expect("entities")
        .json()
        .await
        .expect("json");
    let seen: BTreeSet<String> = body["data"]["_entities"]
        .as_array()
        .unwrap_or_else(|| panic!("entities for {label}: {body}"))
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = round_accounts
        .iter()
        .filter(|id| visible_accounts.contains(*id))
        .cloned()
        .collect();
    assert_eq!(seen, expected, "_entities for {label}");
    cases += 1;
    cases
}

struct Check<'a> {
    client: &'a reqwest::Client,
    url: &'a str,
    account_url: &'a str,
    world: &'a World,
    now: i64,
    system: &'a crm_system::AllInOne,
}

impl Check<'_> {
    /// The account subgraph's gateway token for the persona's user (as the door builds it).
    async fn mint(&self, who: &Persona, _token: &str) -> String {
        let (kind, partner_id, roles) = match who {
            Persona::Internal { role, .. } => ("internal", None, vec![(*role).to_owned()]),
            Persona::Supplier(p) => ("supplier", Some(p.clone()), vec!["partner_user".to_owned()]),
            Persona::Distributor(p) => (
                "distributor",
                Some(p.clone()),
                vec!["partner_user".to_owned()],
            ),
        };
        let caller = crm_service_common::internal_auth::Caller {
            partner_tier: None,
            subject: "oracle".into(),
            kind: kind.into(),
            partner_id,
            roles,
            policy_version: 0,
            session_id: None,
            source: None,
        };
        self.system
            .keys
            .signer()
            .mint(crm_account::SUBGRAPH, &caller, "oracle")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_every_persona_sees_equals_the_oracle_of_the_access_matrix() {
    let postgres = std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty());
    let min_cases = if postgres { 1_000 } else { 10_000 };
    let staffed = StaffedSystem::start().await;
    let (system, api) = (&staffed.system, &staffed.api);
    let (url, client) = (api.url.clone(), api.client.clone());
    let account_url = system
        .subgraph_url(crm_account::SUBGRAPH)
        .expect("account subgraph");
    let token_of = |id: &str| staffed.token(id);
    let mut world = World::default();
    let mut canaries = Canaries::new();
    let mut rng = Rng(0x05ee_d0f0_ac1e);
    let now = chrono::Utc::now().timestamp();
    let mut cases = 0;
    let mut round = 0;
    let mut partner_personas: Vec<(Persona, String)> = Vec::new();
    while cases < min_cases {
        let (personas, round_accounts, round_orders) =
            add_world(api, &mut world, &mut rng, &mut canaries, round, now).await;
        let users: Vec<DemoUser> = personas
            .iter()
            .map(|(persona, id)| match persona {
                Persona::Supplier(p) => user(id, "supplier", Some(p.clone()), "partner_user"),
                Persona::Distributor(p) => user(id, "distributor", Some(p.clone()), "partner_user"),
                Persona::Internal { .. } => unreachable!("partners only"),
            })
            .collect();
        crm_identity::seed(&system.databases.identity, &users)
            .await
            .expect("partner users");
        partner_personas.extend(personas);
        system
            .settle_shares(Duration::from_secs(30))
            .await
            .expect("shares settle");
        let check = Check {
            client: &client,
            url: &url,
            account_url: &account_url,
            world: &world,
            now,
            system,
        };
        // Every internal department, and the partners of the last two worlds (earlier
        // ones were checked when they were new; their rows still count in every slice).
        let mut askers: Vec<(Persona, String)> = INTERNAL_ROLES
            .iter()
            .map(|role| {
                (
                    Persona::Internal {
                        role,
                        user: format!("usr_{role}"),
                    },
                    format!("usr_{role}"),
                )
            })
            .collect();
        let recent = partner_personas.len().saturating_sub(8);
        askers.extend(partner_personas[recent..].iter().cloned());
        for (persona, user_id) in &askers {
            let token = token_of(user_id);
            cases += check_persona(&check, persona, &token, &round_accounts, &round_orders).await;
        }
        round += 1;
    }
    // An expiring share stops granting at its expiry: move the services' clock past it and
    // ask every distributor again.
    crm_service_common::clock::set(Some(std::sync::Arc::new(
        crm_service_common::clock::ManualClock::at(
            chrono::DateTime::from_timestamp(now + 7200, 0).expect("time"),
        ),
    )));
    let later = Check {
        client: &client,
        url: &url,
        account_url: &account_url,
        world: &world,
        now: now + 7200,
        system,
    };
    let mut expiry_cases = 0;
    let expiring: BTreeMap<String, usize> = world
        .shares
        .iter()
        .filter(|s| s.expires_at.is_some() && !s.revoked)
        .fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s.partner.clone()).or_default() += 1;
            m
        });
    assert!(!expiring.is_empty(), "the worlds hold expiring shares");
    for (persona, user_id) in &partner_personas {
        if let Persona::Distributor(p) = persona
            && expiring.contains_key(p)
        {
            let token = token_of(user_id);
            expiry_cases += check_persona(&later, persona, &token, &[], &[]).await;
        }
    }
    crm_service_common::clock::set(None);
    crm_e2e::report(
        "access_oracle",
        &format!(
            "oracle: {cases} cases over {round} worlds ({} accounts, {} orders, {} lines), {expiry_cases} after share expiry\n",
            world.accounts.len(),
            world.orders.len(),
            world.lines.len()
        ),
    );
    assert!(cases >= min_cases);
    staffed.finish().await;
}
