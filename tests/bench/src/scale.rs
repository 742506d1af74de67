//! The benchmark world at CRM scale (`crm seed --scale F`, `crm bench`): at `F = 1`,
//! 1M accounts, 3M contacts, 2M orders, 8M order lines, 50k products, 200 partners, 5k
//! articles and the share rows the policy needs, loaded in bulk (PostgreSQL `COPY`,
//! secondary indexes dropped during the load and rebuilt after; chunked multi-row inserts
//! on SQLite).
//!
//! Every row is a pure function of `(seed, table, index)`, so any table can be generated
//! on its own, in any order, and the counts a persona must see can be recomputed from the
//! generator without reading the database: that is what `crm bench` compares the API's
//! answers with. Partners are deliberately uneven: one large supplier on ~10% of the order
//! lines, a few medium ones sharing 85%, and many small ones on < 0.1% each.
//!
//! The scale world writes share rows directly (the rows the share consumer would derive
//! from the orders) and no domain events: `crm shares rebuild` on it would find no order
//! events to replay.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use crm_account::domain::{
    AccountTier, CasePriority, CaseStatus, Channel, LeadSource, LeadStatus, LifecycleStage,
    OpportunityStage, PartnerKind, PartnerTier, RecordKind, Segment,
};
use crm_account::entity::{
    account, account_share, case, contact, lead, opportunity, partner, partner_territory, task,
    territory,
};
use crm_knowledge_base::domain::{ArticleStatus, encode_set};
use crm_knowledge_base::entity::{article, article_product};
use crm_order_visibility::domain::LineStatus;
use crm_order_visibility::entity::{order, order_line, product};
use crm_service_common::access::Scope;
use crm_service_common::seed::epoch;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Iterable, ModelTrait, Statement,
    TransactionTrait, Value,
};

use crm_identity as identity;
use crm_system::Databases;

/// The sizes of a scale world.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizes {
    pub territories: usize,
    pub suppliers: usize,
    pub distributors: usize,
    pub accounts: usize,
    pub contacts_per_account: usize,
    pub orders: usize,
    pub lines_per_order: usize,
    pub products: usize,
    pub articles: usize,
    /// The staff workspace: deals, cases, leads and tasks.
    pub opportunities: usize,
    pub cases: usize,
    pub leads: usize,
    pub tasks: usize,
}

impl Sizes {
    /// `factor` 1.0 is the full world; smaller factors shrink every table but keep at least
    /// a few partners of each size class.
    pub fn at(factor: f64) -> Self {
        let scaled = |full: f64, min: usize| ((full * factor).round() as usize).max(min);
        Self {
            territories: 40,
            suppliers: scaled(120.0, 24),
            distributors: scaled(80.0, 16),
            accounts: scaled(1_000_000.0, 100),
            contacts_per_account: 3,
            orders: scaled(2_000_000.0, 200),
            lines_per_order: 4,
            products: scaled(50_000.0, 100),
            articles: scaled(5_000.0, 50),
            opportunities: scaled(500_000.0, 100),
            cases: scaled(200_000.0, 40),
            leads: scaled(250_000.0, 50),
            tasks: scaled(500_000.0, 100),
        }
    }

    pub fn partners(&self) -> usize {
        self.suppliers + self.distributors
    }

    /// Medium suppliers (85% of the lines between them); supplier 0 is the large one, the
    /// rest are small.
    fn medium_suppliers(&self) -> usize {
        (self.suppliers / 6).max(1)
    }

    fn small_suppliers(&self) -> usize {
        self.suppliers - 1 - self.medium_suppliers()
    }
}

/// A scale world: its sizes and the seed every row derives from.
#[derive(Clone, Copy, Debug)]
pub struct ScaleWorld {
    pub seed: u64,
    pub sizes: Sizes,
}

/// SplitMix64: a tiny, fast, well-mixed hash; rows derive their randomness from it.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream of one row: `(seed, table, index)` always gives the same numbers.
struct Dice(u64);

