//! `Task`: something to do about a record (an account, a contact, a lead, an opportunity or
//! a case) by a due time, assigned to an internal user, with a reminder. A task is seen
//! only by those who may read its record.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Result};
use chrono::{DateTime, Duration, Utc};
use crm_service_common::connection_types;
use crm_service_common::domain::{optional_text, text};
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, ApiResult};
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, QueryFilter, Select};

use super::account::Account;
use super::{
    FilterExt, RecordFilter, RecordInput, ensure_exists, get_optional, load, optional, ordering,
    record_object, record_operations, required, unarchived,
};
use crate::domain::RecordKind;
use crate::entity::{account, case, contact, deal_registration, lead, opportunity, task};
use crate::store::{current, now, set};

#[derive(Clone)]
pub struct Task(pub task::Model);

connection_types!(TaskConnection, TaskEdge, Task);

/// How long before its due time a task reminds its assignee when no time is given.
const DEFAULT_REMINDER: Duration = Duration::hours(1);

record_object!(Task {
    /// The kind of record the task is about.
    async fn record_type(&self) -> RecordKind {
        self.0.record_type
    }
    async fn record_id(&self) -> ID {
        ID(self.0.record_id.clone())
    }
    /// The record's name as its readers see it (the task is visible only to them).
    async fn record_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(record_name(ctx, self.0.record_type, &self.0.record_id).await?)
    }
    /// The account the record belongs to (none for a lead).
    async fn account_id(&self) -> Option<ID> {
        self.0.account_id.clone().map(ID)
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        Ok(match &self.0.account_id {
            Some(id) => load::<account::Entity>(ctx, id).await?.map(Account),
            None => None,
        })
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
    async fn due_at(&self) -> DateTime<Utc> {
        self.0.due_at
    }
    /// When the assignee is reminded (an in-app notification); null: never.
    async fn remind_at(&self) -> Option<DateTime<Utc>> {
        self.0.remind_at
    }
    /// When the reminder went out.
    async fn reminded_at(&self) -> Option<DateTime<Utc>> {
        self.0.reminded_at
    }
    async fn assignee_user_id(&self) -> ID {
        ID(self.0.assignee_user_id.clone())
    }
    async fn created_by_user_id(&self) -> Option<ID> {
        self.0.created_by_user_id.clone().map(ID)
    }
    async fn completed(&self) -> bool {
        self.0.completed_at.is_some()
    }
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    async fn completed_by_user_id(&self) -> Option<ID> {
        self.0.completed_by_user_id.clone().map(ID)
    }
    /// Not completed and past its due time.
    async fn overdue(&self) -> bool {
        self.0.completed_at.is_none() && self.0.due_at < now()
    }
});

/// The name of the record `id` of `kind`, through the caller's visibility.
async fn record_name(ctx: &Context<'_>, kind: RecordKind, id: &str) -> ApiResult<Option<String>> {
    Ok(match kind {
        RecordKind::Account => get_optional::<account::Entity>(ctx, id)
            .await?
            .map(|a| a.name),
        RecordKind::Contact => get_optional::<contact::Entity>(ctx, id)
            .await?
            .map(|c| format!("{} {}", c.first_name, c.last_name)),
        RecordKind::Lead => get_optional::<lead::Entity>(ctx, id)
            .await?
            .map(|l| format!("{} {} ({})", l.first_name, l.last_name, l.company)),
        RecordKind::Opportunity => get_optional::<opportunity::Entity>(ctx, id)
            .await?
            .map(|o| o.name),
        RecordKind::Case => get_optional::<case::Entity>(ctx, id)
            .await?
            .map(|c| c.subject),
        RecordKind::DealRegistration => get_optional::<deal_registration::Entity>(ctx, id)
            .await?
            .map(|r| r.prospect_name),
    })
}

