//! `DealRegistration`: a distributor registers a deal it is working (an account it can
//! see, or a new prospect by name and domain; products, an estimate, a close date). Staff
//! review it against the conflicts only they see (open opportunities and other partners'
//! registrations for the same customer) and approve it, which attributes an opportunity to
//! the partner for a protection window, or reject it with a reason.
//!
//! The partner's answer never depends on conflicts: the check runs when staff read a
//! registration (`conflicts`, masked for partners), not on submit, so a submission that
//! collides with another partner's answers exactly like one that does not.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use crm_service_common::access::{self, Action, unmasked};
use crm_service_common::domain::{Currency, Lifecycle, Money, optional_text, reference, text};
use crm_service_common::normalise::{company_key, domain_key};
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, ApiResult, connection_types};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Select,
};

use super::account::Account;
use super::opportunity::Opportunity;
use super::partner::Partner;
use super::product_lines::{self, ProductQuantity, ProductQuantityInput};
use super::{
    FilterExt, MoneyAmount, RecordFilter, RecordInput, db, ensure_exists, load, optional, ordering,
    record_object, record_operations, required, unarchived,
};
use crate::domain::{
    AccountTier, LifecycleStage, NotificationKind, OpportunityStage, REGISTRATION_PROTECTION_DAYS,
    RecordKind, RegistrationStatus, Segment, TierLimits,
};
use crate::entity::{account, deal_registration, opportunity, partner};
use crate::store::{self, current, now, set};

#[derive(Clone)]
pub struct DealRegistration(pub deal_registration::Model);

connection_types!(
    DealRegistrationConnection,
    DealRegistrationEdge,
    DealRegistration,
    counts_by: status_counts => "status"
);

/// Why staff should look twice before approving: another record claims the same customer.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConflictReason {
    /// On the same account.
    SameAccount,
    /// For an account or a prospect with the same web domain.
    SameDomain,
    /// For an account or a prospect whose name reads the same (normalised).
    SameName,
}

/// What a registration collides with.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConflictKind {
    /// An open opportunity of ours.
    Opportunity,
    /// Another open registration (of another partner, or an earlier one of the same).
    Registration,
}

/// One conflict of a registration, as the review queue shows it.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct RegistrationConflict {
    pub kind: ConflictKind,
    pub reason: ConflictReason,
    /// The opportunity or registration.
    pub record_id: ID,
    /// Its name (the opportunity's) or prospect (the registration's).
    pub name: String,
    /// The partner it belongs to or is attributed to, if any.
    pub partner_id: Option<ID>,
    /// That partner's name.
    pub partner_name: Option<String>,
    /// Until when that partner's claim is protected, if it is.
    pub protected_until: Option<DateTime<Utc>>,
}

