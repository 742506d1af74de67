//! The read side of the matrix for every type and field the API serves: which rows of a
//! type a persona reads, and for each field whether it reads the value, a mask (null), or
//! a link it may follow only to a record it may read itself. The exhaustive read-matrix
//! test walks the supergraph's types and asks [`field_read`] for every field: a field with
//! no entry here fails that test, so a new field can't skip the matrix.

use std::collections::BTreeSet;

use crate::{Id, Persona, Time, World};

/// How a persona reads one field of a record it may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldRead {
    /// The stored value, as an administrator reads it.
    Value,
    /// Always null (denied by the "Fields" section).
    Masked,
    /// The value when the record's fact holds, else null.
    ValueIf(Fact),
    /// A reference to one record of this type: followed (the same id) when the persona
    /// may read that record, else null.
    Link(&'static str),
    /// Records of this type related to the row (a nested list): the persona reads those
    /// of them it may read, no others.
    Rows(&'static str),
    /// About the caller rather than the record (what it may do, why it sees the row): not
    /// a stored value, so it is not compared with another caller's.
    PerCaller,
}

/// A fact of one record that decides a masked field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// The contact agreed to share this channel with partners.
    PartnerSharing(Channel),
    /// The contact agreed to marketing on this channel.
    Marketing(Channel),
    /// The interaction was written by the reader's own organisation.
    WrittenByOwnOrganisation,
    /// The external id was written by the reader's own organisation.
    OwnExternalId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Email,
    Phone,
}

/// The record types of the matrix's "Rows" table, as the API names them.
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
    "Product",
    "Order",
    "OrderLine",
    "Shipment",
    "Article",
    "Partner",
    "Territory",
    "AccountShare",
];

