//! Noninterference: for a partner persona P, two systems hold worlds that are identical in
//! everything P may see and differ in what P may not (extra accounts, orders, lines,
//! shipments, contacts and interactions P cannot see, staff-only interactions on accounts it
//! does see, internal articles full of the words it searches for, external ids it will probe
//! with). The same generated operations, reads and writes, run as P against both; every
//! answer (data, counts, grouped counts, cursors once decoded, error codes and messages) must
//! be equal once ids are renamed to the labels the world script gave them. A webhook of
//! P's organisation hears of orders and articles from the start of each world: what it
//! mirrors at the end (the last delivery of each record it was told of) must be equal too.
//!
//! The seed is in every failure message and in the test report (`.ci/run` prints it), and
//! `NONINTERFERENCE_SEED` replays it; `NONINTERFERENCE_OPS` raises
//! the number of operations per persona (1,000 by default).

use std::collections::BTreeMap;

use base64::Engine as _;
use crm_e2e::gateway_as;
use crm_e2e::receiver::{Receiver, deliveries, loopback_webhooks};
use crm_e2e::world::{Rng, StaffedSystem, user};
use serde_json::{Value, json};

/// Which persona the operations run as: a partner, or marketing (the internal department
/// with denied types and masked fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Supplier,
    Distributor,
    Marketing,
}

/// One system under test, with the ids its world script made, by label.
struct Side {
    staffed: StaffedSystem,
    /// Label → id in this system (a label of a record this side lacks maps to an id that
    /// exists nowhere, so a probe with it asks for a missing record).
    ids: BTreeMap<String, String>,
    token: String,
    /// The receiver of the persona's organisation's webhook, and its signing secret.
    hook: Option<(Receiver, String)>,
    /// The id of the same organisation's change feed (a webhook without a URL).
    feed: Option<String>,
    /// Every write waits until the webhook has been told of it (see [`paced`]).
    paced: bool,
    /// The persona's subscription to every order of the world.
    live: Option<crm_e2e::live_client::Live>,
}

impl Side {
    async fn admin(&self, query: &str, variables: Value) -> Value {
        let answer = self.staffed.api.as_admin(query, variables).await;
        if query.trim_start().starts_with("mutation") {
            self.settled().await;
        }
        answer
    }

    /// When paced, waits until the webhook's deliveries of every write so far are decided
    /// and sent.
    async fn settled(&self) {
        if self.paced {
            self.staffed
                .system
                .settle_webhooks(std::time::Duration::from_secs(30))
                .await
                .expect("webhooks settle");
        }
    }

