//! Random worlds for the access tests, built through the gateway as an admin, with the
//! oracle's copy of each (`crm_oracle::World`). Every text a partner might leak carries a
//! canary token (`cny…z`, unique per row and field), recorded with what it belongs to, so a
//! response can be scanned for tokens its reader must not see.

use std::collections::BTreeMap;

use crm_identity::DemoUser;
use crm_oracle::{
    Account, Case, CaseComment, Contact, DealRegistration, Interaction, Line, ManualShare,
    Opportunity, Order, Partner, PartnerKind, Persona, Product, Shipment, Task, World,
};
use serde_json::{Value, json};

use crate::gateway_as;

/// What a canary token was written into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Canary {
    AccountName(String),
    AccountDomain(String),
    AccountNote(String),
    ContactName(String),
    ContactEmail(String),
    InteractionSubject(String),
    InteractionBody(String),
    OrderNote(String),
    ShipmentCarrier(String),
    PartnerName(String),
    CaseSubject(String),
    CaseCommentBody(String),
    TaskTitle(String),
    /// A deal registration's prospect.
    RegistrationName(String),
    /// An opportunity's name.
    OpportunityName(String),
}

/// Every canary written so far, by its token (lower case).
pub type Canaries = BTreeMap<String, Canary>;

/// The canary tokens in a response (case-insensitive `cny` up to and including `z`).
pub fn canaries_in(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("cny") {
        let tail = &rest[at..];
        let end = tail
            .char_indices()
            .skip(3)
            .find(|(_, c)| !c.is_ascii_alphanumeric() || *c == 'z')
            .map_or(tail.len(), |(i, c)| if c == 'z' { i + 1 } else { i });
        found.push(tail[..end].to_owned());
        rest = &tail[end.max(3)..];
    }
    found
}

/// Whether `who` may read the canary's field at time `now`, by the oracle.
pub fn may_see(world: &World, who: &Persona, canary: &Canary, now: i64) -> bool {
    let account = |id: &str| world.accounts.iter().find(|a| a.id == id);
    let contact = |id: &str| world.contacts.iter().find(|c| c.id == id);
    match canary {
        Canary::AccountName(id) => world.accounts_for(who, now).contains(id),
        Canary::AccountDomain(id) => {
            world.accounts_for(who, now).contains(id)
                && account(id).is_some_and(|a| world.account_domain(who, a).is_some())
        }
        Canary::AccountNote(id) => {
            world.accounts_for(who, now).contains(id)
                && account(id).is_some_and(|a| world.account_note(who, a).is_some())
        }
        Canary::ContactName(id) => world.contacts_for(who, now).contains(id),
        Canary::ContactEmail(id) => {
            world.contacts_for(who, now).contains(id)
                && contact(id).is_some_and(|c| world.contact_email(who, c).is_some())
        }
        Canary::InteractionSubject(id) | Canary::InteractionBody(id) => {
            world.interactions_for(who, now).contains(id)
        }
        Canary::OrderNote(id) => !who.is_partner() && world.orders_for(who).contains(id),
        Canary::ShipmentCarrier(id) => world.shipments_for(who).contains(id),
        Canary::PartnerName(id) => match who {
            Persona::Internal { .. } => true,
            Persona::Supplier(own) | Persona::Distributor(own) => own == id,
        },
        Canary::CaseSubject(id) => reads(world, who, "Case", id, now),
        Canary::CaseCommentBody(id) => reads(world, who, "CaseComment", id, now),
        Canary::TaskTitle(id) => reads(world, who, "Task", id, now),
        Canary::RegistrationName(id) => reads(world, who, "DealRegistration", id, now),
        Canary::OpportunityName(id) => reads(world, who, "Opportunity", id, now),
    }
}

fn reads(world: &World, who: &Persona, ty: &str, id: &str, now: i64) -> bool {
    world.reads_record(who, ty, id, now)
}