/// The fields every record type has, then each type's own. `None`: the matrix has no word
/// on this field yet (the read-matrix test fails on it).
pub fn field_read(who: &Persona, ty: &str, field: &str) -> Option<FieldRead> {
    use FieldRead::*;
    let partner = who.is_partner();
    let supplier = matches!(who, Persona::Supplier(_));
    let marketing = matches!(who, Persona::Internal { role, .. } if *role == "marketing");
    let sales = matches!(who, Persona::Internal { role, .. } if *role == "sales");
    let masked_for = |hidden: bool| if hidden { Masked } else { Value };
    Some(match (ty, field) {
        (_, "id") => Value,
        // "A partner reads only its own organisation's" external ids.
        (_, "externalId") if partner => ValueIf(Fact::OwnExternalId),
        (_, "externalId") => Value,
        // A supplier reads an account as name, industry, segment and territory only
        // ("Order.account"), and an order without what other suppliers' lines move.
        ("Account", "version" | "createdAt" | "updatedAt" | "archivedAt") => masked_for(supplier),
        ("Order", "version" | "updatedAt") => masked_for(supplier),
        // A partner reads an article's live words only: the saves and reviews behind them
        // ("What a caller may learn": not its history) show as no version, time or number.
        ("Article", "version" | "updatedAt" | "revision") => masked_for(partner),
        (_, "version" | "createdAt" | "updatedAt" | "archivedAt") => Value,
        (_, "access" | "may" | "nextStatuses" | "mayReview") => PerCaller,
        // The changes of the fields the reader reads here, and none where the version is
        // masked ("not its history"): decided per reader; tests/e2e/audit.rs checks the
        // entries against this matrix's own field rows.
        (_, "history") => PerCaller,

        ("Account", "name" | "industry" | "segment") => Value,
        ("Account", "domain" | "tier" | "lifecycleStage") => masked_for(supplier),
        ("Account", "territory") => Link("Territory"),
        // "Internal users' ids: partners denied"; the owner shows as a name where needed.
        ("Account", "ownerUserId") => masked_for(partner),
        ("Account", "internalNote") => masked_for(partner),
        ("Account", "shareable") => PerCaller,
        ("Account", "contacts") => Rows("Contact"),
        ("Account", "interactions") => Rows("Interaction"),
        ("Account", "cases") => Rows("Case"),
        ("Account", "opportunities") => Rows("Opportunity"),
        ("Account", "orders") => Rows("Order"),

        ("Contact", "email") if partner => ValueIf(Fact::PartnerSharing(Channel::Email)),
        ("Contact", "phone") if partner => ValueIf(Fact::PartnerSharing(Channel::Phone)),
        ("Contact", "email") if marketing => ValueIf(Fact::Marketing(Channel::Email)),
        ("Contact", "phone") if marketing => ValueIf(Fact::Marketing(Channel::Phone)),
        ("Contact", "email" | "phone") => Value,
        ("Contact", "account") => Link("Account"),
        // Every statement, read by whoever reads the contact; its evidence and the company's
        // recorders for the company only (tests/e2e/consent.rs checks both sides).
        ("Contact", "consentHistory") => PerCaller,
        ("Contact", "accountId" | "firstName" | "lastName" | "fullName" | "title" | "consents") => {
            Value
        }

        ("Interaction", "account") => Link("Account"),
        ("Interaction", "authorUserId") if partner => ValueIf(Fact::WrittenByOwnOrganisation),
        // Partners read partner-visible interactions only, whose body they read.
        (
            "Interaction",
            "accountId" | "authorUserId" | "body" | "channel" | "contactId" | "direction"
            | "occurredAt" | "partnerVisible" | "subject",
        ) => Value,

        (
            "Lead",
            "company"
            | "convertedAccountId"
            | "convertedAt"
            | "convertedContactId"
            | "convertedOpportunityId"
            | "email"
            | "firstName"
            | "lastName"
            | "phone"
            | "score"
            // The score's reasons read only the lead's own fields and the tasks on it,
            // which every reader of the lead reads (tasks on visible records).
            | "scoreReasons"
            | "source"
            | "status",
        ) => Value,
        ("Lead", "ownerUserId") => masked_for(partner),
        // Routing: the distributor a lead is routed to reads where it stands; which
        // distributors could take it, and their load, is ours.
        ("Lead", "routedPartnerId" | "routedAt" | "respondBy" | "acceptedAt" | "declineReason") => {
            Value
        }
        ("Lead", "routedPartner") => Link("Partner"),
        ("Lead", "routingSuggestions") => masked_for(partner),

        ("Opportunity", "account") => Link("Account"),
        (
            "Opportunity",
            "accountId" | "amount" | "expectedClose" | "forecastCategory" | "name" | "probability"
            | "stage" | "weightedAmount" | "closeOverdue" | "stageHistory" | "partnerId"
            | "registrationId" | "protectedUntil" | "products",
        ) => Value,
        // The partner a deal is attributed to: readers of the deal follow it to the
        // partner record they may read (staff all; the partner its own).
        ("Opportunity", "partner") => Link("Partner"),
        ("Opportunity", "ownerUserId") => masked_for(partner),

        ("Case", "account") => Link("Account"),
        ("Case", "ownerUserId") => masked_for(partner),
        // "Case comments: partners only the partner-visible ones".
        ("Case", "comments") => Rows("CaseComment"),
        (
            "Case",
            "accountId" | "channel" | "contactId" | "description" | "partnerId" | "priority"
            | "slaBreached" | "slaDueAt" | "status" | "subject" | "slaPausedAt" | "escalatedAt"
            | "resolvedAt",
        ) => Value,

        ("CaseComment", "case") => Link("Case"),
        // Internal users' ids: partners denied; their own organisation's authors they read.
        ("CaseComment", "authorUserId") if partner => ValueIf(Fact::WrittenByOwnOrganisation),
        (
            "CaseComment",
            "authorUserId" | "authorPartnerId" | "body" | "caseId" | "partnerVisible",
        ) => Value,

        // Tasks are internal; whoever reads one reads all of it (it is on a record it reads).
        ("Task", "account") => Link("Account"),
        (
            "Task",
            "accountId" | "assigneeUserId" | "completed" | "completedAt" | "completedByUserId"
            | "createdByUserId" | "dueAt" | "notes" | "overdue" | "recordId" | "recordName"
            | "recordType" | "remindAt" | "remindedAt" | "title",
        ) => Value,

        // Notifications: the recipient's own, or its organisation's shared ones (read by
        // those recipients only, whole).
        (
            "Notification",
            "body" | "kind" | "read" | "readAt" | "recordId" | "recordType" | "title"
            | "recipientPartnerId",
        ) => Value,

        // Deal registrations: whoever reads one reads what the partner submitted and our
        // decision; the conflicts and the deciding user are the company's.
        ("DealRegistration", "partner") => Link("Partner"),
        ("DealRegistration", "account") => Link("Account"),
        ("DealRegistration", "opportunity") => Link("Opportunity"),
        ("DealRegistration", "conflicts" | "decidedByUserId") => masked_for(partner),
        (
            "DealRegistration",
            "partnerId" | "submittedByUserId" | "accountId" | "prospectName" | "prospectDomain"
            | "products" | "estimatedAmount" | "expectedClose" | "notes" | "status"
            | "decisionReason" | "decidedAt" | "opportunityId" | "protectedUntil",
        ) => Value,

        ("Product", "supplier") => Link("Partner"),
        ("Product", "articles") => Rows("Article"),
        ("Product", "description" | "name" | "sku" | "supplierPartnerId" | "unitPrice") => Value,

        ("Order", "account") => Link("Account"),
        ("Order", "fulfillingDistributor") => Link("Partner"),
        ("Order", "lines") => Rows("OrderLine"),
        ("Order", "shipments") => Rows("Shipment"),
        ("Order", "internalNote") => masked_for(partner),
        ("Order", "total") => masked_for(supplier),
        (
            "Order",
            "accountId" | "currency" | "fulfillingDistributorId" | "number" | "placedAt" | "status",
        ) => Value,

        ("OrderLine", "order") => Link("Order"),
        ("OrderLine", "product") => Link("Product"),
        ("OrderLine", "unitPrice" | "amount") => masked_for(supplier),
        (
            "OrderLine",
            "lineNumber" | "orderId" | "productId" | "quantity" | "status" | "expectedDate",
        ) => Value,

        ("Shipment", "order") => Link("Order"),
        (
            "Shipment",
            "carrier" | "deliveredAt" | "events" | "orderId" | "shippedAt" | "status"
            | "trackingNumber",
        ) => Value,

        ("Article", "products") => Link("Product"),
        (
            "Article",
            "audiences" | "body" | "productIds" | "publishedAt" | "status" | "tags" | "tiers"
            | "title",
        ) => Value,
        // Revisions are editorial (the ArticleRevision row): staff who read the article
        // read its history; partners read none of it.
        ("Article", "revisions" | "revisionByNumber" | "workingRevision") => masked_for(partner),
        // Readers' feedback is editorial (ArticleFeedback: admin, management, marketing,
        // support); a reader's own answer is about the caller.
        ("Article", "feedback") => masked_for(partner || sales),
        ("Article", "myFeedback") => PerCaller,
        // Case links (CaseArticleLink: the departments that read every case).
        ("Article", "cases") => masked_for(partner || marketing),
        // A case's linked and suggested articles are those the reader may read among the
        // links: filtered through the reader's own article rows, proved in the knowledge
        // base's tests (`cases_and_articles_link_through_each_readers_policy`).
        ("Case", "articles" | "suggestedArticles") => PerCaller,

        ("Partner", "fulfilledOrders") => Rows("Order"),
        ("Partner", "suppliedProducts") => Rows("Product"),
        ("Partner", "territories") => Link("Territory"),
        ("Partner", "accountsInTerritories" | "kind" | "name" | "tier") => Value,
        // Counted over the records the reader may read: not a stored value of the partner.
        ("Partner", "scorecard") => PerCaller,

        ("Territory", "code" | "name") => Value,

        ("AccountShare", "account") => Link("Account"),
        ("AccountShare", "partner") => Link("Partner"),
        (
            "AccountShare",
            "accountId" | "active" | "cause" | "expiresAt" | "grantedBy" | "partnerId" | "reason"
            | "source",
        ) => Value,
        _ => return None,
    })
}

