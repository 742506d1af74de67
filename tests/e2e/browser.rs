//! The web UI and partner portal in a real browser: headless Chromium from Debian's
//! `chromium` package, driven by `tests/browser/run.mjs` (playwright-core, axe-core). This
//! test starts the real system on port 0, works out from SQL what each persona must see,
//! and runs the script against it: sign-in with the keyboard only, each persona's slice,
//! a distributor's shipment update seen by sales, another supplier's order URL answering
//! "not found", no sideways scrolling at 375 px, and no serious or critical axe violation
//! on any main page. Screenshots go to `target/test-reports/screenshots-<database>/`.
//!
//! Needs `/usr/bin/chromium` (`apt-get install chromium`, which `.ci/run` does) and Node.js;
//! the npm packages (pinned in `tests/browser/package-lock.json`) are installed on first run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crm_e2e::{finish, report, system_with_settings};
use crm_system::GatewaySettings;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;

async fn column(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .expect("sql")
    .iter()
    .map(|r| r.try_get_by_index::<String>(0).expect("text"))
    .collect()
}

async fn one(db: &DatabaseConnection, sql: &str) -> String {
    column(db, sql)
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no row: {sql}"))
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// The npm packages of the script, installed from the lock file when missing.
fn ensure_packages(dir: &Path) {
    if dir.join("node_modules/playwright-core").exists()
        && dir.join("node_modules/axe-core").exists()
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm (Node.js) is needed for the browser tests");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

#[tokio::test]
async fn the_ui_in_a_real_browser() {
    let script_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        Path::new(&chromium()).exists(),
        "the browser tests need Debian's chromium at {} (apt-get install chromium)",
        chromium()
    );
    ensure_packages(&script_dir);
    let (system, _dir, created) = system_with_settings(60, GatewaySettings::default()).await;
    let identity = &system.databases.identity;
    let orders = &system.databases.order_visibility;
    let partner_of = |email: &str| format!("SELECT partner_id FROM users WHERE email = '{email}'");
    let supplier = "supplier1-user@acme-components.example";
    let supplier_partner = one(identity, &partner_of(supplier)).await;
    let other_partner = one(identity, &partner_of("supplier2-user@borealis.example")).await;
    let distributor = "distributor1-user@northwind.example";
    let distributor_partner = one(identity, &partner_of(distributor)).await;
    let orders_of = |partner: &str| {
        format!(
            "SELECT DISTINCT o.id FROM orders o JOIN order_lines l ON l.order_id = o.id \
             JOIN products p ON p.id = l.product_id WHERE o.archived_at IS NULL \
             AND l.archived_at IS NULL AND p.supplier_partner_id = '{partner}' ORDER BY o.id"
        )
    };
    let supplier_orders = column(orders, &orders_of(&supplier_partner)).await;
    let foreign = column(orders, &orders_of(&other_partner))
        .await
        .into_iter()
        .find(|o| !supplier_orders.contains(o))
        .expect("an order of supplier 2 only");
    let shipment_sql = format!(
        "SELECT s.id FROM shipments s JOIN orders o ON o.id = s.order_id \
         WHERE o.fulfilling_distributor_id = '{distributor_partner}' AND s.archived_at IS NULL \
         AND s.status = 'IN_TRANSIT' ORDER BY s.id"
    );
    let shipment = one(orders, &shipment_sql).await;
    let order = one(
        orders,
        &format!("SELECT order_id FROM shipments WHERE id = '{shipment}'"),
    )
    .await;
    let account = one(
        &system.databases.account,
        "SELECT id FROM accounts WHERE archived_at IS NULL ORDER BY name LIMIT 1",
    )
    .await;
    // Support's case: an open one a distributor raised, handled by support.
    let support_case = one(
        &system.databases.account,
        "SELECT id FROM cases WHERE archived_at IS NULL AND status IN ('NEW', 'OPEN') \
         AND partner_id IS NOT NULL AND owner_user_id = 'usr_support' ORDER BY id LIMIT 1",
    )
    .await;
    let comments_before = column(
        &system.databases.account,
        &format!("SELECT id FROM case_comments WHERE case_id = '{support_case}'"),
    )
    .await
    .len();
    // A task of sales' due late today in Tonga (UTC+13): "today" there is often tomorrow
    // in UTC, so it shows under "Today" only by the user's own calendar. In Tonga's last
    // hour the task would be overdue before the browser looks (from 10:30 UTC it was):
    // then Kiritimati (UTC+14), where that day is just beginning, stands in.
    use chrono::Timelike as _;
    let zone_name = match chrono::Utc::now()
        .with_timezone(&chrono_tz::Pacific::Tongatapu)
        .hour()
    {
        23 => "Pacific/Kiritimati",
        _ => "Pacific/Tongatapu",
    };
    let tonga: chrono_tz::Tz = zone_name.parse().expect("zone");
    let tonga_today = chrono::Utc::now().with_timezone(&tonga).date_naive();
    let due = tonga_today
        .and_hms_opt(23, 30, 0)
        .and_then(|local| local.and_local_timezone(tonga).single())
        .expect("a local time")
        .with_timezone(&chrono::Utc);
    let sales_token = crm_e2e::signed_in(
        &reqwest::Client::new(),
        &system.public.url(),
        "sales@crm.example",
    )
    .await;
    let (_, task) = crm_e2e::gateway_as(
        &reqwest::Client::new(),
        &system.public.url(),
        Some(&sales_token),
        "mutation($a: ID!, $d: DateTime!) { createTask(input: { recordId: $a, title: \"Call Tonga back\", dueAt: $d, remindAt: null }) { id } }",
        json!({ "a": account, "d": due.to_rfc3339() }),
    )
    .await;
    let tonga_task = task["data"]["createTask"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the task: {task}"))
        .to_owned();
    // An account with one event of every kind for the 360° timeline: a seeded order with a
    // shipment (its tracking events), and, through the API, an interaction, a deal, a case
    // with a comment, and a task.
    let timeline_account = one(
        orders,
        "SELECT o.account_id FROM orders o JOIN shipments s ON s.order_id = o.id \
         WHERE o.archived_at IS NULL AND o.placed_at IS NOT NULL ORDER BY o.id LIMIT 1",
    )
    .await;
    let admin_token = crm_e2e::signed_in(
        &reqwest::Client::new(),
        &system.public.url(),
        "admin@crm.example",
    )
    .await;
    let (_, made) = crm_e2e::gateway_as(
        &reqwest::Client::new(),
        &system.public.url(),
        Some(&admin_token),
        "mutation($a: ID!, $at: DateTime!, $due: DateTime!) { \
           createInteraction(input: { accountId: $a, channel: PHONE, direction: OUTBOUND, subject: \"Timeline call\", occurredAt: $at }) { id } \
           createOpportunity(input: { accountId: $a, name: \"Timeline deal\", stage: PROSPECTING, amount: \"1000.00\", currency: \"EUR\" }) { id } \
           createCase(input: { accountId: $a, subject: \"Timeline case\", channel: EMAIL }) { id } \
           createTask(input: { recordId: $a, title: \"Timeline task\", dueAt: $due, remindAt: null }) { id } }",
        json!({ "a": timeline_account, "at": chrono::Utc::now().to_rfc3339(),
                "due": (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339() }),
    )
    .await;
    let timeline_case = made["data"]["createCase"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the timeline's records: {made}"))
        .to_owned();
    crm_e2e::gateway_as(
        &reqwest::Client::new(),
        &system.public.url(),
        Some(&admin_token),
        "mutation($c: ID!) { createCaseComment(input: { caseId: $c, body: \"Timeline comment\" }) { id } }",
        json!({ "c": timeline_case }),
    )
    .await;
    // Another distributor's registration, for the browser's colliding one.
    let conflict = column(
        &system.databases.account,
        &format!(
            "SELECT prospect_name || '|' || domain_key FROM deal_registrations \
             WHERE partner_id <> '{distributor_partner}' AND domain_key IS NOT NULL \
             AND status = 'SUBMITTED' ORDER BY id"
        ),
    )
    .await
    .into_iter()
    .next()
    .expect("another partner's registration");
    let (conflict_name, conflict_domain) = conflict.split_once('|').expect("name|domain");
    // An open line of the supplier's product, added by staff to one of its orders still
    // being worked (so that the orders it sees stay the same), for the supplier to answer.
    let open_order = column(
        orders,
        "SELECT id || '|' || currency FROM orders WHERE status IN ('PLACED', 'CONFIRMED', 'ON_HOLD') \
         AND archived_at IS NULL ORDER BY id",
    )
    .await
    .into_iter()
    .find(|o| supplier_orders.iter().any(|s| o.starts_with(&format!("{s}|"))))
    .expect("an order of the supplier's still being worked");
    let (open_line_order, currency) = open_order.split_once('|').expect("order|currency");
    let product = one(
        orders,
        &format!(
            "SELECT id FROM products WHERE supplier_partner_id = '{supplier_partner}' ORDER BY id"
        ),
    )
    .await;
    let (_, line) = crm_e2e::gateway_as(
        &reqwest::Client::new(),
        &system.public.url(),
        Some(&admin_token),
        "mutation($o: ID!, $p: ID!, $c: String!) { createOrderLine(input: { orderId: $o, productId: $p, quantity: 7, unitPrice: \"3.00\", currency: $c }) { id } }",
        json!({ "o": open_line_order, "p": product, "c": currency }),
    )
    .await;
    let open_line = line["data"]["createOrderLine"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the open line: {line}"))
        .to_owned();
    // The supplier's demand view of that product: the units its lines due in the 13 weeks
    // from this week's Monday, as SQL counts them (the line just added included).
    let monday = {
        use chrono::Datelike;
        let today = chrono::Utc::now().date_naive();
        today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()))
    };
    let end = monday + chrono::Duration::weeks(13);
    // The supplier's product with the most units due in the window (any when none).
    let busiest = column(
        orders,
        &format!(
            "SELECT l.product_id || '|' || CAST(SUM(l.quantity) AS TEXT) FROM order_lines l JOIN orders o ON o.id = l.order_id \
             WHERE l.product_id IN (SELECT id FROM products WHERE supplier_partner_id = '{supplier_partner}') \
             AND l.archived_at IS NULL AND o.archived_at IS NULL \
             AND o.status NOT IN ('DRAFT', 'CANCELLED') AND l.status <> 'CANCELLED' \
             AND ((l.expected_date >= '{monday}' AND l.expected_date < '{end}') \
               OR (l.expected_date IS NULL AND o.placed_at >= '{monday}T00:00:00+00:00' AND o.placed_at < '{end}T00:00:00+00:00')) \
             GROUP BY l.product_id ORDER BY SUM(l.quantity) DESC, l.product_id"
        ),
    )
    .await
    .into_iter()
    .next()
    .unwrap_or_else(|| format!("{product}|0"));
    let (demand_product, demand_ordered) = busiest.split_once('|').expect("product|units");
    let demand_sku = one(
        orders,
        &format!("SELECT sku FROM products WHERE id = '{demand_product}'"),
    )
    .await;
    // A lead sales owns and has not routed, for it to route to the distributor.
    let sales_user = one(
        identity,
        "SELECT id FROM users WHERE email = 'sales@crm.example'",
    )
    .await;
    let route_lead = one(
        &system.databases.account,
        &format!(
            "SELECT id FROM leads WHERE owner_user_id = '{sales_user}' AND status IN ('NEW', 'WORKING') \
             AND routed_partner_id IS NULL AND archived_at IS NULL ORDER BY id"
        ),
    )
    .await;
    // The knowledge base: a live article for distributors that support edits and
    // marketing approves, and the article for Gold and Platinum partners only.
    let kb = &system.databases.knowledge_base;
    let review_article = one(
        kb,
        "SELECT id FROM articles WHERE title = 'Returns and refunds' AND status = 'PUBLISHED'",
    )
    .await;
    let tiered_article = one(
        kb,
        "SELECT id FROM articles WHERE tiers <> '' AND status = 'PUBLISHED' ORDER BY id",
    )
    .await;
    system
        .settle_partner_tiers(std::time::Duration::from_secs(30))
        .await
        .expect("the door knows the partners' tiers");
    // Global search: a contact the distributor reads (through the API, as it reads them)
    // and one it does not, each searched by a full name no other contact has; and a
    // contact whose email is masked for marketing (no marketing consent for email).
    let distributor_token =
        crm_e2e::signed_in(&reqwest::Client::new(), &system.public.url(), distributor).await;
    let mut visible_contacts = std::collections::BTreeSet::new();
    let mut after = serde_json::Value::Null;
    loop {
        let (_, page) = crm_e2e::gateway_as(
            &reqwest::Client::new(),
            &system.public.url(),
            Some(&distributor_token),
            "query($after: String) { contacts(first: 200, after: $after) { pageInfo { hasNextPage endCursor } nodes { id } } }",
            json!({ "after": after }),
        )
        .await;
        let contacts = &page["data"]["contacts"];
        for c in contacts["nodes"].as_array().expect("contacts") {
            visible_contacts.insert(c["id"].as_str().expect("id").to_owned());
        }
        if contacts["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = contacts["pageInfo"]["endCursor"].clone();
    }
    let everyone: Vec<(String, String)> = column(
        &system.databases.account,
        "SELECT id || '|' || first_name || ' ' || last_name FROM contacts WHERE archived_at IS NULL ORDER BY id",
    )
    .await
    .into_iter()
    .filter_map(|row| row.split_once('|').map(|(i, n)| (i.to_owned(), n.to_owned())))
    .collect();
    let unique = |visible: bool| {
        everyone
            .iter()
            .find(|(id, name)| {
                visible_contacts.contains(id) == visible
                    && everyone
                        .iter()
                        .filter(|(_, other)| other.to_lowercase().contains(&name.to_lowercase()))
                        .count()
                        == 1
            })
            .cloned()
            .expect("a contact with a full name of its own")
    };
    let (visible_contact, visible_name) = unique(true);
    let hidden = unique(false);
    let masked = one(
        &system.databases.account,
        "SELECT id || '|' || email FROM contacts WHERE archived_at IS NULL AND email IS NOT NULL \
         AND consent_marketing_email = FALSE ORDER BY id",
    )
    .await;
    let (masked_contact, masked_email) = masked.split_once('|').expect("id|email");
    // A case with a suggested article (through the gateway: the knowledge base's field
    // of the account service's case, given the case's subject), for support to link.
    let support_token = crm_e2e::signed_in(
        &reqwest::Client::new(),
        &system.public.url(),
        "support@crm.example",
    )
    .await;
    let (_, cases) = crm_e2e::gateway_as(
        &reqwest::Client::new(),
        &system.public.url(),
        Some(&support_token),
        "{ cases(first: 100, filter: { status: OPEN }) { nodes { id suggestedArticles(first: 1) { article { id } } } } }",
        json!({}),
    )
    .await;
    let link_case = cases["data"]["cases"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("cases: {cases}"))
        .iter()
        .find(|c| {
            c["id"] != support_case.as_str()
                && c["suggestedArticles"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty())
        })
        .and_then(|c| c["id"].as_str())
        .unwrap_or_else(|| panic!("an open case with a suggested article: {cases}"))
        .to_owned();
    // A webhook with a test delivery in its history (to an address of the closed
    // internet: it waits for its next attempt), for the webhook page's checks.
    let (_, hook) = crm_e2e::gateway_as(
        &reqwest::Client::new(),
        &system.public.url(),
        Some(&admin_token),
        "mutation { createWebhook(input: { name: \"ERP\", url: \"https://erp.example.com/hooks\", events: [\"order.added\", \"order.updated\"], role: \"support\" }) { webhook { id } } }",
        json!({}),
    )
    .await;
    let webhook = hook["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a webhook: {hook}"))
        .to_owned();
    crm_e2e::gateway_as(
        &reqwest::Client::new(),
        &system.public.url(),
        Some(&admin_token),
        "mutation($id: ID!) { pingWebhook(id: $id) { id } }",
        json!({ "id": webhook }),
    )
    .await;
    let facts = json!({
        "webhook": webhook,
        "linkCase": link_case,
        "marketing": "marketing@crm.example",
        "silverDistributor": "distributor2-user@southern-cross.example",
        "reviewArticle": review_article,
        "reviewedWords": "Browser-reviewed: returns need the original packaging.",
        "tieredArticle": tiered_article,
        "visibleContact": visible_contact,
        "visibleName": visible_name,
        "hiddenContact": hidden.0,
        "hiddenName": hidden.1,
        "maskedContact": masked_contact,
        "maskedEmail": masked_email,
        "routeLead": route_lead,
        "demandProduct": demand_product,
        "demandSku": demand_sku,
        "demandOrdered": demand_ordered.parse::<i64>().expect("a count"),
        "openLine": open_line,
        "openLineOrder": open_line_order,
        "conflictName": conflict_name,
        "conflictDomain": conflict_domain,
        "password": crm_identity::DEMO_PASSWORD,
        "sales": "sales@crm.example",
        "admin": "admin@crm.example",
        "supplier": supplier,
        "distributor": distributor,
        "distributorAdmin": "distributor1-admin@northwind.example",
        "supplierOrders": supplier_orders,
        "foreignOrder": foreign,
        "distributorOrder": order,
        "distributorPartner": distributor_partner,
        "shipment": shipment,
        "nextStatus": "OUT_FOR_DELIVERY",
        "tracking": "TRK-BROWSER-7",
        "account": account,
        "support": "support@crm.example",
        "supportCase": support_case,
        "tongaTask": tonga_task,
        "tongaZone": zone_name,
        "timelineAccount": timeline_account,
    });
    let scratch = tempfile::tempdir().expect("temp dir");
    let facts_file = scratch.path().join("facts.json");
    std::fs::write(&facts_file, facts.to_string()).expect("facts");
    let database = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => "postgres",
        _ => "sqlite",
    };
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-reports")
        .join(format!("screenshots-{database}"));
    let url = system.public.url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script_dir.join("run.mjs"))
            .arg(&url)
            .arg(&shots)
            .arg(&facts_file)
            .env("CHROMIUM", chromium())
            .output()
            .expect("node runs the browser script")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    report("browser", &stdout);
    // What the support journey did, by SQL: the case resolved, with one internal and one
    // partner-visible comment more.
    if output.status.success() {
        let status = one(
            &system.databases.account,
            &format!("SELECT status FROM cases WHERE id = '{support_case}'"),
        )
        .await;
        assert_eq!(status, "RESOLVED", "the case support worked");
        // The article support edited: the approved revision is stored whole, with its
        // author and its reviewer, and its words are live.
        let revision = one(
            kb,
            &format!(
                "SELECT CAST(number AS TEXT) || '|' || state || '|' || COALESCE(author_user_id, '') \
                 || '|' || COALESCE(reviewer_user_id, '') FROM article_revisions \
                 WHERE article_id = '{review_article}' ORDER BY number DESC"
            ),
        )
        .await;
        assert_eq!(revision, "2|PUBLISHED|usr_support|usr_marketing");
        let live = one(
            kb,
            &format!("SELECT body FROM articles WHERE id = '{review_article}'"),
        )
        .await;
        assert!(live.contains("Browser-reviewed"), "{live}");
        let visible = column(
            &system.databases.account,
            &format!(
                "SELECT CASE WHEN partner_visible THEN 'yes' ELSE 'no' END FROM case_comments \
                 WHERE case_id = '{support_case}' ORDER BY created_at"
            ),
        )
        .await;
        assert_eq!(visible.len(), comments_before + 2, "{visible:?}");
        assert_eq!(
            visible[comments_before..],
            ["no".to_owned(), "yes".to_owned()]
        );
        let zone = one(
            &system.databases.identity,
            "SELECT time_zone FROM users WHERE email = 'sales@crm.example'",
        )
        .await;
        assert_eq!(zone, zone_name);
        // The deal sales dragged: in its new stage, with the move in its stage history.
        let moved = stdout
            .split_whitespace()
            .skip_while(|w| *w != "moved-deal")
            .skip(1)
            .take(2)
            .collect::<Vec<_>>();
        let [deal, stage] = moved[..] else {
            panic!("the script names the deal it moved: {stdout}");
        };
        let now = one(
            &system.databases.account,
            &format!("SELECT stage FROM opportunities WHERE id = '{deal}'"),
        )
        .await;
        assert_eq!(now, stage);
        let history = column(
            &system.databases.account,
            &format!("SELECT to_stage FROM opportunity_stage_changes WHERE opportunity_id = '{deal}' ORDER BY changed_at"),
        )
        .await;
        assert_eq!(
            history.last().map(String::as_str),
            Some(stage),
            "{history:?}"
        );
        // The records sales created through the forms, and the lead it converted.
        let words_after = |marker: &str, n: usize| -> Vec<String> {
            stdout
                .split_whitespace()
                .skip_while(|w| *w != marker)
                .skip(1)
                .take(n)
                .map(str::to_owned)
                .collect()
        };
        let created = words_after("created-records", 3);
        let [account, contact, deal] = &created[..] else {
            panic!("the script names the records it created: {stdout}");
        };
        let sales_id = one(
            &system.databases.identity,
            "SELECT id FROM users WHERE email = 'sales@crm.example'",
        )
        .await;
        let db = &system.databases.account;
        assert_eq!(
            one(db, &format!("SELECT name || '|' || COALESCE(industry, '') || '|' || COALESCE(owner_user_id, '') FROM accounts WHERE id = '{account}'")).await,
            format!("Browser Works GmbH|Textiles|{sales_id}"),
            "the account, with the value the conflict's second save kept"
        );
        assert_eq!(
            one(db, &format!("SELECT account_id || '|' || COALESCE(email, '') FROM contacts WHERE id = '{contact}'")).await,
            format!("{account}|lena.brandt@browser-works.example")
        );
        assert_eq!(
            one(db, &format!("SELECT account_id || '|' || stage || '|' || CAST(amount_minor AS VARCHAR(20)) FROM opportunities WHERE id = '{deal}'")).await,
            format!("{account}|QUALIFICATION|1200000")
        );
        let converted = words_after("converted-lead", 1);
        let lead = converted
            .first()
            .expect("the script names the lead it converted");
        assert_eq!(
            one(db, &format!("SELECT status || '|' || COALESCE(owner_user_id, '') FROM leads WHERE id = '{lead}'")).await,
            format!("CONVERTED|{sales_id}")
        );
        assert_eq!(
            one(db, &format!("SELECT o.name FROM opportunities o JOIN leads l ON l.converted_opportunity_id = o.id WHERE l.id = '{lead}'")).await,
            "Weber Robotics first order"
        );
        assert_eq!(
            one(db, &format!("SELECT subject FROM interactions WHERE account_id = '{account}' AND author_user_id = '{sales_id}'")).await,
            "Browser call about the pilot"
        );
        // The lead sales routed and the distributor accepted.
        assert_eq!(
            one(db, &format!("SELECT status || '|' || COALESCE(routed_partner_id, '-') || '|' || CASE WHEN accepted_at IS NULL THEN 'waiting' ELSE 'accepted' END FROM leads WHERE id = '{route_lead}'")).await,
            format!("WORKING|{distributor_partner}|accepted")
        );
        // The line the supplier backordered, with its date.
        let backordered = words_after("backordered-line", 2);
        let [line, day] = &backordered[..] else {
            panic!("the script names the line it backordered: {stdout}");
        };
        assert_eq!(
            one(orders, &format!("SELECT status || '|' || CAST(expected_date AS VARCHAR(10)) FROM order_lines WHERE id = '{line}'")).await,
            format!("BACKORDERED|{day}")
        );
        // The distributor's case: two comments of ours (one internal) and its reply.
        let partner_case = words_after("partner-case", 1);
        let partner_case = partner_case.first().expect("the script names its case");
        assert_eq!(
            column(db, &format!("SELECT CASE WHEN partner_visible THEN 'yes' ELSE 'no' END || '|' || COALESCE(author_partner_id, 'us') FROM case_comments WHERE case_id = '{partner_case}' ORDER BY created_at")).await,
            ["no|us".to_owned(), "yes|us".to_owned(), format!("yes|{distributor_partner}")]
        );
        // The registration sales approved: attributed to the distributor for 60 days on a
        // new deal; the colliding one still waits for review.
        let registered = words_after("registered-deals", 2);
        let [clean, colliding] = &registered[..] else {
            panic!("the script names the registrations: {stdout}");
        };
        assert_eq!(
            one(db, &format!("SELECT r.status || '|' || o.partner_id || '|' || COALESCE(o.registration_id, '') FROM deal_registrations r JOIN opportunities o ON o.id = r.opportunity_id WHERE r.id = '{clean}'")).await,
            format!("APPROVED|{distributor_partner}|{clean}")
        );
        assert_eq!(
            one(
                db,
                &format!("SELECT status FROM deal_registrations WHERE id = '{colliding}'")
            )
            .await,
            "SUBMITTED"
        );
        // The forecast page's weighted totals: Σ amount × probability over what sales
        // reads (every opportunity), closing this year or next, per currency.
        let year = chrono::Datelike::year(&chrono::Utc::now());
        let totals = stdout
            .split_whitespace()
            .skip_while(|w| *w != "forecast-weighted")
            .skip(1)
            .take_while(|w| w.contains('='))
            .map(|w| w.split_once('=').expect("currency=amount"))
            .collect::<Vec<_>>();
        assert!(!totals.is_empty(), "{stdout}");
        for (currency, shown) in totals {
            let sql = one(
                &system.databases.account,
                &format!(
                    "SELECT CAST(CAST(SUM(amount_minor * probability) AS BIGINT) AS VARCHAR(40)) FROM opportunities \
                     WHERE archived_at IS NULL AND currency = '{currency}' \
                     AND expected_close >= '{year}-01-01' AND expected_close <= '{}-12-31'",
                    year + 1
                ),
            )
            .await;
            // Σ amount (minor units) × probability (percent), rounded once like the API.
            let minor: i64 = sql.parse::<i64>().expect("a sum") / 100;
            assert_eq!(
                shown,
                format!("{}.{:02}", minor / 100, minor % 100),
                "weighted {currency}"
            );
        }
    }
    finish(system, created).await;
    assert!(
        output.status.success(),
        "browser checks failed:\n{stdout}\n{stderr}"
    );
}
