//! The golden decision matrix: every persona × every type × read, create, update and
//! archive, written out by hand from ACCESS-MATRIX.md (not derived from the rules), checked
//! against Casbin's own `enforce()` and against the compiled table requests use. 11 personas
//! × 29 types × 4 actions = 1,276 cases; then the field rules, written out the same way.

use std::collections::BTreeSet;

use crm_policies::{Action, Decision, Domain, FieldLimit, Policy, Scope, TYPES, Unless};

/// `R` read, `C` create, `U` update, `A` archive; `W` is `CUA` (every change), `-` none.
/// Columns in the order of `TYPES`.
const MATRIX: &str = "
persona                     Account Contact Interaction Lead Opportunity Case CaseComment Task Notification DealRegistration Job Product Order OrderLine Shipment Demand Article ArticleRevision ArticleFeedback CaseArticleLink Partner Territory ShareGrant User ApiKey Webhook Invitation AuditChain AuditEntry DataExport DataErasure
internal/admin              RW      RW      RW          RW   RW          RW   RW          RW   RW           RW               RW  RW      RW    RW        RW       RW     RW      RW              RW              RW              RW      RW        RW         RW   RW     RW      RW         RW         RW         RW         RW
internal/management         R       R       R           R    R           R    R           RW   RU           R                -   R       R     R         R        R      R       R               RC              R               R       R         RW         -    -      -       -          R          R          -          -
internal/sales              RW      RW      RW          RW   RW          R    R           RW   RU           RU               -   R       R     R         R        R      R       R               C               R               R       R         RCA        -    -      -       -          -          -          -          -
internal/marketing          R       RU      R           RW   R           -    -           RW   RU           -                -   R       -     -         -        -      RW      R               RC              -               R       R         -          -    -      -       -          -          -          -          -
internal/support            R       RW      RW          -    -           RW   RW          RW   RU           -                -   R       R     R         R        -      RW      R               RC              RW              R       R         -          -    -      -       -          -          -          -          -
supplier/partner_admin      R       -       -           -    -           -    -           -    RU           -                -   RW      R     RU        R        R      R       -               C               -               R       R         -          RW   RW     RW      RW         R          R          -          -
supplier/partner_manager    R       -       -           -    -           -    -           -    RU           -                -   RW      R     RU        R        R      R       -               C               -               R       R         -          -    -      -       -          -          -          -          -
supplier/partner_user       R       -       -           -    -           -    -           -    RU           -                -   RW      R     RU        R        R      R       -               C               -               R       R         -          -    -      -       -          -          -          -          -
distributor/partner_admin   R       R       RW          RU   R           RW   RC          -    RU           RW               -   R       R     R         RU       -      R       -               C               -               R       R         -          RW   RW     RW      RW         R          R          -          -
distributor/partner_manager R       R       RW          RU   R           RW   RC          -    RU           RW               -   R       R     R         RU       -      R       -               C               -               R       R         -          -    -      -       -          -          -          -          -
distributor/partner_user    R       R       RW          RU   R           RW   RC          -    RU           RW               -   R       R     R         RU       -      R       -               C               -               R       R         -          -    -      -       -          -          -          -          -
";

fn domain(name: &str) -> Domain {
    Domain::ALL
        .into_iter()
        .find(|d| d.as_str() == name)
        .expect("a domain")
}

/// (domain, role, type, action, expected) for every cell of the matrix.
fn cases() -> Vec<(Domain, String, String, Action, bool)> {
    let mut lines = MATRIX.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .expect("header")
        .split_whitespace()
        .skip(1)
        .collect();
    assert_eq!(header, TYPES, "the matrix has a column per type, in order");
    let mut cases = Vec::new();
    for line in lines {
        let mut cells = line.split_whitespace();
        let persona = cells.next().expect("persona");
        let (domain_name, role) = persona.split_once('/').expect("domain/role");
        let cells: Vec<&str> = cells.collect();
        assert_eq!(cells.len(), TYPES.len(), "{persona}");
        for (ty, cell) in TYPES.iter().zip(cells) {
            assert!(
                cell == "-" || cell.chars().all(|c| "RWCUA".contains(c)),
                "{persona} {ty}: {cell}"
            );
            let cell = cell.replace('W', "CUA");
            for (action, letter) in [
                (Action::Read, 'R'),
                (Action::Create, 'C'),
                (Action::Update, 'U'),
                (Action::Archive, 'A'),
            ] {
                cases.push((
                    domain(domain_name),
                    role.to_owned(),
                    (*ty).to_owned(),
                    action,
                    cell.contains(letter),
                ));
            }
        }
    }
    cases
}

