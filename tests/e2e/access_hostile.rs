//! Hostile queries per persona. Every row and field of a random world carries a canary
//! token; the world is then changed as a business changes it (orders, products and
//! accounts move, shares are revoked); each persona (a supplier user, a distributor user,
//! a distributor's partner admin, a distributor's API key, and marketing, the internal
//! department with masked fields and denied types) sends thousands of generated attacks — other partners' ids, nested
//! traversals, direct `_entities`, aliases, fragments, counts, searches, filters and sorts
//! on hidden fields, forged cursors — and no response may hold a canary the oracle says it
//! must not see. As a positive control, the persona's own canaries do appear. Each run
//! draws a fresh seed and prints it; `HOSTILE_SEED=n` replays one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use crm_e2e::demo::Demo;
use crm_e2e::gateway_as;
use crm_e2e::world::{
    Canaries, Canary, Rng, StaffedSystem, add_world, canaries_in, change_world, may_see, user,
};
use crm_oracle::{Persona, World};
use serde_json::{Value, json};

/// One generated attack: its class, and how it is sent.
enum Attack {
    /// Through the gateway.
    Gateway {
        class: &'static str,
        query: String,
        variables: Value,
        /// The canary a count or search looks for.
        probe: Option<String>,
        /// For a filter or sort on one field: the field, whose masking for the persona
        /// decides whether the attack must be refused ("is not available to you") or
        /// answered.
        on_field: Option<HiddenField>,
    },
    /// Straight at a subgraph with the persona's gateway token.
    Entities {
        subgraph: &'static str,
        query: String,
        variables: Value,
    },
}

const ACCOUNT_FIELDS: &str = "id name domain tier lifecycleStage ownerUserId internalNote";

