//! The access policy. `model.conf` and `policy.csv` (beside this crate's `src/`) encode
//! `ACCESS-MATRIX.md` for Casbin: a role in a domain (internal, supplier, distributor) may
//! read or write a type under a named **scope**. Roles inherit within their domain, deny
//! overrides allow, and no rule means no access.
//!
//! Casbin is asked once per (domain, role, type, action) when the policy loads: the
//! answers are compiled into a table, and requests look the table up. Rows are never
//! checked one by one with `enforce` (it costs microseconds per rule); a scope becomes a
//! SQL condition in the service that owns the rows.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use std::sync::{Arc, RwLock};

use casbin::{CoreApi, DefaultModel, Enforcer, MgmtApi, RbacApi, StringAdapter};

/// The policy type of field rules in `model.conf`: `p2, role, domain, type, action, fields`.
pub const FIELD_RULE: &str = "p2";

/// The policy type of read masks in `model.conf`: `p3, role, domain, type, field, unless`.
pub const MASK_RULE: &str = "p3";

/// When a masked field is shown after all, from a fact of the record itself. Each service
/// evaluates these on its own rows (`Scoped::holds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unless {
    /// Never: the field is always null for the role.
    Never,
    /// The contact agreed to share this detail (email or phone) with partners.
    PartnerSharingConsent,
    /// The contact agreed to marketing by this channel (email or phone).
    MarketingConsent,
    /// The interaction is marked for partners.
    PartnerVisible,
    /// The record was written by the caller's own organisation.
    OwnOrganisation,
    /// The external id was written by the caller's own organisation.
    OwnNamespace,
}

impl Unless {
    pub const ALL: [Unless; 6] = [
        Unless::Never,
        Unless::PartnerSharingConsent,
        Unless::MarketingConsent,
        Unless::PartnerVisible,
        Unless::OwnOrganisation,
        Unless::OwnNamespace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Unless::Never => "never",
            Unless::PartnerSharingConsent => "partner_sharing_consent",
            Unless::MarketingConsent => "marketing_consent",
            Unless::PartnerVisible => "partner_visible",
            Unless::OwnOrganisation => "own_organisation",
            Unless::OwnNamespace => "own_namespace",
        }
    }

    /// Why the field is empty, in words a person reads next to it.
    pub fn reason(self) -> &'static str {
        match self {
            Unless::Never => "not shared with your role",
            Unless::PartnerSharingConsent => {
                "not shared by the person (no consent to share it with partners)"
            }
            Unless::MarketingConsent => {
                "not shared by the person (no marketing consent for this channel)"
            }
            Unless::PartnerVisible => "internal only (not marked for partners)",
            Unless::OwnOrganisation => "shown only for your own organisation's records",
            Unless::OwnNamespace => "another organisation's own reference",
        }
    }
}

impl FromStr for Unless {
    type Err = PolicyError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Unless::ALL
            .into_iter()
            .find(|unless| unless.name() == name)
            .ok_or_else(|| PolicyError::Invalid(format!("unknown mask condition {name:?}")))
    }
}

/// A read mask of one role: the field is null unless `unless` holds for the record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mask {
    pub unless: Unless,
    /// The rule as written: `role, domain, type, field, unless`.
    pub rule: String,
}

/// The Casbin model and rules shipped with the product.
pub const MODEL: &str = include_str!("../model.conf");
pub const RULES: &str = include_str!("../policy.csv");

/// Who a caller is, for the policy: staff of the company, or a partner of either kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    Internal,
    Supplier,
    Distributor,
}

impl Domain {
    pub const ALL: [Domain; 3] = [Domain::Internal, Domain::Supplier, Domain::Distributor];

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Internal => "internal",
            Domain::Supplier => "supplier",
            Domain::Distributor => "distributor",
        }
    }

    /// The roles of this domain.
    pub fn roles(self) -> &'static [&'static str] {
        match self {
            Domain::Internal => &["admin", "management", "sales", "marketing", "support"],
            Domain::Supplier | Domain::Distributor => {
                &["partner_admin", "partner_manager", "partner_user"]
            }
        }
    }
}

