//! The deterministic demo world of the account service: the same seed gives the same
//! rows, ids and timestamps, byte for byte. Partners and the user ids that own records are
//! returned so the identity directory can seed matching users.

use chrono::Duration;
use rand::Rng;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, EntityTrait, PaginatorTrait, TransactionTrait,
};

use crm_service_common::seed::{World, epoch, insert_all, today};

use crate::domain::*;
use crate::entity::*;

pub use crm_service_common::seed::{INTERNAL_USERS, SeededPartner};

/// A demo account, for the seeds of the services that refer to accounts.
#[derive(Clone, Debug, PartialEq)]
pub struct SeededAccount {
    pub id: String,
    pub name: String,
    /// The code of its territory.
    pub territory: Option<String>,
}

/// What the seed wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeedSummary {
    pub territories: usize,
    pub partners: Vec<SeededPartner>,
    pub accounts: usize,
    pub account_refs: Vec<SeededAccount>,
    pub contacts: usize,
    pub interactions: usize,
    pub leads: usize,
    pub opportunities: usize,
    pub cases: usize,
    pub case_comments: usize,
    pub tasks: usize,
    pub notifications: usize,
    pub registrations: usize,
}

pub const SALES_OWNERS: &[&str] = &["usr_sales", "usr_sales2", "usr_management"];

pub const TERRITORIES: &[(&str, &str)] = &[
    ("DE-NORTH", "Germany North"),
    ("DE-SOUTH", "Germany South"),
    ("FR", "France"),
    ("UK", "United Kingdom"),
    ("NL", "Netherlands"),
    ("NORDICS", "Nordics"),
    ("US-EAST", "United States East"),
    ("US-WEST", "United States West"),
];

/// A demo partner: name, kind, tier, covered territory codes, persona, email domain.
type PartnerSpec = (
    &'static str,
    PartnerKind,
    PartnerTier,
    &'static [&'static str],
    &'static str,
    &'static str,
);

const PARTNERS: &[PartnerSpec] = &[
    (
        "Acme Components",
        PartnerKind::Supplier,
        PartnerTier::Platinum,
        &[],
        "supplier1",
        "acme-components.example",
    ),
    (
        "Borealis Materials",
        PartnerKind::Supplier,
        PartnerTier::Gold,
        &[],
        "supplier2",
        "borealis.example",
    ),
    (
        "Cobalt Electronics",
        PartnerKind::Supplier,
        PartnerTier::Silver,
        &[],
        "supplier3",
        "cobalt-electronics.example",
    ),
    (
        "Delta Packaging",
        PartnerKind::Supplier,
        PartnerTier::Registered,
        &[],
        "supplier4",
        "delta-packaging.example",
    ),
    (
        "Northwind Distribution",
        PartnerKind::Distributor,
        PartnerTier::Gold,
        &["DE-NORTH", "NL", "NORDICS"],
        "distributor1",
        "northwind.example",
    ),
    (
        "Southern Cross Logistics",
        PartnerKind::Distributor,
        PartnerTier::Silver,
        &["DE-SOUTH", "FR"],
        "distributor2",
        "southern-cross.example",
    ),
    (
        "Atlantic Trade",
        PartnerKind::Distributor,
        PartnerTier::Registered,
        &["UK", "US-EAST"],
        "distributor3",
        "atlantic-trade.example",
    ),
];

pub const NAME_PARTS: &[&str] = &[
    "Alpine",
    "Harbor",
    "Summit",
    "Riverside",
    "Granite",
    "Lumen",
    "Vertex",
    "Meridian",
    "Oakridge",
    "Pioneer",
    "Quantum",
    "Redwood",
    "Sterling",
    "Tidewater",
    "Union",
    "Vanguard",
    "Willow",
    "Zenith",
];
pub const NAME_KINDS: &[&str] = &[
    "Foods",
    "Motors",
    "Health",
    "Retail",
    "Energy",
    "Logistics",
    "Labs",
    "Textiles",
    "Systems",
    "Hotels",
];
pub const INDUSTRIES: &[&str] = &[
    "Manufacturing",
    "Retail",
    "Healthcare",
    "Energy",
    "Logistics",
    "Hospitality",
    "Technology",
    "Food & Beverage",
];
pub const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Chloe", "David", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kara",
    "Luca", "Maya", "Noah", "Olga", "Pablo",
];
pub const LAST_NAMES: &[&str] = &[
    "Schmidt", "Martin", "Jensen", "Rossi", "Novak", "Dubois", "Smith", "Kowalski", "Berg",
    "Costa", "Weber", "Evans",
];
pub const TITLES: &[&str] = &[
    "Head of Purchasing",
    "Operations Manager",
    "CFO",
    "Buyer",
    "IT Director",
    "Store Manager",
    "Logistics Lead",
];
const SUBJECTS: &[&str] = &[
    "Quarterly review",
    "Price list request",
    "Delivery delay",
    "Product demo",
    "Contract renewal",
    "Onboarding call",
    "Complaint follow-up",
    "Trade fair meeting",
];
const INTERNAL_NOTES: &[&str] = &[
    "Checked the order history: the same carrier damaged a delivery last month.",
    "Escalated to logistics; waiting for the carrier's report.",
    "Customer is on a key account plan, handle with priority.",
    "Credit note drafted, needs management approval.",
];

const PARTNER_REPLIES: &[&str] = &[
    "A replacement is on its way; tracking follows by email.",
    "Please send photos of the damaged items so we can file the claim.",
    "The corrected invoice is attached to the order.",
    "We confirmed the delivery window with the customer.",
];