/// A small deterministic generator (xorshift), so a failing world can be replayed by seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub struct Api {
    pub client: reqwest::Client,
    pub url: String,
    pub admin: String,
    /// A second writer of articles (marketing): publishing needs a reviewer who did not
    /// write the words.
    pub reviewer: String,
    /// The directory's database, to add partner users (a partner's key acts in its
    /// partner's domain only once the partner has a user: the directory learns the kind
    /// from its users).
    pub identity: sea_orm::DatabaseConnection,
}

impl Api {
    pub async fn as_admin(&self, query: &str, variables: Value) -> Value {
        let (status, body) =
            gateway_as(&self.client, &self.url, Some(&self.admin), query, variables).await;
        assert!(
            status == 200 && body.get("errors").is_none(),
            "{query}: {status} {body}"
        );
        body["data"].clone()
    }

    /// Publishes an article the administrator wrote: submitted for review, approved by the
    /// second writer.
    pub async fn publish_article(&self, id: &str) {
        let submitted = self
            .as_admin(
                "mutation($id: ID!, $v: Int!) { updateArticle(id: $id, version: $v, input: { status: REVIEW }) { version } }",
                json!({ "id": id, "v": self.version("article", id).await }),
            )
            .await;
        let version = submitted["updateArticle"]["version"].clone();
        let (status, body) = gateway_as(
            &self.client,
            &self.url,
            Some(&self.reviewer),
            "mutation($id: ID!, $v: Int!) { approveArticle(id: $id, version: $v) { status } }",
            json!({ "id": id, "v": version }),
        )
        .await;
        assert!(
            status == 200 && body["data"]["approveArticle"]["status"] == "PUBLISHED",
            "approving {id}: {status} {body}"
        );
    }

    pub async fn create(&self, mutation: &str, input_type: &str, input: Value) -> (String, i64) {
        let query = format!(
            "mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ id version }} }}"
        );
        let data = self.as_admin(&query, json!({ "input": input })).await;
        let id = data[mutation]["id"].as_str().expect("id").to_owned();
        let version = data[mutation]["version"].as_i64().expect("version");
        (id, version)
    }
}

pub const INTERNAL_ROLES: [&str; 5] = ["admin", "management", "sales", "marketing", "support"];