/// The types the policy speaks of.
pub const TYPES: &[&str] = &[
    "Account",
    "Contact",
    "Interaction",
    "Lead",
    "Opportunity",
    "Case",
    "CaseComment",
    "Task",
    "Notification",
    "DealRegistration",
    "Job",
    "Product",
    "Order",
    "OrderLine",
    "Shipment",
    "Demand",
    "Article",
    "ArticleRevision",
    "ArticleFeedback",
    "CaseArticleLink",
    "Partner",
    "Territory",
    "ShareGrant",
    "User",
    "ApiKey",
    "Webhook",
    "Invitation",
    "AuditChain",
    "AuditEntry",
    "DataExport",
    "DataErasure",
];

/// What a rule lets a caller do. Rules may also say `write`: shorthand for create, update
/// and archive alike (the matcher in `model.conf` reads it so, and so does the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Read,
    Create,
    Update,
    Archive,
}

/// The shorthand rules use for create, update and archive together.
pub const WRITE: &str = "write";

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Read,
        Action::Create,
        Action::Update,
        Action::Archive,
    ];
    /// The actions that change data.
    pub const CHANGES: [Action; 3] = [Action::Create, Action::Update, Action::Archive];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Archive => "archive",
        }
    }

    /// Whether a rule's action (as written: an action or `write`) covers this one.
    pub fn covered_by(self, written: &str) -> bool {
        written == self.as_str() || (written == WRITE && self != Action::Read)
    }
}

/// Which input fields a create or update may set: every field, or only those named by the
/// policy's field rules (`p2` lines). A mutation that touches any other field is refused
/// whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldLimit {
    Any,
    Only(BTreeSet<String>),
}

impl FieldLimit {
    pub fn allows(&self, field: &str) -> bool {
        match self {
            FieldLimit::Any => true,
            FieldLimit::Only(fields) => fields.contains(field),
        }
    }

    /// The limit of several roles: any role's wider limit wins (each role may do what its
    /// rules allow, so the caller may do what any of them may).
    pub fn union(limits: impl IntoIterator<Item = FieldLimit>) -> FieldLimit {
        let mut fields = BTreeSet::new();
        for limit in limits {
            match limit {
                FieldLimit::Any => return FieldLimit::Any,
                FieldLimit::Only(more) => fields.extend(more),
            }
        }
        FieldLimit::Only(fields)
    }
}

/// The row conditions a rule may name. Each becomes SQL in the service that owns the
/// type, bound to the caller's claims (user id, partner id) and to facts that service
/// keeps (a distributor's territories, share rows with causes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every row.
    All,
    /// Rows the caller owns (`owner_id`).
    Owned,
    /// Rows the caller created (interactions).
    Own,
    /// Rows of accounts the caller owns.
    OnOwnedAccounts,
    /// Articles for internal or public audiences.
    InternalAndPublicArticles,
    /// Accounts with an order that has a line of the supplier's product (share cause).
    BuysMyProducts,
    /// Accounts in one of the distributor's territories (share cause).
    InMyTerritory,
    /// Accounts with an order the distributor fulfils (share cause).
    FulfilsItsOrders,
    /// Accounts an internal user shared with the partner, until the share expires.
    ManualShare,
    /// Rows of accounts the partner may see.
    OnVisibleAccounts,
    /// Partner-visible interactions on accounts the partner may see.
    PartnerVisibleOnVisibleAccounts,
    /// The partner's own cases on accounts it may see.
    OwnOrgCasesOnVisibleAccounts,
    /// Records written by the caller's organisation, on accounts it may see.
    OwnOrgOnVisibleAccounts,
    /// The supplier's own products.
    OwnProducts,
    /// Orders with a line of the supplier's product.
    HasMyProduct,
    /// Orders the distributor fulfils.
    FulfilledByMe,
    /// Order lines of the supplier's products.
    OwnProductLines,
    /// Lines of orders the distributor fulfils.
    LinesOfMyOrders,
    /// Shipments of orders the supplier may see.
    OfMyVisibleOrders,
    /// Shipments of orders the distributor fulfils.
    OfMyOrders,
    /// Published articles for suppliers or the public.
    PublishedForSuppliers,
    /// Published articles for distributors or the public.
    PublishedForDistributors,
    /// The caller's own partner record.
    OwnPartner,
    /// Users, keys and invitations of the caller's own organisation.
    OwnOrg,
    /// Rows of cases the caller may see (case comments).
    OnVisibleCases,
    /// Partner-visible rows of cases the caller may see.
    PartnerVisibleOnVisibleCases,
    /// Rows attached to a record the caller may see (tasks).
    OnVisibleRecords,
    /// Tasks assigned to the caller or created by it.
    AssignedOrCreated,
    /// Notifications addressed to the caller, about records it may see.
    AddressedToMe,
    /// Opportunities attributed to the partner (an approved deal registration).
    AttributedToMyOrg,
    /// Leads routed to the partner.
    RoutedToMyOrg,
}