const TASK_TITLES: &[&str] = &[
    "Call back about the open quote",
    "Send the revised price list",
    "Confirm the delivery date with the customer",
    "Prepare the quarterly business review",
    "Follow up on the damaged shipment",
    "Check the credit limit before renewal",
];

const CASE_SUBJECTS: &[&str] = &[
    "Damaged goods on arrival",
    "Invoice mismatch",
    "Missing shipment",
    "Portal access problem",
    "Wrong item delivered",
    "Return request",
];
const CURRENCIES: &[&str] = &["EUR", "EUR", "EUR", "USD", "GBP"];

/// The events the seeded partners and accounts publish, as if they had been created
/// through the API: consumers rebuilding from the feed see the demo world too.
async fn publish_seed_events(txn: &sea_orm::DatabaseTransaction) -> anyhow::Result<()> {
    use sea_orm::QueryOrder;
    let mut events = Vec::new();
    let coverage = partner_territory::Entity::find()
        .order_by_asc(partner_territory::Column::PartnerId)
        .order_by_asc(partner_territory::Column::TerritoryId)
        .all(txn)
        .await?;
    for partner in partner::Entity::find()
        .order_by_asc(partner::Column::CreatedAt)
        .order_by_asc(partner::Column::Id)
        .all(txn)
        .await?
    {
        events.push(crate::store::partner_changed(&partner));
        let territories: Vec<String> = coverage
            .iter()
            .filter(|c| c.partner_id == partner.id)
            .map(|c| c.territory_id.clone())
            .collect();
        if !territories.is_empty() {
            events.push(crate::store::partner_territories_changed(
                &partner.id,
                &territories,
            ));
        }
    }
    for territory in territory::Entity::find()
        .order_by_asc(territory::Column::Id)
        .all(txn)
        .await?
    {
        events.push(crate::store::territory_changed(&territory));
    }
    for account in account::Entity::find()
        .order_by_asc(account::Column::CreatedAt)
        .order_by_asc(account::Column::Id)
        .all(txn)
        .await?
    {
        events.extend(crate::store::account_events(None, &account));
    }
    crm_service_common::events::outbox::append(txn, events)
        .await
        .map_err(|e| anyhow::anyhow!("writing the seed's events: {}", e.message()))?;
    Ok(())
}

/// The partners and accounts of an already seeded world, read back from this service's
/// tables: what the other services' seeds refer to.
pub async fn demo_refs(
    db: &DatabaseConnection,
) -> anyhow::Result<(Vec<SeededPartner>, Vec<SeededAccount>)> {
    use sea_orm::QueryOrder;
    let territories = territory::Entity::find().all(db).await?;
    let code_of = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| territories.iter().find(|t| &t.id == id))
            .map(|t| t.code.clone())
    };
    let coverage = partner_territory::Entity::find().all(db).await?;
    let mut partners = Vec::new();
    for partner in partner::Entity::find()
        .order_by_asc(partner::Column::CreatedAt)
        .order_by_asc(partner::Column::Id)
        .all(db)
        .await?
    {
        // Only the demo partners: they have personas (users) in the identity seed.
        let Some((_, _, _, _, persona, domain)) = PARTNERS.iter().find(|p| p.0 == partner.name)
        else {
            continue;
        };
        let mut territories: Vec<String> = coverage
            .iter()
            .filter(|c| c.partner_id == partner.id)
            .filter_map(|c| code_of(&Some(c.territory_id.clone())))
            .collect();
        territories.sort();
        partners.push(SeededPartner {
            id: partner.id,
            name: partner.name,
            kind: side(partner.kind),
            persona: persona.to_string(),
            email_domain: domain.to_string(),
            territories,
        });
    }
    let accounts = account::Entity::find()
        .order_by_asc(account::Column::CreatedAt)
        .order_by_asc(account::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|a| SeededAccount {
            territory: code_of(&a.territory_id),
            id: a.id,
            name: a.name,
        })
        .collect();
    Ok((partners, accounts))
}