/// Adds one random world to the system and the oracle's copy of it; returns the new
/// personas (with their user ids) and the ids of the accounts and orders it made.
#[allow(clippy::too_many_lines)]
pub async fn add_world(
    api: &Api,
    world: &mut World,
    rng: &mut Rng,
    canaries: &mut Canaries,
    round: usize,
    now: i64,
) -> (Vec<(Persona, String)>, Vec<String>, Vec<String>) {
    let mut territories = Vec::new();
    for t in 0..3 {
        let code = format!("R{round}-T{t}");
        let (id, _) = api
            .create(
                "createTerritory",
                "TerritoryInput",
                json!({ "code": code, "name": code }),
            )
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
                json!({ "name": format!("Partner cnyp{round}x{n}z"), "kind": kind_name, "tier": "GOLD" }),
            )
            .await;
        canaries.insert(format!("cnyp{round}x{n}z"), Canary::PartnerName(id.clone()));
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
            personas.push((
                Persona::Distributor(id.clone()),
                format!("usr_r{round}_d{n}"),
            ));
        } else {
            suppliers.push(id.clone());
            personas.push((Persona::Supplier(id.clone()), format!("usr_r{round}_s{n}")));
        }
        world.partners.push(Partner {
            id,
            kind,
            territories: covered,
            tier: None,
        });
    }
    // Accounts spread over the territories (some with none), with a domain and a note.
    let mut accounts = Vec::new();
    for a in 0..8 {
        let territory = (!rng.chance(20)).then(|| rng.pick(&territories).clone());
        let domain = format!("cnyad{round}x{a}z.example");
        let note = format!("cnyno{round}x{a}z");
        let owner = rng.chance(50).then(|| "usr_sales".to_owned());
        let (id, _) = api
            .create(
                "createAccount",
                "AccountInput",
                // Values vary (so filters on them narrow something), and names are not
                // ASCII only (SQLite and PostgreSQL must agree on them).
                json!({ "name": format!("Åcc cnyan{round}x{a}z"), "segment": rng.pick(&["SMB", "MID_MARKET", "ENTERPRISE"]),
                        "tier": rng.pick(&["STRATEGIC", "KEY", "STANDARD"]),
                        "lifecycleStage": rng.pick(&["PROSPECT", "CUSTOMER", "CHURNED"]), "territoryId": territory, "domain": domain,
                        "internalNote": note, "ownerUserId": owner }),
            )
            .await;
        accounts.push(id.clone());
        canaries.insert(
            format!("cnyan{round}x{a}z"),
            Canary::AccountName(id.clone()),
        );
        canaries.insert(
            format!("cnyad{round}x{a}z"),
            Canary::AccountDomain(id.clone()),
        );
        canaries.insert(note.clone(), Canary::AccountNote(id.clone()));
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
            let email = format!("cnyce{round}x{a}x{c}z@example.com");
            let phone = format!("+4930{round:03}{a}{c}111");
            let (cid, _) = api
                .create(
                    "createContact",
                    "ContactInput",
                    json!({ "accountId": id, "firstName": "Ann", "lastName": format!("cnycl{round}x{a}x{c}z"),
                            "email": email, "phone": phone,
                            "consents": consents.iter().map(|(p, ch, g)| json!({ "purpose": p, "channel": ch, "granted": g })).collect::<Vec<_>>() }),
                )
                .await;
            canaries.insert(
                format!("cnycl{round}x{a}x{c}z"),
                Canary::ContactName(cid.clone()),
            );
            canaries.insert(
                format!("cnyce{round}x{a}x{c}z"),
                Canary::ContactEmail(cid.clone()),
            );
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
        let body = format!("cnyib{round}x{a}z");
        let (iid, _) = api
            .create(
                "createInteraction",
                "InteractionInput",
                json!({ "accountId": id, "channel": "EMAIL", "direction": "INBOUND",
                        "subject": format!("cnyis{round}x{a}z"), "body": body, "occurredAt": "2026-01-01T00:00:00Z",
                        "partnerVisible": partner_visible }),
            )
            .await;
        canaries.insert(
            format!("cnyis{round}x{a}z"),
            Canary::InteractionSubject(iid.clone()),
        );
        canaries.insert(body.clone(), Canary::InteractionBody(iid.clone()));
        world.interactions.push(Interaction {
            id: iid,
            account: id.clone(),
            partner_visible,
            body: Some(body),
            author_partner: None,
            author_user: None,
        });
        add_case_and_task(api, world, rng, canaries, round, a, &id, &distributors).await;
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
        let note = format!("cnyon{round}x{o}z");
        let (id, _) = api
            .create(
                "createOrder",
                "OrderInput",
                json!({ "accountId": account, "currency": "EUR",
                        "fulfillingDistributorId": distributor, "internalNote": note }),
            )
            .await;
        orders.push(id.clone());
        canaries.insert(note.clone(), Canary::OrderNote(id.clone()));
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
                    json!({ "orderId": id, "carrier": format!("cnysc{round}x{o}z") }),
                )
                .await;
            canaries.insert(
                format!("cnysc{round}x{o}z"),
                Canary::ShipmentCarrier(sid.clone()),
            );
            world.shipments.push(Shipment {
                id: sid,
                order: id.clone(),
            });
        }
    }
    add_registrations(api, world, rng, canaries, round, &accounts, &distributors).await;
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