impl Dice {
    fn new(seed: u64, table: u64, index: usize) -> Self {
        Self(mix(seed ^ mix(table ^ mix(index as u64))))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// Table tags of the dice (any distinct numbers).
const T_TERRITORY: u64 = 1;
const T_PARTNER: u64 = 2;
const T_ACCOUNT: u64 = 3;
const T_CONTACT: u64 = 4;
const T_PRODUCT: u64 = 5;
const T_ORDER: u64 = 6;
const T_ARTICLE: u64 = 7;
const T_OPPORTUNITY: u64 = 8;
const T_CASE: u64 = 9;
const T_LEAD: u64 = 10;
const T_TASK: u64 = 11;

/// The staff of the workspace tables: the demo's own users own a share of the records
/// (the benchmark's "mine"), the rest belong to colleagues who are not users here.
pub const SALES_TEAM: usize = 40;
pub const SUPPORT_TEAM: usize = 20;

/// One partner of the world.
#[derive(Clone, Debug)]
pub struct ScalePartner {
    pub id: String,
    pub name: String,
    pub kind: PartnerKind,
    /// `supplier007`: the persona of its demo users (`usr_supplier007_user`).
    pub persona: String,
    pub territories: Vec<usize>,
}

/// An order as the generator sees it: enough to derive its lines and share rows.
struct OrderFacts {
    account: usize,
    distributor: Option<usize>,
    /// Product index of each line.
    products: Vec<usize>,
    created: DateTime<Utc>,
}

impl ScaleWorld {
    pub fn new(seed: u64, factor: f64) -> Self {
        Self {
            seed,
            sizes: Sizes::at(factor),
        }
    }

    /// `prefix_<32 hex>`: the seed in the high half (so two worlds never share ids), the
    /// row index in the low half (so ids are unique by construction).
    fn id(&self, prefix: &str, table: u64, index: usize) -> String {
        format!(
            "{prefix}_{:016x}{:016x}",
            mix(self.seed ^ table),
            index as u64
        )
    }

    fn at_minute(&self, dice: &mut Dice, days: i64) -> DateTime<Utc> {
        epoch() + chrono::Duration::minutes(dice.below((days * 24 * 60) as usize) as i64)
    }

    pub fn territory_id(&self, n: usize) -> String {
        self.id("ter", T_TERRITORY, n)
    }

    pub fn account_id(&self, n: usize) -> String {
        self.id("acc", T_ACCOUNT, n)
    }

    pub fn order_id(&self, n: usize) -> String {
        self.id("ord", T_ORDER, n)
    }

    fn product_id(&self, n: usize) -> String {
        self.id("prd", T_PRODUCT, n)
    }

    /// Partners: suppliers first (0 is the large one), then distributors.
    pub fn partners(&self) -> Vec<ScalePartner> {
        let s = self.sizes;
        (0..s.partners())
            .map(|n| {
                let (kind, persona, name) = if n < s.suppliers {
                    let class = if n == 0 {
                        "Large"
                    } else if n <= s.medium_suppliers() {
                        "Medium"
                    } else {
                        "Small"
                    };
                    (
                        PartnerKind::Supplier,
                        format!("supplier{n:03}"),
                        format!("{class} Supplier {n:03}"),
                    )
                } else {
                    let d = n - s.suppliers;
                    (
                        PartnerKind::Distributor,
                        format!("distributor{d:03}"),
                        format!("Distributor {d:03}"),
                    )
                };
                let territories = match kind {
                    PartnerKind::Supplier => Vec::new(),
                    PartnerKind::Distributor => {
                        let d = n - s.suppliers;
                        let first = d % s.territories;
                        let second = (d * 7 + 3) % s.territories;
                        if first == second {
                            vec![first]
                        } else {
                            vec![first, second]
                        }
                    }
                };
                ScalePartner {
                    id: self.id("ptn", T_PARTNER, n),
                    name,
                    kind,
                    persona,
                    territories,
                }
            })
            .collect()
    }

    /// The product range `[start, end)` of supplier `n`: the large supplier has 10% of the
    /// products, the medium ones 80% between them, the small ones the rest.
    fn products_of_supplier(&self, n: usize) -> (usize, usize) {
        let s = self.sizes;
        let large = (s.products / 10).max(1);
        let medium_each = ((s.products * 8 / 10) / s.medium_suppliers()).max(1);
        let medium_end = large + medium_each * s.medium_suppliers();
        let small_total = s
            .products
            .saturating_sub(medium_end)
            .max(s.small_suppliers());
        let small_each = (small_total / s.small_suppliers().max(1)).max(1);
        if n == 0 {
            (0, large)
        } else if n <= s.medium_suppliers() {
            let start = large + (n - 1) * medium_each;
            (start, start + medium_each)
        } else {
            let start = medium_end + (n - 1 - s.medium_suppliers()) * small_each;
            let end = if n == s.suppliers - 1 {
                s.products.max(start + 1)
            } else {
                start + small_each
            };
            (start, end)
        }
    }

    /// How many products the world really has (the ranges round).
    fn product_count(&self) -> usize {
        self.products_of_supplier(self.sizes.suppliers - 1).1
    }

    fn supplier_of_product(&self, p: usize) -> usize {
        // Binary search over the contiguous ranges.
        let (mut lo, mut hi) = (0, self.sizes.suppliers - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.products_of_supplier(mid).1 <= p {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The product of one order line: 10% the large supplier's, 85% a medium supplier's,
    /// 5% a small supplier's.
    fn line_product(&self, dice: &mut Dice) -> usize {
        let s = self.sizes;
        let r = dice.below(1000);
        let supplier = if r < 100 {
            0
        } else if r < 950 || s.small_suppliers() == 0 {
            1 + dice.below(s.medium_suppliers())
        } else {
            1 + s.medium_suppliers() + dice.below(s.small_suppliers())
        };
        let (start, end) = self.products_of_supplier(supplier);
        start + dice.below(end - start)
    }

    fn order_facts(&self, n: usize) -> OrderFacts {
        let s = self.sizes;
        let mut dice = Dice::new(self.seed, T_ORDER, n);
        let account = dice.below(s.accounts);
        // 70% of orders go through a distributor; distributor 0 fulfils a tenth of those.
        let distributor = dice.chance(0.7).then(|| {
            if dice.chance(0.1) {
                0
            } else {
                dice.below(s.distributors)
            }
        });
        let products = (0..s.lines_per_order)
            .map(|_| self.line_product(&mut dice))
            .collect();
        let created = self.at_minute(&mut dice, 900);
        OrderFacts {
            account,
            distributor,
            products,
            created,
        }
    }

    fn account_territory(&self, n: usize) -> usize {
        Dice::new(self.seed, T_ACCOUNT, n).below(self.sizes.territories)
    }

    /// The territory share rows of account `n`: one per partner covering its territory
    /// (what `crm_account::territory_shares` keeps).
    fn territory_share_rows(
        &self,
        n: usize,
        coverage: &[Vec<usize>],
        partners: &[ScalePartner],
    ) -> Vec<account_share::Model> {
        let territory = self.account_territory(n);
        let account_id = self.account_id(n);
        let source = crm_account::territory_shares::source_of(&self.territory_id(territory));
        coverage[territory]
            .iter()
            .enumerate()
            .map(|(k, &p)| {
                ShareRow {
                    id: self.id("shr", T_TERRITORY ^ 0xAB, n * 64 + k),
                    account_id: &account_id,
                    partner_id: &partners[p].id,
                    cause: Scope::InMyTerritory,
                    source: &source,
                    at: epoch(),
                }
                .model()
            })
            .collect()
    }

    /// The partners covering each territory, by index.
    fn coverage(&self, partners: &[ScalePartner]) -> Vec<Vec<usize>> {
        let mut covering = vec![Vec::new(); self.sizes.territories];
        for (p, partner) in partners.iter().enumerate() {
            for &t in &partner.territories {
                covering[t].push(p);
            }
        }
        covering
    }

    fn account_row(&self, n: usize) -> account::Model {
        use crm_account::seed::{INDUSTRIES, NAME_KINDS, NAME_PARTS, SALES_OWNERS};
        let mut dice = Dice::new(self.seed, T_ACCOUNT, n);
        let territory = dice.below(self.sizes.territories); // same draw as account_territory
        let name = format!(
            "{} {} {}",
            dice.pick(NAME_PARTS),
            dice.pick(NAME_KINDS),
            n + 1
        );
        let slug = crm_account::seed::slug(&name);
        let created = self.at_minute(&mut dice, 900);
        account::Model {
            id: self.account_id(n),
            external_id: n.is_multiple_of(4).then(|| format!("ERP-{:07}", n + 1)),
            external_namespace: String::new(),
            version: 1,
            created_at: created,
            updated_at: created,
            archived_at: None,
            domain: Some(format!("{slug}.example")),
            industry: Some(dice.pick(INDUSTRIES).to_string()),
            segment: *dice.pick(Segment::ALL),
            tier: *dice.pick(AccountTier::ALL),
            lifecycle_stage: if dice.chance(0.7) {
                LifecycleStage::Customer
            } else {
                *dice.pick(LifecycleStage::ALL)
            },
            territory_id: Some(self.territory_id(territory)),
            owner_user_id: Some(dice.pick(SALES_OWNERS).to_string()),
            internal_note: dice
                .chance(0.3)
                .then(|| format!("Internal: credit limit reviewed for {name}.")),
            name_key: Some(crm_service_common::normalise::company_key(&name)),
            name,
        }
    }

    /// Sales rep `n` of the team: rep 0 is the demo's sales user (the benchmark's "mine").
    fn sales_rep(n: usize) -> String {
        if n == 0 {
            "usr_sales".into()
        } else {
            format!("usr_rep_{n:02}")
        }
    }

    /// Support agent `n`: agent 0 is the demo's support user.
    fn support_agent(n: usize) -> String {
        if n == 0 {
            "usr_support".into()
        } else {
            format!("usr_agent_{n:02}")
        }
    }

    /// Deal `n`: on one account, owned by one of the team, closing within the two years
    /// around today; a fifth are closed.
    pub fn opportunity_row(&self, n: usize) -> opportunity::Model {
        let mut dice = Dice::new(self.seed, T_OPPORTUNITY, n);
        let account = dice.below(self.sizes.accounts);
        let stage = *dice.pick(OpportunityStage::ALL);
        let created = self.at_minute(&mut dice, 390);
        let close = crm_service_common::seed::today().date_naive()
            + chrono::Duration::days(dice.below(540) as i64 - 180);
        opportunity::Model {
            id: self.id("opp", T_OPPORTUNITY, n),
            external_id: None,
            external_namespace: String::new(),
            version: 1,
            created_at: created,
            updated_at: created,
            archived_at: None,
            account_id: self.account_id(account),
            name: format!("Deal {}", n + 1),
            stage,
            amount_minor: 100_000 + 1_000 * dice.below(500_000) as i64,
            currency: (*dice.pick(&["EUR", "EUR", "EUR", "USD", "GBP"])).to_owned(),
            probability: stage.default_probability(),
            expected_close: Some(close),
            forecast_category: stage.default_forecast(),
            owner_user_id: Some(Self::sales_rep(dice.below(SALES_TEAM))),
            partner_id: None,
            registration_id: None,
            protected_until: None,
            products: "[]".into(),
        }
    }

    /// Case `n`: most resolved or closed, the open ones with an SLA due around now; a
    /// tenth unassigned.
    pub fn case_row(&self, n: usize) -> case::Model {
        let mut dice = Dice::new(self.seed, T_CASE, n);
        let account = dice.below(self.sizes.accounts);
        let created = self.at_minute(&mut dice, 399);
        let status = if dice.chance(0.8) {
            *dice.pick(&[CaseStatus::Resolved, CaseStatus::Closed])
        } else {
            *dice.pick(&[CaseStatus::New, CaseStatus::Open, CaseStatus::Pending])
        };
        let open = status.is_open();
        let due = if open {
            Utc::now() + chrono::Duration::minutes(dice.below(6 * 24 * 60) as i64 - 2 * 24 * 60)
        } else {
            created + chrono::Duration::hours(24)
        };
        case::Model {
            id: self.id("case", T_CASE, n),
            external_id: None,
            external_namespace: String::new(),
            version: 1,
            created_at: created,
            updated_at: created,
            archived_at: None,
            account_id: self.account_id(account),
            contact_id: None,
            partner_id: None,
            opened_by_user_id: None,
            subject: format!("Case {} about an order", n + 1),
            description: None,
            status,
            priority: *dice.pick(CasePriority::ALL),
            channel: *dice.pick(Channel::ALL),
            sla_due_at: Some(due),
            owner_user_id: (!dice.chance(0.1))
                .then(|| Self::support_agent(dice.below(SUPPORT_TEAM))),
            sla_paused_at: (status == CaseStatus::Pending).then_some(created),
            escalated_at: None,
            resolved_at: (!open).then_some(due),
        }
    }

    /// Lead `n`, scored by the rules the service uses.
    pub fn lead_row(&self, n: usize) -> lead::Model {
        let mut dice = Dice::new(self.seed, T_LEAD, n);
        let created = self.at_minute(&mut dice, 399);
        let source = *dice.pick(LeadSource::ALL);
        let email = Some(format!("lead{n}@company{}.example", n % 9_973));
        let phone = dice
            .chance(0.5)
            .then(|| format!("+49 30 {:07}", 1_000_000 + dice.below(8_999_999)));
        let score = crm_account::domain::score_total(&crm_account::domain::lead_score(
            source,
            email.as_deref(),
            phone.as_deref(),
            0,
        ));
        lead::Model {
            id: self.id("lead", T_LEAD, n),
            external_id: None,
            external_namespace: String::new(),
            version: 1,
            created_at: created,
            updated_at: created,
            archived_at: None,
            first_name: "Lead".into(),
            last_name: format!("Person {}", n + 1),
            company: format!("Company {}", n % 9_973),
            email,
            phone,
            source,
            status: *dice.pick(&[
                LeadStatus::New,
                LeadStatus::Working,
                LeadStatus::Qualified,
                LeadStatus::Disqualified,
            ]),
            score,
            recent_activities: 0,
            owner_user_id: Some(Self::sales_rep(dice.below(SALES_TEAM))),
            converted_account_id: None,
            converted_contact_id: None,
            converted_opportunity_id: None,
            converted_at: None,
            routed_partner_id: None,
            routed_at: None,
            respond_by: None,
            accepted_at: None,
            decline_reason: None,
        }
    }

    /// Task `n`: on an account, assigned to one of the sales team, due within two weeks
    /// of today; most in the past are done.
    pub fn task_row(&self, n: usize) -> task::Model {
        let mut dice = Dice::new(self.seed, T_TASK, n);
        let account = self.account_id(dice.below(self.sizes.accounts));
        let due =
            Utc::now() + chrono::Duration::minutes(dice.below(28 * 24 * 60) as i64 - 14 * 24 * 60);
        let assignee = Self::sales_rep(dice.below(SALES_TEAM));
        let done = due < Utc::now() && dice.chance(0.8);
        task::Model {
            id: self.id("task", T_TASK, n),
            external_id: None,
            external_namespace: String::new(),
            version: 1,
            created_at: due - chrono::Duration::days(3),
            updated_at: due - chrono::Duration::days(3),
            archived_at: None,
            record_type: RecordKind::Account,
            record_id: account.clone(),
            account_id: Some(account),
            title: format!("Follow up {}", n + 1),
            notes: None,
            due_at: due,
            remind_at: Some(due - chrono::Duration::hours(1)),
            assignee_user_id: assignee.clone(),
            created_by_user_id: Some(assignee.clone()),
            completed_at: done.then_some(due),
            completed_by_user_id: done.then_some(assignee),
            reminded_at: None,
        }
    }

    fn contact_row(&self, n: usize) -> contact::Model {
        use crm_account::seed::{FIRST_NAMES, LAST_NAMES, TITLES};
        let account = n / self.sizes.contacts_per_account;
        let mut dice = Dice::new(self.seed, T_CONTACT, n);
        let (first, last) = (*dice.pick(FIRST_NAMES), *dice.pick(LAST_NAMES));
        let created = self.at_minute(&mut dice, 900);
        contact::Model {
            id: self.id("con", T_CONTACT, n),
            external_id: None,
            external_namespace: String::new(),
            version: 1,
            created_at: created,
            updated_at: created,
            archived_at: None,
            account_id: self.account_id(account),
            email: Some(format!(
                "{}.{}.{n}@acc{account}.example",
                first.to_lowercase(),
                last.to_lowercase()
            )),
            phone: Some(format!("+49 30 {:07}", 1_000_000 + dice.below(8_999_999))),
            title: Some(dice.pick(TITLES).to_string()),
            consent_marketing_email: dice.chance(0.6),
            consent_marketing_phone: dice.chance(0.3),
            consent_partner_sharing_email: dice.chance(0.5),
            consent_partner_sharing_phone: dice.chance(0.4),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
        }
    }

    fn product_price(&self, p: usize) -> i64 {
        let mut dice = Dice::new(self.seed, T_PRODUCT, p);
        500 + dice.below(99_500) as i64
    }

    fn product_row(&self, p: usize, partners: &[ScalePartner]) -> product::Model {
        use crm_order_visibility::seed::{PRODUCT_KINDS, PRODUCT_SERIES};
        let mut dice = Dice::new(self.seed, T_PRODUCT, p);
        let price = 500 + dice.below(99_500) as i64; // same draw as product_price
        let name = format!(
            "{} {} {}",
            dice.pick(PRODUCT_KINDS),
            dice.pick(PRODUCT_SERIES),
            p + 1
        );
        product::Model {
            id: self.product_id(p),
            external_id: None,
            external_namespace: String::new(),
            version: 1,
            created_at: epoch(),
            updated_at: epoch(),
            archived_at: None,
            sku: format!("SKU-{:07}", p + 1),
            description: Some(format!("{name}: benchmark catalogue item.")),
            name,
            supplier_partner_id: partners[self.supplier_of_product(p)].id.clone(),
            unit_price_minor: price,
            currency: "EUR".into(),
        }
    }

    fn order_rows(
        &self,
        n: usize,
        partners: &[ScalePartner],
    ) -> (
        order::Model,
        Vec<order_line::Model>,
        Vec<account_share::Model>,
    ) {
        use crm_order_visibility::seed::ORDER_STATUSES;
        let facts = self.order_facts(n);
        let order_id = self.order_id(n);
        let mut dice = Dice::new(self.seed ^ 0x11, T_ORDER, n);
        let mut total = 0;
        let lines: Vec<order_line::Model> = facts
            .products
            .iter()
            .enumerate()
            .map(|(k, &p)| {
                let quantity = 1 + dice.below(20) as i32;
                let price = self.product_price(p);
                total += price * i64::from(quantity);
                order_line::Model {
                    id: self.id("oln", T_ORDER ^ 0xFF, n * self.sizes.lines_per_order + k),
                    external_id: None,
                    external_namespace: String::new(),
                    version: 1,
                    created_at: facts.created,
                    updated_at: facts.created,
                    archived_at: None,
                    order_id: order_id.clone(),
                    line_number: Some(k as i32 + 1),
                    product_id: self.product_id(p),
                    quantity,
                    unit_price_minor: price,
                    currency: "EUR".into(),
                    status: LineStatus::Confirmed,
                    expected_date: None,
                }
            })
            .collect();
        let distributor = facts
            .distributor
            .map(|d| partners[self.sizes.suppliers + d].id.clone());
        let account_id = self.account_id(facts.account);
        let source = crm_account::shares::source_of(&order_id);
        let mut suppliers: Vec<usize> = facts
            .products
            .iter()
            .map(|&p| self.supplier_of_product(p))
            .collect();
        suppliers.sort_unstable();
        suppliers.dedup();
        let mut shares: Vec<account_share::Model> = suppliers
            .iter()
            .map(|&s| (partners[s].id.as_str(), Scope::BuysMyProducts))
            .chain(distributor.as_deref().map(|d| (d, Scope::FulfilsItsOrders)))
            .enumerate()
            .map(|(k, (partner_id, cause))| {
                ShareRow {
                    id: self.id("shr", T_ORDER ^ 0xAB, n * 8 + k),
                    account_id: &account_id,
                    partner_id,
                    cause,
                    source: &source,
                    at: facts.created,
                }
                .model()
            })
            .collect();
        shares.shrink_to_fit();
        let order = order::Model {
            number: format!("SO-{:08}", n + 1),
            id: order_id,
            external_id: None,
            external_namespace: String::new(),
            version: 1,
            created_at: facts.created,
            updated_at: facts.created,
            archived_at: None,
            account_id,
            status: ORDER_STATUSES[n % ORDER_STATUSES.len()],
            placed_at: Some(facts.created),
            currency: "EUR".into(),
            total_minor: total,
            fulfilling_distributor_id: distributor,
            internal_note: None,
        };
        (order, lines, shares)
    }

    fn article_rows(&self, n: usize) -> (article::Model, Vec<article_product::Model>) {
        use crm_knowledge_base::seed::PER_PRODUCT;
        let mut dice = Dice::new(self.seed, T_ARTICLE, n);
        let products = self.product_count();
        let product = (n * 7919) % products;
        let (title, audiences, tags, body) = PER_PRODUCT[n % PER_PRODUCT.len()];
        let name = format!("product {}", product + 1);
        let sku = format!("SKU-{:07}", product + 1);
        let fill = |t: &str| t.replace("{name}", &name).replace("{sku}", &sku);
        let created = self.at_minute(&mut dice, 600);
        let status = if dice.chance(0.85) {
            ArticleStatus::Published
        } else {
            ArticleStatus::Draft
        };
        let id = self.id("art", T_ARTICLE, n);
        let product_id = self.product_id(product);
        (
            article::Model {
                title: format!("{} (#{})", fill(title), n + 1),
                body: fill(body),
                audiences: encode_set(
                    audiences
                        .iter()
                        .map(|a| crm_service_common::domain::label(*a)),
                ),
                status,
                revision: 1,
                last_revision: 1,
                tiers: String::new(),
                pending_title: None,
                pending_body: None,
                pending_tags: None,
                pending_audiences: None,
                pending_tiers: None,
                pending_status: None,
                pending_revision: None,
                edited_by: None,
                published_at: (status == ArticleStatus::Published).then_some(created),
                tags: encode_set(tags.iter().map(|t| t.to_string())),
                product_ids: encode_set([product_id.clone()]),
                id: id.clone(),
                external_id: None,
                external_namespace: String::new(),
                version: 1,
                created_at: created,
                updated_at: created,
                archived_at: None,
            },
            vec![article_product::Model {
                article_id: id,
                product_id,
            }],
        )
    }

    /// The demo directory of this world: internal users and an admin and a user per
    /// partner (password: the demo password).
    pub fn users(&self) -> Vec<identity::DemoUser> {
        let partners: Vec<crm_account::seed::SeededPartner> = self
            .partners()
            .into_iter()
            .map(|p| crm_account::seed::SeededPartner {
                email_domain: format!("{}.example", p.persona),
                territories: Vec::new(),
                id: p.id,
                name: p.name,
                kind: match p.kind {
                    PartnerKind::Supplier => crm_service_common::principal::PrincipalKind::Supplier,
                    PartnerKind::Distributor => {
                        crm_service_common::principal::PrincipalKind::Distributor
                    }
                },
                persona: p.persona,
            })
            .collect();
        identity::demo_users(&partners)
    }
}

/// What a persona must see in a scale world, computed by the generator alone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expected {
    /// Rows per table, as `crm bench` checks them by SQL.
    pub tables: Vec<(&'static str, &'static str, u64)>,
    pub large_supplier: PersonaCounts,
    pub small_supplier: PersonaCounts,
    pub distributor: PersonaCounts,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PersonaCounts {
    pub partner_index: usize,
    pub accounts: u64,
    pub orders: u64,
    pub order_lines: u64,
}

/// A share row the services did not write by hand (no grantor, expiry or reason).
struct ShareRow<'a> {
    id: String,
    account_id: &'a str,
    partner_id: &'a str,
    cause: Scope,
    source: &'a str,
    at: DateTime<Utc>,
}

impl ShareRow<'_> {
    fn model(self) -> account_share::Model {
        account_share::Model {
            id: self.id,
            external_id: None,
            external_namespace: String::new(),
            version: 1,
            created_at: self.at,
            updated_at: self.at,
            archived_at: None,
            account_id: self.account_id.to_owned(),
            partner_id: self.partner_id.to_owned(),
            cause: self.cause.name().to_owned(),
            source: Some(self.source.to_owned()),
            granted_by: None,
            expires_at: None,
            reason: None,
        }
    }
}

impl ScaleWorld {
    /// The benchmark personas: the large supplier, the smallest supplier by lines, and
    /// distributor 0; and what each must see.
    pub fn expected(&self) -> Expected {
        let s = self.sizes;
        let partners = self.partners();
        let small = s.suppliers - 1;
        let distributor = s.suppliers;
        let mut seen: [HashSet<usize>; 3] = Default::default();
        let mut counts: [PersonaCounts; 3] = Default::default();
        for (k, index) in [0, small, distributor].into_iter().enumerate() {
            counts[k].partner_index = index;
        }
        let territories_of_distributor = &partners[distributor].territories;
        let mut shares = 0u64;
        for n in 0..s.orders {
            let facts = self.order_facts(n);
            let mut suppliers: Vec<usize> = facts
                .products
                .iter()
                .map(|&p| self.supplier_of_product(p))
                .collect();
            for (k, supplier) in [0, small].into_iter().enumerate() {
                let lines = suppliers.iter().filter(|&&x| x == supplier).count() as u64;
                if lines > 0 {
                    counts[k].orders += 1;
                    counts[k].order_lines += lines;
                    seen[k].insert(facts.account);
                }
            }
            if facts.distributor == Some(0) {
                counts[2].orders += 1;
                counts[2].order_lines += s.lines_per_order as u64;
                seen[2].insert(facts.account);
            }
            suppliers.sort_unstable();
            suppliers.dedup();
            shares += suppliers.len() as u64 + u64::from(facts.distributor.is_some());
        }
        let coverage = self.coverage(&partners);
        for n in 0..s.accounts {
            let territory = self.account_territory(n);
            if territories_of_distributor.contains(&territory) {
                seen[2].insert(n);
            }
            shares += coverage[territory].len() as u64;
        }
        for k in 0..3 {
            counts[k].accounts = seen[k].len() as u64;
        }
        let articles = s.articles as u64;
        let [large_supplier, small_supplier, distributor] = counts;
        Expected {
            tables: vec![
                ("account", "territories", s.territories as u64),
                ("account", "partners", s.partners() as u64),
                (
                    "account",
                    "partner_territories",
                    partners.iter().map(|p| p.territories.len() as u64).sum(),
                ),
                ("account", "accounts", s.accounts as u64),
                (
                    "account",
                    "contacts",
                    (s.accounts * s.contacts_per_account) as u64,
                ),
                ("account", "account_shares", shares),
                ("account", "opportunities", s.opportunities as u64),
                ("account", "cases", s.cases as u64),
                ("account", "leads", s.leads as u64),
                ("account", "tasks", s.tasks as u64),
                ("order_visibility", "products", self.product_count() as u64),
                ("order_visibility", "orders", s.orders as u64),
                (
                    "order_visibility",
                    "order_lines",
                    (s.orders * s.lines_per_order) as u64,
                ),
                ("knowledge_base", "articles", articles),
                ("knowledge_base", "article_products", articles),
            ],
            large_supplier,
            small_supplier,
            distributor,
        }
    }
}

/// Counts rows of `table` by SQL.
pub async fn count_rows(db: &DatabaseConnection, table: &str) -> anyhow::Result<u64> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await?
        .context("COUNT returned no row")?;
    Ok(row.try_get::<i64>("", "n")? as u64)
}

/// The connection of `service` (as `Expected::tables` names it).
pub fn database<'a>(dbs: &'a Databases, service: &str) -> &'a DatabaseConnection {
    match service {
        "account" => &dbs.account,
        "order_visibility" => &dbs.order_visibility,
        "knowledge_base" => &dbs.knowledge_base,
        _ => &dbs.identity,
    }
}