impl Scope {
    pub const ALL: [Scope; 31] = [
        Scope::All,
        Scope::Owned,
        Scope::Own,
        Scope::OnOwnedAccounts,
        Scope::InternalAndPublicArticles,
        Scope::BuysMyProducts,
        Scope::InMyTerritory,
        Scope::FulfilsItsOrders,
        Scope::ManualShare,
        Scope::OnVisibleAccounts,
        Scope::PartnerVisibleOnVisibleAccounts,
        Scope::OwnOrgCasesOnVisibleAccounts,
        Scope::OwnOrgOnVisibleAccounts,
        Scope::OwnProducts,
        Scope::HasMyProduct,
        Scope::FulfilledByMe,
        Scope::OwnProductLines,
        Scope::LinesOfMyOrders,
        Scope::OfMyVisibleOrders,
        Scope::OfMyOrders,
        Scope::PublishedForSuppliers,
        Scope::PublishedForDistributors,
        Scope::OwnPartner,
        Scope::OwnOrg,
        Scope::OnVisibleCases,
        Scope::PartnerVisibleOnVisibleCases,
        Scope::OnVisibleRecords,
        Scope::AssignedOrCreated,
        Scope::AddressedToMe,
        Scope::AttributedToMyOrg,
        Scope::RoutedToMyOrg,
    ];

    /// The name rules use.
    pub fn name(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Owned => "owned",
            Scope::Own => "own",
            Scope::OnOwnedAccounts => "on_owned_accounts",
            Scope::InternalAndPublicArticles => "internal_and_public_articles",
            Scope::BuysMyProducts => "buys_my_products",
            Scope::InMyTerritory => "in_my_territory",
            Scope::FulfilsItsOrders => "fulfils_its_orders",
            Scope::ManualShare => "manual_share",
            Scope::OnVisibleAccounts => "on_visible_accounts",
            Scope::PartnerVisibleOnVisibleAccounts => "partner_visible_on_visible_accounts",
            Scope::OwnOrgCasesOnVisibleAccounts => "own_org_cases_on_visible_accounts",
            Scope::OwnOrgOnVisibleAccounts => "own_org_on_visible_accounts",
            Scope::OwnProducts => "own_products",
            Scope::HasMyProduct => "has_my_product",
            Scope::FulfilledByMe => "fulfilled_by_me",
            Scope::OwnProductLines => "own_product_lines",
            Scope::LinesOfMyOrders => "lines_of_my_orders",
            Scope::OfMyVisibleOrders => "of_my_visible_orders",
            Scope::OfMyOrders => "of_my_orders",
            Scope::PublishedForSuppliers => "published_for_suppliers",
            Scope::PublishedForDistributors => "published_for_distributors",
            Scope::OwnPartner => "own_partner",
            Scope::OwnOrg => "own_org",
            Scope::OnVisibleCases => "on_visible_cases",
            Scope::PartnerVisibleOnVisibleCases => "partner_visible_on_visible_cases",
            Scope::OnVisibleRecords => "on_visible_records",
            Scope::AssignedOrCreated => "assigned_or_created",
            Scope::AddressedToMe => "addressed_to_me",
            Scope::AttributedToMyOrg => "attributed_to_my_org",
            Scope::RoutedToMyOrg => "routed_to_my_org",
        }
    }
}