fn attacks(rng: &mut Rng, world: &World, canaries: &Canaries, admin_cursor: &str) -> Vec<Attack> {
    let account = |rng: &mut Rng| rng.pick(&world.accounts).id.clone();
    let order = |rng: &mut Rng| rng.pick(&world.orders).id.clone();
    let contact = |rng: &mut Rng| rng.pick(&world.contacts).id.clone();
    let partner = |rng: &mut Rng| rng.pick(&world.partners).id.clone();
    let tokens: Vec<&String> = canaries.keys().collect();
    let g = |class: &'static str, query: String, variables: Value| Attack::Gateway {
        class,
        query,
        variables,
        probe: None,
        on_field: None,
    };
    let on = |field: HiddenField, query: &str, variables: Value| Attack::Gateway {
        class: "hidden field filter/sort",
        query: query.to_owned(),
        variables,
        probe: None,
        on_field: Some(field),
    };
    let mut out = Vec::new();
    // The audit log: every entry's values, of one record, one account or all of them.
    let audit = "query($f: AuditFilter!) { auditLog(filter: $f, first: 200) { account { ...page } orderVisibility { ...page } knowledgeBase { ...page } } } \
                 fragment page on AuditLogPage { entries { actor organisation recordType recordId field oldValue newValue fieldsRead } }";
    for filter in [
        json!({}),
        json!({ "recordId": contact(rng) }),
        json!({ "recordType": "Account", "recordId": account(rng) }),
        json!({ "recordId": order(rng) }),
    ] {
        out.push(g("audit log", audit.to_owned(), json!({ "f": filter })));
    }
    // Fetch by another partner's id.
    out.push(g(
        "fetch by id",
        format!("query($id: ID!) {{ account(id: $id) {{ {ACCOUNT_FIELDS} contacts {{ nodes {{ lastName email }} }} interactions {{ nodes {{ subject body }} }} }} }}"),
        json!({ "id": account(rng) }),
    ));
    out.push(g(
        "fetch by id",
        "query($id: ID!) { order(id: $id) { id internalNote total { amount } shipments { nodes { carrier } } fulfillingDistributor { id name } } }".into(),
        json!({ "id": order(rng) }),
    ));
    out.push(g(
        "fetch by id",
        "query($id: ID!) { contact(id: $id) { lastName email account { name } } partner(id: $id) { name } }".into(),
        json!({ "id": contact(rng) }),
    ));
    out.push(g(
        "fetch by id",
        "query($id: ID!) { partner(id: $id) { id name territories { code } } }".into(),
        json!({ "id": partner(rng) }),
    ));
    // Nested traversal: account → orders → lines → product → supplier, and back.
    out.push(g(
        "nested traversal",
        format!("{{ accounts(first: 50) {{ nodes {{ {ACCOUNT_FIELDS} orders {{ nodes {{ internalNote total {{ amount }} lines {{ nodes {{ unitPrice {{ amount }} product {{ name supplier {{ id name }} }} order {{ internalNote }} }} }} shipments {{ nodes {{ carrier }} }} }} }} }} }} }}"),
        json!({}),
    ));
    out.push(g(
        "nested traversal",
        "{ orders(first: 50) { nodes { account { name domain internalNote contacts { nodes { lastName email } } interactions { nodes { subject body } } } fulfillingDistributor { name } } } }".into(),
        json!({}),
    ));
    out.push(g(
        "nested traversal",
        "query($id: ID!) { partner(id: $id) { name fulfilledOrders { nodes { internalNote account { name } } } suppliedProducts { nodes { name } } } }".into(),
        json!({ "id": partner(rng) }),
    ));
    // Cases, their comments and tasks: lists, nested, by id, searched.
    let case = |rng: &mut Rng| {
        world
            .cases
            .get(rng.below(world.cases.len().max(1)))
            .map(|c| c.id.clone())
            .unwrap_or_default()
    };
    out.push(g(
        "nested traversal",
        "{ cases(first: 50) { nodes { subject comments { nodes { body authorUserId } } account { name } } } caseComments(first: 100) { nodes { body case { subject } } } tasks(first: 100) { nodes { title recordName account { name } } } notifications(first: 50) { nodes { title } } }".into(),
        json!({}),
    ));
    out.push(g(
        "fetch by id",
        "query($id: ID!) { case(id: $id) { subject comments { totalCount nodes { body } } } }"
            .into(),
        json!({ "id": case(rng) }),
    ));
    // Deal registrations and the deals they attribute: lists with the reviewer's conflicts,
    // nested into the deal and its account, by id, searched.
    let registration = |rng: &mut Rng| {
        world
            .registrations
            .get(rng.below(world.registrations.len().max(1)))
            .map(|r| r.id.clone())
            .unwrap_or_default()
    };
    out.push(g(
        "nested traversal",
        "{ dealRegistrations(first: 50, filter: { includeArchived: true }) { nodes { prospectName prospectDomain conflicts { name recordId } opportunity { name account { name } } partner { name } } } opportunities(first: 100) { nodes { name partner { name } account { name } } } }".into(),
        json!({}),
    ));
    out.push(g(
        "fetch by id",
        "query($id: ID!) { dealRegistration(id: $id) { prospectName conflicts { name } opportunity { name } } }"
            .into(),
        json!({ "id": registration(rng) }),
    ));
    // Aliases: many ids in one operation.
    let aliased: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "a{i}: account(id: \"{}\") {{ name domain internalNote }}",
                account(rng)
            )
        })
        .collect();
    out.push(g(
        "aliases",
        format!("{{ {} }}", aliased.join(" ")),
        json!({}),
    ));
    let aliased: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "o{i}: order(id: \"{}\") {{ internalNote account {{ name }} }}",
                order(rng)
            )
        })
        .collect();
    out.push(g(
        "aliases",
        format!("{{ {} }}", aliased.join(" ")),
        json!({}),
    ));
    // The supplier demand view asked about another organisation, another supplier's
    // product and any territory: no names, and (checked in `demand.rs`) no small numbers.
    out.push(g(
        "demand view",
        "query($s: ID, $p: ID, $t: ID) { supplierDemand(supplierId: $s, productId: $p, territoryId: $t) { territoryIds products { productId sku name supplierPartnerId expectedTotal { value suppressed } weeks { week ordered open backordered expected { value suppressed } } cells { week territoryId ordered open backordered expected { value suppressed } } } } }".into(),
        json!({ "s": partner(rng), "p": rng.pick(&world.products).id.clone(), "t": if world.territories.is_empty() { Value::Null } else { json!(rng.pick(&world.territories)) } }),
    ));
    // Fragments, inline and named.
    out.push(g(
        "fragments",
        "query($id: ID!) { ... on Query { account(id: $id) { ...A } } } fragment A on Account { name domain internalNote contacts { nodes { ... on Contact { lastName email } } } }".into(),
        json!({ "id": account(rng) }),
    ));
    // Counts and searches for other partners' canaries.
    let token = rng.pick(&tokens).to_string();
    out.push(Attack::Gateway {
        class: "counts",
        query: "query($t: String!) { accounts(filter: { text: $t }) { totalCount } contacts(filter: { text: $t }) { totalCount } orders(filter: { text: $t }) { totalCount } cases(filter: { text: $t }) { totalCount } tasks(filter: { text: $t }) { totalCount } dealRegistrations(filter: { text: $t }) { totalCount } opportunities(filter: { text: $t }) { totalCount } }".into(),
        variables: json!({ "t": token }),
        probe: Some(token.clone()),
        on_field: None,
    });
    out.push(g(
        "search",
        "query($t: String!) { accounts(filter: { text: $t }) { nodes { name domain } } contacts(filter: { text: $t }) { nodes { lastName email } } articles(filter: { text: $t }) { nodes { title } } }".into(),
        json!({ "t": token }),
    ));
    // Global search: every type at once, with the hidden fields of each hit.
    let token = rng.pick(&tokens).to_string();
    out.push(Attack::Gateway {
        class: "global search",
        query: "query($t: String!) { search(text: $t, first: 20) { accounts { totalCount more nodes { name domain internalNote } } contacts { totalCount more nodes { lastName email phone } } leads { totalCount more nodes { lastName company } } opportunities { totalCount more nodes { name } } cases { totalCount more nodes { subject } } orders { totalCount more nodes { number internalNote } } articles { totalCount more nodes { title } } } }".into(),
        variables: json!({ "t": token }),
        probe: Some(token.clone()),
        on_field: None,
    });
    // Filters and sorts on fields, one field each: refused when the field is hidden from
    // the persona, answered (within its slice) when it is not.
    out.push(on(
        HiddenField::AccountTier,
        "query($t: AccountTier) { accounts(filter: { tier: $t }) { nodes { name } totalCount } }",
        json!({ "t": rng.pick(&["STRATEGIC", "KEY", "STANDARD"]) }),
    ));
    out.push(on(
        HiddenField::AccountStage,
        "query($s: LifecycleStage) { accounts(filter: { lifecycleStage: $s }) { nodes { name } totalCount } }",
        json!({ "s": rng.pick(&["PROSPECT", "CUSTOMER", "CHURNED"]) }),
    ));
    out.push(on(
        HiddenField::AccountOwner,
        "{ accounts(filter: { ownerUserId: \"usr_sales\" }) { nodes { name } totalCount } }",
        json!({}),
    ));
    out.push(on(
        HiddenField::OrderTotal,
        "{ orders(orderBy: { field: TOTAL, direction: DESC }) { nodes { internalNote } } }",
        json!({}),
    ));
    let email = world
        .contacts
        .get(rng.below(world.contacts.len()))
        .and_then(|c| c.email.clone())
        .unwrap_or_default();
    out.push(on(
        HiddenField::ContactEmail,
        "query($e: String!) { contacts(filter: { email: $e }) { totalCount nodes { lastName } } }",
        json!({ "e": email }),
    ));
    // Forged cursors: an admin's cursor, a made-up one naming another row, garbage.
    let made_up = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{{\"o\":\"Name\",\"k\":{{\"Text\":\"\"}},\"id\":\"{}\"}}",
        account(rng)
    ));
    for cursor in [
        admin_cursor.to_owned(),
        made_up,
        "!!!not-a-cursor".to_owned(),
    ] {
        out.push(g(
            "forged cursors",
            "query($c: String!) { accounts(first: 50, after: $c) { nodes { name domain internalNote } } orders(first: 50, after: $c) { nodes { internalNote } } }".into(),
            json!({ "c": cursor }),
        ));
    }
    // `_entities` straight at the subgraphs, for rows of anyone.
    let mut reps: Vec<Value> = (0..6)
        .map(|_| json!({ "__typename": "Account", "id": account(rng) }))
        .collect();
    reps.extend((0..2).map(|_| json!({ "__typename": "Partner", "id": partner(rng) })));
    out.push(Attack::Entities {
        subgraph: crm_account::SUBGRAPH,
        query: format!("query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on Account {{ {ACCOUNT_FIELDS} contacts {{ nodes {{ lastName email }} }} }} ... on Partner {{ name }} }} }}"),
        variables: json!({ "r": reps }),
    });
    let mut reps: Vec<Value> = (0..6)
        .map(|_| json!({ "__typename": "Order", "id": order(rng) }))
        .collect();
    reps.extend((0..2).map(|_| json!({ "__typename": "Account", "id": account(rng) })));
    out.push(Attack::Entities {
        subgraph: crm_order_visibility::SUBGRAPH,
        query: "query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { internalNote shipments { nodes { carrier } } } ... on Account { orders { nodes { internalNote } } } } }".into(),
        variables: json!({ "r": reps }),
    });
    // A search's results asked of each subgraph directly, for a canary as the text.
    let search = json!([{ "__typename": "SearchResults", "text": rng.pick(&tokens).to_string(), "first": 20 }]);
    for (subgraph, selection) in [
        (
            crm_account::SUBGRAPH,
            "accounts { totalCount nodes { name internalNote } } contacts { totalCount nodes { lastName email } } cases { totalCount nodes { subject } }",
        ),
        (
            crm_order_visibility::SUBGRAPH,
            "orders { totalCount nodes { number internalNote } }",
        ),
    ] {
        out.push(Attack::Entities {
            subgraph,
            query: format!("query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on SearchResults {{ {selection} }} }} }}"),
            variables: json!({ "r": search }),
        });
    }
    out
}