/// What the databases hold of this world.
#[derive(Debug, PartialEq)]
pub enum Holding {
    /// Every table has the expected count and the world's first account is there.
    ThisWorld,
    /// No accounts, products or articles.
    Nothing,
    /// Something else: another world, the demo world, or real data.
    Other(String),
}

pub async fn holding(
    dbs: &Databases,
    world: &ScaleWorld,
    expected: &Expected,
) -> anyhow::Result<Holding> {
    let mut mismatches = Vec::new();
    let mut any = false;
    for (service, table, want) in &expected.tables {
        let got = count_rows(database(dbs, service), table).await?;
        any |= got > 0;
        if got != *want {
            mismatches.push(format!("{table}: {got} rows, this world has {want}"));
        }
    }
    if !any {
        return Ok(Holding::Nothing);
    }
    if mismatches.is_empty() {
        let first = account::Entity::find_by_id(world.account_id(0))
            .one(&dbs.account)
            .await?;
        if first.is_some() {
            return Ok(Holding::ThisWorld);
        }
        mismatches.push("the counts match but the ids are another seed's".into());
    }
    Ok(Holding::Other(mismatches.join("; ")))
}

/// Makes the databases hold `world`: reuses them when they already do (`None`), loads it
/// when they are empty (the free-disk note and what the load wrote), and refuses databases
/// that hold anything else.
pub async fn ensure_loaded(
    dbs: &Databases,
    data_dir: &std::path::Path,
    world: &ScaleWorld,
    expected: &Expected,
) -> anyhow::Result<Option<(String, LoadReport)>> {
    match holding(dbs, world, expected).await? {
        Holding::ThisWorld => Ok(None),
        Holding::Other(why) => anyhow::bail!(
            "the databases hold other data ({why}); point DATABASE_URL (or --data-dir) at an empty database for the benchmark world"
        ),
        Holding::Nothing => {
            let disk = check_disk(dbs, data_dir, &world.sizes).await?;
            tracing::info!(%disk, sizes = ?world.sizes, "loading the scale world");
            let report = load(dbs, world).await?;
            Ok(Some((disk, report)))
        }
    }
}

