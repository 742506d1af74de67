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

use crm_e2e::{fresh_storage, gateway_as};
use crm_gateway::identity::DemoUser;
use crm_gateway::system::{GatewaySettings, start_all_in_one_with};
use crm_oracle::{
    Account, Contact, Interaction, Line, ManualShare, Order, Partner, PartnerKind, Persona,
    Product, Shipment, World,
};
use serde_json::{Value, json};

/// A small deterministic generator (xorshift), so a failing world can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct Api {
    client: reqwest::Client,
    url: String,
    admin: String,
}

impl Api {
    async fn as_admin(&self, query: &str, variables: Value) -> Value {
        let (status, body) =
            gateway_as(&self.client, &self.url, Some(&self.admin), query, variables).await;
        assert!(
            status == 200 && body.get("errors").is_none(),
            "{query}: {status} {body}"
        );
        body["data"].clone()
    }

    async fn create(&self, mutation: &str, input_type: &str, input: Value) -> (String, i64) {
        let query = format!(
            "mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ id version }} }}"
        );
        let data = self.as_admin(&query, json!({ "input": input })).await;
        let id = data[mutation]["id"].as_str().expect("id").to_owned();
        let version = data[mutation]["version"].as_i64().expect("version");
        (id, version)
    }
}

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

const INTERNAL_ROLES: [&str; 5] = ["admin", "management", "sales", "marketing", "support"];

