//! The staff workspace through the API, as each role does its daily work, on the seeded
//! system: support works a case through its status machine with internal and
//! partner-visible comments, the SLA clock pauses while the case waits on the customer,
//! and a breached SLA is escalated by the job runner once the services' clock has moved;
//! tasks remind their assignees; notifications reach only their recipient, and only while
//! the recipient may read the record they are about.
//!
//! A binary of its own: it moves the process's clock, which every test in its binary would
//! see.

use std::sync::Arc;
use std::time::Duration;

use crm_e2e::demo::Demo;
use crm_service_common::clock::{self, ManualClock};
use serde_json::{Value, json};

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string: {v}"))
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    text(v).parse().expect("an RFC 3339 time")
}

/// Waits until `probe` answers true, moving nothing: the job runner polls on its own.
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

const CASE: &str = "id version status priority slaDueAt slaPausedAt slaBreached escalatedAt resolvedAt nextStatuses ownerUserId";

#[tokio::test]
async fn support_sales_and_partners_work_cases_tasks_and_notifications() {
    let start = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let manual = Arc::new(ManualClock::at(start));
    clock::set(Some(manual.clone()));
    let demo = Demo::start().await;
    let support = demo.first("internal", "support");
    let sales = demo.first("internal", "sales");
    let marketing = demo.first("internal", "marketing");
    let admin = demo.first("internal", "admin");
    let distributor = demo.first("distributor", "partner_user");
    let partner = distributor.partner_id.clone().expect("a partner");

    // A case of the distributor's on an account it reads, owned by support.
    let theirs = demo
        .ok(
            &distributor,
            "{ accounts(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let account = text(&theirs["accounts"]["nodes"][0]["id"]).to_owned();
    let created = demo
        .ok(
            &support,
            &format!("mutation($a: ID!, $p: ID!, $o: ID!) {{ createCase(input: {{ accountId: $a, partnerId: $p, subject: \"Pallet arrived damaged\", channel: EMAIL, priority: HIGH, ownerUserId: $o }}) {{ {CASE} }} }}"),
            json!({ "a": account, "p": partner, "o": support.id }),
        )
        .await;
    let case = &created["createCase"];
    let case_id = text(&case["id"]).to_owned();
    assert_eq!(case["status"], "NEW");
    let due = time(&case["slaDueAt"]);
    assert_eq!(due, start + chrono::Duration::hours(8), "HIGH: 8 hours");
    assert_eq!(case["nextStatuses"], json!(["OPEN", "PENDING", "RESOLVED"]));

    // The status machine: a new case cannot be closed outright, and the error says why.
    let refused = demo
        .send(
            &support,
            "mutation($id: ID!) { updateCase(id: $id, version: 1, input: { status: CLOSED }) { id } }",
            json!({ "id": case_id }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "INVALID_STATE",
        "{refused}"
    );
    assert!(
        text(&refused["errors"][0]["message"]).contains("allowed: OPEN, PENDING, RESOLVED"),
        "{refused}"
    );

    let update = |version: i64, status: &str| {
        let demo = &demo;
        let support = &support;
        let case_id = case_id.clone();
        let status = status.to_owned();
        async move {
            demo.ok(
                support,
                &format!("mutation($id: ID!, $v: Int!, $s: CaseStatus!) {{ updateCase(id: $id, version: $v, input: {{ status: $s }}) {{ {CASE} }} }}"),
                json!({ "id": case_id, "v": version, "s": status }),
            )
            .await["updateCase"]
                .clone()
        }
    };
    let open = update(1, "OPEN").await;
    assert_eq!(open["status"], "OPEN");

    // Waiting on the customer stops the SLA clock; three hours later it resumes with the
    // due time three hours on.
    manual.advance(3600);
    let pending = update(2, "PENDING").await;
    assert!(pending["slaPausedAt"].is_string());
    manual.advance(3 * 3600);
    let resumed = update(3, "OPEN").await;
    assert_eq!(resumed["slaPausedAt"], Value::Null);
    assert_eq!(
        time(&resumed["slaDueAt"]),
        due + chrono::Duration::hours(3),
        "the due time moved on by the pause"
    );

    // Comments: one internal, one for the partner; the distributor reads only the second,
    // without its author's id, and what it writes is always partner-visible.
    for (body, visible) in [
        ("Checked the carrier's photos.", false),
        ("We are sending a replacement.", true),
    ] {
        demo.ok(
            &support,
            "mutation($c: ID!, $b: String!, $v: Boolean) { createCaseComment(input: { caseId: $c, body: $b, partnerVisible: $v }) { id } }",
            json!({ "c": case_id, "b": body, "v": visible }),
        )
        .await;
    }
    let read = demo
        .ok(
            &distributor,
            "query($id: ID!) { case(id: $id) { comments { totalCount nodes { body partnerVisible authorUserId } } } }",
            json!({ "id": case_id }),
        )
        .await;
    let comments = &read["case"]["comments"];
    assert_eq!(comments["totalCount"], 1, "{read}");
    assert_eq!(
        comments["nodes"][0]["body"],
        "We are sending a replacement."
    );
    assert_eq!(
        comments["nodes"][0]["authorUserId"],
        Value::Null,
        "staff ids are masked"
    );
    let internal_only = demo
        .send(
            &distributor,
            "mutation($c: ID!) { createCaseComment(input: { caseId: $c, body: \"x\", partnerVisible: false }) { id } }",
            json!({ "c": case_id }),
        )
        .await;
    assert_eq!(
        internal_only["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{internal_only}"
    );
    let reply = demo
        .ok(
            &distributor,
            "mutation($c: ID!) { createCaseComment(input: { caseId: $c, body: \"Thanks, the customer confirms.\" }) { partnerVisible authorUserId } }",
            json!({ "c": case_id }),
        )
        .await;
    assert_eq!(reply["createCaseComment"]["partnerVisible"], true);
    assert_eq!(
        reply["createCaseComment"]["authorUserId"],
        json!(distributor.id)
    );
    let staff_view = demo
        .ok(
            &support,
            "query($id: ID!) { case(id: $id) { comments { totalCount } } }",
            json!({ "id": case_id }),
        )
        .await;
    assert_eq!(staff_view["case"]["comments"]["totalCount"], 3);
    // Marketing reads no cases, so no comments either.
    let marketing_comments = demo
        .ok(&marketing, "{ caseComments { totalCount } }", json!({}))
        .await;
    assert_eq!(marketing_comments["caseComments"]["totalCount"], 0);

    // The owner hears of the partner's comment.
    let inbox = demo
        .ok(&support, "{ unreadNotificationCount notifications(filter: { unreadOnly: true }) { nodes { kind recordId title } } }", json!({}))
        .await;
    let kinds: Vec<&Value> = inbox["notifications"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| &n["kind"])
        .collect();
    assert!(kinds.contains(&&json!("CASE_COMMENT")), "{inbox}");

    // The SLA runs out: the job runner escalates the case (priority up, owner told).
    manual.advance(8 * 3600);
    eventually("the escalation", || async {
        let now = demo
            .ok(
                &support,
                "query($id: ID!) { case(id: $id) { escalatedAt } }",
                json!({ "id": case_id }),
            )
            .await;
        now["case"]["escalatedAt"].is_string()
    })
    .await;
    let escalated = demo
        .ok(
            &support,
            &format!("query($id: ID!) {{ case(id: $id) {{ {CASE} }} }}"),
            json!({ "id": case_id }),
        )
        .await;
    assert_eq!(escalated["case"]["priority"], "URGENT");
    assert_eq!(escalated["case"]["slaBreached"], true);
    let breached = demo
        .ok(
            &support,
            "{ notifications(filter: { unreadOnly: true }) { nodes { kind recordId } } }",
            json!({}),
        )
        .await;
    assert!(
        breached["notifications"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .any(|n| n["kind"] == "SLA_BREACHED" && n["recordId"] == json!(case_id)),
        "{breached}"
    );
    // The queue's "breaching" view lists it; a partner may not filter by who handles it.
    let queue = demo
        .ok(
            &support,
            "query($before: DateTime!, $me: ID!) { breaching: cases(filter: { slaDueBefore: $before, ownerUserId: $me }) { nodes { id } } }",
            json!({ "before": (start + chrono::Duration::hours(12)).to_rfc3339(), "me": support.id }),
        )
        .await;
    assert!(
        queue["breaching"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .any(|n| n["id"] == json!(case_id))
    );
    let masked_filter = demo
        .send(
            &distributor,
            "query($me: ID!) { cases(filter: { ownerUserId: $me }) { totalCount } }",
            json!({ "me": support.id }),
        )
        .await;
    assert!(masked_filter.get("errors").is_some(), "{masked_filter}");

    // Resolve and close; reopening a closed case is refused.
    let resolved = update(
        escalated["case"]["version"].as_i64().expect("version"),
        "RESOLVED",
    )
    .await;
    assert!(resolved["resolvedAt"].is_string());
    assert_eq!(resolved["slaBreached"], false);
    let closed = update(resolved["version"].as_i64().expect("version"), "CLOSED").await;
    assert_eq!(closed["nextStatuses"], json!([]));

    // Marking read: the badge goes to 0, and another user's notification ids change nothing.
    let marked = demo
        .ok(&support, "mutation { markNotificationsRead }", json!({}))
        .await;
    assert!(marked["markNotificationsRead"].as_u64().expect("count") >= 2);
    let badge = demo
        .ok(&support, "{ unreadNotificationCount }", json!({}))
        .await;
    assert_eq!(badge["unreadNotificationCount"], 0);

    // Tasks: sales gives support a task on the case and keeps one on an account for itself.
    let task = demo
        .ok(
            &sales,
            "mutation($r: ID!, $d: DateTime!, $who: ID!) { createTask(input: { recordId: $r, title: \"Call the customer back\", dueAt: $d, assigneeUserId: $who }) { id recordType recordName accountId remindAt assigneeUserId createdByUserId } }",
            json!({ "r": case_id, "d": (manual_now() + chrono::Duration::hours(2)).to_rfc3339(), "who": support.id }),
        )
        .await;
    let task = &task["createTask"];
    assert_eq!(task["recordType"], "CASE");
    assert_eq!(task["recordName"], "Pallet arrived damaged");
    assert_eq!(task["accountId"], json!(account), "the case's account");
    assert_eq!(
        time(&task["remindAt"]),
        manual_now() + chrono::Duration::hours(1),
        "an hour before it is due"
    );
    let task_id = text(&task["id"]).to_owned();
    let assigned = demo
        .ok(
            &support,
            "{ notifications(filter: { unreadOnly: true }) { nodes { kind recordId } } }",
            json!({}),
        )
        .await;
    assert!(
        assigned["notifications"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .any(|n| n["kind"] == "TASK_ASSIGNED"),
        "{assigned}"
    );
    // Marketing can't read the case, so it sees no task on it (not even by id).
    let hidden = demo
        .ok(
            &marketing,
            "query($id: ID!, $case: ID!) { task(id: $id) { id } tasks(filter: { recordId: $case }) { totalCount } }",
            json!({ "id": task_id, "case": case_id }),
        )
        .await;
    assert_eq!(hidden["task"], Value::Null);
    assert_eq!(hidden["tasks"]["totalCount"], 0);
    let refused = demo
        .send(
            &marketing,
            "mutation($r: ID!) { createTask(input: { recordId: $r, title: \"x\", dueAt: \"2027-01-01T00:00:00Z\" }) { id } }",
            json!({ "r": case_id }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["message"], "input.recordId refers to a record that does not exist",
        "a record the caller can't see answers as one that does not exist: {refused}"
    );

    // The reminder goes out on the clock.
    manual.advance(3600 + 60);
    eventually("the reminder", || async {
        let inbox = demo
            .ok(
                &support,
                "{ notifications(filter: { unreadOnly: true }) { nodes { kind recordId } } }",
                json!({}),
            )
            .await;
        inbox["notifications"]["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["kind"] == "TASK_REMINDER"))
    })
    .await;
    // Support's "my day": overdue once the due time passed; completing it records who.
    manual.advance(3600);
    let mine = demo
        .ok(
            &support,
            "{ tasks(filter: { assignedToMe: true, completed: false }) { nodes { id overdue } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["tasks"]["nodes"][0]["overdue"], true, "{mine}");
    let done = demo
        .ok(
            &support,
            "mutation($id: ID!) { updateTask(id: $id, version: 1, input: { completed: true }) { completed completedAt completedByUserId } }",
            json!({ "id": task_id }),
        )
        .await;
    assert_eq!(done["updateTask"]["completedByUserId"], json!(support.id));
    // Sales may not change a task it neither holds nor created... it created this one; the
    // distributor can't see tasks at all.
    let partner_tasks = demo
        .ok(&distributor, "{ tasks { totalCount } }", json!({}))
        .await;
    assert_eq!(partner_tasks["tasks"]["totalCount"], 0);

    // Jobs: the administrators' view, with what ran; nobody else's.
    let jobs = demo
        .ok(
            &admin,
            "{ jobs(first: 200) { id kind key state attempts lastError } }",
            json!({}),
        )
        .await;
    let sla = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["key"] == json!(format!("case-sla:{case_id}")))
        .expect("the case's SLA job");
    assert_eq!(sla["state"], "DONE", "{sla}");
    let denied = demo.send(&sales, "{ jobs { id } }", json!({})).await;
    assert_eq!(
        denied["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{denied}"
    );

    // The pipeline: a stage change is kept in the deal's history, and the forecast's
    // weighted total is Σ amount × probability over the deals sales reads.
    let deal = demo
        .ok(
            &sales,
            "query($me: ID) { opportunities(first: 1, filter: { openOnly: true, ownerUserId: $me }) { nodes { id version stage } } }",
            json!({ "me": sales.id }),
        )
        .await["opportunities"]["nodes"][0]
        .clone();
    let moved = demo
        .ok(
            &sales,
            "mutation($id: ID!, $v: Int!) { updateOpportunity(id: $id, version: $v, input: { stage: NEGOTIATION }) { stage probability stageHistory { fromStage toStage probability } } }",
            json!({ "id": deal["id"], "v": deal["version"] }),
        )
        .await;
    let history = moved["updateOpportunity"]["stageHistory"]
        .as_array()
        .expect("history");
    assert_eq!(
        history.last().map(|h| &h["toStage"]),
        Some(&json!("NEGOTIATION")),
        "{moved}"
    );
    let forecast = demo
        .send(
            &sales,
            "{ forecast(period: QUARTER) { rows { period forecastCategory currency count } totals { currency count weightedAmount { amount } } } }",
            json!({}),
        )
        .await;
    assert!(forecast.get("errors").is_none(), "{forecast}");
    assert!(
        !forecast["data"]["forecast"]["totals"]
            .as_array()
            .expect("totals")
            .is_empty()
    );

    clock::set(None);
    demo.finish().await;
}

fn manual_now() -> chrono::DateTime<chrono::Utc> {
    clock::now()
}