/// What a load wrote and how fast.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub rows: u64,
    /// Writing the rows (generation included).
    pub write: Duration,
    /// Rebuilding the secondary indexes and refreshing statistics (PostgreSQL).
    pub index: Duration,
    pub tables: Vec<(String, u64, Duration)>,
}

impl LoadReport {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / (self.write + self.index).as_secs_f64().max(1e-9)
    }
}

/// Bytes of disk a world of `sizes` needs on PostgreSQL (measured on the full world:
/// about 14 GB with indexes; WAL comes and goes on top).
pub fn disk_needed(sizes: &Sizes) -> u64 {
    // Each account also has about four territory share rows (one per covering distributor).
    let rows = (sizes.accounts * (1 + sizes.contacts_per_account + 4)
        + sizes.orders * (1 + sizes.lines_per_order + 3)) as u64;
    rows * 700 + 200_000_000
}

/// Free bytes on the file system that holds `path`, from `df` (None if unknown).
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let available_kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(available_kib * 1024)
}

/// The directory where PostgreSQL keeps its data, when the role may read the setting.
async fn postgres_data_directory(db: &DatabaseConnection) -> Option<std::path::PathBuf> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT setting FROM pg_settings WHERE name = 'data_directory'",
        ))
        .await
        .ok()??;
    row.try_get::<String>("", "setting").ok().map(Into::into)
}