record_object!(DealRegistration {
    /// The registering organisation.
    async fn partner_id(&self) -> ID {
        ID(self.0.partner_id.clone())
    }
    async fn partner(&self, ctx: &Context<'_>) -> Result<Option<Partner>> {
        Ok(load::<partner::Entity>(ctx, &self.0.partner_id).await?.map(Partner))
    }
    /// The partner's user who submitted it.
    async fn submitted_by_user_id(&self) -> ID {
        ID(self.0.submitted_by_user_id.clone())
    }
    /// The existing account the deal is with, if the partner (or the reviewer) named one.
    async fn account_id(&self) -> Option<ID> {
        self.0.account_id.clone().map(ID)
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        Ok(match &self.0.account_id {
            Some(id) => load::<account::Entity>(ctx, id).await?.map(Account),
            None => None,
        })
    }
    /// The customer's name as the partner gave it (an existing account's name when it
    /// named one).
    async fn prospect_name(&self) -> &str {
        &self.0.prospect_name
    }
    async fn prospect_domain(&self) -> Option<&str> {
        self.0.prospect_domain.as_deref()
    }
    async fn products(&self) -> Vec<ProductQuantity> {
        product_lines::shown(&self.0.products)
    }
    async fn estimated_amount(&self) -> MoneyAmount {
        MoneyAmount::new(self.0.estimated_amount_minor, &self.0.currency)
    }
    async fn expected_close(&self) -> Option<NaiveDate> {
        self.0.expected_close
    }
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
    async fn status(&self) -> RegistrationStatus {
        self.0.status
    }
    /// Why it was rejected (or what the reviewer noted on approval).
    async fn decision_reason(&self) -> Option<&str> {
        self.0.decision_reason.as_deref()
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }
    /// The reviewer (an internal user: hidden from partners).
    async fn decided_by_user_id(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        let reviewer = self.0.decided_by_user_id.clone().map(ID);
        Ok(unmasked(ctx, &self.0, "decidedByUserId", reviewer)
            .await?
            .flatten())
    }
    /// The opportunity the approval attributed to the partner.
    async fn opportunity_id(&self) -> Option<ID> {
        self.0.opportunity_id.clone().map(ID)
    }
    async fn opportunity(&self, ctx: &Context<'_>) -> Result<Option<Opportunity>> {
        Ok(match &self.0.opportunity_id {
            Some(id) => super::get_optional::<opportunity::Entity>(ctx, id)
                .await?
                .map(Opportunity),
            None => None,
        })
    }
    /// Until when the partner's claim is protected; it expires then unless the deal is won
    /// or staff extend it.
    async fn protected_until(&self) -> Option<DateTime<Utc>> {
        self.0.protected_until
    }
    /// What else claims this customer: open opportunities and other open registrations
    /// on the same account, domain or (normalised) name. For reviewers only: a partner
    /// reads null, so its view of a registration never depends on other parties' records.
    async fn conflicts(&self, ctx: &Context<'_>) -> Result<Option<Vec<RegistrationConflict>>> {
        // Decided before looking: for a reader the field is hidden from, no conflict query
        // runs at all, so not even the time of the answer depends on other parties.
        if unmasked(ctx, &self.0, "conflicts", ()).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(conflicts_of(db(ctx)?, &self.0).await?))
    }
});