impl Scope {
    /// The scope in plain words, as the rows it lets a caller see ("accounts in your
    /// territories"), for summaries and explanations.
    pub fn describe(self) -> &'static str {
        match self {
            Scope::All => "all of them",
            Scope::Owned => "the ones you own",
            Scope::Own => "the ones you wrote",
            Scope::OnOwnedAccounts => "those of the accounts you own",
            Scope::InternalAndPublicArticles => "those written for internal or public audiences",
            Scope::BuysMyProducts => "accounts that ordered your products",
            Scope::InMyTerritory => "accounts in your territories",
            Scope::FulfilsItsOrders => "accounts whose orders you fulfil",
            Scope::ManualShare => "accounts our staff shared with you",
            Scope::OnVisibleAccounts => "those of the accounts you can see",
            Scope::PartnerVisibleOnVisibleAccounts => {
                "those marked for partners, on the accounts you can see"
            }
            Scope::OwnOrgCasesOnVisibleAccounts => {
                "your organisation's, on the accounts you can see"
            }
            Scope::OwnOrgOnVisibleAccounts => {
                "the ones your organisation wrote, on the accounts you can see"
            }
            Scope::OwnProducts => "your own products",
            Scope::HasMyProduct => "orders with a line of your products",
            Scope::FulfilledByMe => "orders you fulfil",
            Scope::OwnProductLines => "lines of your products",
            Scope::LinesOfMyOrders => "lines of the orders you fulfil",
            Scope::OfMyVisibleOrders => "those of the orders you can see",
            Scope::OfMyOrders => "those of the orders you fulfil",
            Scope::PublishedForSuppliers => "published ones for suppliers or the public",
            Scope::PublishedForDistributors => "published ones for distributors or the public",
            Scope::OwnPartner => "your own organisation",
            Scope::OwnOrg => "your own organisation's",
            Scope::OnVisibleCases => "those of the cases you can see",
            Scope::PartnerVisibleOnVisibleCases => {
                "those marked for partners, on the cases you can see"
            }
            Scope::OnVisibleRecords => "those on records you can see",
            Scope::AssignedOrCreated => "the ones assigned to you or that you created",
            Scope::AddressedToMe => "the ones addressed to you, about records you can see",
            Scope::AttributedToMyOrg => "deals attributed to your organisation",
            Scope::RoutedToMyOrg => "leads routed to your organisation",
        }
    }
}

/// What a caller may do with one type, for a summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeAccess {
    pub ty: &'static str,
    pub read: Vec<Grant>,
    pub write: Vec<Grant>,
}

impl TypeAccess {
    /// One plain sentence: "Orders: you see orders you fulfil; you change none."
    pub fn sentence(&self) -> String {
        let list = |grants: &[Grant]| {
            grants
                .iter()
                .map(|g| g.scope.describe())
                .collect::<Vec<_>>()
                .join(", and ")
        };
        let seen = if self.read.is_empty() {
            "none".to_owned()
        } else {
            list(&self.read)
        };
        let mut sentence = format!("{}: you see {seen}", plural(self.ty));
        if !self.write.is_empty() {
            sentence.push_str(&format!("; you may change {}", list(&self.write)));
        }
        sentence.push('.');
        sentence
    }
}

/// The plural a person reads ("Opportunities", "Order lines").
pub fn plural(ty: &str) -> String {
    match ty {
        "Opportunity" => "Opportunities".into(),
        "OrderLine" => "Order lines".into(),
        "ShareGrant" => "Sharing grants".into(),
        "CaseComment" => "Case comments".into(),
        "ApiKey" => "API keys".into(),
        "Territory" => "Territories".into(),
        other => format!("{other}s"),
    }
}

impl FromStr for Scope {
    type Err = PolicyError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.name() == name)
            .ok_or_else(|| PolicyError::Invalid(format!("unknown scope {name:?}")))
    }
}

/// One allowing rule: the scope it grants and where it is in the rules (for "why can I
/// see this?").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub scope: Scope,
    /// The rule as written: `role, domain, type, action, scope, allow`.
    pub rule: String,
}