/// Refuses to start a load that would not fit on disk.
pub async fn check_disk(
    dbs: &Databases,
    data_dir: &std::path::Path,
    sizes: &Sizes,
) -> anyhow::Result<String> {
    let needed = disk_needed(sizes);
    let place = match dbs.account.get_database_backend() {
        DbBackend::Postgres => postgres_data_directory(&dbs.account).await,
        _ => Some(data_dir.to_path_buf()),
    };
    let free = place.as_deref().and_then(free_bytes);
    let gb = |b: u64| b as f64 / 1e9;
    match (free, place) {
        (Some(free), Some(place)) if free < needed => anyhow::bail!(
            "the world needs about {:.1} GB of disk and {} has {:.1} GB free",
            gb(needed),
            place.display(),
            gb(free)
        ),
        (Some(free), Some(place)) => Ok(format!(
            "needs about {:.1} GB; {:.1} GB free at {}",
            gb(needed),
            gb(free),
            place.display()
        )),
        _ => Ok(format!(
            "needs about {:.1} GB (free space of the database server unknown)",
            gb(needed)
        )),
    }
}

/// One value in PostgreSQL's `COPY … FROM STDIN` text format.
fn copy_text(value: &Value, out: &mut Vec<u8>) {
    use std::io::Write;
    let text = |s: &str, out: &mut Vec<u8>| {
        for b in s.bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.push(b),
            }
        }
    };
    let null = |out: &mut Vec<u8>| out.extend_from_slice(b"\\N");
    let _ = match value {
        Value::String(Some(s)) => {
            text(s, out);
            Ok(())
        }
        Value::Enum(sea_orm::sea_query::OptionEnum::Some(e)) => {
            text(&e.value, out);
            Ok(())
        }
        Value::Bool(Some(b)) => write!(out, "{}", if *b { "t" } else { "f" }),
        Value::Int(Some(n)) => write!(out, "{n}"),
        Value::BigInt(Some(n)) => write!(out, "{n}"),
        Value::ChronoDateTimeUtc(Some(t)) => write!(out, "{}", t.to_rfc3339()),
        Value::ChronoDate(Some(d)) => write!(out, "{d}"),
        _ => {
            null(out);
            Ok(())
        }
    };
}

