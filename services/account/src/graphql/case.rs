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
use crate::store::{now, set};

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
    /// True when the SLA time has passed and the case is not resolved or closed.
    async fn sla_breached(&self) -> bool {
        let open = !matches!(self.0.status, CaseStatus::Resolved | CaseStatus::Closed);
        open && self.0.sla_due_at.is_some_and(|due| due < crm_service_common::clock::now())
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
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<case::Entity> for CaseFilter {
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
            Some(v) => set(&mut m.status, v),
            None if creating => set(&mut m.status, CaseStatus::New),
            None => {}
        }
        let priority = self.priority.or(creating.then_some(CasePriority::Medium));
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
        if creating && let Some(own) = who.partner() {
            set(&mut m.partner_id, Some(own.to_owned()));
        }
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

record_operations!(
    CaseQuery, CaseMutation, Case, case, CaseInput,
    list: cases(CaseFilter, CaseOrder) -> CaseConnection, one: case,
    mutations: create_case, update_case, upsert_case, archive_case
);
