//! `Case`: a customer issue with status, priority and an SLA due time.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Result};
use chrono::{DateTime, Duration, Utc};
use crm_service_common::connection_types;
use crm_service_common::domain::{optional_text, text};
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, QueryFilter, Select};

use super::account::Account;
use super::{
    FilterExt, RecordFilter, RecordInput, ensure_exists, load, optional, ordering, record_object,
    record_operations, required, unarchived,
};
use crate::domain::{CasePriority, CaseStatus, Channel};
use crate::entity::{account, case, contact, partner};
use crate::store::{current, now, set, transition};
use crm_service_common::ApiResult;
use crm_service_common::access::{hidden_field, masks};
use crm_service_common::principal::Principal;

#[derive(Clone)]
pub struct Case(pub case::Model);

connection_types!(CaseConnection, CaseEdge, Case);

record_object!(Case {
    async fn account_id(&self) -> ID {
        ID(self.0.account_id.clone())
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        Ok(load::<account::Entity>(ctx, &self.0.account_id).await?.map(Account))
    }
    async fn contact_id(&self) -> Option<ID> {
        self.0.contact_id.clone().map(ID)
    }
    /// The partner organisation that opened or handles the case, if any.
    async fn partner_id(&self) -> Option<ID> {
        self.0.partner_id.clone().map(ID)
    }
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn status(&self) -> CaseStatus {
        self.0.status
    }
    async fn priority(&self) -> CasePriority {
        self.0.priority
    }
    async fn channel(&self) -> Channel {
        self.0.channel
    }
    /// When the case must be answered by; derived from the priority unless set.
    async fn sla_due_at(&self) -> Option<DateTime<Utc>> {
        self.0.sla_due_at
    }
    /// True when the SLA time has passed while the case is open and its clock runs (not
    /// while it waits on the customer).
    async fn sla_breached(&self) -> bool {
        self.0.status.is_open()
            && self.0.sla_paused_at.is_none()
            && self.0.sla_due_at.is_some_and(|due| due < crm_service_common::clock::now())
    }
    /// Set while the case is `PENDING` (waiting on the customer): the SLA clock stands
    /// still, and the due time moves on by the pause when the case leaves `PENDING`.
    async fn sla_paused_at(&self) -> Option<DateTime<Utc>> {
        self.0.sla_paused_at
    }
    /// When the job runner escalated the case because its SLA ran out (its priority went
    /// up a level and its owner was told).
    async fn escalated_at(&self) -> Option<DateTime<Utc>> {
        self.0.escalated_at
    }
    /// When it was last resolved.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    /// The statuses the case may move to from its current one.
    async fn next_statuses(&self) -> Vec<CaseStatus> {
        use crm_service_common::domain::Lifecycle;
        self.0.status.next().to_vec()
    }
    /// The comments on the case the caller may read, oldest first (a partner reads those
    /// marked for partners only).
    async fn comments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<super::case_comment::CaseCommentConnection> {
        let filter = super::case_comment::CaseCommentFilter {
            case_id: Some(ID(self.0.id.clone())),
            ..Default::default()
        };
        super::case_comment::list_case_comments(ctx, first, after, Some(filter), None).await
    }
    /// The internal user who handles it: masked for partners by the policy (internal
    /// users' ids are not theirs to know).
    async fn owner_user_id(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        let owner = self.0.owner_user_id.clone().map(ID);
        Ok(crm_service_common::access::unmasked(ctx, &self.0, "ownerUserId", owner)
            .await?
            .flatten())
    }
});