/// Adds one random world to the system and the oracle's copy of it; returns the new
/// personas (with their user ids) and the ids of the accounts and orders it made.
#[allow(clippy::too_many_lines)]
async fn add_world(
    api: &Api,
    world: &mut World,
    rng: &mut Rng,
    round: usize,
    now: i64,
) -> (Vec<(Persona, String)>, Vec<String>, Vec<String>) {
    let mut territories = Vec::new();
    for t in 0..3 {
        let code = format!("R{round}-T{t}");
        let (id, _) = api
            .create("createTerritory", "TerritoryInput", json!({ "code": code, "name": code }))
            .await;
        territories.push(id);
    }
    let mut personas = Vec::new();
    let mut suppliers = Vec::new();
    let mut distributors = Vec::new();
    for (n, kind) in [
        PartnerKind::Supplier,
        PartnerKind::Supplier,
        PartnerKind::Distributor,
        PartnerKind::Distributor,
    ]
    .into_iter()
    .enumerate()
    {
        let kind_name = match kind {
            PartnerKind::Supplier => "SUPPLIER",
            PartnerKind::Distributor => "DISTRIBUTOR",
        };
        let (id, version) = api
            .create(
                "createPartner",
                "PartnerInput",
                json!({ "name": format!("P{round}-{n}"), "kind": kind_name, "tier": "GOLD" }),
            )
            .await;
        let mut covered = Vec::new();
        if kind == PartnerKind::Distributor {
            covered = territories
                .iter()
                .filter(|_| rng.chance(50))
                .cloned()
                .collect();
            api.as_admin(
                "mutation($p: ID!, $v: Int!, $t: [ID!]!) { setPartnerTerritories(partnerId: $p, version: $v, territoryIds: $t) { id } }",
                json!({ "p": id, "v": version, "t": covered }),
            )
            .await;
            distributors.push(id.clone());
            personas.push((Persona::Distributor(id.clone()), format!("usr_r{round}_d{n}")));
        } else {
            suppliers.push(id.clone());
            personas.push((Persona::Supplier(id.clone()), format!("usr_r{round}_s{n}")));
        }
        world.partners.push(Partner {
            id,
            kind,
            territories: covered,
        });
    }
    // Accounts spread over the territories (some with none), with a domain and a note.
    let mut accounts = Vec::new();
    for a in 0..8 {
        let territory = (!rng.chance(20)).then(|| rng.pick(&territories).clone());
        let domain = format!("r{round}a{a}.example");
        let note = format!("NOTE-r{round}a{a}");
        let owner = rng.chance(50).then(|| "usr_sales".to_owned());
        let (id, _) = api
            .create(
                "createAccount",
                "AccountInput",
                json!({ "name": format!("Acc {round}-{a}"), "segment": "SMB", "tier": "KEY",
                        "lifecycleStage": "CUSTOMER", "territoryId": territory, "domain": domain,
                        "internalNote": note, "ownerUserId": owner }),
            )
            .await;
        accounts.push(id.clone());
        world.accounts.push(Account {
            id: id.clone(),
            territory,
            owner,
            domain: Some(domain),
            internal_note: Some(note),
        });
        for c in 0..(1 + rng.below(2)) {
            let consents = [
                ("PARTNER_SHARING", "EMAIL", rng.chance(50)),
                ("PARTNER_SHARING", "PHONE", rng.chance(50)),
                ("MARKETING", "EMAIL", rng.chance(50)),
                ("MARKETING", "PHONE", rng.chance(50)),
            ];
            let email = format!("c{c}.r{round}a{a}@example.com");
            let phone = format!("+4930{round:03}{a}{c}111");
            let (cid, _) = api
                .create(
                    "createContact",
                    "ContactInput",
                    json!({ "accountId": id, "firstName": "Ann", "lastName": format!("R{round}A{a}C{c}"),
                            "email": email, "phone": phone,
                            "consents": consents.iter().map(|(p, ch, g)| json!({ "purpose": p, "channel": ch, "granted": g })).collect::<Vec<_>>() }),
                )
                .await;
            world.contacts.push(Contact {
                id: cid,
                account: id.clone(),
                email: Some(email),
                phone: Some(phone),
                partner_sharing_email: consents[0].2,
                partner_sharing_phone: consents[1].2,
                marketing_email: consents[2].2,
                marketing_phone: consents[3].2,
            });
        }
        let partner_visible = rng.chance(50);
        let body = format!("BODY-r{round}a{a}");
        let (iid, _) = api
            .create(
                "createInteraction",
                "InteractionInput",
                json!({ "accountId": id, "channel": "EMAIL", "direction": "INBOUND",
                        "subject": "Hello", "body": body, "occurredAt": "2026-01-01T00:00:00Z",
                        "partnerVisible": partner_visible }),
            )
            .await;
        world.interactions.push(Interaction {
            id: iid,
            account: id.clone(),
            partner_visible,
            body: Some(body),
        });
    }
    let mut products = Vec::new();
    for (s, supplier) in suppliers.iter().enumerate() {
        for p in 0..2 {
            let (id, _) = api
                .create(
                    "createProduct",
                    "ProductInput",
                    json!({ "sku": format!("SKU-R{round}-{s}-{p}"), "name": "Widget",
                            "supplierPartnerId": supplier, "unitPrice": "10.00", "currency": "EUR" }),
                )
                .await;
            products.push(id.clone());
            world.products.push(Product {
                id,
                supplier: supplier.clone(),
            });
        }
    }
    let mut orders = Vec::new();
    for o in 0..8 {
        let account = rng.pick(&accounts).clone();
        let distributor = rng.chance(70).then(|| rng.pick(&distributors).clone());
        let note = format!("ONOTE-r{round}o{o}");
        let (id, _) = api
            .create(
                "createOrder",
                "OrderInput",
                json!({ "accountId": account, "currency": "EUR",
                        "fulfillingDistributorId": distributor, "internalNote": note }),
            )
            .await;
        orders.push(id.clone());
        world.orders.push(Order {
            id: id.clone(),
            account,
            distributor,
            internal_note: Some(note),
        });
        for _ in 0..(1 + rng.below(3)) {
            let product = rng.pick(&products).clone();
            let (lid, version) = api
                .create(
                    "createOrderLine",
                    "OrderLineInput",
                    json!({ "orderId": id, "productId": product, "quantity": 2, "unitPrice": "10.00", "currency": "EUR" }),
                )
                .await;
            let archived = rng.chance(15);
            if archived {
                api.as_admin(
                    "mutation($id: ID!, $v: Int!) { archiveOrderLine(id: $id, version: $v) { id } }",
                    json!({ "id": lid, "v": version }),
                )
                .await;
            }
            world.lines.push(Line {
                id: lid,
                order: id.clone(),
                product,
                archived,
            });
        }
        if rng.chance(50) {
            let (sid, _) = api
                .create(
                    "createShipment",
                    "ShipmentInput",
                    json!({ "orderId": id, "carrier": "DHL" }),
                )
                .await;
            world.shipments.push(Shipment {
                id: sid,
                order: id.clone(),
            });
        }
    }
    // Manual shares with distributors: some for good, some expiring in an hour, some revoked.
    for _ in 0..3 {
        let account = rng.pick(&accounts).clone();
        let partner = rng.pick(&distributors).clone();
        let expires_at = rng.chance(50).then_some(now + 3600);
        let data = api
            .as_admin(
                "mutation($input: AccountShareInput!) { grantAccountShare(input: $input) { id version } }",
                json!({ "input": { "accountId": account, "partnerId": partner,
                        "expiresAt": expires_at.map(|at| chrono::DateTime::from_timestamp(at, 0).expect("time").to_rfc3339()) } }),
            )
            .await;
        let revoked = rng.chance(25);
        if revoked {
            api.as_admin(
                "mutation($id: ID!, $v: Int!) { revokeAccountShare(id: $id, version: $v) { id } }",
                json!({ "id": data["grantAccountShare"]["id"], "v": data["grantAccountShare"]["version"] }),
            )
            .await;
        }
        world.shares.push(ManualShare {
            account,
            partner,
            expires_at,
            revoked,
        });
    }
    (personas, accounts, orders)
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
    assert_eq!(total, expected.len() as i64, "account totalCount of {label}");
    for node in &nodes {
        let account = world
            .accounts
            .iter()
            .find(|a| node["id"] == json!(a.id))
            .expect("known account");
        assert_eq!(text(&node["domain"]), world.account_domain(who, account), "{label}");
        assert_eq!(text(&node["internalNote"]), world.account_note(who, account), "{label}");
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
        assert_eq!(text(&node["email"]), world.contact_email(who, contact), "email for {label}");
        assert_eq!(text(&node["phone"]), world.contact_phone(who, contact), "phone for {label}");
    }
    cases += 1;

    let (nodes, _) = all_nodes(client, url, token, "interactions", "id").await;
    assert_eq!(ids(&nodes), world.interactions_for(who, now), "interactions of {label}");
    cases += 1;

    let (nodes, total) = all_nodes(client, url, token, "orders", "id total { amount } internalNote").await;
    let expected = world.orders_for(who);
    assert_eq!(ids(&nodes), expected, "orders of {label}");
    assert_eq!(total, expected.len() as i64, "{label}");
    for node in &nodes {
        assert_eq!(node["total"].is_object(), world.sees_order_total(who), "total for {label}");
        assert_eq!(node["internalNote"].is_string(), !who.is_partner(), "note for {label}");
    }
    cases += 1;

    let (nodes, _) = all_nodes(client, url, token, "orderLines", "id").await;
    assert_eq!(ids(&nodes), world.lines_for(who), "lines of {label}");
    cases += 1;

    let (nodes, _) = all_nodes(client, url, token, "shipments", "id").await;
    assert_eq!(ids(&nodes), world.shipments_for(who), "shipments of {label}");
    cases += 1;

    let (nodes, _) = all_nodes(client, url, token, "products", "id").await;
    assert_eq!(ids(&nodes), world.products_for(who), "products of {label}");
    cases += 1;

    // Single fetches: a record out of scope answers exactly like a missing one.
    let visible_accounts = world.accounts_for(who, now);
    for id in round_accounts.iter().chain(std::iter::once(&"acc_missing".to_owned())) {
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
            assert_eq!(body, json!({ "data": { "order": null } }), "order({id}) for {label}");
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
    system: &'a crm_gateway::system::AllInOne,
}

impl Check<'_> {
    /// The account subgraph's gateway token for the persona's user (as the door builds it).
    async fn mint(&self, who: &Persona, _token: &str) -> String {
        let (kind, partner_id, roles) = match who {
            Persona::Internal { role, .. } => ("internal", None, vec![(*role).to_owned()]),
            Persona::Supplier(p) => ("supplier", Some(p.clone()), vec!["partner_user".to_owned()]),
            Persona::Distributor(p) => {
                ("distributor", Some(p.clone()), vec!["partner_user".to_owned()])
            }
        };
        let caller = crm_service_common::internal_auth::Caller {
            subject: "oracle".into(),
            kind: kind.into(),
            partner_id,
            roles,
            policy_version: 0,
            session_id: None,
        };
        self.system
            .keys
            .signer()
            .mint(crm_account::SUBGRAPH, &caller, "oracle")
    }
}

