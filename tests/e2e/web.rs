//! The web UI and partner portal over HTTP: every route for every persona (status, key
//! content, and nothing from outside the persona's slice), the dashboard against SQL over
//! the seeded world, sessions (CSRF, cookies, sign-out, idle expiry), forms that show the
//! API's field errors, a distributor's shipment update seen by staff, invitations and
//! deactivation, saved views. The pages run on the real system started on port 0.

use std::collections::{BTreeMap, BTreeSet};

use crm_e2e::{finish, report, system_with_settings};
use crm_system::{AllInOne, GatewaySettings};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

const PASSWORD: &str = crm_identity::DEMO_PASSWORD;

/// A browser without JavaScript: keeps cookies, does not follow redirects.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    /// Every `Set-Cookie` the server sent, as sent.
    set_cookies: Vec<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    html: String,
}

impl Visitor {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
            set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn take(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().expect("cookie").to_owned();
            let pair = text.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
            self.set_cookies.push(text);
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let html = response.text().await.expect("body");
        assert_clean(&html);
        Page {
            status,
            location,
            html,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("get");
        self.take(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("post");
        self.take(response).await
    }

    /// Signs in through the form; returns where it landed.
    async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/signin").await;
        let csrf = csrf_of(&form.html);
        self.post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
                ("next", ""),
            ],
        )
        .await
    }

    /// A page that must answer 200.
    async fn ok(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(
            page.status, 200,
            "GET {path}: {:?}\n{}",
            page.location, page.html
        );
        page.html
    }

    /// Every `data-id` of a list, following its "Next page" links.
    async fn all_ids(&mut self, path: &str, prefix: &str) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        let mut next = Some(path.to_owned());
        let mut walked = BTreeSet::new();
        // An `&` in an attribute is escaped as `&amp;` or `&#38;`.
        let unescape = |h: &str| h.replace("&amp;", "&").replace("&#38;", "&");
        while let Some(path) = next {
            assert!(walked.insert(path.clone()), "the pages of {path} loop");
            let html = self.ok(&path).await;
            ids.extend(data_ids(&html, prefix));
            next = attr_after(&html, "rel=\"next\"", "href").map(|h| unescape(&h));
            if next.is_none() {
                // The link is written `<a href="…" rel="next">`.
                next = html.find("rel=\"next\"").and_then(|at| {
                    let start = html[..at].rfind("href=\"")? + 6;
                    let end = start + html[start..].find('"')?;
                    Some(unescape(&html[start..end]))
                });
            }
        }
        ids
    }
}

/// No page ever shows a stack trace, a panic or a database message.
fn assert_clean(html: &str) {
    for needle in [
        "panicked",
        "stack backtrace",
        "SQLSTATE",
        "sqlx",
        "DbErr",
        "relation \"",
    ] {
        assert!(!html.contains(needle), "a page shows {needle:?}:\n{html}");
    }
}

/// A page parsed as HTML: negative checks ask about elements and the text a person reads,
/// never about substrings of the markup (which an attribute or a hidden field could hold).
struct Parsed {
    elements: Vec<Element>,
}

struct Element {
    tag: String,
    attributes: BTreeMap<String, String>,
    text: String,
}

impl Parsed {
    fn of(html: &str) -> Self {
        let dom = tl::parse(html, tl::ParserOptions::default()).expect("the page parses as HTML");
        let parser = dom.parser();
        let elements = dom
            .nodes()
            .iter()
            .filter_map(|node| node.as_tag())
            .map(|tag| Element {
                tag: tag.name().as_utf8_str().to_ascii_lowercase(),
                attributes: tag
                    .attributes()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.into_owned(),
                            v.map(|v| v.into_owned()).unwrap_or_default(),
                        )
                    })
                    .collect(),
                text: tag
                    .inner_text(parser)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect();
        Parsed { elements }
    }

    /// The text of every `tag` element.
    fn texts(&self, tag: &str) -> Vec<&str> {
        self.elements
            .iter()
            .filter(|e| e.tag == tag)
            .map(|e| e.text.as_str())
            .collect()
    }

    /// Whether a `tag` element reads exactly `text`.
    fn has(&self, tag: &str, text: &str) -> bool {
        self.texts(tag).contains(&text)
    }

    /// The values of `attribute` on every `tag` element.
    fn attribute_values(&self, tag: &str, attribute: &str) -> BTreeSet<&str> {
        self.elements
            .iter()
            .filter(|e| e.tag == tag)
            .filter_map(|e| e.attributes.get(attribute).map(String::as_str))
            .collect()
    }

    /// The elements carrying `attribute="value"`.
    fn with_attribute(&self, attribute: &str, value: &str) -> usize {
        self.elements
            .iter()
            .filter(|e| e.attributes.get(attribute).is_some_and(|v| v == value))
            .count()
    }

    /// What a person reads on the page (the body's text).
    fn reads(&self, text: &str) -> bool {
        self.texts("body").iter().any(|body| body.contains(text))
    }
}

fn csrf_of(html: &str) -> String {
    attr_after(html, "name=\"csrf\"", "value").expect("a csrf field")
}

/// The value of `attr` in the tag that contains `marker`.
fn attr_after(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let key = format!("{attr}=\"");
    let start = tag.find(&key)? + key.len();
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].to_owned())
}

/// Every `data-id="<prefix>…"` on a page.
fn data_ids(html: &str, prefix: &str) -> BTreeSet<String> {
    let key = format!("data-id=\"{prefix}");
    html.match_indices(&key)
        .filter_map(|(at, _)| {
            let start = at + "data-id=\"".len();
            let end = start + html[start..].find('"')?;
            Some(html[start..end].to_owned())
        })
        .collect()
}

/// The text of the element carrying `data-metric="<key>"`.
fn metric(html: &str, key: &str) -> i64 {
    let marker = format!("data-metric=\"{key}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no metric {key}"))
        + marker.len();
    let end = start + html[start..].find('<').expect("end");
    html[start..end]
        .replace(',', "")
        .trim()
        .parse()
        .expect("a number")
}

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .expect("sql")
}

async fn strings(db: &DatabaseConnection, sql: &str) -> BTreeSet<String> {
    rows(db, sql)
        .await
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("text"))
        .collect()
}

async fn counts(db: &DatabaseConnection, sql: &str) -> BTreeMap<String, i64> {
    rows(db, sql)
        .await
        .iter()
        .map(|r| {
            (
                r.try_get_by_index::<String>(0).expect("key"),
                r.try_get_by_index::<i64>(1).expect("count"),
            )
        })
        .collect()
}

async fn partner_id(system: &AllInOne, email: &str) -> String {
    strings(
        &system.databases.identity,
        &format!("SELECT partner_id FROM users WHERE email = '{email}'"),
    )
    .await
    .into_iter()
    .next()
    .expect("partner user")
}

/// The orders a supplier may see, by SQL: those with a line (in force) of its products.
async fn supplier_orders(system: &AllInOne, partner: &str) -> BTreeSet<String> {
    strings(
        &system.databases.order_visibility,
        &format!(
            "SELECT DISTINCT o.id FROM orders o JOIN order_lines l ON l.order_id = o.id \
             JOIN products p ON p.id = l.product_id WHERE o.archived_at IS NULL \
             AND l.archived_at IS NULL AND p.supplier_partner_id = '{partner}'"
        ),
    )
    .await
}

async fn system() -> (AllInOne, tempfile::TempDir, Option<String>) {
    system_with_settings(60, GatewaySettings::default()).await
}

const SUPPLIER: &str = "supplier1-user@acme-components.example";
const SUPPLIER_ADMIN: &str = "supplier1-admin@acme-components.example";
const OTHER_SUPPLIER: &str = "supplier2-user@borealis.example";
const DISTRIBUTOR: &str = "distributor1-user@northwind.example";
const DISTRIBUTOR_ADMIN: &str = "distributor1-admin@northwind.example";

/// Every app page for the five departments (admin pages only for the admin), and every page sends an anonymous visitor to sign in.
#[tokio::test]
async fn every_app_route_answers_every_department_within_its_slice() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let mut checked = 0;

    // Internal departments: every app page; admin pages only for the admin.
    let admin_only = [
        "/app/admin",
        "/app/admin/partners",
        "/app/admin/users",
        "/app/admin/api-keys",
        "/app/admin/policy",
        "/app/privacy",
    ];
    for persona in ["admin", "management", "sales", "marketing", "support"] {
        let mut visitor = Visitor::new(&url);
        let landed = visitor
            .sign_in(&format!("{persona}@crm.example"), PASSWORD)
            .await;
        assert_eq!(landed.status, 303, "{persona}: {}", landed.html);
        assert_eq!(landed.location.as_deref(), Some("/app"), "{persona}");
        let dashboard = visitor.ok("/app").await;
        assert!(dashboard.contains("Pipeline by stage"), "{persona}");
        let accounts = visitor.ok("/app/accounts").await;
        let account = data_ids(&accounts, "acc_")
            .into_iter()
            .next()
            .expect("an account");
        let page = visitor.ok(&format!("/app/accounts/{account}")).await;
        assert!(page.contains("Contacts") && page.contains("Related articles"));
        let orders = visitor.ok("/app/orders").await;
        if persona == "marketing" {
            // The policy denies marketing every order: the page says so, it shows none.
            assert!(
                data_ids(&orders, "ord_").is_empty(),
                "marketing sees orders"
            );
            assert!(orders.contains("No orders match"));
        } else {
            let order = data_ids(&orders, "ord_")
                .into_iter()
                .next()
                .expect("an order");
            let detail = visitor.ok(&format!("/app/orders/{order}")).await;
            assert!(detail.contains("Lines") && detail.contains("Shipments"));
        }
        let kb = visitor.ok("/app/kb").await;
        let article = data_ids(&kb, "art_")
            .into_iter()
            .next()
            .expect("an article");
        visitor.ok(&format!("/app/kb/{article}")).await;
        for path in admin_only {
            let page = visitor.get(path).await;
            let expected = if persona == "admin" { 200 } else { 403 };
            assert_eq!(page.status, expected, "{persona} {path}");
        }
        // The audit log: administrators and management.
        let audit = visitor.get("/app/audit").await;
        let audits = ["admin", "management"].contains(&persona);
        assert_eq!(audit.status, if audits { 200 } else { 403 }, "{persona}");
        let sharing = visitor.get("/app/admin/shares").await;
        let shares = ["admin", "management", "sales"].contains(&persona);
        assert_eq!(sharing.status, if shares { 200 } else { 403 }, "{persona}");
        let writes = ["admin", "marketing", "support"].contains(&persona);
        assert_eq!(
            visitor.get("/app/kb/new").await.status,
            if writes { 200 } else { 403 }
        );
        // Staff never enter the portal: they are sent home.
        let portal = visitor.get("/portal/orders").await;
        assert_eq!(portal.location.as_deref(), Some("/app"), "{persona}");
        checked += 1;
    }

    // Nobody signed in: every page sends to the sign-in page, and comes back after it.
    let mut anonymous = Visitor::new(&url);
    for path in [
        "/app",
        "/app/accounts",
        "/portal",
        "/portal/orders",
        "/app/admin/policy",
    ] {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(
            page.location
                .as_deref()
                .is_some_and(|l| l.starts_with("/signin?next=")),
            "{path}: {:?}",
            page.location
        );
    }
    report(
        "web-pages-staff",
        &format!("personas checked: {checked} (5 internal)\n"),
    );
    finish(system, created).await;
}