/// A deal of ours on one of the round's accounts for each distributor, and a deal
/// registration of each (through a key of its own: a registration is a partner's) for the
/// same customer, so that the two collide; about half are approved onto that deal, which
/// the distributor then reads. Names and prospects are canaries.
async fn add_registrations(
    api: &Api,
    world: &mut World,
    rng: &mut Rng,
    canaries: &mut Canaries,
    round: usize,
    accounts: &[String],
    distributors: &[String],
) {
    for (d, partner) in distributors.iter().enumerate() {
        let account = rng.pick(accounts).clone();
        let deal_name = format!("Deal cnyop{round}x{d}z");
        let (deal, _) = api
            .create(
                "createOpportunity",
                "OpportunityInput",
                json!({ "accountId": account, "name": deal_name, "stage": "QUALIFICATION",
                        "amount": "5000.00", "currency": "EUR" }),
            )
            .await;
        canaries.insert(
            format!("cnyop{round}x{d}z"),
            Canary::OpportunityName(deal.clone()),
        );
        crm_identity::seed(
            &api.identity,
            &[user(
                &format!("usr_r{round}_d{d}_deals"),
                "distributor",
                Some(partner.clone()),
                "partner_user",
            )],
        )
        .await
        .expect("a user of the distributor");
        let key = api
            .as_admin(
                "mutation($p: ID!) { createApiKey(input: { name: \"registrations\", role: \"partner_user\", partnerId: $p }) { secret } }",
                json!({ "p": partner }),
            )
            .await["createApiKey"]["secret"]
            .as_str()
            .expect("secret")
            .to_owned();
        let prospect = format!("cnyrg{round}x{d}z");
        let (status, body) = gateway_as(
            &api.client,
            &api.url,
            Some(&key),
            "mutation($input: DealRegistrationInput!) { createDealRegistration(input: $input) { id version } }",
            json!({ "input": { "prospectName": prospect, "prospectDomain": format!("{prospect}.example"),
                    "products": [{ "productId": "prd_none", "quantity": 1 }],
                    "estimatedAmount": "5000.00", "currency": "EUR" } }),
        )
        .await;
        assert!(status == 200 && body.get("errors").is_none(), "{body}");
        let registration = body["data"]["createDealRegistration"].clone();
        let id = registration["id"].as_str().expect("id").to_owned();
        canaries.insert(prospect, Canary::RegistrationName(id.clone()));
        let approved = rng.chance(50);
        if approved {
            api.as_admin(
                "mutation($id: ID!, $v: Int!, $o: ID!) { approveDealRegistration(id: $id, version: $v, input: { opportunityId: $o }) { id } }",
                json!({ "id": id, "v": registration["version"], "o": deal }),
            )
            .await;
        }
        world.registrations.push(DealRegistration {
            id,
            partner: partner.clone(),
        });
        world.opportunities.push(Opportunity {
            id: deal,
            account,
            owner: None,
            attributed_to: approved.then(|| partner.clone()),
        });
    }
}

