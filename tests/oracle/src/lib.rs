//! The access matrix (`shared/ACCESS-MATRIX.md`) as plain Rust over an in-memory world:
//! which accounts, contacts, interactions, orders, lines, shipments and products a persona
//! may read, and which field values it sees. Written from the matrix's words, not from
//! the policy files or any service's scope code (this crate depends on neither), so the
//! property tests that compare the API with it test the product's rules, not themselves.

use std::collections::BTreeSet;

pub mod demand;
pub mod reads;

pub type Id = String;

/// Seconds since an epoch the world chooses (share expiry is compared with `now`).
pub type Time = i64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartnerKind {
    Supplier,
    Distributor,
}

#[derive(Clone, Debug)]
pub struct Partner {
    pub id: Id,
    pub kind: PartnerKind,
    /// Territory ids it covers (distributors).
    pub territories: Vec<Id>,
    /// Its programme tier (`GOLD`, …), when known.
    pub tier: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Account {
    pub id: Id,
    pub territory: Option<Id>,
    pub owner: Option<Id>,
    pub domain: Option<String>,
    pub internal_note: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Contact {
    pub id: Id,
    pub account: Id,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub partner_sharing_email: bool,
    pub partner_sharing_phone: bool,
    pub marketing_email: bool,
    pub marketing_phone: bool,
}

#[derive(Clone, Debug)]
pub struct Interaction {
    pub id: Id,
    pub account: Id,
    pub partner_visible: bool,
    pub body: Option<String>,
    /// The partner organisation whose user wrote it (`None`: the company's staff).
    pub author_partner: Option<Id>,
    /// The user who wrote it.
    pub author_user: Option<Id>,
}

#[derive(Clone, Debug)]
pub struct Product {
    pub id: Id,
    pub supplier: Id,
}

#[derive(Clone, Debug)]
pub struct Order {
    pub id: Id,
    pub account: Id,
    pub distributor: Option<Id>,
    pub internal_note: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Line {
    pub id: Id,
    pub order: Id,
    pub product: Id,
    pub archived: bool,
}

#[derive(Clone, Debug)]
pub struct Shipment {
    pub id: Id,
    pub order: Id,
}

/// A share an internal user granted by hand.
#[derive(Clone, Debug)]
pub struct ManualShare {
    pub account: Id,
    pub partner: Id,
    pub expires_at: Option<Time>,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub struct Lead {
    pub id: Id,
    pub owner: Option<Id>,
    /// The partner organisation the lead was routed to.
    pub routed_to: Option<Id>,
}

#[derive(Clone, Debug)]
pub struct Opportunity {
    pub id: Id,
    pub account: Id,
    pub owner: Option<Id>,
    /// The partner organisation the deal is attributed to (deal registration).
    pub attributed_to: Option<Id>,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub id: Id,
    pub account: Id,
    /// The partner organisation that opened it.
    pub partner: Option<Id>,
}

#[derive(Clone, Debug)]
pub struct Article {
    pub id: Id,
    pub published: bool,
    /// Lower-case audience names: internal, public, supplier, distributor.
    pub audiences: Vec<String>,
    /// The partner tiers (`GOLD`, …) its partner audiences are narrowed to (empty: all).
    pub tiers: Vec<String>,
}

/// A comment on a case.
#[derive(Clone, Debug)]
pub struct CaseComment {
    pub id: Id,
    pub case: Id,
    pub partner_visible: bool,
    pub author_user: Option<Id>,
    /// The partner organisation whose user wrote it (`None`: the company's staff).
    pub author_partner: Option<Id>,
}

/// A task on a record.
#[derive(Clone, Debug)]
pub struct Task {
    pub id: Id,
    /// The record's type as the API names it (`Account`, `Case`, …) and id.
    pub record_type: String,
    pub record: Id,
    pub assignee: Id,
    pub created_by: Option<Id>,
}

/// An in-app notification to one user, or to every user of a partner organisation, about
/// a record.
#[derive(Clone, Debug)]
pub struct Notification {
    pub id: Id,
    /// The user it is for; empty when it is for a whole organisation.
    pub recipient: Id,
    /// The organisation whose users all read it, when it is for one.
    pub recipient_partner: Option<Id>,
    pub record_type: String,
    pub record: Id,
}

/// A partner's deal registration.
#[derive(Clone, Debug)]
pub struct DealRegistration {
    pub id: Id,
    /// The registering partner organisation.
    pub partner: Id,
}

/// One share row of any cause, as the sharing pages list them.
#[derive(Clone, Debug)]
pub struct ShareRow {
    pub id: Id,
    pub account: Id,
    pub granted_by: Option<Id>,
}

#[derive(Clone, Debug, Default)]
pub struct World {
    pub partners: Vec<Partner>,
    pub accounts: Vec<Account>,
    pub contacts: Vec<Contact>,
    pub interactions: Vec<Interaction>,
    pub products: Vec<Product>,
    pub orders: Vec<Order>,
    pub lines: Vec<Line>,
    pub shipments: Vec<Shipment>,
    pub shares: Vec<ManualShare>,
    pub leads: Vec<Lead>,
    pub opportunities: Vec<Opportunity>,
    pub cases: Vec<Case>,
    pub articles: Vec<Article>,
    pub territories: Vec<Id>,
    pub share_rows: Vec<ShareRow>,
    pub case_comments: Vec<CaseComment>,
    pub tasks: Vec<Task>,
    pub notifications: Vec<Notification>,
    pub registrations: Vec<DealRegistration>,
    /// (partner, user) for the user each partner persona is (its `partner_user`).
    pub partner_users: Vec<(Id, Id)>,
    /// (type, record id, partner) for every external id a partner organisation wrote;
    /// the rest were written by the company.
    pub external_ids_written_by: Vec<(String, Id, Id)>,
}

/// Who asks: an internal department, or a user of one partner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Persona {
    Internal { role: &'static str, user: Id },
    Supplier(Id),
    Distributor(Id),
}

impl Persona {
    pub fn is_partner(&self) -> bool {
        !matches!(self, Persona::Internal { .. })
    }
}

impl World {
    fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id == id)
    }

    fn product_supplier(&self, product: &str) -> Option<&str> {
        self.products
            .iter()
            .find(|p| p.id == product)
            .map(|p| p.supplier.as_str())
    }

    /// Orders with a (not archived) line of `supplier`'s product.
    fn orders_with_products_of(&self, supplier: &str) -> BTreeSet<Id> {
        self.lines
            .iter()
            .filter(|l| !l.archived && self.product_supplier(&l.product) == Some(supplier))
            .map(|l| l.order.clone())
            .collect()
    }

    /// Accounts a partner may read.
    pub fn accounts_for(&self, who: &Persona, now: Time) -> BTreeSet<Id> {
        match who {
            Persona::Internal { .. } => self.accounts.iter().map(|a| a.id.clone()).collect(),
            Persona::Supplier(me) => {
                // buys_my_products: an order of this account has a line of my product.
                let orders = self.orders_with_products_of(me);
                self.orders
                    .iter()
                    .filter(|o| orders.contains(&o.id))
                    .map(|o| o.account.clone())
                    .collect()
            }
            Persona::Distributor(me) => {
                let territories: BTreeSet<&Id> = self
                    .partner(me)
                    .map(|p| p.territories.iter().collect())
                    .unwrap_or_default();
                let mut seen: BTreeSet<Id> = self
                    .accounts
                    .iter()
                    .filter(|a| {
                        a.territory
                            .as_ref()
                            .is_some_and(|t| territories.contains(t))
                    })
                    .map(|a| a.id.clone())
                    .collect();
                seen.extend(
                    self.orders
                        .iter()
                        .filter(|o| o.distributor.as_deref() == Some(me.as_str()))
                        .map(|o| o.account.clone()),
                );
                seen.extend(
                    self.shares
                        .iter()
                        .filter(|s| {
                            s.partner == *me && !s.revoked && s.expires_at.is_none_or(|at| at > now)
                        })
                        .map(|s| s.account.clone()),
                );
                seen
            }
        }
    }

    pub fn contacts_for(&self, who: &Persona, now: Time) -> BTreeSet<Id> {
        match who {
            Persona::Internal { .. } => self.contacts.iter().map(|c| c.id.clone()).collect(),
            Persona::Supplier(_) => BTreeSet::new(),
            Persona::Distributor(_) => {
                let accounts = self.accounts_for(who, now);
                self.contacts
                    .iter()
                    .filter(|c| accounts.contains(&c.account))
                    .map(|c| c.id.clone())
                    .collect()
            }
        }
    }

    pub fn interactions_for(&self, who: &Persona, now: Time) -> BTreeSet<Id> {
        match who {
            Persona::Internal { .. } => self.interactions.iter().map(|i| i.id.clone()).collect(),
            Persona::Supplier(_) => BTreeSet::new(),
            Persona::Distributor(_) => {
                let accounts = self.accounts_for(who, now);
                self.interactions
                    .iter()
                    .filter(|i| i.partner_visible && accounts.contains(&i.account))
                    .map(|i| i.id.clone())
                    .collect()
            }
        }
    }

    pub fn orders_for(&self, who: &Persona) -> BTreeSet<Id> {
        match who {
            Persona::Internal { role, .. } if *role == "marketing" => BTreeSet::new(),
            Persona::Internal { .. } => self.orders.iter().map(|o| o.id.clone()).collect(),
            Persona::Supplier(me) => self.orders_with_products_of(me),
            Persona::Distributor(me) => self
                .orders
                .iter()
                .filter(|o| o.distributor.as_deref() == Some(me.as_str()))
                .map(|o| o.id.clone())
                .collect(),
        }
    }

    pub fn lines_for(&self, who: &Persona) -> BTreeSet<Id> {
        match who {
            Persona::Internal { role, .. } if *role == "marketing" => BTreeSet::new(),
            Persona::Internal { .. } => self.lines.iter().map(|l| l.id.clone()).collect(),
            Persona::Supplier(me) => self
                .lines
                .iter()
                .filter(|l| self.product_supplier(&l.product) == Some(me.as_str()))
                .map(|l| l.id.clone())
                .collect(),
            Persona::Distributor(_) => {
                let orders = self.orders_for(who);
                self.lines
                    .iter()
                    .filter(|l| orders.contains(&l.order))
                    .map(|l| l.id.clone())
                    .collect()
            }
        }
    }

    pub fn shipments_for(&self, who: &Persona) -> BTreeSet<Id> {
        let orders = self.orders_for(who);
        self.shipments
            .iter()
            .filter(|s| orders.contains(&s.order))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Products: every persona of the matrix reads all of them.
    pub fn products_for(&self, _who: &Persona) -> BTreeSet<Id> {
        self.products.iter().map(|p| p.id.clone()).collect()
    }

    /// The email a persona reads on a contact it may see (`None`: hidden or absent).
    pub fn contact_email(&self, who: &Persona, contact: &Contact) -> Option<String> {
        let shown = match who {
            Persona::Internal { role, .. } if *role == "marketing" => contact.marketing_email,
            Persona::Internal { .. } => true,
            _ => contact.partner_sharing_email,
        };
        if shown { contact.email.clone() } else { None }
    }

    pub fn contact_phone(&self, who: &Persona, contact: &Contact) -> Option<String> {
        let shown = match who {
            Persona::Internal { role, .. } if *role == "marketing" => contact.marketing_phone,
            Persona::Internal { .. } => true,
            _ => contact.partner_sharing_phone,
        };
        if shown { contact.phone.clone() } else { None }
    }

    /// An account's domain as a persona reads it (suppliers: hidden).
    pub fn account_domain(&self, who: &Persona, account: &Account) -> Option<String> {
        match who {
            Persona::Supplier(_) => None,
            _ => account.domain.clone(),
        }
    }

    /// An account's internal note (partners: hidden).
    pub fn account_note(&self, who: &Persona, account: &Account) -> Option<String> {
        if who.is_partner() {
            None
        } else {
            account.internal_note.clone()
        }
    }

    /// Whether a persona reads an order's total (suppliers do not).
    pub fn sees_order_total(&self, who: &Persona) -> bool {
        !matches!(who, Persona::Supplier(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World {
            partners: vec![
                Partner {
                    id: "s1".into(),
                    kind: PartnerKind::Supplier,
                    territories: vec![],
                    tier: None,
                },
                Partner {
                    id: "d1".into(),
                    kind: PartnerKind::Distributor,
                    territories: vec!["north".into()],
                    tier: None,
                },
            ],
            accounts: vec![
                Account {
                    id: "a1".into(),
                    territory: Some("north".into()),
                    owner: None,
                    domain: None,
                    internal_note: None,
                },
                Account {
                    id: "a2".into(),
                    territory: None,
                    owner: None,
                    domain: None,
                    internal_note: None,
                },
                Account {
                    id: "a3".into(),
                    territory: None,
                    owner: None,
                    domain: None,
                    internal_note: None,
                },
            ],
            products: vec![Product {
                id: "p1".into(),
                supplier: "s1".into(),
            }],
            orders: vec![Order {
                id: "o1".into(),
                account: "a2".into(),
                distributor: None,
                internal_note: None,
            }],
            lines: vec![Line {
                id: "l1".into(),
                order: "o1".into(),
                product: "p1".into(),
                archived: false,
            }],
            shares: vec![ManualShare {
                account: "a3".into(),
                partner: "d1".into(),
                expires_at: Some(100),
                revoked: false,
            }],
            ..World::default()
        }
    }

    #[test]
    fn each_cause_grants_its_accounts_and_an_expired_share_grants_nothing() {
        let w = world();
        let supplier = Persona::Supplier("s1".into());
        let distributor = Persona::Distributor("d1".into());
        assert_eq!(
            w.accounts_for(&supplier, 0),
            BTreeSet::from(["a2".to_owned()])
        );
        assert_eq!(
            w.accounts_for(&distributor, 99),
            BTreeSet::from(["a1".to_owned(), "a3".to_owned()])
        );
        assert_eq!(
            w.accounts_for(&distributor, 100),
            BTreeSet::from(["a1".to_owned()])
        );
        assert_eq!(w.orders_for(&supplier), BTreeSet::from(["o1".to_owned()]));
        assert!(w.orders_for(&distributor).is_empty());
    }
}

/// Which input fields a change may set: any field of the type's input, or only these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fields {
    Any,
    Only(&'static [&'static str]),
}

impl Fields {
    pub fn allows(self, field: &str) -> bool {
        match self {
            Fields::Any => true,
            Fields::Only(fields) => fields.contains(&field),
        }
    }
}

/// What a role may change of one record type: create and update (with the fields each may
/// set), archive. `None`: not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WriteRight {
    pub create: Option<Fields>,
    pub update: Option<Fields>,
    pub archive: bool,
}

const ALL: WriteRight = WriteRight {
    create: Some(Fields::Any),
    update: Some(Fields::Any),
    archive: true,
};

/// The matrix's "W" cells and its "Writes, field by field" section, for the record types
/// (the ones with create/update/upsert/archive mutations), per domain and role. Partner
/// roles inherit the partner user's rows; an admin changes everything.
pub fn write_right(domain: &str, role: &str, ty: &str) -> WriteRight {
    const INTERACTION_FIELDS: &[&str] = &[
        "contactId",
        "channel",
        "direction",
        "subject",
        "body",
        "occurredAt",
    ];
    const REGISTRATION_FIELDS: &[&str] = &[
        "accountId",
        "prospectName",
        "prospectDomain",
        "products",
        "estimatedAmount",
        "currency",
        "expectedClose",
        "notes",
    ];
    match (domain, role, ty) {
        ("internal", "admin", _) => ALL,
        ("internal", "sales", "Account" | "Contact" | "Interaction" | "Opportunity" | "Lead") => {
            ALL
        }
        ("internal", "marketing", "Article" | "Lead") => ALL,
        // Marketing records consents (opt-ins, unsubscribes) on any contact, nothing else.
        ("internal", "marketing", "Contact") => WriteRight {
            update: Some(Fields::Only(&["consents"])),
            ..WriteRight::default()
        },
        ("internal", "support", "Contact" | "Interaction" | "Case" | "Article" | "CaseComment") => {
            ALL
        }
        // Deal registrations: sales decides (the status, a note, the opportunity, the
        // protection, the account a prospect is); the partner's fields are the partner's.
        ("internal", "sales", "DealRegistration") => WriteRight {
            update: Some(Fields::Only(&[
                "status",
                "decisionReason",
                "opportunityId",
                "protectedUntil",
                "accountId",
            ])),
            ..WriteRight::default()
        },
        // "R, W(status) leads routed to its organisation", and why it gives one back.
        ("distributor", _, "Lead") => WriteRight {
            update: Some(Fields::Only(&["status", "declineReason"])),
            ..WriteRight::default()
        },
        // A distributor registers deals and edits and withdraws (archives) its own.
        ("distributor", _, "DealRegistration") => WriteRight {
            create: Some(Fields::Only(REGISTRATION_FIELDS)),
            update: Some(Fields::Only(REGISTRATION_FIELDS)),
            archive: true,
        },
        // Tasks: every department on the records it reads (changing those assigned to it
        // or that it created).
        ("internal", "management" | "sales" | "marketing" | "support", "Task") => ALL,
        // "Case comments: partners only the partner-visible ones"; a distributor adds its
        // own to its cases, always partner-visible (set from the writer).
        ("distributor", _, "CaseComment") => WriteRight {
            create: Some(Fields::Only(&["caseId", "body"])),
            ..WriteRight::default()
        },
        ("supplier", _, "Product") => ALL,
        // "R, W(status, expectedDate) own-product lines only".
        ("supplier", _, "OrderLine") => WriteRight {
            update: Some(Fields::Only(&["status", "expectedDate"])),
            ..WriteRight::default()
        },
        // "R, W(status, tracking) of its orders".
        ("distributor", _, "Shipment") => WriteRight {
            update: Some(Fields::Only(&["status", "trackingNumber"])),
            ..WriteRight::default()
        },
        // "create on visible accounts; change its own organisation's only"; authorship and
        // visibility are the writer's, not input.
        ("distributor", _, "Interaction") => WriteRight {
            create: Some(Fields::Only(&[
                "accountId",
                "contactId",
                "channel",
                "direction",
                "subject",
                "body",
                "occurredAt",
            ])),
            update: Some(Fields::Only(INTERACTION_FIELDS)),
            archive: true,
        },
        // "R/W own org's cases on visible accounts"; the organisation is the writer's, the
        // SLA and the internal owner are the company's.
        ("distributor", _, "Case") => WriteRight {
            create: Some(Fields::Only(&[
                "accountId",
                "contactId",
                "subject",
                "description",
                "priority",
                "channel",
            ])),
            update: Some(Fields::Only(&[
                "contactId",
                "subject",
                "description",
                "priority",
                "status",
            ])),
            archive: true,
        },
        _ => WriteRight::default(),
    }
}