/// What the policy decides for a role in a domain, on a type, for an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Rows in any of these scopes (their union).
    Allow(Vec<Grant>),
    /// A rule denies it (it overrides any allow).
    Denied { rule: String },
    /// No rule allows it.
    NoRule,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// Whether the caller may act on every row of the type.
    pub fn grants_all(&self) -> bool {
        matches!(self, Decision::Allow(grants) if grants.iter().any(|g| g.scope == Scope::All))
    }

    /// The scopes whose union the caller may act on (empty when not allowed).
    pub fn scopes(&self) -> Vec<Scope> {
        match self {
            Decision::Allow(grants) => grants.iter().map(|g| g.scope).collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is invalid: {0}")]
    Invalid(String),
    #[error("casbin: {0}")]
    Casbin(#[from] casbin::Error),
}

type Key = (Domain, &'static str, &'static str, Action);

/// One role's read masks, by (type or `*`, field).
type RoleMasks = BTreeMap<(String, String), Mask>;

/// A loaded policy: the Casbin enforcer and the decision table compiled from it, with
/// the version it was stored under (0: the bundled rules, never stored).
pub struct Policy {
    enforcer: Enforcer,
    table: BTreeMap<Key, Decision>,
    /// Field limits of creates and updates, compiled from the `p2` rules.
    fields: BTreeMap<Key, FieldLimit>,
    /// Read masks per (domain, role) and (type or `*`, field), from the `p3` rules, the
    /// role's inherited ones included.
    masks: BTreeMap<(Domain, &'static str), RoleMasks>,
    version: u64,
    rules: String,
}

/// One `p` rule: a role in a domain may (or may not) do an action on a type, in a scope.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub role: String,
    pub domain: String,
    pub ty: String,
    pub action: String,
    pub scope: String,
    pub effect: String,
}

impl Rule {
    /// The rule as a line of `policy.csv`.
    pub fn line(&self) -> String {
        format!(
            "p, {}, {}, {}, {}, {}, {}",
            self.role, self.domain, self.ty, self.action, self.scope, self.effect
        )
    }

    fn from_fields(fields: &[String]) -> Option<Self> {
        let [role, domain, ty, action, scope, effect] = fields else {
            return None;
        };
        Some(Self {
            role: role.clone(),
            domain: domain.clone(),
            ty: ty.clone(),
            action: action.clone(),
            scope: scope.clone(),
            effect: effect.clone(),
        })
    }
}

impl Policy {
    /// The policy shipped with the product.
    pub async fn bundled() -> Result<Self, PolicyError> {
        Self::from_text(MODEL, RULES).await
    }

    /// A policy from a model and rules (CSV). Every rule must name a known domain, role,
    /// type, action, scope and effect: a typo is an error, not a rule that never matches.
    pub async fn from_text(model: &str, rules: &str) -> Result<Self, PolicyError> {
        let model = DefaultModel::from_str(model).await?;
        let enforcer = Enforcer::new(model, StringAdapter::new(rules)).await?;
        let mut policy = Self {
            enforcer,
            table: BTreeMap::new(),
            fields: BTreeMap::new(),
            masks: BTreeMap::new(),
            version: 0,
            rules: rules.to_owned(),
        };
        policy.check_rules()?;
        policy.compile();
        Ok(policy)
    }

    /// The bundled model with stored rules, as version `version`.
    pub async fn stored(rules: &str, version: u64) -> Result<Self, PolicyError> {
        let mut policy = Self::from_text(MODEL, rules).await?;
        policy.version = version;
        Ok(policy)
    }

    /// The version this policy was stored under (0: bundled, never edited).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The rules as written (CSV, with the role hierarchy).
    pub fn rules_text(&self) -> &str {
        &self.rules
    }

    /// Every `p` rule, in order.
    pub fn rules(&self) -> Vec<Rule> {
        self.enforcer
            .get_policy()
            .iter()
            .filter_map(|fields| Rule::from_fields(fields))
            .collect()
    }

    /// The rules text with `rule` added (an error when it is already there).
    pub fn rules_with(&self, rule: &Rule) -> Result<String, PolicyError> {
        if self.rules().contains(rule) {
            return Err(PolicyError::Invalid(format!(
                "the rule is already there: {}",
                rule.line()
            )));
        }
        Ok(format!("{}\n{}\n", self.rules.trim_end(), rule.line()))
    }

    /// The rules text without `rule` (an error when there is no such rule).
    pub fn rules_without(&self, rule: &Rule) -> Result<String, PolicyError> {
        let mut removed = false;
        let kept: Vec<&str> = self
            .rules
            .lines()
            .filter(|line| {
                let fields: Vec<String> = line.split(',').map(|f| f.trim().to_owned()).collect();
                let same = fields.first().is_some_and(|f| f == "p")
                    && Rule::from_fields(&fields[1..]).as_ref() == Some(rule);
                removed |= same;
                !same
            })
            .collect();
        if !removed {
            return Err(PolicyError::Invalid(format!(
                "there is no rule {}",
                rule.line()
            )));
        }
        Ok(format!("{}\n", kept.join("\n")))
    }

    fn check_rules(&self) -> Result<(), PolicyError> {
        for rule in self.enforcer.get_policy() {
            let [role, domain, ty, action, scope, effect] = &rule[..] else {
                return Err(PolicyError::Invalid(format!(
                    "a rule needs six fields: {rule:?}"
                )));
            };
            check_subject(&rule, role, domain, ty)?;
            if action != WRITE && !Action::ALL.iter().any(|a| a.as_str() == action) {
                return Err(PolicyError::Invalid(format!("unknown action in {rule:?}")));
            }
            scope.parse::<Scope>()?;
            if effect != "allow" && effect != "deny" {
                return Err(PolicyError::Invalid(format!("unknown effect in {rule:?}")));
            }
        }
        for rule in self.enforcer.get_named_policy(MASK_RULE) {
            let [role, domain, ty, field, unless] = &rule[..] else {
                return Err(PolicyError::Invalid(format!(
                    "a mask needs five fields: {rule:?}"
                )));
            };
            check_subject(&rule, role, domain, ty)?;
            if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PolicyError::Invalid(format!(
                    "a mask names one field of the type: {rule:?}"
                )));
            }
            unless.parse::<Unless>()?;
        }
        let rules = self.enforcer.get_policy();
        for rule in self.enforcer.get_named_policy(FIELD_RULE) {
            let [role, domain, ty, action, fields] = &rule[..] else {
                return Err(PolicyError::Invalid(format!(
                    "a field rule needs five fields: {rule:?}"
                )));
            };
            if action != "create" && action != "update" {
                return Err(PolicyError::Invalid(format!(
                    "a field rule limits create or update: {rule:?}"
                )));
            }
            if fields
                .split('|')
                .any(|f| f.is_empty() || !f.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                return Err(PolicyError::Invalid(format!(
                    "a field rule names input fields separated by |: {rule:?}"
                )));
            }
            // A field rule narrows an allow rule of the same role; alone it would read as a
            // grant it is not.
            let narrows = rules.iter().any(|r| {
                r[0] == *role
                    && r[1] == *domain
                    && r[2] == *ty
                    && r[5] == "allow"
                    && (r[3] == *action || r[3] == WRITE)
            });
            if !narrows {
                return Err(PolicyError::Invalid(format!(
                    "a field rule needs an allow rule of the same role, domain, type and action: {rule:?}"
                )));
            }
        }
        Ok(())
    }

    /// Asks the rules once for every (domain, role, type, action).
    fn compile(&mut self) {
        let rules = self.enforcer.get_policy();
        let mask_rules = self.enforcer.get_named_policy(MASK_RULE);
        for domain in Domain::ALL {
            for role in domain.roles() {
                let mut roles: BTreeSet<String> = self
                    .enforcer
                    .get_implicit_roles_for_user(role, Some(domain.as_str()))
                    .into_iter()
                    .collect();
                roles.insert((*role).to_owned());
                let masks = self.masks.entry((domain, *role)).or_default();
                for m in mask_rules
                    .iter()
                    .filter(|m| roles.contains(&m[0]) && m[1] == domain.as_str())
                {
                    if let Ok(unless) = m[4].parse() {
                        masks.entry((m[2].clone(), m[3].clone())).or_insert(Mask {
                            unless,
                            rule: m.join(", "),
                        });
                    }
                }
                for ty in TYPES {
                    for action in Action::ALL {
                        let matching: Vec<&Vec<String>> = rules
                            .iter()
                            .filter(|r| {
                                roles.contains(&r[0])
                                    && r[1] == domain.as_str()
                                    && (r[2] == *ty || r[2] == "*")
                                    && action.covered_by(&r[3])
                            })
                            .collect();
                        if matches!(action, Action::Create | Action::Update) {
                            let field_rules = self.enforcer.get_named_policy(FIELD_RULE);
                            // Each allowing role limits the fields by its own field rule
                            // (none: any field); the caller may set what any of them may.
                            let limit = FieldLimit::union(
                                matching
                                    .iter()
                                    .filter(|r| r[5] == "allow")
                                    .map(|r| {
                                        let own = field_rules.iter().find(|f| {
                                            f[0] == r[0]
                                                && f[1] == r[1]
                                                && f[2] == r[2]
                                                && f[3] == action.as_str()
                                        });
                                        match own {
                                            Some(f) => FieldLimit::Only(
                                                f[4].split('|').map(str::to_owned).collect(),
                                            ),
                                            None => FieldLimit::Any,
                                        }
                                    })
                                    .collect::<Vec<_>>(),
                            );
                            self.fields.insert((domain, role, ty, action), limit);
                        }
                        let decision = if let Some(deny) = matching.iter().find(|r| r[5] == "deny")
                        {
                            Decision::Denied {
                                rule: deny.join(", "),
                            }
                        } else {
                            let mut grants: Vec<Grant> = matching
                                .iter()
                                .filter_map(|r| {
                                    Some(Grant {
                                        scope: r[4].parse().ok()?,
                                        rule: r.join(", "),
                                    })
                                })
                                .collect();
                            grants.sort();
                            grants.dedup_by(|a, b| a.scope == b.scope);
                            if grants.is_empty() {
                                Decision::NoRule
                            } else {
                                Decision::Allow(grants)
                            }
                        };
                        self.table.insert((domain, role, ty, action), decision);
                    }
                }
            }
        }
    }

    /// The compiled decision (a table look-up). An unknown role or type is not allowed.
    pub fn decide(&self, domain: Domain, role: &str, ty: &str, action: Action) -> Decision {
        let Some(role) = domain.roles().iter().find(|r| **r == role) else {
            return Decision::NoRule;
        };
        let Some(ty) = TYPES.iter().find(|t| **t == ty) else {
            return Decision::NoRule;
        };
        self.table
            .get(&(domain, *role, *ty, action))
            .cloned()
            .unwrap_or(Decision::NoRule)
    }

    /// The input fields `role` may set when it does `action` (create or update) on `ty`:
    /// its field rules, compiled. Read and archive set no fields: `Only` nothing.
    pub fn field_limit(&self, domain: Domain, role: &str, ty: &str, action: Action) -> FieldLimit {
        let Some(role) = domain.roles().iter().find(|r| **r == role) else {
            return FieldLimit::Only(BTreeSet::new());
        };
        let Some(ty) = TYPES.iter().find(|t| **t == ty) else {
            return FieldLimit::Only(BTreeSet::new());
        };
        self.fields
            .get(&(domain, *role, *ty, action))
            .cloned()
            .unwrap_or(FieldLimit::Only(BTreeSet::new()))
    }

    /// The read mask `role` has on `ty`'s `field` (a mask on every type, `*`, included):
    /// `None` when the role reads the field as it is.
    pub fn mask(&self, domain: Domain, role: &str, ty: &str, field: &str) -> Option<Mask> {
        let masks = self
            .masks
            .iter()
            .find(|((d, r), _)| *d == domain && *r == role)?
            .1;
        masks
            .get(&(ty.to_owned(), field.to_owned()))
            .or_else(|| masks.get(&("*".to_owned(), field.to_owned())))
            .cloned()
    }

    /// Every field of `ty` that `role` may find masked, with its mask.
    pub fn masks_on(&self, domain: Domain, role: &str, ty: &str) -> Vec<(String, Mask)> {
        let Some((_, masks)) = self
            .masks
            .iter()
            .find(|((d, r), _)| *d == domain && *r == role)
        else {
            return Vec::new();
        };
        let mut out: BTreeMap<String, Mask> = BTreeMap::new();
        for ((on, field), mask) in masks {
            if on == ty {
                out.insert(field.clone(), mask.clone());
            } else if on == "*" {
                out.entry(field.clone()).or_insert_with(|| mask.clone());
            }
        }
        out.into_iter().collect()
    }

    /// The field rules as written: (role, domain, type, action, fields).
    pub fn field_rules(&self) -> Vec<Vec<String>> {
        self.enforcer.get_named_policy(FIELD_RULE)
    }

    /// What a caller with `roles` in `domain` may read (and change), type by type, from the
    /// compiled table: the types it may not read are left out. A deny of any role wins.
    pub fn summary(&self, domain: Domain, roles: &[String]) -> Vec<TypeAccess> {
        let combined = |ty: &str, action: Action| -> Vec<Grant> {
            let decisions: Vec<Decision> = roles
                .iter()
                .map(|role| self.decide(domain, role, ty, action))
                .collect();
            if decisions
                .iter()
                .any(|d| matches!(d, Decision::Denied { .. }))
            {
                return Vec::new();
            }
            let mut grants: Vec<Grant> = decisions
                .into_iter()
                .flat_map(|d| match d {
                    Decision::Allow(grants) => grants,
                    _ => Vec::new(),
                })
                .collect();
            grants.sort();
            grants.dedup_by(|a, b| a.scope == b.scope);
            if grants.iter().any(|g| g.scope == Scope::All) {
                grants.retain(|g| g.scope == Scope::All);
            }
            grants
        };
        TYPES
            .iter()
            .map(|ty| TypeAccess {
                ty,
                read: combined(ty, Action::Read),
                write: {
                    let mut grants: Vec<Grant> = Action::CHANGES
                        .into_iter()
                        .flat_map(|action| combined(ty, action))
                        .collect();
                    grants.sort();
                    grants.dedup_by(|a, b| a.scope == b.scope);
                    grants
                },
            })
            .filter(|access| !access.read.is_empty() || !access.write.is_empty())
            .collect()
    }

    /// What Casbin itself answers (for tests and explanations; requests use `decide`).
    pub fn enforce(
        &self,
        domain: Domain,
        role: &str,
        ty: &str,
        action: Action,
    ) -> Result<bool, PolicyError> {
        Ok(self
            .enforcer
            .enforce((role, domain.as_str(), ty, action.as_str()))?)
    }
}

