//! The exhaustive read matrix against the running API: every persona (each internal
//! department, a supplier's and a distributor's user and partner admin, and an API key of
//! each partner) × every record type × every field of that type, enumerated from the
//! supergraph (no sampling). For each, the rows the persona's list returns and each field's
//! value or mask must equal what `crm_oracle` computes from the access matrix, with the
//! administrator's answer as the stored truth, and so must what the persona may do to each
//! row (`may { update archive }`, the write scopes); every record is also fetched by id as
//! every persona. A field the oracle has no entry for fails the test, so a new field can't skip
//! the matrix.

use std::collections::{BTreeMap, BTreeSet};

use crm_oracle::reads::{Change, FieldRead, TYPES, directory_rows, field_read, label_field};
use crm_oracle::{
    Account, Article, Case, CaseComment, Contact, DealRegistration, Interaction, Lead, Line,
    ManualShare, Notification, Opportunity, Order, Partner, PartnerKind, Persona, Product,
    ShareRow, Shipment, Task, World,
};
use serde_json::{Value, json};

use crm_e2e::demo::Demo;
use crm_service_common::scope_plan;

/// One introspected field: its name, the named type it returns, whether that is a list or
/// an object, and whether it takes arguments.
#[derive(Clone, Debug)]
struct SchemaField {
    name: String,
    named: String,
    kind: String,
    required_args: bool,
}

/// Every object type's fields, and the root list field of each node type.
struct Schema {
    types: BTreeMap<String, Vec<SchemaField>>,
    list_of: BTreeMap<String, String>,
    fetch_of: BTreeMap<String, String>,
}