/// Each partner user's lists equal its slice by SQL, and the app is out of its reach.
#[tokio::test]
async fn every_portal_route_answers_every_partner_within_its_slice() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    // Share rows follow order events asynchronously; the slices below are complete only
    // once they have caught up.
    system
        .settle_shares(std::time::Duration::from_secs(30))
        .await
        .expect("share rows settle");
    let mut checked = 0;

    // Partners: each list equals its slice by SQL, and the app is out of reach.
    for (email, kind) in [
        (SUPPLIER, "supplier"),
        (SUPPLIER_ADMIN, "supplier"),
        (DISTRIBUTOR, "distributor"),
        (DISTRIBUTOR_ADMIN, "distributor"),
    ] {
        let partner = partner_id(&system, email).await;
        let mut visitor = Visitor::new(&url);
        let landed = visitor.sign_in(email, PASSWORD).await;
        assert_eq!(landed.location.as_deref(), Some("/portal"), "{email}");
        let home = visitor.ok("/portal").await;
        assert!(home.contains("What you can see and why"));
        assert!(home.contains("Orders: you see orders"), "{email}: {home}");
        let seen = visitor.all_ids("/portal/orders", "ord_").await;
        let expected = if kind == "supplier" {
            supplier_orders(&system, &partner).await
        } else {
            strings(
                &system.databases.order_visibility,
                &format!(
                    "SELECT id FROM orders WHERE archived_at IS NULL AND fulfilling_distributor_id = '{partner}'"
                ),
            )
            .await
        };
        assert!(!expected.is_empty(), "{email} has orders in the demo world");
        assert_eq!(seen, expected, "{email}: the portal's orders are its slice");
        // Its export: the same orders (a supplier's without totals).
        let csv = visitor.get("/portal/orders.csv").await;
        assert_eq!(csv.status, 200, "{email}: {}", csv.html);
        let mut reader = csv::Reader::from_reader(csv.html.as_bytes());
        let header = reader.headers().expect("a header").clone();
        let id_at = header.iter().position(|c| c == "id").expect("an id column");
        let total_at = header.iter().position(|c| c == "total.amount");
        let mut exported = BTreeSet::new();
        for record in reader.records() {
            let record = record.expect("a CSV row");
            if kind == "supplier" {
                let total = total_at.and_then(|at| record.get(at)).unwrap_or_default();
                assert_eq!(total, "", "{email}: a total in {record:?}");
            }
            exported.insert(record[id_at].to_owned());
        }
        assert_eq!(exported, expected, "{email}: the portal's order export");
        if kind == "supplier" {
            // A supplier sees the accounts that ordered its products, and nothing else.
            let accounts = visitor.all_ids("/portal/accounts", "acc_").await;
            let buyers = strings(
                &system.databases.order_visibility,
                &format!(
                    "SELECT DISTINCT o.account_id FROM orders o JOIN order_lines l ON l.order_id = o.id \
                     JOIN products p ON p.id = l.product_id WHERE o.archived_at IS NULL \
                     AND l.archived_at IS NULL AND p.supplier_partner_id = '{partner}'"
                ),
            )
            .await;
            assert_eq!(accounts, buyers, "{email}: the portal's accounts");
            // The list's "Export these as CSV": the same accounts, every page of them,
            // with the masked domain empty.
            let page = visitor.ok("/portal/accounts").await;
            let link = attr_after(&page, "data-export", "href")
                .or_else(|| attr_after(&page, "Export these", "href"))
                .map(|h| h.replace("&amp;", "&").replace("&#38;", "&"));
            assert!(
                page.contains("data-export") && page.contains("/portal/accounts.csv"),
                "{email}: the list links its export"
            );
            let csv = visitor.get("/portal/accounts.csv").await;
            assert_eq!(csv.status, 200, "{email}: {link:?} {}", csv.html);
            let mut reader = csv::Reader::from_reader(csv.html.as_bytes());
            let header = reader.headers().expect("a header").clone();
            let id_at = header.iter().position(|c| c == "id").expect("an id column");
            let domain_at = header
                .iter()
                .position(|c| c == "domain")
                .expect("a domain column");
            let mut exported = BTreeSet::new();
            for record in reader.records() {
                let record = record.expect("a CSV row");
                assert_eq!(
                    record.get(domain_at),
                    Some(""),
                    "{email}: a domain in {record:?}"
                );
                exported.insert(record[id_at].to_owned());
            }
            assert_eq!(exported, buyers, "{email}: the portal's export");
            let page = visitor.ok("/portal/accounts").await;
            // Tier and lifecycle are denied to suppliers: no such column, no such filter;
            // nor its accounts' history: no update time to read or sort by.
            let parsed = Parsed::of(&page);
            for header in ["Tier", "Lifecycle", "Updated"] {
                assert!(!parsed.has("th", header), "{email}: a {header} column");
            }
            let filters = parsed.attribute_values("select", "name");
            assert!(!filters.contains("tier") && !filters.contains("lifecycleStage"));
            assert!(
                !parsed
                    .attribute_values("option", "value")
                    .contains("UPDATED_AT")
            );
        } else {
            let page = visitor.ok("/portal/accounts").await;
            assert!(!data_ids(&page, "acc_").is_empty(), "{email} sees accounts");
            let parsed = Parsed::of(&page);
            assert!(
                parsed.has("th", "Tier") && parsed.has("th", "Updated"),
                "{email}"
            );
            assert!(
                parsed
                    .attribute_values("select", "name")
                    .contains("segment")
            );
        }
        let order = seen.iter().next().expect("an order").clone();
        let detail = visitor.ok(&format!("/portal/orders/{order}")).await;
        assert!(detail.contains("Shipments"));
        if kind == "supplier" {
            // Its own lines only, and no prices.
            let own_lines = strings(
                &system.databases.order_visibility,
                &format!(
                    "SELECT l.id FROM order_lines l JOIN products p ON p.id = l.product_id \
                     WHERE l.order_id = '{order}' AND l.archived_at IS NULL \
                     AND p.supplier_partner_id = '{partner}'"
                ),
            )
            .await;
            let table = &detail[detail.find("data-list=\"lines\"").expect("lines")..];
            let table = &table[..table.find("</table>").expect("end")];
            assert_eq!(
                table.matches("<tr>").count() - 1,
                own_lines.len(),
                "{email}: the order shows exactly the supplier's own lines"
            );
            let parsed = Parsed::of(&detail);
            assert!(!parsed.has("th", "Unit price"), "{email} sees prices");
            assert!(!parsed.has("button", "Update shipment"));
        } else {
            assert!(Parsed::of(&detail).has("th", "Unit price"));
        }
        let kb = visitor.ok("/portal/kb").await;
        let articles = data_ids(&kb, "art_");
        for article in &articles {
            visitor.ok(&format!("/portal/kb/{article}")).await;
        }
        let users = visitor.get("/portal/users").await;
        let admin = email.contains("-admin@");
        assert_eq!(users.status, if admin { 200 } else { 403 }, "{email}");
        if admin {
            // Only its own organisation's people.
            assert!(
                !Parsed::of(&users.html)
                    .texts("td")
                    .iter()
                    .any(|t| t.contains("@crm.example")),
                "{email} sees staff"
            );
            let domain = email.split('@').nth(1).expect("domain");
            for row in users.html.split("<tr data-id=").skip(1) {
                assert!(
                    row.contains(domain),
                    "{email} sees another organisation's user"
                );
            }
        }
        for path in ["/app", "/app/accounts", "/app/orders/x", "/app/admin"] {
            let page = visitor.get(path).await;
            assert_eq!(page.location.as_deref(), Some("/portal"), "{email} {path}");
        }
        checked += 1;
    }
    report(
        "web-pages-partners",
        &format!("personas checked: {checked} (4 partner)\n"),
    );
    finish(system, created).await;
}