/// The field that names a record of `ty` to anyone who may read it (a link's target is
/// read with it, so that the link must really be followed, not answered from its key).
pub fn label_field(ty: &str) -> &'static str {
    match ty {
        "Territory" => "code",
        "Order" => "number",
        "OrderLine" => "quantity",
        "Shipment" => "carrier",
        "Contact" => "lastName",
        "Interaction" | "Case" => "subject",
        "CaseComment" => "body",
        "Task" | "Notification" => "title",
        "DealRegistration" => "prospectName",
        "Article" => "title",
        _ => "name",
    }
}

impl World {
    /// The ids of `ty` that `who` reads at `now` (`None`: not a type of the matrix).
    pub fn rows(&self, who: &Persona, ty: &str, now: Time) -> Option<BTreeSet<Id>> {
        let internal_role = match who {
            Persona::Internal { role, .. } => Some(*role),
            _ => None,
        };
        let all = |ids: Vec<&Id>| ids.into_iter().cloned().collect::<BTreeSet<Id>>();
        let none = BTreeSet::new;
        Some(match ty {
            "Account" => self.accounts_for(who, now),
            "Contact" => self.contacts_for(who, now),
            "Interaction" => self.interactions_for(who, now),
            "Order" => self.orders_for(who),
            "OrderLine" => self.lines_for(who),
            "Shipment" => self.shipments_for(who),
            "Product" => self.products_for(who),
            // "R all" for every internal role but support; partners: leads routed to their
            // organisation (none is, until routing exists).
            "Lead" => match (internal_role, who) {
                (Some("support"), _) => none(),
                (Some(_), _) => all(self.leads.iter().map(|l| &l.id).collect()),
                (None, Persona::Distributor(me)) => all(self
                    .leads
                    .iter()
                    .filter(|l| l.routed_to.as_deref() == Some(me.as_str()))
                    .map(|l| &l.id)
                    .collect()),
                (None, _) => none(),
            },
            "Opportunity" => match (internal_role, who) {
                (Some("support"), _) => none(),
                (Some(_), _) => all(self.opportunities.iter().map(|o| &o.id).collect()),
                (None, Persona::Distributor(me)) => all(self
                    .opportunities
                    .iter()
                    .filter(|o| o.attributed_to.as_deref() == Some(me.as_str()))
                    .map(|o| &o.id)
                    .collect()),
                (None, _) => none(),
            },
            // Marketing: "—"; distributors: their own organisation's cases on accounts
            // they may read.
            "Case" => match (internal_role, who) {
                (Some("marketing"), _) => none(),
                (Some(_), _) => all(self.cases.iter().map(|c| &c.id).collect()),
                (None, Persona::Distributor(me)) => {
                    let accounts = self.accounts_for(who, now);
                    all(self
                        .cases
                        .iter()
                        .filter(|c| {
                            c.partner.as_deref() == Some(me.as_str())
                                && accounts.contains(&c.account)
                        })
                        .map(|c| &c.id)
                        .collect())
                }
                (None, _) => none(),
            },
            // Staff read the comments of the cases they read; a distributor the
            // partner-visible ones of its cases; nobody else any.
            "CaseComment" => {
                let cases = self.rows(who, "Case", now)?;
                all(self
                    .case_comments
                    .iter()
                    .filter(|c| cases.contains(&c.case))
                    .filter(|c| internal_role.is_some() || c.partner_visible)
                    .map(|c| &c.id)
                    .collect())
            }
            // "Who sees a task on a record it can't see: nobody"; partners none at all.
            "Task" => match internal_role {
                Some(_) => all(self
                    .tasks
                    .iter()
                    .filter(|t| self.reads_record(who, &t.record_type, &t.record, now))
                    .map(|t| &t.id)
                    .collect()),
                None => none(),
            },
            // A user's own and its organisation's shared ones, about records it reads.
            "Notification" => all(self
                .notifications
                .iter()
                .filter(|n| self.addressed_to(who, n))
                .filter(|n| self.reads_record(who, &n.record_type, &n.record, now))
                .map(|n| &n.id)
                .collect()),
            // Staff who review them (admin, management, sales) all; a distributor its own
            // organisation's; nobody else any.
            "DealRegistration" => match (internal_role, who) {
                (Some("admin" | "management" | "sales"), _) => {
                    all(self.registrations.iter().map(|r| &r.id).collect())
                }
                (None, Persona::Distributor(me)) => all(self
                    .registrations
                    .iter()
                    .filter(|r| r.partner == *me)
                    .map(|r| &r.id)
                    .collect()),
                _ => none(),
            },
            "Article" => {
                let audiences: &[&str] = match (internal_role, who) {
                    (Some("sales"), _) => &["internal", "public"],
                    (Some(_), _) => &["internal", "public", "supplier", "distributor"],
                    (None, Persona::Supplier(_)) => &["supplier", "public"],
                    (None, _) => &["distributor", "public"],
                };
                // A partner reads an article narrowed to tiers only when its tier is one.
                let tier = match who {
                    Persona::Supplier(me) | Persona::Distributor(me) => self
                        .partners
                        .iter()
                        .find(|p| p.id == *me)
                        .and_then(|p| p.tier.clone()),
                    Persona::Internal { .. } => None,
                };
                all(self
                    .articles
                    .iter()
                    .filter(|a| internal_role.is_some() || a.published)
                    .filter(|a| a.audiences.iter().any(|x| audiences.contains(&x.as_str())))
                    .filter(|a| {
                        internal_role.is_some()
                            || a.tiers.is_empty()
                            || tier.as_ref().is_some_and(|t| a.tiers.contains(t))
                    })
                    .map(|a| &a.id)
                    .collect())
            }
            "Partner" => match who {
                Persona::Internal { .. } => all(self.partners.iter().map(|p| &p.id).collect()),
                Persona::Supplier(me) | Persona::Distributor(me) => BTreeSet::from([me.clone()]),
            },
            "Territory" => all(self.territories.iter().collect()),
            // Share grants: admin and management all; sales those on the accounts it owns
            // and those it granted; nobody else.
            "AccountShare" => match (internal_role, who) {
                (Some("admin" | "management"), _) => {
                    all(self.share_rows.iter().map(|s| &s.id).collect())
                }
                (Some("sales"), Persona::Internal { user, .. }) => {
                    let owned: BTreeSet<&Id> = self
                        .accounts
                        .iter()
                        .filter(|a| a.owner.as_ref() == Some(user))
                        .map(|a| &a.id)
                        .collect();
                    all(self
                        .share_rows
                        .iter()
                        .filter(|s| {
                            owned.contains(&s.account) || s.granted_by.as_ref() == Some(user)
                        })
                        .map(|s| &s.id)
                        .collect())
                }
                _ => none(),
            },
            _ => return None,
        })
    }

