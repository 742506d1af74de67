use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub external_id: Option<String>,
    /// The organisation that wrote `external_id` (a partner id; empty: the company).
    pub external_namespace: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
    /// The policy type of the record the task is on (`Account`, `Case`, …).
    pub record_type: RecordKind,
    pub record_id: String,
    /// The account the record belongs to (the account itself for an account), so that the
    /// account's timeline lists it.
    pub account_id: Option<String>,
    pub title: String,
    pub notes: Option<String>,
    pub due_at: DateTimeUtc,
    /// When to remind the assignee (a notification); none: no reminder.
    pub remind_at: Option<DateTimeUtc>,
    pub assignee_user_id: String,
    pub created_by_user_id: Option<String>,
    pub completed_at: Option<DateTimeUtc>,
    pub completed_by_user_id: Option<String>,
    /// When the reminder notification went out.
    pub reminded_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