/// Open opportunities and other open registrations that claim the same customer as
/// `registration`. Read without the caller's filter on purpose: this is the reviewer's
/// cross-check over everything, shown only to roles the policy does not mask it from.
pub async fn conflicts_of<C: ConnectionTrait>(
    db: &C,
    registration: &deal_registration::Model,
) -> ApiResult<Vec<RegistrationConflict>> {
    use deal_registration::Column as R;
    let mut found = Vec::new();

    // Accounts that are this customer: the one named, and those with its domain or name.
    let mut same_customer = Condition::any()
        .add(Expr::col(account::Column::NameKey).eq(registration.name_key.as_str()));
    if let Some(domain) = &registration.domain_key {
        same_customer = same_customer.add(
            Expr::col(account::Column::Domain).is_in([domain.clone(), format!("www.{domain}")]),
        );
    }
    if let Some(id) = &registration.account_id {
        same_customer = same_customer.add(Expr::col(account::Column::Id).eq(id.as_str()));
    }
    let accounts = account::Entity::find()
        .filter(Expr::col(account::Column::ArchivedAt).is_null())
        .filter(same_customer)
        .limit(50)
        .all(db)
        .await?;
    let reason_for_account = |a: &account::Model| {
        if registration.account_id.as_deref() == Some(a.id.as_str()) {
            ConflictReason::SameAccount
        } else if registration.domain_key.is_some()
            && a.domain.as_deref().and_then(domain_key) == registration.domain_key
        {
            ConflictReason::SameDomain
        } else {
            ConflictReason::SameName
        }
    };
    if !accounts.is_empty() {
        let ids: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
        let open = opportunity::Entity::find()
            .filter(Expr::col(opportunity::Column::ArchivedAt).is_null())
            .filter(Expr::col(opportunity::Column::AccountId).is_in(ids))
            .filter(
                Expr::col(opportunity::Column::Stage)
                    .is_not_in([OpportunityStage::ClosedWon, OpportunityStage::ClosedLost]),
            )
            .order_by_asc(opportunity::Column::Id)
            .limit(50)
            .all(db)
            .await?;
        for o in open {
            // The registration's own opportunity is its outcome, not a conflict.
            if registration.opportunity_id.as_deref() == Some(o.id.as_str()) {
                continue;
            }
            let Some(on) = accounts.iter().find(|a| a.id == o.account_id) else {
                continue;
            };
            found.push(RegistrationConflict {
                kind: ConflictKind::Opportunity,
                reason: reason_for_account(on),
                record_id: ID(o.id.clone()),
                name: o.name.clone(),
                partner_id: o.partner_id.clone().map(ID),
                partner_name: None,
                protected_until: o.protected_until,
            });
        }
    }

    let mut same_claim =
        Condition::any().add(Expr::col(R::NameKey).eq(registration.name_key.as_str()));
    if let Some(domain) = &registration.domain_key {
        same_claim = same_claim.add(Expr::col(R::DomainKey).eq(domain.as_str()));
    }
    if let Some(id) = &registration.account_id {
        same_claim = same_claim.add(Expr::col(R::AccountId).eq(id.as_str()));
    }
    let others = deal_registration::Entity::find()
        .filter(Expr::col(R::ArchivedAt).is_null())
        .filter(Expr::col(R::Id).ne(registration.id.as_str()))
        .filter(
            Expr::col(R::Status)
                .is_in([RegistrationStatus::Submitted, RegistrationStatus::Approved]),
        )
        .filter(same_claim)
        .order_by_asc(R::CreatedAt)
        .limit(50)
        .all(db)
        .await?;
    for other in others {
        let reason = if registration.account_id.is_some()
            && other.account_id == registration.account_id
        {
            ConflictReason::SameAccount
        } else if registration.domain_key.is_some() && other.domain_key == registration.domain_key {
            ConflictReason::SameDomain
        } else {
            ConflictReason::SameName
        };
        found.push(RegistrationConflict {
            kind: ConflictKind::Registration,
            reason,
            record_id: ID(other.id.clone()),
            name: other.prospect_name.clone(),
            partner_id: Some(ID(other.partner_id.clone())),
            partner_name: None,
            protected_until: other.protected_until,
        });
    }
    let partners: Vec<String> = found
        .iter()
        .filter_map(|c| c.partner_id.as_ref().map(|p| p.to_string()))
        .collect();
    if !partners.is_empty() {
        let names: std::collections::BTreeMap<String, String> = partner::Entity::find()
            .filter(Expr::col(partner::Column::Id).is_in(partners))
            .all(db)
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect();
        for conflict in &mut found {
            conflict.partner_name = conflict
                .partner_id
                .as_ref()
                .and_then(|p| names.get(p.as_str()).cloned());
        }
    }
    Ok(found)
}