/// Writes rows of one table: `COPY` on PostgreSQL, chunked multi-row inserts (in one
/// transaction) on SQLite. Returns the row count.
async fn write_rows<E, I>(db: &DatabaseConnection, rows: I) -> anyhow::Result<u64>
where
    E: EntityTrait,
    E::Model: sea_orm::IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
    I: Iterator<Item = E::Model>,
{
    use sea_orm::sea_query::Iden;
    let table = E::default().to_string();
    let mut written = 0u64;
    match db.get_database_backend() {
        DbBackend::Postgres => {
            use sea_orm::sqlx::postgres::PgPoolCopyExt;
            let columns: Vec<E::Column> = E::Column::iter().collect();
            let names: Vec<String> = columns
                .iter()
                .map(|c| format!("\"{}\"", c.to_string()))
                .collect();
            let pool = db.get_postgres_connection_pool();
            let mut copy = pool
                .copy_in_raw(&format!("COPY {table} ({}) FROM STDIN", names.join(", ")))
                .await
                .with_context(|| format!("starting COPY into {table}"))?;
            let mut buffer = Vec::with_capacity(1 << 20);
            for row in rows {
                for (k, column) in columns.iter().enumerate() {
                    if k > 0 {
                        buffer.push(b'\t');
                    }
                    copy_text(&row.get(*column), &mut buffer);
                }
                buffer.push(b'\n');
                written += 1;
                if buffer.len() >= 1 << 20 {
                    copy.send(std::mem::take(&mut buffer)).await?;
                    buffer.reserve(1 << 20);
                }
            }
            if !buffer.is_empty() {
                copy.send(buffer).await?;
            }
            copy.finish()
                .await
                .with_context(|| format!("COPY into {table}"))?;
        }
        _ => {
            let txn = db.begin().await?;
            let mut rows = rows.peekable();
            while rows.peek().is_some() {
                let chunk: Vec<E::ActiveModel> = rows
                    .by_ref()
                    .take(200)
                    .map(sea_orm::IntoActiveModel::into_active_model)
                    .collect();
                written += chunk.len() as u64;
                E::insert_many(chunk).exec_without_returning(&txn).await?;
            }
            txn.commit().await?;
        }
    }
    Ok(written)
}