// A to-do list reads soonest first.
ordering!(TaskOrder, TaskOrderField, task, default = DueAt, {
    DueAt => DueAt.due_at: Time,
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct TaskFilter {
    /// Matches the title, case-insensitively.
    pub text: Option<String>,
    /// Tasks assigned to the caller.
    pub assigned_to_me: Option<bool>,
    pub assignee_user_id: Option<ID>,
    /// Tasks on this record.
    pub record_id: Option<ID>,
    /// Tasks on this account or on any record of it.
    pub account_id: Option<ID>,
    pub completed: Option<bool>,
    pub due_after: Option<DateTime<Utc>>,
    pub due_before: Option<DateTime<Utc>>,
    #[graphql(default)]
    pub include_archived: bool,
    /// The caller, for `assignedToMe`.
    #[graphql(skip)]
    pub me: Option<String>,
}

impl RecordFilter<task::Entity> for TaskFilter {
    async fn restrict(mut self, who: &Principal) -> ApiResult<Self> {
        self.me = Some(who.subject.to_string());
        Ok(self)
    }

    fn select(self) -> Select<task::Entity> {
        use task::Column as C;
        let mut s = unarchived(task::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::Title]);
        if self.assigned_to_me == Some(true) {
            s = s.eq_if(C::AssigneeUserId, self.me);
        }
        s = s.eq_if(C::AssigneeUserId, self.assignee_user_id.map(|v| v.0));
        s = s.eq_if(C::RecordId, self.record_id.map(|v| v.0));
        s = s.eq_if(C::AccountId, self.account_id.map(|v| v.0));
        match self.completed {
            Some(true) => s = s.filter(Expr::col(C::CompletedAt).is_not_null()),
            Some(false) => s = s.filter(Expr::col(C::CompletedAt).is_null()),
            None => {}
        }
        if let Some(v) = self.due_after {
            s = s.filter(Expr::col(C::DueAt).gte(v));
        }
        if let Some(v) = self.due_before {
            s = s.filter(Expr::col(C::DueAt).lt(v));
        }
        s
    }
}

/// Fields of a task. On create, `recordId`, `title` and `dueAt` are required; the task is
/// assigned to its creator unless `assigneeUserId` names someone else, and reminds an hour
/// before it is due unless `remindAt` says otherwise (null: no reminder).
#[derive(InputObject, Default, Clone, Debug)]
pub struct TaskInput {
    /// The account, contact, lead, opportunity or case the task is about (one the caller
    /// may read).
    pub record_id: Option<ID>,
    pub title: Option<String>,
    pub notes: MaybeUndefined<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub remind_at: MaybeUndefined<DateTime<Utc>>,
    pub assignee_user_id: Option<ID>,
    /// Marks the task done (true) or not done (false).
    pub completed: Option<bool>,
    /// The account of the record, looked up with the references (`apply` can't read).
    #[graphql(skip)]
    pub account: std::sync::OnceLock<Option<String>>,
}

impl RecordInput<task::Entity> for TaskInput {
    fn apply(&self, m: &mut task::ActiveModel, creating: bool) -> ApiResult<()> {
        if let Some(id) = required(creating, "input.recordId", &self.record_id)? {
            if !creating {
                return Err(ApiError::validation(
                    "input.recordId",
                    "cannot change: a task stays on its record",
                ));
            }
            // An id of no known kind answers like one of a record that does not exist (or
            // that the caller may not see): the answer never depends on which it is.
            let kind = RecordKind::of_id(id).ok_or_else(|| {
                ApiError::validation("input.recordId", "refers to a record that does not exist")
            })?;
            set(&mut m.record_type, kind);
            set(&mut m.record_id, id.0.clone());
            set(&mut m.account_id, self.account.get().cloned().flatten());
        }
        if let Some(v) = required(creating, "input.title", &self.title)? {
            set(&mut m.title, text("input.title", v, 300)?);
        }
        optional(&mut m.notes, &self.notes, |v| {
            optional_text("input.notes", Some(v), 20_000).map(Option::unwrap_or_default)
        })?;
        let due_before = current(&m.due_at);
        if let Some(v) = required(creating, "input.dueAt", &self.due_at)? {
            set(&mut m.due_at, *v);
        }
        let due_moved = self.due_at.is_some() && due_before != self.due_at;
        let remind_before = current(&m.remind_at).flatten();
        match &self.remind_at {
            MaybeUndefined::Undefined if due_moved => {
                let due = self.due_at.unwrap_or_default();
                set(&mut m.remind_at, Some(due - DEFAULT_REMINDER));
            }
            other => optional(&mut m.remind_at, other, |v| Ok(*v))?,
        }
        if current(&m.remind_at).flatten() != remind_before {
            // A new reminder time: the reminder goes out (again) then.
            set(&mut m.reminded_at, None);
        }
        if let Some(v) = &self.assignee_user_id {
            set(
                &mut m.assignee_user_id,
                text("input.assigneeUserId", v, 64)?,
            );
        }
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> ApiResult<()> {
        let Some(id) = &self.record_id else {
            return Ok(());
        };
        let field = "input.recordId";
        let Some(kind) = RecordKind::of_id(id) else {
            // `apply` names the error.
            return Ok(());
        };
        match kind {
            RecordKind::Account => ensure_exists::<account::Entity>(ctx, field, id).await?,
            RecordKind::Contact => ensure_exists::<contact::Entity>(ctx, field, id).await?,
            RecordKind::Lead => ensure_exists::<lead::Entity>(ctx, field, id).await?,
            RecordKind::Opportunity => ensure_exists::<opportunity::Entity>(ctx, field, id).await?,
            RecordKind::Case => ensure_exists::<case::Entity>(ctx, field, id).await?,
            RecordKind::DealRegistration => {
                ensure_exists::<deal_registration::Entity>(ctx, field, id).await?
            }
        }
        let account = crate::jobs::account_of(super::db(ctx)?, kind, id).await?;
        let _ = self.account.set(account);
        Ok(())
    }

    /// The creator is the writer, the assignee too unless named; completing records who
    /// and when.
    fn stamp(&self, m: &mut task::ActiveModel, who: &Principal, creating: bool) {
        if creating {
            set(&mut m.created_by_user_id, Some(who.subject.to_string()));
            if current(&m.assignee_user_id).is_none() {
                set(&mut m.assignee_user_id, who.subject.to_string());
            }
        }
        match self.completed {
            Some(true) if current(&m.completed_at).flatten().is_none() => {
                set(&mut m.completed_at, Some(now()));
                set(&mut m.completed_by_user_id, Some(who.subject.to_string()));
            }
            Some(false) => {
                set(&mut m.completed_at, None);
                set(&mut m.completed_by_user_id, None);
            }
            _ if creating => {
                set(&mut m.completed_at, None);
                set(&mut m.completed_by_user_id, None);
            }
            _ => {}
        }
    }
}

record_operations!(
    TaskQuery, TaskMutation, Task, task, TaskInput,
    list: tasks(TaskFilter, TaskOrder) -> TaskConnection, one: task,
    mutations: create_task, update_task, upsert_task, archive_task
);
