//! Consent per purpose and channel through the gateway of the seeded demo system: each
//! statement kept with its source, evidence and time; the masks follow the consent in the
//! same write; marketing records consents and changes nothing else; partners read the
//! history without the company's evidence or people; each change is a domain event.

use crm_e2e::demo::Demo;
use crm_service_common::events::outbox::outbox_event;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

const CONSENT: &str = "query($id: ID!) { contact(id: $id) { id version email phone consents { purpose channel granted source recordedAt } consentHistory { purpose channel granted source evidence recordedAt recordedBy recorderKind } } }";

const SET_CONSENTS: &str = "mutation($id: ID!, $v: Int!, $c: [ConsentInput!]!) { updateContact(id: $id, version: $v, input: { consents: $c }) { version } }";

fn consent<'a>(contact: &'a Value, purpose: &str, channel: &str) -> &'a Value {
    contact["consents"]
        .as_array()
        .expect("consents")
        .iter()
        .find(|c| c["purpose"] == purpose && c["channel"] == channel)
        .unwrap_or_else(|| panic!("{purpose} {channel} in {contact}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_is_kept_with_its_source_and_history_and_the_masks_follow_it_at_once() {
    let demo = Demo::start().await;
    let support = demo.first("internal", "support");
    let marketing = demo.first("internal", "marketing");
    let distributor = demo.first("distributor", "partner_user");
    // A contact the distributor sees.
    let seen = demo
        .ok(
            &distributor,
            "{ contacts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let id = seen["contacts"]["nodes"][0]["id"].clone();
    let read = demo.ok(&support, CONSENT, json!({ "id": id })).await;
    let version = read["contact"]["version"].as_i64().expect("a version");
    let email = read["contact"]["email"]
        .as_str()
        .expect("an email")
        .to_owned();

    // Support withdraws partner sharing by email, as the person told them on a call.
    let changed = demo
        .ok(
            &support,
            SET_CONSENTS,
            json!({ "id": id, "v": version, "c": [{ "purpose": "PARTNER_SHARING", "channel": "EMAIL", "granted": false, "evidence": "Call on 6 Dec: no sharing" }] }),
        )
        .await;
    let version = changed["updateContact"]["version"]
        .as_i64()
        .expect("a version");
    // The distributor loses the email in the same moment.
    let theirs = demo.ok(&distributor, CONSENT, json!({ "id": id })).await;
    assert_eq!(theirs["contact"]["email"], Value::Null, "{theirs}");
    let now = &theirs["contact"];
    assert_eq!(consent(now, "PARTNER_SHARING", "EMAIL")["granted"], false);
    assert_eq!(consent(now, "PARTNER_SHARING", "EMAIL")["source"], "STAFF");
    // Partners read the statement, not the company's evidence or who at the company made it.
    let latest = &now["consentHistory"][0];
    assert_eq!(latest["purpose"], "PARTNER_SHARING", "{latest}");
    assert_eq!(latest["granted"], false);
    assert_eq!(latest["evidence"], Value::Null, "{latest}");
    assert_eq!(latest["recordedBy"], Value::Null, "{latest}");
    assert_eq!(latest["recorderKind"], "internal");

    // Marketing records the person's own web form granting it again, and may change
    // nothing else about the contact.
    let granted = demo
        .ok(
            &marketing,
            SET_CONSENTS,
            json!({ "id": id, "v": version, "c": [{ "purpose": "PARTNER_SHARING", "channel": "EMAIL", "granted": true, "source": "FORM", "evidence": "Preference centre form" }] }),
        )
        .await;
    let version = granted["updateContact"]["version"]
        .as_i64()
        .expect("a version");
    let refused = demo
        .send(
            &marketing,
            "mutation($id: ID!, $v: Int!) { updateContact(id: $id, version: $v, input: { title: \"Chief\" }) { version } }",
            json!({ "id": id, "v": version }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let theirs = demo.ok(&distributor, CONSENT, json!({ "id": id })).await;
    assert_eq!(theirs["contact"]["email"], email.as_str(), "{theirs}");

    // Staff read the whole history, newest first, with evidence and people.
    let ours = demo.ok(&support, CONSENT, json!({ "id": id })).await;
    let history = ours["contact"]["consentHistory"]
        .as_array()
        .expect("a history");
    assert_eq!(history[0]["source"], "FORM");
    assert_eq!(history[0]["evidence"], "Preference centre form");
    assert_eq!(history[0]["recordedBy"], marketing.id.as_str());
    assert_eq!(history[1]["source"], "STAFF");
    assert_eq!(history[1]["evidence"], "Call on 6 Dec: no sharing");
    assert_eq!(history[1]["recordedBy"], support.id.as_str());
    let now = &ours["contact"];
    assert_eq!(consent(now, "PARTNER_SHARING", "EMAIL")["source"], "FORM");
    assert_eq!(
        consent(now, "PARTNER_SHARING", "EMAIL")["recordedAt"],
        history[0]["recordedAt"]
    );

    // Stating what already holds records nothing new.
    demo.ok(
        &support,
        SET_CONSENTS,
        json!({ "id": id, "v": version, "c": [{ "purpose": "PARTNER_SHARING", "channel": "EMAIL", "granted": true }] }),
    )
    .await;
    let again = demo.ok(&support, CONSENT, json!({ "id": id })).await;
    assert_eq!(
        again["contact"]["consentHistory"].as_array().map(Vec::len),
        Some(history.len())
    );

    // Bad input is refused whole: the same consent twice, evidence too long.
    for (consents, field) in [
        (
            json!([{ "purpose": "MARKETING", "channel": "EMAIL", "granted": true }, { "purpose": "MARKETING", "channel": "EMAIL", "granted": false }]),
            "input.consents",
        ),
        (
            json!([{ "purpose": "MARKETING", "channel": "EMAIL", "granted": true, "evidence": "x".repeat(1001) }]),
            "input.consents.evidence",
        ),
    ] {
        let refused = demo
            .send(
                &support,
                SET_CONSENTS,
                json!({ "id": id, "v": version, "c": consents }),
            )
            .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "VALIDATION",
            "{refused}"
        );
        assert_eq!(
            refused["errors"][0]["extensions"]["field"], field,
            "{refused}"
        );
    }
    let unchanged = demo.ok(&support, CONSENT, json!({ "id": id })).await;
    assert_eq!(
        unchanged["contact"]["consentHistory"],
        again["contact"]["consentHistory"]
    );

    // Each change is a domain event other services and webhooks follow, without
    // personal values.
    let events = outbox_event::Entity::find()
        .filter(outbox_event::Column::EventType.eq("contact.consent_changed"))
        .filter(outbox_event::Column::AggregateId.eq(id.as_str().expect("an id")))
        .order_by_asc(outbox_event::Column::Seq)
        .all(&demo.system.databases.account)
        .await
        .expect("the outbox");
    let payloads: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.payload).expect("a payload"))
        .collect();
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    assert_eq!(payloads[0]["granted"], false);
    assert_eq!(payloads[0]["source"], "STAFF");
    assert_eq!(payloads[1]["granted"], true);
    assert_eq!(payloads[1]["source"], "FORM");
    assert!(
        !payloads.iter().any(|p| p.to_string().contains(&email)),
        "{payloads:?}"
    );
    demo.finish().await;
}
