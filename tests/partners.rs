//! Partner collaboration through the API, on the seeded system: a distributor registers
//! deals (one colliding with another partner's registration and with an open deal of ours,
//! one clean) and reads the same answer for both; staff see the conflicts and decide; an
//! approval attributes an opportunity to the partner, which then reads it, until the
//! protection runs out on the services' clock and the job runner expires it; a partner's
//! tier limits its open registrations; the registering partner hears of each decision.
//!
//! A binary of its own: it moves the process's clock, which every test in its binary would
//! see.

use std::sync::Arc;
use std::time::Duration;

use crm_e2e::demo::Demo;
use crm_service_common::clock::{self, ManualClock};
use serde_json::{Value, json};

const REGISTER: &str = "mutation($input: DealRegistrationInput!) { createDealRegistration(input: $input) { id version status prospectName prospectDomain conflicts { recordId reason } decidedByUserId decisionReason decidedAt protectedUntil opportunityId estimatedAmount { amount currency } expectedClose products { productId quantity } may { update archive } access { summary } } }";

const REVIEW: &str = "query($id: ID!) { dealRegistration(id: $id) { id version status partnerId opportunityId protectedUntil conflicts { kind reason recordId partnerId } } }";

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string: {v}"))
}

/// The answer without what names the registration itself (its id and the customer typed
/// in): what is left must not depend on who else claims the customer.
fn shape(mut registration: Value) -> Value {
    for key in ["id", "prospectName", "prospectDomain"] {
        registration[key] = Value::Null;
    }
    registration
}