/// Whether the account service already holds data (then the demo seed is skipped).
/// `Pioneer Retail 12` → `pioneer-retail-12`: the demo domains and email hosts.
pub fn slug(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub async fn is_seeded(db: &DatabaseConnection) -> anyhow::Result<bool> {
    Ok(account::Entity::find().count(db).await? > 0)
}

/// Writes the demo world in one transaction. `accounts` sets its size.
pub async fn seed(
    db: &DatabaseConnection,
    seed: u64,
    accounts: usize,
) -> anyhow::Result<SeedSummary> {
    let mut w = World::new(seed);
    let mut summary = SeedSummary::default();
    let txn = db.begin().await?; // one transaction: a seed is all or nothing

    let mut territory_ids = Vec::new();
    let mut territories = Vec::new();
    for (code, name) in TERRITORIES {
        let (id, external_id, version, created_at, updated_at, archived_at) =
            w.columns("ter", epoch());
        territory_ids.push((code.to_string(), id.clone().unwrap()));
        territories.push(territory::ActiveModel {
            id,
            external_namespace: Set(String::new()),
            external_id,
            version,
            created_at,
            updated_at,
            archived_at,
            code: Set(code.to_string()),
            name: Set(name.to_string()),
        });
    }
    summary.territories = territories.len();
    insert_all::<territory::Entity, _>(&txn, territories).await?;
    let territory_id = |code: &str| {
        territory_ids
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, id)| id.clone())
    };

    let mut partners = Vec::new();
    let mut coverage = Vec::new();
    for (name, kind, tier, covers, persona, domain) in PARTNERS {
        let (id, external_id, version, created_at, updated_at, archived_at) =
            w.columns("ptn", epoch());
        let partner_id = id.clone().unwrap();
        for code in *covers {
            if let Some(territory_id) = territory_id(code) {
                coverage.push(partner_territory::ActiveModel {
                    partner_id: Set(partner_id.clone()),
                    territory_id: Set(territory_id),
                });
            }
        }
        summary.partners.push(SeededPartner {
            id: partner_id,
            name: name.to_string(),
            kind: side(*kind),
            persona: persona.to_string(),
            email_domain: domain.to_string(),
            territories: covers.iter().map(|c| c.to_string()).collect(),
        });
        partners.push(partner::ActiveModel {
            id,
            external_namespace: Set(String::new()),
            external_id,
            version,
            created_at,
            updated_at,
            archived_at,
            name: Set(name.to_string()),
            kind: Set(*kind),
            tier: Set(*tier),
        });
    }
    insert_all::<partner::Entity, _>(&txn, partners).await?;
    insert_all::<partner_territory::Entity, _>(&txn, coverage).await?;
    let distributor_ids: Vec<String> = summary
        .partners
        .iter()
        .filter(|p| p.kind == side(PartnerKind::Distributor))
        .map(|p| p.id.clone())
        .collect();

    let (mut accounts_rows, mut contacts, mut interactions, mut opportunities, mut cases) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut consent_changes = Vec::new();
    let (mut comments, mut tasks, mut notifications, mut account_cases, mut stage_changes) =
        (vec![], vec![], vec![], vec![], vec![]);
    for n in 0..accounts {
        let name = format!("{} {} {}", w.pick(NAME_PARTS), w.pick(NAME_KINDS), n + 1);
        let slug = slug(&name);
        let created = w.time(300);
        let (id, external_id, version, created_at, updated_at, archived_at) =
            w.columns("acc", created);
        let account_id = id.clone().unwrap();
        let territory = w.pick(TERRITORIES).0;
        summary.account_refs.push(SeededAccount {
            id: account_id.clone(),
            name: name.clone(),
            territory: Some(territory.to_string()),
        });
        let owner = w.pick(SALES_OWNERS).to_string();
        let segment = *w.pick(Segment::ALL);
        accounts_rows.push(account::ActiveModel {
            id,
            external_namespace: Set(String::new()),
            external_id: if n % 4 == 0 {
                Set(Some(format!("ERP-{:05}", n + 1)))
            } else {
                external_id
            },
            version,
            created_at,
            updated_at,
            archived_at,
            name_key: Set(Some(crm_service_common::normalise::company_key(&name))),
            name: Set(name.clone()),
            domain: Set(Some(format!("{slug}.example"))),
            industry: Set(Some(w.pick(INDUSTRIES).to_string())),
            segment: Set(segment),
            tier: Set(*w.pick(AccountTier::ALL)),
            lifecycle_stage: Set(if w.chance(0.7) {
                LifecycleStage::Customer
            } else {
                *w.pick(LifecycleStage::ALL)
            }),
            territory_id: Set(territory_id(territory)),
            owner_user_id: Set(Some(owner.clone())),
            internal_note: Set(w.chance(0.5).then(|| {
                format!(
                    "Internal: credit limit reviewed for {name}; do not share outside the company."
                )
            })),
        });

        let mut contact_ids = Vec::new();
        let mut emails = std::collections::BTreeSet::new();
        for _ in 0..w.rng.random_range(2..=4) {
            let (first, last) = (
                w.pick(FIRST_NAMES).to_string(),
                w.pick(LAST_NAMES).to_string(),
            );
            // Two people of the same name at one company get different addresses.
            let local = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
            let mut email = format!("{local}@{slug}.example");
            for n in 2.. {
                if emails.insert(email.clone()) {
                    break;
                }
                email = format!("{local}{n}@{slug}.example");
            }
            let (id, external_id, version, created_at, updated_at, archived_at) =
                w.columns("con", created + Duration::days(1));
            let contact_id = id.clone().unwrap();
            // Drawn in the order the world has always drawn them, so seeds stay the same.
            let phone = format!("+49 30 {:07}", w.rng.random_range(1_000_000..9_999_999));
            let title = w.pick(TITLES).to_string();
            let consents = [
                (
                    ConsentPurpose::Marketing,
                    ConsentChannel::Email,
                    w.chance(0.6),
                ),
                (
                    ConsentPurpose::Marketing,
                    ConsentChannel::Phone,
                    w.chance(0.3),
                ),
                (
                    ConsentPurpose::PartnerSharing,
                    ConsentChannel::Email,
                    w.chance(0.5),
                ),
                (
                    ConsentPurpose::PartnerSharing,
                    ConsentChannel::Phone,
                    w.chance(0.4),
                ),
            ];
            // Each consent given came with the contact, imported when it was created.
            let recorded_at = created_at.clone().unwrap();
            for (purpose, channel, _) in consents.iter().filter(|c| c.2) {
                consent_changes.push(consent_change::ActiveModel {
                    id: Set(format!("cns_{}_{}", contact_id, consent_changes.len())),
                    contact_id: Set(contact_id.clone()),
                    purpose: Set(*purpose),
                    channel: Set(*channel),
                    granted: Set(true),
                    source: Set(ConsentSource::Import),
                    evidence: Set(Some("Imported with the contact".to_owned())),
                    recorded_at: Set(recorded_at),
                    recorded_by: Set("system".to_owned()),
                    recorder_kind: Set("system".to_owned()),
                    recorder_organisation: Set(String::new()),
                });
            }
            contact_ids.push(contact_id);
            contacts.push(contact::ActiveModel {
                id,
                external_namespace: Set(String::new()),
                external_id,
                version,
                created_at,
                updated_at,
                archived_at,
                account_id: Set(account_id.clone()),
                email: Set(Some(email)),
                phone: Set(Some(phone)),
                title: Set(Some(title)),
                consent_marketing_email: Set(consents[0].2),
                consent_marketing_phone: Set(consents[1].2),
                consent_partner_sharing_email: Set(consents[2].2),
                consent_partner_sharing_phone: Set(consents[3].2),
                first_name: Set(first),
                last_name: Set(last),
            });
        }
        for _ in 0..w.rng.random_range(3..=6) {
            let occurred = w.since(created);
            let (id, external_id, version, created_at, updated_at, archived_at) =
                w.columns("int", occurred);
            let channel = *w.pick(Channel::ALL);
            let subject = w.pick(SUBJECTS).to_string();
            interactions.push(interaction::ActiveModel {
                id,
                external_namespace: Set(String::new()),
                external_id,
                version,
                created_at,
                updated_at,
                archived_at,
                account_id: Set(account_id.clone()),
                contact_id: Set(Some(w.pick(&contact_ids).clone())),
                channel: Set(channel),
                direction: Set(*w.pick(Direction::ALL)),
                body: Set(Some(format!(
                    "{subject} with {name} over {channel:?}: notes and next steps."
                ))),
                subject: Set(subject),
                occurred_at: Set(occurred),
                author_user_id: Set(Some(owner.clone())),
                author_partner_id: Set(None),
                partner_visible: Set(w.chance(0.3)),
            });
        }
        if w.chance(0.7) {
            for k in 0..w.rng.random_range(1..=2) {
                let stage = *w.pick(OpportunityStage::ALL);
                let (id, external_id, version, created_at, updated_at, archived_at) =
                    w.columns("opp", created + Duration::days(3));
                // Open deals close in the coming months (a few are overdue), closed ones
                // closed in the past.
                let offset = if stage.is_closed() {
                    -w.rng.random_range(1..200)
                } else {
                    w.rng.random_range(-20..240)
                };
                let close = today().date_naive() + Duration::days(offset);
                let amount_minor = w.rng.random_range(5_000..250_000) * 100;
                let currency = w.pick(CURRENCIES).to_string();
                stage_changes.push(opportunity_stage_change::ActiveModel {
                    id: Set(format!("stg_{}", id.clone().unwrap())),
                    opportunity_id: id.clone(),
                    from_stage: Set(None),
                    to_stage: Set(stage),
                    amount_minor: Set(amount_minor),
                    currency: Set(currency.clone()),
                    probability: Set(stage.default_probability()),
                    changed_at: created_at.clone(),
                });
                opportunities.push(opportunity::ActiveModel {
                    id,
                    external_namespace: Set(String::new()),
                    external_id,
                    version,
                    created_at,
                    updated_at,
                    archived_at,
                    account_id: Set(account_id.clone()),
                    name: Set(format!(
                        "{name} – {}",
                        if k == 0 { "new business" } else { "expansion" }
                    )),
                    stage: Set(stage),
                    amount_minor: Set(amount_minor),
                    currency: Set(currency),
                    probability: Set(stage.default_probability()),
                    expected_close: Set(Some(close)),
                    forecast_category: Set(stage.default_forecast()),
                    owner_user_id: Set(Some(owner.clone())),
                    partner_id: Set(None),
                    registration_id: Set(None),
                    protected_until: Set(None),
                    products: Set("[]".into()),
                });
            }
        }
        for _ in 0..w.rng.random_range(0..=2) {
            let priority = *w.pick(CasePriority::ALL);
            let by_distributor = w.chance(0.3);
            let status = *w.pick(CaseStatus::ALL);
            // The queue: open cases came in over the last three days (some breach their
            // SLA, some are due soon); finished ones any time before.
            let opened = if status.is_open() {
                today() - Duration::minutes(w.rng.random_range(30..72 * 60))
            } else {
                w.since(created)
            };
            let (id, external_id, version, created_at, updated_at, archived_at) =
                w.columns("case", opened);
            let case_id = id.clone().unwrap();
            account_cases.push((case_id.clone(), opened));
            let sla_due = opened + Duration::hours(priority.sla_hours());
            // A pending case's clock stopped some hours in; a resolved or closed one was
            // resolved within a few days.
            let paused = (status == CaseStatus::Pending)
                .then(|| opened + Duration::hours(w.rng.random_range(1..priority.sla_hours())));
            let resolved = matches!(status, CaseStatus::Resolved | CaseStatus::Closed)
                .then(|| opened + Duration::hours(w.rng.random_range(2..96)));
            let contact = w.pick(&contact_ids).clone();
            let partner = by_distributor.then(|| w.pick(&distributor_ids).clone());
            // A partner's case was opened by its user (who hears of our replies).
            let opener = partner.as_ref().and_then(|p| {
                summary
                    .partners
                    .iter()
                    .find(|s| s.id == *p)
                    .map(|s| format!("usr_{}_user", s.persona))
            });
            cases.push(case::ActiveModel {
                id,
                external_namespace: Set(String::new()),
                external_id,
                version,
                created_at,
                updated_at,
                archived_at,
                account_id: Set(account_id.clone()),
                contact_id: Set(Some(contact)),
                partner_id: Set(partner),
                opened_by_user_id: Set(opener),
                subject: Set(w.pick(CASE_SUBJECTS).to_string()),
                description: Set(Some(
                    "Reported by the customer; details in the interaction log.".into(),
                )),
                status: Set(status),
                priority: Set(priority),
                channel: Set(*w.pick(Channel::ALL)),
                sla_due_at: Set(Some(sla_due)),
                owner_user_id: Set(Some("usr_support".into())),
                sla_paused_at: Set(paused),
                escalated_at: Set(None),
                resolved_at: Set(resolved),
            });
            for k in 0..w.rng.random_range(0..=3) {
                let at = opened + Duration::minutes(20 + 45 * k);
                let (id, external_id, version, created_at, updated_at, archived_at) =
                    w.columns("cmt", at);
                let partner_visible = w.chance(0.5);
                comments.push(case_comment::ActiveModel {
                    id,
                    external_namespace: Set(String::new()),
                    external_id,
                    version,
                    created_at,
                    updated_at,
                    archived_at,
                    case_id: Set(case_id.clone()),
                    body: Set(w
                        .pick(if partner_visible {
                            PARTNER_REPLIES
                        } else {
                            INTERNAL_NOTES
                        })
                        .to_string()),
                    partner_visible: Set(partner_visible),
                    // Support writes most; an administrator's internal note now and then, so
                    // "support changes the comments it wrote" differs from "all of them".
                    author_user_id: Set(Some(
                        if !partner_visible && k == 1 {
                            "usr_admin"
                        } else {
                            "usr_support"
                        }
                        .into(),
                    )),
                    author_partner_id: Set(None),
                });
            }
        }
        // A task on some accounts, their cases or deals: the owners' and support's days.
        if w.chance(0.4) {
            let (record_type, record_id, assignee) = match account_cases.last() {
                Some((case, _)) if w.chance(0.5) => (RecordKind::Case, case.clone(), "usr_support"),
                _ => (RecordKind::Account, account_id.clone(), owner.as_str()),
            };
            let due = today()
                + Duration::days(w.rng.random_range(-3..10))
                + Duration::hours(w.rng.random_range(9..18));
            let remind = due - Duration::hours(1);
            let done = due < today() && w.chance(0.5);
            let assigned_by = if w.chance(0.3) {
                "usr_management"
            } else {
                assignee
            };
            let task_created = due - Duration::days(w.rng.random_range(1..5));
            let (id, external_id, version, created_at, updated_at, archived_at) =
                w.columns("task", task_created);
            tasks.push(task::ActiveModel {
                id,
                external_namespace: Set(String::new()),
                external_id,
                version,
                created_at,
                updated_at,
                archived_at,
                record_type: Set(record_type),
                record_id: Set(record_id.clone()),
                account_id: Set(Some(account_id.clone())),
                title: Set(w.pick(TASK_TITLES).to_string()),
                notes: Set(None),
                due_at: Set(due),
                remind_at: Set(Some(remind)),
                assignee_user_id: Set(assignee.to_owned()),
                created_by_user_id: Set(Some(assigned_by.to_owned())),
                completed_at: Set(done.then_some(due)),
                completed_by_user_id: Set(done.then(|| assignee.to_owned())),
                reminded_at: Set((remind < today()).then_some(remind)),
            });
            if assigned_by != assignee {
                notifications.push(seed_notification(
                    &mut w,
                    assignee,
                    NotificationKind::TaskAssigned,
                    "Task for you".into(),
                    record_type,
                    &record_id,
                    task_created,
                ));
            }
        }
        account_cases.clear();
    }
    // Tasks and notifications about a case for someone who may not read cases (marketing):
    // they exist, and nobody sees them while the case is out of the reader's reach.
    if let Some(case) = cases
        .first()
        .map(|c: &case::ActiveModel| c.id.clone().unwrap())
    {
        tasks.push(open_task(
            &mut w,
            OpenTask {
                record: (RecordKind::Case, case.clone()),
                account_id: cases.first().map(|c| c.account_id.clone().unwrap()),
                title: "Check whether the complaint needs a public statement",
                assignee: "usr_marketing",
                created_by: "usr_support",
                created: today() - Duration::days(1),
                due: today() + Duration::hours(15),
            },
        ));
        notifications.push(seed_notification(
            &mut w,
            "usr_marketing",
            NotificationKind::TaskAssigned,
            "Task for you".into(),
            RecordKind::Case,
            &case,
            today() - Duration::days(1),
        ));
    }
    summary.accounts = accounts_rows.len();
    summary.contacts = contacts.len();
    summary.interactions = interactions.len();
    summary.opportunities = opportunities.len();
    summary.cases = cases.len();
    insert_all::<account::Entity, _>(&txn, accounts_rows).await?;
    insert_all::<contact::Entity, _>(&txn, contacts).await?;
    insert_all::<consent_change::Entity, _>(&txn, consent_changes).await?;
    insert_all::<interaction::Entity, _>(&txn, interactions).await?;
    insert_all::<opportunity::Entity, _>(&txn, opportunities).await?;
    insert_all::<opportunity_stage_change::Entity, _>(&txn, stage_changes).await?;
    insert_all::<case::Entity, _>(&txn, cases).await?;
    summary.case_comments = comments.len();
    summary.tasks = tasks.len();
    summary.notifications = notifications.len();
    insert_all::<case_comment::Entity, _>(&txn, comments).await?;
    insert_all::<task::Entity, _>(&txn, tasks).await?;
    insert_all::<notification::Entity, _>(&txn, notifications).await?;

    let mut leads = Vec::new();
    for _ in 0..(accounts / 2).max(1) {
        let (first, last) = (
            w.pick(FIRST_NAMES).to_string(),
            w.pick(LAST_NAMES).to_string(),
        );
        let company = format!("{} {}", w.pick(NAME_PARTS), w.pick(NAME_KINDS));
        let created = w.time(300);
        let (id, external_id, version, created_at, updated_at, archived_at) =
            w.columns("lead", created);
        let status = *w.pick(&[
            LeadStatus::New,
            LeadStatus::Working,
            LeadStatus::Qualified,
            LeadStatus::Disqualified,
        ]);
        let source = *w.pick(LeadSource::ALL);
        let email = Some(format!(
            "{}.{}@{}.example",
            first.to_lowercase(),
            last.to_lowercase(),
            company.to_lowercase().replace(' ', "-")
        ));
        let phone = w
            .rng
            .random_bool(0.5)
            .then(|| format!("+49 30 {:07}", w.rng.random_range(0..10_000_000)));
        leads.push(lead::ActiveModel {
            id,
            external_namespace: Set(String::new()),
            external_id,
            version,
            created_at,
            updated_at,
            archived_at,
            score: Set(crate::domain::score_total(&crate::domain::lead_score(
                source,
                email.as_deref(),
                phone.as_deref(),
                0,
            ))),
            email: Set(email),
            phone: Set(phone),
            first_name: Set(first),
            last_name: Set(last),
            company: Set(company),
            source: Set(source),
            status: Set(status),
            recent_activities: Set(0),
            owner_user_id: Set(Some(w.pick(SALES_OWNERS).to_string())),
            converted_account_id: Set(None),
            converted_contact_id: Set(None),
            converted_opportunity_id: Set(None),
            converted_at: Set(None),
            routed_partner_id: Set(None),
            routed_at: Set(None),
            respond_by: Set(None),
            accepted_at: Set(None),
            decline_reason: Set(None),
        });
    }
    summary.leads = leads.len();
    // Sales' tasks on a deal and on a lead: records support does not read, so their tasks
    // are out of its reach too.
    let deal = opportunity::Entity::find().one(&txn).await?;
    let targets = [
        deal.map(|o| (RecordKind::Opportunity, o.id, Some(o.account_id))),
        leads
            .first()
            .map(|l| (RecordKind::Lead, l.id.clone().unwrap(), None)),
    ];
    let mut more_tasks = Vec::new();
    for (record_type, record_id, account_id) in targets.into_iter().flatten() {
        more_tasks.push(open_task(
            &mut w,
            OpenTask {
                record: (record_type, record_id),
                account_id,
                title: "Send the revised offer",
                assignee: "usr_sales",
                created_by: "usr_sales",
                created: today() - Duration::days(2),
                due: today() + Duration::days(2) + Duration::hours(10),
            },
        ));
    }
    summary.tasks += more_tasks.len();
    insert_all::<lead::Entity, _>(&txn, leads).await?;
    insert_all::<task::Entity, _>(&txn, more_tasks).await?;
    summary.registrations = seed_registrations(&txn, &mut w, &summary.partners).await?;
    publish_seed_events(&txn).await?;
    crate::territory_shares::rebuild(&txn)
        .await
        .map_err(|e| anyhow::anyhow!("writing the territory share rows: {}", e.message()))?;
    txn.commit().await?;
    Ok(summary)
}