/// A case on the account (of a distributor, sometimes) with an internal and a
/// partner-visible comment, and a task on the account for marketing, each text a canary.
#[allow(clippy::too_many_arguments)]
async fn add_case_and_task(
    api: &Api,
    world: &mut World,
    rng: &mut Rng,
    canaries: &mut Canaries,
    round: usize,
    a: usize,
    account: &str,
    distributors: &[String],
) {
    let partner = rng.chance(60).then(|| rng.pick(distributors).clone());
    let subject = format!("cnycs{round}x{a}z");
    let (case, _) = api
        .create(
            "createCase",
            "CaseInput",
            json!({ "accountId": account, "partnerId": partner, "subject": subject,
                    "priority": "LOW", "channel": "WEB" }),
        )
        .await;
    canaries.insert(subject, Canary::CaseSubject(case.clone()));
    world.cases.push(Case {
        id: case.clone(),
        account: account.to_owned(),
        partner,
    });
    for (k, partner_visible) in [(0, false), (1, true)] {
        let body = format!("cnycm{round}x{a}x{k}z");
        let (comment, _) = api
            .create(
                "createCaseComment",
                "CaseCommentInput",
                json!({ "caseId": case, "body": body, "partnerVisible": partner_visible }),
            )
            .await;
        canaries.insert(body, Canary::CaseCommentBody(comment.clone()));
        world.case_comments.push(CaseComment {
            id: comment,
            case: case.clone(),
            partner_visible,
            author_user: Some("usr_admin".into()),
            author_partner: None,
        });
    }
    let title = format!("cnytt{round}x{a}z");
    let record = if rng.chance(50) { &case } else { account };
    let (task, _) = api
        .create(
            "createTask",
            "TaskInput",
            json!({ "recordId": record, "title": title, "assigneeUserId": "usr_marketing",
                    "dueAt": "2026-12-01T09:00:00Z", "remindAt": null }),
        )
        .await;
    canaries.insert(title, Canary::TaskTitle(task.clone()));
    world.tasks.push(Task {
        id: task,
        record_type: if *record == case { "Case" } else { "Account" }.to_owned(),
        record: record.to_owned(),
        assignee: "usr_marketing".into(),
        created_by: Some("usr_admin".into()),
    });
}

pub fn user(id: &str, kind: &'static str, partner: Option<String>, role: &str) -> DemoUser {
    DemoUser {
        id: id.to_owned(),
        email: format!("{id}@oracle.example"),
        display_name: id.to_owned(),
        kind,
        partner_id: partner,
        roles: role.to_owned(),
    }
}

/// An all-in-one with no demo world and one internal user per department
/// (`usr_<role>`), and the admin's API client; `token` signs any directory user in.
pub struct StaffedSystem {
    pub system: crm_system::AllInOne,
    pub api: Api,
    pub created: Option<String>,
    _dir: tempfile::TempDir,
}

impl StaffedSystem {
    pub async fn start() -> Self {
        Self::start_with(crm_system::GatewaySettings::default()).await
    }

    /// An empty system with the staff, its gateway set as given.
    pub async fn start_with(settings: crm_system::GatewaySettings) -> Self {
        let (storage, dir, created) = crate::fresh_storage().await;
        let system = crm_system::start_all_in_one_with(
            &storage,
            "127.0.0.1:0".parse().expect("addr"),
            None,
            settings,
        )
        .await
        .expect("start");
        crate::install_test_policy().await;
        let staff: Vec<DemoUser> = INTERNAL_ROLES
            .iter()
            .map(|role| user(&format!("usr_{role}"), "internal", None, role))
            .collect();
        crm_identity::seed(&system.databases.identity, &staff)
            .await
            .expect("staff");
        let api = Api {
            client: reqwest::Client::new(),
            url: system.public.url(),
            admin: system.identity.issuer.issue("usr_admin", None, 3600),
            reviewer: system.identity.issuer.issue("usr_marketing", None, 3600),
            identity: system.databases.identity.clone(),
        };
        Self {
            system,
            api,
            created,
            _dir: dir,
        }
    }

    /// An access token for the directory user `id`.
    pub fn token(&self, id: &str) -> String {
        self.system.identity.issuer.issue(id, None, 3600)
    }

    pub async fn finish(self) {
        crate::finish(self.system, self.created).await;
    }
}

impl Api {
    /// A record's current version, read as the administrator through `fetch(id)`.
    pub async fn version(&self, fetch: &str, id: &str) -> i64 {
        let query = format!("query($id: ID!) {{ {fetch}(id: $id) {{ version }} }}");
        self.as_admin(&query, json!({ "id": id })).await[fetch]["version"]
            .as_i64()
            .expect("version")
    }