fn user(id: &str, kind: &'static str, partner: Option<String>, role: &str) -> DemoUser {
    DemoUser {
        id: id.to_owned(),
        email: format!("{id}@oracle.example"),
        display_name: id.to_owned(),
        kind,
        partner_id: partner,
        roles: role.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_every_persona_sees_equals_the_oracle_of_the_access_matrix() {
    let postgres = std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty());
    let min_cases = if postgres { 1_000 } else { 10_000 };
    let (storage, _dir, created) = fresh_storage().await;
    let system = start_all_in_one_with(
        &storage,
        "127.0.0.1:0".parse().expect("addr"),
        None,
        GatewaySettings::default(),
    )
    .await
    .expect("start");
    let url = system.public.url();
    let account_url = system
        .subgraphs
        .iter()
        .find(|(name, _)| name == crm_account::SUBGRAPH)
        .map(|(_, r)| r.url())
        .expect("account subgraph");
    let client = reqwest::Client::new();
    // The internal staff, one user per department.
    let staff: Vec<DemoUser> = INTERNAL_ROLES
        .iter()
        .map(|role| user(&format!("usr_{role}"), "internal", None, role))
        .collect();
    crm_gateway::identity::seed(&system.databases.identity, &staff)
        .await
        .expect("staff");
    let token_of = |id: &str| system.identity.issuer.issue(id, None, 3600);
    let api = Api {
        client: client.clone(),
        url: url.clone(),
        admin: token_of("usr_admin"),
    };
    let mut world = World::default();
    let mut rng = Rng(0x5eed_0f_0ac1e);
    let now = chrono::Utc::now().timestamp();
    let mut cases = 0;
    let mut round = 0;
    let mut partner_personas: Vec<(Persona, String)> = Vec::new();
    while cases < min_cases {
        let (personas, round_accounts, round_orders) =
            add_world(&api, &mut world, &mut rng, round, now).await;
        let users: Vec<DemoUser> = personas
            .iter()
            .map(|(persona, id)| match persona {
                Persona::Supplier(p) => user(id, "supplier", Some(p.clone()), "partner_user"),
                Persona::Distributor(p) => {
                    user(id, "distributor", Some(p.clone()), "partner_user")
                }
                Persona::Internal { .. } => unreachable!("partners only"),
            })
            .collect();
        crm_gateway::identity::seed(&system.databases.identity, &users)
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
            system: &system,
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
    crm_service_common::access::set_clock(Some(
        chrono::DateTime::from_timestamp(now + 7200, 0).expect("time"),
    ));
    let later = Check {
        client: &client,
        url: &url,
        account_url: &account_url,
        world: &world,
        now: now + 7200,
        system: &system,
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
    crm_service_common::access::set_clock(None);
    println!(
        "oracle: {cases} cases over {round} worlds ({} accounts, {} orders, {} lines), {expiry_cases} after share expiry",
        world.accounts.len(),
        world.orders.len(),
        world.lines.len()
    );
    assert!(cases >= min_cases);
    crm_e2e::finish(system, created).await;
}