/// The secondary indexes of `tables` (PostgreSQL): name and definition, so they can be
/// dropped for a bulk load and created again after it.
async fn secondary_indexes(
    db: &DatabaseConnection,
    tables: &[&str],
) -> anyhow::Result<Vec<(String, String)>> {
    let list = tables
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i \
                 WHERE i.schemaname = current_schema() AND i.tablename IN ({list}) \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                     WHERE c.conname = i.indexname AND c.contype = 'p')"
            ),
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "indexname")?, r.try_get("", "indexdef")?)))
        .collect()
}

/// Loads `tables` of one service with `load`, the secondary indexes dropped meanwhile
/// (PostgreSQL), then rebuilds them and refreshes the planner's statistics.
async fn bulk<F>(
    db: &DatabaseConnection,
    tables: &[&str],
    report: &mut LoadReport,
    load: F,
) -> anyhow::Result<()>
where
    F: AsyncFnOnce(&DatabaseConnection, &mut LoadReport) -> anyhow::Result<()>,
{
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let indexes = if postgres {
        let indexes = secondary_indexes(db, tables).await?;
        for (name, _) in &indexes {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        indexes
    } else {
        Vec::new()
    };
    let started = Instant::now();
    load(db, report).await?;
    report.write += started.elapsed();
    let started = Instant::now();
    if postgres {
        db.execute_unprepared("SET maintenance_work_mem = '512MB'")
            .await
            .ok();
        for (_, definition) in &indexes {
            db.execute_unprepared(definition).await?;
        }
    }
    // VACUUM also sets the visibility map, without which PostgreSQL cannot answer from an
    // index alone (the share and line scopes rely on index-only scans).
    let refresh = if postgres {
        "VACUUM (ANALYZE)"
    } else {
        "ANALYZE"
    };
    for table in tables {
        db.execute_unprepared(&format!("{refresh} {table}")).await?;
    }
    report.index += started.elapsed();
    Ok(())
}

fn timed(report: &mut LoadReport, table: &str, rows: u64, started: Instant) {
    report.rows += rows;
    report
        .tables
        .push((table.to_owned(), rows, started.elapsed()));
    tracing::info!(
        table,
        rows,
        seconds = started.elapsed().as_secs_f64(),
        "loaded"
    );
}

/// Loads the whole world into empty databases.
pub async fn load(dbs: &Databases, world: &ScaleWorld) -> anyhow::Result<LoadReport> {
    let s = world.sizes;
    let partners = world.partners();
    let mut report = LoadReport::default();
    let w = *world;

    let account_tables = [
        "territories",
        "partners",
        "partner_territories",
        "accounts",
        "contacts",
        "account_shares",
        "partner_accounts",
        "opportunities",
        "cases",
        "leads",
        "tasks",
    ];
    let ps = partners.clone();
    bulk(
        &dbs.account,
        &account_tables,
        &mut report,
        async move |db, report| {
            let started = Instant::now();
            let codes = crm_account::seed::TERRITORIES;
            let rows = write_rows::<territory::Entity, _>(
                db,
                (0..s.territories).map(|n| territory::Model {
                    id: w.territory_id(n),
                    external_id: None,
                    external_namespace: String::new(),
                    version: 1,
                    created_at: epoch(),
                    updated_at: epoch(),
                    archived_at: None,
                    code: format!("{}-{n:02}", codes[n % codes.len()].0),
                    name: format!("{} {n:02}", codes[n % codes.len()].1),
                }),
            )
            .await?;
            timed(report, "territories", rows, started);
            let started = Instant::now();
            let rows = write_rows::<partner::Entity, _>(
                db,
                ps.iter().enumerate().map(|(n, p)| partner::Model {
                    id: p.id.clone(),
                    external_id: None,
                    external_namespace: String::new(),
                    version: 1,
                    created_at: epoch(),
                    updated_at: epoch(),
                    archived_at: None,
                    name: p.name.clone(),
                    kind: p.kind,
                    tier: *[
                        PartnerTier::Platinum,
                        PartnerTier::Gold,
                        PartnerTier::Silver,
                        PartnerTier::Registered,
                    ]
                    .get(n % 4)
                    .unwrap_or(&PartnerTier::Registered),
                }),
            )
            .await?;
            let coverage = write_rows::<partner_territory::Entity, _>(
                db,
                ps.iter().flat_map(|p| {
                    p.territories.iter().map(|&t| partner_territory::Model {
                        partner_id: p.id.clone(),
                        territory_id: w.territory_id(t),
                    })
                }),
            )
            .await?;
            timed(report, "partners", rows + coverage, started);
            let started = Instant::now();
            let rows =
                write_rows::<account::Entity, _>(db, (0..s.accounts).map(|n| w.account_row(n)))
                    .await?;
            timed(report, "accounts", rows, started);
            let started = Instant::now();
            let rows = write_rows::<contact::Entity, _>(
                db,
                (0..s.accounts * s.contacts_per_account).map(|n| w.contact_row(n)),
            )
            .await?;
            timed(report, "contacts", rows, started);
            let started = Instant::now();
            let coverage = w.coverage(&ps);
            let rows = write_rows::<account_share::Entity, _>(
                db,
                (0..s.orders)
                    .flat_map(|n| w.order_rows(n, &ps).2)
                    .chain((0..s.accounts).flat_map(|n| w.territory_share_rows(n, &coverage, &ps))),
            )
            .await?;
            timed(report, "account_shares", rows, started);
            let started = Instant::now();
            crm_account::partner_accounts::refresh(db, sea_orm::sea_query::Condition::all())
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            let rows = count_rows(db, "partner_accounts").await?;
            timed(report, "partner_accounts", rows, started);
            let started = Instant::now();
            let rows = write_rows::<opportunity::Entity, _>(
                db,
                (0..s.opportunities).map(|n| w.opportunity_row(n)),
            )
            .await?;
            timed(report, "opportunities", rows, started);
            let started = Instant::now();
            let rows =
                write_rows::<case::Entity, _>(db, (0..s.cases).map(|n| w.case_row(n))).await?;
            timed(report, "cases", rows, started);
            let started = Instant::now();
            let rows =
                write_rows::<lead::Entity, _>(db, (0..s.leads).map(|n| w.lead_row(n))).await?;
            timed(report, "leads", rows, started);
            let started = Instant::now();
            let rows =
                write_rows::<task::Entity, _>(db, (0..s.tasks).map(|n| w.task_row(n))).await?;
            timed(report, "tasks", rows, started);
            Ok(())
        },
    )
    .await
    .context("loading the account service's tables")?;

    let ps = partners.clone();
    bulk(
        &dbs.order_visibility,
        &["products", "orders", "order_lines", "order_suppliers"],
        &mut report,
        async move |db, report| {
            let started = Instant::now();
            let rows = write_rows::<product::Entity, _>(
                db,
                (0..w.product_count()).map(|p| w.product_row(p, &ps)),
            )
            .await?;
            timed(report, "products", rows, started);
            let started = Instant::now();
            let rows =
                write_rows::<order::Entity, _>(db, (0..s.orders).map(|n| w.order_rows(n, &ps).0))
                    .await?;
            timed(report, "orders", rows, started);
            let started = Instant::now();
            let rows = write_rows::<order_line::Entity, _>(
                db,
                (0..s.orders).flat_map(|n| w.order_rows(n, &ps).1),
            )
            .await?;
            timed(report, "order_lines", rows, started);
            let started = Instant::now();
            crm_order_visibility::order_suppliers::refresh(
                db,
                sea_orm::sea_query::Condition::all(),
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
            let rows = count_rows(db, "order_suppliers").await?;
            timed(report, "order_suppliers", rows, started);
            Ok(())
        },
    )
    .await
    .context("loading the order service's tables")?;

    bulk(
        &dbs.knowledge_base,
        &["articles", "article_products"],
        &mut report,
        async move |db, report| {
            let started = Instant::now();
            let rows =
                write_rows::<article::Entity, _>(db, (0..s.articles).map(|n| w.article_rows(n).0))
                    .await?;
            let links = write_rows::<article_product::Entity, _>(
                db,
                (0..s.articles).flat_map(|n| w.article_rows(n).1),
            )
            .await?;
            timed(report, "articles", rows + links, started);
            Ok(())
        },
    )
    .await
    .context("loading the knowledge base's tables")?;

    if !identity::is_seeded(&dbs.identity).await? {
        identity::seed(&dbs.identity, &world.users()).await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partners_are_uneven_and_products_cover_every_supplier() {
        let world = ScaleWorld::new(3, 1.0);
        let s = world.sizes;
        assert_eq!(s.partners(), 200);
        assert!((49_000..=50_100).contains(&world.product_count()));
        for n in 0..s.suppliers {
            let (start, end) = world.products_of_supplier(n);
            assert!(start < end, "supplier {n} has products");
            assert_eq!(world.supplier_of_product(start), n);
            assert_eq!(world.supplier_of_product(end - 1), n);
        }
        // Line shares over a sample of orders: ~10% large, < 0.1% for a small supplier.
        let mut per_supplier = vec![0u64; s.suppliers];
        let orders = 50_000;
        for n in 0..orders {
            for p in world.order_facts(n).products {
                per_supplier[world.supplier_of_product(p)] += 1;
            }
        }
        let lines = (orders * s.lines_per_order) as f64;
        let large = per_supplier[0] as f64 / lines;
        assert!(
            (0.09..0.11).contains(&large),
            "large supplier share {large}"
        );
        let small = per_supplier[s.suppliers - 1] as f64 / lines;
        assert!(small < 0.001, "small supplier share {small}");
    }

    #[test]
    fn rows_are_a_function_of_seed_and_index() {
        let world = ScaleWorld::new(9, 0.001);
        let partners = world.partners();
        assert_eq!(world.account_row(5), world.account_row(5));
        assert_eq!(
            world.order_rows(7, &partners).1,
            world.order_rows(7, &partners).1
        );
        assert_ne!(
            world.account_id(1),
            ScaleWorld::new(10, 0.001).account_id(1)
        );
        // The territory draw of the account row and the counting pass agree.
        let row = world.account_row(11);
        assert_eq!(
            row.territory_id,
            Some(world.territory_id(world.account_territory(11)))
        );
    }

    #[test]
    fn copy_text_escapes_and_marks_null() {
        let mut out = Vec::new();
        copy_text(&Value::String(Some("a\tb\\c\nd".into())), &mut out);
        out.push(b'|');
        copy_text(&Value::String(None), &mut out);
        out.push(b'|');
        copy_text(&Value::Bool(Some(true)), &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "a\\tb\\\\c\\nd|\\N|t");
    }
}