#[tokio::test]
async fn every_persona_type_and_action_is_decided_as_the_matrix_says() {
    let policy = Policy::bundled().await.expect("the bundled policy loads");
    let cases = cases();
    assert_eq!(cases.len(), 11 * TYPES.len() * 4, "{} cases", cases.len());
    let personas: std::collections::BTreeSet<_> =
        cases.iter().map(|c| (c.0, c.1.clone())).collect();
    assert_eq!(personas.len(), 11, "every role of every domain");
    let mut wrong = Vec::new();
    for (domain, role, ty, action, expected) in &cases {
        let enforced = policy.enforce(*domain, role, ty, *action).expect("enforce");
        let compiled = policy.decide(*domain, role, ty, *action).is_allowed();
        if enforced != *expected || compiled != *expected {
            wrong.push(format!(
                "{}/{role} {ty} {:?}: matrix {expected}, enforce {enforced}, table {compiled}",
                domain.as_str(),
                action
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn scopes_follow_the_matrix_and_deny_overrides_allow() {
    let policy = Policy::bundled().await.expect("loads");
    let scopes = |domain, role, ty, action| policy.decide(domain, role, ty, action).scopes();
    // A distributor sees an account for any of three causes.
    assert_eq!(
        scopes(Domain::Distributor, "partner_user", "Account", Action::Read),
        [
            Scope::InMyTerritory,
            Scope::FulfilsItsOrders,
            Scope::ManualShare
        ]
    );
    // Inherited: a partner admin has its users' rules.
    assert_eq!(
        scopes(Domain::Supplier, "partner_admin", "Order", Action::Read),
        [Scope::HasMyProduct]
    );
    assert_eq!(
        scopes(Domain::Internal, "sales", "Account", Action::Update),
        [Scope::Owned]
    );
    assert_eq!(
        scopes(
            Domain::Supplier,
            "partner_user",
            "OrderLine",
            Action::Update
        ),
        [Scope::OwnProductLines]
    );
    // Marketing is denied orders by a rule, not merely without one.
    assert!(matches!(
        policy.decide(Domain::Internal, "marketing", "Order", Action::Read),
        Decision::Denied { .. }
    ));
    assert_eq!(
        policy.decide(Domain::Internal, "marketing", "Shipment", Action::Read),
        Decision::NoRule
    );
    // Roles of one domain mean nothing in another.
    assert_eq!(
        policy.decide(Domain::Supplier, "admin", "Account", Action::Read),
        Decision::NoRule
    );
    assert_eq!(
        policy.decide(Domain::Internal, "admin", "NoSuchType", Action::Read),
        Decision::NoRule
    );
    // Every grant names the rule it comes from.
    let Decision::Allow(grants) =
        policy.decide(Domain::Internal, "sales", "Contact", Action::Create)
    else {
        panic!("sales may write contacts of owned accounts");
    };
    assert_eq!(
        grants[0].rule,
        "sales, internal, Contact, write, on_owned_accounts, allow"
    );

    // A deny added for admin overrides its wildcard allow.
    let rules = format!(
        "{}\np, admin, internal, Order, write, all, deny\n",
        crm_policies::RULES
    );
    let stricter = Policy::from_text(crm_policies::MODEL, &rules)
        .await
        .expect("loads");
    assert!(
        !stricter
            .enforce(Domain::Internal, "admin", "Order", Action::Update)
            .expect("enforce")
    );
    assert!(
        !stricter
            .decide(Domain::Internal, "admin", "Order", Action::Archive)
            .is_allowed()
    );
    assert!(
        stricter
            .decide(Domain::Internal, "admin", "Order", Action::Read)
            .is_allowed()
    );
}

#[tokio::test]
async fn a_rule_with_a_typo_is_refused_not_ignored() {
    for (rule, what) in [
        ("p, sales, internal, Acount, read, all, allow", "type"),
        ("p, sales, internal, Account, raed, all, allow", "action"),
        (
            "p, sales, internal, Account, read, everything, allow",
            "scope",
        ),
        ("p, saels, internal, Account, read, all, allow", "role"),
        ("p, sales, external, Account, read, all, allow", "domain"),
        ("p, sales, internal, Account, read, all, maybe", "effect"),
    ] {
        let rules = format!("{}\n{rule}\n", crm_policies::RULES);
        let error = Policy::from_text(crm_policies::MODEL, &rules)
            .await
            .err()
            .unwrap_or_else(|| panic!("a bad {what} must be refused"));
        assert!(error.to_string().contains("unknown"), "{what}: {error}");
    }
}

/// The field rules, written out from the matrix's "W(...)" cells: (persona, type, action,
/// the fields it may set; `None` for any field).
const FIELD_LIMITS: &[(&str, &str, Action, Option<&[&str]>)] = &[
    (
        "supplier/partner_user",
        "OrderLine",
        Action::Update,
        Some(&["expectedDate", "status"]),
    ),
    (
        "supplier/partner_admin",
        "OrderLine",
        Action::Update,
        Some(&["expectedDate", "status"]),
    ),
    ("supplier/partner_user", "Product", Action::Update, None),
    (
        "distributor/partner_user",
        "Shipment",
        Action::Update,
        Some(&["status", "trackingNumber"]),
    ),
    (
        "distributor/partner_admin",
        "Shipment",
        Action::Update,
        Some(&["status", "trackingNumber"]),
    ),
    (
        "distributor/partner_user",
        "Interaction",
        Action::Create,
        Some(&[
            "accountId",
            "body",
            "channel",
            "contactId",
            "direction",
            "occurredAt",
            "subject",
        ]),
    ),
    (
        "distributor/partner_user",
        "Interaction",
        Action::Update,
        Some(&[
            "body",
            "channel",
            "contactId",
            "direction",
            "occurredAt",
            "subject",
        ]),
    ),
    (
        "distributor/partner_user",
        "Case",
        Action::Update,
        Some(&["contactId", "description", "priority", "status", "subject"]),
    ),
    (
        "internal/sales",
        "DealRegistration",
        Action::Update,
        Some(&[
            "accountId",
            "decisionReason",
            "opportunityId",
            "protectedUntil",
            "status",
        ]),
    ),
    (
        "distributor/partner_user",
        "DealRegistration",
        Action::Create,
        Some(&[
            "accountId",
            "currency",
            "estimatedAmount",
            "expectedClose",
            "notes",
            "products",
            "prospectDomain",
            "prospectName",
        ]),
    ),
    ("internal/support", "Case", Action::Update, None),
    ("internal/sales", "Interaction", Action::Create, None),
    ("internal/admin", "Shipment", Action::Update, None),
    // No grant, no fields.
    (
        "supplier/partner_user",
        "OrderLine",
        Action::Create,
        Some(&[]),
    ),
    (
        "distributor/partner_user",
        "Shipment",
        Action::Create,
        Some(&[]),
    ),
];

#[tokio::test]
async fn field_rules_limit_the_fields_of_creates_and_updates_as_the_matrix_says() {
    let policy = Policy::bundled().await.expect("loads");
    for (persona, ty, action, expected) in FIELD_LIMITS {
        let (domain_name, role) = persona.split_once('/').expect("domain/role");
        let expected = match expected {
            None => FieldLimit::Any,
            Some(fields) => FieldLimit::Only(fields.iter().map(|f| (*f).to_owned()).collect()),
        };
        assert_eq!(
            policy.field_limit(domain(domain_name), role, ty, *action),
            expected,
            "{persona} {ty} {action:?}"
        );
    }
    let limit = FieldLimit::union([
        FieldLimit::Only(BTreeSet::from(["status".to_owned()])),
        FieldLimit::Any,
    ]);
    assert_eq!(
        limit,
        FieldLimit::Any,
        "a role without a field rule sets any field"
    );
}

#[tokio::test]
async fn a_field_rule_must_narrow_an_allow_rule_and_name_fields() {
    for (rule, what) in [
        (
            "p2, partner_user, supplier, Order, update, status",
            "without an allow rule",
        ),
        (
            "p2, partner_user, supplier, OrderLine, read, status",
            "on read",
        ),
        (
            "p2, partner_user, supplier, OrderLine, update, status||quantity",
            "an empty field",
        ),
        (
            "p2, partner_user, supplier, OrderLine, update, status;drop",
            "a bad name",
        ),
    ] {
        let rules = format!("{}\n{rule}\n", crm_policies::RULES);
        assert!(
            Policy::from_text(crm_policies::MODEL, &rules)
                .await
                .is_err(),
            "a field rule {what} must be refused"
        );
    }
}

/// The read masks, written out from the matrix's "Fields" section: (persona, type, field,
/// shown only when; `None`: shown as it is).
const MASKS: &[(&str, &str, &str, Option<Unless>)] = &[
    (
        "supplier/partner_user",
        "Account",
        "tier",
        Some(Unless::Never),
    ),
    (
        "supplier/partner_admin",
        "Account",
        "lifecycleStage",
        Some(Unless::Never),
    ),
    (
        "supplier/partner_user",
        "Account",
        "domain",
        Some(Unless::Never),
    ),
    ("supplier/partner_user", "Account", "name", None),
    ("distributor/partner_user", "Account", "tier", None),
    (
        "distributor/partner_manager",
        "Account",
        "ownerUserId",
        Some(Unless::Never),
    ),
    (
        "distributor/partner_user",
        "Account",
        "internalNote",
        Some(Unless::Never),
    ),
    (
        "distributor/partner_user",
        "Contact",
        "email",
        Some(Unless::PartnerSharingConsent),
    ),
    (
        "distributor/partner_user",
        "Contact",
        "phone",
        Some(Unless::PartnerSharingConsent),
    ),
    (
        "internal/marketing",
        "Contact",
        "email",
        Some(Unless::MarketingConsent),
    ),
    ("internal/sales", "Contact", "email", None),
    ("internal/admin", "Contact", "email", None),
    (
        "supplier/partner_user",
        "Order",
        "total",
        Some(Unless::Never),
    ),
    ("distributor/partner_user", "Order", "total", None),
    (
        "distributor/partner_user",
        "Order",
        "internalNote",
        Some(Unless::Never),
    ),
    (
        "supplier/partner_user",
        "OrderLine",
        "unitPrice",
        Some(Unless::Never),
    ),
    ("distributor/partner_user", "OrderLine", "unitPrice", None),
    (
        "distributor/partner_user",
        "Interaction",
        "body",
        Some(Unless::PartnerVisible),
    ),
    (
        "distributor/partner_user",
        "Interaction",
        "authorUserId",
        Some(Unless::OwnOrganisation),
    ),
    (
        "distributor/partner_user",
        "Case",
        "ownerUserId",
        Some(Unless::Never),
    ),
    // Every type's external id is the writing organisation's own.
    (
        "distributor/partner_user",
        "Shipment",
        "externalId",
        Some(Unless::OwnNamespace),
    ),
    (
        "supplier/partner_user",
        "Product",
        "externalId",
        Some(Unless::OwnNamespace),
    ),
    ("internal/support", "Order", "externalId", None),
    // A supplier reads an account as name, industry, segment and territory only, and an
    // order without the version and update time that other suppliers' lines move.
    (
        "supplier/partner_user",
        "Account",
        "updatedAt",
        Some(Unless::Never),
    ),
    (
        "supplier/partner_manager",
        "Account",
        "version",
        Some(Unless::Never),
    ),
    (
        "supplier/partner_user",
        "Order",
        "updatedAt",
        Some(Unless::Never),
    ),
    ("supplier/partner_user", "Order", "createdAt", None),
    ("distributor/partner_user", "Order", "updatedAt", None),
    ("distributor/partner_user", "Account", "version", None),
];

#[tokio::test]
async fn read_masks_follow_the_matrix_and_partner_roles_inherit_them() {
    let policy = Policy::bundled().await.expect("loads");
    let mut wrong = Vec::new();
    for (persona, ty, field, expected) in MASKS {
        let (domain_name, role) = persona.split_once('/').expect("domain/role");
        let mask = policy
            .mask(domain(domain_name), role, ty, field)
            .map(|m| m.unless);
        if mask != *expected {
            wrong.push(format!(
                "{persona} {ty}.{field}: matrix {expected:?}, policy {mask:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_mask_with_a_typo_is_refused() {
    for rule in [
        "p3, partner_user, supplier, Acount, tier, never",
        "p3, partner_user, supplier, Account, tier, sometimes",
        "p3, partner_user, supplier, Account, tier;x, never",
        "p3, partner_usr, supplier, Account, tier, never",
    ] {
        let rules = format!("{}\n{rule}\n", crm_policies::RULES);
        assert!(
            Policy::from_text(crm_policies::MODEL, &rules)
                .await
                .is_err(),
            "{rule} must be refused"
        );
    }
}