#[tokio::test]
async fn dashboard_figures_equal_sql_over_the_seeded_world() {
    let (system, _dir, created) = system().await;
    let mut visitor = Visitor::new(&system.public.url());
    visitor.sign_in("admin@crm.example", PASSWORD).await;
    let html = visitor.ok("/app").await;
    let account_db = &system.databases.account;
    let order_db = &system.databases.order_visibility;
    let accounts = counts(
        account_db,
        "SELECT 'all', COUNT(*) FROM accounts WHERE archived_at IS NULL",
    )
    .await;
    assert_eq!(metric(&html, "accounts"), accounts["all"]);
    let stages = counts(
        account_db,
        "SELECT stage, COUNT(*) FROM opportunities WHERE archived_at IS NULL GROUP BY stage",
    )
    .await;
    let open = counts(
        account_db,
        "SELECT 'open', COUNT(*) FROM opportunities WHERE archived_at IS NULL \
         AND stage NOT IN ('CLOSED_WON', 'CLOSED_LOST')",
    )
    .await;
    assert_eq!(metric(&html, "open-opportunities"), open["open"]);
    let mut compared = 0;
    for stage in [
        "PROSPECTING",
        "QUALIFICATION",
        "PROPOSAL",
        "NEGOTIATION",
        "CLOSED_WON",
        "CLOSED_LOST",
    ] {
        let expected = stages.get(stage).copied().unwrap_or(0);
        assert_eq!(
            metric(&html, &format!("stage-{stage}")),
            expected,
            "{stage}"
        );
        compared += 1;
    }
    let statuses = counts(
        order_db,
        "SELECT status, COUNT(*) FROM orders WHERE archived_at IS NULL GROUP BY status",
    )
    .await;
    assert!(statuses.values().sum::<i64>() > 0);
    for (status, expected) in &statuses {
        assert_eq!(
            metric(&html, &format!("status-{status}")),
            *expected,
            "{status}"
        );
        compared += 1;
    }
    // The newest interactions, in order.
    let recent: Vec<String> = rows(
        account_db,
        "SELECT id FROM interactions WHERE archived_at IS NULL ORDER BY occurred_at DESC, id DESC LIMIT 8",
    )
    .await
    .iter()
    .map(|r| r.try_get_by_index::<String>(0).expect("id"))
    .collect();
    let list_start = html
        .find("data-list=\"recent-interactions\"")
        .expect("recent list");
    let shown: Vec<String> = html[list_start..]
        .match_indices("data-id=\"")
        .take(8)
        .map(|(at, _)| {
            let start = list_start + at + 9;
            html[start..start + html[start..].find('"').expect("end")].to_owned()
        })
        .collect();
    assert_eq!(shown.len(), recent.len());
    assert_eq!(
        shown.iter().collect::<BTreeSet<_>>(),
        recent.iter().collect::<BTreeSet<_>>(),
        "the dashboard's recent interactions are the newest by SQL"
    );
    report(
        "web-dashboard",
        &format!(
            "dashboard figures compared with SQL: {} (+ accounts, open opportunities, 8 recent interactions)\n",
            compared
        ),
    );
    finish(system, created).await;
}

/// Sign-in: a wrong password and a forged form refused, the cookie flags, `next`, the protective headers, a form with a wrong CSRF token, and sign-out.
#[tokio::test]
async fn sign_in_refuses_forgery_keeps_safe_cookies_and_sign_out_ends_the_session() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();

    // A wrong password: a clear message, no session.
    let mut visitor = Visitor::new(&url);
    let refused = visitor.sign_in("sales@crm.example", "wrong password").await;
    assert_eq!(refused.status, 401);
    assert!(refused.html.contains("role=\"alert\""));
    assert!(!visitor.cookies.contains_key("crm_session"));

    // A sign-in form posted without its CSRF secret is refused.
    let mut forged = Visitor::new(&url);
    let page = forged
        .post(
            "/signin",
            &[
                ("email", "sales@crm.example"),
                ("password", PASSWORD),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(!forged.cookies.contains_key("crm_session"));

    // The session cookie: HttpOnly, SameSite, path /; `next` brings the user back.
    let mut visitor = Visitor::new(&url);
    let first = visitor.get("/app/orders").await;
    let next = first.location.expect("to sign in");
    let form = visitor.get(&next).await;
    let csrf = csrf_of(&form.html);
    let landed = visitor
        .post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", "sales@crm.example"),
                ("password", PASSWORD),
                ("next", "/app/orders"),
            ],
        )
        .await;
    assert_eq!(
        landed.location.as_deref(),
        Some("/app/orders"),
        "{} {}",
        landed.status,
        landed.html
    );
    let cookie = visitor
        .set_cookies
        .iter()
        .find(|c| c.starts_with("crm_session="))
        .expect("session cookie")
        .clone();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: not Secure");
    // `next` never leaves the site.
    let mut elsewhere = Visitor::new(&url);
    let form = elsewhere.get("/signin").await;
    let csrf = csrf_of(&form.html);
    let landed = elsewhere
        .post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", "sales@crm.example"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(landed.location.as_deref(), Some("/app"));

    // Every page answers with protective headers.
    let response = reqwest::Client::new()
        .get(format!("{url}/signin"))
        .send()
        .await
        .expect("get");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(response.headers()["cache-control"], "no-store");

    // A form posted with a wrong CSRF token changes nothing.
    let saved = visitor
        .post(
            "/app/views",
            &[
                ("csrf", "forged"),
                ("page", "accounts"),
                ("name", "Forged"),
                ("query", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, 403);
    assert!(!Parsed::of(&visitor.ok("/app/accounts").await).reads("Forged"));

    // Sign-out ends the session: the old cookie no longer opens a page.
    let stolen = visitor.cookies.clone();
    let html = visitor.ok("/app").await;
    let out = visitor.post("/signout", &[("csrf", &csrf_of(&html))]).await;
    assert_eq!(out.status, 303);
    let mut replay = Visitor::new(&url);
    replay.cookies = stolen;
    let page = replay.get("/app").await;
    assert!(
        page.location
            .as_deref()
            .is_some_and(|l| l.starts_with("/signin"))
    );
    finish(system, created).await;
}

/// Behind a TLS proxy the cookie is `__Host-` and `Secure`.
#[tokio::test]
async fn over_tls_the_session_cookie_is_secure_and_host_only() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    // Over TLS (a proxy says so), the cookie is Secure and host-only.
    let mut tls = Visitor::new(&url);
    let form = tls
        .http
        .get(format!("{url}/signin"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("get");
    let form = tls.take(form).await;
    let csrf = csrf_of(&form.html);
    let response = tls
        .http
        .post(format!("{url}/signin"))
        .header("x-forwarded-proto", "https")
        .header("cookie", tls.cookie_header())
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "sales@crm.example"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("post");
    tls.take(response).await;
    let secure = tls
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-crm_session="))
        .expect("a __Host- cookie over TLS");
    assert!(secure.contains("Secure"));
    finish(system, created).await;
}

/// A session idle for longer than the limit ends.
#[tokio::test]
async fn an_idle_session_ends() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    // Idle for longer than the limit: signed out.
    let mut idle = Visitor::new(&url);
    idle.sign_in("support@crm.example", PASSWORD).await;
    idle.ok("/app").await;
    system
        .databases
        .identity
        .execute_unprepared(&format!(
            "UPDATE web_sessions SET last_seen_at = '{}' WHERE user_id = 'usr_support'",
            (chrono::Utc::now() - chrono::Duration::minutes(31)).format("%Y-%m-%d %H:%M:%S%:z")
        ))
        .await
        .expect("age the session");
    let page = idle.get("/app").await;
    assert!(
        page.location
            .as_deref()
            .is_some_and(|l| l.starts_with("/signin")),
        "an idle session ends"
    );
    finish(system, created).await;
}

/// An expired access token is renewed once for two pages at once; a form sent after the session ended says nothing was saved.
#[tokio::test]
async fn an_expired_token_is_renewed_once_and_a_late_form_says_nothing_was_saved() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    // An expired access token is renewed with the refresh token, invisibly.
    let mut renewed = Visitor::new(&url);
    renewed.sign_in("management@crm.example", PASSWORD).await;
    system
        .databases
        .identity
        .execute_unprepared(&format!(
            "UPDATE web_sessions SET access_expires_at = '{}' WHERE user_id = 'usr_management'",
            (chrono::Utc::now() - chrono::Duration::minutes(1)).format("%Y-%m-%d %H:%M:%S%:z")
        ))
        .await
        .expect("expire the token");
    // Two pages at once with an expired token: one renewal, both pages served, and the
    // session lives on.
    let (a, b) = tokio::join!(
        renewed
            .http
            .get(format!("{url}/app/accounts"))
            .header("cookie", renewed.cookie_header())
            .send(),
        renewed
            .http
            .get(format!("{url}/app/orders"))
            .header("cookie", renewed.cookie_header())
            .send(),
    );
    assert_eq!(a.expect("a").status(), 200);
    assert_eq!(b.expect("b").status(), 200);
    renewed.ok("/app/accounts").await;
    // A form sent after the session ended is not redirected away (that would drop what
    // was typed): the page says the session ended and nothing was saved.
    let html = renewed.ok("/app").await;
    system
        .databases
        .identity
        .execute_unprepared("DELETE FROM web_sessions WHERE user_id = 'usr_management'")
        .await
        .expect("end the session");
    let late = renewed
        .post(
            "/app/views",
            &[
                ("csrf", &csrf_of(&html)),
                ("page", "accounts"),
                ("name", "x"),
                ("query", ""),
            ],
        )
        .await;
    assert_eq!(late.status, 401);
    assert!(late.html.contains("nothing was saved"));
    finish(system, created).await;
}

#[tokio::test]
async fn partners_never_reach_another_partners_records() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let mine = supplier_orders(&system, &partner_id(&system, SUPPLIER).await).await;
    let theirs = supplier_orders(&system, &partner_id(&system, OTHER_SUPPLIER).await).await;
    let foreign: Vec<&String> = theirs.difference(&mine).collect();
    assert!(
        !foreign.is_empty(),
        "the demo world has orders of supplier 2 only"
    );
    let mut visitor = Visitor::new(&url);
    visitor.sign_in(SUPPLIER, PASSWORD).await;
    let mut refused = 0;
    for order in foreign.iter().take(5) {
        let page = visitor.get(&format!("/portal/orders/{order}")).await;
        assert_eq!(page.status, 404, "{order}");
        assert!(page.html.contains("Not found"));
        refused += 1;
    }
    // Made-up and hostile ids read the same as another partner's.
    for path in [
        "/portal/orders/ord_doesnotexist",
        "/portal/orders/%27%20OR%201=1",
        "/portal/kb/..%2F..%2Fetc",
        "/portal/kb/art_doesnotexist",
    ] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, 404, "{path}");
    }
    // Hostile list parameters: a forged cursor is a clear 400, unknown values are ignored,
    // markup is escaped, oversized input is cut, and fields denied to suppliers are not
    // filtered by.
    let page = visitor.get("/portal/orders?after=forged-cursor").await;
    assert_eq!(page.status, 400);
    assert!(page.html.contains("Not a valid request"));
    let page = visitor
        .get("/portal/orders?status=NOPE&sort=TOTAL&dir=sideways")
        .await;
    assert_eq!(page.status, 200);
    let long = "x".repeat(5000);
    let page = visitor
        .get(&format!(
            "/portal/accounts?tier=KEY&lifecycle=CUSTOMER&q={long}"
        ))
        .await;
    assert_eq!(page.status, 200);
    let page = visitor
        .get("/portal/kb?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.html.contains("<script>alert(1)"));
    assert!(page.html.contains("&#60;script&#62;"));
    // An internal article's URL is not found for a partner.
    let internal = strings(
        &system.databases.knowledge_base,
        "SELECT id FROM articles WHERE audiences NOT LIKE '%SUPPLIER%' AND audiences NOT LIKE '%PUBLIC%' \
         AND archived_at IS NULL",
    )
    .await;
    if let Some(article) = internal.iter().next() {
        assert_eq!(
            visitor.get(&format!("/portal/kb/{article}")).await.status,
            404
        );
    }
    report(
        "web-isolation",
        &format!("another supplier's order URLs refused as not found: {refused}\n"),
    );
    finish(system, created).await;
}