/// An open task without a reminder, as the seed sets one on a record.
struct OpenTask {
    record: (RecordKind, String),
    account_id: Option<String>,
    title: &'static str,
    assignee: &'static str,
    created_by: &'static str,
    created: chrono::DateTime<chrono::Utc>,
    due: chrono::DateTime<chrono::Utc>,
}

fn open_task(w: &mut World, task: OpenTask) -> task::ActiveModel {
    let (id, external_id, version, created_at, updated_at, archived_at) =
        w.columns("task", task.created);
    task::ActiveModel {
        id,
        external_namespace: Set(String::new()),
        external_id,
        version,
        created_at,
        updated_at,
        archived_at,
        record_type: Set(task.record.0),
        record_id: Set(task.record.1),
        account_id: Set(task.account_id),
        title: Set(task.title.into()),
        notes: Set(None),
        due_at: Set(task.due),
        remind_at: Set(None),
        assignee_user_id: Set(task.assignee.into()),
        created_by_user_id: Set(Some(task.created_by.into())),
        completed_at: Set(None),
        completed_by_user_id: Set(None),
        reminded_at: Set(None),
    }
}

fn seed_notification(
    w: &mut World,
    recipient: &str,
    kind: NotificationKind,
    title: String,
    record_type: RecordKind,
    record_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> notification::ActiveModel {
    let (id, external_id, version, created_at, updated_at, archived_at) = w.columns("ntf", at);
    notification::ActiveModel {
        id,
        external_namespace: Set(String::new()),
        external_id,
        version,
        created_at,
        updated_at,
        archived_at,
        recipient_user_id: Set(recipient.to_owned()),
        recipient_partner_id: Set(None),
        kind: Set(kind),
        title: Set(title),
        body: Set(None),
        record_type: Set(record_type),
        record_id: Set(record_id.to_owned()),
        read_at: Set(None),
    }
}

/// The side of the business a partner kind is on, as the other services' seeds read it.
fn side(kind: PartnerKind) -> crm_service_common::principal::PrincipalKind {
    match kind {
        PartnerKind::Supplier => crm_service_common::principal::PrincipalKind::Supplier,
        PartnerKind::Distributor => crm_service_common::principal::PrincipalKind::Distributor,
    }
}

/// The deal registrations of the demo: the first distributor's approved one (its
/// opportunity attributed to it and protected), a submitted prospect and a rejected one;
/// the second distributor's submission for the same prospect under another spelling (a
/// conflict the review queue shows), and one on a customer we already have a deal with.
/// Products stay empty: the product catalogue is seeded after this service.
async fn seed_registrations(
    txn: &sea_orm::DatabaseTransaction,
    w: &mut World,
    partners: &[SeededPartner],
) -> anyhow::Result<usize> {
    use crm_service_common::normalise::{company_key, domain_key};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ExprTrait, QueryFilter, QueryOrder, QuerySelect};
    let distributors: Vec<&SeededPartner> = partners
        .iter()
        .filter(|p| p.kind == side(PartnerKind::Distributor))
        .collect();
    let [first, second, ..] = distributors.as_slice() else {
        return Ok(0);
    };
    // Open deals on accounts in the first distributor's territories: one to attribute,
    // one a later registration collides with.
    let covered: Vec<String> = partner_territory::Entity::find()
        .filter(Expr::col(partner_territory::Column::PartnerId).eq(first.id.as_str()))
        .all(txn)
        .await?
        .into_iter()
        .map(|t| t.territory_id)
        .collect();
    let in_territory: Vec<account::Model> = account::Entity::find()
        .filter(Expr::col(account::Column::TerritoryId).is_in(covered))
        .order_by_asc(account::Column::Id)
        .all(txn)
        .await?;
    let mut open_deals = Vec::new();
    for a in &in_territory {
        let deal = opportunity::Entity::find()
            .filter(Expr::col(opportunity::Column::AccountId).eq(a.id.as_str()))
            .filter(
                Expr::col(opportunity::Column::Stage)
                    .is_not_in([OpportunityStage::ClosedWon, OpportunityStage::ClosedLost]),
            )
            .order_by_asc(opportunity::Column::Id)
            .one(txn)
            .await?;
        if let Some(deal) = deal {
            open_deals.push((a.clone(), deal));
        }
        if open_deals.len() == 2 {
            break;
        }
    }
    let user = |p: &SeededPartner| format!("usr_{}_user", p.persona);
    let mut rows = Vec::new();
    let mut notifications = Vec::new();
    let registration = |w: &mut World,
                        partner: &SeededPartner,
                        account: Option<&account::Model>,
                        prospect: &str,
                        domain: Option<&str>,
                        status: RegistrationStatus,
                        days_ago: i64| {
        let at = today() - Duration::days(days_ago) + Duration::hours(10);
        let (id, external_id, version, created_at, updated_at, archived_at) = w.columns("reg", at);
        let decided = status != RegistrationStatus::Submitted;
        let amount = 1_000_000 + 50_000 * i64::from(w.rng.random_range(0..200));
        deal_registration::ActiveModel {
            id,
            external_namespace: Set(String::new()),
            external_id,
            version,
            created_at,
            updated_at,
            archived_at,
            partner_id: Set(partner.id.clone()),
            submitted_by_user_id: Set(user(partner)),
            account_id: Set(account.map(|a| a.id.clone())),
            prospect_name: Set(prospect.to_owned()),
            prospect_domain: Set(domain.and_then(domain_key)),
            name_key: Set(company_key(prospect)),
            domain_key: Set(domain.and_then(domain_key)),
            products: Set("[]".into()),
            estimated_amount_minor: Set(amount),
            currency: Set("EUR".into()),
            expected_close: Set(Some((today() + Duration::days(60)).date_naive())),
            notes: Set(Some(
                "Customer asked for a quote after our demo day.".into(),
            )),
            status: Set(status),
            decision_reason: Set((status == RegistrationStatus::Rejected)
                .then(|| "Our key-account team already works this customer directly.".into())),
            decided_by_user_id: Set(decided.then(|| "usr_sales".into())),
            decided_at: Set(decided.then(|| at + Duration::days(1))),
            opportunity_id: Set(None),
            protected_until: Set(None),
        }
    };
    if let Some((account, deal)) = open_deals.first() {
        let mut approved = registration(
            w,
            first,
            Some(account),
            &account.name,
            account.domain.as_deref(),
            RegistrationStatus::Approved,
            20,
        );
        let id = approved.id.clone().unwrap();
        let until = today() + Duration::days(70);
        approved.opportunity_id = Set(Some(deal.id.clone()));
        approved.protected_until = Set(Some(until));
        opportunity::Entity::update_many()
            .col_expr(
                opportunity::Column::PartnerId,
                Expr::value(first.id.clone()),
            )
            .col_expr(opportunity::Column::RegistrationId, Expr::value(id.clone()))
            .col_expr(opportunity::Column::ProtectedUntil, Expr::value(until))
            .filter(Expr::col(opportunity::Column::Id).eq(deal.id.as_str()))
            .exec(txn)
            .await?;
        crate::jobs::schedule_registration_expiry(txn, &id, until)
            .await
            .map_err(|e| anyhow::anyhow!("scheduling a registration's expiry: {e:?}"))?;
        notifications.push(seed_notification(
            w,
            &user(first),
            NotificationKind::RegistrationApproved,
            format!("Deal registration approved: {}", account.name),
            RecordKind::DealRegistration,
            &id,
            today() - Duration::days(19),
        ));
        rows.push(approved);
    }
    rows.push(registration(
        w,
        first,
        None,
        "Zephyr Robotics",
        Some("zephyr-robotics.example"),
        RegistrationStatus::Submitted,
        3,
    ));
    let rejected = registration(
        w,
        first,
        None,
        "Halcyon Foods",
        Some("halcyon-foods.example"),
        RegistrationStatus::Rejected,
        12,
    );
    let rejected_id = rejected.id.clone().unwrap();
    notifications.push(seed_notification(
        w,
        &user(first),
        NotificationKind::RegistrationRejected,
        "Deal registration rejected: Halcyon Foods".into(),
        RecordKind::DealRegistration,
        &rejected_id,
        today() - Duration::days(11),
    ));
    rows.push(rejected);
    rows.push(registration(
        w,
        second,
        None,
        "ZEPHYR ROBOTICS GmbH",
        Some("https://www.zephyr-robotics.example/"),
        RegistrationStatus::Submitted,
        1,
    ));
    if let Some((account, _)) = open_deals.get(1) {
        rows.push(registration(
            w,
            second,
            None,
            &account.name.to_uppercase(),
            None,
            RegistrationStatus::Submitted,
            2,
        ));
    }
    // Lead distribution: a lead routed to the first distributor and waiting for its answer,
    // and one it accepted and works.
    let open_leads = lead::Entity::find()
        .filter(Expr::col(lead::Column::Status).is_in([LeadStatus::New, LeadStatus::Working]))
        .order_by_asc(lead::Column::Id)
        .limit(2)
        .all(txn)
        .await?;
    for (n, l) in open_leads.iter().enumerate() {
        let routed = today() - Duration::hours(3 + 24 * n as i64);
        let respond_by = routed + Duration::hours(LEAD_RESPONSE_HOURS);
        let accepted = (n == 1).then(|| routed + Duration::hours(2));
        lead::Entity::update_many()
            .col_expr(lead::Column::RoutedPartnerId, Expr::value(first.id.clone()))
            .col_expr(lead::Column::RoutedAt, Expr::value(routed))
            .col_expr(lead::Column::RespondBy, Expr::value(respond_by))
            .col_expr(lead::Column::AcceptedAt, Expr::value(accepted))
            .col_expr(
                lead::Column::Status,
                Expr::value(if accepted.is_some() {
                    LeadStatus::Working
                } else {
                    l.status
                }),
            )
            .filter(Expr::col(lead::Column::Id).eq(l.id.as_str()))
            .exec(txn)
            .await?;
        if accepted.is_none() {
            crate::jobs::schedule_lead_response(txn, &l.id, respond_by)
                .await
                .map_err(|e| anyhow::anyhow!("scheduling a lead's answer: {e:?}"))?;
        }
    }
    let count = rows.len();
    insert_all::<deal_registration::Entity, _>(txn, rows).await?;
    insert_all::<notification::Entity, _>(txn, notifications).await?;
    Ok(count)
}