    /// The user a persona is: the internal user, or its partner's `partner_user`
    /// (`usr_<persona>_user` in the demo directory, as `partner_users` maps it).
    pub fn user_of(&self, who: &Persona) -> Option<Id> {
        match who {
            Persona::Internal { user, .. } => Some(user.clone()),
            Persona::Supplier(me) | Persona::Distributor(me) => self
                .partner_users
                .iter()
                .find(|(partner, _)| partner == me)
                .map(|(_, user)| user.clone()),
        }
    }

    /// Whether `who` reads the record `id` of the type `ty`.
    pub fn reads_record(&self, who: &Persona, ty: &str, id: &str, now: Time) -> bool {
        self.rows(who, ty, now)
            .is_some_and(|rows| rows.contains(id))
    }

    /// Whether `fact` holds of the record `id` of `ty` for the reader `who`.
    pub fn holds(&self, who: &Persona, ty: &str, id: &str, fact: Fact) -> bool {
        let own = match who {
            Persona::Supplier(me) | Persona::Distributor(me) => Some(me.as_str()),
            Persona::Internal { .. } => None,
        };
        match fact {
            Fact::PartnerSharing(channel) | Fact::Marketing(channel) => {
                let Some(c) = self.contacts.iter().find(|c| c.id == id) else {
                    return false;
                };
                match (fact, channel) {
                    (Fact::PartnerSharing(_), Channel::Email) => c.partner_sharing_email,
                    (Fact::PartnerSharing(_), Channel::Phone) => c.partner_sharing_phone,
                    (_, Channel::Email) => c.marketing_email,
                    (_, Channel::Phone) => c.marketing_phone,
                }
            }
            Fact::WrittenByOwnOrganisation => {
                let author = match ty {
                    "CaseComment" => self
                        .case_comments
                        .iter()
                        .find(|c| c.id == id)
                        .and_then(|c| c.author_partner.as_deref()),
                    _ => self
                        .interactions
                        .iter()
                        .find(|i| i.id == id)
                        .and_then(|i| i.author_partner.as_deref()),
                };
                own.is_some() && author == own
            }
            Fact::OwnExternalId => {
                own.is_some()
                    && self
                        .external_ids_written_by
                        .iter()
                        .any(|(t, r, by)| t == ty && r == id && Some(by.as_str()) == own)
            }
        }
    }
}