#[tokio::test]
async fn a_distributor_updates_a_shipment_and_staff_see_it() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let partner = partner_id(&system, DISTRIBUTOR).await;
    let open = rows(
        &system.databases.order_visibility,
        &format!(
            "SELECT s.id, s.order_id, s.status FROM shipments s JOIN orders o ON o.id = s.order_id \
             WHERE o.fulfilling_distributor_id = '{partner}' AND s.archived_at IS NULL \
             AND s.status IN ('LABEL_CREATED', 'IN_TRANSIT') ORDER BY s.id"
        ),
    )
    .await;
    let row = open.first().expect("a shipment still on its way");
    let shipment: String = row.try_get_by_index(0).expect("id");
    let order: String = row.try_get_by_index(1).expect("order");
    let status: String = row.try_get_by_index(2).expect("status");
    let (next, next_words) = if status == "LABEL_CREATED" {
        ("IN_TRANSIT", "In transit")
    } else {
        ("OUT_FOR_DELIVERY", "Out for delivery")
    };
    let mut distributor = Visitor::new(&url);
    distributor.sign_in(DISTRIBUTOR, PASSWORD).await;
    let html = distributor.ok(&format!("/portal/orders/{order}")).await;
    assert!(html.contains("Update shipment"));
    let csrf = csrf_of(&html);
    let version = attr_after(
        &html[html
            .find(&format!("/portal/shipments/{shipment}"))
            .expect("form")..],
        "name=\"version\"",
        "value",
    )
    .expect("version");

    // A status the shipment cannot move to: the API's error next to the field, no change.
    let refused = distributor
        .post(
            &format!("/portal/shipments/{shipment}"),
            &[
                ("csrf", &csrf),
                ("order", &order),
                ("version", &version),
                ("status", "RETURNED_TO_SENDER"),
                ("tracking", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.html.contains("class=\"error\"") || refused.html.contains("field-error"));

    let tracking = "TRK-UI-TEST-42";
    let done = distributor
        .post(
            &format!("/portal/shipments/{shipment}"),
            &[
                ("csrf", &csrf),
                ("order", &order),
                ("version", &version),
                ("status", next),
                ("tracking", tracking),
                ("location", "Rotterdam hub"),
                ("note", "driver assigned"),
            ],
        )
        .await;
    assert_eq!(
        done.status,
        303,
        "{}",
        &done.html[done.html.find("<main").unwrap_or(0)..]
    );
    let back = distributor
        .ok(done.location.as_deref().expect("back"))
        .await;
    assert!(back.contains("Shipment updated"));
    // The notice shows once, and no link can write one.
    let again = distributor
        .ok(done.location.as_deref().expect("back"))
        .await;
    assert!(!Parsed::of(&again).reads("Shipment updated"));
    let forged = distributor
        .ok(&format!("/portal/orders/{order}?done=Call+us+at+555"))
        .await;
    assert!(!Parsed::of(&forged).reads("Call us"));

    let mut sales = Visitor::new(&url);
    sales.sign_in("sales@crm.example", PASSWORD).await;
    let seen = sales.ok(&format!("/app/orders/{order}")).await;
    assert!(seen.contains(tracking), "staff see the new tracking number");
    assert!(seen.contains(next_words) && seen.contains("Rotterdam hub"));
    // A supplier cannot post the distributor's form.
    let mut supplier = Visitor::new(&url);
    supplier.sign_in(SUPPLIER, PASSWORD).await;
    let html = supplier.ok("/portal").await;
    let page = supplier
        .post(
            &format!("/portal/shipments/{shipment}"),
            &[
                ("csrf", &csrf_of(&html)),
                ("order", &order),
                ("version", "99"),
                ("status", "DELIVERED"),
                ("tracking", "HIJACK"),
            ],
        )
        .await;
    assert!(
        page.status >= 400,
        "a supplier changed a shipment: {}",
        page.status
    );
    assert!(
        !sales
            .ok(&format!("/app/orders/{order}"))
            .await
            .contains("HIJACK")
    );
    finish(system, created).await;
}

#[tokio::test]
async fn forms_show_the_apis_field_errors_and_keep_what_was_typed() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let mut marketing = Visitor::new(&url);
    marketing.sign_in("marketing@crm.example", PASSWORD).await;
    let form = marketing.ok("/app/kb/new").await;
    let csrf = csrf_of(&form);
    let refused = marketing
        .post(
            "/app/kb/new",
            &[
                ("csrf", &csrf),
                ("title", ""),
                ("body", "Typed text that must survive"),
                ("audience", "INTERNAL"),
                ("status", "DRAFT"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(
        refused.html.contains("id=\"title-error\""),
        "{}",
        refused.html
    );
    assert!(refused.html.contains("Typed text that must survive"));
    let created_page = marketing
        .post(
            "/app/kb/new",
            &[
                ("csrf", &csrf),
                ("title", "Returns for damaged goods"),
                ("body", "How to file a return."),
                ("audience", "INTERNAL"),
                ("audience", "DISTRIBUTOR"),
                ("tags", "returns, logistics"),
                ("status", "DRAFT"),
            ],
        )
        .await;
    assert_eq!(created_page.status, 303, "{}", created_page.html);
    let article = marketing
        .ok(created_page.location.as_deref().expect("article"))
        .await;
    assert!(article.contains("Returns for damaged goods") && article.contains("Distributor"));

    // Two people edit the same article: the second save is refused with the API's words,
    // keeps what was typed, and carries the current version, so saving again works.
    let article_path = created_page
        .location
        .as_deref()
        .expect("article")
        .to_owned();
    let edit_path = format!("{article_path}/edit");
    let first = marketing.ok(&edit_path).await;
    let second = marketing.ok(&edit_path).await;
    let version = |html: &str| attr_after(html, "name=\"version\"", "value").expect("version");
    let save = |title: &'static str, html: &str| {
        vec![
            ("csrf", csrf_of(html)),
            ("version", version(html)),
            ("title", title.to_owned()),
            ("body", "How to file a return.".to_owned()),
            ("audience", "INTERNAL".to_owned()),
            ("status", "DRAFT".to_owned()),
        ]
    };
    let form = save("Returns: first edit", &first);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(marketing.post(&edit_path, &form).await.status, 303);
    let form = save("Returns: second edit", &second);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let conflict = marketing.post(&edit_path, &form).await;
    assert_eq!(conflict.status, 422, "{}", conflict.html);
    assert!(conflict.html.contains("changed by someone else"));
    assert!(conflict.html.contains("Returns: second edit"));
    assert_ne!(version(&conflict.html), version(&second));
    let form = save("Returns: second edit", &conflict.html);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(marketing.post(&edit_path, &form).await.status, 303);
    assert!(
        marketing
            .ok(&article_path)
            .await
            .contains("Returns: second edit")
    );
    finish(system, created).await;
}

/// The record forms: only what the policy grants is offered (a form a role may not use is
/// refused before the API is asked; an edit form for a record the caller may not change is
/// refused after reading its `may`), a new record lands by SQL, an archive hides it, a
/// partner gets its territories, and a user's locale writes its amounts.
#[tokio::test]
async fn staff_work_records_through_forms_with_only_the_actions_the_policy_grants() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let db = &system.databases.account;
    let one = |sql: String| async move {
        strings(db, &sql)
            .await
            .into_iter()
            .next()
            .unwrap_or_default()
    };
    let sales_id = strings(
        &system.databases.identity,
        "SELECT id FROM users WHERE email = 'sales@crm.example'",
    )
    .await
    .into_iter()
    .next()
    .expect("sales");

    // Marketing may not create accounts, support may not read leads: refused, unasked.
    let mut marketing = Visitor::new(&url);
    marketing.sign_in("marketing@crm.example", PASSWORD).await;
    assert_eq!(marketing.get("/app/accounts/new").await.status, 403);
    assert!(
        !marketing
            .ok("/app/accounts")
            .await
            .contains("/app/accounts/new")
    );
    let mut support = Visitor::new(&url);
    support.sign_in("support@crm.example", PASSWORD).await;
    assert_eq!(support.get("/app/leads").await.status, 403);

    // Sales: an account it does not own can be read, not edited; its own can.
    let mut sales = Visitor::new(&url);
    sales.sign_in("sales@crm.example", PASSWORD).await;
    let foreign = one(format!(
        "SELECT id FROM accounts WHERE archived_at IS NULL AND (owner_user_id IS NULL OR owner_user_id <> '{sales_id}') ORDER BY id LIMIT 1"
    ))
    .await;
    let page = sales.ok(&format!("/app/accounts/{foreign}")).await;
    assert!(!page.contains(&format!("/app/accounts/{foreign}/edit")));
    assert_eq!(
        sales
            .get(&format!("/app/accounts/{foreign}/edit"))
            .await
            .status,
        403
    );
    let form = sales.ok("/app/accounts/new").await;
    let csrf = csrf_of(&form);
    let refused = sales
        .post(
            "/app/accounts/new",
            &[("csrf", &csrf), ("name", ""), ("industry", "Kept industry")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(
        refused.html.contains("id=\"f-name-error\""),
        "{}",
        refused.html
    );
    assert!(refused.html.contains("Kept industry"));
    let made = sales
        .post(
            "/app/accounts/new",
            &[
                ("csrf", &csrf),
                ("name", "Forms Test Holding"),
                ("segment", "ENTERPRISE"),
                ("tier", "STANDARD"),
                ("lifecycleStage", "PROSPECT"),
                ("ownerUserId", &sales_id),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.html);
    let account = made
        .location
        .as_deref()
        .and_then(|l| l.strip_prefix("/app/accounts/"))
        .expect("the account's page")
        .to_owned();
    assert_eq!(
        one(format!(
            "SELECT segment || '|' || owner_user_id FROM accounts WHERE id = '{account}'"
        ))
        .await,
        format!("ENTERPRISE|{sales_id}")
    );
    // A lookup field's suggestions: the account by its name, the id as the value.
    let suggested = sales.ok("/app/lookup/accounts?accountId=Forms+Test").await;
    assert!(
        suggested.contains(&format!(
            "<option value=\"{account}\">Forms Test Holding</option>"
        )),
        "{suggested}"
    );
    let page = sales.ok(&format!("/app/accounts/{account}")).await;
    for action in ["/edit", "/archive"] {
        assert!(
            page.contains(&format!("/app/accounts/{account}{action}")),
            "{action}"
        );
    }
    // An opportunity on it, then archived: gone from the list, kept in the database.
    let deal = sales
        .post(
            "/app/opportunities/new",
            &[
                ("csrf", &csrf),
                ("accountId", &account),
                ("name", "Forms test deal"),
                ("stage", "PROSPECTING"),
                ("amount", "abc"),
                ("currency", "EUR"),
                ("probability", "ten"),
            ],
        )
        .await;
    assert_eq!(deal.status, 422);
    assert!(deal.html.contains("Give a whole number."), "{}", deal.html);
    let deal = sales
        .post(
            "/app/opportunities/new",
            &[
                ("csrf", &csrf),
                ("accountId", &account),
                ("name", "Forms test deal"),
                ("stage", "PROSPECTING"),
                ("amount", "2500"),
                ("currency", "EUR"),
                ("probability", "10"),
                ("ownerUserId", &sales_id),
            ],
        )
        .await;
    assert_eq!(deal.status, 303, "{}", deal.html);
    let deal_page = deal.location.expect("the deal's page");
    let deal_id = deal_page
        .trim_start_matches("/app/opportunities/")
        .to_owned();
    let html = sales.ok(&deal_page).await;
    let version = attr_after(&html, "name=\"version\"", "value").expect("version");
    let archived = sales
        .post(
            &format!("{deal_page}/archive"),
            &[("csrf", &csrf), ("version", &version)],
        )
        .await;
    assert_eq!(archived.status, 303, "{}", archived.html);
    assert_eq!(
        one(format!("SELECT CASE WHEN archived_at IS NULL THEN 'open' ELSE 'archived' END FROM opportunities WHERE id = '{deal_id}'")).await,
        "archived"
    );
    assert!(
        !sales
            .ok("/app/opportunities?q=Forms+test")
            .await
            .contains(&deal_id)
    );

    // The admin adds a territory and a partner covering it.
    let mut admin = Visitor::new(&url);
    admin.sign_in("admin@crm.example", PASSWORD).await;
    let csrf = csrf_of(&admin.ok("/app/admin/territories/new").await);
    let territory = admin
        .post(
            "/app/admin/territories/new",
            &[
                ("csrf", &csrf),
                ("code", "ZZ-FORMS"),
                ("name", "Forms Land"),
            ],
        )
        .await;
    assert_eq!(territory.status, 303, "{}", territory.html);
    let territory_id = one("SELECT id FROM territories WHERE code = 'ZZ-FORMS'".into()).await;
    assert!(
        admin
            .ok("/app/admin/partners/new")
            .await
            .contains("Forms Land")
    );
    let partner = admin
        .post(
            "/app/admin/partners/new",
            &[
                ("csrf", &csrf),
                ("name", "Forms Distribution"),
                ("kind", "DISTRIBUTOR"),
                ("tier", "SILVER"),
                ("territoryIds", &territory_id),
            ],
        )
        .await;
    assert_eq!(partner.status, 303, "{}", partner.html);
    assert_eq!(
        one("SELECT t.territory_id FROM partner_territories t JOIN partners p ON p.id = t.partner_id WHERE p.name = 'Forms Distribution'".into()).await,
        territory_id
    );

    // Sales' locale: German amounts from the next page on; a tag that is none is refused.
    let profile = sales.ok("/app/profile").await;
    let csrf = csrf_of(&profile);
    let saved = sales
        .post(
            "/app/profile",
            &[
                ("csrf", &csrf),
                ("timeZone", "Europe/Berlin"),
                ("locale", "de-DE"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let board = sales.ok("/app/pipeline").await;
    assert!(
        board.contains("\u{a0}€"),
        "amounts are not written the German way"
    );
    assert_eq!(
        strings(
            &system.databases.identity,
            "SELECT locale FROM users WHERE email = 'sales@crm.example'"
        )
        .await
        .into_iter()
        .next()
        .as_deref(),
        Some("de-DE")
    );
    let bad = sales
        .post(
            "/app/profile",
            &[
                ("csrf", &csrf),
                ("timeZone", "Europe/Berlin"),
                ("locale", "german"),
            ],
        )
        .await;
    assert!(bad.html.contains("language tag"), "{}", bad.html);
    finish(system, created).await;
}

/// Sharing forms: a past end date refused next to its field, a share from the account page
/// that returns there and that the partner then sees, and the policy view explaining it.
#[tokio::test]
async fn share_forms_show_field_errors_and_a_share_is_explained() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    // What distributor 2 sees before the share must be its whole slice: share rows follow
    // order events asynchronously.
    system
        .settle_shares(std::time::Duration::from_secs(30))
        .await
        .expect("share rows settle");
    // An admin's share with a past end date: the field says why.
    let mut admin = Visitor::new(&url);
    admin.sign_in("admin@crm.example", PASSWORD).await;
    let shares = admin.ok("/app/admin/shares").await;
    let account = attr_after(
        &shares[shares.find("id=\"share-account\"").expect("select")..],
        "<option value=\"acc_",
        "value",
    )
    .expect("an account");
    let partner = partner_id(&system, DISTRIBUTOR).await;
    let refused = admin
        .post(
            "/app/admin/shares",
            &[
                ("csrf", &csrf_of(&shares)),
                ("account", &account),
                ("partner", &partner),
                ("expires", "2001-01-01"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.html.contains("id=\"share-expires-error\""));
    let granted = admin
        .post(
            "/app/admin/shares",
            &[
                ("csrf", &csrf_of(&shares)),
                ("account", &account),
                ("partner", &partner),
                ("reason", "joint tender"),
            ],
        )
        .await;
    assert_eq!(granted.status, 303);
    let listed = admin.ok("/app/admin/shares").await;
    assert!(listed.contains("joint tender"));
    // Sharing from the account page returns to it; the partner then sees the account.
    let other = "distributor2-user@southern-cross.example";
    let other_partner = partner_id(&system, other).await;
    let mut distributor2 = Visitor::new(&url);
    distributor2.sign_in(other, PASSWORD).await;
    let before = distributor2.all_ids("/portal/accounts", "acc_").await;
    let hidden = strings(
        &system.databases.account,
        "SELECT id FROM accounts WHERE archived_at IS NULL",
    )
    .await
    .into_iter()
    .find(|a| !before.contains(a))
    .expect("an account distributor 2 does not see");
    let page = admin.ok(&format!("/app/accounts/{hidden}")).await;
    assert!(page.contains("Share with a distributor"));
    let shared = admin
        .post(
            "/app/admin/shares",
            &[
                ("csrf", &csrf_of(&page)),
                ("account", &hidden),
                ("partner", &other_partner),
                ("from", "account"),
            ],
        )
        .await;
    assert_eq!(
        shared.location.as_deref(),
        Some(format!("/app/accounts/{hidden}").as_str())
    );
    let now = distributor2.ok(&format!("/portal/accounts/{hidden}")).await;
    assert!(now.contains("Manual share"), "the portal says why: {now}");
    // The policy view explains the share for that partner and account.
    let explained = admin
        .ok(&format!(
            "/app/admin/policy?partner={partner}&account={account}"
        ))
        .await;
    assert!(explained.contains("manual_share"), "{explained}");
    assert!(explained.contains("Accounts: you see"));
    finish(system, created).await;
}

#[tokio::test]
async fn partner_admins_invite_and_deactivate_colleagues() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let mut admin = Visitor::new(&url);
    admin.sign_in(DISTRIBUTOR_ADMIN, PASSWORD).await;
    let users = admin.ok("/portal/users").await;
    let invited = admin
        .post(
            "/portal/users",
            &[
                ("csrf", &csrf_of(&users)),
                ("email", "new.colleague@northwind.example"),
                ("role", "partner_user"),
            ],
        )
        .await;
    // Post, redirect, get: the page the form leads to shows the link once, and reloading
    // it creates no second invitation.
    assert_eq!(invited.status, 303, "{}", invited.html);
    assert_eq!(invited.location.as_deref(), Some("/portal/users"));
    let shown = admin.ok("/portal/users").await;
    let marker = "data-field=\"invitation-link\">";
    let start = shown.find(marker).expect("the link") + marker.len();
    let link = shown[start..start + shown[start..].find('<').expect("end")].replace("&amp;", "&");
    let reloaded = admin.ok("/portal/users").await;
    assert_eq!(
        Parsed::of(&reloaded).with_attribute("data-field", "invitation-link"),
        0,
        "the link is shown once"
    );
    assert_eq!(
        reloaded.matches("/revoke\"").count(),
        shown.matches("/revoke\"").count(),
        "the same open invitations: a reload invites nobody twice"
    );
    assert!(shown.contains("new.colleague@northwind.example"));
    // A link to send: absolute, to this site.
    let link = link
        .strip_prefix(&url)
        .unwrap_or_else(|| panic!("{link} is not on {url}"))
        .to_owned();

    // The invitee accepts in a browser of their own and lands in the portal.
    let mut invitee = Visitor::new(&url);
    let form = invitee.ok(&link).await;
    let token = attr_after(&form, "name=\"token\"", "value").expect("token");
    let short = invitee
        .post(
            "/invite",
            &[
                ("csrf", &csrf_of(&form)),
                ("token", &token),
                ("displayName", "New Colleague"),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 422);
    assert!(
        short.html.contains("id=\"password-error\""),
        "{}",
        short.html
    );
    let joined = invitee
        .post(
            "/invite",
            &[
                ("csrf", &csrf_of(&form)),
                ("token", &token),
                ("displayName", "New Colleague"),
                ("password", "a long enough password"),
                ("confirm", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(
        joined.location.as_deref(),
        Some("/portal"),
        "{}",
        joined.html
    );
    invitee.ok("/portal/orders").await;

    // The partner admin deactivates the colleague: their next page is the sign-in page.
    let users = admin.ok("/portal/users").await;
    let row_start = users
        .find("new.colleague@northwind.example")
        .expect("listed");
    let tr = users[..row_start].rfind("<tr data-id=\"").expect("row") + 13;
    let user_id = users[tr..tr + users[tr..].find('"').expect("end")].to_owned();
    let done = admin
        .post(
            &format!("/portal/users/{user_id}/access"),
            &[("csrf", &csrf_of(&users)), ("action", "deactivate")],
        )
        .await;
    assert_eq!(done.status, 303);
    let page = invitee.get("/portal/orders").await;
    assert!(
        page.location
            .as_deref()
            .is_some_and(|l| l.starts_with("/signin"))
    );
    // Nobody deactivates another organisation's user from the portal.
    let foreign = strings(
        &system.databases.identity,
        "SELECT id FROM users WHERE email = 'sales@crm.example'",
    )
    .await;
    let foreign = foreign.iter().next().expect("sales");
    let refused = admin
        .post(
            &format!("/portal/users/{foreign}/access"),
            &[("csrf", &csrf_of(&users)), ("action", "deactivate")],
        )
        .await;
    assert_eq!(refused.status, 404);
    finish(system, created).await;
}

/// "My accounts" and saved views, on both sides and on both lists.
#[tokio::test]
async fn my_accounts_match_sql_and_views_are_saved_opened_and_deleted() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let mut sales = Visitor::new(&url);
    assert_eq!(
        sales.sign_in("sales@crm.example", PASSWORD).await.status,
        303
    );

    // "My accounts": exactly the ones the user owns, by SQL.
    let owned = strings(
        &system.databases.account,
        "SELECT id FROM accounts WHERE owner_user_id = 'usr_sales' AND archived_at IS NULL",
    )
    .await;
    assert!(!owned.is_empty());
    assert_eq!(sales.all_ids("/app/accounts?owner=me", "acc_").await, owned);

    // Saved views: save the current filters, find them listed, open them, delete them.
    let list = sales
        .ok("/app/accounts?segment=ENTERPRISE&sort=UPDATED_AT&dir=DESC")
        .await;
    let query = attr_after(&list, "name=\"query\"", "value")
        .expect("query")
        .replace("&amp;", "&");
    assert!(query.contains("segment=ENTERPRISE"));
    let saved = sales
        .post(
            "/app/views",
            &[
                ("csrf", &csrf_of(&list)),
                ("page", "accounts"),
                ("name", "Big ones"),
                ("query", &query),
            ],
        )
        .await;
    assert_eq!(saved.status, 303);
    let list = sales.ok("/app/accounts").await;
    assert!(list.contains("Big ones"));
    let view = sales.ok(&format!("/app/accounts?{query}")).await;
    assert!(view.contains("value=\"ENTERPRISE\" selected"));
    let delete_at = list.find("/app/views/").expect("delete form");
    let id_end = delete_at + list[delete_at..].find("/delete").expect("end");
    let view_id = &list[delete_at + "/app/views/".len()..id_end];
    let deleted = sales
        .post(
            &format!("/app/views/{view_id}/delete"),
            &[("csrf", &csrf_of(&list)), ("page", "accounts")],
        )
        .await;
    assert_eq!(deleted.status, 303);
    assert!(!Parsed::of(&sales.ok("/app/accounts").await).reads("Big ones"));
    // Partners keep views too, on their own side.
    let mut partner = Visitor::new(&url);
    partner.sign_in(SUPPLIER, PASSWORD).await;
    let list = partner.ok("/portal/orders?status=DELIVERED").await;
    let saved = partner
        .post(
            "/portal/views",
            &[
                ("csrf", &csrf_of(&list)),
                ("page", "orders"),
                ("name", "Delivered"),
                ("query", "status=DELIVERED"),
            ],
        )
        .await;
    assert_eq!(
        saved
            .location
            .as_deref()
            .map(|l| l.starts_with("/portal/orders?status=DELIVERED")),
        Some(true)
    );
    assert!(
        partner
            .ok("/portal/orders")
            .await
            .contains(">Delivered</a>")
    );
    // The orders list keeps views of its own.
    let orders = sales.ok("/app/orders?status=SHIPPED").await;
    let query = attr_after(&orders, "name=\"query\"", "value").expect("query");
    assert_eq!(query, "status=SHIPPED");
    let saved = sales
        .post(
            "/app/views",
            &[
                ("csrf", &csrf_of(&orders)),
                ("page", "orders"),
                ("name", "Shipped"),
                ("query", &query),
            ],
        )
        .await;
    assert_eq!(
        saved
            .location
            .as_deref()
            .map(|l| l.starts_with("/app/orders?status=SHIPPED")),
        Some(true)
    );
    assert!(sales.ok("/app/orders").await.contains(">Shipped</a>"));
    assert!(!Parsed::of(&sales.ok("/app/accounts").await).has("a", "Shipped"));
    finish(system, created).await;
}

#[tokio::test]
async fn portal_account_pages_show_only_what_the_partner_may_see() {
    let (system, _dir, created) = system().await;
    // The supplier's slice grows while the order events' share rows are applied: settle
    // them first, or an account it lists after the walk below reads as "not its own".
    system
        .settle_shares(std::time::Duration::from_secs(60))
        .await
        .expect("the share rows settle");
    let url = system.public.url();
    let account_db = &system.databases.account;

    // A distributor: contact details only where the person consented to partner sharing.
    let mut distributor = Visitor::new(&url);
    distributor.sign_in(DISTRIBUTOR, PASSWORD).await;
    let list = distributor.ok("/portal/accounts").await;
    let mut contacts_checked = 0;
    for account in data_ids(&list, "acc_").iter().take(6) {
        let page = distributor.ok(&format!("/portal/accounts/{account}")).await;
        assert!(page.contains("Why you see this account"));
        for row in rows(
            account_db,
            &format!(
                "SELECT email, consent_partner_sharing_email FROM contacts \
                 WHERE account_id = '{account}' AND archived_at IS NULL AND email IS NOT NULL"
            ),
        )
        .await
        {
            let email: String = row.try_get_by_index(0).expect("email");
            let shared: bool = row.try_get_by_index(1).expect("consent");
            assert_eq!(
                page.contains(&email),
                shared,
                "{email}: shown exactly when the contact consented"
            );
            contacts_checked += 1;
        }
    }
    assert!(contacts_checked > 0);

    // The distributor logs an interaction; it is shared with partners and staff see it.
    let account = data_ids(&list, "acc_").into_iter().next().expect("account");
    let page = distributor.ok(&format!("/portal/accounts/{account}")).await;
    let refused = distributor
        .post(
            &format!("/portal/accounts/{account}"),
            &[
                ("csrf", &csrf_of(&page)),
                ("channel", "PHONE"),
                ("direction", "OUTBOUND"),
                ("subject", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.html.contains("id=\"subject-error\""));
    let logged = distributor
        .post(
            &format!("/portal/accounts/{account}"),
            &[
                ("csrf", &csrf_of(&page)),
                ("channel", "PHONE"),
                ("direction", "OUTBOUND"),
                ("subject", "Delivery window agreed"),
                ("body", "Tuesdays 8-12"),
            ],
        )
        .await;
    assert_eq!(logged.status, 303, "{}", logged.html);
    let page = distributor
        .ok(logged.location.as_deref().expect("back"))
        .await;
    assert!(page.contains("Delivery window agreed"));
    let mut sales = Visitor::new(&url);
    sales.sign_in("sales@crm.example", PASSWORD).await;
    assert!(
        sales
            .ok(&format!("/app/accounts/{account}"))
            .await
            .contains("Delivery window agreed")
    );

    // Staff log interactions too, and choose whether partners see them.
    let mut admin = Visitor::new(&url);
    admin.sign_in("admin@crm.example", PASSWORD).await;
    let page = admin.ok(&format!("/app/accounts/{account}")).await;
    assert!(page.contains("Log an interaction"));
    for (subject, shared) in [("Shared with partners", true), ("Internal only", false)] {
        let mut form = vec![
            ("csrf", csrf_of(&page)),
            ("channel", "MEETING".to_owned()),
            ("direction", "OUTBOUND".to_owned()),
            ("subject", subject.to_owned()),
        ];
        if shared {
            form.push(("partnerVisible", "true".to_owned()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let logged = admin.post(&format!("/app/accounts/{account}"), &form).await;
        assert_eq!(logged.status, 303, "{}", logged.html);
    }
    let portal = distributor.ok(&format!("/portal/accounts/{account}")).await;
    assert!(portal.contains("Shared with partners"));
    assert!(
        !Parsed::of(&portal).reads("Internal only"),
        "a partner sees an internal interaction"
    );
    // Marketing reads interactions but does not write them: no form.
    let mut marketing = Visitor::new(&url);
    marketing.sign_in("marketing@crm.example", PASSWORD).await;
    let page = marketing.ok(&format!("/app/accounts/{account}")).await;
    let parsed = Parsed::of(&page);
    assert!(parsed.reads("Internal only") && !parsed.has("h3", "Log an interaction"));

    // A supplier sees no contacts, no interactions form, and another partner's account
    // is not found.
    let mut supplier = Visitor::new(&url);
    supplier.sign_in(SUPPLIER, PASSWORD).await;
    let list = supplier.ok("/portal/accounts").await;
    let own = supplier.all_ids("/portal/accounts", "acc_").await;
    let mine = own.iter().next().expect("an account");
    let page = supplier.ok(&format!("/portal/accounts/{mine}")).await;
    assert!(page.contains("No contacts you may see"));
    assert!(!Parsed::of(&page).has("h3", "Log an interaction"));
    assert!(page.contains("Buys my products"), "the cause is explained");
    let all = strings(
        account_db,
        "SELECT id FROM accounts WHERE archived_at IS NULL",
    )
    .await;
    let hidden = all
        .iter()
        .find(|a| !own.contains(*a))
        .expect("an account the supplier does not see");
    let page = supplier.get(&format!("/portal/accounts/{hidden}")).await;
    assert_eq!(page.status, 404);
    let posted = supplier
        .post(
            &format!("/portal/accounts/{mine}"),
            &[
                ("csrf", &csrf_of(&list)),
                ("channel", "PHONE"),
                ("direction", "OUTBOUND"),
                ("subject", "Supplier note"),
            ],
        )
        .await;
    assert!(posted.status >= 400, "a supplier logged an interaction");
    report(
        "web-portal-accounts",
        &format!("contact details checked against consent: {contacts_checked}\n"),
    );
    finish(system, created).await;
}

/// Every GraphQL request the gateway has answered so far, whatever its outcome.
fn gateway_requests(system: &AllInOne) -> u64 {
    system
        .engine
        .metrics
        .render(0)
        .lines()
        .filter(|line| line.starts_with("crm_gateway_requests_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn every_page_is_one_pass_through_the_gateway() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    // The pages as the web router itself lists them.
    let pages = crm_web::page_paths();
    let staff = ["admin", "management", "sales", "marketing", "support"]
        .map(|persona| format!("{persona}@crm.example"));
    let partners = [SUPPLIER, SUPPLIER_ADMIN, DISTRIBUTOR, DISTRIBUTOR_ADMIN].map(str::to_owned);
    let mut lines = Vec::new();
    for email in staff.iter().chain(&partners) {
        let mut visitor = Visitor::new(&url);
        let landed = visitor.sign_in(email, PASSWORD).await;
        let home = landed.location.expect("signed in to a home page");
        // The ids of the records each list showed, for the record pages below it.
        let mut listed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut walked = 0;
        for path in pages
            .iter()
            .filter(|p| **p == home || p.starts_with(&format!("{home}/")))
        {
            let path = match path.split_once("/{id}") {
                Some((list, rest)) => {
                    let Some(id) = listed.get(list).and_then(|ids| ids.iter().next()) else {
                        continue;
                    };
                    // A record's numbered part (an article's revision): its first.
                    format!("{list}/{id}{rest}").replace("{number}", "1")
                }
                None => (*path).to_owned(),
            };
            let before = gateway_requests(&system);
            let page = visitor.get(&path).await;
            let passes = gateway_requests(&system) - before;
            match page.status {
                // One operation, or none for a form that needs no data (a new article).
                200 => assert!(passes <= 1, "{email} GET {path}: {passes} passes"),
                // A record's edit form for someone who may change some records of its
                // type but not this one: its `may` is the one operation asked.
                403 if path.ends_with("/edit") => {
                    assert!(passes <= 1, "{email} GET {path}: refused after {passes}")
                }
                // A page the policy does not give this persona is refused before asking.
                403 => assert_eq!(passes, 0, "{email} GET {path}: refused after {passes}"),
                other => panic!("{email} GET {path}: {other} {:?}", page.location),
            }
            let ids: BTreeSet<String> = [
                "acc_", "ord_", "art_", "case_", "con_", "lead_", "opp_", "ter_", "ptn_", "reg_",
            ]
            .iter()
            .flat_map(|prefix| data_ids(&page.html, prefix))
            .collect();
            listed.insert(path.clone(), ids);
            walked += 1;
        }
        lines.push(format!("{email}: {walked} pages, at most one pass each"));
        assert!(walked >= 5, "{email} walked only {walked} pages");
    }
    // The policy view with a partner, one of its users and an account chosen: still one
    // operation, and its territory coverage equals SQL.
    let mut admin = Visitor::new(&url);
    admin.sign_in("admin@crm.example", PASSWORD).await;
    let distributor = partner_id(&system, DISTRIBUTOR).await;
    let in_territory = strings(
        &system.databases.account,
        &format!(
            "SELECT CAST(COUNT(*) AS VARCHAR(20)) FROM accounts WHERE archived_at IS NULL \
             AND territory_id IN (SELECT territory_id FROM partner_territories \
             WHERE partner_id = '{distributor}')"
        ),
    )
    .await
    .into_iter()
    .next()
    .expect("a count");
    let account = strings(
        &system.databases.account,
        "SELECT id FROM accounts WHERE archived_at IS NULL ORDER BY id",
    )
    .await
    .into_iter()
    .next()
    .expect("an account");
    let user = strings(
        &system.databases.identity,
        &format!("SELECT id FROM users WHERE email = '{DISTRIBUTOR}'"),
    )
    .await
    .into_iter()
    .next()
    .expect("the distributor's user");
    let before = gateway_requests(&system);
    let page = admin
        .ok(&format!(
            "/app/admin/policy?partner={distributor}&user={user}&account={account}"
        ))
        .await;
    assert_eq!(gateway_requests(&system) - before, 1, "the policy view");
    let coverage = format!(
        "<td class=\"num\">{}</td>",
        thousands_of(in_territory.parse().expect("number"))
    );
    assert!(page.contains("In my territory"), "{page}");
    assert!(page.contains(&coverage), "{coverage} in {page}");
    assert!(page.contains(DISTRIBUTOR) && page.contains("Accounts: you see"));
    lines.push("policy view with a partner, a user and an account: one pass".into());
    report("web-one-pass", &lines.join("\n"));
    finish(system, created).await;
}

/// A count as the pages show it (`1,234`).
fn thousands_of(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test]
async fn an_unknown_address_gets_the_apps_own_not_found_page() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let mut anonymous = Visitor::new(&url);
    let page = anonymous.get("/no/such/page").await;
    assert_eq!(page.status, 404);
    assert!(page.html.contains("Page not found"), "{}", page.html);
    let mut sales = Visitor::new(&url);
    sales.sign_in("sales@crm.example", PASSWORD).await;
    let page = sales.get("/app/no-such-page").await;
    assert_eq!(page.status, 404);
    assert!(page.html.contains("Page not found"));
    // With the signed-in user's navigation.
    assert!(
        page.html.contains("href=\"/app/accounts\""),
        "{}",
        page.html
    );
    let mut distributor = Visitor::new(&url);
    distributor.sign_in(DISTRIBUTOR, PASSWORD).await;
    let page = distributor.get("/portal/nothing-here").await;
    assert_eq!(page.status, 404);
    assert!(
        page.html.contains("href=\"/portal/orders\""),
        "{}",
        page.html
    );
    finish(system, created).await;
}

/// Staff record a person's consent from the contact's page (support with evidence and a
/// source; marketing too, without an edit form for the rest), and the audit log's pages
/// show staff every change and a partner administrator its own slice.
#[tokio::test]
async fn consent_is_recorded_on_the_contact_page_and_the_audit_log_has_its_pages() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let mut support = Visitor::new(&url);
    support.sign_in("support@crm.example", PASSWORD).await;
    let contacts = support.ok("/app/contacts").await;
    let id = data_ids(&contacts, "con_")
        .into_iter()
        .next()
        .expect("a contact");
    let page = support.ok(&format!("/app/contacts/{id}")).await;
    assert!(page.contains(&format!("hx-get=\"/app/contacts/{id}/consent\"")));
    let panel = support.ok(&format!("/app/contacts/{id}/consent")).await;
    assert_clean(&panel);
    assert!(panel.contains("data-form=\"consent\""), "{panel}");
    let version = attr_after(&panel, "name=\"version\"", "value").expect("a version");
    let was = attr_after(&panel, "name=\"was_PARTNER_SHARING_EMAIL\"", "value").expect("was");
    // Flip partner sharing by email, from the person's own form.
    let mut form = vec![
        ("csrf", csrf_of(&panel)),
        ("version", version),
        ("was_PARTNER_SHARING_EMAIL", was.clone()),
        ("source", "FORM".to_owned()),
        ("evidence", "Signed at the trade fair".to_owned()),
    ];
    if was == "false" {
        form.push(("PARTNER_SHARING_EMAIL", "on".to_owned()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = support
        .post(&format!("/app/contacts/{id}/consent"), &form)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    assert_eq!(
        saved.location.as_deref(),
        Some(format!("/app/contacts/{id}").as_str())
    );
    let panel = support.ok(&format!("/app/contacts/{id}/consent")).await;
    assert!(panel.contains("Signed at the trade fair"), "{panel}");
    assert!(panel.contains("data-list=\"consent-history\""), "{panel}");
    let now = attr_after(&panel, "name=\"was_PARTNER_SHARING_EMAIL\"", "value").expect("now");
    assert_ne!(now, was, "the consent changed");
    // A stale version is refused with the API's words, and nothing is recorded.
    let stale = support
        .post(&format!("/app/contacts/{id}/consent"), &form)
        .await;
    assert_eq!(stale.status, 303);
    let after = support.ok(&format!("/app/contacts/{id}/consent")).await;
    assert_eq!(
        after.matches("Signed at the trade fair").count(),
        panel.matches("Signed at the trade fair").count()
    );

    // Marketing records consents and has no edit form for the rest of the contact;
    // management reads the consent without a form.
    let mut marketing = Visitor::new(&url);
    marketing.sign_in("marketing@crm.example", PASSWORD).await;
    let page = marketing.ok(&format!("/app/contacts/{id}")).await;
    assert!(
        !page.contains(&format!("/app/contacts/{id}/edit")),
        "no edit form"
    );
    let panel = marketing.ok(&format!("/app/contacts/{id}/consent")).await;
    assert!(panel.contains("data-form=\"consent\""));
    let mut management = Visitor::new(&url);
    management.sign_in("management@crm.example", PASSWORD).await;
    let panel = management.ok(&format!("/app/contacts/{id}/consent")).await;
    assert!(!panel.contains("data-form=\"consent\""));
    assert!(panel.contains("Signed at the trade fair"));

    // The audit log: management sees the consent change by support.
    let audit = management.ok(&format!("/app/audit?recordId={id}")).await;
    assert_clean(&audit);
    assert!(audit.contains(&format!("data-record=\"{id}\"")), "{audit}");
    assert!(audit.contains("consentPartnerSharingEmail"), "{audit}");
    assert_eq!(support.get("/app/audit").await.status, 403);
    // A distributor's administrator reads its portal's log; its users don't.
    let mut partner_admin = Visitor::new(&url);
    partner_admin.sign_in(DISTRIBUTOR_ADMIN, PASSWORD).await;
    let portal = partner_admin.ok("/portal/audit").await;
    assert_clean(&portal);
    assert!(portal.contains("Filter the audit log"));
    assert!(
        !portal.contains("consentPartnerSharingEmail"),
        "not a field partners read"
    );
    let mut partner_user = Visitor::new(&url);
    partner_user.sign_in(DISTRIBUTOR, PASSWORD).await;
    assert_eq!(partner_user.get("/portal/audit").await.status, 403);
    finish(system, created).await;
}

/// An administrator asks for a person's export on the privacy page, follows it to done
/// and downloads one JSON file; other departments are turned away.
#[tokio::test]
async fn an_administrator_requests_and_downloads_a_data_export() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let mut admin = Visitor::new(&url);
    admin.sign_in("admin@crm.example", PASSWORD).await;
    let contacts = admin.ok("/app/contacts").await;
    let contact = data_ids(&contacts, "con_")
        .into_iter()
        .next()
        .expect("a contact");
    // The contact's page offers the export to an administrator.
    let contact_page = admin.ok(&format!("/app/contacts/{contact}")).await;
    assert!(contact_page.contains("Export this person's data"));
    assert!(contact_page.contains(&format!("name=\"contactId\" value=\"{contact}\"")));
    let page = admin.ok("/app/privacy").await;
    assert!(page.contains("data-form=\"data-export\""));
    // Bad input keeps what was typed and says why.
    let refused = admin
        .post(
            "/app/privacy",
            &[
                ("csrf", &csrf_of(&page)),
                ("contactId", ""),
                ("email", "not-an-email"),
            ],
        )
        .await;
    assert_eq!(refused.status, 200, "{}", refused.html);
    assert!(refused.html.contains("value=\"not-an-email\""));
    assert!(
        refused.html.contains("aria-invalid=\"true\""),
        "{}",
        refused.html
    );
    let asked = admin
        .post(
            "/app/privacy",
            &[
                ("csrf", &csrf_of(&page)),
                ("contactId", &contact),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(asked.status, 303, "{}", asked.html);
    let mut export = None;
    for _ in 0..100 {
        let list = admin.ok("/app/privacy").await;
        if let Some(id) = attr_after(&list, "data-status=\"DONE\"", "data-id") {
            export = Some(id);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let export = export.expect("the export finished");
    let response = reqwest::Client::new()
        .get(format!("{url}/app/privacy/exports/{export}"))
        .header("cookie", admin.cookie_header())
        .send()
        .await
        .expect("download");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(&format!("data-export-{export}.json"))),
        "{:?}",
        response.headers()
    );
    let file: serde_json::Value = response.json().await.expect("a JSON file");
    assert_eq!(file["request"]["contactId"], contact.as_str());
    assert_eq!(file["records"]["contacts"][0]["id"], contact.as_str());
    assert!(file["mentions"]["orderVisibility"].is_object(), "{file}");
    let mut management = Visitor::new(&url);
    management.sign_in("management@crm.example", PASSWORD).await;
    assert_eq!(management.get("/app/privacy").await.status, 403);
    assert_eq!(
        management
            .get(&format!("/app/privacy/exports/{export}"))
            .await
            .status,
        404
    );
    finish(system, created).await;
}

/// An administrator erases a person from their contact page's link: the form needs the
/// confirmation, the list follows each service's part to done, and the contact reads as a
/// tombstone; other departments are turned away.
#[tokio::test]
async fn an_administrator_erases_a_person_after_confirming() {
    let (system, _dir, created) = system().await;
    let url = system.public.url();
    let mut admin = Visitor::new(&url);
    admin.sign_in("admin@crm.example", PASSWORD).await;
    let contacts = admin.ok("/app/contacts").await;
    let contact = data_ids(&contacts, "con_")
        .into_iter()
        .next()
        .expect("a contact");
    let contact_page = admin.ok(&format!("/app/contacts/{contact}")).await;
    let link = format!("/app/privacy?eraseContact={contact}");
    assert!(contact_page.contains(&link), "{contact_page}");
    let page = admin.ok(&link).await;
    assert!(page.contains("data-form=\"data-erasure\""));
    assert!(page.contains(&format!("name=\"contactId\" value=\"{contact}\"")));
    // Without the confirmation nothing happens, and the form keeps what was typed.
    let unconfirmed = admin
        .post(
            "/app/privacy/erasures",
            &[("csrf", &csrf_of(&page)), ("contactId", &contact)],
        )
        .await;
    assert_eq!(unconfirmed.status, 200, "{}", unconfirmed.html);
    assert!(unconfirmed.html.contains("erase-confirm-error"));
    assert!(unconfirmed.html.contains("No erasures yet."));
    let erased = admin
        .post(
            "/app/privacy/erasures",
            &[
                ("csrf", &csrf_of(&page)),
                ("contactId", &contact),
                ("confirm", "erase"),
            ],
        )
        .await;
    assert_eq!(erased.status, 303, "{}", erased.html);
    let mut complete = false;
    for _ in 0..150 {
        let list = admin.ok("/app/privacy").await;
        if list.contains("data-complete=\"true\"") {
            complete = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(complete, "the erasure was applied everywhere");
    let tombstone = admin.ok(&format!("/app/contacts/{contact}")).await;
    assert!(tombstone.contains("[erased]"), "{tombstone}");
    let mut management = Visitor::new(&url);
    management.sign_in("management@crm.example", PASSWORD).await;
    let csrf = csrf_of(&management.ok("/app").await);
    let refused = management
        .post(
            "/app/privacy/erasures",
            &[
                ("csrf", &csrf),
                ("contactId", &contact),
                ("confirm", "erase"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    finish(system, created).await;
}

/// Webhooks from the pages: an admin makes one under Administration (its secret shown once,
/// on its page), sends a test delivery and reads it in the history; a refused form keeps
/// what was typed and names the field; a partner admin manages its organisation's in the
/// portal, where another organisation's webhook is not found and a partner user has none
/// to manage.
#[tokio::test]
async fn webhooks_are_made_tested_and_read_from_the_app_and_the_portal() {
    let (system, _dir, created) = system_with_settings(
        12,
        crm_e2e::receiver::loopback_webhooks(std::time::Duration::from_secs(5)),
    )
    .await;
    let url = system.public.url();
    let receiver = crm_e2e::receiver::Receiver::start().await;
    let mut admin = Visitor::new(&url);
    admin.sign_in("admin@crm.example", PASSWORD).await;
    let list = admin.ok("/app/admin/webhooks").await;
    assert!(list.contains("No webhooks yet."), "{list}");
    let csrf = csrf_of(&list);
    // A refused form: the URL named, what was typed kept.
    let refused = admin
        .post(
            "/app/admin/webhooks",
            &[
                ("csrf", &csrf),
                ("name", "ERP sync"),
                ("url", "ftp://erp.example.com/"),
                ("events", "order.added"),
                ("role", "support"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.html.contains("must be an http or https URL"));
    assert!(refused.html.contains("value=\"ERP sync\""));
    let made = admin
        .post(
            "/app/admin/webhooks",
            &[
                ("csrf", &csrf),
                ("name", "ERP sync"),
                ("url", &receiver.url),
                ("events", "order.added"),
                ("events", "order.updated"),
                ("role", "support"),
                ("filter_field", "status"),
                ("filter_values", "PLACED, SHIPPED"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.html);
    let page_path = made.location.expect("to the webhook's page");
    assert!(
        page_path.starts_with("/app/admin/webhooks/whk_"),
        "{page_path}"
    );
    let page = admin.ok(&page_path).await;
    assert!(
        page.contains("data-field=\"webhook-secret\">whsec_"),
        "{page}"
    );
    assert!(
        page.contains("<code>status</code> is PLACED or SHIPPED"),
        "{page}"
    );
    let again = admin.ok(&page_path).await;
    assert!(!again.contains("whsec_"), "the secret is shown once");
    let pinged = admin
        .post(&page_path, &[("csrf", &csrf), ("action", "ping")])
        .await;
    assert_eq!(pinged.status, 303);
    system
        .settle_webhooks(std::time::Duration::from_secs(30))
        .await
        .expect("webhooks settle");
    assert_eq!(receiver.received().len(), 1, "the test delivery arrived");
    let history = admin.ok(&page_path).await;
    assert!(
        history.contains("<code>webhook.ping</code>") && history.contains(">Delivered<"),
        "{history}"
    );
    let listed = admin.ok("/app/admin/webhooks").await;
    let hook = data_ids(&listed, "whk_")
        .into_iter()
        .next()
        .expect("the webhook listed");

    // The portal: a partner admin's own organisation only.
    let mut partner = Visitor::new(&url);
    partner.sign_in(SUPPLIER_ADMIN, PASSWORD).await;
    let portal = partner.ok("/portal/webhooks").await;
    assert!(
        portal.contains("href=\"/portal/webhooks\""),
        "in the portal's navigation"
    );
    assert!(
        !portal.contains(&hook),
        "the company's webhook is not listed"
    );
    let theirs = partner.get(&format!("/portal/webhooks/{hook}")).await;
    assert_eq!(theirs.status, 404);
    let csrf = csrf_of(&portal);
    let made = partner
        .post(
            "/portal/webhooks",
            &[
                ("csrf", &csrf),
                ("name", "Shop"),
                ("url", "https://shop.example.com/hooks"),
                ("events", "order.updated"),
                ("role", "partner_user"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.html);
    let own = partner
        .ok(made.location.as_deref().expect("its page"))
        .await;
    assert!(own.contains("whsec_"), "{own}");
    let mut user = Visitor::new(&url);
    user.sign_in(SUPPLIER, PASSWORD).await;
    assert_eq!(user.get("/portal/webhooks").await.status, 403);
    finish(system, created).await;
}