/// Gives the demo world's open opportunities product lines, once the order service has
/// seeded the products (seeds run accounts first, so the products come later): one or two
/// products each, most often the first product of a supplier's range (real demand piles up
/// on a few best sellers), with the events the order service's demand view is built from.
/// Does nothing when any opportunity already names products.
pub async fn plan_demand(
    db: &DatabaseConnection,
    seed: u64,
    products: &[(String, String, String)],
) -> anyhow::Result<usize> {
    use sea_orm::{ExprTrait, QueryFilter, QueryOrder, sea_query::Expr};
    if products.is_empty() {
        return Ok(0);
    }
    let named = opportunity::Entity::find()
        .filter(Expr::col(opportunity::Column::Products).ne("[]"))
        .count(db)
        .await?;
    if named > 0 {
        return Ok(0);
    }
    // A seed of its own, so planning demand never changes the rest of the world.
    let mut w = World::new(seed ^ 0x0de_3a2d);
    // Each supplier's range was seeded as a block of six: the first of each block sells best.
    let best_sellers: Vec<&String> = products.iter().step_by(6).map(|(id, _, _)| id).collect();
    let txn = db.begin().await?;
    let open = opportunity::Entity::find()
        .filter(
            Expr::col(opportunity::Column::Stage)
                .is_not_in([OpportunityStage::ClosedWon, OpportunityStage::ClosedLost]),
        )
        .filter(Expr::col(opportunity::Column::ArchivedAt).is_null())
        .order_by_asc(opportunity::Column::Id)
        .all(&txn)
        .await?;
    let mut events = Vec::with_capacity(open.len());
    for deal in &open {
        let mut lines: Vec<crate::graphql::product_lines::ProductLine> = Vec::new();
        for _ in 0..w.rng.random_range(1..=2) {
            let product_id = if w.chance(0.6) {
                (*w.pick(&best_sellers)).clone()
            } else {
                w.pick(products).0.clone()
            };
            if lines.iter().any(|l| l.product_id == product_id) {
                continue;
            }
            lines.push(crate::graphql::product_lines::ProductLine {
                product_id,
                quantity: w.rng.random_range(1..=40),
            });
        }
        let json = serde_json::to_string(&lines)?;
        opportunity::Entity::update_many()
            .col_expr(opportunity::Column::Products, Expr::value(json.clone()))
            .filter(Expr::col(opportunity::Column::Id).eq(deal.id.as_str()))
            .exec(&txn)
            .await?;
        let planned = opportunity::Model {
            products: json,
            ..deal.clone()
        };
        events.push(crate::store::opportunity_demand_changed(&planned));
    }
    crm_service_common::events::outbox::append(&txn, events)
        .await
        .map_err(|e| anyhow::anyhow!("writing the demand events: {}", e.message()))?;
    txn.commit().await?;
    Ok(open.len())
}