/// Checks that a rule names a known domain, a role of that domain and a known type (or `*`).
fn check_subject(rule: &[String], role: &str, domain: &str, ty: &str) -> Result<(), PolicyError> {
    let domain = Domain::ALL
        .into_iter()
        .find(|d| d.as_str() == domain)
        .ok_or_else(|| PolicyError::Invalid(format!("unknown domain in {rule:?}")))?;
    if !domain.roles().contains(&role) {
        return Err(PolicyError::Invalid(format!("unknown role in {rule:?}")));
    }
    if ty != "*" && !TYPES.contains(&ty) {
        return Err(PolicyError::Invalid(format!("unknown type in {rule:?}")));
    }
    Ok(())
}

/// The policy the bundled rules compile to, built once per process on first use.
static BUNDLED: tokio::sync::OnceCell<Arc<Policy>> = tokio::sync::OnceCell::const_new();

/// A policy installed over the bundled one (a stored, edited policy), if any.
static INSTALLED: RwLock<Option<Arc<Policy>>> = RwLock::new(None);

/// The policy requests decide with in this process: the installed one, else the bundled
/// one. Every service of the process shares it, so an installed edit applies everywhere at
/// once.
pub async fn current() -> Result<Arc<Policy>, Arc<PolicyError>> {
    if let Some(policy) = INSTALLED.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(policy.clone());
    }
    BUNDLED
        .get_or_try_init(|| async { Policy::bundled().await.map(Arc::new).map_err(Arc::new) })
        .await
        .cloned()
}

/// Replaces the policy of this process (after a policy edit or a newer snapshot). An
/// older version than the installed one is ignored, so snapshots arriving out of order
/// never roll a process back.
pub fn install(policy: Arc<Policy>) -> bool {
    let mut installed = INSTALLED.write().unwrap_or_else(|e| e.into_inner());
    if installed
        .as_ref()
        .is_some_and(|current| current.version() >= policy.version())
    {
        return false;
    }
    *installed = Some(policy);
    true
}

/// The version of the policy this process decides with (0: the bundled one).
pub fn current_version() -> u64 {
    INSTALLED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(0, |p| p.version())
}