/// Waits until `probe` answers true; the job runner polls on its own.
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test]
async fn distributors_register_deals_and_staff_decide() {
    let start = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let manual = Arc::new(ManualClock::at(start));
    clock::set(Some(manual.clone()));
    let demo = Demo::start().await;
    let admin = demo.first("internal", "admin");
    let sales = demo.first("internal", "sales");
    let support = demo.first("internal", "support");
    let distributor = demo.first("distributor", "partner_user");
    let own = distributor.partner_id.clone().expect("a partner");

    // Another partner's submitted registration, and a product to register.
    let everyone = demo
        .ok(
            &admin,
            "{ dealRegistrations(first: 100) { nodes { id partnerId prospectName prospectDomain status } } products(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let product = everyone["products"]["nodes"][0]["id"].clone();
    let theirs = everyone["dealRegistrations"]["nodes"]
        .as_array()
        .expect("registrations")
        .iter()
        .find(|r| {
            r["partnerId"] != own.as_str()
                && r["status"] == "SUBMITTED"
                && r["prospectDomain"].is_string()
        })
        .expect("another partner's submitted registration with a domain")
        .clone();
    let close = (start + chrono::Duration::days(45))
        .date_naive()
        .to_string();
    let input = |name: &str, domain: &str| {
        json!({ "input": {
            "prospectName": name,
            "prospectDomain": domain,
            "products": [{ "productId": product, "quantity": 12 }],
            "estimatedAmount": "18000.00",
            "currency": "EUR",
            "expectedClose": close,
        } })
    };

    // The same customer under another spelling, as a URL: it collides with the other
    // partner's registration. A customer nobody claims: it collides with nothing.
    let colliding = demo
        .ok(
            &distributor,
            REGISTER,
            input(
                &format!("{}, Inc.", text(&theirs["prospectName"]).to_lowercase()),
                &format!("https://www.{}/about", text(&theirs["prospectDomain"])),
            ),
        )
        .await["createDealRegistration"]
        .clone();
    let clean = demo
        .ok(
            &distributor,
            REGISTER,
            input("Quiet Meadow Analytics", "quiet-meadow-analytics.example"),
        )
        .await["createDealRegistration"]
        .clone();
    assert_eq!(colliding["status"], "SUBMITTED");
    assert_eq!(
        colliding["conflicts"],
        Value::Null,
        "partners never read conflicts"
    );
    assert_eq!(
        shape(colliding.clone()),
        shape(clean.clone()),
        "the answers differ"
    );
    // Read back later, the two still look alike to the partner.
    let read = |id: &Value| {
        let id = id.clone();
        let demo = &demo;
        let distributor = &distributor;
        async move {
            demo.ok(
                distributor,
                "query($id: ID!) { dealRegistration(id: $id) { id version status prospectName prospectDomain conflicts { recordId reason } decidedByUserId decisionReason decidedAt protectedUntil opportunityId estimatedAmount { amount currency } expectedClose products { productId quantity } may { update archive } access { summary } } }",
                json!({ "id": id }),
            )
            .await["dealRegistration"]
                .clone()
        }
    };
    assert_eq!(
        shape(read(&colliding["id"]).await),
        shape(read(&clean["id"]).await)
    );

    // Staff see why: the colliding one names the other registration (same domain, after
    // normalising the URL); the clean one nothing.
    let review = demo
        .ok(&sales, REVIEW, json!({ "id": colliding["id"] }))
        .await["dealRegistration"]
        .clone();
    let conflicts = review["conflicts"].as_array().expect("conflicts for staff");
    assert!(
        conflicts.iter().any(|c| c["kind"] == "REGISTRATION"
            && c["recordId"] == theirs["id"]
            && c["reason"] == "SAME_DOMAIN"),
        "{review}"
    );
    let clean_review =
        demo.ok(&sales, REVIEW, json!({ "id": clean["id"] })).await["dealRegistration"].clone();
    assert_eq!(clean_review["conflicts"], json!([]), "{clean_review}");

    // The other partner's registration is not there for this distributor: not listed,
    // not fetched; support (no rule) reads none at all.
    let fetched = demo
        .ok(&distributor, REVIEW, json!({ "id": theirs["id"] }))
        .await;
    assert_eq!(fetched["dealRegistration"], Value::Null);
    let listed = demo
        .ok(&distributor, "{ dealRegistrations(first: 100, filter: { includeArchived: true }) { totalCount nodes { partnerId } } }", json!({}))
        .await;
    assert!(
        listed["dealRegistrations"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(|r| r["partnerId"] == own.as_str()),
        "{listed}"
    );
    let none = demo
        .ok(
            &support,
            "{ dealRegistrations(first: 5) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(none["dealRegistrations"]["totalCount"], 0);

    // The partner may not decide on its own registration, nor set our fields.
    let refused = demo
        .send(
            &distributor,
            "mutation($id: ID!, $v: Int!) { approveDealRegistration(id: $id, version: $v) { id } }",
            json!({ "id": clean["id"], "v": clean["version"] }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );

    // Sales approves the clean one: a new opportunity on a new prospect account, owned by
    // sales, attributed to the partner for 30 days.
    let approved = demo
        .ok(
            &sales,
            "mutation($id: ID!, $v: Int!) { approveDealRegistration(id: $id, version: $v, input: { protectionDays: 30, note: \"Go for it.\" }) { status opportunityId protectedUntil account { name domain } opportunity { id ownerUserId partnerId registrationId amount { amount currency } } } }",
            json!({ "id": clean["id"], "v": clean["version"] }),
        )
        .await["approveDealRegistration"]
        .clone();
    assert_eq!(approved["status"], "APPROVED");
    assert_eq!(approved["account"]["name"], "Quiet Meadow Analytics");
    assert_eq!(
        approved["account"]["domain"],
        "quiet-meadow-analytics.example"
    );
    let deal = approved["opportunity"].clone();
    assert_eq!(deal["ownerUserId"], sales.id.as_str());
    assert_eq!(deal["partnerId"], own.as_str());
    assert_eq!(deal["registrationId"], clean["id"]);
    assert_eq!(
        deal["amount"],
        json!({ "amount": "18000.00", "currency": "EUR" })
    );
    let until: chrono::DateTime<chrono::Utc> =
        text(&approved["protectedUntil"]).parse().expect("a time");
    assert_eq!(until, start + chrono::Duration::days(30));

    // The partner now reads the deal (its owner masked) and its protection, and was told.
    const DEAL: &str =
        "query($id: ID!) { opportunity(id: $id) { id name ownerUserId partnerId protectedUntil } }";
    let seen = demo
        .ok(&distributor, DEAL, json!({ "id": deal["id"] }))
        .await;
    assert_eq!(seen["opportunity"]["partnerId"], own.as_str(), "{seen}");
    assert_eq!(seen["opportunity"]["ownerUserId"], Value::Null);
    assert_eq!(
        seen["opportunity"]["protectedUntil"],
        approved["protectedUntil"]
    );
    let told = demo
        .ok(
            &distributor,
            "{ notifications(first: 50) { nodes { kind recordType recordId } } }",
            json!({}),
        )
        .await;
    assert!(
        told["notifications"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .any(|n| n["kind"] == "REGISTRATION_APPROVED" && n["recordId"] == clean["id"]),
        "{told}"
    );

    // Sales rejects the colliding one with a reason the partner reads.
    let colliding_now = demo
        .ok(&sales, REVIEW, json!({ "id": colliding["id"] }))
        .await;
    demo.ok(
        &sales,
        "mutation($id: ID!, $v: Int!) { rejectDealRegistration(id: $id, version: $v, reason: \"Another partner registered this customer first.\") { status } }",
        json!({ "id": colliding["id"], "v": colliding_now["dealRegistration"]["version"] }),
    )
    .await;
    let rejected = read(&colliding["id"]).await;
    assert_eq!(rejected["status"], "REJECTED");
    assert_eq!(
        rejected["decisionReason"],
        "Another partner registered this customer first."
    );
    assert_eq!(
        rejected["decidedByUserId"],
        Value::Null,
        "our user ids stay ours"
    );
    // A decided registration can't be edited by the partner.
    let edit = demo
        .send(
            &distributor,
            "mutation($id: ID!, $v: Int!) { updateDealRegistration(id: $id, version: $v, input: { notes: \"more\" }) { id } }",
            json!({ "id": colliding["id"], "v": rejected["version"] }),
        )
        .await;
    assert_eq!(
        edit["errors"][0]["extensions"]["code"], "INVALID_STATE",
        "{edit}"
    );

    // Sales moves the protection (to 20 days from now); the partner may not.
    let current = demo.ok(&sales, REVIEW, json!({ "id": clean["id"] })).await;
    let moved_to = start + chrono::Duration::days(20);
    const EXTEND: &str = "mutation($id: ID!, $v: Int!, $u: DateTime!) { extendDealRegistration(id: $id, version: $v, until: $u) { protectedUntil opportunity { protectedUntil } } }";
    let variables = json!({ "id": clean["id"], "v": current["dealRegistration"]["version"], "u": moved_to.to_rfc3339() });
    let refused = demo.send(&distributor, EXTEND, variables.clone()).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let moved = demo.ok(&sales, EXTEND, variables).await["extendDealRegistration"].clone();
    let moved_until: chrono::DateTime<chrono::Utc> =
        text(&moved["protectedUntil"]).parse().expect("a time");
    assert_eq!(moved_until, moved_to);
    assert_eq!(
        moved["opportunity"]["protectedUntil"],
        moved["protectedUntil"]
    );

    // The protection runs out on the clock: the job runner expires the registration and
    // the deal is no longer the partner's.
    manual.advance(31 * 86_400);
    eventually("the registration's expiry", || async {
        demo.ok(&sales, REVIEW, json!({ "id": clean["id"] })).await["dealRegistration"]["status"]
            == "EXPIRED"
    })
    .await;
    let gone = demo
        .ok(&distributor, DEAL, json!({ "id": deal["id"] }))
        .await;
    assert_eq!(gone["opportunity"], Value::Null, "{gone}");
    let ours = demo.ok(&sales, DEAL, json!({ "id": deal["id"] })).await;
    assert_eq!(ours["opportunity"]["partnerId"], Value::Null);

    // The tier's limit on open registrations: a REGISTERED partner has at most 5 open.
    let partner = demo
        .ok(
            &admin,
            "query($id: ID!) { partner(id: $id) { id version } }",
            json!({ "id": own }),
        )
        .await;
    demo.ok(
        &admin,
        "mutation($id: ID!, $v: Int!) { updatePartner(id: $id, version: $v, input: { tier: REGISTERED }) { id } }",
        json!({ "id": own, "v": partner["partner"]["version"] }),
    )
    .await;
    let open = demo
        .ok(
            &distributor,
            "{ dealRegistrations(first: 100, filter: { status: SUBMITTED }) { totalCount } } ",
            json!({}),
        )
        .await["dealRegistrations"]["totalCount"]
        .as_i64()
        .expect("count");
    let approved_open = demo
        .ok(
            &distributor,
            "{ dealRegistrations(first: 100, filter: { status: APPROVED }) { totalCount } } ",
            json!({}),
        )
        .await["dealRegistrations"]["totalCount"]
        .as_i64()
        .expect("count");
    let close = (clock::now() + chrono::Duration::days(30))
        .date_naive()
        .to_string();
    for n in (open + approved_open)..5 {
        let mut more = input(&format!("Prospect {n}"), &format!("prospect-{n}.example"));
        more["input"]["expectedClose"] = json!(close);
        demo.ok(&distributor, REGISTER, more).await;
    }
    let mut over = input("One Too Many", "one-too-many.example");
    over["input"]["expectedClose"] = json!(close);
    let refused = demo.send(&distributor, REGISTER, over).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "VALIDATION",
        "{refused}"
    );
    assert!(
        text(&refused["errors"][0]["message"]).contains("5 open deal registrations"),
        "{refused}"
    );

    // A distributor's case: support answers with an internal note and a reply; the
    // distributor reads the reply only, and is told of it (not of the note).
    let account = demo
        .ok(
            &distributor,
            "{ accounts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await["accounts"]["nodes"][0]["id"]
        .clone();
    let case = demo
        .ok(
            &distributor,
            "mutation($a: ID!) { createCase(input: { accountId: $a, subject: \"Pallets arrive damaged\", priority: HIGH, channel: WEB }) { id slaDueAt partnerId } }",
            json!({ "a": account }),
        )
        .await["createCase"]
        .clone();
    assert_eq!(case["partnerId"], own.as_str());
    for (body, visible) in [
        ("Check the carrier's claim first.", false),
        ("We are sending replacements today.", true),
    ] {
        demo.ok(
            &support,
            "mutation($c: ID!, $b: String!, $v: Boolean!) { createCaseComment(input: { caseId: $c, body: $b, partnerVisible: $v }) { id } }",
            json!({ "c": case["id"], "b": body, "v": visible }),
        )
        .await;
    }
    let seen = demo
        .ok(
            &distributor,
            "query($id: ID!) { case(id: $id) { comments { totalCount nodes { body authorUserId } } } }",
            json!({ "id": case["id"] }),
        )
        .await;
    assert_eq!(
        seen["case"]["comments"],
        json!({ "totalCount": 1, "nodes": [{ "body": "We are sending replacements today.", "authorUserId": null }] })
    );
    let replies: Vec<Value> = demo
        .ok(
            &distributor,
            "{ notifications(first: 100) { nodes { kind recordId body } } }",
            json!({}),
        )
        .await["notifications"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["kind"] == "CASE_REPLY" && n["recordId"] == case["id"])
        .cloned()
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["body"], "We are sending replacements today.");

    // A supplier answers for its open lines: a backorder needs the date it expects to
    // ship; staff read the answer on the line. The line: one of its products, added by
    // staff to an order still being worked.
    let supplier = demo.first("supplier", "partner_user");
    let world = demo
        .ok(
            &admin,
            "query($s: ID!) { orders(first: 200) { nodes { id currency status } } products(first: 1, filter: { supplierPartnerId: $s }) { nodes { id } } }",
            json!({ "s": supplier.partner_id }),
        )
        .await;
    let order = world["orders"]["nodes"]
        .as_array()
        .expect("orders")
        .iter()
        .find(|o| {
            matches!(
                o["status"].as_str(),
                Some("PLACED" | "CONFIRMED" | "ON_HOLD")
            )
        })
        .cloned()
        .expect("an order still being worked");
    let open = demo
        .ok(
            &admin,
            "mutation($o: ID!, $p: ID!, $c: String!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: 7, unitPrice: \"3.00\", currency: $c }) { id version } }",
            json!({ "o": order["id"], "p": world["products"]["nodes"][0]["id"], "c": order["currency"] }),
        )
        .await["createOrderLine"]
        .clone();
    // Every user of the supplier hears of the new line (about the order's account, which
    // it reads); no other supplier does.
    const NOTES: &str = "{ notifications(first: 100) { nodes { kind title recordType recordId recipientPartnerId } } }";
    let notes_of = |data: &Value, kind: &str| -> Vec<Value> {
        data["notifications"]["nodes"]
            .as_array()
            .expect("notifications")
            .iter()
            .filter(|n| n["kind"] == kind)
            .cloned()
            .collect()
    };
    demo.system
        .settle_shares(Duration::from_secs(30))
        .await
        .expect("order events applied");
    let number = demo
        .ok(
            &admin,
            "query($id: ID!) { order(id: $id) { number accountId } }",
            json!({ "id": order["id"] }),
        )
        .await["order"]
        .clone();
    let heard = notes_of(&demo.ok(&supplier, NOTES, json!({})).await, "LINE_ADDED");
    assert!(
        heard.iter().any(|n| n["recordId"] == number["accountId"]
            && text(&n["title"]).contains(text(&number["number"]))
            && n["recipientPartnerId"] == json!(supplier.partner_id)),
        "{heard:?}"
    );
    for other in demo
        .users
        .iter()
        .filter(|u| u.kind == "supplier" && u.partner_id != supplier.partner_id)
    {
        let theirs = notes_of(&demo.ok(other, NOTES, json!({})).await, "LINE_ADDED");
        assert!(
            !theirs
                .iter()
                .any(|n| text(&n["title"]).contains(text(&number["number"]))),
            "another supplier heard of the line: {theirs:?}"
        );
    }
    const ANSWER: &str = "mutation($id: ID!, $v: Int!, $input: OrderLineInput!) { updateOrderLine(id: $id, version: $v, input: $input) { status expectedDate version } }";
    let undated = demo
        .send(
            &supplier,
            ANSWER,
            json!({ "id": open["id"], "v": open["version"], "input": { "status": "BACKORDERED" } }),
        )
        .await;
    assert_eq!(
        undated["errors"][0]["extensions"]["field"], "input.expectedDate",
        "{undated}"
    );
    let day = (clock::now() + chrono::Duration::days(14))
        .date_naive()
        .to_string();
    let answered = demo
        .ok(
            &supplier,
            ANSWER,
            json!({ "id": open["id"], "v": open["version"], "input": { "status": "BACKORDERED", "expectedDate": day } }),
        )
        .await;
    assert_eq!(answered["updateOrderLine"]["status"], "BACKORDERED");
    let staff = demo
        .ok(
            &sales,
            "query($id: ID!) { orderLine(id: $id) { status expectedDate } }",
            json!({ "id": open["id"] }),
        )
        .await;
    assert_eq!(
        staff["orderLine"],
        json!({ "status": "BACKORDERED", "expectedDate": day })
    );

    // Lead distribution: sales routes a lead it owns to the distributor, which alone reads
    // it; the distributor accepts one and declines another (which returns to the pool and
    // out of its sight); a third, unanswered, returns by itself after 48 hours.
    let other_distributor = demo
        .ok(
            &admin,
            "{ partners(first: 50, filter: { kind: DISTRIBUTOR }) { nodes { id } } }",
            json!({}),
        )
        .await["partners"]["nodes"]
        .as_array()
        .expect("partners")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .find(|p| *p != own)
        .expect("another distributor");
    let mut routed = Vec::new();
    for n in 0..3 {
        let lead = demo
            .ok(
                &sales,
                "mutation($n: String!, $o: ID!) { createLead(input: { firstName: \"Ria\", lastName: $n, company: \"Routed GmbH\", source: PARTNER, ownerUserId: $o }) { id version } }",
                json!({ "n": format!("Routed {n}"), "o": sales.id }),
            )
            .await["createLead"]
            .clone();
        let route = demo
            .ok(
                &sales,
                "mutation($id: ID!, $v: Int!, $p: ID!) { routeLead(id: $id, version: $v, partnerId: $p) { id version routedPartnerId respondBy routingSuggestions { partnerId openLeads capacity } } }",
                json!({ "id": lead["id"], "v": lead["version"], "p": own }),
            )
            .await["routeLead"]
            .clone();
        assert_eq!(route["routedPartnerId"], own.as_str());
        routed.push(route);
    }
    const LEAD: &str = "query($id: ID!) { lead(id: $id) { id version status ownerUserId routedPartnerId acceptedAt declineReason routingSuggestions { partnerId } } }";
    let theirs = demo
        .users
        .iter()
        .find(|u| {
            u.partner_id.as_deref() == Some(other_distributor.as_str()) && u.roles == "partner_user"
        })
        .cloned();
    for r in &routed {
        let mine = demo.ok(&distributor, LEAD, json!({ "id": r["id"] })).await;
        assert_eq!(mine["lead"]["ownerUserId"], Value::Null, "{mine}");
        assert_eq!(mine["lead"]["routingSuggestions"], Value::Null, "{mine}");
        if let Some(other) = &theirs {
            let not = demo.ok(other, LEAD, json!({ "id": r["id"] })).await;
            assert_eq!(
                not["lead"],
                Value::Null,
                "another distributor reads a lead not routed to it"
            );
        }
    }
    // Everyone of the distributor is told of each routed lead (one shared note per lead);
    // another distributor hears of none.
    const ROUTED: &str = "{ notifications(first: 100) { nodes { id kind recordId recipientPartnerId read } } unreadNotificationCount }";
    let told = |data: &Value| -> Vec<String> {
        data["notifications"]["nodes"]
            .as_array()
            .expect("notifications")
            .iter()
            .filter(|n| n["kind"] == "LEAD_ROUTED")
            .map(|n| text(&n["recordId"]).to_owned())
            .collect()
    };
    let colleague = demo
        .users
        .iter()
        .find(|u| u.partner_id.as_deref() == Some(own.as_str()) && u.id != distributor.id)
        .cloned()
        .expect("a colleague of the distributor's user");
    let routed_ids: Vec<String> = routed.iter().map(|r| text(&r["id"]).to_owned()).collect();
    for reader in [&distributor, &colleague] {
        let mut heard = told(&demo.ok(reader, ROUTED, json!({})).await);
        heard.sort();
        let mut expected = routed_ids.clone();
        expected.sort();
        assert_eq!(
            heard, expected,
            "{} hears of each routed lead once",
            reader.email
        );
    }
    if let Some(other) = &theirs {
        assert!(told(&demo.ok(other, ROUTED, json!({})).await).is_empty());
    }
    let accepted = demo
        .ok(
            &distributor,
            "mutation($id: ID!, $v: Int!) { acceptLead(id: $id, version: $v) { status acceptedAt } }",
            json!({ "id": routed[0]["id"], "v": routed[0]["version"] }),
        )
        .await;
    assert_eq!(accepted["acceptLead"]["status"], "WORKING");
    let refused = demo
        .send(
            &distributor,
            "mutation($id: ID!, $v: Int!) { updateLead(id: $id, version: $v, input: { company: \"Renamed\" }) { id } }",
            json!({ "id": routed[0]["id"], "v": 2 }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    demo.ok(
        &distributor,
        "mutation($id: ID!, $v: Int!) { declineLead(id: $id, version: $v, reason: \"Outside our range\") }",
        json!({ "id": routed[1]["id"], "v": routed[1]["version"] }),
    )
    .await;
    let gone = demo
        .ok(&distributor, LEAD, json!({ "id": routed[1]["id"] }))
        .await;
    assert_eq!(gone["lead"], Value::Null);
    // The note of a lead given back goes with the lead.
    let heard = told(&demo.ok(&colleague, ROUTED, json!({})).await);
    assert!(!heard.contains(&routed_ids[1]), "{heard:?}");
    assert!(heard.contains(&routed_ids[0]));
    let back = demo
        .ok(&sales, LEAD, json!({ "id": routed[1]["id"] }))
        .await;
    assert_eq!(back["lead"]["routedPartnerId"], Value::Null);
    assert_eq!(back["lead"]["declineReason"], "Outside our range");
    manual.advance(49 * 3600);
    eventually("the unanswered lead's return", || async {
        demo.ok(&sales, LEAD, json!({ "id": routed[2]["id"] }))
            .await["lead"]["routedPartnerId"]
            .is_null()
    })
    .await;
    let kept = demo
        .ok(&distributor, LEAD, json!({ "id": routed[0]["id"] }))
        .await;
    assert_eq!(kept["lead"]["status"], "WORKING", "an accepted lead stays");

    // A shipment that reports an exception: every user of the distributor that fulfils the
    // order is told, and so is the account's owner.
    let shipment = demo
        .ok(
            &distributor,
            "{ shipments(first: 200) { nodes { id version status order { number accountId } } } }",
            json!({}),
        )
        .await["shipments"]["nodes"]
        .as_array()
        .expect("shipments")
        .iter()
        .find(|s| {
            matches!(
                s["status"].as_str(),
                Some("LABEL_CREATED" | "IN_TRANSIT" | "OUT_FOR_DELIVERY")
            )
        })
        .cloned()
        .expect("a shipment on its way");
    demo.ok(
        &distributor,
        "mutation($id: ID!, $v: Int!) { recordShipmentStatus(id: $id, version: $v, status: EXCEPTION, note: \"Parcel damaged\") { status } }",
        json!({ "id": shipment["id"], "v": shipment["version"] }),
    )
    .await;
    demo.system
        .settle_shares(Duration::from_secs(30))
        .await
        .expect("order events applied");
    let about = |data: &Value| {
        notes_of(data, "SHIPMENT_EXCEPTION").into_iter().any(|n| {
            text(&n["title"]).contains(text(&shipment["order"]["number"]))
                && n["recordId"] == shipment["order"]["accountId"]
        })
    };
    assert!(about(&demo.ok(&colleague, NOTES, json!({})).await));
    let owner = demo
        .ok(
            &admin,
            "query($id: ID!) { account(id: $id) { ownerUserId } }",
            json!({ "id": shipment["order"]["accountId"] }),
        )
        .await["account"]["ownerUserId"]
        .clone();
    if let Some(owner) = demo.users.iter().find(|u| owner == u.id.as_str()) {
        assert!(
            about(&demo.ok(owner, NOTES, json!({})).await),
            "the owner is told"
        );
    }
    if let Some(other) = &theirs {
        assert!(!about(&demo.ok(other, NOTES, json!({})).await));
    }

    // The partner's scorecard counts what its lists hold, and staff read the same numbers.
    const CARD: &str = "query($id: ID!) { partner(id: $id) { scorecard { registrationsSubmitted registrationsApproved dealsWon leadsWaiting leadsAccepted medianHoursToAccept casesOpened casesResolved } } }";
    let card =
        demo.ok(&distributor, CARD, json!({ "id": own })).await["partner"]["scorecard"].clone();
    let lists = demo
        .ok(
            &distributor,
            "{ dealRegistrations(first: 1, filter: { includeArchived: true }) { totalCount } leads(first: 200) { nodes { acceptedAt } } cases(first: 1, filter: { includeArchived: true }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        card["registrationsSubmitted"],
        lists["dealRegistrations"]["totalCount"]
    );
    assert_eq!(card["casesOpened"], lists["cases"]["totalCount"]);
    let leads = lists["leads"]["nodes"].as_array().expect("leads");
    assert_eq!(
        card["leadsAccepted"].as_u64(),
        Some(leads.iter().filter(|l| !l["acceptedAt"].is_null()).count() as u64)
    );
    assert_eq!(
        card["leadsWaiting"].as_u64(),
        Some(leads.iter().filter(|l| l["acceptedAt"].is_null()).count() as u64)
    );
    let staff_card =
        demo.ok(&sales, CARD, json!({ "id": own })).await["partner"]["scorecard"].clone();
    assert_eq!(
        staff_card["registrationsSubmitted"],
        card["registrationsSubmitted"]
    );
    assert_eq!(staff_card["leadsAccepted"], card["leadsAccepted"]);

    demo.finish().await;
    clock::set(None);
}