    /// A deal registration of the partner labelled `partner`, through a key of its own.
    async fn register(&self, partner: &str, prospect: &str, domain: &str) -> String {
        let key = self
            .staffed
            .api
            .api_key_secret("registrations", "partner_user", Some(&self.id(partner)))
            .await;
        let (status, body) = gateway_as(
            &self.staffed.api.client,
            &self.staffed.api.url,
            Some(&key),
            "mutation($input: DealRegistrationInput!) { createDealRegistration(input: $input) { id } }",
            json!({ "input": { "prospectName": prospect, "prospectDomain": domain,
                    "products": [{ "productId": self.id("p1a"), "quantity": 3 }],
                    "estimatedAmount": "4000.00", "currency": "EUR" } }),
        )
        .await;
        assert!(status == 200 && body.get("errors").is_none(), "{body}");
        self.settled().await;
        body["data"]["createDealRegistration"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Creates with `mutation` and records the new id under `label`.
    async fn create(&mut self, label: &str, mutation: &str, input_type: &str, input: Value) {
        let (id, _) = self.staffed.api.create(mutation, input_type, input).await;
        self.ids.insert(label.to_owned(), id);
        self.settled().await;
    }

    /// Label by id: how this side's answers are renamed to compare them.
    fn labels(&self) -> BTreeMap<String, String> {
        self.ids
            .iter()
            .map(|(label, id)| (id.clone(), label.clone()))
            .collect()
    }

    fn id(&self, label: &str) -> String {
        self.ids
            .get(label)
            .cloned()
            .unwrap_or_else(|| format!("zzz_{label}_missing"))
    }

    async fn ask(&self, query: &str, variables: Value) -> Value {
        let (status, mut body) = gateway_as(
            &self.staffed.api.client,
            &self.staffed.api.url,
            Some(&self.token),
            query,
            variables,
        )
        .await;
        body["status"] = json!(status);
        body
    }
}

// Tasks here have no reminder: a reminder is sent by the job runner when it polls, at a
// moment neither side controls, and the sides must be compared as of the same writes.

/// The persona's partner (its label in the world script) and its kind; none for marketing.
fn persona_of(who: Who) -> Option<(&'static str, &'static str)> {
    match who {
        Who::Supplier => Some(("s1", "supplier")),
        Who::Distributor => Some(("d1", "distributor")),
        Who::Marketing => None,
    }
}

/// Builds the world script on `side`: the shared part from `shared` (the same on both sides),
/// and, when `hidden` is given, the part `who` may not see, interleaved with it.
async fn build(side: &mut Side, who: Who, shared: &mut Rng, hidden: Option<&mut Rng>) {
    let mut hidden = hidden;
    for t in 0..2 {
        side.create(
            &format!("t{t}"),
            "createTerritory",
            "TerritoryInput",
            json!({ "code": format!("NI-T{t}"), "name": format!("Territory {t}") }),
        )
        .await;
    }
    for (label, kind, covers) in [
        ("s1", "SUPPLIER", None),
        ("s2", "SUPPLIER", None),
        ("d1", "DISTRIBUTOR", Some("t0")),
        ("d2", "DISTRIBUTOR", Some("t1")),
    ] {
        let data = side
            .admin(
                "mutation($input: PartnerInput!) { createPartner(input: $input) { id version } }",
                json!({ "input": { "name": format!("Partner {label}"), "kind": kind, "tier": "GOLD" } }),
            )
            .await;
        let id = data["createPartner"]["id"].as_str().expect("id").to_owned();
        if let Some(territory) = covers {
            side.admin(
                "mutation($p: ID!, $v: Int!, $t: [ID!]!) { setPartnerTerritories(partnerId: $p, version: $v, territoryIds: $t) { id } }",
                json!({ "p": id, "v": data["createPartner"]["version"], "t": [side.id(territory)] }),
            )
            .await;
        }
        side.ids.insert(label.to_owned(), id);
    }
    // The persona's user, before anything of its organisation is written (a partner's kind
    // is known from its users: a webhook of a partner without any acts as an integrator
    // that sees nothing).
    if let Some((persona, kind)) = persona_of(who) {
        crm_identity::seed(
            &side.staffed.system.databases.identity,
            &[user(
                &format!("usr_ni_{persona}"),
                kind,
                Some(side.id(persona)),
                "partner_user",
            )],
        )
        .await
        .expect("the persona");
    }
    // The persona's organisation (or marketing) hears of every order and article it sees,
    // from before anything else is written.
    let receiver = Receiver::start().await;
    let (partner, role) = match who {
        Who::Supplier => (Some(side.id("s1")), "partner_user"),
        Who::Distributor => (Some(side.id("d1")), "partner_user"),
        Who::Marketing => (None, "marketing"),
    };
    let made = side
        .admin(
            "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }",
            json!({ "input": { "name": "mirror", "url": receiver.url, "role": role, "partnerId": partner,
                    "events": ["order.added", "order.updated", "order.removed",
                               "article.added", "article.updated", "article.removed"] } }),
        )
        .await;
    let secret = made["createWebhook"]["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    side.hook = Some((receiver, secret));
    let feed = side
        .admin(
            "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }",
            json!({ "input": { "name": "feed", "role": role, "partnerId": partner,
                    "events": ["order.added", "order.updated", "order.removed",
                               "article.added", "article.updated", "article.removed"] } }),
        )
        .await;
    side.feed = Some(
        feed["createWebhook"]["webhook"]["id"]
            .as_str()
            .expect("a feed")
            .to_owned(),
    );
    for (label, supplier) in [("p1a", "s1"), ("p1b", "s1"), ("p2a", "s2"), ("p2b", "s2")] {
        let supplier = side.id(supplier);
        side.create(
            label,
            "createProduct",
            "ProductInput",
            json!({ "sku": format!("NI-{label}"), "name": format!("Product {label}"),
                    "supplierPartnerId": supplier, "unitPrice": "12.50", "currency": "EUR" }),
        )
        .await;
    }
    // What P does not see, in the partner's terms: for a distributor, accounts outside its
    // territory whose orders others fulfil; for a supplier, accounts and orders holding only
    // the other supplier's products. Either way, staff-only interactions everywhere.
    let (territory, products, distributor) = match who {
        Who::Distributor => (Some("t1"), ["p1a", "p2b"], Some("d2")),
        Who::Supplier => (None, ["p2a", "p2b"], Some("d1")),
        Who::Marketing => (None, ["p1a", "p2b"], Some("d1")),
    };
    // The first distributor's deal registrations (through a key of its own: a
    // registration is a partner's), one for a prospect the hidden part has the other
    // distributor register too. Each distributor has a user, so that its keys act as it.
    let users: Vec<_> = ["d1", "d2"]
        .iter()
        .map(|d| {
            user(
                &format!("usr_ni_{d}_deals"),
                "distributor",
                Some(side.id(d)),
                "partner_user",
            )
        })
        .collect();
    crm_identity::seed(&side.staffed.system.databases.identity, &users)
        .await
        .expect("distributors' users");
    for (label, prospect) in [("rg0", "Shared Prospect"), ("rg1", "Own Prospect")] {
        let id = side
            .register(
                "d1",
                prospect,
                &format!("{}.example", prospect.to_lowercase().replace(' ', "-")),
            )
            .await;
        side.ids.insert(label.to_owned(), id);
    }
    let out_of_sight = OutOfSight {
        who,
        territory,
        products,
        distributor,
    };
    let tiers = ["STRATEGIC", "KEY", "STANDARD"];
    let stages = ["PROSPECT", "CUSTOMER", "CHURNED"];
    let segments = ["SMB", "MID_MARKET", "ENTERPRISE"];
    for a in 0..6 {
        let territory = match shared.below(3) {
            0 => Some(side.id("t0")),
            1 => Some(side.id("t1")),
            _ => None,
        };
        let label = format!("a{a}");
        side.create(
            &label,
            "createAccount",
            "AccountInput",
            json!({ "name": format!("Account {a} Åström"), "segment": shared.pick(&segments),
                    "tier": shared.pick(&tiers), "lifecycleStage": shared.pick(&stages),
                    "territoryId": territory, "domain": format!("a{a}.example"),
                    "internalNote": format!("note {a}") }),
        )
        .await;
        let account = side.id(&label);
        for c in 0..=shared.below(2) {
            let consent = shared.chance(50);
            // Marketing may not read an email without marketing consent (none here): the
            // side with the hidden part stores other addresses.
            let email = if who == Who::Marketing && hidden.is_some() {
                format!("other{a}x{c}@example.com")
            } else {
                format!("c{a}x{c}@example.com")
            };
            side.create(
                &format!("c{a}x{c}"),
                "createContact",
                "ContactInput",
                json!({ "accountId": account, "firstName": "Ann", "lastName": format!("Contact {a}-{c}"),
                        "email": email,
                        "consents": [{ "purpose": "PARTNER_SHARING", "channel": "EMAIL", "granted": consent }] }),
            )
            .await;
        }
        // A case of distributor d1's on the account (it reads those on accounts it sees),
        // with a comment for the partner; a task on the account for marketing.
        side.create(
            &format!("cs{a}"),
            "createCase",
            "CaseInput",
            json!({ "accountId": account, "partnerId": side.id("d1"), "subject": format!("Case {a}"),
                    "priority": "LOW", "channel": "WEB" }),
        )
        .await;
        let case = side.id(&format!("cs{a}"));
        side.create(
            &format!("cm{a}"),
            "createCaseComment",
            "CaseCommentInput",
            json!({ "caseId": case, "body": format!("Reply {a}"), "partnerVisible": true }),
        )
        .await;
        side.create(
            &format!("ta{a}"),
            "createTask",
            "TaskInput",
            json!({ "recordId": account, "title": format!("Task {a}"), "assigneeUserId": "usr_marketing",
                    "dueAt": format!("2026-11-0{}T10:00:00Z", 1 + a), "remindAt": null }),
        )
        .await;
        let visible = shared.chance(60);
        side.create(
            &format!("i{a}"),
            "createInteraction",
            "InteractionInput",
            json!({ "accountId": account, "channel": "PHONE", "direction": "OUTBOUND",
                    "subject": format!("Call {a}"), "body": format!("Notes of call {a}"),
                    "occurredAt": format!("2026-11-01T10:{a:02}:00Z"), "partnerVisible": visible }),
        )
        .await;
        if let Some(rng) = hidden.as_deref_mut() {
            hidden_records(side, &out_of_sight, rng, a, &account).await;
        }
    }
    let products = ["p1a", "p1b", "p2a", "p2b"];
    for o in 0..8 {
        let account = side.id(&format!("a{}", shared.below(6)));
        let distributor = match shared.below(3) {
            0 => Some(side.id("d1")),
            1 => Some(side.id("d2")),
            _ => None,
        };
        let label = format!("o{o}");
        side.create(
            &label,
            "createOrder",
            "OrderInput",
            json!({ "number": format!("SO-NI-{o}"), "accountId": account, "currency": "EUR",
                    "fulfillingDistributorId": distributor, "internalNote": format!("order note {o}") }),
        )
        .await;
        let order = side.id(&label);
        for l in 0..=shared.below(3) {
            let product: &&str = shared.pick(&products);
            let product = side.id(product);
            side.create(
                &format!("l{o}x{l}"),
                "createOrderLine",
                "OrderLineInput",
                json!({ "orderId": order, "productId": product, "quantity": 1 + shared.below(9),
                        "unitPrice": format!("{}.00", 5 + shared.below(40)), "currency": "EUR" }),
            )
            .await;
        }
        if shared.chance(60) {
            side.create(
                &format!("h{o}"),
                "createShipment",
                "ShipmentInput",
                json!({ "orderId": order, "carrier": format!("Carrier {o}") }),
            )
            .await;
        }
    }
    for (n, audience) in ["SUPPLIER", "DISTRIBUTOR", "PUBLIC"]
        .into_iter()
        .enumerate()
    {
        side.create(
            &format!("k{n}"),
            "createArticle",
            "ArticleInput",
            json!({ "title": format!("Firmware guide {n}"),
                    "body": "firmware ".repeat(n + 1), "audiences": [audience], "tags": ["guide"] }),
        )
        .await;
        side.staffed
            .api
            .publish_article(&side.id(&format!("k{n}")))
            .await;
        side.settled().await;
    }
    // Internal drafts: hidden from partners (marketing reads every article).
    if let Some(rng) = hidden.filter(|_| who != Who::Marketing) {
        for n in 0..1 + rng.below(4) {
            side.create(
                &format!("hk{n}"),
                "createArticle",
                "ArticleInput",
                json!({ "title": format!("Firmware firmware internal {n}"), "body": "firmware firmware firmware",
                        "audiences": ["INTERNAL"], "tags": ["firmware"] }),
            )
            .await;
        }
        // New words for a live article, saved and sent to review: the live words stay,
        // and nothing of the working copy (its version, time, revision number) shows.
        let live = side.id("k2");
        side.staffed
            .api
            .change(
                "article",
                "updateArticle",
                "ArticleInput",
                &live,
                json!({ "body": "firmware guide, new words", "status": "REVIEW" }),
            )
            .await;
        side.settled().await;
    }
}

/// Where the persona's sight ends, in the world script's labels: the territory, products
/// and distributor whose records it may not see.
struct OutOfSight {
    who: Who,
    territory: Option<&'static str>,
    products: [&'static str; 2],
    distributor: Option<&'static str>,
}

/// The records of one round that the persona may not see (labels start with `x`).
async fn hidden_records(
    side: &mut Side,
    out_of_sight: &OutOfSight,
    rng: &mut Rng,
    round: usize,
    visible_account: &str,
) {
    let OutOfSight {
        who,
        territory,
        products,
        distributor,
    } = *out_of_sight;
    // Staff-only: an internal comment on the account's case, and a task on the account.
    side.create(
        &format!("xm{round}"),
        "createCaseComment",
        "CaseCommentInput",
        json!({ "caseId": side.id(&format!("cs{round}")), "body": "firmware: internal only",
                "partnerVisible": false }),
    )
    .await;
    if who != Who::Marketing {
        side.create(
            &format!("xt{round}"),
            "createTask",
            "TaskInput",
            json!({ "recordId": visible_account, "title": "Staff task", "dueAt": "2026-11-02T09:00:00Z", "remindAt": null }),
        )
        .await;
    }
    // The other distributor registers the first one's prospect: a conflict only staff see.
    let id = side
        .register(
            "d2",
            "SHARED PROSPECT GmbH",
            "https://www.shared-prospect.example/",
        )
        .await;
    side.ids.insert(format!("xr{round}"), id);
    if who == Who::Marketing {
        return hidden_from_marketing(side, rng, round, visible_account, products).await;
    }
    // A staff-only interaction on an account the persona may see, with an external id the
    // persona will probe with.
    let data = side
        .admin(
            "mutation($x: String!, $input: InteractionInput!) { upsertInteraction(externalId: $x, input: $input) { id } }",
            json!({ "x": format!("EXT-{round}"), "input": { "accountId": visible_account, "channel": "EMAIL",
                    "direction": "INBOUND", "subject": format!("Staff only {round}"), "body": "firmware",
                    "occurredAt": "2026-11-02T10:00:00Z", "partnerVisible": false } }),
        )
        .await;
    side.ids.insert(
        format!("xi{round}"),
        data["upsertInteraction"]["id"]
            .as_str()
            .expect("id")
            .to_owned(),
    );
    // The other organisation's directory: an invitation and an API key.
    if let Some(other) = distributor.filter(|_| rng.chance(50)) {
        let other = side.id(other);
        let data = side
            .admin(
                "mutation($p: ID!, $e: String!) { inviteUser(input: { email: $e, role: \"partner_user\", kind: DISTRIBUTOR, partnerId: $p }) { invitation { id } } createApiKey(input: { name: \"their sync\", role: \"partner_user\", partnerId: $p }) { key { id } } }",
                json!({ "p": other, "e": format!("someone{round}@elsewhere.example") }),
            )
            .await;
        for (label, value) in [
            ("xv", &data["inviteUser"]["invitation"]["id"]),
            ("xk", &data["createApiKey"]["key"]["id"]),
        ] {
            side.ids.insert(
                format!("{label}{round}"),
                value.as_str().expect("id").to_owned(),
            );
        }
    }
    if !rng.chance(70) {
        return;
    }
    let label = format!("xa{round}");
    let territory = territory.map(|t| side.id(t));
    side.create(
        &label,
        "createAccount",
        "AccountInput",
        json!({ "name": format!("Hidden {round} Ærø"), "segment": "SMB", "tier": "STRATEGIC",
                "lifecycleStage": "CUSTOMER", "territoryId": territory,
                "domain": format!("hidden{round}.example") }),
    )
    .await;
    let account = side.id(&label);
    side.create(
        &format!("xc{round}"),
        "createContact",
        "ContactInput",
        json!({ "accountId": account, "firstName": "Hal", "lastName": format!("Hidden {round}"),
                "email": format!("hidden{round}@example.com"),
                "consents": [{ "purpose": "PARTNER_SHARING", "channel": "EMAIL", "granted": true }] }),
    )
    .await;
    let distributor = distributor.map(|d| side.id(d));
    hidden_order(side, rng, round, &account, distributor, products).await;
}

/// A hidden order of one round (`xo`), with a line of a huge quantity (`xl`) and a
/// shipment (`xh`).
async fn hidden_order(
    side: &mut Side,
    rng: &mut Rng,
    round: usize,
    account: &str,
    distributor: Option<String>,
    products: [&str; 2],
) {
    side.create(
        &format!("xo{round}"),
        "createOrder",
        "OrderInput",
        json!({ "number": format!("SO-HID-{round}"), "accountId": account, "currency": "EUR",
                "fulfillingDistributorId": distributor }),
    )
    .await;
    let order = side.id(&format!("xo{round}"));
    let product = side.id(products[rng.below(2)]);
    side.create(
        &format!("xl{round}"),
        "createOrderLine",
        "OrderLineInput",
        json!({ "orderId": order, "productId": product, "quantity": 1 + rng.below(1000),
                "unitPrice": "999.00", "currency": "EUR" }),
    )
    .await;
    side.create(
        &format!("xh{round}"),
        "createShipment",
        "ShipmentInput",
        json!({ "orderId": order, "carrier": format!("Hidden carrier {round}") }),
    )
    .await;
}

/// What marketing may not see on an account it reads: its orders (with lines and
/// shipments) and its cases. (Its contacts' emails, without marketing consent, differ
/// between the sides from the start.)
async fn hidden_from_marketing(
    side: &mut Side,
    rng: &mut Rng,
    round: usize,
    account: &str,
    products: [&str; 2],
) {
    side.create(
        &format!("xs{round}"),
        "createCase",
        "CaseInput",
        json!({ "accountId": account, "subject": format!("Hidden case {round}"),
                "priority": "HIGH", "channel": "EMAIL" }),
    )
    .await;
    // A task on the case for marketing itself (and so a notification about it): marketing
    // may not read cases, so it sees neither.
    let case = side.id(&format!("xs{round}"));
    side.create(
        &format!("xt{round}"),
        "createTask",
        "TaskInput",
        json!({ "recordId": case, "title": "Hidden task", "assigneeUserId": "usr_marketing",
                "dueAt": "2026-11-02T09:00:00Z", "remindAt": null }),
    )
    .await;
    if rng.chance(70) {
        hidden_order(side, rng, round, account, None, products).await;
    }
}

/// Root fields that are neither a list (`first`) nor a fetch by `id`, with the operation
/// that asks each as the persona.
const OTHER_ROOTS: &[(&str, &str)] = &[
    ("me", "{ me { id kind roles organization { id } canSee } }"),
    ("apiKeys", "{ apiKeys { id } }"),
    ("invitations", "{ invitations { id } }"),
    ("policy", "{ policy { version } }"),
    ("policyHistory", "{ policyHistory(first: 5) { version } }"),
    (
        "savedViews",
        "{ savedViews(page: \"accounts\") { id name } }",
    ),
    ("directoryUsers", "{ directoryUsers { id } }"),
    // The webhooks a partner administrator manages (its organisation's; none here).
    (
        "webhooks",
        "{ webhooks { id name events status deadDeliveries } }",
    ),
    ("webhookEventTypes", "{ webhookEventTypes { name } }"),
    (
        "webhookChanges",
        "{ webhookChanges(webhookId: \"whk_0000000000000000000\", first: 5) { cursor hasMore entries { event recordId } } }",
    ),
    ("jobs", "{ jobs { id kind state } }"),
    // The caller's own imports (none here): another organisation's never show.
    ("imports", "{ imports { id state rowCount } }"),
    (
        "forecast",
        "{ forecast(period: QUARTER) { rows { period forecastCategory currency count amount { amount } weightedAmount { amount } } totals { currency count weightedAmount { amount } } } }",
    ),
    ("unreadNotificationCount", "{ unreadNotificationCount }"),
    // Data-subject requests: administrators only; nobody else reads any.
    ("dataExports", "{ dataExports { id status progress } }"),
    ("dataErasures", "{ dataErasures { id status records } }"),
    // The audit chains a caller may verify (its own organisation's, as a partner
    // administrator): what hidden records' changes add to other chains must not show.
    (
        "auditVerification",
        "{ auditVerification { organisation account { intact chains { organisation entries checkpoints broken { chainSeq reason } } } \
         orderVisibility { intact chains { organisation entries } } knowledgeBase { intact chains { organisation entries } } } }",
    ),
    // The audit log a partner administrator reads: its organisation's and the company's
    // changes to the records it sees (reads are left out: the writer logs them after the
    // answer, so how many are in yet is timing, not the policy).
    (
        "auditLog",
        "{ a: auditLog(filter: { action: CREATED }, first: 200) { ...log } b: auditLog(filter: { action: CHANGED }, first: 200) { ...log } } \
         fragment log on AuditLog { account { hasMore entries { action recordType field actorKind valuesWithheld } } \
         orderVisibility { hasMore entries { action recordType field actorKind valuesWithheld } } \
         knowledgeBase { hasMore entries { action recordType field actorKind valuesWithheld } } }",
    ),
    // Global search over words both sides' records have (accounts, contacts, cases,
    // orders, articles) and words only hidden ones have ("Hidden", the internal drafts'
    // "internal"): hits, counts and ranking must be the same.
    (
        "search",
        "{ a: search(text: \"account\", first: 20) { ...hits } b: search(text: \"contact ann\", first: 20) { ...hits } \
         c: search(text: \"firmware\", first: 20) { ...hits } d: search(text: \"hidden\", first: 20) { ...hits } \
         e: search(text: \"SO-NI\", first: 20) { ...hits } f: search(text: \"case\", first: 20) { ...hits } } \
         fragment hits on SearchResults { accounts { totalCount more nodes { id } } contacts { totalCount more nodes { id } } \
         leads { totalCount more nodes { id } } opportunities { totalCount more nodes { id } } cases { totalCount more nodes { id } } \
         orders { totalCount more nodes { id } } articles { totalCount more nodes { id } } }",
    ),
    (
        "supplierDemand",
        "{ supplierDemand { minimumAccounts weeks horizon territoryIds products { productId sku expectedTotal { value suppressed } weeks { week ordered open backordered expected { value suppressed } } cells { week territoryId ordered open backordered expected { value suppressed } } } } }",
    ),
];

/// Every root field of the public schema as an operation the generator can send: each list
/// as a first page with its count, each fetch by id with a label of either side, and the
/// others from [`OTHER_ROOTS`]. A root field of none of these shapes fails the test, so a
/// new one cannot go unproved.
async fn root_operations(side: &Side) -> Vec<(String, String, bool)> {
    let schema = side
        .admin(
            "{ __schema { queryType { fields { name args { name } type { kind name ofType { kind name } } } } } }",
            json!({}),
        )
        .await;
    let mut out = Vec::new();
    for field in schema["__schema"]["queryType"]["fields"]
        .as_array()
        .expect("root fields")
    {
        let name = field["name"].as_str().expect("name").to_owned();
        let args: Vec<&str> = field["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a["name"].as_str())
            .collect();
        let named = field["type"]["name"]
            .as_str()
            .or_else(|| field["type"]["ofType"]["name"].as_str())
            .unwrap_or_default();
        if args.contains(&"first") && named.ends_with("Connection") {
            out.push((
                name.clone(),
                format!("{{ {name}(first: 5) {{ totalCount nodes {{ id }} }} }}"),
                false,
            ));
        } else if args == ["id"] {
            out.push((
                name.clone(),
                format!("query($id: ID!) {{ {name}(id: $id) {{ id }} }}"),
                true,
            ));
        } else if let Some((_, query)) = OTHER_ROOTS.iter().find(|(n, _)| *n == name) {
            out.push((name.clone(), (*query).to_owned(), false));
        } else {
            panic!(
                "the root field {name} has no operation in the noninterference generator: add one"
            );
        }
    }
    out
}

/// One generated operation, and what it runs with on a side.
struct Operation {
    name: String,
    query: String,
    /// Variables by label: a string `@label` becomes that label's id on each side.
    variables: Value,
}

fn resolve(side: &Side, value: &Value) -> Value {
    match value {
        Value::String(s) if s.starts_with('@') => json!(side.id(&s[1..])),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve(side, v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(side, v)).collect()),
        other => other.clone(),
    }
}

const ACCOUNT_LIST: &str = "query($f: AccountFilter, $after: String) { accounts(first: 3, after: $after, filter: $f) { totalCount nodes { id name segment tier lifecycleStage domain externalId } pageInfo { hasNextPage endCursor } } }";

/// The `n`th operation. Records it writes get distinct times (`n` seconds apart), so that
/// lists ordered by time never fall back to their random ids to break a tie.
fn operation(
    rng: &mut Rng,
    n: usize,
    who: Who,
    labels: &[String],
    roots: &[(String, String, bool)],
) -> Operation {
    let at = (chrono::DateTime::parse_from_rfc3339("2026-11-03T00:00:00Z").expect("time")
        + chrono::Duration::seconds(n as i64))
    .to_rfc3339();
    let any = |rng: &mut Rng, prefix: &[&str]| {
        let matching: Vec<&String> = labels
            .iter()
            .filter(|l| {
                prefix.iter().any(|p| {
                    l.starts_with(p) && l[p.len()..].starts_with(|c: char| c.is_ascii_digit())
                })
            })
            .collect();
        match matching.is_empty() {
            true => "@none".to_owned(),
            false => format!("@{}", rng.pick(&matching)),
        }
    };
    let op = |name: &str, query: &str, variables| Operation {
        name: name.to_owned(),
        query: query.to_owned(),
        variables,
    };
    let supplier_products = ["@p1a", "@p1b", "@p2a", "@p2b", "@s1", "@s2"];
    // Every other operation or so asks one root field of the schema, whichever it is.
    if rng.chance(30) {
        let (root, query, by_id) = rng.pick(roots);
        let id = format!("@{}", rng.pick(labels));
        return Operation {
            name: format!("root {root}"),
            query: query.clone(),
            variables: if *by_id {
                json!({ "id": id })
            } else {
                json!({})
            },
        };
    }
    match rng.below(17) {
        0 => op(
            "accounts",
            ACCOUNT_LIST,
            json!({ "f": { "text": rng.pick(&["account", "hidden", "å", "ærø", "a1"]) } }),
        ),
        1 => op(
            "accounts by segment",
            ACCOUNT_LIST,
            json!({ "f": { "segment": rng.pick(&["SMB", "ENTERPRISE"]) } }),
        ),
        2 => op(
            "account with children",
            "query($id: ID!) { account(id: $id) { id name contacts { totalCount nodes { id lastName email } } interactions { totalCount nodes { id subject body authorUserId } } orders { totalCount statusCounts { value count } nodes { id number } } } }",
            json!({ "id": any(rng, &["a", "xa"]) }),
        ),
        3 => {
            let filter = match rng.below(4) {
                0 => json!({ "productId": rng.pick(&supplier_products[..4]) }),
                1 => json!({ "supplierPartnerId": rng.pick(&supplier_products[4..]) }),
                2 => json!({ "accountId": any(rng, &["a", "xa"]) }),
                _ => json!({ "text": "so-" }),
            };
            op(
                "orders filtered",
                "query($f: OrderFilter) { orders(first: 20, filter: $f) { totalCount statusCounts { value count } nodes { id number status total { amount } lines { totalCount nodes { id quantity status unitPrice { amount } } } shipments { nodes { id carrier trackingNumber status } } } } }",
                json!({ "f": filter }),
            )
        }
        4 => op(
            "order",
            "query($id: ID!) { order(id: $id) { id number internalNote account { name } lines { nodes { id productId } } } }",
            json!({ "id": any(rng, &["o", "xo"]) }),
        ),
        5 => op(
            "records by id",
            "query($l: ID!, $s: ID!, $i: ID!, $c: ID!) { orderLine(id: $l) { id status quantity } shipment(id: $s) { id carrier } interaction(id: $i) { id subject body externalId } contact(id: $c) { id lastName email } }",
            json!({ "l": any(rng, &["l", "xl"]), "s": any(rng, &["h", "xh"]), "i": any(rng, &["i", "xi"]), "c": any(rng, &["c", "xc"]) }),
        ),
        6 => op(
            "contacts",
            "query($t: String) { contacts(first: 10, filter: { text: $t }) { totalCount nodes { id lastName email } } }",
            json!({ "t": rng.pick(&["contact", "hidden", "ann", "hal"]) }),
        ),
        7 => op(
            "interactions",
            "{ interactions(first: 20) { totalCount nodes { id subject body externalId authorUserId } } }",
            json!({}),
        ),
        8 => op(
            "search",
            "query($after: String) { articles(first: 2, after: $after, filter: { text: \"firmware\" }) { totalCount edges { cursor node { id title body version revision tiers revisions { number } workingRevision { number } feedback { views } cases { solved } } } } }",
            json!({}),
        ),
        9 => op(
            "lines",
            "query($p: ID) { orderLines(first: 20, filter: { productId: $p }) { totalCount nodes { id status quantity } } }",
            json!({ "p": rng.pick(&supplier_products[..4]) }),
        ),
        10 => op(
            "shipments",
            "{ shipments(first: 20) { totalCount nodes { id carrier status trackingNumber } } }",
            json!({}),
        ),
        11 => op(
            "case with its comments",
            "query($id: ID!) { case(id: $id) { id subject status comments { totalCount nodes { id body partnerVisible authorUserId } } } }",
            json!({ "id": any(rng, &["cs", "xs"]) }),
        ),
        12 => op(
            "my day",
            "{ tasks(first: 20, filter: { assignedToMe: true }) { totalCount nodes { id title recordName recordId overdue } } notifications(first: 20) { totalCount nodes { id kind recordId title } } unreadNotificationCount }",
            json!({}),
        ),
        13 => op(
            "deal registrations",
            "query($id: ID!) { dealRegistrations(first: 10) { totalCount statusCounts { value count } nodes { id prospectName prospectDomain status version conflicts { recordId } may { update archive } opportunity { id } } } dealRegistration(id: $id) { id prospectName conflicts { recordId } } }",
            json!({ "id": any(rng, &["rg", "xr"]) }),
        ),
        // Writes: what the persona may change, and probes at what it may not.
        _ => match who {
            Who::Distributor if rng.chance(20) => op(
                "register a deal another partner registered",
                "mutation($p: ID!) { createDealRegistration(input: { prospectName: \"Shared Prospect\", prospectDomain: \"shared-prospect.example\", products: [{ productId: $p, quantity: 2 }], estimatedAmount: \"10.00\", currency: \"EUR\" }) { id status conflicts { recordId } may { update archive } } }",
                json!({ "p": "@p1a" }),
            ),
            Who::Distributor if rng.chance(30) => op(
                "comment on a case",
                "mutation($c: ID!) { createCaseComment(input: { caseId: $c, body: \"Done\" }) { id body partnerVisible authorUserId } }",
                json!({ "c": any(rng, &["cs", "xs"]) }),
            ),
            Who::Marketing if rng.chance(30) => op(
                "add a task",
                "mutation($r: ID!, $at: DateTime!) { createTask(input: { recordId: $r, title: \"Follow up\", dueAt: $at, remindAt: null }) { id recordName accountId } }",
                json!({ "r": any(rng, &["a", "xa", "xs", "cs"]), "at": at }),
            ),
            Who::Distributor => match rng.below(3) {
                0 => op(
                    "log interaction",
                    "mutation($a: ID!, $at: DateTime!) { createInteraction(input: { accountId: $a, channel: CHAT, direction: INBOUND, subject: \"Chat\", occurredAt: $at }) { id subject } }",
                    json!({ "a": any(rng, &["a", "xa"]), "at": at }),
                ),
                1 => op(
                    "upsert with an external id",
                    "mutation($x: String!, $a: ID!, $at: DateTime!) { upsertInteraction(externalId: $x, input: { accountId: $a, channel: CHAT, direction: INBOUND, subject: \"Synced\", occurredAt: $at }) { id externalId subject } }",
                    json!({ "x": format!("EXT-{}", rng.below(8)), "a": any(rng, &["a"]), "at": at }),
                ),
                _ => op(
                    "track a shipment",
                    "mutation($s: ID!, $t: String!) { updateShipment(id: $s, version: 1, input: { trackingNumber: $t }) { id trackingNumber version } }",
                    json!({ "s": any(rng, &["h", "xh"]), "t": format!("TRK-{}", rng.below(100)) }),
                ),
            },
            Who::Marketing => match rng.below(3) {
                0 => op(
                    "capture a lead",
                    "mutation { createLead(input: { firstName: \"Lea\", lastName: \"Lead\", company: \"Prospect GmbH\", source: WEB }) { id status } }",
                    json!({}),
                ),
                1 => op(
                    "change an order",
                    "mutation($o: ID!) { updateOrder(id: $o, version: 1, input: { internalNote: \"x\" }) { id } }",
                    json!({ "o": any(rng, &["o", "xo"]) }),
                ),
                _ => op(
                    "change a contact",
                    "mutation($c: ID!) { updateContact(id: $c, version: 1, input: { title: \"CMO\" }) { id } }",
                    json!({ "c": any(rng, &["c"]) }),
                ),
            },
            Who::Supplier => match rng.below(2) {
                0 => op(
                    "confirm a line",
                    "mutation($l: ID!) { updateOrderLine(id: $l, version: 1, input: { status: CONFIRMED }) { id status version } }",
                    json!({ "l": any(rng, &["l", "xl"]) }),
                ),
                _ => op(
                    "change a line's quantity",
                    "mutation($l: ID!) { updateOrderLine(id: $l, version: 1, input: { quantity: 99 }) { id } }",
                    json!({ "l": any(rng, &["l", "xl"]) }),
                ),
            },
        },
    }
}

/// `value` with every id of `side` replaced by its label (ids made during the run, such as
/// the persona's own interactions, by the order they first appear: `new1`, `new2`, …) and
/// every cursor decoded, its id renamed and a time key blanked (creation times differ).
fn normalise(
    value: &Value,
    ids: &BTreeMap<String, String>,
    fresh: &mut BTreeMap<String, String>,
) -> Value {
    let rename = |s: &str, fresh: &mut BTreeMap<String, String>| -> String {
        if let Some(label) = ids.get(s) {
            return label.clone();
        }
        // A record id: a short lower-case type prefix (`acc`, `lead`), `_`, a long key.
        let looks_like_id = s.split_once('_').is_some_and(|(prefix, key)| {
            (2..=6).contains(&prefix.len())
                && prefix.chars().all(|c| c.is_ascii_lowercase())
                && key.len() >= 16
                && key.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if looks_like_id {
            let next = format!("new{}", fresh.len() + 1);
            return fresh.entry(s.to_owned()).or_insert(next).clone();
        }
        s.to_owned()
    };
    match value {
        Value::String(s) => {
            if let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s)
                && let Ok(mut cursor) = serde_json::from_slice::<Value>(&bytes)
                && cursor.get("ordering").is_some()
            {
                if let Some(id) = cursor["id"].as_str() {
                    cursor["id"] = json!(rename(id, fresh));
                }
                if cursor["key"]
                    .as_object()
                    .and_then(|k| k.values().next())
                    .and_then(Value::as_str)
                    .is_some_and(|k| chrono::DateTime::parse_from_rfc3339(k).is_ok())
                {
                    cursor["key"] = json!("<time>");
                }
                return json!({ "cursor": cursor });
            }
            json!(rename(s, fresh))
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalise(v, ids, fresh)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| normalise(v, ids, fresh)).collect())
        }
        other => other.clone(),
    }
}

/// Runs the proof as a user of the persona's partner, or (`through_key`) as an API key the
/// company made for that partner.
async fn noninterference(who: Who, through_key: bool) {
    run(who, through_key, false).await
}

/// The proof, `paced` or not. Paced, every write waits until the persona's webhook was told
/// of it, so that each change of its view is one delivery on both sides (unpaced, when the
/// runner decides is timing: two quick changes may be seen as one, so only what the mirror
/// ends with can be compared), and the deliveries themselves must be equal, one by one;
/// it runs fewer operations (`NONINTERFERENCE_PACED_OPS`, 150 by default).
async fn run(who: Who, through_key: bool, paced: bool) {
    let seed = std::env::var("NONINTERFERENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64 | 1);
    let operations: usize = match paced {
        false => std::env::var("NONINTERFERENCE_OPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000),
        true => std::env::var("NONINTERFERENCE_PACED_OPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(150),
    };
    let mut sides = Vec::new();
    for with_hidden in [false, true] {
        let staffed =
            StaffedSystem::start_with(loopback_webhooks(std::time::Duration::from_secs(10))).await;
        let mut side = Side {
            staffed,
            ids: BTreeMap::new(),
            token: String::new(),
            hook: None,
            feed: None,
            paced,
            live: None,
        };
        let mut shared = Rng(seed);
        let mut hidden = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        build(
            &mut side,
            who,
            &mut shared,
            with_hidden.then_some(&mut hidden),
        )
        .await;
        let persona = persona_of(who).map_or("", |(persona, _)| persona);
        let user_id = match persona_of(who) {
            None => "usr_marketing".to_owned(),
            Some((persona, _)) => format!("usr_ni_{persona}"),
        };
        side.staffed
            .system
            .settle_shares(std::time::Duration::from_secs(30))
            .await
            .expect("shares settle");
        side.token = if through_key {
            let partner = (who != Who::Marketing).then(|| side.id(persona));
            let role = if who == Who::Marketing {
                "marketing"
            } else {
                "partner_user"
            };
            side.staffed
                .api
                .api_key_secret("integration", role, partner.as_deref())
                .await
        } else {
            side.staffed.token(&user_id)
        };
        sides.push(side);
    }
    // Labels of the world with the hidden part: probes may name records one side lacks.
    let labels: Vec<String> = sides[1].ids.keys().cloned().collect();
    // The persona's subscription to every order of the world (by label: one a side lacks
    // is an id that exists nowhere there), from before the operations.
    let order_labels: Vec<String> = sides[1]
        .ids
        .iter()
        .filter(|(_, id)| id.starts_with("ord_"))
        .map(|(label, _)| label.clone())
        .take(crm_gateway::federation::live::MAX_WATCHED)
        .collect();
    for side in &mut sides {
        let ids: Vec<String> = order_labels.iter().map(|label| side.id(label)).collect();
        side.live = Some(
            crm_e2e::live_client::Live::websocket(
                &side.staffed.api.url,
                Some(&side.token),
                WATCH,
                json!({ "ids": ids }),
            )
            .await,
        );
    }
    let roots = root_operations(&sides[0]).await;
    let mut rng = Rng(seed ^ 0x5555);
    let mut fresh = [BTreeMap::new(), BTreeMap::new()];
    let mut cursors: BTreeMap<String, [Value; 2]> = BTreeMap::new();
    let mut by_outcome: BTreeMap<String, usize> = BTreeMap::new();
    let mut retried_timeouts = 0usize;
    for n in 0..operations {
        let op = operation(&mut rng, n, who, &labels, &roots);
        let mut answers = Vec::new();
        for (s, side) in sides.iter().enumerate() {
            let mut variables = resolve(side, &op.variables);
            // A paging operation continues from its own side's last cursor.
            if op.query.contains("$after")
                && continues_page(n)
                && let Some(after) = cursors.get(&op.name).map(|c| c[s].clone())
                && !after.is_null()
            {
                variables["after"] = after;
            }
            // A subgraph that timed out gave no answer about the data: a read is asked
            // again (a write is not: it may have happened), so load on the test machine
            // never reads as a difference between the worlds.
            let mut body = side.ask(&op.query, variables.clone()).await;
            for attempt in 0..8 {
                let timed_out = body["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["extensions"]["code"] == "SUBGRAPH_REQUEST_TIMEOUT");
                if !timed_out || op.query.trim_start().starts_with("mutation") {
                    break;
                }
                retried_timeouts += 1;
                // The database of a loaded test machine can stall for tens of seconds
                // (several subgraph timeouts in a row): wait a little longer each time.
                tokio::time::sleep(std::time::Duration::from_millis(500 * (attempt + 1))).await;
                body = side.ask(&op.query, variables.clone()).await;
            }
            let ids = side.labels();
            if let Some(end) = page_end(&body) {
                cursors
                    .entry(op.name.clone())
                    .or_insert([Value::Null, Value::Null])[s] = end;
            }
            answers.push(normalise(&body, &ids, &mut fresh[s]));
            if op.query.trim_start().starts_with("mutation") {
                side.settled().await;
            }
        }
        assert_eq!(
            answers[0], answers[1],
            "operation {n} ({}) differs with hidden records present (seed {seed}):\n{}\n{}",
            op.name, op.query, op.variables
        );
        let outcome = match answers[0]["errors"][0]["extensions"]["code"].as_str() {
            Some(code) => format!("{}: {code}", op.name),
            None => format!("{}: ok", op.name),
        };
        *by_outcome.entry(outcome).or_default() += 1;
    }
    // What the organisation's webhook mirrors: the same records, each as last told.
    let mut mirrors = Vec::new();
    for side in &sides {
        side.staffed
            .system
            .settle_webhooks(std::time::Duration::from_secs(60))
            .await
            .expect("webhooks settle");
        mirrors.push(mirror(side));
    }
    if mirrors[0].0 != mirrors[1].0 {
        let mut failures = Vec::new();
        for side in &sides {
            failures.push(
                crm_service_common::jobs::list(&side.staffed.system.databases.identity, None, 1000)
                    .await
                    .expect("jobs")
                    .into_iter()
                    .filter_map(|job| job.last_error.map(|e| format!("{}: {e}", job.key)))
                    .collect::<Vec<_>>(),
            );
        }
        panic!(
            "the webhook's mirror differs with hidden records present (seed {seed}):\n{:?}\n{:?}\nfailed attempts: {failures:?}",
            mirrors[0].0, mirrors[1].0
        );
    }
    if paced {
        let told: Vec<_> = sides.iter().map(told).collect();
        assert_eq!(
            told[0], told[1],
            "the webhook was told differently with hidden records present (seed {seed})"
        );
        // The change feed: the same entries, in the same order.
        let mut feeds = Vec::new();
        for side in &sides {
            feeds.push(feed_entries(side).await);
        }
        assert_eq!(
            feeds[0], feeds[1],
            "the change feed differs with hidden records present (seed {seed})"
        );
    }
    // What the subscription was told: the same CURRENT views, and each order's view as
    // last told.
    // Each side is read until it has been quiet for a while; a loaded machine can hold an
    // event back longer than that, so a side that differs is read again, with longer
    // quiet spells, before the views are compared for good.
    let mut heard: Vec<Vec<Value>> = vec![Vec::new(), Vec::new()];
    let mut streamed = Vec::new();
    for quiet in [2, 5, 15] {
        for (side, heard) in sides.iter_mut().zip(heard.iter_mut()) {
            heard.extend(drain_subscription(side, quiet).await);
        }
        streamed = sides
            .iter()
            .zip(&heard)
            .map(|(side, heard)| subscription_mirror(side, heard))
            .collect();
        if streamed[0] == streamed[1] {
            break;
        }
    }
    assert_eq!(
        streamed[0], streamed[1],
        "the subscription was told differently with hidden records present (seed {seed})"
    );
    let webhook_line = format!(
        "subscription mirror equal: {} orders in view ({} watched)\nwebhook mirror equal{}: {} records ({} and {} deliveries on the two sides)\n",
        streamed[0].len(),
        order_labels.len(),
        if paced {
            ", and every delivery one by one"
        } else {
            ""
        },
        mirrors[0].0.len(),
        mirrors[0].1,
        mirrors[1].1
    );
    let as_whom = if through_key {
        format!("{who:?}'s API key")
    } else {
        format!("{who:?} user")
    };
    crm_e2e::report(
        &format!(
            "noninterference_{who:?}{}{}",
            if through_key { "_key" } else { "" },
            if paced { "_paced" } else { "" }
        ),
        &format!(
            "noninterference as a {as_whom} (seed {seed}): {operations} operation pairs equal ({retried_timeouts} reads asked again after a subgraph timeout); by operation and outcome: {by_outcome:?}\n{webhook_line}"
        ),
    );
    for side in sides {
        side.staffed.finish().await;
    }
}

/// The persona's subscription: every order it watches, with nothing that differs by when
/// a side wrote (times, versions).
const WATCH: &str = "subscription($ids: [ID!]!) { orderChanged(ids: $ids) { change orderId \
    order { id externalId number status currency total { amount currency } accountId \
        fulfillingDistributorId internalNote \
        lines(first: 100) { nodes { id lineNumber productId quantity status unitPrice { amount } } } \
        shipments(first: 50) { nodes { id status carrier trackingNumber } } } } }";

/// Every event a side's subscription has sent, read until it has been quiet for `quiet`
/// seconds.
async fn drain_subscription(side: &mut Side, quiet: u64) -> Vec<Value> {
    let live = side.live.as_mut().expect("a subscription");
    let mut events = Vec::new();
    while let Some(said) = live.next(std::time::Duration::from_secs(quiet)).await {
        let crm_e2e::live_client::Said::Next(event) = said else {
            panic!("the subscription ended: {said:?}");
        };
        assert!(
            event.get("errors").is_none(),
            "a subscription error: {event}"
        );
        events.push(event);
    }
    events
}

/// What a side's subscription was told (`events`): per order (by label), its CURRENT view
/// (null when it had none) and its view as last told (null when it left the view). How many
/// events an order takes depends on when the reads ran (two quick changes may be read as
/// one), so the views are compared, not the events.
fn subscription_mirror(side: &Side, events: &[Value]) -> BTreeMap<String, [Value; 2]> {
    let ids = side.labels();
    let mut told: BTreeMap<String, [Value; 2]> = BTreeMap::new();
    for event in events {
        let event = &event["data"]["orderChanged"];
        let id = event["orderId"].as_str().expect("an order");
        let label = ids.get(id).cloned().unwrap_or_else(|| id.to_owned());
        let entry = told.entry(label).or_insert([Value::Null, Value::Null]);
        if event["change"] == "CURRENT" {
            entry[0] = event["order"].clone();
        }
        entry[1] = event["order"].clone();
    }
    // Ids renamed once all is told, so that a record's name depends on the views only.
    let mut fresh = BTreeMap::new();
    told.into_iter()
        .map(|(label, views)| {
            let views = views.map(|view| normalise(&view, &ids, &mut fresh));
            (label, views)
        })
        .collect()
}

/// What a side's webhook mirrors: for each record it was told of (by label), the last
/// delivery's event kind and data, with ids renamed to labels and times blanked (each side
/// wrote at its own times); and how many deliveries it took. How many deliveries a record
/// takes depends on when the runner decides (two quick changes may be seen as one), so
/// only what the mirror ends with is compared.
fn mirror(side: &Side) -> (BTreeMap<String, Value>, usize) {
    let (receiver, secret) = side.hook.as_ref().expect("a webhook");
    let got = deliveries(receiver, secret);
    let mut last: BTreeMap<String, &Value> = BTreeMap::new();
    for delivery in &got {
        let record = delivery["record"]["id"]
            .as_str()
            .expect("a record")
            .to_owned();
        let newer = last
            .get(&record)
            .is_none_or(|seen| seen["sequence"].as_i64() < delivery["sequence"].as_i64());
        if newer {
            last.insert(record, delivery);
        }
    }
    let ids = side.labels();
    let mut by_label: Vec<(String, &Value)> = last
        .into_iter()
        .map(|(id, d)| (ids.get(&id).cloned().unwrap_or(id), d))
        .collect();
    by_label.sort_by(|a, b| a.0.cmp(&b.0));
    let mut fresh = BTreeMap::new();
    let mirrored = by_label
        .into_iter()
        .map(|(label, delivery)| {
            let kind = delivery["event"]
                .as_str()
                .and_then(|e| e.split_once('.'))
                .map(|(_, kind)| kind == "removed");
            let state = match kind {
                Some(true) => json!("removed"),
                _ => without_times(&normalise(&delivery["data"], &ids, &mut fresh)),
            };
            (label, state)
        })
        .collect();
    (mirrored, got.len())
}

/// Everything a side's webhook was told, per record (by label) in the order of its
/// sequence: each delivery's event, sequence, changed fields and data (ids renamed, times
/// blanked).
fn told(side: &Side) -> BTreeMap<String, Vec<Value>> {
    let (receiver, secret) = side.hook.as_ref().expect("a webhook");
    let ids = side.labels();
    let mut fresh = BTreeMap::new();
    let mut by_record: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for delivery in deliveries(receiver, secret) {
        let id = delivery["record"]["id"].as_str().expect("a record");
        let label = ids.get(id).cloned().unwrap_or_else(|| id.to_owned());
        by_record.entry(label).or_default().push(json!({
            "event": delivery["event"],
            "sequence": delivery["sequence"],
            "changes": delivery["changes"],
            "data": without_times(&normalise(&delivery["data"], &ids, &mut fresh)),
        }));
    }
    for told in by_record.values_mut() {
        told.sort_by_key(|d| d["sequence"].as_i64());
    }
    by_record
}

/// Every entry of a side's change feed, read page by page, with ids renamed to labels.
async fn feed_entries(side: &Side) -> Vec<Value> {
    let feed = side.feed.as_deref().expect("a feed");
    let ids = side.labels();
    let mut fresh = BTreeMap::new();
    let mut entries = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = side
            .admin(
                "query($id: ID!, $after: String) { webhookChanges(webhookId: $id, after: $after, first: 7) { cursor hasMore entries { event recordType recordId sequence changes } } }",
                json!({ "id": feed, "after": cursor }),
            )
            .await;
        let page = &page["webhookChanges"];
        for entry in page["entries"].as_array().expect("entries") {
            entries.push(normalise(entry, &ids, &mut fresh));
        }
        cursor = page["cursor"].clone();
        if page["hasMore"] != true {
            return entries;
        }
    }
}

/// `value` with every time blanked.
fn without_times(value: &Value) -> Value {
    match value {
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => json!("<time>"),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_times(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_times).collect()),
        other => other.clone(),
    }
}

/// Every other paging operation continues a page (deterministic, the same on both sides).
fn continues_page(n: usize) -> bool {
    n % 2 == 1
}

/// The cursor to continue a list answer from, if it has one.
fn page_end(body: &Value) -> Option<Value> {
    let data = body.get("data")?.as_object()?;
    let list = data.values().next()?;
    list.get("pageInfo")
        .and_then(|p| p.get("endCursor"))
        .cloned()
        .or_else(|| {
            list.get("edges")
                .and_then(Value::as_array)
                .and_then(|e| e.last())
                .map(|e| e["cursor"].clone())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_learns_nothing_of_what_it_may_not_see() {
    noninterference(Who::Supplier, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributor_learns_nothing_of_what_it_may_not_see() {
    noninterference(Who::Distributor, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suppliers_api_key_learns_nothing_of_what_it_may_not_see() {
    noninterference(Who::Supplier, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributors_api_key_learns_nothing_of_what_it_may_not_see() {
    noninterference(Who::Distributor, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suppliers_webhook_is_told_the_same_one_change_at_a_time_whatever_it_may_not_see() {
    run(Who::Supplier, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributors_webhook_is_told_the_same_one_change_at_a_time_whatever_it_may_not_see() {
    run(Who::Distributor, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketing_learns_nothing_of_what_it_may_not_see() {
    noninterference(Who::Marketing, false).await;
}