ordering!(CaseOrder, CaseOrderField, case, default = CreatedAt, {
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
    Subject => Subject.subject: Text,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct CaseFilter {
    /// Matches the subject, case-insensitively.
    pub text: Option<String>,
    pub account_id: Option<ID>,
    pub partner_id: Option<ID>,
    pub status: Option<CaseStatus>,
    pub priority: Option<CasePriority>,
    /// Only cases that are not resolved or closed.
    pub open_only: Option<bool>,
    /// Cases this internal user handles.
    pub owner_user_id: Option<ID>,
    /// Cases nobody handles yet (true) or somebody does (false).
    pub unassigned: Option<bool>,
    /// Open cases whose running SLA is due before this time: breached ones and those due
    /// soon (pending cases, whose clock stands still, are not).
    pub sla_due_before: Option<DateTime<Utc>>,
    /// Escalated cases (true) or not (false).
    pub escalated: Option<bool>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl crm_service_common::search::Searchable<case::Entity> for CaseFilter {
    fn for_text(text: String) -> Self {
        Self {
            text: Some(text),
            ..Self::default()
        }
    }
    fn searched(&self) -> Vec<case::Column> {
        use case::Column as C;
        vec![C::Subject]
    }
}

impl RecordFilter<case::Entity> for CaseFilter {
    /// Who handles a case is masked from partners: they can't filter by it either.
    async fn restrict(self, who: &Principal) -> ApiResult<Self> {
        if masks(who, "Case").await?.may_hide("ownerUserId") {
            if self.owner_user_id.is_some() {
                return Err(hidden_field("filter.ownerUserId"));
            }
            if self.unassigned.is_some() {
                return Err(hidden_field("filter.unassigned"));
            }
        }
        Ok(self)
    }

    fn select(self) -> Select<case::Entity> {
        use case::Column as C;
        let mut s = unarchived(case::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::Subject]);
        s = s.eq_if(C::AccountId, self.account_id.map(|v| v.0));
        s = s.eq_if(C::PartnerId, self.partner_id.map(|v| v.0));
        s = s.eq_if(C::Status, self.status);
        s = s.eq_if(C::Priority, self.priority);
        if self.open_only == Some(true) {
            s = s
                .filter(Expr::col(C::Status).is_not_in([CaseStatus::Resolved, CaseStatus::Closed]));
        }
        s = s.eq_if(C::OwnerUserId, self.owner_user_id.map(|v| v.0));
        match self.unassigned {
            Some(true) => s = s.filter(Expr::col(C::OwnerUserId).is_null()),
            Some(false) => s = s.filter(Expr::col(C::OwnerUserId).is_not_null()),
            None => {}
        }
        if let Some(before) = self.sla_due_before {
            s = s
                .filter(Expr::col(C::Status).is_in([CaseStatus::New, CaseStatus::Open]))
                .filter(Expr::col(C::SlaPausedAt).is_null())
                .filter(Expr::col(C::SlaDueAt).lt(before));
        }
        match self.escalated {
            Some(true) => s = s.filter(Expr::col(C::EscalatedAt).is_not_null()),
            Some(false) => s = s.filter(Expr::col(C::EscalatedAt).is_null()),
            None => {}
        }
        s
    }
}

/// Fields of a case. On create, `accountId`, `subject` and `channel` are required; status
/// starts `NEW`, priority `MEDIUM`, and the SLA due time follows from the priority.
#[derive(InputObject, Default, Clone, Debug)]
pub struct CaseInput {
    pub account_id: Option<ID>,
    pub contact_id: MaybeUndefined<ID>,
    pub partner_id: MaybeUndefined<ID>,
    pub subject: Option<String>,
    pub description: MaybeUndefined<String>,
    pub status: Option<CaseStatus>,
    pub priority: Option<CasePriority>,
    pub channel: Option<Channel>,
    pub sla_due_at: MaybeUndefined<DateTime<Utc>>,
    pub owner_user_id: MaybeUndefined<ID>,
}

impl RecordInput<case::Entity> for CaseInput {
    fn apply(
        &self,
        m: &mut case::ActiveModel,
        creating: bool,
    ) -> crm_service_common::ApiResult<()> {
        if let Some(v) = required(creating, "input.accountId", &self.account_id)? {
            set(&mut m.account_id, v.0.clone());
        }
        optional(&mut m.contact_id, &self.contact_id, |v| Ok(v.0.clone()))?;
        optional(&mut m.partner_id, &self.partner_id, |v| Ok(v.0.clone()))?;
        if let Some(v) = required(creating, "input.subject", &self.subject)? {
            set(&mut m.subject, text("input.subject", v, 300)?);
        }
        optional(&mut m.description, &self.description, |v| {
            optional_text("input.description", Some(v), 50_000).map(Option::unwrap_or_default)
        })?;
        if let Some(v) = required(creating, "input.channel", &self.channel)? {
            set(&mut m.channel, *v);
        }
        match self.status {
            Some(to) if creating => {
                set(&mut m.status, to);
                move_sla_clock(m, None, to);
            }
            Some(to) => {
                let from = current(&m.status);
                transition(&mut m.status, to)?;
                if from != Some(to) {
                    move_sla_clock(m, from, to);
                }
            }
            None if creating => set(&mut m.status, CaseStatus::New),
            None => {}
        }
        let priority = self.priority.or(creating.then_some(CasePriority::Medium));
        let before = current(&m.priority);
        if let Some(p) = priority {
            set(&mut m.priority, p);
        }
        match (&self.sla_due_at, priority) {
            (MaybeUndefined::Undefined, Some(p)) if creating => {
                set(
                    &mut m.sla_due_at,
                    Some(now() + Duration::hours(p.sla_hours())),
                );
            }
            // A new priority moves the response target by the difference of the two
            // targets (urgent 4 h, high 8 h, medium 24 h, low 72 h), so time already spent
            // and pauses still count; a due time sent with it wins.
            (MaybeUndefined::Undefined, Some(p)) => {
                if let (Some(old), Some(Some(due))) = (before, current(&m.sla_due_at))
                    && old != p
                {
                    let moved = due + Duration::hours(p.sla_hours() - old.sla_hours());
                    set(&mut m.sla_due_at, Some(moved));
                }
            }
            (sla, _) => optional(&mut m.sla_due_at, sla, |v| Ok(*v))?,
        }
        optional(&mut m.owner_user_id, &self.owner_user_id, |v| {
            text("input.ownerUserId", v, 64)
        })?;
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> crm_service_common::ApiResult<()> {
        if let Some(id) = &self.account_id {
            ensure_exists::<account::Entity>(ctx, "input.accountId", id).await?;
        }
        if let MaybeUndefined::Value(id) = &self.contact_id {
            ensure_exists::<contact::Entity>(ctx, "input.contactId", id).await?;
        }
        if let MaybeUndefined::Value(id) = &self.partner_id {
            ensure_exists::<partner::Entity>(ctx, "input.partnerId", id).await?;
        }
        Ok(())
    }

    /// A partner's case is its organisation's (staff name the partner in the input).
    fn stamp(
        &self,
        m: &mut case::ActiveModel,
        who: &crm_service_common::principal::Principal,
        creating: bool,
    ) {
        if creating {
            // A partner's user who opens a case hears of our replies to it.
            let partner = who.partner();
            set(
                &mut m.opened_by_user_id,
                partner.map(|_| who.subject.to_string()),
            );
            if let Some(own) = partner {
                set(&mut m.partner_id, Some(own.to_owned()));
            }
        }
    }
}

/// What a status change does to the SLA clock: entering `PENDING` stops it, leaving it
/// moves the due time on by the pause; resolving stamps the time; reopening starts a fresh
/// SLA by the priority (and a new escalation may follow).
fn move_sla_clock(m: &mut case::ActiveModel, from: Option<CaseStatus>, to: CaseStatus) {
    let now = now();
    if to == CaseStatus::Pending {
        set(&mut m.sla_paused_at, Some(now));
    } else if from == Some(CaseStatus::Pending) {
        if let (Some(Some(paused)), Some(Some(due))) =
            (current(&m.sla_paused_at), current(&m.sla_due_at))
        {
            set(&mut m.sla_due_at, Some(due + (now - paused)));
        }
        set(&mut m.sla_paused_at, None);
    }
    if to == CaseStatus::Resolved {
        set(&mut m.resolved_at, Some(now));
    }
    let reopened = matches!(from, Some(CaseStatus::Resolved)) && to == CaseStatus::Open;
    if reopened && let Some(priority) = current(&m.priority) {
        set(
            &mut m.sla_due_at,
            Some(now + Duration::hours(priority.sla_hours())),
        );
        set(&mut m.escalated_at, None);
    }
}

pub(crate) async fn list_cases(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<CaseFilter>,
    order_by: Option<CaseOrder>,
) -> Result<CaseConnection> {
    CaseQuery.cases(ctx, first, after, filter, order_by).await
}

#[derive(Default)]
pub struct CaseEntityQuery;

#[async_graphql::Object]
impl CaseEntityQuery {
    /// Federation entity look-up (the knowledge base adds a case's articles); a batch of
    /// keys is loaded with one query, through the caller's policy.
    #[graphql(entity)]
    async fn find_case_by_id(
        &self,
        ctx: &async_graphql::Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Case>> {
        Ok(super::load::<case::Entity>(ctx, &id).await?.map(Case))
    }
}

record_operations!(
    CaseQuery, CaseMutation, Case, case, CaseInput,
    list: cases(CaseFilter, CaseOrder) -> CaseConnection, one: case,
    mutations: create_case, update_case, upsert_case, archive_case
);