// The review queue reads oldest first; a partner's list newest first (it asks so).
ordering!(DealRegistrationOrder, DealRegistrationOrderField, deal_registration, default = CreatedAt, {
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
    ProspectName => ProspectName.prospect_name: Text,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct DealRegistrationFilter {
    /// Matches the prospect's name or domain, case-insensitively.
    pub text: Option<String>,
    pub status: Option<RegistrationStatus>,
    pub partner_id: Option<ID>,
    pub account_id: Option<ID>,
    pub opportunity_id: Option<ID>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<deal_registration::Entity> for DealRegistrationFilter {
    fn select(self) -> Select<deal_registration::Entity> {
        use deal_registration::Column as C;
        let mut s = unarchived(deal_registration::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::ProspectName, C::ProspectDomain]);
        s = s.eq_if(C::Status, self.status);
        s = s.eq_if(C::PartnerId, self.partner_id.map(|v| v.0));
        s = s.eq_if(C::AccountId, self.account_id.map(|v| v.0));
        s.eq_if(C::OpportunityId, self.opportunity_id.map(|v| v.0))
    }
}

/// Fields of a registration, as its partner submits and (while it waits for review)
/// edits it. On create, `products`, `estimatedAmount` and `currency` are required, and
/// either `accountId` (an account you can see) or `prospectName`.
#[derive(InputObject, Default, Clone, Debug)]
pub struct DealRegistrationInput {
    pub account_id: MaybeUndefined<ID>,
    pub prospect_name: Option<String>,
    /// The prospect's web domain; a URL or an email address there works too.
    pub prospect_domain: MaybeUndefined<String>,
    pub products: Option<Vec<ProductQuantityInput>>,
    /// A non-negative decimal string, e.g. `"12500.00"`.
    pub estimated_amount: Option<String>,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: Option<String>,
    pub expected_close: MaybeUndefined<NaiveDate>,
    pub notes: MaybeUndefined<String>,
    /// The named account's name, looked up with the references (`apply` can't read).
    #[graphql(skip)]
    pub account_name: std::sync::OnceLock<Option<String>>,
}

/// At most this many products on one registration.
const MAX_LINES: usize = 50;

impl RecordInput<deal_registration::Entity> for DealRegistrationInput {
    fn apply(&self, m: &mut deal_registration::ActiveModel, creating: bool) -> ApiResult<()> {
        if !creating && current(&m.status).is_some_and(|s| s != RegistrationStatus::Submitted) {
            return Err(ApiError::InvalidState {
                message: "a decided deal registration can't be edited; submit a new one".into(),
            });
        }
        optional(&mut m.account_id, &self.account_id, |v| {
            reference("input.accountId", v)
        })?;
        let account_name = self.account_name.get().cloned().flatten();
        match (&self.prospect_name, account_name) {
            (Some(name), _) => set(&mut m.prospect_name, text("input.prospectName", name, 200)?),
            (None, Some(name)) => set(&mut m.prospect_name, name),
            (None, None) if creating => {
                return Err(ApiError::validation(
                    "input.prospectName",
                    "is required unless an account is named",
                ));
            }
            (None, None) => {}
        }
        if let Some(name) = current(&m.prospect_name) {
            set(&mut m.name_key, company_key(&name));
        }
        optional(&mut m.prospect_domain, &self.prospect_domain, |v| {
            domain_key(v).ok_or_else(|| {
                ApiError::validation(
                    "input.prospectDomain",
                    "is not a web domain such as example.com",
                )
            })
        })?;
        if !matches!(self.prospect_domain, MaybeUndefined::Undefined) || creating {
            set(&mut m.domain_key, current(&m.prospect_domain).flatten());
        }
        if let Some(lines) = required(creating, "input.products", &self.products)? {
            set(
                &mut m.products,
                product_lines::lines_json("input.products", lines, 1, MAX_LINES)?,
            );
        }
        if creating && self.currency.is_none() {
            return Err(ApiError::validation("input.currency", "is required"));
        }
        let code = self.currency.clone().or_else(|| current(&m.currency));
        if let Some(code) = code {
            let currency = Currency::parse("input.currency", &code)?;
            set(&mut m.currency, currency.code().to_owned());
            if let Some(amount) =
                required(creating, "input.estimatedAmount", &self.estimated_amount)?
            {
                set(
                    &mut m.estimated_amount_minor,
                    Money::parse("input.estimatedAmount", amount, currency)?.minor,
                );
            } else if self.currency.is_some() && !creating {
                return Err(ApiError::validation(
                    "input.estimatedAmount",
                    "is required when the currency changes",
                ));
            }
        }
        optional(&mut m.expected_close, &self.expected_close, |v| {
            if *v < now().date_naive() {
                Err(ApiError::validation(
                    "input.expectedClose",
                    "is in the past",
                ))
            } else {
                Ok(*v)
            }
        })?;
        optional(&mut m.notes, &self.notes, |v| {
            optional_text("input.notes", Some(v), 5_000).map(Option::unwrap_or_default)
        })?;
        if creating {
            set(&mut m.status, RegistrationStatus::Submitted);
            set(&mut m.decision_reason, None);
            set(&mut m.decided_by_user_id, None);
            set(&mut m.decided_at, None);
            set(&mut m.opportunity_id, None);
            set(&mut m.protected_until, None);
        }
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> ApiResult<()> {
        if let MaybeUndefined::Value(id) = &self.account_id {
            let field = "input.accountId";
            ensure_exists::<account::Entity>(ctx, field, id).await?;
            let name = super::get_optional::<account::Entity>(ctx, id)
                .await?
                .map(|a| a.name);
            let _ = self.account_name.set(name);
        }
        Ok(())
    }

    /// The registering organisation and user are the writer's; only a partner's user
    /// registers a deal.
    fn write(
        &self,
        m: &mut deal_registration::ActiveModel,
        who: &Principal,
        creating: bool,
    ) -> ApiResult<()> {
        self.apply(m, creating)?;
        if creating {
            let Some(partner) = who.partner() else {
                return Err(ApiError::validation(
                    "input",
                    "a deal is registered by a partner organisation's user",
                ));
            };
            set(&mut m.partner_id, partner.to_owned());
            set(&mut m.submitted_by_user_id, who.subject.to_string());
        }
        Ok(())
    }
}

record_operations!(
    DealRegistrationQuery, DealRegistrationMutation, DealRegistration, deal_registration,
    DealRegistrationInput,
    list: deal_registrations(DealRegistrationFilter, DealRegistrationOrder) -> DealRegistrationConnection,
    one: deal_registration,
    mutations: create_deal_registration, update_deal_registration, upsert_deal_registration,
        archive_deal_registration
);

/// After a registration is written: a new one counts against its partner's tier limit (in
/// the write's transaction, so the write fails whole); a decision tells the partner's
/// submitter; an approval schedules its expiry.
pub async fn registration_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&deal_registration::Model>,
    after: &deal_registration::Model,
) -> ApiResult<()> {
    if before.is_none() {
        check_tier_limit(db, &after.partner_id).await?;
    }
    let decided = before.map(|b| b.status) != Some(after.status);
    if decided && before.is_some() {
        let (kind, title) = match after.status {
            RegistrationStatus::Approved => (
                NotificationKind::RegistrationApproved,
                format!("Deal registration approved: {}", after.prospect_name),
            ),
            RegistrationStatus::Rejected => (
                NotificationKind::RegistrationRejected,
                format!("Deal registration rejected: {}", after.prospect_name),
            ),
            RegistrationStatus::Expired => (
                NotificationKind::RegistrationExpired,
                format!("Deal registration expired: {}", after.prospect_name),
            ),
            RegistrationStatus::Submitted => return Ok(()),
        };
        let body = match (after.status, after.protected_until) {
            (RegistrationStatus::Approved, Some(until)) => {
                Some(format!("Protected until {}.", until.format("%Y-%m-%d")))
            }
            _ => after.decision_reason.clone(),
        };
        crate::jobs::notify(
            db,
            &after.submitted_by_user_id,
            kind,
            title,
            body,
            RecordKind::DealRegistration,
            &after.id,
        )
        .await?;
    }
    let protection = |m: &deal_registration::Model| {
        (m.status == RegistrationStatus::Approved)
            .then_some(m.protected_until)
            .flatten()
    };
    if let Some(until) = protection(after)
        && before.map(protection) != Some(Some(until))
    {
        crate::jobs::schedule_registration_expiry(db, &after.id, until).await?;
    }
    Ok(())
}

/// Refuses a new registration past the partner's tier limit on open registrations.
async fn check_tier_limit<C: ConnectionTrait>(db: &C, partner_id: &str) -> ApiResult<()> {
    use deal_registration::Column as R;
    let Some(partner) = partner::Entity::find_by_id(partner_id.to_owned())
        .one(db)
        .await?
    else {
        return Err(ApiError::validation(
            "input",
            "a deal is registered by a partner organisation's user",
        ));
    };
    let limit = partner.tier.registration_limit();
    let open = deal_registration::Entity::find()
        .filter(Expr::col(R::PartnerId).eq(partner_id))
        .filter(Expr::col(R::ArchivedAt).is_null())
        .filter(
            Expr::col(R::Status)
                .is_in([RegistrationStatus::Submitted, RegistrationStatus::Approved]),
        )
        .count(db)
        .await?;
    if open > limit {
        return Err(ApiError::validation(
            "input",
            format!(
                "your organisation has {limit} open deal registrations, the most its {} tier \
                 allows; withdraw one or wait for a decision",
                crm_service_common::domain::label(partner.tier).to_lowercase()
            ),
        ));
    }
    Ok(())
}

/// A reviewer's approval: which opportunity to attribute (an open one of ours; none: a
/// new one is created on the account), which account a prospect registration is for
/// (none: the one the partner named, else a new prospect account), how long it is
/// protected, and a note to the partner.
#[derive(InputObject, Default, Clone, Debug)]
pub struct ApproveDealRegistrationInput {
    pub opportunity_id: Option<ID>,
    pub account_id: Option<ID>,
    /// 1–365 days; default 90.
    pub protection_days: Option<i32>,
    pub note: Option<String>,
}

#[derive(Default)]
pub struct DealRegistrationReviewMutation;

#[Object]
impl DealRegistrationReviewMutation {
    /// Approves a submitted (or expired) registration: the opportunity (linked or created,
    /// owned by you when created) is attributed to the partner until the protection ends.
    /// All or nothing.
    async fn approve_deal_registration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        #[graphql(default)] input: ApproveDealRegistrationInput,
    ) -> Result<DealRegistration> {
        let ty = "DealRegistration";
        access::check_may(ctx, ty, Action::Update).await?;
        let mut sets = vec!["status", "opportunityId", "protectedUntil"];
        if input.account_id.is_some() {
            sets.push("accountId");
        }
        if input.note.is_some() {
            sets.push("decisionReason");
        }
        access::check_sets(ctx, ty, Action::Update, &sets).await?;
        if let Some(account_id) = &input.account_id {
            ensure_exists::<account::Entity>(ctx, "input.accountId", account_id).await?;
        }
        if let Some(opportunity_id) = &input.opportunity_id {
            ensure_exists::<opportunity::Entity>(ctx, "input.opportunityId", opportunity_id)
                .await?;
        }
        let days = i64::from(
            input
                .protection_days
                .unwrap_or(REGISTRATION_PROTECTION_DAYS as i32),
        );
        if !(1..=365).contains(&days) {
            return Err(
                ApiError::validation("input.protectionDays", "must be between 1 and 365").into(),
            );
        }
        let note = input
            .note
            .as_deref()
            .map(|n| optional_text("input.note", Some(n), 2_000))
            .transpose()?
            .flatten();
        let who = Principal::of(ctx);
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        let before = under_review(ctx, &txn, &id, version).await?;
        before.status.transition(RegistrationStatus::Approved)?;
        let until = now() + Duration::days(days);

        let linked = match &input.opportunity_id {
            Some(opportunity_id) => {
                let o = store::get::<opportunity::Entity, _>(&txn, opportunity_id).await?;
                if o.stage.is_closed() {
                    return Err(ApiError::validation("input.opportunityId", "is closed").into());
                }
                let protected_for_other = o
                    .partner_id
                    .as_ref()
                    .is_some_and(|p| *p != before.partner_id)
                    && o.protected_until.is_some_and(|t| t > now());
                if protected_for_other {
                    return Err(ApiError::validation(
                        "input.opportunityId",
                        "is protected for another partner's registration",
                    )
                    .into());
                }
                Some(o)
            }
            None => None,
        };
        let named = input
            .account_id
            .as_ref()
            .map(|a| a.to_string())
            .or_else(|| before.account_id.clone());
        let account_id = match (&linked, named) {
            (Some(o), _) => o.account_id.clone(),
            (None, Some(a)) => a,
            (None, None) => {
                access::check_may(ctx, "Account", Action::Create).await?;
                let account = store::create::<account::Entity, _>(&txn, None, |m, _| {
                    m.name = Set(before.prospect_name.clone());
                    m.name_key = Set(Some(before.name_key.clone()));
                    m.domain = Set(before.domain_key.clone());
                    m.segment = Set(Segment::Smb);
                    m.tier = Set(AccountTier::Standard);
                    m.lifecycle_stage = Set(LifecycleStage::Prospect);
                    m.owner_user_id = Set(Some(who.subject.to_string()));
                    m.industry = Set(None);
                    m.territory_id = Set(None);
                    m.internal_note = Set(None);
                    Ok(())
                })
                .await?;
                access::check_still_in_scope::<account::Entity, _>(
                    ctx,
                    &txn,
                    &account.id,
                    Action::Create,
                )
                .await?;
                account.id
            }
        };
        let attribution = opportunity::ActiveModel {
            partner_id: Set(Some(before.partner_id.clone())),
            registration_id: Set(Some(before.id.clone())),
            protected_until: Set(Some(until)),
            ..Default::default()
        };
        let opportunity = match linked {
            Some(o) => {
                // A linked deal without product lines takes the registration's.
                let mut attribution = attribution;
                if product_lines::lines_in(&o.products).is_empty() {
                    attribution.products = Set(before.products.clone());
                }
                let after = store::update_versioned::<opportunity::Entity, _>(
                    &txn,
                    &o.id,
                    o.version,
                    attribution,
                )
                .await?;
                store::publish::<opportunity::Entity, _>(&txn, Some(&o), &after).await?;
                access::check_still_in_scope::<opportunity::Entity, _>(
                    ctx,
                    &txn,
                    &after.id,
                    Action::Update,
                )
                .await?;
                after
            }
            None => {
                access::check_may(ctx, "Opportunity", Action::Create).await?;
                let stage = OpportunityStage::Qualification;
                let created = store::create::<opportunity::Entity, _>(&txn, None, |m, _| {
                    m.account_id = Set(account_id.clone());
                    m.name = Set(format!("{} (partner registration)", before.prospect_name)
                        .chars()
                        .take(200)
                        .collect());
                    m.stage = Set(stage);
                    m.amount_minor = Set(before.estimated_amount_minor);
                    m.currency = Set(before.currency.clone());
                    m.probability = Set(stage.default_probability());
                    m.expected_close = Set(before.expected_close);
                    m.forecast_category = Set(stage.default_forecast());
                    m.owner_user_id = Set(Some(who.subject.to_string()));
                    m.products = Set(before.products.clone());
                    m.partner_id = attribution.partner_id.clone();
                    m.registration_id = attribution.registration_id.clone();
                    m.protected_until = attribution.protected_until.clone();
                    Ok(())
                })
                .await?;
                access::check_still_in_scope::<opportunity::Entity, _>(
                    ctx,
                    &txn,
                    &created.id,
                    Action::Create,
                )
                .await?;
                created
            }
        };
        let decision = deal_registration::ActiveModel {
            status: Set(RegistrationStatus::Approved),
            account_id: Set(Some(account_id)),
            opportunity_id: Set(Some(opportunity.id.clone())),
            protected_until: Set(Some(until)),
            decision_reason: Set(note),
            decided_by_user_id: Set(Some(who.subject.to_string())),
            decided_at: Set(Some(now())),
            ..Default::default()
        };
        let after = decide(ctx, &txn, &before, decision).await?;
        crm_service_common::db::commit(txn).await?;
        Ok(DealRegistration(after))
    }

    /// Rejects a submitted registration with a reason the partner reads.
    async fn reject_deal_registration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        reason: String,
    ) -> Result<DealRegistration> {
        let ty = "DealRegistration";
        access::check_may(ctx, ty, Action::Update).await?;
        access::check_sets(ctx, ty, Action::Update, &["status", "decisionReason"]).await?;
        let reason = text("reason", &reason, 2_000)?;
        let who = Principal::of(ctx);
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        let before = under_review(ctx, &txn, &id, version).await?;
        before.status.transition(RegistrationStatus::Rejected)?;
        let decision = deal_registration::ActiveModel {
            status: Set(RegistrationStatus::Rejected),
            decision_reason: Set(Some(reason)),
            decided_by_user_id: Set(Some(who.subject.to_string())),
            decided_at: Set(Some(now())),
            ..Default::default()
        };
        let after = decide(ctx, &txn, &before, decision).await?;
        crm_service_common::db::commit(txn).await?;
        Ok(DealRegistration(after))
    }

    /// Moves an approved registration's protection to `until` (later or earlier), on the
    /// registration and its opportunity alike.
    async fn extend_deal_registration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        until: DateTime<Utc>,
    ) -> Result<DealRegistration> {
        let ty = "DealRegistration";
        access::check_may(ctx, ty, Action::Update).await?;
        access::check_sets(ctx, ty, Action::Update, &["protectedUntil"]).await?;
        if until <= now() || until > now() + Duration::days(365) {
            return Err(ApiError::validation("until", "must be within the next 365 days").into());
        }
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        let before = under_review(ctx, &txn, &id, version).await?;
        if before.status != RegistrationStatus::Approved {
            return Err(ApiError::InvalidState {
                message: "only an approved registration's protection can move".into(),
            }
            .into());
        }
        if let Some(opportunity_id) = &before.opportunity_id {
            let o = store::get::<opportunity::Entity, _>(&txn, opportunity_id).await?;
            let after = store::update_versioned::<opportunity::Entity, _>(
                &txn,
                &o.id,
                o.version,
                opportunity::ActiveModel {
                    protected_until: Set(Some(until)),
                    ..Default::default()
                },
            )
            .await?;
            store::publish::<opportunity::Entity, _>(&txn, Some(&o), &after).await?;
        }
        let change = deal_registration::ActiveModel {
            protected_until: Set(Some(until)),
            ..Default::default()
        };
        let after = decide(ctx, &txn, &before, change).await?;
        crm_service_common::db::commit(txn).await?;
        Ok(DealRegistration(after))
    }
}