/// A field a filter or sort names, and whether the matrix hides it from a partner kind.
#[derive(Clone, Copy, Debug)]
enum HiddenField {
    AccountTier,
    AccountStage,
    AccountOwner,
    OrderTotal,
    ContactEmail,
}

impl HiddenField {
    /// The matrix's "Fields" rows: tier, stage and totals are denied to suppliers, owners
    /// to partners, and emails may be masked for partners (so they cannot be filtered on).
    fn hidden_from(self, persona: &Persona) -> bool {
        let supplier = matches!(persona, Persona::Supplier(_));
        let marketing = matches!(persona, Persona::Internal { role, .. } if *role == "marketing");
        match self {
            HiddenField::AccountTier | HiddenField::AccountStage | HiddenField::OrderTotal => {
                supplier
            }
            HiddenField::AccountOwner => persona.is_partner(),
            // Masked for partners and marketing unless the contact consented.
            HiddenField::ContactEmail => persona.is_partner() || marketing,
        }
    }
}

/// Which persona a hostile run attacks as.
#[derive(Clone, Copy, Debug)]
enum Attacker {
    SupplierUser,
    DistributorUser,
    DistributorAdmin,
    DistributorKey,
    Marketing,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_user_sees_no_canary_it_must_not_and_all_of_its_own() {
    hostile_run(Attacker::SupplierUser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributor_user_sees_no_canary_it_must_not_and_all_of_its_own() {
    hostile_run(Attacker::DistributorUser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributors_partner_admin_sees_no_canary_it_must_not_and_all_of_its_own() {
    hostile_run(Attacker::DistributorAdmin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributors_api_key_sees_no_canary_it_must_not_and_all_of_its_own() {
    hostile_run(Attacker::DistributorKey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketing_sees_no_canary_it_must_not_and_all_of_its_own() {
    hostile_run(Attacker::Marketing).await;
}

/// Builds a random world of three rounds, makes the attacker a user of one of its
/// partners, sends the generated attacks and checks every answer against the oracle.
async fn hostile_run(attacker: Attacker) {
    let postgres = std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty());
    let per_persona = if postgres { 300 } else { 2_000 };
    let staffed = StaffedSystem::start_with(crm_e2e::receiver::loopback_webhooks(
        Duration::from_secs(10),
    ))
    .await;
    let (system, api) = (&staffed.system, &staffed.api);
    let (url, client) = (api.url.clone(), api.client.clone());
    let mut world = World::default();
    let mut canaries = Canaries::new();
    // A fresh world every run, replayable: the seed is printed and in every failure.
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    eprintln!("hostile run {attacker:?}: HOSTILE_SEED={seed}");
    let mut rng = Rng(seed);
    let now = chrono::Utc::now().timestamp();
    let mut partners = Vec::new();
    for round in 0..3 {
        let (personas, _, _) =
            add_world(api, &mut world, &mut rng, &mut canaries, round, now).await;
        partners.extend(personas);
    }
    change_world(api, &mut world, &mut rng).await;
    // The partner admin attacks as a user of the second distributor, so that the
    // runs do not all sit in the same organisation.
    let (wanted_supplier, skip, role) = match attacker {
        Attacker::SupplierUser => (true, 0, "partner_user"),
        Attacker::DistributorUser | Attacker::DistributorKey => (false, 0, "partner_user"),
        Attacker::DistributorAdmin => (false, 1, "partner_admin"),
        Attacker::Marketing => (false, 0, "marketing"),
    };
    let (persona, user_id) = if let Attacker::Marketing = attacker {
        (
            Persona::Internal {
                role: "marketing",
                user: "usr_marketing".to_owned(),
            },
            "usr_marketing".to_owned(),
        )
    } else {
        // A random world can leave a partner with no account at all (its shares
        // revoked by `change_world`); such a partner proves nothing positive, so the
        // attacker is one that has a slice to see.
        partners
            .iter()
            .filter(|(p, _)| matches!(p, Persona::Supplier(_)) == wanted_supplier)
            .filter(|(p, _)| {
                canaries
                    .values()
                    .any(|c| matches!(c, Canary::AccountName(_)) && may_see(&world, p, c, now))
            })
            .nth(skip)
            .cloned()
            .expect("a partner of the attacker's kind")
    };
    let kind = match (&persona, wanted_supplier) {
        (Persona::Internal { .. }, _) => "internal",
        (_, true) => "supplier",
        (_, false) => "distributor",
    };
    if kind != "internal" {
        crm_identity::seed(
            &system.databases.identity,
            &[user(&user_id, kind, persona_partner(&persona), role)],
        )
        .await
        .expect("users");
    }
    system
        .settle_shares(Duration::from_secs(30))
        .await
        .expect("shares settle");
    let (_, admin_page) = gateway_as(
        &client,
        &url,
        Some(&api.admin),
        "{ accounts(first: 3) { pageInfo { endCursor } } }",
        json!({}),
    )
    .await;
    let admin_cursor = admin_page["data"]["accounts"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("admin cursor")
        .to_owned();

    let token = if let Attacker::DistributorKey = attacker {
        api.api_key_secret(
            "hostile",
            "partner_user",
            persona_partner(&persona).as_deref(),
        )
        .await
    } else {
        staffed.token(&user_id)
    };
    let gateway_token = |subgraph: &str| {
        system.keys.signer().mint(
            subgraph,
            &crm_service_common::internal_auth::Caller {
                partner_tier: None,
                subject: user_id.clone(),
                kind: kind.into(),
                partner_id: persona_partner(&persona),
                roles: vec![role.into()],
                policy_version: 0,
                session_id: None,
                source: None,
            },
            "hostile",
        )
    };
    let mut per_class: BTreeMap<&'static str, usize> = BTreeMap::new();
    // How many attacks per class got an answer without errors, and how many were refused.
    let mut answered: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut refused: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut own_seen: BTreeSet<String> = BTreeSet::new();
    let mut sent = 0;
    while sent < per_persona {
        for attack in attacks(&mut rng, &world, &canaries, &admin_cursor) {
            let (class, body, probe) = match attack {
                Attack::Gateway {
                    class,
                    query,
                    variables,
                    probe,
                    on_field,
                } => {
                    let (_, body) =
                        gateway_as(&client, &url, Some(&token), &query, variables).await;
                    if let Some(field) = on_field {
                        let refusal = body["errors"][0]["message"]
                            .as_str()
                            .is_some_and(|m| m.ends_with("is not available to you"));
                        if field.hidden_from(&persona) {
                            assert!(
                                refusal && body["errors"][0]["extensions"]["code"] == "VALIDATION",
                                "seed {seed}: {field:?} is hidden from {persona:?}, so {query} is refused: {body}"
                            );
                        } else {
                            assert!(
                                body.get("errors").is_none(),
                                "seed {seed}: {field:?} is not hidden from {persona:?}, so {query} is answered: {body}"
                            );
                        }
                    }
                    (class, body, probe)
                }
                Attack::Entities {
                    subgraph,
                    query,
                    variables,
                } => {
                    let base = system.subgraph_url(subgraph).expect("subgraph");
                    let body: Value = client
                        .post(format!("{base}/graphql"))
                        .bearer_auth(gateway_token(subgraph))
                        .json(&json!({ "query": query, "variables": variables }))
                        .send()
                        .await
                        .expect("send")
                        .json()
                        .await
                        .expect("json");
                    ("_entities", body, None)
                }
            };
            let text = body.to_string();
            assert!(
                !text.contains("SELECT") && !text.contains("sqlx") && !text.contains("panicked"),
                "{class}: a raw internal message reached a partner: {text}"
            );
            for token in canaries_in(&text) {
                let canary = canaries
                    .get(&token)
                    .unwrap_or_else(|| panic!("{class}: an unknown canary {token} in {text}"));
                assert!(
                    may_see(&world, &persona, canary, now),
                    "seed {seed}, {class}: {persona:?} saw {token} ({canary:?}): {text}"
                );
                own_seen.insert(token);
            }
            if let Some(probe) = probe
                && !may_see(&world, &persona, &canaries[&probe], now)
            {
                // A search for a canary the persona may not see counts nothing.
                if let Some(results) = body["data"]["search"].as_object() {
                    for (ty, hits) in results {
                        assert_eq!(hits["totalCount"], json!(0), "{class} {probe} {ty}: {text}");
                    }
                } else {
                    for list in [
                        "accounts",
                        "contacts",
                        "orders",
                        "cases",
                        "tasks",
                        "dealRegistrations",
                        "opportunities",
                    ] {
                        assert_eq!(
                            body["data"][list]["totalCount"],
                            json!(0),
                            "{class} {probe}: {text}"
                        );
                    }
                }
            }
            *per_class.entry(class).or_default() += 1;
            if body.get("errors").is_none() {
                *answered.entry(class).or_default() += 1;
            } else {
                *refused.entry(class).or_default() += 1;
            }
            sent += 1;
        }
    }
    // Its organisation's webhook, told of every order and article of the world (its
    // consumers read every event again): no delivery holds a canary it may not see.
    // What an integration path (a webhook, a subscription) was sent: every canary in it is
    // one the persona may see, and no internal message got through. The canaries in it.
    let checked = |path: &str, bodies: &[String]| -> BTreeSet<String> {
        let mut told = BTreeSet::new();
        for body in bodies {
            assert!(
                !body.contains("SELECT") && !body.contains("sqlx") && !body.contains("panicked"),
                "a raw internal message reached a {path}: {body}"
            );
            for token in canaries_in(body) {
                let canary = canaries
                    .get(&token)
                    .unwrap_or_else(|| panic!("{path}: an unknown canary {token} in {body}"));
                assert!(
                    may_see(&world, &persona, canary, now),
                    "seed {seed}, {path}: {persona:?} was sent {token} ({canary:?}): {body}"
                );
                told.insert(token);
            }
        }
        told
    };
    let carriers = |told: &BTreeSet<String>| -> BTreeSet<String> {
        told.iter()
            .filter(|t| matches!(canaries[*t], Canary::ShipmentCarrier(_)))
            .cloned()
            .collect()
    };
    let webhook = webhook_deliveries(&staffed, &persona, role).await;
    let told = checked("webhook", &webhook);
    let carriers_told = carriers(&told);
    own_seen.extend(told);
    let carriers_seen = canaries
        .iter()
        .filter(|(_, c)| {
            matches!(c, Canary::ShipmentCarrier(_)) && may_see(&world, &persona, c, now)
        })
        .count();
    assert!(
        carriers_seen == 0 || !carriers_told.is_empty(),
        "{persona:?} may see {carriers_seen} shipments' carriers and its webhook was told none"
    );
    // Its subscription to every order of the world (the first 100), over a WebSocket and
    // an event stream: the orders' CURRENT views, nested accounts and products included,
    // hold no canary it may not see.
    let watched: Vec<String> = world
        .orders
        .iter()
        .take(100)
        .map(|o| o.id.clone())
        .collect();
    let streamed = subscription_views(&url, &token, &watched).await;
    let carriers_streamed = carriers(&checked("subscription", &streamed));
    assert!(
        carriers_seen == 0 || world.orders.len() > watched.len() || !carriers_streamed.is_empty(),
        "{persona:?} may see {carriers_seen} shipments' carriers and its subscription was sent none"
    );
    // Positive control: its own slice shows up (every account name it may see, and at
    // least one canary of each kind it may see at all).
    let own_accounts: BTreeSet<String> = canaries
        .iter()
        .filter(|(_, c)| matches!(c, Canary::AccountName(_)) && may_see(&world, &persona, c, now))
        .map(|(t, _)| t.clone())
        .collect();
    assert!(!own_accounts.is_empty(), "{persona:?} sees some accounts");
    let missing: Vec<&String> = own_accounts.difference(&own_seen).collect();
    assert!(
        missing.is_empty(),
        "{persona:?} never saw its own {missing:?}"
    );
    assert!(
        own_seen
            .iter()
            .any(|t| matches!(canaries[t], Canary::PartnerName(_))),
        "{persona:?} sees its own organisation's name"
    );
    // Comments and tasks it may read show up too.
    for (kind, is_kind) in [
        (
            "case comment",
            (|c: &Canary| matches!(c, Canary::CaseCommentBody(_))) as fn(&Canary) -> bool,
        ),
        ("task", |c: &Canary| matches!(c, Canary::TaskTitle(_))),
        ("deal registration", |c: &Canary| {
            matches!(c, Canary::RegistrationName(_))
        }),
        ("deal", |c: &Canary| matches!(c, Canary::OpportunityName(_))),
    ] {
        let may: BTreeSet<&String> = canaries
            .iter()
            .filter(|(_, c)| is_kind(c) && may_see(&world, &persona, c, now))
            .map(|(t, _)| t)
            .collect();
        assert!(
            may.is_empty() || may.iter().any(|t| own_seen.contains(*t)),
            "{persona:?} may read {} {kind} canaries and saw none",
            may.len()
        );
    }
    crm_e2e::report(
        &format!("access_hostile_{attacker:?}"),
        &format!(
            "hostile queries for {persona:?} ({role}, seed {seed}): {sent} in all; by attack class: {per_class:?}; answered without errors: {answered:?}; refused: {refused:?}\nits webhook: {} deliveries, no canary it may not see; {} of the {carriers_seen} shipment carriers it may see were in them\nits subscriptions to {} orders: {} events, no canary it may not see; {} shipment carriers in them\n",
            webhook.len(),
            carriers_told.len(),
            watched.len(),
            streamed.len(),
            carriers_streamed.len()
        ),
    );
    staffed.finish().await;
}

/// Every event the persona's subscriptions to `ids` send (over a WebSocket and an event
/// stream) until they have been quiet for a while: the orders' CURRENT views.
async fn subscription_views(url: &str, token: &str, ids: &[String]) -> Vec<String> {
    use crm_e2e::live_client::{Live, Said};
    const WATCH: &str = "subscription($ids: [ID!]!) { orderChanged(ids: $ids) { change orderId \
        order { id number externalId status internalNote total { amount } account { id name } \
            lines(first: 100) { nodes { id quantity unitPrice { amount } product { id name } } } \
            shipments(first: 50) { nodes { carrier trackingNumber } } } } }";
    let variables = json!({ "ids": ids });
    let mut streams = vec![Live::websocket(url, Some(token), WATCH, variables.clone()).await];
    streams.push(
        Live::event_stream(url, Some(token), WATCH, variables)
            .await
            .expect("an event stream"),
    );
    let mut events = Vec::new();
    for stream in &mut streams {
        while let Some(said) = stream.next(Duration::from_secs(3)).await {
            match said {
                Said::Next(event) => events.push(event.to_string()),
                other => panic!("the subscription ended: {other:?}"),
            }
        }
    }
    events
}

/// Every delivery body a webhook of the persona's organisation (as its role; marketing's:
/// the company's, as marketing) is sent when its consumers read every order and article
/// event of the world again.
async fn webhook_deliveries(staffed: &StaffedSystem, persona: &Persona, role: &str) -> Vec<String> {
    use crm_service_common::events::consumer::event_checkpoint;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let receiver = crm_e2e::receiver::Receiver::start().await;
    let made = staffed
        .api
        .as_admin(
            "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }",
            json!({ "input": { "name": "hostile", "url": receiver.url, "role": role,
                    "partnerId": persona_partner(persona),
                    "events": ["order.added", "order.updated", "order.removed",
                               "article.added", "article.updated", "article.removed"] } }),
        )
        .await;
    let secret = made["createWebhook"]["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let consumers: Vec<&str> = crm_identity::webhooks::catalog::RECORDS
        .iter()
        .map(|kind| kind.consumer)
        .collect();
    event_checkpoint::Entity::update_many()
        .col_expr(event_checkpoint::Column::Position, Expr::value(0_i64))
        .filter(event_checkpoint::Column::Consumer.is_in(consumers))
        .exec(&staffed.system.databases.identity)
        .await
        .expect("the webhook consumers start over");
    staffed
        .system
        .settle_webhooks(Duration::from_secs(120))
        .await
        .expect("webhooks settle");
    crm_e2e::receiver::deliveries(&receiver, &secret)
        .into_iter()
        .map(|d| d.to_string())
        .collect()
}

fn persona_partner(persona: &Persona) -> Option<String> {
    match persona {
        Persona::Supplier(p) | Persona::Distributor(p) => Some(p.clone()),
        Persona::Internal { .. } => None,
    }
}

/// A new account only staff see until someone shares it.
async fn unshared_account(demo: &Demo) -> String {
    let admin = demo.first("internal", "admin");
    demo.ok(
        &admin,
        "mutation { createAccount(input: { name: \"Shared Ltd\", segment: SMB, tier: KEY, lifecycleStage: CUSTOMER }) { id } }",
        json!({}),
    )
    .await["createAccount"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

const EXPLAIN_FOR_ADMIN: &str = "query($u: ID!, $a: ID!) { directoryUser(id: $u) { accessToAccount(accountId: $a) { visible rules causes summary } } }";

/// Rebuilding the share rows from the order feed gives the rows the live consumer kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_rebuild_from_the_order_feed_ends_in_the_live_rows() {
    let demo = Demo::start().await;
    let system = &demo.system;
    let share_rows = || async {
        use sea_orm::EntityTrait;
        crm_account::entity::account_share::Entity::find()
            .all(&system.databases.account)
            .await
            .expect("share rows")
            .into_iter()
            .map(|r| (r.account_id, r.partner_id, r.cause, r.source))
            .collect::<BTreeSet<_>>()
    };
    let live = share_rows().await;
    assert!(
        live.len() > 10,
        "the demo orders cause shares: {}",
        live.len()
    );
    let replayed = crm_account::shares::rebuild(
        &system.databases.account,
        crm_service_common::events::EventBus::Memory(Default::default()),
        crm_system::order_feed(&system.subgraphs, &system.keys).expect("feed"),
    )
    .await
    .map_err(|e| e.message())
    .expect("rebuild");
    assert!(replayed > 0);
    assert_eq!(
        share_rows().await,
        live,
        "a rebuild ends in the same share rows"
    );
    demo.finish().await;
}

/// `me.canSee` is the policy in words; every account a supplier sees is explained by its
/// rule and an order cause, and every order by its rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suppliers_records_are_explained_by_its_rule_and_order_causes() {
    let demo = Demo::start().await;
    let supplier = demo.first("supplier", "partner_user");
    let data = demo.ok(
            &supplier,
            "{ me { canSee policyVersion } accounts(first: 5) { nodes { id access { visible rules causes summary } } } orders(first: 3) { nodes { access { visible rules } } } }",
            json!({}),
        )
        .await;
    let can_see: Vec<&str> = data["me"]["canSee"]
        .as_array()
        .expect("canSee")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        can_see.contains(&"Accounts: you see accounts that ordered your products."),
        "{can_see:?}"
    );
    assert!(
        can_see.iter().all(|s| !s.starts_with("Contacts")),
        "{can_see:?}"
    );
    for order in data["orders"]["nodes"].as_array().expect("orders") {
        assert_eq!(
            order["access"],
            json!({ "visible": true, "rules": ["partner_user, supplier, Order, read, has_my_product, allow"] })
        );
    }
    let nodes = data["accounts"]["nodes"].as_array().expect("nodes");
    assert!(!nodes.is_empty(), "the demo supplier sees accounts");
    for node in nodes {
        let access = &node["access"];
        assert_eq!(access["visible"], json!(true), "{node}");
        assert_eq!(
            access["rules"],
            json!(["partner_user, supplier, Account, read, buys_my_products, allow"])
        );
        assert!(
            access["causes"]
                .as_array()
                .expect("causes")
                .iter()
                .all(|c| c
                    .as_str()
                    .is_some_and(|c| c.starts_with("buys_my_products (order:"))),
            "{access}"
        );
    }
    demo.finish().await;
}

/// A manual share shows as its cause on the account and its contacts; once revoked, the
/// account answers as missing and an admin's explanation for that user says why not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_share_is_explained_by_its_cause_and_a_revoked_one_says_why_not() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let distributor = demo.first("distributor", "partner_user");
    let account = unshared_account(&demo).await;
    let partner = distributor.partner_id.clone().expect("partner");
    let before = demo
        .ok(
            &admin,
            EXPLAIN_FOR_ADMIN,
            json!({ "u": distributor.id, "a": account }),
        )
        .await;
    assert_eq!(
        before["directoryUser"]["accessToAccount"]["visible"],
        json!(false),
        "{before}"
    );
    let share = demo.ok(
            &admin,
            "mutation($a: ID!, $p: ID!) { grantAccountShare(input: { accountId: $a, partnerId: $p, reason: \"joint bid\" }) { id version cause } }",
            json!({ "a": account, "p": partner }),
        )
        .await;
    let seen = demo.ok(
            &distributor,
            "query($a: ID!) { account(id: $a) { name access { visible rules causes } } contacts(first: 3) { nodes { access { rules } } } }",
            json!({ "a": account }),
        )
        .await;
    // Every record type explains itself the same way.
    for contact in seen["contacts"]["nodes"].as_array().expect("contacts") {
        assert_eq!(
            contact["access"]["rules"],
            json!(["partner_user, distributor, Contact, read, on_visible_accounts, allow"])
        );
    }
    assert_eq!(
        seen["account"]["access"],
        json!({ "visible": true, "rules": ["partner_user, distributor, Account, read, manual_share, allow"], "causes": ["manual_share"] })
    );
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { revokeAccountShare(id: $id, version: $v) { id } }",
        json!({ "id": share["grantAccountShare"]["id"], "v": share["grantAccountShare"]["version"] }),
    )
    .await;
    let gone = demo
        .ok(
            &distributor,
            "query($a: ID!) { account(id: $a) { name } }",
            json!({ "a": account }),
        )
        .await;
    assert_eq!(gone, json!({ "account": null }));
    let after = demo
        .ok(
            &admin,
            EXPLAIN_FOR_ADMIN,
            json!({ "u": distributor.id, "a": account }),
        )
        .await;
    let explanation = &after["directoryUser"]["accessToAccount"];
    assert_eq!(explanation["visible"], json!(false), "{after}");
    assert!(
        explanation["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("You cannot see this record")),
        "{after}"
    );
    demo.finish().await;
}

/// A write is re-checked after it: a sales user converting its own lead into an account
/// it does not own would create a contact it may not change, so nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_would_leave_records_the_caller_may_not_change_keeps_nothing() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let sales = demo.first("internal", "sales");
    let account = unshared_account(&demo).await;
    let leads = demo.ok(
            &admin,
            "query($o: ID!) { leads(first: 50, filter: { ownerUserId: $o }) { nodes { id version status } } }",
            json!({ "o": sales.id }),
        )
        .await;
    let lead = leads["leads"]["nodes"]
        .as_array()
        .expect("leads")
        .iter()
        .find(|l| l["status"] != "CONVERTED" && l["status"] != "DISQUALIFIED")
        .cloned()
        .expect("an open lead of the sales user");
    let refused = demo
        .send(
            &sales,
            "mutation($id: ID!, $v: Int!, $a: ID!) { convertLead(id: $id, version: $v, input: { accountId: $a }) { contact { id } } }",
            json!({ "id": lead["id"], "v": lead["version"], "a": account }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let contacts = demo.ok(
            &admin,
            "query($a: ID!, $l: ID!) { contacts(filter: { accountId: $a }) { totalCount } lead(id: $l) { status } }",
            json!({ "a": account, "l": lead["id"] }),
        )
        .await;
    assert_eq!(contacts["contacts"]["totalCount"], json!(0), "{contacts}");
    assert_ne!(contacts["lead"]["status"], json!("CONVERTED"), "{contacts}");
    demo.finish().await;
}

/// A partner cannot ask how the policy treats another organisation's user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_cannot_ask_about_another_organisations_user() {
    let demo = Demo::start().await;
    let supplier = demo.first("supplier", "partner_user");
    let distributor = demo.first("distributor", "partner_user");
    let account = unshared_account(&demo).await;
    let refused = demo
        .send(
            &supplier,
            EXPLAIN_FOR_ADMIN,
            json!({ "u": distributor.id, "a": account }),
        )
        .await;
    assert_eq!(refused["data"]["directoryUser"], Value::Null, "{refused}");
    demo.finish().await;
}

/// Why a field is empty: a record's `access.masked` lists exactly the fields that read as
/// null for the caller by a read mask of the policy, with the rule and a reason to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_field_says_why_it_is_empty() {
    let demo = Demo::start().await;
    let distributor = demo.first("distributor", "partner_user");
    let contacts = demo.ok(
            &distributor,
            "{ contacts(first: 100) { nodes { email phone access { masked { field reason rules } } } } }",
            json!({}),
        )
        .await;
    let nodes = contacts["contacts"]["nodes"].as_array().expect("contacts");
    let (mut masked_emails, mut shown_emails) = (0, 0);
    for node in nodes {
        let masked: Vec<&str> = node["access"]["masked"]
            .as_array()
            .expect("masked")
            .iter()
            .filter_map(|m| m["field"].as_str())
            .collect();
        for field in ["email", "phone"] {
            assert_eq!(
                node[field].is_null(),
                masked.contains(&field),
                "{field} is null exactly when it is masked: {node}"
            );
        }
        if masked.contains(&"email") {
            masked_emails += 1;
            let email = node["access"]["masked"]
                .as_array()
                .expect("masked")
                .iter()
                .find(|m| m["field"] == "email")
                .cloned()
                .expect("the email's mask");
            assert_eq!(
                email["reason"],
                "not shared by the person (no consent to share it with partners)"
            );
            assert_eq!(
                email["rules"],
                json!(["partner_user, distributor, Contact, email, partner_sharing_consent"])
            );
        } else {
            shown_emails += 1;
        }
    }
    assert!(
        masked_emails > 0 && shown_emails > 0,
        "the demo has contacts with and without consent ({masked_emails} masked, {shown_emails} shown)"
    );
    // A supplier is told that an account's tier is not for its role.
    let supplier = demo.first("supplier", "partner_user");
    let accounts = demo
        .ok(
            &supplier,
            "{ accounts(first: 1) { nodes { tier access { masked { field reason } } } } }",
            json!({}),
        )
        .await;
    let account = &accounts["accounts"]["nodes"][0];
    assert_eq!(account["tier"], Value::Null);
    assert!(
        account["access"]["masked"]
            .as_array()
            .expect("masked")
            .contains(&json!({ "field": "tier", "reason": "not shared with your role" })),
        "{account}"
    );
    demo.finish().await;
}