/// Who reads the directory (users, invitations, API keys): an administrator all of it, a
/// partner admin its own organisation's, nobody else any.
pub fn directory_rows<'a>(
    who: &Persona,
    partner_admin: bool,
    rows: impl IntoIterator<Item = (&'a Id, Option<&'a Id>)>,
) -> BTreeSet<Id> {
    rows.into_iter()
        .filter(|(_, org)| match who {
            Persona::Internal { role, .. } => *role == "admin",
            Persona::Supplier(me) | Persona::Distributor(me) => partner_admin && *org == Some(me),
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// A change to one record: what `may { update archive }` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Update,
    Archive,
}

impl World {
    /// Whether `who` may make `change` to the record `id` of `ty` that it reads, by the
    /// matrix's "W" cells and its "Writes" section. "W owned" is the record's own owner
    /// where it has one (accounts, leads, opportunities) and the account's owner for the
    /// records under an account (contacts, share grants); "W own" is what the caller wrote
    /// (interactions) or granted (share grants).
    pub fn may_change(&self, who: &Persona, ty: &str, id: &str, change: Change, now: Time) -> bool {
        let owner_of_account = |account: &str| {
            self.accounts
                .iter()
                .find(|a| a.id == account)
                .and_then(|a| a.owner.as_deref())
        };
        match who {
            Persona::Internal { role, user } => {
                let me = Some(user.as_str());
                match (*role, ty) {
                    ("admin", _) => true,
                    ("management", "AccountShare") => true,
                    ("sales", "Account") => owner_of_account(id) == me,
                    ("sales", "Contact") => self
                        .contacts
                        .iter()
                        .find(|c| c.id == id)
                        .is_some_and(|c| owner_of_account(&c.account) == me),
                    ("sales" | "support", "Interaction") => self
                        .interactions
                        .iter()
                        .find(|i| i.id == id)
                        .is_some_and(|i| i.author_user.as_deref() == me),
                    ("sales", "Lead") => self
                        .leads
                        .iter()
                        .find(|l| l.id == id)
                        .is_some_and(|l| l.owner.as_deref() == me),
                    ("sales", "Opportunity") => self
                        .opportunities
                        .iter()
                        .find(|o| o.id == id)
                        .is_some_and(|o| o.owner.as_deref() == me),
                    // Sales revokes (archives) the grants on its accounts and its own; it
                    // changes none.
                    ("sales", "AccountShare") => {
                        change == Change::Archive
                            && self
                                .share_rows
                                .iter()
                                .find(|s| s.id == id)
                                .is_some_and(|s| {
                                    owner_of_account(&s.account) == me
                                        || s.granted_by.as_deref() == me
                                })
                    }
                    ("marketing", "Article" | "Lead") => true,
                    ("marketing", "Contact") => change == Change::Update,
                    // Sales decides on every registration (an update), withdraws none.
                    ("sales", "DealRegistration") => change == Change::Update,
                    ("support", "Contact" | "Case" | "Article") => true,
                    // Support changes the comments it wrote.
                    ("support", "CaseComment") => self
                        .case_comments
                        .iter()
                        .find(|c| c.id == id)
                        .is_some_and(|c| c.author_user.as_deref() == me),
                    // A notification its recipient marks read (an update); none archives one.
                    (_, "Notification") => {
                        change == Change::Update
                            && self
                                .notifications
                                .iter()
                                .any(|n| n.id == id && n.recipient == *user)
                    }
                    // A task its assignee or its creator changes.
                    (_, "Task") => self.tasks.iter().find(|t| t.id == id).is_some_and(|t| {
                        Some(t.assignee.as_str()) == me || t.created_by.as_deref() == me
                    }),
                    _ => false,
                }
            }
            Persona::Supplier(me) => match ty {
                "Product" => self
                    .products
                    .iter()
                    .any(|p| p.id == id && p.supplier == *me),
                // "W(status) own-product lines only": an update, never an archive.
                "OrderLine" => {
                    change == Change::Update
                        && self.lines.iter().any(|l| {
                            l.id == id
                                && self
                                    .products
                                    .iter()
                                    .any(|p| p.id == l.product && p.supplier == *me)
                        })
                }
                _ => false,
            },
            Persona::Distributor(me) => match ty {
                // "W(status, tracking) of its orders": an update only.
                "Shipment" => change == Change::Update && self.shipments_for(who).contains(id),
                // Its own organisation's, on accounts it reads.
                "Interaction" => {
                    self.interactions_for(who, now).contains(id)
                        && self
                            .interactions
                            .iter()
                            .any(|i| i.id == id && i.author_partner.as_deref() == Some(me.as_str()))
                }
                "Case" => self.rows(who, "Case", now).is_some_and(|c| c.contains(id)),
                // "R, W(status) leads routed to its organisation": an update only.
                "Lead" => {
                    change == Change::Update
                        && self.rows(who, "Lead", now).is_some_and(|l| l.contains(id))
                }
                // Its own organisation's registrations: edits and withdrawal.
                "DealRegistration" => self
                    .registrations
                    .iter()
                    .any(|r| r.id == id && r.partner == *me),
                "Notification" => self.own_notification(who, id, change),
                _ => false,
            },
        }
    }
}

impl World {
    /// A notification its recipient marks read (an update); none archives one.
    fn own_notification(&self, who: &Persona, id: &str, change: Change) -> bool {
        change == Change::Update
            && self
                .notifications
                .iter()
                .any(|n| n.id == id && self.addressed_to(who, n))
    }

    /// "A user's own notifications, and its organisation's shared ones."
    fn addressed_to(&self, who: &Persona, n: &crate::Notification) -> bool {
        let me = self.user_of(who);
        if !n.recipient.is_empty() {
            return Some(n.recipient.as_str()) == me.as_deref();
        }
        match who {
            Persona::Distributor(org) | Persona::Supplier(org) => {
                n.recipient_partner.as_deref() == Some(org.as_str())
            }
            _ => false,
        }
    }

    /// Whether `who` may share `account` with a partner (a manual grant): share grants are
    /// "RW" for admin and management and "W on owned accounts" for sales.
    pub fn may_share(&self, who: &Persona, account: &str) -> bool {
        match who {
            Persona::Internal { role, user } => match *role {
                "admin" | "management" => true,
                "sales" => self
                    .accounts
                    .iter()
                    .any(|a| a.id == account && a.owner.as_ref() == Some(user)),
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether `who` may create a record of `ty` on `account`: interactions (staff who
    /// log them; a distributor on the accounts it reads) and cases (admin and support; a
    /// distributor on the accounts it reads).
    pub fn may_create_on(&self, who: &Persona, ty: &str, account: &str, now: Time) -> bool {
        match (who, ty) {
            (Persona::Internal { role, .. }, "Interaction") => {
                matches!(*role, "admin" | "sales" | "support")
            }
            (Persona::Internal { role, .. }, "Case") => matches!(*role, "admin" | "support"),
            (Persona::Distributor(_), "Interaction" | "Case") => {
                self.accounts_for(who, now).contains(account)
            }
            _ => false,
        }
    }
}