/// The registration a reviewer acts on: one the caller may change, still at the version
/// its page showed (else `VERSION_CONFLICT`, nothing changed).
async fn under_review(
    ctx: &Context<'_>,
    txn: &sea_orm::DatabaseTransaction,
    id: &str,
    version: i32,
) -> ApiResult<deal_registration::Model> {
    access::check_may_change::<deal_registration::Entity, _>(ctx, txn, id, Action::Update).await?;
    let current = store::get::<deal_registration::Entity, _>(txn, id).await?;
    if current.version != version {
        return Err(ApiError::VersionConflict {
            current_version: current.version,
        });
    }
    Ok(current)
}

/// Writes a reviewer's change to a registration, runs its after-write (notification,
/// expiry) and checks it stayed the caller's to change.
async fn decide(
    ctx: &Context<'_>,
    txn: &sea_orm::DatabaseTransaction,
    before: &deal_registration::Model,
    change: deal_registration::ActiveModel,
) -> ApiResult<deal_registration::Model> {
    let after = store::update_versioned::<deal_registration::Entity, _>(
        txn,
        &before.id,
        before.version,
        change,
    )
    .await?;
    store::publish::<deal_registration::Entity, _>(txn, Some(before), &after).await?;
    access::check_still_in_scope::<deal_registration::Entity, _>(
        ctx,
        txn,
        &after.id,
        Action::Update,
    )
    .await?;
    Ok(after)
}