    /// The secret of a new API key with `role`, bound to `partner` if given.
    pub async fn api_key_secret(&self, name: &str, role: &str, partner: Option<&str>) -> String {
        let data = self
            .as_admin(
                "mutation($n: String!, $r: String!, $p: ID) { createApiKey(input: { name: $n, role: $r, partnerId: $p }) { secret } }",
                json!({ "n": name, "r": role, "p": partner }),
            )
            .await;
        data["createApiKey"]["secret"]
            .as_str()
            .expect("the key's secret")
            .to_owned()
    }

    /// Changes the record `id` with `mutation` (its current version, `input`).
    pub async fn change(
        &self,
        fetch: &str,
        mutation: &str,
        input_type: &str,
        id: &str,
        input: Value,
    ) {
        let version = self.version(fetch, id).await;
        let query = format!(
            "mutation($id: ID!, $v: Int!, $input: {input_type}!) {{ {mutation}(id: $id, version: $v, input: $input) {{ id }} }}"
        );
        self.as_admin(&query, json!({ "id": id, "v": version, "input": input }))
            .await;
    }
}

/// Changes a built world the way a business does after the fact, in the system and in the
/// oracle's copy: orders move to another distributor (or lose theirs), products to another
/// supplier, accounts to another territory (or none), and manual shares are revoked. What
/// a partner sees must follow every change (share rows included).
pub async fn change_world(api: &Api, world: &mut World, rng: &mut Rng) {
    let of_kind = |kind: PartnerKind| -> Vec<String> {
        world
            .partners
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.id.clone())
            .collect()
    };
    let (suppliers, distributors) = (
        of_kind(PartnerKind::Supplier),
        of_kind(PartnerKind::Distributor),
    );
    let territories: Vec<String> = api
        .as_admin("{ territories(first: 200) { nodes { id } } }", json!({}))
        .await["territories"]["nodes"]
        .as_array()
        .expect("territories")
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect();
    for _ in 0..4 {
        let n = rng.below(world.orders.len());
        let to = rng.chance(80).then(|| rng.pick(&distributors).clone());
        let id = world.orders[n].id.clone();
        api.change(
            "order",
            "updateOrder",
            "OrderInput",
            &id,
            json!({ "fulfillingDistributorId": to }),
        )
        .await;
        world.orders[n].distributor = to;
    }
    for _ in 0..2 {
        let n = rng.below(world.products.len());
        let to = rng.pick(&suppliers).clone();
        let id = world.products[n].id.clone();
        api.change(
            "product",
            "updateProduct",
            "ProductInput",
            &id,
            json!({ "supplierPartnerId": to }),
        )
        .await;
        world.products[n].supplier = to;
    }
    for _ in 0..4 {
        let n = rng.below(world.accounts.len());
        let to = rng.chance(80).then(|| rng.pick(&territories).clone());
        let id = world.accounts[n].id.clone();
        api.change(
            "account",
            "updateAccount",
            "AccountInput",
            &id,
            json!({ "territoryId": to }),
        )
        .await;
        world.accounts[n].territory = to;
    }
    if let Some(n) = world.shares.iter().position(|s| !s.revoked) {
        let share = &world.shares[n];
        let rows = api
            .as_admin(
                "query($a: ID!, $p: ID!) { accountShares(first: 50, filter: { accountId: $a, partnerId: $p, cause: \"manual_share\" }) { nodes { id version active } } }",
                json!({ "a": share.account, "p": share.partner }),
            )
            .await;
        for row in rows["accountShares"]["nodes"].as_array().expect("shares") {
            if row["active"] == true {
                api.as_admin(
                    "mutation($id: ID!, $v: Int!) { revokeAccountShare(id: $id, version: $v) { id } }",
                    json!({ "id": row["id"], "v": row["version"] }),
                )
                .await;
            }
        }
        let (account, partner) = (share.account.clone(), share.partner.clone());
        for s in world
            .shares
            .iter_mut()
            .filter(|s| s.account == account && s.partner == partner)
        {
            s.revoked = true;
        }
    }
}