fn named_type(ty: &Value) -> (String, String) {
    let mut t = ty;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (
        t["name"].as_str().unwrap_or_default().to_owned(),
        t["kind"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn schema(demo: &Demo, admin: &crm_identity::user::Model) -> Schema {
    const TYPE_REF: &str =
        "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
    let data = demo
        .ok(
            admin,
            &format!(
                "{{ __schema {{ queryType {{ name }} types {{ name kind fields {{ name args {{ name type {{ kind }} defaultValue }} type {{ {TYPE_REF} }} }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let mut types = BTreeMap::new();
    for ty in data["__schema"]["types"].as_array().expect("types") {
        if ty["kind"] != "OBJECT" {
            continue;
        }
        let fields =
            ty["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .map(|f| {
                    let (named, kind) = named_type(&f["type"]);
                    SchemaField {
                        name: f["name"].as_str().expect("name").to_owned(),
                        named,
                        kind,
                        required_args: f["args"].as_array().expect("args").iter().any(|a| {
                            a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null()
                        }),
                    }
                })
                .collect::<Vec<_>>();
        types.insert(ty["name"].as_str().expect("name").to_owned(), fields);
    }
    let mut list_of = BTreeMap::new();
    let mut fetch_of = BTreeMap::new();
    for field in &types["Query"] {
        if let Some(node) = field.named.strip_suffix("Connection") {
            list_of.insert(node.to_owned(), field.name.clone());
        } else if field.required_args && field.kind == "OBJECT" {
            fetch_of.insert(field.named.clone(), field.name.clone());
        }
    }
    Schema {
        types,
        list_of,
        fetch_of,
    }
}

/// Every leaf below an object type without an id (a money amount, a consent), as a
/// selection; a record below it (a type with an id) is selected by its id.
fn leaves(schema: &Schema, ty: &str) -> String {
    let is_record = |named: &str| schema.types[named].iter().any(|f| f.name == "id");
    schema.types[ty]
        .iter()
        .filter(|f| !f.required_args)
        .map(|f| match f.kind.as_str() {
            "OBJECT" if is_record(&f.named) => format!("{} {{ id }}", f.name),
            "OBJECT" => format!("{} {{ {} }}", f.name, leaves(schema, &f.named)),
            _ => f.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The selection of one node type for `who`, every field of it; panics on a field the
/// oracle has no entry for.
fn selection(schema: &Schema, who: &Persona, ty: &str) -> String {
    let mut parts = Vec::new();
    for field in &schema.types[ty] {
        let read = field_read(who, ty, &field.name).unwrap_or_else(|| {
            panic!(
                "{ty}.{} has no row in the read matrix (crm_oracle::reads::field_read): \
                 say in ACCESS-MATRIX.md who may read it and add it there",
                field.name
            )
        });
        match read {
            // What the caller may do to the row is checked against the matrix's writes.
            FieldRead::PerCaller if field.name == "may" => {
                parts.push("may { update archive }".into())
            }
            FieldRead::PerCaller if field.name == "shareable" => parts.push("shareable".into()),
            FieldRead::PerCaller => {}
            // A field that needs an argument (one revision by number) is read by its own
            // tests; its row here still says who may read it.
            _ if field.required_args => {}
            FieldRead::Link(target) => {
                parts.push(format!("{} {{ id {} }}", field.name, label_field(target)));
            }
            FieldRead::Rows(_) => parts.push(format!(
                "{}(first: 200) {{ totalCount nodes {{ id }} }}",
                field.name
            )),
            _ if field.kind == "OBJECT" => parts.push(format!(
                "{} {{ {} }}",
                field.name,
                leaves(schema, &field.named)
            )),
            _ => parts.push(field.name.clone()),
        }
    }
    parts.join(" ")
}

/// Every node of the root list of `ty` as `token` reads it (archived included), by id,
/// and the list's total count.
async fn read_all(
    demo: &Demo,
    token: &str,
    list: &str,
    selection: &str,
) -> (BTreeMap<String, Value>, i64) {
    let mut after: Option<String> = None;
    let mut rows = BTreeMap::new();
    // Nested lists of up to 200 rows each weigh on the gateway's cost limit.
    let first = if selection.contains("(first: 200)") {
        10
    } else {
        100
    };
    loop {
        let query = format!(
            "query($after: String) {{ {list}(first: {first}, after: $after, filter: {{ includeArchived: true }}) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {selection} }} }} }}"
        );
        let body = demo
            .send_with(token, &query, json!({ "after": after }))
            .await;
        assert!(body.get("errors").is_none(), "{list}: {body}");
        let page = &body["data"][list];
        for node in page["nodes"].as_array().expect("nodes") {
            rows.insert(node["id"].as_str().expect("id").to_owned(), node.clone());
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            return (rows, page["totalCount"].as_i64().expect("totalCount"));
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

/// The ids of the export of the list `list` (`/export`, archived included) as `token`
/// reads it.
async fn exported_ids(demo: &Demo, token: &str, list: &str) -> BTreeSet<String> {
    let response = reqwest::Client::new()
        .get(format!("{}/export", demo.url()))
        .query(&[
            ("list", list),
            ("format", "json"),
            ("fields", "id"),
            ("filter", r#"{"includeArchived":true}"#),
        ])
        .bearer_auth(token)
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200, "the export of {list}");
    let rows: Vec<Value> = response.json().await.expect("a JSON array");
    rows.iter()
        .map(|row| row["id"].as_str().expect("id").to_owned())
        .collect()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn id_of(v: &Value) -> Option<String> {
    text(&v["id"])
}

fn seconds(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
}

/// The oracle's world, from what the administrator reads (the stored truth), and the
/// partner organisations that wrote external ids.
fn world_of(admin: &BTreeMap<String, BTreeMap<String, Value>>, users: &[Value]) -> World {
    let rows = |ty: &str| admin[ty].values().collect::<Vec<_>>();
    let user_partner: BTreeMap<String, String> = users
        .iter()
        .filter_map(|u| Some((text(&u["id"])?, text(&u["partnerId"])?)))
        .collect();
    let consent = |c: &Value, purpose: &str, channel: &str| {
        c["consents"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["purpose"] == purpose && x["channel"] == channel && x["granted"] == true)
    };
    World {
        partners: rows("Partner")
            .into_iter()
            .map(|p| Partner {
                id: id_of(p).expect("id"),
                tier: text(&p["tier"]),
                kind: if p["kind"] == "SUPPLIER" {
                    PartnerKind::Supplier
                } else {
                    PartnerKind::Distributor
                },
                territories: p["territories"]
                    .as_array()
                    .expect("territories")
                    .iter()
                    .filter_map(id_of)
                    .collect(),
            })
            .collect(),
        territories: admin["Territory"].keys().cloned().collect(),
        accounts: rows("Account")
            .into_iter()
            .map(|a| Account {
                id: id_of(a).expect("id"),
                territory: id_of(&a["territory"]),
                owner: text(&a["ownerUserId"]),
                domain: text(&a["domain"]),
                internal_note: text(&a["internalNote"]),
            })
            .collect(),
        contacts: rows("Contact")
            .into_iter()
            .map(|c| Contact {
                id: id_of(c).expect("id"),
                account: text(&c["accountId"]).expect("account"),
                email: text(&c["email"]),
                phone: text(&c["phone"]),
                partner_sharing_email: consent(c, "PARTNER_SHARING", "EMAIL"),
                partner_sharing_phone: consent(c, "PARTNER_SHARING", "PHONE"),
                marketing_email: consent(c, "MARKETING", "EMAIL"),
                marketing_phone: consent(c, "MARKETING", "PHONE"),
            })
            .collect(),
        interactions: rows("Interaction")
            .into_iter()
            .map(|i| Interaction {
                id: id_of(i).expect("id"),
                account: text(&i["accountId"]).expect("account"),
                partner_visible: i["partnerVisible"] == true,
                body: text(&i["body"]),
                author_partner: text(&i["authorUserId"])
                    .and_then(|u| user_partner.get(&u).cloned()),
                author_user: text(&i["authorUserId"]),
            })
            .collect(),
        products: rows("Product")
            .into_iter()
            .map(|p| Product {
                id: id_of(p).expect("id"),
                supplier: text(&p["supplierPartnerId"]).expect("supplier"),
            })
            .collect(),
        orders: rows("Order")
            .into_iter()
            .map(|o| Order {
                id: id_of(o).expect("id"),
                account: text(&o["accountId"]).expect("account"),
                distributor: text(&o["fulfillingDistributorId"]),
                internal_note: text(&o["internalNote"]),
            })
            .collect(),
        lines: rows("OrderLine")
            .into_iter()
            .map(|l| Line {
                id: id_of(l).expect("id"),
                order: text(&l["orderId"]).expect("order"),
                product: text(&l["productId"]).expect("product"),
                archived: !l["archivedAt"].is_null(),
            })
            .collect(),
        shipments: rows("Shipment")
            .into_iter()
            .map(|s| Shipment {
                id: id_of(s).expect("id"),
                order: text(&s["orderId"]).expect("order"),
            })
            .collect(),
        shares: rows("AccountShare")
            .into_iter()
            .filter(|s| s["cause"] == "manual_share")
            .map(|s| ManualShare {
                account: text(&s["accountId"]).expect("account"),
                partner: text(&s["partnerId"]).expect("partner"),
                expires_at: seconds(&s["expiresAt"]),
                revoked: !s["archivedAt"].is_null(),
            })
            .collect(),
        share_rows: rows("AccountShare")
            .into_iter()
            .map(|s| ShareRow {
                id: id_of(s).expect("id"),
                account: text(&s["accountId"]).expect("account"),
                granted_by: text(&s["grantedBy"]),
            })
            .collect(),
        leads: rows("Lead")
            .into_iter()
            .map(|l| Lead {
                id: id_of(l).expect("id"),
                owner: text(&l["ownerUserId"]),
                routed_to: text(&l["routedPartnerId"]),
            })
            .collect(),
        opportunities: rows("Opportunity")
            .into_iter()
            .map(|o| Opportunity {
                id: id_of(o).expect("id"),
                account: text(&o["accountId"]).expect("account"),
                owner: text(&o["ownerUserId"]),
                attributed_to: text(&o["partnerId"]),
            })
            .collect(),
        cases: rows("Case")
            .into_iter()
            .map(|c| Case {
                id: id_of(c).expect("id"),
                account: text(&c["accountId"]).expect("account"),
                partner: text(&c["partnerId"]),
            })
            .collect(),
        articles: rows("Article")
            .into_iter()
            .map(|a| Article {
                id: id_of(a).expect("id"),
                published: a["status"] == "PUBLISHED",
                audiences: a["audiences"]
                    .as_array()
                    .expect("audiences")
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
                    .collect(),
                tiers: a["tiers"]
                    .as_array()
                    .expect("tiers")
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
            })
            .collect(),
        case_comments: rows("CaseComment")
            .into_iter()
            .map(|c| CaseComment {
                id: id_of(c).expect("id"),
                case: text(&c["caseId"]).expect("case"),
                partner_visible: c["partnerVisible"] == true,
                author_user: text(&c["authorUserId"]),
                author_partner: text(&c["authorPartnerId"]),
            })
            .collect(),
        tasks: rows("Task")
            .into_iter()
            .map(|t| Task {
                id: id_of(t).expect("id"),
                record_type: api_type(t["recordType"].as_str().expect("recordType")),
                record: text(&t["recordId"]).expect("record"),
                assignee: text(&t["assigneeUserId"]).expect("assignee"),
                created_by: text(&t["createdByUserId"]),
            })
            .collect(),
        notifications: admin["Notification"]
            .values()
            .map(|n| Notification {
                id: id_of(n).expect("id"),
                recipient: text(&n["recipientUserId"]).unwrap_or_default(),
                recipient_partner: text(&n["recipientPartnerId"]),
                record_type: api_type(n["recordType"].as_str().expect("recordType")),
                record: text(&n["recordId"]).expect("record"),
            })
            .collect(),
        registrations: rows("DealRegistration")
            .into_iter()
            .map(|r| DealRegistration {
                id: id_of(r).expect("id"),
                partner: text(&r["partnerId"]).expect("partner"),
            })
            .collect(),
        partner_users: Vec::new(),
        external_ids_written_by: Vec::new(),
    }
}

/// The API's type name of a record kind (`DEAL_REGISTRATION` → `DealRegistration`).
fn api_type(kind: &str) -> String {
    kind.split('_')
        .map(|word| {
            let word = word.to_ascii_lowercase();
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Every notification as the API spells its fields, from SQL: nobody may list another
/// user's, so the administrator can't read them for the truth. `recipientUserId` is the
/// oracle's (the API has no such field: a notification is its reader's).
async fn notifications_by_sql(demo: &Demo) -> BTreeMap<String, Value> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &demo.system.databases.account;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, recipient_user_id, recipient_partner_id, kind, title, body, record_type, \
             record_id, read_at FROM notifications"
                .to_owned(),
        ))
        .await
        .expect("notifications");
    rows.iter()
        .map(|r| {
            let get = |c: &str| r.try_get::<Option<String>>("", c).expect(c);
            let read_at: Option<chrono::DateTime<chrono::Utc>> =
                r.try_get("", "read_at").expect("read_at");
            let id = get("id").expect("id");
            (
                id.clone(),
                json!({ "id": id, "recipientUserId": get("recipient_user_id"),
                        "recipientPartnerId": get("recipient_partner_id"), "kind": get("kind"),
                        "title": get("title"), "body": get("body"), "recordType": get("record_type"),
                        "recordId": get("record_id"), "read": read_at.is_some() }),
            )
        })
        .collect()
}

/// One persona of the matrix: its oracle identity, its credential and whether it is its
/// organisation's partner admin (the directory's rows).
struct Reader {
    label: String,
    persona: Persona,
    token: String,
    partner_admin: bool,
    /// The user a partner persona acts as (its own notifications); none for internal
    /// personas (their user is in the persona) and API keys.
    user: Option<String>,
}

/// What one field of one row should read as, against what it reads.
#[allow(clippy::too_many_arguments)]
fn check_field(
    world: &World,
    reader: &Reader,
    ty: &str,
    id: &str,
    field: &str,
    read: FieldRead,
    truth: &Value,
    got: &Value,
    now: i64,
    wrong: &mut Vec<String>,
) {
    let who = &reader.persona;
    let visible = |t: &str| world.rows(who, t, now).expect("a matrix type");
    let expected = match read {
        FieldRead::Value => truth.clone(),
        FieldRead::Masked => Value::Null,
        FieldRead::ValueIf(fact) => {
            if world.holds(who, ty, id, fact) {
                truth.clone()
            } else {
                Value::Null
            }
        }
        FieldRead::Link(target) => {
            let may = visible(target);
            match truth {
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .filter(|x| id_of(x).is_some_and(|i| may.contains(&i)))
                        .cloned()
                        .collect(),
                ),
                Value::Null => Value::Null,
                one if id_of(one).is_some_and(|i| may.contains(&i)) => one.clone(),
                _ => Value::Null,
            }
        }
        FieldRead::Rows(target) => {
            let may = visible(target);
            let ids: BTreeSet<String> = truth["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .filter_map(id_of)
                .filter(|i| may.contains(i))
                .collect();
            assert!(
                truth["totalCount"].as_u64() <= Some(200),
                "{ty}.{field}: the demo world's nested lists fit one page"
            );
            json!({ "totalCount": ids.len(), "ids": ids })
        }
        FieldRead::PerCaller => return,
    };
    let got = match read {
        FieldRead::Rows(_) => json!({
            "totalCount": got["totalCount"],
            "ids": got["nodes"].as_array().expect("nodes").iter().filter_map(id_of).collect::<BTreeSet<_>>(),
        }),
        _ => got.clone(),
    };
    if got != expected {
        wrong.push(format!(
            "{} {ty} {id}.{field}: read {got}, the matrix says {expected}",
            reader.label
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_persona_reads_every_field_of_every_type_as_the_matrix_says() {
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let admin_token = demo.token(&admin);
    let schema = schema(&demo, &admin).await;

    // Records written by partners (their external ids are theirs alone) beside the seed's.
    let mut written_by = Vec::new();
    let distributor_user = demo.first("distributor", "partner_user");
    let distributor = distributor_user.partner_id.clone().expect("a partner");
    let visible_account = demo
        .ok(
            &distributor_user,
            "{ accounts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await["accounts"]["nodes"][0]["id"]
        .as_str()
        .expect("the distributor sees an account")
        .to_owned();
    for (n, (mutation, input_type, input)) in [
        (
            "createInteraction",
            "InteractionInput",
            json!({ "accountId": visible_account, "channel": "PHONE", "direction": "OUTBOUND",
                    "subject": "Called about the rollout", "body": "Agreed on dates",
                    "occurredAt": "2026-11-02T10:00:00Z" }),
        ),
        (
            "createCase",
            "CaseInput",
            json!({ "accountId": visible_account, "subject": "Delivery damaged",
                    "priority": "HIGH", "channel": "WEB" }),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let data = demo
            .ok(
                &distributor_user,
                &format!("mutation($input: {input_type}!, $x: String) {{ {mutation}(input: $input, externalId: $x) {{ id }} }}"),
                json!({ "input": input, "x": format!("ERP-{n}") }),
            )
            .await;
        let ty = input_type.trim_end_matches("Input").to_owned();
        written_by.push((
            ty,
            text(&data[mutation]["id"]).expect("id"),
            distributor.clone(),
        ));
    }
    let supplier_user = demo.first("supplier", "partner_user");
    let supplier = supplier_user.partner_id.clone().expect("a partner");
    let product = demo
        .ok(
            &supplier_user,
            "mutation($s: ID!) { createProduct(input: { sku: \"RM-1\", name: \"Matrix probe\", supplierPartnerId: $s, unitPrice: \"5.00\", currency: \"EUR\" }, externalId: \"PIM-1\") { id } }",
            json!({ "s": supplier }),
        )
        .await;
    written_by.push((
        "Product".to_owned(),
        text(&product["createProduct"]["id"]).expect("id"),
        supplier.clone(),
    ));

    // An archived account a supplier reads (its archive time is the supplier's to miss),
    // and an owner on the distributor's case (the owner is the company's to know).
    let supplier_account = demo
        .ok(
            &supplier_user,
            "{ accounts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await["accounts"]["nodes"][0]["id"]
        .as_str()
        .expect("the supplier sees an account")
        .to_owned();
    let case_owner = format!(
        "mutation($id: ID!, $v: Int!) {{ updateCase(id: $id, version: $v, input: {{ ownerUserId: \"{}\" }}) {{ id }} }}",
        admin.id
    );
    for (fetch, id, mutation) in [
        (
            "account",
            supplier_account.as_str(),
            "mutation($id: ID!, $v: Int!) { archiveAccount(id: $id, version: $v) { id } }",
        ),
        ("case", written_by[1].1.as_str(), case_owner.as_str()),
    ] {
        let version = demo
            .ok(
                &admin,
                &format!("query($id: ID!) {{ {fetch}(id: $id) {{ version }} }}"),
                json!({ "id": id }),
            )
            .await[fetch]["version"]
            .clone();
        demo.ok(&admin, mutation, json!({ "id": id, "v": version }))
            .await;
    }

    // The personas: every internal department, each partner kind's user and admin, and a
    // partner API key of each kind.
    let mut readers = Vec::new();
    for role in crm_e2e::world::INTERNAL_ROLES {
        let user = demo.first("internal", role);
        readers.push(Reader {
            label: format!("internal/{role}"),
            persona: Persona::Internal {
                role,
                user: user.id.clone(),
            },
            token: demo.token(&user),
            partner_admin: false,
            user: None,
        });
    }
    for kind in ["supplier", "distributor"] {
        for role in ["partner_user", "partner_admin"] {
            let user = demo.first(kind, role);
            let partner = user.partner_id.clone().expect("a partner");
            readers.push(Reader {
                label: format!("{kind}/{role}"),
                persona: if kind == "supplier" {
                    Persona::Supplier(partner)
                } else {
                    Persona::Distributor(partner)
                },
                token: demo.token(&user),
                partner_admin: role == "partner_admin",
                user: Some(user.id.clone()),
            });
        }
        let partner = if kind == "supplier" {
            &supplier
        } else {
            &distributor
        };
        let key = demo
            .ok(
                &admin,
                "mutation($p: ID!) { createApiKey(input: { name: \"read matrix\", role: \"partner_user\", partnerId: $p }) { secret } }",
                json!({ "p": partner }),
            )
            .await;
        readers.push(Reader {
            label: format!("{kind} API key"),
            persona: if kind == "supplier" {
                Persona::Supplier(partner.clone())
            } else {
                Persona::Distributor(partner.clone())
            },
            token: text(&key["createApiKey"]["secret"]).expect("secret"),
            partner_admin: false,
            user: None,
        });
    }

    // The truth: every type as the administrator reads it, every field.
    let admin_persona = Persona::Internal {
        role: "admin",
        user: admin.id.clone(),
    };
    let mut truth: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for ty in TYPES {
        if *ty == "Notification" {
            truth.insert((*ty).to_owned(), notifications_by_sql(&demo).await);
            continue;
        }
        let list = schema
            .list_of
            .get(*ty)
            .unwrap_or_else(|| panic!("{ty} has no root list"));
        let (rows, _) = read_all(
            &demo,
            &admin_token,
            list,
            &selection(&schema, &admin_persona, ty),
        )
        .await;
        truth.insert((*ty).to_owned(), rows);
    }
    // Every node type of the schema is in the matrix: a new record type can't skip it.
    for node in schema.list_of.keys() {
        assert!(
            TYPES.contains(&node.as_str()),
            "{node} is listed by the API but has no row in the read matrix (crm_oracle::reads::TYPES)"
        );
    }
    // Every organisation's directory holds an invitation and a key, so that whose a
    // persona reads (and may revoke) shows.
    for (n, (kind, partner)) in [
        ("SUPPLIER", Some(supplier.as_str())),
        ("DISTRIBUTOR", Some(distributor.as_str())),
        ("", None),
    ]
    .into_iter()
    .enumerate()
    {
        let (role, kind) = match partner {
            Some(_) => ("partner_user", json!(kind)),
            None => ("support", Value::Null),
        };
        demo.ok(
            &admin,
            "mutation($e: String!, $r: String!, $k: CallerKind, $p: ID) { inviteUser(input: { email: $e, role: $r, kind: $k, partnerId: $p }) { invitation { id } } createApiKey(input: { name: \"directory probe\", role: $r, partnerId: $p }) { key { id } } }",
            json!({ "e": format!("probe{n}@invited.example"), "r": role, "k": kind, "p": partner }),
        )
        .await;
    }
    let users = demo
        .ok(
            &admin,
            "{ directoryUsers { id partnerId email displayName kind roles disabled } invitations { id email role status organization { id } } apiKeys { id name prefix role organization { id } revokedAt } }",
            json!({}),
        )
        .await;
    let mut world = world_of(&truth, users["directoryUsers"].as_array().expect("users"));
    world.external_ids_written_by = written_by;
    let now = chrono::Utc::now().timestamp();

    let mut wrong = Vec::new();
    let mut report = String::from("read matrix: persona × type × field against crm_oracle\n");
    let mut total_cases = 0usize;
    for reader in &readers {
        let who = &reader.persona;
        world.partner_users = match (who, &reader.user) {
            (Persona::Supplier(p) | Persona::Distributor(p), Some(user)) => {
                vec![(p.clone(), user.clone())]
            }
            _ => Vec::new(),
        };
        let mut cases = 0usize;
        for ty in TYPES {
            let expected = world.rows(who, ty, now).expect("a matrix type");
            let (rows, total) = read_all(
                &demo,
                &reader.token,
                &schema.list_of[*ty],
                &selection(&schema, who, ty),
            )
            .await;
            let got: BTreeSet<String> = rows.keys().cloned().collect();
            if got != expected || total != expected.len() as i64 {
                wrong.push(format!(
                    "{} {ty}: reads {} rows (totalCount {total}), the matrix says {}; extra {:?}, missing {:?}",
                    reader.label,
                    got.len(),
                    expected.len(),
                    got.difference(&expected).take(3).collect::<Vec<_>>(),
                    expected.difference(&got).take(3).collect::<Vec<_>>(),
                ));
            }
            cases += 1;
            // The same list walked in sort order through the scope's conditions, with no
            // kept copy walked and no scope collected first by id
            // (`crm_service_common::scope_plan`): the page planner's plans return the same
            // rows.
            scope_plan::set_sparse_at_most(0);
            scope_plan::set_ordered_walks(false);
            let (walked, walked_total) =
                read_all(&demo, &reader.token, &schema.list_of[*ty], "id").await;
            scope_plan::set_sparse_at_most(scope_plan::DEFAULT_SPARSE_AT_MOST);
            scope_plan::set_ordered_walks(true);
            let walked: BTreeSet<String> = walked.keys().cloned().collect();
            if walked != got || walked_total != total {
                wrong.push(format!(
                    "{} {ty}: walked in sort order reads {} rows (totalCount {walked_total}), collected first {} (totalCount {total})",
                    reader.label,
                    walked.len(),
                    got.len()
                ));
            }
            cases += 1;
            // The list's export holds exactly the rows the list does.
            let exported = exported_ids(&demo, &reader.token, &schema.list_of[*ty]).await;
            if exported != expected {
                wrong.push(format!(
                    "{} {ty}: exports {} rows, the matrix says {}; extra {:?}, missing {:?}",
                    reader.label,
                    exported.len(),
                    expected.len(),
                    exported.difference(&expected).take(3).collect::<Vec<_>>(),
                    expected.difference(&exported).take(3).collect::<Vec<_>>(),
                ));
            }
            cases += 1;
            for (id, row) in rows.iter().filter(|(id, _)| expected.contains(*id)) {
                let stored = &truth[*ty][id];
                if *ty == "Account" {
                    let may = world.may_share(who, id);
                    if row["shareable"] != json!(may) {
                        wrong.push(format!(
                            "{} Account {id}: shareable reads {}, the matrix says {may}",
                            reader.label, row["shareable"]
                        ));
                    }
                    cases += 1;
                }
                for (change, answer) in [(Change::Update, "update"), (Change::Archive, "archive")] {
                    let may = world.may_change(who, ty, id, change, now);
                    if row["may"][answer] != json!(may) {
                        wrong.push(format!(
                            "{} {ty} {id}: may {{ {answer} }} reads {}, the matrix says {may}",
                            reader.label, row["may"][answer]
                        ));
                    }
                    cases += 1;
                }
                for field in &schema.types[*ty] {
                    let read = field_read(who, ty, &field.name).expect("checked by selection");
                    // The SQL truth of notifications holds their own fields, not the
                    // common columns' formatted times.
                    let unknown = *ty == "Notification" && stored.get(&field.name).is_none();
                    if read == FieldRead::PerCaller || unknown {
                        continue;
                    }
                    check_field(
                        &world,
                        reader,
                        ty,
                        id,
                        &field.name,
                        read,
                        &stored[&field.name],
                        &row[&field.name],
                        now,
                        &mut wrong,
                    );
                    cases += 1;
                }
            }
            // Every record of the type fetched by id: the visible ones and no others.
            if let Some(fetch) = schema.fetch_of.get(*ty) {
                let ids: Vec<&String> = truth[*ty].keys().collect();
                for chunk in ids.chunks(20) {
                    let query = format!(
                        "{{ {} }}",
                        chunk
                            .iter()
                            .enumerate()
                            .map(|(n, id)| format!("r{n}: {fetch}(id: \"{id}\") {{ id }}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    let body = demo.send_with(&reader.token, &query, json!({})).await;
                    assert!(body.get("errors").is_none(), "{fetch}: {body}");
                    for (n, id) in chunk.iter().enumerate() {
                        let read = !body["data"][format!("r{n}")].is_null();
                        if read != expected.contains(*id) {
                            wrong.push(format!(
                                "{} {fetch}({id}): read {read}, the matrix says {}",
                                reader.label,
                                expected.contains(*id)
                            ));
                        }
                        cases += 1;
                    }
                }
            }
        }
        // The directory: an administrator reads all of it, a partner admin its own
        // organisation's, everyone else none.
        for (list, selection) in [
            (
                "directoryUsers",
                "id partnerId email displayName kind roles disabled",
            ),
            ("invitations", "id email role status organization { id }"),
            (
                "apiKeys",
                "id name prefix role organization { id } revokedAt",
            ),
        ] {
            let org = |row: &Value| text(&row["partnerId"]).or_else(|| id_of(&row["organization"]));
            let all_rows = users[list].as_array().expect("rows");
            let owned: Vec<(String, Option<String>)> = all_rows
                .iter()
                .map(|r| (id_of(r).expect("id"), org(r)))
                .collect();
            let expected = directory_rows(
                who,
                reader.partner_admin,
                owned.iter().map(|(id, org)| (id, org.as_ref())),
            );
            let body = demo
                .send_with(
                    &reader.token,
                    &format!("{{ {list} {{ {selection} }} }}"),
                    json!({}),
                )
                .await;
            let got: BTreeMap<String, Value> = body["data"][list]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| (id_of(r).expect("id"), r.clone()))
                .collect();
            let refused = body["errors"][0]["extensions"]["code"] == "FORBIDDEN";
            let got_ids: BTreeSet<String> = got.keys().cloned().collect();
            // A reader with no directory rights is refused or reads an empty list; one with
            // rights reads exactly its rows, each as the administrator does.
            let fine = if expected.is_empty() {
                got_ids.is_empty() && (refused || body.get("errors").is_none())
            } else {
                body.get("errors").is_none() && got_ids == expected
            };
            if !fine {
                wrong.push(format!(
                    "{} {list}: read {got_ids:?} ({}), the matrix says {expected:?}",
                    reader.label,
                    body.get("errors")
                        .map_or("no error".to_owned(), Value::to_string)
                ));
            }
            for (id, row) in &got {
                let stored = all_rows.iter().find(|r| id_of(r).as_deref() == Some(id));
                if stored != Some(row) {
                    wrong.push(format!(
                        "{} {list} {id}: read {row}, stored {stored:?}",
                        reader.label
                    ));
                }
            }
            cases += 1 + got.len();
        }
        report.push_str(&format!("  {:<24} {cases:>6} cases\n", reader.label));
        total_cases += cases;
    }
    // Write scopes on records the persona reads but may not change, and on records it may
    // not read at all: refused, and a record out of reach answers like a missing one.
    // (Allowed changes are not made: the world stays the same for every persona.)
    let mut write_cases = 0usize;
    for reader in &readers {
        write_cases += refused_writes(&demo, &world, &truth, reader, now, &mut wrong).await;
        write_cases += refused_directory_changes(&demo, &users, reader, &mut wrong).await;
    }
    report.push_str(&format!(
        "  write scopes: {write_cases} refused changes on records out of each persona's write scope\n"
    ));
    report.push_str(&format!(
        "  {} personas × {} types, {total_cases} cases, {} wrong\n",
        readers.len(),
        TYPES.len(),
        wrong.len()
    ));
    crm_e2e::report("read-matrix", &report);
    assert!(
        wrong.is_empty(),
        "{} reads differ from the matrix:\n{}",
        wrong.len(),
        wrong
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(total_cases > 10_000, "the matrix ran {total_cases} cases");
    demo.finish().await;
}

/// Each type's archive and update mutations, with an update input that the type's write
/// rules let through when the scope does.
const CHANGES: &[(&str, &str, &str, &str)] = &[
    (
        "Account",
        "archiveAccount",
        "updateAccount",
        "{ industry: \"Probe\" }",
    ),
    (
        "Contact",
        "archiveContact",
        "updateContact",
        "{ title: \"Probe\" }",
    ),
    (
        "Interaction",
        "archiveInteraction",
        "updateInteraction",
        "{ subject: \"Probe\" }",
    ),
    (
        "Lead",
        "archiveLead",
        "updateLead",
        "{ company: \"Probe\" }",
    ),
    (
        "Opportunity",
        "archiveOpportunity",
        "updateOpportunity",
        "{ name: \"Probe\" }",
    ),
    (
        "Case",
        "archiveCase",
        "updateCase",
        "{ subject: \"Probe\" }",
    ),
    (
        "CaseComment",
        "archiveCaseComment",
        "updateCaseComment",
        "{ body: \"Probe\" }",
    ),
    ("Task", "archiveTask", "updateTask", "{ title: \"Probe\" }"),
    (
        "Product",
        "archiveProduct",
        "updateProduct",
        "{ description: \"Probe\" }",
    ),
    (
        "Order",
        "archiveOrder",
        "updateOrder",
        "{ internalNote: \"Probe\" }",
    ),
    (
        "OrderLine",
        "archiveOrderLine",
        "updateOrderLine",
        "{ status: CONFIRMED }",
    ),
    (
        "Shipment",
        "archiveShipment",
        "updateShipment",
        "{ trackingNumber: \"Probe\" }",
    ),
    (
        "Article",
        "archiveArticle",
        "updateArticle",
        "{ title: \"Probe\" }",
    ),
    (
        "Partner",
        "archivePartner",
        "updatePartner",
        "{ name: \"Probe\" }",
    ),
    (
        "Territory",
        "archiveTerritory",
        "updateTerritory",
        "{ name: \"Probe\" }",
    ),
    ("AccountShare", "revokeAccountShare", "", ""),
];

/// The error code of an answer (`None`: it succeeded).
fn code(body: &Value) -> Option<String> {
    body.get("errors").map(|e| {
        e[0]["extensions"]["code"]
            .as_str()
            .unwrap_or("NO_CODE")
            .to_owned()
    })
}

/// Sends, as `reader`, changes the matrix refuses it: archive and update on up to three
/// records of each type that it reads but may not change and three it may not read, and
/// creates and share grants on accounts it may not make them on. Returns how many were
/// checked.
async fn refused_writes(
    demo: &Demo,
    world: &World,
    truth: &BTreeMap<String, BTreeMap<String, Value>>,
    reader: &Reader,
    now: i64,
    wrong: &mut Vec<String>,
) -> usize {
    let who = &reader.persona;
    let mut checked = 0;
    for (ty, archive, update, input) in CHANGES {
        let readable = world.rows(who, ty, now).expect("a matrix type");
        for (change, mutation) in [(Change::Archive, *archive), (Change::Update, *update)] {
            if mutation.is_empty() {
                continue;
            }
            let query = match change {
                Change::Archive => format!(
                    "mutation($id: ID!, $v: Int!) {{ {mutation}(id: $id, version: $v) {{ id }} }}"
                ),
                Change::Update => format!(
                    "mutation($id: ID!, $v: Int!) {{ {mutation}(id: $id, version: $v, input: {input}) {{ id }} }}"
                ),
            };
            let refused: Vec<(&String, &Value)> = truth[*ty]
                .iter()
                .filter(|(id, _)| !world.may_change(who, ty, id, change, now))
                .collect();
            let seen = refused
                .iter()
                .filter(|(id, _)| readable.contains(*id))
                .take(3);
            let unseen = refused
                .iter()
                .filter(|(id, _)| !readable.contains(*id))
                .take(3);
            let missing = code(
                &demo
                    .send_with(
                        &reader.token,
                        &query,
                        json!({ "id": "zzz_00000000000000000000000000000000", "v": 1 }),
                    )
                    .await,
            );
            for (id, row) in seen.chain(unseen) {
                let answer = code(
                    &demo
                        .send_with(
                            &reader.token,
                            &query,
                            json!({ "id": id, "v": row["version"] }),
                        )
                        .await,
                );
                let fine = if readable.contains(*id) {
                    matches!(answer.as_deref(), Some("FORBIDDEN" | "NOT_FOUND"))
                } else {
                    answer.is_some() && answer == missing
                };
                if !fine {
                    wrong.push(format!(
                        "{} {mutation}({id}): answered {answer:?} (a missing record: {missing:?}); the matrix refuses it",
                        reader.label
                    ));
                }
                checked += 1;
            }
        }
    }
    // Creates on accounts out of reach, and share grants on accounts it may not share.
    let partner = truth["Partner"]
        .iter()
        .find(|(_, p)| p["kind"] == "DISTRIBUTOR")
        .map(|(id, _)| id.clone())
        .expect("a distributor");
    for account in truth["Account"].keys() {
        for (ty, mutation, input) in [
            (
                "Interaction",
                "createInteraction",
                json!({ "accountId": account, "channel": "EMAIL", "direction": "INBOUND",
                        "subject": "Probe", "occurredAt": "2026-11-02T10:00:00Z" }),
            ),
            (
                "Case",
                "createCase",
                json!({ "accountId": account, "subject": "Probe", "priority": "LOW", "channel": "EMAIL" }),
            ),
        ] {
            if world.may_create_on(who, ty, account, now) {
                continue;
            }
            let body = demo
                .send_with(
                    &reader.token,
                    &format!(
                        "mutation($input: {ty}Input!) {{ {mutation}(input: $input) {{ id }} }}"
                    ),
                    json!({ "input": input }),
                )
                .await;
            if code(&body).is_none() {
                wrong.push(format!(
                    "{} {mutation} on {account}: made it; the matrix refuses it",
                    reader.label
                ));
            }
            checked += 1;
        }
        if !world.may_share(who, account) {
            let body = demo
                .send_with(
                    &reader.token,
                    "mutation($input: AccountShareInput!) { grantAccountShare(input: $input) { id } }",
                    json!({ "input": { "accountId": account, "partnerId": partner } }),
                )
                .await;
            if code(&body).is_none() {
                wrong.push(format!(
                    "{} grantAccountShare on {account}: made it; the matrix refuses it",
                    reader.label
                ));
            }
            checked += 1;
        }
    }
    checked
}

/// Directory changes the matrix refuses `reader` (a partner admin changes its own
/// organisation's users, keys and invitations only; nobody else but an admin any): disabling
/// a user, revoking a key and revoking an invitation of up to three others each. Returns how
/// many were checked.
async fn refused_directory_changes(
    demo: &Demo,
    directory: &Value,
    reader: &Reader,
    wrong: &mut Vec<String>,
) -> usize {
    let mut checked = 0;
    for (list, mutation) in [
        (
            "directoryUsers",
            "mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }",
        ),
        (
            "apiKeys",
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        ),
        (
            "invitations",
            "mutation($id: ID!) { revokeInvitation(id: $id) { id } }",
        ),
    ] {
        let rows: Vec<(String, Option<String>)> = directory[list]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    id_of(r).expect("id"),
                    text(&r["partnerId"]).or_else(|| id_of(&r["organization"])),
                )
            })
            .collect();
        let may = directory_rows(
            &reader.persona,
            reader.partner_admin,
            rows.iter().map(|(id, org)| (id, org.as_ref())),
        );
        for (id, _) in rows.iter().filter(|(id, _)| !may.contains(id)).take(3) {
            let body = demo
                .send_with(&reader.token, mutation, json!({ "id": id }))
                .await;
            if code(&body).is_none() {
                wrong.push(format!(
                    "{} {mutation} on {id}: made it; the matrix refuses it",
                    reader.label
                ));
            }
            checked += 1;
        }
    }
    checked
}
